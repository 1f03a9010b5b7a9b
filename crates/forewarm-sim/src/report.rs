//! The result of a simulation run: per policy totals and per-application percentiles.

use std::fmt;

use serde::Serialize;

use crate::engine::AppOutcome;

/// What was simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    /// The trace directory.
    pub dir: String,
    /// Applications simulated.
    pub apps: usize,
    /// Invocations in the measured window over those applications.
    pub invocations: u64,
    /// Measured minutes.
    pub minutes: u64,
}

/// Percentiles over applications of their cold-start percentage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AppColdStartPct {
    /// Median application.
    pub p50: f64,
    /// 75th percentile: the paper's headline number.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One policy's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    /// Policy name.
    pub name: String,
    /// Invocations in the measured window.
    pub invocations: u64,
    /// Of which cold.
    pub cold_starts: u64,
    /// Cold starts over invocations, %.
    pub cold_start_pct: f64,
    /// Per-application cold-start % percentiles (applications with ≥ 1 invocation).
    pub app_cold_start_pct: AppColdStartPct,
    /// Idle container memory-time, MiB·s.
    pub wasted_memory_mib_s: f64,
    /// Containers spawned by prediction.
    pub prewarms: u64,
    /// Invocations no warm container was big enough for.
    pub misfits: u64,
    /// CPU seconds spent simulating this policy (summed over threads).
    pub sim_seconds: f64,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was simulated.
    pub trace: TraceSummary,
    /// One entry per policy, in the order asked.
    pub policies: Vec<PolicyReport>,
}

/// Nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    forewarm_policy::nearest_rank(sorted, q).unwrap_or(0.0)
}

impl PolicyReport {
    /// Fold the outcomes of every application under one policy.
    pub fn from_outcomes(name: String, outcomes: &[AppOutcome], sim_seconds: f64) -> Self {
        let mut total = AppOutcome::default();
        let mut per_app: Vec<f64> = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            total.invocations += o.invocations;
            total.cold_starts += o.cold_starts;
            total.wasted_mib_ms += o.wasted_mib_ms;
            total.prewarms += o.prewarms;
            total.misfits += o.misfits;
            per_app.extend(o.cold_start_pct());
        }
        per_app.sort_by(f64::total_cmp);
        Self {
            name,
            invocations: total.invocations,
            cold_starts: total.cold_starts,
            cold_start_pct: total.cold_start_pct().unwrap_or(0.0),
            app_cold_start_pct: AppColdStartPct {
                p50: percentile(&per_app, 0.50),
                p75: percentile(&per_app, 0.75),
                p90: percentile(&per_app, 0.90),
                p99: percentile(&per_app, 0.99),
            },
            wasted_memory_mib_s: total.wasted_mib_ms / 1000.0,
            prewarms: total.prewarms,
            misfits: total.misfits,
            sim_seconds,
        }
    }
}

impl Report {
    /// keepalive-10m's wasted memory-time, the unit waste is normalised to; `None` when it did
    /// not run or wasted nothing.
    pub fn waste_baseline(&self) -> Option<f64> {
        self.policies
            .iter()
            .find(|p| p.name == "keepalive-10m")
            .map(|p| p.wasted_memory_mib_s)
            .filter(|w| *w > 0.0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.trace;
        writeln!(
            f,
            "trace {}: {} apps, {} invocations, {} minutes measured",
            t.dir, t.apps, t.invocations, t.minutes
        )?;
        let baseline = self.waste_baseline();
        writeln!(
            f,
            "{:<22} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>14} {:>9} {:>9} {:>8} {:>8}",
            "policy",
            "cold",
            "cold%",
            "app p50",
            "app p75",
            "app p90",
            "app p99",
            "waste MiB·s",
            "waste/ka10",
            "prewarms",
            "misfits",
            "cpu s"
        )?;
        for p in &self.policies {
            let ratio = baseline.map_or("-".to_owned(), |b| {
                format!("{:.3}", p.wasted_memory_mib_s / b)
            });
            let a = p.app_cold_start_pct;
            writeln!(
                f,
                "{:<22} {:>8} {:>7.3} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>14.4e} {:>9} {:>9} {:>8} {:>8.2}",
                p.name,
                p.cold_starts,
                p.cold_start_pct,
                a.p50,
                a.p75,
                a.p90,
                a.p99,
                p.wasted_memory_mib_s,
                ratio,
                p.prewarms,
                p.misfits,
                p.sim_seconds
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.75), 75.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[5.0], 0.5), 5.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn apps_without_invocations_do_not_count() {
        let a = AppOutcome {
            invocations: 10,
            cold_starts: 5,
            ..AppOutcome::default()
        };
        let r = PolicyReport::from_outcomes("x".into(), &[a, AppOutcome::default()], 0.0);
        assert_eq!(r.app_cold_start_pct.p50, 50.0);
        assert_eq!(r.cold_start_pct, 50.0);
    }
}
