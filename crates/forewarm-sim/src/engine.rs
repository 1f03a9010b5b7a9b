//! The per-application discrete-event engine: one virtual clock, one policy, one workload.
//!
//! Events at the same millisecond are handled in this order: completions, the minute tick,
//! a due pre-warm, then the arrival. Concurrency is one invocation per container.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use forewarm_policy::{
    AppPolicy, IdleAction, MINUTE_MS, Millis, ProfilePredictor, WarmFloor, size_class_for,
};

use crate::workload::{Invocation, Workload};

/// How an invocation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    /// On a container spawned on the request path.
    Cold,
    /// On an idle container that served before.
    Warm,
    /// On a container spawned by a prediction, its first invocation.
    Prewarmed,
}

/// Settings the engine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimParams {
    /// Nothing before this time is counted (the warm-up).
    pub measure_from: Millis,
    /// End of the simulated window.
    pub end: Millis,
    /// Spawn-to-serve time of a cold container.
    pub cold_start_ms: Millis,
    /// Size containers from the predicted profile and count misfits.
    pub profiles: bool,
}

/// What happened to one application under one policy, within the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AppOutcome {
    /// Invocations that arrived in the measured window.
    pub invocations: u64,
    /// Of which cold.
    pub cold_starts: u64,
    /// Of which on a pre-warmed container's first use.
    pub prewarmed_starts: u64,
    /// Idle container memory-time, MiB·ms.
    pub wasted_mib_ms: f64,
    /// Containers spawned by prediction.
    pub prewarms: u64,
    /// Invocations that found only warm containers too small for them.
    pub misfits: u64,
}

impl AppOutcome {
    /// Cold starts as a percentage of invocations (`None` without invocations).
    pub fn cold_start_pct(&self) -> Option<f64> {
        (self.invocations > 0).then(|| 100.0 * self.cold_starts as f64 / self.invocations as f64)
    }
}

#[derive(Debug, Clone, Copy)]
struct Container {
    mib: u32,
    /// Removal time once idle: the later of its own keep-alive and any floor holding it.
    expires: Millis,
    /// The latest deadline a floor gave it (a new idle decision does not shorten it).
    floor_until: Millis,
    idle_since: Millis,
    /// Spawned by a prediction and not used yet.
    fresh: bool,
    /// Memory of the invocation it runs (for the profile predictor).
    running_mib: f64,
}

/// Replays one workload through one policy.
pub struct AppSim<'p> {
    policy: &'p mut dyn AppPolicy,
    params: SimParams,
    predictor: ProfilePredictor,
    app_mib: u32,
    slots: Vec<Container>,
    free: Vec<usize>,
    idle: Vec<usize>,
    busy: BinaryHeap<Reverse<(Millis, usize)>>,
    pending: Option<(Millis, WarmFloor)>,
    next_tick: Millis,
    out: AppOutcome,
}

impl std::fmt::Debug for AppSim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSim")
            .field("params", &self.params)
            .field("containers", &(self.slots.len() - self.free.len()))
            .field("outcome", &self.out)
            .finish_non_exhaustive()
    }
}

impl<'p> AppSim<'p> {
    /// Run `workload` through `policy` and report the measured outcome.
    pub fn run(
        policy: &'p mut dyn AppPolicy,
        workload: &Workload,
        params: SimParams,
    ) -> AppOutcome {
        let next_tick = if policy.wants_minutes() {
            0
        } else {
            Millis::MAX
        };
        let mut sim = AppSim {
            policy,
            params,
            predictor: ProfilePredictor::new(workload.app_memory_mib),
            app_mib: workload.app_memory_mib.ceil().max(1.0) as u32,
            slots: Vec::new(),
            free: Vec::new(),
            idle: Vec::new(),
            busy: BinaryHeap::new(),
            pending: None,
            next_tick,
            out: AppOutcome::default(),
        };
        for inv in &workload.invocations {
            if inv.arrival >= params.end {
                break;
            }
            sim.advance(inv.arrival);
            sim.arrive(inv);
        }
        sim.advance(params.end);
        sim.finish();
        sim.out
    }

    fn measured(&self, t: Millis) -> bool {
        t >= self.params.measure_from && t < self.params.end
    }

    /// Count idle memory-time over `[from, to)` clipped to the measured window.
    fn waste(&mut self, mib: u32, from: Millis, to: Millis) {
        let from = from.max(self.params.measure_from);
        let to = to.min(self.params.end);
        if to > from {
            self.out.wasted_mib_ms += f64::from(mib) * (to - from) as f64;
        }
    }

    fn new_container_mib(&mut self, at_least_mib: f64) -> u32 {
        let predicted = if self.params.profiles {
            self.predictor.class_mib()
        } else {
            self.app_mib
        };
        let mib = self.policy.container_mib(predicted);
        if self.params.profiles {
            mib.max(size_class_for(at_least_mib))
        } else {
            mib
        }
    }

