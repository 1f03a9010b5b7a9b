//! The PoolSupervisor: one [`AppPool`] per code type (the same pool logic the simulator
//! runs), turned into real containers, one [`ContainerActor`] each.
//!
//! The pools and containers are kept in a [`PoolBook`] behind one lock. A request's task
//! leases and releases under that lock, without a message (an actor round trip per lease and
//! per release cost wake-ups on the request path): leases are atomic, a container is handed
//! to one request at a time and never to another tenant (pools are per `tenant/code`). What a
//! decision wants started is queued in the book and the PoolSupervisor starts it; container
//! starts happen in the child actors, so a cold start never blocks the mailbox. A reconcile
//! tick fires the pools' due events (pre-warms ahead of the forecast, by the measured start
//! time) and removes containers whose keep-alive passed. Node capacity
//! and tenant quotas bound every start: a request that needs room evicts idle containers
//! (oldest first, the tenant's own for a tenant quota), a pre-warm never does.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use forewarm_policy::{
    AppContext, AppPolicy, AppPool, ContainerId, Millis, Placement, PoolObserver,
};
use forewarm_runtime::{Container, ContainerRuntime, ContainerSpec, SizeClass};
use forewarm_store::Start;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::collector::CollectorMsg;
use crate::container::{ContainerActor, ContainerArgs, ContainerMsg};
pub use crate::pool_msg::{PendingPrewarm, PoolEntry, PoolError, PoolMsg, PoolTarget};
use crate::registry::{Code, CodeKey};
use crate::room::{self, Held, Quota, Short};
use crate::shared::NodeShared;

/// How often the reconcile loop runs.
pub const TICK: Duration = Duration::from_millis(100);
/// Start-time estimate before any container started.
const INITIAL_START: Duration = Duration::from_millis(800);

/// A container handed to one request.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The supervisor's number for the container.
    pub serial: u64,
    /// The container.
    pub container: Container,
    /// How the request starts on it.
    pub start: Start,
}

#[derive(Debug)]
enum Effect {
    Prewarm(ContainerId),
    Removed(ContainerId),
}

/// Collects what a pool call did to containers, in order.
#[derive(Debug, Default)]
struct Effects(Vec<Effect>);

impl PoolObserver for Effects {
    fn idle(&mut self, _mib: u32, _from: Millis, _to: Millis) {}
    fn prewarmed(&mut self, id: ContainerId, _at: Millis) {
        self.0.push(Effect::Prewarm(id));
    }
    fn removed(&mut self, id: ContainerId) {
        self.0.push(Effect::Removed(id));
    }
}

struct CodePool {
    code: Arc<Code>,
    pool: AppPool<Box<dyn AppPolicy>>,
    born: Millis,
    slots: HashMap<ContainerId, u64>,
}

impl std::fmt::Debug for CodePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodePool")
            .field("code", &self.code.key())
            .field("slots", &self.slots)
            .finish()
    }
}

/// Where a lease that waits for a container's start is handed.
type Waiter = tokio::sync::oneshot::Sender<Result<Lease, PoolError>>;

/// What a lease asked of the book gives.
#[derive(Debug)]
pub enum LeaseStep {
    /// A container, now.
    Ready(Lease),
    /// A container once it has started (a cold start, or a pre-warm still starting).
    Wait(tokio::sync::oneshot::Receiver<Result<Lease, PoolError>>),
    /// None.
    Failed(PoolError),
}

/// A container start a decision asked for; the PoolSupervisor carries it out.
#[derive(Debug)]
struct StartOrder {
    serial: u64,
    spec: ContainerSpec,
    code: String,
}

#[derive(Debug)]
enum RealState {
    Starting(Option<Waiter>),
    Idle(Container),
    Busy(Container),
}

#[derive(Debug)]
struct Real {
    code: CodeKey,
    slot: ContainerId,
    tenant: String,
    version: u64,
    class: SizeClass,
    /// Its actor, once the PoolSupervisor spawned it.
    actor: Option<ActorRef<ContainerMsg>>,
    state: RealState,
    prewarmed: bool,
    since: Instant,
}

