//! forewarm's replicated cluster state: tenants (token hashes, quotas, allowed regions), code
//! types, per-region model summaries and the region topology, kept consistent across nodes by
//! openraft.
//!
//! - [`state`]: what the cluster agrees on and the deterministic `apply` of a [`Command`];
//! - [`store`]: the durable log and state machine (one redb file; passes openraft's storage
//!   test suite);
//! - the topology is Raft's own membership: every member is a [`ClusterNode`] with its
//!   region and its API address, so joining and leaving are membership changes.
//!
//! The network (Raft RPCs between nodes) is the node's business: see `forewarm-node`.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

pub mod state;
pub mod store;

pub use state::{
    Applied, ClusterState, Code, CodeKey, Command, DEFAULT_MAX_QUEUE, DEFAULT_TIMEOUT_MS,
    MAX_FEATURES, MAX_MAX_QUEUE, MAX_TIMEOUT_MS, ModelSummary, RECENT_WRITES, Tenant, TenantUpdate,
    code_key, hash_token, present, same_bytes, same_secret,
};
pub use store::{AppliedState, LogStore, OpenError, SharedState, StateMachine, check_snapshot};

/// Raft id of a node.
pub type NodeId = u64;

/// A member of the cluster: where its API (and Raft endpoint) listens, and its region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// `host:port` of its HTTP API.
    pub addr: String,
    /// Its region.
    pub region: String,
    /// Its node id (the name in labels and logs).
    pub name: String,
}

impl std::fmt::Display for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} ({})", self.name, self.addr, self.region)
    }
}

openraft::declare_raft_types!(
    /// forewarm's Raft types.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = NodeId,
        Node = ClusterNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A Raft node of forewarm.
pub type Raft = openraft::Raft<TypeConfig>;

/// The Raft id of the node named `name`: the first 8 bytes of its name's SHA-256, so a node
/// keeps its id across restarts and names map to ids without coordination.
pub fn raft_id(name: &str) -> NodeId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}
