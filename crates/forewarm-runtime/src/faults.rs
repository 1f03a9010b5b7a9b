//! A [`ContainerRuntime`] that injects faults into another: failed and slow starts, failed,
//! slow and hung invocations, changeable while a node runs on it (tests and chaos runs set
//! them through the shared [`Faults`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::{
    Container, ContainerRuntime, ContainerSpec, Listed, RunnerError, RuntimeError, Usage,
    WorkloadOverrides,
};

/// What to inject. Counters are "the next N"; delays apply to every call while set.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next N starts fail (the engine refuses the create).
    pub fail_starts: AtomicU32,
    /// Every start waits this long first, ms.
    pub start_delay_ms: AtomicU64,
    /// The next N invocations run, then fail (the runner answers 500): they ran.
    pub fail_invokes: AtomicU32,
    /// The next N invocations never answer (until their caller gives up).
    pub hang_invokes: AtomicU32,
    /// Every invocation waits this long before it runs, ms.
    pub invoke_delay_ms: AtomicU64,
    /// Invocations that reached the wrapped runtime (ran), for checkers.
    pub ran: AtomicU64,
    /// While set, the engine does not answer: every start and listing fails.
    pub engine_down: AtomicBool,
}

/// The error of an engine that does not answer.
fn engine_down(action: &'static str) -> RuntimeError {
    RuntimeError::Engine {
        action,
        message: String::from("injected fault: the engine does not answer"),
    }
}

/// Take one of the next N: whether this call is one of them.
fn take(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
        .is_ok()
}

async fn delay(ms: &AtomicU64) {
    let ms = ms.load(Ordering::Acquire);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// `inner` with [`Faults`] injected.
#[derive(Debug)]
pub struct FaultyRuntime<R> {
    inner: R,
    /// The faults, shared with whoever sets them.
    pub faults: Arc<Faults>,
}

impl<R> FaultyRuntime<R> {
    /// `inner`, no fault set yet.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }
}

impl<R: ContainerRuntime> ContainerRuntime for FaultyRuntime<R> {
    async fn start(&self, spec: &ContainerSpec) -> Result<Container, RuntimeError> {
        delay(&self.faults.start_delay_ms).await;
        if self.faults.engine_down.load(Ordering::Acquire) {
            return Err(engine_down("create container"));
        }
        if take(&self.faults.fail_starts) {
            return Err(RuntimeError::Engine {
                action: "create container",
                message: String::from("injected fault"),
            });
        }
        self.inner.start(spec).await
    }

    async fn invoke(
        &self,
        container: &Container,
        overrides: &WorkloadOverrides,
    ) -> Result<Usage, RuntimeError> {
        delay(&self.faults.invoke_delay_ms).await;
        if take(&self.faults.hang_invokes) {
            std::future::pending::<()>().await;
        }
        let usage = self.inner.invoke(container, overrides).await;
        self.faults.ran.fetch_add(1, Ordering::AcqRel);
        if usage.is_ok() && take(&self.faults.fail_invokes) {
            return Err(RuntimeError::Invoke {
                id: container.id.clone(),
                error: RunnerError::Failed {
                    status: 500,
                    body: String::from("injected fault"),
                },
            });
        }
        usage
    }

    fn remove(&self, id: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        self.inner.remove(id)
    }

    async fn list(&self, node: &str) -> Result<Vec<Listed>, RuntimeError> {
        if self.faults.engine_down.load(Ordering::Acquire) {
            return Err(engine_down("list containers"));
        }
        self.inner.list(node).await
    }

    fn forget_tenant(&self, tenant: &str) -> impl Future<Output = Result<(), RuntimeError>> + Send {
        self.inner.forget_tenant(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeRuntime;

    #[tokio::test]
    async fn t01_faults_apply_to_the_next_n_calls_only() {
        let rt = FaultyRuntime::new(FakeRuntime::new());
        let spec = crate::conformance::spec("n1", "t", "c", "img");
        rt.faults.fail_starts.store(1, Ordering::Release);
        assert!(rt.start(&spec).await.is_err(), "the first start fails");
        let c = rt.start(&spec).await.expect("the second starts");
        rt.faults.fail_invokes.store(1, Ordering::Release);
        let failed = rt.invoke(&c, &WorkloadOverrides::default()).await;
        assert!(
            matches!(
                failed,
                Err(RuntimeError::Invoke {
                    error: RunnerError::Failed { status: 500, .. },
                    ..
                })
            ),
            "{failed:?}"
        );
        assert!(rt.invoke(&c, &WorkloadOverrides::default()).await.is_ok());
        assert_eq!(rt.faults.ran.load(Ordering::Acquire), 2, "both ran");
        rt.faults.hang_invokes.store(1, Ordering::Release);
        let hung = tokio::time::timeout(
            Duration::from_millis(200),
            rt.invoke(&c, &WorkloadOverrides::default()),
        )
        .await;
        assert!(hung.is_err(), "the hung invocation never answers");
        assert_eq!(rt.faults.ran.load(Ordering::Acquire), 2);
    }
}
