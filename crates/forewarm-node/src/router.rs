//! The Router: the seed's `handleRequest`. For each request it predicts the profile (a local
//! read of the Predictor's model table; declared limits while a code type has no history),
//! leases a warm container that fits from the PoolSupervisor's book (under its lock, in the
//! request's task; with no fit the PoolSupervisor starts one on the request path), runs the
//! invocation, releases the lease, hands the sample to the Collector, and on a miss asks the
//! Predictor to retrain in the background.
//!
//! The actor only dispatches: each request runs in its own task, so a cold start never holds
//! up the next request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_runtime::{ContainerRuntime, RunnerError, RuntimeError, Usage};
use forewarm_store::{Sample, Start};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use crate::catalog::{Code, CodeKey};
use crate::clock::unix_ms;
use crate::collector::SampleInbox;
pub use crate::invocation::{
    Forwarded, Invocation, InvokeError, Invoked, Predicted, RouterMsg, Stages, UsageView,
};
use crate::metrics::Failure;
use crate::pool::{Lease, LeaseStep, PoolBook, PoolError};
use crate::predictor::{PredictorMsg, model_of};
use crate::recent::Routed;
use crate::router_link::RemoteFailed;
use crate::routing::{Decision, Here, Local, Remote, Why, route, route_elsewhere};
use crate::shared::NodeShared;
use forewarm_cluster::mesh::MeshError;

/// How long past the deadline a forwarded invocation's answer is awaited: the member bounds
/// it by the same deadline from when it got it, a network trip later.
const FORWARD_MARGIN: Duration = Duration::from_secs(1);
/// Memory the runner itself holds besides what a workload touches, MiB.
const RUNNER_BASE_MIB: f64 = 8.0;

/// Where a request should run instead of here.
#[derive(Debug, Clone)]
pub struct RouteChoice {
    /// The member to forward to.
    pub target: forewarm_cluster::RemoteView,
    /// Why there.
    pub why: Why,
    /// The member may start a container for it (the tenant may not use this node's region,
    /// so the request cannot fall back to running here); otherwise an idle fit there only.
    pub start: bool,
}

/// Where a request runs ([`choose`]).
#[derive(Debug, Clone)]
pub enum Placement {
    /// On this node, for this reason.
    Here(Local),
    /// On another member (boxed: it carries the member's view).
    There(Box<RouteChoice>),
    /// Nowhere: the tenant may not use this node's `region`, and no member of a region it
    /// may use (`allowed`) is alive.
    Nowhere {
        /// This node's region.
        region: String,
        /// The tenant's regions.
        allowed: Vec<String>,
        /// Members of those regions are known (gone for now, or not heard from yet).
        known: bool,
    },
}

crate::actors::runtime_actor!(Router);

/// Its arguments (and state: everything a request task needs).
#[derive(Debug)]
pub struct RouterArgs<R> {
    /// What every actor shares.
    pub shared: Arc<NodeShared>,
    /// The engine (invocations go straight to the container).
    pub runtime: Arc<R>,
    /// Leases, decided in the request's task under the book's lock.
    pub pool: Arc<PoolBook<R>>,
    /// Samples, for the Collector.
    pub inbox: Arc<SampleInbox>,
    /// Retraining.
    pub predictor: crate::supervisor::Slot<PredictorMsg>,
}

impl<R> Clone for RouterArgs<R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            runtime: self.runtime.clone(),
            pool: self.pool.clone(),
            inbox: self.inbox.clone(),
            predictor: self.predictor.clone(),
        }
    }
}

