//! Writes a synthetic trace in the Azure Functions 2019 layout with the published
//! characteristics of the real one (Shahrad et al., ATC'20):
//!
//! - daily invocations per application spanning ~8 orders of magnitude, 45% of applications
//!   invoked at most once an hour and 81% at most once a minute;
//! - 54% of applications with a single function;
//! - triggers http / queue / event / timer ≈ 55 / 15 / 2 / 16% of functions (the rest
//!   orchestration, storage, others); timers fire periodically;
//! - about 40% of applications bursty (inter-arrival CV > 1), the others steadier than Poisson;
//! - a diurnal swing of about 2x between the busiest and the quietest hour;
//! - average function durations LogNormal(−0.38, 2.36) seconds;
//! - average application memory Burr(c = 11.652, k = 0.221, λ = 107.083) MB.

use std::f64::consts::PI;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, Gamma, LogNormal, Normal};

use crate::error::TraceError;
use crate::model::DAY_MINUTES;
use crate::reader::{
    DURATION_HEADER, DURATIONS, INVOCATIONS, MEMORY, MEMORY_HEADER, day_path, invocation_header,
};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenConfig {
    /// Applications.
    pub apps: u32,
    /// Days (files d01..dNN).
    pub days: u32,
    /// Seed: the same settings and seed write the same bytes.
    pub seed: u64,
}

/// Piecewise-linear quantile function of log10(daily invocations per application).
const DAILY_RATE_LOG10: [(f64, f64); 5] = [
    (0.0, -1.5),
    (0.45, 1.380_211_2), // log10(24): 45% at most once an hour
    (0.81, 3.158_362_5), // log10(1440): 81% at most once a minute
    (0.99, 5.0),
    (1.0, 6.0),
];

const TRIGGERS: [(&str, f64); 7] = [
    ("http", 0.55),
    ("queue", 0.15),
    ("event", 0.02),
    ("timer", 0.16),
    ("orchestration", 0.07),
    ("storage", 0.03),
    ("others", 0.02),
];

/// Timer periods in minutes, as cron schedules are usually written.
const TIMER_PERIODS: [u32; 13] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440];

/// Share of all applications that are bursty.
const BURSTY_SHARE: f64 = 0.40;
/// Diurnal amplitude: (1 + A) / (1 − A) = 2.
const DIURNAL_AMPLITUDE: f64 = 1.0 / 3.0;
/// Standard normal quantiles of the duration percentile columns 0, 1, 25, 50, 75, 99, 100.
const DURATION_Z: [f64; 7] = [-3.0, -2.326, -0.674, 0.0, 0.674, 2.326, 3.0];
/// Standard normal quantiles of the memory percentile columns 1, 5, 25, 50, 75, 95, 99, 100.
const MEMORY_Z: [f64; 8] = [-2.326, -1.645, -0.674, 0.0, 0.674, 1.645, 2.326, 3.0];

struct GenFunction {
    name: String,
    trigger: &'static str,
    /// (absolute minute, count), in order.
    counts: Vec<(u32, u32)>,
    /// Percentiles 0..100 of the duration in ms.
    duration_ms: [f64; 7],
}

struct GenApp {
    owner: String,
    app: String,
    functions: Vec<GenFunction>,
    memory_mb: [f64; 8],
    average_mb: f64,
}

fn hash(rng: &mut SmallRng) -> String {
    (0..4)
        .map(|_| format!("{:016x}", rng.random::<u64>()))
        .collect()
}

fn daily_rate(u: f64) -> f64 {
    let i = DAILY_RATE_LOG10
        .iter()
        .position(|(q, _)| *q >= u)
        .unwrap_or(DAILY_RATE_LOG10.len() - 1)
        .max(1);
    let ((q0, v0), (q1, v1)) = (DAILY_RATE_LOG10[i - 1], DAILY_RATE_LOG10[i]);
    10f64.powf(v0 + (u - q0) / (q1 - q0) * (v1 - v0))
}

fn pick_trigger(rng: &mut SmallRng) -> &'static str {
    let mut u = rng.random::<f64>();
    for (name, share) in TRIGGERS {
        if u < share {
            return name;
        }
        u -= share;
    }
    "others"
}

/// Burr XII by inversion.
fn burr(rng: &mut SmallRng) -> f64 {
    let (c, k, lambda) = (11.652, 0.221, 107.083);
    let u: f64 = rng.random_range(0.0..0.999_9);
    lambda * ((1.0 - u).powf(-1.0 / k) - 1.0).powf(1.0 / c)
}

struct Arrivals {
    end: f64,
    diurnal_phase: f64,
}

impl Arrivals {
    fn diurnal(&self, t: f64) -> f64 {
        1.0 + DIURNAL_AMPLITUDE * (2.0 * PI * (t / DAY_MINUTES as f64 - self.diurnal_phase)).sin()
    }

