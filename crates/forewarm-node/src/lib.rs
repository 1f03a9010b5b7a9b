//! One forewarm node: four actors over a container runtime, behind an HTTP API.
//!
//! ```text
//!   HTTP gateway (axum, api.rs) ── tenants authenticate with bearer tokens
//!        │  RouterMsg::Invoke
//!        ▼
//!   Router ──reads── ModelTable ◄──writes── Predictor ◄── Train (after a miss, every 30 s)
//!        │  lease / release under the PoolBook's lock │ reads
//!        ▼                                           │
//!   PoolSupervisor ──spawn_linked──► ContainerActor (one per container: start, stats, remove)
//!        │  one AppPool per code type (forewarm-policy)    │ stats
//!        ▼                                                 ▼
//!   (reconcile tick: pre-warm, expire)            Collector ──► SampleStore (redb)
//! ```
//!
//! Supervision: the Collector, Predictor, PoolSupervisor and Router are started by
//! [`Node::start`] and stopped by [`Node::shutdown`] in reverse order (Router first, Collector
//! last, so every sample is flushed). All four are linked to a root supervisor
//! ([`supervisor::Root`]) that starts one again when it fails, behind the
//! [`supervisor::Slot`] its callers hold (at most five times a minute; `/readyz` says not
//! ready meanwhile). Container actors are linked children of the PoolSupervisor: a container
//! actor that dies takes its container out of the pool, stopping the supervisor stops (and so
//! removes) every container, and a PoolSupervisor started again after a failure starts its
//! pools over without leaving a container behind. A node that was killed
//! leaves containers labelled with its id; the next start removes them before serving.

mod actors;
pub mod admission;
pub mod api;
pub mod catalog;
pub mod client;
pub mod clock;
pub mod collector;
pub mod config;
pub mod container;
pub mod health;
pub mod idempotency;
pub mod invocation;
pub mod metrics;
pub mod pool;
pub mod pool_engine;
pub mod pool_msg;
pub mod predictor;
pub mod recent;
pub mod room;
pub mod router;
pub mod router_link;
pub use forewarm_policy::routing;
pub mod shared;
pub mod supervisor;
pub mod topology;
pub mod ui;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use forewarm_runtime::{ContainerRuntime, RuntimeError, reap_unowned};
use forewarm_store::{SampleStore, StoreError};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{Capacity, ClusterConfig, ConfigError, NodeConfig, Secret, TlsFiles};
pub use forewarm_cluster::tls;
pub use shared::NodeShared;

use crate::catalog::{Catalog, hash_token};
use crate::clock::PolicyClock;
use crate::collector::{Collector, CollectorMsg, SampleInbox};
use crate::metrics::Metrics;
use crate::pool::{PoolArgs, PoolBook, PoolMsg, PoolSupervisor};
use crate::predictor::{Predictor, PredictorArgs, PredictorMsg};
use crate::router::{Router, RouterArgs, RouterMsg};
use crate::supervisor::{RootMsg, Slot, supervised};
use forewarm_cluster::{Cluster, ClusterError, mesh};

