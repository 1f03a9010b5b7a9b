//! `forewarm bench cluster`: the replicated state on three local nodes, each a `forewarm node`
//! process (loopback, no injected delay, fsync on one disk), measured from a client:
//!
//! - **commit latency**: one code-catalog write (`PUT /v1/codes/f`, one row) acknowledged by
//!   the leader, and the same write sent to a follower (forwarded to the leader, answered once
//!   the follower applied it too);
//! - **failover**: the leader's process is SIGKILLed (a crash: no hand-over, nothing flushed);
//!   the time until a survivor names a new leader (`GET /v1/cluster`, polled every 2 ms), and
//!   until a write through a survivor is acknowledged. The old leader is restarted on its
//!   data; the next round starts once it caught up and its node-transport sessions are back.
//!
//! The routing decision time is measured in this process
//! ([`forewarm_tools::route_bench::route_decisions`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use forewarm_http::Method;
use forewarm_node::ClusterConfig;
use forewarm_node::client::NodeClient;
use forewarm_tools::cold_warm::{Percentiles, percentiles};
use serde::Serialize;

use crate::local_nodes::{Children, LocalNode, Secrets, free_port, start_cluster};
use crate::node_cmd::{docker_with_image, init_logs, runtime};

/// What to run.
#[derive(Debug, Clone)]
pub struct ClusterBenchOptions {
    /// Writes measured per path (leader, forwarded).
    pub writes: usize,
    /// Leader failovers measured.
    pub failovers: usize,
    /// Raft timing of the nodes (heartbeat and election timeouts).
    pub timing: ClusterConfig,
    /// Where the nodes keep configs, logs and data, kept afterwards (else a temporary
    /// directory, removed).
    pub data_dir: Option<PathBuf>,
    /// Mutual TLS between the members, on cluster listeners of their own.
    pub tls: bool,
}

/// What it measured (ms unless named otherwise).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterBenchReport {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Whether the members spoke mutual TLS.
    pub tls: bool,
    /// Commit latency of a write sent to the leader.
    pub commit_leader: Percentiles,
    /// Commit latency of a write sent to a follower (forwarded, applied locally).
    pub commit_forwarded: Percentiles,
    /// From the leader's SIGKILL until a survivor names a new leader.
    pub failover_elected: Percentiles,
    /// Each failover of `failover_elected`, in order, ms.
    pub failover_elected_ms: Vec<f64>,
    /// From the leader's SIGKILL until a write through a survivor was acknowledged.
    pub failover_writable: Percentiles,
    /// Election timeout range of the nodes, ms.
    pub election_timeout_ms: (u64, u64),
    /// Time of one routing decision (`router::choose`) with a remote member holding a warm
    /// fit in view (two nodes in this process), µs.
    pub route_decision_us: Percentiles,
    /// Whether those decisions chose the remote member.
    pub route_decision_remote: bool,
}

const NODES: usize = 3;
/// Longest a survivor may take to name a new leader, or a write to succeed, or a restarted
/// node to catch up.
const DEADLINE: Duration = Duration::from_secs(10);

pub fn cluster(opts: ClusterBenchOptions, json: bool) -> anyhow::Result<()> {
    init_logs();
    ensure!(opts.writes > 0, "--writes must be at least 1");
    let t = &opts.timing;
    ensure!(
        t.heartbeat_ms >= 10 && t.election_min_ms > 2 * t.heartbeat_ms,
        "need --heartbeat-ms >= 10 and an election timeout above twice the heartbeat"
    );
    let r = runtime()?.block_on(async {
        match &opts.data_dir {
            Some(dir) => measure(dir, &opts).await,
            None => {
                let tmp = std::env::temp_dir()
                    .join(format!("forewarm-raft-bench-{}", std::process::id()));
                let measured = measure(&tmp, &opts).await;
                let _ = std::fs::remove_dir_all(&tmp);
                measured
            }
        }
    })?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    println!(
        "{} local node processes, election timeout {}-{} ms, {}",
        r.nodes,
        r.election_timeout_ms.0,
        r.election_timeout_ms.1,
        if r.tls {
            "mutual TLS between members"
        } else {
            "members on the API port (secret only)"
        }
    );
    println!("{:<40} {:>6} {:>10} {:>10}", "", "n", "p50 ms", "p99 ms");
    for (name, p) in [
        ("commit, write sent to the leader", r.commit_leader),
        ("commit, write sent to a follower", r.commit_forwarded),
        ("failover: new leader known", r.failover_elected),
        ("failover: first write succeeded", r.failover_writable),
    ] {
        println!("{name:<40} {:>6} {:>10.2} {:>10.2}", p.n, p.p50, p.p99);
    }
    let each: Vec<String> = r
        .failover_elected_ms
        .iter()
        .map(|m| format!("{m:.0}"))
        .collect();
    println!("each failover (new leader known), ms: {}", each.join(" "));
    let d = r.route_decision_us;
    println!(
        "routing decision: p50 {:.2} µs, p99 {:.2} µs over {} decisions ({})",
        d.p50,
        d.p99,
        d.n,
        if r.route_decision_remote {
            "all chose the remote warm fit"
        } else {
            "NOT all remote"
        }
    );
    Ok(())
}

