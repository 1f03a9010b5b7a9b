//! Policy names as users write them (`keepalive-10m`, `hybrid-histogram-4h`, …).

use std::fmt;
use std::str::FromStr;

use crate::forewarm::{
    DEFAULT_IDLE_BUDGET_MIB, DEFAULT_REFERENCE_MIB, Forewarm, ForewarmConfig, Spares,
};
use crate::hybrid_histogram::{HybridHistogram, HybridHistogramConfig};
use crate::keep_alive::FixedKeepAlive;
use crate::policy::{AppPolicy, HOUR_MS, MINUTE_MS, Millis};
use crate::spes::Spes;

/// How much speculative idle memory forewarm may hold for one application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdleBudget {
    /// A fixed budget in MiB (`forewarm-<N>mib`).
    Mib(u32),
    /// Keep warm the cheapest `percent` of the applications seen so far: the budget is that
    /// quantile of their costs (`forewarm-keep<P>`). Without such history, the default fixed
    /// budget applies.
    KeepShare(u8),
    /// No budget: a price. One cold start is worth keeping the median application of the past
    /// (median of the past costs; without history 256 MiB) warm for `hours`
    /// (`forewarm-price<H>h`; `forewarm` = 4 hours). See `ForewarmConfig::worth_mib_ms`.
    /// `spares` says whether idle containers beyond the first hold the idle-time window or are
    /// kept a minute while the application scales out when its last idle container is taken
    /// (`Spares`; `forewarm-price<H>h-hold`, `forewarm-price<H>h`,
    /// `forewarm-price<H>h-scaleout` and `forewarm-price<H>h-priced`).
    Price {
        /// Hours of the median application's memory one cold start is worth.
        hours: u32,
        /// Hold spares, scale out while busy, or scale out always.
        spares: Spares,
    },
}

/// What a policy may know about an application (and its peers) when it is set up.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AppContext<'a> {
    /// Memory one container of the application needs (its declared limit).
    pub declared_mib: f64,
    /// Costs (declared MiB × peak concurrency) of the applications seen in the past, sorted
    /// ascending; empty when there is no history.
    pub past_costs_mib: &'a [f64],
    /// Demand forecasts are fitted by the owner, off the hot path (the live node's Predictor),
    /// not inside the policy's minute tick (see `ForewarmConfig::deferred_fits`).
    pub deferred_fits: bool,
}

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
    /// forewarm's predictive policy with its idle memory budget or price per application
    /// (`forewarm` = a cold start is worth four hours of the median application's memory).
    Forewarm {
        /// See `ForewarmConfig::idle_budget_mib`.
        budget: IdleBudget,
    },
    /// FaasCache's Greedy-Dual keep-alive (Fuerst & Sharma, ASPLOS'21): idle containers of all
    /// applications share `gib` GiB and the lowest priority is evicted when they exceed it. Not
    /// a per-application policy: only the simulator runs it (`FaasCache`).
    FaasCache {
        /// Budget of idle container memory over all applications, GiB (≥ 1).
        gib: u32,
        /// Priorities weigh the application's frequency (`faascache-<N>gib`), or not
        /// (`faascache-nofreq-<N>gib`, Greedy-Dual-Size: an ablation).
        frequency: bool,
    },
    /// SPES (Lee et al., 2024): a class per invocation pattern of the application, each with
    /// its own pre-load window and keep-alive (`Spes`).
    Spes,
    /// Clairvoyant per-minute knowledge; only the simulator can build it.
    Oracle,
}

/// A policy name that is not one of the known forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown policy {name:?}: expected no-unloading, keepalive-<N>m, hybrid-histogram-<H>h, \
     forewarm, forewarm-<N>mib, forewarm-keep<P>, forewarm-price<H>h[-hold|-scaleout|-priced], faascache-<N>gib, \
     faascache-nofreq-<N>gib, spes or oracle"
)]
pub struct PolicySpecError {
    /// The name as given.
    pub name: String,
}

/// Hours of the median application's memory a cold start is worth in `forewarm`: the range of
/// hybrid-histogram-4h, the baseline that keeps any application whose idle times fall within
/// it warm. Chosen among 1, 2 and 4 hours on the train variants only (docs/benchmarks.md).
const DEFAULT_PRICE_HOURS: u32 = 4;

