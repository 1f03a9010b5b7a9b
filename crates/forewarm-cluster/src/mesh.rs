//! The node transport: ractor_cluster sessions between the members.
//!
//! Every node runs a `NodeServer` (cookie: the cluster secret) and keeps one session with every
//! other member. A session rides on the member's HTTP API port: the dialing node asks
//! `GET /raft/mesh` with the cluster secret and `Upgrade: forewarm-mesh`, and after `101` the
//! TCP connection carries ractor_cluster's protocol (its cookie handshake included). One port
//! per node then serves the public API, Raft and the actors, so the delay proxies that emulate
//! distance (`forewarm up --regions`, the tests, compose) delay the actors' traffic too.
//!
//! On top of the sessions, each node runs two *links*, the remote faces of its PoolSupervisor
//! and Router (their own messages carry reply ports and shared handles, so they cannot cross
//! the wire):
//!
//! ```text
//!   node us-east-1                                   node eu-west-1
//!   PoolLink  ∈ pool/us-east, pool@us-east-1    ◄──── Inventory (every 250 ms), Ping
//!   RouterLink ∈ router/us-east, router@us-east-1 ◄── Invoke (a forwarded request)
//! ```
//!
//! Process groups live in the scope [`SCOPE`]: `pool/<region>` and `router/<region>` hold the
//! links of a region's nodes, `pool@<node>` and `router@<node>` one node's. A link reached over
//! a session is a child of that session's actor, so a node finds *its* way to a member as the
//! children of its session with that member that are in the member's group (several nodes in
//! one process — the tests — share one process-group registry, where the other nodes' local
//! links and sessions are visible too).
//!
//! Every [`TICK`] a node pushes its warm inventory to each member's PoolLink and pings it; the
//! ping's round trip feeds the RTT average, and a member whose pings fail [`DEAD_AFTER`] times
//! in a row has its session dropped (ractor_cluster has no pong deadline: a paused or cut-off
//! peer would look alive for minutes) and dialed again. The node whose name sorts first dials;
//! ractor_cluster does not reconnect by itself. A failed dial is repeated after
//! [`RETRY_FAILED_DIAL`], so a restarted member rejoins the mesh within about a tick.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, pg};
use ractor_cluster::{
    BoxRead, BoxWrite, ClusterBidiStream, NodeServer, NodeServerMessage, RactorClusterMessage,
    node::NodeServerSessionInformation,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::inventory::{Inventory, RemoteView};
use crate::server::{Callers, Refused, authorized};
use crate::tls::PeerCert;
use crate::{Cluster, ClusterError};

/// How long a ping (or a dial) of another member may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a node keeps its transport once started: the Router forwards through it, the API
/// shows what it reached, `/raft/mesh` hands it upgraded connections.
pub type MeshSlot = Arc<std::sync::OnceLock<Arc<Mesh>>>;

/// The process-group scope of the links.
pub const SCOPE: &str = "forewarm";
/// How often inventories are pushed and members pinged.
pub const TICK: Duration = Duration::from_millis(250);
/// Failed pings in a row after which a session is dropped and dialed again.
pub const DEAD_AFTER: u32 = 3;
/// A dial that was upgraded but has not become a session by then may be repeated (the cookie
/// handshake takes a few round trips).
const REDIAL_AFTER: Duration = Duration::from_secs(3);
/// A dial that failed (member down, refused, timed out) is repeated this soon: a restarted
/// member is back in the mesh, and counts for the quorum watch, within about a tick.
const RETRY_FAILED_DIAL: Duration = Duration::from_millis(250);
/// The `Upgrade` protocol name of a session over the API port.
pub const UPGRADE: &str = "forewarm-mesh";

/// Group of the PoolLinks of `region`.
pub fn pool_region(region: &str) -> String {
    format!("pool/{region}")
}

/// Group of the PoolLink of node `name`.
pub fn pool_node(name: &str) -> String {
    format!("pool@{name}")
}

/// Group of the RouterLinks of `region`.
pub fn router_region(region: &str) -> String {
    format!("router/{region}")
}

/// Group of the RouterLink of node `name`.
pub fn router_node(name: &str) -> String {
    format!("router@{name}")
}

/// What a node's PoolLink is told by the other members.
#[derive(Debug, RactorClusterMessage)]
pub enum PoolLinkMsg {
    /// A member's warm inventory: its node name and the inventory as JSON.
    Inventory(String, Vec<u8>),
    /// A liveness and round-trip probe, answered at once with the same number.
    #[rpc]
    Ping(u64, RpcReplyPort<u64>),
}

/// The PoolSupervisor's remote face: takes the other members' inventories into the cluster
/// view the Router scores regions with.
#[derive(Debug)]
pub struct PoolLink;

impl Actor for PoolLink {
    type Msg = PoolLinkMsg;
    type State = Weak<Cluster>;
    type Arguments = Weak<Cluster>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        cluster: Weak<Cluster>,
    ) -> Result<Self::State, ActorProcessingErr> {
        if let Some(c) = cluster.upgrade() {
            let cell = myself.get_cell();
            for group in [pool_region(&c.me.region), pool_node(&c.me.name)] {
                pg::join_scoped(SCOPE.into(), group, vec![cell.clone()]);
            }
        }
        Ok(cluster)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        cluster: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolLinkMsg::Ping(n, reply) => {
                let _ = reply.send(n);
            }
            PoolLinkMsg::Inventory(name, json) => {
                let Some(c) = cluster.upgrade() else {
                    return Ok(());
                };
                let id = forewarm_raft::raft_id(&name);
                let Some((_, node)) = c.members().into_iter().find(|(m, _)| *m == id) else {
                    return Ok(());
                };
                let parsed = serde_json::from_slice::<Inventory>(&json)
                    .map_err(|e| e.to_string())
                    .and_then(|inventory| inventory.check().map(|()| inventory));
                match parsed {
                    Ok(inventory) => {
                        let view = RemoteView {
                            id,
                            node,
                            inventory,
                            fetched: Instant::now(),
                        };
                        c.remote
                            .write()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(id, view);
                    }
                    Err(e) => tracing::warn!("inventory from {name} not believed: {e}"),
                }
            }
        }
        Ok(())
    }
}

