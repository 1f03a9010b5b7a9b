//! `forewarm up` as a process on real Docker: cold then warm then pre-warmed, tenant
//! isolation on separate networks, kill -9 and restart without a leaked container and with
//! every acknowledged tenant, code type and sample still there. Fails loudly without Docker.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use forewarm_tests::{Answer, request};
use serde_json::Value;

const ADMIN: &str = "docker-test-admin";

struct NodeProc {
    child: Child,
    addr: SocketAddr,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `forewarm up` with `data`, `node_id`, time scale 60; returns once it prints its URL.
fn up(data: &Path, node_id: &str, port: u16) -> NodeProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_forewarm"))
        .args(["up", "--time-scale", "60", "--node-id", node_id])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data)
        .env("FOREWARM_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning forewarm up");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("forewarm up exited before listening (is Docker running?)"));
    assert!(first.contains("listening on http://"), "{first}");
    // Keep draining stdout so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    NodeProc {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn call(n: &NodeProc, method: &str, path: &str, token: &str, body: &str) -> Answer {
    let body = (!body.is_empty()).then_some(body.as_bytes());
    request(n.addr, method, path, Some(token), body).expect("the node answers")
}

fn json(a: &Answer) -> Value {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", a.body))
}

fn docker_ids(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .expect("docker ps");
    assert!(out.status.success(), "docker ps failed: is Docker running?");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn network_of(id: &str) -> String {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
            id,
        ])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn tenant(n: &NodeProc, name: &str) -> String {
    let a = call(
        n,
        "POST",
        "/v1/tenants",
        ADMIN,
        &format!(r#"{{"name":"{name}"}}"#),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    json(&a)["token"].as_str().expect("token").to_owned()
}

const CODE: &str = r#"{"workload":{"cpu_ms":2,"mem_mib":8,"init_ms":250},"max_memory_mib":128}"#;

fn invoke(n: &NodeProc, token: &str, code: &str) -> (String, Value) {
    let a = call(n, "POST", &format!("/v1/invoke/{code}"), token, "");
    assert_eq!(a.status, 200, "{}", a.body);
    let start = a.header("x-forewarm-start").unwrap_or("").to_owned();
    let body = json(&a);
    assert_eq!(body["start"], start.as_str());
    (start, body)
}

#[test]
fn t01_node_on_docker_cold_warm_prewarmed_isolated_and_crash_safe() {
    let data = tempfile::tempdir().expect("tempdir");
    let node_id = format!("it-{}", std::process::id());
    let label = format!("forewarm.node={node_id}");
    let port = free_port();
    let mut node = up(data.path(), &node_id, port);

    // Tenant names unique per run: other Docker tests may run beside this one.
    let (a_name, o_name) = (
        format!("acme-{}", std::process::id()),
        format!("other-{}", std::process::id()),
    );
    let acme = tenant(&node, &a_name);
    let other = tenant(&node, &o_name);
    for (token, code) in [(&acme, "f"), (&acme, "tick"), (&other, "f")] {
        let a = call(&node, "PUT", &format!("/v1/codes/{code}"), token, CODE);
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let (start, cold) = invoke(&node, &acme, "f");
    assert_eq!(start, "cold");
    let cold_ms = cold["latency_ms"].as_f64().expect("latency");
    assert!(
        cold_ms >= 250.0,
        "a cold start pays the runner's init: {cold_ms}"
    );
    let (start, warm) = invoke(&node, &acme, "f");
    assert_eq!(start, "warm");
    assert_eq!(warm["container"], cold["container"]);

    // Isolation: other's "f" is its own code type, on its own container and network.
    let (start, theirs) = invoke(&node, &other, "f");
    assert_eq!(start, "cold", "never acme's warm container");
    let mine = cold["container"].as_str().expect("id");
    let theirs = theirs["container"].as_str().expect("id");
    assert_eq!(network_of(mine), format!("forewarm-tenant-{a_name}"));
    assert_eq!(network_of(theirs), format!("forewarm-tenant-{o_name}"));
    let cross = call(&node, "GET", "/v1/codes/tick/prediction", &other, "");
    assert_eq!(cross.status, 404);

    // A code type invoked every 4 s (4 policy minutes at scale 60) becomes pre-warmed.
    let mut starts = Vec::new();
    for _ in 0..7 {
        let began = Instant::now();
        starts.push(invoke(&node, &acme, "tick").0);
        std::thread::sleep(Duration::from_secs(4).saturating_sub(began.elapsed()));
    }
    assert_eq!(starts[0], "cold");
    assert!(
        starts[4..].iter().all(|s| s == "prewarmed"),
        "after three idle times every start is pre-warmed: {starts:?}"
    );
    let listed = docker_ids(&label);
    // acme's and other's "f" at least (tick's may be between unload and pre-warm).
    assert!(
        listed.len() >= 2,
        "containers carry the node label: {listed:?}"
    );

    // kill -9: containers stay behind; a restart removes them and keeps what was accepted.
    std::thread::sleep(Duration::from_millis(300)); // > the collector's flush interval
    node.child.kill().expect("kill -9");
    let _ = node.child.wait();
    assert!(
        !docker_ids(&label).is_empty(),
        "a killed node leaves its containers"
    );
    let mut node = up(data.path(), &node_id, port);
    assert!(docker_ids(&label).is_empty(), "the restart reaped them");
    let p = call(
        &node,
        "GET",
        "/v1/codes/tick/prediction?train=true",
        &acme,
        "",
    );
    assert_eq!(p.status, 200, "token and code type survived: {}", p.body);
    assert_eq!(json(&p)["profile"]["samples"], 7, "{}", p.body);
    let (start, _) = invoke(&node, &acme, "f");
    assert_eq!(start, "cold");

    // SIGTERM: a clean stop removes every container.
    let pid = node.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = node.child.wait().expect("wait");
    assert!(status.success(), "clean exit: {status}");
    assert!(docker_ids(&label).is_empty(), "nothing leaked");
    for t in [a_name, o_name] {
        let _ = Command::new("docker")
            .args(["network", "rm", &format!("forewarm-tenant-{t}")])
            .output();
    }
}

#[test]
fn t02_replay_drives_a_trace_through_a_live_node() {
    let data = tempfile::tempdir().expect("tempdir");
    let trace = tempfile::tempdir().expect("tempdir");
    forewarm_tests::gen_trace(trace.path(), 60, 1, 3);
    let node_id = format!("rp-{}", std::process::id());
    let port = free_port();
    let mut node = up(data.path(), &node_id, port);
    let out = Command::new(env!("CARGO_BIN_EXE_forewarm"))
        .args([
            "replay",
            "--apps",
            "3",
            "--minutes",
            "5",
            "--speed",
            "300",
            "--json",
        ])
        .arg("--trace")
        .arg(trace.path())
        .arg("--url")
        .arg(format!("http://127.0.0.1:{port}"))
        .env("FOREWARM_ADMIN_TOKEN", ADMIN)
        .output()
        .expect("running replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let served = report["served"].as_u64().expect("served");
    assert!(served > 0, "{report}");
    let starts = &report["starts"];
    let counted: u64 = ["cold", "warm", "prewarmed"]
        .iter()
        .map(|k| starts[k]["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(counted, served, "{report}");
    assert_eq!(
        report["invocations"].as_u64(),
        Some(
            served
                + report["errors"]
                    .as_object()
                    .map_or(0, |e| e.values().filter_map(Value::as_u64).sum())
        ),
        "every planned invocation is accounted for: {report}"
    );
    assert!(
        starts["cold"]["count"].as_u64().unwrap_or(0) >= 1,
        "{report}"
    );
    let pid = node.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(node.child.wait().expect("wait").success());
    assert!(docker_ids(&format!("forewarm.node={node_id}")).is_empty());
}
