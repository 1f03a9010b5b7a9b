//! The hybrid-histogram policy of Shahrad et al., "Serverless in the Wild", USENIX ATC'20.
//!
//! Per application, idle times (from the end of an execution to the next arrival) go into
//! 1-minute bins over a range of H hours. When the histogram is representative (bin-count CV
//! ≥ 2), the application is unloaded after each execution, pre-warmed at the 5th percentile
//! minus 10% and kept until the 99th percentile plus 10%. When it is not, a standard keep-alive
//! of the whole range applies. When most idle times fall beyond the range, a time-series
//! forecast of the next idle time sets the window (±15%). Deviations from the paper and from
//! dslab's reproduction are listed in `docs/policies.md`.

use crate::forecast::forecast_next;
use crate::idle_times::IdleTimes;
use crate::policy::{AppPolicy, IdleAction, MINUTE_MS, Millis};

/// Parameters of [`HybridHistogram`]; defaults are the paper's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridHistogramConfig {
    /// Histogram range (the paper's 4 hours is the headline setting).
    pub range_ms: Millis,
    /// Bin width.
    pub bin_ms: Millis,
    /// Head percentile used for the pre-warm window.
    pub head: f64,
    /// Tail percentile used for the keep-alive window.
    pub tail: f64,
    /// Margin applied to both ends of the histogram window.
    pub margin: f64,
    /// Minimum bin-count CV for the histogram to be trusted.
    pub cv_threshold: f64,
    /// Out-of-bounds share above which the forecast takes over.
    pub oob_threshold: f64,
    /// Margin around the forecast idle time.
    pub forecast_margin: f64,
}

impl HybridHistogramConfig {
    /// The paper's settings with a range of `hours`.
    pub fn with_range_hours(hours: u32) -> Self {
        Self {
            range_ms: Millis::from(hours) * 60 * MINUTE_MS,
            bin_ms: MINUTE_MS,
            head: 0.05,
            tail: 0.99,
            margin: 0.10,
            cv_threshold: 2.0,
            oob_threshold: 0.5,
            forecast_margin: 0.15,
        }
    }
}

/// Which branch of the policy decided; exposed for explanations and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Histogram not representative: standard keep-alive over the whole range.
    Uncertain,
    /// Histogram representative: pre-warm and keep-alive windows from its percentiles.
    Certain,
    /// Most idle times are beyond the range: forecast the next one.
    OutOfBounds,
}

/// Hybrid-histogram state for one application.
#[derive(Debug, Clone)]
pub struct HybridHistogram {
    config: HybridHistogramConfig,
    idle: IdleTimes,
    last_end: Option<Millis>,
}

impl HybridHistogram {
    /// A fresh application.
    pub fn new(config: HybridHistogramConfig) -> Self {
        let bins = (config.range_ms / config.bin_ms.max(1)) as usize;
        Self {
            config,
            idle: IdleTimes::new(config.bin_ms, bins),
            last_end: None,
        }
    }

    /// The branch the next decision takes.
    pub fn pattern(&self) -> Pattern {
        if self.idle.out_of_bounds_rate() >= self.config.oob_threshold {
            Pattern::OutOfBounds
        } else if self.idle.bin_count_cv() < self.config.cv_threshold {
            Pattern::Uncertain
        } else {
            Pattern::Certain
        }
    }

    fn window(now: Millis, prewarm_ms: f64, until_ms: f64) -> IdleAction {
        let until = now + until_ms.max(0.0) as Millis;
        let prewarm = prewarm_ms.max(0.0) as Millis;
        if prewarm == 0 {
            IdleAction::KeepAlive { until }
        } else {
            IdleAction::Prewarm {
                at: now + prewarm,
                until: until.max(now + prewarm),
                containers: 1,
            }
        }
    }
}

impl AppPolicy for HybridHistogram {
    fn on_arrival(&mut self, now: Millis) {
        if let Some(end) = self.last_end {
            self.idle.record(now.saturating_sub(end));
        }
    }

    fn on_idle(&mut self, now: Millis) -> IdleAction {
        self.last_end = Some(now);
        let c = &self.config;
        match self.pattern() {
            Pattern::Uncertain => IdleAction::KeepAlive {
                until: now + c.range_ms,
            },
            Pattern::Certain => {
                let bin = self.idle.bin_ms() as f64;
                let head = self.idle.percentile_bin(c.head) as f64 * bin * (1.0 - c.margin);
                let tail = (self.idle.percentile_bin(c.tail) + 1) as f64 * bin * (1.0 + c.margin);
                Self::window(now, head, tail)
            }
            Pattern::OutOfBounds => {
                let recent: Vec<f64> = self.idle.recent().map(|v| v as f64).collect();
                match forecast_next(&recent) {
                    Some(next) => Self::window(
                        now,
                        next * (1.0 - c.forecast_margin),
                        next * (1.0 + c.forecast_margin),
                    ),
                    None => IdleAction::KeepAlive {
                        until: now + c.range_ms,
                    },
                }
            }
        }
    }

    fn describe(&self) -> String {
        let pattern = match self.pattern() {
            Pattern::Uncertain => "idle-time histogram uncertain: keep-alive over the range",
            Pattern::Certain => {
                "idle-time histogram certain: pre-warm at its head, keep to its tail"
            }
            Pattern::OutOfBounds => "idle times beyond the range: ETS forecast of the next one",
        };
        format!("{pattern} (range {} min)", self.config.range_ms / MINUTE_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hh() -> HybridHistogram {
        HybridHistogram::new(HybridHistogramConfig::with_range_hours(4))
    }

    #[test]
    fn without_history_keeps_alive_for_the_range() {
        let mut p = hh();
        p.on_arrival(0);
        assert_eq!(
            p.on_idle(1_000),
            IdleAction::KeepAlive {
                until: 1_000 + 4 * 3_600_000
            }
        );
    }

    #[test]
    fn periodic_app_is_unloaded_and_prewarmed_around_its_period() {
        let mut p = hh();
        // Every 30 minutes, runs for 1 s.
        let mut t = 0;
        let mut last = None;
        for _ in 0..20 {
            p.on_arrival(t);
            last = Some(p.on_idle(t + 1_000));
            t += 30 * MINUTE_MS;
        }
        assert_eq!(p.pattern(), Pattern::Certain);
        let end = t - 30 * MINUTE_MS + 1_000;
        // Idle times are 29m59s: bin 29. Head = 29 min * 0.9, tail = 30 min * 1.1.
        assert_eq!(
            last,
            Some(IdleAction::Prewarm {
                at: end + (29.0 * 60_000.0 * 0.9) as Millis,
                until: end + (30.0 * 60_000.0 * 1.1) as Millis,
                containers: 1,
            })
        );
    }

    #[test]
    fn idle_times_beyond_the_range_use_the_forecast() {
        let mut p = HybridHistogram::new(HybridHistogramConfig::with_range_hours(1));
        let mut t = 0;
        let mut last = None;
        for _ in 0..10 {
            p.on_arrival(t);
            last = Some(p.on_idle(t));
            t += 3 * 3_600_000;
        }
        assert_eq!(p.pattern(), Pattern::OutOfBounds);
        let end = t - 3 * 3_600_000;
        match last {
            Some(IdleAction::Prewarm { at, until, .. }) => {
                let at = at - end;
                let until = until - end;
                assert!((8_500_000..9_500_000).contains(&at), "{at}");
                assert!((12_000_000..12_900_000).contains(&until), "{until}");
            }
            other => panic!("expected a pre-warm, got {other:?}"),
        }
    }
}
