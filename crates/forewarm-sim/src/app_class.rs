//! The classes of applications the per-app breakdown groups by (`docs/simulator.md`):
//! timer-only applications, then by invocations in the measured window, as in the project's
//! evaluation notes.

use serde::Serialize;

/// An application's class in the breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum AppClass {
    /// Every function is timer-triggered.
    #[serde(rename = "timer")]
    Timer,
    /// 1–2 invocations measured.
    #[serde(rename = "1-2")]
    Rare,
    /// 3–10.
    #[serde(rename = "3-10")]
    Few,
    /// 11–100.
    #[serde(rename = "11-100")]
    Some,
    /// 101–1000 (one every 0.5–5 minutes over 8 hours).
    #[serde(rename = "101-1000")]
    Frequent,
    /// More than 1000.
    #[serde(rename = ">1000")]
    Busy,
}

impl AppClass {
    /// Every class, in report order.
    pub const ALL: [AppClass; 6] = [
        AppClass::Rare,
        AppClass::Few,
        AppClass::Some,
        AppClass::Frequent,
        AppClass::Busy,
        AppClass::Timer,
    ];

    /// The class of an application with `invocations` measured, timer-only or not.
    pub fn of(invocations: u64, timer_only: bool) -> Self {
        match invocations {
            _ if timer_only => AppClass::Timer,
            0..=2 => AppClass::Rare,
            3..=10 => AppClass::Few,
            11..=100 => AppClass::Some,
            101..=1000 => AppClass::Frequent,
            _ => AppClass::Busy,
        }
    }

    /// The label used in tables and CSV.
    pub fn label(self) -> &'static str {
        match self {
            AppClass::Timer => "timer",
            AppClass::Rare => "1-2",
            AppClass::Few => "3-10",
            AppClass::Some => "11-100",
            AppClass::Frequent => "101-1000",
            AppClass::Busy => ">1000",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_timers_win() {
        assert_eq!(AppClass::of(2, false), AppClass::Rare);
        assert_eq!(AppClass::of(3, false), AppClass::Few);
        assert_eq!(AppClass::of(100, false), AppClass::Some);
        assert_eq!(AppClass::of(1000, false), AppClass::Frequent);
        assert_eq!(AppClass::of(1001, false), AppClass::Busy);
        assert_eq!(AppClass::of(5000, true), AppClass::Timer);
    }
}
