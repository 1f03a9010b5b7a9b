//! Prometheus metrics, kept in `prometheus-client`'s counters, gauges and histograms and
//! encoded by it (OpenMetrics text) on `GET /metrics`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use forewarm_store::Start;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency buckets, seconds (Prometheus's base unit): 0.5 ms to 10 s.
const LATENCY_BUCKETS_S: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bytes in a MiB.
const MIB: f64 = 1_048_576.0;
const ERROR_BUCKETS: [f64; 7] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0];

/// One label: its name and one of a fixed set of values (so no series comes from input).
type Label = [(&'static str, &'static str); 1];
/// A tenant and a start kind.
type TenantLabel = [(&'static str, String); 2];

/// Tenants counted under their own name; invocations of any tenant past them count under
/// [`OTHER_TENANTS`], so a node with many tenants exports a bounded number of series.
pub const MAX_TENANT_SERIES: usize = 100;
/// The tenant label of the tenants past [`MAX_TENANT_SERIES`] (not a valid tenant id).
pub const OTHER_TENANTS: &str = "_other";

/// The node's counters, gauges and histograms, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    invocations: Family<Label, Counter>,
    tenant_invocations: Family<TenantLabel, Counter>,
    /// The tenants counted under their own name.
    tenants: Mutex<std::collections::HashSet<String>>,
    latency: Family<Label, Histogram, fn() -> Histogram>,
    errors: Family<Label, Counter>,
    prediction_error: Histogram,
    pool: Family<Label, Gauge>,
    /// Containers pre-warmed so far.
    pub prewarms: Counter,
    /// Containers removed so far.
    pub removals: Counter,
    /// Invocations killed over their container's memory class (then run again at the code
    /// type's limit) so far.
    pub misfits: Counter,
    outgrown: Counter,
    late_prewarms: Counter,
    /// Actors the root supervisor started again after they failed (the root holds a clone).
    pub actor_restarts: Counter,
    idle_bytes_s: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Idle containers' memory-time so far, per code type (the API's figures).
    idle: Mutex<IdleMemory>,
    /// What the dashboard shows of the last hour.
    pub recent: crate::recent::Recent,
}

/// Memory held by idle containers over time (the simulator's waste), MiB·s of wall time,
/// summed at each pool tick from what is idle then.
#[derive(Debug, Default)]
struct IdleMemory {
    by_code: HashMap<String, f64>,
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
const STATES: [&str; 3] = ["starting", "idle", "busy"];

fn start_label(start: Start) -> Label {
    [(
        "start",
        match start {
            Start::Cold => STARTS[0],
            Start::Warm => STARTS[1],
            Start::Prewarmed => STARTS[2],
        },
    )]
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Self {
            registry: Registry::default(),
            invocations: Family::default(),
            tenant_invocations: Family::default(),
            tenants: Mutex::default(),
            latency: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            prediction_error: Histogram::new(ERROR_BUCKETS),
            pool: Family::default(),
            prewarms: Counter::default(),
            removals: Counter::default(),
            misfits: Counter::default(),
            outgrown: Counter::default(),
            late_prewarms: Counter::default(),
            actor_restarts: Counter::default(),
            idle_bytes_s: Counter::default(),
            idle: Mutex::default(),
            recent: crate::recent::Recent::default(),
        };
        // Every series exists from the start (a rate over a series that appears late misses
        // its first increase).
        for start in STARTS {
            let _ = m.invocations.get_or_create(&[("start", start)]);
            let _ = m.latency.get_or_create(&[("start", start)]);
        }
        for reason in FAILURES {
            let _ = m.errors.get_or_create(&[("reason", reason)]);
        }
        for state in STATES {
            let _ = m.pool.get_or_create(&[("state", state)]);
        }
        let r = &mut m.registry;
        r.register(
            "forewarm_invocations",
            "Invocations served, by how they started",
            m.invocations.clone(),
        );
        r.register(
            "forewarm_tenant_invocations",
            "Invocations served, by tenant and how they started (the first 100 tenants seen by \
             name, the others as _other)",
            m.tenant_invocations.clone(),
        );
        r.register(
            "forewarm_invocation_errors",
            "Invocations that failed, by reason",
            m.errors.clone(),
        );
        r.register(
            "forewarm_invocation_duration_seconds",
            "End-to-end latency at the node: from the request's arrival to its runner's answer",
            m.latency.clone(),
        );
        r.register(
            "forewarm_pool_containers",
            "Containers in the pool, by state",
            m.pool.clone(),
        );
        for (name, help, counter) in [
            (
                "forewarm_prewarms",
                "Containers spawned by a prediction",
                &m.prewarms,
            ),
            ("forewarm_removals", "Containers removed", &m.removals),
            (
                "forewarm_actor_restarts",
                "Actors (Collector, Predictor, PoolSupervisor, Router) the root supervisor \
                 started again after they failed",
                &m.actor_restarts,
            ),
            (
                "forewarm_misfits",
                "Invocations killed over their container's memory class, run again at the \
                 code type's limit",
                &m.misfits,
            ),
            (
                "forewarm_cold_starts_outgrown",
                "Cold starts while an idle container of the code type was too small for the \
                 request's predicted need",
                &m.outgrown,
            ),
            (
                "forewarm_prewarms_late",
                "Requests that came for a pre-warmed container still starting (answered once \
                 it started, counted cold)",
                &m.late_prewarms,
            ),
        ] {
            r.register(name, help, counter.clone());
        }
        r.register(
            "forewarm_idle_memory_byte_seconds",
            "Memory held by idle containers over time (bytes times wall seconds)",
            m.idle_bytes_s.clone(),
        );
        r.register(
            "forewarm_prediction_error_ratio",
            "|predicted - measured| / measured peak memory",
            m.prediction_error.clone(),
        );
        m
    }
}

