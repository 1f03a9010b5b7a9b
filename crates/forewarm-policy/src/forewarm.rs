//! forewarm's predictive policy.
//!
//! Four mechanisms, each where it pays:
//! - **A price for cold starts** (`forewarm`), or an idle memory budget (`forewarm-keep<P>`,
//!   `forewarm-<N>mib`). Under a price, each application's window ends where the cold starts
//!   it saves stop paying for the idle memory-time they cost (one marginal rate across all
//!   applications); an application nothing pays for is kept cold and says so
//!   ([`AppPolicy::assigned`]). Under a budget, applications whose declared memory × peak
//!   concurrency exceeds it are given up to a cheap window.
//! - **Idle-time windows** for every application. A container that turns idle is the first
//!   one the next arrival reuses (most recently used first), so the idle time that matters is
//!   from a container turning idle to the arrival that takes it. The exact idle times of the
//!   recent past are kept; the interval holding them, widened by its own spread (a timer's
//!   stays tight, an irregular app's grows past anything seen), is the window in which the
//!   next arrival is expected. If the window starts late enough, the
//!   container is unloaded and pre-warmed just before it (as many containers as are idle at
//!   once, so a burst finds its containers again); otherwise it is kept alive to the window's
//!   end.
//!   Unlike a fixed-range histogram, this has no out-of-bounds case and resolves periods to the
//!   millisecond, so a timer-driven application costs a minute or two of idle time per period.
//! - **Scale out instead of holding spares** ([`Spares`]; `forewarm` does it for busy
//!   applications whose containers turn over within a minute, `forewarm-price<H>h-scaleout`
//!   for all). Only the container that turns idle while no other is idle holds the idle-time
//!   window (and only its idle times are learnt); one that turns idle while another is idle is
//!   spare and kept a minute. When an arrival takes the last idle container of an application
//!   that ran several at once within its concurrency history, the policy asks for more
//!   ([`AppPolicy::scale_out`]): that peak, or one more than run now under a forecast floor.
//!   They serve once started, so a burst pays a start's worth of memory per container instead
//!   of holding them through every gap. `forewarm-price<H>h-priced` chooses per application
//!   by the price: it replays the application's arrivals against a holding and a scaling-out
//!   shadow pool and scales out while the idle memory saved is worth more than the cold
//!   starts added.
//! - **Demand forecasts** for busy applications: the per-minute peak concurrency is forecast
//!   with augurs (MSTL when a period is detected, ETS otherwise) and held as a floor of warm
//!   containers, so a ramp is met by containers that already exist.

use std::collections::VecDeque;

use crate::forecast::DemandForecaster;
use crate::policy::{AppPolicy, FitRequest, IdleAction, MINUTE_MS, Millis, WarmFloor};

/// Default of [`ForewarmConfig::idle_budget_mib`]: the budget `forewarm` uses when it has no
/// population to calibrate on (see `PolicySpec`'s `IdleBudget::KeepShare`).
pub const DEFAULT_IDLE_BUDGET_MIB: u32 = 900;

/// Default reference memory of the cold-start price (see [`ForewarmConfig::worth_mib_ms`]) when
/// there is no population to take the median from.
pub const DEFAULT_REFERENCE_MIB: u32 = 256;

/// Idle containers tracked at once; beyond it the oldest is forgotten.
const MAX_IDLE_TRACKED: usize = 4096;

/// Parameters of [`Forewarm`].
#[derive(Debug, Clone, PartialEq)]
pub struct ForewarmConfig {
    /// Share of recent idle times the window may leave out (each is a cold start); 0 covers
    /// all of them, and the spread widening below covers what has not been seen yet.
    pub target_miss: f64,
    /// Idle times remembered.
    pub samples: usize,
    /// Fewer idle times than this: `default_keep_ms` applies.
    pub min_samples: usize,
    /// Keep-alive while the application's pattern is unknown.
    pub default_keep_ms: Millis,
    /// Speculative idle memory one application may hold: when its declared memory times its
    /// recent peak concurrency exceeds this, keeping it warm is too expensive and the policy
    /// settles for covering `1 - give_up_miss` of its idle times (p75 of per-app cold starts
    /// tolerates a hard quarter; the costliest apps are the ones to give up first).
    pub idle_budget_mib: f64,
    /// Miss share accepted for applications over the budget.
    pub give_up_miss: f64,
    /// The price of a cold start in idle memory-time (MiB·ms): when set, it replaces the
    /// budget. Each application's window is the one (among covers of all, 99, 95, 90, 80 and
    /// 50% of its recent idle times, or none) that maximises cold starts saved minus idle
    /// MiB·ms / `worth_mib_ms` on those idle times: the greedy across applications at one
    /// marginal rate (cold starts saved per MiB·s), so memory goes where it saves the most.
    /// `forewarm` sets it to what a typical application (median memory) costs for one hour:
    /// the range at which hybrid-histogram-1h keeps any application warm.
    pub worth_mib_ms: Option<f64>,
    /// Longest window kept per idle period; wider windows are clipped at this length.
    pub max_window_ms: Millis,
    /// Unloading for less than this is not worth a reload: keep alive instead.
    pub min_unload_ms: Millis,
    /// Margin added to both ends of the window, as a share of its end.
    pub margin: f64,
    /// The window is widened below by this share of its width (within the budget)...
    pub spread_below: f64,
    /// ...and above by this share.
    pub spread_above: f64,
    /// Mean peak concurrency (per minute) above which demand is forecast.
    pub busy_concurrency: f64,
    /// Minutes of concurrency history kept for the forecast.
    pub history_minutes: usize,
    /// Minutes between checks of the forecast against what happened (and between attempts to
    /// fit one while the application is not busy).
    pub refit_minutes: usize,
    /// Minutes one fit forecasts; the model is refitted when they run out. In between, each
    /// check shifts the rest of the forecast by its error when the minutes since the last
    /// check left it by more than noise (see `drift`). Fitting at every check made augurs
    /// 80% of the simulator's time for `forewarm`.
    pub forecast_minutes: usize,
    /// Factor applied to the forecast peak before rounding up.
    pub floor_headroom: f64,
    /// What becomes of a container that turns idle while another container of the
    /// application is idle (a *spare*); see [`Spares`].
    pub spares: Spares,
    /// How long a spare is kept, and how long the containers of a scale-out are held, where
    /// [`Spares`] says the application scales out.
    pub spare_keep_ms: Millis,
    /// How long a container takes to start, as the shadow pools of [`Spares::Priced`] assume
    /// (a scale-out's containers serve only after it; the simulator's `--cold-start-ms` is 1 s).
    pub start_ms: Millis,
    /// [`Spares::Priced`]: the shadow pools' tallies are halved every this many minutes, so the
    /// choice follows an application that changes.
    pub shadow_half_life_minutes: u64,
    /// Ask the owner to fit the demand forecast ([`AppPolicy::take_fit`]) instead of fitting it
    /// inside [`AppPolicy::on_minute`]: the live node's Predictor fits it off the request path
    /// and hands it back ([`AppPolicy::fitted`]); the simulator fits inline. The same
    /// [`DemandForecaster`] on the same history either way.
    pub deferred_fits: bool,
}

