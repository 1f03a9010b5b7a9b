//! End-to-end benchmarks of one node on a real runtime, side by side in one run:
//!
//! - **starts**: cold (a code type's first request), pre-warmed (a code type invoked every
//!   four policy minutes, after the policy learned the period) and warm, as the client sees
//!   them through the node;
//! - **gateway overhead**: a no-op invocation through the node versus the same invocation
//!   sent straight to a container of the same spec, interleaved;
//! - **throughput**: `concurrency` clients invoking a no-op code type in a loop through the
//!   node for `seconds`, on `concurrency` warm containers; then the same load straight to
//!   containers of the same spec, and through a byte relay to them (the ceiling of any
//!   gateway: one TCP hop and nothing else).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cold_warm::{Percentiles, percentiles};
use forewarm_http::Method;
use forewarm_runtime::{
    Container, ContainerRuntime, ContainerSpec, SizeClass, Workload, WorkloadOverrides,
};
use serde::Serialize;
use serde_json::json;

use forewarm_node::client::NodeClient;
use forewarm_node::{Node, NodeConfig};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Cold starts (one fresh code type each).
    pub cold: usize,
    /// Periodic code types measured for pre-warmed starts (each gives `rounds` samples).
    pub periodic: usize,
    /// Measured rounds of the periodic code types.
    pub rounds: usize,
    /// Interleaved node/direct pairs for the overhead.
    pub overhead: usize,
    /// Throughput clients (and warm containers).
    pub concurrency: usize,
    /// Throughput duration.
    pub seconds: u64,
    /// The runner image.
    pub image: String,
    /// Runner initialisation (what a cold start pays), ms.
    pub init_ms: u64,
}

/// What it measured (ms unless named otherwise).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Cold starts through the node.
    pub cold: Percentiles,
    /// Pre-warmed starts through the node.
    pub prewarmed: Percentiles,
    /// Periodic invocations after learning that were not pre-warmed.
    pub periodic_not_prewarmed: usize,
    /// Warm starts through the node (the overhead run's node side).
    pub warm: Percentiles,
    /// The same invocation sent straight to a container.
    pub direct: Percentiles,
    /// `warm - direct` at p50.
    pub overhead_p50_ms: f64,
    /// `warm - direct` at p99.
    pub overhead_p99_ms: f64,
    /// Warm no-op invocations per second through the node.
    pub throughput_per_s: f64,
    /// Invocations that failed during the throughput run.
    pub throughput_errors: u64,
    /// Cold starts during the throughput run (0 when the pool held its containers).
    pub throughput_cold_starts: u64,
    /// The first such failure.
    pub first_error: Option<String>,
    /// Clients of the throughput run.
    pub concurrency: usize,
    /// The same clients sending no-op invocations straight to containers of the same spec.
    pub direct_throughput_per_s: f64,
    /// The same load through a byte relay (one hop, no logic) to those containers: the
    /// ceiling of any gateway on this machine.
    pub relay_throughput_per_s: f64,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Run every benchmark over `runtime`, and the direct baselines over `direct` (another
/// handle on the same engine: the two are used from different async runtimes, and an engine
/// client's pooled connections belong to the runtime that opened them); containers are
/// removed at the end.
///
/// Two fresh nodes, one after the other: the starts are measured on a node whose policy
/// minute is a real second (time scale 60, so a code type invoked every four policy minutes
/// is learned in seconds), the gateway overhead and the throughput on a node in real time,
/// as deployed. At time scale 60 the pool's per-minute decisions (demand floors, keep-alive
/// windows) come every real second, and a load run there measures the containers they start
/// and remove, not the request path.
pub async fn run<R: ContainerRuntime + 'static>(
    runtime: Arc<R>,
    direct: Arc<R>,
    opts: &BenchOptions,
) -> Result<BenchReport, String> {
    let starts = on_node(runtime.clone(), opts, 60.0, "starts", async |node, _| {
        measure_starts(node, opts).await
    })
    .await?;
    let load = on_node(runtime, opts, 1.0, "load", async |node, id| {
        measure_load(node, direct.as_ref(), id, opts).await
    })
    .await?;
    Ok(BenchReport {
        cold: starts.cold,
        prewarmed: starts.prewarmed,
        periodic_not_prewarmed: starts.missed,
        overhead_p50_ms: load.warm.p50 - load.direct.p50,
        overhead_p99_ms: load.warm.p99 - load.direct.p99,
        warm: load.warm,
        direct: load.direct,
        throughput_per_s: load.through_node.per_s,
        throughput_errors: load.through_node.errors,
        throughput_cold_starts: load.cold_starts,
        first_error: load.through_node.first_error,
        concurrency: opts.concurrency,
        direct_throughput_per_s: load.direct_load.per_s,
        relay_throughput_per_s: load.relay_load.per_s,
    })
}

