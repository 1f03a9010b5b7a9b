//! The Router's remote face: the actor that runs invocations forwarded by other regions
//! (over the node transport, [`forewarm_cluster::mesh`]) through the local Router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use forewarm_cluster::mesh::{Mesh, MeshError, RouterLinkMsg, SCOPE, router_node, router_region};
use ractor::{Actor, ActorProcessingErr, ActorRef, pg};

use crate::admission::Slots;
use crate::catalog::{Catalog, code_key};
use crate::invocation::{Forwarded, Invocation, Invoked, RemoteError, RouterMsg};

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
    pub router: ActorRef<RouterMsg>,
    /// The node's in-flight slots (the API's: the same limits apply).
    pub slots: Arc<Slots>,
}

/// The Router's remote face: runs invocations forwarded by other regions through the local
/// Router, on an idle container that fits only (never a start: the home region falls back to
/// its own).
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

/// Run one forwarded invocation here.
async fn run_forwarded(args: &RouterLinkArgs, body: &[u8]) -> Result<Invoked, RemoteError> {
    let received = Instant::now();
    let f: Forwarded =
        serde_json::from_slice(body).map_err(|e| declined(format!("forwarded invocation: {e}")))?;
    let code = args
        .catalog
        .code(&code_key(&f.tenant, &f.code))
        .ok_or_else(|| declined(format!("no code type {}/{} here (yet)", f.tenant, f.code)))?;
    let _slot = args.slots.take(&f.tenant).map_err(declined)?;
    let inv = Invocation {
        code,
        overrides: f.overrides,
        payload_bytes: f.payload_bytes,
        received,
        forwarded_need_mib: Some(f.need_mib),
    };
    let called = args
        .router
        .call(|reply| RouterMsg::Invoke(inv, reply), None)
        .await;
    match called {
        Ok(ractor::rpc::CallResult::Success(result)) => result.map_err(|e| RemoteError {
            reason: e.to_string(),
            may_have_run: e.may_have_run(),
        }),
        _ => Err(RemoteError {
            reason: String::from("node stopping"),
            may_have_run: true,
        }),
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