/// How long a priced `forewarm` keeps a spare container (one that turns idle while another is
/// idle), and holds the containers a scale-out starts. Chosen among 30, 60, 120 and 300 s on the
/// train variants only (docs/benchmarks.md, issue 14 session 3).
const SPARE_KEEP_MS: Millis = MINUTE_MS;

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
        budget: IdleBudget::Price {
            hours: DEFAULT_PRICE_HOURS,
            spares: Spares::ScaleOutWhenBusy,
        },
    };

    /// Whether building this policy uses [`AppContext::past_costs_mib`].
    pub fn uses_past_costs(&self) -> bool {
        matches!(
            self,
            PolicySpec::Forewarm {
                budget: IdleBudget::KeepShare(_) | IdleBudget::Price { .. }
            }
        )
    }

    /// A fresh per-application state, or `None` for the oracle (it needs the future) and
    /// FaasCache (it needs every application at once).
    pub fn build(&self, app: AppContext<'_>) -> Option<Box<dyn AppPolicy>> {
        Some(match *self {
            PolicySpec::NoUnloading => Box::new(FixedKeepAlive::forever()),
            PolicySpec::KeepAlive { minutes } => {
                Box::new(FixedKeepAlive::new(Millis::from(minutes) * MINUTE_MS))
            }
            PolicySpec::HybridHistogram { hours } => Box::new(HybridHistogram::new(
                HybridHistogramConfig::with_range_hours(hours),
            )),
            PolicySpec::Forewarm { budget } => {
                let costs = app.past_costs_mib;
                let worth_mib_ms = match budget {
                    IdleBudget::Price { hours, .. } => {
                        let reference = if costs.is_empty() {
                            f64::from(DEFAULT_REFERENCE_MIB)
                        } else {
                            costs[costs.len() / 2]
                        };
                        Some(reference * (Millis::from(hours) * HOUR_MS) as f64)
                    }
                    _ => None,
                };
                let idle_budget_mib = match budget {
                    IdleBudget::Price { .. } => f64::INFINITY,
                    IdleBudget::Mib(mib) => f64::from(mib),
                    IdleBudget::KeepShare(_) if costs.is_empty() => {
                        f64::from(DEFAULT_IDLE_BUDGET_MIB)
                    }
                    IdleBudget::KeepShare(percent) => {
                        let rank = (f64::from(percent) / 100.0 * costs.len() as f64).ceil();
                        costs[(rank as usize).clamp(1, costs.len()) - 1]
                    }
                };
                Box::new(Forewarm::new(
                    ForewarmConfig {
                        idle_budget_mib,
                        worth_mib_ms,
                        spares: match budget {
                            IdleBudget::Price { spares, .. } => spares,
                            _ => Spares::Hold,
                        },
                        spare_keep_ms: SPARE_KEEP_MS,
                        deferred_fits: app.deferred_fits,
                        ..ForewarmConfig::default()
                    },
                    app.declared_mib,
                ))
            }
            PolicySpec::Spes => Box::new(Spes::new()),
            PolicySpec::FaasCache { .. } | PolicySpec::Oracle => return None,
        })
    }
}

