//! What the cluster agrees on, and how a command changes it. Pure: no I/O, no Raft.
//!
//! Every node applies the same commands in the same order, so `apply` must be deterministic:
//! it reads nothing but the state and the command (a code type's version, say, is the stored
//! version plus one, never a clock).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use forewarm_protocol::Workload;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A tenant: who may run what, where, and how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Its id (also its name).
    pub id: String,
    /// SHA-256 of its token, hex.
    pub token_sha256: String,
    /// Containers it may hold on a node, busy or idle.
    pub max_warm: u32,
    /// Sum of its containers' memory limits on a node, MiB.
    pub max_memory_mib: u64,
    /// Regions its requests may run in; empty = every region.
    #[serde(default)]
    pub allowed_regions: Vec<String>,
    /// How far (measured round trip, ms) a request may be sent from the region it arrived in
    /// to find a warm container; `None`: as far as any member (a tenant written before the
    /// field existed has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_extra_latency_ms: Option<u32>,
}

/// A field present in JSON, `null` included: `Some(None)` for `null`, `None` when absent
/// (with `#[serde(default)]`); what a change that may clear a setting needs.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl Tenant {
    /// Whether its requests may run in `region`.
    pub fn may_use(&self, region: &str) -> bool {
        self.allowed_regions.is_empty() || self.allowed_regions.iter().any(|r| r == region)
    }
}

/// A code type registered by a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Code {
    /// Owner.
    pub tenant: String,
    /// Its name, unique within the tenant.
    pub name: String,
    /// What one execution does.
    pub workload: Workload,
    /// Image speaking the runner protocol.
    pub image: String,
    /// Memory limit of one execution, MiB (its largest size class).
    pub max_memory_mib: u32,
    /// CPU limit, millicores.
    pub max_cpu_millis: u32,
    /// Longest an invocation may take end to end, ms (a code type written before the field
    /// existed has the default).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Most requests that may wait on one node for a container of it (one frees or starts)
    /// when its tenant's quota or the node's capacity is held by busy containers; 0: none
    /// waits (a code type written before the field existed has the default).
    #[serde(default = "default_max_queue")]
    pub max_queue: u32,
    /// Numeric fields of an invocation's JSON body its resource profile is learned on,
    /// besides the body's size (at most [`MAX_FEATURES`]; empty for a code type written before
    /// the field existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// Bumped on every update, so containers of an older version are retired.
    pub version: u64,
    /// The latest puts that stored it, (write id, the version each stored), oldest first, at
    /// most [`RECENT_WRITES`]. A put carries its own id here (version 0): a put re-sent
    /// after its answer was lost (a forward cut off by a partition) finds its id and is
    /// answered the version it stored, instead of storing it again over later puts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<(String, u64)>,
}

/// Most body fields one code type may declare as profile features.
pub const MAX_FEATURES: usize = 8;

/// How many puts of a code type are remembered to recognise one sent again.
pub const RECENT_WRITES: usize = 64;

/// A code type's invocation deadline unless it names one, ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// The longest invocation deadline a code type may name, ms (15 min).
pub const MAX_TIMEOUT_MS: u64 = 900_000;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// How many requests may wait for a container of a code type unless it names a bound.
pub const DEFAULT_MAX_QUEUE: u32 = 1_000;
/// The largest wait-queue bound a code type may name.
pub const MAX_MAX_QUEUE: u32 = 100_000;

fn default_max_queue() -> u32 {
    DEFAULT_MAX_QUEUE
}

impl Code {
    /// `tenant/name`: the key of its samples, models and pool.
    pub fn key(&self) -> CodeKey {
        code_key(&self.tenant, &self.name)
    }
}

pub use forewarm_protocol::{CodeKey, code_key};

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Every request authenticates with it: no formatter per byte.
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

/// Whether `given` is the secret `expected`, in time that does not depend on where they
/// differ: their SHA-256 digests are compared byte by byte without stopping early (a plain
/// `==` returns at the first difference, which a caller could time to guess a secret).
pub fn same_secret(given: &str, expected: &str) -> bool {
    same_bytes(
        &Sha256::digest(given.as_bytes()),
        &Sha256::digest(expected.as_bytes()),
    )
}

