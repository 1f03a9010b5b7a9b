//! FaasCache's Greedy-Dual keep-alive (Fuerst & Sharma, "FaasCache: Keeping Serverless
//! Computing Alive with Greedy-Dual Caching", ASPLOS'21), as a cache of idle containers shared
//! by every application under one memory budget.
//!
//! Unlike the [`AppPolicy`](crate::AppPolicy) baselines it is not per application: idle
//! containers of all applications compete for one budget, so it needs a caller with one clock
//! over all applications (the simulator's `faascache` engine). It stays pure: the caller
//! reports arrivals and containers turning idle, in time order; the cache answers which idle
//! container serves an arrival and which idle containers are evicted.
//!
//! Each idle container has a priority `clock + frequency × cost / size`: `frequency` counts the
//! application's invocations since it last had no container, `cost` is the cold-start time it
//! saves, `size` its memory. When the idle containers exceed the budget, the lowest priority is
//! evicted first and the clock rises to its priority, so containers that have sat idle through
//! many evictions age out. No timer removes a container: only memory pressure does.
//!
//! [`FaasCache::without_frequency`] drops the frequency term (`clock + cost / size`, the
//! Greedy-Dual-Size of Cao & Irani): an ablation, not FaasCache, kept because the unbounded
//! frequency is what decides FaasCache's results on these traces (`docs/policies.md`).

use std::collections::BTreeSet;

use crate::policy::Millis;

/// An idle container the cache holds (or has just let go of).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CachedContainer {
    /// The application (the caller's index).
    pub app: usize,
    /// Its memory.
    pub mib: u32,
    /// When it turned idle.
    pub idle_since: Millis,
    /// Its priority when it turned idle.
    pub priority: f64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    container: CachedContainer,
    /// Key in `order`.
    key: (u64, u64),
}

/// The shared keep-alive cache.
#[derive(Debug, Clone)]
pub struct FaasCache {
    budget_mib: f64,
    cost_ms: f64,
    /// Whether priorities weigh the application's frequency (FaasCache) or not (GDS).
    weigh_frequency: bool,
    clock: f64,
    idle_mib: f64,
    seq: u64,
    /// Invocations since the application last had no container.
    frequency: Vec<u64>,
    /// Containers (busy or idle) per application.
    live: Vec<u32>,
    /// Idle containers per application, least recently idle first (the last is the one with
    /// the highest priority: clock and frequency only grow while an application has containers).
    idle: Vec<Vec<Entry>>,
    /// (priority bits, sequence) of every idle container, lowest first; priorities are
    /// non-negative, so their bit patterns order like the numbers.
    order: BTreeSet<((u64, u64), usize)>,
}

impl FaasCache {
    /// A cache for `apps` applications holding at most `budget_mib` of idle containers; a cold
    /// start costs `cold_start_ms` (the `cost` of every priority).
    pub fn new(apps: usize, budget_mib: f64, cold_start_ms: Millis) -> Self {
        Self {
            budget_mib,
            cost_ms: cold_start_ms.max(1) as f64,
            weigh_frequency: true,
            clock: 0.0,
            idle_mib: 0.0,
            seq: 0,
            frequency: vec![0; apps],
            live: vec![0; apps],
            idle: vec![Vec::new(); apps],
            order: BTreeSet::new(),
        }
    }

    /// The same cache with priorities `clock + cost / size` (Greedy-Dual-Size, no frequency).
    pub fn without_frequency(mut self) -> Self {
        self.weigh_frequency = false;
        self
    }

    /// The Greedy-Dual clock: the priority of the last eviction.
    pub fn clock(&self) -> f64 {
        self.clock
    }

    /// Idle memory held now.
    pub fn idle_mib(&self) -> f64 {
        self.idle_mib
    }

    /// Invocations of `app` counted towards its priority.
    pub fn frequency(&self, app: usize) -> u64 {
        self.frequency[app]
    }

    /// An invocation of `app` arrives: the idle container that serves it (the application's
    /// most recently idle one, now busy), or `None` for a cold start (the caller creates a
    /// container, which now counts as the application's).
    pub fn arrive(&mut self, app: usize) -> Option<CachedContainer> {
        self.frequency[app] += 1;
        match self.idle[app].pop() {
            Some(entry) => {
                self.order.remove(&(entry.key, app));
                self.idle_mib -= f64::from(entry.container.mib);
                Some(entry.container)
            }
            None => {
                self.live[app] += 1;
                None
            }
        }
    }

