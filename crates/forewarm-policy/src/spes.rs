//! SPES (Lee et al., "SPES: Towards Optimizing Performance-Resource Trade-Off for Serverless
//! Functions", 2024, arXiv 2403.17574): a baseline that classifies an invocation history into
//! a few patterns and gives each its own pre-load window and keep-alive.
//!
//! SPES works on per-minute invocation counts. A *wait time* (WT) is a run of idle minutes
//! between two invoked minutes; an *invocation run* is a run of consecutive invoked minutes.
//! The classes, in the order they are tried, and what each gets (thresholds from the authors'
//! public code, `ExitoAceptar/SPES` `run.ipynb`; read, not copied):
//!
//! | class | rule | pre-load | keep-alive (give-up) |
//! | --- | --- | --- | --- |
//! | always-warm | idle minutes < 0.1% of the minutes | always loaded | never unloaded |
//! | regular | ≥ 3 runs, > 3 WTs, WT p95 − p5 < 1 or CV ≤ 0.01 | period = median WT, ± min(std, 2), repeated after a miss | 1 min |
//! | approx-regular | ≥ 3 runs, ≥ 3 WTs, a WT repeats, the 3 commonest WTs ≥ 90% | each of those WTs (share > 10%) | 1 min |
//! | dense | WT p90 < 5 min | [min, min(10, max)] of the commonest WTs | 5 min |
//! | successive | every run ≥ 10 min long or > 11 invocations | none | 1 min |
//! | pulsed | the rest, when it replays better | none | 3 min |
//! | possible | the rest, when a WT repeats and it replays better | the commonest WTs (a span if within 10 min, else points) | 1 min |
//!
//! A predicted WT `p` after the last invoked minute `L` loads the application from minute
//! `L + p` to `L + p + 4` (SPES pre-loads when the prediction is within 2 minutes and unloads
//! at the end of a minute; regular windows end when they have passed). `correlated` (predict
//! a function from co-invoked functions) is not modelled: here the unit of warmth is the
//! application, whose functions share containers, so the co-invoked functions of one app are
//! one series already; across apps it would need state shared by applications. See
//! `docs/policies.md` for the adaptation (classes per application, online, concurrency).

use std::collections::VecDeque;
use std::fmt;

use crate::policy::{AppPolicy, IdleAction, MINUTE_MS, Millis, WarmFloor};

/// Always-warm: idle minutes below this share of the observed minutes.
const WARM_IDLE_SHARE: f64 = 0.001;
/// Regular and approx-regular need at least this many invocation runs.
const MIN_RUNS: usize = 3;
/// Approx-regular: the commonest this many WTs …
const APPROX_MODES: usize = 3;
/// … must cover this share of the WTs.
const APPROX_COVER: f64 = 0.9;
/// Approx-regular predicts the modes with more than this share.
const APPROX_MODE_SHARE: f64 = 0.1;
/// Dense: the 90th percentile of WTs is below this many minutes; also dense's give-up.
const DENSE_BOUND: f64 = 5.0;
/// Dense predicts WTs up to this many minutes.
const DENSE_PREDICT_MAX: u32 = 10;
/// Dense without a repeated WT predicts up to this many minutes (SPES's fallback).
const DENSE_FALLBACK_MAX: u32 = 3;
/// Successive: every invocation run is at least this many minutes long …
const SUCCESSIVE_MINUTES: u32 = 10;
/// … or has more than this many invocations.
const SUCCESSIVE_INVOCATIONS: u64 = 11;
/// Regular: the window is ± the WT std, at most this many minutes.
const REGULAR_MAX_SPREAD: f64 = 2.0;
/// Possible and dense predict from at most this many modes (WTs seen more than once).
const MAX_MODES: usize = 5;
/// Possible: modes within this many minutes form one span, else separate points.
const POSSIBLE_SPAN: u32 = 10;
/// A predicted WT keeps the app loaded this many minutes past it (SPES's 2-minute pre-load
/// margin on both sides of the prediction, plus its end-of-minute unload).
const SPAN_TAIL: u32 = 4;
/// Weight of the cold-start penalty when pulsed and possible disagree (SPES's `alpha`).
const ALPHA: f64 = 0.5;
/// Runs and WTs kept (the oldest are forgotten first).
const HISTORY: usize = 1024;
/// No class but `unknown` before this many minutes since the first invocation.
const MIN_HISTORY_MINUTES: u64 = 60;
/// Classes are recomputed at most this often (minutes), when something was invoked.
const RECLASSIFY_MINUTES: u64 = 10;