/// Hold spare containers through the idle-time window, or scale out instead.
///
/// Scaling out: only the *lead* (a container that turns idle while no other container of the
/// application is idle) holds the idle-time window and teaches it; a spare is kept
/// `ForewarmConfig::spare_keep_ms`. When an arrival takes the last idle container, the
/// application asks for more (`AppPolicy::scale_out`, held as long; see `scale_out_to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spares {
    /// Every idle container holds the window (`forewarm-price<H>h-hold`).
    Hold,
    /// Scale out while a demand forecast floor holds the application's level and its
    /// containers turn over within a spare's keep (`turns_over`); hold otherwise (`forewarm`
    /// = `forewarm-price4h`). There a released spare is soon replaced by a container that
    /// finishes or by a scale-out, and one more container than run now follows a ramp the
    /// floor has not caught yet: on the ten train runs the busiest class (> 1000 invocations
    /// in 8 h) got 8-33% fewer cold starts for 2-9% less idle memory than holding spares (the
    /// 101-1000 class 0-5% more cold starts for 0-2% less; the others unchanged). Scaling out
    /// everywhere traded cold starts for memory instead (docs/benchmarks.md, issue 14
    /// sessions 3 and 4).
    ScaleOutWhenBusy,
    /// Scale out always (`forewarm-price<H>h-scaleout`, issue 14 session 3).
    ScaleOut,
    /// As [`Spares::ScaleOutWhenBusy`] under a forecast floor; elsewhere choose per
    /// application by the price (`forewarm-price<H>h-priced`, issue 14 session 5): the policy
    /// replays the application's own arrivals and completions against two shadow pools, one
    /// holding spares and one scaling out ([`Shadow`]), and scales out while the idle
    /// memory-time holding spares costs more than the cold starts it saves are worth at
    /// `ForewarmConfig::worth_mib_ms`.
    Priced,
}

impl Default for ForewarmConfig {
    fn default() -> Self {
        Self {
            target_miss: 0.0,
            samples: 128,
            min_samples: 3,
            default_keep_ms: 30 * MINUTE_MS,
            idle_budget_mib: f64::from(DEFAULT_IDLE_BUDGET_MIB),
            give_up_miss: 0.8,
            worth_mib_ms: None,
            max_window_ms: 8 * 60 * MINUTE_MS,
            min_unload_ms: 2 * MINUTE_MS,
            margin: 0.03,
            spread_below: 1.0,
            spread_above: 1.5,
            busy_concurrency: 1.5,
            history_minutes: 120,
            refit_minutes: 15,
            forecast_minutes: 120,
            floor_headroom: 1.2,
            spares: Spares::Hold,
            spare_keep_ms: MINUTE_MS,
            start_ms: 1_000,
            shadow_half_life_minutes: 240,
            deferred_fits: false,
        }
    }
}

/// The shortest interval of `sorted` (ascending, non-empty) that leaves out at most `miss` of
/// its values.
fn shortest_cover(sorted: &[Millis], miss: f64) -> (Millis, Millis) {
    let n = sorted.len();
    let cover = ((1.0 - miss) * n as f64).ceil().clamp(1.0, n as f64) as usize;
    (0..=n - cover)
        .map(|i| (sorted[i], sorted[i + cover - 1]))
        .min_by_key(|(a, b)| b - a)
        .unwrap_or((sorted[0], sorted[n - 1]))
}

/// One container of a [`Shadow`] pool: idle memory is counted from `from`, it serves from
/// `ready` (a scale-out's, after a start), and is gone after `until`.
#[derive(Debug, Clone, Copy)]
struct ShadowContainer {
    from: Millis,
    ready: Millis,
    until: Millis,
    /// Turned idle after an execution (not started by a scale-out): the containers the
    /// policy itself tracks, and the only ones that make a container turning idle a spare.
    ran: bool,
}

/// A model of the application's pool under one way of treating spares, fed with the
/// application's own arrivals and completions (which do not depend on the policy): what
/// would have been cold, and how much idle container-time it would have held. Two of them
/// ([`Spares::Priced`]) price holding spares against scaling out for this application.
#[derive(Debug, Clone, Default)]
struct Shadow {
    idle: Vec<ShadowContainer>,
    /// Arrivals that found no ready idle container.
    cold: f64,
    /// Idle container-ms held.
    idle_ms: f64,
}

impl Shadow {
    /// An arrival at `now`: takes the most recent ready container still held, if any (the
    /// pool's order); containers past their end are gone. Returns how many are still held.
    fn arrive(&mut self, now: Millis) -> usize {
        let mut spent = 0.0;
        self.idle.retain(|c| {
            let gone = c.until < now;
            if gone {
                spent += c.until.saturating_sub(c.from) as f64;
            }
            !gone
        });
        self.idle_ms += spent;
        match self.idle.iter().rposition(|c| c.ready <= now) {
            Some(k) => {
                let c = self.idle.remove(k);
                self.idle_ms += now.saturating_sub(c.from) as f64;
            }
            None => self.cold += 1.0,
        }
        self.idle.len()
    }

    /// Whether a container that turned idle after an execution is still held at `now` (the
    /// policy's view: it does not track a scale-out's containers).
    fn holds(&self, now: Millis) -> bool {
        self.idle.iter().any(|c| c.ran && c.until >= now)
    }

    /// A container turns idle at `now` and is held as `action` says (from its pre-warm on).
    fn idle(&mut self, now: Millis, action: IdleAction) {
        let (from, until) = match action {
            IdleAction::KeepAlive { until } => (now, until),
            IdleAction::Prewarm { at, until, .. } => (at, until),
        };
        if until > from {
            self.idle.push(ShadowContainer {
                from,
                ready: from,
                until,
                ran: true,
            });
        }
    }

    /// Containers that turned idle after an execution and are held at `now` are held at
    /// least until `until`.
    fn extend(&mut self, now: Millis, until: Millis) {
        for c in &mut self.idle {
            if c.ran && c.until >= now {
                c.until = c.until.max(until);
            }
        }
    }

    /// `n` containers requested at `now`, serving from `now + start_ms` until `until`.
    fn start(&mut self, n: u32, now: Millis, start_ms: Millis, until: Millis) {
        for _ in 0..n {
            self.idle.push(ShadowContainer {
                from: now,
                ready: now + start_ms,
                until,
                ran: false,
            });
        }
    }

    fn halve(&mut self) {
        self.cold /= 2.0;
        self.idle_ms /= 2.0;
    }
}

/// A container the policy believes idle.
#[derive(Debug, Clone, Copy)]
struct IdleContainer {
    /// When it turned idle.
    since: Millis,
    /// Until when its own decision holds it.
    until: Millis,
    /// Kept as a spare (see `ForewarmConfig::spare_keep_ms`): its idle time says nothing about
    /// the window the first idle container needs, so it is not learnt.
    spare: bool,
}

/// forewarm's state for one application.
#[derive(Debug, Clone)]
pub struct Forewarm {
    config: ForewarmConfig,
    busy: u32,
    /// Peak concurrency of the current busy period, and of the last finished one.
    burst_peak: u32,
    last_burst_peak: u32,
    /// Containers that no arrival has taken since they turned idle, most recent last.
    idle_since: Vec<IdleContainer>,
    /// Containers to ask for at the next `scale_out`.
    scale_to: Option<u32>,
    idle_times: VecDeque<Millis>,
    /// The same idle times, ascending (kept in step so a window needs no sort).
    sorted: Vec<Millis>,
    /// Samples added since `window` was computed.
    stale: usize,
    window: Option<(Millis, Millis)>,
    /// Peak concurrency per past minute, oldest first.
    concurrency: VecDeque<f64>,
    /// The sum of `concurrency`'s peaks, kept as they come and go (whole numbers, so exact):
    /// read at every arrival and completion of a floored application (`turns_over`), where
    /// summing the history each time was a quarter of the simulator's time.
    peaks_in_history: u64,
    minute_peak: u32,
    /// Arrivals in the minutes of `concurrency`, and in the current minute.
    history_arrivals: u64,
    arrivals_per_minute: VecDeque<u32>,
    minute_arrivals: u32,
    /// Forecast peaks for the coming minutes, next first.
    plan: VecDeque<f64>,
    /// Forecast peaks of the minutes since the last check, oldest first (their actual peaks
    /// are the newest entries of `concurrency`).
    planned: Vec<f64>,
    forecaster: DemandForecaster,
    /// With [`ForewarmConfig::deferred_fits`]: the fit asked for at the last check and not yet
    /// taken by the owner, and the tick of the one awaited.
    fit_asked: Option<FitRequest>,
    awaiting_fit: Option<Millis>,
    /// Memory of one container of this application.
    declared_mib: f64,
    /// Highest concurrency seen so far (the cost measure the budget is calibrated on).
    peak_seen: u32,
    /// Whether `window` was computed for an application over its idle budget.
    window_gave_up: bool,
    /// With a price: the share of recent idle times the window covers (0: kept cold), and the
    /// cold starts saved per idle MiB·s of covering all of them.
    priced: Option<(f64, f64)>,
    /// [`Spares::Priced`]: the application's pool replayed holding spares, and scaling out.
    shadow_hold: Shadow,
    shadow_scale: Shadow,
}

