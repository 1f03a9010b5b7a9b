//! The pool engine's decisions as command lists: no Docker, no tokio, no clock (every event
//! carries its instant).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_policy::PolicySpec;
use forewarm_runtime::{Container, ContainerSpec, Workload};
use forewarm_store::Start;

use super::*;
use crate::pool_msg::Seen;

const MIN: Duration = Duration::from_secs(60);

struct Fixture {
    engine: PoolEngine,
    t0: Instant,
}

fn code(name: &str, version: u64) -> Arc<Code> {
    queued_code(name, version, 1_000)
}

/// A code type whose requests may wait, at most `max_queue` of them.
fn queued_code(name: &str, version: u64, max_queue: u32) -> Arc<Code> {
    Arc::new(Code {
        tenant: "acme".into(),
        name: name.into(),
        workload: Workload::default(),
        image: "runner".into(),
        max_memory_mib: 256,
        max_cpu_millis: 1000,
        timeout_ms: 60_000,
        max_queue,
        features: Vec::new(),
        version,
        writes: vec![],
    })
}

/// An engine with a 10-minute keep-alive, real time = policy time, 4 containers / 1 GiB.
fn fixture() -> Fixture {
    let t0 = Instant::now();
    let engine = PoolEngine::new(EngineConfig {
        node_id: "n1".into(),
        policy: PolicySpec::KeepAlive { minutes: 10 },
        capacity: Capacity {
            memory_mib: 1024,
            containers: 4,
        },
        clock: PolicyClock::starting_at(t0, 1.0),
    });
    Fixture { engine, t0 }
}

fn no_quota(_: &str) -> Option<Quota> {
    None
}

fn one_container(_: &str) -> Option<Quota> {
    Some(Quota {
        max_warm: 1,
        max_memory_mib: 1024,
    })
}

fn container(spec: &ContainerSpec, serial: u64) -> Container {
    Container {
        id: format!("c{serial}"),
        spec: spec.clone(),
        endpoint: SocketAddr::from(([127, 0, 0, 1], 9000 + serial as u16)),
    }
}

fn started_spec(commands: &[Command]) -> Vec<(u64, ContainerSpec, bool)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Start {
                serial,
                spec,
                prewarmed,
                ..
            } => Some((*serial, spec.clone(), *prewarmed)),
            _ => None,
        })
        .collect()
}

impl Fixture {
    fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }

    /// Lease `code` at `d` (no first sight), expecting the request to wait (for a start, or
    /// in its queue): its ticket and the commands.
    fn waiting_lease(
        &mut self,
        code: &Arc<Code>,
        quota: &dyn Fn(&str) -> Option<Quota>,
        d: Duration,
    ) -> (u64, Vec<Command>) {
        let now = self.at(d);
        let (leased, commands) = self.engine.lease(code, 64.0, false, || None, quota, now);
        let Leased::Wait(ticket) = leased else {
            panic!("expected a wait, got {leased:?}");
        };
        (ticket, commands)
    }

    /// Start container `serial` (of `spec`) at `d`, as its actor reports.
    fn start(&mut self, serial: u64, spec: &ContainerSpec, d: Duration) -> Vec<Command> {
        let now = self.at(d);
        let started = Ok(container(spec, serial));
        self.engine
            .started(serial, started, Duration::from_millis(500), now)
    }

    /// Lease `code` at `d` and start what it asks for; the request's lease.
    fn cold_lease(&mut self, code: &Arc<Code>, d: Duration) -> Lease {
        self.cold_lease_within(code, &no_quota, d)
    }

    /// [`Self::cold_lease`] within `quota`.
    fn cold_lease_within(
        &mut self,
        code: &Arc<Code>,
        quota: &dyn Fn(&str) -> Option<Quota>,
        d: Duration,
    ) -> Lease {
        let (ticket, commands) = self.waiting_lease(code, quota, d);
        let starts = started_spec(&commands);
        assert_eq!(starts.len(), 1, "{commands:?}");
        let (serial, spec, prewarmed) = &starts[0];
        assert!(!prewarmed);
        match self.start(*serial, spec, d).as_slice() {
            [
                Command::Answer {
                    ticket: t,
                    result: Ok(lease),
                },
            ] if *t == ticket => lease.clone(),
            other => panic!("expected the waiting request's answer, got {other:?}"),
        }
    }
}

