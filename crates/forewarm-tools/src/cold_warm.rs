//! Cold versus warm start latency on a real runtime, measured side by side in one run.

use std::time::Instant;

use forewarm_runtime::{ContainerRuntime, ContainerSpec, RuntimeError, WorkloadOverrides};

/// Latency percentiles of one kind of start, ms.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
}

/// Percentiles of latency samples (ms), nearest rank.
pub fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| forewarm_policy::nearest_rank(&v, q).unwrap_or(0.0);
    Percentiles {
        n: v.len(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// Cold: create + start + ready + first invocation. Warm: an invocation on a ready container.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ColdWarm {
    /// Request-path cold starts.
    pub cold: Percentiles,
    /// Invocations on a warm (or pre-warmed) container.
    pub warm: Percentiles,
}

/// Alternate `rounds` cold starts with `warm_per_round` warm invocations on the container each
/// cold start made, so both kinds see the same machine state; containers are removed.
pub async fn cold_vs_warm<R: ContainerRuntime>(
    rt: &R,
    spec: &ContainerSpec,
    rounds: usize,
    warm_per_round: usize,
) -> Result<ColdWarm, RuntimeError> {
    let none = WorkloadOverrides::default();
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        let container = rt.start(spec).await?;
        let first = rt.invoke(&container, &none).await;
        cold.push(started.elapsed().as_secs_f64() * 1000.0);
        let mut result = first.map(|_| ());
        for _ in 0..warm_per_round {
            if result.is_err() {
                break;
            }
            let t = Instant::now();
            result = rt.invoke(&container, &none).await.map(|_| ());
            warm.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        rt.remove(&container.id).await?;
        result?;
    }
    Ok(ColdWarm {
        cold: percentiles(cold),
        warm: percentiles(warm),
    })
}
