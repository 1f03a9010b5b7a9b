//! The warm pool of one application: which containers exist, which are idle, and what a
//! policy's decisions mean for them.
//!
//! Pure, like the policies: the caller reports arrivals and completions in time order and
//! fires the pool's own timed events (minute ticks, pending pre-warms) when they are due; the
//! pool answers with placements and tells an observer about idle time and pre-warms. The
//! simulator drives it on a virtual clock; the node's PoolSupervisor drives it with real
//! containers. A container's removal time is its latest own keep-alive or the latest floor that
//! holds it; a `Prewarm` decision unloads the container (unless a floor holds it) and acts as a
//! floor at its time; a newer decision replaces a pending pre-warm. A scale-out the policy asks
//! for right after an arrival is a floor whose new containers serve only after the start time.

use crate::policy::{AppPolicy, FitRequest, IdleAction, MINUTE_MS, Millis, WarmFloor};
use crate::size_class::{ProfilePredictor, size_class_for};

/// A container of the pool (an index, reused once the container is gone).
pub type ContainerId = usize;

/// Told what the pool did, for accounting.
pub trait PoolObserver {
    /// A container of `mib` was idle over `[from, to)`.
    fn idle(&mut self, mib: u32, from: Millis, to: Millis);
    /// Container `id` was spawned by a prediction at `at`.
    fn prewarmed(&mut self, id: ContainerId, at: Millis);
    /// Container `id` left the pool (its keep-alive passed, or a decision unloaded it).
    fn removed(&mut self, _id: ContainerId) {}
}

/// Where an arrival runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On an idle container that served before.
    Warm(ContainerId),
    /// On a pre-warmed container's first use.
    Prewarmed(ContainerId),
    /// On a new container of `mib`, spawned on the request path; `misfit` when warm
    /// containers existed but none was big enough.
    Cold {
        /// The new container.
        id: ContainerId,
        /// Its memory.
        mib: u32,
        /// Whether only too-small warm containers were there.
        misfit: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    mib: u32,
    expires: Millis,
    floor_until: Millis,
    idle_since: Millis,
    /// Before this time the container is still starting and cannot serve.
    ready_at: Millis,
    fresh: bool,
    running_mib: f64,
    /// Position in `busy` while busy.
    busy_at: usize,
}

/// The pool of one application under one policy.
#[derive(Debug)]
pub struct AppPool<P> {
    policy: P,
    predictor: ProfilePredictor,
    app_mib: u32,
    profiles: bool,
    slots: Vec<Slot>,
    free: Vec<ContainerId>,
    idle: Vec<ContainerId>,
    busy: Vec<ContainerId>,
    pending: Option<(Millis, WarmFloor)>,
    next_tick: Millis,
    min_keep: Millis,
    start_ms: Millis,
}

impl<P: AppPolicy> AppPool<P> {
    /// A pool whose containers hold `app_mib` each, or, with `profiles`, the size class of the
    /// predicted profile (the declared `app_mib` until enough invocations were seen).
    pub fn new(policy: P, app_mib: f64, profiles: bool) -> Self {
        let next_tick = if policy.wants_minutes() {
            0
        } else {
            Millis::MAX
        };
        Self {
            policy,
            predictor: ProfilePredictor::new(app_mib),
            app_mib: app_mib.ceil().max(1.0) as u32,
            profiles,
            slots: Vec::new(),
            free: Vec::new(),
            idle: Vec::new(),
            busy: Vec::new(),
            pending: None,
            next_tick,
            min_keep: 0,
            start_ms: 0,
        }
    }

    /// Keep every container the policy keeps alive idle for at least `ms` after it finished
    /// (0, the default, leaves the policy's keep-alive as it is). The node sets it to its
    /// measured container start time: a busy application's idle times are milliseconds, so
    /// its keep-alive window ends milliseconds after each completion, and a pause of a few
    /// milliseconds in the load would remove the containers the next request needs, each
    /// costing a whole start. Unloads the policy decides on are not delayed.
    pub fn set_min_keep(&mut self, ms: Millis) {
        self.min_keep = ms;
    }