/// The one lease `commands` hand ticket `ticket`.
fn answer(commands: &[Command], ticket: u64) -> Result<Lease, PoolError> {
    let answers: Vec<_> = commands
        .iter()
        .filter_map(|c| match c {
            Command::Answer { ticket: t, result } if *t == ticket => Some(result.clone()),
            _ => None,
        })
        .collect();
    match answers.as_slice() {
        [one] => one.clone(),
        other => panic!("expected one answer for ticket {ticket}, got {other:?} in {commands:?}"),
    }
}

#[test]
fn t01_cold_then_warm_on_the_same_container() {
    let mut f = fixture();
    let c = code("resize", 1);
    let lease = f.cold_lease(&c, Duration::ZERO);
    assert_eq!(lease.start, Start::Cold);
    assert_eq!(lease.container.spec.node, "n1");
    assert_eq!(lease.container.spec.tenant, "acme");
    // Released: kept alive, nothing to do.
    assert_eq!(
        f.engine.release(lease.serial, true, &no_quota, f.at(MIN)),
        vec![]
    );
    assert_eq!(f.engine.counts(), [0, 1, 0]);
    assert_eq!(f.engine.holding().idle.get("acme/resize"), Some(&vec![256]));
    // The next request is warm on it, with no command.
    let (leased, commands) = f
        .engine
        .lease(&c, 64.0, false, || None, &no_quota, f.at(2 * MIN));
    assert_eq!(commands, vec![]);
    match leased {
        Leased::Ready(l) => {
            assert_eq!((l.serial, l.start), (lease.serial, Start::Warm));
        }
        other => panic!("expected a warm lease, got {other:?}"),
    }
    assert_eq!(f.engine.counts(), [0, 0, 1]);
}

#[test]
fn t02_an_idle_container_is_removed_when_its_keep_alive_ends() {
    let mut f = fixture();
    let c = code("resize", 1);
    let lease = f.cold_lease(&c, Duration::ZERO);
    f.engine.release(lease.serial, true, &no_quota, f.at(MIN));
    assert_eq!(f.engine.tick(&no_quota, f.at(10 * MIN)), vec![]);
    assert_eq!(
        f.engine
            .tick(&no_quota, f.at(11 * MIN + Duration::from_secs(1))),
        vec![Command::Remove {
            serial: lease.serial
        }]
    );
    assert!(!f.engine.holds(lease.serial));
}

#[test]
fn t03_a_request_over_the_tenant_quota_evicts_the_tenants_idle_container() {
    let mut f = fixture();
    let a = f.cold_lease(&code("a", 1), Duration::ZERO);
    f.engine.release(a.serial, true, &one_container, f.at(MIN));
    let (_, commands) = f.waiting_lease(&code("b", 1), &one_container, 2 * MIN);
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(commands[0], Command::Remove { serial: a.serial });
    assert!(matches!(commands[1], Command::Start { serial, .. } if serial != a.serial));
}

#[test]
fn t04_a_quota_held_by_busy_containers_refuses_a_code_type_that_allows_no_wait() {
    let mut f = fixture();
    let a = f.cold_lease(&code("a", 1), Duration::ZERO);
    let (leased, commands) = f.engine.lease(
        &queued_code("b", 1, 0),
        64.0,
        false,
        || None,
        &one_container,
        f.at(MIN),
    );
    assert_eq!(
        leased,
        Leased::Failed(PoolError::TenantQuota {
            tenant: "acme".into(),
            what: "max_warm 1".into()
        })
    );
    assert_eq!(commands, vec![]);
    assert!(f.engine.holds(a.serial));
}

#[test]
fn t05_a_warm_only_lease_with_nothing_idle_starts_nothing() {
    let mut f = fixture();
    let (leased, commands) =
        f.engine
            .lease(&code("a", 1), 64.0, true, || None, &no_quota, f.at(MIN));
    assert_eq!(leased, Leased::Failed(PoolError::NoWarmFit));
    assert_eq!(commands, vec![]);
    assert_eq!(f.engine.counts(), [0, 0, 0]);
}

#[test]
fn t06_a_failed_start_answers_the_request_and_removes_the_container() {
    let mut f = fixture();
    let (ticket, commands) = f.waiting_lease(&code("a", 1), &no_quota, Duration::ZERO);
    let serial = started_spec(&commands)[0].0;
    let commands = f.engine.started(
        serial,
        Err("image not found".into()),
        Duration::ZERO,
        f.at(Duration::from_secs(1)),
    );
    assert_eq!(
        commands,
        vec![
            Command::Answer {
                ticket,
                result: Err(PoolError::StartFailed("image not found".into()))
            },
            Command::Remove { serial }
        ]
    );
    assert_eq!(f.engine.counts(), [0, 0, 0]);
}

