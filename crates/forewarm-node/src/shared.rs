//! What every actor and handler of a node shares.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::clock::PolicyClock;
use crate::config::NodeConfig;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::predictor::ModelTable;
use forewarm_cluster::Cluster;
use forewarm_cluster::MeshSlot;

/// What every actor and handler of a node shares (read-mostly).
#[derive(Debug)]
pub struct NodeShared {
    /// The configuration it started with.
    pub config: NodeConfig,
    /// Policy time.
    pub clock: PolicyClock,
    /// Tenants and code types (the applied replicated state).
    pub catalog: Arc<Catalog>,
    /// This node's part in the cluster (replicated state, membership, RTTs).
    pub cluster: Arc<Cluster>,
    /// The Predictor's models.
    pub models: ModelTable,
    /// Counters.
    pub metrics: Metrics,
    /// Store faults, for `/readyz`.
    pub health: Health,
    /// The actors' transport to the other members, once started (never on a node without
    /// a cluster secret).
    pub mesh: MeshSlot,
    /// SHA-256 of the admin token.
    pub admin_token_sha256: String,
    /// SHA-256 of the viewer token, if one is configured.
    pub viewer_token_sha256: Option<String>,
}
