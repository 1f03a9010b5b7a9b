//! Three nodes in one process (fake runtime, real Raft over HTTP on loopback): the cluster
//! forms, writes on any node are seen on every node, the leader can go and writes go on, a
//! restarted node keeps its state and catches up, a member can be removed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_node::{ClusterConfig, Node, NodeConfig};
use forewarm_runtime::FakeRuntime;
use forewarm_tests::{call, json};
use serde_json::Value;

const ADMIN: &str = "admin-secret";
const SECRET: &str = "cluster-secret";
const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-south"];

fn config(dir: &Path, i: usize, listen: SocketAddr, join: Vec<String>) -> NodeConfig {
    NodeConfig {
        node_id: format!("n{i}"),
        region: REGIONS[i].into(),
        listen,
        data_dir: dir.join(format!("n{i}")),
        admin_token: Some(ADMIN.into()),
        cluster: ClusterConfig {
            secret: Some(SECRET.into()),
            join,
            ..ClusterConfig::default()
        },
        ..NodeConfig::default()
    }
}

async fn start(dir: &Path, i: usize, listen: SocketAddr, join: Vec<String>) -> Node {
    Node::start(config(dir, i, listen, join), Arc::new(FakeRuntime::new()))
        .await
        .unwrap_or_else(|e| panic!("node n{i} starts: {e}"))
}

async fn cluster_view(addr: SocketAddr) -> Value {
    let a = call(addr, "GET", "/v1/cluster", Some(ADMIN), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    json(&a)
}

/// Wait until `addr` sees a leader other than `not` and `voters` voters.
async fn leader_seen(addr: SocketAddr, not: Option<&str>, voters: usize) -> String {
    let begun = Instant::now();
    loop {
        let v = cluster_view(addr).await;
        let leader = v["leader_name"].as_str().map(str::to_owned);
        let members = v["members"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["role"] != "learner").count());
        if let Some(l) = leader
            && Some(l.as_str()) != not
            && members == voters
        {
            return l;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "no leader (other than {not:?}) with {voters} voters seen from {addr}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_tenant(addr: SocketAddr, name: &str) -> String {
    let a = call(
        addr,
        "POST",
        "/v1/tenants",
        Some(ADMIN),
        &format!(r#"{{"name":"{name}","allowed_regions":["us-east","eu-west"]}}"#),
    )
    .await;
    assert_eq!(a.status, 201, "create {name} on {addr}: {}", a.body);
    json(&a)["token"].as_str().expect("token").to_owned()
}

async fn tenant_on(addr: SocketAddr, name: &str) -> Value {
    let a = call(addr, "GET", &format!("/v1/tenants/{name}"), Some(ADMIN), "").await;
    assert_eq!(a.status, 200, "tenant {name} on {addr}: {}", a.body);
    json(&a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t01_forms_replicates_survives_the_leader_and_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let n0 = start(dir.path(), 0, any, vec![]).await;
    let seed = n0.addr().to_string();
    let n1 = start(dir.path(), 1, any, vec![seed.clone()]).await;
    let n2 = start(dir.path(), 2, any, vec![seed]).await;
    let mut nodes = vec![Some(n0), Some(n1), Some(n2)];
    let addrs: Vec<SocketAddr> = nodes.iter().flatten().map(Node::addr).collect();

    // The cluster forms: every node sees the same leader and three voters.
    let leader = leader_seen(addrs[0], None, 3).await;
    for &a in &addrs {
        assert_eq!(leader_seen(a, None, 3).await, leader);
        let v = cluster_view(a).await;
        let regions: Vec<&str> = v["members"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(|m| m["region"].as_str())
            .collect();
        for r in REGIONS {
            assert!(regions.contains(&r), "{v}");
        }
    }

    // A tenant created on a follower is visible (linearizably) on every node, and its token
    // works on another node.
    let follower = (0..3)
        .find(|&i| format!("n{i}") != leader)
        .expect("a follower");
    let token = create_tenant(addrs[follower], "acme").await;
    for &a in &addrs {
        let t = tenant_on(a, "acme").await;
        assert_eq!(
            t["allowed_regions"],
            serde_json::json!(["us-east", "eu-west"])
        );
    }
    let other = (follower + 1) % 3;
    let put = call(
        addrs[other],
        "PUT",
        "/v1/codes/f",
        Some(&token),
        r#"{"workload":{"cpu_ms":1}}"#,
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(json(&put)["version"], 1);
    let dup = call(
        addrs[other],
        "POST",
        "/v1/tenants",
        Some(ADMIN),
        r#"{"name":"acme"}"#,
    )
    .await;
    assert_eq!(dup.status, 409, "{}", dup.body);

    // The leader goes: the others elect a new one and writes go on.
    let l = (0..3).find(|&i| format!("n{i}") == leader).expect("leader");
    let leader_addr = addrs[l];
    nodes[l].take().expect("leader node").shutdown().await;
    let survivor = addrs[(l + 1) % 3];
    let new_leader = leader_seen(survivor, Some(&leader), 3).await;
    assert_ne!(new_leader, leader);
    create_tenant(survivor, "globex").await;

    // The old leader restarts on its address with its data: it keeps acme and catches up.
    let back = start(dir.path(), l, leader_addr, vec![]).await;
    assert_eq!(back.addr(), leader_addr);
    tenant_on(leader_addr, "acme").await;
    tenant_on(leader_addr, "globex").await;
    leader_seen(leader_addr, None, 3).await;
    nodes[l] = Some(back);

    // A member is removed through any node; the rest go on with two voters.
    let gone = (l + 2) % 3;
    let removed = call(
        addrs[l],
        "DELETE",
        &format!("/v1/cluster/members/n{gone}"),
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    leader_seen(addrs[l], None, 2).await;
    create_tenant(addrs[l], "initech").await;
    let missing = call(
        addrs[l],
        "DELETE",
        "/v1/cluster/members/nope",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    // The internal endpoints refuse a wrong secret.
    let wrong = call(addrs[l], "POST", "/raft/vote", Some("guess"), "{}").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);

    // A member restarted without the secret says so instead of failing silently.
    nodes[l].take().expect("node").shutdown().await;
    let mut bare = config(dir.path(), l, addrs[l], vec![]);
    bare.cluster.secret = None;
    let refused = Node::start(bare, Arc::new(FakeRuntime::new())).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("no cluster secret"), "{message}");

    for node in nodes.into_iter().flatten() {
        node.shutdown().await;
    }
}