impl Forewarm {
    /// A fresh application whose containers need `declared_mib` each.
    pub fn new(config: ForewarmConfig, declared_mib: f64) -> Self {
        Self {
            idle_times: VecDeque::with_capacity(config.samples),
            sorted: Vec::with_capacity(config.samples),
            concurrency: VecDeque::with_capacity(config.history_minutes),
            peaks_in_history: 0,
            arrivals_per_minute: VecDeque::with_capacity(config.history_minutes),
            history_arrivals: 0,
            minute_arrivals: 0,
            config,
            busy: 0,
            burst_peak: 0,
            last_burst_peak: 0,
            idle_since: Vec::new(),
            scale_to: None,
            stale: 0,
            window: None,
            minute_peak: 0,
            plan: VecDeque::new(),
            planned: Vec::new(),
            forecaster: DemandForecaster::default(),
            fit_asked: None,
            awaiting_fit: None,
            declared_mib,
            peak_seen: 1,
            window_gave_up: false,
            priced: None,
            shadow_hold: Shadow::default(),
            shadow_scale: Shadow::default(),
        }
    }

    /// The window `(from, to)` in which the next arrival is expected, measured from the start
    /// of an idle period; `None` while there is too little history.
    pub fn window(&mut self) -> Option<(Millis, Millis)> {
        let n = self.idle_times.len();
        if n < self.config.min_samples {
            return None;
        }
        let give_up = self.config.worth_mib_ms.is_none() && self.over_budget();
        if self.window.is_none() || self.stale * 8 >= n || give_up != self.window_gave_up {
            self.window_gave_up = give_up;
            let sorted = std::mem::take(&mut self.sorted);
            self.window = Some(match self.config.worth_mib_ms {
                Some(worth) => self.priced_window(&sorted, worth),
                None => self.compute_window(&sorted),
            });
            self.sorted = sorted;
            self.stale = 0;
        }
        self.window
    }

    /// The window covering all of `sorted`, widened by its spread for idle times not seen yet.
    fn widened(&self, sorted: &[Millis]) -> (Millis, Millis) {
        let c = &self.config;
        let (lo, hi) = shortest_cover(sorted, c.target_miss);
        let spread = (hi - lo) as f64;
        let margin = (hi as f64 * c.margin) as Millis + 1_000;
        let hi = hi + (spread * c.spread_above) as Millis + margin;
        let lo = lo.saturating_sub((spread * c.spread_below) as Millis + margin);
        (lo, hi.min(lo + c.max_window_ms))
    }

    /// The window that saves the most cold starts net of their price in idle memory-time.
    ///
    /// The start is the widened window's; the end is the idle time `e` among those seen that
    /// maximises (idle times in `[start, e]`) − (idle MiB·ms spent up to `e`) / worth: the
    /// last idle time whose marginal cold starts saved per MiB·ms still beats the price (a
    /// tail of long idle times that is not worth holding for is cut, the cheap head is kept).
    /// When that is the longest idle time seen, the end is widened as in [`Self::widened`]
    /// (insurance for idle times not seen yet); when nothing pays, the application is kept
    /// cold.
    fn priced_window(&mut self, sorted: &[Millis], worth_mib_ms: f64) -> (Millis, Millis) {
        let c = &self.config;
        let per_ms = self.declared_mib / worth_mib_ms;
        let full = self.widened(sorted);
        let lo = full.0;
        let keep = lo < c.min_unload_ms;
        let start = if keep { 0 } else { lo };
        // Idle times that end before the start are cold whatever the end; the others cost
        // (min(s, e) − start) each.
        let inside = &sorted[sorted.partition_point(|s| *s < start)..];
        let n = inside.len();
        let (mut best_value, mut best_k) = (0.0, 0);
        let mut below = 0.0; // Σ (s − start) over the first k idle times
        for (k, &e) in inside.iter().enumerate() {
            let hits = (k + 1) as f64;
            let cost = below + (e - start) as f64 * (n - k) as f64;
            let value = hits - per_ms * cost;
            if value >= best_value {
                (best_value, best_k) = (value, k + 1);
            }
            below += (e - start) as f64;
        }
        let total_idle: f64 = below;
        let all = n as f64 / (total_idle * self.declared_mib / 1000.0).max(1e-9);
        if best_k == 0 {
            self.priced = Some((0.0, all));
            return (0, 0);
        }
        let cover = best_k as f64 / sorted.len() as f64;
        self.priced = Some((if best_k == n { 1.0 } else { cover.min(0.999) }, all));
        if best_k == n {
            // Widen past the longest idle time only when the tail's hazard pays: with an
            // exponential tail, each further ms saves 1 / (mean excess over the median) cold
            // starts per container-ms.
            let tail = &inside[n / 2..];
            let excess = tail.iter().map(|s| (s - tail[0]) as f64).sum::<f64>()
                / (tail.len().max(2) - 1) as f64;
            if excess * per_ms <= 1.0 {
                return full;
            }
            let e = inside[n - 1];
            return (lo, e + (e as f64 * c.margin) as Millis + 1_000);
        }
        let e = inside[best_k - 1];
        let margin = (e as f64 * c.margin) as Millis + 1_000;
        (lo, e + margin)
    }

    fn compute_window(&self, sorted: &[Millis]) -> (Millis, Millis) {
        let (miss, below, above) = if self.window_gave_up {
            (self.config.give_up_miss, 0.0, 0.0)
        } else {
            let c = &self.config;
            (c.target_miss, c.spread_below, c.spread_above)
        };
        let (lo, hi) = shortest_cover(sorted, miss);
        // Widen by the spread seen: a timer (tight spread) keeps a tight window, an irregular
        // app gets room for idle times beyond any seen yet. Widening the end is cheap: it costs
        // idle time only when an idle time exceeds the old end, the very miss it prevents.
        let spread = (hi - lo) as f64;
        let margin = (hi as f64 * self.config.margin) as Millis + 1_000;
        let hi = hi + (spread * above) as Millis + margin;
        let lo = lo.saturating_sub((spread * below) as Millis + margin);
        // Clip over-wide windows around their start: better some misses than hours of waste.
        (lo, hi.min(lo + self.config.max_window_ms))
    }

    /// Whether keeping this application warm costs more idle memory than its budget.
    fn over_budget(&self) -> bool {
        self.declared_mib * f64::from(self.peak_seen) > self.config.idle_budget_mib
    }

    fn demand_floor(&mut self, now: Millis) -> Option<WarmFloor> {
        let expected = self.plan.pop_front()?;
        self.planned.push(expected);
        // With a price, the floor is the forecast peak itself: containers above it are held
        // by their own priced idle windows, so headroom would pay twice for the same peaks.
        let containers = if self.config.worth_mib_ms.is_some() {
            expected.ceil() as u32
        } else {
            (expected * self.config.floor_headroom).ceil() as u32
        };
        (containers > 0).then_some(WarmFloor {
            containers,
            until: now + MINUTE_MS,
        })
    }

