//! `forewarm simulate`'s quality run without the node: a quick loop for policy work
//! (`cargo run --release -p forewarm-sim --example sim -- TRACE SKIP HOURS SEED CSV POLICY...`).
//! Builds in seconds where the `forewarm` binary rebuilds the node; the figures are the same
//! `simulate` call. Prints the report and the class table; writes the per-app CSV.

use forewarm_policy::PolicySpec;
use forewarm_sim::{SimConfig, simulate};
use forewarm_trace::{Window, read_trace};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [trace, skip, hours, seed, csv, policies @ ..] = args.as_slice() else {
        eprintln!("usage: sim TRACE SKIP_MINUTES HOURS SEED OUT.csv POLICY...");
        std::process::exit(2);
    };
    let parse = |s: &str| s.parse::<u64>().expect("a number");
    let config = SimConfig {
        hours: Some(parse(hours) as f64),
        skip_minutes: parse(skip),
        seed: parse(seed),
        per_app: true,
        policies: policies
            .iter()
            .map(|p| p.parse::<PolicySpec>().expect("a policy"))
            .collect(),
        ..SimConfig::default()
    };
    let window = Window {
        start_minute: 0,
        minutes: config.measured_minutes().map(|m| m + config.skip_minutes),
    };
    let trace = read_trace(std::path::Path::new(trace), window).expect("reads the trace");
    let report = simulate(&trace, &config, &|_, _| {}).expect("simulates");
    std::fs::write(csv, report.per_app_csv()).expect("writes the CSV");
    print!("{report}");
    print!("{}", report.class_table("hybrid-histogram-4h"));
}
