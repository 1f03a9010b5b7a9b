//! `forewarm simulate`.

use anyhow::Context;
use forewarm_policy::PolicySpec;
use forewarm_sim::{Replay, SimConfig, pareto_svg, simulate};
use forewarm_trace::{Window, read_trace};

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
        policies: if args.policies.is_empty() {
            PolicySpec::DEFAULTS.to_vec()
        } else {
            args.policies
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
