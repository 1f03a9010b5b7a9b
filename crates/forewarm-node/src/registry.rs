//! Tenants and code types as this node sees them: the applied replicated state
//! (forewarm-raft), read under a read lock on every request. Writes are Raft commands
//! (`Cluster::write`), never local.

use std::sync::Arc;

use forewarm_raft::{AppliedState, SharedState};

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

/// A fresh random token: 32 bytes from the OS generator, hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tenants and codes, read from the applied replicated state.
#[derive(Debug, Clone)]
pub struct Registry {
    state: SharedState,
}

impl Registry {
    /// A view of `state`.
    pub fn new(state: SharedState) -> Self {
        Self { state }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, AppliedState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The tenant whose token this is.
    pub fn tenant_by_token(&self, token: &str) -> Option<Tenant> {
        self.read().state.tenant_by_token(token).cloned()
    }

    /// A tenant by id.
    pub fn tenant(&self, id: &str) -> Option<Tenant> {
        self.read().state.tenants.get(id).cloned()
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

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let a = new_token();
        assert_ne!(a, new_token());
        assert_eq!(a.len(), 64);
        assert_eq!(hash_token("abc").len(), 64);
        assert_ne!(hash_token(&a), a);
    }
}
