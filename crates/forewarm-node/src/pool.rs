//! The PoolSupervisor and the [`PoolBook`]: the effectful shell around the
//! [`PoolEngine`](crate::pool_engine), which makes every decision (one `AppPool` per code
//! type, leases, keep-alive, pre-warms, quotas and capacity) and answers with commands.
//!
//! The engine sits in the book behind one lock. A request's task leases and releases under
//! that lock, without a message (an actor round trip per lease and per release cost wake-ups
//! on the request path): leases are atomic, a container is handed to one request at a time and
//! never to another tenant (pools are per `tenant/code`). The book carries out the engine's
//! commands: a start is queued for the PoolSupervisor, which spawns a [`ContainerActor`] per
//! container (starts happen in the children, so a cold start never blocks the mailbox); a
//! removal stops the container's actor; an answer goes to the request waiting for a start. A
//! reconcile tick fires the pools' due events, removes containers whose keep-alive passed,
//! updates the gauges and publishes the warm inventory. On a slower schedule
//! (`reconcile_every_ms`), the book is compared with what the container engine lists by the
//! node's label ([`PoolEngine::reconcile`]): containers gone behind the node's back leave
//! the pool, leaked ones are removed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use forewarm_runtime::{ContainerRuntime, ContainerSpec};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::catalog::{Code, CodeKey};
use crate::container::{ContainerActor, ContainerArgs, ContainerMsg};
use crate::health::Part;
use crate::pool_engine::{Command, EngineConfig, Leased, PoolEngine, Reconciled};
use crate::pool_msg::Seen;
use crate::predictor::PredictorMsg;
use crate::room::Quota;
use crate::shared::NodeShared;

pub use crate::pool_engine::Lease;
pub use crate::pool_msg::{PendingPrewarm, PoolEntry, PoolError, PoolMsg, PoolTarget};

/// How often the reconcile loop runs.
pub const TICK: Duration = Duration::from_millis(100);

/// Where a lease that waits for a container's start is handed.
type Waiter = tokio::sync::oneshot::Sender<Result<Lease, PoolError>>;

/// What a lease asked of the book gives.
#[derive(Debug)]
pub enum LeaseStep {
    /// A container, now.
    Ready(Lease),
    /// A container later (one starting for it, or a place in its code type's queue): the
    /// ticket, to [`PoolBook::cancel`] the wait, and where the answer comes.
    Wait(
        u64,
        tokio::sync::oneshot::Receiver<Result<Lease, PoolError>>,
    ),
    /// None.
    Failed(PoolError),
}

/// A container start the engine asked for; the PoolSupervisor carries it out.
#[derive(Debug)]
struct StartOrder {
    serial: u64,
    spec: ContainerSpec,
}

crate::actors::runtime_actor!(PoolSupervisor);

/// Its arguments.
#[derive(Debug)]
pub struct PoolArgs<R> {
    /// What every actor shares.
    pub shared: Arc<NodeShared>,
    /// The engine.
    pub runtime: Arc<R>,
    /// Fits the demand forecasts the pools' policies ask for, off the request path.
    pub predictor: crate::supervisor::Slot<PredictorMsg>,
}

/// What the lock guards: the engine and what carrying out its commands needs.
#[derive(Debug)]
struct Book {
    engine: PoolEngine,
    /// Requests waiting for a container (its start, or in a queue), by ticket.
    waiters: HashMap<u64, Waiter>,
    /// Container actors by serial, once spawned.
    actors: HashMap<u64, ActorRef<ContainerMsg>>,
    by_actor: HashMap<ActorId, u64>,
    /// Starts for the PoolSupervisor.
    to_start: Vec<StartOrder>,
}

