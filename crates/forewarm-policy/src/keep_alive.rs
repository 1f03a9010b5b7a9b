//! Fixed keep-alive: the OpenWhisk / Lambda style baseline, and `no-unloading` as its limit.

use crate::policy::{AppPolicy, IdleAction, Millis};

/// Keeps every idle container for a fixed time, never pre-warms.
///
/// `keep_ms = Millis::MAX` is the `no-unloading` policy: the cold-start floor and waste ceiling
/// of any policy that does not pre-warm.
#[derive(Debug, Clone, Copy)]
pub struct FixedKeepAlive {
    keep_ms: Millis,
}

impl FixedKeepAlive {
    /// Keep idle containers for `keep_ms` milliseconds.
    pub fn new(keep_ms: Millis) -> Self {
        Self { keep_ms }
    }

    /// Never remove an idle container.
    pub fn forever() -> Self {
        Self::new(Millis::MAX)
    }
}

impl AppPolicy for FixedKeepAlive {
    fn on_arrival(&mut self, _now: Millis) {}

    fn on_idle(&mut self, now: Millis) -> IdleAction {
        IdleAction::KeepAlive {
            until: now.saturating_add(self.keep_ms),
        }
    }

    fn describe(&self) -> String {
        if self.keep_ms == Millis::MAX {
            String::from("never unloads an idle container")
        } else {
            format!("keeps every idle container {} s", self.keep_ms / 1_000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_for_the_configured_time() {
        let mut p = FixedKeepAlive::new(600_000);
        p.on_arrival(0);
        assert_eq!(p.on_idle(1_000), IdleAction::KeepAlive { until: 601_000 });
    }

    #[test]
    fn forever_never_overflows() {
        let mut p = FixedKeepAlive::forever();
        assert_eq!(p.on_idle(5), IdleAction::KeepAlive { until: Millis::MAX });
    }
}