impl Metrics {
    /// One invocation served.
    pub fn invoked(&self, start: Start, latency_ms: f64) {
        let label = start_label(start);
        self.invocations.get_or_create(&label).inc();
        self.latency.get_or_create(&label).observe(latency_ms / 1e3);
    }

    /// One invocation of `tenant` served: counted under the tenant's name while fewer than
    /// [`MAX_TENANT_SERIES`] tenants have a series, else under [`OTHER_TENANTS`].
    pub fn tenant_invoked(&self, tenant: &str, start: Start) {
        let named = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
            tenants.contains(tenant)
                || (tenants.len() < MAX_TENANT_SERIES && tenants.insert(tenant.to_owned()))
        };
        let labels = [
            (
                "tenant",
                (if named { tenant } else { OTHER_TENANTS }).to_owned(),
            ),
            ("start", start_label(start)[0].1.to_owned()),
        ];
        self.tenant_invocations.get_or_create(&labels).inc();
    }

    /// Invocations that started `start` so far.
    pub fn started(&self, start: Start) -> u64 {
        self.invocations.get_or_create(&start_label(start)).get()
    }

    /// One invocation failed.
    pub fn failed(&self, why: Failure) {
        self.errors
            .get_or_create(&[("reason", FAILURES[why as usize])])
            .inc();
    }

    /// Relative error of a memory prediction: |predicted - measured| / measured.
    pub fn prediction(&self, predicted_mib: f64, measured_mib: f64) {
        if measured_mib > 0.0 {
            self.prediction_error
                .observe((predicted_mib - measured_mib).abs() / measured_mib);
        }
    }

    /// The pool now: containers starting, idle and busy, and its engine's miss counts so far
    /// (cold starts that outgrew an idle container, requests for a pre-warm still starting).
    pub fn pool_now(&self, counts: [u64; 3], outgrown: u64, late: u64) {
        for (state, n) in STATES.iter().zip(counts) {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.pool.get_or_create(&[("state", state)]).set(n);
        }
        // The engine counts from its start; the counters follow it.
        self.outgrown
            .inc_by(outgrown.saturating_sub(self.outgrown.get()));
        self.late_prewarms
            .inc_by(late.saturating_sub(self.late_prewarms.get()));
    }

    /// `idle` (idle containers' memory, MiB, per `tenant/code`) has been held since the last
    /// call: adds it, times the wall time since, to the idle memory-time.
    pub fn idle_held(&self, idle: &HashMap<String, Vec<u32>>, now: Instant) {
        let mut m = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let since = m.last.replace(now);
        let Some(dt) = since.map(|at| now.saturating_duration_since(at).as_secs_f64()) else {
            return;
        };
        let mut added = 0.0;
        for (code, mibs) in idle {
            let mib_s = mibs.iter().map(|m| f64::from(*m)).sum::<f64>() * dt;
            *m.by_code.entry(code.clone()).or_default() += mib_s;
            added += mib_s;
        }
        self.idle_bytes_s.inc_by(added * MIB);
    }

    /// Idle memory-time so far, MiB·s of wall time: in total and per `tenant/code`.
    pub fn idle_memory(&self) -> (f64, HashMap<String, f64>) {
        let m = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // The counter keeps the total, in bytes (a power of two times MiB: exact).
        (self.idle_bytes_s.get() / MIB, m.by_code.clone())
    }

    /// Invocations served so far by start kind (cold, warm, prewarmed).
    pub fn counts(&self) -> [u64; 3] {
        [Start::Cold, Start::Warm, Start::Prewarmed].map(|s| self.started(s))
    }

    /// The OpenMetrics text exposition (`application/openmetrics-text; version=1.0.0`), what
    /// Prometheus asks for.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The same in Prometheus's classic text format (`text/plain; version=0.0.4`), for a
    /// client that does not ask for OpenMetrics (curl, `promtool check metrics`).
    pub fn render_classic(&self) -> String {
        classic(&self.render())
    }
}