    /// At a check: refit when the forecast has run out; otherwise, when the minutes since the
    /// last check left it by more than noise, shift the rest of it by their mean error (the
    /// level update an ETS refit would make, without the fit).
    fn check_forecast(&mut self, now: Millis) {
        if self.plan.is_empty() || self.planned.len() > self.concurrency.len() {
            self.planned.clear();
            self.refit(now);
            return;
        }
        let from = self.concurrency.len() - self.planned.len();
        let actual = &self.concurrency.make_contiguous()[from..];
        if let Some(bias) = drift(&self.planned, actual) {
            for p in &mut self.plan {
                *p = (*p + bias).max(0.0);
            }
        }
        self.planned.clear();
    }

    /// How long a spare is kept when the application scales out now (see [`Spares`]); `None`
    /// when every idle container holds the window.
    fn spare_keep(&self) -> Option<Millis> {
        let scale_out = match self.config.spares {
            Spares::Hold => false,
            Spares::ScaleOutWhenBusy => !self.plan.is_empty() && self.turns_over(),
            Spares::ScaleOut => true,
            Spares::Priced if !self.plan.is_empty() => self.turns_over(),
            Spares::Priced => self.scaling_out_pays(),
        };
        scale_out.then_some(self.config.spare_keep_ms)
    }

    /// [`Spares::Priced`]: whether, on this application's recent arrivals, scaling out saved
    /// more idle memory-time than the cold starts it added are worth at the price (holding
    /// while neither shadow has told them apart).
    fn scaling_out_pays(&self) -> bool {
        let (hold, scale) = (&self.shadow_hold, &self.shadow_scale);
        let saved_mib_ms = (hold.idle_ms - scale.idle_ms) * self.declared_mib;
        let worth = self.config.worth_mib_ms.unwrap_or(f64::INFINITY);
        saved_mib_ms > 0.0 && saved_mib_ms > (scale.cold - hold.cold) * worth
    }

    /// [`Spares::Priced`]: replay an arrival at `now` in both shadow pools (after `busy`
    /// counts it). The scaling-out pool asks, as `on_arrival` does, for `scale_out_to`'s
    /// containers when the arrival leaves it none idle.
    fn shadow_arrival(&mut self, now: Millis) {
        self.shadow_hold.arrive(now);
        let left = self.shadow_scale.arrive(now);
        if !self.shadow_scale.holds(now)
            && let Some(want) = self.scale_out_to()
        {
            let have = self.busy as usize + left;
            let more = (want as usize).saturating_sub(have) as u32;
            let (start, keep) = (self.config.start_ms, self.config.spare_keep_ms);
            self.shadow_scale.start(more, now, start, now + keep);
        }
    }

    /// [`Spares::Priced`]: replay a container turning idle at `now` with the window's
    /// `action`: every container holds it in the holding pool; in the scaling-out pool a
    /// container that turns idle while another is held is a spare, kept `spare_keep_ms`.
    fn shadow_idle(&mut self, now: Millis, action: IdleAction) {
        self.shadow_hold.idle(now, action);
        let action = if self.shadow_scale.holds(now) {
            // The window was learnt from every container's idle times (holding), each counted
            // from its own turning idle: the lead of a scaling-out pool holds it from the last
            // container of the burst, as the leads' own idle times would teach it to.
            if let IdleAction::KeepAlive { until } = action {
                self.shadow_scale.extend(now, until);
            }
            IdleAction::KeepAlive {
                until: now + self.config.spare_keep_ms,
            }
        } else {
            action
        };
        self.shadow_scale.idle(now, action);
    }

    /// Whether the application's containers turn over within a spare's keep: over the
    /// concurrency history, (mean per-minute peak concurrency) / (arrivals per minute), an
    /// upper bound on how long an invocation holds a container (Little's law), is at most
    /// `spare_keep_ms`. Then a spare released after `spare_keep_ms` is soon replaced by a
    /// container that finishes, or by a scale-out. An application busy because its
    /// invocations run for minutes frees a container only every few minutes; its spares are
    /// gone before the next arrival, and holding them is what serves it.
    fn turns_over(&self) -> bool {
        let peaks = self.peaks_in_history as f64;
        debug_assert_eq!(peaks, self.concurrency.iter().sum::<f64>());
        self.history_arrivals > 0
            && peaks * MINUTE_MS as f64
                <= self.history_arrivals as f64 * self.config.spare_keep_ms as f64
    }

    /// With spares, when an arrival has taken the last idle container: how many containers
    /// (busy or idle) to have for the arrivals that follow, if the application ran several at
    /// once within its concurrency history. Without a demand forecast that peak, and at least
    /// one more than run now; under a forecast floor (which sizes the level) one more than run
    /// now: refilling a busy application to its two-hour peak each time took the busiest class
    /// to up to 2× hybrid-histogram-4h's idle memory on the train variants
    /// (docs/benchmarks.md, issue 14 session 3).
    fn scale_out_to(&self) -> Option<u32> {
        let peak = self
            .concurrency
            .iter()
            .fold(f64::from(self.minute_peak), |a, b| a.max(*b)) as u32;
        let one_more = self.busy + 1;
        match peak {
            0 | 1 => None,
            _ if !self.plan.is_empty() => Some(one_more),
            _ => Some(peak.max(one_more)),
        }
    }

    /// Record one idle time (the oldest is forgotten beyond `samples`).
    fn learn(&mut self, idle: Millis) {
        if self.idle_times.len() == self.config.samples
            && let Some(old) = self.idle_times.pop_front()
            && let Ok(at) = self.sorted.binary_search(&old)
        {
            self.sorted.remove(at);
        }
        self.idle_times.push_back(idle);
        let at = self.sorted.partition_point(|s| *s < idle);
        self.sorted.insert(at, idle);
        self.stale += 1;
    }

    /// With spares: the idle container an arrival at `now` takes, as the pool does (the most
    /// recent one it still holds); when it holds none, the last lead container, whose idle time
    /// this arrival ends (a miss the window must learn from). Containers gone are forgotten.
    fn take_idle(&mut self, now: Millis) -> Option<IdleContainer> {
        let at = self.idle_since.iter().rposition(|c| c.until >= now);
        let at = at.or_else(|| self.idle_since.iter().rposition(|c| !c.spare));
        let taken = at.map(|k| self.idle_since.remove(k));
        self.idle_since.retain(|c| c.until >= now);
        taken
    }

    fn refit(&mut self, now: Millis) {
        let history: Vec<f64> = self.concurrency.iter().copied().collect();
        let mean = history.iter().sum::<f64>() / history.len().max(1) as f64;
        self.plan.clear();
        self.fit_asked = None;
        self.awaiting_fit = None;
        if mean >= self.config.busy_concurrency {
            let horizon = self.config.forecast_minutes;
            if self.config.deferred_fits {
                self.fit_asked = Some(FitRequest {
                    history,
                    horizon,
                    asked_at: now,
                });
                self.awaiting_fit = Some(now);
            } else {
                let forecast = self.forecaster.forecast(&history, horizon);
                self.plan.extend(forecast.per_step);
            }
        }
    }
}

/// How far the minutes `actual` left their forecast `planned` (same length), when by more
/// than noise: the mean error, if it exceeds two standard errors of the actual peaks and half
/// a container.
fn drift(planned: &[f64], actual: &[f64]) -> Option<f64> {
    let n = actual.len();
    if n == 0 {
        return None;
    }
    let mean = actual.iter().sum::<f64>() / n as f64;
    let var = actual.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n as f64;
    let bias = mean - planned.iter().sum::<f64>() / n as f64;
    (bias.abs() > (2.0 * (var / n as f64).sqrt()).max(0.5)).then_some(bias)
}

