//! An in-memory [`ContainerRuntime`] for fast tests of everything above the runtime.
//!
//! It keeps the same contract as Docker: init time before ready (on the tokio clock, so
//! `start_paused` tests run instantly), usage that reflects the workload, a container killed
//! when an invocation needs more memory than its class, labels, listing and idempotent removal.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{
    Container, ContainerRuntime, ContainerSpec, Listed, RuntimeError, Usage, WorkloadOverrides,
    tenant_network,
};

#[derive(Debug)]
struct FakeContainer {
    spec: ContainerSpec,
    running: bool,
}

/// In-memory runtime.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    next: AtomicU64,
    containers: Mutex<BTreeMap<String, FakeContainer>>,
}

impl FakeRuntime {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, FakeContainer>) -> T,
    ) -> Result<T, RuntimeError> {
        let mut guard = self
            .containers
            .lock()
            .map_err(|_| RuntimeError::Unavailable("fake runtime poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl ContainerRuntime for FakeRuntime {
    async fn start(&self, spec: &ContainerSpec) -> Result<Container, RuntimeError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("fake-{n:08}");
        self.with(|c| {
            c.insert(
                id.clone(),
                FakeContainer {
                    spec: spec.clone(),
                    running: true,
                },
            )
        })?;
        tokio::time::sleep(Duration::from_millis(spec.workload.init_ms)).await;
        Ok(Container {
            id,
            spec: spec.clone(),
            endpoint: SocketAddr::from((Ipv4Addr::LOCALHOST, 10_000 + (n % 50_000) as u16)),
        })
    }

    async fn invoke(
        &self,
        container: &Container,
        overrides: &WorkloadOverrides,
    ) -> Result<Usage, RuntimeError> {
        let w = container.spec.workload.with(overrides);
        let killed = w.mem_mib > u64::from(container.spec.class.memory_mib);
        let alive = self.with(|c| match c.get_mut(&container.id) {
            Some(fc) if fc.running => {
                if killed {
                    fc.running = false;
                }
                Ok(())
            }
            _ => Err(RuntimeError::NotFound(container.id.clone())),
        })?;
        alive?;
        if killed {
            // As on Docker: the kernel kills the container mid-invocation, and the
            // connection to its runner breaks without an answer.
            return Err(RuntimeError::Invoke {
                id: container.id.clone(),
                error: crate::RunnerError::Http(forewarm_http::HttpError::NoAnswer {
                    endpoint: container.endpoint.to_string(),
                    reason: format!(
                        "killed: {} MiB touched over the {} MiB limit",
                        w.mem_mib, container.spec.class.memory_mib
                    ),
                }),
            });
        }
        let duration = Duration::from_millis(w.cpu_ms + w.sleep_ms);
        tokio::time::sleep(duration).await;
        Ok(Usage {
            cpu_ms: w.cpu_ms as f64,
            peak_mib: (w.mem_mib + 2) as f64,
            io_kib: w.io_kib,
            duration_ms: duration.as_secs_f64() * 1000.0,
        })
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.with(|c| {
            c.remove(id);
        })
    }

    async fn forget_tenant(&self, _tenant: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn list(&self, node: &str) -> Result<Vec<Listed>, RuntimeError> {
        self.with(|c| {
            c.iter()
                .filter(|(_, fc)| fc.spec.node == node)
                .map(|(id, fc)| Listed {
                    id: id.clone(),
                    node: fc.spec.node.clone(),
                    tenant: fc.spec.tenant.clone(),
                    code: fc.spec.code.clone(),
                    class: fc.spec.class.name(),
                    network: tenant_network(&fc.spec.tenant),
                    running: fc.running,
                })
                .collect()
        })
    }
}