#[test]
fn t07_a_failed_invocation_or_a_new_version_retires_the_container() {
    let mut f = fixture();
    let v1 = code("a", 1);
    let failed = f.cold_lease(&v1, Duration::ZERO);
    assert_eq!(
        f.engine.release(failed.serial, false, &no_quota, f.at(MIN)),
        vec![Command::Remove {
            serial: failed.serial
        }]
    );
    let idle = f.cold_lease(&v1, 2 * MIN);
    f.engine
        .release(idle.serial, true, &no_quota, f.at(3 * MIN));
    // Same version: nothing to retire; a new one retires the idle container.
    assert_eq!(f.engine.retire(&v1, f.at(4 * MIN)), vec![]);
    assert_eq!(
        f.engine.retire(&code("a", 2), f.at(4 * MIN)),
        vec![Command::Remove {
            serial: idle.serial
        }]
    );
}

#[test]
fn t08_stopping_answers_waiting_requests_and_refuses_new_ones() {
    let mut f = fixture();
    let (starting, _) = f.waiting_lease(&code("a", 1), &one_container, Duration::ZERO);
    let (queued, commands) = f.waiting_lease(&code("a", 1), &one_container, Duration::ZERO);
    assert_eq!(commands, vec![], "the second waits in the queue");
    assert_eq!(
        f.engine.stop(),
        vec![
            Command::Answer {
                ticket: starting,
                result: Err(PoolError::Stopping)
            },
            Command::Answer {
                ticket: queued,
                result: Err(PoolError::Stopping)
            }
        ]
    );
    let (leased, commands) =
        f.engine
            .lease(&code("a", 1), 64.0, false, || None, &no_quota, f.at(MIN));
    assert_eq!(
        (leased, commands),
        (Leased::Failed(PoolError::Stopping), vec![])
    );
}

#[test]
fn t09_first_sight_holds_other_regions_forecast_warm_within_capacity() {
    let mut f = fixture();
    let floor = SharedFloor {
        containers: 3,
        minutes: 5,
    };
    let (leased, commands) =
        f.engine
            .lease(&code("a", 1), 64.0, false, || Some(floor), &no_quota, f.t0);
    assert!(matches!(leased, Leased::Wait(_)), "{leased:?}");
    let starts = started_spec(&commands);
    // The request's container and two pre-warms.
    assert_eq!(starts.len(), 3, "{commands:?}");
    assert_eq!(starts.iter().filter(|(_, _, p)| *p).count(), 2);
    // A second lease of the same code type does not ask other regions again.
    let (_, _) = f.engine.lease(
        &code("a", 1),
        64.0,
        false,
        || panic!("first sight asked twice"),
        &no_quota,
        f.at(Duration::from_secs(1)),
    );
}

#[test]
fn t10_a_size_class_follows_memory_within_the_code_types_limits() {
    let c = code("a", 1);
    assert_eq!(class_for(128, &c).cpu_millis, 250);
    assert_eq!(
        class_for(512, &c).memory_mib,
        256,
        "capped at the code's memory"
    );
    assert_eq!(class_for(256, &c).cpu_millis, 500);
    assert_eq!(class_for(0, &c).memory_mib, 1);
}

fn seen(ids: &[(&str, bool)]) -> Vec<Seen> {
    ids.iter()
        .map(|(id, running)| Seen {
            id: (*id).to_owned(),
            running: *running,
        })
        .collect()
}

