//! Regions: every application's invocations come from regions (the trace's regional demand,
//! `forewarm trace gen --regions`), each region runs its own pool of the application under the
//! policy, and every request is placed by the live Router's rule
//! ([`forewarm_policy::routing::route`]): an idle container that fits at home, else the nearest
//! region within the latency budget holding one, else a cold start.
//!
//! Two ways to place a policy's pools ([`Placing`]):
//! - **per region** (`forewarm`, `hybrid-histogram-4h`, …): each region keeps warm what its own
//!   arrivals teach its policy, and a cold start happens at home;
//! - **geo** (`forewarm-geo`): regions within the latency budget of each other share one warm
//!   pool. Every 10 minutes each application's *holders* are chosen from its recent demand per
//!   region (the rate the replicated model summaries carry), greedily: the region whose pool
//!   would cover the most demand within the budget per dollar of memory holds it for all of
//!   them, then the next among the rest. A request with no idle fit within the budget starts
//!   its container at its region's holder, where it stays for the holder's policy to keep, so
//!   a group's demand teaches one pool instead of scattering warm containers over every region.
//!
//! Reported per policy beside the usual figures: request latency (round trip to the serving
//! region + cold start; queues are empty at unlimited capacity), the share of requests served
//! in another region, and dollars: memory held (idle and busy) at each region's price, requests
//! at the serving region's price, and the payload sent each way between regions at the sending
//! region's egress price.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use forewarm_policy::routing::{Decision, Here, Remote, route};
use forewarm_policy::{
    AppContext, AppPolicy, AppPool, ContainerId, MINUTE_MS, Millis, Placement, PolicySpec,
    PoolObserver,
};
use forewarm_trace::{AppRegions, RegionalDemand};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use forewarm_trace::Trace;
use rayon::prelude::*;

use crate::config::{ConfigError, SimConfig};
use crate::engine::{AppOutcome, SimParams};
use crate::report::{PolicyReport, Report, TraceSummary};
use crate::simulate::{default_memory_mb, past_costs, select_apps};
use crate::workload::Workload;

/// A region's list prices, US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegionPrice {
    /// Memory held per GiB and second.
    pub memory_gib_s_usd: f64,
    /// One request served.
    pub request_usd: f64,
    /// Data sent from this region to another, per GiB.
    pub egress_gib_usd: f64,
}

/// The regions of a run: names (the regional demand's order), round trips and prices.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionMap {
    /// Region names.
    pub names: Vec<String>,
    /// Round trip between two regions, ms (`rtt_ms[a][a]` = 0).
    pub rtt_ms: Vec<Vec<f64>>,
    /// Prices per region.
    pub prices: Vec<RegionPrice>,
}

/// What a regional run needs beyond [`crate::SimConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct RegionalSetup {
    /// The regions.
    pub map: RegionMap,
    /// Where each application's demand comes from.
    pub demand: RegionalDemand,
    /// A request may be served at most this far (round trip, ms) from its region.
    pub max_extra_latency_ms: f64,
    /// Data sent each way when a request is served in another region, KiB.
    pub payload_kib: f64,
}

/// How a policy's pools are placed over the regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placing {
    /// One pool per region serving only its own region (`<policy>-isolated`): a platform
    /// deployed region by region, as OpenWhisk or Knative are.
    Isolated,
    /// One pool per region, with the Router sending a request to a warm fit nearby; cold
    /// starts at home (`<policy>`: what the live node does).
    PerRegion,
    /// Pools shared by the regions within the latency budget of a holder (see the module).
    Geo,
}

/// A policy of a regional run: `<policy>` or `<policy>-geo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionalPolicy {
    /// The policy every pool runs.
    pub spec: PolicySpec,
    /// How its pools are placed.
    pub placing: Placing,
}