impl<R: ContainerRuntime + 'static> RouterArgs<R> {
    /// Memory one execution of `inv` (of code type `key`) is predicted to need, MiB, within
    /// the code's limit, and the peak the model predicts for it (`None` without a model of
    /// this node's): one model lookup, one fit.
    pub fn need_mib(&self, inv: &Invocation, key: &str) -> (f64, Option<f64>) {
        let code = &inv.code;
        let limit = f64::from(code.max_memory_mib);
        let predicted = predicted_sizing(&self.shared, code, key, inv.payload_bytes, &inv.features);
        if let Some(from) = inv.forwarded {
            return (from.need_mib.min(limit), predicted.peak_mib);
        }
        let mut need = predicted.need_mib;
        if let Some(m) = inv.overrides.mem_mib {
            need = need.max(m as f64 + RUNNER_BASE_MIB);
        }
        (need.min(limit), predicted.peak_mib)
    }

    /// A container for `code` by `deadline` (the code type's `timeout_ms` from the request's
    /// arrival, `limit`): at once, after a start, or after a wait in the code type's queue.
    /// A request whose deadline passes while queued is answered why it waited (429 quota,
    /// 503 capacity: it never reached a container); one waiting for a start, `Timeout`.
    async fn lease(
        &self,
        code: &Arc<Code>,
        need_mib: f64,
        warm_only: bool,
        deadline: tokio::time::Instant,
        limit: Duration,
    ) -> Result<Lease, InvokeError> {
        match self.pool.lease(code, need_mib, warm_only) {
            LeaseStep::Ready(lease) => Ok(lease),
            LeaseStep::Failed(e) => Err(e.into()),
            LeaseStep::Wait(ticket, mut waiting) => {
                match tokio::time::timeout_at(deadline, &mut waiting).await {
                    Ok(Ok(result)) => Ok(result?),
                    Ok(Err(_)) => Err(InvokeError::Pool(PoolError::Stopping)),
                    Err(_) => {
                        let queued = self.pool.cancel(ticket);
                        // Handed a container in the meantime: it goes back to the pool.
                        waiting.close();
                        if let Ok(Ok(lease)) = waiting.try_recv() {
                            self.pool.release(lease.serial, true);
                        }
                        Err(match queued {
                            Some(why) => InvokeError::Pool(why),
                            None => InvokeError::Timeout(limit),
                        })
                    }
                }
            }
        }
    }

    /// Run `inv` on `choice`'s node by `deadline`. `Ok(None)` when it certainly did not run
    /// there (declined: no fit any more; nothing sent): the caller runs it here. An error
    /// when it may have run there (failed in its container, no answer, session lost): it is
    /// not run again here — at most once.
    async fn run_remote(
        &self,
        inv: &Invocation,
        key: &str,
        need_mib: f64,
        choice: &RouteChoice,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Invoked>, InvokeError> {
        let forwarded = Forwarded {
            tenant: inv.code.tenant.clone(),
            code: inv.code.name.clone(),
            overrides: inv.overrides,
            payload_bytes: inv.payload_bytes,
            features: inv.features.clone(),
            need_mib,
            key: inv.key.clone(),
            start: choice.start,
        };
        let node = &choice.target.node;
        // The member runs it on a warm container only and bounds it by the code type's
        // deadline (from when it got it): its own timeout answer comes within this budget.
        let budget =
            deadline.saturating_duration_since(tokio::time::Instant::now()) + FORWARD_MARGIN;
        let cluster = &self.shared.cluster;
        let Some(mesh) = self.shared.mesh.get() else {
            return Ok(None);
        };
        let id = choice.target.id;
        let reserved = cluster.reserve_remote(id, key, need_mib);
        match crate::router_link::invoke_on(mesh, &node.name, &forwarded, budget).await {
            Ok(mut invoked) => {
                if let Some(class) = reserved {
                    cluster.unreserve_remote(id, key, class);
                }
                invoked.latency_ms = inv.received.elapsed().as_secs_f64() * 1e3;
                self.shared
                    .metrics
                    .invoked(invoked.start, invoked.latency_ms);
                Ok(Some(invoked))
            }
            Err(e) if e.not_run() && choice.start => {
                tracing::info!("{key}: {e}; the tenant may not run here");
                Err(InvokeError::NoAllowedRegion(format!(
                    "{} did not run it ({e}) and the tenant may not run in region {}",
                    node.name, self.shared.config.region
                )))
            }
            Err(e) if e.not_run() => {
                tracing::info!("{key}: {e}; running here");
                Ok(None)
            }
            Err(RemoteFailed::Mesh(MeshError::TimedOut { .. })) => {
                tracing::warn!("{key}: no answer from {} by the deadline", node.name);
                Err(InvokeError::Timeout(Duration::from_millis(
                    inv.code.timeout_ms,
                )))
            }
            Err(e) => {
                tracing::warn!("{key}: {e}; it may have run there: not run again here");
                Err(InvokeError::Failed(format!(
                    "forwarded to {}: {e} (it may have run there, so it was not run again)",
                    node.name
                )))
            }
        }
    }

    async fn route(&self, inv: Invocation) -> Result<Invoked, InvokeError> {
        // `tenant/code`, built once per request.
        let key = inv.code.key();
        // `predicted_peak`: what the profile says of this request before it runs (answered
        // beside the usage).
        let (mut need, predicted_peak) = self.need_mib(&inv, &key);
        // Forwarded here: never routed again; on an idle fit only unless home said a start.
        let warm_only = inv.forwarded.is_some_and(|from| !from.start);
        // The code type's deadline bounds the whole invocation, from its arrival: the wait
        // for a container included.
        let limit = Duration::from_millis(inv.code.timeout_ms);
        let deadline = tokio::time::Instant::from_std(inv.received) + limit;
        let mut why = Why::Forwarded;
        if inv.forwarded.is_none() {
            match choose(&self.shared, &inv.code.tenant, &key, need) {
                Placement::Here(local) => why = Why::Here(local),
                Placement::There(choice) => {
                    match self.run_remote(&inv, &key, need, &choice, deadline).await? {
                        Some(invoked) => {
                            let there = Some(choice.target.node.name.as_str());
                            self.routed(&key, &invoked, there, choice.why);
                            return Ok(invoked);
                        }
                        // Not sent (no transport yet), and it may not run here.
                        None if choice.start => {
                            return Err(InvokeError::NoAllowedRegion(format!(
                                "no transport to {} yet, and the tenant may not run in region {}",
                                choice.target.node.name, self.shared.config.region
                            )));
                        }
                        None => why = Why::Declined,
                    }
                }
                Placement::Nowhere {
                    region,
                    allowed,
                    known: false,
                } => return Err(InvokeError::RegionNotAllowed { region, allowed }),
                Placement::Nowhere { region, .. } => {
                    return Err(InvokeError::NoAllowedRegion(format!(
                        "no member of the tenant's regions is available now, and it may not run in region {region}"
                    )));
                }
            }
        }
        // A container killed over its memory class is a misfit: one retry at the code's limit
        // (the one re-run of a request that reached a container: the first run was cut off
        // by the kernel, not answered).
        let mut killed: Option<String> = None;
        for attempt in 0..2 {
            let asked = Instant::now();
            let route_ms = ms_between(inv.admitted, asked);
            let lease = match self
                .lease(&inv.code, need, warm_only, deadline, limit)
                .await
            {
                Ok(lease) => lease,
                // The first run reached a container: whatever stops the retry, it may have run.
                Err(e) => {
                    return Err(match killed {
                        Some(first) => InvokeError::Failed(format!("{first}; no retry: {e}")),
                        None => e,
                    });
                }
            };
            let leased = Instant::now();
            if lease.start != Start::Cold {
                self.shared.cluster.record_queue_wait(leased - asked);
            }
            let invoked = self.runtime.invoke(&lease.container, &inv.overrides);
            let Ok(result) = tokio::time::timeout_at(deadline, invoked).await else {
                // The container may still be running it: it is removed, never reused.
                self.pool.release(lease.serial, false);
                let _ = self.predictor.cast(PredictorMsg::Train(key.clone()));
                return Err(InvokeError::Timeout(limit));
            };
            match &result {
                Ok(usage) => self.pool.release_used(lease.serial, usage.peak_mib),
                Err(_) => self.pool.release(lease.serial, false),
            }
            match result {
                Ok(usage) => {
                    let answered = Instant::now();
                    let latency_ms = ms_between(inv.received, answered);
                    let stages = Stages {
                        admit_ms: ms_between(inv.received, inv.admitted),
                        route_ms,
                        lease_ms: ms_between(asked, leased),
                        run_ms: ms_between(leased, answered),
                        work_ms: usage.duration_ms,
                    };
                    self.record(&inv, &key, &lease, &usage, need, latency_ms);
                    let cold = lease.start == Start::Cold;
                    let invoked = Invoked {
                        start: lease.start,
                        region: self.shared.config.region.clone(),
                        container: lease.container.id,
                        latency_ms,
                        usage: UsageView {
                            cpu_ms: usage.cpu_ms,
                            peak_mib: usage.peak_mib,
                            io_kib: usage.io_kib,
                        },
                        predicted: Predicted {
                            peak_mib: predicted_peak,
                            need_mib: need,
                        },
                        stages,
                    };
                    self.routed(&key, &invoked, None, why);
                    if cold {
                        let _ = self.predictor.cast(PredictorMsg::Train(key));
                    }
                    return Ok(invoked);
                }
                Err(e) => {
                    let _ = self.predictor.cast(PredictorMsg::Train(key.clone()));
                    let limit = f64::from(inv.code.max_memory_mib);
                    // Cut off without an answer (the kernel's OOM kill breaks the runner's
                    // connection); a runner that answered an error is the workload's failure.
                    let cut_off = matches!(
                        e,
                        RuntimeError::Invoke {
                            error: RunnerError::Http(_),
                            ..
                        }
                    );
                    if attempt == 0 && cut_off && need < limit {
                        tracing::warn!("{key}: {e}; retrying at the code's limit {limit} MiB");
                        self.shared.metrics.misfits.inc();
                        need = limit;
                        killed = Some(e.to_string());
                        continue;
                    }
                    return Err(InvokeError::Failed(e.to_string()));
                }
            }
        }
        Err(InvokeError::Internal(String::from("retries exhausted")))
    }

    /// Note where `invoked` (of code type `key`) ran and why, for the dashboard.
    /// Note where `invoked` (of code type `code`) ran — on `elsewhere`'s member, else here — and why,
    /// for the dashboard.
    fn routed(&self, code: &CodeKey, invoked: &Invoked, elsewhere: Option<&str>, why: Why) {
        self.shared.metrics.recent.routed(Routed {
            at_ms: unix_ms(),
            code: code.clone(),
            elsewhere: elsewhere.map(|node| (node.to_owned(), invoked.region.clone())),
            start: invoked.start,
            latency_ms: invoked.latency_ms,
            why,
        });
    }

    fn record(
        &self,
        inv: &Invocation,
        key: &str,
        lease: &Lease,
        usage: &Usage,
        need: f64,
        latency_ms: f64,
    ) {
        let metrics = &self.shared.metrics;
        metrics.invoked(lease.start, latency_ms);
        metrics.tenant_invoked(&inv.code.tenant, lease.start);
        metrics.prediction(need, usage.peak_mib);
        let now = unix_ms();
        self.inbox.push(Sample {
            at_ms: now.saturating_sub(latency_ms as u64),
            tenant: inv.code.tenant.clone(),
            code: key.to_owned(),
            start: lease.start,
            cpu_ms: usage.cpu_ms,
            peak_mib: usage.peak_mib,
            io_kib: usage.io_kib,
            duration_ms: usage.duration_ms,
            latency_ms,
            payload_bytes: inv.payload_bytes,
            features: inv.features.clone(),
        });
    }
}

