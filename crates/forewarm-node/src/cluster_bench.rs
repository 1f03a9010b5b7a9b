//! Benchmarks of the replicated state on three local nodes (one process, loopback, no injected
//! delay; containers are the in-memory fake, since only Raft is measured):
//!
//! - **commit latency**: a small write (one model summary) committed through the leader, and
//!   the same write sent to a follower (forwarded to the leader, then applied locally);
//! - **failover**: the leader's Raft node stops (as a crash: no hand-over); time until a
//!   survivor knows a new leader, and until a write through a survivor succeeds. The old
//!   leader is then restarted and catches up before the next round.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_raft::{Code, Command, ModelSummary, Tenant};
use forewarm_runtime::FakeRuntime;
use forewarm_runtime::bench::{Percentiles, percentiles};
use serde::Serialize;

use crate::cluster::Cluster;
use crate::{ClusterConfig, Node, NodeConfig};

/// What to run.
#[derive(Debug, Clone)]
pub struct ClusterBenchOptions {
    /// Writes measured per path (leader, forwarded).
    pub writes: usize,
    /// Leader failovers measured.
    pub failovers: usize,
    /// Raft timing of the nodes (heartbeat and election timeouts).
    pub timing: ClusterConfig,
}

/// What it measured (ms).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterBenchReport {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Commit latency of a write sent to the leader.
    pub commit_leader: Percentiles,
    /// Commit latency of a write sent to a follower (forwarded, applied locally).
    pub commit_forwarded: Percentiles,
    /// From the leader's stop until a survivor knows a new leader.
    pub failover_elected: Percentiles,
    /// From the leader's stop until a write through a survivor succeeded.
    pub failover_writable: Percentiles,
    /// Election timeout range of the nodes, ms.
    pub election_timeout_ms: (u64, u64),
    /// Time of one routing decision (`router::choose`) with two remote members in view, one
    /// holding a warm fit, µs.
    pub route_decision_us: Percentiles,
    /// Whether those decisions chose the remote member.
    pub route_decision_remote: bool,
}

const NODES: usize = 3;
const SECRET: &str = "bench-cluster-secret";
const BENCH_TOKEN: &str = "bench-tenant-token";

fn config(
    data: &Path,
    i: usize,
    listen: SocketAddr,
    join: Vec<String>,
    timing: &ClusterConfig,
) -> NodeConfig {
    NodeConfig {
        node_id: format!("bench-raft-{i}"),
        region: format!("region-{i}"),
        listen,
        data_dir: data.join(format!("n{i}")),
        cluster: ClusterConfig {
            secret: Some(SECRET.into()),
            join,
            ..timing.clone()
        },
        ..NodeConfig::default()
    }
}

async fn start(
    data: &Path,
    i: usize,
    listen: SocketAddr,
    join: Vec<String>,
    timing: &ClusterConfig,
) -> Result<Node, String> {
    Node::start(
        config(data, i, listen, join, timing),
        Arc::new(FakeRuntime::new()),
    )
    .await
    .map_err(|e| format!("node {i}: {e}"))
}

fn cluster(node: &Node) -> &Arc<Cluster> {
    &node.shared().cluster
}

fn summary(n: u64) -> Command {
    Command::PutModels {
        models: vec![ModelSummary {
            code: String::from("bench/f"),
            region: String::from("region-0"),
            samples: n,
            need_mib: 64.0,
            cpu_p95_ms: 1.0,
            duration_p95_ms: 1.0,
            cold_start_ms: 500.0,
            demand_per_min: vec![1.0; 10],
            trained_at_ms: n,
        }],
    }
}

/// Run both benchmarks on a fresh three-node cluster under a temporary directory.
pub async fn run(opts: ClusterBenchOptions) -> Result<ClusterBenchReport, String> {
    let data = std::env::temp_dir().join(format!("forewarm-raft-bench-{}", std::process::id()));
    let result = measure(&data, &opts).await;
    let _ = std::fs::remove_dir_all(&data);
    result
}