impl FromStr for RegionalPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, placing) = if let Some(name) = s.strip_suffix("-geo") {
            (name, Placing::Geo)
        } else if let Some(name) = s.strip_suffix("-isolated") {
            (name, Placing::Isolated)
        } else {
            (s, Placing::PerRegion)
        };
        let spec: PolicySpec = name.parse().map_err(|e| format!("{e}"))?;
        if matches!(spec, PolicySpec::FaasCache { .. } | PolicySpec::Oracle) {
            return Err(format!(
                "{s}: not with --regions (its memory or knowledge spans applications or the future)"
            ));
        }
        Ok(Self { spec, placing })
    }
}

impl fmt::Display for RegionalPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.placing {
            Placing::Isolated => write!(f, "{}-isolated", self.spec),
            Placing::PerRegion => write!(f, "{}", self.spec),
            Placing::Geo => write!(f, "{}-geo", self.spec),
        }
    }
}

/// Request latency percentiles, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    /// Median request.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Dollars over the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CostUsd {
    /// Memory held, idle and busy.
    pub memory: f64,
    /// Requests served.
    pub requests: f64,
    /// Payload sent between regions.
    pub egress: f64,
    /// All of it.
    pub total: f64,
}

/// The regional figures of one policy (in its JSON object beside the usual fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RegionalFigures {
    /// Request latency: round trip to the serving region + cold start.
    pub latency_ms: LatencyMs,
    /// Requests served in another region than their own, %.
    pub served_elsewhere_pct: f64,
    /// Dollars.
    pub cost_usd: CostUsd,
}

/// One application under one regional policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionalOutcome {
    /// Invocations, cold starts, idle memory-time over every region.
    pub outcome: AppOutcome,
    /// Requests served in another region.
    pub served_elsewhere: u64,
    /// Latency (whole ms) → requests.
    pub latency: BTreeMap<u32, u64>,
    /// Dollars.
    pub cost: CostUsd,
}

impl RegionalOutcome {
    /// Add `other` into `self`.
    pub fn add(&mut self, other: &RegionalOutcome) {
        let (o, p) = (&mut self.outcome, &other.outcome);
        o.invocations += p.invocations;
        o.cold_starts += p.cold_starts;
        o.prewarmed_starts += p.prewarmed_starts;
        o.wasted_mib_ms += p.wasted_mib_ms;
        o.prewarms += p.prewarms;
        o.misfits += p.misfits;
        self.served_elsewhere += other.served_elsewhere;
        for (ms, n) in &other.latency {
            *self.latency.entry(*ms).or_default() += n;
        }
        self.cost.memory += other.cost.memory;
        self.cost.requests += other.cost.requests;
        self.cost.egress += other.cost.egress;
        self.cost.total += other.cost.total;
    }

    /// The figures of a total.
    pub fn figures(&self) -> RegionalFigures {
        let n: u64 = self.latency.values().sum();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (ms, k) in &self.latency {
                seen += k;
                if seen >= rank {
                    return f64::from(*ms);
                }
            }
            0.0
        };
        RegionalFigures {
            latency_ms: LatencyMs {
                p50: at(0.50),
                p99: at(0.99),
            },
            served_elsewhere_pct: if self.outcome.invocations == 0 {
                0.0
            } else {
                100.0 * self.served_elsewhere as f64 / self.outcome.invocations as f64
            },
            cost_usd: self.cost,
        }
    }
}

/// Idle memory of one region's pool, clipped to the measured window.
struct RegionAccounting {
    params: SimParams,
    idle_mib_ms: f64,
    prewarms: u64,
}

impl PoolObserver for RegionAccounting {
    fn idle(&mut self, mib: u32, from: Millis, to: Millis) {
        let (from, to) = (from.max(self.params.measure_from), to.min(self.params.end));
        if to > from {
            self.idle_mib_ms += f64::from(mib) * (to - from) as f64;
        }
    }

    fn prewarmed(&mut self, _id: ContainerId, at: Millis) {
        if at >= self.params.measure_from && at < self.params.end {
            self.prewarms += 1;
        }
    }
}

