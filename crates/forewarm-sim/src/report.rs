//! The result of a simulation run: per policy totals and per-application percentiles.

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::app_class::AppClass;
use crate::engine::AppOutcome;
use crate::regional::RegionalFigures;

/// What was simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    /// The trace directory.
    pub dir: String,
    /// Applications simulated.
    pub apps: usize,
    /// Invocations in the measured window over those applications.
    pub invocations: u64,
    /// Measured minutes.
    pub minutes: u64,
}

/// Percentiles over applications of their cold-start percentage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AppColdStartPct {
    /// Median application.
    pub p50: f64,
    /// 75th percentile: the paper's headline number.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One policy's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyReport {
    /// Policy name.
    pub name: String,
    /// Invocations in the measured window.
    pub invocations: u64,
    /// Of which cold.
    pub cold_starts: u64,
    /// Cold starts over invocations, %.
    pub cold_start_pct: f64,
    /// Per-application cold-start % percentiles (applications with ≥ 1 invocation).
    pub app_cold_start_pct: AppColdStartPct,
    /// Idle container memory-time, MiB·s.
    pub wasted_memory_mib_s: f64,
    /// Containers spawned by prediction.
    pub prewarms: u64,
    /// Invocations no warm container was big enough for.
    pub misfits: u64,
    /// CPU seconds spent simulating this policy (summed over threads).
    pub sim_seconds: f64,
    /// The same figures by application class (classes without applications left out).
    pub by_class: Vec<ClassSummary>,
    /// Latency, requests served elsewhere and dollars (`forewarm simulate --regions`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub regional: Option<RegionalFigures>,
}

/// One policy's figures over the applications of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassSummary {
    /// The class.
    pub class: AppClass,
    /// Applications in it.
    pub apps: usize,
    /// Invocations measured.
    pub invocations: u64,
    /// Of which cold.
    pub cold_starts: u64,
    /// Idle container memory-time, MiB·s.
    pub wasted_memory_mib_s: f64,
    /// Containers spawned by prediction.
    pub prewarms: u64,
    /// Applications the policy said it keeps cold on purpose (its reason starts `cold`).
    pub kept_cold: usize,
}

/// One application under one policy: a row of `--per-app`.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRow {
    /// Position of the application in the trace.
    pub index: usize,
    /// HashOwner.
    pub owner: String,
    /// HashApp.
    pub app: String,
    /// Its class.
    pub class: AppClass,
    /// Policy name.
    pub policy: String,
    /// What happened.
    pub outcome: AppOutcome,
    /// The class or reason the policy gave for it at the end (`AppPolicy::assigned`).
    pub reason: String,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was simulated.
    pub trace: TraceSummary,
    /// One entry per policy, in the order asked.
    pub policies: Vec<PolicyReport>,
    /// One row per application and policy (`--per-app`; not in the JSON).
    #[serde(skip)]
    pub apps: Vec<AppRow>,
}

/// Nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    forewarm_policy::nearest_rank(sorted, q).unwrap_or(0.0)
}

impl PolicyReport {
    /// Fold the outcomes of every application under one policy.
    pub fn from_outcomes(name: String, outcomes: &[AppOutcome], sim_seconds: f64) -> Self {
        Self::from_classified(name, outcomes, &[], sim_seconds)
    }

    /// Fold the outcomes of every application under one policy, with each application's class
    /// and whether the policy kept it cold on purpose (`classes` empty: no breakdown).
    pub fn from_classified(
        name: String,
        outcomes: &[AppOutcome],
        classes: &[(AppClass, bool)],
        sim_seconds: f64,
    ) -> Self {
        let mut by_class: Vec<ClassSummary> = AppClass::ALL
            .iter()
            .map(|&class| ClassSummary {
                class,
                apps: 0,
                invocations: 0,
                cold_starts: 0,
                wasted_memory_mib_s: 0.0,
                prewarms: 0,
                kept_cold: 0,
            })
            .collect();
        for (o, (class, cold)) in outcomes.iter().zip(classes) {
            if let Some(c) = by_class.iter_mut().find(|c| c.class == *class) {
                c.apps += 1;
                c.invocations += o.invocations;
                c.cold_starts += o.cold_starts;
                c.wasted_memory_mib_s += o.wasted_mib_ms / 1000.0;
                c.prewarms += o.prewarms;
                c.kept_cold += usize::from(*cold);
            }
        }
        by_class.retain(|c| c.apps > 0);
        let mut total = AppOutcome::default();
        let mut per_app: Vec<f64> = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            total.invocations += o.invocations;
            total.cold_starts += o.cold_starts;
            total.wasted_mib_ms += o.wasted_mib_ms;
            total.prewarms += o.prewarms;
            total.misfits += o.misfits;
            per_app.extend(o.cold_start_pct());
        }
        per_app.sort_by(f64::total_cmp);
        Self {
            name,
            invocations: total.invocations,
            cold_starts: total.cold_starts,
            cold_start_pct: total.cold_start_pct().unwrap_or(0.0),
            app_cold_start_pct: AppColdStartPct {
                p50: percentile(&per_app, 0.50),
                p75: percentile(&per_app, 0.75),
                p90: percentile(&per_app, 0.90),
                p99: percentile(&per_app, 0.99),
            },
            wasted_memory_mib_s: total.wasted_mib_ms / 1000.0,
            prewarms: total.prewarms,
            misfits: total.misfits,
            sim_seconds,
            by_class,
            regional: None,
        }
    }
}