    /// Containers started for a policy's [`AppPolicy::scale_out`] serve only `ms` after it
    /// asked (0, the default: at once). Floors and pre-warms the policy asked for ahead of time
    /// (minute floors, `Prewarm` decisions) are taken to have been started early enough to be
    /// ready when they are due; a scale-out reacts to an arrival, so its start time counts. The
    /// simulator sets it to its cold-start time; memory is counted from the start.
    pub fn set_start_ms(&mut self, ms: Millis) {
        self.start_ms = ms;
    }

    /// Hold at least `floor.containers` containers until `floor.until`, pre-warming the
    /// missing ones now (as a policy's floor would): for floors the policy cannot know of,
    /// such as another region's forecast for an application this pool has not seen yet.
    pub fn hold(&mut self, now: Millis, floor: WarmFloor, obs: &mut impl PoolObserver) {
        self.apply_floor(now, floor, now, obs);
    }

    /// The policy driving the pool.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The demand fit the policy asked for at its last minute tick, if any (see
    /// [`AppPolicy::take_fit`]).
    pub fn take_fit(&mut self) -> Option<FitRequest> {
        self.policy.take_fit()
    }

    /// Hand the policy the forecast it asked for at `asked_at`, and apply the floor it then
    /// wants for the current minute.
    pub fn fitted(
        &mut self,
        now: Millis,
        asked_at: Millis,
        forecast: &[f64],
        obs: &mut impl PoolObserver,
    ) {
        if let Some(floor) = self.policy.fitted(now, asked_at, forecast) {
            self.apply_floor(now, floor, now, obs);
        }
    }

    /// Start the pool's minute ticks at the first minute boundary at or after `now` instead of
    /// at 0: a pool opened when its application is first seen (a region's first request for
    /// it) has no minutes before that to tick through.
    pub fn ticks_from(&mut self, now: Millis) {
        if self.next_tick != Millis::MAX {
            self.next_tick = now.div_ceil(MINUTE_MS) * MINUTE_MS;
        }
    }

    /// When the pool's next own event is due (`Millis::MAX` if none).
    pub fn next_due(&self) -> Millis {
        self.pending
            .map_or(Millis::MAX, |(at, _)| at)
            .min(self.next_tick)
    }

    /// Fire the pool's next own event if it is due at or before `now`: the minute tick before
    /// a pending pre-warm. Returns whether one fired.
    pub fn fire_due(&mut self, now: Millis, obs: &mut impl PoolObserver) -> bool {
        let prewarm = self.pending.map_or(Millis::MAX, |(at, _)| at);
        if self.next_tick <= now && self.next_tick <= prewarm {
            let tick = self.next_tick;
            self.next_tick = tick + MINUTE_MS;
            if let Some(floor) = self.policy.on_minute(tick) {
                self.apply_floor(tick, floor, tick, obs);
            }
            true
        } else if prewarm <= now {
            if let Some((at, floor)) = self.pending.take() {
                self.apply_floor(at, floor, at, obs);
            }
            true
        } else {
            false
        }
    }

    fn new_container_mib(&mut self, at_least_mib: f64) -> u32 {
        let predicted = if self.profiles {
            self.predictor.class_mib()
        } else {
            self.app_mib
        };
        let mib = self.policy.container_mib(predicted);
        if self.profiles {
            mib.max(size_class_for(at_least_mib))
        } else {
            mib
        }
    }

    fn spawn(&mut self, slot: Slot) -> ContainerId {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, id: ContainerId, until: Millis, obs: &mut impl PoolObserver) {
        let c = self.slots[id];
        obs.idle(c.mib, c.idle_since, until);
        obs.removed(id);
        self.free.push(id);
    }

    /// Drop idle containers whose deadline has passed.
    fn purge(&mut self, now: Millis, obs: &mut impl PoolObserver) {
        let mut i = 0;
        while i < self.idle.len() {
            let id = self.idle[i];
            let expires = self.slots[id].expires;
            if expires < now {
                self.idle.remove(i);
                self.remove(id, expires, obs);
            } else {
                i += 1;
            }
        }
    }

