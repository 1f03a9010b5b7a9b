//! What a simulation run is asked to do.

use forewarm_policy::PolicySpec;

/// Settings of one simulation run; the CLI fills it from `forewarm simulate` options.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Measured hours; `None` measures to the end of the trace.
    pub hours: Option<f64>,
    /// Minutes replayed before measuring starts: policies learn from them, nothing is counted.
    pub skip_minutes: u64,
    /// Keep apps whose popularity rank quantile (most popular first) lies in `[lo, hi)`.
    pub app_band: Option<(f64, f64)>,
    /// Then draw this many of them with the seed.
    pub sample: Option<usize>,
    /// Or run what `forewarm replay` sends a live node: its applications of the band and
    /// their replayed workloads (exclusive with `sample`).
    pub replay: Option<Replay>,
    /// Policies, in report order.
    pub policies: Vec<PolicySpec>,
    /// Seed of every random draw (arrival offsets, durations, memory, sampling).
    pub seed: u64,
    /// Time from spawning a container to serving on it.
    pub cold_start_ms: u64,
    /// Per-invocation memory and size classes from the predicted profile.
    pub profiles: bool,
    /// Keep one row per application and policy in the report (`Report::apps`).
    pub per_app: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            hours: None,
            skip_minutes: 0,
            app_band: None,
            sample: None,
            replay: None,
            policies: PolicySpec::DEFAULTS.to_vec(),
            seed: 1,
            cold_start_ms: 1_000,
            profiles: false,
            per_app: false,
        }
    }
}

/// A setting that cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `--hours` must be positive and finite.
    #[error("--hours must be a positive number of hours, got {0}")]
    Hours(f64),
    /// `--app-band` must satisfy 0 ≤ lo < hi ≤ 1.
    #[error("--app-band must be LO:HI with 0 <= LO < HI <= 1, got {0}:{1}")]
    Band(f64, f64),
    /// `--sample` must be positive.
    #[error("--sample must be at least 1")]
    Sample,
    /// No policy to run.
    #[error("no policy to simulate")]
    NoPolicy,
    /// `--apps` must be positive, its `--speed` positive and finite, and `--sample` not given.
    #[error("--apps must be at least 1 with a --speed > 0, and not with --sample")]
    Replay,
    /// A multi-region run that cannot be made (`--regions`).
    #[error("--regions: {0}")]
    Regions(String),
}

/// The applications and workloads of `forewarm replay --apps N --speed S` (see
/// [`crate::replayed`]): each replayed code type's invocation holds its container for its CPU
/// time times `speed` (the live node runs `speed` times faster than the trace), in a container
/// of [`crate::ReplayedCode::MAX_MEMORY_MIB`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replay {
    /// Applications, evenly spread over the band.
    pub apps: usize,
    /// Trace minutes per real minute of the replay.
    pub speed: f64,
}

impl SimConfig {
    /// Check the settings before any work is done.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(h) = self.hours.filter(|h| !(h.is_finite() && *h > 0.0)) {
            return Err(ConfigError::Hours(h));
        }
        if let Some((lo, hi)) = self
            .app_band
            .filter(|(lo, hi)| !((0.0..1.0).contains(lo) && lo < hi && *hi <= 1.0))
        {
            return Err(ConfigError::Band(lo, hi));
        }
        if self.sample == Some(0) {
            return Err(ConfigError::Sample);
        }
        if self.policies.is_empty() {
            return Err(ConfigError::NoPolicy);
        }
        if let Some(r) = self.replay
            && (r.apps == 0 || !(r.speed.is_finite() && r.speed > 0.0) || self.sample.is_some())
        {
            return Err(ConfigError::Replay);
        }
        Ok(())
    }

    /// Measured minutes, if bounded.
    pub fn measured_minutes(&self) -> Option<u64> {
        self.hours.map(|h| (h * 60.0).round().max(1.0) as u64)
    }
}
