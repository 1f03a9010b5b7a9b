//! [`HttpClient`]: pooled hyper connections, for calls to a node's API (Raft RPCs, forwarded
//! writes, the CLI, the benchmarks, the tests).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::HttpError;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A pooled HTTP/1.1 client (keep-alive, no Nagle), over plain TCP or over TLS.
#[derive(Debug, Clone)]
pub struct HttpClient {
    http: Pool,
    /// Sent as the `forewarm-node` header of every request: the caller's name, for a server
    /// that checks it against the certificate the caller showed.
    from: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
enum Pool {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

/// The header naming the calling node on a TLS client's requests.
pub const FROM_HEADER: &str = "forewarm-node";

impl Default for HttpClient {
    fn default() -> Self {
        Self::from_source(None)
    }
}

/// An HTTP answer: status, headers, body.
pub type HttpAnswer = (StatusCode, hyper::HeaderMap, Bytes);

impl HttpClient {
    /// A client whose connections leave from `source` (a multi-homed host; `forewarm up
    /// --regions` gives each node a loopback address of its own so the delay proxies can tell
    /// the regions apart); `None`: the system's choice.
    pub fn from_source(source: Option<std::net::IpAddr>) -> Self {
        Self {
            http: Pool::Plain(builder().build(connector(source))),
            from: None,
        }
    }

    /// A client that speaks HTTPS only, with `tls` (its roots and its client certificate),
    /// expecting every server to be valid for `server_name` whatever address it is reached
    /// at, and naming itself `from` in the `forewarm-node` header.
    pub fn tls(
        source: Option<std::net::IpAddr>,
        tls: rustls::ClientConfig,
        server_name: &str,
        from: &str,
    ) -> Result<Self, HttpError> {
        let name =
            rustls::pki_types::ServerName::try_from(server_name.to_owned()).map_err(|e| {
                HttpError::BadRequest {
                    endpoint: server_name.to_owned(),
                    reason: format!("not a server name: {e}"),
                }
            })?;
        let mut http = connector(source);
        http.enforce_http(false);
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .with_server_name_resolver(FixedServerNameResolver::new(name))
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            http: Pool::Tls(builder().build(https)),
            from: Some(Arc::from(from)),
        })
    }

    /// One request to `http://{endpoint}{path}` (`endpoint` is `host:port`) with a JSON body
    /// and an optional bearer token. Any status is an answer; an error is a call that got
    /// none, and says whether the request may have run.
    pub async fn call(
        &self,
        method: Method,
        endpoint: impl std::fmt::Display,
        path: &str,
        token: Option<&str>,
        body: Bytes,
    ) -> Result<HttpAnswer, HttpError> {
        let endpoint = endpoint.to_string();
        let scheme = match self.http {
            Pool::Plain(_) => "http",
            Pool::Tls(_) => "https",
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{scheme}://{endpoint}{path}"))
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(from) = &self.from {
            req = req.header(FROM_HEADER, &**from);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| HttpError::BadRequest {
                endpoint: endpoint.clone(),
                reason: e.to_string(),
            })?;
        let sent = match &self.http {
            Pool::Plain(c) => c.request(req).await,
            Pool::Tls(c) => c.request(req).await,
        };
        let resp = sent.map_err(|e| {
            let reason = error_chain(&e);
            if e.is_connect() {
                HttpError::Connect {
                    endpoint: endpoint.clone(),
                    reason,
                }
            } else {
                HttpError::NoAnswer {
                    endpoint: endpoint.clone(),
                    reason,
                }
            }
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| HttpError::NoAnswer {
                endpoint: endpoint.clone(),
                reason: error_chain(&e),
            })?
            .to_bytes();
        Ok((status, headers, bytes))
    }

    /// [`HttpClient::call`] that gives up after `timeout` (an error saying so: the request
    /// may have run).
    pub async fn call_within(
        &self,
        timeout: Duration,
        method: Method,
        endpoint: impl std::fmt::Display,
        path: &str,
        token: Option<&str>,
        body: Bytes,
    ) -> Result<HttpAnswer, HttpError> {
        let endpoint = endpoint.to_string();
        let call = self.call(method, &endpoint, path, token, body);
        match tokio::time::timeout(timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(HttpError::timed_out(format!("{endpoint}{path}"), timeout)),
        }
    }
}

fn connector(source: Option<std::net::IpAddr>) -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_local_address(source);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    connector
}

fn builder() -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(Duration::from_secs(60));
    b
}

/// An error and its causes on one line (hyper's own message is often just "client error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn t01_nothing_listening_is_a_connect_error() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let gone = closed.local_addr().expect("addr");
        drop(closed);
        let e = HttpClient::default()
            .call(Method::GET, gone, "/", None, Bytes::new())
            .await
            .expect_err("nothing listens");
        assert!(matches!(e, HttpError::Connect { .. }), "{e}");
        assert!(e.not_sent(), "{e}");
    }

    #[tokio::test]
    async fn t02_a_silent_server_is_no_answer_after_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let held = tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let e = HttpClient::default()
            .call_within(
                Duration::from_millis(100),
                Method::POST,
                addr,
                "/x",
                None,
                Bytes::from_static(b"{}"),
            )
            .await
            .expect_err("no answer");
        assert!(matches!(e, HttpError::TimedOut { .. }), "{e}");
        assert!(!e.not_sent() && e.is_retryable(), "{e}");
        held.abort();
    }
}