    /// Hold `floor`, spawning the missing containers now; they serve from `ready_at`.
    fn apply_floor(
        &mut self,
        now: Millis,
        floor: WarmFloor,
        ready_at: Millis,
        obs: &mut impl PoolObserver,
    ) {
        self.purge(now, obs);
        let mut held = 0;
        // Busy containers first, then the most recently used idle ones.
        let order: Vec<ContainerId> = self
            .busy
            .iter()
            .copied()
            .chain(self.idle.iter().rev().copied())
            .take(floor.containers as usize)
            .collect();
        for id in order {
            let c = &mut self.slots[id];
            c.floor_until = c.floor_until.max(floor.until);
            c.expires = c.expires.max(floor.until);
            held += 1;
        }
        for _ in held..floor.containers {
            let mib = self.new_container_mib(0.0);
            let id = self.spawn(Slot {
                mib,
                expires: floor.until,
                floor_until: floor.until,
                idle_since: now,
                ready_at,
                fresh: true,
                running_mib: 0.0,
                busy_at: usize::MAX,
            });
            self.idle.push(id);
            obs.prewarmed(id, now);
        }
    }

    /// An invocation needing `memory_mib` arrives at `now`: place it. Fire due events first.
    pub fn arrive(
        &mut self,
        now: Millis,
        memory_mib: f64,
        obs: &mut impl PoolObserver,
    ) -> Placement {
        self.policy.on_arrival(now);
        let mut found = None;
        let mut too_small = false;
        let mut k = self.idle.len();
        while k > 0 {
            k -= 1;
            let id = self.idle[k];
            let c = self.slots[id];
            if c.expires < now {
                self.idle.remove(k);
                self.remove(id, c.expires, obs);
            } else if c.ready_at > now {
                // Still starting: a later arrival gets it.
            } else if f64::from(c.mib) < memory_mib {
                too_small = true;
            } else {
                self.idle.remove(k);
                found = Some(id);
                break;
            }
        }
        let placement = match found {
            Some(id) => {
                let c = self.slots[id];
                obs.idle(c.mib, c.idle_since, now);
                let fresh = c.fresh;
                self.slots[id].fresh = false;
                self.slots[id].running_mib = memory_mib;
                if fresh {
                    Placement::Prewarmed(id)
                } else {
                    Placement::Warm(id)
                }
            }
            None => {
                let mib = self.new_container_mib(memory_mib);
                let id = self.spawn(Slot {
                    mib,
                    expires: 0,
                    floor_until: 0,
                    idle_since: now,
                    ready_at: now,
                    fresh: false,
                    running_mib: memory_mib,
                    busy_at: usize::MAX,
                });
                Placement::Cold {
                    id,
                    mib,
                    misfit: too_small,
                }
            }
        };
        let id = match placement {
            Placement::Warm(id) | Placement::Prewarmed(id) | Placement::Cold { id, .. } => id,
        };
        self.slots[id].busy_at = self.busy.len();
        self.busy.push(id);
        if let Some(floor) = self.policy.scale_out(now) {
            self.apply_floor(now, floor, now + self.start_ms, obs);
        }
        placement
    }

    /// The invocation running on container `id` was measured to use `mib` at its peak: what
    /// the size-class profile learns when it completes (instead of the memory asked for at
    /// its arrival, which on a live node is itself a prediction).
    pub fn used(&mut self, id: ContainerId, mib: f64) {
        if let Some(slot) = self.slots.get_mut(id) {
            slot.running_mib = mib;
        }
    }

    /// The invocation on container `id` finished at `now`.
    pub fn complete(&mut self, now: Millis, id: ContainerId, obs: &mut impl PoolObserver) {
        let k = self.slots[id].busy_at;
        if k < self.busy.len() && self.busy[k] == id {
            self.busy.swap_remove(k);
            if let Some(moved) = self.busy.get(k) {
                self.slots[*moved].busy_at = k;
            }
            self.slots[id].busy_at = usize::MAX;
        }
        if self.profiles {
            self.predictor.observe(self.slots[id].running_mib);
        }
        self.slots[id].idle_since = now;
        match self.policy.on_idle(now) {
            IdleAction::KeepAlive { until } => {
                let c = &mut self.slots[id];
                c.expires = c.floor_until.max(until).max(now + self.min_keep);
                self.idle.push(id);
            }
            IdleAction::Prewarm {
                at,
                until,
                containers,
            } => {
                let c = &mut self.slots[id];
                c.expires = c.floor_until;
                if c.expires > now {
                    // A floor still holds this container.
                    self.idle.push(id);
                } else {
                    self.remove(id, now, obs);
                }
                self.pending = Some((at.max(now), WarmFloor { containers, until }));
            }
        }
    }

