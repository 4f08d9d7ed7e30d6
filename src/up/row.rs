//! The row every action reports for `status` and `up --dry-run`: a leaf, so the actions
//! and the survey that gathers their rows do not import each other.

use serde::Serialize;

use crate::error::Error;

/// One line of `status`: a part of the lab, whether it is as the workspace wants it, what
/// was seen, and what `up` would do to it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub component: String,
    pub ok: bool,
    pub state: String,
    pub detail: String,
    /// What `up` would do here; empty when nothing.
    pub plan: Vec<String>,
    /// Why it is not healthy, as `kindlab diagnose` says it (a stuck rollout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<crate::diagnose::Finding>,
}

impl Row {
    pub fn new(
        component: impl Into<String>,
        ok: bool,
        state: impl Into<String>,
        detail: impl Into<String>,
        plan: Vec<String>,
    ) -> Row {
        Row {
            component: component.into(),
            ok,
            state: state.into(),
            detail: detail.into(),
            plan,
            diagnosis: None,
        }
    }

    /// A part `up` would refuse to touch (another workspace's, not kindlab's).
    pub fn refused(component: impl Into<String>, error: &Error) -> Row {
        Row::new(
            component,
            false,
            "not ours",
            match error.fix() {
                Some(fix) => format!("{error}; {fix}"),
                None => error.to_string(),
            },
            Vec::new(),
        )
    }

    /// A part that could not be looked at.
    pub fn failed(component: impl Into<String>, error: &Error) -> Row {
        Row::new(component, false, "unknown", error.to_string(), Vec::new())
    }
}