crate::actors::runtime_actor!(PoolSupervisor);

/// Its arguments.
#[derive(Debug)]
pub struct PoolArgs<R> {
    /// What every actor shares.
    pub shared: Arc<NodeShared>,
    /// The engine.
    pub runtime: Arc<R>,
    /// Where container readings go.
    pub collector: ActorRef<CollectorMsg>,
}

/// What the book holds.
#[derive(Debug)]
pub struct PoolState<R> {
    args: PoolArgs<R>,
    pools: HashMap<CodeKey, CodePool>,
    reals: HashMap<u64, Real>,
    by_actor: HashMap<ActorId, u64>,
    next_serial: u64,
    start_ewma: Duration,
    to_start: Vec<StartOrder>,
    /// The PoolSupervisor stopped: no lease any more.
    stopping: bool,
}

/// The pools and containers of a node, shared by the PoolSupervisor and the request tasks
/// (the Router's code): leases and releases are decided under its lock.
#[derive(Debug)]
pub struct PoolBook<R> {
    state: Mutex<PoolState<R>>,
    supervisor: OnceLock<ActorRef<PoolMsg>>,
}

impl<R: ContainerRuntime + 'static> PoolBook<R> {
    /// An empty book.
    pub fn new(args: PoolArgs<R>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(PoolState {
                args,
                pools: HashMap::new(),
                reals: HashMap::new(),
                by_actor: HashMap::new(),
                next_serial: 0,
                start_ewma: INITIAL_START,
                to_start: Vec::new(),
                stopping: false,
            }),
            supervisor: OnceLock::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PoolState<R>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the book, then have the PoolSupervisor start what it queued.
    fn with<T>(&self, f: impl FnOnce(&mut PoolState<R>) -> T) -> T {
        let (value, queued) = {
            let mut state = self.lock();
            let value = f(&mut state);
            (value, !state.to_start.is_empty())
        };
        let told = || {
            self.supervisor
                .get()
                .is_some_and(|s| s.cast(PoolMsg::StartQueued).is_ok())
        };
        if queued && !told() {
            // No PoolSupervisor to start them (the node is stopping): fail their waiters.
            let mut state = self.lock();
            let orders = std::mem::take(&mut state.to_start);
            for order in orders {
                state.drop_real(order.serial);
            }
        }
        value
    }

    /// Lease a container of `code` fitting `need_mib`; with `warm_only` (a request forwarded
    /// from another region) only an idle one: no start on the request path, no arrival
    /// recorded otherwise.
    pub fn lease(&self, code: &Arc<Code>, need_mib: f64, warm_only: bool) -> LeaseStep {
        self.with(|s| s.lease(code, need_mib, warm_only))
    }

    /// The request on lease `serial` is done; `ok = false` if the container failed.
    pub fn release(&self, serial: u64, ok: bool) {
        self.with(|s| s.release(serial, ok));
    }
}

/// CPU of a class: 250 millicores per 128 MiB (128 MiB → 250m, 2 GiB → 4000m), within the
/// code type's limit.
fn class_for(mib: u32, code: &Code) -> SizeClass {
    let memory_mib = mib.min(code.max_memory_mib).max(1);
    let cpu = (u64::from(memory_mib) * 250 / 128).clamp(250, 4000) as u32;
    SizeClass {
        memory_mib,
        cpu_millis: cpu.min(code.max_cpu_millis),
    }
}

