//! Simulator: each policy on hand-made arrivals, invariants on generated traces, and the
//! no-look-ahead property.

use forewarm_policy::{
    AppContext, AppPolicy, IdleAction, MINUTE_MS, Millis, PolicySpec, WarmFloor,
};
use forewarm_sim::{
    AppOutcome, AppSim, Invocation, Replay, ReplayedCode, SimConfig, SimParams, Workload, in_band,
    simulate, spread,
};
use forewarm_tests::gen_trace;
use forewarm_trace::{Trace, Window, read_trace};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const HOUR: Millis = 60 * MINUTE_MS;

fn workload(arrivals: &[(Millis, Millis)]) -> Workload {
    Workload {
        invocations: arrivals
            .iter()
            .map(|&(arrival, duration_ms)| Invocation {
                arrival,
                duration_ms,
                memory_mib: 200.0,
            })
            .collect(),
        app_memory_mib: 200.0,
    }
}

fn params(end: Millis) -> SimParams {
    SimParams {
        measure_from: 0,
        end,
        cold_start_ms: 1_000,
        profiles: false,
    }
}

fn run(spec: &str, w: &Workload, p: SimParams) -> AppOutcome {
    let spec: PolicySpec = spec.parse().expect("policy name");
    let mut policy = spec
        .build(AppContext {
            declared_mib: w.app_memory_mib,
            past_costs_mib: &[],
            deferred_fits: false,
        })
        .expect("online policy");
    AppSim::run(policy.as_mut(), w, p)
}

fn periodic(period: Millis, n: u64) -> Vec<(Millis, Millis)> {
    (0..n).map(|i| (i * period + 7_000, 500)).collect()
}

#[test]
fn t01_keepalive_is_warm_inside_the_window_and_cold_outside() {
    let m = MINUTE_MS;
    let w = workload(&[(0, 1_000), (5 * m, 1_000), (20 * m, 1_000), (25 * m, 1_000)]);
    let o = run("keepalive-10m", &w, params(HOUR));
    assert_eq!((o.invocations, o.cold_starts, o.prewarms), (4, 2, 0));
    // Idle: 5m - 2s (cold start + run), 10m after the 2nd run, 5m - 2s, 10m after the last.
    let idle_ms = (5 * m - 2_000) + 10 * m + (5 * m - 2_000) + 10 * m;
    assert!(
        (o.wasted_mib_ms - 200.0 * idle_ms as f64).abs() < 1.0,
        "{}",
        o.wasted_mib_ms
    );
}

#[test]
fn t02_no_unloading_is_cold_once() {
    let w = workload(&periodic(3 * HOUR, 6));
    let o = run("no-unloading", &w, params(20 * HOUR));
    assert_eq!((o.invocations, o.cold_starts), (6, 1));
}

#[test]
fn t03_concurrent_arrivals_need_their_own_containers() {
    let w = workload(&[
        (0, 5_000),
        (1, 5_000),
        (2, 5_000),
        (MINUTE_MS, 1_000),
        (MINUTE_MS + 1, 1_000),
        (MINUTE_MS + 2, 1_000),
    ]);
    let o = run("keepalive-10m", &w, params(HOUR));
    assert_eq!((o.invocations, o.cold_starts), (6, 3));
}

#[test]
fn t04_hybrid_histogram_prewarms_a_periodic_app() {
    let w = workload(&periodic(30 * MINUTE_MS, 40));
    let o = run("hybrid-histogram-4h", &w, params(21 * HOUR));
    assert_eq!(o.invocations, 40);
    assert!(o.cold_starts <= 2, "{o:?}");
    assert!(o.prewarmed_starts >= 30, "{o:?}");
    // The app is unloaded between runs: much less idle time than a 4 h keep-alive.
    let ka = run("keepalive-60m", &w, params(21 * HOUR));
    assert!(o.wasted_mib_ms < 0.35 * ka.wasted_mib_ms, "{o:?} vs {ka:?}");
}

#[test]
fn t05_forewarm_prewarms_a_periodic_app_tighter_than_the_histogram() {
    let w = workload(&periodic(2 * HOUR, 30));
    let end = 61 * HOUR;
    let fw = run("forewarm", &w, params(end));
    let hh = run("hybrid-histogram-4h", &w, params(end));
    assert!(fw.cold_starts <= 4, "{fw:?}");
    assert!(fw.prewarmed_starts >= 25, "{fw:?}");
    assert!(
        fw.wasted_mib_ms < 0.5 * hh.wasted_mib_ms,
        "{fw:?} vs {hh:?}"
    );
}

