//! The Router's remote face: the actor that runs invocations forwarded by other regions
//! (over the node transport, [`forewarm_cluster::mesh`]) through the local Router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_cluster::mesh::{Mesh, MeshError, RouterLinkMsg, SCOPE, router_node, router_region};
use ractor::{Actor, ActorProcessingErr, ActorRef, pg};

use crate::admission::Slots;
use crate::catalog::{Catalog, Code, code_key, overrides_within};
use crate::idempotency::{Begun, Ids, Remembered, valid_key};
use crate::invocation::{
    Forwarded, ForwardedFrom, Invocation, InvokeError, Invoked, RemoteError, RouterMsg,
};

/// What the RouterLink needs.
#[derive(Debug)]
pub struct RouterLinkArgs {
    /// This node's region.
    pub region: String,
    /// This node's name.
    pub node_id: String,
    /// The code types forwarded invocations name.
    pub catalog: Arc<Catalog>,
    /// The local Router.
    pub router: crate::supervisor::Slot<RouterMsg>,
    /// The node's in-flight slots (the API's: the same limits apply).
    pub slots: Arc<Slots>,
    /// The node's invocation ids (the API's: a key forwarded here and the same key sent here
    /// by the client are one invocation).
    pub ids: Arc<Ids>,
}

/// The Router's remote face: runs invocations forwarded by other regions through the local
/// Router, on an idle container that fits only (the home region falls back to its own) unless
/// the home region may not run it (then a container may be started here).
#[derive(Debug)]
pub struct RouterLink;

impl Actor for RouterLink {
    type Msg = RouterLinkMsg;
    type State = Arc<RouterLinkArgs>;
    type Arguments = RouterLinkArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RouterLinkArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let cell = myself.get_cell();
        let (region, name) = (&args.region, &args.node_id);
        for group in [router_region(region), router_node(name)] {
            pg::join_scoped(SCOPE.into(), group, vec![cell.clone()]);
        }
        Ok(Arc::new(args))
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        args: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let RouterLinkMsg::Invoke(body, reply) = msg;
        let args = args.clone();
        // Each in its own task: a slow invocation does not hold up the next.
        tokio::spawn(async move {
            let answer = run_forwarded(&args, &body).await;
            let _ = reply.send(serde_json::to_vec(&answer).unwrap_or_default());
        });
        Ok(())
    }
}

/// Why a forwarded invocation was not run here.
fn declined(reason: impl ToString) -> RemoteError {
    RemoteError {
        reason: reason.to_string(),
        may_have_run: false,
    }
}

/// A forwarded invocation read from `body` and checked against its code type (`code_of`
/// finds it by key) as the API checks a client's: overrides within the workload's bounds and
/// memory limit, a memory need between 0 and the code type's limit. Anything else is
/// declined (nothing ran; the home region runs it itself or answers).
fn forwarded_request(
    body: &[u8],
    code_of: impl Fn(&str) -> Option<Arc<Code>>,
) -> Result<(Forwarded, Arc<Code>), RemoteError> {
    let f: Forwarded =
        serde_json::from_slice(body).map_err(|e| declined(format!("forwarded invocation: {e}")))?;
    let code = code_of(&code_key(&f.tenant, &f.code))
        .ok_or_else(|| declined(format!("no code type {}/{} here (yet)", f.tenant, f.code)))?;
    overrides_within(&code, &f.overrides).map_err(|e| declined(format!("overrides: {e}")))?;
    if !(0.0..=f64::from(code.max_memory_mib)).contains(&f.need_mib) {
        return Err(declined(format!(
            "need_mib {} is not within 0..={} MiB",
            f.need_mib, code.max_memory_mib
        )));
    }
    if f.key.as_deref().is_some_and(|k| !valid_key(k)) {
        return Err(declined("an invalid Idempotency-Key"));
    }
    Ok((f, code))
}

