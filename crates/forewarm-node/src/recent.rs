//! What the dashboard shows of the last hour, kept by the Router as it answers: invocations
//! per minute by start, where each of the latest ran and why, and per code type its runs on
//! this node per minute. One lock, taken once per answered invocation; nothing allocated for
//! it on that path but a slot in a ring (the code type's key is shared, node and region are
//! kept only when another member ran it).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use forewarm_store::Start;

use crate::catalog::CodeKey;
use crate::routing::Why;

/// Minutes kept.
pub const HISTORY_MINUTES: u64 = 60;
/// Routing decisions kept.
pub const ROUTES_KEPT: usize = 50;

/// Invocations answered in one minute, by how they started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Minute {
    /// Minutes since the Unix epoch (UTC).
    pub minute: u64,
    /// Started a container for it.
    pub cold: u64,
    /// On an idle container that served before.
    pub warm: u64,
    /// On a container started ahead of it.
    pub prewarmed: u64,
}

/// One invocation this node's Router answered: where it ran and why.
#[derive(Debug, Clone)]
pub struct Routed {
    /// When it was answered, ms since the epoch.
    pub at_ms: u64,
    /// Its code type, `tenant/code`.
    pub code: CodeKey,
    /// The member (name, region) that ran it; `None`: this node.
    pub elsewhere: Option<(String, String)>,
    /// How it started there.
    pub start: Start,
    /// Latency at this node, ms.
    pub latency_ms: f64,
    /// Why there.
    pub why: Why,
}

#[derive(Debug, Default)]
struct Rings {
    minutes: VecDeque<Minute>,
    routes: VecDeque<Routed>,
    /// (minute, runs) by `tenant/code`, runs on this node only.
    ran: HashMap<CodeKey, VecDeque<(u64, u64)>>,
}

/// The last hour, for the dashboard (`GET /v1/history`).
#[derive(Debug, Default)]
pub struct Recent(Mutex<Rings>);

impl Recent {
    /// Note one answered invocation.
    pub fn routed(&self, r: Routed) {
        let minute = r.at_ms / 60_000;
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let rings = &mut *guard;
        let minutes = &mut rings.minutes;
        if minutes.back().is_none_or(|m| m.minute < minute) {
            minutes.push_back(Minute {
                minute,
                ..Minute::default()
            });
            while minutes
                .front()
                .is_some_and(|m| m.minute + HISTORY_MINUTES <= minute)
            {
                minutes.pop_front();
            }
            // Once a minute: code types that stopped running are forgotten even when nobody
            // reads the history.
            forget_before(&mut rings.ran, minute);
        }
        // A clock stepped back counts into the newest minute.
        if let Some(m) = minutes.back_mut() {
            match r.start {
                Start::Cold => m.cold += 1,
                Start::Warm => m.warm += 1,
                Start::Prewarmed => m.prewarmed += 1,
            }
        }
        if r.elsewhere.is_none() {
            let counts = rings.ran.entry(r.code.clone()).or_default();
            match counts.back_mut() {
                Some((m, n)) if *m >= minute => *n += 1,
                _ => counts.push_back((minute, 1)),
            }
        }
        if rings.routes.len() == ROUTES_KEPT {
            rings.routes.pop_front();
        }
        rings.routes.push_back(r);
    }

    /// The last [`HISTORY_MINUTES`] minutes up to `now_minute`, oldest first, one entry per
    /// minute (zeros where nothing was answered).
    pub fn minutes(&self, now_minute: u64) -> Vec<Minute> {
        let rings = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let first = (now_minute + 1).saturating_sub(HISTORY_MINUTES);
        (first..=now_minute)
            .map(|minute| {
                rings
                    .minutes
                    .iter()
                    .find(|m| m.minute == minute)
                    .copied()
                    .unwrap_or(Minute {
                        minute,
                        ..Minute::default()
                    })
            })
            .collect()
    }

    /// The decisions kept, newest first, as the API shows them; `node` and `region` are this
    /// node's.
    pub fn routes(&self, node: &str, region: &str) -> Vec<serde_json::Value> {
        let rings = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rings
            .routes
            .iter()
            .rev()
            .map(|r| {
                let (ran_on, ran_in) = r
                    .elsewhere
                    .as_ref()
                    .map_or((node, region), |(n, g)| (n.as_str(), g.as_str()));
                serde_json::json!({
                    "at_ms": r.at_ms,
                    "code": &*r.code,
                    "node": ran_on,
                    "region": ran_in,
                    "start": r.start.as_str(),
                    "latency_ms": r.latency_ms,
                    "why": r.why.describe(),
                })
            })
            .collect()
    }

