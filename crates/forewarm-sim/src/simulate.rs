//! Runs every policy on every selected application and folds the outcomes into a report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use forewarm_policy::{
    AppContext, AppPolicy, MINUTE_MS, Millis, Oracle, OracleInvocation, PolicySpec, size_class_for,
};
use forewarm_trace::Trace;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::app_class::AppClass;
use crate::cache_sim::SharedCacheSim;
use crate::config::{ConfigError, SimConfig};
use crate::engine::{AppOutcome, AppSim, SimParams};
use crate::replayed::{ReplayedCode, in_band, spread};
use crate::report::{AppRow, PolicyReport, Report, TraceSummary};
use crate::workload::Workload;

/// Memory used for applications without memory rows: the median of those with them.
pub(crate) fn default_memory_mb(trace: &Trace) -> f64 {
    let mut m: Vec<f64> = trace
        .apps
        .iter()
        .filter_map(|a| a.memory.map(|m| m.max_mb()))
        .collect();
    if m.is_empty() {
        return 256.0;
    }
    m.sort_by(f64::total_cmp);
    m[m.len() / 2]
}

/// Indices of the applications to simulate: those with invocations in the measured window
/// (from minute `measure_from` of the trace as read), filtered by popularity band, then
/// sampled, or spread as `forewarm replay` chooses them.
pub fn select_apps(trace: &Trace, measure_from: u64, config: &SimConfig) -> Vec<usize> {
    let counts: Vec<u64> = trace
        .apps
        .iter()
        .map(|app| {
            app.functions
                .iter()
                .flat_map(|f| f.counts.iter())
                .filter(|(m, _)| u64::from(*m) >= measure_from)
                .map(|(_, c)| u64::from(*c))
                .sum()
        })
        .collect();
    let mut chosen = in_band(&counts, config.app_band);
    if let Some(replay) = config.replay {
        chosen = spread(&chosen, replay.apps);
    } else if let Some(k) = config.sample.filter(|k| *k < chosen.len()) {
        let mut rng = SmallRng::seed_from_u64(config.seed);
        for i in 0..k {
            let j = rng.random_range(i..chosen.len());
            chosen.swap(i, j);
        }
        chosen.truncate(k);
    }
    chosen.sort_unstable();
    chosen
}

fn oracle_for(workload: &Workload, params: &SimParams) -> Oracle {
    let invocations: Vec<OracleInvocation> = workload
        .invocations
        .iter()
        .map(|i| OracleInvocation {
            arrival: i.arrival,
            busy_ms: i.duration_ms,
        })
        .collect();
    let mib = if params.profiles {
        let max = workload
            .invocations
            .iter()
            .map(|i| i.memory_mib)
            .fold(0.0, f64::max);
        size_class_for(max)
    } else {
        workload.app_memory_mib.ceil().max(1.0) as u32
    };
    Oracle::new(&invocations, mib)
}

/// What keeping `workload` warm cost before `until`: its memory times its peak concurrency.
/// `None` when it had no invocation then.
fn past_cost_mib(workload: &Workload, until: Millis) -> Option<f64> {
    let mut events: Vec<(Millis, i32)> = Vec::new();
    for inv in workload
        .invocations
        .iter()
        .take_while(|i| i.arrival < until)
    {
        events.push((inv.arrival, 1));
        events.push((inv.arrival + inv.duration_ms, -1));
    }
    events.sort_unstable();
    let (mut running, mut peak) = (0i32, 0i32);
    for (_, delta) in events {
        running += delta;
        peak = peak.max(running);
    }
    (peak > 0).then(|| workload.app_memory_mib * f64::from(peak))
}

/// The warm-up's costs of every application of `trace` (sorted), for the policies that size
/// their budget from the population (empty when none of `policies` does, or without warm-up).
pub(crate) fn past_costs(
    trace: &Trace,
    policies: &[PolicySpec],
    params: SimParams,
    draw: &(dyn Fn(usize) -> Workload + Sync),
) -> Vec<f64> {
    let mut costs: Vec<f64> = Vec::new();
    if params.measure_from > 0 && policies.iter().any(PolicySpec::uses_past_costs) {
        costs = (0..trace.apps.len())
            .into_par_iter()
            .filter_map(|index| past_cost_mib(&draw(index), params.measure_from))
            .collect();
        costs.sort_by(f64::total_cmp);
    }
    costs
}

