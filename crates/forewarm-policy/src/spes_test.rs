use super::*;

/// Drive a fresh policy with one invocation per entry of `minutes` (ascending; repeat a minute
/// for several), each arriving 1 s into its minute and done 0.5 s later, with every minute
/// tick before `until`.
fn drive(minutes: &[u64], until: u64) -> Spes {
    let mut p = Spes::new();
    let mut next = minutes.iter().peekable();
    for m in 0..until {
        p.on_minute(m * MINUTE_MS);
        while next.next_if(|&&x| x == m).is_some() {
            p.on_arrival(m * MINUTE_MS + 1000);
            p.on_idle(m * MINUTE_MS + 1500);
        }
    }
    p
}

/// Single-minute invocations separated by the given wait times, from minute 0.
fn with_waits(waits: &[u64]) -> Vec<u64> {
    let mut m = 0;
    let mut out = vec![0];
    for w in waits {
        m += w + 1;
        out.push(m);
    }
    out
}

fn last(minutes: &[u64]) -> u64 {
    minutes[minutes.len() - 1]
}

/// [`drive`] through single-minute invocations separated by `waits`; also the last minute.
fn drive_waits(waits: &[u64]) -> (Spes, u64) {
    let minutes = with_waits(waits);
    let l = last(&minutes);
    (drive(&minutes, l + 1), l)
}

/// The removal time `p` gives a container that turns idle at `now`.
fn keep_until(p: &mut Spes, now: Millis) -> Millis {
    match p.on_idle(now) {
        IdleAction::KeepAlive { until } => until,
        other => panic!("keep-alive expected, got {other:?}"),
    }
}

#[test]
fn always_warm_when_invoked_every_minute() {
    let minutes: Vec<u64> = (0..200).collect();
    let mut p = drive(&minutes, 200);
    assert_eq!(p.class(), SpesClass::AlwaysWarm);
    // Held minute by minute whether or not the minute brings an invocation.
    let floor = p.on_minute(200 * MINUTE_MS).expect("always loaded");
    assert_eq!((floor.containers, floor.until), (1, 201 * MINUTE_MS));
    // Idle minutes over 0.1% of the history end it (SPES's rule, here over 205 minutes).
    p.on_minute(205 * MINUTE_MS);
    assert_ne!(p.class(), SpesClass::AlwaysWarm);
}

#[test]
fn not_warm_with_idle_minutes() {
    // Every other minute: half the minutes idle.
    let minutes: Vec<u64> = (0..200).step_by(2).collect();
    let p = drive(&minutes, 201);
    assert_ne!(p.class(), SpesClass::AlwaysWarm);
}

#[test]
fn regular_timer_is_preloaded_at_its_period_and_after_a_miss() {
    let minutes: Vec<u64> = (0..=300).step_by(30).collect();
    let mut p = drive(&minutes, 301);
    assert_eq!(p.class(), SpesClass::Regular);
    assert_eq!(p.assigned(), "regular: wait 29.0 ± 0.0 min");
    // The next invocation is due in minute 330: loaded in 329 and 330, not half-way.
    assert!(p.on_minute(315 * MINUTE_MS).is_none());
    assert!(p.on_minute(329 * MINUTE_MS).is_some());
    assert!(p.on_minute(330 * MINUTE_MS).is_some());
    assert!(p.on_minute(331 * MINUTE_MS).is_none());
    // Missed: the window moves on by one period.
    assert!(p.on_minute(345 * MINUTE_MS).is_none());
    assert!(p.on_minute(359 * MINUTE_MS).is_some());
    // A container is unloaded one minute after its use.
    assert_eq!(keep_until(&mut p, 300 * MINUTE_MS + 2000), 302 * MINUTE_MS);
}

#[test]
fn approx_regular_from_a_few_repeated_waits() {
    let waits: Vec<u64> = [10, 20, 30].iter().copied().cycle().take(18).collect();
    let (mut p, l) = drive_waits(&waits);
    assert_eq!(p.class(), SpesClass::ApproxRegular);
    // Loaded from each predicted wait to 4 minutes after it, not in between.
    assert!(p.on_minute((l + 10) * MINUTE_MS).is_some());
    assert!(p.on_minute((l + 14) * MINUTE_MS).is_some());
    assert!(p.on_minute((l + 16) * MINUTE_MS).is_none());
    assert!(p.on_minute((l + 20) * MINUTE_MS).is_some());
    assert!(p.on_minute((l + 30) * MINUTE_MS).is_some());
    assert!(p.on_minute((l + 40) * MINUTE_MS).is_none());
}

#[test]
fn dense_from_short_waits_keeps_five_minutes() {
    // Waits 1..4 evenly: the three commonest cover 75% (< 90%), p90 < 5.
    let waits: Vec<u64> = [1, 2, 3, 4].iter().copied().cycle().take(40).collect();
    let (mut p, _) = drive_waits(&waits);
    assert_eq!(p.class(), SpesClass::Dense);
    assert_eq!(keep_until(&mut p, 100 * MINUTE_MS), 106 * MINUTE_MS);
}

#[test]
fn successive_from_long_runs() {
    // Runs of 12 invoked minutes, waits all different and long.
    let mut minutes = Vec::new();
    let mut start = 0;
    for k in 0..6 {
        minutes.extend(start..start + 12);
        start += 12 + 30 + 17 * k;
    }
    let p = drive(&minutes, last(&minutes) + 1);
    assert_eq!(p.class(), SpesClass::Successive);
}

#[test]
fn irregular_without_repeats_is_pulsed() {
    let waits: Vec<u64> = (0..8).map(|k| 30 + 17 * k).collect();
    let (mut p, _) = drive_waits(&waits);
    assert_eq!(p.class(), SpesClass::Pulsed);
    assert_eq!(keep_until(&mut p, 100 * MINUTE_MS), 104 * MINUTE_MS);
}

#[test]
fn irregular_with_a_repeated_wait_is_possible() {
    // 20 six times out of ten (top three 80%: not approx-regular); the others shorter.
    let waits = [20, 7, 20, 9, 20, 11, 20, 13, 20, 20];
    let (mut p, l) = drive_waits(&waits);
    assert_eq!(p.class(), SpesClass::Possible);
    assert!(p.on_minute((l + 10) * MINUTE_MS).is_none());
    assert!(p.on_minute((l + 21) * MINUTE_MS).is_some());
}

#[test]
fn unknown_until_an_hour_of_history() {
    let minutes: Vec<u64> = (0..50).collect();
    let p = drive(&minutes, 50);
    assert_eq!(p.class(), SpesClass::Unknown);
}

#[test]
fn preload_brings_back_the_last_minutes_concurrency() {
    // A timer firing three invocations at once every 30 minutes.
    let minutes: Vec<u64> = (0..=300).step_by(30).flat_map(|m| [m, m, m]).collect();
    let mut p = Spes::new();
    let mut next = minutes.iter().peekable();
    for m in 0..301 {
        p.on_minute(m * MINUTE_MS);
        let mut n = 0;
        while next.next_if(|&&x| x == m).is_some() {
            p.on_arrival(m * MINUTE_MS + 1000);
            n += 1;
        }
        for _ in 0..n {
            p.on_idle(m * MINUTE_MS + 5000);
        }
    }
    assert_eq!(p.class(), SpesClass::Regular);
    let floor = p.on_minute(329 * MINUTE_MS).expect("pre-loaded");
    assert_eq!(floor.containers, 3);
}
