//! What a lab run measured: the report `lab run` returns and its statistics over runs.
//! `report` renders it; the data is the lab's own.

use serde::Serialize;

pub use super::timeline::{Phase, Timeline, unix_ms};
use crate::diagnose::Finding;

#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    pub lab: String,
    pub title: String,
    /// `Deployment dev/orders-api`.
    pub target: String,
    pub healthy_image: String,
    /// What the break did, step by step.
    pub broke: Vec<String>,
    /// Each symptom with the evidence it was first seen with, in the order seen.
    pub observed: Vec<String>,
    /// What `kindlab diagnose` found (None: nothing wrong it could name).
    pub finding: Option<Finding>,
    /// The cause the lab expects a correct diagnosis to name, and whether this one did.
    pub expected_cause: Option<String>,
    pub diagnosis_matches: Option<bool>,
    /// What the solution did.
    pub fixed_by: Vec<String>,
    pub phases: Vec<Phase>,
    /// From the break until every symptom was seen.
    pub time_to_detect_s: f64,
    /// From the break until the lab's checks passed again.
    pub time_to_recover_s: f64,
    /// The break's wall clock, ms since the Unix epoch: the zero of every phase's `at_s`, so
    /// a phase happened at `broke_unix_ms + at_s * 1000` (for comparing with other clocks).
    pub broke_unix_ms: u64,
    /// The wall clock when the last symptom was seen, ms since the Unix epoch.
    pub detected_unix_ms: u64,
    /// Commits the lab made (its break) and their reverts (its fix), for git labs.
    pub commits: Vec<String>,
    pub reverts: Vec<String>,
}

/// Several runs of one lab: each phase's duration as min, median and p95.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub lab: String,
    pub runs: Vec<LabReport>,
    pub stats: Vec<PhaseStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseStats {
    pub phase: String,
    pub n: usize,
    pub min_s: f64,
    pub median_s: f64,
    pub p95_s: f64,
}

/// Per phase (in the order of the first run), over every run that has it.
pub fn phase_stats(runs: &[LabReport]) -> Vec<PhaseStats> {
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        for phase in &run.phases {
            if !names.contains(&phase.name) {
                names.push(phase.name.clone());
            }
        }
    }
    let mut rows: Vec<PhaseStats> = names
        .into_iter()
        .map(|name| {
            let took: Vec<f64> = runs
                .iter()
                .flat_map(|r| r.phases.iter().filter(|p| p.name == name).map(|p| p.took_s))
                .collect();
            stats(&name, took)
        })
        .collect();
    for (name, values) in [
        (
            "time to detect",
            runs.iter().map(|r| r.time_to_detect_s).collect::<Vec<_>>(),
        ),
        (
            "time to recover",
            runs.iter().map(|r| r.time_to_recover_s).collect(),
        ),
    ] {
        rows.push(stats(name, values));
    }
    rows
}

fn stats(name: &str, mut values: Vec<f64>) -> PhaseStats {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    // Nearest-rank percentiles: with few runs, the p95 is the slowest run, honestly.
    let rank = |p: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        values[index]
    };
    let median = if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    PhaseStats {
        phase: name.to_string(),
        n,
        min_s: values.first().copied().unwrap_or_default(),
        median_s: median,
        p95_s: rank(0.95),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_min_median_and_nearest_rank_p95() {
        let s = stats("x", vec![3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.min_s, s.median_s, s.p95_s, s.n), (1.0, 2.5, 10.0, 4));
        let one = stats("x", vec![4.0]);
        assert_eq!((one.min_s, one.median_s, one.p95_s), (4.0, 4.0, 4.0));
        let many: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(stats("x", many).p95_s, 19.0);
    }
}
