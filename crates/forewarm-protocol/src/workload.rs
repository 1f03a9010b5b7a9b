//! What one execution of a code type does, per-request changes to it, and what it measured.

use serde::{Deserialize, Serialize};

/// Upper bounds that keep one request from taking the container down.
const MAX_CPU_MS: u64 = 600_000;
const MAX_MEM_MIB: u64 = 16_384;
const MAX_IO_KIB: u64 = 4 * 1024 * 1024;
const MAX_SLEEP_MS: u64 = 600_000;
const MAX_INIT_MS: u64 = 600_000;

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

impl Workload {
    /// This workload with `o` applied.
    pub fn with(&self, o: &WorkloadOverrides) -> Self {
        Self {
            cpu_ms: o.cpu_ms.unwrap_or(self.cpu_ms),
            mem_mib: o.mem_mib.unwrap_or(self.mem_mib),
            io_kib: o.io_kib.unwrap_or(self.io_kib),
            init_ms: self.init_ms,
            sleep_ms: o.sleep_ms.unwrap_or(self.sleep_ms),
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
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<Workload>(r#"{"cpu_ms":1,"cpu":2}"#).expect_err("unknown");
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
