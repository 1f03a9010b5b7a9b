//! The Predictor: per code type, the resource profile one execution needs and the demand to
//! come, trained from the Collector's store periodically and at once after a miss.
//!
//! - profile: p50/p95/p99 of CPU ms, peak memory, I/O and duration over the recent samples,
//!   and a least-squares line of peak memory on payload size (ndarray) used when it explains
//!   most of the variance (R² ≥ 0.5);
//! - demand: invocations per minute for the next minutes, from the per-minute rollups, with
//!   the policy core's augurs forecaster (MSTL/ETS, recent mean on short history).
//!
//! Models live in a [`ModelTable`] the Router reads on every request without a message. After
//! each periodic pass, the summaries of models that learned something new are published to the
//! cluster in one Raft write ([`forewarm_raft::ModelSummary`], ≤ 1 KiB each), so a region that
//! sees a code type for the first time sizes it from what the others learned.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use forewarm_policy::{DemandForecast, DemandForecaster, nearest_rank};
use forewarm_store::{Sample, SampleStore, StoreError};
use ndarray::{Array1, Array2};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;

use crate::actors::off_worker;
use crate::catalog::{Catalog, CodeKey};
use crate::clock::unix_ms;
use crate::collector::CollectorMsg;
use forewarm_cluster::Cluster;

/// Samples a model is trained on at most (the most recent).
const MAX_SAMPLES: usize = 2_000;
/// How far back training looks.
const HISTORY: Duration = Duration::from_secs(3_600);
/// Minutes of demand forecast.
const HORIZON_MIN: usize = 10;
/// Retrain everything this often.
pub const TRAIN_EVERY: Duration = Duration::from_secs(30);
/// A miss retrains a code type at most this often.
const MISS_DEBOUNCE: Duration = Duration::from_millis(500);
/// How long a retrain after a miss waits for the Collector to write its buffer.
const SYNC_WITHIN: Duration = Duration::from_secs(5);
/// Headroom over the predicted peak, share and MiB.
const HEADROOM: f64 = 0.10;
const HEADROOM_MIB: f64 = 8.0;

/// p50 / p95 / p99 of one measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    /// Of at least one value.
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let q = |p: f64| nearest_rank(&values, p).unwrap_or(f64::NAN);
        Self {
            p50: q(0.50),
            p95: q(0.95),
            p99: q(0.99),
        }
    }
}

/// `peak_mib ≈ intercept + slope * payload_kib`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Regression {
    /// MiB at an empty payload.
    pub intercept: f64,
    /// MiB per KiB of payload.
    pub slope: f64,
    /// Share of variance explained.
    pub r2: f64,
    /// Largest residual seen, MiB (added as headroom).
    pub max_residual: f64,
}

/// What the Predictor learned about one code type.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    /// Samples it was trained on.
    pub samples: usize,
    /// When, ms since the Unix epoch.
    pub trained_at_ms: u64,
    /// CPU time per execution, ms.
    pub cpu_ms: Quantiles,
    /// Peak memory, MiB.
    pub peak_mib: Quantiles,
    /// Written, KiB.
    pub io_kib: Quantiles,
    /// Execution time, ms.
    pub duration_ms: Quantiles,
    /// Peak memory on payload size, when it explains the variance.
    pub memory_on_payload: Option<Regression>,
    /// Cold-start latency minus execution time (the cost pre-warming hides), p50 ms.
    pub cold_start_ms: Option<f64>,
    /// Invocations per minute ahead.
    pub demand: DemandForecast,
}

impl Model {
    /// Memory an execution with a payload of `payload_bytes` needs, MiB: predicted peak plus
    /// what its writes hold in the container's tmpfs, plus headroom.
    pub fn need_mib(&self, payload_bytes: u64) -> f64 {
        let peak = match self.memory_on_payload {
            Some(r) => r.intercept + r.slope * payload_bytes as f64 / 1024.0 + r.max_residual,
            None => self.peak_mib.p99,
        };
        (peak + self.io_kib.p99 / 1024.0) * (1.0 + HEADROOM) + HEADROOM_MIB
    }

