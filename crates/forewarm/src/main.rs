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
        eprintln!("forewarm: {}", causes(&err));
        std::process::exit(1);
    }
}

/// The error and its causes, outermost first, each once: a cause whose text the message
/// already holds (an error whose own message quotes its source) is not repeated.
fn causes(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}