/// Draw the region each invocation of `workload` comes from.
pub fn origins(
    workload: &Workload,
    demand: &RegionalDemand,
    app: &AppRegions,
    seed: u64,
) -> Vec<usize> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut weights = vec![0.0; demand.zones.len()];
    let mut minute = u64::MAX;
    let mut total = 0.0;
    workload
        .invocations
        .iter()
        .map(|inv| {
            if inv.arrival / MINUTE_MS != minute {
                minute = inv.arrival / MINUTE_MS;
                demand.weights(app, minute, &mut weights);
                total = weights.iter().sum();
            }
            let mut x = rng.random::<f64>() * total;
            for (r, w) in weights.iter().enumerate() {
                if x < *w {
                    return r;
                }
                x -= w;
            }
            weights.iter().rposition(|w| *w > 0.0).unwrap_or(0)
        })
        .collect()
}

/// Minutes between two choices of an application's holders (geo).
const HOLDERS_EVERY_MINUTES: u64 = 10;
/// Half-life of the demand per region that holders are chosen from (geo), minutes.
const DEMAND_HALF_LIFE_MINUTES: f64 = 60.0;

/// A region that holds for others keeps holding while its cover, times this, is the best:
/// demand turns with the sun, and a pool moved to a new holder pays its starts again.
pub const HOLDER_STICKINESS: f64 = 1.25;

/// For each region, the region whose pool serves it (geo): greedily the region covering the
/// most not-yet-covered demand within `budget_ms` per dollar of memory (the holders of
/// `current` favoured by [`HOLDER_STICKINESS`]), until all demand is covered; a region without
/// demand holds for itself.
pub fn holders(demand: &[f64], map: &RegionMap, budget_ms: f64, current: &[usize]) -> Vec<usize> {
    let n = demand.len();
    let mut holder = vec![usize::MAX; n];
    let near = |r: usize, g: usize| map.rtt_ms[r][g] <= budget_ms;
    loop {
        let best = (0..n)
            .map(|g| {
                let covered: f64 = (0..n)
                    .filter(|&r| holder[r] == usize::MAX && near(r, g))
                    .map(|r| demand[r])
                    .sum();
                let price = map.prices[g].memory_gib_s_usd.max(f64::MIN_POSITIVE);
                let sticky = if current.contains(&g) {
                    HOLDER_STICKINESS
                } else {
                    1.0
                };
                (g, covered / price * sticky, demand[g])
            })
            .filter(|(_, score, _)| *score > 0.0)
            .max_by(|a, b| {
                a.1.total_cmp(&b.1)
                    .then(a.2.total_cmp(&b.2))
                    .then(b.0.cmp(&a.0))
            });
        let Some((g, _, _)) = best else { break };
        for (r, h) in holder.iter_mut().enumerate() {
            if *h == usize::MAX && near(r, g) {
                *h = g;
            }
        }
    }
    for (r, h) in holder.iter_mut().enumerate() {
        if *h == usize::MAX {
            *h = r;
        }
    }
    holder
}

