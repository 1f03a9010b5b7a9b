//! Tenants and code types as this node sees them: the applied replicated state
//! (forewarm-raft), read under a read lock on every request. Writes are Raft commands
//! (`Cluster::write`), never local.

use std::sync::Arc;

use forewarm_raft::{AppliedState, SharedState};
use forewarm_runtime::WorkloadOverrides;

pub use forewarm_raft::{Code, CodeKey, Tenant, code_key, hash_token};

/// Ids of tenants and nodes: 1-32 characters of `a-z`, `0-9`, `-`, not starting with `-`.
/// They become Docker network names and labels, so nothing else is allowed.
pub fn valid_id(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Code names: 1-64 characters of `a-z`, `A-Z`, `0-9`, `-`, `_`, `.`, not starting with `.`.
pub fn valid_code_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Memory the runner needs besides what a workload touches, MiB (checked at registration).
pub const RUNNER_OVERHEAD_MIB: u64 = 8;

/// Whether `overrides` keep `code`'s workload within its bounds and its memory limit: what an
/// invocation may ask, from a client or forwarded by another member.
pub fn overrides_within(code: &Code, overrides: &WorkloadOverrides) -> Result<(), String> {
    let workload = code.workload.with(overrides);
    workload.validate().map_err(|e| e.to_string())?;
    let asked = overrides.mem_mib.is_some() || overrides.items.is_some();
    if asked
        && workload.mem_mib.saturating_add(RUNNER_OVERHEAD_MIB) > u64::from(code.max_memory_mib)
    {
        return Err(format!(
            "{} MiB of work (mem_mib and items) plus the runner's {RUNNER_OVERHEAD_MIB} MiB is over the code type's max_memory_mib {}",
            workload.mem_mib, code.max_memory_mib
        ));
    }
    Ok(())
}

/// A fresh random token: 32 bytes from the OS generator, hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tenants and codes, read from the applied replicated state.
#[derive(Debug, Clone)]
pub struct Catalog {
    state: SharedState,
}

impl Catalog {
    /// A view of `state`.
    pub fn new(state: SharedState) -> Self {
        Self { state }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, AppliedState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The tenant whose token hashes to `sha256`.
    pub fn tenant_by_token_sha256(&self, sha256: &str) -> Option<Tenant> {
        self.read().state.tenant_by_token_sha256(sha256).cloned()
    }

    /// A tenant by id.
    pub fn tenant(&self, id: &str) -> Option<Tenant> {
        self.read().state.tenants.get(id).cloned()
    }

    /// Every tenant's id.
    pub fn tenant_ids(&self) -> Vec<String> {
        self.read().state.tenants.keys().cloned().collect()
    }

    /// Whether the cluster's image allow-list holds `image`.
    pub fn image_allowed(&self, image: &str) -> bool {
        self.read().state.images.contains(image)
    }

    /// The cluster's image allow-list.
    pub fn images(&self) -> Vec<String> {
        self.read().state.images.iter().cloned().collect()
    }

    /// A code type by key.
    pub fn code(&self, key: &str) -> Option<Arc<Code>> {
        self.read().state.codes.get(key).cloned()
    }

    /// Every code type.
    pub fn codes(&self) -> Vec<Arc<Code>> {
        self.read().state.codes.values().cloned().collect()
    }

    /// Every region's published model summary of a code type.
    pub fn summaries(&self, key: &str) -> Vec<forewarm_raft::ModelSummary> {
        let applied = self.read();
        applied
            .state
            .models
            .get(key)
            .map(|per_region| per_region.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The largest of `pick` over the published model summaries of a code type.
    fn largest(
        &self,
        key: &str,
        pick: impl Fn(&forewarm_raft::ModelSummary) -> Option<f64>,
    ) -> Option<f64> {
        let applied = self.read();
        let per_region = applied.state.models.get(key)?;
        per_region.values().filter_map(pick).reduce(f64::max)
    }

    /// The measured cold-start cost of a code type in any region (the largest), ms.
    pub fn shared_cold_start_ms(&self, key: &str) -> Option<f64> {
        self.largest(key, |m| (m.cold_start_ms > 0.0).then_some(m.cold_start_ms))
    }

    /// What the regions other than `region` learned a code type needs, MiB: the largest of
    /// their published needs (sizing from a shared model errs on the large side).
    pub fn shared_need_mib(&self, key: &str, region: &str) -> Option<f64> {
        self.largest(key, |m| {
            (m.region != region && m.samples > 0).then_some(m.need_mib)
        })
    }

    /// What a region seeing a code type for the first time keeps warm on the strength of the
    /// other regions' models: see [`first_sight_floor`].
    pub fn first_sight_floor(&self, key: &str, region: &str) -> Option<SharedFloor> {
        first_sight_floor(&self.summaries(key), region)
    }
}

/// Containers to keep warm, from other regions' models, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedFloor {
    /// Containers (the one serving the first request counts).
    pub containers: u32,
    /// Policy minutes to hold them: the forecast's horizon.
    pub minutes: u64,
}

/// Most containers a first sight keeps warm (the tenant's quota and the node's capacity cap
/// it further; pre-warms never evict).
pub const FIRST_SIGHT_MAX: u32 = 8;

/// The busiest other region's expected concurrency over its forecast: the peak of its pool's
/// forecast of containers in use where it has one (a busy code type), else by Little's law,
/// peak invocations per minute × p95 duration. Rounded up (a forecast of any demand keeps one
/// container), held over the forecast's horizon. `None` when no other region forecasts any.
pub fn first_sight_floor(
    summaries: &[forewarm_raft::ModelSummary],
    region: &str,
) -> Option<SharedFloor> {
    let mut concurrency = 0.0f64;
    let mut minutes = 0usize;
    for s in summaries.iter().filter(|s| s.region != region) {
        // Invocations per minute become containers by Little's law; containers are containers.
        let little = s.duration_p95_ms.max(1.0) / 60_000.0;
        for (series, containers_each) in [(&s.demand_per_min, little), (&s.containers_per_min, 1.0)]
        {
            let peak = series.iter().copied().fold(0.0, f64::max);
            if peak.is_finite() && peak > 0.0 {
                concurrency = concurrency.max(peak * containers_each);
                minutes = minutes.max(series.len());
            }
        }
    }
    (concurrency > 0.0).then(|| SharedFloor {
        containers: (concurrency.ceil() as u32).clamp(1, FIRST_SIGHT_MAX),
        minutes: minutes as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_restricted_to_what_docker_names_allow() {
        assert!(valid_id("acme-1"));
        assert!(!valid_id(""));
        assert!(!valid_id("-acme"));
        assert!(!valid_id("Acme"));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(&"a".repeat(33)));
        assert!(valid_code_name("resize_v2.1"));
        assert!(!valid_code_name(".hidden"));
        assert!(!valid_code_name("a b"));
    }

    fn summary(
        region: &str,
        demand: Vec<f64>,
        duration_p95_ms: f64,
    ) -> forewarm_raft::ModelSummary {
        forewarm_raft::ModelSummary {
            code: String::from("acme/f"),
            region: region.to_owned(),
            samples: 100,
            need_mib: 64.0,
            cpu_p95_ms: 10.0,
            duration_p95_ms,
            cold_start_ms: 500.0,
            demand_per_min: demand,
            containers_per_min: vec![],
            trained_at_ms: 0,
        }
    }

    #[test]
    fn first_sight_floor_is_the_busiest_other_regions_concurrency() {
        // 120/min × 1 s = 2 in flight on average; 30/min × 0.1 s = 0.05 → 1.
        let s = [
            summary("eu-west", vec![60.0, 120.0, 90.0], 1000.0),
            summary("ap-south", vec![30.0; 10], 100.0),
            summary("us-east", vec![6000.0], 1000.0),
        ];
        let floor = first_sight_floor(&s, "us-east").expect("a floor");
        assert_eq!(
            floor,
            SharedFloor {
                containers: 2,
                minutes: 10
            }
        );
        // Its own region's model does not count; nothing forecast, no floor.
        assert_eq!(first_sight_floor(&s[2..], "us-east"), None);
        assert_eq!(
            first_sight_floor(&[summary("eu-west", vec![0.0; 5], 50.0)], "us-east"),
            None
        );
        // A pool's forecast of containers in use, where there is one, over Little's law.
        let pooled = [forewarm_raft::ModelSummary {
            containers_per_min: vec![2.0, 3.2, 1.0],
            ..summary("eu-west", vec![60.0], 1000.0)
        }];
        assert_eq!(
            first_sight_floor(&pooled, "us-east"),
            Some(SharedFloor {
                containers: 4,
                minutes: 3
            })
        );
        // Capped.
        let busy = [summary("eu-west", vec![60_000.0], 1000.0)];
        assert_eq!(
            first_sight_floor(&busy, "us-east").map(|f| f.containers),
            Some(FIRST_SIGHT_MAX)
        );
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let a = new_token();
        assert_ne!(a, new_token());
        assert_eq!(a.len(), 64);
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(hash_token(&a), a);
    }
}