impl FromStr for PolicySpec {
    type Err = PolicySpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PolicySpecError { name: s.to_owned() };
        let number = |digits: &str| digits.parse::<u32>().ok().filter(|n| *n > 0);
        let param = |prefix: &str, suffix: &str| {
            s.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(suffix))
                .map(|digits| number(digits).ok_or_else(err))
        };
        match s {
            "no-unloading" => Ok(PolicySpec::NoUnloading),
            "forewarm" => Ok(PolicySpec::FOREWARM),
            "oracle" => Ok(PolicySpec::Oracle),
            "spes" => Ok(PolicySpec::Spes),
            _ => {
                let price = |n: Result<u32, PolicySpecError>, spares| {
                    n.map(|hours| PolicySpec::Forewarm {
                        budget: IdleBudget::Price { hours, spares },
                    })
                };
                if let Some(n) = param("forewarm-price", "h-scaleout") {
                    price(n, Spares::ScaleOut)
                } else if let Some(n) = param("forewarm-price", "h-priced") {
                    price(n, Spares::Priced)
                } else if let Some(n) = param("forewarm-price", "h-hold") {
                    price(n, Spares::Hold)
                } else if let Some(n) = param("forewarm-price", "h") {
                    price(n, Spares::ScaleOutWhenBusy)
                } else if let Some(n) = param("forewarm-keep", "") {
                    let percent =
                        n.and_then(|p| u8::try_from(p).ok().filter(|p| *p <= 100).ok_or_else(err))?;
                    Ok(PolicySpec::Forewarm {
                        budget: IdleBudget::KeepShare(percent),
                    })
                } else if let Some(n) = param("forewarm-", "mib") {
                    n.map(|mib| PolicySpec::Forewarm {
                        budget: IdleBudget::Mib(mib),
                    })
                } else if let Some(n) = param("faascache-nofreq-", "gib") {
                    n.map(|gib| PolicySpec::FaasCache {
                        gib,
                        frequency: false,
                    })
                } else if let Some(n) = param("faascache-", "gib") {
                    n.map(|gib| PolicySpec::FaasCache {
                        gib,
                        frequency: true,
                    })
                } else if let Some(n) = param("keepalive-", "m") {
                    n.map(|minutes| PolicySpec::KeepAlive { minutes })
                } else if let Some(n) = param("hybrid-histogram-", "h") {
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
            spec if *spec == PolicySpec::FOREWARM => f.write_str("forewarm"),
            PolicySpec::Forewarm {
                budget: IdleBudget::KeepShare(p),
            } => write!(f, "forewarm-keep{p}"),
            PolicySpec::Forewarm {
                budget: IdleBudget::Mib(mib),
            } => write!(f, "forewarm-{mib}mib"),
            PolicySpec::Forewarm {
                budget: IdleBudget::Price { hours, spares },
            } => write!(
                f,
                "forewarm-price{hours}h{}",
                match spares {
                    Spares::Hold => "-hold",
                    Spares::ScaleOutWhenBusy => "",
                    Spares::ScaleOut => "-scaleout",
                    Spares::Priced => "-priced",
                }
            ),
            PolicySpec::FaasCache {
                gib,
                frequency: true,
            } => write!(f, "faascache-{gib}gib"),
            PolicySpec::FaasCache {
                gib,
                frequency: false,
            } => write!(f, "faascache-nofreq-{gib}gib"),
            PolicySpec::Spes => f.write_str("spes"),
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
            "forewarm-2000mib",
            "forewarm-keep90",
            "forewarm-price1h",
            "forewarm-price4h-scaleout",
            "forewarm-price4h-hold",
            "forewarm-price4h-priced",
            "forewarm-price2h",
            "forewarm-keep79",
            "faascache-2000gib",
            "faascache-nofreq-800gib",
            "spes",
            "oracle",
        ] {
            let spec: PolicySpec = name.parse().expect(name);
            assert_eq!(spec.to_string(), name);
        }
    }

    #[test]
    fn keep_share_takes_the_quantile_of_past_costs() {
        let costs: Vec<f64> = (1..=10).map(|i| f64::from(i) * 100.0).collect();
        let spec: PolicySpec = "forewarm-keep80".parse().expect("name");
        let ctx = AppContext {
            declared_mib: 850.0,
            past_costs_mib: &costs,
            deferred_fits: false,
        };
        // The 80% quantile of 100..1000 is 800: an 850 MiB app is over budget, so its window
        // only needs to hold 20% of its idle times.
        let mut policy = spec.build(ctx).expect("online");
        let held = crate::forewarm::held_after_spread_idle_times(policy.as_mut());
        assert!(held < 30 * MINUTE_MS, "{held}");
    }

    #[test]
    fn bad_names_are_rejected_with_the_forms() {
        for bad in [
            "keepalive-0m",
            "keepalive-10",
            "hybrid-histogram-xh",
            "faascache-0gib",
            "faascache-2000",
            "faascache-nofreq-0gib",
            "lru",
            "",
        ] {
            let err = bad.parse::<PolicySpec>().expect_err(bad);
            assert!(err.to_string().contains("keepalive-<N>m"), "{err}");
        }
    }
}