/// `to - from`, ms.
fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

impl<R: ContainerRuntime + 'static> Actor for Router<R> {
    type Msg = RouterMsg;
    type State = Arc<RouterArgs<R>>;
    type Arguments = RouterArgs<R>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: RouterArgs<R>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(Arc::new(args))
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let RouterMsg::Invoke(inv, reply) = msg;
        let router = state.clone();
        let span = inv.span.clone();
        let routed = async move {
            let result = router.route(inv).await;
            if let Err(e) = &result {
                router.shared.metrics.failed(match e {
                    InvokeError::Pool(PoolError::StartFailed(_)) => Failure::Start,
                    InvokeError::Pool(PoolError::Stopping) | InvokeError::Internal(_) => {
                        Failure::Internal
                    }
                    InvokeError::Pool(_)
                    | InvokeError::RegionNotAllowed { .. }
                    | InvokeError::NoAllowedRegion(_) => Failure::Rejected,
                    InvokeError::Failed(_) => Failure::Invoke,
                    InvokeError::Timeout(_) => Failure::Timeout,
                });
            }
            match &result {
                Ok(i) => tracing::debug!(
                    start = i.start.as_str(),
                    latency_ms = i.latency_ms,
                    "answered"
                ),
                Err(e) => tracing::debug!("failed: {e}"),
            }
            let _ = reply.send(result);
        };
        tokio::spawn(routed.instrument(span));
        Ok(())
    }
}

