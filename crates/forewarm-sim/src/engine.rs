//! The per-application discrete-event engine: one virtual clock, one policy, one workload.
//!
//! The container bookkeeping is `forewarm_policy::AppPool`, the same pool the node runs; the
//! engine adds the clock (completion times are known here: arrival + cold start + duration)
//! and the accounting of the measured window. Events at the same millisecond are handled in
//! this order: completions, the minute tick, a due pre-warm, then the arrival. Concurrency is
//! one invocation per container.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use forewarm_policy::{AppPolicy, AppPool, ContainerId, Millis, Placement, PoolObserver};

use crate::workload::Workload;

/// Settings the engine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimParams {
    /// Nothing before this time is counted (the warm-up).
    pub measure_from: Millis,
    /// End of the simulated window.
    pub end: Millis,
    /// Spawn-to-serve time of a cold container.
    pub cold_start_ms: Millis,
    /// Size containers from the predicted profile and count misfits.
    pub profiles: bool,
}

/// What happened to one application under one policy, within the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AppOutcome {
    /// Invocations that arrived in the measured window.
    pub invocations: u64,
    /// Of which cold.
    pub cold_starts: u64,
    /// Of which on a pre-warmed container's first use.
    pub prewarmed_starts: u64,
    /// Idle container memory-time, MiB·ms.
    pub wasted_mib_ms: f64,
    /// Containers spawned by prediction.
    pub prewarms: u64,
    /// Invocations that found only warm containers too small for them.
    pub misfits: u64,
}

impl AppOutcome {
    /// Cold starts as a percentage of invocations (`None` without invocations).
    pub fn cold_start_pct(&self) -> Option<f64> {
        (self.invocations > 0).then(|| 100.0 * self.cold_starts as f64 / self.invocations as f64)
    }
}

/// Accounts what the pool reports, clipped to the measured window.
#[derive(Debug)]
struct Accounting {
    params: SimParams,
    out: AppOutcome,
}

impl Accounting {
    fn measured(&self, t: Millis) -> bool {
        t >= self.params.measure_from && t < self.params.end
    }
}

impl PoolObserver for Accounting {
    fn idle(&mut self, mib: u32, from: Millis, to: Millis) {
        let from = from.max(self.params.measure_from);
        let to = to.min(self.params.end);
        if to > from {
            self.out.wasted_mib_ms += f64::from(mib) * (to - from) as f64;
        }
    }

    fn prewarmed(&mut self, _id: ContainerId, at: Millis) {
        if self.measured(at) {
            self.out.prewarms += 1;
        }
    }
}

/// Replays one workload through one policy.
#[derive(Debug)]
pub struct AppSim;

impl AppSim {
    /// Run `workload` through `policy` and report the measured outcome.
    pub fn run(policy: &mut dyn AppPolicy, workload: &Workload, params: SimParams) -> AppOutcome {
        let mut pool = AppPool::new(policy, workload.app_memory_mib, params.profiles);
        pool.set_start_ms(params.cold_start_ms);
        let mut acc = Accounting {
            params,
            out: AppOutcome::default(),
        };
        let mut busy: BinaryHeap<Reverse<(Millis, usize)>> = BinaryHeap::new();
        for inv in &workload.invocations {
            if inv.arrival >= params.end {
                break;
            }
            Self::advance(inv.arrival, &mut pool, &mut busy, &mut acc);
            let now = inv.arrival;
            let placement = pool.arrive(now, inv.memory_mib, &mut acc);
            let measured = acc.measured(now);
            let done = match placement {
                Placement::Warm(id) | Placement::Prewarmed(id) => (now + inv.duration_ms, id),
                Placement::Cold { id, .. } => (now + params.cold_start_ms + inv.duration_ms, id),
            };
            busy.push(Reverse(done));
            if measured {
                acc.out.invocations += 1;
                match placement {
                    Placement::Cold { misfit, .. } => {
                        acc.out.cold_starts += 1;
                        acc.out.misfits += u64::from(misfit);
                    }
                    Placement::Prewarmed(_) => acc.out.prewarmed_starts += 1,
                    Placement::Warm(_) => {}
                }
            }
        }
        Self::advance(params.end, &mut pool, &mut busy, &mut acc);
        pool.finish(params.end, &mut acc);
        acc.out
    }

    /// Handle every completion and pool event due at or before `t`, in time order
    /// (completions first at equal times).
    fn advance(
        t: Millis,
        pool: &mut AppPool<&mut dyn AppPolicy>,
        busy: &mut BinaryHeap<Reverse<(Millis, usize)>>,
        acc: &mut Accounting,
    ) {
        loop {
            let completion = busy.peek().map_or(Millis::MAX, |Reverse((e, _))| *e);
            let due = pool.next_due();
            if completion.min(due) > t {
                return;
            }
            if completion <= due {
                if let Some(Reverse((end, id))) = busy.pop() {
                    pool.complete(end, id, acc);
                }
            } else if !pool.fire_due(t, acc) {
                return;
            }
        }
    }
}
