//! The runner image under real Docker, with the isolation the node will apply.
//!
//! Needs a Docker engine and the image built by `make images` (`make test` does both); it fails
//! loudly, never skips, where either is missing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

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

fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: runner\r\nconnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, out.split_once("\r\n\r\n")?.1.to_owned()))
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
        match request(port, "GET", "/ready", None) {
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
        request(port, "POST", "/invoke", Some(r#"{"io_kib":512}"#)).expect("invoke answers");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json usage");
    assert!(v["cpu_ms"].as_f64().expect("cpu_ms") >= 40.0, "{v}");
    assert!(v["peak_mib"].as_f64().expect("peak_mib") >= 48.0, "{v}");
    assert_eq!(
        v["io_kib"], 512,
        "written to the tmpfs despite the read-only rootfs"
    );
    // Over the memory limit: the kernel kills the runner; the request fails, not the test.
    let over = request(
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
