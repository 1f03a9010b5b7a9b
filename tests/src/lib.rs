//! Shared fixtures for the integration tests: small traces written to temporary directories.

use std::path::Path;

use forewarm_trace::{GenConfig, generate};

/// Write a generated trace of `apps` applications and `days` days into `dir`.
pub fn gen_trace(dir: &Path, apps: u32, days: u32, seed: u64) {
    generate(&GenConfig { apps, days, seed }, dir).expect("generating a trace");
}
