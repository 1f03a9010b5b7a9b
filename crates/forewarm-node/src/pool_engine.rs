//! The pool's decisions, pure: events in ([`PoolEngine::lease`], [`release`], [`started`],
//! [`tick`], [`retire`], [`fail`], [`stop`]), [`Command`]s out. One [`AppPool`] per code type
//! (the same pool logic the simulator runs) decides keep-alive, pre-warms and removals; the
//! engine turns its slots into containers: which to start, which to remove, which request a
//! container goes to, within the tenants' quotas and the node's capacity ([`crate::room`]).
//!
//! No clock, lock or I/O inside: every event carries the real instant it happened at (policy
//! time is derived from it by the [`PolicyClock`]'s pure conversion), tenant quotas are read
//! through the function the caller passes, and what must happen in the world comes back as
//! commands. The [`PoolBook`](crate::pool::PoolBook) carries them out under its lock (starts go
//! to the PoolSupervisor, answers to the waiting requests); the unit tests below assert
//! command lists.
//!
//! [`release`]: PoolEngine::release
//! [`started`]: PoolEngine::started
//! [`tick`]: PoolEngine::tick
//! [`retire`]: PoolEngine::retire
//! [`fail`]: PoolEngine::fail
//! [`stop`]: PoolEngine::stop

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_policy::{
    AppContext, AppPolicy, AppPool, ContainerId, FitRequest, Millis, Placement, PolicySpec,
    PoolObserver, WarmFloor,
};
use forewarm_runtime::{Container, ContainerSpec, SizeClass};
use forewarm_store::Start;

use crate::catalog::{Code, CodeKey, SharedFloor};
use crate::clock::PolicyClock;
use crate::config::Capacity;
use crate::pool_msg::{PendingPrewarm, PoolEntry, PoolError, PoolTarget, Seen};
use crate::room::{self, Held, Quota, Short};

#[path = "pool_queue.rs"]
mod queue;
use queue::Queued;

/// Start-time estimate before any container started.
pub const INITIAL_START: Duration = Duration::from_millis(800);

/// A container handed to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The engine's number for the container.
    pub serial: u64,
    /// The container.
    pub container: Container,
    /// How the request starts on it.
    pub start: Start,
}

/// What a lease gives at once.
#[derive(Debug, Clone, PartialEq)]
pub enum Leased {
    /// A container, now.
    Ready(Lease),
    /// A container later: a [`Command::Answer`] for this ticket follows, once a container
    /// started for the request (a cold start, or a pre-warm still starting) or one of its code
    /// type frees or finds room to start, the request having waited in the code type's queue
    /// (its tenant's quota or the node's capacity held by busy containers).
    Wait(u64),
    /// None.
    Failed(PoolError),
}

/// What the engine asks the world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Create and start container `serial`, then report [`PoolEngine::started`].
    Start {
        /// The engine's number for it.
        serial: u64,
        /// What to create.
        spec: ContainerSpec,
        /// `tenant/code`, for its samples.
        code: CodeKey,
        /// Started by a prediction, before any request asked.
        prewarmed: bool,
    },
    /// Remove container `serial` (stop its actor, which removes it). A request that waited
    /// for its start has an `Answer` of its own, before this.
    Remove {
        /// The engine's number for it.
        serial: u64,
    },
    /// Fit the demand forecast `code`'s policy asked for (the Predictor does, off the request
    /// path), then report [`PoolEngine::fitted`].
    Fit {
        /// `tenant/code`.
        code: CodeKey,
        /// The per-minute peak concurrency to fit, the horizon, and the tick that asked.
        request: FitRequest,
    },
    /// Hand the request holding `ticket` its answer.
    Answer {
        /// The ticket [`Leased::Wait`] gave the request.
        ticket: u64,
        /// The lease, or why not.
        result: Result<Lease, PoolError>,
    },
}

/// The longest a tick goes without walking the pools, however far their next events are.
pub const LONGEST_WALK_GAP: Duration = Duration::from_secs(60);

/// The longest a container start may take: the runtime's readiness limit (Docker: 60 s).
pub const START_LIMIT: Duration = Duration::from_secs(60);
/// How long past its deadline a container may stay busy (or past [`START_LIMIT`] starting)
/// before the reaper removes it. The request's deadline and the start's readiness limit
/// normally remove it first; the reaper catches what escaped them (a lost release, an engine
/// call that never returned).
pub const REAP_GRACE: Duration = Duration::from_secs(5);

/// How long a container labelled with this node may be listed without being in the book
/// before a reconcile removes it: longer than a start may take (the runtime gives a runner
/// 60 s to be ready), so a container being started is never taken for a leak.
pub const UNOWNED_GRACE: Duration = Duration::from_secs(120);

