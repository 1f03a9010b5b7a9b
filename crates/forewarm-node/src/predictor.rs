//! The Predictor: per code type, the resource profile one execution needs and the demand to
//! come, trained from the Collector's store periodically and at once after a miss.
//!
//! - profile: p50/p95/p99 of CPU ms, peak memory, I/O and duration over the recent samples,
//!   and a least-squares fit of peak memory on the request's input — payload size and the
//!   body fields the code type declares as features (ndarray) — used when it explains most of
//!   the variance (R² ≥ 0.5), with its largest residual as headroom;
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

use forewarm_policy::{DemandForecast, DemandForecaster, FitRequest, nearest_rank};
use forewarm_store::{Sample, SampleStore, StoreError};
use ndarray::{Array1, Array2};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;

use crate::actors::off_worker;
use crate::catalog::{Catalog, CodeKey};
use crate::clock::unix_ms;
use crate::collector::CollectorMsg;
use crate::invocation::Predicted;
use crate::pool_msg::PoolMsg;
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
/// Demand fits a pool asked for that run at once (the machine's cores are the request path's).
const FITS_AT_ONCE: usize = 2;
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

/// `peak_mib ≈ coef[0] + coef[1]·payload_kib + Σ coef[1+i]·feature_i`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    /// Intercept (MiB at an empty input), then MiB per payload KiB, then MiB per unit of each
    /// declared feature (0 for an input that did not vary).
    pub coef: Vec<f64>,
    /// Share of variance explained.
    pub r2: f64,
    /// Largest residual seen, MiB (added as headroom).
    pub max_residual: f64,
}

impl Regression {
    /// The fitted peak for one input: `payload_kib` then the feature values.
    pub fn fit(&self, inputs: &[f64]) -> f64 {
        let slopes = self.coef.iter().skip(1);
        self.coef[0] + slopes.zip(inputs).map(|(c, x)| c * x).sum::<f64>()
    }
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
    /// Peak memory on the request's input (payload size, declared features), when it
    /// explains the variance.
    pub memory_on_input: Option<Regression>,
    /// Cold-start latency minus execution time (the cost pre-warming hides), p50 ms.
    pub cold_start_ms: Option<f64>,
    /// Invocations per minute ahead.
    pub demand: DemandForecast,
    /// Containers in use at the peak of each coming policy minute: the forecast the pool's
    /// policy acts on (a floor of warm containers), fitted here when the policy asks (a busy
    /// code type, at its checks) from the per-minute peaks it observed. `None` until asked.
    pub concurrency: Option<DemandForecast>,
}

impl Model {
    /// What an execution with a payload of `payload_bytes` and the declared `features` is
    /// predicted to reach and to need, from one fit of its input: the peak is the fit (else
    /// the p50 of all); the need is the fit plus its largest residual (else the p99 of all),
    /// plus what its writes hold in the container's tmpfs, plus headroom.
    pub fn sizing(&self, payload_bytes: u64, features: &[f64]) -> Predicted {
        let (peak, high) = match &self.memory_on_input {
            Some(r) => {
                let fit = r.fit(&inputs(payload_bytes, features));
                (fit, fit + r.max_residual)
            }
            None => (self.peak_mib.p50, self.peak_mib.p99),
        };
        Predicted {
            peak_mib: Some(peak),
            need_mib: (high + self.io_kib.p99 / 1024.0) * (1.0 + HEADROOM) + HEADROOM_MIB,
        }
    }

    /// Train on `samples` (oldest first) and per-minute counts (oldest first); the memory fit
    /// uses the samples that carry `features` feature values (the code type's declared count).
    pub fn train(samples: &[Sample], per_minute: &[f64], features: usize) -> Option<Self> {
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
            memory_on_input: {
                let fitted = samples.iter().filter(|s| s.features.len() == features);
                let (x, y): (Vec<Vec<f64>>, Vec<f64>) = fitted
                    .map(|s| (inputs(s.payload_bytes, &s.features), s.peak_mib))
                    .unzip();
                regress(&x, &y)
            },
            cold_start_ms: (!colds.is_empty()).then(|| Quantiles::of(colds).p50),
            demand: DemandForecaster::default().forecast(per_minute, HORIZON_MIN),
            concurrency: None,
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
            need_mib: self.sizing(0, &[]).need_mib,
            cpu_p95_ms: self.cpu_ms.p95,
            duration_p95_ms: self.duration_ms.p95,
            cold_start_ms: self.cold_start_ms.unwrap_or(0.0),
            demand_per_min: demand,
            containers_per_min: self.concurrency.as_ref().map_or_else(Vec::new, |c| {
                c.per_step
                    .iter()
                    .take(forewarm_raft::state::MAX_DEMAND_POINTS)
                    .copied()
                    .collect()
            }),
            trained_at_ms: self.trained_at_ms,
        }
    }
}