/// Start a fresh node at `time_scale`, run `measure` on it, stop it and remove its data.
async fn on_node<R, T>(
    runtime: Arc<R>,
    opts: &BenchOptions,
    time_scale: f64,
    name: &str,
    measure: impl AsyncFnOnce(&Node, &str) -> Result<T, String>,
) -> Result<T, String>
where
    R: ContainerRuntime + 'static,
{
    let node_id = format!("bench-{}-{name}", std::process::id());
    let data = std::env::temp_dir().join(format!("forewarm-{node_id}"));
    let config = NodeConfig {
        node_id: node_id.clone(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data.clone(),
        time_scale,
        runner_image: opts.image.clone(),
        max_body_bytes: 64 * 1024,
        capacity: forewarm_node::Capacity {
            memory_mib: 64 * 1024,
            containers: opts.concurrency + opts.cold + opts.periodic + 16,
        },
        ..NodeConfig::default()
    };
    // The node runs on an async runtime of its own, built like `forewarm node`'s (one worker
    // per core), as if it were its own process: the load generator (this runtime) never runs
    // node tasks, nor the node the load generator's.
    let own = OwnRuntime::start()?;
    let handle = own.handle.clone();
    // Whatever happens, the node's thread is stopped and the data removed below.
    let result = match handle.spawn(Node::start(config, runtime)).await {
        Ok(Ok(node)) => {
            let result = measure(&node, &node_id).await;
            let _ = handle.spawn(async move { node.shutdown().await }).await;
            result
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("starting the node: {e}")),
    };
    own.stop().await;
    let _ = std::fs::remove_dir_all(&data);
    result
}

/// A multi-thread async runtime (one worker per core) on a thread of its own, as if what
/// runs on it were another process.
struct OwnRuntime {
    handle: tokio::runtime::Handle,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl OwnRuntime {
    fn start() -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting an async runtime: {e}"))?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(async {
                let _ = stopped.await;
            });
        });
        Ok(Self {
            handle,
            stop,
            thread,
        })
    }

    /// Stop it: every task still running on it is dropped.
    async fn stop(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// The cheapest hop there is, as a ceiling for any gateway: a byte relay (no HTTP, no
/// logic) that ties its k-th accepted connection to the k-th container's runner, on its own
/// runtime. Returns its address; it stops with the runtime.
async fn start_relay(own: &OwnRuntime, containers: &[Container]) -> Result<SocketAddr, String> {
    let endpoints: Vec<SocketAddr> = containers.iter().map(|c| c.endpoint).collect();
    let listener = own
        .handle
        .spawn(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("binding the relay: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    own.handle.spawn(async move {
        let mut k = 0;
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = endpoints[k % endpoints.len()];
            k += 1;
            tokio::spawn(async move {
                let Ok(mut runner) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), runner.set_nodelay(true));
                let _ = tokio::io::copy_bidirectional(&mut client, &mut runner).await;
            });
        }
    });
    Ok(addr)
}

/// The bench's tenant on both nodes (its network is removed once, at the end).
pub fn tenant_name() -> String {
    format!("bench-{}", std::process::id())
}

/// A bench tenant on a node: registers no-op code types and invokes them.
struct Tenant {
    name: String,
    client: NodeClient,
    code_body: Vec<u8>,
    workload: Workload,
}