impl AppPolicy for Forewarm {
    fn on_arrival(&mut self, now: Millis) {
        let scaling_out = self.spare_keep().is_some();
        let taken = if scaling_out {
            self.take_idle(now)
        } else {
            self.idle_since.pop()
        };
        if let Some(IdleContainer {
            since,
            spare: false,
            ..
        }) = taken
        {
            self.learn(now.saturating_sub(since));
        }
        self.busy += 1;
        self.minute_arrivals += 1;
        self.peak_seen = self.peak_seen.max(self.busy);
        self.burst_peak = self.burst_peak.max(self.busy);
        self.minute_peak = self.minute_peak.max(self.busy);
        if self.config.spares == Spares::Priced {
            self.shadow_arrival(now);
        }
        if scaling_out && self.idle_since.is_empty() {
            self.scale_to = self.scale_out_to();
        }
    }

    fn scale_out(&mut self, now: Millis) -> Option<WarmFloor> {
        let containers = self.scale_to.take()?;
        Some(WarmFloor {
            containers,
            until: now + self.config.spare_keep_ms,
        })
    }

    fn on_idle(&mut self, now: Millis) -> IdleAction {
        self.busy = self.busy.saturating_sub(1);
        if self.busy == 0 {
            self.last_burst_peak = std::mem::take(&mut self.burst_peak);
        }
        if self.idle_since.len() == MAX_IDLE_TRACKED {
            self.idle_since.remove(0);
        }
        let window = self.window();
        let action = match window {
            None => IdleAction::KeepAlive {
                until: now + self.config.default_keep_ms,
            },
            Some((lo, hi)) if lo < self.config.min_unload_ms => {
                IdleAction::KeepAlive { until: now + hi }
            }
            Some((lo, hi)) => IdleAction::Prewarm {
                at: now + lo,
                until: now + hi,
                containers: 1,
            },
        };
        if self.config.spares == Spares::Priced {
            self.shadow_idle(now, action);
        }
        let Some(spare_ms) = self.spare_keep() else {
            // Holding ignores `until`; an application that starts scaling out (`Spares::
            // ScaleOutWhenBusy`) reads it to tell which of these containers are still there.
            let until = match action {
                IdleAction::KeepAlive { until } | IdleAction::Prewarm { until, .. } => until,
            };
            self.idle_since.push(IdleContainer {
                since: now,
                until,
                spare: false,
            });
            // Containers whose own window has passed are gone: forget them.
            let life = window.map_or(self.config.default_keep_ms, |(_, hi)| hi);
            self.idle_since.retain(|c| now - c.since <= life);
            return match action {
                // As many as the last burst needed, or as are idle within one window.
                IdleAction::Prewarm { at, until, .. } => IdleAction::Prewarm {
                    at,
                    until,
                    containers: (self.idle_since.len() as u32).max(self.last_burst_peak),
                },
                keep => keep,
            };
        };
        // Another container is idle already: this one is spare.
        let spare = self.idle_since.iter().any(|c| c.until >= now);
        let (action, until) = match action {
            _ if spare => {
                let until = now + spare_ms;
                (IdleAction::KeepAlive { until }, until)
            }
            IdleAction::KeepAlive { until } | IdleAction::Prewarm { until, .. } => (action, until),
        };
        self.idle_since.push(IdleContainer {
            since: now,
            until,
            spare,
        });
        action
    }

    fn on_minute(&mut self, now: Millis) -> Option<WarmFloor> {
        if self.concurrency.len() == self.config.history_minutes {
            let gone = self.concurrency.pop_front().unwrap_or(0.0);
            self.peaks_in_history -= gone as u64;
            self.history_arrivals -= u64::from(self.arrivals_per_minute.pop_front().unwrap_or(0));
        }
        self.concurrency.push_back(f64::from(self.minute_peak));
        self.peaks_in_history += u64::from(self.minute_peak);
        self.arrivals_per_minute.push_back(self.minute_arrivals);
        self.history_arrivals += u64::from(std::mem::take(&mut self.minute_arrivals));
        self.minute_peak = self.busy;
        if (now / MINUTE_MS).is_multiple_of(self.config.refit_minutes as u64) {
            self.check_forecast(now);
        }
        if self.config.spares == Spares::Priced
            && (now / MINUTE_MS).is_multiple_of(self.config.shadow_half_life_minutes.max(1))
        {
            self.shadow_hold.halve();
            self.shadow_scale.halve();
        }
        self.demand_floor(now)
    }

    fn wants_minutes(&self) -> bool {
        true
    }

    fn take_fit(&mut self) -> Option<FitRequest> {
        self.fit_asked.take()
    }

    fn fitted(&mut self, now: Millis, asked_at: Millis, forecast: &[f64]) -> Option<WarmFloor> {
        if self.awaiting_fit != Some(asked_at) {
            // Asked before the last check, which asked again (or found the app not busy).
            return None;
        }
        self.awaiting_fit = None;
        let late = (now / MINUTE_MS).saturating_sub(asked_at / MINUTE_MS) as usize;
        self.plan = forecast.iter().skip(late).copied().collect();
        // The current minute's step, as `on_minute` would have taken it, held to the minute's
        // end.
        let floor = self.demand_floor(now)?;
        Some(WarmFloor {
            until: (now / MINUTE_MS + 1) * MINUTE_MS,
            ..floor
        })
    }

    fn assigned(&self) -> String {
        let n = self.idle_times.len();
        let floor = if !self.plan.is_empty() {
            String::from(" + demand floor")
        } else if self.config.spares == Spares::Priced {
            let (hold, scale) = (&self.shadow_hold, &self.shadow_scale);
            let gib_h = |ms: f64| ms * self.declared_mib / 1024.0 / 3_600_000.0;
            format!(
                " + spares {} (holding: {:.1} cold, {:.2} GiB·h; scaling out: {:.1} cold, \
                 {:.2} GiB·h)",
                if self.scaling_out_pays() {
                    "scale out"
                } else {
                    "held"
                },
                hold.cold,
                gib_h(hold.idle_ms),
                scale.cold,
                gib_h(scale.idle_ms)
            )
        } else {
            String::new()
        };
        if n < self.config.min_samples {
            return format!("learning ({n} idle times){floor}");
        }
        let shape = match self.window {
            Some((lo, hi)) if lo < self.config.min_unload_ms => format!("keep {} s", hi / 1_000),
            Some((lo, hi)) => format!("pre-warm {}..{} s", lo / 1_000, hi / 1_000),
            None => String::from("no window"),
        };
        // Cold starts saved per GiB·h of idle memory.
        let gib_h = 1024.0 * 3600.0;
        match (self.priced, self.config.worth_mib_ms) {
            (Some((0.0, per_mib_s)), Some(worth)) => format!(
                "cold: covering its idle times saves {:.3} cold starts per GiB·h of idle memory, \
                 below the price {:.3} ({} MiB)",
                per_mib_s * gib_h,
                gib_h * 1000.0 / worth,
                self.declared_mib
            ),
            (Some((cover, _)), _) if cover < 1.0 => {
                format!(
                    "partial: {shape}, covers {:.0}% of idle times{floor}",
                    cover * 100.0
                )
            }
            (Some(_), _) => format!("kept: {shape}{floor}"),
            (None, _) if self.over_budget() => format!(
                "cold: over the budget ({:.0} MiB x {} > {:.0} MiB), {shape}",
                self.declared_mib, self.peak_seen, self.config.idle_budget_mib
            ),
            (None, _) => format!("kept: {shape}{floor}"),
        }
    }

