//! This node's part in the replicated cluster state (forewarm-raft): the Raft node, its
//! network (Raft RPCs over the nodes' HTTP APIs), writes forwarded to the leader, linearizable
//! reads from any node, joining and leaving, and the RTT each node measures to the others.
//!
//! Why HTTP for Raft RPCs (and not the ractor_cluster transport): every node already serves
//! HTTP, Raft RPCs are request/response with a deadline (`RPCOption::hard_ttl`), a failed
//! connection must read as "unreachable" at once so openraft backs off, and an operator can
//! see and replay them with curl. Internal endpoints (`/raft/*`) take the cluster secret as
//! their bearer token; the public API never accepts it. docs/cluster.md has the details.
//!
//! Every node runs Raft, a lone node included (a cluster of one, started on first boot), so a
//! single node and a cluster keep tenants and code types the same way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router as Routes;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use forewarm_raft::{
    Applied, AppliedState, ClusterNode, Command, NodeId, Raft, SharedState, TypeConfig,
};
use forewarm_runtime::{HttpClient, Method};
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{ChangeMembers, ServerState, SnapshotPolicy};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::NodeConfig;

/// How long a write or read waits for a leader (an election) before giving up.
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long one forwarded write or read-index call may take before the leader is looked up
/// again (a leader cut off mid-call must not hold the caller for the whole wait).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// Weight of a new RTT sample in the moving average.
const RTT_ALPHA: f64 = 0.3;

/// Why a cluster operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// No leader within the wait (no quorum, or an election that does not end).
    #[error("no Raft leader within {0:?}: is a majority of the members up?")]
    NoLeader(Duration),
    /// The leader (or a seed) could not be reached or answered badly.
    #[error("{0}")]
    Unreachable(String),
    /// Raft refused (membership change in progress, node shutting down, …).
    #[error("{0}")]
    Raft(String),
    /// The store could not be opened or Raft not started.
    #[error("{0}")]
    Start(String),
}

/// One member as `GET /v1/cluster` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Raft id.
    pub id: NodeId,
    /// Node name.
    pub name: String,
    /// Region.
    pub region: String,
    /// API address.
    pub addr: String,
    /// `leader`, `voter` or `learner`.
    pub role: &'static str,
    /// Moving average of this node's round trips to it, ms (`None` for itself or before the
    /// first probe answers).
    pub rtt_ms: Option<f64>,
    /// The latest measured round trips to it, oldest first, ms (at most 5).
    pub rtt_recent_ms: Vec<f64>,
    /// Its process groups this node reaches over their ractor_cluster session (empty for
    /// itself, or while there is no session).
    pub groups: Vec<String>,
    /// Measured wait of a warm request before it runs there, ms (this node's own for itself;
    /// a member's from its last inventory).
    pub queue_ms: Option<f64>,
}

/// `GET /v1/cluster`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// This node's id.
    pub id: NodeId,
    /// This node's name.
    pub node: String,
    /// This node's region.
    pub region: String,
    /// This node's Raft state: `leader`, `follower`, `candidate`, `learner`, `shutdown`.
    pub state: String,
    /// The leader's id, if known.
    pub leader: Option<NodeId>,
    /// The leader's name, if known.
    pub leader_name: Option<String>,
    /// Current term.
    pub term: u64,
    /// Index of the last applied log entry.
    pub applied_index: Option<u64>,
    /// Members, voters first.
    pub members: Vec<MemberView>,
}

/// What a node holds warm: idle containers' memory (MiB) per `tenant/code`, and its measured
/// container start time. Written by the PoolSupervisor on every reconcile tick, pushed to the
/// other members' PoolLinks ([`crate::mesh`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    /// Idle containers by code type: their size classes, named by memory, MiB (the CPU share
    /// scales with it); of any code version: the warm-only lease on the member checks it.
    pub idle: HashMap<String, Vec<u32>>,
    /// Moving average of this node's container start time, ms.
    pub start_ms: f64,
    /// Moving average of how long a warm request waited on this node before it ran (the
    /// Router's lease: the pool's bookkeeping under its lock), ms: the `queue_wait` of the routing
    /// score.
    #[serde(default)]
    pub queue_ms: f64,
}

