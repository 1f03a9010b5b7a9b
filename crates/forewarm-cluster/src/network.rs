//! The Raft network, client side: openraft's RPCs to the other members over their HTTP APIs
//! (the server side is [`crate::server`]).

use std::sync::Arc;
use std::time::Duration;

use forewarm_http::{Bytes, HttpClient, HttpError, Method, StatusCode};
use forewarm_raft::{ClusterNode, NodeId, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Authenticated calls to the other members: openraft's network, and the forwarded writes,
/// read points and joins of [`crate::forward`].
#[derive(Debug, Clone)]
pub struct HttpNetwork {
    http: HttpClient,
    secret: Arc<str>,
}

impl HttpNetwork {
    /// Calls through `http`, with `secret` as the bearer token.
    pub(crate) fn new(http: HttpClient, secret: Arc<str>) -> Self {
        Self { http, secret }
    }

    /// The cluster secret (empty on a lone node without one).
    pub(crate) fn secret(&self) -> &Arc<str> {
        &self.secret
    }

    /// POST `body` to `path` on the member at `addr` with the cluster secret, within
    /// `timeout`: its status and body.
    pub(crate) async fn post(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let (status, _, bytes) = self
            .http
            .call_within(
                timeout,
                Method::POST,
                addr,
                path,
                Some(&*self.secret),
                body.into(),
            )
            .await?;
        Ok((status, bytes))
    }
}

/// One peer.
#[derive(Debug)]
pub struct HttpPeer {
    net: HttpNetwork,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpPeer;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> Self::Network {
        HttpPeer {
            net: self.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl HttpPeer {
    async fn rpc<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, ClusterNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let (status, bytes) = match self
            .net
            .post(&self.addr, path, body, option.hard_ttl())
            .await
        {
            Ok(answer) => answer,
            // The peer is slow, not gone: openraft retries at its own pace.
            Err(e @ HttpError::TimedOut { .. }) => {
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
            // No connection, or it broke: openraft backs off the peer.
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&e))),
        };
        if status != StatusCode::OK {
            let io = std::io::Error::other(format!(
                "{}{path}: {status}: {}",
                self.addr,
                String::from_utf8_lossy(&bytes)
            ));
            return Err(RPCError::Network(NetworkError::new(&io)));
        }
        let answer: Result<Resp, E> =
            serde_json::from_slice(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, ClusterNode, RaftError<NodeId, E>>>;

impl RaftNetwork<TypeConfig> for HttpPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.rpc("/raft/append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.rpc("/raft/snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.rpc("/raft/vote", &rpc, &option).await
    }
}
