//! Node configuration: a TOML file (`forewarm node --config FILE`) or the flags of `forewarm up`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use forewarm_cluster::{ClusterConfig, Secret, TlsFiles};
use forewarm_policy::PolicySpec;
use forewarm_runtime::TenantSubnets;
use forewarm_store::Retention;
use serde::Deserialize;

/// Everything a node needs to start. Every field has a default but `data_dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// This node's id: the `forewarm.node` label of its containers.
    pub node_id: String,
    /// The region it serves.
    pub region: String,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// The client API over HTTPS: its certificate chain (PEM) ...
    pub tls_cert: Option<PathBuf>,
    /// ... and its private key (PEM). Both or neither.
    pub tls_key: Option<PathBuf>,
    /// Where the sample store and the Raft log and state live.
    pub data_dir: PathBuf,
    /// Pool policy: `forewarm` or any baseline name of the simulator.
    #[serde(deserialize_with = "policy_from_str")]
    pub policy: PolicySpec,
    /// Admin bearer token; `None` means "take FOREWARM_ADMIN_TOKEN or generate one".
    pub admin_token: Option<Secret>,
    /// Read-only operator token (`forewarm node` also takes FOREWARM_VIEWER_TOKEN): it reads
    /// `GET /metrics` and `GET /v1/cluster`, as the admin token does, and nothing else — what a
    /// Prometheus scraper or a dashboard is given instead of the admin token. `None`: only the
    /// admin token reads them.
    pub viewer_token: Option<Secret>,
    /// Policy time per real time: 60 makes one real second a policy minute (demos, replays).
    pub time_scale: f64,
    /// Node capacity.
    pub capacity: Capacity,
    /// Largest request body accepted, bytes (more → 413).
    pub max_body_bytes: usize,
    /// Invocations in flight on this node before new ones get 503.
    pub max_inflight: usize,
    /// How often the pool is compared with what the container engine lists (containers
    /// removed or exited behind the node's back leave the pool; leaked ones are removed), ms.
    pub reconcile_every_ms: u64,
    /// Image of code types that name none.
    pub runner_image: String,
    /// Images a tenant may name in `PUT /v1/codes/{code}` besides `runner_image` (an admin's
    /// allow-list; any other is refused 403 `image_not_allowed`). Every node of a cluster
    /// should list the same.
    pub images: Vec<String>,
    /// Raw samples are kept this many hours.
    pub raw_retention_hours: u64,
    /// Per-minute rollups are kept this many days.
    pub rollup_retention_days: u64,
    /// When the node itself runs in a Docker container: that container's name or id. The
    /// node joins it to each tenant network to reach the runners there.
    pub container: Option<String>,
    /// IPv4 range (`a.b.c.d/n`, n 8-24) tenant networks take their subnets from, a /24 each:
    /// how many tenants one Docker engine holds. Nodes sharing an engine should name the same.
    #[serde(deserialize_with = "subnets_from_str")]
    pub tenant_subnets: TenantSubnets,
    /// Membership of a cluster (a lone node is a cluster of one).
    pub cluster: ClusterConfig,
}

/// What one node may hold.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capacity {
    /// Sum of container memory limits, MiB.
    pub memory_mib: u64,
    /// Number of containers.
    pub containers: usize,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            memory_mib: 16 * 1024,
            containers: 64,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: String::from("node-1"),
            region: String::from("local"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir: PathBuf::from("forewarm-data"),
            policy: PolicySpec::FOREWARM,
            admin_token: None,
            viewer_token: None,
            tls_cert: None,
            tls_key: None,
            time_scale: 1.0,
            capacity: Capacity::default(),
            max_body_bytes: 64 * 1024,
            max_inflight: 4096,
            reconcile_every_ms: 10_000,
            runner_image: format!("forewarm/runner:{}", env!("CARGO_PKG_VERSION")),
            images: Vec::new(),
            raw_retention_hours: 24,
            rollup_retention_days: 30,
            container: None,
            tenant_subnets: TenantSubnets::DEFAULT,
            cluster: ClusterConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Whether a tenant may run `image`: the runner image or one of `images`.
    pub fn image_allowed(&self, image: &str) -> bool {
        image == self.runner_image || self.images.iter().any(|i| i == image)
    }
}