/// The class SPES puts an application in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpesClass {
    /// Not enough history yet: unloaded one minute after its last use.
    Unknown,
    /// Invoked in (almost) every minute: always loaded.
    AlwaysWarm,
    /// One wait time, repeated.
    Regular,
    /// A few wait times cover almost all.
    ApproxRegular,
    /// Short wait times only.
    Dense,
    /// Long invocation runs.
    Successive,
    /// Irregular: a 3-minute keep-alive.
    Pulsed,
    /// Irregular but some wait times repeat: pre-loaded at them.
    Possible,
}

impl SpesClass {
    /// Minutes after the last invoked minute an idle container stays (SPES's give-up).
    fn give_up_minutes(self) -> u64 {
        match self {
            SpesClass::Dense => DENSE_BOUND as u64,
            SpesClass::Pulsed => 3,
            // Always-warm holds its containers with a floor; containers above it go as any.
            _ => 1,
        }
    }
}

impl fmt::Display for SpesClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpesClass::Unknown => "unknown",
            SpesClass::AlwaysWarm => "always-warm",
            SpesClass::Regular => "regular",
            SpesClass::ApproxRegular => "approx-regular",
            SpesClass::Dense => "dense",
            SpesClass::Successive => "successive",
            SpesClass::Pulsed => "pulsed",
            SpesClass::Possible => "possible",
        })
    }
}

/// Where the next invocation is predicted, in wait-time minutes after the last invoked minute.
#[derive(Debug, Clone, PartialEq)]
enum Prediction {
    None,
    /// Regular: WT in `[wt - spread, wt + spread]`, again every `wt + 1` minutes after a miss.
    Periodic {
        wt: f64,
        spread: f64,
    },
    /// WT in one of these inclusive spans.
    Spans(Vec<(u32, u32)>),
}

impl Prediction {
    /// Whether the app is loaded `r` minutes after its last invoked minute (`r ≥ 1`).
    fn covers(&self, r: u64) -> bool {
        let r = r as f64;
        match self {
            Prediction::None => false,
            Prediction::Periodic { wt, spread } => {
                // SPES moves a regular window on by one period once it has passed; it loads
                // from 2 minutes before the window until the window has passed.
                let period = wt + 1.0;
                let end = wt + spread + 2.0;
                let k = if r < end {
                    0.0
                } else {
                    ((r - end) / period).floor() + 1.0
                };
                wt - spread + k * period <= r
            }
            Prediction::Spans(spans) => spans
                .iter()
                .any(|&(a, b)| f64::from(a) <= r && r <= f64::from(b + SPAN_TAIL)),
        }
    }
}

/// SPES's per-application state: the minute history, its class and prediction.
#[derive(Debug, Clone)]
pub struct Spes {
    busy: u32,
    first_minute: Option<u64>,
    last_minute: Option<u64>,
    invoked_minutes: u64,
    /// Peak concurrency in the last invoked minute: what a pre-load brings back.
    minute_peak: u32,
    run_minutes: u32,
    run_invocations: u64,
    /// Completed invocation runs: (minutes, invocations).
    runs: VecDeque<(u32, u64)>,
    /// Completed wait times, minutes.
    wts: VecDeque<u32>,
    next_classify: u64,
    classified_at_invoked: u64,
    class: SpesClass,
    prediction: Prediction,
}

impl Default for Spes {
    fn default() -> Self {
        Self::new()
    }
}