/// The pools and containers of a node, shared by the PoolSupervisor and the request tasks
/// (the Router's code): leases and releases are decided under its lock.
#[derive(Debug)]
pub struct PoolBook<R> {
    args: PoolArgs<R>,
    book: Mutex<Book>,
    /// The PoolSupervisor now (another after a restart).
    supervisor: RwLock<Option<ActorRef<PoolMsg>>>,
    /// A list of the node's containers is being asked for.
    listing: AtomicBool,
    /// Deleted tenants whose network is still to be removed (once no container is on it).
    orphans: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

impl<R: ContainerRuntime + 'static> PoolBook<R> {
    /// An empty book.
    pub fn new(args: PoolArgs<R>) -> Arc<Self> {
        let config = &args.shared.config;
        let engine = PoolEngine::new(EngineConfig {
            node_id: config.node_id.clone(),
            policy: config.policy,
            capacity: config.capacity,
            clock: args.shared.clock,
        });
        Arc::new(Self {
            args,
            book: Mutex::new(Book {
                engine,
                waiters: HashMap::new(),
                actors: HashMap::new(),
                by_actor: HashMap::new(),
                to_start: Vec::new(),
            }),
            supervisor: RwLock::new(None),
            listing: AtomicBool::new(false),
            orphans: Arc::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn supervisor(&self) -> Option<ActorRef<PoolMsg>> {
        self.supervisor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A PoolSupervisor starts on this book: `myself` is told to start what the book queues.
    /// When another ran on it before (a restart: the root supervisor started one again after
    /// it failed), that one's container actors went with it, so the book starts over
    /// ([`PoolEngine::restart`]) and the containers that were idle are removed now.
    fn attach(&self, myself: &ActorRef<PoolMsg>) {
        let before = self
            .supervisor
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(myself.clone());
        if before.is_none() {
            return;
        }
        // A listing asked for by the one before answers to it, never to us.
        self.listing.store(false, Ordering::Release);
        let idle = {
            let mut book = self.lock();
            book.to_start.clear();
            book.actors.clear();
            book.by_actor.clear();
            let (answers, idle) = book.engine.restart();
            self.carry_out(&mut book, answers);
            idle
        };
        tracing::warn!(
            "pool supervisor started again: its pools start over; removing {} idle containers",
            idle.len()
        );
        self.remove_off_the_book(idle, "after a pool supervisor restart");
    }

    /// Remove containers the book no longer names, off the actor (a failure is logged; the
    /// next reconcile finds the container again).
    fn remove_off_the_book(&self, ids: Vec<String>, when: &'static str) {
        for id in ids {
            let runtime = self.args.runtime.clone();
            tokio::spawn(async move {
                if let Err(e) = runtime.remove(&id).await {
                    tracing::warn!("removing {id} {when}: {e}");
                }
            });
        }
    }

    /// A tenant's quota, from the replicated state.
    fn quota(&self, tenant: &str) -> Option<Quota> {
        self.args.shared.catalog.tenant(tenant).map(|q| Quota {
            max_warm: q.max_warm,
            max_memory_mib: q.max_memory_mib,
        })
    }

    /// Run `f` on the book, then have the PoolSupervisor start what it queued.
    fn with<T>(&self, f: impl FnOnce(&mut Book) -> T) -> T {
        let (value, queued) = {
            let mut book = self.lock();
            let value = f(&mut book);
            (value, !book.to_start.is_empty())
        };
        let told = || {
            self.supervisor()
                .is_some_and(|s| s.cast(PoolMsg::StartQueued).is_ok())
        };
        if queued && !told() {
            // No PoolSupervisor to start them (the node is stopping): fail their waiters.
            let mut book = self.lock();
            let orders = std::mem::take(&mut book.to_start);
            for order in orders {
                let commands = book.engine.fail(order.serial, Instant::now());
                self.carry_out(&mut book, commands);
            }
        }
        value
    }

    /// Run one engine event under the lock and carry out its commands.
    fn update(
        &self,
        event: impl FnOnce(&mut PoolEngine, &dyn Fn(&str) -> Option<Quota>) -> Vec<Command>,
    ) {
        self.with(|book| {
            let commands = event(&mut book.engine, &|t| self.quota(t));
            self.carry_out(book, commands);
        });
    }

    /// Carry out the engine's commands, in order.
    fn carry_out(&self, book: &mut Book, commands: Vec<Command>) {
        let metrics = &self.args.shared.metrics;
        for command in commands {
            match command {
                Command::Start {
                    serial,
                    spec,
                    prewarmed,
                    ..
                } => {
                    if prewarmed {
                        metrics.prewarms.inc();
                    }
                    book.to_start.push(StartOrder { serial, spec });
                }
                Command::Remove { serial } => {
                    // Not spawned yet: the PoolSupervisor stops it when it finds it gone.
                    if let Some(actor) = book.actors.remove(&serial) {
                        book.by_actor.remove(&actor.get_id());
                        actor.stop(Some(String::from("removed from the pool")));
                    }
                    metrics.removals.inc();
                }
                Command::Fit { code, request } => {
                    if let Some(reply) = self.supervisor() {
                        let fit = PredictorMsg::FitDemand {
                            code,
                            request,
                            reply,
                        };
                        if self.args.predictor.cast(fit).is_err() {
                            tracing::debug!("no predictor to fit a demand forecast (stopping)");
                        }
                    }
                }
                Command::Answer { ticket, result } => {
                    let undelivered = match book.waiters.remove(&ticket) {
                        Some(waiter) => waiter.send(result).err(),
                        None => Some(result),
                    };
                    if let Some(Ok(lease)) = undelivered {
                        // The caller gave up: the container is not its any more.
                        let commands = book.engine.release(
                            lease.serial,
                            true,
                            &|t| self.quota(t),
                            Instant::now(),
                        );
                        self.carry_out(book, commands);
                    }
                }
            }
        }
    }

    /// Lease a container of `code` fitting `need_mib`; with `warm_only` (a request forwarded
    /// from another region) only an idle one: no start on the request path, no arrival
    /// recorded otherwise.
    pub fn lease(&self, code: &Arc<Code>, need_mib: f64, warm_only: bool) -> LeaseStep {
        let shared = &self.args.shared;
        let key: CodeKey = code.key();
        // First sight (no pool, asked by the engine, and no model of our own yet): what other
        // regions' forecasts say to hold warm.
        let first_sight = || {
            crate::predictor::model_of(&shared.models, &key)
                .is_none()
                .then(|| {
                    shared
                        .catalog
                        .first_sight_floor(&key, &shared.config.region)
                })
                .flatten()
        };
        self.with(|book| {
            let (leased, commands) = book.engine.lease(
                code,
                need_mib,
                warm_only,
                first_sight,
                &|t| self.quota(t),
                Instant::now(),
            );
            let step = match leased {
                Leased::Ready(lease) => LeaseStep::Ready(lease),
                Leased::Failed(e) => LeaseStep::Failed(e),
                Leased::Wait(ticket) => {
                    let (waiter, waiting) = tokio::sync::oneshot::channel();
                    book.waiters.insert(ticket, waiter);
                    LeaseStep::Wait(ticket, waiting)
                }
            };
            self.carry_out(book, commands);
            step
        })
    }

    /// The request holding `ticket` gives up waiting. `Some(why it waited)` if it was still
    /// queued (it never reached a container); `None` if a container was starting for it or
    /// already handed to it (that container is released: see [`Command::Answer`]).
    pub fn cancel(&self, ticket: u64) -> Option<PoolError> {
        self.with(|book| {
            book.waiters.remove(&ticket);
            let (why, commands) = book.engine.cancel(ticket, Instant::now());
            self.carry_out(book, commands);
            why
        })
    }

    /// The request on lease `serial` is done; `ok = false` if the container failed.
    pub fn release(&self, serial: u64, ok: bool) {
        self.update(|engine, quota| engine.release(serial, ok, quota, Instant::now()));
    }

    /// The request on lease `serial` is done and used `peak_mib` at its peak (what the code
    /// type's size classes learn from).
    pub fn release_used(&self, serial: u64, peak_mib: f64) {
        self.update(|engine, quota| {
            engine.used(serial, peak_mib);
            engine.release(serial, true, quota, Instant::now())
        });
    }

    /// Ask the container engine, off the actor, for every container of this node; the
    /// answer comes back as [`PoolMsg::Listed`]. At most one such request at a time.
    fn list_containers(&self, myself: &ActorRef<PoolMsg>) {
        if self.listing.swap(true, Ordering::AcqRel) {
            return;
        }
        let runtime = self.args.runtime.clone();
        let node = self.args.shared.config.node_id.clone();
        let myself = myself.clone();
        tokio::spawn(async move {
            let at = Instant::now();
            let listed = runtime
                .list(&node)
                .await
                .map(|all| {
                    all.into_iter()
                        .map(|c| Seen {
                            id: c.id,
                            running: c.running,
                        })
                        .collect()
                })
                .map_err(|e| e.to_string());
            let _ = myself.cast(PoolMsg::Listed { at, listed });
        });
    }

    /// Compare the book with what the engine listed at `at`; remove the leaks it finds.
    fn reconcile(&self, listed: Result<Vec<Seen>, String>, at: Instant) {
        self.listing.store(false, Ordering::Release);
        let listed_n = listed.as_ref().map_or(0, Vec::len);
        let _span = tracing::info_span!("reconcile", listed = listed_n).entered();
        let health = &self.args.shared.health;
        let listed = match listed {
            Ok(listed) => {
                health.ok(Part::Engine);
                listed
            }
            Err(e) => {
                tracing::warn!("reconcile: listing this node's containers: {e}");
                health.failed(Part::Engine, e);
                return;
            }
        };
        let (gone, unowned) = {
            let mut book = self.lock();
            self.forget_deleted(&mut book);
            let Reconciled {
                gone,
                commands,
                unowned,
            } = book.engine.reconcile(&listed, at);
            self.carry_out(&mut book, commands);
            (gone, unowned)
        };
        if !gone.is_empty() {
            tracing::warn!(
                "reconcile: {} idle containers gone from the container engine left the pool",
                gone.len()
            );
        }
        for id in &unowned {
            tracing::warn!(
                "reconcile: removing container {id}, labelled with this node but in no pool"
            );
        }
        self.remove_off_the_book(unowned, "at a reconcile");
    }

    /// Drop the pools of code types that are gone from the replicated state (their tenant was
    /// deleted), and remove those tenants' networks once no container is on them (a removal
    /// that finds one is tried again at the next reconcile).
    fn forget_deleted(&self, book: &mut Book) {
        let catalog = &self.args.shared.catalog;
        let deleted: Vec<CodeKey> = book
            .engine
            .code_keys()
            .filter(|key| catalog.code(key).is_none())
            .cloned()
            .collect();
        let mut orphans = self.orphans.lock().unwrap_or_else(|e| e.into_inner());
        for key in deleted {
            tracing::info!("{key}: its tenant was deleted; its pool goes");
            let commands = book.engine.forget(&key, Instant::now());
            self.carry_out(book, commands);
            if let Some((tenant, _)) = key.split_once('/') {
                orphans.insert(tenant.to_owned());
            }
        }
        orphans.retain(|tenant| catalog.tenant(tenant).is_none());
        for tenant in orphans.iter() {
            let tenant = tenant.clone();
            let (runtime, orphans) = (self.args.runtime.clone(), self.orphans.clone());
            tokio::spawn(async move {
                match runtime.forget_tenant(&tenant).await {
                    Ok(()) => {
                        orphans
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&tenant);
                    }
                    Err(e) => tracing::debug!(tenant, "deleted tenant's network kept: {e}"),
                }
            });
        }
    }

    /// Reconcile, then update the gauges and publish what this node holds warm, for the
    /// Router and the other regions.
    fn tick(&self) {
        self.update(|engine, quota| engine.tick(quota, Instant::now()));
        let shared = &self.args.shared;
        let book = self.lock();
        let (outgrown, late) = book.engine.misses();
        shared
            .metrics
            .pool_now(book.engine.counts(), outgrown, late);
        let held = book.engine.holding();
        shared.metrics.idle_held(&held.idle, Instant::now());
        let inventory = forewarm_cluster::Inventory {
            idle: held.idle,
            start_ms: book.engine.start_time().as_secs_f64() * 1e3,
            queue_ms: shared.cluster.queue_ms(),
            busy: held.busy,
            starting: held.starting,
            prewarmed: held.prewarmed,
        };
        drop(book);
        *shared
            .cluster
            .local
            .write()
            .unwrap_or_else(|e| e.into_inner()) = inventory;
    }
}

impl<R: ContainerRuntime + 'static> PoolSupervisor<R> {
    /// Spawn a container actor for every start queued in the book.
    async fn start_queued(myself: &ActorRef<PoolMsg>, pool: &PoolBook<R>) {
        let orders = std::mem::take(&mut pool.lock().to_start);
        for order in orders {
            let serial = order.serial;
            let args = ContainerArgs {
                runtime: pool.args.runtime.clone(),
                spec: order.spec,
                serial,
                supervisor: myself.clone(),
            };
            let spawned = Actor::spawn_linked(
                None,
                ContainerActor::<R>::default(),
                args,
                myself.get_cell(),
            )
            .await;
            match spawned {
                Ok((actor, _)) => {
                    let mut book = pool.lock();
                    if book.engine.holds(serial) {
                        book.by_actor.insert(actor.get_id(), serial);
                        book.actors.insert(serial, actor);
                    } else {
                        // Removed from the pool while its actor was being spawned.
                        actor.stop(Some(String::from("removed from the pool")));
                    }
                }
                Err(e) => pool.update(|engine, _| {
                    engine.started(serial, Err(e.to_string()), Duration::ZERO, Instant::now())
                }),
            }
        }
    }
}

impl<R: ContainerRuntime + 'static> Actor for PoolSupervisor<R> {
    type Msg = PoolMsg;
    type State = Arc<PoolBook<R>>;
    type Arguments = Arc<PoolBook<R>>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        book: Arc<PoolBook<R>>,
    ) -> Result<Self::State, ActorProcessingErr> {
        book.attach(&myself);
        myself.send_interval(TICK, || PoolMsg::Tick);
        let every = Duration::from_millis(book.args.shared.config.reconcile_every_ms);
        myself.send_interval(every, || PoolMsg::Reconcile);
        Ok(book)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        pool: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::StartQueued => {}
            PoolMsg::Started {
                serial,
                result,
                took,
            } => pool.update(|engine, _| engine.started(serial, result, took, Instant::now())),
            PoolMsg::Tick => pool.tick(),
            PoolMsg::Reconcile => pool.list_containers(&myself),
            PoolMsg::Listed { at, listed } => pool.reconcile(listed, at),
            PoolMsg::Fitted {
                code,
                asked_at,
                forecast,
            } => pool.update(|engine, quota| {
                engine.fitted(&code, asked_at, &forecast, quota, Instant::now())
            }),
            PoolMsg::Retire(code) => pool.update(|engine, _| engine.retire(&code, Instant::now())),
            PoolMsg::List(reply) => {
                let _ = reply.send(pool.lock().engine.list(Instant::now()));
            }
            PoolMsg::Target(key, reply) => {
                let _ = reply.send(pool.lock().engine.target(&key, Instant::now()));
            }
        }
        // Whatever the message, start what the book has queued (a release's pre-warms, a
        // tick's, a lease's cold start).
        Self::start_queued(&myself, pool).await;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        pool: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // A container actor that died on its own (a panic) takes its container out of the pool;
        // the ones the supervisor stopped are already gone from `by_actor`.
        let who = match &event {
            SupervisionEvent::ActorTerminated(who, _, _)
            | SupervisionEvent::ActorFailed(who, _) => who.get_id(),
            _ => return Ok(()),
        };
        let exited = {
            let mut book = pool.lock();
            let serial = book.by_actor.remove(&who);
            if let Some(serial) = serial {
                book.actors.remove(&serial);
            }
            serial
        };
        if let Some(serial) = exited {
            tracing::warn!("container actor {serial} exited: {event}");
            pool.update(|engine, _| engine.fail(serial, Instant::now()));
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        pool: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        {
            let mut book = pool.lock();
            book.to_start.clear();
            let commands = book.engine.stop();
            pool.carry_out(&mut book, commands);
            book.waiters.clear();
        }
        // Every child removes its container in its own post_stop.
        myself
            .stop_children_and_wait(
                Some(String::from("node stopping")),
                Some(Duration::from_secs(30)),
            )
            .await;
        Ok(())
    }
}
