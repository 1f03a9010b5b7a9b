//! The node's in-flight slots and each tenant's fair share of them.
//!
//! A node serves at most `max_inflight` invocations at once (queued ones included: each holds
//! a connection and a task). While fewer than half are taken, any tenant may take more; past
//! half, a tenant holding its fair share (the slots divided by the competing tenants) is
//! refused until it holds less, so one tenant's burst cannot take the slots its neighbours
//! need. A tenant competes while it has something in flight or asked within [`RECENT`]: a
//! neighbour that sends one request after another has nothing in flight between them, and
//! must not lose its share to a flood in those gaps (chaos S10, `chaos/noisy-tenant.py`).
//!
//! A request that finds no slot for it waits ([`Slots::acquire`], up to its deadline and
//! [`MAX_WAITING`] requests per node) instead of being refused at once: a slot given back goes
//! to the longest-waiting request allowed to take it, so a tenant over its share waits behind
//! its own requests while a neighbour under its share goes first. Refusing at once invited a
//! flooding client to ask again at once: thousands of refusals a second, each costing the
//! node the CPU its neighbours' requests need (S10). A waiting request costs a connection and
//! a parked task. Refused requests (the deadline passed, or the node's waiting room is full)
//! never reached a container: the answer (503 with `Retry-After`) says so.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How long a tenant that asked for a slot counts as competing for the node.
pub const RECENT: Duration = Duration::from_secs(5);

/// Most requests waiting for a slot on one node; past it a request without a slot is refused
/// at once.
pub const MAX_WAITING: usize = 10_000;

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
    /// Requests waiting for a slot, oldest first.
    waiting: VecDeque<Waiter>,
    next_ticket: u64,
}