    fn spawn(&mut self, c: Container) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = c;
                i
            }
            None => {
                self.slots.push(c);
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, id: usize, until: Millis) {
        let c = self.slots[id];
        self.waste(c.mib, c.idle_since, until);
        self.free.push(id);
    }

    fn advance(&mut self, t: Millis) {
        loop {
            let completion = self.busy.peek().map_or(Millis::MAX, |Reverse((e, _))| *e);
            let prewarm = self.pending.map_or(Millis::MAX, |(at, _)| at);
            let next = completion.min(prewarm).min(self.next_tick);
            if next > t || next == Millis::MAX {
                return;
            }
            if completion == next {
                let Some(Reverse((end, id))) = self.busy.pop() else {
                    return;
                };
                self.complete(end, id);
            } else if self.next_tick == next {
                self.tick(next);
            } else if let Some((at, floor)) = self.pending.take() {
                self.apply_floor(at, floor);
            }
        }
    }

    fn complete(&mut self, now: Millis, id: usize) {
        if self.params.profiles {
            self.predictor.observe(self.slots[id].running_mib);
        }
        let c = &mut self.slots[id];
        c.idle_since = now;
        match self.policy.on_idle(now) {
            IdleAction::KeepAlive { until } => {
                c.expires = c.floor_until.max(until);
                self.idle.push(id);
            }
            IdleAction::Prewarm {
                at,
                until,
                containers,
            } => {
                c.expires = c.floor_until;
                if c.expires > now {
                    // A floor still holds this container.
                    self.idle.push(id);
                } else {
                    self.remove(id, now);
                }
                let floor = WarmFloor { containers, until };
                self.pending = Some((at.max(now), floor));
            }
        }
    }

    /// Drop idle containers whose deadline has passed.
    fn purge(&mut self, now: Millis) {
        let mut i = 0;
        while i < self.idle.len() {
            let id = self.idle[i];
            let expires = self.slots[id].expires;
            if expires < now {
                self.idle.remove(i);
                self.remove(id, expires);
            } else {
                i += 1;
            }
        }
    }

    fn tick(&mut self, now: Millis) {
        self.next_tick = now + MINUTE_MS;
        if let Some(floor) = self.policy.on_minute(now) {
            self.apply_floor(now, floor);
        }
    }

    fn apply_floor(&mut self, now: Millis, floor: WarmFloor) {
        self.purge(now);
        let mut held = 0;
        for Reverse((_, id)) in self.busy.iter() {
            if held == floor.containers {
                break;
            }
            let c = &mut self.slots[*id];
            c.floor_until = c.floor_until.max(floor.until);
            c.expires = c.expires.max(floor.until);
            held += 1;
        }
        // Most recently used idle containers first.
        for k in (0..self.idle.len()).rev() {
            if held == floor.containers {
                break;
            }
            let c = &mut self.slots[self.idle[k]];
            c.floor_until = c.floor_until.max(floor.until);
            c.expires = c.expires.max(floor.until);
            held += 1;
        }
        for _ in held..floor.containers {
            let mib = self.new_container_mib(0.0);
            let id = self.spawn(Container {
                mib,
                expires: floor.until,
                floor_until: floor.until,
                idle_since: now,
                fresh: true,
                running_mib: 0.0,
            });
            self.idle.push(id);
            if self.measured(now) {
                self.out.prewarms += 1;
            }
        }
    }

    fn arrive(&mut self, inv: &Invocation) {
        let now = inv.arrival;
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
                self.remove(id, c.expires);
            } else if f64::from(c.mib) < inv.memory_mib {
                too_small = true;
            } else {
                self.idle.remove(k);
                found = Some(id);
                break;
            }
        }
        let measured = self.measured(now);
        let kind = match found {
            Some(id) => {
                let c = self.slots[id];
                self.waste(c.mib, c.idle_since, now);
                let c = &mut self.slots[id];
                let kind = if c.fresh {
                    StartKind::Prewarmed
                } else {
                    StartKind::Warm
                };
                c.running_mib = inv.memory_mib;
                c.fresh = false;
                self.busy.push(Reverse((now + inv.duration_ms, id)));
                kind
            }
            None => {
                let mib = self.new_container_mib(inv.memory_mib);
                let id = self.spawn(Container {
                    mib,
                    expires: 0,
                    floor_until: 0,
                    idle_since: now,
                    fresh: false,
                    running_mib: inv.memory_mib,
                });
                let ready = now + self.params.cold_start_ms;
                self.busy.push(Reverse((ready + inv.duration_ms, id)));
                if measured && too_small {
                    self.out.misfits += 1;
                }
                StartKind::Cold
            }
        };
        if measured {
            self.out.invocations += 1;
            match kind {
                StartKind::Cold => self.out.cold_starts += 1,
                StartKind::Prewarmed => self.out.prewarmed_starts += 1,
                StartKind::Warm => {}
            }
        }
    }

    fn finish(&mut self) {
        for k in 0..self.idle.len() {
            let c = self.slots[self.idle[k]];
            self.waste(c.mib, c.idle_since, c.expires.min(self.params.end));
        }
        self.idle.clear();
    }
}