/// The three node processes and a client of each.
struct Bench {
    nodes: Vec<LocalNode>,
    children: Children,
    secrets: Secrets,
    admin: Vec<NodeClient>,
    tenant: Vec<NodeClient>,
}

async fn measure(data: &Path, opts: &ClusterBenchOptions) -> anyhow::Result<ClusterBenchReport> {
    // The nodes run on Docker like any node (no container is started here); one build of the
    // runner image if it is missing, rather than three racing.
    let image = forewarm_node::NodeConfig::default().runner_image;
    drop(docker_with_image(&image, None).await?);
    let t = &opts.timing;
    let names: Vec<String> = (0..NODES).map(|i| format!("bench-n{i}")).collect();
    let certs = if opts.tls {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let files = forewarm_node::tls::ensure(&data.join("tls"), &names);
        Some(files.map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let mut nodes = Vec::new();
    for (i, node_id) in names.into_iter().enumerate() {
        let api = free_port()?;
        let cluster_listen = if opts.tls { Some(free_port()?) } else { None };
        nodes.push(LocalNode {
            node_id,
            region: format!("region-{i}"),
            api,
            advertise: cluster_listen.unwrap_or(api),
            cluster_listen,
            tls: certs.as_ref().map(|c| c[i].clone()),
            source: None,
            dir: data.join(format!("n{i}")),
            policy: String::from("forewarm"),
            time_scale: 1.0,
            timing: (t.heartbeat_ms, t.election_min_ms, t.election_max_ms),
        });
    }
    let secrets = Secrets {
        cluster: forewarm_node::catalog::new_token(),
        admin: forewarm_node::catalog::new_token(),
    };
    let mut children = Children::default();
    start_cluster(&nodes, &secrets, &mut children).await?;
    let client = |n: &LocalNode, token: &str| {
        NodeClient::new(&n.api.to_string(), Some(token.to_owned())).map_err(anyhow::Error::msg)
    };
    let admin = nodes
        .iter()
        .map(|n| client(n, &secrets.admin))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body = serde_json::json!({"name": "bench", "max_warm": 1, "max_memory_mib": 1024});
    let (status, created) = admin[0]
        .json(Method::POST, "/v1/tenants", serde_json::to_vec(&body)?)
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(status == 201, "creating the tenant: {status} {created}");
    let token = created["token"]
        .as_str()
        .with_context(|| format!("no token in {created}"))?;
    let tenant = nodes
        .iter()
        .map(|n| client(n, token))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut bench = Bench {
        nodes,
        children,
        secrets,
        admin,
        tenant,
    };

    let leader = bench.leader().await?;
    let follower = (leader + 1) % NODES;
    let mut on_leader = Vec::with_capacity(opts.writes);
    let mut forwarded = Vec::with_capacity(opts.writes);
    for n in 0..opts.writes as u64 {
        for (target, out) in [(leader, &mut on_leader), (follower, &mut forwarded)] {
            let begun = Instant::now();
            bench.write(target, n).await?;
            out.push(begun.elapsed().as_secs_f64() * 1e3);
        }
    }

    let (mut elected, mut writable) = (Vec::new(), Vec::new());
    for round in 0..opts.failovers {
        let (e, w) = bench
            .failover()
            .await
            .with_context(|| format!("failover {round}"))?;
        elected.push(e);
        writable.push(w);
    }
    // Stop the processes before the in-process part shares the cores.
    drop(bench);

    let (route_decision_us, route_decision_remote) =
        forewarm_tools::route_bench::route_decisions(t)
            .await
            .map_err(anyhow::Error::msg)?;
    Ok(ClusterBenchReport {
        nodes: NODES,
        tls: opts.tls,
        commit_leader: percentiles(on_leader),
        commit_forwarded: percentiles(forwarded),
        failover_elected: percentiles(elected.clone()),
        failover_elected_ms: elected,
        failover_writable: percentiles(writable),
        election_timeout_ms: (t.election_min_ms, t.election_max_ms),
        route_decision_us,
        route_decision_remote,
    })
}

impl Bench {
    /// `GET /v1/cluster` of node `i`.
    async fn view(&self, i: usize) -> anyhow::Result<serde_json::Value> {
        let (status, view) = self.admin[i]
            .json(Method::GET, "/v1/cluster", Vec::new())
            .await
            .map_err(anyhow::Error::msg)?;
        ensure!(
            status == 200,
            "{}: /v1/cluster: {status} {view}",
            self.nodes[i].node_id
        );
        Ok(view)
    }

    /// The leader's index, as the first node that names one says (waiting up to 5 s).
    async fn leader(&self) -> anyhow::Result<usize> {
        let begun = Instant::now();
        while begun.elapsed() < Duration::from_secs(5) {
            for i in 0..NODES {
                if let Ok(view) = self.view(i).await
                    && let Some(name) = view["leader_name"].as_str()
                    && let Some(at) = self.nodes.iter().position(|n| n.node_id == name)
                {
                    return Ok(at);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!("no node names a leader after 5 s")
    }

    /// One write (a code-catalog row) through node `i`, acknowledged.
    async fn write(&self, i: usize, n: u64) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "workload": {"cpu_ms": n % 1000},
            "max_memory_mib": 128,
            "max_cpu_millis": 100,
        });
        let (status, answer) = self.tenant[i]
            .json(Method::PUT, "/v1/codes/f", serde_json::to_vec(&body)?)
            .await
            .map_err(anyhow::Error::msg)?;
        ensure!(
            status == 200 || status == 201,
            "write {n} through {}: {status} {answer}",
            self.nodes[i].node_id
        );
        Ok(())
    }

    /// Kill the leader; (ms until a survivor names another, ms until a write through it
    /// succeeded). Then restart the old leader and wait until it caught up.
    async fn failover(&mut self) -> anyhow::Result<(f64, f64)> {
        let leader = self.leader().await?;
        let old = self.nodes[leader].node_id.clone();
        let survivor = (leader + 1) % NODES;
        self.children.kill(&old)?;
        let begun = Instant::now();
        loop {
            if let Ok(view) = self.view(survivor).await
                && let Some(name) = view["leader_name"].as_str()
                && name != old
            {
                break;
            }
            ensure!(
                begun.elapsed() < DEADLINE,
                "no new leader within {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let elected = begun.elapsed().as_secs_f64() * 1e3;
        // Acknowledged writes only count: a write the survivor could not place yet (its
        // forward to a leader still settling) is retried.
        let mut last = None;
        while begun.elapsed() < DEADLINE {
            match self.write(survivor, 0).await {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if let Some(e) = last {
            bail!("no write succeeded through a survivor within {DEADLINE:?}: {e:#}");
        }
        let writable = begun.elapsed().as_secs_f64() * 1e3;

        // Back on its data; it catches up from the log.
        self.children
            .launch(&self.nodes[leader], None, &self.secrets)
            .await?;
        let target = self.view(survivor).await?["applied_index"].as_u64();
        let back = Instant::now();
        loop {
            let at = self.view(leader).await?["applied_index"].as_u64();
            if at >= target {
                break;
            }
            ensure!(
                back.elapsed() < DEADLINE,
                "restarted {old} applied {at:?} < {target:?} after {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The next round starts from a whole cluster: the restarted node's sessions with the
        // others are back (until then the quorum watch counts it as silent).
        while !self.mesh_whole().await {
            ensure!(
                back.elapsed() < DEADLINE,
                "restarted {old}: sessions with the others not back after {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok((elected, writable))
    }

    /// Whether every node reaches every other's process groups over a session.
    async fn mesh_whole(&self) -> bool {
        for i in 0..NODES {
            let Ok(view) = self.view(i).await else {
                return false;
            };
            let members = view["members"].as_array().cloned().unwrap_or_default();
            let others_reached = members
                .iter()
                .filter(|m| m["name"] != view["node"])
                .all(|m| m["groups"].as_array().is_some_and(|g| !g.is_empty()));
            if members.len() != NODES || !others_reached {
                return false;
            }
        }
        true
    }
}