/// Run one forwarded invocation here; under the client's `Idempotency-Key`, at most once
/// (as the API does: recorded before it runs, its answer remembered for a retry).
async fn run_forwarded(args: &RouterLinkArgs, body: &[u8]) -> Result<Invoked, RemoteError> {
    let received = Instant::now();
    let (f, code) = forwarded_request(body, |key| args.catalog.code(key))?;
    // The tenant's regions bind here too (home checked them; its view may be older).
    if let Some(tenant) = args.catalog.tenant(&f.tenant)
        && !tenant.may_use(&args.region)
    {
        return Err(declined(format!(
            "tenant {} may not run in region {}",
            f.tenant, args.region
        )));
    }
    let _slot = args.slots.take(&f.tenant).map_err(declined)?;
    let inv = Invocation {
        code,
        overrides: f.overrides,
        payload_bytes: f.payload_bytes,
        features: f.features,
        received,
        admitted: Instant::now(),
        forwarded: Some(ForwardedFrom {
            need_mib: f.need_mib,
            start: f.start,
        }),
        span: tracing::info_span!(
            "invocation",
            id = f.key.as_deref().unwrap_or("forwarded"),
            tenant = %f.tenant,
            code = %f.code,
            forwarded = true
        ),
        key: f.key,
    };
    let Some(key) = inv.key.clone() else {
        return run_here(args, inv).await.map_err(remote_error);
    };
    let running = match args.ids.begin(&inv.code.tenant, &key, received) {
        Begun::Run(running) => running,
        Begun::InProgress => {
            return Err(RemoteError {
                reason: format!("an invocation with Idempotency-Key {key:?} is running there"),
                may_have_run: true,
            });
        }
        Begun::Replay(answer) => return replay(&answer, &key),
    };
    running.persist().await.map_err(|e| {
        declined(format!(
            "could not record Idempotency-Key {key:?} ({e}); nothing ran"
        ))
    })?;
    let result = run_here(args, inv).await;
    running.finish(remembered(&result), Instant::now()).await;
    result.map_err(remote_error)
}

/// Run `inv` through the local Router (on an idle container that fits only).
async fn run_here(args: &RouterLinkArgs, inv: Invocation) -> Result<Invoked, InvokeError> {
    let called = args
        .router
        .call(|reply| RouterMsg::Invoke(inv, reply), None)
        .await;
    match called {
        Ok(ractor::rpc::CallResult::Success(result)) => result,
        _ => Err(InvokeError::Internal(String::from("node stopping"))),
    }
}

fn remote_error(e: InvokeError) -> RemoteError {
    RemoteError {
        reason: e.to_string(),
        may_have_run: e.may_have_run(),
    }
}

/// What the API would have answered for `result` (so either face can replay it).
fn remembered(result: &Result<Invoked, InvokeError>) -> Remembered {
    match result {
        Ok(invoked) => Remembered {
            status: 200,
            start: Some(invoked.start.as_str().to_owned()),
            body: serde_json::to_vec(invoked).unwrap_or_default(),
        },
        Err(e) => {
            let (status, code) = e.http();
            let body = serde_json::json!({"error": code, "message": e.to_string()});
            Remembered {
                status,
                start: None,
                body: body.to_string().into_bytes(),
            }
        }
    }
}

/// The remembered answer of `key`, as the home region reads it: it ran (maybe failed) here.
fn replay(answer: &Remembered, key: &str) -> Result<Invoked, RemoteError> {
    let ran_before = |why: String| RemoteError {
        reason: format!("Idempotency-Key {key:?} ran there before: {why}"),
        may_have_run: true,
    };
    if answer.status == 200 {
        serde_json::from_slice(&answer.body).map_err(|e| ran_before(e.to_string()))
    } else {
        let body = String::from_utf8_lossy(&answer.body);
        Err(ran_before(format!("answered {} {body}", answer.status)))
    }
}

