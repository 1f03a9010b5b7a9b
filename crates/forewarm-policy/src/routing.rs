//! Where a request runs: the Router's decision as a pure function over what the home node
//! knows — whether it holds an idle fit, its expected cold start and queue wait, and for each
//! other member its region, whether its published inventory holds an idle fit, how old that
//! inventory is, the measured round trip and the queue wait it measured.
//!
//! No clock, lock or I/O: the node's `router::choose` reads its state into [`Here`] and
//! [`Remote`]s and carries out the [`Decision`], and the multi-region simulator
//! (`forewarm simulate --regions`) asks the same function per request; the table tests below
//! pin the rule down.
//!
//! The rule (DESIGN.md, request path step 3): score every region the tenant may use with
//! `rtt(home, r) + (warm fit in r ? 0 : cold start) + queue_wait(r)`. Only members with an
//! idle fit are candidates (a remote cold start is never better than a local one plus a round
//! trip), so a candidate scores `rtt + queue wait` and home scores `cold start + queue wait`;
//! a member is chosen only when it is strictly faster.
//!
//! A tenant whose `allowed_regions` leave out the home region never runs at home
//! ([`route_elsewhere`]): the request goes to the member of an allowed region with the lowest
//! `rtt + queue wait (+ a cold start there when it holds no idle fit)`, which may start a
//! container for it; with none alive, it is refused rather than run where it may not.

use std::time::Duration;

/// An inventory older than this is not trusted (pushed every 250 ms; a member that stopped
/// pushing has lost its session or is gone).
pub const INVENTORY_FRESH: Duration = Duration::from_secs(2);

/// The home node, as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Here {
    /// An idle container of this node fits the request.
    pub fits: bool,
    /// The expected cold start here, ms (not read when `fits`).
    pub cold_ms: f64,
    /// The measured wait of a request here before it runs, ms.
    pub queue_ms: f64,
}

/// Another member, as routing sees it; `member` is whatever the caller identifies it by.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote<'a, T> {
    /// The caller's handle on the member.
    pub member: T,
    /// Its region.
    pub region: &'a str,
    /// How old its inventory is.
    pub inventory_age: Duration,
    /// Its inventory holds an idle container of the code type that fits.
    pub fits: bool,
    /// Measured round trip to it, ms; `None` until a ping answered.
    pub rtt_ms: Option<f64>,
    /// The queue wait it measured, ms.
    pub queue_ms: f64,
}

/// Why a request runs here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// An idle container here fits: nothing can beat it.
    WarmHere,
    /// No other member is known.
    NoMembers,
    /// No member the tenant may use holds a fresh idle fit with a measured round trip.
    NoCandidate,
    /// Candidates exist, but none is faster than starting here.
    NothingFaster,
}

/// Where a request runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<T> {
    /// On this node.
    Local(Local),
    /// On `member`, expected to take `score_ms` (round trip + its queue wait) against
    /// `local_ms` (cold start + queue wait) here.
    Forward {
        /// The member.
        member: T,
        /// Its score, ms.
        score_ms: f64,
        /// The local score it beat, ms.
        local_ms: f64,
    },
}

/// Decide where a request runs, given this node's view and the members'; `may_use` says
/// whether the tenant may run in a region.
pub fn route<'a, T>(
    here: Here,
    members: impl IntoIterator<Item = Remote<'a, T>>,
    may_use: impl Fn(&str) -> bool,
) -> Decision<T> {
    if here.fits {
        return Decision::Local(Local::WarmHere);
    }
    let mut members = members.into_iter().peekable();
    if members.peek().is_none() {
        return Decision::Local(Local::NoMembers);
    }
    let candidates = members
        .filter(|m| m.inventory_age < INVENTORY_FRESH && m.fits && may_use(m.region))
        .filter_map(|m| m.rtt_ms.map(|rtt| (rtt + m.queue_ms, m.member)));
    let local_ms = here.cold_ms + here.queue_ms;
    let mut any = false;
    let mut best: Option<(f64, T)> = None;
    for (score, member) in candidates {
        any = true;
        if score < local_ms && best.as_ref().is_none_or(|(b, _)| score < *b) {
            best = Some((score, member));
        }
    }
    match best {
        Some((score_ms, member)) => Decision::Forward {
            member,
            score_ms,
            local_ms,
        },
        None if any => Decision::Local(Local::NothingFaster),
        None => Decision::Local(Local::NoCandidate),
    }
}