    fn describe(&self) -> String {
        let n = self.idle_times.len();
        let window = match self.window {
            _ if n < self.config.min_samples => format!(
                "{n} idle times seen (< {}): keep-alive {} s while the pattern is unknown",
                self.config.min_samples,
                self.config.default_keep_ms / 1_000
            ),
            Some((lo, hi)) if lo < self.config.min_unload_ms => format!(
                "next arrival expected within {} s of going idle: keep warm",
                hi / 1_000
            ),
            Some((lo, hi)) => format!(
                "next arrival expected {}..{} s after going idle: unload, pre-warm at {} s",
                lo / 1_000,
                hi / 1_000,
                lo / 1_000
            ),
            None => format!("{n} idle times seen, window not computed yet"),
        };
        let budget = match self.priced {
            Some(_) => self.assigned(),
            None if self.over_budget() => {
                "over its idle-memory budget (covers 20% of idle times)".to_owned()
            }
            None => "within its idle-memory budget".to_owned(),
        };
        let plan = if self.plan.is_empty() {
            String::from("no demand floor (not busy)")
        } else {
            let next: Vec<String> = self
                .plan
                .iter()
                .take(5)
                .map(|c| format!("{c:.1}"))
                .collect();
            format!("demand forecast (containers/min): {}", next.join(", "))
        };
        format!(
            "{window}; peak concurrency {}, {budget}; {plan}",
            self.peak_seen
        )
    }
}