    /// Remove idle containers whose deadline passed before `now` (the observer hears
    /// `removed` for each). The simulator needs no call: arrivals purge on their way.
    pub fn expire(&mut self, now: Millis, obs: &mut impl PoolObserver) {
        self.purge(now, obs);
    }

    /// Container `id` is gone for a reason outside the policy (it failed to start, or died
    /// during an invocation): forget it without asking the policy anything.
    pub fn discard(&mut self, now: Millis, id: ContainerId, obs: &mut impl PoolObserver) {
        if id >= self.slots.len() || self.free.contains(&id) {
            return;
        }
        if let Some(k) = self.idle.iter().position(|&i| i == id) {
            self.idle.remove(k);
        } else {
            let k = self.slots[id].busy_at;
            if k >= self.busy.len() || self.busy[k] != id {
                return;
            }
            self.busy.swap_remove(k);
            if let Some(moved) = self.busy.get(k) {
                self.slots[*moved].busy_at = k;
            }
            self.slots[id].busy_at = usize::MAX;
            self.slots[id].idle_since = now;
        }
        self.remove(id, now, obs);
    }

    /// Containers busy and idle now.
    pub fn counts(&self) -> (usize, usize) {
        (self.busy.len(), self.idle.len())
    }

    /// Whether an arrival at `now` needing `memory_mib` would find an idle container that
    /// serves it (not expired, started, big enough), as [`Self::arrive`] looks for one; what a
    /// region publishes in its inventory for the Router.
    pub fn has_idle_fit(&self, now: Millis, memory_mib: f64) -> bool {
        self.idle.iter().any(|&id| {
            let c = &self.slots[id];
            c.expires >= now && c.ready_at <= now && f64::from(c.mib) >= memory_mib
        })
    }

    /// The pending pre-warm: when, and the floor it sets.
    pub fn pending(&self) -> Option<(Millis, WarmFloor)> {
        self.pending
    }

    /// The removal deadline of idle container `id` (`None` if it is not idle).
    pub fn idle_until(&self, id: ContainerId) -> Option<Millis> {
        self.idle.contains(&id).then(|| self.slots[id].expires)
    }

    /// The memory of a new container if one were created now.
    pub fn predicted_mib(&mut self) -> u32 {
        self.new_container_mib(0.0)
    }

