//! The node's in-flight slots and each tenant's fair share of them.
//!
//! A node serves at most `max_inflight` invocations at once (queued ones included: each holds
//! a connection and a task). While fewer than half are taken, any tenant may take more; past
//! half, a tenant holding its fair share (the slots divided by the competing tenants) is
//! refused until it holds less, so one tenant's burst cannot take the slots its neighbours
//! need. A tenant competes while it has something in flight or asked within [`RECENT`]: a
//! neighbour that sends one request after another has nothing in flight between them, and
//! must not lose its share to a flood in those gaps (chaos S10, `chaos/noisy-tenant.py`).
//! Refused requests never reached a container: the answer (503 with `Retry-After`) says so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a tenant that asked for a slot counts as competing for the node.
pub const RECENT: Duration = Duration::from_secs(5);

/// Why a request got no slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Every slot of the node is taken.
    #[error("{slots} invocations in flight on this node")]
    Node {
        /// The node's slots.
        slots: usize,
    },
    /// The node is contended and the tenant holds its fair share.
    #[error(
        "tenant {tenant} holds {held} of this node's {slots} in-flight slots, its fair share \
         while {tenants} tenants compete"
    )]
    Tenant {
        /// The tenant.
        tenant: String,
        /// Slots it holds.
        held: usize,
        /// The node's slots.
        slots: usize,
        /// Tenants with something in flight, it included.
        tenants: usize,
    },
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_tenant: HashMap<String, usize>,
    /// When each tenant last asked (entries older than [`RECENT`] are dropped now and then).
    asked: HashMap<String, Instant>,
    pruned: Option<Instant>,
}

impl Held {
    /// Notes that `tenant` asks at `now`; returns how many tenants compete, it included.
    fn compete(&mut self, tenant: &str, now: Instant) -> usize {
        if self
            .pruned
            .is_none_or(|p| now.saturating_duration_since(p) >= RECENT)
        {
            self.asked
                .retain(|_, at| now.saturating_duration_since(*at) < RECENT);
            self.pruned = Some(now);
        }
        self.asked.insert(tenant.to_owned(), now);
        let recent = |at: &Instant| now.saturating_duration_since(*at) < RECENT;
        let asking = self.asked.values().filter(|at| recent(at)).count();
        let only_in_flight = self
            .by_tenant
            .keys()
            .filter(|t| !self.asked.get(*t).is_some_and(recent))
            .count();
        asking + only_in_flight
    }
}

/// The node's in-flight slots, by tenant.
#[derive(Debug)]
pub struct Slots {
    slots: usize,
    held: Mutex<Held>,
}

/// One slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    tenant: String,
}

impl Slots {
    /// `slots` in-flight slots, none taken.
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: slots.max(1),
            held: Mutex::new(Held::default()),
        })
    }

    /// Slots taken now.
    pub fn in_flight(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for `tenant`, or why not.
    pub fn take(self: &Arc<Self>, tenant: &str) -> Result<Slot, Refused> {
        self.take_at(tenant, Instant::now())
    }

    /// A slot for `tenant` asking at `now`, or why not.
    pub fn take_at(self: &Arc<Self>, tenant: &str, now: Instant) -> Result<Slot, Refused> {
        let mut held = self.lock();
        let tenants = held.compete(tenant, now);
        if held.total >= self.slots {
            return Err(Refused::Node { slots: self.slots });
        }
        let mine = held.by_tenant.get(tenant).copied().unwrap_or(0);
        let share = (self.slots / tenants).max(1);
        if held.total >= self.slots / 2 && mine >= share {
            return Err(Refused::Tenant {
                tenant: tenant.to_owned(),
                held: mine,
                slots: self.slots,
                tenants,
            });
        }
        held.total += 1;
        *held.by_tenant.entry(tenant.to_owned()).or_insert(0) += 1;
        Ok(Slot {
            slots: self.clone(),
            tenant: tenant.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.lock();
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_tenant.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                held.by_tenant.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t01_a_lone_tenant_may_take_every_slot_and_gets_them_back() {
        let slots = Slots::new(4);
        let taken: Vec<Slot> = (0..4).map(|_| slots.take("a").expect("a slot")).collect();
        assert_eq!(
            slots.take("a").expect_err("every slot taken"),
            Refused::Node { slots: 4 }
        );
        assert_eq!(slots.in_flight(), 4);
        drop(taken);
        assert_eq!(slots.in_flight(), 0);
        assert!(slots.take("a").is_ok());
    }

    #[test]
    fn t02_past_half_a_tenant_at_its_share_yields_to_its_neighbour() {
        let slots = Slots::new(8);
        let t0 = Instant::now();
        // The noisy tenant takes 6 of 8 while alone (under half taken it may go on).
        let noisy: Vec<Slot> = (0..6)
            .map(|_| slots.take_at("noisy", t0).expect("a slot"))
            .collect();
        // A neighbour arrives: two tenants, a share of 4 each; the neighbour holds none.
        let quiet = slots
            .take_at("quiet", t0)
            .expect("the neighbour gets a slot");
        // The node is past half and noisy holds more than its share: refused.
        assert_eq!(
            slots.take_at("noisy", t0).expect_err("over its share"),
            Refused::Tenant {
                tenant: "noisy".into(),
                held: 6,
                slots: 8,
                tenants: 2
            }
        );
        // The neighbour still gets the last slot.
        let quiet2 = slots.take_at("quiet", t0).expect("the neighbour's second");
        assert_eq!(
            slots.take_at("quiet", t0).expect_err("every slot taken"),
            Refused::Node { slots: 8 }
        );
        drop((noisy, quiet, quiet2));
        assert_eq!(slots.in_flight(), 0);
    }

    #[test]
    fn t03_a_neighbour_between_requests_still_competes_for_a_while() {
        let slots = Slots::new(8);
        let t0 = Instant::now();
        // The quiet tenant sends one request after another: nothing in flight in between.
        drop(slots.take_at("quiet", t0).expect("a slot"));
        // A flood in that gap gets half the node (4 of 8 slots: two tenants compete), not
        // all of it.
        let noisy: Vec<Slot> = (0..4)
            .map(|_| slots.take_at("noisy", t0).expect("its share"))
            .collect();
        assert!(matches!(
            slots.take_at("noisy", t0),
            Err(Refused::Tenant { tenants: 2, .. })
        ));
        // The neighbour's next request finds a slot.
        let quiet = slots.take_at("quiet", t0).expect("the neighbour's slot");
        drop(quiet);
        // Once the neighbour has been gone for RECENT, the flood may take the rest.
        let later = t0 + RECENT;
        let more: Vec<Slot> = (0..4)
            .map(|_| slots.take_at("noisy", later).expect("alone again"))
            .collect();
        drop((noisy, more));
        assert_eq!(slots.in_flight(), 0);
    }
}
