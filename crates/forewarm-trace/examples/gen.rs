//! `forewarm trace gen` without the node: writes a generated trace for policy work
//! (`cargo run --release -p forewarm-trace --example gen -- APPS DAYS SEED VARIANT OUT_DIR`).
//! The same `generate_variant` call as the binary; the same arguments write the same bytes.

use forewarm_trace::{GenConfig, Variant, generate_variant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [apps, days, seed, variant, out] = args.as_slice() else {
        eprintln!("usage: gen APPS DAYS SEED VARIANT OUT_DIR");
        std::process::exit(2);
    };
    let config = GenConfig {
        apps: apps.parse().expect("APPS is a number"),
        days: days.parse().expect("DAYS is a number"),
        seed: seed.parse().expect("SEED is a number"),
    };
    let variant: Variant = variant.parse().expect("VARIANT is a known variant");
    generate_variant(&config, &variant, std::path::Path::new(out)).expect("writes the trace");
}
