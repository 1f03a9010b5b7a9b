//! `forewarm replay`: an Azure-format trace against a live node, time-compressed.
//!
//! Each chosen application becomes a code type of a fresh tenant (its duration and memory
//! scaled down to what one machine can run); each trace minute's invocations are placed at
//! random instants within that minute, and the whole timeline runs `--speed` times faster
//! than the trace. The node should run with `--time-scale` equal to `--speed`, so its
//! policies see the trace's own timeline.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use forewarm_http::Method;
use forewarm_node::client::NodeClient;
use forewarm_sim::{ReplayedCode, in_band, spread};
use forewarm_trace::{App, Window, read_trace};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::cli::ReplayArgs;
use crate::progress::Progress;

/// One planned invocation: real offset from the start, code index.
type Planned = (Duration, usize);

/// The apps of `band` (popularity rank quantiles by invocations in the window, most popular
/// first), `n` evenly spread: what `forewarm simulate --apps n` runs too.
fn choose(apps: &[App], band: (f64, f64), n: usize) -> Vec<usize> {
    let counts: Vec<u64> = apps.iter().map(App::invocations).collect();
    spread(&in_band(&counts, Some(band)), n)
}

#[derive(Debug, Default)]
struct Tally {
    latencies: [Vec<f64>; 3],
    errors: std::collections::BTreeMap<u16, u64>,
    /// Memory the replay's idle containers held over the replay, MiB·s of trace time (the
    /// node's wall-time figure times its time scale), if the node said.
    idle_mib_s: Option<f64>,
}

impl Tally {
    /// Cold starts among the invocations served, %.
    fn cold_start_pct(&self) -> f64 {
        let served: usize = self.latencies.iter().map(Vec::len).sum();
        100.0 * self.latencies[0].len() as f64 / served.max(1) as f64
    }
}

/// Nearest-rank percentile (NaN for none: printed as such, not as a zero latency).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    forewarm_policy::nearest_rank(sorted, p).unwrap_or(f64::NAN)
}

/// When each invocation of the `chosen` apps is sent: a trace minute (counted from the window's
/// start, as the reader gives it) lasts `per_minute`, and its invocations, at most
/// `max_per_minute` per app, land at random instants within it. Also how many were dropped
/// over that cap.
fn plan(
    apps: &[App],
    chosen: &[usize],
    per_minute: Duration,
    max_per_minute: u32,
    seed: u64,
) -> (Vec<Planned>, u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut plan: Vec<Planned> = Vec::new();
    let mut dropped = 0u64;
    for (code, &i) in chosen.iter().enumerate() {
        for (minute, count) in apps[i].minute_counts() {
            dropped += u64::from(count.saturating_sub(max_per_minute));
            for _ in 0..count.min(max_per_minute) {
                let at = per_minute.mul_f64(f64::from(minute) + rng.random::<f64>());
                plan.push((at, code));
            }
        }
    }
    (plan, dropped)
}

pub fn run(a: ReplayArgs) -> anyhow::Result<()> {
    ensure!(a.speed > 0.0 && a.speed.is_finite(), "--speed must be > 0");
    ensure!(
        a.apps > 0 && a.minutes > 0,
        "--apps and --minutes must be > 0"
    );
    let (lo, hi) = a.app_band;
    ensure!(
        (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi) && lo < hi,
        "--app-band must be LO:HI with 0 <= LO < HI <= 1"
    );
    let window = Window {
        start_minute: a.skip_minutes,
        minutes: Some(a.minutes),
    };
    let trace = read_trace(&a.trace, window)?;
    let chosen = choose(&trace.apps, a.app_band, a.apps);
    if chosen.is_empty() {
        bail!("no app of the band has an invocation in the window");
    }
    let per_minute = Duration::from_secs_f64(60.0 / a.speed);
    let (mut plan, dropped) = plan(&trace.apps, &chosen, per_minute, a.max_per_minute, a.seed);
    plan.sort();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let tally = rt.block_on(replay(&a, &trace.apps, &chosen, plan.clone()))?;
    report(&a, chosen.len(), plan.len(), dropped, tally);
    Ok(())
}