impl ClassSummary {
    /// Cold starts over invocations, % (0 without invocations).
    pub fn cold_start_pct(&self) -> f64 {
        if self.invocations == 0 {
            0.0
        } else {
            100.0 * self.cold_starts as f64 / self.invocations as f64
        }
    }
}

impl Report {
    /// The per-application rows as CSV, header first.
    pub fn per_app_csv(&self) -> String {
        let mut out = String::from(
            "app_index,owner,app,class,policy,invocations,cold_starts,cold_pct,prewarmed_starts,\
             idle_mib_s,prewarms,misfits,reason\n",
        );
        for r in &self.apps {
            let o = &r.outcome;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{:.3},{},{:.1},{},{},\"{}\"",
                r.index,
                r.owner,
                r.app,
                r.class.label(),
                r.policy,
                o.invocations,
                o.cold_starts,
                o.cold_start_pct().unwrap_or(0.0),
                o.prewarmed_starts,
                o.wasted_mib_ms / 1000.0,
                o.prewarms,
                o.misfits,
                r.reason.replace('"', "'")
            );
        }
        out
    }

    /// The breakdown by class: per class and policy, cold % and waste, and both relative to
    /// `reference` (a policy name) when it ran.
    pub fn class_table(&self, reference: &str) -> String {
        let mut out = String::new();
        let reference = self.policies.iter().find(|p| p.name == reference);
        let _ = writeln!(
            out,
            "{:<9} {:<22} {:>5} {:>10} {:>7} {:>13} {:>9} {:>9} {:>9}",
            "class",
            "policy",
            "apps",
            "invocations",
            "cold%",
            "waste MiB·s",
            "cold/ref",
            "waste/ref",
            "kept cold"
        );
        for class in AppClass::ALL {
            let r = reference.and_then(|p| p.by_class.iter().find(|c| c.class == class));
            for p in &self.policies {
                let Some(c) = p.by_class.iter().find(|c| c.class == class) else {
                    continue;
                };
                let ratio = |a: f64, b: Option<f64>| {
                    b.filter(|b| *b > 0.0)
                        .map_or("-".to_owned(), |b| format!("{:.2}", a / b))
                };
                let _ = writeln!(
                    out,
                    "{:<9} {:<22} {:>5} {:>10} {:>7.2} {:>13.4e} {:>9} {:>9} {:>9}",
                    class.label(),
                    p.name,
                    c.apps,
                    c.invocations,
                    c.cold_start_pct(),
                    c.wasted_memory_mib_s,
                    ratio(c.cold_starts as f64, r.map(|r| r.cold_starts as f64)),
                    ratio(c.wasted_memory_mib_s, r.map(|r| r.wasted_memory_mib_s)),
                    c.kept_cold
                );
            }
        }
        out
    }

    /// keepalive-10m's wasted memory-time, the unit waste is normalised to; `None` when it did
    /// not run or wasted nothing.
    pub fn waste_baseline(&self) -> Option<f64> {
        self.policies
            .iter()
            .find(|p| p.name == "keepalive-10m")
            .map(|p| p.wasted_memory_mib_s)
            .filter(|w| *w > 0.0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.trace;
        writeln!(
            f,
            "trace {}: {} apps, {} invocations, {} minutes measured",
            t.dir, t.apps, t.invocations, t.minutes
        )?;
        let baseline = self.waste_baseline();
        writeln!(
            f,
            "{:<22} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>14} {:>9} {:>9} {:>8} {:>8}",
            "policy",
            "cold",
            "cold%",
            "app p50",
            "app p75",
            "app p90",
            "app p99",
            "waste MiB·s",
            "waste/ka10",
            "prewarms",
            "misfits",
            "cpu s"
        )?;
        for p in &self.policies {
            let ratio = baseline.map_or("-".to_owned(), |b| {
                format!("{:.3}", p.wasted_memory_mib_s / b)
            });
            let a = p.app_cold_start_pct;
            writeln!(
                f,
                "{:<22} {:>8} {:>7.3} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>14.4e} {:>9} {:>9} {:>8} {:>8.2}",
                p.name,
                p.cold_starts,
                p.cold_start_pct,
                a.p50,
                a.p75,
                a.p90,
                a.p99,
                p.wasted_memory_mib_s,
                ratio,
                p.prewarms,
                p.misfits,
                p.sim_seconds
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.75), 75.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[5.0], 0.5), 5.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn apps_without_invocations_do_not_count() {
        let a = AppOutcome {
            invocations: 10,
            cold_starts: 5,
            ..AppOutcome::default()
        };
        let r = PolicyReport::from_outcomes("x".into(), &[a, AppOutcome::default()], 0.0);
        assert_eq!(r.app_cold_start_pct.p50, 50.0);
        assert_eq!(r.cold_start_pct, 50.0);
    }
}
