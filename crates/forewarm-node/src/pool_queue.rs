//! Admission: the requests that wait for a container, per code type, first come first served.
//!
//! A request that finds no idle container and no room to start one (its tenant's quota or the
//! node's capacity held by busy or starting containers) waits in its code type's queue, up to
//! the code type's `max_queue`, instead of being refused: the containers that hold the room
//! serve it as they free, as Knative's activator buffers a burst from zero. Whoever holds the
//! room, a request waits only if it could fit once every container of the node were idle; one
//! that never fits is refused at once.
//!
//! The queue is served, in order, by:
//! - a container its request released ([`PoolEngine::hand_over`]): it goes straight on to the
//!   head of its code type's queue, busy all along;
//! - a container that turned idle without a request (a pre-warm that started, one found idle
//!   by [`PoolEngine::drain`]): [`PoolEngine::hand_idle`];
//! - room that freed (a container removed, failed or expired): [`PoolEngine::drain`] starts a
//!   container for the head, as a cold start would have.
//!
//! While a request waits, the pool holds the slot it was placed on (busy, no container): the
//! policy saw its arrival once, when it came. The slot gets the container that serves it, or
//! leaves the pool when another slot's container does or the request gives up
//! ([`PoolEngine::cancel`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use forewarm_policy::ContainerId;
use forewarm_store::Start;

use super::{Command, Commands, Lease, PoolEngine, RealState, class_for};
use crate::catalog::{Code, CodeKey};
use crate::pool_msg::PoolError;
use crate::room::{self, Quota};

/// A request waiting for a container.
#[derive(Debug)]
pub(super) struct Queued {
    /// Its [`super::Leased::Wait`] ticket.
    pub ticket: u64,
    /// Its code type, at the version it asked for.
    pub code: Arc<Code>,
    /// The pool slot it was placed on.
    pub slot: ContainerId,
    /// Memory of the container the pool chose for it, MiB.
    pub mib: u32,
    /// Memory the request is predicted to need, MiB.
    pub need_mib: f64,
    /// Why it waits: what it is answered if it gives up.
    pub why: PoolError,
}

impl PoolEngine {
    /// Queue a request of `code` placed on `slot` (a container of `mib`; the request needs
    /// `need_mib`) that found no room (`why`): its ticket, or why it is refused (the queue is
    /// full, the code type allows none, or it could never fit).
    pub(super) fn enqueue(
        &mut self,
        code: &Arc<Code>,
        slot: ContainerId,
        mib: u32,
        need_mib: f64,
        quota: Option<Quota>,
        why: PoolError,
    ) -> Result<u64, PoolError> {
        let key = code.key();
        let waiting = self.queues.get(&key).map_or(0, VecDeque::len);
        if code.max_queue == 0 {
            return Err(why);
        }
        if waiting >= code.max_queue as usize {
            return Err(with_note(why, &format!("{waiting} requests already wait")));
        }
        let class = class_for(mib, code);
        if !self.could_fit(&code.tenant, class.memory_mib, quota) {
            return Err(why);
        }
        let ticket = super::new_ticket(&mut self.next_ticket);
        self.queues.entry(key).or_default().push_back(Queued {
            ticket,
            code: code.clone(),
            slot,
            mib,
            need_mib,
            why,
        });
        Ok(ticket)
    }

    /// Whether a container of `mib` for `tenant` would fit were every container of the node
    /// idle (evictable): whether waiting can ever help.
    fn could_fit(&self, tenant: &str, mib: u32, quota: Option<Quota>) -> bool {
        let held = self.held(|_| true);
        room::plan(&held, tenant, mib, quota, self.config.capacity, true).is_ok()
    }