/// The regression's inputs for one request: payload KiB, then the feature values.
fn inputs(payload_bytes: u64, features: &[f64]) -> Vec<f64> {
    let mut x = Vec::with_capacity(1 + features.len());
    x.push(payload_bytes as f64 / 1024.0);
    x.extend_from_slice(features);
    x
}

/// Ordinary least squares of `y` on the rows of `x` (plus an intercept) through the normal
/// equations; an input that does not vary gets slope 0. `None` when there are too few points
/// (fewer than 10, or 3 per coefficient), the inputs are collinear, or the fit explains less
/// than half the variance.
pub fn regress(x: &[Vec<f64>], y: &[f64]) -> Option<Regression> {
    let n = x.len();
    let width = x.first()?.len();
    if n != y.len() || x.iter().any(|row| row.len() != width) {
        return None;
    }
    // Inputs that vary; the others cannot be told from the intercept.
    let varies: Vec<usize> = (0..width)
        .filter(|&j| {
            let (lo, hi) = x.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| {
                (lo.min(r[j]), hi.max(r[j]))
            });
            hi - lo > 1e-9 * hi.abs().max(1.0)
        })
        .collect();
    let p = 1 + varies.len();
    if varies.is_empty() || n < 10.max(3 * p) || !y.iter().all(|v| v.is_finite()) {
        return None;
    }
    let mut design = Array2::<f64>::ones((n, p));
    for (i, row) in x.iter().enumerate() {
        for (k, &j) in varies.iter().enumerate() {
            design[[i, k + 1]] = row[j];
        }
    }
    let y = Array1::from(y.to_vec());
    let beta = solve(design.t().dot(&design), design.t().dot(&y))?;
    let residuals = &y - &design.dot(&beta);
    let mean = y.mean()?;
    let total = y.mapv(|v| (v - mean).powi(2)).sum();
    if total <= f64::EPSILON {
        return None;
    }
    let r2 = 1.0 - residuals.mapv(|r| r * r).sum() / total;
    let max_residual = residuals.iter().copied().fold(0.0, f64::max);
    let mut coef = vec![0.0; 1 + width];
    coef[0] = beta[0];
    for (k, &j) in varies.iter().enumerate() {
        coef[j + 1] = beta[k + 1];
    }
    (r2 >= 0.5 && coef.iter().all(|c| c.is_finite())).then_some(Regression {
        coef,
        r2,
        max_residual,
    })
}

/// `a · β = b` by Gaussian elimination with partial pivoting; `None` when `a` is singular.
fn solve(mut a: Array2<f64>, mut b: Array1<f64>) -> Option<Array1<f64>> {
    let p = b.len();
    let scale = a
        .diag()
        .iter()
        .fold(0.0_f64, |m, v| m.max(v.abs()))
        .max(1.0);
    for col in 0..p {
        let pivot = (col..p).max_by(|&i, &j| a[[i, col]].abs().total_cmp(&a[[j, col]].abs()))?;
        if a[[pivot, col]].abs() < 1e-10 * scale {
            return None;
        }
        if pivot != col {
            for k in 0..p {
                a.swap([pivot, k], [col, k]);
            }
            b.swap(pivot, col);
        }
        for row in col + 1..p {
            let factor = a[[row, col]] / a[[col, col]];
            for k in col..p {
                a[[row, k]] -= factor * a[[col, k]];
            }
            b[row] -= factor * b[col];
        }
    }
    let mut beta = Array1::<f64>::zeros(p);
    for row in (0..p).rev() {
        let known: f64 = (row + 1..p).map(|k| a[[row, k]] * beta[k]).sum();
        beta[row] = (b[row] - known) / a[[row, row]];
    }
    Some(beta)
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
    /// Fit the demand forecast a pool's policy asked for and hand it back to the pool
    /// ([`PoolMsg::Fitted`]); the model of the code type keeps it.
    FitDemand {
        /// `tenant/code`.
        code: CodeKey,
        /// What to fit.
        request: FitRequest,
        /// The PoolSupervisor to answer.
        reply: ActorRef<PoolMsg>,
    },
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
#[derive(Debug, Clone)]
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
    pub collector: crate::supervisor::Slot<CollectorMsg>,
}

/// Its state.
#[derive(Debug)]
pub struct PredictorState {
    args: PredictorArgs,
    last: HashMap<CodeKey, Instant>,
    /// Samples of each code type's last published summary.
    published: HashMap<CodeKey, usize>,
    /// Permits for demand fits ([`FITS_AT_ONCE`]).
    fits: Arc<tokio::sync::Semaphore>,
}