    /// Train on `samples` (oldest first) and per-minute counts (oldest first).
    pub fn train(samples: &[Sample], per_minute: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let col = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
        let colds: Vec<f64> = samples
            .iter()
            .filter(|s| s.start == forewarm_store::Start::Cold)
            .map(|s| (s.latency_ms - s.duration_ms).max(0.0))
            .collect();
        Some(Self {
            samples: samples.len(),
            trained_at_ms: unix_ms(),
            cpu_ms: Quantiles::of(col(|s| s.cpu_ms)),
            peak_mib: Quantiles::of(col(|s| s.peak_mib)),
            io_kib: Quantiles::of(col(|s| s.io_kib as f64)),
            duration_ms: Quantiles::of(col(|s| s.duration_ms)),
            memory_on_payload: regress(
                &col(|s| s.payload_bytes as f64 / 1024.0),
                &col(|s| s.peak_mib),
            ),
            cold_start_ms: (!colds.is_empty()).then(|| Quantiles::of(colds).p50),
            demand: DemandForecaster::default().forecast(per_minute, HORIZON_MIN),
        })
    }

    /// The compact form other regions read.
    pub fn summary(&self, code: &str, region: &str) -> forewarm_raft::ModelSummary {
        let mut demand = self.demand.per_step.clone();
        demand.truncate(forewarm_raft::state::MAX_DEMAND_POINTS);
        forewarm_raft::ModelSummary {
            code: code.to_owned(),
            region: region.to_owned(),
            samples: self.samples as u64,
            need_mib: self.need_mib(0),
            cpu_p95_ms: self.cpu_ms.p95,
            duration_p95_ms: self.duration_ms.p95,
            cold_start_ms: self.cold_start_ms.unwrap_or(0.0),
            demand_per_min: demand,
            trained_at_ms: self.trained_at_ms,
        }
    }
}

/// Ordinary least squares of `y` on `x` through the normal equations; `None` when there are
/// too few points, `x` does not vary, or the line explains less than half the variance.
pub fn regress(x: &[f64], y: &[f64]) -> Option<Regression> {
    let n = x.len();
    if n < 10 || n != y.len() {
        return None;
    }
    let mut design = Array2::<f64>::ones((n, 2));
    design.column_mut(1).assign(&Array1::from(x.to_vec()));
    let y = Array1::from(y.to_vec());
    let xtx = design.t().dot(&design);
    let xty = design.t().dot(&y);
    let det = xtx[[0, 0]] * xtx[[1, 1]] - xtx[[0, 1]] * xtx[[1, 0]];
    if det.abs() < 1e-9 * xtx[[0, 0]] * xtx[[1, 1]].max(1.0) {
        return None;
    }
    let intercept = (xtx[[1, 1]] * xty[0] - xtx[[0, 1]] * xty[1]) / det;
    let slope = (xtx[[0, 0]] * xty[1] - xtx[[1, 0]] * xty[0]) / det;
    let fitted = design.dot(&Array1::from(vec![intercept, slope]));
    let residuals = &y - &fitted;
    let mean = y.mean()?;
    let total = y.mapv(|v| (v - mean).powi(2)).sum();
    if total <= f64::EPSILON {
        return None;
    }
    let r2 = 1.0 - residuals.mapv(|r| r * r).sum() / total;
    let max_residual = residuals.iter().copied().fold(0.0, f64::max);
    (r2 >= 0.5).then_some(Regression {
        intercept,
        slope,
        r2,
        max_residual,
    })
}

/// The models, read by the Router on every request.
pub type ModelTable = Arc<RwLock<HashMap<CodeKey, Arc<Model>>>>;

/// Read one model.
pub fn model_of(models: &ModelTable, code: &str) -> Option<Arc<Model>> {
    models
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(code)
        .cloned()
}

/// What the Predictor is told.
#[derive(Debug, ractor_cluster::RactorMessage)]
pub enum PredictorMsg {
    /// A miss (or a new code type): retrain this one now.
    Train(CodeKey),
    /// Retrain every code type.
    TrainAll,
    /// Retrain this one now and answer when done (tests, `/prediction?fresh`).
    TrainNow(CodeKey, ractor::RpcReplyPort<()>),
}

/// The actor.
#[derive(Debug)]
pub struct Predictor;

/// Its arguments.
#[derive(Debug)]
pub struct PredictorArgs {
    /// Where samples are.
    pub store: Arc<SampleStore>,
    /// Which code types exist.
    pub catalog: Arc<Catalog>,
    /// Where models go.
    pub models: ModelTable,
    /// Where summaries are published.
    pub cluster: Arc<Cluster>,
    /// What writes the samples: asked to write what it holds before a retrain after a miss.
    pub collector: ActorRef<CollectorMsg>,
}

/// Its state.
#[derive(Debug)]
pub struct PredictorState {
    args: PredictorArgs,
    last: HashMap<CodeKey, Instant>,
    /// Samples of each code type's last published summary.
    published: HashMap<CodeKey, usize>,
}