fn policy_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PolicySpec, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(serde::de::Error::custom)
}

fn subnets_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TenantSubnets, D::Error> {
    let range = String::deserialize(d)?;
    range.parse().map_err(serde::de::Error::custom)
}

/// A configuration that cannot be used, with where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// Why (named here rather than chained, so the message says it once).
        cause: std::io::Error,
    },
    /// The file is not valid TOML for a node config.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// A file's name (as shown in errors) and text.
pub(crate) fn read_file(path: &Path) -> Result<(String, String), ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        path: name.clone(),
        cause,
    })?;
    Ok((name, text))
}

/// The TOML text of the file `name` as a `T`; errors name the file, line and column.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    name: &str,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text)
        .map_err(|e| ConfigError::at(name, text, e.span().map_or(0, |s| s.start), e.message()))
}

impl ConfigError {
    /// A problem at byte `offset` of the file `path` whose text is `text`.
    pub fn at(path: &str, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        Self::Parse {
            path: path.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl NodeConfig {
    /// Read a TOML file; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (name, text) = read_file(path)?;
        let mut config: NodeConfig = parse_toml(&name, &text)?;
        config.secret_from_env();
        config
            .validate()
            .map_err(|m| ConfigError::Invalid(format!("{name}: {m}")))?;
        Ok(config)
    }

    /// How long the sample store keeps raw samples and per-minute rollups (a retention past
    /// what milliseconds in a `u64` count, 584 million years, is for ever).
    pub fn retention(&self) -> Retention {
        Retention {
            raw_ms: self.raw_retention_hours.saturating_mul(3_600_000),
            rollup_ms: self.rollup_retention_days.saturating_mul(86_400_000),
        }
    }

    /// Take the cluster secret from FOREWARM_CLUSTER_SECRET when the file names none.
    pub fn secret_from_env(&mut self) {
        if self.cluster.secret.is_none() {
            self.cluster.secret = std::env::var("FOREWARM_CLUSTER_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
                .map(Secret::from);
        }
    }

    /// Check ranges that the types cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if !crate::catalog::valid_id(&self.node_id) {
            return Err(format!(
                "node_id {:?} must be 1-32 of a-z, 0-9 and '-'",
                self.node_id
            ));
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0 && self.time_scale <= 3600.0) {
            return Err(format!(
                "time_scale {} must be in (0, 3600]",
                self.time_scale
            ));
        }
        if self.capacity.containers == 0 || self.capacity.memory_mib < 128 {
            return Err(String::from(
                "capacity must allow at least one container of 128 MiB",
            ));
        }
        if self.max_body_bytes == 0 || self.max_inflight == 0 {
            return Err(String::from("max_body_bytes and max_inflight must be > 0"));
        }
        if self.reconcile_every_ms < 100 {
            return Err(format!(
                "reconcile_every_ms {} must be >= 100 (every pass lists the node's containers)",
                self.reconcile_every_ms
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(String::from(
                "tls_cert and tls_key go together: the API serves HTTPS with both, HTTP with neither",
            ));
        }
        self.cluster.validate()?;
        match self.policy {
            PolicySpec::Oracle => Err(String::from(
                "policy oracle needs the future: it exists in the simulator only",
            )),
            PolicySpec::FaasCache { .. } => Err(format!(
                "policy {} is one cache over every application at once: it exists in the simulator only",
                self.policy
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "config_props.rs"]
mod props;

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn a_configuration_printed_with_debug_shows_none_of_its_secrets() {
        let config = NodeConfig {
            admin_token: Some("admin-0123456789".into()),
            viewer_token: Some("viewer-0123456789".into()),
            cluster: ClusterConfig {
                secret: Some("cluster-0123456789".into()),
                ..ClusterConfig::default()
            },
            ..NodeConfig::default()
        };
        let printed = format!("{config:?} {config:#?}");
        for secret in [
            "admin-0123456789",
            "viewer-0123456789",
            "cluster-0123456789",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
            assert!(
                !printed.contains(&secret[..8]),
                "part of {secret} in {printed}"
            );
        }
        assert!(printed.contains("Secret(..)"), "{printed}");
        assert_eq!(config.admin_token.as_deref(), Some("admin-0123456789"));
    }
}