/// Feeds idle times of 10, 20, …, 100 minutes (twice) and returns how long the last decision
/// holds a container: to its keep-alive end, or from its pre-warm to its end.
#[cfg(test)]
pub(crate) fn held_after_spread_idle_times(policy: &mut dyn AppPolicy) -> Millis {
    let mut t = 0;
    let mut last = IdleAction::KeepAlive { until: 0 };
    for i in 1..=20u64 {
        policy.on_arrival(t);
        last = policy.on_idle(t + 100);
        t += 100 + (i % 10 + 1) * 10 * MINUTE_MS;
    }
    let end = t - (10 + 1) * 10 * MINUTE_MS;
    match last {
        IdleAction::KeepAlive { until } => until - end,
        IdleAction::Prewarm { at, until, .. } => until - at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::HOUR_MS;

    fn run_periodic(p: &mut Forewarm, period: Millis, n: usize) -> IdleAction {
        let mut last = IdleAction::KeepAlive { until: 0 };
        for i in 0..n as Millis {
            let t = i * period;
            p.on_arrival(t);
            last = p.on_idle(t + 500);
        }
        last
    }

    #[test]
    fn unknown_app_gets_the_default_keep_alive() {
        let mut p = Forewarm::new(ForewarmConfig::default(), 256.0);
        p.on_arrival(0);
        assert_eq!(
            p.on_idle(100),
            IdleAction::KeepAlive {
                until: 100 + 30 * MINUTE_MS
            }
        );
    }

    #[test]
    fn periodic_app_is_prewarmed_tightly() {
        let mut p = Forewarm::new(ForewarmConfig::default(), 256.0);
        let period = 60 * MINUTE_MS;
        match run_periodic(&mut p, period, 10) {
            IdleAction::Prewarm {
                at,
                until,
                containers,
            } => {
                let end = 9 * period + 500;
                let (at, until) = (at - end, until - end);
                // The idle time is exactly period - 500 ms; the window hugs it.
                assert!(at < period - 500 && at > period - 4 * MINUTE_MS, "{at}");
                assert!(
                    until > period - 500 && until < period + 4 * MINUTE_MS,
                    "{until}"
                );
                assert_eq!(containers, 1);
            }
            other => panic!("expected a pre-warm, got {other:?}"),
        }
    }

    #[test]
    fn frequent_app_is_kept_alive() {
        let mut p = Forewarm::new(ForewarmConfig::default(), 256.0);
        match run_periodic(&mut p, 30_000, 20) {
            IdleAction::KeepAlive { until } => {
                let end = 19 * 30_000 + 500;
                assert!(until - end >= 29_500, "{}", until - end);
            }
            other => panic!("expected keep-alive, got {other:?}"),
        }
    }

    #[test]
    fn a_burst_is_prewarmed_with_all_its_containers() {
        let mut p = Forewarm::new(ForewarmConfig::default(), 256.0);
        let period = 20 * MINUTE_MS;
        let mut last = None;
        for i in 0..10 {
            let t = i * period;
            for k in 0..3 {
                p.on_arrival(t + k);
            }
            p.on_idle(t + 1_000);
            p.on_idle(t + 1_001);
            last = Some(p.on_idle(t + 1_002));
        }
        assert!(
            matches!(last, Some(IdleAction::Prewarm { containers: 3, .. })),
            "{last:?}"
        );
    }

    #[test]
    fn an_app_over_the_idle_budget_gets_a_cheap_window() {
        // A kept app covers all of the idle times and more, an app over the budget only a
        // narrow window holding 20% of them.
        let held = |declared_mib: f64| {
            held_after_spread_idle_times(&mut Forewarm::new(
                ForewarmConfig::default(),
                declared_mib,
            ))
        };
        let kept = held(256.0);
        let given_up = held(4096.0);
        assert!(kept > 100 * MINUTE_MS, "kept: {kept}");
        assert!(given_up < 30 * MINUTE_MS, "given up: {given_up}");
    }

    /// A priced forewarm: one cold start is worth 256 MiB for one hour.
    fn priced(declared_mib: f64) -> Forewarm {
        let config = ForewarmConfig {
            worth_mib_ms: Some(256.0 * HOUR_MS as f64),
            idle_budget_mib: f64::INFINITY,
            ..ForewarmConfig::default()
        };
        Forewarm::new(config, declared_mib)
    }

    /// Feed idle times (ms) one after another; the last decision.
    fn feed(p: &mut Forewarm, idle_times: impl Iterator<Item = Millis>) -> IdleAction {
        let mut t = 0;
        let mut last = IdleAction::KeepAlive { until: 0 };
        for idle in idle_times {
            p.on_arrival(t);
            last = p.on_idle(t + 100);
            t += 100 + idle;
        }
        last
    }

    #[test]
    fn price_keeps_a_frequent_app_warm_whatever_its_memory() {
        // Every 2 minutes, 4 GiB: a budget by cost gives it up; a price sees that keeping it
        // warm saves a cold start per 2 minutes of 4 GiB, far above one per 256 MiB·h.
        let mut p = priced(4096.0);
        let last = feed(&mut p, std::iter::repeat_n(2 * MINUTE_MS, 40));
        match last {
            IdleAction::KeepAlive { until } => assert!(until > 2 * MINUTE_MS, "{until}"),
            IdleAction::Prewarm { at, until, .. } => assert!(at < 2 * MINUTE_MS && until > at),
        }
        assert!(p.assigned().starts_with("kept"), "{}", p.assigned());
    }

    #[test]
    fn price_keeps_an_app_cold_when_nothing_pays_and_says_why() {
        // Idle times spread over 3..9 hours at 8 GiB: a cold start saved would cost hours of
        // 8 GiB, much more than the price.
        let mut p = priced(8192.0);
        feed(&mut p, (0..20).map(|i| (3 + i % 7) * HOUR_MS));
        assert_eq!(p.window(), Some((0, 0)));
        let reason = p.assigned();
        assert!(reason.starts_with("cold"), "{reason}");
        assert!(reason.contains("GiB·h"), "{reason}");
    }

    #[test]
    fn price_cuts_a_tail_not_worth_holding_for() {
        // 1 GiB; nine idle times in ten are 30 s, one in ten 3 hours. Holding through the
        // 3-hour gaps saves one cold start per 3 GiB·h, below the price of 4 per GiB·h; the
        // short ones are cheap.
        let mut p = priced(1024.0);
        let idle = (0..60).map(|i| if i % 10 == 9 { 3 * HOUR_MS } else { 30_000 });
        let last = feed(&mut p, idle);
        assert!(matches!(last, IdleAction::KeepAlive { .. }), "{last:?}");
        let (lo, hi) = p.window().expect("a window");
        assert!(
            lo < MINUTE_MS && (30_000..10 * MINUTE_MS).contains(&hi),
            "{lo}..{hi}"
        );
        assert!(p.assigned().starts_with("partial"), "{}", p.assigned());
    }

    /// A priced forewarm (256 MiB for one hour per cold start) that keeps spares `spare_ms`.
    fn with_spares(declared_mib: f64, spare_ms: Millis) -> Forewarm {
        let mut p = priced(declared_mib);
        p.config.spares = Spares::ScaleOut;
        p.config.spare_keep_ms = spare_ms;
        p
    }

    /// Bursts of three overlapping invocations every 20 minutes; the decisions of the last.
    fn bursts(p: &mut Forewarm, n: u64) -> Vec<IdleAction> {
        let mut last = Vec::new();
        for i in 0..n {
            let t = i * 20 * MINUTE_MS;
            for k in 0..3 {
                p.on_arrival(t + k);
            }
            last = (0..3).map(|k| p.on_idle(t + 1_000 + k)).collect();
        }
        last
    }

    #[test]
    fn spares_are_kept_a_minute_and_the_first_idle_container_its_window() {
        let mut p = with_spares(256.0, MINUTE_MS);
        let last = bursts(&mut p, 10);
        let end = 9 * 20 * MINUTE_MS + 1_000;
        // The first to turn idle is the one the next burst's first arrival waits for.
        match last[0] {
            IdleAction::Prewarm { at, containers, .. } => {
                assert!(
                    at - end > 15 * MINUTE_MS && containers == 1,
                    "{:?}",
                    last[0]
                );
            }
            IdleAction::KeepAlive { until } => assert!(until - end > 20 * MINUTE_MS),
        }
        for (k, action) in last.iter().enumerate().skip(1) {
            let until = end + k as Millis + MINUTE_MS;
            assert_eq!(*action, IdleAction::KeepAlive { until });
        }
        // Holding every container: all three hold the window.
        let mut hold = priced(256.0);
        let last = bursts(&mut hold, 10);
        assert!(
            matches!(last[2], IdleAction::Prewarm { containers: 3, .. }),
            "{:?}",
            last[2]
        );
    }

    #[test]
    fn taking_the_last_idle_container_scales_out_to_the_recent_peak() {
        let mut p = with_spares(256.0, MINUTE_MS);
        bursts(&mut p, 10);
        let t = 10 * 20 * MINUTE_MS;
        p.on_arrival(t);
        assert_eq!(
            p.scale_out(t),
            Some(WarmFloor {
                containers: 3,
                until: t + MINUTE_MS
            })
        );
        assert_eq!(p.scale_out(t), None, "asked once");
        // An application that never ran two at once does not scale out.
        let mut single = with_spares(256.0, MINUTE_MS);
        feed(&mut single, std::iter::repeat_n(5 * MINUTE_MS, 10));
        assert_eq!(single.scale_out(50 * MINUTE_MS), None);
        // Under a forecast floor, one more than run now, not the history's peak of 8.
        let mut busy = with_spares(256.0, MINUTE_MS);
        floors(&mut busy, 180, |m| if m < 100 { 8 } else { 4 });
        let t = 180 * MINUTE_MS;
        for k in 0..4 {
            busy.on_arrival(t + 1 + k);
        }
        let floor = busy.scale_out(t + 4).map(|f| f.containers);
        assert_eq!(floor, Some(5), "{}", busy.describe());
        // Holding every container, nothing is asked for.
        let mut hold = priced(256.0);
        bursts(&mut hold, 10);
        hold.on_arrival(t);
        assert_eq!(hold.scale_out(t), None);
    }

    /// Replays invocations `(arrival, duration)` with minute ticks up to `end`, in the
    /// simulator's order at equal times (completions, the minute tick, arrivals); the
    /// scale-outs asked for, with their times.
    fn replay(p: &mut Forewarm, invocations: &[(Millis, Millis)], end: Millis) -> Vec<Millis> {
        let mut events: Vec<(Millis, u8)> =
            (0..=end / MINUTE_MS).map(|m| (m * MINUTE_MS, 1)).collect();
        for (at, duration) in invocations {
            events.push((*at, 2));
            events.push((at + duration, 0));
        }
        events.sort_unstable();
        let mut scale_outs = Vec::new();
        for (t, kind) in events {
            match kind {
                0 => {
                    p.on_idle(t);
                }
                1 => {
                    p.on_minute(t);
                }
                _ => {
                    p.on_arrival(t);
                    if p.scale_out(t).is_some() {
                        scale_outs.push(t);
                    }
                }
            }
        }
        scale_outs
    }

    /// A priced forewarm with `spares`.
    fn sparing(spares: Spares) -> Forewarm {
        let mut p = priced(256.0);
        p.config.spares = spares;
        p
    }

    #[test]
    fn a_busy_app_whose_containers_turn_over_scales_out() {
        // Three hours of two waves a minute, four invocations of 10 s each: busy (a forecast
        // floor of 4) and a container is held ~30 s per arrival, within a spare's minute.
        let waves: Vec<(Millis, Millis)> = (0..180 * 2)
            .flat_map(|w| (0..4).map(move |k| (w * 30_000 + 1_000 + k, 10_000)))
            .collect();
        let end = 180 * MINUTE_MS;
        let mut p = sparing(Spares::ScaleOutWhenBusy);
        let scaled = replay(&mut p, &waves, end);
        assert!(!p.plan.is_empty(), "busy: {}", p.describe());
        let late = scaled.iter().filter(|t| **t > end - HOUR_MS).count();
        assert!(
            late >= 60,
            "one scale-out per wave in the last hour: {late}"
        );
        // Holding spares, the same application never scales out.
        let mut hold = sparing(Spares::Hold);
        assert!(replay(&mut hold, &waves, end).is_empty());
    }

    #[test]
    fn a_busy_app_of_long_invocations_holds_its_spares() {
        // One arrival a minute, each running 5 minutes: busy (five at once), but a container
        // is freed only every minute and held five: its spares are kept, not released.
        let long: Vec<(Millis, Millis)> = (0..180)
            .map(|m| (m * MINUTE_MS + 1_000, 5 * MINUTE_MS))
            .collect();
        let end = 180 * MINUTE_MS;
        let mut p = sparing(Spares::ScaleOutWhenBusy);
        let scaled = replay(&mut p, &long, end);
        assert!(!p.plan.is_empty(), "busy: {}", p.describe());
        assert!(!p.turns_over());
        assert!(scaled.iter().all(|t| *t < end - HOUR_MS), "{scaled:?}");
        // Scaling out everywhere, it would.
        let mut always = sparing(Spares::ScaleOut);
        assert!(!replay(&mut always, &long, end).is_empty());
    }

    #[test]
    fn an_app_without_a_forecast_floor_holds_its_spares() {
        // Bursts of three every 20 minutes: not busy, so every container holds the window and
        // the next burst is pre-warmed with all three.
        let mut p = sparing(Spares::ScaleOutWhenBusy);
        let last = bursts(&mut p, 10);
        assert!(p.plan.is_empty());
        assert!(
            matches!(last[2], IdleAction::Prewarm { containers: 3, .. }),
            "{:?}",
            last[2]
        );
    }

    /// Thirty bursts of three 20 s invocations starting `step` ms apart, separated by 30-50
    /// minutes of nothing; returns when the policy asked to scale out.
    fn sparse_bursts(p: &mut Forewarm, step: Millis) -> (Vec<Millis>, Millis) {
        let mut at = 0;
        let mut invocations = Vec::new();
        for i in 0..30 {
            at += (30 + (i * 7) % 21) * MINUTE_MS;
            invocations.extend((0..3).map(|k| (at + k * step, 20_000)));
        }
        let end = at + HOUR_MS;
        (replay(p, &invocations, end), at)
    }

    #[test]
    fn priced_spares_scale_out_where_a_burst_leaves_time_to_start() {
        // Arrivals 3 s apart: a scale-out on the first is ready (1 s) before the second, so
        // the two spares held through every 30-50 minute gap save nothing.
        let mut p = sparing(Spares::Priced);
        let (scaled, last) = sparse_bursts(&mut p, 3_000);
        assert!(p.plan.is_empty(), "not busy: {}", p.describe());
        assert_eq!(
            p.spare_keep(),
            Some(p.config.spare_keep_ms),
            "{}",
            p.assigned()
        );
        assert!(
            p.assigned().contains("spares scale out"),
            "{}",
            p.assigned()
        );
        assert!(
            scaled.iter().any(|t| *t >= last),
            "the last burst scales out: {scaled:?}"
        );
        // Holding, the same application keeps its spares and never scales out.
        let mut hold = sparing(Spares::Hold);
        assert!(sparse_bursts(&mut hold, 3_000).0.is_empty());
    }

    #[test]
    fn priced_spares_are_held_where_a_burst_comes_at_once() {
        // All three arrive within a start: scaling out would make two of them cold per
        // burst, worth more (2 x one hour of 256 MiB) than two 256 MiB spares held ~40 min.
        let mut p = sparing(Spares::Priced);
        let (scaled, last) = sparse_bursts(&mut p, 1);
        assert_eq!(p.spare_keep(), None, "{}", p.assigned());
        assert!(p.assigned().contains("spares held"), "{}", p.assigned());
        assert!(!scaled.iter().any(|t| *t >= last), "{scaled:?}");
    }

    #[test]
    fn with_spares_an_arrival_after_the_window_is_still_learnt() {
        // Twenty 5-minute idle times, then hour-long ones: each of those arrives after the
        // container was gone, and the window must grow to hold them.
        let mut p = with_spares(16.0, MINUTE_MS);
        let idle = (0..40).map(|i| if i < 20 { 5 * MINUTE_MS } else { HOUR_MS });
        feed(&mut p, idle);
        let (_, hi) = p.window().expect("a window");
        assert!(hi > HOUR_MS, "{hi}");
    }

    #[test]
    fn busy_app_gets_a_forecast_floor() {
        // Four invocations overlap every minute.
        let mut p = Forewarm::new(ForewarmConfig::default(), 256.0);
        let floors: Vec<u32> = floors(&mut p, 180, |_| 4).iter().map(|f| f.1).collect();
        assert!(!floors.is_empty(), "a busy app must get a floor");
        assert!(floors.iter().all(|c| (4..=6).contains(c)), "{floors:?}");
    }

    /// Minutes of a busy app with `level(minute)` overlapping invocations; the floors held.
    fn floors(p: &mut Forewarm, minutes: u64, level: impl Fn(u64) -> u64) -> Vec<(u64, u32)> {
        deferred_floors(p, minutes, 0, level)
    }

    #[test]
    fn a_forecast_follows_a_step_in_demand_before_it_runs_out() {
        // Four at a time for three hours, then eight: the forecast fitted on four must be
        // shifted at the next check, long before its 120 minutes run out.
        let mut p = Forewarm::new(ForewarmConfig::default(), 256.0);
        let step = 180;
        let got = floors(&mut p, step + 60, |m| if m < step { 4 } else { 8 });
        let before: Vec<u32> = got.iter().filter(|(m, _)| *m < step).map(|f| f.1).collect();
        assert!(before.iter().all(|c| (4..=5).contains(c)), "{before:?}");
        let late: Vec<u32> = got
            .iter()
            .filter(|(m, _)| *m >= step + 30)
            .map(|f| f.1)
            .collect();
        assert!(!late.is_empty() && late.iter().all(|c| *c >= 7), "{late:?}");
    }

    /// As [`floors`]; where the policy defers its fits, each one it asks for is fitted here
    /// with its own forecaster and handed back `late` minutes later.
    fn deferred_floors(
        p: &mut Forewarm,
        minutes: u64,
        late: u64,
        level: impl Fn(u64) -> u64,
    ) -> Vec<(u64, u32)> {
        let mut floors = Vec::new();
        let mut asked: Option<(u64, FitRequest)> = None;
        for minute in 0..minutes {
            let t = minute * MINUTE_MS;
            if let Some(f) = p.on_minute(t) {
                floors.push((minute, f.containers));
            }
            if let Some(request) = p.take_fit() {
                asked = Some((minute, request));
            }
            if let Some((_, request)) = asked.take_if(|(at, _)| minute == *at + late) {
                let forecast =
                    DemandForecaster::default().forecast(&request.history, request.horizon);
                if let Some(f) = p.fitted(t, request.asked_at, &forecast.per_step) {
                    assert_eq!(f.until, t + MINUTE_MS, "held to the minute's end");
                    floors.push((minute, f.containers));
                }
            }
            for k in 0..level(minute) {
                p.on_arrival(t + 1 + k);
            }
            for k in 0..level(minute) {
                p.on_idle(t + 20_000 + k);
            }
        }
        floors
    }

    #[test]
    fn a_deferred_fit_gives_the_floors_of_an_inline_one() {
        let deferred = ForewarmConfig {
            deferred_fits: true,
            ..ForewarmConfig::default()
        };
        let level = |m: u64| if m < 150 { 4 } else { 8 };
        let inline = floors(
            &mut Forewarm::new(ForewarmConfig::default(), 256.0),
            240,
            level,
        );
        let mut p = Forewarm::new(deferred.clone(), 256.0);
        assert_eq!(deferred_floors(&mut p, 240, 0, level), inline);
        // Answered two minutes late: the same floors, less the two minutes it was awaited.
        let mut p = Forewarm::new(deferred, 256.0);
        let late = deferred_floors(&mut p, 240, 2, level);
        assert!(!late.is_empty());
        let first = late[0].0;
        let expected: Vec<(u64, u32)> = inline
            .iter()
            .copied()
            .filter(|(m, _)| *m >= first)
            .collect();
        assert!(
            late.iter().all(|f| expected.contains(f)),
            "late {late:?} inline {inline:?}"
        );
        assert!(
            late.len() + 8 >= expected.len(),
            "late {late:?} inline {inline:?}"
        );
    }

    #[test]
    fn a_policy_with_deferred_fits_never_fits_itself() {
        let mut p = Forewarm::new(
            ForewarmConfig {
                deferred_fits: true,
                ..ForewarmConfig::default()
            },
            256.0,
        );
        let mut asked = 0;
        for minute in 0..200 {
            let t = minute * MINUTE_MS;
            assert_eq!(p.on_minute(t), None, "no floor without a fit handed back");
            asked += usize::from(p.take_fit().is_some());
            for k in 0..4 {
                p.on_arrival(t + 1 + k);
            }
            for k in 0..4 {
                p.on_idle(t + 20_000 + k);
            }
        }
        assert!(
            asked >= 10,
            "a busy app asks for a fit at every check: {asked}"
        );
    }

    #[test]
    fn drift_ignores_noise_and_reports_a_shift() {
        let planned = [4.0; 15];
        let noisy: Vec<f64> = (0..15).map(|i| 4.0 + f64::from(i % 3) - 1.0).collect();
        assert_eq!(drift(&planned, &noisy), None);
        let shifted = [7.0; 15];
        assert_eq!(drift(&planned, &shifted), Some(3.0));
    }
}