impl Inventory {
    /// Whether an idle container of `code` has at least `need_mib`.
    pub fn fits(&self, code: &str, need_mib: f64) -> bool {
        self.idle
            .get(code)
            .is_some_and(|classes| classes.iter().any(|&m| f64::from(m) >= need_mib))
    }
}

/// Another member's inventory as last received.
#[derive(Debug, Clone)]
pub struct RemoteView {
    /// Its id.
    pub id: NodeId,
    /// Its membership record.
    pub node: ClusterNode,
    /// What it holds.
    pub inventory: Inventory,
    /// When it arrived.
    pub fetched: Instant,
}

/// What an internal endpoint answers to a wrong or missing cluster secret.
pub const SECRET_REFUSED: &str = "internal endpoint: wrong or missing cluster secret";

/// Round trips to the other members.
#[derive(Debug, Default)]
pub struct RttTable {
    by_member: RwLock<HashMap<NodeId, Rtt>>,
}

/// Round trips to one member: the moving average and the latest samples.
#[derive(Debug, Clone, Default)]
struct Rtt {
    ewma_ms: f64,
    recent_ms: std::collections::VecDeque<f64>,
    /// When a probe last answered.
    answered: Option<Instant>,
}

/// `average` moved towards `sample` (weight [`RTT_ALPHA`]).
fn ewma(average: f64, sample: f64) -> f64 {
    RTT_ALPHA * sample + (1.0 - RTT_ALPHA) * average
}

/// Samples kept per member for `GET /v1/cluster`.
const RTT_RECENT: usize = 5;

impl RttTable {
    /// Fold one measured round trip to `id` into its average.
    pub fn record(&self, id: NodeId, ms: f64) {
        self.fold(id, ms, false);
    }

    /// Fold a round trip to `id` that was answered (a ping) into its average, and note when.
    pub fn answered(&self, id: NodeId, ms: f64) {
        self.fold(id, ms, true);
    }

    fn fold(&self, id: NodeId, ms: f64, answered: bool) {
        let mut table = self.by_member.write().unwrap_or_else(|e| e.into_inner());
        let rtt = table.entry(id).or_insert_with(|| Rtt {
            ewma_ms: ms,
            recent_ms: Default::default(),
            answered: None,
        });
        rtt.ewma_ms = ewma(rtt.ewma_ms, ms);
        if rtt.recent_ms.len() == RTT_RECENT {
            rtt.recent_ms.pop_front();
        }
        rtt.recent_ms.push_back(ms);
        if answered {
            rtt.answered = Some(Instant::now());
        }
    }

    /// Whether `id` answered a probe within `within`.
    pub fn heard(&self, id: NodeId, within: Duration) -> bool {
        let table = self.by_member.read().unwrap_or_else(|e| e.into_inner());
        table
            .get(&id)
            .and_then(|r| r.answered)
            .is_some_and(|at| at.elapsed() < within)
    }

    /// The average round trip to `id`, ms.
    pub fn get(&self, id: NodeId) -> Option<f64> {
        let table = self.by_member.read().unwrap_or_else(|e| e.into_inner());
        table.get(&id).map(|r| r.ewma_ms)
    }