#[test]
fn t11_reconcile_takes_out_idle_containers_the_engine_lost() {
    let mut f = fixture();
    let (a, b, c) = (code("a", 1), code("b", 1), code("c", 1));
    let la = f.cold_lease(&a, Duration::ZERO);
    let lb = f.cold_lease(&b, Duration::ZERO);
    let lc = f.cold_lease(&c, Duration::ZERO);
    f.engine.release(la.serial, true, &no_quota, f.at(MIN));
    f.engine.release(lb.serial, true, &no_quota, f.at(MIN));
    // Listed at 2 min: a's container exited, b's is gone, c's is busy and gone too.
    let ida = la.container.id.clone();
    let r = f.engine.reconcile(&seen(&[(&ida, false)]), f.at(2 * MIN));
    assert_eq!(r.gone, vec![la.serial, lb.serial]);
    assert_eq!(
        r.commands,
        vec![
            Command::Remove { serial: la.serial },
            Command::Remove { serial: lb.serial }
        ]
    );
    assert!(r.unowned.is_empty(), "{r:?}");
    // The busy one is left to its request; once released it is judged by the next pass.
    assert!(f.engine.holds(lc.serial));
    f.engine.release(lc.serial, true, &no_quota, f.at(3 * MIN));
    let r = f
        .engine
        .reconcile(&[], f.at(2 * MIN + Duration::from_secs(30)));
    assert!(
        r.gone.is_empty(),
        "idle only since after the listing: {r:?}"
    );
    let r = f.engine.reconcile(&[], f.at(4 * MIN));
    assert_eq!(r.gone, vec![lc.serial]);
    // The next lease of a starts a container again (cold), not the lost one.
    let (_, commands) = f.waiting_lease(&a, &no_quota, 5 * MIN);
    assert_eq!(started_spec(&commands).len(), 1, "{commands:?}");
}

#[test]
fn t12_reconcile_removes_unbooked_containers_after_the_grace_only() {
    let mut f = fixture();
    let c = code("a", 1);
    let lease = f.cold_lease(&c, Duration::ZERO);
    let mine = lease.container.id.clone();
    // A leak (its removal failed) and a container whose start the book has not heard of yet.
    let listed = seen(&[(&mine, true), ("leak", false), ("starting", true)]);
    let r = f.engine.reconcile(&listed, f.at(MIN));
    assert_eq!((r.gone.len(), r.unowned.len()), (0, 0), "{r:?}");
    let r = f.engine.reconcile(&listed, f.at(MIN + UNOWNED_GRACE / 2));
    assert!(r.unowned.is_empty(), "{r:?}");
    // "starting" is no longer listed (its start failed and it was removed); the leak stays.
    let listed = seen(&[(&mine, true), ("leak", false)]);
    let r = f.engine.reconcile(&listed, f.at(MIN + UNOWNED_GRACE));
    assert_eq!(r.unowned, vec![String::from("leak")]);
    assert!(r.commands.is_empty() && r.gone.is_empty(), "{r:?}");
    // Reported once; seen again, its grace starts over.
    let r = f.engine.reconcile(&listed, f.at(MIN + UNOWNED_GRACE * 2));
    assert!(r.unowned.is_empty(), "{r:?}");
    assert!(f.engine.holds(lease.serial));
}

#[test]
fn t13_ticks_walk_the_pools_only_when_something_is_due_or_happened() {
    let mut f = fixture();
    let c = code("resize", 1);
    let lease = f.cold_lease(&c, Duration::ZERO);
    assert_eq!(f.engine.next_due(), None, "an event: the next tick walks");
    f.engine.release(lease.serial, true, &no_quota, f.at(MIN));
    assert_eq!(f.engine.tick(&no_quota, f.at(MIN)), vec![]);
    // Keep-alive 10 min, no minute events: the next thing due is the idle container's
    // expiry, 10 min after its release; walks come at least once a minute until then.
    let due = f
        .engine
        .next_due()
        .expect("a walk computes when it is next due");
    assert_eq!(due, f.at(MIN) + LONGEST_WALK_GAP);
    // Before then a tick does nothing and leaves the due time alone.
    assert_eq!(
        f.engine.tick(&no_quota, due - Duration::from_millis(1)),
        vec![]
    );
    assert_eq!(f.engine.next_due(), Some(due));
    // Following the due times: the container is removed when its keep-alive ends, as with
    // the 100 ms tick (which walked the pools 6000 times in those ten minutes).
    let mut walks = 0;
    let (at, out) = loop {
        let now = f.engine.next_due().expect("due");
        walks += 1;
        let out = f.engine.tick(&no_quota, now);
        if !out.is_empty() || walks > 20 {
            break (now, out);
        }
    };
    assert_eq!(
        out,
        vec![Command::Remove {
            serial: lease.serial
        }]
    );
    assert_eq!(at, f.at(11 * MIN + Duration::from_millis(1)));
    assert_eq!(walks, 11, "one a minute (2 to 11 min), then the expiry");
    assert_eq!(f.engine.next_due(), None, "the removal is an event");
}

