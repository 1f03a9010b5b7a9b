//! What a trace holds once read: applications, their functions and their per-minute counts.

use std::path::PathBuf;

/// Minutes in one trace day (one invocations file).
pub const DAY_MINUTES: u64 = 1440;

/// The minutes of the trace to read, counted from the first minute of the first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First minute read.
    pub start_minute: u64,
    /// Minutes read; `None` reads to the end of the last day.
    pub minutes: Option<u64>,
}

impl Window {
    /// The whole trace.
    pub fn all() -> Self {
        Self {
            start_minute: 0,
            minutes: None,
        }
    }

    /// Whether `minute` lies in the window.
    pub fn contains(&self, minute: u64) -> bool {
        minute >= self.start_minute && self.minutes.is_none_or(|n| minute < self.start_minute + n)
    }
}

/// Percentiles of a function's execution time in one day, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationPercentiles {
    /// Mean duration.
    pub average_ms: f64,
    /// Executions the percentiles summarise.
    pub count: u64,
    /// Shortest and longest.
    pub minimum_ms: f64,
    /// Longest.
    pub maximum_ms: f64,
    /// Percentiles 0, 1, 25, 50, 75, 99, 100.
    pub percentiles_ms: [f64; 7],
}

/// The quantile levels of [`DurationPercentiles::percentiles_ms`].
pub const DURATION_LEVELS: [f64; 7] = [0.0, 0.01, 0.25, 0.50, 0.75, 0.99, 1.0];

impl DurationPercentiles {
    /// The duration at quantile `u` (0..1), interpolated linearly between percentiles.
    pub fn quantile(&self, u: f64) -> f64 {
        interpolate(&DURATION_LEVELS, &self.percentiles_ms, u)
    }
}

/// Percentiles of an application's allocated memory in one day, in MB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryPercentiles {
    /// Samples the percentiles summarise.
    pub sample_count: u64,
    /// Mean allocated memory.
    pub average_mb: f64,
    /// Percentiles 1, 5, 25, 50, 75, 95, 99, 100.
    pub percentiles_mb: [f64; 8],
}

/// The quantile levels of [`MemoryPercentiles::percentiles_mb`].
pub const MEMORY_LEVELS: [f64; 8] = [0.01, 0.05, 0.25, 0.50, 0.75, 0.95, 0.99, 1.0];

impl MemoryPercentiles {
    /// The memory at quantile `u` (0..1), interpolated linearly between percentiles.
    pub fn quantile(&self, u: f64) -> f64 {
        interpolate(&MEMORY_LEVELS, &self.percentiles_mb, u)
    }

    /// The largest allocation seen (the 100th percentile).
    pub fn max_mb(&self) -> f64 {
        self.percentiles_mb[7]
    }
}

fn interpolate(levels: &[f64], values: &[f64], u: f64) -> f64 {
    let u = u.clamp(0.0, 1.0);
    if u <= levels[0] {
        return values[0];
    }
    for i in 1..levels.len() {
        if u <= levels[i] {
            let span = levels[i] - levels[i - 1];
            let t = if span > 0.0 {
                (u - levels[i - 1]) / span
            } else {
                1.0
            };
            return values[i - 1] + t * (values[i] - values[i - 1]);
        }
    }
    values[values.len() - 1]
}

/// One function of an application.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// HashFunction.
    pub name: String,
    /// Trigger as written in the trace (http, queue, event, timer, …).
    pub trigger: String,
    /// (minute relative to the window start, invocations) for minutes with invocations, in order.
    pub counts: Vec<(u32, u32)>,
    /// Durations from the first day of the window that has them.
    pub durations: Option<DurationPercentiles>,
}

impl Function {
    /// Invocations in the window.
    pub fn invocations(&self) -> u64 {
        self.counts.iter().map(|(_, c)| u64::from(*c)).sum()
    }
}

/// One application: the unit of warmth, a `CodeId`.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// HashOwner.
    pub owner: String,
    /// HashApp.
    pub app: String,
    /// Its functions, in the order first seen.
    pub functions: Vec<Function>,
    /// Memory from the first day of the window that has it.
    pub memory: Option<MemoryPercentiles>,
}

impl App {
    /// Invocations in the window, over all functions.
    pub fn invocations(&self) -> u64 {
        self.functions.iter().map(Function::invocations).sum()
    }

    /// Per-minute invocations of the whole application, (minute, count) in order.
    pub fn minute_counts(&self) -> Vec<(u32, u32)> {
        let mut all: Vec<(u32, u32)> = self
            .functions
            .iter()
            .flat_map(|f| f.counts.iter().copied())
            .collect();
        all.sort_unstable_by_key(|(m, _)| *m);
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(all.len());
        for (m, c) in all {
            match merged.last_mut() {
                Some((lm, lc)) if *lm == m => *lc += c,
                _ => merged.push((m, c)),
            }
        }
        merged
    }
}

/// A trace read for a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The directory read.
    pub dir: PathBuf,
    /// Days found in the directory, in order.
    pub days: Vec<u32>,
    /// First minute of the window (relative to the first day).
    pub start_minute: u64,
    /// Minutes in the window.
    pub minutes: u64,
    /// Applications with at least one function row in the window's days.
    pub apps: Vec<App>,
}

impl Trace {
    /// Invocations in the window.
    pub fn invocations(&self) -> u64 {
        self.apps.iter().map(App::invocations).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_percentiles() {
        let d = DurationPercentiles {
            average_ms: 0.0,
            count: 1,
            minimum_ms: 0.0,
            maximum_ms: 0.0,
            percentiles_ms: [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
        };
        assert_eq!(d.quantile(0.0), 0.0);
        assert_eq!(d.quantile(0.5), 30.0);
        assert!((d.quantile(0.375) - 25.0).abs() < 1e-9);
        assert_eq!(d.quantile(1.0), 60.0);
        assert_eq!(d.quantile(7.0), 60.0);
    }

    #[test]
    fn window_bounds() {
        let w = Window {
            start_minute: 10,
            minutes: Some(5),
        };
        assert!(!w.contains(9));
        assert!(w.contains(10) && w.contains(14));
        assert!(!w.contains(15));
        assert!(Window::all().contains(u64::MAX - 1));
    }
}
