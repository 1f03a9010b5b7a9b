//! Leader forwarding: writes committed through the leader and linearizable read points,
//! from any member, retried through elections with one helper ([`retry`]).

use std::time::Duration;

use forewarm_raft::{Applied, ClusterNode, Command, NodeId};
use openraft::error::{ClientWriteError, RaftError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Cluster;
use crate::error::ClusterError;
use crate::retry;

/// How long a write or read waits for a leader (an election) before giving up.
pub(crate) const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long one forwarded write or read-index call may take before the leader is looked up
/// again (a leader cut off mid-call must not hold the caller for the whole wait).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between forwarding attempts (an election takes a few hundred ms).
const PAUSE: Duration = Duration::from_millis(100);

/// A write as forwarded to the leader, and its answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Written {
    pub(crate) applied: Applied,
    pub(crate) index: u64,
}

impl Cluster {
    /// The current leader, waiting up to `wait` for one.
    pub(crate) async fn leader(
        &self,
        wait: Duration,
    ) -> Result<(NodeId, ClusterNode), ClusterError> {
        let mut metrics = self.raft().metrics();
        let found = tokio::time::timeout(wait, async {
            loop {
                {
                    let m = metrics.borrow_and_update();
                    if let Some(id) = m.current_leader
                        && let Some(node) = m.membership_config.membership().get_node(&id)
                    {
                        return Some((id, node.clone()));
                    }
                }
                if metrics.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match found {
            Ok(Some(leader)) => Ok(leader),
            _ => Err(ClusterError::NoLeader(wait)),
        }
    }

    /// POST `body` to the internal endpoint `path` on the member at `addr` with the cluster
    /// secret, within `timeout`; the answer is JSON `Result<T, String>` (an `Err`: the
    /// member declined).
    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &'static str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ClusterError> {
        let body = serde_json::to_vec(body).map_err(|e| ClusterError::Raft(e.to_string()))?;
        let (status, bytes) = self
            .net
            .post(addr, path, body, timeout)
            .await
            .map_err(|source| ClusterError::Unreachable { path, source })?;
        let answer: Result<T, String> =
            serde_json::from_slice(&bytes).map_err(|_| ClusterError::BadAnswer {
                addr: addr.to_owned(),
                path,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })?;
        answer.map_err(|message| ClusterError::Declined {
            addr: addr.to_owned(),
            path,
            message,
        })
    }

    /// POST to `path` on the leader (what only the leader may do: membership changes),
    /// looking the leader up again while it moves.
    pub(crate) async fn on_leader<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &'static str,
        body: &B,
    ) -> Result<T, ClusterError> {
        retry::until(LEADER_WAIT, PAUSE, |left| async move {
            let (_, leader) = self.leader(left).await?;
            self.post(&leader.addr, path, body, left).await
        })
        .await
    }

    /// Wait until this node has applied `index` (read-your-writes after a forwarded write).
    async fn caught_up(&self, index: u64) -> Result<(), ClusterError> {
        self.raft()
            .wait(Some(LEADER_WAIT))
            .applied_index_at_least(Some(index), "read your write")
            .await
            .map(|_| ())
            .map_err(|e| ClusterError::Raft(e.to_string()))
    }

    /// Where to forward to: the leader openraft named, else the one elected within `left`
    /// (this node itself, elected meanwhile: a retryable failure, so the caller tries again
    /// locally).
    async fn leader_to_forward_to(
        &self,
        named: Option<ClusterNode>,
        left: Duration,
    ) -> Result<ClusterNode, ClusterError> {
        if let Some(node) = named {
            return Ok(node);
        }
        match self.leader(left).await? {
            (id, _) if id == self.id => Err(ClusterError::NoLeader(Duration::ZERO)),
            (_, node) => Ok(node),
        }
    }

    /// Commit `command` through the leader (forwarded when this node is not it) and return
    /// what applying it did, once this node has applied it too.
    ///
    /// A forwarded write whose answer is lost is sent again: the leader may commit it
    /// twice. Every command applies idempotently: a tenant's creation carrying the stored
    /// token succeeds again, a code type equal to the stored one keeps its version, model
    /// summaries are replaced whole (`chaos/kill-leader.py` checks it on recorded histories).
    pub async fn write(&self, command: Command) -> Result<Applied, ClusterError> {
        let written = retry::until(LEADER_WAIT, PAUSE, |left| {
            let command = &command;
            async move {
                match self.raft().client_write(command.clone()).await {
                    Ok(r) => Ok(Written {
                        applied: r.data,
                        index: r.log_id.index,
                    }),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                        let leader = self.leader_to_forward_to(f.leader_node, left).await?;
                        let timeout = FORWARD_TIMEOUT.min(left);
                        self.post(&leader.addr, "/raft/write", command, timeout)
                            .await
                    }
                    Err(e) => Err(ClusterError::Raft(e.to_string())),
                }
            }
        })
        .await?;
        self.caught_up(written.index).await?;
        Ok(written.applied)
    }

    /// A linearizable read point: once this returns, the local applied state includes every
    /// write committed before the call (the leader confirms its leadership with a quorum; a
    /// follower asks the leader for that point and waits to apply it).
    pub async fn linearizable(&self) -> Result<(), ClusterError> {
        let index = retry::until(LEADER_WAIT, PAUSE, |left| async move {
            match self.raft().ensure_linearizable().await {
                Ok(_) => Ok(None),
                Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                    f,
                ))) => {
                    let leader = self.leader_to_forward_to(f.leader_node, left).await?;
                    let timeout = FORWARD_TIMEOUT.min(left);
                    self.post::<_, Option<u64>>(&leader.addr, "/raft/read-index", &(), timeout)
                        .await
                }
                Err(e) => Err(ClusterError::Raft(e.to_string())),
            }
        })
        .await?;
        if let Some(index) = index {
            self.caught_up(index).await?;
        }
        Ok(())
    }
}
