//! Prometheus metrics, kept in atomics and rendered as text on `GET /metrics`.

use std::collections::{HashMap, VecDeque};
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
    /// Idle containers' memory-time so far.
    idle: Mutex<IdleMemory>,
    /// Invocations answered in each of the last [`HISTORY_MINUTES`] minutes, by start.
    history: Mutex<VecDeque<Minute>>,
    /// The latest routing decisions.
    pub routes: RouteLog,
    /// Invocations run on this node per minute (minute, count), by `tenant/code`, for the
    /// last [`HISTORY_MINUTES`] minutes.
    by_code: Mutex<HashMap<String, VecDeque<(u64, u64)>>>,
}

/// Routing decisions kept for the dashboard.
pub const ROUTES_KEPT: usize = 50;

/// One invocation this node's Router answered: where it ran and why.
#[derive(Debug, Clone)]
pub struct Routed {
    /// When it was answered, ms since the epoch.
    pub at_ms: u64,
    /// `tenant/code`.
    pub code: String,
    /// The node that ran it.
    pub node: String,
    /// Its region.
    pub region: String,
    /// How it started there.
    pub start: Start,
    /// Latency at this node, ms.
    pub latency_ms: f64,
    /// Why there.
    pub why: crate::routing::Why,
}

/// The latest [`ROUTES_KEPT`] routing decisions, newest last.
#[derive(Debug, Default)]
pub struct RouteLog(Mutex<VecDeque<Routed>>);

impl RouteLog {
    /// Keep `r`, forgetting the oldest past [`ROUTES_KEPT`].
    pub fn push(&self, r: Routed) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == ROUTES_KEPT {
            log.pop_front();
        }
        log.push_back(r);
    }

    /// The decisions kept, newest first, as the API shows them.
    pub fn recent(&self) -> Vec<serde_json::Value> {
        let log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .rev()
            .map(|r| {
                serde_json::json!({
                    "at_ms": r.at_ms,
                    "code": r.code,
                    "node": r.node,
                    "region": r.region,
                    "start": r.start.as_str(),
                    "latency_ms": r.latency_ms,
                    "why": r.why.describe(),
                })
            })
            .collect()
    }
}

/// Minutes of start counts kept for the dashboard's chart.
pub const HISTORY_MINUTES: u64 = 60;

/// Invocations answered in one minute, by how they started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Minute {
    /// Minutes since the Unix epoch (UTC).
    pub minute: u64,
    /// Started a container for it.
    pub cold: u64,
    /// On an idle container that served before.
    pub warm: u64,
    /// On a container started ahead of it.
    pub prewarmed: u64,
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
            idle: Mutex::default(),
            history: Mutex::default(),
            routes: RouteLog::default(),
            by_code: Mutex::default(),
        }
    }
}

impl Metrics {
    /// One invocation served.
    pub fn invoked(&self, start: Start, latency_ms: f64) {
        self.latency[start_index(start)].observe(latency_ms / 1e3);
        self.count_minute(crate::clock::unix_ms() / 60_000, start);
    }