#[test]
fn t06_hybrid_histogram_falls_back_to_the_forecast_beyond_its_range() {
    // Every 3 h is out of a 1 h histogram's range.
    let w = workload(&periodic(3 * HOUR, 30));
    let o = run("hybrid-histogram-1h", &w, params(91 * HOUR));
    assert!(o.prewarmed_starts >= 20, "{o:?}");
}

#[test]
fn t07_oracle_is_never_cold() {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut arrivals: Vec<(Millis, Millis)> = (0..500)
        .map(|_| (rng.random_range(0..6 * HOUR), rng.random_range(1..200_000)))
        .collect();
    arrivals.sort_unstable();
    let w = workload(&arrivals);
    let mut oracle = forewarm_policy::Oracle::new(
        &arrivals
            .iter()
            .map(|&(arrival, busy_ms)| forewarm_policy::OracleInvocation { arrival, busy_ms })
            .collect::<Vec<_>>(),
        200,
    );
    let o = AppSim::run(&mut oracle, &w, params(7 * HOUR));
    assert_eq!((o.invocations, o.cold_starts), (500, 0));
    assert!(o.wasted_mib_ms > 0.0);
}

#[test]
fn t08_profiles_count_misfits_and_serve_them_cold() {
    let m = MINUTE_MS;
    let mut invocations: Vec<Invocation> = (0..7)
        .map(|i| Invocation {
            arrival: i * 20 * m,
            duration_ms: 1_000,
            memory_mib: 100.0,
        })
        .collect();
    invocations.push(Invocation {
        arrival: 125 * m,
        duration_ms: 1_000,
        memory_mib: 900.0,
    });
    let w = Workload {
        invocations,
        app_memory_mib: 1_000.0,
    };
    let p = SimParams {
        profiles: true,
        ..params(3 * HOUR)
    };
    let o = run("keepalive-10m", &w, p);
    // Every 20 minutes is beyond a 10-minute keep-alive, so all are cold; the 7th container
    // (at 120 min) is sized from the profile (128 MiB) and still warm at 125 min, but the
    // 900 MiB invocation does not fit it.
    assert_eq!((o.invocations, o.cold_starts, o.misfits), (8, 8, 1));
}

/// 150 generated apps, read for 7 hours: 1 hour of warm-up, 6 measured.
fn small_trace() -> (Trace, SimConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_trace(dir.path(), 150, 1, 11);
    let trace = read_trace(
        dir.path(),
        Window {
            start_minute: 0,
            minutes: Some(420),
        },
    )
    .expect("reads");
    let config = SimConfig {
        hours: Some(6.0),
        skip_minutes: 60,
        ..SimConfig::default()
    };
    (trace, config)
}

#[test]
fn t09_invariants_on_a_generated_trace() {
    let (trace, config) = small_trace();
    let report = simulate(&trace, &config, &|_, _| {}).expect("simulates");
    let expected: u64 = trace
        .apps
        .iter()
        .flat_map(|a| a.functions.iter().flat_map(|f| f.counts.iter()))
        .filter(|(m, _)| *m >= 60)
        .map(|(_, c)| u64::from(*c))
        .sum();
    assert_eq!(
        report.trace.invocations, expected,
        "every invocation counted once"
    );
    assert_eq!(report.trace.minutes, 360);
    let oracle = report
        .policies
        .iter()
        .find(|p| p.name == "oracle")
        .expect("oracle ran");
    assert_eq!(report.policies.len(), 6);
    for p in &report.policies {
        assert_eq!(p.invocations, expected, "{}", p.name);
        assert!(p.cold_starts <= p.invocations, "{}", p.name);
        assert!(p.wasted_memory_mib_s >= 0.0, "{}", p.name);
        assert!(oracle.cold_starts <= p.cold_starts, "{}", p.name);
        let a = p.app_cold_start_pct;
        assert!(
            a.p50 <= a.p75 && a.p75 <= a.p90 && a.p90 <= a.p99,
            "{}",
            p.name
        );
    }
    let ka10 = &report.policies[0];
    let ka60 = &report.policies[1];
    assert!(ka60.cold_starts <= ka10.cold_starts);
    assert!(ka60.wasted_memory_mib_s >= ka10.wasted_memory_mib_s);
}

