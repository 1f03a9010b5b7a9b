//! The runner image under real Docker, with the isolation the node will apply.
//!
//! Needs a Docker engine and the image built by `make images` (`make test` does both); it fails
//! loudly, never skips, where either is missing.

use std::process::Command;
use std::time::{Duration, Instant};

use forewarm_tests::http;

fn image() -> String {
    std::env::var("FOREWARM_RUNNER_IMAGE")
        .unwrap_or_else(|_| format!("forewarm/runner:{}", env!("CARGO_PKG_VERSION")))
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker is required for this test and could not run: {e}"));
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A container removed when the test ends, pass or fail.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn t01_hardened_runner_container_initialises_then_runs_real_work() {
    docker(&["info", "--format", "{{.ServerVersion}}"]);
    let image = image();
    assert!(
        !docker(&["images", "-q", &image]).is_empty(),
        "image {image} is missing: build it with `make images`"
    );
    let id = docker(&[
        "run",
        "-d",
        "--label",
        "forewarm.test=docker-t01",
        "-p",
        "127.0.0.1:0:8080",
        "--read-only",
        "--tmpfs",
        "/tmp:size=64m",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--memory",
        "256m",
        "--pids-limit",
        "64",
        "--cpus",
        "1",
        "-e",
        "FOREWARM_INIT_MS=500",
        "-e",
        "FOREWARM_CPU_MS=40",
        "-e",
        "FOREWARM_MEM_MIB=48",
        &image,
    ]);
    let container = Container(id);
    let mapping = docker(&["port", &container.0, "8080/tcp"]);
    let port: u16 = mapping
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port mapping in {mapping:?}"));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let mut saw_initialising = false;
    loop {
        match http(port, "GET", "/ready", None) {
            Some((200, _)) => break,
            Some((503, _)) => saw_initialising = true,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "runner container never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        saw_initialising,
        "GET /ready answered 200 before init_ms had passed"
    );
    let (status, body) =
        http(port, "POST", "/invoke", Some(r#"{"io_kib":512}"#)).expect("invoke answers");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json usage");
    assert!(v["cpu_ms"].as_f64().expect("cpu_ms") >= 40.0, "{v}");
    assert!(v["peak_mib"].as_f64().expect("peak_mib") >= 48.0, "{v}");
    assert_eq!(
        v["io_kib"], 512,
        "written to the tmpfs despite the read-only rootfs"
    );
    // Over the memory limit: the kernel kills the runner; the request fails, not the test.
    let over = http(
        port,
        "POST",
        "/invoke",
        Some(r#"{"mem_mib":1024,"cpu_ms":0}"#),
    );
    assert!(
        !matches!(over, Some((200, _))),
        "a 1 GiB touch must not succeed under --memory 256m"
    );
}
