//! One actor per container: it starts the container (create, start, wait for `/ready`),
//! reports to the PoolSupervisor, and removes it when stopped. A container therefore lives
//! exactly as long as its actor.
//!
//! It does not read the engine's counters of its container: every execution's CPU, peak
//! memory and I/O come from the runner, which measures that execution alone, while Docker's
//! stats give the container's memory *now* (the peak between two readings is cgroup v1's only)
//! and CPU since it started. Read every 10 s and stored, they were never used; each cost an
//! engine call per container (issue 17).

use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_runtime::{Container, ContainerRuntime, ContainerSpec};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::pool_msg::PoolMsg;

/// How long after a failed start the one retry comes.
const START_RETRY_AFTER: Duration = Duration::from_millis(100);

/// What a container actor is told: nothing (it is stopped, and then removes its container).
#[derive(Debug, ractor_cluster::RactorMessage)]
pub enum ContainerMsg {}

crate::actors::runtime_actor!(ContainerActor);

/// Its arguments.
#[derive(Debug)]
pub struct ContainerArgs<R> {
    /// The engine.
    pub runtime: Arc<R>,
    /// What to run.
    pub spec: ContainerSpec,
    /// The supervisor's number for this container.
    pub serial: u64,
    /// Told when the container is ready or failed to start.
    pub supervisor: ActorRef<PoolMsg>,
}

/// Its state.
#[derive(Debug)]
pub struct ContainerState<R> {
    args: ContainerArgs<R>,
    container: Option<Container>,
}

impl<R: ContainerRuntime + 'static> Actor for ContainerActor<R> {
    type Msg = ContainerMsg;
    type State = ContainerState<R>;
    type Arguments = ContainerArgs<R>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ContainerArgs<R>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ContainerState {
            args,
            container: None,
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Started here, not in pre_start: spawning must not block the supervisor.
        let began = Instant::now();
        let runtime = &state.args.runtime;
        let mut result = runtime.start(&state.args.spec).await;
        // An engine that errs on one create or start (or did not answer) may not on the next:
        // one more try, so a transient engine error does not reach the waiting request (chaos
        // S7).
        if let Err(e) = &result
            && e.is_retryable()
        {
            tracing::warn!("container {}: {e}; trying once more", state.args.serial);
            tokio::time::sleep(START_RETRY_AFTER).await;
            result = runtime.start(&state.args.spec).await;
        }
        let took = began.elapsed();
        let serial = state.args.serial;
        match result {
            Ok(container) => {
                state.container = Some(container.clone());
                let _ = state.args.supervisor.cast(PoolMsg::Started {
                    serial,
                    result: Ok(container),
                    took,
                });
            }
            Err(e) => {
                // The supervisor stops this actor when it takes the container out of the
                // pool. Stopping here could reach it first (a supervision event overtakes a
                // message), and the request waiting for the start would hear "removed while
                // starting" instead of the engine's error (chaos S7).
                let _ = state.args.supervisor.cast(PoolMsg::Started {
                    serial,
                    result: Err(e.to_string()),
                    took,
                });
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {}
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(c) = state.container.take()
            && let Err(e) = state.args.runtime.remove(&c.id).await
        {
            // Left for the next start's reap (it carries this node's label).
            tracing::error!("removing container {}: {e}", c.id);
        }
        Ok(())
    }
}
