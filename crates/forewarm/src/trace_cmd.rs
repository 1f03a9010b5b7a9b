//! `forewarm trace gen` and `forewarm trace stats`.

use std::path::Path;

use forewarm_trace::{GenConfig, TraceStats, Variant, Window, generate_variant, read_trace};

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