fn train_one(store: &SampleStore, code: &str) -> Result<Option<Model>, StoreError> {
    let now = unix_ms();
    let from = now.saturating_sub(HISTORY.as_millis() as u64);
    let samples = store.latest_samples(code, from, now + 1, MAX_SAMPLES)?;
    let minute = now / 60_000;
    let from_minute = minute.saturating_sub(120);
    let mut per_minute = vec![0.0; (minute - from_minute) as usize];
    for (m, r) in store.rollups(code, from_minute, minute)? {
        per_minute[(m - from_minute) as usize] = r.count as f64;
    }
    // Drop the leading minutes before the code type was first seen.
    let first = per_minute
        .iter()
        .position(|c| *c > 0.0)
        .unwrap_or(per_minute.len());
    Ok(Model::train(&samples, &per_minute[first..]))
}

impl PredictorState {
    async fn train(&mut self, code: CodeKey) {
        self.last.insert(code.clone(), Instant::now());
        let store = self.args.store.clone();
        let key = code.clone();
        let what = format!("predictor: training {code}");
        if let Some(Some(model)) = off_worker(what, move || train_one(&store, &key)).await {
            self.args
                .models
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(code, Arc::new(model));
        }
    }

    /// Publish, in one Raft write from a task of its own (the Predictor does not wait for the
    /// commit), the summaries of models trained on new samples since the last publication.
    fn publish(&mut self) {
        let region = self.args.cluster.me.region.clone();
        let models = self.args.models.read().unwrap_or_else(|e| e.into_inner());
        let mut batch = Vec::new();
        for (code, model) in models.iter() {
            if self.published.get(code) != Some(&model.samples) {
                batch.push(model.summary(code, &region));
                self.published.insert(code.clone(), model.samples);
            }
        }
        drop(models);
        if batch.is_empty() {
            return;
        }
        let cluster = self.args.cluster.clone();
        tokio::spawn(async move {
            let n = batch.len();
            let command = forewarm_raft::Command::PutModels { models: batch };
            match cluster.write(command).await {
                Ok(applied) => tracing::debug!("published {n} model summaries: {applied:?}"),
                Err(e) => tracing::warn!("publishing {n} model summaries: {e}"),
            }
        });
    }
}

impl Actor for Predictor {
    type Msg = PredictorMsg;
    type State = PredictorState;
    type Arguments = PredictorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: PredictorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(TRAIN_EVERY, || PredictorMsg::TrainAll);
        // Models are rebuilt from the store at start: what was learned survives a restart.
        let _ = myself.cast(PredictorMsg::TrainAll);
        Ok(PredictorState {
            args,
            last: HashMap::new(),
            published: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PredictorMsg::Train(code) => {
                let recent = state
                    .last
                    .get(&code)
                    .is_some_and(|at| at.elapsed() < MISS_DEBOUNCE);
                if !recent {
                    // The execution that caused the miss is still in the Collector's buffer
                    // (written every few seconds): written first, it is trained on now, not
                    // at the next round.
                    let synced = state
                        .args
                        .collector
                        .call(CollectorMsg::Sync, Some(SYNC_WITHIN))
                        .await;
                    if !matches!(synced, Ok(ractor::rpc::CallResult::Success(()))) {
                        tracing::warn!(
                            "predictor: the collector did not write its samples in time"
                        );
                    }
                    state.train(code).await;
                }
            }
            PredictorMsg::TrainAll => {
                for code in state.args.catalog.codes() {
                    state.train(code.key()).await;
                }
                state.publish();
            }
            PredictorMsg::TrainNow(code, reply) => {
                state.train(code).await;
                state.publish();
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_finds_a_line_and_refuses_noise() {
        let x: Vec<f64> = (0..20).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| 30.0 + 2.0 * v).collect();
        let r = regress(&x, &y).expect("a line");
        assert!((r.intercept - 30.0).abs() < 1e-6, "{r:?}");
        assert!((r.slope - 2.0).abs() < 1e-6, "{r:?}");
        assert!(r.r2 > 0.999);
        // Constant payloads: nothing to regress on.
        assert!(regress(&[5.0; 20], &y).is_none());
        // y unrelated to x.
        let noise: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 10.0 } else { 50.0 })
            .collect();
        assert!(regress(&x, &noise).is_none());
    }

    #[test]
    fn quantiles_by_rank() {
        let q = Quantiles::of((1..=100).map(f64::from).collect());
        assert_eq!((q.p50, q.p95, q.p99), (50.0, 95.0, 99.0));
    }
}
