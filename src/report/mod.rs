//! A lab run's report: the timeline of its phases (a table for people, JSON for machines).

pub mod attendee;
pub mod html;
mod timeline;

pub use timeline::{Phase, Timeline, unix_ms};

use crate::diagnose::Finding;

use serde::Serialize;

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

/// The statistics of several runs as a table.
pub fn stats_table(summary: &RunSummary) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(vec!["PHASE", "RUNS", "MIN", "MEDIAN", "P95"]);
    for s in &summary.stats {
        table.add_row(vec![
            s.phase.clone(),
            s.n.to_string(),
            format!("{:.2}s", s.min_s),
            format!("{:.2}s", s.median_s),
            format!("{:.2}s", s.p95_s),
        ]);
    }
    format!(
        "Lab {}: {} runs\n\n{table}\n",
        summary.lab,
        summary.runs.len()
    )
}

/// At most `max` characters, with `…` when cut (the JSON report keeps the whole text).
fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// `+13.2s`; a mark a hair before the break (the baseline) prints as `+0.0s`, not `-0.0s`.
fn signed_seconds(s: f64) -> String {
    let s = if s.abs() < 0.05 { 0.0 } else { s };
    format!("{s:+.1}s")
}

/// The report as people read it: what happened, when, and what was wrong.
pub fn table(report: &LabReport) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(vec!["PHASE", "AT", "TOOK", "DETAIL"]);
    for phase in &report.phases {
        table.add_row(vec![
            phase.name.clone(),
            signed_seconds(phase.at_s),
            format!("{:.1}s", phase.took_s),
            ellipsize(&phase.detail, 90),
        ]);
    }
    let summary = report
        .finding
        .as_ref()
        .map_or("no problem found", |f| f.summary.as_str());
    let diagnosis = match (&report.expected_cause, report.diagnosis_matches) {
        (Some(expected), Some(false)) => format!("{summary} (the lab expects {expected})"),
        _ => summary.to_string(),
    };
    let mut text = format!(
        "Lab {}: {}\nTarget: {} (was {})\n\n{table}\n\nDiagnosis: {diagnosis}\nDetected in {:.1}s, recovered in {:.1}s.\n",
        report.lab,
        report.title,
        report.target,
        report.healthy_image,
        report.time_to_detect_s,
        report.time_to_recover_s,
    );
    if !report.commits.is_empty() {
        text.push_str(&format!(
            "Commits: {} (break), {} (revert)\n",
            report.commits.join(", "),
            report.reverts.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_every_phase_and_the_diagnosis() {
        let report = LabReport {
            lab: "bad-image-tag".into(),
            title: "t".into(),
            target: "Deployment dev/orders-api".into(),
            healthy_image: "localhost:5001/orders-api:abc".into(),
            broke: vec!["image set to localhost:5001/orders-api:nope".into()],
            observed: vec!["ErrImagePull".into()],
            expected_cause: Some("tag-not-found".into()),
            diagnosis_matches: Some(true),
            fixed_by: vec![],
            commits: vec![],
            reverts: vec![],
            finding: None,
            phases: vec![Phase {
                name: "ErrImagePull".into(),
                detail: "pod p".into(),
                at_s: 2.25,
                took_s: 2.0,
            }],
            time_to_detect_s: 2.25,
            time_to_recover_s: 9.5,
            broke_unix_ms: 1_700_000_000_000,
            detected_unix_ms: 1_700_000_002_250,
        };
        let text = table(&report);
        assert!(text.contains("ErrImagePull"), "{text}");
        assert!(text.contains("+2.2s") || text.contains("+2.3s"), "{text}");
        assert!(text.contains("Diagnosis: no problem found"), "{text}");
        assert!(text.contains("recovered in 9.5s"), "{text}");
    }

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