/// How long a new node tries to join (or a lone one to elect itself) before giving up.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// It.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The container engine refused the start-up clean-up.
    #[error("reaping containers left by an earlier run: {0}")]
    Reap(#[from] RuntimeError),
    /// An actor did not start.
    #[error("starting the {0} actor: {1}")]
    Actor(&'static str, String),
    /// The replicated state could not be opened, or the cluster not joined.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// The listen address is unusable.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// It.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    addr: SocketAddr,
    admin_token: Secret,
    reaped: usize,
    shared: Arc<NodeShared>,
    /// Restarts the Collector, the Predictor, the PoolSupervisor and the Router when they fail.
    root: ActorRef<RootMsg>,
    router: Slot<RouterMsg>,
    pool: Slot<PoolMsg>,
    predictor: Slot<PredictorMsg>,
    collector: Slot<CollectorMsg>,
    stop_server: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    /// The cluster listener, when the internal endpoints have one: its address, what stops
    /// it, and its task.
    cluster_server: Option<(SocketAddr, oneshot::Sender<()>, JoinHandle<()>)>,
    /// Removes every container labelled with this node's id: the last step of a shutdown
    /// (built at start, run at the end).
    sweep: Sweep,
}

/// Removing every container labelled with a node's id (over its runtime, whatever its
/// type), not run until awaited: how many it removed.
struct Sweep(std::pin::Pin<Box<dyn Future<Output = Result<usize, RuntimeError>> + Send>>);

impl Sweep {
    /// Remove every container labelled `node_id`; with a catalog, then also every tenant's
    /// network that no container uses any more (another node's containers keep theirs), so a
    /// stopped node leaves the engine as it found it.
    fn new<R: ContainerRuntime + 'static>(
        runtime: Arc<R>,
        node_id: String,
        networks_of: Option<Arc<Catalog>>,
    ) -> Self {
        Self(Box::pin(async move {
            let removed = reap_unowned(&*runtime, &node_id, &HashSet::new()).await?;
            for tenant in networks_of.map(|c| c.tenant_ids()).unwrap_or_default() {
                if let Err(e) = runtime.forget_tenant(&tenant).await {
                    tracing::debug!(tenant, "tenant network kept: {e}");
                }
            }
            Ok(removed.len())
        }))
    }
}

impl std::fmt::Debug for Sweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sweep")
    }
}

