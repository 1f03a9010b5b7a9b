//! Prometheus metrics, kept in atomics and rendered as text on `GET /metrics`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use forewarm_store::Start;

/// Latency buckets, seconds (Prometheus's base unit): 0.5 ms to 10 s.
const LATENCY_BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bytes in a MiB.
const MIB: f64 = 1_048_576.0;
const ERROR_BUCKETS: [f64; 7] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0];

/// A histogram with fixed buckets (sum kept in micro-units).
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((v * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// The node's counters and gauges.
#[derive(Debug)]
pub struct Metrics {
    latency: [Histogram; 3],
    errors: [AtomicU64; FAILURES.len()],
    prediction_error: Histogram,
    /// Containers starting / idle / busy (set by the PoolSupervisor).
    pub pool: [AtomicU64; 3],
    /// Containers pre-warmed so far.
    pub prewarms: AtomicU64,
    /// Containers removed so far.
    pub removals: AtomicU64,
    /// Invocations killed over their container's memory class (then run again at the code
    /// type's limit) so far.
    pub misfits: AtomicU64,
    /// Cold starts while an idle container of the code type was too small for the request's
    /// predicted need (the pool's engine counts them; copied at each tick).
    pub outgrown: AtomicU64,
    /// Requests that came for a pre-warm still starting (copied at each tick).
    pub late_prewarms: AtomicU64,
    /// Actors the root supervisor started again after they failed.
    pub actor_restarts: std::sync::Arc<AtomicU64>,
    /// Idle containers' memory-time so far.
    idle: Mutex<IdleMemory>,
    /// What the dashboard shows of the last hour.
    pub recent: crate::recent::Recent,
}

/// Memory held by idle containers over time (the simulator's waste), MiB·s of wall time,
/// summed at each pool tick from what is idle then.
#[derive(Debug, Default)]
struct IdleMemory {
    by_code: HashMap<String, f64>,
    total: f64,
    last: Option<Instant>,
}

/// Why an invocation failed, for the error counter.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// Over a quota or capacity (429/503), or in no region the tenant may use (403/503).
    Rejected,
    /// The container could not start.
    Start,
    /// The invocation failed in the container.
    Invoke,
    /// The node is shutting down or an actor is gone.
    Internal,
    /// The code type's `timeout_ms` passed (504).
    Timeout,
}

const FAILURES: [&str; 5] = ["rejected", "start", "invoke", "internal", "timeout"];
const STARTS: [&str; 3] = ["cold", "warm", "prewarmed"];

fn start_index(start: Start) -> usize {
    match start {
        Start::Cold => 0,
        Start::Warm => 1,
        Start::Prewarmed => 2,
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            latency: std::array::from_fn(|_| Histogram::new(&LATENCY_BUCKETS_S)),
            errors: Default::default(),
            prediction_error: Histogram::new(&ERROR_BUCKETS),
            pool: Default::default(),
            prewarms: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            misfits: AtomicU64::new(0),
            outgrown: AtomicU64::new(0),
            late_prewarms: AtomicU64::new(0),
            actor_restarts: Default::default(),
            idle: Mutex::default(),
            recent: crate::recent::Recent::default(),
        }
    }
}

impl Metrics {
    /// One invocation served.
    pub fn invoked(&self, start: Start, latency_ms: f64) {
        self.latency[start_index(start)].observe(latency_ms / 1e3);
    }

    /// Invocations that started `start` so far.
    pub fn started(&self, start: Start) -> u64 {
        self.latency[start_index(start)]
            .count
            .load(Ordering::Relaxed)
    }