#[test]
fn t14_a_burst_over_the_quota_waits_and_released_containers_serve_it_in_order() {
    let mut f = fixture();
    let c = code("burst", 1);
    let first = f.cold_lease_within(&c, &one_container, Duration::ZERO);
    // The quota (one container) is busy: the next two wait, nothing starts.
    let (second, commands) = f.waiting_lease(&c, &one_container, Duration::ZERO);
    assert_eq!(commands, vec![]);
    let (third, commands) = f.waiting_lease(&c, &one_container, Duration::ZERO);
    assert_eq!(commands, vec![]);
    assert_eq!(f.engine.queued("acme/burst"), 2);
    // Released, the container goes straight on to the first in line, busy all along.
    let handed = f.engine.release(
        first.serial,
        true,
        &one_container,
        f.at(Duration::from_millis(10)),
    );
    assert_eq!(handed.len(), 1, "{handed:?}");
    let lease = answer(&handed, second).expect("the container");
    assert_eq!((lease.serial, lease.start), (first.serial, Start::Warm));
    assert_eq!(f.engine.counts(), [0, 0, 1]);
    let handed = f.engine.release(
        first.serial,
        true,
        &one_container,
        f.at(Duration::from_millis(20)),
    );
    assert_eq!(
        answer(&handed, third).expect("the container").serial,
        first.serial
    );
    assert_eq!(f.engine.queued("acme/burst"), 0);
    // Nobody waits any more: the last release leaves it idle.
    let last = f.engine.release(
        first.serial,
        true,
        &one_container,
        f.at(Duration::from_millis(30)),
    );
    assert_eq!(last, vec![]);
    assert_eq!(f.engine.counts(), [0, 1, 0]);
}

#[test]
fn t15_a_full_queue_or_a_request_that_can_never_fit_is_refused_at_once() {
    let mut f = fixture();
    let c = queued_code("q", 1, 1);
    f.cold_lease_within(&c, &one_container, Duration::ZERO);
    f.waiting_lease(&c, &one_container, Duration::ZERO);
    let (leased, commands) = f
        .engine
        .lease(&c, 64.0, false, || None, &one_container, f.at(MIN));
    assert_eq!(
        leased,
        Leased::Failed(PoolError::TenantQuota {
            tenant: "acme".into(),
            what: "max_warm 1; 1 requests already wait".into()
        })
    );
    assert_eq!(commands, vec![]);
    // A tenant whose memory quota is below the smallest container never fits: no wait.
    let tiny = |_: &str| {
        Some(Quota {
            max_warm: 8,
            max_memory_mib: 16,
        })
    };
    let (leased, _) = f
        .engine
        .lease(&code("other", 1), 64.0, false, || None, &tiny, f.at(MIN));
    assert!(
        matches!(&leased, Leased::Failed(PoolError::TenantQuota { what, .. }) if what.starts_with("max_memory_mib 16")),
        "{leased:?}"
    );
    assert_eq!(f.engine.queued("acme/other"), 0);
}

#[test]
fn t16_a_request_that_gives_up_leaves_the_queue_with_why_it_waited() {
    let mut f = fixture();
    let c = code("slow", 1);
    let busy = f.cold_lease_within(&c, &one_container, Duration::ZERO);
    let (ticket, _) = f.waiting_lease(&c, &one_container, Duration::ZERO);
    let (why, commands) = f.engine.cancel(ticket, f.at(MIN));
    assert_eq!(
        why,
        Some(PoolError::TenantQuota {
            tenant: "acme".into(),
            what: "max_warm 1".into()
        })
    );
    assert_eq!(commands, vec![], "its slot had no container");
    assert_eq!(f.engine.cancel(ticket, f.at(MIN)).0, None, "only once");
    // Nobody waits: the release leaves the container idle.
    assert_eq!(
        f.engine
            .release(busy.serial, true, &one_container, f.at(MIN)),
        vec![]
    );
    assert_eq!(f.engine.counts(), [0, 1, 0]);
}