#[test]
fn t10_same_seed_same_report_and_band_selects_the_middle() {
    let (trace, config) = small_trace();
    let strip = |mut r: forewarm_sim::Report| {
        r.policies.iter_mut().for_each(|p| p.sim_seconds = 0.0);
        r
    };
    let a = strip(simulate(&trace, &config, &|_, _| {}).expect("a"));
    let b = strip(simulate(&trace, &config, &|_, _| {}).expect("b"));
    assert_eq!(a, b);
    let band = SimConfig {
        app_band: Some((0.25, 0.75)),
        ..config.clone()
    };
    let mid = simulate(&trace, &band, &|_, _| {}).expect("band");
    let half = a.trace.apps as f64 / 2.0;
    assert!(
        (mid.trace.apps as f64 - half).abs() <= 1.0,
        "{} of {}",
        mid.trace.apps,
        a.trace.apps
    );
    let sampled = SimConfig {
        sample: Some(10),
        ..band
    };
    assert_eq!(
        simulate(&trace, &sampled, &|_, _| {})
            .expect("sample")
            .trace
            .apps,
        10
    );
}

/// Logs every call and decision, to compare two runs.
struct Recording {
    inner: Box<dyn AppPolicy>,
    log: Vec<(Millis, String)>,
}

impl AppPolicy for Recording {
    fn on_arrival(&mut self, now: Millis) {
        self.inner.on_arrival(now);
        self.log.push((now, "arrival".into()));
    }
    fn on_idle(&mut self, now: Millis) -> IdleAction {
        let a = self.inner.on_idle(now);
        self.log.push((now, format!("idle {a:?}")));
        a
    }
    fn on_minute(&mut self, now: Millis) -> Option<WarmFloor> {
        let f = self.inner.on_minute(now);
        self.log.push((now, format!("minute {f:?}")));
        f
    }
    fn scale_out(&mut self, now: Millis) -> Option<WarmFloor> {
        let f = self.inner.scale_out(now);
        self.log.push((now, format!("scale out {f:?}")));
        f
    }
    fn wants_minutes(&self) -> bool {
        self.inner.wants_minutes()
    }
}

fn record(spec: PolicySpec, w: &Workload, end: Millis) -> Vec<(Millis, String)> {
    let mut r = Recording {
        inner: spec
            .build(AppContext {
                declared_mib: w.app_memory_mib,
                past_costs_mib: &[],
                deferred_fits: false,
            })
            .expect("online"),
        log: Vec::new(),
    };
    AppSim::run(&mut r, w, params(end));
    r.log
}