    /// Steady load: a gamma(2) renewal process (CV ≈ 0.7) following the diurnal rate.
    fn steady(&self, rng: &mut SmallRng, per_minute: f64, out: &mut Vec<f64>) {
        let gap = |rng: &mut SmallRng, t: f64| {
            let rate = per_minute * self.diurnal(t);
            Gamma::new(2.0, 1.0 / (2.0 * rate)).map_or(f64::INFINITY, |g| g.sample(rng))
        };
        let mut t = -rng.random::<f64>() * gap(rng, 0.0);
        loop {
            t += gap(rng, t.max(0.0));
            if t >= self.end {
                break;
            }
            if t >= 0.0 {
                out.push(t);
            }
        }
    }

    /// Bursty load: on/off periods, Poisson within a burst at ten times the mean rate.
    fn bursty(&self, rng: &mut SmallRng, per_minute: f64, out: &mut Vec<f64>) {
        let on_share = 0.1;
        let on_rate = per_minute / on_share;
        let mean_on = (4.0 / on_rate).max(2.0);
        let mean_off = mean_on * (1.0 - on_share) / on_share;
        let (Ok(on_len), Ok(off_len)) = (Exp::new(1.0 / mean_on), Exp::new(1.0 / mean_off)) else {
            return;
        };
        let mut on = rng.random::<f64>() < on_share;
        let mut t = 0.0;
        let mut switch = if on {
            on_len.sample(rng)
        } else {
            off_len.sample(rng)
        };
        while t < self.end {
            if !on {
                t = switch;
                on = true;
                switch = t + on_len.sample(rng);
                continue;
            }
            let rate = on_rate * self.diurnal(t);
            let next = t + Exp::new(rate).map_or(f64::INFINITY, |e| e.sample(rng));
            if next >= switch {
                t = switch;
                on = false;
                switch = t + off_len.sample(rng);
            } else {
                t = next;
                if t < self.end {
                    out.push(t);
                }
            }
        }
    }
}

fn to_counts(times: &mut [f64]) -> Vec<(u32, u32)> {
    times.sort_by(f64::total_cmp);
    let mut counts: Vec<(u32, u32)> = Vec::new();
    for t in times.iter() {
        let m = *t as u32;
        match counts.last_mut() {
            Some((lm, c)) if *lm == m => *c += 1,
            _ => counts.push((m, 1)),
        }
    }
    counts
}

fn gen_app(rng: &mut SmallRng, days: u32) -> GenApp {
    let per_day = daily_rate(rng.random());
    let n_functions = if rng.random::<f64>() < 0.54 {
        1
    } else {
        (2 + (rng.random::<f64>().ln() / 0.6f64.ln()) as usize).min(30)
    };
    let triggers: Vec<&'static str> = (0..n_functions).map(|_| pick_trigger(rng)).collect();
    let timers_only = triggers.iter().all(|t| *t == "timer");
    // Timer-only applications are periodic, so the bursty share is drawn among the others.
    let bursty = !timers_only && rng.random::<f64>() < BURSTY_SHARE / 0.91;
    let weight = Normal::<f64>::new(0.0, 1.5).map_or(Vec::new(), |n| {
        (0..n_functions)
            .map(|_| n.sample(rng).exp())
            .collect::<Vec<f64>>()
    });
    let total_weight: f64 = weight.iter().sum();
    let arrivals = Arrivals {
        end: f64::from(days) * DAY_MINUTES as f64,
        diurnal_phase: 0.3 + rng.random_range(-0.05..0.05),
    };
    let average_lognormal = LogNormal::<f64>::new(-0.38, 2.36).ok();
    let mut functions = Vec::with_capacity(n_functions);
    for (i, trigger) in triggers.into_iter().enumerate() {
        let per_minute = per_day * weight[i] / total_weight / DAY_MINUTES as f64;
        let counts = if trigger == "timer" {
            let wanted = (1.0 / per_minute.max(1e-9)).ln();
            let period = TIMER_PERIODS
                .iter()
                .copied()
                .min_by(|a, b| {
                    (f64::from(*a).ln() - wanted)
                        .abs()
                        .total_cmp(&(f64::from(*b).ln() - wanted).abs())
                })
                .unwrap_or(60);
            let phase = rng.random_range(0..period);
            (0..)
                .map(|k| phase + k * period)
                .take_while(|m| f64::from(*m) < arrivals.end)
                .map(|m| (m, 1))
                .collect()
        } else {
            let mut times = Vec::new();
            if bursty {
                arrivals.bursty(rng, per_minute, &mut times);
            } else {
                arrivals.steady(rng, per_minute, &mut times);
            }
            to_counts(&mut times)
        };
        let average_s = average_lognormal
            .map_or(1.0, |d| d.sample(rng))
            .clamp(0.001, 600.0);
        let spread = 0.6;
        let mu = (average_s * 1000.0).ln() - spread * spread / 2.0;
        functions.push(GenFunction {
            name: hash(rng),
            trigger,
            counts,
            duration_ms: DURATION_Z.map(|z| (mu + spread * z).exp()),
        });
    }
    let average_mb = burr(rng).clamp(1.0, 8192.0);
    GenApp {
        owner: hash(rng),
        app: hash(rng),
        functions,
        memory_mb: MEMORY_Z.map(|z| average_mb * (0.2 * z).exp()),
        average_mb,
    }
}