/// Why a forwarded invocation came back without an answer (the home region then runs it).
#[derive(Debug, thiserror::Error)]
pub enum RemoteFailed {
    /// The transport: no session, no answer in time, session lost.
    #[error(transparent)]
    Mesh(#[from] MeshError),
    /// The member declined (no such code type there yet, too many in flight, no warm fit):
    /// it did not run there.
    #[error("{name} declined: {reason}")]
    Declined {
        /// The member.
        name: String,
        /// What it said.
        reason: String,
    },
    /// The member took it and it failed there (in its container, or past its deadline): it
    /// may have run.
    #[error("{name}: {reason}")]
    Failed {
        /// The member.
        name: String,
        /// What it said.
        reason: String,
    },
    /// The member's answer could not be read.
    #[error("answer of {name}: {reason}")]
    BadAnswer {
        /// The member.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl RemoteFailed {
    /// Whether the invocation certainly did not run on the member (the home region may run
    /// it instead without running it twice).
    pub fn not_run(&self) -> bool {
        match self {
            RemoteFailed::Mesh(e) => e.not_sent(),
            RemoteFailed::Declined { .. } => true,
            RemoteFailed::Failed { .. } | RemoteFailed::BadAnswer { .. } => false,
        }
    }
}

/// Run `forwarded` on member `name` through its RouterLink, waiting at most `budget`.
pub async fn invoke_on(
    mesh: &Mesh,
    name: &str,
    forwarded: &Forwarded,
    budget: Duration,
) -> Result<Invoked, RemoteFailed> {
    let body = serde_json::to_vec(forwarded).map_err(|e| RemoteFailed::BadAnswer {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    let bytes = mesh.invoke(name, body, budget).await?;
    serde_json::from_slice::<Result<Invoked, RemoteError>>(&bytes)
        .map_err(|e| RemoteFailed::BadAnswer {
            name: name.to_owned(),
            reason: e.to_string(),
        })?
        .map_err(|e| {
            let name = name.to_owned();
            let reason = e.reason;
            if e.may_have_run {
                RemoteFailed::Failed { name, reason }
            } else {
                RemoteFailed::Declined { name, reason }
            }
        })
}

#[cfg(test)]
mod props {
    //! Property tests (issue 15, "no input panics"): a member reads invocations forwarded by
    //! other members; whatever the bytes, it reads one within every bound the API would
    //! enforce, or declines with a reason (nothing ran).
    use forewarm_runtime::Workload;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::catalog::RUNNER_OVERHEAD_MIB;

    fn code() -> Arc<Code> {
        Arc::new(Code {
            tenant: String::from("acme"),
            name: String::from("resize"),
            workload: Workload {
                cpu_ms: 5,
                mem_mib: 32,
                ..Workload::default()
            },
            image: String::from("forewarm/runner:0"),
            max_memory_mib: 256,
            max_cpu_millis: 1000,
            timeout_ms: forewarm_raft::DEFAULT_TIMEOUT_MS,
            max_queue: forewarm_raft::DEFAULT_MAX_QUEUE,
            features: Vec::new(),
            version: 1,
            writes: vec![],
        })
    }

    fn number() -> BoxedStrategy<Value> {
        prop_oneof![
            prop::sample::select(vec![
                0u64,
                1,
                247,
                248,
                249,
                256,
                600_000,
                600_001,
                u64::MAX
            ])
            .prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop::sample::select(vec![-1.0f64, 0.5, 255.9, 256.0, 256.1, 1e308])
                .prop_map(Value::from),
            Just(Value::Null),
            Just(Value::from("12")),
        ]
        .boxed()
    }

    /// Bodies shaped like a forward, with hostile values in every field (and now and then
    /// a field too many or none at all), or arbitrary bytes.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let overrides = prop::collection::btree_map(
            prop::sample::select(vec![
                "cpu_ms", "mem_mib", "io_kib", "sleep_ms", "init_ms", "x",
            ]),
            number(),
            0..4,
        );
        let need = prop_oneof![
            (-10.0f64..300.0).prop_map(|f| json!(f)),
            any::<f64>().prop_map(|f| json!(f)),
            number(),
            Just(json!("NaN")),
        ];
        let key = prop_oneof![
            2 => Just(Value::Null),
            1 => "[ -~]{0,130}".prop_map(Value::from),
            1 => "\\PC{1,4}".prop_map(Value::from),
        ];
        let shaped = (
            prop::sample::select(vec!["acme", "acme", "acme", "other", ""]),
            prop::sample::select(vec!["resize", "resize", "resize", "nope"]),
            overrides,
            need,
            key,
            any::<u64>(),
        )
            .prop_map(|(tenant, code, overrides, need, key, payload)| {
                let body = json!({
                    "tenant": tenant, "code": code, "overrides": overrides,
                    "payload_bytes": payload, "need_mib": need, "key": key,
                });
                serde_json::to_vec(&body).expect("serialises")
            });
        prop_oneof![3 => shaped, 1 => prop::collection::vec(any::<u8>(), 0..120)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn p01_a_forward_is_within_every_bound_or_declined(body in body()) {
            let code = code();
            let known = |key: &str| (key == "acme/resize").then(|| code.clone());
            match forwarded_request(&body, known) {
                Ok((f, c)) => {
                    let w = c.workload.with(&f.overrides);
                    prop_assert!(w.validate().is_ok(), "{:?}", f);
                    prop_assert!(w.mem_mib + RUNNER_OVERHEAD_MIB <= u64::from(c.max_memory_mib), "{:?}", f);
                    prop_assert!(f.need_mib.is_finite() && (0.0..=256.0).contains(&f.need_mib), "{:?}", f);
                    prop_assert!(f.key.as_deref().is_none_or(valid_key), "{:?}", f);
                }
                Err(e) => {
                    prop_assert!(!e.may_have_run, "{:?}", e);
                    prop_assert!(!e.reason.is_empty());
                }
            }
        }
    }
}
