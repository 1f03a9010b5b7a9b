//! Readiness: whether the node can keep and serve what it is given (`GET /readyz`).
//!
//! A node whose store fails to write (disk full, I/O errors), whose container engine does not
//! answer, or whose replicated state stopped or has no leader must not look healthy to a load
//! balancer: it would accept work it cannot run or keep. `/livez` says the process answers;
//! `/readyz` says 503 with the reasons until they clear (the next store write or engine call
//! that succeeds clears its fault).

use std::sync::Mutex;

/// A part of the node whose faults are reported, as they are observed on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The node's store (samples, invocation ids).
    Store,
    /// The container engine (Docker), as the pool's reconcile lists containers.
    Engine,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Store => "store",
            Part::Engine => "container engine",
        }
    }
}

/// The faults a node has seen and not yet seen cleared, by part.
#[derive(Debug, Default)]
pub struct Health {
    faults: Mutex<[Option<String>; 2]>,
}

impl Health {
    /// A call to `part` failed with `error`.
    pub fn failed(&self, part: Part, error: impl std::fmt::Display) {
        self.lock()[part as usize] = Some(format!("{}: {error}", part.name()));
    }

    /// A call to `part` succeeded.
    pub fn ok(&self, part: Part) {
        self.lock()[part as usize] = None;
    }

    /// Whether `part` has a fault not yet cleared.
    pub fn failing(&self, part: Part) -> bool {
        self.lock()[part as usize].is_some()
    }

    /// Why the parts that are not usable are not.
    pub fn faults(&self) -> Vec<String> {
        self.lock().iter().flatten().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Option<String>; 2]> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t01_a_failure_is_reported_until_a_call_to_that_part_succeeds() {
        let h = Health::default();
        assert!(h.faults().is_empty());
        h.failed(Part::Store, "No space left on device (os error 28)");
        h.failed(Part::Engine, "connection refused");
        assert_eq!(
            h.faults(),
            [
                "store: No space left on device (os error 28)",
                "container engine: connection refused"
            ]
        );
        h.ok(Part::Store);
        assert_eq!(h.faults(), ["container engine: connection refused"]);
        h.ok(Part::Engine);
        assert!(h.faults().is_empty());
    }
}