/// OpenMetrics text as Prometheus's classic text format: a counter family's HELP and TYPE
/// name its samples (`x_total`, where OpenMetrics names the family `x`), and there is no
/// `# EOF`. Every other line is the same in both.
fn classic(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let described = ["# HELP ", "# TYPE "].into_iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(described.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
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
        let bucket = "forewarm_invocation_duration_seconds_bucket";
        assert!(
            text.contains(&format!("{bucket}{{le=\"0.0005\",start=\"warm\"}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{bucket}{{le=\"0.005\",start=\"warm\"}} 2")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{bucket}{{le=\"1.0\",start=\"cold\"}} 1")),
            "{text}"
        );
        assert!(text.contains("forewarm_invocation_duration_seconds_sum{start=\"cold\"} 0.7"));
        assert!(text.contains("forewarm_invocation_errors_total{reason=\"rejected\"} 1"));
        assert!(text.contains("forewarm_prediction_error_ratio_bucket{le=\"0.1\"} 1"));
        assert_eq!(m.counts(), [1, 2, 0]);
    }

    #[test]
    fn the_classic_format_names_counters_by_their_samples_and_has_no_eof() {
        let m = Metrics::default();
        m.invoked(Start::Cold, 700.0);
        let text = m.render_classic();
        assert!(
            text.contains(
                "# HELP forewarm_invocations_total Invocations served, by how they started.\n\
                 # TYPE forewarm_invocations_total counter\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE forewarm_pool_containers gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE forewarm_invocation_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        assert!(m.render().ends_with("# EOF\n"));
    }

    #[test]
    fn tenants_past_the_bound_are_counted_together() {
        let m = Metrics::default();
        for t in 0..MAX_TENANT_SERIES + 7 {
            m.tenant_invoked(&format!("t{t}"), Start::Warm);
        }
        m.tenant_invoked("t0", Start::Warm);
        let text = m.render_classic();
        let series = text
            .lines()
            .filter(|l| l.starts_with("forewarm_tenant_invocations_total{"))
            .count();
        assert_eq!(series, MAX_TENANT_SERIES + 1, "bounded");
        assert!(
            text.contains("forewarm_tenant_invocations_total{tenant=\"t0\",start=\"warm\"} 2"),
            "a tenant with a series keeps it: {text}"
        );
        assert!(
            text.contains("forewarm_tenant_invocations_total{tenant=\"_other\",start=\"warm\"} 7"),
            "{text}"
        );
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
                .contains("\nforewarm_idle_memory_byte_seconds_total 1073741824.0\n")
        );
    }
}
