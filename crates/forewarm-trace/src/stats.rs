//! The characteristics of a trace, measured the way the published ones were, so a generated
//! trace (or a real one) can be checked against them.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{DAY_MINUTES, Trace};

/// Measured characteristics of a trace.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TraceStats {
    /// Days in the trace.
    pub days: usize,
    /// Applications.
    pub apps: usize,
    /// Functions.
    pub functions: usize,
    /// Invocations.
    pub invocations: u64,
    /// Share of applications invoked at most once an hour on average (published: 45%).
    pub apps_at_most_hourly: f64,
    /// Share of applications invoked at most once a minute on average (published: 81%).
    pub apps_at_most_per_minute: f64,
    /// log10(busiest / quietest non-zero daily rate) (published: ~8).
    pub rate_orders_of_magnitude: f64,
    /// Share of applications with one function (published: 54%).
    pub single_function_apps: f64,
    /// Share of functions per trigger (published: http 55, queue 15, event 2, timer 16%).
    pub triggers: BTreeMap<String, f64>,
    /// Applications with at least 10 invocations: those the CV is measured on.
    pub apps_with_cv: usize,
    /// Share of those whose inter-arrival CV > 1 (published: ~40% bursty).
    pub bursty_apps: f64,
    /// Busiest over quietest hour of the day, all days folded (published: ~2x).
    pub diurnal_swing: f64,
    /// Mean and standard deviation of ln(average duration in s) over functions
    /// (published fit: LogNormal(−0.38, 2.36)).
    pub duration_log_mean: f64,
    /// See `duration_log_mean`.
    pub duration_log_std: f64,
    /// Median, 90th and 99th percentile of application average memory, MB
    /// (published fit Burr(11.652, 0.221, 107.083): 139, 262, 640).
    pub memory_mb_p50_p90_p99: [f64; 3],
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Coefficient of variation of inter-arrival times, invocations within a minute spread evenly.
fn inter_arrival_cv(minutes: &[(u32, u32)]) -> Option<f64> {
    let (mut n, mut mean, mut m2) = (0u64, 0.0f64, 0.0f64);
    let mut last: Option<f64> = None;
    for (minute, count) in minutes {
        for i in 0..*count {
            let t = f64::from(*minute) + (f64::from(i) + 0.5) / f64::from(*count);
            if let Some(prev) = last {
                let gap = t - prev;
                n += 1;
                let delta = gap - mean;
                mean += delta / n as f64;
                m2 += delta * (gap - mean);
            }
            last = Some(t);
        }
    }
    (n >= 2 && mean > 0.0).then(|| (m2 / (n - 1) as f64).sqrt() / mean)
}

impl TraceStats {
    /// Measure `trace` (read it with [`crate::Window::all`] for the whole trace).
    pub fn measure(trace: &Trace) -> Self {
        let days = (trace.minutes as f64 / DAY_MINUTES as f64).max(1.0 / DAY_MINUTES as f64);
        let mut rates: Vec<f64> = Vec::with_capacity(trace.apps.len());
        let mut by_hour = [0u64; 24];
        let (mut with_cv, mut bursty) = (0usize, 0usize);
        let mut triggers: BTreeMap<String, usize> = BTreeMap::new();
        let mut log_durations = Vec::new();
        let mut memory = Vec::new();
        let mut functions = 0;
        for app in &trace.apps {
            let minutes = app.minute_counts();
            let invocations: u64 = minutes.iter().map(|(_, c)| u64::from(*c)).sum();
            rates.push(invocations as f64 / days);
            for (m, c) in &minutes {
                let hour = ((trace.start_minute + u64::from(*m)) % DAY_MINUTES) / 60;
                by_hour[hour as usize] += u64::from(*c);
            }
            if let Some(cv) = inter_arrival_cv(&minutes).filter(|_| invocations >= 10) {
                with_cv += 1;
                bursty += usize::from(cv > 1.0);
            }
            for f in &app.functions {
                functions += 1;
                *triggers.entry(f.trigger.clone()).or_default() += 1;
                if let Some(d) = f.durations.filter(|d| d.average_ms > 0.0) {
                    log_durations.push((d.average_ms / 1000.0).ln());
                }
            }
            if let Some(m) = app.memory {
                memory.push(m.average_mb);
            }
        }
        let nonzero: Vec<f64> = rates.iter().copied().filter(|r| *r > 0.0).collect();
        let orders = match (
            nonzero.iter().copied().reduce(f64::min),
            nonzero.iter().copied().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) => (hi / lo).log10(),
            _ => 0.0,
        };
        let n = log_durations.len().max(1) as f64;
        let log_mean = log_durations.iter().sum::<f64>() / n;
        let log_var = log_durations
            .iter()
            .map(|v| (v - log_mean).powi(2))
            .sum::<f64>()
            / n;
        memory.sort_by(f64::total_cmp);
        let quiet = by_hour.iter().copied().min().unwrap_or(0);
        let busy = by_hour.iter().copied().max().unwrap_or(0);
        Self {
            days: trace.days.len(),
            apps: trace.apps.len(),
            functions,
            invocations: trace.invocations(),
            apps_at_most_hourly: share(rates.iter().filter(|r| **r <= 24.0).count(), rates.len()),
            apps_at_most_per_minute: share(
                rates.iter().filter(|r| **r <= 1440.0).count(),
                rates.len(),
            ),
            rate_orders_of_magnitude: orders,
            single_function_apps: share(
                trace.apps.iter().filter(|a| a.functions.len() == 1).count(),
                trace.apps.len(),
            ),
            triggers: triggers
                .into_iter()
                .map(|(t, c)| (t, share(c, functions)))
                .collect(),
            apps_with_cv: with_cv,
            bursty_apps: share(bursty, with_cv),
            diurnal_swing: if quiet == 0 {
                0.0
            } else {
                busy as f64 / quiet as f64
            },
            duration_log_mean: log_mean,
            duration_log_std: log_var.sqrt(),
            memory_mb_p50_p90_p99: [0.5, 0.9, 0.99].map(|q| quantile(&memory, q)),
        }
    }
}

