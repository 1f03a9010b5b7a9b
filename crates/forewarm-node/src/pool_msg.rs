//! What the PoolSupervisor is told, what it answers, and why a lease fails: the types the
//! container actors, the API and the Router share with the pool, kept apart from the pool's
//! logic so that those files depend on these few types and not on one another.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_runtime::Container;
use ractor::RpcReplyPort;
use serde::Serialize;

use crate::catalog::{Code, CodeKey};

/// Why no container could be leased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The tenant holds its quota in busy containers.
    #[error("tenant {tenant} is at its quota ({what})")]
    TenantQuota {
        /// The tenant.
        tenant: String,
        /// Which limit.
        what: String,
    },
    /// The node holds its capacity in busy containers.
    #[error("node at capacity ({0})")]
    Capacity(String),
    /// The container failed to start.
    #[error("container failed to start: {0}")]
    StartFailed(String),
    /// The node is shutting down.
    #[error("node shutting down")]
    Stopping,
    /// A warm-only lease found no idle container that fits.
    #[error("no idle container that fits")]
    NoWarmFit,
}

/// A container as the container engine lists it, for [`crate::pool_engine::PoolEngine::reconcile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Engine id.
    pub id: String,
    /// Whether it runs.
    pub running: bool,
}

/// What the PoolSupervisor is told.
#[derive(Debug, ractor_cluster::RactorMessage)]
pub enum PoolMsg {
    /// Start the containers a lease or a release queued in the book.
    StartQueued,
    /// A container actor started its container (or could not).
    Started {
        /// The container.
        serial: u64,
        /// The container, or why not.
        result: Result<Container, String>,
        /// How long the start took.
        took: Duration,
    },
    /// Reconcile: fire due events, remove expired containers.
    Tick,
    /// Compare the book with what the container engine lists (on a schedule).
    Reconcile,
    /// What the container engine listed, asked for at `at` (or why it could not).
    Listed {
        /// When the list was asked for.
        at: Instant,
        /// Every container labelled with this node.
        listed: Result<Vec<Seen>, String>,
    },
    /// The Predictor fitted the demand forecast `code`'s policy asked for at `asked_at`
    /// (policy time): invocations in flight per coming minute.
    Fitted {
        /// `tenant/code`.
        code: CodeKey,
        /// The policy tick that asked.
        asked_at: u64,
        /// Peak containers per minute, from the minute that asked.
        forecast: Vec<f64>,
    },
    /// `code` was updated: retire idle containers of older versions.
    Retire(Arc<Code>),
    /// The containers, for `/v1/pool`.
    List(RpcReplyPort<Vec<PoolEntry>>),
    /// The pool of one code type, for `/prediction`.
    Target(CodeKey, RpcReplyPort<Option<PoolTarget>>),
}

/// A container as `/v1/pool` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolEntry {
    /// Engine id (empty while starting).
    pub id: String,
    /// `starting`, `idle` or `busy`.
    pub state: &'static str,
    /// Size class name.
    pub class: String,
    /// Memory limit, MiB.
    pub memory_mib: u32,
    /// Owner.
    pub tenant: String,
    /// Code type.
    pub code: String,
    /// Spawned by a prediction.
    pub prewarmed: bool,
    /// Idle for this long, ms (0 unless idle).
    pub idle_ms: u64,
}

/// The pool of one code type, for `/prediction`.
#[derive(Debug, Clone, Serialize)]
pub struct PoolTarget {
    /// Pool policy.
    pub policy: String,
    /// Containers busy, idle, starting.
    pub busy: usize,
    /// See `busy`.
    pub idle: usize,
    /// See `busy`.
    pub starting: usize,
    /// Pending pre-warm: containers wanted, real ms from now.
    pub prewarm: Option<PendingPrewarm>,
    /// Memory of the next container, MiB.
    pub next_container_mib: u32,
    /// Measured start time used as the pre-warm lead, ms.
    pub start_lead_ms: u64,
    /// The policy's reasoning.
    pub why: String,
}

/// A pre-warm the policy has scheduled.
#[derive(Debug, Clone, Serialize)]
pub struct PendingPrewarm {
    /// Containers that must exist then.
    pub containers: u32,
    /// When, real ms from now (0 = due).
    pub in_ms: u64,
    /// Until when they are kept if unused, real ms from now.
    pub until_ms: u64,
}
