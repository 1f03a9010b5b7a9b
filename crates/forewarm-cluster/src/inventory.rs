//! What each member holds warm: its own inventory, pushed to the others every mesh tick, and
//! the others' as last received, which the Router scores regions with.

use std::collections::HashMap;
use std::time::Instant;

use forewarm_raft::{ClusterNode, NodeId};
use serde::{Deserialize, Serialize};

use crate::Cluster;

/// What a node holds warm: idle containers' memory (MiB) per `tenant/code`, and its measured
/// container start time. Written by the PoolSupervisor on every reconcile tick, pushed to the
/// other members' PoolLinks ([`crate::mesh`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    /// Idle containers by code type: their size classes, named by memory, MiB (the CPU share
    /// scales with it); of any code version: the warm-only lease on the member checks it.
    pub idle: HashMap<String, Vec<u32>>,
    /// Moving average of this node's container start time, ms.
    pub start_ms: f64,
    /// Moving average of how long a warm request waited on this node before it ran (the
    /// Router's lease: the pool's bookkeeping under its lock), ms: the `queue_wait` of the routing
    /// score.
    #[serde(default)]
    pub queue_ms: f64,
}

impl Inventory {
    /// Whether an idle container of `code` has at least `need_mib`.
    pub fn fits(&self, code: &str, need_mib: f64) -> bool {
        self.idle
            .get(code)
            .is_some_and(|classes| classes.iter().any(|&m| f64::from(m) >= need_mib))
    }
}

/// Another member's inventory as last received.
#[derive(Debug, Clone)]
pub struct RemoteView {
    /// Its id.
    pub id: NodeId,
    /// Its membership record.
    pub node: ClusterNode,
    /// What it holds.
    pub inventory: Inventory,
    /// When it arrived.
    pub fetched: Instant,
}

impl Cluster {
    /// inventory: a request is being forwarded to it, so requests that come before the next
    /// inventory do not all count on that one container. Its memory class, if there was one.
    pub fn reserve_remote(&self, id: NodeId, code: &str, need_mib: f64) -> Option<u32> {
        let mut remote = self.remote.write().unwrap_or_else(|e| e.into_inner());
        let classes = remote.get_mut(&id)?.inventory.idle.get_mut(code)?;
        let i = classes.iter().position(|&m| f64::from(m) >= need_mib)?;
        Some(classes.swap_remove(i))
    }

    /// A request forwarded to member `id` ran on a container of `class`, which is idle again:
    /// put it back into the member's view unless that already shows a container of `code`
    /// that large (an inventory pushed since then).
    pub fn unreserve_remote(&self, id: NodeId, code: &str, class: u32) {
        let mut remote = self.remote.write().unwrap_or_else(|e| e.into_inner());
        if let Some(view) = remote.get_mut(&id) {
            let classes = view.inventory.idle.entry(code.to_owned()).or_default();
            if !classes.iter().any(|&m| m >= class) {
                classes.push(class);
            }
        }
    }
}
