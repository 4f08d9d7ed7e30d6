//! How labs read, beside the lab's own data: a run's timeline as a table, its statistics,
//! what an attendee sees at each verb, and a room's HTML page.

pub mod attendee;
pub mod html;

use crate::lab::report::{LabReport, RunSummary};
use crate::ui::Report;

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
            crate::ui::format_seconds(Some(phase.took_s)),
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
        "Lab {}: {}\nTarget: {} (was {})\n\n{table}\n\nDiagnosis: {diagnosis}\nDetected in {}, recovered in {}.\n",
        report.lab,
        report.title,
        report.target,
        report.healthy_image,
        crate::ui::format_seconds(Some(report.time_to_detect_s)),
        crate::ui::format_seconds(Some(report.time_to_recover_s)),
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

impl Report for LabReport {
    fn text(&self) -> String {
        table(self)
    }
}

impl Report for RunSummary {
    fn text(&self) -> String {
        stats_table(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::timeline::Phase;

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
}