impl<R: ContainerRuntime + 'static> PoolState<R> {
    fn now(&self) -> Millis {
        self.args.shared.clock.now()
    }

    fn lead(&self) -> Millis {
        // Pre-warm ahead of the policy's time by the measured start time, with margin.
        self.args
            .shared
            .clock
            .scale_real(self.start_ewma.mul_f64(1.5))
    }

    fn pool_time(&self, key: &str) -> Millis {
        let born = self.pools.get(key).map_or(0, |p| p.born);
        self.now().saturating_sub(born)
    }

    fn pool_for(&mut self, key: &CodeKey, code: &Arc<Code>) -> &mut CodePool {
        let now = self.now();
        let spec = self.args.shared.config.policy;
        self.pools.entry(key.clone()).or_insert_with(|| {
            let declared = f64::from(code.max_memory_mib);
            let policy = spec
                .build(AppContext {
                    declared_mib: declared,
                    past_costs_mib: &[],
                })
                .unwrap_or_else(|| Box::new(forewarm_policy::FixedKeepAlive::new(600_000)));
            CodePool {
                code: code.clone(),
                pool: AppPool::new(policy, declared, true),
                born: now,
                slots: HashMap::new(),
            }
        })
    }

    /// Whether a container of `mib` for `tenant` fits; with `evict`, remove idle containers
    /// (oldest first) so it does ([`crate::room::plan`] decides).
    fn make_room(&mut self, tenant: &str, mib: u32, evict: bool) -> Result<(), PoolError> {
        let shared = self.args.shared.clone();
        let quota = shared.registry.tenant(tenant).map(|q| Quota {
            max_warm: q.max_warm,
            max_memory_mib: q.max_memory_mib,
        });
        let held: Vec<Held<'_, u64, Instant>> = self
            .reals
            .iter()
            .map(|(serial, r)| Held {
                id: *serial,
                tenant: &r.tenant,
                memory_mib: r.class.memory_mib,
                idle_since: matches!(r.state, RealState::Idle(_)).then_some(r.since),
            })
            .collect();
        let planned = room::plan(&held, tenant, mib, quota, shared.config.capacity, evict);
        match planned {
            Ok(victims) => {
                for serial in victims {
                    self.discard(serial);
                }
                Ok(())
            }
            Err(Short::Tenant { what }) => Err(PoolError::TenantQuota {
                tenant: tenant.to_owned(),
                what,
            }),
            Err(Short::Node { what }) => Err(PoolError::Capacity(what)),
        }
    }

    /// Take `slot` out of `key`'s pool without asking the policy (its container failed, found
    /// no room, or makes room), and remove its container if it has one.
    fn discard_slot(&mut self, key: &CodeKey, slot: ContainerId) {
        let t = self.pool_time(key);
        let mut fx = Effects::default();
        if let Some(cp) = self.pools.get_mut(key) {
            cp.pool.discard(t, slot, &mut fx);
        }
        // A discard only removes: `apply` has no pre-warm to hand back.
        self.apply(key, fx);
    }

    /// Take container `serial` out of its pool (it failed, or makes room), and remove it.
    fn discard(&mut self, serial: u64) {
        let Some(real) = self.reals.get(&serial) else {
            return;
        };
        let key = real.code.clone();
        let slot = real.slot;
        self.discard_slot(&key, slot);
        // Not in the pool any more (e.g. already released by it): remove it anyway.
        if self.reals.contains_key(&serial) {
            self.drop_real(serial);
            if let Some(cp) = self.pools.get_mut(&key) {
                cp.slots.remove(&slot);
            }
        }
    }

    fn drop_real(&mut self, serial: u64) {
        if let Some(real) = self.reals.remove(&serial) {
            if let RealState::Starting(Some(reply)) = real.state {
                let _ = reply.send(Err(PoolError::StartFailed(String::from(
                    "container removed while starting",
                ))));
            }
            // Not spawned yet: the PoolSupervisor stops it when it finds the entry gone.
            if let Some(actor) = real.actor {
                self.by_actor.remove(&actor.get_id());
                actor.stop(Some(String::from("removed from the pool")));
            }
            self.args
                .shared
                .metrics
                .removals
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Enter a container of `class` for `slot` (starting; `waiter` gets it when it is ready)
    /// and queue its start for the PoolSupervisor.
    fn spawn(
        &mut self,
        code: &Arc<Code>,
        slot: ContainerId,
        class: SizeClass,
        waiter: Option<Waiter>,
    ) {
        let serial = self.next_serial;
        self.next_serial += 1;
        let shared = &self.args.shared;
        let spec = ContainerSpec {
            node: shared.config.node_id.clone(),
            tenant: code.tenant.clone(),
            code: code.name.clone(),
            class,
            image: code.image.clone(),
            workload: code.workload,
        };
        let key = code.key();
        let prewarmed = waiter.is_none();
        self.reals.insert(
            serial,
            Real {
                code: key.clone(),
                slot,
                tenant: code.tenant.clone(),
                version: code.version,
                class,
                actor: None,
                state: RealState::Starting(waiter),
                prewarmed,
                since: Instant::now(),
            },
        );
        if let Some(cp) = self.pools.get_mut(&key) {
            cp.slots.insert(slot, serial);
        }
        if prewarmed {
            shared.metrics.prewarms.fetch_add(1, Ordering::Relaxed);
        }
        self.to_start.push(StartOrder {
            serial,
            spec,
            code: key.to_string(),
        });
    }

    /// Carry out what a pool call decided: remove containers, start pre-warms.
    fn apply(&mut self, key: &CodeKey, fx: Effects) -> Vec<(ContainerId, SizeClass)> {
        let mut prewarms = Vec::new();
        for effect in fx.0 {
            match effect {
                Effect::Removed(slot) => {
                    prewarms.retain(|(s, _)| *s != slot);
                    let serial = self
                        .pools
                        .get_mut(key)
                        .and_then(|cp| cp.slots.remove(&slot));
                    if let Some(serial) = serial {
                        self.drop_real(serial);
                    }
                }
                Effect::Prewarm(slot) => {
                    if let Some(cp) = self.pools.get_mut(key) {
                        let class = class_for(cp.pool.predicted_mib(), &cp.code);
                        prewarms.push((slot, class));
                    }
                }
            }
        }
        prewarms
    }

    /// Start the pre-warms `apply` asked for, within quota and capacity (never evicting).
    fn start_prewarms(&mut self, key: &CodeKey, prewarms: Vec<(ContainerId, SizeClass)>) {
        for (slot, class) in prewarms {
            let Some(code) = self.pools.get(key).map(|cp| cp.code.clone()) else {
                return;
            };
            if self
                .make_room(&code.tenant, class.memory_mib, false)
                .is_ok()
            {
                self.spawn(&code, slot, class, None);
            } else {
                self.discard_slot(key, slot);
            }
        }
    }

    fn lease(&mut self, code: &Arc<Code>, need_mib: f64, warm_only: bool) -> LeaseStep {
        if self.stopping {
            return LeaseStep::Failed(PoolError::Stopping);
        }
        let key = code.key();
        if warm_only && !self.has_idle_fit(&key, code.version, need_mib) {
            return LeaseStep::Failed(PoolError::NoWarmFit);
        }
        let lead = self.lead();
        // First sight: no pool and no model of our own yet.
        let first_sight = !self.pools.contains_key(&key)
            && crate::predictor::model_of(&self.args.shared.models, &key).is_none();
        let cp = self.pool_for(&key, code);
        if cp.code.version < code.version {
            cp.code = code.clone();
        }
        let t = self.pool_time(&key);
        let cp = self.pools.get_mut(&key).expect("pool exists");
        let mut fx = Effects::default();
        while cp.pool.fire_due(t + lead, &mut fx) {}
        let placement = cp.pool.arrive(t, need_mib, &mut fx);
        let shared = &self.args.shared;
        if first_sight
            && let Some(floor) = shared
                .registry
                .first_sight_floor(&key, &shared.config.region)
        {
            // Other regions forecast demand: keep their expected concurrency warm here too
            // (the container serving this request counts) until the forecast's horizon.
            tracing::info!(
                "{key}: first sight; other regions' models forecast {} in flight: holding that \
                 many warm for {} min",
                floor.containers,
                floor.minutes
            );
            let until = t + floor.minutes.max(1) * forewarm_policy::MINUTE_MS;
            cp.pool.hold(
                t,
                forewarm_policy::WarmFloor {
                    containers: floor.containers,
                    until,
                },
                &mut fx,
            );
        }
        let prewarms = self.apply(&key, fx);
        let step = match placement {
            Placement::Warm(slot) | Placement::Prewarmed(slot) => {
                let serial = self
                    .pools
                    .get(&key)
                    .and_then(|cp| cp.slots.get(&slot).copied());
                match serial.and_then(|s| self.reals.get_mut(&s).map(|r| (s, r))) {
                    Some((serial, real)) => {
                        let state = std::mem::replace(&mut real.state, RealState::Starting(None));
                        match state {
                            RealState::Idle(container) => {
                                let start = if real.prewarmed {
                                    Start::Prewarmed
                                } else {
                                    Start::Warm
                                };
                                real.prewarmed = false;
                                real.state = RealState::Busy(container.clone());
                                real.since = Instant::now();
                                LeaseStep::Ready(Lease {
                                    serial,
                                    container,
                                    start,
                                })
                            }
                            // A pre-warm still starting: the request waits for it (and
                            // counts as cold, since it waited for a start).
                            RealState::Starting(None) => {
                                real.prewarmed = false;
                                let (waiter, waiting) = tokio::sync::oneshot::channel();
                                real.state = RealState::Starting(Some(waiter));
                                LeaseStep::Wait(waiting)
                            }
                            other => {
                                real.state = other;
                                LeaseStep::Failed(PoolError::StartFailed(String::from(
                                    "pool bookkeeping: leased container is busy",
                                )))
                            }
                        }
                    }
                    None => {
                        // The pool placed on a pre-warm the node could not start (no room
                        // then): start it now, on the request path.
                        let mib = self
                            .pools
                            .get_mut(&key)
                            .map_or(0, |cp| cp.pool.predicted_mib());
                        self.cold(code, slot, mib)
                    }
                }
            }
            Placement::Cold { id: slot, mib, .. } => self.cold(code, slot, mib),
        };
        self.start_prewarms(&key, prewarms);
        step
    }

    /// Start a container of `mib` for `slot` on the request path, evicting idle containers
    /// if quota or capacity ask for it.
    fn cold(&mut self, code: &Arc<Code>, slot: ContainerId, mib: u32) -> LeaseStep {
        let class = class_for(mib, code);
        match self.make_room(&code.tenant, class.memory_mib, true) {
            Ok(()) => {
                let (waiter, waiting) = tokio::sync::oneshot::channel();
                self.spawn(code, slot, class, Some(waiter));
                LeaseStep::Wait(waiting)
            }
            Err(e) => {
                self.discard_slot(&code.key(), slot);
                LeaseStep::Failed(e)
            }
        }
    }

    fn has_idle_fit(&self, key: &CodeKey, version: u64, need_mib: f64) -> bool {
        self.reals.values().any(|r| {
            r.code == *key
                && r.version >= version
                && matches!(r.state, RealState::Idle(_))
                && f64::from(r.class.memory_mib) >= need_mib
        })
    }

    /// Publish what this node holds warm, for the Router and the other regions.
    fn publish_inventory(&self) {
        let mut idle: HashMap<String, Vec<u32>> = HashMap::new();
        for r in self.reals.values() {
            if matches!(r.state, RealState::Idle(_)) {
                idle.entry(r.code.to_string())
                    .or_default()
                    .push(r.class.memory_mib);
            }
        }
        let inventory = crate::cluster::Inventory {
            idle,
            start_ms: self.start_ewma.as_secs_f64() * 1e3,
            queue_ms: self.args.shared.cluster.queue_ms(),
        };
        *self
            .args
            .shared
            .cluster
            .local
            .write()
            .unwrap_or_else(|e| e.into_inner()) = inventory;
    }

    fn tick(&mut self) {
        let lead = self.lead();
        let keys: Vec<CodeKey> = self.pools.keys().cloned().collect();
        for key in keys {
            let t = self.pool_time(&key);
            let mut fx = Effects::default();
            if let Some(cp) = self.pools.get_mut(&key) {
                while cp.pool.fire_due(t + lead, &mut fx) {}
                cp.pool.expire(t, &mut fx);
            }
            let prewarms = self.apply(&key, fx);
            self.start_prewarms(&key, prewarms);
        }
        let mut counts = [0u64; 3];
        for r in self.reals.values() {
            counts[match r.state {
                RealState::Starting(_) => 0,
                RealState::Idle(_) => 1,
                RealState::Busy(_) => 2,
            }] += 1;
        }
        for (gauge, n) in self.args.shared.metrics.pool.iter().zip(counts) {
            gauge.store(n, Ordering::Relaxed);
        }
        self.publish_inventory();
    }

    fn started(&mut self, serial: u64, result: Result<Container, String>, took: Duration) {
        let Some(real) = self.reals.get_mut(&serial) else {
            return; // removed while starting; its actor removes the container
        };
        match result {
            Ok(container) => {
                self.start_ewma = self.start_ewma.mul_f64(0.8) + took.mul_f64(0.2);
                let state = std::mem::replace(&mut real.state, RealState::Idle(container.clone()));
                real.since = Instant::now();
                if let RealState::Starting(Some(reply)) = state {
                    real.state = RealState::Busy(container.clone());
                    let lease = Lease {
                        serial,
                        container,
                        start: Start::Cold,
                    };
                    if reply.send(Ok(lease)).is_err() {
                        // The caller gave up: the container is idle, not busy.
                        self.release(serial, true);
                    }
                }
            }
            Err(message) => {
                let state = std::mem::replace(&mut real.state, RealState::Starting(None));
                if let RealState::Starting(Some(reply)) = state {
                    let _ = reply.send(Err(PoolError::StartFailed(message.clone())));
                }
                tracing::warn!("container {serial} failed to start: {message}");
                self.discard(serial);
            }
        }
    }

    fn release(&mut self, serial: u64, ok: bool) {
        let Some(real) = self.reals.get_mut(&serial) else {
            return;
        };
        // Only a busy container is released; any other state is left as it is.
        let RealState::Busy(container) = &real.state else {
            return;
        };
        real.state = RealState::Idle(container.clone());
        real.since = Instant::now();
        let key = real.code.clone();
        let slot = real.slot;
        let stale = self
            .pools
            .get(&key)
            .is_some_and(|cp| cp.code.version > real.version);
        if !ok || stale {
            self.discard(serial);
            return;
        }
        let t = self.pool_time(&key);
        // Never remove an idle container sooner than starting one again takes.
        let min_keep = self.args.shared.clock.scale_real(self.start_ewma);
        let mut fx = Effects::default();
        if let Some(cp) = self.pools.get_mut(&key) {
            cp.pool.set_min_keep(min_keep);
            cp.pool.complete(t, slot, &mut fx);
        }
        let prewarms = self.apply(&key, fx);
        self.start_prewarms(&key, prewarms);
    }

    fn list(&self) -> Vec<PoolEntry> {
        let mut out: Vec<PoolEntry> = self
            .reals
            .values()
            .map(|r| {
                let (id, state) = match &r.state {
                    RealState::Starting(_) => (String::new(), "starting"),
                    RealState::Idle(c) => (c.id.clone(), "idle"),
                    RealState::Busy(c) => (c.id.clone(), "busy"),
                };
                let (tenant, code) = r.code.split_once('/').unwrap_or(("", &r.code));
                PoolEntry {
                    id,
                    state,
                    class: r.class.name(),
                    memory_mib: r.class.memory_mib,
                    tenant: tenant.to_owned(),
                    code: code.to_owned(),
                    prewarmed: r.prewarmed,
                    idle_ms: if state == "idle" {
                        r.since.elapsed().as_millis() as u64
                    } else {
                        0
                    },
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.tenant, &a.code, &a.id).cmp(&(&b.tenant, &b.code, &b.id)));
        out
    }

    fn target(&mut self, key: &str) -> Option<PoolTarget> {
        let t = self.pool_time(key);
        let clock = self.args.shared.clock;
        let lead_ms = self.start_ewma.mul_f64(1.5).as_millis() as u64;
        let policy = self.args.shared.config.policy.to_string();
        let starting = self
            .reals
            .values()
            .filter(|r| &*r.code == key && matches!(r.state, RealState::Starting(_)))
            .count();
        let cp = self.pools.get_mut(key)?;
        let (busy, idle) = cp.pool.counts();
        let prewarm = cp.pool.pending().map(|(at, floor)| PendingPrewarm {
            containers: floor.containers,
            in_ms: clock.to_real(at.saturating_sub(t)).as_millis() as u64,
            until_ms: clock.to_real(floor.until.saturating_sub(t)).as_millis() as u64,
        });
        Some(PoolTarget {
            policy,
            busy,
            idle: idle.saturating_sub(starting),
            starting,
            prewarm,
            next_container_mib: class_for(cp.pool.predicted_mib(), &cp.code).memory_mib,
            start_lead_ms: lead_ms,
            why: cp.pool.policy().describe(),
        })
    }
}

impl<R: ContainerRuntime + 'static> PoolSupervisor<R> {
    /// Spawn a container actor for every start queued in the book.
    async fn start_queued(myself: &ActorRef<PoolMsg>, book: &PoolBook<R>) {
        let (orders, runtime, collector) = {
            let mut state = book.lock();
            (
                std::mem::take(&mut state.to_start),
                state.args.runtime.clone(),
                state.args.collector.clone(),
            )
        };
        for order in orders {
            let serial = order.serial;
            let args = ContainerArgs {
                runtime: runtime.clone(),
                spec: order.spec,
                serial,
                supervisor: myself.clone(),
                collector: collector.clone(),
                code: order.code,
            };
            let spawned = Actor::spawn_linked(
                None,
                ContainerActor::<R>::default(),
                args,
                myself.get_cell(),
            )
            .await;
            let mut state = book.lock();
            match spawned {
                Ok((actor, _)) => {
                    if let Some(real) = state.reals.get_mut(&serial) {
                        let id = actor.get_id();
                        real.actor = Some(actor);
                        state.by_actor.insert(id, serial);
                    } else {
                        // Removed from the pool while its actor was being spawned.
                        actor.stop(Some(String::from("removed from the pool")));
                    }
                }
                Err(e) => state.started(serial, Err(e.to_string()), Duration::ZERO),
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
        let _ = book.supervisor.set(myself.clone());
        myself.send_interval(TICK, || PoolMsg::Tick);
        Ok(book)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        book: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::StartQueued => {}
            PoolMsg::Started {
                serial,
                result,
                took,
            } => book.lock().started(serial, result, took),
            PoolMsg::Tick => book.lock().tick(),
            PoolMsg::Retire(code) => {
                let mut state = book.lock();
                let key = code.key();
                if let Some(cp) = state.pools.get_mut(&key) {
                    cp.code = code.clone();
                }
                let stale: Vec<u64> = state
                    .reals
                    .iter()
                    .filter(|(_, r)| r.code == key && r.version < code.version)
                    .filter(|(_, r)| matches!(r.state, RealState::Idle(_)))
                    .map(|(s, _)| *s)
                    .collect();
                for serial in stale {
                    state.discard(serial);
                }
            }
            PoolMsg::List(reply) => {
                let _ = reply.send(book.lock().list());
            }
            PoolMsg::Target(key, reply) => {
                let _ = reply.send(book.lock().target(&key));
            }
        }
        // Whatever the message, start what the book has queued (a release's pre-warms, a
        // tick's, a lease's cold start).
        Self::start_queued(&myself, book).await;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        book: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // A container actor that died on its own (a panic) takes its container out of the pool;
        // the ones the supervisor stopped are already gone from `by_actor`.
        let who = match &event {
            SupervisionEvent::ActorTerminated(who, _, _)
            | SupervisionEvent::ActorFailed(who, _) => who.get_id(),
            _ => return Ok(()),
        };
        let mut state = book.lock();
        if let Some(serial) = state.by_actor.remove(&who) {
            tracing::warn!("container actor {serial} exited: {event}");
            state.discard(serial);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        book: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        {
            let mut state = book.lock();
            state.stopping = true;
            state.to_start.clear();
            for (_, real) in state.reals.drain() {
                if let RealState::Starting(Some(reply)) = real.state {
                    let _ = reply.send(Err(PoolError::Stopping));
                }
            }
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
