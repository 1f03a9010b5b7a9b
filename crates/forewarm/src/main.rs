//! The `forewarm` command: thin glue from command-line options to the library crates.

mod bench_cmd;
mod cli;
mod cluster_bench_cmd;
mod local_nodes;
mod node_cmd;
mod progress;
mod regions_cmd;
mod replay_cmd;
mod simulate_cmd;
mod status_cmd;
mod trace_cmd;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(err) = cli::run(cli) {
        eprintln!("forewarm: {err:#}");
        std::process::exit(1);
    }
}