/// What a node's RouterLink (the node's actor that runs forwarded invocations) is told by
/// the other members. The transport carries bytes: what an invocation and its answer are is
/// the node's business.
#[derive(Debug, RactorClusterMessage)]
pub enum RouterLinkMsg {
    /// An invocation forwarded by another region (JSON); the answer is JSON too.
    #[rpc]
    Invoke(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// A TCP connection (after the HTTP upgrade) as a ractor_cluster stream.
struct Upgraded<S>(S);

impl<S> ClusterBidiStream for Upgraded<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (r, w) = tokio::io::split(self.0);
        (Box::new(r), Box::new(w))
    }
}

/// This node's end of the transport.
#[derive(Debug)]
pub struct Mesh {
    server: ActorRef<NodeServerMessage>,
    pool_link: ActorRef<PoolLinkMsg>,
    /// Actors that stop with the transport (the RouterLink).
    owned: std::sync::Mutex<Vec<ActorCell>>,
    /// Per member name: its process groups reached over the session (as of the last tick).
    reached: std::sync::RwLock<HashMap<String, Vec<String>>>,
    /// The dial / push / ping loop.
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Why a call over the transport got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// No session with the member (not dialed yet, or dropped): nothing was sent.
    #[error("no session with {0}")]
    NoSession(String),
    /// A session, but the member's link is not in its group yet: nothing was sent.
    #[error("no router link of {0} yet")]
    NoLink(String),
    /// Sent, and no answer within the budget: it may have run (and may still be running).
    #[error("{name}: no answer within {budget:?}")]
    TimedOut {
        /// The member.
        name: String,
        /// How long it was given.
        budget: Duration,
    },
    /// Sent, and the session ended before the answer: it may have run.
    #[error("{0}: session lost")]
    SessionLost(String),
}