/// What one execution of `code` (key `key`) with a payload of `payload_bytes` and the
/// declared `features` is predicted to use, from one read of the model table and one fit:
/// the memory to give it, within the code's limit (this node's model, else what other
/// regions learned (first sight here), else the limit), and the peak this node's model
/// predicts (`None` without one).
pub fn predicted_sizing(
    shared: &NodeShared,
    code: &Code,
    key: &str,
    payload_bytes: u64,
    features: &[f64],
) -> Predicted {
    let limit = f64::from(code.max_memory_mib);
    match model_of(&shared.models, key) {
        Some(model) => {
            let predicted = model.sizing(payload_bytes, features);
            Predicted {
                need_mib: predicted.need_mib.min(limit),
                ..predicted
            }
        }
        None => Predicted {
            need_mib: shared
                .catalog
                .shared_need_mib(key, &shared.config.region)
                .unwrap_or(limit)
                .min(limit),
            peak_mib: None,
        },
    }
}

/// The expected cost of a cold start of `key` on this node, ms: the code type's measured cold
/// start (own model, else other regions'), else this node's container start time.
pub fn expected_cold_ms(shared: &NodeShared, key: &str) -> f64 {
    if let Some(m) = model_of(&shared.models, key)
        && let Some(c) = m.cold_start_ms
    {
        return c;
    }
    let measured = shared.catalog.shared_cold_start_ms(key);
    measured.unwrap_or_else(|| local_start_ms(shared))
}