    /// Count one invocation answered in `minute` (since the epoch) into the history.
    fn count_minute(&self, minute: u64, start: Start) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if history.back().is_none_or(|m| m.minute < minute) {
            history.push_back(Minute {
                minute,
                ..Minute::default()
            });
            while history
                .front()
                .is_some_and(|m| m.minute + HISTORY_MINUTES <= minute)
            {
                history.pop_front();
            }
        }
        // A clock stepped back counts into the newest minute.
        if let Some(m) = history.back_mut() {
            match start {
                Start::Cold => m.cold += 1,
                Start::Warm => m.warm += 1,
                Start::Prewarmed => m.prewarmed += 1,
            }
        }
    }

    /// One invocation of `code` (`tenant/code`) ran on this node in `minute`.
    pub fn ran(&self, code: &str, minute: u64) {
        let mut by_code = self.by_code.lock().unwrap_or_else(|e| e.into_inner());
        let counts = match by_code.get_mut(code) {
            Some(c) => c,
            None => by_code.entry(code.to_owned()).or_default(),
        };
        match counts.back_mut() {
            Some((m, n)) if *m >= minute => *n += 1,
            _ => counts.push_back((minute, 1)),
        }
    }

    /// Per code type that ran here within the last [`HISTORY_MINUTES`] minutes up to
    /// `now_minute`: its (minute, count) pairs, oldest first (minutes without one left out);
    /// older minutes and code types without a recent one are forgotten.
    pub fn ran_by_code(&self, now_minute: u64) -> Vec<(String, Vec<(u64, u64)>)> {
        let mut by_code = self.by_code.lock().unwrap_or_else(|e| e.into_inner());
        by_code.retain(|_, counts| {
            while counts
                .front()
                .is_some_and(|(m, _)| m + HISTORY_MINUTES <= now_minute)
            {
                counts.pop_front();
            }
            !counts.is_empty()
        });
        let mut all: Vec<_> = by_code
            .iter()
            .map(|(code, counts)| (code.clone(), counts.iter().copied().collect()))
            .collect();
        all.sort();
        all
    }

    /// The last [`HISTORY_MINUTES`] minutes up to `now_minute`, oldest first, one entry per
    /// minute (zeros where nothing was answered).
    pub fn history(&self, now_minute: u64) -> Vec<Minute> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let first = (now_minute + 1).saturating_sub(HISTORY_MINUTES);
        (first..=now_minute)
            .map(|minute| {
                history
                    .iter()
                    .find(|m| m.minute == minute)
                    .copied()
                    .unwrap_or(Minute {
                        minute,
                        ..Minute::default()
                    })
            })
            .collect()
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
    fn the_history_keeps_an_hour_of_minutes_with_gaps_as_zeros() {
        let m = Metrics::default();
        m.count_minute(1_000, Start::Cold);
        m.count_minute(1_000, Start::Warm);
        m.count_minute(1_002, Start::Prewarmed);
        m.count_minute(1_002, Start::Warm);
        let h = m.history(1_003);
        assert_eq!(h.len(), HISTORY_MINUTES as usize);
        assert_eq!(h.last().map(|m| m.minute), Some(1_003));
        let at = |minute| h.iter().find(|m| m.minute == minute).copied();
        assert_eq!(
            at(1_000),
            Some(Minute {
                minute: 1_000,
                cold: 1,
                warm: 1,
                prewarmed: 0
            })
        );
        assert_eq!(at(1_001).map(|m| m.cold + m.warm + m.prewarmed), Some(0));
        assert_eq!(at(1_002).map(|m| (m.warm, m.prewarmed)), Some((1, 1)));
        // An hour on, minute 1000 has left the window and the ring.
        m.count_minute(1_000 + HISTORY_MINUTES, Start::Cold);
        let later = m.history(1_000 + HISTORY_MINUTES);
        assert_eq!(later.first().map(|m| m.minute), Some(1_001));
        assert_eq!(later.iter().map(|m| m.cold).sum::<u64>(), 1);
        assert_eq!(m.history.lock().map(|h| h.len()).unwrap_or(0), 2);
    }

    #[test]
    fn runs_by_code_type_are_kept_an_hour() {
        let m = Metrics::default();
        m.ran("a/f", 1_000);
        m.ran("a/f", 1_000);
        m.ran("a/f", 1_003);
        m.ran("b/g", 1_001);
        assert_eq!(
            m.ran_by_code(1_003),
            vec![
                ("a/f".to_owned(), vec![(1_000, 2), (1_003, 1)]),
                ("b/g".to_owned(), vec![(1_001, 1)]),
            ]
        );
        // An hour after b/g's last run it is forgotten; a/f keeps its newer minute.
        assert_eq!(
            m.ran_by_code(1_001 + HISTORY_MINUTES),
            vec![("a/f".to_owned(), vec![(1_003, 1)])]
        );
    }

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