impl Spes {
    /// A fresh application: unknown, nothing predicted.
    pub fn new() -> Self {
        Self {
            busy: 0,
            first_minute: None,
            last_minute: None,
            invoked_minutes: 0,
            minute_peak: 0,
            run_minutes: 0,
            run_invocations: 0,
            runs: VecDeque::new(),
            wts: VecDeque::new(),
            next_classify: 0,
            classified_at_invoked: 0,
            class: SpesClass::Unknown,
            prediction: Prediction::None,
        }
    }

    /// The class the application is in now.
    pub fn class(&self) -> SpesClass {
        self.class
    }

    fn push_bounded<T>(q: &mut VecDeque<T>, v: T) {
        if q.len() == HISTORY {
            q.pop_front();
        }
        q.push_back(v);
    }

    /// Recompute the class from the history of minutes before `minute`.
    fn classify(&mut self, minute: u64) {
        let (Some(first), Some(_)) = (self.first_minute, self.last_minute) else {
            return;
        };
        let observed = minute.saturating_sub(first);
        if observed < MIN_HISTORY_MINUTES {
            return;
        }
        let (class, prediction) = classify_history(
            observed,
            self.invoked_minutes,
            &self.runs,
            self.run_minutes,
            self.run_invocations,
            &self.wts,
        );
        self.class = class;
        self.prediction = prediction;
    }
}

