//! Tenants and code types of this node, with their tokens stored only as SHA-256 hashes.
//!
//! Reads (every request) take a read lock on an in-memory map; writes go to the store first
//! and only then to the map, so what the API acknowledged survives a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use forewarm_runtime::Workload;
use forewarm_store::{SampleStore, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const TENANT: &str = "tenant";
const CODE: &str = "code";

/// A tenant: who may run what, and how much.
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
    /// Bumped on every update, so containers of an older version are retired.
    pub version: u64,
}

impl Code {
    /// `tenant/name`: the key of its samples, models and pool.
    pub fn key(&self) -> CodeKey {
        code_key(&self.tenant, &self.name)
    }
}

/// `tenant/code`.
pub type CodeKey = Arc<str>;

/// The key of `code` of `tenant`.
pub fn code_key(tenant: &str, code: &str) -> CodeKey {
    Arc::from(format!("{tenant}/{code}"))
}

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

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random token: 32 bytes from the OS generator, hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Default)]
struct Maps {
    tenants: HashMap<String, Tenant>,
    by_token: HashMap<String, String>,
    codes: HashMap<CodeKey, Arc<Code>>,
}

/// Tenants and codes, persisted in the node's store.
#[derive(Debug)]
pub struct Registry {
    store: Arc<SampleStore>,
    maps: RwLock<Maps>,
}

/// Why a registry write was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The tenant exists already.
    #[error("tenant {0} exists")]
    TenantExists(String),
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Registry {
    /// Load what the store holds.
    pub fn load(store: Arc<SampleStore>) -> Result<Self, StoreError> {
        let mut maps = Maps::default();
        for (_, t) in store.records::<Tenant>(TENANT)? {
            maps.by_token.insert(t.token_sha256.clone(), t.id.clone());
            maps.tenants.insert(t.id.clone(), t);
        }
        for (_, c) in store.records::<Code>(CODE)? {
            maps.codes.insert(c.key(), Arc::new(c));
        }
        Ok(Self {
            store,
            maps: RwLock::new(maps),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Create a tenant; refuses an existing id.
    pub fn create_tenant(&self, tenant: Tenant) -> Result<(), RegistryError> {
        let mut maps = self.write();
        if maps.tenants.contains_key(&tenant.id) {
            return Err(RegistryError::TenantExists(tenant.id));
        }
        self.store.put_record(TENANT, &tenant.id, &tenant)?;
        maps.by_token
            .insert(tenant.token_sha256.clone(), tenant.id.clone());
        maps.tenants.insert(tenant.id.clone(), tenant);
        Ok(())
    }

    /// The tenant whose token this is.
    pub fn tenant_by_token(&self, token: &str) -> Option<Tenant> {
        let maps = self.read();
        let id = maps.by_token.get(&hash_token(token))?;
        maps.tenants.get(id).cloned()
    }

    /// A tenant by id.
    pub fn tenant(&self, id: &str) -> Option<Tenant> {
        self.read().tenants.get(id).cloned()
    }

    /// Register or replace a code type; returns the stored version.
    pub fn put_code(&self, mut code: Code) -> Result<Arc<Code>, RegistryError> {
        let mut maps = self.write();
        let key = code.key();
        code.version = maps.codes.get(&key).map_or(1, |c| c.version + 1);
        self.store.put_record(CODE, &key, &code)?;
        let code = Arc::new(code);
        maps.codes.insert(key, code.clone());
        Ok(code)
    }

    /// A code type by key.
    pub fn code(&self, key: &str) -> Option<Arc<Code>> {
        self.read().codes.get(key).cloned()
    }

    /// Every code type.
    pub fn codes(&self) -> Vec<Arc<Code>> {
        self.read().codes.values().cloned().collect()
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

    #[test]
    fn tenants_and_codes_survive_a_reload_and_versions_increase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb");
        let open = || {
            Arc::new(SampleStore::open(&path, forewarm_store::Retention::default()).expect("open"))
        };
        {
            let reg = Registry::load(open()).expect("load");
            let token = "secret";
            reg.create_tenant(Tenant {
                id: "acme".into(),
                token_sha256: hash_token(token),
                max_warm: 4,
                max_memory_mib: 1024,
            })
            .expect("create");
            assert!(matches!(
                reg.create_tenant(Tenant {
                    id: "acme".into(),
                    token_sha256: hash_token("x"),
                    max_warm: 1,
                    max_memory_mib: 1,
                }),
                Err(RegistryError::TenantExists(_))
            ));
            let code = Code {
                tenant: "acme".into(),
                name: "f".into(),
                workload: Workload::default(),
                image: "img".into(),
                max_memory_mib: 128,
                max_cpu_millis: 500,
                version: 0,
            };
            assert_eq!(reg.put_code(code.clone()).expect("put").version, 1);
            assert_eq!(reg.put_code(code).expect("put").version, 2);
        }
        let reg = Registry::load(open()).expect("reload");
        assert_eq!(
            reg.tenant_by_token("secret").map(|t| t.id),
            Some("acme".into())
        );
        assert!(reg.tenant_by_token("wrong").is_none());
        assert_eq!(reg.code("acme/f").map(|c| c.version), Some(2));
    }
}