#[test]
fn t17_room_freed_by_a_failed_container_starts_one_for_the_first_in_line() {
    let mut f = fixture();
    let c = code("flaky", 1);
    let busy = f.cold_lease_within(&c, &one_container, Duration::ZERO);
    let (ticket, _) = f.waiting_lease(&c, &one_container, Duration::ZERO);
    // The container failed: removed, and its room goes to a start for the waiting request.
    let commands = f
        .engine
        .release(busy.serial, false, &one_container, f.at(MIN));
    assert_eq!(
        commands[0],
        Command::Remove {
            serial: busy.serial
        }
    );
    let starts = started_spec(&commands);
    assert_eq!(starts.len(), 1, "{commands:?}");
    let (serial, spec, prewarmed) = starts[0].clone();
    assert!(!prewarmed);
    let lease = answer(&f.start(serial, &spec, MIN), ticket).expect("a container");
    assert_eq!((lease.serial, lease.start), (serial, Start::Cold));
    assert_eq!(f.engine.queued("acme/flaky"), 0);
}

#[test]
fn t18_the_reaper_removes_containers_stuck_busy_or_starting_past_their_deadline() {
    let mut f = fixture();
    let c = code("stuck", 1); // timeout_ms 60 s
    let busy = f.cold_lease(&c, Duration::ZERO);
    // A start that never reports, with a request waiting for it.
    let (ticket, commands) = f.waiting_lease(&c, &no_quota, Duration::ZERO);
    let (starting, ..) = started_spec(&commands)[0].clone();
    // Within the deadlines and their grace: nothing is reaped.
    let within = MIN + REAP_GRACE;
    assert!(
        !f.engine
            .tick(&no_quota, f.at(within))
            .iter()
            .any(|c| matches!(c, Command::Remove { .. })),
    );
    // Past them: both removed, and the waiting request hears its start failed.
    let past = f
        .engine
        .tick(&no_quota, f.at(within + Duration::from_secs(1)));
    for serial in [busy.serial, starting] {
        assert!(past.contains(&Command::Remove { serial }), "{past:?}");
    }
    assert!(matches!(
        answer(&past, ticket),
        Err(PoolError::StartFailed(_))
    ));
    assert_eq!(f.engine.counts(), [0, 0, 0]);
    // Its lease's late release is harmless.
    assert_eq!(
        f.engine
            .release(busy.serial, true, &no_quota, f.at(2 * MIN)),
        vec![]
    );
}

#[test]
fn t19_freed_room_goes_to_the_longest_waiting_request_whatever_its_code_type() {
    let mut f = fixture();
    let busy = f.cold_lease_within(&code("x", 1), &one_container, Duration::ZERO);
    // The tenant's one container is busy: "b" waits, then "a".
    let (b, _) = f.waiting_lease(&code("b", 1), &one_container, Duration::ZERO);
    let (_a, _) = f.waiting_lease(&code("a", 1), &one_container, Duration::ZERO);
    // The container fails: its room goes to "b", which asked first ("a" sorts first).
    let commands = f
        .engine
        .release(busy.serial, false, &one_container, f.at(MIN));
    let started: Vec<&str> = commands
        .iter()
        .filter_map(|c| match c {
            Command::Start { code, .. } => Some(code.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec!["acme/b"], "{commands:?}");
    let (serial, spec, _) = started_spec(&commands)[0].clone();
    let lease = answer(&f.start(serial, &spec, MIN), b).expect("b's container");
    assert_eq!(lease.serial, serial);
    assert_eq!(
        (f.engine.queued("acme/a"), f.engine.queued("acme/b")),
        (1, 0)
    );
}

#[test]
fn t20_a_request_for_a_prewarm_still_starting_waits_for_it_and_is_counted_late() {
    let mut f = fixture();
    let floor = SharedFloor {
        containers: 2,
        minutes: 5,
    };
    let (_, commands) = f
        .engine
        .lease(&code("a", 1), 64.0, false, || Some(floor), &no_quota, f.t0);
    let starts = started_spec(&commands);
    let (prewarm, spec, _) = starts
        .iter()
        .find(|(_, _, prewarmed)| *prewarmed)
        .cloned()
        .expect("a pre-warm");
    assert_eq!(f.engine.misses(), (0, 0));
    // A second request while the pre-warm still starts: placed on it, it waits for it.
    let (ticket, commands) = f.waiting_lease(&code("a", 1), &no_quota, Duration::from_millis(10));
    assert!(
        started_spec(&commands).is_empty(),
        "no second start: {commands:?}"
    );
    assert_eq!(f.engine.misses(), (0, 1));
    let answered = f.start(prewarm, &spec, Duration::from_millis(600));
    let lease = answer(&answered, ticket).expect("the pre-warm");
    assert_eq!(lease.serial, prewarm);
}