/// Simulate `trace` (read from minute 0 to the end of the measured window) under `config`.
///
/// `progress(done, total)` is called after each application, from worker threads.
pub fn simulate(
    trace: &Trace,
    config: &SimConfig,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Report, ConfigError> {
    config.validate()?;
    let measure_from_minute = config.skip_minutes.min(trace.minutes);
    let measured_minutes = trace.minutes - measure_from_minute;
    let params = SimParams {
        measure_from: measure_from_minute * MINUTE_MS,
        end: trace.minutes * MINUTE_MS,
        cold_start_ms: config.cold_start_ms,
        profiles: config.profiles,
    };
    let apps = select_apps(trace, measure_from_minute, config);
    let default_memory = default_memory_mb(trace);
    let draw = |index: usize| {
        let app = &trace.apps[index];
        let drawn = Workload::draw(
            app,
            index as u64,
            config.seed,
            config.profiles,
            default_memory,
        );
        match config.replay {
            Some(replay) => drawn.replayed(&ReplayedCode::of(app), replay.speed),
            None => drawn,
        }
    };
    // Policies that size their budget from the population learn it from the warm-up only, and
    // from every app of the trace: the selection (--app-band, --sample) ranks apps by the
    // measured window, which a policy must not see.
    let past_costs = past_costs(trace, &config.policies, params, &draw);
    let total = apps.len() as u64;
    let done = AtomicU64::new(0);
    type PerApp = (Vec<AppOutcome>, Vec<f64>, Vec<String>);
    let mut per_app: Vec<PerApp> = apps
        .par_iter()
        .map(|&index| {
            let workload = draw(index);
            let context = AppContext {
                declared_mib: workload.app_memory_mib,
                past_costs_mib: &past_costs,
                deferred_fits: false,
            };
            let mut outcomes = Vec::with_capacity(config.policies.len());
            let mut seconds = Vec::with_capacity(config.policies.len());
            let mut reasons = Vec::with_capacity(config.policies.len());
            for spec in &config.policies {
                if matches!(spec, PolicySpec::FaasCache { .. }) {
                    // Run over all applications at once below.
                    outcomes.push(AppOutcome::default());
                    seconds.push(0.0);
                    reasons.push(String::new());
                    continue;
                }
                let started = Instant::now();
                let mut policy: Box<dyn AppPolicy> = match spec.build(context) {
                    Some(p) => p,
                    None => Box::new(oracle_for(&workload, &params)),
                };
                outcomes.push(AppSim::run(policy.as_mut(), &workload, params));
                seconds.push(started.elapsed().as_secs_f64());
                reasons.push(policy.assigned());
            }
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            (outcomes, seconds, reasons)
        })
        .collect();
    // Policies whose memory is shared across applications: one clock over all of them.
    for (k, spec) in config.policies.iter().enumerate() {
        if let PolicySpec::FaasCache { gib, frequency } = spec {
            let workloads: Vec<Workload> = apps.par_iter().map(|&index| draw(index)).collect();
            let started = Instant::now();
            let budget_mib = f64::from(*gib) * 1024.0;
            let outcomes = SharedCacheSim::run(&workloads, budget_mib, *frequency, params);
            let seconds = started.elapsed().as_secs_f64() / outcomes.len().max(1) as f64;
            for ((o, s, _), outcome) in per_app.iter_mut().zip(outcomes) {
                o[k] = outcome;
                s[k] = seconds;
            }
        }
    }
    // Classes by measured invocations (the same under every policy) and timer-only apps.
    let classes: Vec<AppClass> = apps
        .iter()
        .zip(&per_app)
        .map(|(&index, (o, _, _))| {
            let app = &trace.apps[index];
            let timer_only = app.functions.iter().all(|f| f.trigger == "timer");
            AppClass::of(o.first().map_or(0, |o| o.invocations), timer_only)
        })
        .collect();
    let policies = config
        .policies
        .iter()
        .enumerate()
        .map(|(k, spec): (usize, &PolicySpec)| {
            let outcomes: Vec<AppOutcome> = per_app.iter().map(|(o, _, _)| o[k]).collect();
            let seconds: f64 = per_app.iter().map(|(_, s, _)| s[k]).sum();
            let classified: Vec<(AppClass, bool)> = classes
                .iter()
                .zip(&per_app)
                .map(|(c, (_, _, r))| (*c, r[k].starts_with("cold")))
                .collect();
            PolicyReport::from_classified(spec.to_string(), &outcomes, &classified, seconds)
        })
        .collect::<Vec<_>>();
    let mut rows = Vec::new();
    if config.per_app {
        for ((&index, (outcomes, _, reasons)), class) in apps.iter().zip(&per_app).zip(&classes) {
            let app = &trace.apps[index];
            for ((spec, outcome), reason) in config.policies.iter().zip(outcomes).zip(reasons) {
                rows.push(AppRow {
                    index,
                    owner: app.owner.clone(),
                    app: app.app.clone(),
                    class: *class,
                    policy: spec.to_string(),
                    outcome: *outcome,
                    reason: reason.clone(),
                });
            }
        }
    }
    Ok(Report {
        trace: TraceSummary {
            dir: trace.dir.display().to_string(),
            apps: apps.len(),
            invocations: policies.first().map_or(0, |p| p.invocations),
            minutes: measured_minutes,
        },
        policies,
        apps: rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Invocation;

    fn workload(invocations: &[(Millis, Millis)]) -> Workload {
        Workload {
            invocations: invocations
                .iter()
                .map(|&(arrival, duration_ms)| Invocation {
                    arrival,
                    duration_ms,
                    memory_mib: 100.0,
                })
                .collect(),
            app_memory_mib: 100.0,
        }
    }

    #[test]
    fn past_cost_sees_only_the_warm_up() {
        // Two overlapping invocations before the cut, ten after: only the past counts.
        let mut inv = vec![(0, 10_000), (1_000, 10_000)];
        inv.extend((0..10).map(|i| (60_000 + i, 10_000)));
        assert_eq!(past_cost_mib(&workload(&inv), 60_000), Some(200.0));
        assert_eq!(past_cost_mib(&workload(&inv), 0), None);
        let later_only = workload(&[(70_000, 1)]);
        assert_eq!(past_cost_mib(&later_only, 60_000), None);
    }
}