    /// End of observation at `end`: account the idle time of every idle container.
    pub fn finish(&mut self, end: Millis, obs: &mut impl PoolObserver) {
        for k in 0..self.idle.len() {
            let c = self.slots[self.idle[k]];
            obs.idle(c.mib, c.idle_since, c.expires.min(end));
        }
        self.idle.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keep_alive::FixedKeepAlive;

    #[derive(Default)]
    struct Log {
        idle: Vec<(u32, Millis, Millis)>,
        prewarmed: Vec<Millis>,
        removed: Vec<ContainerId>,
    }

    impl PoolObserver for Log {
        fn idle(&mut self, mib: u32, from: Millis, to: Millis) {
            self.idle.push((mib, from, to));
        }
        fn prewarmed(&mut self, _id: ContainerId, at: Millis) {
            self.prewarmed.push(at);
        }
        fn removed(&mut self, id: ContainerId) {
            self.removed.push(id);
        }
    }

    /// Unloads after every execution and pre-warms two containers 50 s later for 20 s.
    struct PrewarmLater;

    impl AppPolicy for PrewarmLater {
        fn on_arrival(&mut self, _now: Millis) {}
        fn on_idle(&mut self, now: Millis) -> IdleAction {
            IdleAction::Prewarm {
                at: now + 50_000,
                until: now + 70_000,
                containers: 2,
            }
        }
    }

    /// Keeps containers 10 s and asks for two containers at every arrival.
    struct ScaleOut;

    impl AppPolicy for ScaleOut {
        fn on_arrival(&mut self, _now: Millis) {}
        fn on_idle(&mut self, now: Millis) -> IdleAction {
            IdleAction::KeepAlive {
                until: now + 10_000,
            }
        }
        fn scale_out(&mut self, now: Millis) -> Option<WarmFloor> {
            Some(WarmFloor {
                containers: 2,
                until: now + 10_000,
            })
        }
    }

    #[test]
    fn a_pool_opened_late_ticks_from_the_next_minute_and_sees_idle_fits() {
        let policy = crate::Forewarm::new(crate::ForewarmConfig::default(), 128.0);
        let mut pool = AppPool::new(policy, 128.0, false);
        assert_eq!(pool.next_due(), 0, "a pool wanting minutes ticks from 0");
        pool.ticks_from(90_000);
        assert_eq!(pool.next_due(), 120_000);
        pool.ticks_from(120_000);
        assert_eq!(pool.next_due(), 120_000, "on a boundary: that minute");
        let mut log = Log::default();
        let Placement::Cold { id, .. } = pool.arrive(120_000, 64.0, &mut log) else {
            panic!("the first arrival is cold");
        };
        assert!(!pool.has_idle_fit(120_500, 64.0), "busy");
        pool.complete(121_000, id, &mut log);
        assert!(pool.has_idle_fit(121_500, 64.0));
        assert!(!pool.has_idle_fit(121_500, 256.0), "too small");
        // A policy without minutes has no tick to move.
        let mut quiet = AppPool::new(ScaleOut, 128.0, false);
        quiet.ticks_from(90_000);
        assert_eq!(quiet.next_due(), Millis::MAX);
    }

    #[test]
    fn a_scale_out_serves_only_once_started() {
        let mut pool = AppPool::new(ScaleOut, 128.0, false);
        pool.set_start_ms(1_000);
        let mut log = Log::default();
        // The first arrival is cold and starts a second container, ready at 1 s.
        assert!(matches!(
            pool.arrive(0, 64.0, &mut log),
            Placement::Cold { .. }
        ));
        assert_eq!(log.prewarmed, vec![0]);
        // Half a second later it is still starting: cold (and two run, so none is started).
        assert!(matches!(
            pool.arrive(500, 64.0, &mut log),
            Placement::Cold { .. }
        ));
        assert_eq!(log.prewarmed, vec![0]);
        // Once started it serves, and its memory counts from the start.
        assert!(matches!(
            pool.arrive(1_500, 64.0, &mut log),
            Placement::Prewarmed(_)
        ));
        assert_eq!(log.idle, vec![(128, 0, 1_500)]);
    }

    #[test]
    fn keep_alive_makes_the_next_arrival_warm_and_accounts_idle_time() {
        let mut pool = AppPool::new(FixedKeepAlive::new(10_000), 256.0, false);
        let mut log = Log::default();
        let first = pool.arrive(0, 100.0, &mut log);
        assert!(matches!(
            first,
            Placement::Cold {
                mib: 256,
                misfit: false,
                ..
            }
        ));
        let Placement::Cold { id, .. } = first else {
            return;
        };
        pool.complete(1_000, id, &mut log);
        assert_eq!(pool.arrive(5_000, 100.0, &mut log), Placement::Warm(id));
        assert_eq!(log.idle, vec![(256, 1_000, 5_000)]);
        pool.complete(6_000, id, &mut log);
        // Past the 10 s keep-alive: gone, idle until its expiry, and the arrival is cold.
        assert!(matches!(
            pool.arrive(30_000, 100.0, &mut log),
            Placement::Cold { .. }
        ));
        assert_eq!(log.idle[1], (256, 6_000, 16_000));
    }

    #[test]
    fn min_keep_holds_a_short_keep_alive_but_not_an_unload() {
        // A 10 ms keep-alive with a 5 s floor: idle 3 s later, the container is still there.
        let mut pool = AppPool::new(FixedKeepAlive::new(10), 256.0, false);
        pool.set_min_keep(5_000);
        let mut log = Log::default();
        let Placement::Cold { id, .. } = pool.arrive(0, 100.0, &mut log) else {
            panic!("first arrival is cold")
        };
        pool.complete(1_000, id, &mut log);
        assert_eq!(pool.idle_until(id), Some(6_000));
        assert_eq!(pool.arrive(4_000, 100.0, &mut log), Placement::Warm(id));
        pool.complete(4_500, id, &mut log);
        assert!(matches!(
            pool.arrive(9_501, 100.0, &mut log),
            Placement::Cold { .. }
        ));
        // Without the floor the same 3 s gap is a cold start.
        let mut pool = AppPool::new(FixedKeepAlive::new(10), 256.0, false);
        let Placement::Cold { id, .. } = pool.arrive(0, 100.0, &mut log) else {
            panic!("first arrival is cold")
        };
        pool.complete(1_000, id, &mut log);
        assert!(matches!(
            pool.arrive(4_000, 100.0, &mut log),
            Placement::Cold { .. }
        ));
        // An unload decision is carried out at once, floor or not.
        let mut pool = AppPool::new(PrewarmLater, 128.0, false);
        pool.set_min_keep(5_000);
        let Placement::Cold { id, .. } = pool.arrive(0, 64.0, &mut log) else {
            panic!("first arrival is cold")
        };
        pool.complete(1_000, id, &mut log);
        assert_eq!(pool.idle_until(id), None);
    }

    #[test]
    fn a_prewarm_decision_unloads_then_brings_containers_back() {
        let mut pool = AppPool::new(PrewarmLater, 128.0, false);
        let mut log = Log::default();
        let Placement::Cold { id, .. } = pool.arrive(0, 64.0, &mut log) else {
            panic!("first arrival is cold")
        };
        pool.complete(1_000, id, &mut log);
        assert_eq!(log.idle, vec![(128, 1_000, 1_000)], "unloaded at once");
        assert_eq!(pool.next_due(), 51_000);
        assert!(!pool.fire_due(50_999, &mut log));
        assert!(pool.fire_due(51_000, &mut log));
        assert_eq!(log.prewarmed, vec![51_000, 51_000]);
        assert!(matches!(
            pool.arrive(60_000, 64.0, &mut log),
            Placement::Prewarmed(_)
        ));
        assert!(matches!(
            pool.arrive(60_001, 64.0, &mut log),
            Placement::Prewarmed(_)
        ));
        assert!(matches!(
            pool.arrive(60_002, 64.0, &mut log),
            Placement::Cold { .. }
        ));
    }

    #[test]
    fn profiles_size_containers_and_count_misfits() {
        let mut pool = AppPool::new(FixedKeepAlive::new(60_000), 1_000.0, true);
        let mut log = Log::default();
        let mut t = 0;
        // Five small invocations teach the predictor; the next container is 128 MiB.
        for _ in 0..5 {
            let (Placement::Cold { id, .. } | Placement::Warm(id)) =
                pool.arrive(t, 100.0, &mut log)
            else {
                panic!("unexpected placement")
            };
            pool.complete(t + 10, id, &mut log);
            t += 100;
        }
        // The one warm container is 1024 MiB (declared); a concurrent second one is sized small.
        let Placement::Warm(big) = pool.arrive(t, 100.0, &mut log) else {
            panic!("warm")
        };
        let Placement::Cold { id: small, mib, .. } = pool.arrive(t + 1, 100.0, &mut log) else {
            panic!("cold")
        };
        assert_eq!(mib, 128);
        pool.complete(t + 5, small, &mut log);
        // Only the small one is idle now: a 900 MiB invocation does not fit it.
        assert!(matches!(
            pool.arrive(t + 6, 900.0, &mut log),
            Placement::Cold {
                misfit: true,
                mib: 1024,
                ..
            }
        ));
        pool.complete(t + 7, big, &mut log);
    }

    #[test]
    fn expire_and_discard_report_removed_containers() {
        let mut pool = AppPool::new(FixedKeepAlive::new(10_000), 128.0, false);
        let mut log = Log::default();
        let Placement::Cold { id: a, .. } = pool.arrive(0, 64.0, &mut log) else {
            panic!("cold")
        };
        let Placement::Cold { id: b, .. } = pool.arrive(1, 64.0, &mut log) else {
            panic!("cold")
        };
        pool.complete(100, a, &mut log);
        assert_eq!(pool.counts(), (1, 1));
        assert_eq!(pool.idle_until(a), Some(10_100));
        pool.expire(10_100, &mut log);
        assert!(log.removed.is_empty(), "not before its deadline");
        pool.expire(10_101, &mut log);
        assert_eq!(log.removed, vec![a]);
        // A busy container that died is discarded without a policy decision.
        pool.discard(10_200, b, &mut log);
        assert_eq!(log.removed, vec![a, b]);
        assert_eq!(pool.counts(), (0, 0));
        pool.discard(10_300, b, &mut log);
        assert_eq!(log.removed.len(), 2, "discarding twice is a no-op");
    }
}
