//! Three nodes in one process (fake runtime, real Raft over HTTP on loopback): the cluster
//! forms, writes on any node are seen on every node, the leader can go and writes go on, a
//! restarted node keeps its state and catches up, a member can be removed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_node::{ClusterConfig, Node, NodeConfig, TlsFiles};
use std::sync::atomic::Ordering;

use forewarm_runtime::{ContainerRuntime, FakeRuntime, FaultyRuntime};
use forewarm_tests::{call, invoke_keyed, json};
use forewarm_tools::delay_proxy::DelayProxy;
use serde_json::Value;

const ADMIN: &str = "admin-secret";
/// The read-only operator token (what Prometheus scrapes with).
const VIEWER: &str = "viewer-secret";
const SECRET: &str = "cluster-secret";
const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-south"];

fn config(dir: &Path, i: usize, listen: SocketAddr, join: Vec<String>) -> NodeConfig {
    NodeConfig {
        node_id: format!("n{i}"),
        region: REGIONS[i].into(),
        listen,
        data_dir: dir.join(format!("n{i}")),
        admin_token: Some(ADMIN.into()),
        viewer_token: Some(VIEWER.into()),
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
    let mut addrs: Vec<SocketAddr> = nodes.iter().flatten().map(Node::addr).collect();

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
    // An update answers its own version, and every node reads it back (linearizably).
    let update = call(
        addrs[follower],
        "PUT",
        "/v1/codes/f",
        Some(&token),
        r#"{"workload":{"cpu_ms":2},"timeout_ms":1234}"#,
    )
    .await;
    assert_eq!(update.status, 200, "{}", update.body);
    assert_eq!(json(&update)["version"], 2);
    for &a in &addrs {
        let got = call(a, "GET", "/v1/codes/f", Some(&token), "").await;
        assert_eq!(got.status, 200, "{}", got.body);
        let got = json(&got);
        assert_eq!(
            (got["version"].clone(), got["timeout_ms"].clone()),
            (2.into(), 1234.into())
        );
        assert_eq!(got["workload"]["cpu_ms"], 2);
    }
    let missing = call(addrs[other], "GET", "/v1/codes/nope", Some(&token), "").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
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

    // The old leader comes back with its data on another address: the others learn the new
    // address, and it keeps acme and catches up (globex was written while it was down).
    let back = start(dir.path(), l, any, vec![]).await;
    assert_ne!(back.addr(), leader_addr);
    addrs[l] = back.addr();
    let begun = Instant::now();
    loop {
        let v = cluster_view(survivor).await;
        let recorded = v["members"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == leader.as_str()))
            .and_then(|m| m["addr"].as_str())
            .map(str::to_owned);
        if recorded == Some(addrs[l].to_string()) {
            break;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "address not updated: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tenant_on(addrs[l], "acme").await;
    tenant_on(addrs[l], "globex").await;
    leader_seen(addrs[l], None, 3).await;
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

/// `GET /v1/cluster` on `addr` and its RTT to the member `name`.
async fn rtt_to(addr: SocketAddr, name: &str) -> (Value, Option<f64>) {
    let v = cluster_view(addr).await;
    let rtt = v["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .and_then(|m| m["rtt_ms"].as_f64());
    (v, rtt)
}

/// Three nodes on free loopback ports, n1 and n2 joining n0, once n0 sees a leader and three
/// voters.
async fn three(dir: &Path) -> (Vec<SocketAddr>, Vec<Node>) {
    let addrs: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let join = if i == 0 {
            vec![]
        } else {
            vec![addrs[0].to_string()]
        };
        nodes.push(start(dir, i, *addr, join).await);
    }
    leader_seen(addrs[0], None, 3).await;
    (addrs, nodes)
}

/// A free loopback port (bound, then released, for a node to take).
fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Register `f` (a ~300 ms cold start) through `home`, run it once at `far` (cold: its
/// container stays warm there) and train `far`'s model, then wait until `home` sees that
/// model and an RTT to `far` (node `n1`) of at least `min_rtt_ms`.
async fn warm_f_at(home: SocketAddr, far: SocketAddr, token: &str, min_rtt_ms: f64) {
    // A cold start costs ~300 ms here (the runner's init).
    let put = call(
        home,
        "PUT",
        "/v1/codes/f",
        Some(token),
        r#"{"workload":{"cpu_ms":1,"init_ms":300},"max_memory_mib":128}"#,
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.body);

    // eu-west runs f once (cold) and keeps the container warm; it learns the cold-start
    // cost and shares it. (It applies the registration a replication round trip later.)
    let begun = Instant::now();
    while call(far, "GET", "/v1/codes/f/prediction", Some(token), "")
        .await
        .status
        != 200
    {
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "f never reached eu-west"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = call(far, "POST", "/v1/invoke/f", Some(token), "").await;
    assert_eq!(json(&first)["start"], "cold", "{}", first.body);
    let trained = call(
        far,
        "GET",
        "/v1/codes/f/prediction?train=true",
        Some(token),
        "",
    )
    .await;
    assert_eq!(trained.status, 200, "{}", trained.body);

    // Home learns eu-west's model and its distance.
    let begun = Instant::now();
    loop {
        let (v, rtt) = rtt_to(home, "n1").await;
        let shared = call(home, "GET", "/v1/codes/f/prediction", Some(token), "").await;
        let seen = json(&shared)["shared"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        if rtt.is_some_and(|r| r >= min_rtt_ms) && seen {
            break;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "no RTT / model: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t02_a_request_runs_where_a_warm_fit_is_nearer_than_a_cold_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow_raft = |c: &mut NodeConfig| {
        // Delays of up to 500 ms on one link must not cost elections here.
        c.cluster.heartbeat_ms = 100;
        c.cluster.election_min_ms = 2_000;
        c.cluster.election_max_ms = 4_000;
    };
    // us-east (home) and eu-west directly; eu-west is reached by the others through a proxy
    // that delays each direction by 10 ms (a 20 ms round trip).
    let mut c0 = config(dir.path(), 0, SocketAddr::from(([127, 0, 0, 1], 0)), vec![]);
    slow_raft(&mut c0);
    let home = Node::start(c0, Arc::new(FakeRuntime::new()))
        .await
        .expect("home starts");
    let b_listen = free_port();
    let proxy = DelayProxy::start(b_listen, Duration::from_millis(10)).await;
    let mut c1 = config(dir.path(), 1, b_listen, vec![home.addr().to_string()]);
    c1.cluster.advertise = Some(proxy.addr().to_string());
    slow_raft(&mut c1);
    let far = Node::start(c1, Arc::new(FakeRuntime::new()))
        .await
        .expect("eu-west starts");
    leader_seen(home.addr(), None, 2).await;

    let token = create_tenant(home.addr(), "acme").await;
    warm_f_at(home.addr(), far.addr(), &token, 15.0).await;
    // Home has nothing warm; eu-west's warm fit is 20 ms away, a cold start ~300 ms: eu-west.
    tokio::time::sleep(Duration::from_millis(600)).await; // a fresh inventory
    let near = call(home.addr(), "POST", "/v1/invoke/f", Some(&token), "").await;
    assert_eq!(near.status, 200, "{}", near.body);
    let near = json(&near);
    assert_eq!(near["region"], "eu-west", "{near}");
    assert_eq!(near["start"], "warm", "{near}");
    // Back to back, before eu-west's next inventory: the container that served the last
    // request is idle again there, and home counts on it (no cold start at home).
    for _ in 0..5 {
        let again = json(&call(home.addr(), "POST", "/v1/invoke/f", Some(&token), "").await);
        assert_eq!(
            (again["region"].as_str(), again["start"].as_str()),
            (Some("eu-west"), Some("warm")),
            "{again}"
        );
    }

    // A tenant whose latency budget (5 ms) is below the 20 ms round trip: its own warm fit
    // in eu-west is not offered, and home starts one. Its budget is shown, changed and
    // removed by PATCH; out of bounds it is refused.
    let near_only = create_tenant(home.addr(), "near-only").await;
    warm_f_at(home.addr(), far.addr(), &near_only, 15.0).await;
    let patch = |body: &'static str| {
        call(
            home.addr(),
            "PATCH",
            "/v1/tenants/near-only",
            Some(ADMIN),
            body,
        )
    };
    let set = patch(r#"{"max_extra_latency_ms":5}"#).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(json(&set)["max_extra_latency_ms"], 5, "{}", set.body);
    let bad = patch(r#"{"max_extra_latency_ms":60001}"#).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("invalid_latency_budget"), "{}", bad.body);
    tokio::time::sleep(Duration::from_millis(600)).await; // a fresh inventory
    let held = json(&call(home.addr(), "POST", "/v1/invoke/f", Some(&near_only), "").await);
    assert_eq!(
        (held["region"].as_str(), held["start"].as_str()),
        (Some("us-east"), Some("cold")),
        "{held}"
    );
    let cleared = patch(r#"{"max_extra_latency_ms":null}"#).await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert!(
        json(&cleared).get("max_extra_latency_ms").is_none(),
        "{}",
        cleared.body
    );

    // eu-west 500 ms away (more than a cold start): home runs it itself, cold.
    proxy.set_delay(Duration::from_millis(250));
    let begun = Instant::now();
    loop {
        let (v, rtt) = rtt_to(home.addr(), "n1").await;
        if rtt.is_some_and(|r| r > 400.0) {
            // The latest samples are shown too (at most 5): the newest is the far one.
            let far = v["members"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["name"] == "n1"))
                .map(|m| m["rtt_recent_ms"].clone())
                .unwrap_or_default();
            let recent: Vec<f64> = far
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            assert!((1..=5).contains(&recent.len()), "{v}");
            assert!(recent.last().is_some_and(|r| *r >= 500.0), "{v}");
            break;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "RTT did not rise: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let local = call(home.addr(), "POST", "/v1/invoke/f", Some(&token), "").await;
    assert_eq!(local.status, 200, "{}", local.body);
    let local = json(&local);
    assert_eq!(local["region"], "us-east", "{local}");
    assert_eq!(local["start"], "cold", "{local}");

    far.shutdown().await;
    home.shutdown().await;
}

/// A region that sees a code type for the first time keeps warm what the other regions'
/// models forecast: here eu-west's model says 120 invocations a minute of 1 s each (2 in
/// flight), so us-east's first request of `f` (cold) comes with a second container pre-warmed
/// beside it; `g`, with no shared model, gets only the container of its request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t03_first_sight_prewarms_from_the_shared_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), 0, SocketAddr::from(([127, 0, 0, 1], 0)), vec![]).await;
    let token = create_tenant(node.addr(), "acme").await;
    for code in ["f", "g"] {
        let put = call(
            node.addr(),
            "PUT",
            &format!("/v1/codes/{code}"),
            Some(&token),
            r#"{"workload":{"cpu_ms":1},"max_memory_mib":128}"#,
        )
        .await;
        assert_eq!(put.status, 201, "{}", put.body);
    }
    // What eu-west's Predictor would publish after training on its traffic.
    let model = forewarm_raft::ModelSummary {
        code: String::from("acme/f"),
        region: String::from("eu-west"),
        samples: 500,
        need_mib: 64.0,
        cpu_p95_ms: 900.0,
        duration_p95_ms: 1000.0,
        cold_start_ms: 300.0,
        demand_per_min: vec![120.0; 10],
        containers_per_min: vec![],
        trained_at_ms: 0,
    };
    let applied = node
        .shared()
        .cluster
        .write(forewarm_raft::Command::PutModels {
            models: vec![model],
        })
        .await
        .expect("the model is written");
    assert_eq!(applied, forewarm_raft::Applied::Models { kept: 1 });

    for code in ["f", "g"] {
        let a = call(
            node.addr(),
            "POST",
            &format!("/v1/invoke/{code}"),
            Some(&token),
            "",
        )
        .await;
        assert_eq!(json(&a)["start"], "cold", "{}", a.body);
    }
    let containers = |pool: &Value, code: &str| -> Vec<Value> {
        pool["containers"]
            .as_array()
            .map(|c| c.iter().filter(|e| e["code"] == code).cloned().collect())
            .unwrap_or_default()
    };
    let begun = Instant::now();
    let pool = loop {
        let pool = json(&call(node.addr(), "GET", "/v1/pool", Some(&token), "").await);
        if containers(&pool, "f").len() >= 2 || begun.elapsed() > Duration::from_secs(10) {
            break pool;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let f = containers(&pool, "f");
    assert_eq!(f.len(), 2, "{pool}");
    assert_eq!(
        f.iter().filter(|e| e["prewarmed"] == true).count(),
        1,
        "{pool}"
    );
    assert_eq!(containers(&pool, "g").len(), 1, "{pool}");
    // The pre-warmed one serves the next request.
    let next = call(node.addr(), "POST", "/v1/invoke/f", Some(&token), "").await;
    let start = json(&next)["start"].clone();
    assert!(start == "prewarmed" || start == "warm", "{}", next.body);
    node.shutdown().await;
}

/// A member cut off from the others does not stand for election while it cannot hear a
/// majority, so when it comes back the leader stays (no term raised for nothing). Every node
/// sits behind a delay proxy and calls the others from its own loopback address, so a cut is
/// "60 s each way" between one node and the rest, in both directions. A member that hears
/// no majority (the cut follower, then the cut leader) answers `/readyz` 503 saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t04_a_cut_off_member_does_not_unseat_the_leader_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sources: Vec<std::net::IpAddr> = (0..3u8)
        .map(|i| std::net::IpAddr::from([127, 0, 0, 31 + i]))
        .collect();
    let listens: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect();
    let mut proxies = Vec::new();
    for l in &listens {
        proxies.push(DelayProxy::start(*l, Duration::ZERO).await);
    }
    let mut nodes = Vec::new();
    for i in 0..3 {
        let join = if i == 0 {
            vec![]
        } else {
            vec![proxies[0].addr().to_string()]
        };
        let mut c = config(dir.path(), i, listens[i], join);
        c.cluster.advertise = Some(proxies[i].addr().to_string());
        c.cluster.source_addr = Some(sources[i]);
        // Timing for far-apart members (what `forewarm up --regions` sets).
        c.cluster.heartbeat_ms = 300;
        c.cluster.election_min_ms = 1_000;
        c.cluster.election_max_ms = 2_000;
        nodes.push(
            Node::start(c, Arc::new(FakeRuntime::new()))
                .await
                .unwrap_or_else(|e| panic!("n{i} starts: {e}")),
        );
    }
    let leader = leader_seen(listens[0], None, 3).await;
    let cut = (0..3)
        .find(|&i| format!("n{i}") != leader)
        .expect("a follower");
    let term = |v: &Value| v["term"].as_u64().unwrap_or(0);
    let before = term(&cluster_view(listens[cut]).await);

    // Cut: nothing from `cut` reaches the others' proxies in time, nothing reaches its own.
    let far = Duration::from_secs(60);
    for (i, p) in proxies.iter().enumerate() {
        if i == cut {
            p.set_delay(far);
        } else {
            p.set_delay_from(sources[cut], far);
        }
    }
    // Long enough for several election timeouts.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let alone = cluster_view(listens[cut]).await;
    assert_eq!(
        term(&alone),
        before,
        "the cut-off member stood for election: {alone}"
    );
    // It still names its leader, and says it is not ready: it hears only itself.
    assert_eq!(alone["leader_name"], leader.as_str(), "{alone}");
    let unready = call(listens[cut], "GET", "/readyz", None, "").await;
    assert_eq!(unready.status, 503, "{}", unready.body);
    assert!(
        unready.body.contains("hears 1 of 3 voters"),
        "{}",
        unready.body
    );
    let others = call(listens[(cut + 1) % 3], "GET", "/readyz", None, "").await;
    assert_eq!(
        others.status, 200,
        "two of three still ready: {}",
        others.body
    );

    // Healed: the same leader, in the same term, and the member is back in step and ready.
    for p in &proxies {
        p.set_delay(Duration::ZERO);
        p.set_delay_from(sources[cut], Duration::ZERO);
    }
    let created = create_tenant(listens[(cut + 1) % 3], "after").await;
    assert!(!created.is_empty());
    tenant_on(listens[cut], "after").await;
    let v = cluster_view(listens[cut]).await;
    assert_eq!(v["leader_name"], leader.as_str(), "{v}");
    assert_eq!(term(&v), before, "{v}");
    until(listens[cut], "GET", "/readyz", "", 200).await;

    // The leader cut off keeps its leadership for a while (no quorum check in openraft
    // 0.9), but stops saying it is ready within a second or so.
    let l: usize = leader[1..].parse().expect("a node name n<i>");
    for (i, p) in proxies.iter().enumerate() {
        if i == l {
            p.set_delay(far);
        } else {
            p.set_delay_from(sources[l], far);
        }
    }
    let cut_leader = until(listens[l], "GET", "/readyz", "", 503).await;
    assert!(
        cut_leader.body.contains("hears 1 of 3 voters"),
        "{}",
        cut_leader.body
    );
    for n in nodes {
        n.shutdown().await;
    }
}

/// Member `name`'s process groups as `addr` reaches them over the node transport.
async fn groups_seen(addr: SocketAddr, name: &str) -> Vec<String> {
    let v = cluster_view(addr).await;
    v["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .and_then(|m| m["groups"].as_array())
        .map(|g| {
            g.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Wait (up to 20 s) until every node in `from` sees all of member `i`'s groups (`present`) or none.
async fn wait_for_groups(from: &[SocketAddr], i: usize, present: bool) {
    let (region, name) = (REGIONS[i], format!("n{i}"));
    let all = vec![
        format!("pool/{region}"),
        format!("pool@{name}"),
        format!("router/{region}"),
        format!("router@{name}"),
    ];
    let want = if present { all } else { Vec::new() };
    let begun = Instant::now();
    for addr in from {
        loop {
            let seen = groups_seen(*addr, &name).await;
            if seen == want {
                break;
            }
            assert!(
                begun.elapsed() < Duration::from_secs(20),
                "{addr} sees {name}'s groups {seen:?}, expected {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t05_members_reach_each_others_process_groups_over_the_transport() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addrs, nodes) = three(dir.path()).await;
    let mut nodes: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    // Every member reaches the others' PoolLink and RouterLink, per region and per node.
    for i in 0..3 {
        let others: Vec<SocketAddr> = (0..3).filter(|&j| j != i).map(|j| addrs[j]).collect();
        wait_for_groups(&others, i, true).await;
        assert!(groups_seen(addrs[i], &format!("n{i}")).await.is_empty());
    }
    // A member that stops leaves the others' view (its sessions close); restarted, it is back.
    nodes[2].take().expect("n2").shutdown().await;
    wait_for_groups(&addrs[..2], 2, false).await;
    nodes[2] = Some(start(dir.path(), 2, addrs[2], vec![]).await);
    wait_for_groups(&addrs[..2], 2, true).await;
    wait_for_groups(&addrs[2..], 0, true).await;

    // The transport is opened with the cluster secret and an Upgrade header only.
    let wrong = call(addrs[0], "GET", "/raft/mesh", Some("guess"), "").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let plain = call(addrs[0], "GET", "/raft/mesh", Some(SECRET), "").await;
    assert_eq!(plain.status, 400, "{}", plain.body);
    for node in nodes.into_iter().flatten() {
        node.shutdown().await;
    }
}

/// Home (us-east, a fake runtime) and eu-west (a fake runtime with faults) in one cluster, a
/// tenant `acme`, and code type `f` warm at eu-west only, with home's inventory fresh.
struct Pair {
    _dir: tempfile::TempDir,
    home: Node,
    home_rt: Arc<FakeRuntime>,
    far: Node,
    far_rt: Arc<FaultyRuntime<FakeRuntime>>,
    token: String,
}

async fn warm_pair() -> Pair {
    let dir = tempfile::tempdir().expect("tempdir");
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let home_rt = Arc::new(FakeRuntime::new());
    let home = Node::start(config(dir.path(), 0, any_port, vec![]), home_rt.clone())
        .await
        .expect("home starts");
    let far_rt = Arc::new(FaultyRuntime::new(FakeRuntime::new()));
    let join = vec![home.addr().to_string()];
    let far = Node::start(config(dir.path(), 1, any_port, join), far_rt.clone())
        .await
        .expect("eu-west starts");
    leader_seen(home.addr(), None, 2).await;
    let token = create_tenant(home.addr(), "acme").await;
    warm_f_at(home.addr(), far.addr(), &token, 0.0).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // a fresh inventory
    Pair {
        _dir: dir,
        home,
        home_rt,
        far,
        far_rt,
        token,
    }
}

/// At most once across regions: an invocation forwarded to eu-west's warm container that
/// fails there after running is answered 502 at home, never run again at home; one eu-west
/// declines (nothing ran) is run at home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t06_a_forwarded_invocation_that_may_have_run_is_never_run_again_at_home() {
    let Pair {
        _dir,
        home,
        home_rt,
        far,
        far_rt,
        token,
    } = warm_pair().await;
    let near = call(home.addr(), "POST", "/v1/invoke/f", Some(&token), "").await;
    assert_eq!(json(&near)["region"], "eu-west", "{}", near.body);
    let ran = far_rt.faults.ran.load(Ordering::Acquire);

    // It runs at eu-west and fails there: 502 at home, run once, nothing started at home.
    far_rt.faults.fail_invokes.store(1, Ordering::Release);
    let failed = call(home.addr(), "POST", "/v1/invoke/f", Some(&token), "").await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert!(
        json(&failed)["message"]
            .as_str()
            .is_some_and(|m| m.contains("not run again")),
        "{}",
        failed.body
    );
    assert_eq!(
        far_rt.faults.ran.load(Ordering::Acquire),
        ran + 1,
        "ran once"
    );
    let at_home = home_rt.list("n0").await.expect("list").len();
    assert_eq!(at_home, 0, "home started nothing for it");

    // eu-west has no warm container left (the failed one is removed): a forward is
    // declined there, nothing ran, and home runs it itself.
    let again = call(home.addr(), "POST", "/v1/invoke/f", Some(&token), "").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(far_rt.faults.ran.load(Ordering::Acquire), ran + 1);
    far.shutdown().await;
    home.shutdown().await;
}

/// A key crosses regions: an invocation with an `Idempotency-Key` forwarded to eu-west runs
/// there once, and the same key sent to eu-west itself is answered from that run; a key that
/// ran at eu-west first is not run again when home forwards it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t07_an_idempotency_key_forwarded_to_a_member_runs_once_there() {
    let Pair {
        _dir,
        home,
        far,
        far_rt,
        token,
        ..
    } = warm_pair().await;
    let ran = || far_rt.faults.ran.load(Ordering::Acquire);

    // Forwarded with k1: it runs at eu-west.
    let before = ran();
    let first = invoke_keyed(home.addr(), &token, "f", "k1", "").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(json(&first)["region"], "eu-west", "{}", first.body);
    assert_eq!(ran(), before + 1);
    // The client retries k1 at eu-west: the answer of that run, nothing runs.
    let retried = invoke_keyed(far.addr(), &token, "f", "k1", "").await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.header("x-forewarm-replayed"), Some("true"));
    assert_eq!(json(&retried)["container"], json(&first)["container"]);
    assert_eq!(ran(), before + 1, "k1 ran once");

    // k2 runs at eu-west first (sent there); home forwards its retry there: not run again.
    let there = invoke_keyed(far.addr(), &token, "f", "k2", "").await;
    assert_eq!(there.status, 200, "{}", there.body);
    assert_eq!(ran(), before + 2);
    tokio::time::sleep(Duration::from_millis(600)).await; // its container idle again
    let via_home = invoke_keyed(home.addr(), &token, "f", "k2", "").await;
    assert_eq!(via_home.status, 200, "{}", via_home.body);
    assert_eq!(json(&via_home)["region"], "eu-west", "{}", via_home.body);
    assert_eq!(ran(), before + 2, "k2 ran once");
    far.shutdown().await;
    home.shutdown().await;
}

/// `text` with every byte but ASCII letters and digits percent-encoded (a URL query value).
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `forewarm_*` metric names a PromQL expression reads (a histogram's `_bucket` series
/// by their own name).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("forewarm_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// A child process killed when dropped (a failing assertion must not leave it running).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real Prometheus (Debian's `prometheus`; `make test-tools` installs it) scrapes three
/// nodes with `cluster/prometheus.yml` (the nodes' addresses put in place of the compose
/// cluster's, a 1 s interval) and answers queries on what the nodes counted: every target up,
/// with its region, and the invocations each served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t08_prometheus_scrapes_every_node_with_the_shipped_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addrs, nodes) = three(dir.path()).await;
    let token = create_tenant(addrs[0], "acme").await;
    register(
        addrs[0],
        &token,
        "f",
        r#"{"workload":{"cpu_ms":1,"init_ms":10}}"#,
    )
    .await;
    for _ in 0..3 {
        let a = call(addrs[0], "POST", "/v1/invoke/f", Some(&token), "").await;
        assert_eq!(a.status, 200, "{}", a.body);
    }

    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster/prometheus.yml"),
    )
    .expect("cluster/prometheus.yml");
    let mut config = shipped.replace("scrape_interval: 5s", "scrape_interval: 1s");
    config = config.replace("scrape_timeout: 4s", "scrape_timeout: 900ms");
    for (i, addr) in addrs.iter().enumerate() {
        let compose = format!("127.0.0.1:{}", 7101 + i);
        assert!(
            config.contains(&compose),
            "{compose} in cluster/prometheus.yml"
        );
        config = config.replace(&compose, &addr.to_string());
    }
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, config).expect("writes the config");
    // The shipped config scrapes with the viewer token from a file beside it.
    std::fs::write(dir.path().join("viewer-token"), VIEWER).expect("writes the token");
    let web = free_port();
    let _prometheus = Killed(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus: make test-tools installs it)"),
    );
    // Up to 30 s: Prometheus starts, scrapes each node at least once.
    let query = |q: &'static str| async move {
        let path = format!("/api/v1/query?query={q}");
        match forewarm_tests::try_call(web, "GET", &path, None, "").await {
            Some(a) if a.status == 200 => Some(json(&a)),
            _ => None,
        }
    };
    let begun = Instant::now();
    let (up, served) = loop {
        let up = query("up%7Bjob%3D%22forewarm%22%7D").await;
        let served = query("sum%20by%20(region)%20(forewarm_invocations_total)").await;
        if let (Some(up), Some(served)) = (up, served)
            && up["data"]["result"].as_array().map(Vec::len) == Some(3)
            && served["data"]["result"].as_array().map(Vec::len) == Some(3)
        {
            break (up, served);
        }
        assert!(
            begun.elapsed() < Duration::from_secs(30),
            "Prometheus did not scrape the three nodes within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let value = |r: &Value| r["value"][1].as_str().unwrap_or_default().to_owned();
    for target in up["data"]["result"].as_array().expect("result") {
        assert_eq!(value(target), "1", "{target}");
    }
    let by_region: std::collections::BTreeMap<String, String> = served["data"]["result"]
        .as_array()
        .expect("result")
        .iter()
        .map(|r| {
            (
                r["metric"]["region"].as_str().unwrap_or("").to_owned(),
                value(r),
            )
        })
        .collect();
    // The three invocations ran at us-east (the request's node: nothing warm elsewhere).
    assert_eq!(
        by_region.get("us-east").map(String::as_str),
        Some("3"),
        "{by_region:?}"
    );
    assert_eq!(
        by_region.get("eu-west").map(String::as_str),
        Some("0"),
        "{by_region:?}"
    );
    assert_eq!(
        by_region.get("ap-south").map(String::as_str),
        Some("0"),
        "{by_region:?}"
    );

    // Every query of the shipped Grafana dashboard is valid PromQL to this Prometheus, and
    // every forewarm metric it names is one the nodes export.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cluster/grafana/forewarm.json"),
        )
        .expect("cluster/grafana/forewarm.json"),
    )
    .expect("the dashboard is JSON");
    let exported = call(addrs[0], "GET", "/metrics", Some(ADMIN), "")
        .await
        .body;
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let path = format!("/api/v1/query?query={}", percent_encoded(expr));
            let answer = forewarm_tests::try_call(web, "GET", &path, None, "")
                .await
                .expect("Prometheus answers");
            assert_eq!(
                (answer.status, json(&answer)["status"].clone()),
                (200, Value::from("success")),
                "{expr}: {}",
                answer.body
            );
            for name in metric_names(expr) {
                assert!(
                    exported.contains(&format!("\n{name}")),
                    "{name} (in {expr:?}) is not exported"
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 9, "{queries} queries");
    for node in nodes {
        node.shutdown().await;
    }
}

/// A member started with its internal endpoints on a cluster listener of their own, over
/// mutual TLS with the certificates in `tls`.
async fn start_tls(dir: &Path, tls: &Path, i: usize, join: Vec<String>) -> Node {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut c = config(dir, i, any, join);
    c.cluster.listen = Some(any);
    c.cluster.tls = Some(TlsFiles::in_dir(tls, &format!("n{i}")));
    Node::start(c, Arc::new(FakeRuntime::new()))
        .await
        .unwrap_or_else(|e| panic!("node n{i} starts over TLS: {e}"))
}

/// `openssl s_client` to `addr` asking `GET /raft/mesh`, with `extra` arguments (a client
/// certificate or none): whether an HTTP answer came back, and what openssl printed.
fn s_client(addr: SocketAddr, ca: &Path, extra: &[&Path]) -> (bool, String) {
    use std::io::Write;
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["s_client", "-quiet", "-verify_return_error", "-servername"])
        .arg(forewarm_node::tls::CLUSTER_NAME)
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(ca);
    if let [cert, key] = extra {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl runs (scripts/install-test-tools.sh installs it)");
    let request = b"GET /raft/mesh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let _ = child.stdin.take().expect("stdin").write_all(request);
    let out = child.wait_with_output().expect("openssl ends");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        stdout.starts_with("HTTP/1.1"),
        format!("{stdout}\n{stderr}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t09_members_speak_mutual_tls_on_a_listener_of_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    forewarm_node::tls::new_ca(&tls).expect("CA");
    for name in ["n0", "n1", "n2", "intruder"] {
        forewarm_node::tls::node_cert(&tls, name, &tls).expect("node certificate");
    }
    let other = dir.path().join("other-ca");
    forewarm_node::tls::new_ca(&other).expect("another CA");
    forewarm_node::tls::node_cert(&other, "n1", &other).expect("n1 of another CA");

    let n0 = start_tls(dir.path(), &tls, 0, vec![]).await;
    let seed = n0.cluster_addr().expect("a cluster listener").to_string();
    let n1 = start_tls(dir.path(), &tls, 1, vec![seed.clone()]).await;
    let n2 = start_tls(dir.path(), &tls, 2, vec![seed]).await;
    let nodes = [n0, n1, n2];
    let leader = leader_seen(nodes[0].addr(), None, 3).await;
    for n in &nodes {
        assert_eq!(leader_seen(n.addr(), None, 3).await, leader);
    }
    // Writes through any member (forwarded to the leader over TLS) reach every member, and
    // the transport sessions form over TLS too.
    create_tenant(nodes[1].addr(), "acme").await;
    for n in &nodes {
        tenant_on(n.addr(), "acme").await;
    }
    let begun = Instant::now();
    loop {
        let v = cluster_view(nodes[0].addr()).await;
        let reached = v["members"]
            .as_array()
            .expect("members")
            .iter()
            .filter(|m| m["rtt_ms"].is_number())
            .count();
        if reached == 2 {
            break;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "no sessions: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The client API no longer serves the internal endpoints.
    let api = call(nodes[0].addr(), "POST", "/raft/vote", Some(SECRET), "{}").await;
    assert_eq!(api.status, 404, "{}", api.body);
    let internal = nodes[0].cluster_addr().expect("cluster listener");
    // Plain HTTP to the cluster listener gets no HTTP answer.
    let plain = forewarm_http::HttpClient::default()
        .call(
            forewarm_http::Method::POST,
            internal,
            "/raft/vote",
            Some(SECRET),
            forewarm_http::Bytes::from_static(b"{}"),
        )
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    // openssl without a client certificate fails the handshake; with n1's it is answered.
    let ca = tls.join("ca.pem");
    let (answered, said) = s_client(internal, &ca, &[]);
    assert!(!answered, "answered without a client certificate: {said}");
    let n1 = TlsFiles::in_dir(&tls, "n1");
    let (answered, said) = s_client(internal, &ca, &[&n1.cert, &n1.key]);
    assert!(answered, "no answer with n1's certificate: {said}");

    let post = |files: TlsFiles, from: &'static str, path: &'static str, body: String| async move {
        let tls = forewarm_node::tls::ClusterTls::load(&files).expect("loads");
        let client = forewarm_http::HttpClient::tls(
            None,
            (*tls.client).clone(),
            forewarm_node::tls::CLUSTER_NAME,
            from,
        )
        .expect("client");
        client
            .call(
                forewarm_http::Method::POST,
                internal,
                path,
                Some(SECRET),
                body.into(),
            )
            .await
    };
    // A certificate of another CA fails the handshake: nothing was sent.
    let foreign = post(
        TlsFiles::in_dir(&other, "n1"),
        "n1",
        "/raft/read-index",
        "null".into(),
    )
    .await
    .expect_err("another CA's certificate");
    assert!(foreign.not_sent(), "{foreign}");
    // Posted with `files` naming itself `from`: the status, and whether the body says `says`.
    let refused = |files: TlsFiles, from: &'static str, path: &'static str, body: String| {
        let post = &post;
        async move {
            let (status, _, body) = post(files, from, path, body).await.expect("an answer");
            (status.as_u16(), String::from_utf8_lossy(&body).into_owned())
        }
    };
    // A certificate of this CA for a node that is not a member: no forwarded write, and no
    // Raft RPC carrying a member's vote.
    let intruder = || TlsFiles::in_dir(&tls, "intruder");
    let (status, body) = refused(intruder(), "intruder", "/raft/read-index", "null".into()).await;
    assert_eq!(
        (status, body.contains("not a member")),
        (403, true),
        "{body}"
    );
    let vote = format!(
        r#"{{"vote":{{"leader_id":{{"term":99,"node_id":{}}},"committed":false}},"last_log_id":null}}"#,
        forewarm_raft::raft_id("n1")
    );
    let (status, body) = refused(intruder(), "intruder", "/raft/vote", vote.clone()).await;
    assert_eq!(
        (status, body.contains("certificate")),
        (400, true),
        "{body}"
    );
    // A member's certificate does not speak for another member.
    let (status, body) = refused(TlsFiles::in_dir(&tls, "n2"), "n1", "/raft/vote", vote).await;
    assert_eq!(
        (status, body.contains("not valid for")),
        (403, true),
        "{body}"
    );
    // None of it moved the leader.
    assert_eq!(leader_seen(nodes[2].addr(), None, 3).await, leader);
    for n in nodes {
        n.shutdown().await;
    }
}

/// Register `f` (1 ms of CPU) through `addr`.
async fn register_f(addr: SocketAddr, token: &str) {
    register(addr, token, "f", r#"{"workload":{"cpu_ms":1}}"#).await;
}

/// Register code type `code` as `body` through `addr`.
async fn register(addr: SocketAddr, token: &str, code: &str, body: &str) {
    let put = call(addr, "PUT", &format!("/v1/codes/{code}"), Some(token), body).await;
    assert_eq!(put.status, 201, "{}", put.body);
}

/// Wait (up to 10 s) until `GET path` with `token` answers `status` on `addr`.
async fn answers(addr: SocketAddr, path: &str, token: &str, status: u16) {
    until(addr, "GET", path, token, status).await;
}

/// Ask `method path` of `addr` until the answer's status is `status` (a change applied
/// through Raft, or a member's inventory, reaches each node a moment later); that answer.
async fn until(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    status: u16,
) -> forewarm_tests::Answer {
    let begun = Instant::now();
    loop {
        let a = call(addr, method, path, Some(token), "").await;
        if a.status == status {
            return a;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "{addr} {method} {path}: {} {} (want {status})",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_a_tenant_is_rotated_changed_and_deleted_and_an_image_allowed_on_every_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    forewarm_node::tls::ensure(&tls, &["n0", "n1", "n2"]).expect("certificates");
    let n0 = start_tls(dir.path(), &tls, 0, vec![]).await;
    let seed = n0.cluster_addr().expect("a cluster listener").to_string();
    let n1 = start_tls(dir.path(), &tls, 1, vec![seed.clone()]).await;
    let n2 = start_tls(dir.path(), &tls, 2, vec![seed]).await;
    let nodes = [n0, n1, n2];
    let addrs: Vec<SocketAddr> = nodes.iter().map(Node::addr).collect();
    leader_seen(addrs[0], None, 3).await;
    let old = create_tenant(addrs[0], "acme").await;
    // n1 authenticates from what it has applied: wait (a linearizable read) until it has
    // applied the creation before its token is used there.
    answers(addrs[1], "/v1/tenants/acme", ADMIN, 200).await;
    register_f(addrs[1], &old).await;
    for &a in &addrs {
        answers(a, "/v1/codes/f", &old, 200).await;
    }

    // Rotated through n1: the old token stops working on every member, the new one works.
    let rotated = call(addrs[1], "POST", "/v1/tenants/acme/token", Some(ADMIN), "").await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = json(&rotated)["token"].as_str().expect("token").to_owned();
    for &a in &addrs {
        answers(a, "/v1/codes/f", &old, 401).await;
        answers(a, "/v1/codes/f", &new, 200).await;
    }

    // A quota changed through n2 is what every member reads.
    let changed = call(
        addrs[2],
        "PATCH",
        "/v1/tenants/acme",
        Some(ADMIN),
        r#"{"max_warm":3}"#,
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    for &a in &addrs {
        assert_eq!(tenant_on(a, "acme").await["max_warm"], 3);
    }

    // An image allowed through n0 may be named on n2 (the list is replicated).
    let images = call(
        addrs[0],
        "PUT",
        "/v1/images",
        Some(ADMIN),
        r#"{"images":["acme/tool:1"]}"#,
    )
    .await;
    assert_eq!(images.status, 200, "{}", images.body);
    let tool = call(
        addrs[2],
        "PUT",
        "/v1/codes/tool",
        Some(&new),
        r#"{"image":"acme/tool:1"}"#,
    )
    .await;
    assert_eq!(tool.status, 201, "{}", tool.body);

    // Deleted through n2: gone everywhere, its token and its code type with it.
    let deleted = call(addrs[2], "DELETE", "/v1/tenants/acme", Some(ADMIN), "").await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    for &a in &addrs {
        answers(a, "/v1/tenants/acme", ADMIN, 404).await;
        answers(a, "/v1/codes/f", &new, 401).await;
    }
    // A tenant of the same name starts afresh: the old code type is not its.
    let again = create_tenant(addrs[0], "acme").await;
    for &a in &addrs {
        answers(a, "/v1/codes/f", &again, 404).await;
    }
    for n in nodes {
        n.shutdown().await;
    }
}

/// Invoke `f` through `addr` until the answer's status is `status`: its body, with its
/// `Retry-After` as `retry_after`.
async fn invoke_until(addr: SocketAddr, token: &str, status: u16) -> Value {
    let a = until(addr, "POST", "/v1/invoke/f", token, status).await;
    let mut v = json(&a);
    if let Some(r) = a.header("retry-after") {
        v["retry_after"] = r.into();
    }
    v
}

/// A tenant's `allowed_regions` bind in the region a request arrives in too: sent to a node
/// of a region it may not use, the request runs in a member of one it may (a container is
/// started there for it), never at home; with no member of its regions in the cluster it is
/// refused 403, and with those members gone 503 with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t11_a_request_runs_only_in_regions_its_tenant_may_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addrs, mut nodes) = three(dir.path()).await;
    // us-east and eu-west only.
    let token = create_tenant(addrs[0], "acme").await;
    register_f(addrs[0], &token).await;

    // Sent to ap-south (n2): run in us-east or eu-west, cold (nothing was warm anywhere).
    let first = invoke_until(addrs[2], &token, 200).await;
    assert_ne!(first["region"], "ap-south", "{first}");
    for _ in 0..5 {
        let again = invoke_until(addrs[2], &token, 200).await;
        assert_ne!(again["region"], "ap-south", "{again}");
    }
    // Nothing of acme's ever ran or started in ap-south.
    let pool = call(addrs[2], "GET", "/v1/pool", Some(ADMIN), "").await;
    assert_eq!(pool.status, 200, "{}", pool.body);
    let pool = json(&pool);
    assert_eq!(
        pool["containers"].as_array().map(Vec::len),
        Some(0),
        "{pool}"
    );

    // Only a region no member is in: refused where it arrives, 403 with the reason.
    let patch = |regions: &'static str| {
        let addr = addrs[1];
        async move {
            let a = call(
                addr,
                "PATCH",
                "/v1/tenants/acme",
                Some(ADMIN),
                &format!(r#"{{"allowed_regions":{regions}}}"#),
            )
            .await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
    };
    patch(r#"["sa-east"]"#).await;
    for &a in &addrs {
        let refused = invoke_until(a, &token, 403).await;
        assert_eq!(refused["error"], "region_not_allowed", "{refused}");
        assert!(
            refused["message"]
                .as_str()
                .is_some_and(|m| m.contains("sa-east")),
            "{refused}"
        );
    }

    // ap-south only: sent to us-east, it runs in ap-south.
    patch(r#"["ap-south"]"#).await;
    let there = invoke_until(addrs[0], &token, 200).await;
    assert_eq!(there["region"], "ap-south", "{there}");

    // ap-south gone: its member is known but not alive; 503, worth a retry.
    nodes.pop().expect("n2").shutdown().await;
    let gone = invoke_until(addrs[0], &token, 503).await;
    assert_eq!(gone["error"], "no_allowed_region", "{gone}");
    assert!(gone["retry_after"].is_string(), "{gone}");
    for n in nodes {
        n.shutdown().await;
    }
}

/// The dashboard of a three-region cluster, in headless Chromium: ap-south's page lists the
/// three members with their regions, the leader, a measured round trip to each other member,
/// and why a request sent to it ran elsewhere (its tenant may not use ap-south; screenshot:
/// `target/ui-cluster.png`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t12_the_dashboard_shows_every_region_and_its_round_trip_in_a_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addrs, nodes) = three(dir.path()).await;
    let leader = leader_seen(addrs[0], None, 3).await;
    let begun = Instant::now();
    while rtt_to(addrs[2], "n0").await.1.is_none() || rtt_to(addrs[2], "n1").await.1.is_none() {
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "no round trips measured"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // us-east and eu-west only: sent to ap-south, it runs in one of them.
    let token = create_tenant(addrs[0], "acme").await;
    register_f(addrs[0], &token).await;
    let ran = invoke_until(addrs[2], &token, 200).await;
    let url = format!("http://{}/ui#token={VIEWER}", addrs[2]);
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-cluster.png");
    let dom = tokio::task::spawn_blocking(move || forewarm_tests::browser(&url, Some(&shot)))
        .await
        .expect("the browser ran");
    assert!(
        dom.contains(&format!("leader {leader}")),
        "the leader: {dom}"
    );
    for (i, region) in REGIONS.iter().enumerate() {
        let name = if i == 2 {
            "n2 (this node)".to_owned()
        } else {
            format!("n{i}")
        };
        let row = format!(r#"<tr class="member"><td>{name}</td><td>{region}</td>"#);
        let at = dom
            .find(&row)
            .unwrap_or_else(|| panic!("no row for {name} in {region}: {dom}"));
        let rest = &dom[at..];
        let row_html = &rest[..rest.find("</tr>").unwrap_or(rest.len())];
        // The round trip column: a number for the other members, a dash for this node.
        let cells: Vec<&str> = row_html.split(r#"<td class="num">"#).skip(1).collect();
        let rtt = cells
            .first()
            .and_then(|c| c.split('<').next())
            .unwrap_or_default();
        if i == 2 {
            assert_eq!(rtt, "–", "{row_html}");
        } else {
            assert!(
                rtt.parse::<f64>().is_ok(),
                "a measured round trip: {row_html}"
            );
        }
    }
    let region = ran["region"].as_str().expect("region");
    let node = if region == "us-east" { "n0" } else { "n1" };
    // The container it ran in stays idle there: ap-south's page shows it in that member's
    // pool.
    assert!(
        dom.contains(&format!(
            r#"<tr class="remote"><td>{node}</td><td>{region}</td><td>acme/f</td>"#
        )),
        "the other region's idle container: {dom}"
    );
    assert!(
        dom.contains(&format!("<td>acme/f</td><td>{node}</td><td>{region}</td>"))
            && dom.contains("the tenant may not run in this node"),
        "the routing decision: {dom}"
    );
    for n in nodes {
        n.shutdown().await;
    }
}

/// Another region's busy containers reach this node's view of it (the dashboard's "busy"
/// column), and the container shows as idle there once its request is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t13_another_regions_busy_and_idle_containers_are_in_the_view() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addrs, nodes) = three(dir.path()).await;
    let token = create_tenant(addrs[0], "acme").await;
    let slow = r#"{"workload":{"cpu_ms":1,"sleep_ms":3000}}"#;
    register(addrs[0], &token, "slow", slow).await;
    let (home, asked) = (addrs[0], token.clone());
    let running =
        tokio::spawn(
            async move { call(home, "POST", "/v1/invoke/slow", Some(&asked), "{}").await },
        );
    // n0's member row on n2, as the dashboard reads it.
    let n0_on_n2 = || async {
        let h = call(addrs[2], "GET", "/v1/history", Some(VIEWER), "").await;
        assert_eq!(h.status, 200, "{}", h.body);
        let members = json(&h)["members"].clone();
        members
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["node"] == "n0").cloned())
            .unwrap_or(Value::Null)
    };
    let begun = Instant::now();
    let busy = loop {
        let n0 = n0_on_n2().await;
        if n0["busy"]["acme/slow"]
            .as_array()
            .is_some_and(|c| c.len() == 1)
        {
            break n0;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(3),
            "n0's busy container not seen on n2 while it runs: {n0}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(busy["idle"].get("acme/slow").is_none(), "{busy}");
    let ran = running.await.expect("the invocation task");
    assert_eq!(ran.status, 200, "{}", ran.body);
    assert_eq!(json(&ran)["region"], REGIONS[0], "{}", ran.body);
    let begun = Instant::now();
    loop {
        let n0 = n0_on_n2().await;
        if n0["idle"]["acme/slow"]
            .as_array()
            .is_some_and(|c| c.len() == 1)
            && n0["busy"].get("acme/slow").is_none()
        {
            break;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(3),
            "n0's container not idle on n2 after its request: {n0}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in nodes {
        n.shutdown().await;
    }
}
