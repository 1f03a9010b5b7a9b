//! Workload variants of the generator: documented knob sets, so that a policy is tuned on some
//! workload shapes and judged on others (`forewarm trace gen --variant NAME`).
//!
//! Every variant keeps the published population characteristics that do not define it (daily
//! rate spread, functions per app, triggers, durations, memory); what changes is the shape of
//! arrivals in time. `base` is the generator as it was before variants existed and writes the
//! same bytes for the same seed.

use std::fmt;
use std::str::FromStr;

/// The law of the gaps between arrivals of a steady (non-bursty) function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GapLaw {
    /// Gamma with shape 2 (CV ≈ 0.71): steadier than Poisson.
    Gamma2,
    /// Exponential (CV 1): a Poisson process.
    Exponential,
    /// Log-normal with this σ of the log (CV = sqrt(exp(σ²) − 1)).
    LogNormal {
        /// σ of ln(gap).
        sigma: f64,
    },
    /// Pareto (heavy tail) with this shape; its variance is infinite for α ≤ 2.
    Pareto {
        /// Tail index α (> 1, so the mean exists).
        alpha: f64,
    },
}

/// One workload shape: the knobs of the generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant {
    /// Name as given to `--variant`.
    pub name: &'static str,
    /// Gaps between arrivals of steady functions.
    pub gaps: GapLaw,
    /// Share of non-timer applications with on/off bursts.
    pub bursty_share: f64,
    /// Share of time a bursty function is "on".
    pub on_share: f64,
    /// Off periods of bursty functions: Pareto with this α instead of exponential.
    pub off_pareto: Option<f64>,
    /// Standard deviation of a timer's firing time, as a share of its period.
    pub timer_jitter: f64,
    /// A timer's period grows by this share over one day (clock drift, schedule changes).
    pub timer_drift: f64,
    /// Busiest over quietest hour of the day.
    pub diurnal_swing: f64,
    /// Spread (± days) of the application's diurnal phase.
    pub phase_spread: f64,
    /// Weekday over weekend rate (days 6 and 7 of each week are the weekend).
    pub weekly_swing: f64,
    /// Share of non-timer applications whose behaviour changes at a random time: the rate is
    /// multiplied or divided by 10, or steady and bursty swap.
    pub change_share: f64,
    /// Share of applications that appear only at a random time of the trace.
    pub appear_share: f64,
    /// Share of non-timer applications that are rare: invoked a few times a day (1 + Poisson(2)
    /// clusters of 1–3 invocations at uniform times).
    pub rare_share: f64,
}

impl Variant {
    /// The generator as published characteristics describe it.
    pub const BASE: Variant = Variant {
        name: "base",
        gaps: GapLaw::Gamma2,
        bursty_share: 0.40 / 0.91,
        on_share: 0.1,
        off_pareto: None,
        timer_jitter: 0.0,
        timer_drift: 0.0,
        diurnal_swing: 2.0,
        phase_spread: 0.05,
        weekly_swing: 1.0,
        change_share: 0.0,
        appear_share: 0.0,
        rare_share: 0.0,
    };

    /// Every named variant, `base` first.
    pub const ALL: [Variant; 9] = [
        Variant::BASE,
        Variant {
            name: "exponential",
            gaps: GapLaw::Exponential,
            bursty_share: 0.2,
            ..Variant::BASE
        },
        Variant {
            name: "lognormal",
            gaps: GapLaw::LogNormal { sigma: 1.5 },
            bursty_share: 0.2,
            ..Variant::BASE
        },
        Variant {
            name: "pareto",
            gaps: GapLaw::Pareto { alpha: 1.5 },
            bursty_share: 0.2,
            ..Variant::BASE
        },
        Variant {
            name: "timers",
            timer_jitter: 0.05,
            timer_drift: 0.1,
            ..Variant::BASE
        },
        Variant {
            name: "onoff",
            bursty_share: 0.8,
            on_share: 0.05,
            off_pareto: Some(1.3),
            ..Variant::BASE
        },
        Variant {
            name: "cycles",
            diurnal_swing: 5.0,
            phase_spread: 0.25,
            weekly_swing: 2.0,
            ..Variant::BASE
        },
        Variant {
            name: "shifts",
            change_share: 0.3,
            appear_share: 0.1,
            ..Variant::BASE
        },
        Variant {
            name: "rare",
            rare_share: 0.3,
            ..Variant::BASE
        },
    ];

    /// Weekly factor of the rate on day `day` (0-based), normalised so a week's mean is 1.
    pub(crate) fn weekly(&self, day: u64) -> f64 {
        if self.weekly_swing == 1.0 {
            return 1.0;
        }
        let weekday = 7.0 / (5.0 + 2.0 / self.weekly_swing);
        if day % 7 >= 5 {
            weekday / self.weekly_swing
        } else {
            weekday
        }
    }

    /// Diurnal amplitude A with (1 + A) / (1 − A) = swing.
    pub(crate) fn diurnal_amplitude(&self) -> f64 {
        (self.diurnal_swing - 1.0) / (self.diurnal_swing + 1.0)
    }
}

/// A variant name that is not one of [`Variant::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown variant {0:?}: expected base, exponential, lognormal, pareto, timers, onoff, \
     cycles, shifts or rare"
)]
pub struct VariantError(pub String);

impl FromStr for Variant {
    type Err = VariantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name == s)
            .ok_or_else(|| VariantError(s.to_owned()))
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_are_unique() {
        for v in Variant::ALL {
            assert_eq!(v.name.parse::<Variant>(), Ok(v));
        }
        let mut names: Vec<&str> = Variant::ALL.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Variant::ALL.len());
        assert!("nope".parse::<Variant>().is_err());
    }

    #[test]
    fn weekly_factor_keeps_the_mean() {
        let v: Variant = "cycles".parse().expect("known");
        let mean: f64 = (0..7).map(|d| v.weekly(d)).sum::<f64>() / 7.0;
        assert!((mean - 1.0).abs() < 1e-12, "{mean}");
        assert!((v.weekly(0) / v.weekly(5) - 2.0).abs() < 1e-12);
    }
}