impl MeshError {
    /// Whether the call certainly did not reach the member (so it did not run there).
    pub fn not_sent(&self) -> bool {
        matches!(self, MeshError::NoSession(_) | MeshError::NoLink(_))
    }
}

/// Why the transport could not start.
fn spawn_failed(what: &str) -> impl FnOnce(ractor::SpawnErr) -> ClusterError {
    let what = what.to_owned();
    move |e| ClusterError::Start(format!("node transport: {what}: {e}"))
}

impl Mesh {
    /// Start the NodeServer (cookie: `secret`) and this node's PoolLink.
    pub async fn start(cluster: &Arc<Cluster>, secret: &str) -> Result<Self, ClusterError> {
        // Its own listener is never advertised (sessions come in over the API port): bind
        // it to loopback on a port of the system's choice.
        let server = NodeServer::new(
            0,
            secret.to_owned(),
            cluster.me.name.clone(),
            cluster.me.addr.clone(),
            None,
            None,
        )
        .with_listen_addr(IpAddr::from([127, 0, 0, 1]));
        let (server, _) = Actor::spawn(None, server, ())
            .await
            .map_err(spawn_failed("node server"))?;
        let (pool_link, _) = Actor::spawn(None, PoolLink, Arc::downgrade(cluster))
            .await
            .map_err(spawn_failed("pool link"))?;
        Ok(Self {
            server,
            pool_link,
            owned: std::sync::Mutex::new(Vec::new()),
            reached: std::sync::RwLock::new(HashMap::new()),
            task: std::sync::Mutex::new(None),
        })
    }