/// Why a request ran where it did (the dashboard's recent routing decisions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Why {
    /// Decided here and run here, for this reason.
    Here(Local),
    /// Sent to a member whose idle fit was expected to answer in `score_ms` (round trip +
    /// its queue wait) against `local_ms` (a cold start + the queue wait) here.
    Faster {
        /// Its score, ms.
        score_ms: f64,
        /// Home's, ms.
        local_ms: f64,
    },
    /// Sent to a member of a region the tenant may use: it may not run in this one.
    NotAllowedHere,
    /// Sent to a member, which declined it (its fit was gone): run here.
    Declined,
    /// Sent here by another region.
    Forwarded,
}

impl Why {
    /// In words, for a person.
    pub fn describe(&self) -> String {
        match self {
            Why::Here(Local::WarmHere) => "an idle container here fits".into(),
            Why::Here(Local::NoMembers) => "no other member".into(),
            Why::Here(Local::NoCandidate) => {
                "no member of an allowed region holds an idle fit".into()
            }
            Why::Here(Local::NothingFaster) => {
                "members hold a fit, none faster than starting here".into()
            }
            Why::Faster { score_ms, local_ms } => {
                format!("a warm fit there: {score_ms:.1} ms against {local_ms:.1} ms to start here")
            }
            Why::NotAllowedHere => "the tenant may not run in this node's region".into(),
            Why::Declined => "sent to a member, which no longer had the fit: run here".into(),
            Why::Forwarded => "sent here by another region".into(),
        }
    }
}

/// A round trip not measured yet counts as this much, ms (the member is alive — its inventory
/// is fresh — but nothing says how far it is; a measured one is preferred).
pub const UNMEASURED_RTT_MS: f64 = 1_000.0;

/// Where a request runs that may not run at home: the member of a region the tenant may
/// use (`may_use`) with a fresh inventory and the lowest `rtt + queue wait`, plus `cold_ms`
/// (a start there, estimated as at home) when its inventory holds no idle fit. `None`: no
/// such member is alive; the request must not run anywhere.
pub fn route_elsewhere<'a, T>(
    cold_ms: f64,
    members: impl IntoIterator<Item = Remote<'a, T>>,
    may_use: impl Fn(&str) -> bool,
) -> Option<Elsewhere<T>> {
    members
        .into_iter()
        .filter(|m| m.inventory_age < INVENTORY_FRESH && may_use(m.region))
        .map(|m| Elsewhere {
            score_ms: m.rtt_ms.unwrap_or(UNMEASURED_RTT_MS)
                + m.queue_ms
                + if m.fits { 0.0 } else { cold_ms },
            fits: m.fits,
            member: m.member,
        })
        .fold(None, |best: Option<Elsewhere<T>>, e| match best {
            Some(b) if b.score_ms <= e.score_ms => Some(b),
            _ => Some(e),
        })
}

