//! Shared fixtures for the integration tests: small traces written to temporary directories,
//! and HTTP calls to runners and nodes over forewarm's own client (`forewarm-http`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use forewarm_http::{Bytes, HttpClient, Method};
use forewarm_trace::{GenConfig, generate};

/// Write a generated trace of `apps` applications and `days` days into `dir`.
pub fn gen_trace(dir: &Path, apps: u32, days: u32, seed: u64) {
    generate(&GenConfig { apps, days, seed }, dir).expect("generating a trace");
}

/// One HTTP/1.1 request to `127.0.0.1:port` from sync code; returns (status, body), or
/// `None` when nothing answers.
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
    /// Body.
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

/// How long a test waits for an answer (a cold start on a loaded machine included).
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// One HTTP/1.1 request with an optional bearer token and body, from sync code (a runtime
/// of its own for the call); `None` when nothing answers.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Option<Answer> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?
        .block_on(exchange(addr, method, path, token, body.unwrap_or(b"")))
}

/// One request over forewarm's own client ([`forewarm_http::HttpClient`], a fresh pool per
/// call, so no test depends on another's connections); `None` when nothing answers.
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Option<Answer> {
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let (status, headers, bytes) = HttpClient::default()
        .call_within(
            ANSWER_WITHIN,
            method,
            addr,
            path,
            token,
            Bytes::copy_from_slice(body),
        )
        .await
        .ok()?;
    let headers = headers
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_owned(), value)
        })
        .collect();
    Some(Answer {
        status: status.as_u16(),
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// One request from async code; panics when nothing answers.
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

/// One request from async code; `None` when nothing answers.
pub async fn try_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<Answer> {
    exchange(addr, method, path, token, body.as_bytes()).await
}

/// The body of `a` as JSON; panics (showing the body) when it is not.
pub fn json(a: &Answer) -> serde_json::Value {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", a.body))
}

/// `POST /v1/invoke/{code}` with an `Idempotency-Key`, over a raw connection (the shared
/// client sends no extra headers).
pub async fn invoke_keyed(
    addr: SocketAddr,
    token: &str,
    code: &str,
    key: &str,
    body: &str,
) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST /v1/invoke/{code} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {token}\r\n\
         idempotency-key: {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("answer");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// What a person would see at `url`: Debian's Chromium (`FOREWARM_CHROMIUM`, default
/// `chromium`; `make test` installs it) loads the page headless, runs its script for up to
/// 10 s of virtual time (its requests included) and prints the DOM, which this returns; with
/// `screenshot`, it also saves what it drew there as a PNG. Blocking: call it from
/// `spawn_blocking` beside a node in the same runtime.
pub fn browser(url: &str, screenshot: Option<&Path>) -> String {
    let chromium = std::env::var("FOREWARM_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let run = |extra: &[String]| {
        let mut args = vec![
            "--headless".to_owned(),
            // Tests run as root in CI, where Chromium's sandbox cannot start.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=10000".to_owned(),
            "--window-size=1280,1600".to_owned(),
        ];
        args.extend_from_slice(extra);
        args.push(url.to_owned());
        let out = std::process::Command::new(&chromium)
            .args(&args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{chromium} did not start ({e}): install Debian's chromium (make test-tools)"
                )
            });
        assert!(
            out.status.success(),
            "{chromium} {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    if let Some(png) = screenshot {
        run(&[format!("--screenshot={}", png.display())]);
        assert!(png.exists(), "no screenshot at {}", png.display());
    }
    run(&["--dump-dom".to_owned()])
}
