//! The Raft network, server side, and the other internal endpoints (`/raft/*`): Raft RPCs,
//! forwarded writes and read points, joining and leaving. Each takes the cluster secret as its
//! bearer token and answers JSON.

use std::sync::Arc;

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

/// Check the secret (an empty one, a lone node's, admits nobody).
pub fn authorized(cluster: &Cluster, headers: &HeaderMap) -> Result<(), Refused> {
    if cluster.admits(headers) {
        Ok(())
    } else {
        Err(Refused(
            StatusCode::UNAUTHORIZED,
            String::from(SECRET_REFUSED),
        ))
    }
}

/// Check the secret and parse the body.
fn internal<T: DeserializeOwned>(
    cluster: &Cluster,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Refused> {
    authorized(cluster, headers)?;
    serde_json::from_slice(body)
        .map_err(|e| Refused(StatusCode::BAD_REQUEST, format!("request body: {e}")))
}

fn json_answer<T: Serialize>(value: &T) -> Response {
    Json(value).into_response()
}

/// What the RPC checks need of this node now.
async fn local(c: &Cluster) -> Result<Local, Refused> {
    let committed = c.raft.with_raft_state(|s| s.committed).await.map_err(|e| {
        Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("replicated state stopped: {e}"),
        )
    })?;
    Ok(Local {
        me: c.id,
        committed,
    })
}

/// Check the secret, parse the body, and check the RPC against what a correct member sends.
async fn raft_rpc<T: DeserializeOwned>(
    c: &Cluster,
    headers: &HeaderMap,
    body: &Bytes,
    check: fn(&T, &Local) -> Result<(), String>,
) -> Result<T, Refused> {
    let req = internal::<T>(c, headers, body)?;
    check(&req, &local(c).await?).map_err(|e| Refused(StatusCode::BAD_REQUEST, e))?;
    Ok(req)
}

async fn append(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    match raft_rpc::<AppendEntriesRequest<TypeConfig>>(&c, &headers, &body, rpc_check::append).await
    {
        Ok(req) => json_answer(&c.raft.append_entries(req).await),
        Err(r) => r.into_response(),
    }
}

async fn vote(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    match raft_rpc::<VoteRequest<NodeId>>(&c, &headers, &body, rpc_check::vote).await {
        Ok(req) => json_answer(&c.raft.vote(req).await),
        Err(r) => r.into_response(),
    }
}

async fn snapshot(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    match raft_rpc::<InstallSnapshotRequest<TypeConfig>>(&c, &headers, &body, rpc_check::snapshot)
        .await
    {
        Ok(req) => {
            let checked = c
                .receiving
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .chunk(&req);
            match checked {
                Ok(()) => json_answer(&c.raft.install_snapshot(req).await),
                Err(e) => Refused(StatusCode::BAD_REQUEST, e).into_response(),
            }
        }
        Err(r) => r.into_response(),
    }
}

async fn write(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    let command = match internal::<Command>(&c, &headers, &body) {
        Ok(command) => command,
        Err(r) => return r.into_response(),
    };
    // Only the leader commits a forwarded write: no second hop.
    let answer: Result<Written, String> = match c.raft.client_write(command).await {
        Ok(r) => Ok(Written {
            applied: r.data,
            index: r.log_id.index,
        }),
        Err(e) => Err(e.to_string()),
    };
    json_answer(&answer)
}

async fn read_index(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = internal::<()>(&c, &headers, &body) {
        return r.into_response();
    }
    let answer: Result<Option<u64>, String> = c
        .raft
        .ensure_linearizable()
        .await
        .map(|log_id| log_id.map(|l| l.index))
        .map_err(|e| e.to_string());
    json_answer(&answer)
}

async fn join(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    let node = match internal::<ClusterNode>(&c, &headers, &body) {
        Ok(node) => node,
        Err(r) => return r.into_response(),
    };
    let answer: Result<(), String> = c.add_member(node).await.map_err(|e| e.to_string());
    json_answer(&answer)
}

async fn remove(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    let name = match internal::<String>(&c, &headers, &body) {
        Ok(name) => name,
        Err(r) => return r.into_response(),
    };
    let answer: Result<bool, String> = c.remove_member(&name).await.map_err(|e| e.to_string());
    json_answer(&answer)
}
