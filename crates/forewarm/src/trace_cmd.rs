//! `forewarm trace gen` and `forewarm trace stats`.

use std::path::Path;

use anyhow::Context;
use forewarm_node::topology::Topology;
use forewarm_trace::{
    GenConfig, RegionalDemand, RegionalGen, TraceStats, Variant, Window, Zone, generate_variant,
    read_trace,
};

pub fn generate(
    apps: u32,
    days: u32,
    seed: u64,
    variant: &Variant,
    out: &Path,
) -> anyhow::Result<()> {
    generate_variant(&GenConfig { apps, days, seed }, variant, out)?;
    eprintln!(
        "wrote {days} day(s) of {apps} apps (variant {variant}) to {}",
        out.display()
    );
    Ok(())
}

pub fn stats(dir: &Path, json: bool) -> anyhow::Result<()> {
    let trace = read_trace(dir, Window::all())?;
    let stats = TraceStats::measure(&trace);
    if json {
        println!("{}", serde_json::to_string(&stats)?);
    } else {
        print!("{stats}");
    }
    Ok(())
}

/// `forewarm trace gen --regions FILE`: the regional demand of the trace just written to `out`.
pub fn regions(out: &Path, topology: &Path, knobs: &RegionalGen) -> anyhow::Result<()> {
    let topo = Topology::load(topology)?;
    let mut zones = Vec::with_capacity(topo.regions.len());
    for r in &topo.regions {
        let utc_offset_h = r.utc_offset_h.with_context(|| {
            format!(
                "{}: region {:?} has no utc_offset_h (its time zone, for the daily cycle of its \
                 demand)",
                topology.display(),
                r.name
            )
        })?;
        zones.push(Zone {
            name: r.name.clone(),
            utc_offset_h,
        });
    }
    let rtt = topo.rtt_matrix();
    let trace = read_trace(out, Window::all())?;
    let apps = trace
        .apps
        .iter()
        .map(|a| (a.owner.as_str(), a.app.as_str()));
    let demand = RegionalDemand::generate(apps, zones, &rtt, knobs)?;
    demand.write(out)?;
    eprintln!(
        "wrote the demand of {} apps over {} regions ({}) to {}",
        demand.apps.len(),
        demand.zones.len(),
        topology.display(),
        out.display()
    );
    Ok(())
}
