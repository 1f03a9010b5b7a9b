//! What the Router is told and answers: one request to run, one forwarded from another
//! region, what it did, and why it did not run. Shared by the gateway, the Router and the
//! node transport (which carries forwarded invocations between regions).

use std::sync::Arc;
use std::time::Instant;

use forewarm_runtime::WorkloadOverrides;
use forewarm_store::Start;
use ractor::RpcReplyPort;
use serde::Serialize;

use crate::catalog::Code;
use crate::pool_msg::PoolError;

/// One request to run.
#[derive(Debug)]
pub struct Invocation {
    /// The code type (its latest version).
    pub code: Arc<Code>,
    /// Per-request workload overrides.
    pub overrides: WorkloadOverrides,
    /// Request body size (a profile feature).
    pub payload_bytes: u64,
    /// The body's values of the code type's declared features, in their order.
    pub features: Vec<f64>,
    /// When the gateway received it.
    pub received: Instant,
    /// When it was given an in-flight slot (the gateway sets it; `received` until then).
    pub admitted: Instant,
    /// Forwarded from another region, with what was decided there; never routed again.
    pub forwarded: Option<ForwardedFrom>,
    /// The client's `Idempotency-Key`, if it gave one: a forward carries it, so the member
    /// runs it at most once too and a retry sent to the member is answered from this run.
    pub key: Option<String>,
    /// The `invocation` span (its id, tenant and code type): whatever is logged about it,
    /// wherever it runs in the node, carries them.
    pub span: tracing::Span,
}

/// What the home region decided of an invocation it forwarded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardedFrom {
    /// The memory need predicted at home, MiB.
    pub need_mib: f64,
    /// A container may be started for it (the tenant may not use the home region, so it
    /// cannot fall back there); otherwise it runs only on an idle container that fits, and
    /// the home region runs it itself when none does.
    pub start: bool,
}

/// An invocation as forwarded to another region's node (its RouterLink, [`crate::router_link`]).
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Forwarded {
    /// Tenant.
    pub tenant: String,
    /// Code type name.
    pub code: String,
    /// Overrides.
    pub overrides: WorkloadOverrides,
    /// Payload size at home.
    pub payload_bytes: u64,
    /// The body's declared feature values at home (absent from a node before features).
    #[serde(default)]
    pub features: Vec<f64>,
    /// The memory need predicted at home, MiB.
    pub need_mib: f64,
    /// The client's `Idempotency-Key` (absent from a node before keys crossed regions).
    #[serde(default)]
    pub key: Option<String>,
    /// A container may be started for it ([`ForwardedFrom::start`]; absent from a node
    /// before allowed regions were enforced at home: warm only).
    #[serde(default)]
    pub start: bool,
}

/// What an invocation did.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Invoked {
    /// `cold`, `warm` or `prewarmed`.
    #[schema(value_type = String)]
    pub start: Start,
    /// Region that ran it.
    pub region: String,
    /// Engine id of the container.
    pub container: String,
    /// Latency at the node, ms.
    pub latency_ms: f64,
    /// Measured usage.
    pub usage: UsageView,
    /// What the node predicted of it (absent from a node before predictions were answered).
    #[serde(default)]
    pub predicted: Predicted,
    /// Where the time went at this node (answered as a `Server-Timing` header, not in the
    /// body; a forwarded invocation's are the member's and stay there).
    #[serde(skip)]
    #[schema(ignore)]
    pub stages: Stages,
}

/// Where one invocation's time went at the node that ran it, ms: the stages add up to its
/// `latency_ms` (less building the answer).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stages {
    /// Arrival to an in-flight slot: reading the request, waiting for a slot.
    pub admit_ms: f64,
    /// Slot to asking the pool: the Router's mailbox, the profile prediction, the routing
    /// decision (and a forward declined by another region).
    pub route_ms: f64,
    /// Asking the pool to holding a container: at once when one is idle, else a start or
    /// a wait in the code type's queue.
    pub lease_ms: f64,
    /// Holding the container to its runner's answer.
    pub run_ms: f64,
    /// Of `run_ms`, the workload's own time as its runner measured it (the rest is the
    /// way to the container and back).
    pub work_ms: f64,
}