    /// The latest round trips to `id`, oldest first, ms.
    pub fn recent(&self, id: NodeId) -> Vec<f64> {
        let table = self.by_member.read().unwrap_or_else(|e| e.into_inner());
        table
            .get(&id)
            .map(|r| r.recent_ms.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// This node in the cluster.
pub struct Cluster {
    /// The Raft node.
    pub raft: Raft,
    /// Its id.
    pub id: NodeId,
    /// Its membership record.
    pub me: ClusterNode,
    state: SharedState,
    /// A handle on the store, to know when Raft has let go of it; dropped at shutdown so the
    /// file is closed even while handlers still hold the cluster.
    store: std::sync::Mutex<Option<forewarm_raft::LogStore>>,
    /// Authenticated calls to the other members (Raft's network too).
    net: HttpNetwork,
    /// Round trips to the other members.
    pub rtt: RttTable,
    /// This node's warm inventory (written by the PoolSupervisor).
    pub local: RwLock<Inventory>,
    /// The other members' inventories.
    pub remote: RwLock<HashMap<NodeId, RemoteView>>,
    /// Moving average of the wait before a warm request runs here, ms (bits of an f64).
    queue_ms: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// A write as forwarded to the leader, and its answer.
#[derive(Debug, Serialize, Deserialize)]
struct Written {
    applied: Applied,
    index: u64,
}

/// A member whose last inventory arrived longer ago than this does not count towards the
/// majority a node needs before it stands for election (three push periods).
const QUORUM_STALE: Duration = Duration::from_millis(750);

/// How long a ping (or a dial) of another member may take.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Cluster {
    /// Open the Raft store under the data directory and start the Raft node (it serves
    /// nothing yet: mount [`routes`], then call [`Cluster::bootstrap_or_join`]).
    pub async fn start(config: &NodeConfig, advertise: String) -> Result<Arc<Self>, ClusterError> {
        let (log, sm) = forewarm_raft::store::open(&config.data_dir.join("raft.redb"))
            .map_err(|e| ClusterError::Start(e.to_string()))?;
        let state = sm.shared();
        let c = &config.cluster;
        let raft_config = openraft::Config {
            cluster_name: String::from("forewarm"),
            heartbeat_interval: c.heartbeat_ms,
            election_timeout_min: c.election_min_ms,
            election_timeout_max: c.election_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(c.snapshot_every),
            max_in_snapshot_log_to_keep: 100,
            install_snapshot_timeout: 5_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ClusterError::Start(format!("raft config: {e}")))?;
        let net = HttpNetwork {
            http: HttpClient::from_source(c.source_addr),
            secret: Arc::from(c.secret.clone().unwrap_or_default()),
        };
        let id = forewarm_raft::raft_id(&config.node_id);
        let store = log.clone();
        let raft = Raft::new(id, Arc::new(raft_config), net.clone(), log, sm)
            .await
            .map_err(|e| ClusterError::Start(format!("raft: {e}")))?;
        Ok(Arc::new(Self {
            raft,
            id,
            me: ClusterNode {
                addr: advertise,
                region: config.region.clone(),
                name: config.node_id.clone(),
            },
            state,
            store: std::sync::Mutex::new(Some(store)),
            net,
            rtt: RttTable::default(),
            local: RwLock::new(Inventory::default()),
            remote: RwLock::new(HashMap::new()),
            queue_ms: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Fold one measured wait of a warm request (from arrival at the Router to its lease)
    /// into this node's queue-wait average.
    pub fn record_queue_wait(&self, waited: Duration) {
        use std::sync::atomic::Ordering;
        let ms = waited.as_secs_f64() * 1e3;
        // One writer at a time is not guaranteed: a lost update only loses one sample.
        let old = f64::from_bits(self.queue_ms.load(Ordering::Relaxed));
        self.queue_ms
            .store(ewma(old, ms).to_bits(), Ordering::Relaxed);
    }

    /// This node's queue-wait average, ms.
    pub fn queue_ms(&self) -> f64 {
        f64::from_bits(self.queue_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Take one idle container of `code` that fits `need_mib` out of member `id`'s last
    /// inventory: a request is being forwarded to it, so requests that come before the next
    /// inventory do not all count on that one container. Its memory class, if there was one.
    pub fn reserve_remote(&self, id: NodeId, code: &str, need_mib: f64) -> Option<u32> {
        let mut remote = self.remote.write().unwrap_or_else(|e| e.into_inner());
        let classes = remote.get_mut(&id)?.inventory.idle.get_mut(code)?;
        let i = classes.iter().position(|&m| f64::from(m) >= need_mib)?;
        Some(classes.swap_remove(i))
    }

    /// A request forwarded to member `id` ran on a container of `class`, which is idle again:
    /// put it back into the member's view unless that already shows a container of `code`
    /// that large (an inventory pushed since then).
    pub fn unreserve_remote(&self, id: NodeId, code: &str, class: u32) {
        let mut remote = self.remote.write().unwrap_or_else(|e| e.into_inner());
        if let Some(view) = remote.get_mut(&id) {
            let classes = view.inventory.idle.entry(code.to_owned()).or_default();
            if !classes.iter().any(|&m| m >= class) {
                classes.push(class);
            }
        }
    }

    /// The applied state (what the request path reads).
    pub fn state(&self) -> &SharedState {
        &self.state
    }

    fn applied(&self) -> std::sync::RwLockReadGuard<'_, AppliedState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// On a node that never was a member: start a cluster of one when `join` is empty, else
    /// ask the seeds in `join` (any member; it forwards to the leader) to add it, retrying
    /// until `deadline`. A node that was a member (restart) just resumes.
    pub async fn bootstrap_or_join(
        self: &Arc<Self>,
        join: &[String],
        deadline: Duration,
    ) -> Result<(), ClusterError> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        if initialized {
            // A member of a larger cluster cannot talk to the others without the secret.
            let members = self.applied().membership.membership().nodes().count();
            if self.net.secret.is_empty() && members > 1 {
                return Err(ClusterError::Start(String::from(
                    "this node is a member of a cluster but has no cluster secret: set cluster.secret or FOREWARM_CLUSTER_SECRET",
                )));
            }
            self.update_own_record();
            return Ok(());
        }
        if join.is_empty() {
            let members = BTreeMap::from([(self.id, self.me.clone())]);
            match self.raft.initialize(members).await {
                Ok(())
                | Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(ClusterError::Raft(e.to_string())),
            }
            self.leader(deadline).await?;
            return Ok(());
        }
        let seed = self.join_through(join, deadline).await?;
        tracing::info!("joined the cluster through {seed}");
        Ok(())
    }

    /// Ask the members at `addrs`, in turn and again every 500 ms until `deadline`, to add
    /// this node to the membership (or update its record); the address that did it.
    async fn join_through(
        &self,
        addrs: &[String],
        deadline: Duration,
    ) -> Result<String, ClusterError> {
        let begun = Instant::now();
        let mut last = String::new();
        while begun.elapsed() < deadline {
            for addr in addrs {
                match self.post::<_, ()>(addr, "/raft/join", &self.me).await {
                    Ok(()) => return Ok(addr.clone()),
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(ClusterError::Unreachable(format!(
            "could not join through {addrs:?} within {deadline:?}: {last}"
        )))
    }

    /// When the membership records this node under another address or region (it came back
    /// elsewhere), ask the other members, in the background, to update the record: until
    /// then the leader cannot reach it.
    fn update_own_record(self: &Arc<Self>) {
        let others: Vec<String> = {
            let applied = self.applied();
            let membership = applied.membership.membership();
            let recorded = membership.get_node(&self.id);
            if recorded.is_none_or(|r| *r == self.me) {
                return;
            }
            membership
                .nodes()
                .filter(|(id, _)| **id != self.id)
                .map(|(_, n)| n.addr.clone())
                .collect()
        };
        let me = self.clone();
        tokio::spawn(async move {
            match me.join_through(&others, Duration::from_secs(60)).await {
                Ok(_) => tracing::info!("membership now records {}", me.me),
                Err(e) => tracing::warn!("updating this node's membership record: {e}"),
            }
        });
    }

    /// The current leader, waiting up to `wait` for one.
    async fn leader(&self, wait: Duration) -> Result<(NodeId, ClusterNode), ClusterError> {
        let mut metrics = self.raft.metrics();
        let found = tokio::time::timeout(wait, async {
            loop {
                {
                    let m = metrics.borrow_and_update();
                    if let Some(id) = m.current_leader
                        && let Some(node) = m.membership_config.membership().get_node(&id)
                    {
                        return Some((id, node.clone()));
                    }
                }
                if metrics.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match found {
            Ok(Some(leader)) => Ok(leader),
            _ => Err(ClusterError::NoLeader(wait)),
        }
    }

    /// POST `body` to `path` on `addr` with the cluster secret; the answer is JSON
    /// `Result<T, String>`.
    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &B,
    ) -> Result<T, ClusterError> {
        self.post_within(addr, path, body, LEADER_WAIT).await
    }

    /// [`Cluster::post`] with its own deadline.
    async fn post_within<B: Serialize, T: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, ClusterError> {
        let body = serde_json::to_vec(body).map_err(|e| ClusterError::Raft(e.to_string()))?;
        let (status, bytes) = self
            .net
            .post(addr, path, body, timeout)
            .await
            .map_err(|e| ClusterError::Unreachable(e.to_string()))?;
        let answer: Result<T, String> = serde_json::from_slice(&bytes).map_err(|e| {
            ClusterError::Unreachable(format!(
                "{addr}{path}: {status}: {e}: {}",
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        answer.map_err(ClusterError::Raft)
    }

    /// POST to `path` on the leader (for what only the leader may do).
    async fn on_leader<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClusterError> {
        let (_, leader) = self.leader(LEADER_WAIT).await?;
        self.post(&leader.addr, path, body).await
    }

    /// Wait until this node has applied `index` (read-your-writes after a forwarded write).
    async fn caught_up(&self, index: u64) -> Result<(), ClusterError> {
        self.raft
            .wait(Some(LEADER_WAIT))
            .applied_index_at_least(Some(index), "read your write")
            .await
            .map(|_| ())
            .map_err(|e| ClusterError::Raft(e.to_string()))
    }

    /// Commit `command` through the leader (forwarded when this node is not it) and return
    /// what applying it did, once this node has applied it too.
    pub async fn write(&self, command: Command) -> Result<Applied, ClusterError> {
        let begun = Instant::now();
        loop {
            match self.raft.client_write(command.clone()).await {
                Ok(r) => return Ok(r.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    let leader = match f.leader_node {
                        Some(node) => node,
                        None => {
                            let left = LEADER_WAIT.saturating_sub(begun.elapsed());
                            if left.is_zero() {
                                return Err(ClusterError::NoLeader(LEADER_WAIT));
                            }
                            let (id, node) = self.leader(left).await?;
                            if id == self.id {
                                continue;
                            }
                            node
                        }
                    };
                    match self
                        .post_within::<_, Written>(
                            &leader.addr,
                            "/raft/write",
                            &command,
                            FORWARD_TIMEOUT,
                        )
                        .await
                    {
                        Ok(written) => {
                            self.caught_up(written.index).await?;
                            return Ok(written.applied);
                        }
                        // Leadership moved (or the leader is unreachable) meanwhile: retry.
                        Err(ClusterError::Unreachable(_)) | Err(ClusterError::Raft(_))
                            if begun.elapsed() < LEADER_WAIT =>
                        {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(ClusterError::Raft(e.to_string())),
            }
        }
    }

    /// A linearizable read point: once this returns, the local applied state includes every
    /// write committed before the call (the leader confirms its leadership with a quorum; a
    /// follower asks the leader for that point and waits to apply it).
    pub async fn linearizable(&self) -> Result<(), ClusterError> {
        let begun = Instant::now();
        loop {
            let leader = match self.raft.ensure_linearizable().await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                    f,
                ))) => match f.leader_node {
                    Some(node) => node,
                    None => self.leader(LEADER_WAIT).await?.1,
                },
                Err(e) => return Err(ClusterError::Raft(e.to_string())),
            };
            match self
                .post_within::<_, Option<u64>>(
                    &leader.addr,
                    "/raft/read-index",
                    &(),
                    FORWARD_TIMEOUT,
                )
                .await
            {
                Ok(index) => {
                    if let Some(index) = index {
                        self.caught_up(index).await?;
                    }
                    return Ok(());
                }
                // The leader is still establishing itself, or leadership moved: retry.
                Err(ClusterError::Unreachable(_)) | Err(ClusterError::Raft(_))
                    if begun.elapsed() < LEADER_WAIT =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Add `node` as a voter (on the leader; forwarded otherwise).
    pub async fn add_member(&self, node: ClusterNode) -> Result<(), ClusterError> {
        let id = forewarm_raft::raft_id(&node.name);
        let known = self.members().into_iter().find(|(i, _)| *i == id);
        if let Some((_, recorded)) = known {
            if recorded == node {
                return Ok(());
            }
            // A member back on another address (or region): update its record.
            let update = ChangeMembers::SetNodes(BTreeMap::from([(id, node.clone())]));
            return match self.raft.change_membership(update, false).await {
                Ok(_) => {
                    tracing::info!("{node}: membership record updated");
                    Ok(())
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    self.on_leader("/raft/join", &node).await
                }
                Err(e) => Err(ClusterError::Raft(e.to_string())),
            };
        }
        match self.raft.add_learner(id, node.clone(), true).await {
            Ok(_) => {}
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                return self.on_leader("/raft/join", &node).await;
            }
            Err(e) => return Err(ClusterError::Raft(e.to_string())),
        }
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        tracing::info!("{node} is a voter");
        Ok(())
    }

    /// Remove the member named `name` (on the leader; forwarded otherwise).
    pub async fn remove_member(&self, name: &str) -> Result<bool, ClusterError> {
        let id = forewarm_raft::raft_id(name);
        if !self.members().iter().any(|(i, _)| *i == id) {
            return Ok(false);
        }
        match self
            .raft
            .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
            .await
        {
            Ok(_) => Ok(true),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                self.on_leader("/raft/remove", &name).await
            }
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }

    /// Members (id, node) as of the last applied membership.
    pub fn members(&self) -> Vec<(NodeId, ClusterNode)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.clone()))
            .collect()
    }

    /// `GET /v1/cluster`; `groups` names the process groups of a member reached over the
    /// node transport.
    pub fn view(&self, groups: impl Fn(&str) -> Vec<String>) -> ClusterView {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let remote = self.remote.read().unwrap_or_else(|e| e.into_inner());
        let mut members: Vec<MemberView> = membership
            .nodes()
            .map(|(id, n)| MemberView {
                id: *id,
                name: n.name.clone(),
                region: n.region.clone(),
                addr: n.addr.clone(),
                role: if m.current_leader == Some(*id) {
                    "leader"
                } else if voters.contains(id) {
                    "voter"
                } else {
                    "learner"
                },
                rtt_ms: (*id != self.id).then(|| self.rtt.get(*id)).flatten(),
                rtt_recent_ms: self.rtt.recent(*id),
                groups: groups(&n.name),
                queue_ms: if *id == self.id {
                    Some(self.queue_ms())
                } else {
                    remote.get(id).map(|v| v.inventory.queue_ms)
                },
            })
            .collect();
        members.sort_by_key(|v| (v.role == "learner", v.name.clone()));
        let leader_name = m
            .current_leader
            .and_then(|id| membership.get_node(&id).map(|n| n.name.clone()));
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        ClusterView {
            id: self.id,
            node: self.me.name.clone(),
            region: self.me.region.clone(),
            state: state.to_owned(),
            leader: m.current_leader,
            leader_name,
            term: m.current_term,
            applied_index: m.last_applied.map(|l| l.index),
            members,
        }
    }

    /// Let this node stand for election only while it hears from a majority of the voters
    /// (itself included) through the node transport: a member cut off from the others
    /// would otherwise raise its term election after election and, once back, make the
    /// leader step down for nothing (openraft 0.9 has no pre-vote). Checked every 100 ms;
    /// a member counts as heard when its inventory arrived, or it answered a ping, within
    /// [`QUORUM_STALE`].
    pub fn spawn_quorum_watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut electing = true;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(me) = weak.upgrade() else { return };
                let voters: BTreeSet<NodeId> = {
                    let metrics = me.raft.metrics();
                    let m = metrics.borrow();
                    m.membership_config.membership().voter_ids().collect()
                };
                let heard = {
                    let remote = me.remote.read().unwrap_or_else(|e| e.into_inner());
                    voters
                        .iter()
                        .filter(|id| {
                            **id == me.id
                                || me.rtt.heard(**id, QUORUM_STALE)
                                || remote
                                    .get(id)
                                    .is_some_and(|v| v.fetched.elapsed() < QUORUM_STALE)
                        })
                        .count()
                };
                let majority = heard * 2 > voters.len();
                if majority != electing {
                    electing = majority;
                    me.raft.runtime_config().elect(majority);
                    if majority {
                        tracing::info!(
                            "a majority of the voters answers again: may stand for election"
                        );
                    } else {
                        tracing::warn!(
                            "{heard} of {} voters answer: not standing for election until a majority does",
                            voters.len()
                        );
                    }
                }
            }
        })
    }

    /// The cluster secret (empty on a lone node without one).
    pub(crate) fn secret(&self) -> &Arc<str> {
        &self.net.secret
    }

    /// Whether `headers` carry the cluster secret (internal endpoints outside this module).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        !self.net.secret.is_empty() && token == Some(&*self.net.secret)
    }

    /// Stop the Raft node and wait (up to 10 s) until its tasks have closed the store, so
    /// the node can be started again in the same process.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
        let handles = || {
            let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            store.as_ref().map_or(0, |s| s.handles())
        };
        let begun = Instant::now();
        while handles() > 1 && begun.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.store.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The tenant with id `id`, read at a linearizable point.
    pub async fn tenant(&self, id: &str) -> Result<Option<forewarm_raft::Tenant>, ClusterError> {
        self.linearizable().await?;
        Ok(self.applied().state.tenants.get(id).cloned())
    }
}

// ---------------------------------------------------------------- network (client side)

/// Raft RPCs to other nodes over their HTTP APIs.
#[derive(Debug, Clone)]
pub struct HttpNetwork {
    http: HttpClient,
    secret: Arc<str>,
}

/// Why a call to a member got no answer.
#[derive(Debug, thiserror::Error)]
enum CallFailed {
    /// No connection, or it broke.
    #[error("{0}")]
    Transport(String),
    /// No answer within the deadline.
    #[error("{0}")]
    TimedOut(String),
}

impl HttpNetwork {
    /// POST `body` to `path` on the member at `addr` with the cluster secret, within
    /// `timeout`: its status and body.
    async fn post(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), CallFailed> {
        let call = self
            .http
            .call(Method::POST, addr, path, Some(&*self.secret), body.into());
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok((status, _, bytes))) => Ok((status, bytes)),
            Ok(Err(e)) => Err(CallFailed::Transport(format!("{addr}{path}: {e}"))),
            Err(_) => Err(CallFailed::TimedOut(format!(
                "{addr}{path}: no answer within {timeout:?}"
            ))),
        }
    }
}

/// One peer.
#[derive(Debug)]
pub struct HttpPeer {
    net: HttpNetwork,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpPeer;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> Self::Network {
        HttpPeer {
            net: self.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl HttpPeer {
    async fn rpc<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, ClusterNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let (status, bytes) = match self
            .net
            .post(&self.addr, path, body, option.hard_ttl())
            .await
        {
            Ok(answer) => answer,
            Err(CallFailed::Transport(e)) => {
                return Err(RPCError::Unreachable(Unreachable::new(
                    &std::io::Error::other(e),
                )));
            }
            Err(CallFailed::TimedOut(e)) => {
                let io = std::io::Error::new(std::io::ErrorKind::TimedOut, e);
                return Err(RPCError::Network(NetworkError::new(&io)));
            }
        };
        if status != StatusCode::OK {
            let io = std::io::Error::other(format!(
                "{}{path}: {status}: {}",
                self.addr,
                String::from_utf8_lossy(&bytes)
            ));
            return Err(RPCError::Network(NetworkError::new(&io)));
        }
        let answer: Result<Resp, E> =
            serde_json::from_slice(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, ClusterNode, RaftError<NodeId, E>>>;

impl RaftNetwork<TypeConfig> for HttpPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.rpc("/raft/append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.rpc("/raft/snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.rpc("/raft/vote", &rpc, &option).await
    }
}

// ---------------------------------------------------------------- internal endpoints

/// The internal endpoints: Raft RPCs, forwarded writes and read points, joining and leaving.
/// Each takes the cluster secret as bearer token and answers JSON.
pub fn routes(cluster: Arc<Cluster>) -> Routes {
    Routes::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/write", post(write))
        .route("/raft/read-index", post(read_index))
        .route("/raft/join", post(join))
        .route("/raft/remove", post(remove))
        .with_state(cluster)
}

/// A refused internal request.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({"error": "cluster", "message": self.1}));
        (self.0, body).into_response()
    }
}

/// Check the secret (an empty one, a lone node's, admits nobody).
pub(crate) fn authorized(cluster: &Cluster, headers: &HeaderMap) -> Result<(), Refused> {
    if cluster.admits(headers) {
        Ok(())
    } else {
        Err(Refused(
            StatusCode::UNAUTHORIZED,
            String::from(SECRET_REFUSED),
        ))
    }
}

/// Check the secret and parse the body.
fn internal<T: DeserializeOwned>(
    cluster: &Cluster,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Refused> {
    authorized(cluster, headers)?;
    serde_json::from_slice(body)
        .map_err(|e| Refused(StatusCode::BAD_REQUEST, format!("request body: {e}")))
}

fn json_answer<T: Serialize>(value: &T) -> Response {
    Json(value).into_response()
}

async fn append(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    match internal::<AppendEntriesRequest<TypeConfig>>(&c, &headers, &body) {
        Ok(req) => json_answer(&c.raft.append_entries(req).await),
        Err(r) => r.into_response(),
    }
}

async fn vote(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    match internal::<VoteRequest<NodeId>>(&c, &headers, &body) {
        Ok(req) => json_answer(&c.raft.vote(req).await),
        Err(r) => r.into_response(),
    }
}

async fn snapshot(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    match internal::<InstallSnapshotRequest<TypeConfig>>(&c, &headers, &body) {
        Ok(req) => json_answer(&c.raft.install_snapshot(req).await),
        Err(r) => r.into_response(),
    }
}

async fn write(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    let command = match internal::<Command>(&c, &headers, &body) {
        Ok(command) => command,
        Err(r) => return r.into_response(),
    };
    // Only the leader commits a forwarded write: no second hop.
    let answer: Result<Written, String> = match c.raft.client_write(command).await {
        Ok(r) => Ok(Written {
            applied: r.data,
            index: r.log_id.index,
        }),
        Err(e) => Err(e.to_string()),
    };
    json_answer(&answer)
}

async fn read_index(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = internal::<()>(&c, &headers, &body) {
        return r.into_response();
    }
    let answer: Result<Option<u64>, String> = c
        .raft
        .ensure_linearizable()
        .await
        .map(|log_id| log_id.map(|l| l.index))
        .map_err(|e| e.to_string());
    json_answer(&answer)
}

async fn join(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    let node = match internal::<ClusterNode>(&c, &headers, &body) {
        Ok(node) => node,
        Err(r) => return r.into_response(),
    };
    let answer: Result<(), String> = c.add_member(node).await.map_err(|e| e.to_string());
    json_answer(&answer)
}

async fn remove(State(c): State<Arc<Cluster>>, headers: HeaderMap, body: Bytes) -> Response {
    let name = match internal::<String>(&c, &headers, &body) {
        Ok(name) => name,
        Err(r) => return r.into_response(),
    };
    let answer: Result<bool, String> = c.remove_member(&name).await.map_err(|e| e.to_string());
    json_answer(&answer)
}