    /// A container of `app` holding `mib` turned idle at `now`: cache it, then evict the lowest
    /// priorities (possibly this one) until the idle containers fit the budget. Returns the
    /// evicted containers, lowest priority first.
    pub fn idle(&mut self, app: usize, mib: u32, now: Millis) -> Vec<CachedContainer> {
        let frequency = if self.weigh_frequency {
            self.frequency[app] as f64
        } else {
            1.0
        };
        let priority = self.clock + frequency * self.cost_ms / f64::from(mib);
        let key = (priority.to_bits(), self.seq);
        self.seq += 1;
        self.order.insert((key, app));
        self.idle[app].push(Entry {
            container: CachedContainer {
                app,
                mib,
                idle_since: now,
                priority,
            },
            key,
        });
        self.idle_mib += f64::from(mib);
        let mut evicted = Vec::new();
        while self.idle_mib > self.budget_mib {
            let Some((key, victim)) = self.order.pop_first() else {
                break;
            };
            let stack = &mut self.idle[victim];
            let Some(at) = stack.iter().position(|e| e.key == key) else {
                continue;
            };
            let entry = stack.remove(at);
            self.idle_mib -= f64::from(entry.container.mib);
            self.clock = self.clock.max(entry.container.priority);
            self.live[victim] -= 1;
            if self.live[victim] == 0 {
                self.frequency[victim] = 0;
            }
            evicted.push(entry.container);
        }
        evicted
    }

    /// Every idle container still cached, for the end of the observation.
    pub fn cached(&self) -> impl Iterator<Item = &CachedContainer> {
        self.idle.iter().flatten().map(|e| &e.container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` invocations of `app` one after the other on one container, which stays busy.
    fn invoke(c: &mut FaasCache, app: usize, mib: u32, n: u32) {
        assert_eq!(c.arrive(app), None, "the first is cold");
        for _ in 1..n {
            assert!(c.idle(app, mib, 0).is_empty());
            assert!(c.arrive(app).is_some(), "then warm");
        }
    }

    #[test]
    fn an_arrival_reuses_the_most_recently_idle_container_and_counts_frequency() {
        let mut c = FaasCache::new(1, 1_000.0, 1_000);
        assert_eq!(c.arrive(0), None);
        assert_eq!(c.arrive(0), None);
        assert!(c.idle(0, 100, 10).is_empty());
        assert!(c.idle(0, 100, 20).is_empty());
        assert_eq!(c.frequency(0), 2);
        let warm = c.arrive(0).expect("warm");
        assert_eq!(warm.idle_since, 20);
        assert_eq!(c.frequency(0), 3);
        assert_eq!(c.idle_mib(), 100.0);
    }

    #[test]
    fn evicts_the_lowest_priority_and_raises_the_clock_to_it() {
        // Budget for two 100 MiB containers. App 0 invoked 3 times, app 1 once, app 2 twice.
        let mut c = FaasCache::new(3, 200.0, 1_000);
        invoke(&mut c, 0, 100, 3);
        invoke(&mut c, 1, 100, 1);
        invoke(&mut c, 2, 100, 2);
        // Priorities: app 0: 3·1000/100 = 30, app 1: 10, app 2: 20.
        assert!(c.idle(0, 100, 1).is_empty());
        assert!(c.idle(2, 100, 2).is_empty());
        let evicted = c.idle(1, 100, 3);
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].app, 1, "the least frequent goes first");
        assert_eq!(c.clock(), 10.0);
        // App 1 has no container left: its frequency starts again.
        assert_eq!(c.frequency(1), 0);
        // A new container of app 1 has priority clock + 1·10 = 20: it ties with app 2's,
        // which was cached first and goes first.
        c.arrive(1);
        let evicted = c.idle(1, 100, 4);
        assert_eq!(evicted[0].app, 2);
        assert_eq!(c.clock(), 20.0);
        assert_eq!(c.frequency(2), 0);
        assert_eq!(c.frequency(0), 3, "app 0 keeps its container and its count");
    }

    #[test]
    fn size_lowers_priority_and_a_newcomer_can_be_refused() {
        // One 1000 MiB container of a frequent app vs a small rare one: per MiB the small one
        // saves more, so the big one is evicted though it is more frequent.
        let mut c = FaasCache::new(2, 1_000.0, 1_000);
        invoke(&mut c, 0, 1_000, 5);
        invoke(&mut c, 1, 100, 1);
        assert!(c.idle(0, 1_000, 1).is_empty());
        let evicted = c.idle(1, 100, 2);
        assert_eq!(evicted.iter().map(|e| e.app).collect::<Vec<_>>(), vec![0]);
        assert_eq!(c.clock(), 5.0);
        // A 1000 MiB container with priority 5 + 1 = 6 < app 1's 10: refused at once.
        c.arrive(0);
        let evicted = c.idle(0, 1_000, 3);
        assert_eq!(evicted.len(), 1);
        assert_eq!((evicted[0].app, evicted[0].idle_since), (0, 3));
        assert_eq!(c.clock(), 6.0);
        assert_eq!(c.cached().count(), 1);
    }

    #[test]
    fn without_frequency_the_frequent_app_has_no_edge() {
        // Same memory, app 0 invoked 5 times, app 1 once: with frequency app 1 goes; without
        // it the two tie and the older (app 0's) goes.
        for (weigh, evicted_app) in [(true, 1), (false, 0)] {
            let c = FaasCache::new(2, 100.0, 1_000);
            let mut c = if weigh { c } else { c.without_frequency() };
            invoke(&mut c, 0, 100, 5);
            invoke(&mut c, 1, 100, 1);
            assert!(c.idle(0, 100, 1).is_empty());
            let evicted = c.idle(1, 100, 2);
            assert_eq!(evicted[0].app, evicted_app, "weigh frequency: {weigh}");
        }
    }
}