impl Stages {
    /// The W3C `Server-Timing` header value: `admit;dur=0.012, route;dur=…, lease;dur=…,
    /// run;dur=…, work;dur=…` (ms, three decimals; `work` is part of `run`).
    pub fn server_timing(&self) -> String {
        format!(
            "admit;dur={:.3}, route;dur={:.3}, lease;dur={:.3}, run;dur={:.3}, work;dur={:.3}",
            self.admit_ms, self.route_ms, self.lease_ms, self.run_ms, self.work_ms
        )
    }
}

/// What the node predicted of one execution before running it.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Predicted {
    /// Peak memory the profile predicted for this request, MiB (none before a profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_mib: Option<f64>,
    /// Memory its container was chosen for, MiB: the predicted need with headroom (within
    /// the code type's limit).
    pub need_mib: f64,
}

/// Usage as the API shows it.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UsageView {
    /// CPU time, ms.
    pub cpu_ms: f64,
    /// Peak memory, MiB.
    pub peak_mib: f64,
    /// Written, KiB.
    pub io_kib: u64,
}

/// Why an invocation did not run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// No container could be had (quota, capacity, start failure).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The invocation failed in its container.
    #[error("invocation failed: {0}")]
    Failed(String),
    /// The code type's `timeout_ms` passed before the answer (the container it ran in, if
    /// any, is removed).
    #[error("no answer within the code type's timeout_ms ({} ms)", .0.as_millis())]
    Timeout(std::time::Duration),
    /// An actor is gone (node stopping) or timed out.
    #[error("{0}")]
    Internal(String),
    /// The tenant may not run in this node's region and no member of the cluster is in a
    /// region it may use (nothing ran).
    #[error(
        "the tenant may not run in region {region}, and no member of the cluster is in its regions {allowed:?}"
    )]
    RegionNotAllowed {
        /// This node's region.
        region: String,
        /// The tenant's regions.
        allowed: Vec<String>,
    },
    /// Sent to a member of a region the tenant may use, which declined it (nothing ran); it
    /// may not run here.
    #[error("no region the tenant may use could take it: {0}")]
    NoAllowedRegion(String),
}

impl InvokeError {
    /// The HTTP status and error code the API answers it with. 429 and 503 say it never
    /// reached a container; 502 and 504 that it may have run.
    pub fn http(&self) -> (u16, &'static str) {
        match self {
            InvokeError::Pool(PoolError::TenantQuota { .. }) => (429, "quota"),
            InvokeError::Pool(PoolError::Capacity(_)) => (503, "capacity"),
            InvokeError::Pool(PoolError::StartFailed(_)) => (503, "start_failed"),
            InvokeError::Pool(PoolError::NoWarmFit) => (409, "no_warm_fit"),
            InvokeError::Pool(PoolError::Stopping) => (503, "unavailable"),
            InvokeError::Timeout(_) => (504, "timeout"),
            InvokeError::Failed(_) => (502, "invocation_failed"),
            InvokeError::Internal(_) => (502, "internal"),
            InvokeError::RegionNotAllowed { .. } => (403, "region_not_allowed"),
            InvokeError::NoAllowedRegion(_) => (503, "no_allowed_region"),
        }
    }

    /// Whether the invocation may have run (in part) before this error: it reached a
    /// container (`Failed`, `Timeout`) or nobody knows (`Internal`). Such a request is never
    /// run again by the node: at most once.
    pub fn may_have_run(&self) -> bool {
        !matches!(
            self,
            InvokeError::Pool(_)
                | InvokeError::RegionNotAllowed { .. }
                | InvokeError::NoAllowedRegion(_)
        )
    }
}

/// Why a forwarded invocation has no answer, as the member that was asked says it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, thiserror::Error)]
#[error("{reason}")]
pub struct RemoteError {
    /// What happened.
    pub reason: String,
    /// It may have run there (it reached a container): the home region must not run it again.
    pub may_have_run: bool,
}

/// What the Router is told.
#[derive(Debug, ractor_cluster::RactorMessage)]
pub enum RouterMsg {
    /// Run one invocation and answer.
    Invoke(Invocation, RpcReplyPort<Result<Invoked, InvokeError>>),
}