/// Run one application's `workload` (whose invocations come from `origins`) under `policy`
/// in every region of `setup`.
pub fn run_app(
    policy: RegionalPolicy,
    context: AppContext<'_>,
    workload: &Workload,
    origins: &[usize],
    setup: &RegionalSetup,
    params: SimParams,
) -> RegionalOutcome {
    let map = &setup.map;
    let n = map.names.len();
    let mib = workload.app_memory_mib.ceil().max(1.0);
    // A region's pool opens at the first request it serves (as a node's does at first sight):
    // most applications are asked for in a few regions, and a pool that exists ticks every
    // minute.
    let mut pools: Vec<Option<AppPool<Box<dyn AppPolicy>>>> = (0..n).map(|_| None).collect();
    let open = |now: Millis| {
        let built = policy
            .spec
            .build(context)
            .expect("checked when parsed: not the oracle");
        let mut pool = AppPool::new(built, workload.app_memory_mib, false);
        pool.set_start_ms(params.cold_start_ms);
        pool.ticks_from(now);
        pool
    };
    let fits = |pool: &Option<AppPool<Box<dyn AppPolicy>>>, now: Millis, mib: f64| {
        pool.as_ref().is_some_and(|p| p.has_idle_fit(now, mib))
    };
    let mut acc: Vec<RegionAccounting> = (0..n)
        .map(|_| RegionAccounting {
            params,
            idle_mib_ms: 0.0,
            prewarms: 0,
        })
        .collect();
    let mut busy_mib_ms = vec![0.0; n];
    let mut served = vec![0u64; n];
    let mut out = RegionalOutcome::default();
    let mut running: BinaryHeap<Reverse<(Millis, usize, ContainerId)>> = BinaryHeap::new();
    // Geo: decayed demand per region, and who holds for whom.
    let mut demand = vec![0.0; n];
    let mut demand_at: Millis = 0;
    let mut holder: Vec<usize> = (0..n).collect();
    let mut holders_at: Option<u64> = None;
    let payload_gib = setup.payload_kib / (1024.0 * 1024.0);
    let near: Vec<Vec<usize>> = (0..n)
        .map(|home| {
            (0..n)
                .filter(|&r| r != home && map.rtt_ms[home][r] <= setup.max_extra_latency_ms)
                .collect()
        })
        .collect();
    for (inv, &home) in workload.invocations.iter().zip(origins) {
        let now = inv.arrival;
        if now >= params.end {
            break;
        }
        advance(now, &mut pools, &mut running, &mut acc);
        if policy.placing == Placing::Geo {
            let decay =
                0.5f64.powf((now - demand_at) as f64 / (DEMAND_HALF_LIFE_MINUTES * 60_000.0));
            demand.iter_mut().for_each(|d| *d *= decay);
            demand_at = now;
            demand[home] += 1.0;
            let slot = now / (HOLDERS_EVERY_MINUTES * MINUTE_MS);
            if holders_at != Some(slot) {
                holders_at = Some(slot);
                holder = holders(&demand, map, setup.max_extra_latency_ms, &holder);
            }
        }
        let rtt = &map.rtt_ms[home];
        let here = Here {
            fits: fits(&pools[home], now, inv.memory_mib),
            cold_ms: params.cold_start_ms as f64,
            queue_ms: 0.0,
        };
        // Only regions within the budget are offered (the tenant may use no other), so the
        // rule's `may_use` has nothing left to refuse.
        let members = near[home].iter().map(|&r| Remote {
            member: r,
            region: map.names[r].as_str(),
            inventory_age: Duration::ZERO,
            fits: fits(&pools[r], now, inv.memory_mib),
            rtt_ms: Some(rtt[r]),
            queue_ms: 0.0,
        });
        let at = match policy.placing {
            Placing::Isolated => home,
            _ => match route(here, members, |_| true) {
                Decision::Forward { member, .. } => member,
                Decision::Local(_) if here.fits || policy.placing == Placing::PerRegion => home,
                Decision::Local(_) => holder[home],
            },
        };
        let pool = pools[at].get_or_insert_with(|| open(now));
        let placement = pool.arrive(now, inv.memory_mib, &mut acc[at]);
        let (id, cold, container_mib) = match placement {
            Placement::Warm(id) | Placement::Prewarmed(id) => (id, false, mib),
            Placement::Cold { id, mib, .. } => (id, true, f64::from(mib)),
        };
        let done = now + inv.duration_ms + if cold { params.cold_start_ms } else { 0 };
        running.push(Reverse((done, at, id)));
        if now < params.measure_from {
            continue;
        }
        let o = &mut out.outcome;
        o.invocations += 1;
        o.cold_starts += u64::from(cold);
        o.prewarmed_starts += u64::from(matches!(placement, Placement::Prewarmed(_)));
        // Busy memory is counted to the completion, past the window's end if it runs on.
        busy_mib_ms[at] += container_mib * (done - now) as f64;
        served[at] += 1;
        let latency = rtt[at]
            + if cold {
                params.cold_start_ms as f64
            } else {
                0.0
            };
        *out.latency.entry(latency.round() as u32).or_default() += 1;
        if at != home {
            out.served_elsewhere += 1;
            out.cost.egress +=
                payload_gib * (map.prices[home].egress_gib_usd + map.prices[at].egress_gib_usd);
        }
    }
    advance(params.end, &mut pools, &mut running, &mut acc);
    for (r, pool) in pools.iter_mut().enumerate() {
        if let Some(pool) = pool {
            pool.finish(params.end, &mut acc[r]);
        }
        let price = &map.prices[r];
        let mib_ms = acc[r].idle_mib_ms + busy_mib_ms[r];
        out.cost.memory += mib_ms / 1024.0 / 1000.0 * price.memory_gib_s_usd;
        out.cost.requests += served[r] as f64 * price.request_usd;
        out.outcome.wasted_mib_ms += acc[r].idle_mib_ms;
        out.outcome.prewarms += acc[r].prewarms;
    }
    out.cost.total = out.cost.memory + out.cost.requests + out.cost.egress;
    out
}

