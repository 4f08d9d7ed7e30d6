//! What attendees and instructors read: the catalogue, a lab's text, a started lab, a
//! check's verdict, a hint, and the table of running labs.

use std::fmt::Write as _;

use serde::Serialize;

use crate::exit;
use crate::lab::attendee::{Checked, Hint, Solved, Started};
use crate::lab::session::SessionReport;
use crate::lab::{LabSpec, LabText, Level};
use crate::ui::Report;

fn level(l: Level) -> &'static str {
    match l {
        Level::Beginner => "beginner",
        Level::Intermediate => "intermediate",
        Level::Advanced => "advanced",
    }
}

/// `kindlab lab list`.
pub fn catalogue(labs: &[LabSpec]) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(vec!["#", "LAB", "TITLE", "LEVEL", "MINUTES"]);
    for lab in labs {
        table.add_row(vec![
            lab.order.to_string(),
            lab.name.clone(),
            lab.title.clone(),
            level(lab.level).to_string(),
            lab.minutes.to_string(),
        ]);
    }
    format!(
        "{table}\n\nStart one: `kindlab lab start NAME`; read it first: `kindlab lab show NAME`.\n"
    )
}

/// A lab's text; `full` adds why it happens and how to prevent it.
pub fn text(title: &str, text: &LabText, full: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {title}\n\n{}\n\n## Goal", text.summary);
    for g in &text.goal {
        let _ = writeln!(out, "- {g}");
    }
    let _ = writeln!(out, "\n## Steps");
    for (i, step) in text.steps.iter().enumerate() {
        let _ = writeln!(out, "\n{}. {}", i + 1, step.title);
        if let Some(t) = &step.text {
            let _ = writeln!(out, "   {t}");
        }
        for c in &step.commands {
            let _ = writeln!(out, "   $ {c}");
        }
        if let Some(e) = &step.expect {
            let _ = writeln!(out, "   expect: {e}");
        }
    }
    if full {
        let _ = writeln!(out, "\n## Why it happened");
        for w in &text.why {
            let _ = writeln!(out, "- {w}");
        }
        let _ = writeln!(out, "\n## How to prevent it in a platform");
        for p in &text.prevent {
            let _ = writeln!(out, "- {p}");
        }
    }
    out
}

/// `kindlab lab start`.
pub fn started(s: &Started) -> String {
    let mut out = text(&s.session.title, &s.text, false);
    let _ = writeln!(
        out,
        "\nThe lab is running against {} (kindlab did step 1).\nWhen you think it is fixed: `kindlab lab check`. Stuck? `kindlab lab hint`. Give up: `kindlab lab solve`.",
        s.session.target
    );
    out
}

/// `kindlab lab check`.
pub fn checked(c: &Checked) -> String {
    let mut out = String::new();
    if c.verdict.fixed {
        let _ = writeln!(
            out,
            "Fixed: {} ({}).\nThe failure showed {} after the break; fixed {} after it; {} hint(s){}.",
            c.session.title,
            c.session.target,
            crate::ui::format_seconds(c.session.time_to_symptoms_s),
            crate::ui::format_seconds(c.session.time_to_fix_s),
            c.session.hints_used,
            if c.session.solved_with_help {
                ", solved with `lab solve`"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "Next: `kindlab reset`, then the next lab (`kindlab lab list`)."
        );
    } else {
        let _ = writeln!(out, "Not fixed yet:");
        for p in c.verdict.pointers() {
            let _ = writeln!(out, "- {p}");
        }
        let _ = writeln!(
            out,
            "Run `kindlab lab check` again after your fix; `kindlab lab hint` helps."
        );
    }
    out
}

/// `kindlab lab hint`.
pub fn hint(h: &Hint) -> String {
    match &h.hint {
        Some(text) => format!("Hint {}/{}: {text}\n", h.number, h.of),
        None => format!(
            "No more hints ({} given). `kindlab lab solve` applies the solution.\n",
            h.of
        ),
    }
}

/// `kindlab lab solve`.
pub fn solved(s: &Solved) -> String {
    let mut out = format!("Solved {} ({}):\n", s.session.title, s.session.target);
    for a in &s.applied {
        let _ = writeln!(out, "- {a}");
    }
    let _ = writeln!(out, "Next: `kindlab reset`, then the next lab.");
    out
}

/// `kindlab lab status`: one row per lab session.
pub fn sessions(reports: &[SessionReport]) -> String {
    if reports.is_empty() {
        return "No lab is running. Start one: `kindlab lab start NAME` (`kindlab lab list`).\n"
            .into();
    }
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(vec![
            "TARGET", "ATTENDEE", "LAB", "STATE", "BROKE IN", "FIXED IN", "HINTS", "CHECKS",
        ]);
    for r in reports {
        table.add_row(vec![
            r.target.clone(),
            r.attendee.clone(),
            r.lab.clone(),
            r.state.clone(),
            crate::ui::format_seconds(r.time_to_symptoms_s),
            crate::ui::format_seconds(r.time_to_fix_s),
            r.hints_used.to_string(),
            r.checks.to_string(),
        ]);
    }
    format!("{table}\n")
}

/// `kindlab lab list`: the catalogue; as JSON one entry per lab.
pub struct Catalogue(pub Vec<LabSpec>);

impl Serialize for Catalogue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            order: u32,
            name: &'a str,
            title: &'a str,
            level: Level,
            minutes: u32,
        }
        serializer.collect_seq(self.0.iter().map(|l| Entry {
            order: l.order,
            name: &l.name,
            title: &l.title,
            level: l.level,
            minutes: l.minutes,
        }))
    }
}

impl Report for Catalogue {
    fn text(&self) -> String {
        catalogue(&self.0)
    }
}

/// `kindlab lab show NAME [--source]`: the lab's text, or its file as written; as JSON the
/// parsed lab.
pub struct LabPage {
    pub spec: LabSpec,
    /// The lab file's own text, with `--source`.
    pub source: Option<String>,
}

impl Serialize for LabPage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.spec.serialize(serializer)
    }
}

impl Report for LabPage {
    fn text(&self) -> String {
        match &self.source {
            Some(source) => source.clone(),
            None => text(&self.spec.title, &self.spec.text, true),
        }
    }
}

impl Report for Started {
    fn text(&self) -> String {
        started(self)
    }
}

impl Report for Checked {
    fn text(&self) -> String {
        checked(self)
    }
    /// Not fixed yet is a finding, not a failure: scripts wait on it.
    fn exit_code(&self) -> u8 {
        if self.verdict.fixed {
            exit::OK
        } else {
            exit::UNHEALTHY
        }
    }
}

impl Report for Hint {
    fn text(&self) -> String {
        hint(self)
    }
}

impl Report for Solved {
    fn text(&self) -> String {
        solved(self)
    }
}

/// `kindlab lab status`: the sessions; as JSON the list.
#[derive(Serialize)]
#[serde(transparent)]
pub struct Sessions(pub Vec<SessionReport>);

impl Report for Sessions {
    fn text(&self) -> String {
        sessions(&self.0)
    }
}
