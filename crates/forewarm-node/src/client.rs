//! A client for a node's API (the CLI's `invoke` and `replay`, and the benchmarks).

use std::net::{SocketAddr, ToSocketAddrs};

use forewarm_http::{Bytes, HttpAnswer, HttpClient, HttpError, Method};

/// A node's API, with a bearer token.
#[derive(Debug, Clone)]
pub struct NodeClient {
    http: HttpClient,
    addr: SocketAddr,
    token: Option<String>,
}

/// One invocation as the client saw it.
#[derive(Debug, Clone)]
pub struct InvokeAnswer {
    /// HTTP status.
    pub status: u16,
    /// `x-forewarm-start` (empty on errors).
    pub start: String,
    /// Response body (JSON).
    pub body: serde_json::Value,
}

impl NodeClient {
    /// A client of the node at `url` (`http://host:port` or `host:port`).
    pub fn new(url: &str, token: Option<String>) -> Result<Self, String> {
        let hostport = url
            .strip_prefix("http://")
            .unwrap_or(url)
            .trim_end_matches('/');
        if url.starts_with("https://") || hostport.contains('/') {
            return Err(format!(
                "{url:?}: expected http://HOST:PORT (no path; TLS is not served by a node)"
            ));
        }
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| format!("{url:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url:?} resolves to no address"))?;
        Ok(Self {
            http: HttpClient::default(),
            addr,
            token,
        })
    }

    /// The node's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token it sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// One request; an error is a call that got no answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<HttpAnswer, HttpError> {
        self.http
            .call(
                method,
                self.addr,
                path,
                self.token.as_deref(),
                Bytes::from(body),
            )
            .await
    }

    /// One request whose answer is JSON: (status, value).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, serde_json::Value), HttpError> {
        let (status, _, bytes) = self.call(method, path, body).await?;
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        Ok((status.as_u16(), value))
    }

    /// `POST /v1/invoke/{code}` with optional overrides (JSON).
    pub async fn invoke(&self, code: &str, overrides: &str) -> Result<InvokeAnswer, HttpError> {
        let path = format!("/v1/invoke/{code}");
        let (status, headers, bytes) = self
            .call(Method::POST, &path, overrides.as_bytes().to_vec())
            .await?;
        let start = headers
            .get("x-forewarm-start")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok(InvokeAnswer {
            status: status.as_u16(),
            start,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_host_and_port_only() {
        assert_eq!(
            NodeClient::new("http://127.0.0.1:7070/", None).map(|c| c.addr()),
            Ok(SocketAddr::from(([127, 0, 0, 1], 7070)))
        );
        assert!(NodeClient::new("127.0.0.1:7070", None).is_ok());
        assert!(NodeClient::new("https://127.0.0.1:7070", None).is_err());
        assert!(NodeClient::new("http://127.0.0.1:7070/v1", None).is_err());
        assert!(NodeClient::new("http://127.0.0.1", None).is_err());
    }
}