    /// Stop `cell` with the transport (the RouterLink).
    pub fn own(&self, cell: ActorCell) {
        self.owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cell);
    }

    /// Hand an accepted, upgraded connection to the NodeServer.
    pub fn accept<S>(&self, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let _ = self
            .server
            .cast(NodeServerMessage::ConnectionOpenedExternal {
                stream: Box::new(Upgraded(stream)),
                is_server: true,
            });
    }

    /// The authenticated sessions, by peer node name.
    pub async fn sessions(&self) -> HashMap<String, NodeServerSessionInformation> {
        let called = self
            .server
            .call(NodeServerMessage::GetSessions, Some(Duration::from_secs(2)))
            .await;
        let Ok(ractor::rpc::CallResult::Success(sessions)) = called else {
            return HashMap::new();
        };
        sessions
            .into_values()
            .filter_map(|s| {
                // ractor_cluster names a node `<name>@<host>`.
                let full = &s.peer_name.as_ref()?.name;
                let name = full.split_once('@').map_or(full.as_str(), |(n, _)| n);
                Some((name.to_owned(), s))
            })
            .collect()
    }

    /// Member `name`'s process groups reached over its session (as of the last tick).
    pub fn groups(&self, name: &str) -> Vec<String> {
        let reached = self.reached.read().unwrap_or_else(|e| e.into_inner());
        reached.get(name).cloned().unwrap_or_default()
    }

    /// The members of `group` reached over `session` (the session's children in the group).
    pub fn reached(session: &NodeServerSessionInformation, group: &str) -> Vec<ActorCell> {
        let members = pg::get_scoped_members(&SCOPE.to_owned(), &group.to_owned());
        session
            .actor
            .get_cell()
            .get_children()
            .into_iter()
            .filter(|child| members.iter().any(|m| m.get_id() == child.get_id()))
            .collect()
    }

    /// Send `body` (a forwarded invocation) to member `name`'s RouterLink and wait at most
    /// `budget` for its answer.
    pub async fn invoke(
        &self,
        name: &str,
        body: Vec<u8>,
        budget: Duration,
    ) -> Result<Vec<u8>, MeshError> {
        let sessions = self.sessions().await;
        let session = sessions
            .get(name)
            .ok_or_else(|| MeshError::NoSession(name.to_owned()))?;
        let link = Self::reached(session, &router_node(name))
            .into_iter()
            .next()
            .ok_or_else(|| MeshError::NoLink(name.to_owned()))?;
        let link = ActorRef::<RouterLinkMsg>::from(link);
        match link
            .call(|r| RouterLinkMsg::Invoke(body, r), Some(budget))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(bytes)) => Ok(bytes),
            Ok(ractor::rpc::CallResult::Timeout) => Err(MeshError::TimedOut {
                name: name.to_owned(),
                budget,
            }),
            _ => Err(MeshError::SessionLost(name.to_owned())),
        }
    }

    /// Stop the links and the NodeServer (its sessions end with it).
    pub async fn stop(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
        let owned = std::mem::take(&mut *self.owned.lock().unwrap_or_else(|e| e.into_inner()));
        let wait = Some(Duration::from_secs(5));
        // Waited for: an owned actor (the node's RouterLink) holds the node's stores, which a
        // node started right after this one on the same data directory must be able to open.
        for cell in owned {
            let _ = cell.stop_and_wait(None, wait).await;
        }
        let _ = self.pool_link.stop_and_wait(None, wait).await;
        let _ = self.server.stop_and_wait(None, wait).await;
    }

    /// Until the node stops: every [`TICK`], dial the members this node is to dial and has
    /// no session with, push the inventory to every member and ping it.
    pub fn spawn_loop(
        self: &Arc<Self>,
        cluster: &Arc<Cluster>,
        secret: Arc<str>,
        source: Option<IpAddr>,
    ) {
        let dialer = Dialer {
            secret: secret.clone(),
            source,
            tls: cluster
                .tls
                .as_ref()
                .map(|t| (t.connector(), cluster.me.name.clone())),
        };
        let (mesh, cluster) = (Arc::downgrade(self), Arc::downgrade(cluster));
        let task = tokio::spawn(async move {
            // Per member: not before then (set by a dial, moved earlier when it failed).
            let next_dial: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
            // Pings unanswered in a row, and the members with a ping in flight.
            let missed = Arc::new(std::sync::Mutex::new(HashMap::<String, u32>::new()));
            let pinging = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
            let mut nonce = 0u64;
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (Some(mesh), Some(c)) = (mesh.upgrade(), cluster.upgrade()) else {
                    return;
                };
                let members = c.members();
                let live: std::collections::HashSet<_> =
                    members.iter().map(|(id, _)| *id).collect();
                c.remote
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|id, _| live.contains(id));
                let sessions = mesh.sessions().await;
                tracing::trace!(
                    "{}: sessions with {:?}",
                    c.me.name,
                    sessions.keys().collect::<Vec<_>>()
                );
                let reached = members
                    .iter()
                    .filter_map(|(_, node)| {
                        let session = sessions.get(&node.name)?;
                        let groups = [
                            pool_region(&node.region),
                            pool_node(&node.name),
                            router_region(&node.region),
                            router_node(&node.name),
                        ]
                        .into_iter()
                        .filter(|g| !Self::reached(session, g).is_empty())
                        .collect();
                        Some((node.name.clone(), groups))
                    })
                    .collect();
                *mesh.reached.write().unwrap_or_else(|e| e.into_inner()) = reached;
                for (_, node) in members.iter().filter(|(id, _)| *id != c.id) {
                    if c.me.name >= node.name || sessions.contains_key(&node.name) {
                        continue;
                    }
                    let now = Instant::now();
                    {
                        let mut next = next_dial.lock().unwrap_or_else(|e| e.into_inner());
                        if next.get(&node.name).is_some_and(|at| now < *at) {
                            continue;
                        }
                        next.insert(node.name.clone(), now + REDIAL_AFTER);
                    }
                    let (server, addr, dialer) =
                        (mesh.server.clone(), node.addr.clone(), dialer.clone());
                    let (name, next_dial) = (node.name.clone(), next_dial.clone());
                    tokio::spawn(async move {
                        if let Err(e) = dial(&server, &name, &addr, &dialer).await {
                            tracing::debug!("dialing {name} at {addr}: {e}");
                            next_dial
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(name, Instant::now() + RETRY_FAILED_DIAL);
                        }
                    });
                }
                let inventory = {
                    let local = c.local.read().unwrap_or_else(|e| e.into_inner());
                    serde_json::to_vec(&*local).unwrap_or_default()
                };
                nonce += 1;
                for (name, session) in sessions {
                    let Some(link) = Self::reached(&session, &pool_node(&name))
                        .into_iter()
                        .next()
                    else {
                        continue;
                    };
                    let link = ActorRef::<PoolLinkMsg>::from(link);
                    let _ = link.cast(PoolLinkMsg::Inventory(c.me.name.clone(), inventory.clone()));
                    // One ping in flight per member, in its own task: a member that does not
                    // answer never holds up the pushes to the others.
                    if !pinging
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name.clone())
                    {
                        continue;
                    }
                    let (c, pinging, missed) = (c.clone(), pinging.clone(), missed.clone());
                    tokio::spawn(async move {
                        let begun = Instant::now();
                        let answered = matches!(
                            link.call(|r| PoolLinkMsg::Ping(nonce, r), Some(PROBE_TIMEOUT))
                                .await,
                            Ok(ractor::rpc::CallResult::Success(n)) if n == nonce
                        );
                        let id = forewarm_raft::raft_id(&name);
                        if answered {
                            c.rtt.answered(id, begun.elapsed().as_secs_f64() * 1e3);
                        } else {
                            // At least this far: a member that moved further away than the
                            // deadline is not left at its old distance.
                            c.rtt.record(id, PROBE_TIMEOUT.as_secs_f64() * 1e3);
                        }
                        let mut missed = missed.lock().unwrap_or_else(|e| e.into_inner());
                        let misses = missed.entry(name.clone()).or_default();
                        *misses = if answered { 0 } else { *misses + 1 };
                        if *misses >= DEAD_AFTER {
                            tracing::warn!(
                                "{name}: {DEAD_AFTER} pings unanswered; dropping the session"
                            );
                            session.actor.stop(Some(String::from("pings unanswered")));
                            missed.remove(&name);
                        }
                        drop(missed);
                        pinging
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&name);
                    });
                }
            }
        });
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }
}

