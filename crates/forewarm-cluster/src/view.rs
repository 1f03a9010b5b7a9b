//! `GET /v1/cluster`: what this node knows of the members.

use std::collections::BTreeSet;

use forewarm_raft::NodeId;
use openraft::ServerState;
use serde::Serialize;

use crate::Cluster;

/// One member as `GET /v1/cluster` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Raft id.
    pub id: NodeId,
    /// Node name.
    pub name: String,
    /// Region.
    pub region: String,
    /// API address.
    pub addr: String,
    /// `leader`, `voter` or `learner`.
    pub role: &'static str,
    /// Moving average of this node's round trips to it, ms (`None` for itself or before the
    /// first probe answers).
    pub rtt_ms: Option<f64>,
    /// The latest measured round trips to it, oldest first, ms (at most 5).
    pub rtt_recent_ms: Vec<f64>,
    /// Its process groups this node reaches over their ractor_cluster session (empty for
    /// itself, or while there is no session).
    pub groups: Vec<String>,
    /// Measured wait of a warm request before it runs there, ms (this node's own for itself;
    /// a member's from its last inventory).
    pub queue_ms: Option<f64>,
}

/// `GET /v1/cluster`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// This node's id.
    pub id: NodeId,
    /// This node's name.
    pub node: String,
    /// This node's region.
    pub region: String,
    /// This node's Raft state: `leader`, `follower`, `candidate`, `learner`, `shutdown`.
    pub state: String,
    /// The leader's id, if known.
    pub leader: Option<NodeId>,
    /// The leader's name, if known.
    pub leader_name: Option<String>,
    /// Current term.
    pub term: u64,
    /// Index of the last applied log entry.
    pub applied_index: Option<u64>,
    /// Members, voters first.
    pub members: Vec<MemberView>,
}

impl Cluster {
    /// `GET /v1/cluster`; `groups` names the process groups of a member reached over the
    /// node transport.
    pub fn view(&self, groups: impl Fn(&str) -> Vec<String>) -> ClusterView {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let remote = self.remote.read().unwrap_or_else(|e| e.into_inner());
        let mut members: Vec<MemberView> = membership
            .nodes()
            .map(|(id, n)| MemberView {
                id: *id,
                name: n.name.clone(),
                region: n.region.clone(),
                addr: n.addr.clone(),
                role: if m.current_leader == Some(*id) {
                    "leader"
                } else if voters.contains(id) {
                    "voter"
                } else {
                    "learner"
                },
                rtt_ms: (*id != self.id).then(|| self.rtt.get(*id)).flatten(),
                rtt_recent_ms: self.rtt.recent(*id),
                groups: groups(&n.name),
                queue_ms: if *id == self.id {
                    Some(self.queue_ms())
                } else {
                    remote.get(id).map(|v| v.inventory.queue_ms)
                },
            })
            .collect();
        members.sort_by_key(|v| (v.role == "learner", v.name.clone()));
        let leader_name = m
            .current_leader
            .and_then(|id| membership.get_node(&id).map(|n| n.name.clone()));
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        ClusterView {
            id: self.id,
            node: self.me.name.clone(),
            region: self.me.region.clone(),
            state: state.to_owned(),
            leader: m.current_leader,
            leader_name,
            term: m.current_term,
            applied_index: m.last_applied.map(|l| l.index),
            members,
        }
    }
}
