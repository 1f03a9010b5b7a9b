//! The Azure Functions 2019 trace format: a streaming reader, a generator with the published
//! characteristics of the real trace, and the statistics that check a trace against them.
//!
//! The unit of warmth is the **application** (HashOwner + HashApp): an application's functions
//! share its containers, so an [`App`] is what the rest of forewarm calls a `CodeId`.
//!
//! This crate owns files in that layout and nothing else: it knows no policy and no simulator.
//! Malformed input is a [`TraceError`] naming file, line and column, never a panic.

mod error;
mod generator;
mod model;
mod reader;
mod regional;
mod stats;
mod variant;

pub use error::TraceError;
pub use generator::{GenConfig, generate, generate_variant};
pub use model::{
    App, DAY_MINUTES, DurationPercentiles, Function, MemoryPercentiles, Trace, Window,
};
pub use reader::{day_files, read_trace};
pub use regional::{
    APP_REGIONS_FILE, AppRegions, REGIONS_FILE, RegionalDemand, RegionalGen, Zone, item_seed,
};
pub use stats::TraceStats;
pub use variant::{GapLaw, Variant, VariantError};
