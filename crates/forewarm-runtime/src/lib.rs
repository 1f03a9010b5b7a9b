//! Container runtime: what forewarm asks of a container engine, a Docker implementation
//! ([`DockerRuntime`], through bollard) and an in-memory fake ([`FakeRuntime`]) for fast tests.
//! One conformance suite ([`conformance`]) runs against both, so the fake cannot drift.
//!
//! Every container carries the labels `forewarm.node`, `forewarm.tenant`, `forewarm.code` and
//! `forewarm.class`; [`reap_unowned`] uses them so that a node that crashed leaks nothing. The
//! runtime owns containers and networks only: it does not decide when to start or stop one.

pub mod conformance;
mod docker;
mod fake;
mod faults;
pub mod host_guard;
mod runner_client;
mod subnets;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;

pub use docker::{DockerRuntime, WORKLOAD_SECCOMP, WORKLOAD_USER};
pub use fake::FakeRuntime;
pub use faults::{Faults, FaultyRuntime};
pub use forewarm_protocol::{Usage, Workload, WorkloadOverrides};
pub use runner_client::{RunnerClient, RunnerError};
pub use subnets::{TENANT_PREFIX, TenantSubnets};

/// Label keys set on every container.
pub const LABEL_NODE: &str = "forewarm.node";
/// See [`LABEL_NODE`].
pub const LABEL_TENANT: &str = "forewarm.tenant";
/// See [`LABEL_NODE`].
pub const LABEL_CODE: &str = "forewarm.code";
/// See [`LABEL_NODE`].
pub const LABEL_CLASS: &str = "forewarm.class";

/// The allocation a container is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SizeClass {
    /// Memory limit, MiB.
    pub memory_mib: u32,
    /// CPU limit, millicores.
    pub cpu_millis: u32,
}

impl SizeClass {
    /// The label form, e.g. `250m-128Mi`.
    pub fn name(&self) -> String {
        format!("{}m-{}Mi", self.cpu_millis, self.memory_mib)
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// The node that owns the container.
    pub node: String,
    /// The tenant it belongs to (containers are never shared across tenants).
    pub tenant: String,
    /// The code type it serves.
    pub code: String,
    /// Its allocation.
    pub class: SizeClass,
    /// Image speaking the runner protocol.
    pub image: String,
    /// The code type's workload (passed to the runner as `FOREWARM_*`).
    pub workload: Workload,
}

/// A started, initialised container.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// Engine id.
    pub id: String,
    /// What it runs.
    pub spec: ContainerSpec,
    /// Where its runner listens.
    pub endpoint: SocketAddr,
}

/// A container as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Engine id.
    pub id: String,
    /// Its labels.
    pub node: String,
    /// See [`LABEL_TENANT`].
    pub tenant: String,
    /// See [`LABEL_CODE`].
    pub code: String,
    /// See [`LABEL_CLASS`].
    pub class: String,
    /// The network it is attached to.
    pub network: String,
    /// Whether it is running.
    pub running: bool,
}

/// What went wrong, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine is not reachable (retryable).
    #[error("container engine unavailable: {0}")]
    Unavailable(String),
    /// The engine refused or failed the request (an error answer: a bad request, or an
    /// engine that errs on a create or start now and may not on the next).
    #[error("container engine refused {action}: {message}")]
    Engine {
        /// What was asked.
        action: &'static str,
        /// What it said.
        message: String,
    },
    /// The image does not exist locally (no registry is reachable).
    #[error("image {0} is not present: build it (make images)")]
    ImageMissing(String),
    /// No such container.
    #[error("container {0} not found")]
    NotFound(String),
    /// The runner did not become ready in time; the container was removed.
    #[error("container {id} not ready after {waited_ms} ms")]
    NotReady {
        /// The container.
        id: String,
        /// How long it was given.
        waited_ms: u64,
    },
    /// The invocation failed in the container (e.g. killed over its memory limit), or its
    /// runner could not be reached (see [`RunnerError::not_run`]).
    #[error("invocation in {id}: {error}")]
    Invoke {
        /// The container.
        id: String,
        /// What happened.
        #[source]
        error: RunnerError,
    },
}

impl RuntimeError {
    /// Whether the same request may succeed if made again: the engine did not answer, or
    /// answered an error (a transient one passes). A missing image, a runner that never got
    /// ready (it had its whole readiness wait), a missing container or a failed invocation
    /// would only fail again, or must not run twice.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RuntimeError::Unavailable(_) | RuntimeError::Engine { .. }
        )
    }
}

/// A container engine.
pub trait ContainerRuntime: Send + Sync + std::fmt::Debug {
    /// Create and start a container for `spec`, and wait until its runner is ready.
    fn start(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<Container, RuntimeError>> + Send;

    /// Run one invocation on `container`.
    fn invoke(
        &self,
        container: &Container,
        overrides: &WorkloadOverrides,
    ) -> impl Future<Output = Result<Usage, RuntimeError>> + Send;

    /// Stop and remove a container; removing one that is gone is not an error.
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;

    /// Every container labelled with `node`, running or not.
    fn list(&self, node: &str) -> impl Future<Output = Result<Vec<Listed>, RuntimeError>> + Send;

    /// Release what a tenant holds beyond its containers (its network), once it has none.
    fn forget_tenant(&self, tenant: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send;
}

/// Remove every container of `node` that is not in `owned`; returns the removed ids.
///
/// Run at node start (owned is empty then), so a crashed node leaks nothing.
pub async fn reap_unowned<R: ContainerRuntime>(
    runtime: &R,
    node: &str,
    owned: &HashSet<String>,
) -> Result<Vec<String>, RuntimeError> {
    let mut removed = Vec::new();
    for c in runtime.list(node).await? {
        if !owned.contains(&c.id) {
            runtime.remove(&c.id).await?;
            removed.push(c.id);
        }
    }
    Ok(removed)
}

/// The environment a runner gets for `workload`.
pub fn runner_env(workload: &Workload) -> Vec<String> {
    vec![
        format!("FOREWARM_CPU_MS={}", workload.cpu_ms),
        format!("FOREWARM_MEM_MIB={}", workload.mem_mib),
        format!("FOREWARM_IO_KIB={}", workload.io_kib),
        format!("FOREWARM_INIT_MS={}", workload.init_ms),
        format!("FOREWARM_SLEEP_MS={}", workload.sleep_ms),
        format!("FOREWARM_MEM_KIB_PER_ITEM={}", workload.mem_kib_per_item),
        format!("FOREWARM_CPU_US_PER_ITEM={}", workload.cpu_us_per_item),
    ]
}

/// The network of a tenant: one per tenant, so tenants never share one.
pub fn tenant_network(tenant: &str) -> String {
    format!("forewarm-tenant-{tenant}")
}
