//! Turns an application's per-minute counts into concrete, seeded invocations.

use forewarm_policy::{MINUTE_MS, Millis};
use forewarm_trace::{App, DurationPercentiles, item_seed};

use crate::replayed::ReplayedCode;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One simulated invocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Invocation {
    /// Arrival, ms from the start of the replayed window.
    pub arrival: Millis,
    /// Execution time once on a container.
    pub duration_ms: Millis,
    /// Memory this invocation needs.
    pub memory_mib: f64,
}

/// The invocations of one application, sorted by arrival, and its declared memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Sorted by arrival.
    pub invocations: Vec<Invocation>,
    /// The application's memory: its largest percentile (containers get this without
    /// `--profiles`, and it is the declared limit with it).
    pub app_memory_mib: f64,
}

/// Used when a function has no duration row: one second.
const DEFAULT_DURATION: DurationPercentiles = DurationPercentiles {
    average_ms: 1_000.0,
    count: 0,
    minimum_ms: 1_000.0,
    maximum_ms: 1_000.0,
    percentiles_ms: [1_000.0; 7],
};

impl Workload {
    /// Draw the invocations of `app` (the `index`-th of the trace) with `seed`.
    ///
    /// Arrivals spread uniformly within their minute; durations are drawn from the function's
    /// percentiles (or the app's first function that has them, else 1 s); memory from the
    /// app's percentiles when `profiles` is on, else the app's maximum. Apps without memory
    /// rows use `default_memory_mb`.
    pub fn draw(app: &App, index: u64, seed: u64, profiles: bool, default_memory_mb: f64) -> Self {
        let mut rng = SmallRng::seed_from_u64(item_seed(seed, index));
        let app_memory_mib = app.memory.map_or(default_memory_mb, |m| m.max_mb());
        let app_duration = app.functions.iter().find_map(|f| f.durations);
        let mut invocations = Vec::with_capacity(app.invocations() as usize);
        for f in &app.functions {
            let durations = f.durations.or(app_duration).unwrap_or(DEFAULT_DURATION);
            for (minute, count) in &f.counts {
                let base = Millis::from(*minute) * MINUTE_MS;
                for _ in 0..*count {
                    let arrival = base + rng.random_range(0..MINUTE_MS);
                    let duration_ms = durations.quantile(rng.random()).round().max(1.0) as Millis;
                    let memory_mib = match (profiles, app.memory) {
                        (true, Some(m)) => m.quantile(rng.random()),
                        _ => app_memory_mib,
                    };
                    invocations.push(Invocation {
                        arrival,
                        duration_ms,
                        memory_mib,
                    });
                }
            }
        }
        invocations.sort_by_key(|i| i.arrival);
        Self {
            invocations,
            app_memory_mib,
        }
    }

    /// The same arrivals as `forewarm replay` runs them on a live node at `speed` times the
    /// trace's pace: each invocation holds its container for `code`'s CPU time (wall ms on the
    /// node, so `speed` times as long in trace time), in a container of the code type's limit.
    pub fn replayed(mut self, code: &ReplayedCode, speed: f64) -> Self {
        let duration_ms = (code.cpu_ms as f64 * speed).round().max(1.0) as Millis;
        let memory_mib = f64::from(ReplayedCode::MAX_MEMORY_MIB);
        for inv in &mut self.invocations {
            inv.duration_ms = duration_ms;
            inv.memory_mib = memory_mib;
        }
        self.app_memory_mib = memory_mib;
        self
    }
}
