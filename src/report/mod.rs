//! A lab run's report: the timeline of its phases (a table for people, JSON for machines).

mod timeline;

pub use timeline::{Phase, Timeline};

use serde::Serialize;

use crate::lab::Finding;

#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    pub lab: String,
    pub title: String,
    /// `Deployment dev/orders-api`.
    pub target: String,
    pub healthy_image: String,
    pub broken_image: String,
    /// Waiting reasons in the order the kubelet reported them.
    pub observed: Vec<String>,
    pub finding: Finding,
    pub phases: Vec<Phase>,
    /// From the break until the first expected failure was seen.
    pub time_to_detect_s: f64,
    /// From the break until the rollout was healthy again.
    pub time_to_recover_s: f64,
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
            phase.detail.clone(),
        ]);
    }
    format!(
        "Lab {}: {}\nTarget: {} ({} -> {})\n\n{table}\n\nDiagnosis: {}\nDetected in {:.1}s, recovered in {:.1}s.\n",
        report.lab,
        report.title,
        report.target,
        report.healthy_image,
        report.broken_image,
        report.finding.summary,
        report.time_to_detect_s,
        report.time_to_recover_s,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::classify;

    #[test]
    fn the_table_shows_every_phase_and_the_diagnosis() {
        let report = LabReport {
            lab: "bad-image-tag".into(),
            title: "t".into(),
            target: "Deployment dev/orders-api".into(),
            healthy_image: "localhost:5001/orders-api:abc".into(),
            broken_image: "localhost:5001/orders-api:nope".into(),
            observed: vec!["ErrImagePull".into()],
            finding: classify(
                "localhost:5001/orders-api:nope",
                &[],
                Some(&["abc".to_string()]),
            ),
            phases: vec![Phase {
                name: "ErrImagePull".into(),
                detail: "pod p".into(),
                at_s: 2.25,
                took_s: 2.0,
            }],
            time_to_detect_s: 2.25,
            time_to_recover_s: 9.5,
        };
        let text = table(&report);
        assert!(text.contains("ErrImagePull"), "{text}");
        assert!(text.contains("+2.2s") || text.contains("+2.3s"), "{text}");
        assert!(text.contains("has no tag \"nope\"; it has abc"), "{text}");
        assert!(text.contains("recovered in 9.5s"), "{text}");
    }
}