impl Node {
    /// Start a node on `runtime`: open the store, remove containers an earlier run of this
    /// node id left, start the actors, then serve the API. The admin token is the
    /// configured one or a fresh random one ([`Node::admin_token`]).
    pub async fn start<R: ContainerRuntime + 'static>(
        config: NodeConfig,
        runtime: Arc<R>,
    ) -> Result<Self, NodeError> {
        config.validate().map_err(NodeError::Config)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let store = Arc::new(SampleStore::open(
            &config.data_dir.join("forewarm.redb"),
            config.retention(),
        )?);
        let api_tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                Some(forewarm_cluster::tls::api_server(cert, key).map_err(NodeError::Config)?)
            }
            _ => None,
        };
        let listen = config.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| NodeError::Listen {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| NodeError::Listen {
            addr: listen,
            source,
        })?;
        let cluster_listener = match config.cluster.listen {
            Some(at) => {
                let l = tokio::net::TcpListener::bind(at)
                    .await
                    .map_err(|source| NodeError::Listen { addr: at, source })?;
                let bound = l
                    .local_addr()
                    .map_err(|source| NodeError::Listen { addr: at, source })?;
                Some((l, bound))
            }
            None => None,
        };
        let advertise = config.cluster.advertise.clone().unwrap_or_else(|| {
            cluster_listener
                .as_ref()
                .map_or(addr, |(_, bound)| *bound)
                .to_string()
        });
        let me = forewarm_raft::ClusterNode {
            addr: advertise,
            region: config.region.clone(),
            name: config.node_id.clone(),
        };
        if config.cluster.tls.is_none() && !config.cluster.join.is_empty() {
            tracing::warn!(
                "cluster traffic to and from the members is plain HTTP, authorised by the shared \
                 secret alone: give the node cluster.listen and [cluster.tls] (forewarm cluster \
                 ca / cert) to run it over mutual TLS"
            );
        }
        let raft_store = config.data_dir.join("raft.redb");
        let cluster = Cluster::start(&config.cluster, &raft_store, me).await?;
        let catalog = Arc::new(Catalog::new(cluster.state().clone()));
        let reaped = Sweep::new(runtime.clone(), config.node_id.clone(), None)
            .0
            .await?;
        if reaped > 0 {
            tracing::info!("removed {reaped} containers left by an earlier run");
        }
        let sweep = Sweep::new(
            runtime.clone(),
            config.node_id.clone(),
            Some(catalog.clone()),
        );
        let admin_token = config
            .admin_token
            .clone()
            .unwrap_or_else(|| Secret::from(format!("fwa_{}", catalog::new_token())));
        let shared = Arc::new(NodeShared {
            clock: PolicyClock::new(config.time_scale),
            admin_token_sha256: hash_token(&admin_token),
            viewer_token_sha256: config.viewer_token.as_deref().map(hash_token),
            catalog: catalog.clone(),
            cluster: cluster.clone(),
            models: Arc::new(RwLock::new(HashMap::new())),
            metrics: Metrics::default(),
            health: Default::default(),
            mesh: Default::default(),
            config,
        });
        let actor_err = |name| move |e: ractor::SpawnErr| NodeError::Actor(name, e.to_string());
        let inbox = Arc::new(SampleInbox::default());
        // Invocation ids outlive a crash (an invocation cut off by it is not run again).
        let ids = idempotency::Ids::durable(store.clone())?;
        let restarts = shared.metrics.actor_restarts.clone();
        let (root, _) = Actor::spawn(None, supervisor::Root, restarts)
            .await
            .map_err(actor_err("root supervisor"))?;
        let collector = supervised(
            &root,
            "collector",
            || Collector,
            (store.clone(), inbox.clone(), shared.clone()),
        )
        .await
        .map_err(actor_err("collector"))?;
        let predictor = supervised(
            &root,
            "predictor",
            || Predictor,
            PredictorArgs {
                store,
                catalog,
                models: shared.models.clone(),
                cluster: cluster.clone(),
                collector: collector.clone(),
            },
        )
        .await
        .map_err(actor_err("predictor"))?;
        let book = PoolBook::new(PoolArgs {
            shared: shared.clone(),
            runtime: runtime.clone(),
            predictor: predictor.clone(),
        });
        let pool = supervised(
            &root,
            "pool supervisor",
            PoolSupervisor::<R>::default,
            book.clone(),
        )
        .await
        .map_err(actor_err("pool supervisor"))?;
        let router = supervised(
            &root,
            "router",
            Router::<R>::default,
            RouterArgs {
                shared: shared.clone(),
                runtime,
                pool: book,
                inbox,
                predictor: predictor.clone(),
            },
        )
        .await
        .map_err(actor_err("router"))?;
        let slots = admission::Slots::new(shared.config.max_inflight);
        let app = api::routes(api::Api {
            shared: shared.clone(),
            router: router.clone(),
            pool: pool.clone(),
            predictor: predictor.clone(),
            collector: collector.clone(),
            slots: slots.clone(),
            ids: ids.clone(),
        });
        let internal = forewarm_cluster::routes(cluster.clone())
            .merge(mesh::routes(cluster.clone(), shared.mesh.clone()));
        // The internal endpoints on their own listener (over mutual TLS when configured), or
        // beside the API.
        let (app, cluster_server) = match cluster_listener {
            Some((listener, bound)) => {
                let (stop, stopped) = oneshot::channel::<()>();
                let tls = cluster.tls.as_ref().map(|t| t.acceptor());
                let task = tokio::spawn(forewarm_cluster::serve(
                    listener,
                    tls,
                    internal,
                    async move {
                        let _ = stopped.await;
                    },
                    Duration::from_secs(5),
                ));
                (app, Some((bound, stop, task)))
            }
            None => (app.merge(internal), None),
        };
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = match api_tls {
            // HTTPS: requests in flight at a stop finish within the same 30 s as below.
            Some(acceptor) => tokio::spawn(forewarm_cluster::serve(
                listener,
                Some(acceptor),
                app,
                async move {
                    let _ = stopped.await;
                },
                Duration::from_secs(30),
            )),
            None => tokio::spawn(async move {
                // Answers go out as soon as they are written (no Nagle wait behind an
                // unacked one).
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stopped.await;
                });
                if let Err(e) = serve.await {
                    tracing::error!("HTTP server: {e}");
                }
            }),
        };
        let node = Self {
            addr,
            admin_token,
            reaped,
            shared,
            root,
            router,
            pool,
            predictor,
            collector,
            stop_server: Some(stop_server),
            cluster_server,
            sweep,
            server,
        };
        // Serving first: the leader replicates to a joining node before admitting it.
        let join = node.shared.config.cluster.join.clone();
        if let Err(e) = cluster.bootstrap_or_join(&join, JOIN_DEADLINE).await {
            node.shutdown().await;
            return Err(e.into());
        }
        let source = node.shared.config.cluster.source_addr;
        match mesh::start(&cluster, &node.shared.mesh, source).await {
            Ok(Some(mesh)) => {
                let config = &node.shared.config;
                let args = router_link::RouterLinkArgs {
                    region: config.region.clone(),
                    node_id: config.node_id.clone(),
                    catalog: node.shared.catalog.clone(),
                    router: node.router.clone(),
                    slots,
                    ids,
                };
                match Actor::spawn(None, router_link::RouterLink, args).await {
                    Ok((link, _)) => mesh.own(link.get_cell()),
                    Err(e) => {
                        node.shutdown().await;
                        return Err(NodeError::Actor("router link", e.to_string()));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                node.shutdown().await;
                return Err(e.into());
            }
        }
        cluster.spawn_quorum_watch();
        cluster.spawn_store_watch();
        Ok(node)
    }

    /// Where the API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the internal endpoints listen when they have a listener of their own
    /// (`cluster.listen`).
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.cluster_server.as_ref().map(|(addr, _, _)| *addr)
    }

    /// The admin token (configured, or generated at start).
    pub fn admin_token(&self) -> &str {
        self.admin_token.expose()
    }

    /// Containers of an earlier run removed at start.
    pub fn reaped(&self) -> usize {
        self.reaped
    }

    /// Node-wide state (metrics, models, the catalog of tenants and code types).
    pub fn shared(&self) -> &Arc<NodeShared> {
        &self.shared
    }

    /// Write every buffered sample to the store now.
    pub async fn sync_samples(&self) {
        let _ = self
            .collector
            .call(CollectorMsg::Sync, Some(Duration::from_secs(30)))
            .await;
    }

    /// Retrain every code type now.
    pub async fn train_all(&self) {
        let _ = self.predictor.cast(PredictorMsg::TrainAll);
    }

    /// Stop serving, then stop the actors in order: requests in flight finish, every
    /// container is removed, every sample is written.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.server).await;
        // From here an actor that stops is not started again.
        supervisor::stopping(&self.root).await;
        let wait = Some(Duration::from_secs(60));
        let _ = self.router.get().stop_and_wait(None, wait).await;
        let _ = self.pool.get().stop_and_wait(None, wait).await;
        // A container whose start was in flight when the pool stopped (its actor still
        // waiting on the engine) is not the pool's to remove: remove whatever carries this
        // node's label, so a stop leaks nothing even under a slow engine.
        match (&mut self.sweep.0).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} containers still starting at stop"),
            Err(e) => tracing::warn!("removing this node's containers at stop: {e}"),
        }
        let _ = self.predictor.get().stop_and_wait(None, wait).await;
        if let Ok(CallResult::Success(())) = self
            .collector
            .call(CollectorMsg::Sync, Some(Duration::from_secs(30)))
            .await
        {
            tracing::debug!("samples flushed");
        }
        let _ = self.collector.get().stop_and_wait(None, wait).await;
        let _ = self.root.stop_and_wait(None, wait).await;
        if let Some(mesh) = self.shared.mesh.get() {
            mesh.stop().await;
        }
        // Raft answered the other members until now; the listener goes before Raft stops.
        if let Some((_, stop, task)) = self.cluster_server.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.shared.cluster.shutdown().await;
    }
}
