//! `forewarm simulate`.

use std::path::Path;

use anyhow::Context;
use forewarm_node::topology::Topology;
use forewarm_policy::PolicySpec;
use forewarm_sim::{
    RegionMap, RegionPrice, RegionalPolicy, RegionalSetup, Replay, SimConfig, pareto_svg,
    regional_table, simulate, simulate_regional,
};
use forewarm_trace::{RegionalDemand, Window, read_trace};

use crate::cli::SimulateArgs;
use crate::progress::Progress;

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        hours: args.hours,
        skip_minutes: args.skip_minutes,
        app_band: args.app_band,
        sample: args.sample,
        replay: args.apps.map(|apps| Replay {
            apps,
            speed: args.speed,
        }),
        policies: if args.policies.is_empty() || args.regions.is_some() {
            PolicySpec::DEFAULTS.to_vec()
        } else {
            args.policies
                .iter()
                .map(|p| p.parse().map_err(|e| anyhow::anyhow!("--policy {p}: {e}")))
                .collect::<anyhow::Result<_>>()?
        },
        seed: args.seed,
        cold_start_ms: args.cold_start_ms,
        profiles: args.profiles,
        per_app: args.per_app.is_some(),
    };
    config.validate()?;
    let window = Window {
        start_minute: 0,
        minutes: config.measured_minutes().map(|m| m + config.skip_minutes),
    };
    let trace = read_trace(&args.trace, window)?;
    anyhow::ensure!(
        trace.minutes > config.skip_minutes,
        "--skip-minutes {} leaves nothing to measure: {} holds {} minutes",
        config.skip_minutes,
        args.trace.display(),
        trace.minutes
    );
    if let Some(topology) = &args.regions {
        let setup = regional_setup(&args.trace, topology, &args)?;
        let names: Vec<&str> = if args.policies.is_empty() {
            REGIONAL_DEFAULTS.to_vec()
        } else {
            args.policies.iter().map(String::as_str).collect()
        };
        let policies: Vec<RegionalPolicy> = names
            .iter()
            .map(|p| p.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("--policy {e}"))?;
        let progress = Progress::new("simulating apps over regions");
        let report = simulate_regional(&trace, &config, &policies, &setup, &|done, total| {
            progress.update(done, total)
        })?;
        progress.finish();
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{}: {} apps, {} invocations over {} minutes from {} regions ({}), \
                 requests sent at most {} ms away",
                report.trace.dir,
                report.trace.apps,
                report.trace.invocations,
                report.trace.minutes,
                setup.map.names.len(),
                topology.display(),
                setup.max_extra_latency_ms
            );
            print!("{}", regional_table(&report));
        }
        return Ok(());
    }
    let progress = Progress::new("simulating apps");
    let report = simulate(&trace, &config, &|done, total| progress.update(done, total))?;
    progress.finish();
    if let Some(path) = &args.plot {
        std::fs::write(path, pareto_svg(&report))
            .with_context(|| format!("writing the plot to {}", path.display()))?;
    }
    if let Some(path) = &args.per_app {
        std::fs::write(path, report.per_app_csv())
            .with_context(|| format!("writing the per-app breakdown to {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
        println!();
        print!("{}", report.class_table(&args.class_reference));
    }
    Ok(())
}

/// What `forewarm simulate --regions` runs when no --policy is given.
const REGIONAL_DEFAULTS: [&str; 5] = [
    "hybrid-histogram-4h-isolated",
    "hybrid-histogram-4h",
    "forewarm-isolated",
    "forewarm",
    "forewarm-geo",
];

/// The regions, prices and regional demand of a `--regions` run.
fn regional_setup(
    trace: &Path,
    topology: &Path,
    args: &SimulateArgs,
) -> anyhow::Result<RegionalSetup> {
    anyhow::ensure!(
        args.max_extra_latency_ms.is_finite() && args.max_extra_latency_ms >= 0.0,
        "--max-extra-latency-ms must be a number of ms, 0 or more"
    );
    anyhow::ensure!(
        args.payload_kib.is_finite() && args.payload_kib >= 0.0,
        "--payload-kib must be a number of KiB, 0 or more"
    );
    let topo = Topology::load(topology)?;
    let mut prices = Vec::with_capacity(topo.regions.len());
    for r in &topo.regions {
        let p = r.price.with_context(|| {
            format!(
                "{}: region {:?} has no price (dollars are reported per region: see \
                 regions/ten.toml)",
                topology.display(),
                r.name
            )
        })?;
        prices.push(RegionPrice {
            memory_gib_s_usd: p.memory_gib_s_usd,
            request_usd: p.request_usd,
            egress_gib_usd: p.egress_gib_usd,
        });
    }
    let names: Vec<String> = topo.regions.iter().map(|r| r.name.clone()).collect();
    let rtt_ms = topo.rtt_matrix();
    let demand = RegionalDemand::read(trace)?.with_context(|| {
        format!(
            "{} has no regional demand (regions.csv): write it with `forewarm trace gen \
             --regions {}`",
            trace.display(),
            topology.display()
        )
    })?;
    Ok(RegionalSetup {
        map: RegionMap {
            names,
            rtt_ms,
            prices,
        },
        demand,
        max_extra_latency_ms: args.max_extra_latency_ms,
        payload_kib: args.payload_kib,
    })
}