/// Whether `a` and `b` are equal, looking at every byte whatever the first difference (for
/// digests of secrets: their length is no secret).
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// What one region learned about a code type: small and bounded, so a region that sees the
/// code type for the first time can size and pre-warm it from the shared model (≤ 1 KiB as
/// JSON; `summary_is_small` checks it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// `tenant/code`.
    pub code: String,
    /// Region whose Predictor trained it.
    pub region: String,
    /// Samples it was trained on.
    pub samples: u64,
    /// Predicted memory need of one execution (p95 peak + headroom), MiB.
    pub need_mib: f64,
    /// p95 CPU time, ms.
    pub cpu_p95_ms: f64,
    /// p95 execution time, ms.
    pub duration_p95_ms: f64,
    /// Measured cold-start cost, ms (0 when none was seen).
    pub cold_start_ms: f64,
    /// Forecast invocations per minute for the next minutes (at most 10).
    pub demand_per_min: Vec<f64>,
    /// Forecast containers in use at each coming minute's peak, for a code type busy enough
    /// that its pool holds a floor (at most 10; empty otherwise). Policy minutes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers_per_min: Vec<f64>,
    /// When it was trained, ms since the Unix epoch (of the training node's clock).
    pub trained_at_ms: u64,
}

/// Most demand points a summary carries.
pub const MAX_DEMAND_POINTS: usize = 10;

/// A change to the cluster state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Create a tenant; refused when the id exists.
    CreateTenant(Tenant),
    /// Change an existing tenant: what is given replaces what is stored (a new token hash
    /// makes the old token worthless at once). Applying it twice is applying it once.
    UpdateTenant(TenantUpdate),
    /// Remove a tenant with its code types and their model summaries (its token is refused
    /// at once). Applying it twice is applying it once.
    DeleteTenant {
        /// The tenant.
        id: String,
    },
    /// Register or replace a code type of an existing tenant; its version becomes the stored
    /// one plus one.
    PutCode(Code),
    /// Replace model summaries (a Predictor's batch); summaries of unknown code types are
    /// dropped.
    PutModels {
        /// The batch.
        models: Vec<ModelSummary>,
    },
    /// Replace the cluster's image allow-list: images any tenant may name on any node,
    /// besides each node's own (`runner_image` and the `images` of its config).
    SetImages {
        /// The images, as `PUT /v1/codes` names them.
        images: Vec<String>,
    },
}

/// What [`Command::UpdateTenant`] changes of tenant `id`; `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantUpdate {
    /// The tenant.
    pub id: String,
    /// SHA-256 of its new token, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// New container quota per node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_warm: Option<u32>,
    /// New memory quota per node, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mib: Option<u64>,
    /// New regions its requests may run in (empty: every region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_regions: Option<Vec<String>>,
    /// New latency budget: `Some(None)` removes it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub max_extra_latency_ms: Option<Option<u32>>,
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Applied {
    /// Nothing to report (also the answer to Raft's own entries).
    Done,
    /// The tenant exists already; nothing changed.
    TenantExists {
        /// Its id.
        id: String,
    },
    /// No such tenant; nothing changed.
    UnknownTenant {
        /// The id asked for.
        id: String,
    },
    /// The code type is stored with this version.
    CodeVersion {
        /// The stored version.
        version: u64,
    },
    /// How many summaries of a batch were kept.
    Models {
        /// Kept.
        kept: usize,
    },
}

/// Tenants, code types and model summaries; the token index is derived, not stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterState {
    /// Tenants by id.
    pub tenants: BTreeMap<String, Tenant>,
    /// Code types by `tenant/code`.
    pub codes: BTreeMap<CodeKey, Arc<Code>>,
    /// Model summaries by `tenant/code`, then region.
    pub models: BTreeMap<String, BTreeMap<String, ModelSummary>>,
    /// The cluster's image allow-list ([`Command::SetImages`]; absent from snapshots taken
    /// before it existed).
    #[serde(default)]
    pub images: BTreeSet<String>,
    /// Tenant id by token hash.
    #[serde(skip)]
    by_token: HashMap<String, String>,
}

impl ClusterState {
    /// Rebuild the derived index after deserialising.
    pub fn reindex(&mut self) {
        self.by_token = self
            .tenants
            .values()
            .map(|t| (t.token_sha256.clone(), t.id.clone()))
            .collect();
    }

    /// The tenant whose token this is.
    pub fn tenant_by_token(&self, token: &str) -> Option<&Tenant> {
        self.tenant_by_token_sha256(&hash_token(token))
    }

    /// The tenant whose token hashes to `sha256` ([`hash_token`]).
    pub fn tenant_by_token_sha256(&self, sha256: &str) -> Option<&Tenant> {
        self.tenants.get(self.by_token.get(sha256)?)
    }

