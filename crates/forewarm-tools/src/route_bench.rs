//! The routing decision benchmark of `forewarm bench cluster` (the Raft half runs the nodes
//! as processes, in the `forewarm` binary): two nodes in one process (loopback, fake
//! containers), one holding a warm container made by a real invocation; `router::choose` is
//! timed on the other, with nothing warm.
//!
//! Why two, and why not the Raft half here too: ractor_cluster numbers a NodeServer's
//! sessions from 0, and remote actors are registered by (session number, pid) in ractor's
//! process-wide registries. With three nodes in one process, two nodes' sessions with the
//! third hold remote actors under the same ids: links resolve to the wrong session, and
//! stopping one node (a failover) unregisters the others' — the survivors lost their session
//! with each other and stood no election for seconds (docs/cluster.md). With two nodes each
//! has one session (number 0) with different pids behind it: no clash. Separate processes,
//! as deployed, share nothing.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cold_warm::{Percentiles, percentiles};
use forewarm_raft::{Code, Command, ModelSummary, Tenant};
use forewarm_runtime::FakeRuntime;

use forewarm_cluster::Cluster;
use forewarm_node::{ClusterConfig, Node, NodeConfig};

const NODES: usize = 2;
const SECRET: &str = "bench-cluster-secret";
const BENCH_TOKEN: &str = "bench-tenant-token";

async fn start(
    data: &Path,
    i: usize,
    join: Vec<String>,
    timing: &ClusterConfig,
) -> Result<Node, String> {
    let config = NodeConfig {
        node_id: format!("bench-raft-{i}"),
        region: format!("region-{i}"),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data.join(format!("n{i}")),
        cluster: ClusterConfig {
            secret: Some(SECRET.into()),
            join,
            ..timing.clone()
        },
        ..NodeConfig::default()
    };
    Node::start(config, Arc::new(FakeRuntime::new()))
        .await
        .map_err(|e| format!("node {i}: {e}"))
}

fn cluster(node: &Node) -> &Arc<Cluster> {
    &node.shared().cluster
}

/// Time `router::choose` on two in-process nodes with `timing`: p50/p99 µs over 100 000
/// decisions, and whether all chose the remote warm fit.
pub async fn route_decisions(timing: &ClusterConfig) -> Result<(Percentiles, bool), String> {
    let data = std::env::temp_dir().join(format!("forewarm-route-bench-{}", std::process::id()));
    let mut nodes = vec![start(&data, 0, vec![], timing).await?];
    let seed = nodes[0].addr().to_string();
    let mut result = Ok(());
    for i in 1..NODES {
        match start(&data, i, vec![seed.clone()], timing).await {
            Ok(n) => nodes.push(n),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let result = match result {
        Ok(()) => timed(&nodes).await,
        Err(e) => Err(e),
    };
    for node in nodes {
        node.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&data);
    result
}

/// The tenant and code type the decisions are about, written through `node`.
async fn setup(node: &Node) -> Result<(), String> {
    let c = cluster(node);
    c.write(Command::CreateTenant(Tenant {
        id: String::from("bench"),
        token_sha256: forewarm_raft::hash_token(BENCH_TOKEN),
        max_warm: 1,
        max_memory_mib: 1024,
        allowed_regions: vec![],
        max_extra_latency_ms: None,
    }))
    .await
    .map_err(|e| e.to_string())?;
    c.write(Command::PutCode(Code {
        tenant: String::from("bench"),
        name: String::from("f"),
        workload: Default::default(),
        image: String::from("-"),
        max_memory_mib: 128,
        max_cpu_millis: 100,
        timeout_ms: forewarm_raft::DEFAULT_TIMEOUT_MS,
        max_queue: forewarm_raft::DEFAULT_MAX_QUEUE,
        features: Vec::new(),
        version: 0,
        writes: vec![],
    }))
    .await
    .map_err(|e| e.to_string())?;
    // What another region learned: the cold start the decision weighs.
    c.write(Command::PutModels {
        models: vec![ModelSummary {
            code: String::from("bench/f"),
            region: String::from("region-1"),
            samples: 100,
            need_mib: 64.0,
            cpu_p95_ms: 1.0,
            duration_p95_ms: 1.0,
            cold_start_ms: 500.0,
            demand_per_min: vec![1.0; 10],
            containers_per_min: vec![],
            trained_at_ms: 1,
        }],
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Time `router::choose` on a node with no warm container while another member holds a warm
/// fit (made by a real invocation there) and the code type's cold start is known (500 ms in
/// the published summaries).
async fn timed(nodes: &[Node]) -> Result<(Percentiles, bool), String> {
    setup(&nodes[0]).await?;
    let (home, far) = (&nodes[0], &nodes[1]);
    let client =
        forewarm_node::client::NodeClient::new(&far.addr().to_string(), Some(BENCH_TOKEN.into()))?;
    let answer = client.invoke("f", "").await.map_err(|e| e.to_string())?;
    if answer.status != 200 {
        return Err(format!(
            "warming a container on {}: {}",
            far.addr(),
            answer.body
        ));
    }
    // Wait until the home node's view of the far node shows it, with a measured round trip
    // (inventories and RTT pings travel separately).
    let far_id = cluster(far).id;
    let begun = Instant::now();
    loop {
        let seen = cluster(home)
            .remote
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&far_id)
            .is_some_and(|v| v.inventory.fits("bench/f", 64.0));
        let rtt = cluster(home).rtt.get(far_id);
        if seen && rtt.is_some() {
            break;
        }
        if begun.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "after 10 s the home node's view of the far node: warm fit {seen}, RTT {rtt:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shared = home.shared();
    let mut times = Vec::with_capacity(100_000);
    let mut remote = true;
    for _ in 0..100_000 {
        let t = Instant::now();
        let choice = forewarm_node::router::choose(shared, "bench", "bench/f", 64.0);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        remote &= matches!(choice, forewarm_node::router::Placement::There(_));
    }
    Ok((percentiles(times), remote))
}