#[test]
fn t11_no_policy_looks_ahead() {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_trace(dir.path(), 60, 1, 21);
    let trace = read_trace(
        dir.path(),
        Window {
            start_minute: 0,
            minutes: Some(600),
        },
    )
    .expect("reads");
    let end = 600 * MINUTE_MS;
    let mut rng = SmallRng::seed_from_u64(99);
    let mut checked = 0;
    for (i, app) in trace.apps.iter().enumerate() {
        let w = Workload::draw(app, i as u64, 3, false, 256.0);
        if w.invocations.len() < 5 {
            continue;
        }
        for spec in [
            PolicySpec::NoUnloading,
            PolicySpec::KeepAlive { minutes: 10 },
            PolicySpec::HybridHistogram { hours: 1 },
            PolicySpec::HybridHistogram { hours: 4 },
            PolicySpec::FOREWARM,
            PolicySpec::Spes,
        ] {
            let cut = rng.random_range(0..end);
            // Same past, different future: drop, move and add arrivals after the cut.
            let mut future = w.clone();
            future
                .invocations
                .retain(|inv| inv.arrival <= cut || rng.random::<f64>() < 0.5);
            for _ in 0..20 {
                future.invocations.push(Invocation {
                    arrival: rng.random_range(cut + 1..end + 1),
                    duration_ms: rng.random_range(1..100_000),
                    memory_mib: 256.0,
                });
            }
            future.invocations.sort_by_key(|inv| inv.arrival);
            let before = |log: Vec<(Millis, String)>| -> Vec<(Millis, String)> {
                log.into_iter().filter(|(t, _)| *t <= cut).collect()
            };
            let a = before(record(spec, &w, end));
            let b = before(record(spec, &future, end));
            assert_eq!(
                a, b,
                "{spec} decided differently before {cut} ms when only the future changed (app {i})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} cases");
}

#[test]
fn t12_per_app_rows_and_classes_add_up_to_the_totals() {
    let (trace, config) = small_trace();
    let config = SimConfig {
        per_app: true,
        ..config
    };
    let report = simulate(&trace, &config, &|_, _| {}).expect("simulates");
    assert_eq!(
        report.apps.len(),
        report.trace.apps * report.policies.len(),
        "one row per app and policy"
    );
    let csv = report.per_app_csv();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (policy, inv, cold, idle) = (
        col("policy"),
        col("invocations"),
        col("cold_starts"),
        col("idle_mib_s"),
    );
    for p in &report.policies {
        let (mut i, mut c, mut w) = (0u64, 0u64, 0f64);
        for line in csv.lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            if cells[policy] != p.name {
                continue;
            }
            i += cells[inv].parse::<u64>().expect("invocations");
            c += cells[cold].parse::<u64>().expect("cold starts");
            w += cells[idle].parse::<f64>().expect("idle");
        }
        assert_eq!(i, p.invocations, "{}", p.name);
        assert_eq!(c, p.cold_starts, "{}", p.name);
        // Rows are rounded to 0.1 MiB·s each.
        let slack = 0.05 * report.trace.apps as f64 + 1e-6 * p.wasted_memory_mib_s;
        assert!(
            (w - p.wasted_memory_mib_s).abs() <= slack,
            "{}: {w}",
            p.name
        );
        // The class summary partitions the same totals.
        let apps: usize = p.by_class.iter().map(|c| c.apps).sum();
        let cold_sum: u64 = p.by_class.iter().map(|c| c.cold_starts).sum();
        let inv_sum: u64 = p.by_class.iter().map(|c| c.invocations).sum();
        let waste_sum: f64 = p.by_class.iter().map(|c| c.wasted_memory_mib_s).sum();
        assert_eq!(
            (apps, inv_sum, cold_sum),
            (report.trace.apps, p.invocations, p.cold_starts),
            "{}",
            p.name
        );
        assert!((waste_sum - p.wasted_memory_mib_s).abs() <= 1e-6 * waste_sum.max(1.0));
    }
    assert!(lines.count() > 0);
    let table = report.class_table("hybrid-histogram-4h");
    assert!(
        table.contains("101-1000") || table.contains("11-100"),
        "{table}"
    );
}

#[test]
fn t13_apps_runs_what_replay_sends_a_live_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_trace(dir.path(), 150, 1, 11);
    let read = |start_minute, minutes| {
        read_trace(
            dir.path(),
            Window {
                start_minute,
                minutes: Some(minutes),
            },
        )
        .expect("reads")
    };
    let band = (0.3, 0.7);
    // `forewarm replay --skip-minutes 60 --minutes 240 --apps 12`: the window alone is read,
    // apps ranked by their invocations in it.
    let window = read(60, 240);
    let counts: Vec<u64> = window.apps.iter().map(|a| a.invocations()).collect();
    let replayed: std::collections::BTreeSet<(String, String)> =
        spread(&in_band(&counts, Some(band)), 12)
            .into_iter()
            .map(|i| (window.apps[i].owner.clone(), window.apps[i].app.clone()))
            .collect();
    assert_eq!(replayed.len(), 12);
    // `forewarm simulate --skip-minutes 60 --hours 4 --apps 12`: read from minute 0.
    let config = SimConfig {
        hours: Some(4.0),
        skip_minutes: 60,
        app_band: Some(band),
        replay: Some(Replay {
            apps: 12,
            speed: 60.0,
        }),
        policies: vec!["keepalive-10m".parse().expect("policy")],
        per_app: true,
        ..SimConfig::default()
    };
    let report = simulate(&read(0, 300), &config, &|_, _| {}).expect("simulates");
    let simulated: std::collections::BTreeSet<(String, String)> = report
        .apps
        .iter()
        .map(|r| (r.owner.clone(), r.app.clone()))
        .collect();
    assert_eq!(simulated, replayed, "the same applications");
    // A sample is the other way to choose apps, not both.
    let both = SimConfig {
        sample: Some(3),
        ..config
    };
    assert!(simulate(&read(0, 300), &both, &|_, _| {}).is_err());
}

#[test]
fn t14_a_replayed_workload_holds_its_container_for_its_cpu_time_times_the_speed() {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_trace(dir.path(), 20, 1, 3);
    let trace = read_trace(
        dir.path(),
        Window {
            start_minute: 0,
            minutes: None,
        },
    )
    .expect("reads");
    let app = trace
        .apps
        .iter()
        .find(|a| a.invocations() > 0)
        .expect("an app");
    let code = ReplayedCode::of(app);
    assert!((1..=20).contains(&code.cpu_ms) && (1..=32).contains(&code.mem_mib));
    let w = Workload::draw(app, 0, 1, false, 256.0).replayed(&code, 60.0);
    assert_eq!(w.app_memory_mib, 128.0);
    assert!(
        w.invocations
            .iter()
            .all(|i| i.duration_ms == code.cpu_ms * 60 && i.memory_mib == 128.0)
    );
    assert_eq!(code.body()["max_memory_mib"], 128);
}
