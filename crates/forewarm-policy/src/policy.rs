//! The [`AppPolicy`] trait: the contract between a policy and whoever carries out its decisions.

/// Virtual time in milliseconds since the start of the observation.
pub type Millis = u64;

/// One minute in [`Millis`].
pub const MINUTE_MS: Millis = 60_000;
/// One hour in [`Millis`].
pub const HOUR_MS: Millis = 60 * MINUTE_MS;

/// What to do with a container that has just finished an invocation and is now idle.
///
/// Times are absolute. A container whose keep-alive has passed is removed; a floor set by
/// [`AppPolicy::on_minute`] can hold it longer (the later deadline always wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    /// Keep the container warm until `until`, then remove it.
    KeepAlive {
        /// Absolute removal time; `Millis::MAX` keeps it forever.
        until: Millis,
    },
    /// Remove the container now and have `containers` warm again from `at` until `until`.
    ///
    /// This is the hybrid-histogram move: unload through the head of the idle-time
    /// distribution, be back before the next request is likely. At `at` it acts as a
    /// [`WarmFloor`]. A new decision for the same application replaces a pending pre-warm.
    Prewarm {
        /// When the pre-warmed containers must be ready.
        at: Millis,
        /// When they are removed if nothing used them.
        until: Millis,
        /// How many containers (busy or idle) must exist at `at`.
        containers: u32,
    },
}

/// A lower bound on the number of containers an application keeps, busy or idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmFloor {
    /// At least this many containers exist; missing ones are pre-warmed now.
    pub containers: u32,
    /// The floor holds those containers until this time.
    pub until: Millis,
}

/// A demand model a policy asks its owner to fit off the hot path (see
/// [`AppPolicy::take_fit`]): the per-minute peak concurrency so far, oldest first, and how
/// many minutes to forecast after it.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRequest {
    /// Peak containers in use per past minute, oldest first; the last is the minute that
    /// ended at the tick that asked.
    pub history: Vec<f64>,
    /// Minutes to forecast.
    pub horizon: usize,
    /// The minute tick that asked (the forecast's first step is the minute it starts).
    pub asked_at: Millis,
}

/// A policy's state for one application.
///
/// The caller reports every arrival and every container that turns idle, in time order, and
/// calls [`AppPolicy::on_minute`] at each minute boundary when [`AppPolicy::wants_minutes`] says
/// so. Implementations see only what these calls told them: they cannot look ahead.
pub trait AppPolicy: Send {
    /// An invocation arrived at `now` (before it is placed on a container).
    fn on_arrival(&mut self, now: Millis);

    /// A container finished an invocation at `now` and is idle: decide its fate.
    fn on_idle(&mut self, now: Millis) -> IdleAction;

    /// A minute boundary at `now`: optionally ask for a floor of warm containers.
    fn on_minute(&mut self, _now: Millis) -> Option<WarmFloor> {
        None
    }

    /// Right after [`AppPolicy::on_arrival`]: optionally ask for containers for the arrivals
    /// that follow this one (a burst starting). Nothing predicted them ahead, so they are
    /// started now and serve only once started (see `AppPool::set_start_ms`).
    fn scale_out(&mut self, _now: Millis) -> Option<WarmFloor> {
        None
    }

    /// Whether this policy wants [`AppPolicy::on_minute`] calls (they cost time when unused).
    fn wants_minutes(&self) -> bool {
        false
    }

    /// A demand fit the policy waits for, asked at its last [`AppPolicy::on_minute`] (only a
    /// policy built with deferred fits asks: the live node, whose Predictor fits it off the
    /// request path). The owner fits it with [`crate::DemandForecaster`] and answers with
    /// [`AppPolicy::fitted`].
    fn take_fit(&mut self) -> Option<FitRequest> {
        None
    }

    /// The forecast for the [`FitRequest`] asked at `asked_at`, delivered at `now` (its steps
    /// for the minutes since are past). An answer to a request since replaced is ignored. May
    /// ask for a floor for the current minute, as [`AppPolicy::on_minute`] would have.
    fn fitted(&mut self, _now: Millis, _asked_at: Millis, _forecast: &[f64]) -> Option<WarmFloor> {
        None
    }

    /// The memory (MiB) of a container created now, given the predicted size class.
    ///
    /// Only the oracle overrides this: it knows what the invocations will need.
    fn container_mib(&self, predicted_mib: u32) -> u32 {
        predicted_mib
    }

    /// What the policy currently believes, in one line for operators (`/prediction`).
    fn describe(&self) -> String {
        String::new()
    }

    /// The class the policy has put this application in, and why, in a few words (the
    /// simulator's `--per-app` breakdown). A reason that starts with `cold` means the policy
    /// keeps the application cold on purpose, and says what keeping it warm would cost.
    fn assigned(&self) -> String {
        String::new()
    }
}

/// A policy behind a pointer is a policy: a pool can drive one it borrows (`&mut P`, the
/// simulator) or one chosen at run time (`Box<dyn AppPolicy>`, the node).
macro_rules! forward_policy {
    ($($ptr:ty),*) => {$(
        impl<P: AppPolicy + ?Sized> AppPolicy for $ptr {
            fn on_arrival(&mut self, now: Millis) {
                (**self).on_arrival(now);
            }
            fn on_idle(&mut self, now: Millis) -> IdleAction {
                (**self).on_idle(now)
            }
            fn on_minute(&mut self, now: Millis) -> Option<WarmFloor> {
                (**self).on_minute(now)
            }
            fn scale_out(&mut self, now: Millis) -> Option<WarmFloor> {
                (**self).scale_out(now)
            }
            fn wants_minutes(&self) -> bool {
                (**self).wants_minutes()
            }
            fn take_fit(&mut self) -> Option<FitRequest> {
                (**self).take_fit()
            }
            fn fitted(
                &mut self,
                now: Millis,
                asked_at: Millis,
                forecast: &[f64],
            ) -> Option<WarmFloor> {
                (**self).fitted(now, asked_at, forecast)
            }
            fn container_mib(&self, predicted_mib: u32) -> u32 {
                (**self).container_mib(predicted_mib)
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn assigned(&self) -> String {
                (**self).assigned()
            }
        }
    )*};
}

forward_policy!(&mut P, Box<P>);