/// What [`PoolEngine::reconcile`] found.
#[derive(Debug, Default, PartialEq)]
pub struct Reconciled {
    /// Containers of the book that are gone, by serial.
    pub gone: Vec<u64>,
    /// What taking them out of the book asks for.
    pub commands: Vec<Command>,
    /// Containers labelled with this node that are in no book (for longer than
    /// [`UNOWNED_GRACE`]): remove them.
    pub unowned: Vec<String>,
}

/// The engine's fixed settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's id (containers are labelled with it).
    pub node_id: String,
    /// The pool policy every code type gets.
    pub policy: PolicySpec,
    /// The node's capacity.
    pub capacity: Capacity,
    /// Real time to policy time.
    pub clock: PolicyClock,
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

#[derive(Debug, Clone, PartialEq)]
enum RealState {
    /// Being started; `waiter`: the ticket of the request waiting for it.
    Starting {
        waiter: Option<u64>,
    },
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
    state: RealState,
    prewarmed: bool,
    since: Instant,
}

/// What a node holds ([`PoolEngine::holding`]), by `tenant/code`.
#[derive(Debug, Default)]
pub struct Holding {
    /// Memory classes (MiB) of the idle containers...
    pub idle: HashMap<String, Vec<u32>>,
    /// ...of those busy with a request...
    pub busy: HashMap<String, Vec<u32>>,
    /// ...and of those starting.
    pub starting: HashMap<String, Vec<u32>>,
    /// Idle containers a prediction started that no request has used yet.
    pub prewarmed: HashMap<String, u32>,
}

/// The pools and containers of a node, and every decision over them.
#[derive(Debug)]
pub struct PoolEngine {
    config: EngineConfig,
    pools: HashMap<CodeKey, CodePool>,
    reals: HashMap<u64, Real>,
    next_serial: u64,
    start_ewma: Duration,
    /// Stopped: no lease any more.
    stopping: bool,
    /// Containers the engine lists with this node's label that no container of the book
    /// is, by id: when a reconcile first saw each so.
    unowned_since: HashMap<String, Instant>,
    /// When a tick next has something to do (a pool's due event, an idle container's
    /// expiry), as the last tick that walked the pools computed it; `None` after any event,
    /// so the next tick walks every pool again.
    due: Option<Instant>,
    /// Requests waiting for a container, per code type, first come first served
    /// ([`queue`](self::queue)).
    queues: HashMap<CodeKey, VecDeque<Queued>>,
    /// The next [`Leased::Wait`] ticket.
    next_ticket: u64,
    /// Cold starts while an idle container of the code type was too small for the request.
    outgrown: u64,
    /// Requests that came for a pre-warm still starting (they wait for it, counted cold).
    late_prewarms: u64,
}

/// CPU of a class: 250 millicores per 128 MiB (128 MiB → 250m, 2 GiB → 4000m), within the
/// code type's limit.
pub fn class_for(mib: u32, code: &Code) -> SizeClass {
    let memory_mib = mib.min(code.max_memory_mib).max(1);
    let cpu = (u64::from(memory_mib) * 250 / 128).clamp(250, 4000) as u32;
    SizeClass {
        memory_mib,
        cpu_millis: cpu.min(code.max_cpu_millis),
    }
}

/// The next [`Leased::Wait`] ticket from `next`.
fn new_ticket(next: &mut u64) -> u64 {
    let ticket = *next;
    *next += 1;
    ticket
}

/// What one call of the engine asks for, in order.
type Commands = Vec<Command>;

