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
    .unwrap_or_else(|| panic!("nothing answers on {addr}"))
}

/// The body of `a` as JSON; panics (showing the body) when it is not.
pub fn json(a: &Answer) -> serde_json::Value {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", a.body))
}

/// A userspace TCP proxy that delays every byte by a one-way delay in each direction (this
/// kernel has no netem). The delay can be changed while connections are open.
#[derive(Debug, Clone)]
pub struct DelayProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    delay_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl DelayProxy {
    /// Listen on a free loopback port and forward to `upstream`, `one_way` later each way.
    pub async fn start(upstream: SocketAddr, one_way: Duration) -> Self {
        use std::sync::atomic::AtomicU64;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let delay_us = std::sync::Arc::new(AtomicU64::new(one_way.as_micros() as u64));
        let delay = delay_us.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(delayed_pipe(cr, sw, delay.clone()));
                tokio::spawn(delayed_pipe(sr, cw, delay.clone()));
            }
        });
        Self { addr, delay_us }
    }

    /// Change the one-way delay (for bytes read from now on).
    pub fn set_delay(&self, one_way: Duration) {
        self.delay_us.store(
            one_way.as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// Copy `from` to `to`, each chunk written `delay` after it was read, in order.
async fn delayed_pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let delay =
                    Duration::from_micros(delay_us.load(std::sync::atomic::Ordering::Relaxed));
                if tx
                    .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
