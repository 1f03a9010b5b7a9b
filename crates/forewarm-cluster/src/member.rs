//! This node as a member: the Raft node over its store, starting a cluster or joining one,
//! adding and removing members, the election guard, the applied state the request path reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use forewarm_http::HttpClient;
use forewarm_raft::{AppliedState, ClusterNode, NodeId, Raft, SharedState};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, SnapshotPolicy};

use crate::config::ClusterConfig;
use crate::error::ClusterError;
use crate::forward::LEADER_WAIT;
use crate::inventory::{Inventory, RemoteView};
use crate::network::HttpNetwork;
use crate::rtt::{RttTable, ewma};
use crate::tls::ClusterTls;

/// This node in the cluster.
pub struct Cluster {
    /// The Raft node ([`Cluster::raft`]); replaced when it is started again after it stopped
    /// on a storage error ([`Cluster::spawn_store_watch`]).
    raft: RwLock<Raft>,
    /// How it was configured and where its store is: what starting it again needs.
    raft_config: Arc<openraft::Config>,
    store_path: PathBuf,
    /// Its id.
    pub id: NodeId,
    /// Its membership record.
    pub me: ClusterNode,
    state: SharedState,
    /// A handle on the store, to know when Raft has let go of it; dropped at shutdown so the
    /// file is closed even while handlers still hold the cluster.
    store: std::sync::Mutex<Option<forewarm_raft::LogStore>>,
    /// Authenticated calls to the other members (Raft's network too).
    pub(crate) net: HttpNetwork,
    /// Mutual TLS with the other members, when configured.
    pub tls: Option<ClusterTls>,
    /// Round trips to the other members.
    pub rtt: RttTable,
    /// This node's warm inventory (written by the PoolSupervisor).
    pub local: RwLock<Inventory>,
    /// The other members' inventories.
    pub remote: RwLock<HashMap<NodeId, RemoteView>>,
    /// Moving average of the wait before a warm request runs here, ms (bits of an f64).
    queue_ms: std::sync::atomic::AtomicU64,
    /// The snapshot being received, as its chunks arrived, so it is checked whole before
    /// its last chunk reaches Raft.
    pub(crate) receiving: std::sync::Mutex<crate::rpc_check::Receiving>,
    /// (voters heard within [`QUORUM_STALE`], voters), itself included, as the quorum watch
    /// last counted them.
    heard: std::sync::Mutex<(usize, usize)>,
    /// Held while Raft is stopped or started again; `true` once the node is shutting down
    /// (it is not started again then).
    lifecycle: tokio::sync::Mutex<bool>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.id)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// How often a node whose replicated state stopped on a storage error checks whether the
/// store's disk takes a write again.
const STORE_PROBE: Duration = Duration::from_secs(1);

/// Whether the disk at `probe` (a file that is removed again) takes a synced write of 256 KiB:
/// enough for a Raft entry and its commit.
fn takes_a_write(probe: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let written = std::fs::File::create(probe).and_then(|mut f| {
        f.write_all(&[0u8; 256 * 1024])?;
        f.sync_all()
    });
    let removed = std::fs::remove_file(probe);
    written.and(removed)
}

/// A member whose last inventory arrived longer ago than this does not count towards the
/// majority a node needs before it stands for election (three push periods).
const QUORUM_STALE: Duration = Duration::from_millis(750);

