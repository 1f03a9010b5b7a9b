//! Policy time: the policies think in [`Millis`]; the node runs on a real clock scaled by
//! `time_scale`, so a demo or a time-compressed trace replay looks to the policy like the
//! original timeline (at scale 60 one real second is one policy minute).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use forewarm_policy::Millis;

/// A scaled monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct PolicyClock {
    origin: Instant,
    scale: f64,
}

impl PolicyClock {
    /// A clock starting now, running `scale` times faster than real time.
    pub fn new(scale: f64) -> Self {
        Self {
            origin: Instant::now(),
            scale,
        }
    }

    /// A clock whose policy time 0 is `origin` (a test's fixed start).
    pub fn starting_at(origin: Instant, scale: f64) -> Self {
        Self { origin, scale }
    }

    /// Policy milliseconds since the node started.
    pub fn now(&self) -> Millis {
        self.at(Instant::now())
    }

    /// Policy milliseconds at `instant`.
    pub fn at(&self, instant: Instant) -> Millis {
        (instant.saturating_duration_since(self.origin).as_secs_f64() * 1e3 * self.scale) as Millis
    }

    /// A real duration in policy milliseconds.
    pub fn scale_real(&self, real: Duration) -> Millis {
        (real.as_secs_f64() * 1e3 * self.scale) as Millis
    }

    /// A policy duration in real time.
    pub fn to_real(&self, policy_ms: Millis) -> Duration {
        Duration::from_secs_f64(policy_ms as f64 / 1e3 / self.scale)
    }
}

/// Wall-clock milliseconds since the Unix epoch (sample timestamps).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_both_ways() {
        let clock = PolicyClock::new(60.0);
        assert_eq!(clock.scale_real(Duration::from_secs(1)), 60_000);
        assert_eq!(clock.to_real(60_000), Duration::from_secs(1));
        let later = Instant::now() + Duration::from_millis(500);
        assert!(clock.at(later) >= 30_000);
    }
}
