//! How a node takes part in the cluster: the `[cluster]` table of a node's configuration.

use serde::Deserialize;

use crate::tls::TlsFiles;

/// A secret from configuration (a token, the cluster secret). Its `Debug` shows none of it, so
/// a configuration or a node printed with `{:?}` (a log line, a panic) does not leak it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself (to send or hash it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// How the node takes part in the replicated state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `host:port` other nodes reach this node at (its cluster listener when there is one);
    /// default: the address the node listens on.
    pub advertise: Option<String>,
    /// Where the internal endpoints (`/raft/*`, the transport) listen, apart from the client
    /// API; `None`: on the API's listener (a lone node, or a cluster without TLS).
    pub listen: Option<std::net::SocketAddr>,
    /// Mutual TLS on the cluster listener and on every call to another member (needs
    /// `listen`): the cluster CA, this node's certificate and key.
    pub tls: Option<TlsFiles>,
    /// Shared secret of the internal endpoints (`/raft/*`); `None` means
    /// FOREWARM_CLUSTER_SECRET, and a lone node without one admits no other node.
    pub secret: Option<Secret>,
    /// Local address this node's calls to other members leave from; `None`: the system's
    /// choice. `forewarm up --regions` sets one loopback address per node so that the delay
    /// proxies know which region a call comes from.
    pub source_addr: Option<std::net::IpAddr>,
    /// Members to join through (any member; it forwards to the leader). Empty: a node that
    /// never was a member starts a cluster of its own.
    pub join: Vec<String>,
    /// Leader heartbeat, ms.
    pub heartbeat_ms: u64,
    /// Election timeout range, ms (a follower that hears no leader for this long stands).
    pub election_min_ms: u64,
    /// Upper end of the election timeout range, ms.
    pub election_max_ms: u64,
    /// A snapshot is taken after this many log entries.
    pub snapshot_every: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            advertise: None,
            listen: None,
            tls: None,
            secret: None,
            source_addr: None,
            join: Vec::new(),
            heartbeat_ms: 50,
            election_min_ms: 200,
            election_max_ms: 400,
            snapshot_every: 1000,
        }
    }
}

impl ClusterConfig {
    /// Check ranges that the types cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.heartbeat_ms >= 10
            && self.election_min_ms > 2 * self.heartbeat_ms
            && self.election_max_ms > self.election_min_ms)
        {
            return Err(format!(
                "cluster: need heartbeat_ms >= 10, election_min_ms > 2 x heartbeat_ms and election_max_ms > election_min_ms (got {}, {}, {})",
                self.heartbeat_ms, self.election_min_ms, self.election_max_ms
            ));
        }
        if self.tls.is_some() && self.listen.is_none() {
            return Err(String::from(
                "cluster.tls needs cluster.listen: the internal endpoints get a listener of their own, the client API keeps its own",
            ));
        }
        if self.snapshot_every == 0 {
            return Err(String::from("cluster.snapshot_every must be > 0"));
        }
        if !self.join.is_empty() && self.secret.as_deref().unwrap_or("").is_empty() {
            return Err(String::from(
                "cluster.join needs cluster.secret (or FOREWARM_CLUSTER_SECRET): members only admit nodes that know it",
            ));
        }
        Ok(())
    }
}