/// Write `config.days` days of `config.apps` applications into `out` (created if missing).
pub fn generate(config: &GenConfig, out: &Path) -> Result<(), TraceError> {
    if config.apps == 0 || config.days == 0 || config.days > 99 {
        return Err(TraceError::InvalidConfig(format!(
            "need at least one app and 1..=99 days, got {} apps and {} days",
            config.apps, config.days
        )));
    }
    std::fs::create_dir_all(out).map_err(|source| TraceError::Io {
        path: out.to_owned(),
        source,
    })?;
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let apps: Vec<GenApp> = (0..config.apps)
        .map(|_| gen_app(&mut rng, config.days))
        .collect();
    for day in 1..=config.days {
        write_day(out, day, &apps)?;
    }
    Ok(())
}

fn write_day(out: &Path, day: u32, apps: &[GenApp]) -> Result<(), TraceError> {
    let first = (day - 1) * DAY_MINUTES as u32;
    let last = first + DAY_MINUTES as u32;
    let create = |kind: &str| {
        let path = day_path(out, kind, day);
        File::create(&path)
            .map(|f| BufWriter::with_capacity(1 << 20, f))
            .map_err(|source| TraceError::Io { path, source })
    };
    let mut inv = create(INVOCATIONS)?;
    let mut dur = create(DURATIONS)?;
    let mut mem = create(MEMORY)?;
    let result = (|| -> std::io::Result<()> {
        writeln!(inv, "{}", invocation_header().join(","))?;
        writeln!(dur, "{}", DURATION_HEADER.join(","))?;
        writeln!(mem, "{}", MEMORY_HEADER.join(","))?;
        let mut row = vec![0u32; DAY_MINUTES as usize];
        for app in apps {
            let mut app_count = 0u64;
            for f in &app.functions {
                row.iter_mut().for_each(|c| *c = 0);
                let from = f.counts.partition_point(|(m, _)| *m < first);
                let mut count = 0u64;
                for (m, c) in f.counts[from..].iter().take_while(|(m, _)| *m < last) {
                    row[(m - first) as usize] = *c;
                    count += u64::from(*c);
                }
                app_count += count;
                write!(inv, "{},{},{},{}", app.owner, app.app, f.name, f.trigger)?;
                for c in &row {
                    write!(inv, ",{c}")?;
                }
                writeln!(inv)?;
                let p = &f.duration_ms;
                let average = p[3] * (0.6f64 * 0.6 / 2.0).exp();
                write!(
                    dur,
                    "{},{},{},{average:.3},{count},{:.3},{:.3}",
                    app.owner, app.app, f.name, p[0], p[6]
                )?;
                for v in p {
                    write!(dur, ",{v:.3}")?;
                }
                writeln!(dur)?;
            }
            write!(
                mem,
                "{},{},{},{:.3}",
                app.owner,
                app.app,
                app_count.max(1),
                app.average_mb
            )?;
            for v in &app.memory_mb {
                write!(mem, ",{v:.3}")?;
            }
            writeln!(mem)?;
        }
        inv.flush()?;
        dur.flush()?;
        mem.flush()
    })();
    // The three files of a day are written together; name the directory.
    result.map_err(|source| TraceError::Io {
        path: out.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_quantiles_hit_the_published_shares() {
        assert!((daily_rate(0.45) - 24.0).abs() < 0.01);
        assert!((daily_rate(0.81) - 1440.0).abs() < 0.1);
        assert!(daily_rate(0.0) < 0.04 && daily_rate(1.0) > 999_999.0);
    }

    #[test]
    fn burr_median_matches_the_distribution() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut v: Vec<f64> = (0..20_001).map(|_| burr(&mut rng)).collect();
        v.sort_by(f64::total_cmp);
        // Median of Burr(11.652, 0.221, 107.083) = λ (2^(1/k) − 1)^(1/c) ≈ 139.4 MB.
        assert!((v[10_000] - 139.4).abs() < 5.0, "{}", v[10_000]);
    }
}
