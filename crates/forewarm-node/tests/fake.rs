//! The node end to end over the in-memory runtime: HTTP API, actors, pool, store.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use forewarm_node::{Node, NodeConfig};
use forewarm_runtime::{ContainerRuntime, FakeRuntime, FaultyRuntime};
use forewarm_tests::{Answer, call, invoke_keyed, json};

/// The admin token of the nodes these tests start.
const ADMIN: &str = "admin-secret";

fn config(dir: &Path, scale: f64) -> NodeConfig {
    NodeConfig {
        node_id: "fake-node".into(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.to_path_buf(),
        time_scale: scale,
        admin_token: Some(ADMIN.into()),
        max_body_bytes: 4096,
        ..NodeConfig::default()
    }
}

/// A node on a fresh fake runtime and data directory, `scale` times faster than real time.
async fn start(scale: f64) -> (tempfile::TempDir, Arc<FakeRuntime>, Node) {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Arc::new(FakeRuntime::new());
    let node = Node::start(config(dir.path(), scale), runtime.clone())
        .await
        .expect("node starts");
    (dir, runtime, node)
}

/// Create a tenant and return its token.
async fn tenant(addr: SocketAddr, name: &str, quota: &str) -> String {
    let a = call(
        addr,
        "POST",
        "/v1/tenants",
        Some(ADMIN),
        &format!(r#"{{"name":"{name}"{quota}}}"#),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    json(&a)["token"].as_str().expect("token").to_owned()
}

async fn register(addr: SocketAddr, token: &str, code: &str, body: &str) {
    let a = call(addr, "PUT", &format!("/v1/codes/{code}"), Some(token), body).await;
    assert!(a.status == 201 || a.status == 200, "{}", a.body);
}

/// Train `code`'s model on every sample so far; the prediction it answers.
async fn train(addr: SocketAddr, token: &str, code: &str) -> Answer {
    let path = format!("/v1/codes/{code}/prediction?train=true");
    call(addr, "GET", &path, Some(token), "").await
}

async fn invoke(addr: SocketAddr, token: &str, code: &str, body: &str) -> Answer {
    call(
        addr,
        "POST",
        &format!("/v1/invoke/{code}"),
        Some(token),
        body,
    )
    .await
}

/// The answer's `Server-Timing` stages, ms by name (all five must be there).
fn server_timing(answer: &Answer) -> std::collections::BTreeMap<String, f64> {
    let value = answer
        .header("server-timing")
        .expect("a Server-Timing header");
    let stages: std::collections::BTreeMap<String, f64> = value
        .split(", ")
        .map(|metric| {
            let (name, dur) = metric.split_once(";dur=").expect("name;dur=ms");
            (name.to_owned(), dur.parse().expect("ms"))
        })
        .collect();
    let names: Vec<&str> = stages.keys().map(String::as_str).collect();
    assert_eq!(names, ["admit", "lease", "route", "run", "work"], "{value}");
    stages
}

/// Ask `probe` every 50 ms until it gives `Ok`, for at most 10 s; past that, fail with what
/// it said last (its `Err`).
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let begun = std::time::Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(
                begun.elapsed() < Duration::from_secs(10),
                "{what} not within 10 s: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const FAST: &str = r#"{"workload":{"cpu_ms":1,"mem_mib":4,"init_ms":50},"max_memory_mib":128}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t01_first_invocation_is_cold_then_warm_and_samples_are_measured() {
    let (_dir, runtime, node) = start(1.0).await;
    let addr = node.addr();
    let health = call(addr, "GET", "/healthz", None, "").await;
    assert_eq!(health.status, 200);
    assert_eq!(json(&health)["policy"], "forewarm");
    // Its store writes and its replicated state runs: ready (chaos/disk-full.py shows 503).
    let ready = call(addr, "GET", "/readyz", None, "").await;
    assert_eq!(
        (ready.status, json(&ready)["status"].clone()),
        (200, "ready".into())
    );

    let token = tenant(addr, "acme", "").await;
    register(addr, &token, "resize", FAST).await;
    let first = invoke(addr, &token, "resize", "").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-forewarm-start"), Some("cold"));
    let body = json(&first);
    assert_eq!(body["start"], "cold");
    assert_eq!(body["region"], "local");
    assert!(
        body["latency_ms"].as_f64().expect("latency") >= 50.0,
        "init time is paid"
    );
    // Where the time went: the start is in the lease, the stages add up to the latency, and
    // the workload's own time is part of the run.
    let stages = server_timing(&first);
    assert!(stages["lease"] >= 50.0, "{stages:?}");
    assert!(stages["work"] <= stages["run"], "{stages:?}");
    let sum: f64 = ["admit", "route", "lease", "run"]
        .iter()
        .map(|s| stages[*s])
        .sum();
    let latency = body["latency_ms"].as_f64().expect("latency");
    assert!(
        sum <= latency + 0.01 && sum >= latency - 1.0,
        "{stages:?} vs {latency}"
    );
    let second = invoke(addr, &token, "resize", r#"{"cpu_ms":2}"#).await;
    assert_eq!(
        second.header("x-forewarm-start"),
        Some("warm"),
        "{}",
        second.body
    );
    assert_eq!(json(&second)["container"], body["container"]);
    assert!(
        server_timing(&second)["lease"] < 50.0,
        "a warm lease starts nothing"
    );
    assert!(json(&second)["latency_ms"].as_f64().expect("latency") < 50.0);

    // The container carries its labels in the engine.
    let listed = runtime.list("fake-node").await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].tenant.as_str(), listed[0].code.as_str()),
        ("acme", "resize")
    );

    let pool = json(&call(addr, "GET", "/v1/pool", Some(&token), "").await);
    assert_eq!(pool["containers"][0]["state"], "idle");
    assert_eq!(pool["containers"][0]["class"], "250m-128Mi");

    let p = call(
        addr,
        "GET",
        "/v1/codes/resize/prediction?train=true",
        Some(&token),
        "",
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let p = json(&p);
    assert_eq!(p["profile"]["samples"], 2, "{p}");
    assert!(
        p["pool"]["why"]
            .as_str()
            .expect("why")
            .contains("idle times"),
        "{p}"
    );

    let metrics = call(addr, "GET", "/metrics", Some(ADMIN), "").await;
    assert!(
        metrics
            .body
            .contains("forewarm_invocations_total{start=\"cold\"} 1")
    );
    assert!(
        metrics
            .body
            .contains("forewarm_invocations_total{start=\"warm\"} 1")
    );

    node.shutdown().await;
    assert!(
        runtime.list("fake-node").await.expect("list").is_empty(),
        "shutdown removes every container"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t02_a_periodic_code_type_becomes_prewarmed() {
    // 120x: one real second is two policy minutes; the period is four policy minutes.
    let (_dir, _runtime, node) = start(120.0).await;
    let addr = node.addr();
    let token = tenant(addr, "tick", "").await;
    register(addr, &token, "cron", FAST).await;
    let mut starts = Vec::new();
    for _ in 0..7 {
        let a = invoke(addr, &token, "cron", "").await;
        assert_eq!(a.status, 200, "{}", a.body);
        starts.push(a.header("x-forewarm-start").unwrap_or("").to_owned());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert_eq!(starts[0], "cold");
    // Three idle times teach the policy the period; from then on the container is unloaded
    // after each execution and pre-warmed before the next one.
    assert_eq!(
        &starts[4..],
        ["prewarmed", "prewarmed", "prewarmed"],
        "{starts:?}"
    );
    let p = json(&call(addr, "GET", "/v1/codes/cron/prediction", Some(&token), "").await);
    assert!(
        p["pool"]["why"].as_str().expect("why").contains("pre-warm"),
        "{p}"
    );
    let metrics = call(addr, "GET", "/metrics", Some(ADMIN), "").await;
    assert!(
        metrics
            .body
            .contains("forewarm_invocations_total{start=\"prewarmed\"} 3")
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t03_tenants_are_isolated() {
    let (_dir, runtime, node) = start(1.0).await;
    let addr = node.addr();
    let a = tenant(addr, "alpha", "").await;
    let b = tenant(addr, "beta", "").await;
    register(addr, &a, "f", FAST).await;
    assert_eq!(invoke(addr, &a, "f", "").await.status, 200);
    // beta cannot see or run alpha's code type...
    let cross = invoke(addr, &b, "f", "").await;
    assert_eq!(cross.status, 404, "{}", cross.body);
    assert_eq!(json(&cross)["error"], "not_found");
    let cross = call(addr, "GET", "/v1/codes/f/prediction", Some(&b), "").await;
    assert_eq!(cross.status, 404);
    // ...and a code type of the same name gets its own containers.
    register(addr, &b, "f", FAST).await;
    let run_b = invoke(addr, &b, "f", "").await;
    assert_eq!(
        run_b.header("x-forewarm-start"),
        Some("cold"),
        "never alpha's warm one"
    );
    let pool_b = json(&call(addr, "GET", "/v1/pool", Some(&b), "").await);
    let containers = pool_b["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["tenant"], "beta");
    let all = json(&call(addr, "GET", "/v1/pool", Some("admin-secret"), "").await);
    assert_eq!(all["containers"].as_array().expect("containers").len(), 2);
    let tenants: Vec<String> = runtime
        .list("fake-node")
        .await
        .expect("list")
        .into_iter()
        .map(|c| format!("{}:{}", c.tenant, c.network))
        .collect();
    assert!(
        tenants.contains(&"alpha:forewarm-tenant-alpha".to_owned()),
        "{tenants:?}"
    );
    assert!(
        tenants.contains(&"beta:forewarm-tenant-beta".to_owned()),
        "{tenants:?}"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t04_bad_input_gets_the_right_4xx_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(config(dir.path(), 1.0), Arc::new(FakeRuntime::new()))
        .await
        .expect("node starts");
    let addr = node.addr();
    let token = tenant(addr, "acme", r#","max_warm":1"#).await;
    register(addr, &token, "f", FAST).await;
    let cases: Vec<(Answer, u16, &str)> = vec![
        (
            call(addr, "POST", "/v1/tenants", None, r#"{"name":"x"}"#).await,
            401,
            "unauthenticated",
        ),
        (
            call(addr, "POST", "/v1/tenants", Some("nope"), r#"{"name":"x"}"#).await,
            401,
            "unauthenticated",
        ),
        (
            call(addr, "POST", "/v1/tenants", Some(&token), r#"{"name":"x"}"#).await,
            403,
            "forbidden",
        ),
        (
            call(
                addr,
                "POST",
                "/v1/tenants",
                Some("admin-secret"),
                r#"{"name":"acme"}"#,
            )
            .await,
            409,
            "exists",
        ),
        (
            call(
                addr,
                "POST",
                "/v1/tenants",
                Some("admin-secret"),
                r#"{"name":"Bad Name"}"#,
            )
            .await,
            400,
            "invalid_name",
        ),
        (
            call(
                addr,
                "POST",
                "/v1/tenants",
                Some("admin-secret"),
                r#"{"name":"x","colour":1}"#,
            )
            .await,
            400,
            "bad_json",
        ),
        (
            call(
                addr,
                "POST",
                "/v1/tenants",
                Some("admin-secret"),
                "{not json",
            )
            .await,
            400,
            "bad_json",
        ),
        (
            call(addr, "POST", "/v1/tenants", Some("admin-secret"), "").await,
            400,
            "bad_body",
        ),
        (
            invoke(addr, "admin-secret", "f", "").await,
            403,
            "forbidden",
        ),
        (invoke(addr, &token, "missing", "").await, 404, "not_found"),
        (
            invoke(addr, &token, "f", r#"{"cpu_ms":"lots"}"#).await,
            400,
            "bad_json",
        ),
        (
            invoke(addr, &token, "f", r#"{"cpu_ms":999999999}"#).await,
            400,
            "invalid_overrides",
        ),
        (
            invoke(addr, &token, "f", r#"{"mem_mib":500}"#).await,
            400,
            "invalid_overrides",
        ),
        (
            invoke(
                addr,
                &token,
                "f",
                &format!(r#"{{"pad":"{}"}}"#, "x".repeat(8192)),
            )
            .await,
            413,
            "too_large",
        ),
        (
            call(
                addr,
                "PUT",
                "/v1/codes/f",
                Some(&token),
                r#"{"workload":{"mem_mib":300},"max_memory_mib":256}"#,
            )
            .await,
            400,
            "invalid_limits",
        ),
        (
            call(addr, "PUT", "/v1/codes/.x", Some(&token), FAST).await,
            400,
            "invalid_name",
        ),
        (
            call(
                addr,
                "PUT",
                "/v1/codes/g",
                Some(&token),
                r#"{"image":"has space"}"#,
            )
            .await,
            400,
            "invalid_image",
        ),
        (
            call(addr, "GET", "/v1/nothing", None, "").await,
            404,
            "not_found",
        ),
    ];
    for (i, (answer, status, code)) in cases.iter().enumerate() {
        assert_eq!(answer.status, *status, "case {i}: {}", answer.body);
        let body = json(answer);
        assert_eq!(body["error"], *code, "case {i}: {body}");
        assert!(
            !body["message"].as_str().unwrap_or("").is_empty(),
            "case {i}"
        );
    }
    let bad_queue = call(
        addr,
        "PUT",
        "/v1/codes/g",
        Some(&token),
        r#"{"max_queue":100001}"#,
    );
    let bad_queue = bad_queue.await;
    assert_eq!(bad_queue.status, 400, "{}", bad_queue.body);
    assert_eq!(json(&bad_queue)["error"], "invalid_queue");
    // Quota: max_warm 1, held by a busy invocation of f.
    let busy = {
        let token = token.clone();
        tokio::spawn(async move { invoke(addr, &token, "f", r#"{"sleep_ms":1500}"#).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A code type that lets no request wait: 429 at once, with when to try again.
    let no_wait = r#"{"workload":{"cpu_ms":1,"mem_mib":4},"max_memory_mib":128,"max_queue":0}"#;
    register(addr, &token, "g", no_wait).await;
    let over = invoke(addr, &token, "g", "").await;
    assert_eq!(over.status, 429, "{}", over.body);
    assert_eq!(json(&over)["error"], "quota");
    let retry: u64 = over
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry >= 1, "{retry}");
    // One that waits, but not past its 300 ms deadline: it never reached a container, so the
    // answer is the quota's (429 with Retry-After), not a timeout.
    let short = r#"{"workload":{"cpu_ms":1,"mem_mib":4},"max_memory_mib":128,"timeout_ms":300}"#;
    register(addr, &token, "q", short).await;
    let waited = invoke(addr, &token, "q", "").await;
    assert_eq!(waited.status, 429, "{}", waited.body);
    assert_eq!(json(&waited)["error"], "quota");
    assert!(
        waited.header("retry-after").is_some(),
        "{:?}",
        waited.headers
    );
    assert_eq!(busy.await.expect("task").status, 200);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t05_tenants_codes_and_samples_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Arc::new(FakeRuntime::new());
    let token;
    {
        let node = Node::start(config(dir.path(), 1.0), runtime.clone())
            .await
            .expect("node starts");
        token = tenant(node.addr(), "acme", "").await;
        register(node.addr(), &token, "f", FAST).await;
        for _ in 0..3 {
            assert_eq!(invoke(node.addr(), &token, "f", "").await.status, 200);
        }
        node.shutdown().await;
    }
    let node = Node::start(config(dir.path(), 1.0), runtime.clone())
        .await
        .expect("node restarts");
    let addr = node.addr();
    let p = train(addr, &token, "f").await;
    assert_eq!(
        p.status, 200,
        "the token and the code type survived: {}",
        p.body
    );
    assert_eq!(json(&p)["profile"]["samples"], 3, "{}", p.body);
    let again = invoke(addr, &token, "f", "").await;
    assert_eq!(
        again.header("x-forewarm-start"),
        Some("cold"),
        "no container survived"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t06_a_container_removed_behind_the_nodes_back_leaves_the_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Arc::new(FakeRuntime::new());
    let config = NodeConfig {
        reconcile_every_ms: 100,
        ..config(dir.path(), 1.0)
    };
    let node = Node::start(config, runtime.clone())
        .await
        .expect("node starts");
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    register(addr, &token, "resize", FAST).await;
    let first = invoke(addr, &token, "resize", "").await;
    assert_eq!(
        first.header("x-forewarm-start"),
        Some("cold"),
        "{}",
        first.body
    );
    let listed = runtime.list("fake-node").await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    // Gone behind the node's back (an operator's `docker rm -f`, an OOM kill).
    runtime.remove(&listed[0].id).await.expect("remove");
    // Within a few reconcile passes the pool no longer holds it: the next request is not
    // handed a dead container (warm, then failing).
    let gone = &listed[0].id;
    let mut held = true;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pool = json(&call(addr, "GET", "/v1/pool", Some(&token), "").await);
        let ids: Vec<&str> = pool["containers"]
            .as_array()
            .map(|all| all.iter().filter_map(|c| c["id"].as_str()).collect())
            .unwrap_or_default();
        held = ids.contains(&gone.as_str());
        if !held {
            break;
        }
    }
    assert!(!held, "the pool still holds the removed container {gone}");
    let second = invoke(addr, &token, "resize", "").await;
    assert_eq!(second.status, 200, "{}", second.body);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t07_an_invocation_past_its_timeout_gets_504_and_its_container_is_removed() {
    let (_dir, runtime, node) = start(1.0).await;
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    for bad in ["0", "9", "900001", "\"soon\""] {
        let a = call(
            addr,
            "PUT",
            "/v1/codes/h",
            Some(&token),
            &format!(r#"{{"timeout_ms":{bad}}}"#),
        )
        .await;
        assert_eq!(a.status, 400, "timeout_ms {bad}: {}", a.body);
    }
    let put = call(
        addr,
        "PUT",
        "/v1/codes/h",
        Some(&token),
        r#"{"workload":{"cpu_ms":1,"mem_mib":4,"init_ms":50},"max_memory_mib":128,"timeout_ms":300}"#,
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(json(&put)["timeout_ms"], 300, "{}", put.body);
    let begun = std::time::Instant::now();
    let hung = invoke(addr, &token, "h", r#"{"sleep_ms":30000}"#).await;
    let took = begun.elapsed();
    assert_eq!(hung.status, 504, "{}", hung.body);
    assert_eq!(json(&hung)["error"], "timeout");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // The container it ran in is never reused: it is removed.
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = runtime.list("fake-node").await.expect("list").len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the timed-out container is still there");
    let next = invoke(addr, &token, "h", "").await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(next.header("x-forewarm-start"), Some("cold"));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t08_a_burst_of_200_from_zero_is_served_whole_within_the_default_quota() {
    let (_dir, runtime, node) = start(1.0).await;
    let addr = node.addr();
    // The default tenant quota (16 containers); 5 ms of work after a 300 ms start.
    let token = tenant(addr, "acme", "").await;
    let body = r#"{"workload":{"cpu_ms":5,"mem_mib":4,"init_ms":300},"max_memory_mib":128}"#;
    register(addr, &token, "b", body).await;
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let token = token.clone();
            tokio::spawn(async move { invoke(addr, &token, "b", "").await })
        })
        .collect();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let mut by_start = std::collections::BTreeMap::<String, usize>::new();
    for c in calls {
        let a = c.await.expect("task");
        *by_status.entry(a.status).or_default() += 1;
        let start = a.header("x-forewarm-start").unwrap_or("-").to_owned();
        *by_start.entry(start).or_default() += 1;
    }
    assert_eq!(by_status.get(&200), Some(&200), "{by_status:?}");
    // Served by the containers the quota allows, reused as they freed.
    let containers = runtime.list("fake-node").await.expect("list").len();
    assert!((1..=16).contains(&containers), "{containers} containers");
    assert!(
        by_start.get("cold").copied().unwrap_or(0) <= 16,
        "{by_start:?}"
    );
    let pool = json(&call(addr, "GET", "/v1/pool", Some(&token), "").await);
    let states: Vec<&str> = pool["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["state"].as_str())
        .collect();
    assert!(states.iter().all(|s| *s == "idle"), "{states:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t09_an_idempotency_key_runs_once_and_replays_its_answer() {
    let (_dir, runtime, node) = start(1.0).await;
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    register(addr, &token, "f", FAST).await;
    // Without a key: an id of its own.
    let plain = invoke(addr, &token, "f", "").await;
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert_eq!(
        plain.header("x-forewarm-invocation-id").map(str::len),
        Some(32)
    );
    // A slow one under key k1; the same key while it runs is refused, nothing runs twice.
    let first = {
        let token = token.clone();
        tokio::spawn(
            async move { invoke_keyed(addr, &token, "f", "k1", r#"{"sleep_ms":800}"#).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = invoke_keyed(addr, &token, "f", "k1", r#"{"sleep_ms":800}"#).await;
    assert_eq!(during.status, 409, "{}", during.body);
    assert_eq!(json(&during)["error"], "in_progress");
    assert!(during.header("retry-after").is_some());
    let first = first.await.expect("task");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-forewarm-invocation-id"), Some("k1"));
    // Asked again after: the same answer, replayed; it does not run again.
    let again = invoke_keyed(addr, &token, "f", "k1", r#"{"sleep_ms":800}"#).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("x-forewarm-replayed"), Some("true"));
    assert_eq!(json(&again), json(&first), "the first run's answer");
    assert_eq!(
        again.header("x-forewarm-start"),
        first.header("x-forewarm-start")
    );
    // Another key runs; a bad key is refused.
    let other = invoke_keyed(addr, &token, "f", "k2", "").await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.header("x-forewarm-replayed"), None);
    let bad = invoke_keyed(addr, &token, "f", &"x".repeat(129), "").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(json(&bad)["error"], "invalid_idempotency_key");
    assert_eq!(runtime.list("fake-node").await.expect("list").len(), 1);
    // Three ran (no key, k1 once, k2): three samples.
    let path = "/v1/codes/f/prediction?train=true";
    let p = json(&call(addr, "GET", path, Some(&token), "").await);
    assert_eq!(p["profile"]["samples"], 3, "{p}");
    node.shutdown().await;
}

/// The retrain after a miss sees the execution that caused it: the first cold start of a code
/// type gives it a model at once, not at the next training round (every 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_a_miss_is_trained_on_at_once() {
    let (_dir, _runtime, node) = start(1.0).await;
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    register(addr, &token, "f", FAST).await;
    let first = invoke(addr, &token, "f", "").await;
    assert_eq!(json(&first)["start"], "cold", "{}", first.body);
    let token = &token;
    eventually("a model from the miss", || async move {
        let p = json(&call(addr, "GET", "/v1/codes/f/prediction", Some(token), "").await);
        if p["profile"]["samples"] == 1 {
            Ok(())
        } else {
            Err(p.to_string())
        }
    })
    .await;
    node.shutdown().await;
}

/// The pool accounts for the memory its idle containers hold over time, per code type, and a
/// tenant sees only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t11_idle_memory_time_is_accounted_per_code_type() {
    let (_dir, _runtime, node) = start(1.0).await;
    let addr = node.addr();
    let acme = tenant(addr, "acme", "").await;
    let beta = tenant(addr, "beta", "").await;
    register(addr, &acme, "f", FAST).await;
    let begun = std::time::Instant::now();
    let first = invoke(addr, &acme, "f", "").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let acme_token = &acme;
    let pool = eventually("idle memory-time accounted", || async move {
        let pool = json(&call(addr, "GET", "/v1/pool", Some(acme_token), "").await);
        if pool["idle_memory_mib_s_total"].as_f64() > Some(0.0) {
            Ok(pool)
        } else {
            Err(pool.to_string())
        }
    })
    .await;
    // One idle container of 128 MiB since the invocation: at most 128 MiB × the time since.
    let held = pool["idle_memory_mib_s"]["acme/f"]
        .as_f64()
        .expect("acme/f");
    assert_eq!(pool["idle_memory_mib_s_total"].as_f64(), Some(held));
    assert!(held <= 128.0 * begun.elapsed().as_secs_f64(), "{pool}");
    let other = json(&call(addr, "GET", "/v1/pool", Some(&beta), "").await);
    assert_eq!(
        other["idle_memory_mib_s_total"].as_f64(),
        Some(0.0),
        "{other}"
    );
    let metrics = call(addr, "GET", "/metrics", Some(ADMIN), "").await;
    assert!(
        metrics
            .body
            .contains("forewarm_idle_memory_byte_seconds_total"),
        "{}",
        metrics.body
    );
    node.shutdown().await;
}

/// `/readyz` names a container engine that stops answering, and is ready again once it
/// answers; `/livez` only says the process answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t12_readiness_names_a_container_engine_that_does_not_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Arc::new(FaultyRuntime::new(FakeRuntime::new()));
    let config = NodeConfig {
        reconcile_every_ms: 100,
        ..config(dir.path(), 1.0)
    };
    let node = Node::start(config, runtime.clone())
        .await
        .expect("node starts");
    let addr = node.addr();
    // Poll `/readyz` (up to 10 s) until its status is `want`; its last answer.
    let readiness = |want: u16| {
        eventually("the readiness wanted", move || async move {
            let ready = call(addr, "GET", "/readyz", None, "").await;
            if ready.status == want {
                Ok(ready)
            } else {
                Err(format!("{} {}", ready.status, ready.body))
            }
        })
    };
    readiness(200).await;
    runtime
        .faults
        .engine_down
        .store(true, std::sync::atomic::Ordering::Release);
    let down = readiness(503).await;
    let reasons = json(&down)["reasons"].to_string();
    assert!(reasons.contains("container engine"), "{reasons}");
    assert!(reasons.contains("the engine does not answer"), "{reasons}");
    let live = call(addr, "GET", "/livez", None, "").await;
    assert_eq!(live.status, 200, "{}", live.body);
    runtime
        .faults
        .engine_down
        .store(false, std::sync::atomic::Ordering::Release);
    readiness(200).await;
    node.shutdown().await;
}

/// One code type's pool holds containers of two size classes — the code type's limit for the
/// first (nothing known yet), then the class its measured invocations need — and an
/// invocation killed over its container's class (a misfit) is run again at the code type's
/// limit, counted, and learnt from: the next container is sized to hold it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t13_two_size_classes_in_one_pool_and_a_misfit_corrected() {
    let (_dir, _runtime, node) = start(1.0).await;
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    let code = |mem: u32| {
        format!(
            r#"{{"workload":{{"cpu_ms":1,"mem_mib":{mem},"init_ms":10}},"max_memory_mib":512}}"#
        )
    };
    let classes = || async {
        let pool = json(&call(addr, "GET", "/v1/pool", Some(&token), "").await);
        let mut classes: Vec<String> = pool["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .map(|c| c["class"].as_str().expect("class").to_owned())
            .collect();
        classes.sort();
        classes
    };
    let misfits = || async {
        let metrics = call(addr, "GET", "/metrics", Some(ADMIN), "").await;
        metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix("forewarm_misfits_total "))
            .map(|n| n.parse::<u64>().expect("a count"))
    };
    register(addr, &token, "grow", &code(4)).await;
    for _ in 0..8 {
        let a = invoke(addr, &token, "grow", "").await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    // Nothing was known at the first start: a container at the code type's limit.
    assert_eq!(classes().await, ["1000m-512Mi"]);
    // While it is busy, a second container is sized from what the invocations used.
    let long = {
        let token = token.clone();
        tokio::spawn(async move { invoke(addr, &token, "grow", r#"{"sleep_ms":500}"#).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let short = invoke(addr, &token, "grow", "").await;
    assert_eq!(json(&short)["start"], "cold", "{}", short.body);
    assert_eq!(long.await.expect("long").status, 200);
    assert_eq!(classes().await, ["1000m-512Mi", "250m-128Mi"]);
    assert_eq!(misfits().await, Some(0));

    // The code type grows past its class (a new version: its old containers are retired).
    register(addr, &token, "grow", &code(200)).await;
    eventually("old containers retired", || async {
        let left = classes().await;
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
    // Its first invocation starts in the profile's class, is killed there, and runs again
    // at the limit: answered, and counted as a misfit.
    let grown = invoke(addr, &token, "grow", "").await;
    assert_eq!(grown.status, 200, "{}", grown.body);
    assert!(json(&grown)["usage"]["peak_mib"].as_f64() > Some(200.0));
    assert_eq!(misfits().await, Some(1));
    // Learnt: the next container is sized to hold it, and nothing more is killed.
    let p = json(
        &call(
            addr,
            "GET",
            "/v1/codes/grow/prediction?train=true",
            Some(&token),
            "",
        )
        .await,
    );
    assert!(p["pool"]["next_container_mib"].as_u64() >= Some(256), "{p}");
    for _ in 0..3 {
        let a = invoke(addr, &token, "grow", "").await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    assert_eq!(misfits().await, Some(1));
    node.shutdown().await;
}

/// A container start the engine fails once is tried once more: the waiting request is
/// served. A start that fails twice is answered 503 `start_failed` naming the engine's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t14_a_failed_container_start_is_tried_once_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = Arc::new(FaultyRuntime::new(FakeRuntime::new()));
    let node = Node::start(config(dir.path(), 1.0), runtime.clone())
        .await
        .expect("node starts");
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    register(addr, &token, "once", FAST).await;
    register(addr, &token, "twice", FAST).await;
    let fail = |n: u32| {
        runtime
            .faults
            .fail_starts
            .store(n, std::sync::atomic::Ordering::Release)
    };
    fail(1);
    let once = invoke(addr, &token, "once", "").await;
    assert_eq!(
        (once.status, once.header("x-forewarm-start")),
        (200, Some("cold")),
        "{}",
        once.body
    );
    fail(2);
    let twice = invoke(addr, &token, "twice", "").await;
    assert_eq!(twice.status, 503, "{}", twice.body);
    assert_eq!(json(&twice)["error"], "start_failed", "{}", twice.body);
    assert!(twice.body.contains("injected fault"), "{}", twice.body);
    node.shutdown().await;
}

/// `/metrics` is what Prometheus's own checker accepts: `promtool check metrics` (Debian's
/// `prometheus` package; `make test-tools` installs it) finds no error and no lint problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t15_metrics_pass_promtool() {
    let (_dir, _runtime, node) = start(1.0).await;
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    register(addr, &token, "f", FAST).await;
    for _ in 0..3 {
        assert_eq!(invoke(addr, &token, "f", "").await.status, 200);
    }
    let metrics = call(addr, "GET", "/metrics", Some(ADMIN), "").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    // A scraper that asks for OpenMetrics (Prometheus does) gets it.
    let asked = format!(
        "GET /metrics HTTP/1.1\r\nhost: node\r\nauthorization: Bearer {ADMIN}\r\n\
         accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\
         connection: close\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(asked.as_bytes()).await.expect("asks");
    let mut open_metrics = String::new();
    stream
        .read_to_string(&mut open_metrics)
        .await
        .expect("reads");
    assert!(
        open_metrics.starts_with("HTTP/1.1 200")
            && open_metrics.contains("content-type: application/openmetrics-text; version=1.0.0")
            && open_metrics.contains("\n# TYPE forewarm_invocations counter\n")
            && open_metrics.trim_end().ends_with("# EOF"),
        "{open_metrics}"
    );
    node.shutdown().await;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus: make test-tools installs it)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.body.as_bytes())
        .expect("writes");
    let out = promtool.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{}",
        metrics.body
    );
}

/// A tenant may name only the images an admin allowed (the runner image and the node
/// config's `images`); any other — the node's own image, say — is refused 403
/// `image_not_allowed`, and nothing is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t16_a_code_type_may_name_only_an_allowed_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = NodeConfig {
        images: vec!["acme/resize:2".into()],
        ..config(dir.path(), 1.0)
    };
    let node = Node::start(config, Arc::new(FakeRuntime::new()))
        .await
        .expect("node starts");
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    let put = |code: &'static str, body: &'static str| {
        let token = token.clone();
        async move {
            call(
                addr,
                "PUT",
                &format!("/v1/codes/{code}"),
                Some(&token),
                body,
            )
            .await
        }
    };
    let refused = put("n", r#"{"image":"forewarm/node:0.1.0"}"#).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(json(&refused)["error"], "image_not_allowed");
    assert!(
        refused.body.contains("forewarm/node:0.1.0"),
        "{}",
        refused.body
    );
    let none = call(addr, "GET", "/v1/codes/n", Some(&token), "").await;
    assert_eq!(none.status, 404, "nothing registered: {}", none.body);
    let listed = put("r", r#"{"image":"acme/resize:2"}"#).await;
    assert_eq!(listed.status, 201, "{}", listed.body);
    let default = put("d", "{}").await;
    assert_eq!(default.status, 201, "{}", default.body);

    // The cluster's list (replicated): only the admin sets it, and what it names may be run.
    let set = |token: &str, body: &'static str| {
        let token = token.to_owned();
        async move { call(addr, "PUT", "/v1/images", Some(&token), body).await }
    };
    let by_tenant = set(&token, r#"{"images":["acme/tool:1"]}"#).await;
    assert_eq!(by_tenant.status, 403, "{}", by_tenant.body);
    let blank = set(ADMIN, r#"{"images":["acme/tool:1", " "]}"#).await;
    assert_eq!(blank.status, 400, "{}", blank.body);
    assert_eq!(json(&blank)["error"], "invalid_image");
    assert_eq!(put("t", r#"{"image":"acme/tool:1"}"#).await.status, 403);
    let listed = set(ADMIN, r#"{"images":["acme/tool:1"]}"#).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let view = json(&listed);
    assert_eq!(view["images"], serde_json::json!(["acme/tool:1"]), "{view}");
    assert_eq!(view["node"][1], "acme/resize:2", "{view}");
    assert_eq!(put("t", r#"{"image":"acme/tool:1"}"#).await.status, 201);
    // Emptied: a new registration is refused again (what is registered stays).
    assert_eq!(set(ADMIN, r#"{"images":[]}"#).await.status, 200);
    assert_eq!(put("u", r#"{"image":"acme/tool:1"}"#).await.status, 403);
    let kept = call(addr, "GET", "/v1/codes/t", Some(&token), "").await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    node.shutdown().await;
}

/// A code type whose memory grows with a body field it declares as a feature: once trained,
/// the profile predicts each request's peak from that field (p95 error within 15%, on inputs
/// past what it was trained on too), every answer says what was predicted, and nothing is
/// killed for want of memory. Bad features are 400s with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t17_a_profile_learns_memory_from_a_declared_body_field() {
    let (_dir, _runtime, node) = start(1.0).await;
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    let resize = r#"{"workload":{"cpu_ms":1,"mem_mib":2,"mem_kib_per_item":1024,"init_ms":10},
        "max_memory_mib":1024,"features":["items","width"]}"#;
    register(addr, &token, "resize", resize).await;
    let run = |items: u64| {
        let token = token.clone();
        async move {
            let body = format!(r#"{{"items":{items},"width":{}}}"#, items % 7);
            let a = invoke(addr, &token, "resize", &body).await;
            assert_eq!(a.status, 200, "{}", a.body);
            json(&a)
        }
    };
    for i in 0..30 {
        run(i * 37 % 300).await;
    }
    let p = json(
        &call(
            addr,
            "GET",
            "/v1/codes/resize/prediction?train=true",
            Some(&token),
            "",
        )
        .await,
    );
    let why = p["why"].as_str().expect("why");
    assert!(why.contains("MiB per items"), "{p}");
    let per_item = p["profile"]["memory_on_input"]["coef"][2].as_f64();
    assert!(per_item.is_some_and(|c| (c - 1.0).abs() < 0.01), "{p}");
    let mut errors = Vec::new();
    for i in 0..40 {
        let a = run(i * 53 % 400).await;
        let actual = a["usage"]["peak_mib"].as_f64().expect("peak");
        let predicted = a["predicted"]["peak_mib"].as_f64().expect("a prediction");
        let need = a["predicted"]["need_mib"].as_f64().expect("need");
        assert!(need >= actual, "sized below what it used: {a}");
        errors.push((predicted - actual).abs() / actual);
    }
    errors.sort_by(f64::total_cmp);
    let p95 = errors[errors.len() * 95 / 100 - 1];
    assert!(p95 <= 0.15, "p95 relative error {p95}: {errors:?}");
    // A small request is sized small, a large one large.
    let small = run(3).await["predicted"]["need_mib"].as_f64();
    let large = run(390).await["predicted"]["need_mib"].as_f64();
    assert!(
        small < Some(32.0) && large > Some(390.0),
        "{small:?} {large:?}"
    );
    let metrics = call(addr, "GET", "/metrics", Some(ADMIN), "").await;
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l == "forewarm_misfits_total 0"),
        "{}",
        metrics.body
    );

    for (body, error) in [
        (r#"{"items":"many"}"#, "invalid_feature"),
        (r#"{"items":5000}"#, "invalid_overrides"),
        (r#"{"height":3}"#, "bad_json"),
    ] {
        let refused = invoke(addr, &token, "resize", body).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(json(&refused)["error"], error, "{}", refused.body);
    }
    for (features, says) in [
        (r#"["Items"]"#, "must be 1-64 of a-z"),
        (r#"["a","a"]"#, "named twice"),
        (r#"["a","b","c","d","e","f","g","h","i"]"#, "at most 8"),
    ] {
        let body = format!(r#"{{"features":{features}}}"#);
        let a = call(addr, "PUT", "/v1/codes/bad", Some(&token), &body).await;
        assert_eq!(a.status, 400, "{}", a.body);
        assert!(a.body.contains(says), "{features}: {}", a.body);
    }
    node.shutdown().await;
}

/// A tenant's token can be rotated (by the admin or the tenant itself, never by another
/// tenant): the new one works at once and the old one is refused; quotas and regions can be
/// changed (admin only), within the same bounds as at creation, and a region left out is one
/// the tenant's requests no longer run in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t18_a_token_is_rotated_and_a_quota_changed() {
    let (_dir, _runtime, node) = start(1.0).await;
    let addr = node.addr();
    let acme = tenant(addr, "acme", "").await;
    let beta = tenant(addr, "beta", "").await;
    register(addr, &acme, "f", FAST).await;
    assert_eq!(invoke(addr, &acme, "f", "").await.status, 200);

    let by_other = call(addr, "POST", "/v1/tenants/acme/token", Some(&beta), "").await;
    assert_eq!(by_other.status, 403, "{}", by_other.body);
    let rotated = call(addr, "POST", "/v1/tenants/acme/token", Some(&acme), "").await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let fresh = json(&rotated)["token"].as_str().expect("token").to_owned();
    assert_ne!(fresh, acme);
    let old = invoke(addr, &acme, "f", "").await;
    assert_eq!(old.status, 401, "{}", old.body);
    let new = invoke(addr, &fresh, "f", "").await;
    assert_eq!(new.status, 200, "the code type stays: {}", new.body);
    let by_admin = call(addr, "POST", "/v1/tenants/acme/token", Some(ADMIN), "").await;
    assert_eq!(by_admin.status, 200, "{}", by_admin.body);
    assert_eq!(invoke(addr, &fresh, "f", "").await.status, 401);
    let missing = call(addr, "POST", "/v1/tenants/nobody/token", Some(ADMIN), "").await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    let patch = |who: &str, body: &str| {
        let (who, body) = (who.to_owned(), body.to_owned());
        async move { call(addr, "PATCH", "/v1/tenants/beta", Some(&who), &body).await }
    };
    let changed = patch(ADMIN, r#"{"max_warm":2,"allowed_regions":["local"]}"#).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let view = json(&changed);
    assert_eq!(view["max_warm"], 2, "{view}");
    assert_eq!(view["max_memory_mib"], 4096, "unchanged: {view}");
    assert_eq!(view["allowed_regions"][0], "local", "{view}");
    register(addr, &beta, "f", FAST).await;
    assert_eq!(invoke(addr, &beta, "f", "").await.status, 200);
    // Moved out of this node's region: refused here, nothing run (a lone node has no member
    // in another region to send it to).
    let moved = patch(ADMIN, r#"{"allowed_regions":["eu-west"]}"#).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let refused = invoke(addr, &beta, "f", "").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        json(&refused)["error"],
        "region_not_allowed",
        "{}",
        refused.body
    );
    for (who, body, status) in [
        (beta.as_str(), r#"{"max_warm":100}"#, 403),
        (ADMIN, r#"{"max_warm":0}"#, 400),
        (ADMIN, r#"{"max_memory_mib":1}"#, 400),
        (ADMIN, r#"{"allowed_regions":["Bad Region"]}"#, 400),
        (ADMIN, r#"{"token_sha256":"00"}"#, 400),
    ] {
        let a = patch(who, body).await;
        assert_eq!(a.status, status, "{body}: {}", a.body);
    }
    node.shutdown().await;
}

/// A deleted tenant's token is refused at once, its code types are gone and its containers
/// removed (another tenant's stay); only the admin deletes, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t19_a_deleted_tenant_leaves_nothing_behind() {
    let (_dir, runtime, node) = start(1.0).await;
    let addr = node.addr();
    let acme = tenant(addr, "acme", "").await;
    let beta = tenant(addr, "beta", "").await;
    register(addr, &acme, "f", FAST).await;
    register(addr, &beta, "f", FAST).await;
    for token in [&acme, &beta] {
        assert_eq!(invoke(addr, token, "f", "").await.status, 200);
    }
    assert_eq!(runtime.list("fake-node").await.expect("list").len(), 2);

    let by_tenant = call(addr, "DELETE", "/v1/tenants/acme", Some(&beta), "").await;
    assert_eq!(by_tenant.status, 403, "{}", by_tenant.body);
    let deleted = call(addr, "DELETE", "/v1/tenants/acme", Some(ADMIN), "").await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(invoke(addr, &acme, "f", "").await.status, 401);
    let again = call(addr, "DELETE", "/v1/tenants/acme", Some(ADMIN), "").await;
    assert_eq!(again.status, 404, "{}", again.body);
    let gone = call(addr, "GET", "/v1/tenants/acme", Some(ADMIN), "").await;
    assert_eq!(gone.status, 404, "{}", gone.body);
    let runtime = &runtime;
    let left = eventually("acme's container removed", || async move {
        let listed = runtime.list("fake-node").await.expect("list");
        if listed.len() == 1 {
            Ok(listed)
        } else {
            Err(format!("{listed:?}"))
        }
    })
    .await;
    assert_eq!(
        left[0].tenant, "beta",
        "the other tenant keeps its container"
    );
    assert_eq!(invoke(addr, &beta, "f", "").await.status, 200);
    // The same name can be a new tenant, with nothing of the old one.
    let acme = tenant(addr, "acme", "").await;
    let old_code = invoke(addr, &acme, "f", "").await;
    assert_eq!(old_code.status, 404, "{}", old_code.body);
    node.shutdown().await;
}

/// The pool's demand forecast is the Predictor's: a busy code type's policy asks for a fit at
/// its checks, the Predictor fits it off the request path, keeps it in the code type's model
/// (`/prediction`'s `profile.concurrency`) and hands it back, and the pool holds it as a floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_the_predictor_fits_the_forecast_the_pool_holds() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // 600×: a policy minute is 100 ms; the first check with a busy history (minute 15) comes
    // 1.5 s in.
    let (_dir, _runtime, node) = start(600.0).await;
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    let busy =
        r#"{"workload":{"cpu_ms":1,"mem_mib":4,"init_ms":10,"sleep_ms":200},"max_memory_mib":128}"#;
    register(addr, &token, "busy", busy).await;
    let stop = Arc::new(AtomicBool::new(false));
    // Four clients back to back: about four containers busy at every minute's peak.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (token, stop) = (token.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let a = invoke(addr, &token, "busy", "").await;
                    assert_eq!(a.status, 200, "{}", a.body);
                }
            })
        })
        .collect();
    let token_ref = &token;
    let prediction = eventually(
        "a forecast fitted by the Predictor, held by the pool",
        || async move {
            let p = json(
                &call(
                    addr,
                    "GET",
                    "/v1/codes/busy/prediction",
                    Some(token_ref),
                    "",
                )
                .await,
            );
            let fitted = p["profile"]["concurrency"]["per_step"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            let held = p["pool"]["why"]
                .as_str()
                .is_some_and(|w| w.contains("demand forecast"));
            if fitted && held {
                Ok(p)
            } else {
                Err(p.to_string())
            }
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }
    let steps: Vec<f64> = prediction["profile"]["concurrency"]["per_step"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect();
    let peak = steps.iter().copied().fold(0.0, f64::max);
    assert!((3.0..=6.0).contains(&peak), "{prediction}");
    node.shutdown().await;
}

/// `/metrics` and `/v1/cluster` are for operators: the admin token or the read-only viewer
/// token reads them; no token gets 401, a tenant's 403. The viewer token changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t21_operators_read_metrics_and_the_cluster_tenants_do_not() {
    const VIEWER: &str = "viewer-secret";
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(
        NodeConfig {
            viewer_token: Some(VIEWER.into()),
            ..config(dir.path(), 1.0)
        },
        Arc::new(FakeRuntime::new()),
    )
    .await
    .expect("node starts");
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    for path in ["/metrics", "/v1/cluster"] {
        let status =
            |who: Option<&'static str>| async move { call(addr, "GET", path, who, "").await };
        assert_eq!(status(None).await.status, 401, "{path} without a token");
        let as_tenant = call(addr, "GET", path, Some(&token), "").await;
        assert_eq!(
            as_tenant.status, 403,
            "{path} as a tenant: {}",
            as_tenant.body
        );
        assert!(as_tenant.body.contains("viewer"), "{}", as_tenant.body);
        assert_eq!(status(Some(ADMIN)).await.status, 200, "{path} as the admin");
        assert_eq!(
            status(Some(VIEWER)).await.status,
            200,
            "{path} as the viewer"
        );
    }
    let metrics = call(addr, "GET", "/metrics", Some(VIEWER), "").await;
    assert!(
        metrics.body.contains("forewarm_invocations_total"),
        "{}",
        metrics.body
    );
    // Read-only: the viewer creates no tenant and acts as no tenant.
    let create = call(
        addr,
        "POST",
        "/v1/tenants",
        Some(VIEWER),
        r#"{"name":"evil"}"#,
    )
    .await;
    assert_eq!(create.status, 403, "{}", create.body);
    let register = call(addr, "PUT", "/v1/codes/f", Some(VIEWER), FAST).await;
    assert_eq!(register.status, 403, "{}", register.body);
    node.shutdown().await;
}

/// `curl` for `url` (`--resolve`d to 127.0.0.1), trusting `ca`: the HTTP status it saw, 0
/// when it got no HTTP answer.
fn curl(url: &str, resolve: &str, ca: &Path, token: Option<&str>) -> u16 {
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
    ])
    .arg("--cacert")
    .arg(ca)
    .arg("--resolve")
    .arg(resolve);
    if let Some(t) = token {
        cmd.arg("-H").arg(format!("authorization: Bearer {t}"));
    }
    let out = cmd.arg(url).output().expect("curl runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t22_the_api_serves_https_with_a_certificate_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    let files = forewarm_node::tls::ensure(&tls, &["api.test"]).expect("certificate");
    let (cert, key) = (files[0].cert.clone(), files[0].key.clone());
    // Both or neither; a file that is not what it should be is named.
    let half = Node::start(
        NodeConfig {
            tls_cert: Some(cert.clone()),
            ..config(dir.path(), 1.0)
        },
        Arc::new(FakeRuntime::new()),
    )
    .await
    .expect_err("a certificate without its key");
    assert!(half.to_string().contains("go together"), "{half}");
    let wrong = Node::start(
        NodeConfig {
            tls_cert: Some(cert.clone()),
            tls_key: Some(files[0].ca.clone()),
            ..config(dir.path(), 1.0)
        },
        Arc::new(FakeRuntime::new()),
    )
    .await
    .expect_err("a certificate as the key");
    assert!(wrong.to_string().contains("ca.pem"), "{wrong}");

    let node = Node::start(
        NodeConfig {
            tls_cert: Some(cert),
            tls_key: Some(key),
            ..config(dir.path(), 1.0)
        },
        Arc::new(FakeRuntime::new()),
    )
    .await
    .expect("node starts with HTTPS");
    let port = node.addr().port();
    let resolve = format!("api.test:{port}:127.0.0.1");
    let https = |path: &str| format!("https://api.test:{port}{path}");
    let ca = &files[0].ca;
    let status = |path: &str, token| curl(&https(path), &resolve, ca, token);
    assert_eq!(status("/healthz", None), 200);
    assert_eq!(status("/v1/cluster", Some(ADMIN)), 200);
    assert_eq!(status("/v1/cluster", None), 401);
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let plain = format!("http://api.test:{port}/healthz");
    assert_eq!(curl(&plain, &resolve, ca, None), 0);
    node.shutdown().await;
}

/// The dashboard, in a real browser: headless Chromium loads `/ui` with the admin token in
/// the address's fragment, and the page shows this node's region, a pool table with the
/// container an invocation left, and a chart of the hour's starts (one cold, two warm)
/// drawn as SVG bars; a screenshot is saved to `target/ui-node.png`. The page holds no data
/// (served to anyone, with a policy that loads nothing from elsewhere); its data endpoint
/// `/v1/history` answers operators only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t23_the_dashboard_shows_the_region_the_pool_and_the_hours_starts_in_a_browser() {
    let (_dir, _runtime, node) = start(1.0).await;
    let addr = node.addr();
    let token = tenant(addr, "acme", "").await;
    register(addr, &token, "f", FAST).await;
    let starts: Vec<String> = {
        let mut s = Vec::new();
        for _ in 0..3 {
            let a = invoke(addr, &token, "f", "").await;
            assert_eq!(a.status, 200, "{}", a.body);
            s.push(json(&a)["start"].as_str().unwrap_or_default().to_owned());
        }
        s
    };
    assert_eq!(starts, ["cold", "warm", "warm"]);

    let page = call(addr, "GET", "/ui", None, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.header("content-security-policy")
            .is_some_and(|p| p.starts_with("default-src 'self'")),
        "{:?}",
        page.headers
    );
    for (who, status) in [(None, 401), (Some(token.as_str()), 403), (Some(ADMIN), 200)] {
        let a = call(addr, "GET", "/v1/history", who, "").await;
        assert_eq!(a.status, status, "{who:?}: {}", a.body);
    }
    let history = json(&call(addr, "GET", "/v1/history", Some(ADMIN), "").await);
    let minutes = history["minutes"].as_array().expect("minutes");
    assert_eq!(minutes.len(), 60, "{history}");
    let sum = |k: &str| minutes.iter().filter_map(|m| m[k].as_u64()).sum::<u64>();
    assert_eq!((sum("cold"), sum("warm")), (1, 2), "{history}");

    // Trained on the three runs before the page is read.
    let trained = train(addr, &token, "f").await;
    assert_eq!(trained.status, 200, "{}", trained.body);
    let url = format!("http://{addr}/ui#token={ADMIN}");
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-node.png");
    let dom = tokio::task::spawn_blocking(move || forewarm_tests::browser(&url, Some(&shot)))
        .await
        .expect("the browser ran");
    assert!(
        dom.contains("node fake-node in local"),
        "the node's name and region: {dom}"
    );
    assert!(
        dom.contains(r#"<tr class="member"><td>fake-node (this node)</td><td>local</td>"#),
        "the region table: {dom}"
    );
    assert!(
        dom.contains(r#"<tr class="container"><td>acme</td><td>f</td>"#),
        "a pool row for the container: {dom}"
    );
    assert!(
        dom.contains(r#"class="cold""#) && dom.contains(r#"class="warm""#) && dom.contains("<rect"),
        "the chart's bars: {dom}"
    );
    assert!(
        dom.contains("last hour: 1 cold, 2 warm, 0 pre-warmed"),
        "the chart's totals: {dom}"
    );
    // The code type's profile as the model predicts it (trained on its three samples), and
    // its minute of runs with the forecast beside it.
    assert!(
        dom.contains(r#"<tr class="code"><td>acme/f</td><td class="num">3</td>"#),
        "a row for the code type: {dom}"
    );
    assert!(
        dom.contains(r#"class="spark""#) && dom.contains(r#"class="forecast""#),
        "actual bars and the forecast line: {dom}"
    );
    // Where each ran and why: three decisions, all here (a lone node).
    let decided = dom.matches(r#"<tr class="route">"#).count();
    assert_eq!(decided, 3, "the routing decisions: {dom}");
    assert!(
        dom.contains("<td>acme/f</td><td>fake-node</td><td>local</td><td>cold</td>")
            && dom.contains("no other member"),
        "a decision in full: {dom}"
    );
    node.shutdown().await;
}

/// `GET /openapi.json` describes exactly the routes docs/node.md's API table lists, each one
/// served by the node (no fallback 404, no 405), every error answer with the `ErrorBody`
/// schema, and the document is valid OpenAPI (`openapi-spec-validator`, from PyPI; make
/// test-tools installs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t24_the_openapi_document_covers_every_route_the_node_serves_and_is_valid() {
    let (dir, _runtime, node) = start(1.0).await;
    let addr = node.addr();
    let a = call(addr, "GET", "/openapi.json", None, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = json(&a);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let mut described: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            described.push(format!("{} {path}", method.to_uppercase()));
            for (status, answer) in op["responses"].as_object().expect("responses") {
                // Every error answers an ErrorBody; /readyz's 503 is its own status body.
                let error = status.starts_with('4') || status.starts_with('5');
                if error && path != "/readyz" {
                    let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{method} {path} {status}: {answer}"
                    );
                }
            }
        }
    }
    described.sort();
    // The API table of docs/node.md: "| `METHOD /path...` | who | what |".
    let table =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/node.md"))
            .expect("docs/node.md");
    let mut documented: Vec<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|route| route.split(' ').nth(1).is_some_and(|p| p.starts_with('/')))
        .map(|route| route.split('[').next().unwrap_or(route).to_owned())
        .collect();
    documented.sort();
    documented.dedup();
    assert_eq!(
        described, documented,
        "the document against docs/node.md's table"
    );
    // Each is served: whatever it answers without a token, not the fallback or a 405.
    for route in &described {
        let (method, path) = route.split_once(' ').expect("METHOD /path");
        let path = path
            .replace("{id}", "nobody")
            .replace("{name}", "nobody")
            .replace("{code}", "nothing");
        let a = call(addr, method, &path, None, "").await;
        assert!(
            a.status != 405 && !a.body.contains("no such endpoint"),
            "{route}: {} {}",
            a.status,
            a.body
        );
    }
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &a.body).expect("written");
    let checked = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        checked.status.success(),
        "openapi-spec-validator (pip install openapi-spec-validator; make test-tools): {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    node.shutdown().await;
}