    /// Apply one command.
    pub fn apply(&mut self, command: Command) -> Applied {
        match command {
            Command::CreateTenant(tenant) => {
                if let Some(stored) = self.tenants.get(&tenant.id) {
                    // The same token is the same creation, sent again by a forward that lost
                    // its answer: it succeeded, and says so (tokens are drawn fresh per
                    // request, so another creation of the name never carries it).
                    if stored.token_sha256 == tenant.token_sha256 {
                        return Applied::Done;
                    }
                    return Applied::TenantExists { id: tenant.id };
                }
                self.by_token
                    .insert(tenant.token_sha256.clone(), tenant.id.clone());
                self.tenants.insert(tenant.id.clone(), tenant);
                Applied::Done
            }
            Command::UpdateTenant(update) => {
                let Some(tenant) = self.tenants.get_mut(&update.id) else {
                    return Applied::UnknownTenant { id: update.id };
                };
                if let Some(hash) = update.token_sha256 {
                    self.by_token.remove(&tenant.token_sha256);
                    self.by_token.insert(hash.clone(), tenant.id.clone());
                    tenant.token_sha256 = hash;
                }
                if let Some(n) = update.max_warm {
                    tenant.max_warm = n;
                }
                if let Some(mib) = update.max_memory_mib {
                    tenant.max_memory_mib = mib;
                }
                if let Some(regions) = update.allowed_regions {
                    tenant.allowed_regions = regions;
                }
                if let Some(budget) = update.max_extra_latency_ms {
                    tenant.max_extra_latency_ms = budget;
                }
                Applied::Done
            }
            Command::DeleteTenant { id } => {
                let Some(tenant) = self.tenants.remove(&id) else {
                    return Applied::UnknownTenant { id };
                };
                self.by_token.remove(&tenant.token_sha256);
                let owned = |key: &str| key.split_once('/').is_some_and(|(t, _)| t == id);
                self.codes.retain(|key, _| !owned(key));
                self.models.retain(|key, _| !owned(key));
                Applied::Done
            }
            Command::PutCode(mut code) => {
                if !self.tenants.contains_key(&code.tenant) {
                    return Applied::UnknownTenant { id: code.tenant };
                }
                let key = code.key();
                let stored = self.codes.get(&key);
                let id = code.writes.pop().map(|(id, _)| id);
                // The same put sent again (its id is among the latest): what it stored.
                if let (Some(stored), Some(id)) = (stored, &id)
                    && let Some((_, version)) = stored.writes.iter().find(|(w, _)| w == id)
                {
                    return Applied::CodeVersion { version: *version };
                }
                // The stored code type again (a client's retry): it keeps its version, and
                // its containers are not retired.
                let same = |stored: &Code| {
                    let mut again = code.clone();
                    again.version = stored.version;
                    again.writes.clone_from(&stored.writes);
                    again == *stored
                };
                if let Some(stored) = stored
                    && same(stored)
                {
                    return Applied::CodeVersion {
                        version: stored.version,
                    };
                }
                code.version = stored.map_or(1, |c| c.version + 1);
                code.writes = stored.map(|c| c.writes.clone()).unwrap_or_default();
                if let Some(id) = id {
                    code.writes.push((id, code.version));
                    let over = code.writes.len().saturating_sub(RECENT_WRITES);
                    code.writes.drain(..over);
                }
                let version = code.version;
                self.codes.insert(key, Arc::new(code));
                Applied::CodeVersion { version }
            }
            Command::PutModels { models: batch } => {
                let mut kept = 0;
                for mut summary in batch {
                    if !self.codes.contains_key(summary.code.as_str()) {
                        continue;
                    }
                    summary.demand_per_min.truncate(MAX_DEMAND_POINTS);
                    summary.containers_per_min.truncate(MAX_DEMAND_POINTS);
                    self.models
                        .entry(summary.code.clone())
                        .or_default()
                        .insert(summary.region.clone(), summary);
                    kept += 1;
                }
                Applied::Models { kept }
            }
            Command::SetImages { images } => {
                self.images = images.into_iter().collect();
                Applied::Done
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_replaces_what_it_names_and_a_new_token_retires_the_old() {
        let mut state = ClusterState::default();
        state.apply(Command::CreateTenant(tenant("acme", "old")));
        let update = TenantUpdate {
            id: "acme".into(),
            token_sha256: Some(hash_token("new")),
            max_warm: Some(3),
            ..TenantUpdate::default()
        };
        assert_eq!(
            state.apply(Command::UpdateTenant(update.clone())),
            Applied::Done
        );
        assert_eq!(state.apply(Command::UpdateTenant(update)), Applied::Done);
        assert!(state.tenant_by_token_sha256(&hash_token("old")).is_none());
        let t = state
            .tenant_by_token_sha256(&hash_token("new"))
            .expect("new token");
        assert_eq!(
            (t.max_warm, t.max_memory_mib),
            (3, tenant("x", "y").max_memory_mib)
        );
        let missing = TenantUpdate {
            id: "nobody".into(),
            ..TenantUpdate::default()
        };
        assert_eq!(
            state.apply(Command::UpdateTenant(missing)),
            Applied::UnknownTenant {
                id: "nobody".into()
            }
        );
        // The index survives a snapshot (it is rebuilt from the tenants).
        let mut copy: ClusterState =
            serde_json::from_str(&serde_json::to_string(&state).expect("json")).expect("back");
        copy.reindex();
        assert!(copy.tenant_by_token_sha256(&hash_token("new")).is_some());
        assert!(copy.tenant_by_token_sha256(&hash_token("old")).is_none());
    }

    #[test]
    fn a_deleted_tenant_takes_its_code_types_and_models_along() {
        let mut state = ClusterState::default();
        state.apply(Command::CreateTenant(tenant("acme", "a")));
        state.apply(Command::CreateTenant(tenant("acme2", "b")));
        for (t, name) in [("acme", "f"), ("acme2", "f")] {
            let mut c = code(t, name);
            c.writes = vec![];
            state.apply(Command::PutCode(c));
        }
        let delete = || Command::DeleteTenant { id: "acme".into() };
        assert_eq!(state.apply(delete()), Applied::Done);
        assert_eq!(
            state.apply(delete()),
            Applied::UnknownTenant { id: "acme".into() }
        );
        assert!(state.tenant_by_token_sha256(&hash_token("a")).is_none());
        let keys: Vec<&str> = state.codes.keys().map(|k| k.as_ref()).collect();
        assert_eq!(
            keys,
            ["acme2/f"],
            "another tenant whose name starts the same stays"
        );
    }

    #[test]
    fn secrets_are_the_same_only_when_equal() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cres", "s3cret"));
        assert!(!same_secret("", "s3cret"));
        assert!(!same_secret("s3cret-and-more", "s3cret"));
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"abcd"));
    }