/// How this node dials the other members' transports.
#[derive(Clone)]
struct Dialer {
    secret: Arc<str>,
    source: Option<IpAddr>,
    /// With mutual TLS: the connector, and this node's name (what its certificate is for).
    tls: Option<(tokio_rustls::TlsConnector, String)>,
}

/// Open a session with member `name` at `addr`: upgrade an HTTP connection (with the cluster
/// secret; with TLS, over a connection on which both sides showed their certificates, the
/// member's valid for `name`) and hand it to the NodeServer, which runs the cookie handshake.
async fn dial(
    server: &ActorRef<NodeServerMessage>,
    name: &str,
    addr: &str,
    dialer: &Dialer,
) -> Result<(), String> {
    let target: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| String::from("resolves to no address"))?;
    let socket = if target.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    if let Some(ip) = dialer.source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("binding {ip}: {e}"))?;
    }
    let secret = &dialer.secret;
    let mut request = format!(
        "GET /raft/mesh HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: {UPGRADE}\r\nAuthorization: Bearer {secret}\r\n"
    );
    let connected = tokio::time::timeout(PROBE_TIMEOUT, async {
        let stream: TcpStream = socket.connect(target).await?;
        stream.set_nodelay(true)?;
        match &dialer.tls {
            None => {
                request.push_str("\r\n");
                let stream = switch_protocols(stream, &request).await?;
                Ok::<Box<dyn ClusterBidiStream>, std::io::Error>(Box::new(Upgraded(stream)))
            }
            Some((connector, me)) => {
                let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
                    .map_err(std::io::Error::other)?;
                let stream = connector.connect(server_name, stream).await?;
                request.push_str(&format!("{}: {me}\r\n\r\n", forewarm_http::FROM_HEADER));
                let stream = switch_protocols(stream, &request).await?;
                Ok::<Box<dyn ClusterBidiStream>, std::io::Error>(Box::new(Upgraded(stream)))
            }
        }
    })
    .await
    .map_err(|_| String::from("no upgrade within the probe timeout"))?;
    let stream = connected.map_err(|e| e.to_string())?;
    ractor_cluster::client_connect_external(server, stream)
        .await
        .map_err(|e| e.to_string())
}