impl Tenant {
    async fn create(node: &Node, name: &str, opts: &BenchOptions) -> Result<Self, String> {
        let url = node.addr().to_string();
        let admin = NodeClient::new(&url, Some(node.admin_token().to_owned()))?;
        let (status, created) = admin
            .json(
                Method::POST,
                "/v1/tenants",
                json!({"name": name, "max_warm": 10_000, "max_memory_mib": 1 << 24})
                    .to_string()
                    .into_bytes(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if status != 201 {
            return Err(format!("creating the bench tenant: {status} {created}"));
        }
        let token = created["token"].as_str().unwrap_or_default().to_owned();
        let workload = Workload {
            init_ms: opts.init_ms,
            ..Workload::default()
        };
        Ok(Self {
            name: name.to_owned(),
            client: NodeClient::new(&url, Some(token))?,
            code_body: json!({"workload": workload, "max_memory_mib": 128, "image": opts.image})
                .to_string()
                .into_bytes(),
            workload,
        })
    }

    async fn register(&self, name: &str) -> Result<(), String> {
        let (status, answer) = self
            .client
            .json(
                Method::PUT,
                &format!("/v1/codes/{name}"),
                self.code_body.clone(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if status >= 300 {
            return Err(format!("registering {name}: {status} {answer}"));
        }
        Ok(())
    }

    /// Invoke `name`: how it started and the latency the client saw, ms.
    async fn invoke(&self, name: &str) -> Result<(String, f64), String> {
        let t = Instant::now();
        let a = self
            .client
            .invoke(name, "")
            .await
            .map_err(|e| e.to_string())?;
        if a.status != 200 {
            return Err(format!("invoking {name}: {} {}", a.status, a.body));
        }
        Ok((a.start, ms(t)))
    }
}

/// What the starts measured.
struct Starts {
    cold: Percentiles,
    prewarmed: Percentiles,
    missed: usize,
}

async fn measure_starts(node: &Node, opts: &BenchOptions) -> Result<Starts, String> {
    let tenant = Tenant::create(node, &tenant_name(), opts).await?;
    // Cold: the first request of fresh code types.
    let mut cold = Vec::new();
    for i in 0..opts.cold {
        tenant.register(&format!("cold-{i}")).await?;
        let (start, latency) = tenant.invoke(&format!("cold-{i}")).await?;
        if start == "cold" {
            cold.push(latency);
        }
    }

    // Pre-warmed: periodic code types every 4 s (4 policy minutes), interleaved by 4/n s; the
    // policy needs three idle times, so rounds 0..4 teach it and later rounds are measured.
    for k in 0..opts.periodic {
        tenant.register(&format!("tick-{k}")).await?;
    }
    let (mut prewarmed, mut missed) = (Vec::new(), 0);
    let period = Duration::from_secs(4);
    let began = tokio::time::Instant::now();
    for round in 0..4 + opts.rounds {
        for k in 0..opts.periodic {
            let slot = period * round as u32 + period.mul_f64(k as f64 / opts.periodic as f64);
            tokio::time::sleep_until(began + slot).await;
            let (start, latency) = tenant.invoke(&format!("tick-{k}")).await?;
            if round >= 4 {
                if start == "prewarmed" {
                    prewarmed.push(latency);
                } else {
                    missed += 1;
                }
            }
        }
    }
    Ok(Starts {
        cold: percentiles(cold),
        prewarmed: percentiles(prewarmed),
        missed,
    })
}

/// What the overhead and throughput runs measured.
struct Loads {
    warm: Percentiles,
    direct: Percentiles,
    through_node: Load,
    cold_starts: u64,
    direct_load: Load,
    relay_load: Load,
}

async fn measure_load<R: ContainerRuntime>(
    node: &Node,
    runtime: &R,
    node_id: &str,
    opts: &BenchOptions,
) -> Result<Loads, String> {
    let tenant = Tenant::create(node, &tenant_name(), opts).await?;
    // Gateway overhead: the node's warm container versus a container of the same spec.
    tenant.register("noop").await?;
    tenant.invoke("noop").await?;
    let direct_spec = ContainerSpec {
        node: node_id.to_owned(),
        tenant: tenant.name.clone(),
        code: String::from("direct"),
        class: SizeClass {
            memory_mib: 128,
            cpu_millis: 250,
        },
        image: opts.image.clone(),
        workload: tenant.workload,
    };
    let direct_container = runtime
        .start(&direct_spec)
        .await
        .map_err(|e| e.to_string())?;
    let none = WorkloadOverrides::default();
    let (mut warm, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..opts.overhead {
        let (start, latency) = tenant.invoke("noop").await?;
        if start == "warm" {
            warm.push(latency);
        }
        let t = Instant::now();
        runtime
            .invoke(&direct_container, &none)
            .await
            .map_err(|e| e.to_string())?;
        direct.push(ms(t));
    }
    let _ = runtime.remove(&direct_container.id).await;

    // Throughput: make `concurrency` warm containers, then loop through the node.
    tenant.register("tp").await?;
    let warmup: Vec<_> = (0..opts.concurrency).map(|_| tenant.invoke("tp")).collect();
    for w in futures_util::future::join_all(warmup).await {
        w?;
    }
    let seconds = Duration::from_secs(opts.seconds);
    let metrics = &node.shared().metrics;
    let cold_before = metrics.started(forewarm_store::Start::Cold);
    // The three loads below go over the same client (the node's in-task HTTP/1.1 runner
    // client) on the same kind of load generator: they differ only in what answers.
    let token: Arc<str> = tenant.client.token().unwrap_or_default().into();
    let node_addr = node.addr();
    let through_node = hammer(opts.concurrency, seconds, move |_| {
        Exchange::new(node_addr, "/v1/invoke/tp", Some(token.clone()), Vec::new())
    })
    .await;
    let cold_starts = metrics.started(forewarm_store::Start::Cold) - cold_before;

    // Baseline: the same load straight to containers of the same spec, one per client.
    let spec = ContainerSpec {
        code: String::from("direct-tp"),
        ..direct_spec.clone()
    };
    let started: Vec<_> =
        futures_util::future::join_all((0..opts.concurrency).map(|_| runtime.start(&spec))).await;
    let containers: Vec<_> = started.into_iter().filter_map(Result::ok).collect();
    let body = serde_json::to_vec(&WorkloadOverrides::default()).map_err(|e| e.to_string())?;
    let direct_load = if containers.len() == opts.concurrency {
        let endpoints: Vec<SocketAddr> = containers.iter().map(|c| c.endpoint).collect();
        let body = body.clone();
        hammer(opts.concurrency, seconds, move |i| {
            Exchange::new(endpoints[i], "/invoke", None, body.clone())
        })
        .await
    } else {
        Load::default()
    };
    // Ceiling: the same load through a byte relay to the same containers.
    let relay_load = if containers.len() == opts.concurrency {
        let own = OwnRuntime::start()?;
        let load = match start_relay(&own, &containers).await {
            Ok(relay) => Ok(hammer(opts.concurrency, seconds, move |_| {
                Exchange::new(relay, "/invoke", None, body.clone())
            })
            .await),
            Err(e) => Err(e),
        };
        own.stop().await;
        load?
    } else {
        Load::default()
    };
    for c in &containers {
        let _ = runtime.remove(&c.id).await;
    }
    Ok(Loads {
        warm: percentiles(warm),
        direct: percentiles(direct),
        through_node,
        cold_starts,
        direct_load,
        relay_load,
    })
}

/// What a closed-loop load run did.
#[derive(Debug, Default)]
struct Load {
    per_s: f64,
    errors: u64,
    first_error: Option<String>,
}

impl Load {
    fn failed(why: String) -> Self {
        Self {
            errors: 1,
            first_error: Some(why),
            ..Self::default()
        }
    }
}

/// One load request: `POST path` to `addr` with `body` (and a bearer token), which must
/// answer 200.
struct Exchange {
    addr: SocketAddr,
    path: &'static str,
    bearer: Option<Arc<str>>,
    body: Vec<u8>,
}

impl Exchange {
    fn new(addr: SocketAddr, path: &'static str, bearer: Option<Arc<str>>, body: Vec<u8>) -> Self {
        Self {
            addr,
            path,
            bearer,
            body,
        }
    }
}

/// `clients` closed loops, client `i` sending `request(i)` again and again until `duration`
/// has passed, over one kept-alive connection each. They run on a single-threaded async
/// runtime on a thread of their own (as `wrk -t1`: one event loop, no wake-ups across
/// threads), so the load generator costs as little of the two shared cores as it can.
async fn hammer<F>(clients: usize, duration: Duration, request: F) -> Load
where
    F: Fn(usize) -> Exchange + Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(String::from("bench-load"))
        .spawn(move || {
            let load = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(closed_loops(clients, duration, &request)),
                Err(e) => Load::failed(format!("starting the load generator: {e}")),
            };
            let _ = done.send(load);
        });
    match thread {
        Ok(_) => result
            .await
            .unwrap_or_else(|_| Load::failed(String::from("the load generator panicked"))),
        Err(e) => Load::failed(format!("starting the load generator: {e}")),
    }
}

async fn closed_loops(
    clients: usize,
    duration: Duration,
    request: &impl Fn(usize) -> Exchange,
) -> Load {
    let wire = forewarm_http::InTaskClient::default();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let (ok, errors) = (AtomicU64::new(0), AtomicU64::new(0));
    let first_error = std::sync::Mutex::new(None::<String>);
    let loops = (0..clients).map(|i| {
        let (wire, ok, errors, first_error) = (&wire, &ok, &errors, &first_error);
        let x = request(i);
        async move {
            while Instant::now() < deadline {
                let answer = wire
                    .exchange_as(x.addr, "POST", x.path, x.bearer.as_deref(), &x.body)
                    .await;
                match answer {
                    Ok(a) if a.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    failed => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let e = failed.map_or_else(
                            |e| e.to_string(),
                            |a| format!("{} {}", a.status, String::from_utf8_lossy(&a.body)),
                        );
                        first_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                }
            }
        }
    });
    futures_util::future::join_all(loops).await;
    Load {
        per_s: ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        errors: errors.load(Ordering::Relaxed),
        first_error: first_error.into_inner().unwrap_or_else(|e| e.into_inner()),
    }
}