    fn tenant(id: &str, token: &str) -> Tenant {
        Tenant {
            id: id.into(),
            token_sha256: hash_token(token),
            max_warm: 4,
            max_memory_mib: 1024,
            allowed_regions: vec![],
            max_extra_latency_ms: None,
        }
    }

    fn code(tenant: &str, name: &str) -> Code {
        Code {
            tenant: tenant.into(),
            name: name.into(),
            workload: Workload::default(),
            image: "img".into(),
            max_memory_mib: 128,
            max_cpu_millis: 500,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_queue: DEFAULT_MAX_QUEUE,
            features: Vec::new(),
            version: 0,
            writes: vec![],
        }
    }

    pub(crate) fn summary(code: &str, region: &str) -> ModelSummary {
        ModelSummary {
            code: code.into(),
            region: region.into(),
            samples: 1234,
            need_mib: 96.5,
            cpu_p95_ms: 12.25,
            duration_p95_ms: 40.0,
            cold_start_ms: 512.0,
            demand_per_min: vec![12.345678; 12],
            containers_per_min: vec![],
            trained_at_ms: 1_790_000_000_000,
        }
    }

    #[test]
    fn tenants_are_created_once_and_found_by_token() {
        let mut s = ClusterState::default();
        assert_eq!(
            s.apply(Command::CreateTenant(tenant("acme", "t1"))),
            Applied::Done
        );
        assert_eq!(
            s.apply(Command::CreateTenant(tenant("acme", "t2"))),
            Applied::TenantExists { id: "acme".into() }
        );
        assert_eq!(s.tenant_by_token("t1").map(|t| t.id.as_str()), Some("acme"));
        assert!(s.tenant_by_token("t2").is_none());
        // The same creation applied again (a forward re-sent after its answer was lost)
        // succeeds and changes nothing.
        assert_eq!(
            s.apply(Command::CreateTenant(tenant("acme", "t1"))),
            Applied::Done
        );
        assert_eq!(s.tenants.len(), 1);
    }

