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
use rand_distr::{Distribution, Exp, Gamma, LogNormal, Normal, Pareto, Poisson};

use crate::error::TraceError;
use crate::model::DAY_MINUTES;
use crate::reader::{
    DURATION_HEADER, DURATIONS, INVOCATIONS, MEMORY, MEMORY_HEADER, day_path, invocation_header,
};
use crate::variant::{GapLaw, Variant};

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

struct Arrivals<'a> {
    end: f64,
    diurnal_phase: f64,
    variant: &'a Variant,
}

impl Arrivals<'_> {
    /// Rate factor at minute `t`: the diurnal cycle times the weekly one.
    fn diurnal(&self, t: f64) -> f64 {
        let day = t / DAY_MINUTES as f64;
        let daily =
            1.0 + self.variant.diurnal_amplitude() * (2.0 * PI * (day - self.diurnal_phase)).sin();
        daily * self.variant.weekly(day.max(0.0) as u64)
    }

    /// Steady load: a renewal process with the variant's gap law (gamma(2), CV ≈ 0.7, in
    /// `base`) following the diurnal rate.
    fn steady(&self, rng: &mut SmallRng, per_minute: f64, out: &mut Vec<f64>) {
        let law = self.variant.gaps;
        let gap = |rng: &mut SmallRng, t: f64| {
            let rate = per_minute * self.diurnal(t);
            let mean = 1.0 / rate;
            let g = match law {
                GapLaw::Gamma2 => Gamma::new(2.0, 1.0 / (2.0 * rate))
                    .map(|g| g.sample(rng))
                    .ok(),
                GapLaw::Exponential => Exp::new(1.0 / mean).map(|e| e.sample(rng)).ok(),
                GapLaw::LogNormal { sigma } => {
                    LogNormal::new(mean.ln() - sigma * sigma / 2.0, sigma)
                        .map(|l| l.sample(rng))
                        .ok()
                }
                GapLaw::Pareto { alpha } => Pareto::new(mean * (alpha - 1.0) / alpha, alpha)
                    .map(|p| p.sample(rng))
                    .ok(),
            };
            g.unwrap_or(f64::INFINITY)
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
        let on_share = self.variant.on_share;
        let on_rate = per_minute / on_share;
        let mean_on = (4.0 / on_rate).max(2.0);
        let mean_off = mean_on * (1.0 - on_share) / on_share;
        let (Ok(on_len), Ok(exp_off)) = (Exp::new(1.0 / mean_on), Exp::new(1.0 / mean_off)) else {
            return;
        };
        let pareto_off = self
            .variant
            .off_pareto
            .and_then(|alpha| Pareto::new(mean_off * (alpha - 1.0) / alpha, alpha).ok());
        let off_len = |rng: &mut SmallRng| match &pareto_off {
            Some(p) => p.sample(rng),
            None => exp_off.sample(rng),
        };
        let mut on = rng.random::<f64>() < on_share;
        let mut t = 0.0;
        let mut switch = if on { on_len.sample(rng) } else { off_len(rng) };
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
                switch = t + off_len(rng);
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

/// How an application's behaviour changes mid-trace (variant knob `change_share`).
#[derive(Clone, Copy)]
enum Change {
    /// The rate is multiplied by this factor.
    Rate(f64),
    /// Steady becomes bursty or the reverse.
    Swap,
}

fn timer_counts(rng: &mut SmallRng, period: u32, variant: &Variant, end: f64) -> Vec<(u32, u32)> {
    let phase = rng.random_range(0..period);
    if variant.timer_jitter == 0.0 && variant.timer_drift == 0.0 {
        return (0..)
            .map(|k| phase + k * period)
            .take_while(|m| f64::from(*m) < end)
            .map(|m| (m, 1))
            .collect();
    }
    let p = f64::from(period);
    let jitter = Normal::new(0.0, variant.timer_jitter * p).ok();
    let mut times = Vec::new();
    let mut nominal = f64::from(phase);
    while nominal < end {
        let noise = jitter.map_or(0.0, |n| n.sample(rng));
        let t = nominal + noise;
        if (0.0..end).contains(&t) {
            times.push(t);
        }
        // The period drifts: it grows by `timer_drift` of itself per day.
        nominal += p * (1.0 + variant.timer_drift * nominal / DAY_MINUTES as f64);
    }
    to_counts(&mut times)
}

/// A rare function: `expected` clusters a day (Poisson), each of 1–3 invocations within five
/// minutes at a uniform time.
fn rare_times(rng: &mut SmallRng, expected: f64, end: f64, out: &mut Vec<f64>) {
    let days = (end / DAY_MINUTES as f64).ceil() as u32;
    let Ok(clusters) = Poisson::new(expected.max(1e-9)) else {
        return;
    };
    for day in 0..days {
        let start = f64::from(day) * DAY_MINUTES as f64;
        let n = clusters.sample(rng) as u32;
        for _ in 0..n {
            let at = start + rng.random_range(0.0..DAY_MINUTES as f64);
            for _ in 0..rng.random_range(1..=3) {
                let t = at + rng.random_range(0.0..5.0);
                if t < end {
                    out.push(t);
                }
            }
        }
    }
}

fn gen_app(rng: &mut SmallRng, days: u32, variant: &Variant) -> GenApp {
    let per_day = daily_rate(rng.random());
    let n_functions = if rng.random::<f64>() < 0.54 {
        1
    } else {
        (2 + (rng.random::<f64>().ln() / 0.6f64.ln()) as usize).min(30)
    };
    let triggers: Vec<&'static str> = (0..n_functions).map(|_| pick_trigger(rng)).collect();
    let timers_only = triggers.iter().all(|t| *t == "timer");
    // Timer-only applications are periodic, so the bursty share is drawn among the others.
    let bursty = !timers_only && rng.random::<f64>() < variant.bursty_share;
    let weight = Normal::<f64>::new(0.0, 1.5).map_or(Vec::new(), |n| {
        (0..n_functions)
            .map(|_| n.sample(rng).exp())
            .collect::<Vec<f64>>()
    });
    let total_weight: f64 = weight.iter().sum();
    let spread = variant.phase_spread;
    let arrivals = Arrivals {
        end: f64::from(days) * DAY_MINUTES as f64,
        diurnal_phase: 0.3 + rng.random_range(-spread..spread),
        variant,
    };
    // Knobs beyond `base` draw only when set, so `base` keeps its bytes.
    let draw = |rng: &mut SmallRng, share: f64| share > 0.0 && rng.random::<f64>() < share;
    let rare = !timers_only && draw(rng, variant.rare_share);
    let change = (!timers_only && !rare && draw(rng, variant.change_share)).then(|| {
        let at = rng.random_range(0.2..0.8) * arrivals.end;
        let kind = match rng.random_range(0..3) {
            // The busiest apps slow down rather than reach 10^7 a day.
            0 if per_day < 1e5 => Change::Rate(10.0),
            0 => Change::Rate(0.1),
            1 => Change::Rate(0.1),
            _ => Change::Swap,
        };
        (at, kind)
    });
    let appear = draw(rng, variant.appear_share).then(|| rng.random_range(0.1..0.7) * arrivals.end);
    let average_lognormal = LogNormal::<f64>::new(-0.38, 2.36).ok();
    let mut functions = Vec::with_capacity(n_functions);
    for (i, trigger) in triggers.into_iter().enumerate() {
        let share = weight[i] / total_weight;
        let per_minute = per_day * share / DAY_MINUTES as f64;
        let mut counts = if trigger == "timer" {
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
            timer_counts(rng, period, variant, arrivals.end)
        } else {
            let mut times = Vec::new();
            let process = |rng: &mut SmallRng, bursty: bool, rate: f64, out: &mut Vec<f64>| {
                if bursty {
                    arrivals.bursty(rng, rate, out);
                } else {
                    arrivals.steady(rng, rate, out);
                }
            };
            if rare {
                // At least one cluster a day for the app, spread over its functions.
                let expected = 2.0 * share + if i == 0 { 1.0 } else { 0.0 };
                rare_times(rng, expected, arrivals.end, &mut times);
            } else {
                process(rng, bursty, per_minute, &mut times);
            }
            if let Some((at, kind)) = change {
                let mut after = Vec::new();
                match kind {
                    Change::Rate(k) => process(rng, bursty, per_minute * k, &mut after),
                    Change::Swap => process(rng, !bursty, per_minute, &mut after),
                }
                times.retain(|t| *t < at);
                times.extend(after.into_iter().filter(|t| *t >= at));
            }
            to_counts(&mut times)
        };
        if let Some(at) = appear {
            counts.retain(|(m, _)| f64::from(*m) >= at);
        }
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

/// Write `config.days` days of `config.apps` applications into `out` (created if missing), in
/// the `base` variant.
pub fn generate(config: &GenConfig, out: &Path) -> Result<(), TraceError> {
    generate_variant(config, &Variant::BASE, out)
}

/// Write `config.days` days of `config.apps` applications of workload `variant` into `out`.
pub fn generate_variant(
    config: &GenConfig,
    variant: &Variant,
    out: &Path,
) -> Result<(), TraceError> {
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
        .map(|_| gen_app(&mut rng, config.days, variant))
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

    /// Inter-arrival CV (minute resolution) of each generated single-function, non-timer app
    /// with 30..300 invocations a day, over `days`.
    fn app_cvs(variant: &str, apps: u32, days: u32) -> Vec<f64> {
        let variant: Variant = variant.parse().expect("known variant");
        let mut rng = SmallRng::seed_from_u64(7);
        let mut cvs = Vec::new();
        for _ in 0..apps {
            let app = gen_app(&mut rng, days, &variant);
            let [f] = app.functions.as_slice() else {
                continue;
            };
            let n: u32 = f.counts.iter().map(|(_, c)| c).sum();
            if f.trigger == "timer" || !(30 * days..300 * days).contains(&n) {
                continue;
            }
            let mut gaps = Vec::new();
            let mut last = None;
            for (m, c) in &f.counts {
                if let Some(l) = last {
                    gaps.push(f64::from(m - l));
                }
                gaps.extend(std::iter::repeat_n(0.0, *c as usize - 1));
                last = Some(*m);
            }
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
            cvs.push(var.sqrt() / mean);
        }
        cvs.sort_by(f64::total_cmp);
        cvs
    }

    fn median(v: &[f64]) -> f64 {
        v[v.len() / 2]
    }

    #[test]
    fn gap_laws_give_their_variability() {
        // Steady apps only dominate below the bursty share's median, so compare the 30th
        // percentile: gamma(2) ≈ 0.7 < exponential ≈ 1 < log-normal(σ 1.5) and Pareto(1.5).
        let q30 = |v: &[f64]| v[v.len() * 3 / 10];
        let base = q30(&app_cvs("base", 2000, 2));
        let exp = q30(&app_cvs("exponential", 2000, 2));
        let logn = q30(&app_cvs("lognormal", 2000, 2));
        let pareto = q30(&app_cvs("pareto", 2000, 2));
        assert!((0.55..0.85).contains(&base), "base {base}");
        assert!((0.85..1.15).contains(&exp), "exponential {exp}");
        assert!(logn > 1.5, "lognormal {logn}");
        assert!(pareto > 1.2, "pareto {pareto}");
        // On/off bursts are far more variable than any renewal law above.
        let onoff = median(&app_cvs("onoff", 2000, 2));
        assert!(onoff > 2.0, "onoff {onoff}");
    }

    #[test]
    fn timer_jitter_and_drift_move_the_firings() {
        let gaps = |variant: &str| {
            let v: Variant = variant.parse().expect("known");
            let mut rng = SmallRng::seed_from_u64(3);
            let counts = timer_counts(&mut rng, 60, &v, 2.0 * DAY_MINUTES as f64);
            counts
                .windows(2)
                .map(|w| w[1].0 - w[0].0)
                .collect::<Vec<u32>>()
        };
        let base = gaps("base");
        assert!(base.iter().all(|g| *g == 60), "{base:?}");
        let timers = gaps("timers");
        assert!(timers.iter().any(|g| *g != 60), "jitter: {timers:?}");
        // Drift of 10% a day: the second day's gaps are ~10% longer than the first's.
        let half = timers.len() / 2;
        let early: u32 = timers[..half].iter().sum::<u32>() / half as u32;
        let late: u32 = timers[half..].iter().sum::<u32>() / (timers.len() - half) as u32;
        assert!(late > early + 3, "early {early}, late {late}");
    }

    #[test]
    fn rare_shifts_and_cycles_do_what_they_say() {
        let gen_all = |variant: &str| {
            let v: Variant = variant.parse().expect("known");
            let mut rng = SmallRng::seed_from_u64(5);
            (0..2000)
                .map(|_| gen_app(&mut rng, 1, &v))
                .collect::<Vec<GenApp>>()
        };
        let total = |a: &GenApp| -> u32 {
            a.functions
                .iter()
                .flat_map(|f| f.counts.iter().map(|(_, c)| c))
                .sum()
        };
        let few = |apps: &[GenApp]| apps.iter().filter(|a| (1..=10).contains(&total(a))).count();
        let (base, rare) = (gen_all("base"), gen_all("rare"));
        assert!(
            few(&rare) > few(&base) + 200,
            "{} vs {}",
            few(&rare),
            few(&base)
        );
        // Apps that appear late: no invocation in the first 10% of the day.
        let late = |apps: &[GenApp]| {
            apps.iter()
                .filter(|a| {
                    let first = a
                        .functions
                        .iter()
                        .filter_map(|f| f.counts.first())
                        .map(|c| c.0)
                        .min();
                    total(a) > 100 && first.is_some_and(|m| m > 144)
                })
                .count()
        };
        let shifts = gen_all("shifts");
        assert!(
            late(&shifts) > late(&base) + 50,
            "{} vs {}",
            late(&shifts),
            late(&base)
        );
        // Diurnal swing per busy app (busiest over quietest hour); apps' phases differ more in
        // `cycles`, so the summed load would hide it.
        let swings = |apps: &[GenApp]| {
            let mut v: Vec<f64> = apps
                .iter()
                .filter(|a| total(a) > 20_000)
                .map(|a| {
                    let mut hours = [0f64; 24];
                    for f in &a.functions {
                        for (m, c) in &f.counts {
                            hours[(*m / 60) as usize % 24] += f64::from(*c);
                        }
                    }
                    let max = hours.iter().copied().fold(0.0, f64::max);
                    let min = hours.iter().copied().fold(f64::INFINITY, f64::min);
                    max / min.max(1.0)
                })
                .collect();
            v.sort_by(f64::total_cmp);
            median(&v)
        };
        let (b, c) = (swings(&base), swings(&gen_all("cycles")));
        assert!(c > b + 1.0, "base {b}, cycles {c}");
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
