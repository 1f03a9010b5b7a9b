//! The runner protocol, against the real binary on a loopback port.

use std::net::TcpListener;

use forewarm_tests::http;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Runner {
    child: Child,
    port: u16,
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(env: &[(&str, String)]) -> Runner {
    let port = free_port();
    let scratch = std::env::temp_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forewarm-runner"));
    cmd.env("FOREWARM_LISTEN", format!("127.0.0.1:{port}"))
        .env("FOREWARM_SCRATCH_DIR", scratch)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Runner {
        child: cmd.spawn().expect("starting forewarm-runner"),
        port,
    }
}

/// Poll until the runner answers at all, then return GET /ready's status and the time taken.
fn wait_listening(port: u16) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if http(port, "GET", "/ready", None).is_some() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "runner never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(port, "GET", "/ready", None).map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "runner never became ready");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn t01_ready_only_after_init_and_dependency_files() {
    let deps = tempfile::tempdir().expect("tempdir");
    std::fs::write(deps.path().join("model.bin"), vec![7u8; 300_000]).expect("write");
    let r = start(&[
        ("FOREWARM_INIT_MS", "400".into()),
        ("FOREWARM_DEPS_DIR", deps.path().display().to_string()),
    ]);
    wait_listening(r.port);
    let (status, body) = http(r.port, "GET", "/ready", None).expect("answer");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("initialising"), "{body}");
    let (status, _) = http(r.port, "POST", "/invoke", None).expect("answer");
    assert_eq!(status, 503, "no invocation before ready");
    wait_ready(r.port);
    let (_, body) = http(r.port, "GET", "/ready", None).expect("answer");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["deps_bytes"], 300_000);
    assert!(v["init_ms"].as_u64().expect("init_ms") >= 400, "{v}");
}

#[test]
fn t02_invoke_runs_the_workload_and_reports_usage() {
    let r = start(&[
        ("FOREWARM_CPU_MS", "30".into()),
        ("FOREWARM_MEM_MIB", "32".into()),
    ]);
    wait_ready(r.port);
    let (status, body) = http(r.port, "POST", "/invoke", None).expect("answer");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(v["cpu_ms"].as_f64().expect("cpu") >= 30.0, "{v}");
    assert!(v["peak_mib"].as_f64().expect("peak") >= 32.0, "{v}");
    let (status, body) = http(
        r.port,
        "POST",
        "/invoke",
        Some(r#"{"cpu_ms":0,"mem_mib":0,"io_kib":128}"#),
    )
    .expect("answer");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["io_kib"], 128);
    assert!(
        v["cpu_ms"].as_f64().expect("cpu") < 30.0,
        "override applied: {v}"
    );
}

#[test]
fn t03_bad_requests_are_400_with_a_reason() {
    let r = start(&[]);
    wait_ready(r.port);
    for (body, want) in [
        (r#"{"cpu_ms":"lots"}"#, "cpu_ms"),
        (r#"{"gpu_ms":1}"#, "gpu_ms"),
        (r#"{"mem_mib":99999999}"#, "mem_mib"),
        ("{", "EOF"),
    ] {
        let (status, text) = http(r.port, "POST", "/invoke", Some(body)).expect("answer");
        assert_eq!(status, 400, "{body}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json error");
        assert_eq!(v["error"], "bad_request");
        assert!(
            v["message"].as_str().expect("message").contains(want),
            "{body}: {text}"
        );
    }
}

#[test]
fn t04_bad_configuration_exits_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_forewarm-runner"))
        .env("FOREWARM_CPU_MS", "ten")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FOREWARM_CPU_MS=\"ten\""), "{err}");
}