    #[test]
    fn code_versions_count_up_and_need_a_tenant() {
        let mut s = ClusterState::default();
        assert_eq!(
            s.apply(Command::PutCode(code("acme", "f"))),
            Applied::UnknownTenant { id: "acme".into() }
        );
        s.apply(Command::CreateTenant(tenant("acme", "t")));
        for v in 1..=3 {
            let changed = Code {
                timeout_ms: 1000 * v,
                ..code("acme", "f")
            };
            assert_eq!(
                s.apply(Command::PutCode(changed.clone())),
                Applied::CodeVersion { version: v }
            );
            // The same put again (a re-sent forward, a client's retry) keeps the version.
            assert_eq!(
                s.apply(Command::PutCode(changed)),
                Applied::CodeVersion { version: v }
            );
        }
        assert_eq!(s.codes["acme/f"].version, 3);
    }

    #[test]
    fn a_put_sent_again_after_later_puts_is_not_stored_twice() {
        let mut s = ClusterState::default();
        s.apply(Command::CreateTenant(tenant("acme", "t")));
        let put = |timeout_ms, id: &str| Code {
            timeout_ms,
            writes: vec![(id.into(), 0)],
            ..code("acme", "f")
        };
        let first = put(1000, "w1");
        assert_eq!(
            s.apply(Command::PutCode(first.clone())),
            Applied::CodeVersion { version: 1 }
        );
        assert_eq!(
            s.apply(Command::PutCode(put(2000, "w2"))),
            Applied::CodeVersion { version: 2 }
        );
        // w1's forward lost its answer and is sent again after w2: it stored version 1, and
        // w2's code type stays.
        assert_eq!(
            s.apply(Command::PutCode(first)),
            Applied::CodeVersion { version: 1 }
        );
        assert_eq!(
            (s.codes["acme/f"].version, s.codes["acme/f"].timeout_ms),
            (2, 2000)
        );
        // Only the latest RECENT_WRITES ids are kept.
        for i in 0..RECENT_WRITES as u64 + 5 {
            s.apply(Command::PutCode(put(3000 + i, &format!("x{i}"))));
        }
        assert_eq!(s.codes["acme/f"].writes.len(), RECENT_WRITES);
    }

    #[test]
    fn models_are_kept_per_region_for_known_codes_only_and_bounded() {
        let mut s = ClusterState::default();
        s.apply(Command::CreateTenant(tenant("acme", "t")));
        s.apply(Command::PutCode(code("acme", "f")));
        let batch = vec![
            summary("acme/f", "us-east"),
            summary("acme/f", "eu-west"),
            summary("acme/ghost", "us-east"),
        ];
        assert_eq!(
            s.apply(Command::PutModels { models: batch }),
            Applied::Models { kept: 2 }
        );
        assert_eq!(s.models["acme/f"].len(), 2);
        assert_eq!(
            s.models["acme/f"]["us-east"].demand_per_min.len(),
            MAX_DEMAND_POINTS
        );
    }

    #[test]
    fn summary_is_small() {
        let mut s = summary(
            "some-tenant-with-a-long-id/some-code-type-with-a-long-name",
            "ap-south",
        );
        s.demand_per_min.truncate(MAX_DEMAND_POINTS);
        let bytes = serde_json::to_vec(&s).expect("json");
        assert!(bytes.len() <= 1024, "{} bytes", bytes.len());
    }

    #[test]
    fn every_command_survives_json() {
        for command in [
            Command::CreateTenant(tenant("acme", "t")),
            Command::PutCode(code("acme", "f")),
            Command::PutModels {
                models: vec![summary("acme/f", "us-east")],
            },
        ] {
            let bytes = serde_json::to_vec(&command).expect("serialise");
            let back: Command = serde_json::from_slice(&bytes).expect("deserialise");
            assert_eq!(back, command);
        }
    }

    #[test]
    fn the_token_index_is_rebuilt_after_a_round_trip() {
        let mut s = ClusterState::default();
        s.apply(Command::CreateTenant(tenant("acme", "t")));
        let mut back: ClusterState =
            serde_json::from_slice(&serde_json::to_vec(&s).expect("ser")).expect("de");
        assert!(back.tenant_by_token("t").is_none());
        back.reindex();
        assert_eq!(
            back.tenant_by_token("t").map(|t| t.id.as_str()),
            Some("acme")
        );
    }
}
