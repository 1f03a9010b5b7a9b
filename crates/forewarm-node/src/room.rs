//! Whether a new container fits on this node, and which idle containers to remove so it does:
//! the PoolSupervisor's admission decision as a pure function over what the node holds.
//!
//! No clock, lock or I/O: the caller lists its containers ([`Held`]) with the tenant's quota
//! and the node's capacity, and carries out the evictions [`plan`] returns.
//!
//! The rule: a container of `mib` for `tenant` fits when the tenant stays within its quota
//! (containers and memory) and the node within its capacity (containers and memory). When it
//! does not and eviction is allowed (a request on its path, never a pre-warm), idle containers
//! are removed oldest idle first — the tenant's own while the tenant's quota is what is short,
//! anyone's while only the node's capacity is — until it fits. If it cannot fit even with
//! every eligible idle container gone, nothing is removed: warm containers are not given up
//! for a request that is refused anyway.

use crate::config::Capacity;

/// One container the node holds (starting, idle or busy).
#[derive(Debug, Clone, PartialEq)]
pub struct Held<'a, S, O> {
    /// The caller's id for it.
    pub id: S,
    /// Its tenant.
    pub tenant: &'a str,
    /// Its memory limit, MiB.
    pub memory_mib: u32,
    /// When idle: since when (any ordered value; older first). `None`: starting or busy.
    pub idle_since: Option<O>,
}

/// A tenant's limits on what it holds warm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Containers.
    pub max_warm: u32,
    /// Sum of memory limits, MiB.
    pub max_memory_mib: u64,
}

/// Which limit a new container is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Short {
    /// The tenant's quota; `what` names the limit (`max_warm 4`).
    Tenant {
        /// The limit.
        what: String,
    },
    /// The node's capacity; `what` names the limit (`64 containers`).
    Node {
        /// The limit.
        what: String,
    },
}

