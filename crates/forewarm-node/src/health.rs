//! Readiness: whether the node can keep what it is given (`GET /readyz`).
//!
//! A node whose store fails to write (disk full, I/O errors) or whose replicated state stopped
//! on a storage error must not look healthy to a load balancer: it would accept work and lose
//! what it cannot write. `/healthz` still says the process answers; `/readyz` says 503 with
//! the reasons until the store writes again (the next write that succeeds clears its fault).

use std::sync::Mutex;

/// The store faults a node has seen and not yet seen cleared.
#[derive(Debug, Default)]
pub struct Health {
    store: Mutex<Option<String>>,
}

impl Health {
    /// A write to the node's store failed with `error`.
    pub fn store_failed(&self, error: impl std::fmt::Display) {
        *self.lock() = Some(format!("store: {error}"));
    }

    /// A write to the node's store succeeded.
    pub fn store_ok(&self) {
        self.lock().take();
    }

    /// Why the store is not usable, if it is not.
    pub fn store_fault(&self) -> Option<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t01_a_failed_write_is_reported_until_one_succeeds() {
        let h = Health::default();
        assert_eq!(h.store_fault(), None);
        h.store_failed("No space left on device (os error 28)");
        assert_eq!(
            h.store_fault().as_deref(),
            Some("store: No space left on device (os error 28)")
        );
        h.store_ok();
        assert_eq!(h.store_fault(), None);
    }
}