impl PoolEngine {
    /// An engine with no pool and no container.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            pools: HashMap::new(),
            reals: HashMap::new(),
            next_serial: 0,
            start_ewma: INITIAL_START,
            stopping: false,
            unowned_since: HashMap::new(),
            due: None,
            queues: HashMap::new(),
            next_ticket: 0,
            outgrown: 0,
            late_prewarms: 0,
        }
    }

    /// Cold starts so far while an idle container of the code type was too small for the
    /// request's need (it stays idle: memory held for nothing, a start paid), and requests that
    /// came for a pre-warm still starting (its lead, 1.5 × the mean start time, was too short:
    /// the request waits for it and counts as cold).
    pub fn misses(&self) -> (u64, u64) {
        (self.outgrown, self.late_prewarms)
    }

    /// The measured container start time (moving average).
    pub fn start_time(&self) -> Duration {
        self.start_ewma
    }

    fn lead(&self) -> Millis {
        // Pre-warm ahead of the policy's time by the measured start time, with margin.
        self.config.clock.scale_real(self.start_ewma.mul_f64(1.5))
    }

    fn pool_time(&self, key: &str, now: Instant) -> Millis {
        let born = self.pools.get(key).map_or(0, |p| p.born);
        self.config.clock.at(now).saturating_sub(born)
    }

    fn pool_for(&mut self, key: &CodeKey, code: &Arc<Code>, now: Instant) -> &mut CodePool {
        let born = self.config.clock.at(now);
        let spec = self.config.policy;
        self.pools.entry(key.clone()).or_insert_with(|| {
            let declared = f64::from(code.max_memory_mib);
            let policy = spec
                .build(AppContext {
                    declared_mib: declared,
                    past_costs_mib: &[],
                    deferred_fits: true,
                })
                .unwrap_or_else(|| Box::new(forewarm_policy::FixedKeepAlive::new(600_000)));
            CodePool {
                code: code.clone(),
                pool: AppPool::new(policy, declared, true),
                born,
                slots: HashMap::new(),
            }
        })
    }

    /// Every container of the node, for [`room::plan`]; those `evictable` says of are
    /// offered as idle.
    fn held(&self, evictable: impl Fn(&RealState) -> bool) -> Vec<Held<'_, u64, Instant>> {
        self.reals
            .iter()
            .map(|(serial, r)| Held {
                id: *serial,
                tenant: &r.tenant,
                memory_mib: r.class.memory_mib,
                idle_since: evictable(&r.state).then_some(r.since),
            })
            .collect()
    }

    /// Whether a container of `mib` for `tenant` fits; with `evict`, remove idle containers
    /// (oldest first) so it does ([`room::plan`] decides).
    fn make_room(
        &mut self,
        tenant: &str,
        mib: u32,
        evict: bool,
        quota: Option<Quota>,
        now: Instant,
        out: &mut Commands,
    ) -> Result<(), PoolError> {
        let held = self.held(|state| matches!(state, RealState::Idle(_)));
        match room::plan(&held, tenant, mib, quota, self.config.capacity, evict) {
            Ok(victims) => {
                for serial in victims {
                    self.discard(serial, now, out);
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
    fn discard_slot(&mut self, key: &CodeKey, slot: ContainerId, now: Instant, out: &mut Commands) {
        let t = self.pool_time(key, now);
        let mut fx = Effects::default();
        if let Some(cp) = self.pools.get_mut(key) {
            cp.pool.discard(t, slot, &mut fx);
        }
        // A discard only removes: `apply` has no pre-warm to hand back.
        self.apply(key, fx, out);
    }

    /// Take container `serial` out of its pool (it failed, or makes room), and remove it.
    fn discard(&mut self, serial: u64, now: Instant, out: &mut Commands) {
        let Some(real) = self.reals.get(&serial) else {
            return;
        };
        let key = real.code.clone();
        let slot = real.slot;
        self.discard_slot(&key, slot, now, out);
        // Not in the pool any more (e.g. already released by it): remove it anyway.
        if self.reals.contains_key(&serial) {
            self.drop_real(serial, out);
            if let Some(cp) = self.pools.get_mut(&key) {
                cp.slots.remove(&slot);
            }
        }
    }

    fn drop_real(&mut self, serial: u64, out: &mut Commands) {
        let Some(real) = self.reals.remove(&serial) else {
            return;
        };
        if let RealState::Starting {
            waiter: Some(ticket),
        } = real.state
        {
            out.push(Command::Answer {
                ticket,
                result: Err(PoolError::StartFailed(String::from(
                    "container removed while starting",
                ))),
            });
        }
        out.push(Command::Remove { serial });
    }

    /// Enter a container of `class` for `slot` (starting; `waiter`: the ticket of the request
    /// that waits for it, none for a pre-warm) and ask for its start.
    fn spawn(
        &mut self,
        code: &Arc<Code>,
        slot: ContainerId,
        class: SizeClass,
        waiter: Option<u64>,
        now: Instant,
        out: &mut Commands,
    ) -> u64 {
        let serial = self.next_serial;
        self.next_serial += 1;
        let spec = ContainerSpec {
            node: self.config.node_id.clone(),
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
                state: RealState::Starting { waiter },
                prewarmed,
                since: now,
            },
        );
        if let Some(cp) = self.pools.get_mut(&key) {
            cp.slots.insert(slot, serial);
        }
        out.push(Command::Start {
            serial,
            spec,
            code: key,
            prewarmed,
        });
        serial
    }

    /// The demand fit `key`'s policy asked for at a tick just fired, if any, for the Predictor.
    fn ask_fit(&mut self, key: &CodeKey, out: &mut Commands) {
        if let Some(cp) = self.pools.get_mut(key)
            && let Some(request) = cp.pool.take_fit()
        {
            out.push(Command::Fit {
                code: key.clone(),
                request,
            });
        }
    }

    /// The Predictor fitted the demand forecast `key`'s policy asked for at `asked_at` (policy
    /// time): hand it to the policy, which may hold a floor for the current minute at once
    /// (and ignores an answer to a request since replaced). For a pool gone, dropped.
    pub fn fitted(
        &mut self,
        key: &CodeKey,
        asked_at: Millis,
        forecast: &[f64],
        quota: &dyn Fn(&str) -> Option<Quota>,
        now: Instant,
    ) -> Commands {
        let mut out = Commands::new();
        let t = self.pool_time(key, now) + self.lead();
        let Some(cp) = self.pools.get_mut(key) else {
            return out;
        };
        if self.stopping {
            return out;
        }
        let mut fx = Effects::default();
        cp.pool.fitted(t, asked_at, forecast, &mut fx);
        let prewarms = self.apply(key, fx, &mut out);
        self.start_prewarms(key, prewarms, quota, now, &mut out);
        self.due = None;
        out
    }

    /// Carry out what a pool call decided: remove containers; the pre-warms it asked for.
    fn apply(
        &mut self,
        key: &CodeKey,
        fx: Effects,
        out: &mut Commands,
    ) -> Vec<(ContainerId, SizeClass)> {
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
                        self.drop_real(serial, out);
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
    fn start_prewarms(
        &mut self,
        key: &CodeKey,
        prewarms: Vec<(ContainerId, SizeClass)>,
        quota: &dyn Fn(&str) -> Option<Quota>,
        now: Instant,
        out: &mut Commands,
    ) {
        for (slot, class) in prewarms {
            let Some(code) = self.pools.get(key).map(|cp| cp.code.clone()) else {
                return;
            };
            let q = quota(&code.tenant);
            if self
                .make_room(&code.tenant, class.memory_mib, false, q, now, out)
                .is_ok()
            {
                self.spawn(&code, slot, class, None, now, out);
            } else {
                self.discard_slot(key, slot, now, out);
            }
        }
    }

    /// A request for `code` needing `need_mib` arrived at `now`. With `warm_only` (a request
    /// forwarded from another region) only an idle container will do: no start on the
    /// request path, no arrival recorded otherwise. `first_sight` is what other regions'
    /// forecasts say to hold warm for a code type this node has no pool and no model of yet
    /// (asked only then); `quota` reads a tenant's quota.
    pub fn lease(
        &mut self,
        code: &Arc<Code>,
        need_mib: f64,
        warm_only: bool,
        first_sight: impl FnOnce() -> Option<SharedFloor>,
        quota: &dyn Fn(&str) -> Option<Quota>,
        now: Instant,
    ) -> (Leased, Commands) {
        self.due = None;
        let mut out = Commands::new();
        if self.stopping {
            return (Leased::Failed(PoolError::Stopping), out);
        }
        let key = code.key();
        if warm_only && !self.has_idle_fit(&key, code.version, need_mib) {
            return (Leased::Failed(PoolError::NoWarmFit), out);
        }
        let lead = self.lead();
        let floor = if self.pools.contains_key(&key) {
            None
        } else {
            first_sight()
        };
        let cp = self.pool_for(&key, code, now);
        if cp.code.version < code.version {
            cp.code = code.clone();
        }
        let t = self.pool_time(&key, now);
        let Some(cp) = self.pools.get_mut(&key) else {
            return (Leased::Failed(PoolError::Stopping), out);
        };
        let mut fx = Effects::default();
        while cp.pool.fire_due(t + lead, &mut fx) {}
        let placement = cp.pool.arrive(t, need_mib, &mut fx);
        if let Some(floor) = floor {
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
                WarmFloor {
                    containers: floor.containers,
                    until,
                },
                &mut fx,
            );
        }
        let prewarms = self.apply(&key, fx, &mut out);
        self.ask_fit(&key, &mut out);
        let leased = match placement {
            Placement::Warm(slot) | Placement::Prewarmed(slot) => {
                let serial = self
                    .pools
                    .get(&key)
                    .and_then(|cp| cp.slots.get(&slot).copied());
                match serial.and_then(|s| self.reals.get_mut(&s).map(|r| (s, r))) {
                    Some((serial, real)) => match real.state.clone() {
                        RealState::Idle(container) => {
                            let start = if real.prewarmed {
                                Start::Prewarmed
                            } else {
                                Start::Warm
                            };
                            real.prewarmed = false;
                            real.state = RealState::Busy(container.clone());
                            real.since = now;
                            Leased::Ready(Lease {
                                serial,
                                container,
                                start,
                            })
                        }
                        // A pre-warm still starting: the request waits for it (and counts
                        // as cold, since it waited for a start).
                        RealState::Starting { waiter: None } => {
                            self.late_prewarms += 1;
                            let ticket = new_ticket(&mut self.next_ticket);
                            real.prewarmed = false;
                            real.state = RealState::Starting {
                                waiter: Some(ticket),
                            };
                            Leased::Wait(ticket)
                        }
                        RealState::Starting { waiter: Some(_) } | RealState::Busy(_) => {
                            Leased::Failed(PoolError::StartFailed(String::from(
                                "pool bookkeeping: leased container is busy",
                            )))
                        }
                    },
                    None => {
                        // The pool placed on a pre-warm the node could not start (no room
                        // then): start it now, on the request path.
                        let mib = self
                            .pools
                            .get_mut(&key)
                            .map_or(0, |cp| cp.pool.predicted_mib());
                        self.cold(code, slot, mib, need_mib, quota, now, &mut out)
                    }
                }
            }
            Placement::Cold {
                id: slot,
                mib,
                misfit,
            } => {
                self.outgrown += u64::from(misfit);
                self.cold(code, slot, mib, need_mib, quota, now, &mut out)
            }
        };
        self.start_prewarms(&key, prewarms, quota, now, &mut out);
        (leased, out)
    }

    /// Start a container of `mib` for `slot` on the request path, evicting idle containers
    /// if quota or capacity ask for it; if they are held by busy or starting containers, the
    /// request (needing `need_mib`) waits in the code type's queue for one to free.
    #[allow(clippy::too_many_arguments)]
    fn cold(
        &mut self,
        code: &Arc<Code>,
        slot: ContainerId,
        mib: u32,
        need_mib: f64,
        quota: &dyn Fn(&str) -> Option<Quota>,
        now: Instant,
        out: &mut Commands,
    ) -> Leased {
        let class = class_for(mib, code);
        let q = quota(&code.tenant);
        match self.make_room(&code.tenant, class.memory_mib, true, q, now, out) {
            Ok(()) => {
                let ticket = new_ticket(&mut self.next_ticket);
                self.spawn(code, slot, class, Some(ticket), now, out);
                Leased::Wait(ticket)
            }
            Err(why) => match self.enqueue(code, slot, mib, need_mib, q, why) {
                Ok(ticket) => Leased::Wait(ticket),
                Err(why) => {
                    self.discard_slot(&code.key(), slot, now, out);
                    Leased::Failed(why)
                }
            },
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

    /// The request on container `serial` was measured to use `mib` at its peak (call before
    /// [`Self::release`]): the code type's size classes are chosen from what its invocations
    /// used, not from what was predicted for them.
    pub fn used(&mut self, serial: u64, mib: f64) {
        let Some(real) = self.reals.get(&serial) else {
            return;
        };
        if let Some(cp) = self.pools.get_mut(&real.code) {
            cp.pool.used(real.slot, mib);
        }
    }

    /// The request on container `serial` is done at `now`; `ok = false` if the container
    /// failed.
    pub fn release(
        &mut self,
        serial: u64,
        ok: bool,
        quota: &dyn Fn(&str) -> Option<Quota>,
        now: Instant,
    ) -> Commands {
        self.due = None;
        let mut out = Commands::new();
        let Some(real) = self.reals.get_mut(&serial) else {
            return out;
        };
        // Only a busy container is released; any other state is left as it is.
        let RealState::Busy(container) = &real.state else {
            return out;
        };
        real.state = RealState::Idle(container.clone());
        real.since = now;
        let key = real.code.clone();
        let slot = real.slot;
        // Of an older version, or of a code type that is gone (`forget`).
        let stale = self
            .pools
            .get(&key)
            .is_none_or(|cp| cp.code.version > real.version);
        if !ok || stale {
            self.discard(serial, now, &mut out);
            self.drain(quota, now, &mut out);
            return out;
        }
        if self.hand_over(serial, now, &mut out) {
            return out;
        }
        let t = self.pool_time(&key, now);
        // Never remove an idle container sooner than starting one again takes.
        let min_keep = self.config.clock.scale_real(self.start_ewma);
        let mut fx = Effects::default();
        if let Some(cp) = self.pools.get_mut(&key) {
            cp.pool.set_min_keep(min_keep);
            cp.pool.complete(t, slot, &mut fx);
        }
        let prewarms = self.apply(&key, fx, &mut out);
        self.start_prewarms(&key, prewarms, quota, now, &mut out);
        self.drain(quota, now, &mut out);
        out
    }

    /// Container `serial` started (`took` long) at `now`, or could not.
    pub fn started(
        &mut self,
        serial: u64,
        result: Result<Container, String>,
        took: Duration,
        now: Instant,
    ) -> Commands {
        self.due = None;
        let mut out = Commands::new();
        let Some(real) = self.reals.get_mut(&serial) else {
            return out; // removed while starting; its actor removes the container
        };
        match result {
            Ok(container) => {
                self.start_ewma = self.start_ewma.mul_f64(0.8) + took.mul_f64(0.2);
                real.since = now;
                if let RealState::Starting {
                    waiter: Some(ticket),
                } = real.state
                {
                    real.state = RealState::Busy(container.clone());
                    let lease = Lease {
                        serial,
                        container,
                        start: Start::Cold,
                    };
                    out.push(Command::Answer {
                        ticket,
                        result: Ok(lease),
                    });
                } else {
                    real.state = RealState::Idle(container);
                    // A pre-warm: first to a request waiting in its code type's queue.
                    self.hand_idle(serial, now, &mut out);
                }
            }
            Err(message) => {
                if let RealState::Starting {
                    waiter: Some(ticket),
                } = real.state
                {
                    out.push(Command::Answer {
                        ticket,
                        result: Err(PoolError::StartFailed(message.clone())),
                    });
                    real.state = RealState::Starting { waiter: None };
                }
                tracing::warn!("container {serial} failed to start: {message}");
                self.discard(serial, now, &mut out);
            }
        }
        out
    }

    /// Container `serial` is gone on its own (its actor died, or the request waiting for it
    /// gave up before it was leased): take it out of its pool.
    pub fn fail(&mut self, serial: u64, now: Instant) -> Commands {
        self.due = None;
        let mut out = Commands::new();
        self.discard(serial, now, &mut out);
        out
    }

    /// Reconcile at `now`: fire due pre-warms (ahead by the measured start time) and remove
    /// containers whose keep-alive passed. Walks the pools only when something is due (the
    /// earliest of the pools' `next_due()` and idle expiries, as of the last walk) or an
    /// event came since: a node with many quiet code types does not walk them ten times a
    /// second.
    pub fn tick(&mut self, quota: &dyn Fn(&str) -> Option<Quota>, now: Instant) -> Commands {
        let mut out = Commands::new();
        self.reap(now, &mut out);
        // Room freed since (a failed start, a removal): the waiting requests first.
        self.drain(quota, now, &mut out);
        if self.due.is_some_and(|at| now < at) {
            return out;
        }
        let lead = self.lead();
        let keys: Vec<CodeKey> = self.pools.keys().cloned().collect();
        let mut due: Option<Instant> = None;
        for key in keys {
            let t = self.pool_time(&key, now);
            let mut fx = Effects::default();
            if let Some(cp) = self.pools.get_mut(&key) {
                while cp.pool.fire_due(t + lead, &mut fx) {}
                cp.pool.expire(t, &mut fx);
            }
            let prewarms = self.apply(&key, fx, &mut out);
            self.ask_fit(&key, &mut out);
            self.start_prewarms(&key, prewarms, quota, now, &mut out);
            if let Some(at) = self.pool_due(&key, lead, now) {
                due = Some(due.map_or(at, |d| d.min(at)));
            }
        }
        // What this walk started or removed is an event of its own.
        self.due = if out.is_empty() { due } else { None };
        out
    }

    /// Remove containers stuck past their deadline: busy longer than their code type's
    /// `timeout_ms` + [`REAP_GRACE`] since leased, or starting longer than [`START_LIMIT`] +
    /// [`REAP_GRACE`] (a request waiting for one hears that its start failed).
    fn reap(&mut self, now: Instant, out: &mut Commands) {
        let stuck: Vec<(u64, Duration)> = self
            .reals
            .iter()
            .filter_map(|(&serial, r)| {
                let limit = match r.state {
                    RealState::Idle(_) => return None,
                    RealState::Starting { .. } => START_LIMIT,
                    RealState::Busy(_) => Duration::from_millis(
                        self.pools
                            .get(&r.code)
                            .map_or(forewarm_raft::MAX_TIMEOUT_MS, |cp| cp.code.timeout_ms),
                    ),
                };
                let age = now.saturating_duration_since(r.since);
                (age > limit + REAP_GRACE).then_some((serial, age))
            })
            .collect();
        for (serial, age) in stuck {
            tracing::warn!("reaping container {serial}: stuck for {age:?}, past its deadline");
            self.discard(serial, now, out);
        }
    }

    /// When a tick next has something to do, as the last walk computed it (`None`: the next
    /// tick walks every pool).
    pub fn next_due(&self) -> Option<Instant> {
        self.due
    }

    /// When pool `key` next has something due: its own next event (fired `lead` early) or
    /// the first expiry of an idle container, whichever is first.
    fn pool_due(&self, key: &str, lead: Millis, now: Instant) -> Option<Instant> {
        let cp = self.pools.get(key)?;
        let expiry = cp
            .slots
            .keys()
            .filter_map(|&slot| cp.pool.idle_until(slot))
            // `expire` removes a container once its expiry is in the past.
            .map(|expires| expires.saturating_add(1))
            .min()
            .unwrap_or(Millis::MAX);
        let at = cp.pool.next_due().saturating_sub(lead).min(expiry);
        if at == Millis::MAX {
            return None;
        }
        let t = self.pool_time(key, now);
        let wait = self.config.clock.to_real(at.saturating_sub(t));
        Some(now + wait.min(LONGEST_WALK_GAP))
    }

    /// `code` was updated: retire idle containers of older versions.
    pub fn retire(&mut self, code: &Arc<Code>, now: Instant) -> Commands {
        self.due = None;
        let mut out = Commands::new();
        let key = code.key();
        if let Some(cp) = self.pools.get_mut(&key) {
            cp.code = code.clone();
        }
        let stale: Vec<u64> = self
            .reals
            .iter()
            .filter(|(_, r)| r.code == key && r.version < code.version)
            .filter(|(_, r)| matches!(r.state, RealState::Idle(_)))
            .map(|(s, _)| *s)
            .collect();
        for serial in stale {
            self.discard(serial, now, &mut out);
        }
        out
    }

    /// `key`'s code type is gone (its tenant was deleted): its containers that are not busy
    /// are removed, its queued requests answered, and its pool dropped (nothing is pre-warmed
    /// for it again); a busy one is removed when its request releases it.
    pub fn forget(&mut self, key: &str, now: Instant) -> Commands {
        self.due = None;
        let mut out = Commands::new();
        let idle: Vec<u64> = self
            .reals
            .iter()
            .filter(|(_, r)| &*r.code == key && !matches!(r.state, RealState::Busy(_)))
            .map(|(s, _)| *s)
            .collect();
        for serial in idle {
            self.discard(serial, now, &mut out);
        }
        for queued in self.queues.remove(key).into_iter().flatten() {
            out.push(Command::Answer {
                ticket: queued.ticket,
                result: Err(PoolError::StartFailed(String::from(
                    "its code type was deleted",
                ))),
            });
        }
        self.pools.remove(key);
        out
    }

    /// The code types this node has a pool of.
    pub fn code_keys(&self) -> impl Iterator<Item = &CodeKey> {
        self.pools.keys()
    }

    /// Compare the book with what the container engine listed (every container labelled
    /// with this node; the list was asked for at `listed_at`), kube-rs's reconcile:
    ///
    /// - an idle container of the book the engine does not list as running is gone (removed
    ///   or exited outside forewarm): it leaves the book, so no request is handed a dead
    ///   container (`Remove` commands). Only containers idle since before `listed_at` are
    ///   judged: one that became idle later may not have been listed yet. A busy one is left
    ///   to its request, which fails and releases it.
    /// - a listed container that no container of the book is, for [`UNOWNED_GRACE`] (longer
    ///   than any start: a starting container is in the engine before the book knows its
    ///   id), is a leak (a removal that failed): its id is returned, to be removed.
    pub fn reconcile(&mut self, listed: &[Seen], listed_at: Instant) -> Reconciled {
        self.due = None;
        let running: HashSet<&str> = listed
            .iter()
            .filter(|c| c.running)
            .map(|c| c.id.as_str())
            .collect();
        let mut gone: Vec<u64> = self
            .reals
            .iter()
            .filter(|(_, r)| r.since <= listed_at)
            .filter_map(|(serial, r)| match &r.state {
                RealState::Idle(c) if !running.contains(c.id.as_str()) => Some(*serial),
                _ => None,
            })
            .collect();
        gone.sort_unstable();
        let mut commands = Commands::new();
        for &serial in &gone {
            self.discard(serial, listed_at, &mut commands);
        }
        let booked: HashSet<&str> = self
            .reals
            .values()
            .filter_map(|r| match &r.state {
                RealState::Idle(c) | RealState::Busy(c) => Some(c.id.as_str()),
                RealState::Starting { .. } => None,
            })
            .collect();
        let unbooked: HashSet<&str> = listed
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| !booked.contains(id))
            .collect();
        self.unowned_since
            .retain(|id, _| unbooked.contains(id.as_str()));
        let mut unowned = Vec::new();
        for id in unbooked {
            let since = *self.unowned_since.entry(id.to_owned()).or_insert(listed_at);
            if listed_at.saturating_duration_since(since) >= UNOWNED_GRACE {
                unowned.push(id.to_owned());
            }
        }
        for id in &unowned {
            self.unowned_since.remove(id);
        }
        unowned.sort();
        Reconciled {
            gone,
            commands,
            unowned,
        }
    }

    /// The node stops: no lease any more; every request waiting for a start or in a queue
    /// is answered `Stopping`. The containers are left to their actors (each removes its own).
    pub fn stop(&mut self) -> Commands {
        self.stopping = true;
        self.let_go(|| PoolError::Stopping).0
    }

    /// The PoolSupervisor failed and was started again, and the container actors it
    /// supervised went with it: every container leaves the book and the pools start over
    /// (their policies learn again; the Predictor's models and the replicated forecasts
    /// stay). Requests waiting for a start or in a queue are answered `StartFailed` (they
    /// never reached a container, so a client may send them again). Returns, beside those
    /// answers, the ids of the containers that were idle, for the caller to remove now; a
    /// busy one is left to the request on it, and a reconcile removes it as unowned after
    /// [`UNOWNED_GRACE`]. Serials and tickets keep counting, so a lease handed out before
    /// cannot release a container started after.
    pub fn restart(&mut self) -> (Commands, Vec<String>) {
        self.stopping = false;
        self.due = None;
        self.pools.clear();
        self.let_go(|| PoolError::StartFailed(String::from("the pool supervisor was restarted")))
    }

    /// Empty the book: answer every request waiting for a start or in a queue with `why`;
    /// the ids of the containers that were idle.
    fn let_go(&mut self, why: impl Fn() -> PoolError) -> (Commands, Vec<String>) {
        let mut idle = Vec::new();
        let mut tickets = Vec::new();
        for (_, real) in self.reals.drain() {
            match real.state {
                RealState::Starting { waiter } => tickets.extend(waiter),
                RealState::Idle(c) => idle.push(c.id),
                RealState::Busy(_) => {}
            }
        }
        tickets.extend(self.queues.drain().flat_map(|(_, q)| q).map(|q| q.ticket));
        tickets.sort_unstable();
        idle.sort();
        let answers = tickets
            .into_iter()
            .map(|ticket| Command::Answer {
                ticket,
                result: Err(why()),
            })
            .collect();
        (answers, idle)
    }

    /// Whether container `serial` is still in the book.
    pub fn holds(&self, serial: u64) -> bool {
        self.reals.contains_key(&serial)
    }

    /// Containers starting, idle and busy.
    pub fn counts(&self) -> [u64; 3] {
        let mut counts = [0u64; 3];
        for r in self.reals.values() {
            counts[match r.state {
                RealState::Starting { .. } => 0,
                RealState::Idle(_) => 1,
                RealState::Busy(_) => 2,
            }] += 1;
        }
        counts
    }

    /// Every container's memory class (MiB) per `tenant/code` and state, and how many of the
    /// idle ones are pre-warms no request has used yet.
    pub fn holding(&self) -> Holding {
        let mut h = Holding::default();
        for r in self.reals.values() {
            let code = r.code.to_string();
            let classes = match r.state {
                RealState::Idle(_) => {
                    if r.prewarmed {
                        *h.prewarmed.entry(code.clone()).or_default() += 1;
                    }
                    &mut h.idle
                }
                RealState::Busy(_) => &mut h.busy,
                RealState::Starting { .. } => &mut h.starting,
            };
            classes.entry(code).or_default().push(r.class.memory_mib);
        }
        h
    }

    /// The containers as `/v1/pool` shows them, at `now`.
    pub fn list(&self, now: Instant) -> Vec<PoolEntry> {
        let mut out: Vec<PoolEntry> = self
            .reals
            .values()
            .map(|r| {
                let (id, state) = match &r.state {
                    RealState::Starting { .. } => (String::new(), "starting"),
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
                        now.saturating_duration_since(r.since).as_millis() as u64
                    } else {
                        0
                    },
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.tenant, &a.code, &a.id).cmp(&(&b.tenant, &b.code, &b.id)));
        out
    }

    /// The pool of code type `key` at `now`, for `/prediction`.
    pub fn target(&mut self, key: &str, now: Instant) -> Option<PoolTarget> {
        let t = self.pool_time(key, now);
        let clock = self.config.clock;
        let lead_ms = self.start_ewma.mul_f64(1.5).as_millis() as u64;
        let policy = self.config.policy.to_string();
        let starting = self
            .reals
            .values()
            .filter(|r| &*r.code == key && matches!(r.state, RealState::Starting { .. }))
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

#[cfg(test)]
#[path = "pool_engine_test.rs"]
mod tests;
