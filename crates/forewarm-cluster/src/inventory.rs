//! What each member holds warm: its own inventory, pushed to the others every mesh tick, and
//! the others' as last received, which the Router scores regions with.

use std::collections::HashMap;
use std::time::Instant;

use forewarm_raft::{ClusterNode, NodeId};
use serde::{Deserialize, Serialize};

use crate::Cluster;

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
    /// Containers busy with a request, by code type, their size classes (MiB): what an
    /// operator's view of the member shows beside its idle ones (the Router routes on `idle`
    /// alone).
    #[serde(default)]
    pub busy: HashMap<String, Vec<u32>>,
    /// Containers starting (a cold start or a pre-warm), the same way.
    #[serde(default)]
    pub starting: HashMap<String, Vec<u32>>,
    /// How many of a code type's idle containers a prediction started and no request has
    /// used yet.
    #[serde(default)]
    pub prewarmed: HashMap<String, u32>,
}

/// Bounds an inventory received from another member must keep: times within an hour, at
/// most this many containers, classes of 1 MiB to 1 TiB, code keys as long as the node's own.
const MAX_REPORTED_MS: f64 = 3_600_000.0;
const MAX_CONTAINERS: usize = 100_000;
const MAX_CLASS_MIB: u32 = 1 << 20;
const MAX_KEY_LEN: usize = 512;

impl Inventory {
    /// Whether an inventory received from another member can be believed: its start time and
    /// queue wait finite, not negative and under an hour (a negative queue wait would make the
    /// Router send it every request), its containers and classes within bounds. Why not, if
    /// not.
    pub fn check(&self) -> Result<(), String> {
        for (name, ms) in [("start_ms", self.start_ms), ("queue_ms", self.queue_ms)] {
            if !(ms.is_finite() && (0.0..=MAX_REPORTED_MS).contains(&ms)) {
                return Err(format!("{name} {ms} is not within 0..={MAX_REPORTED_MS}"));
            }
        }
        let lists = || self.idle.iter().chain(&self.busy).chain(&self.starting);
        let containers: usize = lists().map(|(_, classes)| classes.len()).sum();
        if containers > MAX_CONTAINERS {
            return Err(format!(
                "{containers} containers (at most {MAX_CONTAINERS})"
            ));
        }
        for (code, classes) in lists() {
            if code.is_empty() || code.len() > MAX_KEY_LEN {
                return Err(format!("a code key of {} bytes", code.len()));
            }
            if let Some(m) = classes.iter().find(|m| !(1..=MAX_CLASS_MIB).contains(*m)) {
                return Err(format!("{code}: a class of {m} MiB"));
            }
        }
        for (code, n) in &self.prewarmed {
            let idle = self.idle.get(code).map_or(0, Vec::len);
            if *n as usize > idle {
                return Err(format!("{code}: {n} pre-warmed of {idle} idle"));
            }
        }
        Ok(())
    }

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

impl Cluster {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_negative_queue_wait_or_a_zero_class_is_not_believed() {
        let good = Inventory {
            idle: HashMap::from([(String::from("acme/f"), vec![128, 256])]),
            start_ms: 400.0,
            queue_ms: 0.2,
            busy: HashMap::from([(String::from("acme/f"), vec![128, 128, 512])]),
            starting: HashMap::new(),
            prewarmed: HashMap::from([(String::from("acme/f"), 1)]),
        };
        assert_eq!(good.check(), Ok(()));
        let crowded = Inventory {
            starting: HashMap::from([(String::from("acme/g"), vec![128; 100_001])]),
            ..good.clone()
        };
        assert!(
            crowded
                .check()
                .expect_err("too many starting")
                .contains("containers (at most")
        );
        let nameless = Inventory {
            busy: HashMap::from([(String::new(), vec![128])]),
            ..good.clone()
        };
        assert!(nameless.check().is_err());
        let overclaimed = Inventory {
            prewarmed: HashMap::from([(String::from("acme/f"), 3)]),
            ..good.clone()
        };
        assert!(
            overclaimed
                .check()
                .expect_err("3 pre-warmed of 2 idle")
                .contains("pre-warmed")
        );
        let lying = Inventory {
            queue_ms: -1e9,
            ..good.clone()
        };
        assert!(
            lying
                .check()
                .expect_err("a negative queue wait")
                .contains("queue_ms")
        );
        let slow = Inventory {
            start_ms: 1e12,
            ..good.clone()
        };
        assert!(slow.check().is_err());
        let zero = Inventory {
            idle: HashMap::from([(String::from("acme/f"), vec![0])]),
            ..good
        };
        assert!(
            zero.check()
                .expect_err("a class of 0 MiB")
                .contains("class of 0")
        );
    }

    proptest! {
        /// Whatever bytes arrive as an inventory: parsed or refused, never a panic; one that
        /// is believed has sane times and classes.
        #[test]
        fn p01_any_inventory_is_parsed_and_checked_or_refused(
            start in prop_oneof![-1e300..1e300f64, -10.0..1e7f64],
            queue in prop_oneof![-1e300..1e300f64, -10.0..1e7f64],
            classes in prop::collection::vec(any::<u32>(), 0..6),
            code in "[a-z/]{0,12}",
            junk in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let text = format!(
                r#"{{"idle":{{"{code}":{classes:?}}},"start_ms":{start:e},"queue_ms":{queue:e}}}"#
            );
            for bytes in [text.as_bytes(), &junk[..]] {
                if let Ok(inv) = serde_json::from_slice::<Inventory>(bytes)
                    && inv.check().is_ok()
                {
                    prop_assert!(inv.start_ms >= 0.0 && inv.start_ms <= MAX_REPORTED_MS);
                    prop_assert!(inv.queue_ms >= 0.0 && inv.queue_ms <= MAX_REPORTED_MS);
                    prop_assert!(inv.idle.values().flatten().all(|m| *m >= 1));
                }
            }
        }
    }
}
