//! The Collector: every execution sample goes into the embedded store, in batches (one fsync per batch, at most `FLUSH_EVERY` late), and retention runs
//! here too. On stop it flushes what it holds.
//!
//! Execution samples arrive through a [`SampleInbox`] (a locked vector the request path
//! pushes to) rather than one message each: at thousands of invocations per second a message
//! per sample costs a task wake-up per sample, a push costs a lock.

use std::sync::Arc;
use std::time::Duration;

use forewarm_store::{Sample, SampleStore};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::actors::off_worker;
use crate::clock::unix_ms;
use crate::health::Part;
use crate::shared::NodeShared;

/// Buffered samples are written at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How often a failing store is probed with a write when there are no samples to write.
const PROBE_EVERY: Duration = Duration::from_millis(500);
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Where the request path leaves execution samples for the Collector.
#[derive(Debug, Default)]
pub struct SampleInbox {
    samples: std::sync::Mutex<Vec<Sample>>,
}

impl SampleInbox {
    /// Hand one sample to the Collector (written within `FLUSH_EVERY`).
    pub fn push(&self, sample: Sample) {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sample);
    }

    fn take(&self) -> Vec<Sample> {
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What the Collector is told.
#[derive(Debug, ractor_cluster::RactorMessage)]
pub enum CollectorMsg {
    /// Write what is buffered now.
    Flush,
    /// Write what is buffered, then answer (tests and shutdown use it).
    Sync(ractor::RpcReplyPort<()>),
    /// Drop what is past retention.
    Retention,
}

/// The actor.
#[derive(Debug)]
pub struct Collector;

/// Its state.
#[derive(Debug)]
pub struct CollectorState {
    store: Arc<SampleStore>,
    shared: Arc<NodeShared>,
    inbox: Arc<SampleInbox>,
    /// When the store was last probed while failing.
    probed: Option<std::time::Instant>,
}

impl CollectorState {
    async fn flush(&mut self) {
        let samples = self.inbox.take();
        if samples.is_empty() {
            // With nothing to write while the store is failing, a probe record: the node is
            // ready again once the store takes writes (a disk with space again), traffic or
            // not.
            let due = self.probed.is_none_or(|at| at.elapsed() >= PROBE_EVERY);
            if !(due && self.shared.health.failing(Part::Store)) {
                return;
            }
            self.probed = Some(std::time::Instant::now());
        }
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || {
            if samples.is_empty() {
                store.put_record("health", "probe", &unix_ms())
            } else {
                store.append(&samples)
            }
        })
        .await;
        // A write that fails makes the node not ready (`/readyz`) until one succeeds.
        match written {
            Ok(Ok(())) => self.shared.health.ok(Part::Store),
            Ok(Err(e)) => {
                tracing::error!("collector: samples not stored: {e}");
                self.shared.health.failed(Part::Store, e);
            }
            Err(e) => tracing::error!("collector: samples not stored: task failed: {e}"),
        }
    }
}

impl Actor for Collector {
    type Msg = CollectorMsg;
    type State = CollectorState;
    type Arguments = (Arc<SampleStore>, Arc<SampleInbox>, Arc<NodeShared>);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (store, inbox, shared): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(FLUSH_EVERY, || CollectorMsg::Flush);
        myself.send_interval(RETENTION_EVERY, || CollectorMsg::Retention);
        Ok(CollectorState {
            store,
            shared,
            inbox,
            probed: None,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CollectorMsg::Flush => state.flush().await,
            CollectorMsg::Sync(reply) => {
                state.flush().await;
                let _ = reply.send(());
            }
            CollectorMsg::Retention => {
                state.flush().await;
                let store = state.store.clone();
                let now = unix_ms();
                let dropped =
                    off_worker("retention failed", move || store.enforce_retention(now)).await;
                if let Some((raw, rollups)) = dropped
                    && raw + rollups > 0
                {
                    tracing::info!("retention dropped {raw} raw records, {rollups} rollups");
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.flush().await;
        Ok(())
    }
}
