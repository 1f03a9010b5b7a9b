//! The clairvoyant bound: knows, per minute, how many containers the application will need.

use crate::policy::{AppPolicy, IdleAction, MINUTE_MS, Millis, WarmFloor};

/// One future invocation as the oracle sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OracleInvocation {
    /// Arrival time.
    pub arrival: Millis,
    /// How long it occupies its container.
    pub busy_ms: Millis,
}

/// Keeps, during every minute, exactly as many containers as that minute's peak concurrency,
/// and none otherwise. With per-minute knowledge this serves every invocation warm with the
/// least idle time any minute-granular policy can reach: the bound nothing can beat.
///
/// It is built from the future, so it is not an online policy: only the simulator makes one.
#[derive(Debug, Clone)]
pub struct Oracle {
    /// (minute, peak concurrency) for every minute with a non-zero peak, in order.
    peaks: Vec<(u64, u32)>,
    cursor: usize,
    container_mib: u32,
}

impl Oracle {
    /// Build from all invocations of the application (any order), whose containers need
    /// `container_mib` of memory at most.
    pub fn new(invocations: &[OracleInvocation], container_mib: u32) -> Self {
        // +1 at arrival, -1 at end; an end frees its container for an arrival at the same time.
        let mut events: Vec<(Millis, i32)> = Vec::with_capacity(invocations.len() * 2);
        for inv in invocations {
            events.push((inv.arrival, 1));
            events.push((inv.arrival + inv.busy_ms, -1));
        }
        events.sort_unstable();
        let mut peaks: Vec<(u64, u32)> = Vec::new();
        let mut raise = |minute: u64, level: u32| match peaks.last_mut() {
            Some((m, peak)) if *m == minute => *peak = (*peak).max(level),
            _ => peaks.push((minute, level)),
        };
        let mut current: u32 = 0;
        let mut last_minute: Option<u64> = None;
        for (time, delta) in events {
            let minute = time / MINUTE_MS;
            // Minutes spanned while `current` invocations were running carry that level.
            if current > 0 {
                let from = last_minute.map_or(minute, |m| m + 1);
                for m in from..=minute {
                    raise(m, current);
                }
            }
            current = current.saturating_add_signed(delta);
            if current > 0 {
                raise(minute, current);
            }
            last_minute = Some(minute);
        }
        Self {
            peaks,
            cursor: 0,
            container_mib,
        }
    }

    /// Peak concurrency of `minute` (0 when idle).
    pub fn peak(&self, minute: u64) -> u32 {
        self.peaks
            .binary_search_by_key(&minute, |(m, _)| *m)
            .map_or(0, |i| self.peaks[i].1)
    }
}

impl AppPolicy for Oracle {
    fn on_arrival(&mut self, _now: Millis) {}

    fn on_idle(&mut self, now: Millis) -> IdleAction {
        // Nothing needs to outlive the current minute's floor.
        IdleAction::KeepAlive { until: now }
    }

    fn on_minute(&mut self, now: Millis) -> Option<WarmFloor> {
        let minute = now / MINUTE_MS;
        while self
            .peaks
            .get(self.cursor)
            .is_some_and(|(m, _)| *m < minute)
        {
            self.cursor += 1;
        }
        match self.peaks.get(self.cursor) {
            Some((m, peak)) if *m == minute => Some(WarmFloor {
                containers: *peak,
                until: (minute + 1) * MINUTE_MS,
            }),
            _ => None,
        }
    }

    fn wants_minutes(&self) -> bool {
        true
    }

    fn container_mib(&self, _predicted_mib: u32) -> u32 {
        self.container_mib
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_count_overlaps_and_carry_across_minutes() {
        let inv = |arrival, busy_ms| OracleInvocation { arrival, busy_ms };
        let o = Oracle::new(
            &[
                inv(1_000, 1_000),
                inv(1_500, 130_000), // runs through minutes 0, 1 and 2
                inv(1_600, 100),
                inv(70_000, 1_000),
            ],
            128,
        );
        assert_eq!(o.peak(0), 3);
        assert_eq!(o.peak(1), 2);
        assert_eq!(o.peak(2), 1);
        assert_eq!(o.peak(3), 0);
    }

    #[test]
    fn back_to_back_invocations_share_one_container() {
        let inv = |arrival, busy_ms| OracleInvocation { arrival, busy_ms };
        let o = Oracle::new(&[inv(0, 1_000), inv(1_000, 1_000)], 128);
        assert_eq!(o.peak(0), 1);
    }
}