async fn measure(data: &Path, opts: &ClusterBenchOptions) -> Result<ClusterBenchReport, String> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let t = &opts.timing;
    let first = start(data, 0, any, vec![], t).await?;
    let seed = first.addr().to_string();
    let mut nodes = vec![first];
    for i in 1..NODES {
        nodes.push(start(data, i, any, vec![seed.clone()], t).await?);
    }
    let result = async {
        // The data the writes touch.
        let c0 = cluster(&nodes[0]).clone();
        c0.write(Command::CreateTenant(Tenant {
            id: String::from("bench"),
            token_sha256: forewarm_raft::hash_token(BENCH_TOKEN),
            max_warm: 1,
            max_memory_mib: 1024,
            allowed_regions: vec![],
        }))
        .await
        .map_err(|e| e.to_string())?;
        c0.write(Command::PutCode(Code {
            tenant: String::from("bench"),
            name: String::from("f"),
            workload: Default::default(),
            image: String::from("-"),
            max_memory_mib: 128,
            max_cpu_millis: 100,
            version: 0,
        }))
        .await
        .map_err(|e| e.to_string())?;

        let leader = leader_index(&nodes).await.ok_or("no leader")?;
        let follower = (leader + 1) % NODES;
        let mut on_leader = Vec::with_capacity(opts.writes);
        let mut forwarded = Vec::with_capacity(opts.writes);
        for n in 0..opts.writes as u64 {
            for (target, out) in [(leader, &mut on_leader), (follower, &mut forwarded)] {
                let begun = Instant::now();
                cluster(&nodes[target])
                    .write(summary(n))
                    .await
                    .map_err(|e| format!("write {n}: {e}"))?;
                out.push(begun.elapsed().as_secs_f64() * 1e3);
            }
        }

        let (mut elected, mut writable) = (Vec::new(), Vec::new());
        for round in 0..opts.failovers {
            let leader = leader_index(&nodes).await.ok_or("no leader")?;
            let old = cluster(&nodes[leader]).id;
            let survivor = (leader + 1) % NODES;
            let begun = Instant::now();
            cluster(&nodes[leader]).shutdown().await;
            let mut metrics = cluster(&nodes[survivor]).raft.metrics();
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    let l = metrics.borrow_and_update().current_leader;
                    if l.is_some() && l != Some(old) {
                        return;
                    }
                    if metrics.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await
            .map_err(|_| format!("failover {round}: no new leader within 10 s"))?;
            elected.push(begun.elapsed().as_secs_f64() * 1e3);
            cluster(&nodes[survivor])
                .write(summary(round as u64))
                .await
                .map_err(|e| format!("failover {round}: write: {e}"))?;
            writable.push(begun.elapsed().as_secs_f64() * 1e3);
            // Bring the old leader back on its address; it catches up from the log.
            let addr = nodes[leader].addr();
            let stopped = nodes.remove(leader);
            stopped.shutdown().await;
            let back = start(data, leader, addr, vec![], t).await?;
            nodes.insert(leader, back);
            let target = cluster(&nodes[survivor])
                .raft
                .metrics()
                .borrow()
                .last_applied
                .map(|l| l.index);
            cluster(&nodes[leader])
                .raft
                .wait(Some(Duration::from_secs(10)))
                .applied_index_at_least(target, "catch up")
                .await
                .map_err(|e| format!("failover {round}: restarted node: {e}"))?;
        }
        let (route_decision_us, route_decision_remote) = route_decisions(&nodes).await?;
        let c = &nodes[0].shared().config.cluster;
        Ok(ClusterBenchReport {
            route_decision_us,
            route_decision_remote,
            nodes: NODES,
            commit_leader: percentiles(on_leader),
            commit_forwarded: percentiles(forwarded),
            failover_elected: percentiles(elected),
            failover_writable: percentiles(writable),
            election_timeout_ms: (c.election_min_ms, c.election_max_ms),
        })
    }
    .await;
    for node in nodes {
        node.shutdown().await;
    }
    result
}

/// The node that is leader by its own account (waiting up to 5 s for one).
async fn leader_index(nodes: &[Node]) -> Option<usize> {
    let begun = Instant::now();
    while begun.elapsed() < Duration::from_secs(5) {
        let found = nodes.iter().position(|n| {
            let c = cluster(n);
            c.raft.metrics().borrow().current_leader == Some(c.id)
        });
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Time `router::choose` on a node with no warm container while another member holds a warm
/// fit (made by a real invocation there) and the code type's cold start is known (500 ms in
/// the published summaries).
async fn route_decisions(nodes: &[Node]) -> Result<(Percentiles, bool), String> {
    let (home, far) = (&nodes[0], &nodes[1]);
    let client = crate::client::NodeClient::new(&far.addr().to_string(), Some(BENCH_TOKEN.into()))?;
    let answer = client.invoke("f", "").await?;
    if answer.status != 200 {
        return Err(format!(
            "warming a container on {}: {}",
            far.addr(),
            answer.body
        ));
    }
    // Wait until the home node's view of the far node shows it.
    let far_id = cluster(far).id;
    let begun = Instant::now();
    loop {
        let seen = cluster(home)
            .remote
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&far_id)
            .is_some_and(|v| v.inventory.fits("bench/f", 64.0));
        if seen {
            break;
        }
        if begun.elapsed() > Duration::from_secs(10) {
            return Err(String::from(
                "the warm container never showed in the inventory",
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shared = home.shared();
    let mut times = Vec::with_capacity(100_000);
    let mut remote = true;
    for _ in 0..100_000 {
        let t = Instant::now();
        let choice = crate::router::choose(shared, "bench", "bench/f", 64.0);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        remote &= choice.is_some();
    }
    Ok((percentiles(times), remote))
}
