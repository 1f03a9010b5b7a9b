//! What one execution of a code type does, per-request changes to it, and what it measured.

use serde::{Deserialize, Serialize};

/// Upper bounds that keep one request from taking the container down.
const MAX_CPU_MS: u64 = 600_000;
const MAX_MEM_MIB: u64 = 16_384;
const MAX_IO_KIB: u64 = 4 * 1024 * 1024;
const MAX_SLEEP_MS: u64 = 600_000;
const MAX_INIT_MS: u64 = 600_000;
/// Input items one request may declare, and what one item may cost.
const MAX_ITEMS: u64 = 1_000_000_000;
const MAX_PER_ITEM: u64 = 1_000_000;

/// What one execution of a code type does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Milliseconds of CPU work.
    #[serde(default)]
    pub cpu_ms: u64,
    /// MiB allocated and touched.
    #[serde(default)]
    pub mem_mib: u64,
    /// KiB written to a scratch file and synced.
    #[serde(default)]
    pub io_kib: u64,
    /// Milliseconds of initialisation before the runner is ready.
    #[serde(default)]
    pub init_ms: u64,
    /// Milliseconds of waiting (I/O-bound work).
    #[serde(default)]
    pub sleep_ms: u64,
    /// KiB more memory touched per input item a request declares (`items`): a workload whose
    /// memory depends on its input, which the node learns rather than reads.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mem_kib_per_item: u64,
    /// Microseconds more CPU work per input item.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cpu_us_per_item: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Per-request changes to the code type's workload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadOverrides {
    /// See [`Workload::cpu_ms`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// See [`Workload::mem_mib`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_mib: Option<u64>,
    /// See [`Workload::io_kib`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_kib: Option<u64>,
    /// See [`Workload::sleep_ms`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sleep_ms: Option<u64>,
    /// Input items of this request: adds [`Workload::mem_kib_per_item`] and
    /// [`Workload::cpu_us_per_item`] per item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
}

/// What one execution measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time of the thread that ran it (user + system), ms.
    pub cpu_ms: f64,
    /// Peak resident memory of the runner process, MiB.
    pub peak_mib: f64,
    /// KiB written.
    pub io_kib: u64,
    /// Wall time of the execution, ms.
    pub duration_ms: f64,
}

/// A workload over one of the bounds that keep one request from taking its container down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value} is over the limit of {max}")]
pub struct LimitError {
    /// The field.
    pub field: &'static str,
    /// Requested value.
    pub value: u64,
    /// Bound.
    pub max: u64,
}

impl WorkloadOverrides {
    /// The JSON fields an override may set.
    pub const FIELDS: [&'static str; 5] = ["cpu_ms", "mem_mib", "io_kib", "sleep_ms", "items"];
}

impl Workload {
    /// This workload with `o` applied: its values replaced, then its items' cost added (the
    /// result's per-item costs are kept, and apply to no further items).
    pub fn with(&self, o: &WorkloadOverrides) -> Self {
        let items = o.items.unwrap_or(0).min(MAX_ITEMS);
        Self {
            cpu_ms: o
                .cpu_ms
                .unwrap_or(self.cpu_ms)
                .saturating_add(items.saturating_mul(self.cpu_us_per_item) / 1000),
            mem_mib: o
                .mem_mib
                .unwrap_or(self.mem_mib)
                .saturating_add(items.saturating_mul(self.mem_kib_per_item).div_ceil(1024)),
            io_kib: o.io_kib.unwrap_or(self.io_kib),
            init_ms: self.init_ms,
            sleep_ms: o.sleep_ms.unwrap_or(self.sleep_ms),
            mem_kib_per_item: self.mem_kib_per_item,
            cpu_us_per_item: self.cpu_us_per_item,
        }
    }

    /// Whether an execution does nothing (no CPU, memory, I/O or sleep).
    pub fn is_noop(&self) -> bool {
        self.cpu_ms == 0 && self.mem_mib == 0 && self.io_kib == 0 && self.sleep_ms == 0
    }

    /// Check every field against its bound.
    pub fn validate(&self) -> Result<(), LimitError> {
        for (field, value, max) in [
            ("cpu_ms", self.cpu_ms, MAX_CPU_MS),
            ("mem_mib", self.mem_mib, MAX_MEM_MIB),
            ("io_kib", self.io_kib, MAX_IO_KIB),
            ("init_ms", self.init_ms, MAX_INIT_MS),
            ("sleep_ms", self.sleep_ms, MAX_SLEEP_MS),
            ("mem_kib_per_item", self.mem_kib_per_item, MAX_PER_ITEM),
            ("cpu_us_per_item", self.cpu_us_per_item, MAX_PER_ITEM),
        ] {
            if value > max {
                return Err(LimitError { field, value, max });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_bounds_hold() {
        let w = Workload {
            cpu_ms: 10,
            init_ms: 7,
            ..Workload::default()
        };
        let o = WorkloadOverrides {
            sleep_ms: Some(5),
            ..WorkloadOverrides::default()
        };
        assert_eq!(w.with(&o).sleep_ms, 5);
        assert_eq!(w.with(&o).cpu_ms, 10);
        assert_eq!(
            w.with(&o).init_ms,
            7,
            "initialisation is the code type's own"
        );
        assert!(!w.is_noop());
        assert!(Workload::default().is_noop());
        let big = Workload {
            mem_mib: MAX_MEM_MIB + 1,
            ..Workload::default()
        };
        let e = big.validate().expect_err("too big");
        assert_eq!(e.field, "mem_mib");
        assert!(e.to_string().contains("over the limit of 16384"), "{e}");
        assert!(w.validate().is_ok());
    }

    #[test]
    fn items_add_their_cost_to_the_overridden_values() {
        let w = Workload {
            cpu_ms: 10,
            mem_mib: 4,
            mem_kib_per_item: 512,
            cpu_us_per_item: 1500,
            ..Workload::default()
        };
        let none = w.with(&WorkloadOverrides::default());
        assert_eq!((none.cpu_ms, none.mem_mib), (10, 4));
        let o = WorkloadOverrides {
            items: Some(9),
            mem_mib: Some(2),
            ..WorkloadOverrides::default()
        };
        let nine = w.with(&o);
        assert_eq!(nine.mem_mib, 2 + 5, "4.5 MiB of items round up");
        assert_eq!(nine.cpu_ms, 10 + 13);
        let huge = WorkloadOverrides {
            items: Some(u64::MAX),
            ..WorkloadOverrides::default()
        };
        let e = w.with(&huge).validate().expect_err("over the bound");
        assert_eq!(e.field, "cpu_ms");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<Workload>(r#"{"cpu_ms":1,"cpu":2}"#).expect_err("unknown");
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
