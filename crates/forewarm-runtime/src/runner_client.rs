//! HTTP clients: [`HttpClient`] (pooled hyper, for the node API) and [`RunnerClient`] (the
//! runner protocol, `GET /ready` and `POST /invoke`).

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::wire::{WireAnswer, WirePool};
use crate::{Usage, WorkloadOverrides};

/// A pooled HTTP/1.1 client (keep-alive, no Nagle): the runner client, and the node client
/// of the CLI and benchmarks, are this with a protocol on top.
#[derive(Debug, Clone)]
pub struct HttpClient {
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::from_source(None)
    }
}

impl HttpClient {
    /// A client whose connections leave from `source` (a multi-homed host; `forewarm up
    /// --regions` gives each node a loopback address of its own so the delay proxies can tell
    /// the regions apart); `None`: the system's choice.
    pub fn from_source(source: Option<std::net::IpAddr>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_local_address(source);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        Self {
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector),
        }
    }
}

/// An HTTP answer: status, headers, body.
pub type HttpAnswer = (StatusCode, hyper::HeaderMap, Bytes);

impl HttpClient {
    /// One request to `http://{endpoint}{path}` (`endpoint` is `host:port`) with a JSON body
    /// and an optional bearer token; an error is a transport failure.
    pub async fn call(
        &self,
        method: Method,
        endpoint: impl std::fmt::Display,
        path: &str,
        token: Option<&str>,
        body: Bytes,
    ) -> Result<HttpAnswer, String> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{endpoint}{path}"))
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = self.http.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, headers, bytes))
    }
}

/// A runner client shared by all containers of a node: the runner protocol over
/// [`WirePool`] connections, run in the calling task.
#[derive(Debug, Clone, Default)]
pub struct RunnerClient {
    wire: std::sync::Arc<WirePool>,
}

impl RunnerClient {
    /// Whether the runner answers `GET /ready` with 200.
    pub async fn is_ready(&self, endpoint: SocketAddr) -> bool {
        matches!(
            self.wire.exchange(endpoint, "GET", "/ready", b"").await,
            Ok(WireAnswer { status: 200, .. })
        )
    }

    /// `POST /invoke`; an error says what failed (transport, status and body).
    pub async fn invoke(
        &self,
        endpoint: SocketAddr,
        overrides: &WorkloadOverrides,
    ) -> Result<Usage, String> {
        let body = serde_json::to_vec(overrides).map_err(|e| e.to_string())?;
        let answer = self
            .wire
            .exchange(endpoint, "POST", "/invoke", &body)
            .await?;
        if answer.status != 200 {
            let status = StatusCode::from_u16(answer.status)
                .map_or_else(|_| answer.status.to_string(), |s| s.to_string());
            return Err(format!(
                "{status}: {}",
                String::from_utf8_lossy(&answer.body)
            ));
        }
        serde_json::from_slice(&answer.body).map_err(|e| format!("bad usage from runner: {e}"))
    }

    /// Drop the kept-alive connections to a runner that is gone.
    pub fn forget(&self, endpoint: SocketAddr) {
        self.wire.forget(endpoint);
    }
}