/// This node's measured container start time, ms.
pub fn local_start_ms(shared: &NodeShared) -> f64 {
    shared
        .cluster
        .local
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .start_ms
}

/// Where the request for `key` of `tenant` needing `need_mib` runs: this node's and the other
/// members' state read into the views of [`crate::routing::route`], which decides (see there
/// for the rule), or of [`route_elsewhere`] when the tenant may not use this node's region.
/// Members farther than the tenant's `max_extra_latency_ms` (measured round trip) are left out
/// of both.
pub fn choose(shared: &NodeShared, tenant: &str, key: &str, need_mib: f64) -> Placement {
    let cluster = &shared.cluster;
    let home = &shared.config.region;
    // An unknown tenant cannot have reached here through the API: nothing to decide.
    let Some(tenant) = shared.catalog.tenant(tenant) else {
        return Placement::Here(Local::NoMembers);
    };
    let allowed_here = tenant.may_use(home);
    let remote = cluster.remote.read().unwrap_or_else(|e| e.into_inner());
    if remote.is_empty() && allowed_here {
        // A lone node: nothing to read (the warm path of every single-node request).
        return Placement::Here(Local::NoMembers);
    }
    // A member beyond the tenant's latency budget (or not yet measured, under one) is not
    // offered to the rule at all.
    let budget = tenant.max_extra_latency_ms.map(f64::from);
    let members = remote
        .values()
        .map(|v| Remote {
            member: v,
            region: &v.node.region,
            inventory_age: v.fetched.elapsed(),
            fits: v.inventory.fits(key, need_mib),
            rtt_ms: cluster.rtt.get(v.id),
            queue_ms: v.inventory.queue_ms,
        })
        .filter(|m| budget.is_none_or(|b| m.rtt_ms.is_some_and(|rtt| rtt <= b)));
    if !allowed_here {
        return match route_elsewhere(expected_cold_ms(shared, key), members, |region| {
            tenant.may_use(region)
        }) {
            Some(there) => Placement::There(Box::new(RouteChoice {
                target: there.member.clone(),
                why: Why::NotAllowedHere,
                start: true,
            })),
            None => Placement::Nowhere {
                region: home.clone(),
                allowed: tenant.allowed_regions.clone(),
                known: remote.values().any(|v| tenant.may_use(&v.node.region)),
            },
        };
    }
    let fits = cluster
        .local
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .fits(key, need_mib);
    let here = Here {
        fits,
        cold_ms: if fits {
            0.0
        } else {
            expected_cold_ms(shared, key)
        },
        queue_ms: cluster.queue_ms(),
    };
    match route(here, members, |region| tenant.may_use(region)) {
        Decision::Forward {
            member,
            score_ms,
            local_ms,
        } => Placement::There(Box::new(RouteChoice {
            target: member.clone(),
            why: Why::Faster { score_ms, local_ms },
            start: false,
        })),
        Decision::Local(why) => Placement::Here(why),
    }
}