    /// The head of `key`'s queue, if `fits` accepts it: out of the queue.
    fn pop_queued(&mut self, key: &CodeKey, fits: impl Fn(&Queued) -> bool) -> Option<Queued> {
        let queue = self.queues.get_mut(key)?;
        if !queue.front().is_some_and(fits) {
            return None;
        }
        let queued = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(key);
        }
        queued
    }

    /// Container `serial` was just released by its request (the pool not told yet): hand it
    /// on, busy, to the head of its code type's queue if it fits it. Whether it was.
    pub(super) fn hand_over(&mut self, serial: u64, now: Instant, out: &mut Commands) -> bool {
        let Some(real) = self.reals.get(&serial) else {
            return false;
        };
        let (RealState::Busy(container) | RealState::Idle(container)) = real.state.clone() else {
            return false;
        };
        let key = real.code.clone();
        let (version, mib) = (real.version, f64::from(real.class.memory_mib));
        let Some(queued) =
            self.pop_queued(&key, |q| q.code.version <= version && q.need_mib <= mib)
        else {
            return false;
        };
        if let Some(real) = self.reals.get_mut(&serial) {
            real.since = now;
            real.state = RealState::Busy(container.clone());
        }
        // The pool keeps this container's slot busy (one longer execution, no idle gap);
        // the slot the request waited on never had a container.
        self.discard_slot(&key, queued.slot, now, out);
        out.push(Command::Answer {
            ticket: queued.ticket,
            result: Ok(Lease {
                serial,
                container,
                start: Start::Warm,
            }),
        });
        true
    }

    /// Idle container `serial` (a pre-warm that just started, or one a drain found): hand it
    /// to the head of its code type's queue if it fits it. It takes over the slot the request
    /// waited on; its own idle slot leaves the pool. Whether it was handed.
    pub(super) fn hand_idle(&mut self, serial: u64, now: Instant, out: &mut Commands) -> bool {
        let Some(real) = self.reals.get(&serial) else {
            return false;
        };
        let RealState::Idle(container) = real.state.clone() else {
            return false;
        };
        let key = real.code.clone();
        let (version, mib, own_slot) = (real.version, real.class.memory_mib, real.slot);
        let Some(queued) = self.pop_queued(&key, |q| {
            q.code.version <= version && class_for(q.mib, &q.code).memory_mib <= mib
        }) else {
            return false;
        };
        if let Some(cp) = self.pools.get_mut(&key) {
            cp.slots.remove(&own_slot);
            cp.slots.insert(queued.slot, serial);
        }
        // Unmapped first: taking the idle slot out of the pool removes no container.
        self.discard_slot(&key, own_slot, now, out);
        let Some(real) = self.reals.get_mut(&serial) else {
            return false;
        };
        real.slot = queued.slot;
        real.since = now;
        real.state = RealState::Busy(container.clone());
        let start = if std::mem::take(&mut real.prewarmed) {
            Start::Prewarmed
        } else {
            Start::Warm
        };
        out.push(Command::Answer {
            ticket: queued.ticket,
            result: Ok(Lease {
                serial,
                container,
                start,
            }),
        });
        true
    }

    /// Serve the queues as far as the node allows now: idle containers of a code type go to
    /// its waiting requests; then, while there is room (evicting idle containers as a cold
    /// start does), a container starts for the head of each queue.
    pub(super) fn drain(
        &mut self,
        quota: &dyn Fn(&str) -> Option<Quota>,
        now: Instant,
        out: &mut Commands,
    ) {
        if self.queues.is_empty() || self.stopping {
            return;
        }
        let mut keys: Vec<CodeKey> = self.queues.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let mut idle: Vec<u64> = self
                .reals
                .iter()
                .filter(|(_, r)| r.code == key && matches!(r.state, RealState::Idle(_)))
                .map(|(serial, _)| *serial)
                .collect();
            idle.sort_unstable();
            for serial in idle {
                if !self.queues.contains_key(&key) {
                    break;
                }
                self.hand_idle(serial, now, out);
            }
        }
        // Freed room goes to the request that has waited longest (tickets count up), whatever
        // its code type; a code type whose head finds no room (its tenant's quota) steps
        // aside for the others.
        let mut blocked: Vec<CodeKey> = Vec::new();
        loop {
            let oldest = self
                .queues
                .iter()
                .filter(|(key, _)| !blocked.contains(key))
                .filter_map(|(key, q)| Some((q.front()?.ticket, key)))
                .min()
                .map(|(_, key)| key.clone());
            let Some(key) = oldest else {
                break;
            };
            let Some(head) = self.queues.get(&key).and_then(VecDeque::front) else {
                break;
            };
            let code = head.code.clone();
            let class = class_for(head.mib, &code);
            let q = quota(&code.tenant);
            if self
                .make_room(&code.tenant, class.memory_mib, true, q, now, out)
                .is_err()
            {
                blocked.push(key);
                continue;
            }
            let Some(queued) = self.pop_queued(&key, |_| true) else {
                break;
            };
            self.spawn(&code, queued.slot, class, Some(queued.ticket), now, out);
        }
    }

    /// The request holding `ticket` gave up (its deadline passed). If it was still in a
    /// queue it leaves it, and the answer is why it waited (it never reached a container);
    /// `None` if it was not queued (a container starting for it, or already handed one: its
    /// answer, undelivered, releases that container).
    pub fn cancel(&mut self, ticket: u64, now: Instant) -> (Option<PoolError>, Commands) {
        let mut out = Commands::new();
        let found = self.queues.iter().find_map(|(key, q)| {
            q.iter()
                .position(|x| x.ticket == ticket)
                .map(|i| (key.clone(), i))
        });
        let Some((key, i)) = found else {
            return (None, out);
        };
        let queue = self.queues.get_mut(&key);
        let Some(queued) = queue.and_then(|q| q.remove(i)) else {
            return (None, out);
        };
        if self.queues.get(&key).is_some_and(VecDeque::is_empty) {
            self.queues.remove(&key);
        }
        self.due = None;
        self.discard_slot(&key, queued.slot, now, &mut out);
        (Some(queued.why), out)
    }

    /// Requests waiting for a container of `key`.
    pub fn queued(&self, key: &str) -> usize {
        self.queues.get(key).map_or(0, VecDeque::len)
    }
}

/// `why`, its limit annotated with `note`.
fn with_note(why: PoolError, note: &str) -> PoolError {
    match why {
        PoolError::TenantQuota { tenant, what } => PoolError::TenantQuota {
            tenant,
            what: format!("{what}; {note}"),
        },
        PoolError::Capacity(what) => PoolError::Capacity(format!("{what}; {note}")),
        other => other,
    }
}
