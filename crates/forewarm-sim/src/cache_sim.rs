//! The engine for policies that share memory across applications (FaasCache): one virtual
//! clock over every selected application, where [`crate::engine::AppSim`] gives each its own.
//!
//! Same rules as the per-application engine: one invocation per container, a cold start
//! occupies the new container for the cold-start time before the invocation runs, events at
//! one millisecond run completions first, then arrivals (across applications, in the order of
//! the applications' indices), and idle memory-time is clipped to the measured window.
//! Containers hold the application's declared memory (`--profiles` does not apply here).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use forewarm_policy::{CachedContainer, FaasCache, Millis};

use crate::engine::{AppOutcome, SimParams};
use crate::workload::Workload;

/// Replays the workloads of many applications through one [`FaasCache`].
#[derive(Debug)]
pub struct SharedCacheSim;

impl SharedCacheSim {
    /// Run `workloads` through a cache of `budget_mib` of idle memory (priorities weigh
    /// frequency unless `frequency` is false); one outcome per workload, in order.
    pub fn run(
        workloads: &[Workload],
        budget_mib: f64,
        frequency: bool,
        params: SimParams,
    ) -> Vec<AppOutcome> {
        let mut cache = FaasCache::new(workloads.len(), budget_mib, params.cold_start_ms);
        if !frequency {
            cache = cache.without_frequency();
        }
        let mut out = vec![AppOutcome::default(); workloads.len()];
        let mib: Vec<u32> = workloads
            .iter()
            .map(|w| w.app_memory_mib.ceil().max(1.0) as u32)
            .collect();
        let account = |out: &mut [AppOutcome], c: &CachedContainer, to: Millis| {
            let from = c.idle_since.max(params.measure_from);
            let to = to.min(params.end);
            if to > from {
                out[c.app].wasted_mib_ms += f64::from(c.mib) * (to - from) as f64;
            }
        };
        // Next arrival of every application: (time, app, position in its workload).
        let mut arrivals: BinaryHeap<Reverse<(Millis, usize, usize)>> = workloads
            .iter()
            .enumerate()
            .filter_map(|(app, w)| w.invocations.first().map(|i| Reverse((i.arrival, app, 0))))
            .collect();
        // Busy containers: (completion, app).
        let mut busy: BinaryHeap<Reverse<(Millis, usize)>> = BinaryHeap::new();
        let complete_until = |t: Millis,
                              cache: &mut FaasCache,
                              busy: &mut BinaryHeap<Reverse<(Millis, usize)>>,
                              out: &mut [AppOutcome]| {
            while let Some(&Reverse((end, app))) = busy.peek() {
                if end > t {
                    break;
                }
                busy.pop();
                for evicted in cache.idle(app, mib[app], end) {
                    account(out, &evicted, end);
                }
            }
        };
        while let Some(Reverse((now, app, k))) = arrivals.pop() {
            if now >= params.end {
                break;
            }
            complete_until(now, &mut cache, &mut busy, &mut out);
            let inv = workloads[app].invocations[k];
            let busy_ms = match cache.arrive(app) {
                Some(warm) => {
                    account(&mut out, &warm, now);
                    inv.duration_ms
                }
                None => {
                    if now >= params.measure_from {
                        out[app].cold_starts += 1;
                    }
                    params.cold_start_ms + inv.duration_ms
                }
            };
            if now >= params.measure_from {
                out[app].invocations += 1;
            }
            busy.push(Reverse((now + busy_ms, app)));
            if let Some(next) = workloads[app].invocations.get(k + 1) {
                arrivals.push(Reverse((next.arrival, app, k + 1)));
            }
        }
        complete_until(params.end, &mut cache, &mut busy, &mut out);
        for c in cache.cached() {
            account(&mut out, c, params.end);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::AppSim;
    use crate::workload::Invocation;
    use forewarm_policy::FixedKeepAlive;

    fn workload(arrivals: &[Millis], mib: f64) -> Workload {
        Workload {
            invocations: arrivals
                .iter()
                .map(|&arrival| Invocation {
                    arrival,
                    duration_ms: 1_000,
                    memory_mib: mib,
                })
                .collect(),
            app_memory_mib: mib,
        }
    }

    const PARAMS: SimParams = SimParams {
        measure_from: 0,
        end: 1_000_000,
        cold_start_ms: 1_000,
        profiles: false,
    };

    #[test]
    fn an_unbounded_cache_is_no_unloading() {
        let w = vec![
            workload(&[0, 5_000, 500_000], 128.0),
            workload(&[10, 20, 30, 900_000], 256.0),
        ];
        let cached = SharedCacheSim::run(&w, f64::INFINITY, true, PARAMS);
        for (w, c) in w.iter().zip(&cached) {
            let mut forever = FixedKeepAlive::forever();
            assert_eq!(*c, AppSim::run(&mut forever, w, PARAMS));
        }
    }

    #[test]
    fn a_full_cache_keeps_the_frequent_app_and_refuses_the_rare_one() {
        // Room for one 100 MiB container. App 0 runs at 0 s and 3 s, then every 10 s (its
        // container's priority is 20 and rising); app 1 runs at 5 s and 500 s: its container
        // (priority 10, then clock 10 + 10 = 20 after its frequency restarts) is the lowest
        // each time it turns idle, so it is evicted at once and both its calls are cold.
        let mut arrivals: Vec<Millis> = vec![0, 3_000];
        arrivals.extend((1..90).map(|i| i * 10_000));
        let w = vec![
            workload(&arrivals, 100.0),
            workload(&[5_000, 500_000], 100.0),
        ];
        let out = SharedCacheSim::run(&w, 100.0, true, PARAMS);
        assert_eq!(out[0].cold_starts, 1);
        assert_eq!(out[1].cold_starts, 2);
        assert_eq!(out[1].wasted_mib_ms, 0.0);
        // Without the budget app 1 stays warm.
        let out = SharedCacheSim::run(&w, f64::INFINITY, true, PARAMS);
        assert_eq!(out[1].cold_starts, 1);
    }
}