/// Linear-interpolation percentile (`q` in 0..=100) of ascending `sorted` (numpy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Distinct wait times with their counts, commonest first (ties: the shorter first).
fn by_count(wts: &VecDeque<u32>) -> Vec<(u32, usize)> {
    let mut sorted: Vec<u32> = wts.iter().copied().collect();
    sorted.sort_unstable();
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for w in sorted {
        match counts.last_mut() {
            Some((v, n)) if *v == w => *n += 1,
            _ => counts.push((w, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts
}

/// The commonest wait times seen more than once (at most [`MAX_MODES`]).
fn modes(counts: &[(u32, usize)]) -> Vec<u32> {
    counts
        .iter()
        .take_while(|(_, n)| *n > 1)
        .take(MAX_MODES)
        .map(|(w, _)| *w)
        .collect()
}

/// SPES's classification of one history: `observed` minutes since the first invoked one, of
/// which `invoked` had invocations; completed `runs` and `wts`, and the current run.
fn classify_history(
    observed: u64,
    invoked: u64,
    runs: &VecDeque<(u32, u64)>,
    run_minutes: u32,
    run_invocations: u64,
    wts: &VecDeque<u32>,
) -> (SpesClass, Prediction) {
    let idle = observed.saturating_sub(invoked);
    if (idle as f64) < WARM_IDLE_SHARE * observed as f64 {
        return (SpesClass::AlwaysWarm, Prediction::None);
    }
    let mut sorted: Vec<f64> = wts.iter().map(|&w| f64::from(w)).collect();
    sorted.sort_by(f64::total_cmp);
    let counts = by_count(wts);
    if runs.len() + 1 >= MIN_RUNS {
        if sorted.len() > MIN_RUNS {
            let n = sorted.len() as f64;
            let mean = sorted.iter().sum::<f64>() / n;
            let std = (sorted.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / n).sqrt();
            if percentile(&sorted, 95.0) - percentile(&sorted, 5.0) < 1.0
                || (mean > 0.0 && std / mean <= 0.01)
            {
                let prediction = Prediction::Periodic {
                    wt: percentile(&sorted, 50.0),
                    spread: std.min(REGULAR_MAX_SPREAD),
                };
                return (SpesClass::Regular, prediction);
            }
        }
        if sorted.len() >= MIN_RUNS && counts[0].1 > 1 {
            let top: usize = counts.iter().take(APPROX_MODES).map(|(_, n)| n).sum();
            if top as f64 >= APPROX_COVER * sorted.len() as f64 {
                let spans = counts
                    .iter()
                    .take(APPROX_MODES)
                    .filter(|(_, n)| *n as f64 > APPROX_MODE_SHARE * sorted.len() as f64)
                    .map(|&(w, _)| (w, w))
                    .collect();
                return (SpesClass::ApproxRegular, Prediction::Spans(spans));
            }
        }
    }
    if !sorted.is_empty() && percentile(&sorted, 90.0) < DENSE_BOUND {
        let m = modes(&counts);
        let span = match (m.iter().min(), m.iter().max()) {
            (Some(&lo), Some(&hi)) => (lo, hi.min(DENSE_PREDICT_MAX)),
            // No repeated WT: SPES falls back to [min, min(3, max)] of all of them.
            _ => (
                sorted[0] as u32,
                (sorted[sorted.len() - 1] as u32).min(DENSE_FALLBACK_MAX),
            ),
        };
        return (SpesClass::Dense, Prediction::Spans(vec![span]));
    }
    if !runs.is_empty() {
        let shortest = runs.iter().map(|r| r.0).min().unwrap_or(0);
        let fewest = runs.iter().map(|r| r.1).min().unwrap_or(0);
        if shortest >= SUCCESSIVE_MINUTES || fewest > SUCCESSIVE_INVOCATIONS {
            return (SpesClass::Successive, Prediction::None);
        }
    }
    assign_the_rest(runs, run_minutes, run_invocations, wts, &counts)
}

/// The possible class's prediction: the modes as one span if close, else as points.
fn possible_prediction(modes: &[u32]) -> Option<Prediction> {
    let (&lo, &hi) = (modes.iter().min()?, modes.iter().max()?);
    Some(if hi - lo <= POSSIBLE_SPAN {
        Prediction::Spans(vec![(lo, hi)])
    } else {
        Prediction::Spans(modes.iter().map(|&w| (w, w)).collect())
    })
}

/// Replay the history minute by minute under a give-up and a prediction, as SPES validates
/// its strategies for the rest: (cold starts per invocation, loaded idle minutes per invoked
/// minute). The first run is cold; each later run is cold unless its first minute is loaded.
fn replay(
    runs: &VecDeque<(u32, u64)>,
    run_minutes: u32,
    run_invocations: u64,
    wts: &VecDeque<u32>,
    give_up: u64,
    prediction: &Prediction,
) -> (f64, f64) {
    let loaded = |r: u64| r <= give_up || prediction.covers(r);
    // Each WT ends in the first minute of a run (`r = WT + 1`): cold unless loaded then.
    let mut cold = 1u64;
    let mut waste = 0u64;
    for &w in wts {
        let w = u64::from(w);
        cold += u64::from(!loaded(w + 1));
        waste += (1..=w).filter(|&r| loaded(r)).count() as u64;
    }
    let invocations: u64 = runs.iter().map(|r| r.1).sum::<u64>() + run_invocations;
    let minutes: u64 = runs.iter().map(|r| u64::from(r.0)).sum::<u64>() + u64::from(run_minutes);
    (
        cold as f64 / invocations.max(1) as f64,
        waste as f64 / minutes.max(1) as f64,
    )
}

/// SPES's assignment of an application no pattern fits: replay pulsed (a 3-minute keep-alive)
/// and, if a wait time repeats, possible (pre-load at the repeated ones), and keep the one its
/// rule prefers. `correlated`, SPES's third option, is not modelled (module doc).
fn assign_the_rest(
    runs: &VecDeque<(u32, u64)>,
    run_minutes: u32,
    run_invocations: u64,
    wts: &VecDeque<u32>,
    counts: &[(u32, usize)],
) -> (SpesClass, Prediction) {
    let pulsed = (SpesClass::Pulsed, Prediction::None);
    let Some(possible) = possible_prediction(&modes(counts)) else {
        return pulsed;
    };
    let replay_of = |class: SpesClass, p: &Prediction| {
        replay(
            runs,
            run_minutes,
            run_invocations,
            wts,
            class.give_up_minutes(),
            p,
        )
    };
    let (cold_p, waste_p) = replay_of(SpesClass::Pulsed, &Prediction::None);
    let (cold_s, waste_s) = replay_of(SpesClass::Possible, &possible);
    let possible = (SpesClass::Possible, possible);
    // SPES's rule, for two options: the one best on both; at equal cold starts the one with
    // less waste and vice versa; a cold rate ≤ 10% wins; otherwise the option with fewer cold
    // starts unless alpha × its relative cold-start gain is above the relative waste it adds
    // (the authors' code compares the two that way round).
    let cold_best_is_possible = cold_s < cold_p;
    let waste_best_is_possible = waste_s < waste_p;
    let pick = |possible_wins: bool| if possible_wins { 1 } else { 0 };
    let choice = if cold_best_is_possible == waste_best_is_possible {
        pick(cold_best_is_possible)
    } else if cold_s == cold_p {
        pick(waste_best_is_possible)
    } else if waste_s == waste_p {
        pick(cold_best_is_possible)
    } else {
        let (cold_c, cold_w) = if cold_best_is_possible {
            (cold_s, cold_p)
        } else {
            (cold_p, cold_s)
        };
        let (waste_c, waste_w) = if cold_best_is_possible {
            (waste_s, waste_p)
        } else {
            (waste_p, waste_s)
        };
        if cold_c <= 0.1 {
            pick(cold_best_is_possible)
        } else {
            let delta_cold = ALPHA * (cold_w - cold_c) / cold_c;
            let delta_waste = if waste_w > 0.0 {
                (waste_c - waste_w) / waste_w
            } else {
                f64::INFINITY
            };
            if delta_cold <= delta_waste {
                pick(cold_best_is_possible)
            } else {
                pick(waste_best_is_possible)
            }
        }
    };
    if choice == 1 { possible } else { pulsed }
}

impl AppPolicy for Spes {
    fn on_arrival(&mut self, now: Millis) {
        let minute = now / MINUTE_MS;
        self.busy += 1;
        match self.last_minute {
            None => {
                self.first_minute = Some(minute);
                self.run_minutes = 1;
                self.run_invocations = 1;
                self.invoked_minutes = 1;
                self.minute_peak = self.busy;
            }
            Some(last) if minute <= last => {
                self.run_invocations += 1;
                self.minute_peak = self.minute_peak.max(self.busy);
            }
            Some(last) => {
                if minute == last + 1 {
                    self.run_minutes += 1;
                    self.run_invocations += 1;
                } else {
                    Self::push_bounded(&mut self.runs, (self.run_minutes, self.run_invocations));
                    Self::push_bounded(&mut self.wts, (minute - last - 1) as u32);
                    self.run_minutes = 1;
                    self.run_invocations = 1;
                }
                self.invoked_minutes += 1;
                self.minute_peak = self.busy;
            }
        }
        self.last_minute = Some(self.last_minute.map_or(minute, |l| l.max(minute)));
    }

    fn on_idle(&mut self, now: Millis) -> IdleAction {
        self.busy = self.busy.saturating_sub(1);
        let minute = now / MINUTE_MS;
        IdleAction::KeepAlive {
            until: (minute + 1 + self.class.give_up_minutes()) * MINUTE_MS,
        }
    }

    fn on_minute(&mut self, now: Millis) -> Option<WarmFloor> {
        let minute = now / MINUTE_MS;
        let last = self.last_minute?;
        if minute >= self.next_classify && self.invoked_minutes != self.classified_at_invoked {
            self.classify(minute);
            self.classified_at_invoked = self.invoked_minutes;
            self.next_classify = minute + RECLASSIFY_MINUTES;
        }
        let loaded = self.class == SpesClass::AlwaysWarm
            || (minute > last && self.prediction.covers(minute - last));
        loaded.then(|| WarmFloor {
            containers: self.minute_peak.max(1),
            until: (minute + 1) * MINUTE_MS,
        })
    }

    fn wants_minutes(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("spes {}", self.assigned())
    }

    fn assigned(&self) -> String {
        match &self.prediction {
            Prediction::None => self.class.to_string(),
            Prediction::Periodic { wt, spread } => {
                format!("{}: wait {wt:.1} ± {spread:.1} min", self.class)
            }
            Prediction::Spans(spans) => {
                let spans: Vec<String> = spans
                    .iter()
                    .map(|(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        }
                    })
                    .collect();
                format!("{}: wait {} min", self.class, spans.join("/"))
            }
        }
    }
}

#[cfg(test)]
#[path = "spes_test.rs"]
mod tests;