/// Decide whether a container of `mib` for `tenant` fits, and which idle containers of `held`
/// to remove first (in order); with `evict` false, only whether it fits as things are.
pub fn plan<S: Clone + PartialEq, O: Ord>(
    held: &[Held<'_, S, O>],
    tenant: &str,
    mib: u32,
    quota: Option<Quota>,
    capacity: Capacity,
    evict: bool,
) -> Result<Vec<S>, Short> {
    let mut gone: Vec<usize> = Vec::new();
    loop {
        let kept = || {
            held.iter()
                .enumerate()
                .filter(|(i, _)| !gone.contains(i))
                .map(|(_, h)| h)
        };
        let (t_mem, t_n) = kept()
            .filter(|h| h.tenant == tenant)
            .fold((0u64, 0usize), |(m, n), h| {
                (m + u64::from(h.memory_mib), n + 1)
            });
        let (n_mem, n_n) = kept().fold((0u64, 0usize), |(m, n), h| {
            (m + u64::from(h.memory_mib), n + 1)
        });
        let tenant_short = quota.and_then(|q| {
            if t_n as u64 + 1 > u64::from(q.max_warm) {
                Some(format!("max_warm {}", q.max_warm))
            } else if t_mem + u64::from(mib) > q.max_memory_mib {
                Some(format!("max_memory_mib {}", q.max_memory_mib))
            } else {
                None
            }
        });
        let node_short = if n_n + 1 > capacity.containers {
            Some(format!("{} containers", capacity.containers))
        } else if n_mem + u64::from(mib) > capacity.memory_mib {
            Some(format!("{} MiB", capacity.memory_mib))
        } else {
            None
        };
        let (scope, short) = match (tenant_short, node_short) {
            (None, None) => return Ok(gone.iter().map(|&i| held[i].id.clone()).collect()),
            (Some(what), _) => (Some(tenant), Short::Tenant { what }),
            (None, Some(what)) => (None, Short::Node { what }),
        };
        if !evict {
            return Err(short);
        }
        let victim = held
            .iter()
            .enumerate()
            .filter(|(i, _)| !gone.contains(i))
            .filter(|(_, h)| scope.is_none_or(|t| h.tenant == t))
            .filter_map(|(i, h)| h.idle_since.as_ref().map(|since| (i, since)))
            .min_by(|a, b| a.1.cmp(b.1))
            .map(|(i, _)| i);
        match victim {
            Some(i) => gone.push(i),
            None => return Err(short),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: Capacity = Capacity {
        memory_mib: 1024,
        containers: 4,
    };
    const QUOTA: Quota = Quota {
        max_warm: 2,
        max_memory_mib: 512,
    };

    fn held(id: u32, tenant: &str, mib: u32, idle_since: Option<u32>) -> Held<'_, u32, u32> {
        Held {
            id,
            tenant,
            memory_mib: mib,
            idle_since,
        }
    }

    #[test]
    fn t01_an_empty_node_fits_and_evicts_nothing() {
        assert_eq!(
            plan::<u32, u32>(&[], "a", 128, Some(QUOTA), NODE, true),
            Ok(vec![])
        );
    }

    #[test]
    fn t02_tenant_quota_evicts_the_tenants_oldest_idle_only() {
        let h = [
            held(1, "b", 128, Some(0)), // the oldest idle, but another tenant's
            held(2, "a", 128, Some(20)),
            held(3, "a", 128, Some(10)),
        ];
        // a holds 2 = max_warm: one of its own goes, the older idle one (3).
        assert_eq!(plan(&h, "a", 128, Some(QUOTA), NODE, true), Ok(vec![3]));
        // Without eviction (a pre-warm): refused, naming the limit.
        assert_eq!(
            plan(&h, "a", 128, Some(QUOTA), NODE, false),
            Err(Short::Tenant {
                what: "max_warm 2".into()
            })
        );
    }

    #[test]
    fn t03_node_capacity_evicts_anyones_oldest_idle_until_it_fits() {
        let h = [
            held(1, "b", 256, Some(5)),
            held(2, "c", 256, None),
            held(3, "b", 256, Some(1)),
            held(4, "c", 128, Some(3)),
        ];
        // 4 containers = capacity: one goes, the oldest idle (3).
        assert_eq!(plan(&h, "a", 128, None, NODE, true), Ok(vec![3]));
        // 512 MiB asked: 896 held, so 384 must go besides the count: 3 (256) then 4 (128).
        assert_eq!(plan(&h, "a", 512, None, NODE, true), Ok(vec![3, 4]));
    }

    #[test]
    fn t04_busy_and_starting_containers_are_never_evicted() {
        let h = [held(1, "a", 256, None), held(2, "a", 256, None)];
        assert_eq!(
            plan(&h, "a", 128, Some(QUOTA), NODE, true),
            Err(Short::Tenant {
                what: "max_warm 2".into()
            })
        );
    }

    #[test]
    fn t05_nothing_is_evicted_for_a_request_that_cannot_fit_anyway() {
        // Over the tenant's memory even on an empty node: refused, its idle container kept.
        let h = [held(1, "a", 128, Some(0))];
        assert_eq!(
            plan(&h, "a", 600, Some(QUOTA), NODE, true),
            Err(Short::Tenant {
                what: "max_memory_mib 512".into()
            })
        );
        // Node memory: 2000 MiB can never fit in 1024.
        assert_eq!(
            plan(&h, "b", 2000, None, NODE, true),
            Err(Short::Node {
                what: "1024 MiB".into()
            })
        );
    }

    #[test]
    fn t06_the_tenant_limit_is_reported_before_the_nodes() {
        let h = [
            held(1, "a", 128, None),
            held(2, "a", 128, None),
            held(3, "b", 128, None),
            held(4, "b", 128, None),
        ];
        assert_eq!(
            plan(&h, "a", 128, Some(QUOTA), NODE, false),
            Err(Short::Tenant {
                what: "max_warm 2".into()
            })
        );
        assert_eq!(
            plan(&h, "c", 128, Some(QUOTA), NODE, false),
            Err(Short::Node {
                what: "4 containers".into()
            })
        );
    }
}
