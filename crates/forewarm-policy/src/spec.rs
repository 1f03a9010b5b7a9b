//! Policy names as users write them (`keepalive-10m`, `hybrid-histogram-4h`, …).

use std::fmt;
use std::str::FromStr;

use crate::forewarm::{DEFAULT_GIVE_UP_MINUTES, Forewarm, ForewarmConfig};
use crate::hybrid_histogram::{HybridHistogram, HybridHistogramConfig};
use crate::keep_alive::FixedKeepAlive;
use crate::policy::{AppPolicy, MINUTE_MS, Millis};

/// A policy by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicySpec {
    /// Never unload: the cold-start floor and waste ceiling without pre-warming.
    NoUnloading,
    /// Fixed keep-alive of N minutes.
    KeepAlive {
        /// Keep-alive in minutes (≥ 1).
        minutes: u32,
    },
    /// Shahrad et al.'s hybrid histogram with a range of H hours.
    HybridHistogram {
        /// Histogram range in hours (≥ 1).
        hours: u32,
    },
    /// forewarm's predictive policy; windows wider than `give_up_minutes` settle for fewer
    /// hits (`forewarm` = the default 120, `forewarm-<N>m` another width).
    Forewarm {
        /// See `ForewarmConfig::give_up_width_ms`.
        give_up_minutes: u32,
    },
    /// Clairvoyant per-minute knowledge; only the simulator can build it.
    Oracle,
}

/// A policy name that is not one of the known forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown policy {name:?}: expected no-unloading, keepalive-<N>m, hybrid-histogram-<H>h, \
     forewarm, forewarm-<N>m or oracle"
)]
pub struct PolicySpecError {
    /// The name as given.
    pub name: String,
}

impl PolicySpec {
    /// The policies compared when none is named.
    pub const DEFAULTS: [PolicySpec; 6] = [
        PolicySpec::KeepAlive { minutes: 10 },
        PolicySpec::KeepAlive { minutes: 60 },
        PolicySpec::HybridHistogram { hours: 1 },
        PolicySpec::HybridHistogram { hours: 4 },
        PolicySpec::FOREWARM,
        PolicySpec::Oracle,
    ];

    /// forewarm with its default settings.
    pub const FOREWARM: PolicySpec = PolicySpec::Forewarm {
        give_up_minutes: DEFAULT_GIVE_UP_MINUTES,
    };

    /// A fresh per-application state, or `None` for the oracle (it needs the future).
    pub fn build(&self) -> Option<Box<dyn AppPolicy>> {
        Some(match *self {
            PolicySpec::NoUnloading => Box::new(FixedKeepAlive::forever()),
            PolicySpec::KeepAlive { minutes } => {
                Box::new(FixedKeepAlive::new(Millis::from(minutes) * MINUTE_MS))
            }
            PolicySpec::HybridHistogram { hours } => Box::new(HybridHistogram::new(
                HybridHistogramConfig::with_range_hours(hours),
            )),
            PolicySpec::Forewarm { give_up_minutes } => Box::new(Forewarm::new(ForewarmConfig {
                give_up_width_ms: Millis::from(give_up_minutes) * MINUTE_MS,
                ..ForewarmConfig::default()
            })),
            PolicySpec::Oracle => return None,
        })
    }
}

impl FromStr for PolicySpec {
    type Err = PolicySpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PolicySpecError { name: s.to_owned() };
        let number = |digits: &str| digits.parse::<u32>().ok().filter(|n| *n > 0);
        match s {
            "no-unloading" => Ok(PolicySpec::NoUnloading),
            "forewarm" => Ok(PolicySpec::FOREWARM),
            "oracle" => Ok(PolicySpec::Oracle),
            _ => {
                let param = |prefix: &str, unit: char| {
                    s.strip_prefix(prefix)
                        .and_then(|r| r.strip_suffix(unit))
                        .map(|digits| number(digits).ok_or_else(err))
                };
                if let Some(n) = param("forewarm-", 'm') {
                    n.map(|give_up_minutes| PolicySpec::Forewarm { give_up_minutes })
                } else if let Some(n) = param("keepalive-", 'm') {
                    n.map(|minutes| PolicySpec::KeepAlive { minutes })
                } else if let Some(n) = param("hybrid-histogram-", 'h') {
                    n.map(|hours| PolicySpec::HybridHistogram { hours })
                } else {
                    Err(err())
                }
            }
        }
    }
}

impl fmt::Display for PolicySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySpec::NoUnloading => f.write_str("no-unloading"),
            PolicySpec::KeepAlive { minutes } => write!(f, "keepalive-{minutes}m"),
            PolicySpec::HybridHistogram { hours } => write!(f, "hybrid-histogram-{hours}h"),
            PolicySpec::Forewarm { give_up_minutes }
                if *give_up_minutes == DEFAULT_GIVE_UP_MINUTES =>
            {
                f.write_str("forewarm")
            }
            PolicySpec::Forewarm { give_up_minutes } => write!(f, "forewarm-{give_up_minutes}m"),
            PolicySpec::Oracle => f.write_str("oracle"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "no-unloading",
            "keepalive-10m",
            "keepalive-60m",
            "hybrid-histogram-1h",
            "hybrid-histogram-4h",
            "forewarm",
            "forewarm-240m",
            "oracle",
        ] {
            let spec: PolicySpec = name.parse().expect(name);
            assert_eq!(spec.to_string(), name);
        }
    }

    #[test]
    fn bad_names_are_rejected_with_the_forms() {
        for bad in [
            "keepalive-0m",
            "keepalive-10",
            "hybrid-histogram-xh",
            "lru",
            "",
        ] {
            let err = bad.parse::<PolicySpec>().expect_err(bad);
            assert!(err.to_string().contains("keepalive-<N>m"), "{err}");
        }
    }
}
