//! Shared fixtures for the integration tests: small traces written to temporary directories,
//! and a minimal HTTP client for the runner protocol.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
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
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let r = request(addr, method, path, None, body.map(str::as_bytes))?;
    Some((r.status, r.body))
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (responses with a content length; enough for forewarm's JSON).
    pub body: String,
}

impl Answer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with an optional bearer token and body; `None` when nothing answers.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Option<Answer> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: forewarm\r\nconnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or(b"");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // The server may answer (413) before reading a large body: ignore write errors.
    let _ = s.write_all(&bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// [`request`] from async code (on the blocking pool); panics when nothing answers.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Answer {
    try_call(addr, method, path, token, body)
        .await
        .unwrap_or_else(|| panic!("nothing answers on {addr}"))
}

/// [`request`] from async code (on the blocking pool); `None` when nothing answers.
pub async fn try_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<Answer> {
    let (method, path, token, body) = (
        method.to_owned(),
        path.to_owned(),
        token.map(str::to_owned),
        body.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let body = (!body.is_empty()).then_some(body.as_bytes());
        request(addr, &method, &path, token.as_deref(), body)
    })
    .await
    .expect("request task")
}

/// The body of `a` as JSON; panics (showing the body) when it is not.
pub fn json(a: &Answer) -> serde_json::Value {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", a.body))
}