    /// One invocation failed.
    pub fn failed(&self, why: Failure) {
        self.errors[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Relative error of a memory prediction: |predicted - measured| / measured.
    pub fn prediction(&self, predicted_mib: f64, measured_mib: f64) {
        if measured_mib > 0.0 {
            self.prediction_error
                .observe((predicted_mib - measured_mib).abs() / measured_mib);
        }
    }

    /// `idle` (idle containers' memory, MiB, per `tenant/code`) has been held since the last
    /// call: adds it, times the wall time since, to the idle memory-time.
    pub fn idle_held(&self, idle: &HashMap<String, Vec<u32>>, now: Instant) {
        let mut m = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let since = m.last.replace(now);
        let Some(dt) = since.map(|at| now.saturating_duration_since(at).as_secs_f64()) else {
            return;
        };
        for (code, mibs) in idle {
            let mib_s = mibs.iter().map(|m| f64::from(*m)).sum::<f64>() * dt;
            *m.by_code.entry(code.clone()).or_default() += mib_s;
            m.total += mib_s;
        }
    }

    /// Idle memory-time so far, MiB·s of wall time: in total and per `tenant/code`.
    pub fn idle_memory(&self) -> (f64, HashMap<String, f64>) {
        let m = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        (m.total, m.by_code.clone())
    }

    /// The total of [`Self::idle_memory`] alone (a scrape needs no per-code copy).
    pub fn idle_memory_total(&self) -> f64 {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// Invocations served so far by start kind (cold, warm, prewarmed).
    pub fn counts(&self) -> [u64; 3] {
        std::array::from_fn(|i| self.latency[i].count.load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP forewarm_invocations_total Invocations served, by how they started.\n",
        );
        out.push_str("# TYPE forewarm_invocations_total counter\n");
        for (i, name) in STARTS.iter().enumerate() {
            let n = self.latency[i].count.load(Ordering::Relaxed);
            let _ = writeln!(out, "forewarm_invocations_total{{start=\"{name}\"}} {n}");
        }
        out.push_str(
            "# HELP forewarm_invocation_errors_total Invocations that failed, by reason.\n",
        );
        out.push_str("# TYPE forewarm_invocation_errors_total counter\n");
        for (i, name) in FAILURES.iter().enumerate() {
            let n = self.errors[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "forewarm_invocation_errors_total{{reason=\"{name}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP forewarm_invocation_duration_seconds End-to-end latency at the node: from \
             the request's arrival to its runner's answer.\n",
        );
        out.push_str("# TYPE forewarm_invocation_duration_seconds histogram\n");
        for (i, name) in STARTS.iter().enumerate() {
            self.latency[i].render(
                &mut out,
                "forewarm_invocation_duration_seconds",
                &format!("start=\"{name}\""),
            );
        }
        out.push_str("# HELP forewarm_pool_containers Containers in the pool, by state.\n");
        out.push_str("# TYPE forewarm_pool_containers gauge\n");
        for (i, name) in ["starting", "idle", "busy"].iter().enumerate() {
            let n = self.pool[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "forewarm_pool_containers{{state=\"{name}\"}} {n}");
        }
        for (name, help, value) in [
            (
                "forewarm_prewarms_total",
                "Containers spawned by a prediction.",
                &self.prewarms,
            ),
            (
                "forewarm_removals_total",
                "Containers removed.",
                &self.removals,
            ),
            (
                "forewarm_actor_restarts_total",
                "Actors (Collector, Predictor, Router) the root supervisor started again after \
                 they failed.",
                &self.actor_restarts,
            ),
            (
                "forewarm_misfits_total",
                "Invocations killed over their container's memory class, run again at the code \
                 type's limit.",
                &self.misfits,
            ),
            (
                "forewarm_cold_starts_outgrown_total",
                "Cold starts while an idle container of the code type was too small for the \
                 request's predicted need.",
                &self.outgrown,
            ),
            (
                "forewarm_prewarms_late_total",
                "Requests that came for a pre-warmed container still starting (answered once \
                 it started, counted cold).",
                &self.late_prewarms,
            ),
        ] {
            let n = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}"
            );
        }
        let idle = self.idle_memory_total() * MIB;
        let _ = writeln!(
            out,
            "# HELP forewarm_idle_memory_byte_seconds_total Memory held by idle containers over \
             time (bytes times wall seconds).\n\
             # TYPE forewarm_idle_memory_byte_seconds_total counter\n\
             forewarm_idle_memory_byte_seconds_total {idle}"
        );
        out.push_str(
            "# HELP forewarm_prediction_error_ratio |predicted - measured| / measured peak memory.\n",
        );
        out.push_str("# TYPE forewarm_prediction_error_ratio histogram\n");
        self.prediction_error
            .render(&mut out, "forewarm_prediction_error_ratio", "");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_and_counts() {
        let m = Metrics::default();
        m.invoked(Start::Warm, 0.3);
        m.invoked(Start::Warm, 3.0);
        m.invoked(Start::Cold, 700.0);
        m.failed(Failure::Rejected);
        m.prediction(110.0, 100.0);
        let text = m.render();
        assert!(text.contains("forewarm_invocations_total{start=\"warm\"} 2"));
        let warm = "forewarm_invocation_duration_seconds_bucket{start=\"warm\"";
        assert!(
            text.contains(&format!("{warm},le=\"0.0005\"}} 1")),
            "{text}"
        );
        assert!(text.contains(&format!("{warm},le=\"0.005\"}} 2")), "{text}");
        assert!(
            text.contains("forewarm_invocation_duration_seconds_bucket{start=\"cold\",le=\"1\"} 1")
        );
        assert!(text.contains("forewarm_invocation_duration_seconds_sum{start=\"cold\"} 0.7"));
        assert!(text.contains("forewarm_invocation_errors_total{reason=\"rejected\"} 1"));
        assert!(text.contains("forewarm_prediction_error_ratio_bucket{le=\"0.1\"} 1"));
        assert_eq!(m.counts(), [1, 2, 0]);
    }

    #[test]
    fn idle_memory_time_adds_what_was_idle_times_the_time_since() {
        let m = Metrics::default();
        let t0 = Instant::now();
        let idle = HashMap::from([
            (String::from("acme/f"), vec![128, 256]),
            (String::from("beta/g"), vec![128]),
        ]);
        m.idle_held(&idle, t0); // the first tick only starts the clock
        assert_eq!(m.idle_memory().0, 0.0);
        m.idle_held(&idle, t0 + std::time::Duration::from_secs(2));
        m.idle_held(&HashMap::new(), t0 + std::time::Duration::from_secs(5));
        let (total, by_code) = m.idle_memory();
        assert_eq!(total, 1024.0);
        assert_eq!(by_code["acme/f"], 768.0);
        assert_eq!(by_code["beta/g"], 256.0);
        assert!(
            m.render()
                .contains("\nforewarm_idle_memory_byte_seconds_total 1073741824\n")
        );
    }
}
