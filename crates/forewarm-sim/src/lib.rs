//! Discrete-event simulation of forewarm's policies on traces in the Azure Functions 2019
//! format, every policy on the same arrivals, side by side.
//!
//! With unlimited host capacity (the default) applications do not interact, so each is
//! simulated on its own virtual clock: [`Workload`] turns its per-minute counts into seeded
//! arrivals, [`AppSim`] replays them through one policy, and [`simulate`] runs every policy on
//! every selected application in parallel and folds the outcomes into a [`Report`]. The one
//! exception is FaasCache (`faascache-<N>gib`), whose idle containers share one memory budget
//! across applications: [`SharedCacheSim`] runs it on one clock over all selected
//! applications.
//!
//! This crate owns the simulation and its report; decisions belong to `forewarm-policy`, files
//! to `forewarm-trace`.

mod app_class;
mod cache_sim;
mod config;
mod engine;
mod plot;
mod regional;
mod replayed;
mod report;
mod simulate;
mod workload;

pub use app_class::AppClass;
pub use cache_sim::SharedCacheSim;
pub use config::{ConfigError, Replay, SimConfig};
pub use engine::{AppOutcome, AppSim, SimParams};
pub use plot::pareto_svg;
pub use regional::{
    CostUsd, LatencyMs, Placing, RegionMap, RegionPrice, RegionalFigures, RegionalOutcome,
    RegionalPolicy, RegionalSetup, holders, origins, regional_table, run_app, simulate_regional,
};
pub use replayed::{ReplayedCode, in_band, spread};
pub use report::{AppColdStartPct, AppRow, ClassSummary, PolicyReport, Report, TraceSummary};
pub use simulate::{select_apps, simulate};
pub use workload::{Invocation, Workload};
