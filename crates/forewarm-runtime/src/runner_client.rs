//! HTTP client for the runner protocol (`GET /ready`, `POST /invoke`), with pooled connections.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::{Usage, WorkloadOverrides};

/// A runner client shared by all containers of a node.
#[derive(Debug, Clone)]
pub struct RunnerClient {
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Default for RunnerClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        Self {
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector),
        }
    }
}

impl RunnerClient {
    async fn call(
        &self,
        method: Method,
        endpoint: SocketAddr,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), String> {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{endpoint}{path}"))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let resp = self.http.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, bytes))
    }

    /// Whether the runner answers `GET /ready` with 200.
    pub async fn is_ready(&self, endpoint: SocketAddr) -> bool {
        matches!(
            self.call(Method::GET, endpoint, "/ready", Bytes::new())
                .await,
            Ok((StatusCode::OK, _))
        )
    }

    /// `POST /invoke`; an error says what failed (transport, status and body).
    pub async fn invoke(
        &self,
        endpoint: SocketAddr,
        overrides: &WorkloadOverrides,
    ) -> Result<Usage, String> {
        let body = serde_json::to_vec(overrides).map_err(|e| e.to_string())?;
        let (status, bytes) = self
            .call(Method::POST, endpoint, "/invoke", Bytes::from(body))
            .await?;
        if status != StatusCode::OK {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("bad usage from runner: {e}"))
    }
}