/// Completions and pool events due at or before `t`, each pool in time order.
fn advance(
    t: Millis,
    pools: &mut [Option<AppPool<Box<dyn AppPolicy>>>],
    running: &mut BinaryHeap<Reverse<(Millis, usize, ContainerId)>>,
    acc: &mut [RegionAccounting],
) {
    loop {
        let completion = running.peek().map_or(Millis::MAX, |Reverse((e, _, _))| *e);
        let (due, r) = pools
            .iter()
            .enumerate()
            .filter_map(|(r, p)| Some((p.as_ref()?.next_due(), r)))
            .min()
            .unwrap_or((Millis::MAX, 0));
        if completion.min(due) > t {
            return;
        }
        if completion <= due {
            if let Some(Reverse((end, region, id))) = running.pop()
                && let Some(pool) = &mut pools[region]
            {
                pool.complete(end, id, &mut acc[region]);
            }
        } else if !pools[r]
            .as_mut()
            .is_some_and(|p| p.fire_due(t, &mut acc[r]))
        {
            return;
        }
    }
}

/// Simulate `trace` under `config` (its policies are ignored: `policies` run instead) with
/// each application's demand spread over `setup`'s regions.
pub fn simulate_regional(
    trace: &Trace,
    config: &SimConfig,
    policies: &[RegionalPolicy],
    setup: &RegionalSetup,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Report, ConfigError> {
    config.validate()?;
    if config.replay.is_some() || config.profiles {
        return Err(ConfigError::Regions(
            "--regions runs the trace's own workloads: not with --apps or --profiles".into(),
        ));
    }
    if policies.is_empty() {
        return Err(ConfigError::NoPolicy);
    }
    let names: Vec<&str> = setup.demand.zones.iter().map(|z| z.name.as_str()).collect();
    if names
        != setup
            .map
            .names
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    {
        return Err(ConfigError::Regions(format!(
            "the trace's regional demand is for regions {names:?}, the topology has {:?}: \
             generate it with `forewarm trace gen --regions` and the same file",
            setup.map.names
        )));
    }
    let measure_from_minute = config.skip_minutes.min(trace.minutes);
    let params = SimParams {
        measure_from: measure_from_minute * MINUTE_MS,
        end: trace.minutes * MINUTE_MS,
        cold_start_ms: config.cold_start_ms,
        profiles: false,
    };
    let apps = select_apps(trace, measure_from_minute, config);
    let missing = apps
        .iter()
        .filter(|&&i| {
            let a = &trace.apps[i];
            !setup
                .demand
                .apps
                .contains_key(&(a.owner.clone(), a.app.clone()))
        })
        .count();
    if missing > 0 {
        return Err(ConfigError::Regions(format!(
            "{missing} of the {} applications have no row in {}: was it written for another trace?",
            apps.len(),
            forewarm_trace::APP_REGIONS_FILE
        )));
    }
    let default_memory = default_memory_mb(trace);
    let draw = |index: usize| {
        Workload::draw(
            &trace.apps[index],
            index as u64,
            config.seed,
            false,
            default_memory,
        )
    };
    let specs: Vec<PolicySpec> = policies.iter().map(|p| p.spec).collect();
    let past_costs = past_costs(trace, &specs, params, &draw);
    let total = apps.len() as u64;
    let done = AtomicU64::new(0);
    let per_app: Vec<(Vec<RegionalOutcome>, Vec<f64>)> = apps
        .par_iter()
        .map(|&index| {
            let app = &trace.apps[index];
            let workload = draw(index);
            let mix = &setup.demand.apps[&(app.owner.clone(), app.app.clone())];
            let from = origins(
                &workload,
                &setup.demand,
                mix,
                config.seed ^ (index as u64) << 1,
            );
            let context = AppContext {
                declared_mib: workload.app_memory_mib,
                past_costs_mib: &past_costs,
                deferred_fits: false,
            };
            let mut outcomes = Vec::with_capacity(policies.len());
            let mut seconds = Vec::with_capacity(policies.len());
            for policy in policies {
                let started = Instant::now();
                outcomes.push(run_app(*policy, context, &workload, &from, setup, params));
                seconds.push(started.elapsed().as_secs_f64());
            }
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            (outcomes, seconds)
        })
        .collect();
    let reports = policies
        .iter()
        .enumerate()
        .map(|(k, policy)| {
            let outcomes: Vec<AppOutcome> = per_app.iter().map(|(o, _)| o[k].outcome).collect();
            let seconds = per_app.iter().map(|(_, s)| s[k]).sum();
            let mut sum = RegionalOutcome::default();
            per_app.iter().for_each(|(o, _)| sum.add(&o[k]));
            let mut report = PolicyReport::from_outcomes(policy.to_string(), &outcomes, seconds);
            report.regional = Some(sum.figures());
            report
        })
        .collect::<Vec<_>>();
    Ok(Report {
        trace: TraceSummary {
            dir: trace.dir.display().to_string(),
            apps: apps.len(),
            invocations: reports.first().map_or(0, |p| p.invocations),
            minutes: trace.minutes - measure_from_minute,
        },
        policies: reports,
        apps: Vec::new(),
    })
}

/// The table of a regional run: one row per policy that has regional figures.
pub fn regional_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:>7} {:>7} {:>11} {:>7} {:>7} {:>10} {:>9} {:>10} {:>9} {:>9}",
        "policy",
        "cold %",
        "p75 app",
        "idle GiB·h",
        "p50 ms",
        "p99 ms",
        "elsewhere %",
        "memory $",
        "requests $",
        "egress $",
        "total $"
    );
    for p in &report.policies {
        let Some(f) = p.regional else { continue };
        let _ = writeln!(
            out,
            "{:<26} {:>7.2} {:>7.2} {:>11.1} {:>7.0} {:>7.0} {:>10.2} {:>9.3} {:>10.3} {:>9.3} {:>9.3}",
            p.name,
            p.cold_start_pct,
            p.app_cold_start_pct.p75,
            p.wasted_memory_mib_s / 1024.0 / 3600.0,
            f.latency_ms.p50,
            f.latency_ms.p99,
            f.served_elsewhere_pct,
            f.cost_usd.memory,
            f.cost_usd.requests,
            f.cost_usd.egress,
            f.cost_usd.total
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Invocation;
    use forewarm_trace::Zone;

    fn map(prices: [f64; 3]) -> RegionMap {
        let price = |m| RegionPrice {
            memory_gib_s_usd: m,
            request_usd: 2e-7,
            egress_gib_usd: 0.02,
        };
        RegionMap {
            names: vec!["eu-west".into(), "eu-central".into(), "us-east".into()],
            rtt_ms: vec![
                vec![0.0, 20.0, 80.0],
                vec![20.0, 0.0, 90.0],
                vec![80.0, 90.0, 0.0],
            ],
            prices: prices.map(price).to_vec(),
        }
    }

    fn setup(prices: [f64; 3]) -> RegionalSetup {
        let map = map(prices);
        let zones = map
            .names
            .iter()
            .map(|n| Zone {
                name: n.clone(),
                utc_offset_h: 0.0,
            })
            .collect();
        RegionalSetup {
            map,
            demand: RegionalDemand {
                zones,
                apps: Default::default(),
            },
            max_extra_latency_ms: 50.0,
            payload_kib: 64.0,
        }
    }

    #[test]
    fn holders_cover_nearby_demand_and_prefer_cheap_memory() {
        let m = map([1.0, 1.0, 1.0]);
        let none = [0, 1, 2];
        // Ireland and Frankfurt are within 50 ms of each other; us-east is alone. The one with
        // more demand holds for both.
        assert_eq!(holders(&[5.0, 3.0, 1.0], &m, 50.0, &none), vec![0, 0, 2]);
        assert_eq!(holders(&[3.0, 5.0, 1.0], &m, 50.0, &none), vec![1, 1, 2]);
        // Frankfurt's memory at half the price: it holds for both though Ireland asks more.
        let cheap = map([1.0, 0.5, 1.0]);
        assert_eq!(
            holders(&[5.0, 3.0, 1.0], &cheap, 50.0, &none),
            vec![1, 1, 2]
        );
        // No demand: every region for itself.
        assert_eq!(holders(&[0.0, 0.0, 0.0], &m, 50.0, &none), vec![0, 1, 2]);
        // Ireland holds for both; Frankfurt's own demand passing Ireland's moves nothing (either
        // would cover the same demand, and a move pays the starts again).
        let held = [0, 0, 2];
        assert_eq!(holders(&[3.0, 6.0, 1.0], &m, 50.0, &held), vec![0, 0, 2]);
        // With 85 ms, Ireland (80 ms from us-east) covers all three regions and takes over from
        // Frankfurt (90 ms from us-east), whose cover is smaller even with the stickiness.
        assert_eq!(
            holders(&[1.0, 5.0, 4.0], &m, 85.0, &[1, 1, 2]),
            vec![0, 0, 0]
        );
        // A cover within the stickiness of the holder's does not take over.
        assert_eq!(
            holders(&[1.0, 5.0, 0.2], &m, 85.0, &[1, 1, 2]),
            vec![1, 1, 2]
        );
    }

    fn alternating(n: u64, gap: Millis) -> (Workload, Vec<usize>) {
        let invocations = (0..n)
            .map(|i| Invocation {
                arrival: 60_000 + i * gap,
                duration_ms: 100,
                memory_mib: 128.0,
            })
            .collect();
        let w = Workload {
            invocations,
            app_memory_mib: 128.0,
        };
        // Requests alternate between Ireland and Frankfurt.
        let origins = (0..n).map(|i| (i % 2) as usize).collect();
        (w, origins)
    }

    fn run(policy: &str, setup: &RegionalSetup, w: &Workload, o: &[usize]) -> RegionalOutcome {
        let context = AppContext {
            declared_mib: 128.0,
            past_costs_mib: &[],
            deferred_fits: false,
        };
        let params = SimParams {
            measure_from: 0,
            end: 4 * 3_600_000,
            cold_start_ms: 1_000,
            profiles: false,
        };
        run_app(
            policy.parse().expect("test setup"),
            context,
            w,
            o,
            setup,
            params,
        )
    }

    #[test]
    fn neighbours_share_warm_containers_unless_isolated() {
        let s = setup([1.6e-5, 1.6e-5, 1.6e-5]);
        let (w, o) = alternating(100, 120_000);
        let isolated = run("keepalive-10m-isolated", &s, &w, &o);
        let routed = run("keepalive-10m", &s, &w, &o);
        let geo = run("keepalive-10m-geo", &s, &w, &o);
        for out in [&isolated, &routed, &geo] {
            assert_eq!(out.outcome.invocations, 100);
        }
        // Isolated, each region pays its own first start and keeps its own container.
        assert_eq!(isolated.outcome.cold_starts, 2);
        assert_eq!(isolated.served_elsewhere, 0);
        // Routed, Frankfurt's requests find Ireland's container 20 ms away: one start, one
        // container, half the requests served next door.
        assert_eq!(routed.outcome.cold_starts, 1);
        assert_eq!(geo.outcome.cold_starts, 1);
        for out in [&routed, &geo] {
            assert!(
                out.outcome.wasted_mib_ms < 0.6 * isolated.outcome.wasted_mib_ms,
                "{} against {}",
                out.outcome.wasted_mib_ms,
                isolated.outcome.wasted_mib_ms
            );
            assert!(out.cost.total < isolated.cost.total);
            let f = out.figures();
            assert!((f.served_elsewhere_pct - 50.0).abs() < 1.0, "{f:?}");
            assert_eq!(f.latency_ms.p99, 20.0);
            assert!(f.cost_usd.egress > 0.0);
        }
        assert_eq!(isolated.figures().latency_ms.p99, 1_000.0);
    }

    #[test]
    fn geo_starts_a_neighbours_container_at_the_holder() {
        let s = setup([1.6e-5, 1.6e-5, 1.6e-5]);
        // Two requests at once every 20 minutes (past the keep-alive), one from each side.
        let mut w = alternating(24, 600_000).0;
        for (i, inv) in w.invocations.iter_mut().enumerate() {
            inv.arrival = 60_000 + (i as u64 / 2) * 1_200_000 + (i as u64 % 2) * 10;
        }
        let o: Vec<usize> = (0..24).map(|i| i % 2).collect();
        let routed = run("keepalive-10m", &s, &w, &o);
        let geo = run("keepalive-10m-geo", &s, &w, &o);
        // Both cold each time; routed starts Frankfurt's at home, geo at Ireland (the holder:
        // the first request of each pair comes from there), 20 ms away.
        assert_eq!(routed.outcome.cold_starts, 24);
        assert_eq!(geo.outcome.cold_starts, 24);
        assert_eq!(routed.served_elsewhere, 0);
        assert_eq!(geo.served_elsewhere, 12);
        assert_eq!(geo.figures().latency_ms.p99, 1_020.0);
    }

    #[test]
    fn a_region_beyond_the_budget_is_never_used() {
        let s = setup([1.6e-5, 1.6e-5, 1.6e-5]);
        let (w, mut o) = alternating(50, 120_000);
        // Every other request from us-east: 80-90 ms from Europe, beyond the 50 ms budget.
        for (i, r) in o.iter_mut().enumerate() {
            *r = if i % 2 == 0 { 0 } else { 2 };
        }
        for policy in [
            "keepalive-10m-isolated",
            "keepalive-10m",
            "keepalive-10m-geo",
        ] {
            let out = run(policy, &s, &w, &o);
            assert_eq!(out.served_elsewhere, 0, "{policy}");
            assert_eq!(out.outcome.cold_starts, 2, "{policy}: one start per side");
        }
    }

    #[test]
    fn policies_parse_with_and_without_geo() {
        let p: RegionalPolicy = "forewarm-geo".parse().expect("test setup");
        assert_eq!(p.placing, Placing::Geo);
        assert_eq!(p.to_string(), format!("{}-geo", p.spec));
        let p: RegionalPolicy = "hybrid-histogram-4h-isolated".parse().expect("test setup");
        assert_eq!(
            (p.placing, p.to_string().as_str()),
            (Placing::Isolated, "hybrid-histogram-4h-isolated")
        );
        assert_eq!(
            "forewarm"
                .parse::<RegionalPolicy>()
                .expect("test setup")
                .placing,
            Placing::PerRegion
        );
        assert!(
            "oracle"
                .parse::<RegionalPolicy>()
                .expect_err("must fail")
                .contains("not with --regions")
        );
        assert!("nonsense-geo".parse::<RegionalPolicy>().is_err());
    }
}
