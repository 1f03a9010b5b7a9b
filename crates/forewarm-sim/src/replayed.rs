//! What `forewarm replay` sends a live node — which applications of a band and the workload
//! each becomes — shared with `forewarm simulate --apps N`, so the simulator can run the same
//! applications with the same workloads and the two can be compared on identical input.

use forewarm_trace::App;
use serde_json::json;

/// The applications ranked by `counts` (invocations in the measured window, one per trace
/// application; most first, ties by position in the trace; applications without any left out)
/// whose popularity rank quantile lies in `band` (all of them without one), in rank order.
pub fn in_band(counts: &[u64], band: Option<(f64, f64)>) -> Vec<usize> {
    let mut ranked: Vec<(u64, usize)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i))
        .filter(|(c, _)| *c > 0)
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let total = ranked.len() as f64;
    ranked
        .iter()
        .enumerate()
        .filter(|(rank, _)| {
            band.is_none_or(|(lo, hi)| {
                let q = *rank as f64 / total;
                q >= lo && q < hi
            })
        })
        .map(|(_, (_, i))| *i)
        .collect()
}

/// `n` of `ranked`, evenly spread from the most popular down (all of them when there are no
/// more than `n`): the applications `forewarm replay --apps n` replays.
pub fn spread(ranked: &[usize], n: usize) -> Vec<usize> {
    if ranked.len() <= n {
        return ranked.to_vec();
    }
    (0..n).map(|k| ranked[k * ranked.len() / n]).collect()
}

/// The code type `forewarm replay` registers for an application: its median duration as CPU
/// (at most 20 ms) and a quarter of its median memory touched (at most 32 MiB), so one
/// machine can replay many; every container of it is [`ReplayedCode::MAX_MEMORY_MIB`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayedCode {
    /// CPU time per invocation, ms of wall time.
    pub cpu_ms: u64,
    /// Memory touched per invocation, MiB.
    pub mem_mib: u64,
    /// The container's initialisation before it serves, ms.
    pub init_ms: u64,
}

impl ReplayedCode {
    /// The code type's memory limit, MiB: the smallest size class, so every container of a
    /// replayed code type holds this much (what the live node counts as idle memory).
    pub const MAX_MEMORY_MIB: u32 = 128;

    /// The code type for `app`.
    pub fn of(app: &App) -> Self {
        let duration = app
            .functions
            .iter()
            .find_map(|f| f.durations)
            .map_or(10.0, |d| d.quantile(0.5));
        let memory = app.memory.map_or(64.0, |m| m.quantile(0.5));
        Self {
            cpu_ms: duration.clamp(1.0, 20.0) as u64,
            mem_mib: (memory / 4.0).clamp(1.0, 32.0) as u64,
            init_ms: 250,
        }
    }

    /// The `PUT /v1/codes/{code}` body that registers it.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "workload": {
                "cpu_ms": self.cpu_ms,
                "mem_mib": self.mem_mib,
                "init_ms": self.init_ms,
            },
            "max_memory_mib": Self::MAX_MEMORY_MIB,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_ranks_by_count_and_leaves_out_apps_without_invocations() {
        // Ranks: app 1 (9), apps 0 and 3 (5 each: by position), app 4 (1); app 2 has none.
        let counts = [5, 9, 0, 5, 1];
        assert_eq!(in_band(&counts, None), vec![1, 0, 3, 4]);
        // 4 ranked apps: quantiles 0, .25, .5, .75.
        assert_eq!(in_band(&counts, Some((0.25, 0.75))), vec![0, 3]);
    }

    #[test]
    fn spread_takes_evenly_from_the_top_down() {
        let ranked: Vec<usize> = (10..20).collect();
        assert_eq!(spread(&ranked, 5), vec![10, 12, 14, 16, 18]);
        assert_eq!(spread(&ranked, 20), ranked);
    }
}
