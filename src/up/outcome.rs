//! What one action did, for its status line and for `up --output json`.

use std::time::Duration;

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
        }
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