/// The member a request that may not run at home goes to ([`route_elsewhere`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Elsewhere<T> {
    /// The member.
    pub member: T,
    /// Its inventory holds an idle fit (otherwise it starts a container for the request).
    pub fits: bool,
    /// Its score, ms.
    pub score_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLD: Here = Here {
        fits: false,
        cold_ms: 300.0,
        queue_ms: 0.0,
    };

    fn member(id: u32, region: &str, rtt: f64, queue: f64) -> Remote<'_, u32> {
        Remote {
            member: id,
            region,
            inventory_age: Duration::from_millis(100),
            fits: true,
            rtt_ms: Some(rtt),
            queue_ms: queue,
        }
    }

    fn chosen(d: &Decision<u32>) -> Option<u32> {
        match d {
            Decision::Forward { member, .. } => Some(*member),
            Decision::Local(_) => None,
        }
    }

    #[test]
    fn t01_a_local_fit_always_runs_here() {
        let here = Here { fits: true, ..COLD };
        let d = route(here, [member(1, "eu", 1.0, 0.0)], |_| true);
        assert_eq!(d, Decision::Local(Local::WarmHere));
    }

    #[test]
    fn t02_no_members_runs_here() {
        let d = route(COLD, Vec::<Remote<'_, u32>>::new(), |_| true);
        assert_eq!(d, Decision::Local(Local::NoMembers));
    }

    #[test]
    fn t03_table_of_single_members() {
        let fresh = member(1, "eu", 20.0, 0.0);
        // (case, member, expected decision)
        let table: Vec<(&str, Remote<'_, u32>, Option<u32>, Local)> = vec![
            (
                "near and idle beats a cold start",
                fresh.clone(),
                Some(1),
                Local::WarmHere,
            ),
            (
                "queued past the cold start: here",
                member(1, "eu", 20.0, 400.0),
                None,
                Local::NothingFaster,
            ),
            (
                "a round trip longer than the cold start: here",
                member(1, "eu", 350.0, 0.0),
                None,
                Local::NothingFaster,
            ),
            (
                "equal scores: here (remote must be strictly faster)",
                member(1, "eu", 300.0, 0.0),
                None,
                Local::NothingFaster,
            ),
            (
                "stale inventory is not trusted",
                Remote {
                    inventory_age: INVENTORY_FRESH,
                    ..fresh.clone()
                },
                None,
                Local::NoCandidate,
            ),
            (
                "no idle fit there",
                Remote {
                    fits: false,
                    ..fresh.clone()
                },
                None,
                Local::NoCandidate,
            ),
            (
                "no round trip measured yet",
                Remote {
                    rtt_ms: None,
                    ..fresh.clone()
                },
                None,
                Local::NoCandidate,
            ),
            (
                "a region the tenant may not use",
                member(1, "ap", 20.0, 0.0),
                None,
                Local::NoCandidate,
            ),
        ];
        for (case, m, want, why) in table {
            let d = route(COLD, [m], |r| r != "ap");
            assert_eq!(chosen(&d), want, "{case}: {d:?}");
            if want.is_none() {
                assert_eq!(d, Decision::Local(why), "{case}");
            }
        }
    }

    #[test]
    fn t04_the_lowest_score_wins_and_carries_both_scores() {
        // The nearer member is queued; the farther one, idle, wins.
        let members = [
            member(1, "eu", 10.0, 250.0),
            member(2, "us", 80.0, 0.0),
            member(3, "sa", 120.0, 0.0),
        ];
        let d = route(COLD, members, |_| true);
        assert_eq!(
            d,
            Decision::Forward {
                member: 2,
                score_ms: 80.0,
                local_ms: 300.0
            }
        );
    }

    #[test]
    fn t05_home_queue_wait_counts_against_running_here() {
        // 250 ms away loses to a 200 ms cold start, but not when 100 ms of queue wait here
        // come on top of it.
        let fast_start = Here {
            cold_ms: 200.0,
            ..COLD
        };
        assert_eq!(
            chosen(&route(fast_start, [member(1, "eu", 250.0, 0.0)], |_| true)),
            None
        );
        let queued = Here {
            queue_ms: 100.0,
            ..fast_start
        };
        assert_eq!(
            chosen(&route(queued, [member(1, "eu", 250.0, 0.0)], |_| true)),
            Some(1)
        );
    }

    #[test]
    fn t06_a_home_region_the_tenant_may_not_use_sends_it_to_the_nearest_allowed_member() {
        let cold = |id, region, rtt| Remote {
            fits: false,
            ..member(id, region, rtt, 0.0)
        };
        let allowed = |r: &str| r != "ap";
        // A warm fit 90 ms away beats a cold start 20 ms away (20 + 300 > 90).
        let d = route_elsewhere(
            300.0,
            [cold(1, "eu", 20.0), member(2, "us", 90.0, 0.0)],
            allowed,
        );
        assert_eq!(
            d,
            Some(Elsewhere {
                member: 2,
                fits: true,
                score_ms: 90.0
            })
        );
        // Nothing warm anywhere: the nearest allowed member starts one; the nearer member of
        // a region the tenant may not use is never chosen.
        let d = route_elsewhere(
            300.0,
            [cold(1, "ap", 5.0), cold(2, "us", 90.0), cold(3, "eu", 40.0)],
            allowed,
        );
        assert_eq!(d.map(|e| (e.member, e.fits)), Some((3, false)));
        // A member whose round trip is not measured yet is still a place to run.
        let unmeasured = Remote {
            rtt_ms: None,
            ..cold(1, "eu", 0.0)
        };
        assert_eq!(
            route_elsewhere(300.0, [unmeasured], allowed).map(|e| e.score_ms),
            Some(UNMEASURED_RTT_MS + 300.0)
        );
        // Only stale members, or only regions it may not use: nowhere.
        let stale = Remote {
            inventory_age: INVENTORY_FRESH,
            ..member(1, "eu", 20.0, 0.0)
        };
        assert_eq!(route_elsewhere(300.0, [stale], allowed), None);
        assert_eq!(route_elsewhere(300.0, [cold(1, "ap", 1.0)], allowed), None);
        assert_eq!(
            route_elsewhere(300.0, Vec::<Remote<'_, u32>>::new(), allowed),
            None
        );
    }
}
