//! One actor per container: it starts the container (create, start, wait for `/ready`),
//! reports to the PoolSupervisor, samples its resource use into the Collector, and removes it
//! when stopped. A container therefore lives exactly as long as its actor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_runtime::{Container, ContainerRuntime, ContainerSpec};
use forewarm_store::ContainerStat;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::clock::unix_ms;
use crate::collector::CollectorMsg;
use crate::pool_msg::PoolMsg;

/// How often a running container's resource use is sampled.
pub const STATS_EVERY: Duration = Duration::from_secs(10);

/// How long after a failed start the one retry comes.
const START_RETRY_AFTER: Duration = Duration::from_millis(100);

/// What a container actor is told.
#[derive(Debug, ractor_cluster::RactorMessage)]
pub enum ContainerMsg {
    /// Read the container's resource counters once.
    Sample,
}

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
    /// Told its resource readings.
    pub collector: ActorRef<CollectorMsg>,
    /// `tenant/code` it serves (the store key).
    pub code: String,
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
        myself: ActorRef<Self::Msg>,
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
                myself.send_interval(STATS_EVERY, || ContainerMsg::Sample);
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
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let ContainerMsg::Sample = msg;
        if let Some(c) = &state.container {
            match state.args.runtime.stats(c).await {
                Ok(s) => {
                    let _ = state.args.collector.cast(CollectorMsg::Stat(ContainerStat {
                        at_ms: unix_ms(),
                        code: state.args.code.clone(),
                        container: c.id.clone(),
                        cpu_ns: s.cpu_ns,
                        memory_bytes: s.memory_bytes,
                        io_bytes: s.io_bytes,
                    }));
                }
                Err(e) => tracing::warn!("stats of {}: {e}", c.id),
            }
        }
        Ok(())
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