impl Cluster {
    /// Open the Raft store at `store` and start this node's Raft member `me` (it serves
    /// nothing yet: mount [`crate::routes`], then call [`Cluster::bootstrap_or_join`]).
    pub async fn start(
        config: &ClusterConfig,
        store: &Path,
        me: ClusterNode,
    ) -> Result<Arc<Self>, ClusterError> {
        let (log, sm) =
            forewarm_raft::store::open(store).map_err(|e| ClusterError::Start(e.to_string()))?;
        let state = sm.shared();
        let c = config;
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
        let tls = match &c.tls {
            Some(files) => Some(ClusterTls::load(files).map_err(ClusterError::Start)?),
            None => None,
        };
        let http = match &tls {
            Some(tls) => HttpClient::tls(
                c.source_addr,
                (*tls.client).clone(),
                crate::tls::CLUSTER_NAME,
                &me.name,
            )
            .map_err(|e| ClusterError::Start(e.to_string()))?,
            None => HttpClient::from_source(c.source_addr),
        };
        let net = HttpNetwork::new(http, Arc::from(c.secret.as_deref().unwrap_or("")));
        let id = forewarm_raft::raft_id(&me.name);
        let store_path = store.to_path_buf();
        let store = log.clone();
        let raft_config = Arc::new(raft_config);
        let raft = Raft::new(id, raft_config.clone(), net.clone(), log, sm)
            .await
            .map_err(|e| ClusterError::Start(format!("raft: {e}")))?;
        Ok(Arc::new(Self {
            raft: RwLock::new(raft),
            raft_config,
            store_path,
            id,
            me,
            state,
            store: std::sync::Mutex::new(Some(store)),
            net,
            tls,
            rtt: RttTable::default(),
            local: RwLock::new(Inventory::default()),
            remote: RwLock::new(HashMap::new()),
            queue_ms: std::sync::atomic::AtomicU64::new(0),
            receiving: Default::default(),
            heard: std::sync::Mutex::new((1, 1)),
            lifecycle: tokio::sync::Mutex::new(false),
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

    /// The applied state (what the request path reads).
    pub fn state(&self) -> &SharedState {
        &self.state
    }

    pub(crate) fn applied(&self) -> std::sync::RwLockReadGuard<'_, AppliedState> {
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
            .raft()
            .is_initialized()
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        if initialized {
            // A member of a larger cluster cannot talk to the others without the secret.
            let members = self.applied().membership.membership().nodes().count();
            if self.secret().is_empty() && members > 1 {
                return Err(ClusterError::Start(String::from(
                    "this node is a member of a cluster but has no cluster secret: set cluster.secret or FOREWARM_CLUSTER_SECRET",
                )));
            }
            self.update_own_record();
            return Ok(());
        }
        if join.is_empty() {
            let members = BTreeMap::from([(self.id, self.me.clone())]);
            match self.raft().initialize(members).await {
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
                match self
                    .post::<_, ()>(addr, "/raft/join", &self.me, LEADER_WAIT)
                    .await
                {
                    Ok(()) => return Ok(addr.clone()),
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(ClusterError::NotJoined {
            seeds: addrs.to_vec(),
            deadline,
            last,
        })
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

    /// Add `node` as a voter (on the leader; forwarded otherwise).
    pub async fn add_member(&self, node: ClusterNode) -> Result<(), ClusterError> {
        let id = forewarm_raft::raft_id(&node.name);
        let known = self.members().into_iter().find(|(i, _)| *i == id);
        if let Some((_, recorded)) = known {
            if recorded == node {
                // A learner still: an earlier join added it, but its promotion failed (another
                // membership change was in progress, say) and the joiner asked again.
                return if self.is_voter(id) {
                    Ok(())
                } else {
                    self.promote(&node).await
                };
            }
            // A member back on another address (or region): update its record.
            let update = ChangeMembers::SetNodes(BTreeMap::from([(id, node.clone())]));
            return match self.raft().change_membership(update, false).await {
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
        match self.raft().add_learner(id, node.clone(), true).await {
            Ok(_) => {}
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                return self.on_leader("/raft/join", &node).await;
            }
            Err(e) => return Err(ClusterError::Raft(e.to_string())),
        }
        self.promote(&node).await
    }

    /// Whether member `id` is a voter in the membership this node applied.
    fn is_voter(&self, id: NodeId) -> bool {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        m.membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id)
    }

    /// Make learner `node` a voter (on the leader; forwarded otherwise).
    async fn promote(&self, node: &ClusterNode) -> Result<(), ClusterError> {
        let id = forewarm_raft::raft_id(&node.name);
        match self
            .raft()
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
        {
            Ok(_) => {
                tracing::info!("{node} is a voter");
                Ok(())
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                self.on_leader("/raft/join", node).await
            }
            Err(e) => Err(ClusterError::Raft(e.to_string())),
        }
    }

    /// Remove the member named `name` (on the leader; forwarded otherwise).
    pub async fn remove_member(&self, name: &str) -> Result<bool, ClusterError> {
        let id = forewarm_raft::raft_id(name);
        if !self.members().iter().any(|(i, _)| *i == id) {
            return Ok(false);
        }
        match self
            .raft()
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

    /// Why the replicated state stopped (a fatal error of the Raft core, such as a log write
    /// that failed), if it did: this node then takes no writes until its store takes a write
    /// again ([`Cluster::spawn_store_watch`]) or the process is restarted.
    pub fn fault(&self) -> Option<String> {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        m.running_state
            .as_ref()
            .err()
            .map(|fatal| format!("replicated state stopped: {fatal}"))
    }

    /// Why this member cannot take part in the replicated state now, if it cannot: it hears
    /// fewer than a majority of the voters (itself included) over the node transport. Such a
    /// member may still name a leader — a leader cut off from its followers keeps its
    /// leadership, a follower cut off keeps its leader, since neither stands for election
    /// ([`Cluster::spawn_quorum_watch`]) — but no write through it can commit.
    pub fn quorum_fault(&self) -> Option<String> {
        let (heard, voters) = *self.heard.lock().unwrap_or_else(|e| e.into_inner());
        (voters > 0 && heard * 2 <= voters)
            .then(|| format!("replicated state: hears {heard} of {voters} voters, not a majority"))
    }

    /// The storage error the Raft core stopped on, if it did (not a stop asked for).
    fn storage_fault(&self) -> Option<String> {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        match &m.running_state {
            Err(fatal @ openraft::error::Fatal::StorageError(_)) => Some(fatal.to_string()),
            _ => None,
        }
    }

    /// Whether this member knows a leader now (itself included).
    pub fn leader_known(&self) -> bool {
        self.raft().metrics().borrow().current_leader.is_some()
    }

    /// Whether node `name` is in the membership as this node last applied it.
    pub fn is_member(&self, name: &str) -> bool {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        m.membership_config
            .membership()
            .nodes()
            .any(|(_, n)| n.name == name)
    }

    /// Members (id, node) as of the last applied membership.
    pub fn members(&self) -> Vec<(NodeId, ClusterNode)> {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        m.membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.clone()))
            .collect()
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
                    let metrics = me.raft().metrics();
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
                *me.heard.lock().unwrap_or_else(|e| e.into_inner()) = (heard, voters.len());
                let majority = heard * 2 > voters.len();
                // Every tick: a Raft node started again after a storage error begins electing.
                me.raft().runtime_config().elect(majority);
                if majority != electing {
                    electing = majority;
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
        self.net.secret()
    }

    /// Whether `headers` carry the cluster secret (internal endpoints outside this module).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let secret = self.secret();
        !secret.is_empty() && token.is_some_and(|t| forewarm_raft::same_secret(t, secret))
    }

    /// The Raft node now.
    pub fn raft(&self) -> Raft {
        self.raft.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stop the Raft node and wait (up to 10 s) until its tasks have closed the store, so
    /// the node can be started again in the same process.
    pub async fn shutdown(&self) {
        *self.lifecycle.lock().await = true;
        self.stop_core().await;
    }

    /// Stop the Raft core (one stopped already only has its tasks waited for), wait (up to
    /// 10 s) until they have let go of the store, and drop this node's handle on it: whether
    /// the store was closed then.
    async fn stop_core(&self) -> bool {
        if let Err(e) = self.raft().shutdown().await {
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
        let closed = handles() <= 1;
        self.store.lock().unwrap_or_else(|e| e.into_inner()).take();
        closed
    }

    /// While the replicated state is stopped on a storage error (a disk that filled, an I/O
    /// error: openraft stops its core on any), check every [`STORE_PROBE`] whether the
    /// store's disk takes a write again — a probe file beside the store, written, synced and
    /// removed — and when it does, start Raft again on the same store, as a restart of the
    /// process would: the log and the applied state resume from what was durably written
    /// (the write that failed was never acknowledged) and the member rejoins its cluster's
    /// elections. `/readyz` says not ready until then ([`Cluster::fault`]).
    pub fn spawn_store_watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(STORE_PROBE).await;
                let Some(me) = weak.upgrade() else { return };
                let Some(fault) = me.storage_fault() else {
                    continue;
                };
                let probe = me.store_path.with_extension("probe");
                let writable = tokio::task::spawn_blocking(move || takes_a_write(&probe))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                if let Err(e) = writable {
                    tracing::debug!("{fault}; its disk still refuses a write: {e}");
                    continue;
                }
                match me.restart().await {
                    Ok(()) => tracing::warn!(
                        "replicated state started again after a storage error ({fault})"
                    ),
                    Err(e) => tracing::warn!("replicated state could not start again: {e}"),
                }
            }
        })
    }

    /// Start Raft again on its store, after the one running stopped.
    async fn restart(&self) -> Result<(), ClusterError> {
        let start = |e: String| ClusterError::Start(format!("raft restart: {e}"));
        let stopped = self.lifecycle.lock().await;
        if *stopped || self.storage_fault().is_none() {
            return Ok(());
        }
        if !self.stop_core().await {
            return Err(start(String::from(
                "the stopped node still holds its store",
            )));
        }
        let (log, sm) = forewarm_raft::store::reopen(&self.store_path, &self.state)
            .map_err(|e| start(e.to_string()))?;
        let store = log.clone();
        let raft = Raft::new(self.id, self.raft_config.clone(), self.net.clone(), log, sm)
            .await
            .map_err(|e| start(e.to_string()))?;
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
        *self.raft.write().unwrap_or_else(|e| e.into_inner()) = raft;
        Ok(())
    }

    /// The tenant with id `id`, read at a linearizable point.
    pub async fn tenant(&self, id: &str) -> Result<Option<forewarm_raft::Tenant>, ClusterError> {
        self.linearizable().await?;
        Ok(self.applied().state.tenants.get(id).cloned())
    }
}