fn train_one(
    store: &SampleStore,
    code: &str,
    features: usize,
) -> Result<Option<Model>, StoreError> {
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
    Ok(Model::train(&samples, &per_minute[first..], features))
}

impl PredictorState {
    async fn train(&mut self, code: CodeKey) {
        self.last.insert(code.clone(), Instant::now());
        let store = self.args.store.clone();
        let key = code.clone();
        let features = self
            .args
            .catalog
            .code(&code)
            .map_or(0, |c| c.features.len());
        let what = format!("predictor: training {code}");
        if let Some(Some(mut model)) =
            off_worker(what, move || train_one(&store, &key, features)).await
        {
            let mut models = self.args.models.write().unwrap_or_else(|e| e.into_inner());
            // The pool's demand forecast is fitted when its policy asks, not here: keep it.
            model.concurrency = models.get(&code).and_then(|m| m.concurrency.clone());
            models.insert(code, Arc::new(model));
        }
    }

    /// Fit the forecast `code`'s pool asked for on the blocking pool (an augurs fit takes
    /// milliseconds; the actor goes on), keep it in the code type's model, and hand it back.
    /// At most [`FITS_AT_ONCE`] run together: every busy code type checks its forecast at the
    /// same policy minute, and their fits queue for a permit instead of taking a thread each.
    fn fit_demand(&self, code: CodeKey, request: FitRequest, reply: ActorRef<PoolMsg>) {
        let models = self.args.models.clone();
        let permits = self.fits.clone();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let what = format!("predictor: fitting the demand of {code}");
            let FitRequest {
                history,
                horizon,
                asked_at,
            } = request;
            let Some(forecast) = off_worker(what, move || {
                Ok::<_, std::convert::Infallible>(
                    DemandForecaster::default().forecast(&history, horizon),
                )
            })
            .await
            else {
                return;
            };
            {
                let mut models = models.write().unwrap_or_else(|e| e.into_inner());
                if let Some(model) = models.get_mut(&code) {
                    Arc::make_mut(model).concurrency = Some(forecast.clone());
                }
            }
            let fitted = PoolMsg::Fitted {
                code,
                asked_at,
                forecast: forecast.per_step,
            };
            if reply.cast(fitted).is_err() {
                tracing::debug!("a demand forecast for a pool that stopped");
            }
        });
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
            fits: Arc::new(tokio::sync::Semaphore::new(FITS_AT_ONCE)),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PredictorMsg::FitDemand {
                code,
                request,
                reply,
            } => state.fit_demand(code, request, reply),
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
        let x: Vec<Vec<f64>> = (0..20).map(|v| vec![f64::from(v)]).collect();
        let y: Vec<f64> = x.iter().map(|v| 30.0 + 2.0 * v[0]).collect();
        let r = regress(&x, &y).expect("a line");
        assert!((r.coef[0] - 30.0).abs() < 1e-6, "{r:?}");
        assert!((r.coef[1] - 2.0).abs() < 1e-6, "{r:?}");
        assert!(r.r2 > 0.999);
        // Constant payloads: nothing to regress on.
        assert!(regress(&vec![vec![5.0]; 20], &y).is_none());
        // y unrelated to x.
        let noise: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 10.0 } else { 50.0 })
            .collect();
        assert!(regress(&x, &noise).is_none());
    }

    #[test]
    fn regression_on_two_features_and_a_constant_payload() {
        // Memory = 12 + 0.5 per item + 3 per unit of width; the payload's size never changes.
        let x: Vec<Vec<f64>> = (0..40)
            .map(|i| vec![0.2, f64::from(i * 37 % 100), f64::from(i % 7)])
            .collect();
        let y: Vec<f64> = x.iter().map(|r| 12.0 + 0.5 * r[1] + 3.0 * r[2]).collect();
        let r = regress(&x, &y).expect("a fit");
        let want = [12.0, 0.0, 0.5, 3.0];
        for (c, w) in r.coef.iter().zip(want) {
            assert!((c - w).abs() < 1e-6, "{r:?}");
        }
        assert!((r.fit(&[0.2, 80.0, 2.0]) - 58.0).abs() < 1e-6);
        // Two inputs that move together cannot be told apart.
        let twins: Vec<Vec<f64>> = (0..40)
            .map(|i| vec![f64::from(i), f64::from(2 * i)])
            .collect();
        let y: Vec<f64> = (0..40).map(f64::from).collect();
        assert!(regress(&twins, &y).is_none());
    }

    #[test]
    fn quantiles_by_rank() {
        let q = Quantiles::of((1..=100).map(f64::from).collect());
        assert_eq!((q.p50, q.p95, q.p99), (50.0, 95.0, 99.0));
    }
}
