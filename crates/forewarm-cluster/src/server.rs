//! The Raft network, server side, and the other internal endpoints (`/raft/*`): Raft RPCs,
//! forwarded writes and read points, joining and leaving. Each takes the cluster secret as its
//! bearer token and answers JSON.
//!
//! With mutual TLS (`cluster.tls`), they are served only on the cluster listener
//! ([`serve`]), and each request also names its caller (`forewarm-node`), whose
//! certificate must be valid for that name. The caller must then be a member of the Raft
//! membership as this node knows it, except for Raft's own RPCs and joins: a Raft RPC may only
//! carry the caller's own vote (a lagging follower must accept a leader added after the last
//! membership it applied), and a join comes from the node joining or from a member
//! forwarding it.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::Router as Routes;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use forewarm_raft::{ClusterNode, Command, NodeId, TypeConfig};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Cluster;
use crate::forward::Written;
use crate::rpc_check::{self, Local};
use crate::tls::PeerCert;

/// What an internal endpoint answers to a wrong or missing cluster secret.
pub const SECRET_REFUSED: &str = "internal endpoint: wrong or missing cluster secret";

/// The internal endpoints: Raft RPCs, forwarded writes and read points, joining and leaving.
/// Each takes the cluster secret as bearer token and answers JSON.
pub fn routes(cluster: Arc<Cluster>) -> Routes {
    Routes::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/write", post(write))
        .route("/raft/read-index", post(read_index))
        .route("/raft/join", post(join))
        .route("/raft/remove", post(remove))
        .with_state(cluster)
}

/// A refused internal request.
#[derive(Debug)]
pub struct Refused(pub StatusCode, pub String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({"error": "cluster", "message": self.1}));
        (self.0, body).into_response()
    }
}

/// The certificate a caller showed, if it came through the cluster listener with TLS.
pub type Peer = Option<Extension<PeerCert>>;

/// Who may call an internal endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callers {
    /// Members only (forwarded writes and reads, removals, transport sessions).
    Members,
    /// Any node of the cluster CA, checked further by the endpoint (Raft RPCs, joins).
    Certified,
}

/// Check the secret (an empty one, a lone node's, admits nobody) and, with TLS, the caller:
/// its name, which its certificate must be valid for (and, for [`Callers::Members`], a
/// member's). `None` without TLS.
pub fn authorized(
    cluster: &Cluster,
    headers: &HeaderMap,
    peer: &Peer,
    callers: Callers,
) -> Result<Option<String>, Refused> {
    if !cluster.admits(headers) {
        return Err(Refused(
            StatusCode::UNAUTHORIZED,
            String::from(SECRET_REFUSED),
        ));
    }
    if cluster.tls.is_none() {
        return Ok(None);
    }
    let forbidden = |m: String| Err(Refused(StatusCode::FORBIDDEN, m));
    let Some(Extension(cert)) = peer else {
        return forbidden(String::from(
            "internal endpoint: no client certificate (the cluster listener takes mutual TLS only)",
        ));
    };
    let Some(name) = headers
        .get(forewarm_http::FROM_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return forbidden(format!(
            "internal endpoint: the caller names itself in {}",
            forewarm_http::FROM_HEADER
        ));
    };
    if !cert.is(name) {
        return forbidden(format!(
            "internal endpoint: the caller's certificate is not valid for node {name:?}"
        ));
    }
    if callers == Callers::Members && !cluster.is_member(name) {
        return forbidden(format!("internal endpoint: {name:?} is not a member"));
    }
    Ok(Some(name.to_owned()))
}

/// Check the secret and the caller, and parse the body.
fn internal<T: DeserializeOwned>(
    cluster: &Cluster,
    headers: &HeaderMap,
    peer: &Peer,
    callers: Callers,
    body: &Bytes,
) -> Result<(T, Option<String>), Refused> {
    let caller = authorized(cluster, headers, peer, callers)?;
    let parsed = serde_json::from_slice(body)
        .map_err(|e| Refused(StatusCode::BAD_REQUEST, format!("request body: {e}")))?;
    Ok((parsed, caller))
}

fn json_answer<T: Serialize>(value: &T) -> Response {
    Json(value).into_response()
}

/// What the RPC checks need of this node now, for a call from `caller`.
async fn local(c: &Cluster, caller: Option<String>) -> Result<Local, Refused> {
    let committed = c
        .raft()
        .with_raft_state(|s| s.committed)
        .await
        .map_err(|e| {
            Refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("replicated state stopped: {e}"),
            )
        })?;
    Ok(Local {
        me: c.id,
        committed,
        caller: caller.as_deref().map(forewarm_raft::raft_id),
    })
}

/// Check the secret, parse the body, and check the RPC against what a correct member sends.
async fn raft_rpc<T: DeserializeOwned>(
    c: &Cluster,
    headers: &HeaderMap,
    peer: &Peer,
    body: &Bytes,
    check: fn(&T, &Local) -> Result<(), String>,
) -> Result<T, Refused> {
    let (req, caller) = internal::<T>(c, headers, peer, Callers::Certified, body)?;
    check(&req, &local(c, caller).await?).map_err(|e| Refused(StatusCode::BAD_REQUEST, e))?;
    Ok(req)
}