/// Send the upgrade `request` on `stream` and read the answer's head, byte by byte: nothing
/// may be read past it (the session's first bytes follow it on the same connection). The
/// stream, once the member switched protocols.
async fn switch_protocols<S>(mut stream: S, request: &str) -> std::io::Result<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 4096 {
            return Err(std::io::Error::other("answer head over 4 KiB"));
        }
        head.push(stream.read_u8().await?);
    }
    let status = String::from_utf8_lossy(&head);
    if !status.starts_with("HTTP/1.1 101") {
        let line = status.lines().next().unwrap_or_default().to_owned();
        return Err(std::io::Error::other(format!("upgrade refused: {line}")));
    }
    Ok(stream)
}

/// Start the actors' transport to the other members: the NodeServer, the PoolLink, and the
/// loop that dials, pushes inventories and pings; kept in `slot`. Not on a node without a
/// cluster secret (it admits no other node).
pub async fn start(
    cluster: &Arc<Cluster>,
    slot: &MeshSlot,
    source: Option<IpAddr>,
) -> Result<Option<Arc<Mesh>>, ClusterError> {
    let secret = cluster.secret().clone();
    if secret.is_empty() {
        return Ok(None);
    }
    let mesh = Arc::new(Mesh::start(cluster, &secret).await?);
    mesh.spawn_loop(cluster, secret, source);
    let _ = slot.set(mesh.clone());
    Ok(Some(mesh))
}

/// `GET /raft/mesh`: where the other members' sessions come in.
pub fn routes(cluster: Arc<Cluster>, slot: MeshSlot) -> axum::Router {
    axum::Router::new()
        .route("/raft/mesh", get(upgrade))
        .with_state((cluster, slot))
}

/// `GET /raft/mesh` with `Upgrade: forewarm-mesh`: the connection becomes a ractor_cluster
/// session of this node's NodeServer.
async fn upgrade(
    axum::extract::State((cluster, slot)): axum::extract::State<(Arc<Cluster>, MeshSlot)>,
    request: axum::extract::Request,
) -> Result<Response, Refused> {
    let peer = request
        .extensions()
        .get::<PeerCert>()
        .cloned()
        .map(axum::Extension);
    authorized(&cluster, request.headers(), &peer, Callers::Members)?;
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok());
    if upgrade != Some(UPGRADE) {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            format!("expected Upgrade: {UPGRADE}"),
        ));
    }
    let Some(mesh) = slot.get().cloned() else {
        return Err(Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            String::from("the node transport is not running yet"),
        ));
    };
    let upgrading = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match upgrading.await {
            Ok(upgraded) => mesh.accept(hyper_util::rt::TokioIo::new(upgraded)),
            Err(e) => tracing::warn!("node transport upgrade: {e}"),
        }
    });
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [(header::CONNECTION, "Upgrade"), (header::UPGRADE, UPGRADE)],
    )
        .into_response())
}