/// A request waiting for a slot: told when one is taken for it.
#[derive(Debug)]
struct Waiter {
    ticket: u64,
    tenant: String,
    granted: oneshot::Sender<()>,
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
        self.competing(now)
    }

    /// How many tenants compete at `now`: asked within [`RECENT`] or hold a slot.
    fn competing(&self, now: Instant) -> usize {
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

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for `tenant`, or why not.
    pub fn take(self: &Arc<Self>, tenant: &str) -> Result<Slot, Refused> {
        self.take_at(tenant, Instant::now())
    }

    /// A slot for `tenant` asking at `now`, or why not (at once: no waiting).
    pub fn take_at(self: &Arc<Self>, tenant: &str, now: Instant) -> Result<Slot, Refused> {
        let mut held = self.lock();
        let tenants = held.compete(tenant, now);
        self.check(&held, tenant, tenants)?;
        held.count(tenant);
        Ok(self.slot(tenant))
    }

    /// A slot for `tenant`, waiting for one up to `deadline` (oldest first among those allowed
    /// one), or why not.
    pub async fn acquire(
        self: &Arc<Self>,
        tenant: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Slot, Refused> {
        let (ticket, mut granted, refused) = {
            let mut held = self.lock();
            let tenants = held.compete(tenant, Instant::now());
            let refused = match self.check(&held, tenant, tenants) {
                Ok(()) => {
                    held.count(tenant);
                    return Ok(self.slot(tenant));
                }
                Err(refused) => refused,
            };
            if held.waiting.len() >= MAX_WAITING {
                return Err(refused);
            }
            let (tx, rx) = oneshot::channel();
            let ticket = held.next_ticket;
            held.next_ticket += 1;
            held.waiting.push_back(Waiter {
                ticket,
                tenant: tenant.to_owned(),
                granted: tx,
            });
            (ticket, rx, refused)
        };
        // The receiver lives on past the deadline: a slot taken for it meanwhile is its.
        if let Ok(Ok(())) = tokio::time::timeout_at(deadline, &mut granted).await {
            return Ok(self.slot(tenant));
        }
        let mut held = self.lock();
        match held.waiting.iter().position(|w| w.ticket == ticket) {
            Some(i) => {
                held.waiting.remove(i);
                Err(refused)
            }
            // Taken for it as the deadline passed: it is its.
            None => Ok(self.slot(tenant)),
        }
    }

    /// Why `tenant` may not take a slot now, if it may not, with `tenants` competing.
    fn check(&self, held: &Held, tenant: &str, tenants: usize) -> Result<(), Refused> {
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
        Ok(())
    }

    /// The slot counted for `tenant`.
    fn slot(self: &Arc<Self>, tenant: &str) -> Slot {
        Slot {
            slots: self.clone(),
            tenant: tenant.to_owned(),
        }
    }

    /// `tenant` gives a slot back: it goes to the oldest waiting request allowed to take it.
    fn give_back(&self, tenant: &str) {
        let mut from = tenant.to_owned();
        loop {
            let next = {
                let mut held = self.lock();
                held.uncount(&from);
                self.next_waiter(&mut held)
            };
            let Some(waiter) = next else { return };
            if waiter.granted.send(()).is_ok() {
                return;
            }
            // It went away (its client left) as it was chosen: the slot goes on.
            from = waiter.tenant;
        }
    }

    /// The oldest waiting request allowed a slot now, counted; requests whose client left are
    /// dropped on the way. Usually the first is allowed: a scan goes past the front only while
    /// the waiters there belong to tenants over their share.
    fn next_waiter(&self, held: &mut Held) -> Option<Waiter> {
        let tenants = held.competing(Instant::now()).max(1);
        let mut i = 0;
        while i < held.waiting.len() {
            if held.waiting[i].granted.is_closed() {
                held.waiting.remove(i);
            } else if self.check(held, &held.waiting[i].tenant, tenants).is_ok() {
                let waiter = held.waiting.remove(i)?;
                held.count(&waiter.tenant);
                return Some(waiter);
            } else {
                i += 1;
            }
        }
        None
    }
}

impl Held {
    fn count(&mut self, tenant: &str) {
        self.total += 1;
        *self.by_tenant.entry(tenant.to_owned()).or_insert(0) += 1;
    }

    fn uncount(&mut self, tenant: &str) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.by_tenant.get_mut(tenant) {
            *n -= 1;
            if *n == 0 {
                self.by_tenant.remove(tenant);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.give_back(&self.tenant);
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

    /// Spawns `tenant`'s wait for a slot (10 s at most) and returns once it waits.
    async fn wait_for_slot(
        slots: &Arc<Slots>,
        tenant: &'static str,
    ) -> tokio::task::JoinHandle<Result<Slot, Refused>> {
        let before = slots.waiting();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let s = slots.clone();
        let handle = tokio::spawn(async move { s.acquire(tenant, deadline).await });
        while slots.waiting() == before {
            tokio::task::yield_now().await;
        }
        handle
    }

    #[tokio::test(start_paused = true)]
    async fn t04_a_request_without_a_slot_waits_and_gets_the_first_given_back() {
        let slots = Slots::new(2);
        let taken = [slots.take("a").expect("1"), slots.take("a").expect("2")];
        let waiter = wait_for_slot(&slots, "a").await;
        let [first, second] = taken;
        drop(first);
        let third = waiter.await.expect("task").expect("the slot given back");
        assert_eq!((slots.in_flight(), slots.waiting()), (2, 0));
        drop((second, third));
        assert_eq!(slots.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn t05_past_its_deadline_a_waiting_request_is_refused_and_leaves() {
        let slots = Slots::new(1);
        let held = slots.take("a").expect("the slot");
        let waiter = wait_for_slot(&slots, "a").await;
        // Time runs on (paused clock): the deadline passes with nothing given back.
        let refused = waiter
            .await
            .expect("task")
            .expect_err("no slot by the deadline");
        assert_eq!(refused, Refused::Node { slots: 1 });
        assert_eq!((slots.in_flight(), slots.waiting()), (1, 0));
        drop(held);
        assert_eq!(slots.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn t06_a_slot_given_back_goes_to_the_oldest_waiter_allowed_it() {
        let slots = Slots::new(4);
        // Alone, noisy takes every slot; then it and a neighbour wait, noisy first.
        let mut noisy: Vec<Slot> = (0..4)
            .map(|_| slots.take("noisy").expect("a slot"))
            .collect();
        let noisy_waiter = wait_for_slot(&slots, "noisy").await;
        let quiet_waiter = wait_for_slot(&slots, "quiet").await;
        // Noisy gives one back: it still holds 3 of 4, over its share of 2 with two tenants
        // competing, so the neighbour behind it gets the slot.
        drop(noisy.pop());
        let quiet = quiet_waiter
            .await
            .expect("task")
            .expect("the neighbour's slot");
        assert_eq!((slots.in_flight(), slots.waiting()), (4, 1));
        assert!(!noisy_waiter.is_finished());
        // Noisy gives two more back: once it holds less than its share, its own waiter is
        // allowed the slot.
        drop(noisy.pop());
        drop(noisy.pop());
        let again = noisy_waiter.await.expect("task").expect("noisy's turn");
        drop((noisy, quiet, again));
        assert_eq!((slots.in_flight(), slots.waiting()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn t07_a_waiter_whose_client_left_takes_no_slot() {
        let slots = Slots::new(1);
        let held = slots.take("a").expect("the slot");
        let waiter = wait_for_slot(&slots, "a").await;
        waiter.abort();
        let _ = waiter.await;
        drop(held);
        assert_eq!((slots.in_flight(), slots.waiting()), (0, 0));
        assert!(slots.take("b").is_ok());
    }
}