async fn append(
    State(c): State<Arc<Cluster>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match raft_rpc::<AppendEntriesRequest<TypeConfig>>(
        &c,
        &headers,
        &peer,
        &body,
        rpc_check::append,
    )
    .await
    {
        Ok(req) => json_answer(&c.raft().append_entries(req).await),
        Err(r) => r.into_response(),
    }
}

async fn vote(
    State(c): State<Arc<Cluster>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match raft_rpc::<VoteRequest<NodeId>>(&c, &headers, &peer, &body, rpc_check::vote).await {
        Ok(req) => json_answer(&c.raft().vote(req).await),
        Err(r) => r.into_response(),
    }
}

async fn snapshot(
    State(c): State<Arc<Cluster>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match raft_rpc::<InstallSnapshotRequest<TypeConfig>>(
        &c,
        &headers,
        &peer,
        &body,
        rpc_check::snapshot,
    )
    .await
    {
        Ok(req) => {
            let checked = c
                .receiving
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .chunk(&req);
            match checked {
                Ok(()) => json_answer(&c.raft().install_snapshot(req).await),
                Err(e) => Refused(StatusCode::BAD_REQUEST, e).into_response(),
            }
        }
        Err(r) => r.into_response(),
    }
}

async fn write(
    State(c): State<Arc<Cluster>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let command = match internal::<Command>(&c, &headers, &peer, Callers::Members, &body) {
        Ok((command, _)) => command,
        Err(r) => return r.into_response(),
    };
    // Only the leader commits a forwarded write: no second hop.
    let answer: Result<Written, String> = match c.raft().client_write(command).await {
        Ok(r) => Ok(Written {
            applied: r.data,
            index: r.log_id.index,
        }),
        Err(e) => Err(e.to_string()),
    };
    json_answer(&answer)
}

async fn read_index(
    State(c): State<Arc<Cluster>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = internal::<()>(&c, &headers, &peer, Callers::Members, &body) {
        return r.into_response();
    }
    let answer: Result<Option<u64>, String> = c
        .raft()
        .ensure_linearizable()
        .await
        .map(|log_id| log_id.map(|l| l.index))
        .map_err(|e| e.to_string());
    json_answer(&answer)
}

async fn join(
    State(c): State<Arc<Cluster>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let node = match internal::<ClusterNode>(&c, &headers, &peer, Callers::Certified, &body) {
        // The node joining itself, or a member forwarding its join to the leader.
        Ok((node, Some(caller))) if caller != node.name && !c.is_member(&caller) => {
            return Refused(
                StatusCode::FORBIDDEN,
                format!(
                    "join of {:?}: the caller's certificate names {caller:?}, neither that node nor a member",
                    node.name
                ),
            )
            .into_response();
        }
        Ok((node, _)) => node,
        Err(r) => return r.into_response(),
    };
    let answer: Result<(), String> = c.add_member(node).await.map_err(|e| e.to_string());
    json_answer(&answer)
}

async fn remove(
    State(c): State<Arc<Cluster>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = match internal::<String>(&c, &headers, &peer, Callers::Members, &body) {
        Ok((name, _)) => name,
        Err(r) => return r.into_response(),
    };
    let answer: Result<bool, String> = c.remove_member(&name).await.map_err(|e| e.to_string());
    json_answer(&answer)
}

/// How long a caller may take over the TLS handshake.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serve `routes` on `listener` until `stop` resolves, over TLS when `tls` is given (the
/// cluster listener's requires a client certificate of the cluster CA, and the one a caller
/// showed reaches the handlers as a [`PeerCert`]; the client API's does not), else plain
/// HTTP. Once stopped it takes no new connection, lets the open ones finish the request they
/// are on (up to `drain`), and drops what is left.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    routes: Routes,
    stop: impl std::future::Future<Output = ()>,
    drain: std::time::Duration,
) {
    let mut connections = tokio::task::JoinSet::new();
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, from) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, say: wait instead of spinning.
                tracing::warn!("listener: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tls, routes, stopped) = (tls.clone(), routes.clone(), stopped.clone());
        connections.spawn(async move {
            let Some(acceptor) = tls else {
                return serve_connection(tcp, routes, None, stopped).await;
            };
            match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| PeerCert(Arc::new(c.clone().into_owned())));
                    serve_connection(stream, routes, cert, stopped).await;
                }
                Ok(Err(e)) => tracing::info!("listener: TLS handshake with {from}: {e}"),
                Err(_) => tracing::info!("listener: no TLS handshake from {from} in time"),
            }
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "listener: {} connections still open after {drain:?}: dropped",
            connections.len()
        );
    }
}

/// One connection's requests, each carrying the caller's certificate (if any), until the
/// peer closes it or `stopped` turns true (then the request in progress is finished first).
async fn serve_connection<S>(
    io: S,
    routes: Routes,
    cert: Option<PeerCert>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt;
    let service = hyper::service::service_fn(move |mut req: axum::http::Request<_>| {
        if let Some(cert) = &cert {
            req.extensions_mut().insert(cert.clone());
        }
        routes.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let served = tokio::select! {
        served = conn.as_mut() => served,
        () = async {
            let _ = stopped.wait_for(|s| *s).await;
        } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = served {
        tracing::debug!("listener: connection: {e}");
    }
}