impl fmt::Display for TraceStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |v: f64| format!("{:.1}%", v * 100.0);
        let trig = |name: &str| pct(self.triggers.get(name).copied().unwrap_or(0.0));
        let [m50, m90, m99] = self.memory_mb_p50_p90_p99;
        let rows: Vec<(String, String, &str)> = vec![
            ("days".into(), self.days.to_string(), ""),
            ("apps".into(), self.apps.to_string(), ""),
            ("functions".into(), self.functions.to_string(), ""),
            ("invocations".into(), self.invocations.to_string(), ""),
            (
                "apps invoked <= 1/hour".into(),
                pct(self.apps_at_most_hourly),
                "45%",
            ),
            (
                "apps invoked <= 1/minute".into(),
                pct(self.apps_at_most_per_minute),
                "81%",
            ),
            (
                "daily rate span (orders of magnitude)".into(),
                format!("{:.1}", self.rate_orders_of_magnitude),
                "~8",
            ),
            (
                "apps with one function".into(),
                pct(self.single_function_apps),
                "54%",
            ),
            ("trigger http".into(), trig("http"), "55%"),
            ("trigger queue".into(), trig("queue"), "15%"),
            ("trigger event".into(), trig("event"), "2%"),
            ("trigger timer".into(), trig("timer"), "16%"),
            (
                format!(
                    "bursty apps (IAT CV > 1, of {} with >= 10 inv.)",
                    self.apps_with_cv
                ),
                pct(self.bursty_apps),
                "~40%",
            ),
            (
                "diurnal swing (busiest/quietest hour)".into(),
                format!("{:.2}x", self.diurnal_swing),
                "~2x",
            ),
            (
                "duration ln(avg s): mean, std".into(),
                format!(
                    "{:.2}, {:.2}",
                    self.duration_log_mean, self.duration_log_std
                ),
                "-0.38, 2.36",
            ),
            (
                "app memory MB p50 / p90 / p99".into(),
                format!("{m50:.0} / {m90:.0} / {m99:.0}"),
                "139 / 262 / 640",
            ),
        ];
        writeln!(f, "{:<52} {:>16}  published", "characteristic", "measured")?;
        for (name, value, published) in rows {
            writeln!(f, "{name:<52} {value:>16}  {published}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_arrivals_have_zero_cv_and_bursts_have_high_cv() {
        let periodic: Vec<(u32, u32)> = (0..20).map(|i| (i * 10, 1)).collect();
        assert!(inter_arrival_cv(&periodic).expect("enough") < 1e-9);
        let mut bursts = Vec::new();
        for b in 0..5 {
            bursts.push((b * 1000, 10));
        }
        assert!(inter_arrival_cv(&bursts).expect("enough") > 1.0);
    }
}
