//! What one action did, for its status line and for `up --output json`.

use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Made something that was not there.
    Created,
    /// Everything was already as desired.
    Reused,
    /// Fixed drift in place; `detail` says what.
    Repaired,
    /// Took into use something this workspace did not create (`--adopt`).
    Adopted,
    /// Did not apply here (e.g. node wiring with `--context`).
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    pub action: &'static str,
    pub outcome: Outcome,
    /// One line per thing done or repaired.
    pub details: Vec<String>,
    /// The plan this action carried out, in the words `up --dry-run` prints it.
    pub planned: Vec<String>,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: Duration,
    /// Seconds from the start of `up` to this action's start (`up --output json`; unset
    /// elsewhere), so a reader sees which actions overlapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_s: Option<f64>,
    /// When the action started: the report is made as it ends, `duration` after its start.
    #[serde(skip)]
    pub started_at: Instant,
}

impl ActionReport {
    pub fn new(
        action: &'static str,
        outcome: Outcome,
        details: Vec<String>,
        duration: Duration,
    ) -> Self {
        ActionReport {
            action,
            outcome,
            details,
            planned: Vec::new(),
            duration,
            started_s: None,
            started_at: Instant::now()
                .checked_sub(duration)
                .unwrap_or_else(Instant::now),
        }
    }

    /// Sets `started_s`: this action's start in seconds after `since` (up's start), in ms.
    pub fn offset_from(&mut self, since: Instant) {
        let s = self
            .started_at
            .saturating_duration_since(since)
            .as_secs_f64();
        self.started_s = Some((s * 1000.0).round() / 1000.0);
    }

    /// The report with the plan it carried out.
    pub fn with_plan(mut self, planned: Vec<String>) -> Self {
        self.planned = planned;
        self
    }

    /// The status line's summary: the outcome, then what was done.
    pub fn summary(&self) -> String {
        let word = match self.outcome {
            Outcome::Created => "created",
            Outcome::Reused => "reused",
            Outcome::Repaired => "repaired",
            Outcome::Adopted => "adopted",
            Outcome::Skipped => "skipped",
        };
        if self.details.is_empty() {
            word.to_string()
        } else {
            format!("{word}: {}", self.details.join("; "))
        }
    }
}

/// What one `up` did: each action's report, the images and the objects applied.
#[derive(Debug, Serialize)]
pub struct UpSummary {
    pub cluster: String,
    pub context: String,
    pub registry: String,
    pub actions: Vec<ActionReport>,
    pub images: Vec<crate::images::ImageResult>,
    pub applied: Vec<crate::k8s::Applied>,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: std::time::Duration,
}

impl UpSummary {
    /// True when this run changed nothing (every action reused or skipped).
    pub fn is_noop(&self) -> bool {
        self.actions
            .iter()
            .all(|a| matches!(a.outcome, Outcome::Reused | Outcome::Skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_started_its_duration_before_its_report_and_is_offset_from_up() {
        let up_started = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        let mut report = ActionReport::new(
            "cluster",
            Outcome::Created,
            vec![],
            Duration::from_millis(20),
        );
        report.offset_from(up_started);
        let started = report.started_s.unwrap();
        // Made at >= 30 ms after up's start, 20 ms after the action's: it began at >= 10 ms.
        assert!((0.010..1.0).contains(&started), "{started}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["started_s"], started);
        assert!(json.get("started_at").is_none());
        // An action longer than the process (a clock that cannot go back) starts at 0.
        let mut long =
            ActionReport::new("x", Outcome::Reused, vec![], Duration::from_secs(1 << 40));
        long.offset_from(up_started);
        assert_eq!(long.started_s, Some(0.0));
        // Outside `up` nothing is printed.
        let plain = ActionReport::new("x", Outcome::Reused, vec![], Duration::ZERO);
        assert!(
            serde_json::to_value(&plain)
                .unwrap()
                .get("started_s")
                .is_none()
        );
    }
}
