//! The pure decision core of forewarm.
//!
//! This crate decides, per application (`CodeId`), how long an idle container stays warm, when a
//! container is pre-warmed ahead of the next request, how many containers a busy application
//! needs, and which size class a container gets. It owns the [`AppPolicy`] trait and every policy
//! that implements it: the baselines (`no-unloading`, `keepalive-<N>m`,
//! `hybrid-histogram-<H>h`, SPES's per-class windows (`spes`), and FaasCache's `faascache-<N>gib`, a cache shared by all
//! applications), our predictive `forewarm` policy, and the clairvoyant `oracle`.
//!
//! It must not touch a clock, a runtime, a file or a container: time is a parameter
//! ([`Millis`] since the start of the observation), events come in through method calls and
//! decisions go out as values. The simulator (`forewarm-sim`) and the live node both drive the
//! same code, so every claim made in simulation holds for the code that runs for real; so does
//! the Router's choice of where a request runs ([`routing`]), which the multi-region simulator
//! makes per request as the node does.

mod app_pool;
mod faas_cache;
mod forecast;
mod forewarm;
mod hybrid_histogram;
mod idle_times;
mod keep_alive;
mod oracle;
mod policy;
pub mod routing;
mod size_class;
mod spec;
mod spes;
mod stats;

pub use app_pool::{AppPool, ContainerId, Placement, PoolObserver};
pub use faas_cache::{CachedContainer, FaasCache};
pub use forecast::{DemandForecast, DemandForecaster, DemandModel, forecast_next};
pub use forewarm::{Forewarm, ForewarmConfig, Spares};
pub use hybrid_histogram::{HybridHistogram, HybridHistogramConfig};
pub use idle_times::IdleTimes;
pub use keep_alive::FixedKeepAlive;
pub use oracle::{Oracle, OracleInvocation};
pub use policy::{AppPolicy, FitRequest, HOUR_MS, IdleAction, MINUTE_MS, Millis, WarmFloor};
pub use size_class::{ProfilePredictor, SIZE_CLASSES_MIB, size_class_for};
pub use spec::{AppContext, IdleBudget, PolicySpec, PolicySpecError};
pub use spes::{Spes, SpesClass};
pub use stats::nearest_rank;
