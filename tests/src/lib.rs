//! Shared fixtures for the integration tests: small traces written to temporary directories,
//! and a minimal HTTP client for the runner protocol.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use forewarm_trace::{GenConfig, generate};

/// Write a generated trace of `apps` applications and `days` days into `dir`.
pub fn gen_trace(dir: &Path, apps: u32, days: u32, seed: u64) {
    generate(&GenConfig { apps, days, seed }, dir).expect("generating a trace");
}

/// One HTTP/1.1 request to `127.0.0.1:port` (connection closed after it); returns
/// (status, body), or `None` when nothing answers. Enough for the runner protocol.
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
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