    /// Per code type run here within the last [`HISTORY_MINUTES`] minutes up to
    /// `now_minute`: its (minute, runs) pairs, oldest first (minutes without one left out);
    /// older minutes and code types without a recent one are forgotten.
    pub fn ran_by_code(&self, now_minute: u64) -> Vec<(String, Vec<(u64, u64)>)> {
        let mut rings = self.0.lock().unwrap_or_else(|e| e.into_inner());
        forget_before(&mut rings.ran, now_minute);
        let mut all: Vec<_> = rings
            .ran
            .iter()
            .map(|(code, counts)| (code.to_string(), counts.iter().copied().collect()))
            .collect();
        all.sort();
        all
    }
}

/// Drop the (minute, runs) pairs older than [`HISTORY_MINUTES`] before `now_minute`, and the
/// code types left without one.
fn forget_before(ran: &mut HashMap<CodeKey, VecDeque<(u64, u64)>>, now_minute: u64) {
    ran.retain(|_, counts| {
        while counts
            .front()
            .is_some_and(|(m, _)| m + HISTORY_MINUTES <= now_minute)
        {
            counts.pop_front();
        }
        !counts.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Local;

    fn code(name: &str) -> CodeKey {
        crate::catalog::code_key("a", name)
    }

    fn at(code: &CodeKey, minute: u64, start: Start, elsewhere: bool) -> Routed {
        Routed {
            at_ms: minute * 60_000 + 1,
            code: code.clone(),
            elsewhere: elsewhere.then(|| ("n1".to_owned(), "eu".to_owned())),
            start,
            latency_ms: 1.0,
            why: Why::Here(Local::NoMembers),
        }
    }

    #[test]
    fn an_hour_of_minutes_runs_by_code_type_and_the_latest_decisions() {
        let r = Recent::default();
        let (f, g) = (code("f"), code("g"));
        r.routed(at(&f, 1_000, Start::Cold, false));
        r.routed(at(&f, 1_000, Start::Warm, false));
        r.routed(at(&g, 1_001, Start::Warm, true));
        r.routed(at(&f, 1_002, Start::Prewarmed, false));
        let minutes = r.minutes(1_003);
        assert_eq!(minutes.len(), HISTORY_MINUTES as usize);
        let of = |m: u64| minutes.iter().find(|x| x.minute == m).copied();
        assert_eq!(of(1_000).map(|m| (m.cold, m.warm)), Some((1, 1)));
        assert_eq!(
            of(1_001).map(|m| m.warm),
            Some(1),
            "counted where it was answered"
        );
        assert_eq!(of(1_002).map(|m| m.prewarmed), Some(1));
        // Runs by code type: only what ran here (g ran on n1).
        assert_eq!(
            r.ran_by_code(1_003),
            vec![("a/f".to_owned(), vec![(1_000, 2), (1_002, 1)])]
        );
        let routes = r.routes("n0", "us");
        assert_eq!(routes.len(), 4);
        assert_eq!(routes[0]["code"], "a/f", "newest first");
        assert_eq!(
            (routes[1]["node"].as_str(), routes[1]["region"].as_str()),
            (Some("n1"), Some("eu"))
        );
        assert_eq!(routes[3]["node"], "n0");
        // An hour on, the first minutes have left; at most ROUTES_KEPT decisions stay.
        for _ in 0..ROUTES_KEPT {
            r.routed(at(&f, 1_000 + HISTORY_MINUTES, Start::Warm, false));
        }
        let later = r.minutes(1_000 + HISTORY_MINUTES);
        assert_eq!(later.first().map(|m| m.minute), Some(1_001));
        assert_eq!(r.routes("n0", "us").len(), ROUTES_KEPT);
        assert_eq!(
            r.ran_by_code(1_002 + HISTORY_MINUTES),
            vec![(
                "a/f".to_owned(),
                vec![(1_000 + HISTORY_MINUTES, ROUTES_KEPT as u64)]
            )]
        );
    }

    #[test]
    fn code_types_that_stopped_running_are_forgotten_without_a_reader() {
        let r = Recent::default();
        for i in 0..1_000 {
            r.routed(at(&code(&format!("c{i}")), 5, Start::Cold, false));
        }
        let kept = |r: &Recent| r.0.lock().map(|g| g.ran.len()).unwrap_or(0);
        assert_eq!(kept(&r), 1_000);
        // An hour on, one run: only its code type is kept, though nobody read the history.
        r.routed(at(&code("f"), 5 + HISTORY_MINUTES, Start::Warm, false));
        assert_eq!(kept(&r), 1);
    }
}