async fn replay(
    a: &ReplayArgs,
    apps: &[App],
    chosen: &[usize],
    plan: Vec<Planned>,
) -> anyhow::Result<Tally> {
    let admin = NodeClient::new(&a.url, Some(a.admin_token.clone())).map_err(anyhow::Error::msg)?;
    let (status, health) = admin
        .json(Method::GET, "/healthz", Vec::new())
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(status == 200, "{} is not a healthy node: {health}", a.url);
    let scale = health["time_scale"].as_f64().unwrap_or(1.0);
    if (scale - a.speed).abs() > 1e-9 {
        eprintln!(
            "note: the node runs at time scale {scale} but the replay at speed {}: the policy \
             sees a timeline {:.2}x the trace's",
            a.speed,
            scale / a.speed
        );
    }
    let tenant = format!(
        "replay-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    );
    let body = json!({"name": tenant, "max_warm": 10_000, "max_memory_mib": 1 << 24});
    let (status, created) = admin
        .json(Method::POST, "/v1/tenants", body.to_string().into_bytes())
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(
        status == 201,
        "creating tenant {tenant}: {status} {created}"
    );
    let token = created["token"].as_str().unwrap_or_default().to_owned();
    let client = NodeClient::new(&a.url, Some(token)).map_err(anyhow::Error::msg)?;
    for (code, &i) in chosen.iter().enumerate() {
        let body = ReplayedCode::of(&apps[i]).body().to_string().into_bytes();
        let (status, answer) = client
            .json(Method::PUT, &format!("/v1/codes/app-{code}"), body)
            .await
            .map_err(anyhow::Error::msg)?;
        ensure!(status < 300, "registering app-{code}: {status} {answer}");
    }
    eprintln!(
        "tenant {tenant}: {} apps, {} invocations over {:.0} s",
        chosen.len(),
        plan.len(),
        plan.last().map_or(0.0, |(at, _)| at.as_secs_f64())
    );
    let progress = std::sync::Arc::new(Progress::new("replaying"));
    let total = plan.len() as u64;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (at, code) in plan {
        tokio::time::sleep_until(start + at).await;
        let (client, progress, done) = (client.clone(), progress.clone(), done.clone());
        tasks.spawn(async move {
            let sent = Instant::now();
            let answer = client.invoke(&format!("app-{code}"), "").await;
            let ms = sent.elapsed().as_secs_f64() * 1e3;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.update(n, total);
            (answer, ms)
        });
    }
    let mut tally = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        let (answer, ms) = joined.context("an invocation task failed")?;
        match answer {
            Ok(a) if a.status == 200 => {
                let k = match a.start.as_str() {
                    "cold" => 0,
                    "warm" => 1,
                    _ => 2,
                };
                tally.latencies[k].push(ms);
            }
            Ok(a) => *tally.errors.entry(a.status).or_default() += 1,
            Err(_) => *tally.errors.entry(0).or_default() += 1,
        }
    }
    progress.finish();
    // What the tenant's idle containers held while it ran (its code types only: a fresh
    // tenant), in the trace's time.
    match client.json(Method::GET, "/v1/pool", Vec::new()).await {
        Ok((200, pool)) => {
            tally.idle_mib_s = pool["idle_memory_mib_s_total"]
                .as_f64()
                .map(|wall| wall * scale);
        }
        Ok((status, answer)) => eprintln!("note: no idle memory-time: /v1/pool {status} {answer}"),
        Err(e) => eprintln!("note: no idle memory-time: /v1/pool: {e}"),
    }
    Ok(tally)
}

fn report(a: &ReplayArgs, apps: usize, planned: usize, dropped: u64, mut tally: Tally) {
    for l in &mut tally.latencies {
        l.sort_by(f64::total_cmp);
    }
    let served: usize = tally.latencies.iter().map(Vec::len).sum();
    let kinds = ["cold", "warm", "prewarmed"];
    if a.json {
        let per_kind: serde_json::Map<String, serde_json::Value> = kinds
            .iter()
            .zip(&tally.latencies)
            .map(|(k, l)| {
                (
                    (*k).to_owned(),
                    json!({"count": l.len(), "p50_ms": percentile(l, 0.5),
                           "p99_ms": percentile(l, 0.99)}),
                )
            })
            .collect();
        let errors: serde_json::Map<String, serde_json::Value> = tally
            .errors
            .iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect();
        println!(
            "{}",
            json!({"apps": apps, "invocations": planned, "dropped": dropped,
                   "served": served, "starts": per_kind, "errors": errors,
                   "cold_start_pct": tally.cold_start_pct(),
                   "wasted_memory_mib_s": tally.idle_mib_s})
        );
        return;
    }
    println!(
        "replayed {planned} invocations of {apps} apps ({dropped} over --max-per-minute dropped)"
    );
    println!(
        "{:<10} {:>8} {:>7} {:>10} {:>10} {:>10}",
        "start", "count", "share", "p50 ms", "p95 ms", "p99 ms"
    );
    for (k, l) in kinds.iter().zip(&tally.latencies) {
        println!(
            "{:<10} {:>8} {:>6.1}% {:>10.1} {:>10.1} {:>10.1}",
            k,
            l.len(),
            100.0 * l.len() as f64 / served.max(1) as f64,
            percentile(l, 0.5),
            percentile(l, 0.95),
            percentile(l, 0.99)
        );
    }
    if let Some(idle) = tally.idle_mib_s {
        println!(
            "cold starts {:.2}% of those served; idle memory-time {idle:.4e} MiB·s (trace time)",
            tally.cold_start_pct()
        );
    }
    for (status, n) in &tally.errors {
        let what = if *status == 0 {
            String::from("transport error")
        } else {
            format!("HTTP {status}")
        };
        println!("{what:<18} {n:>8}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window that starts past the trace's first minute is replayed over its own length:
    /// minutes come from the reader counted from the window's start (they were once counted
    /// from it twice, and every invocation landed in the first second).
    #[test]
    fn t01_a_skipped_start_spreads_the_window_over_its_minutes() {
        let dir = tempfile::tempdir().expect("tempdir");
        forewarm_tests::gen_trace(dir.path(), 200, 1, 3);
        let window = Window {
            start_minute: 600,
            minutes: Some(60),
        };
        let trace = read_trace(dir.path(), window).expect("the trace reads");
        let chosen = choose(&trace.apps, (0.0, 1.0), 20);
        assert!(!chosen.is_empty());
        let per_minute = Duration::from_secs(1);
        let (plan, _) = plan(&trace.apps, &chosen, per_minute, 1000, 1);
        let last = plan.iter().map(|(at, _)| *at).max().expect("invocations");
        assert!(last < Duration::from_secs(60), "{last:?}");
        // The busiest of 20 apps run every minute of the hour: the plan covers the hour.
        assert!(last > Duration::from_secs(50), "{last:?}");
        let first_minute = plan.iter().filter(|(at, _)| *at < per_minute).count();
        assert!(
            first_minute * 10 < plan.len(),
            "{first_minute} of {}",
            plan.len()
        );
    }
}
