//! `kindlab workshop`: from its flags to the room's verbs, and from their reports to the
//! terminal (text) or to scripts (JSON).

use std::path::Path;

use comfy_table::{Table, presets::NOTHING};

use super::{ProvisionOptions, ProvisionReport, RoomReset, RoomStatus, Teardown, WorkshopError};
use crate::cli::{ProvisionArgs, RoomArgs, WorkshopAction};
use crate::cluster::connect;
use crate::error::Result;
use crate::interrupt::Interrupt;
use crate::lab::LabEnv;
use crate::ui::{self, Output, Report, Ui};
use crate::workspace::Workspace;

pub async fn run(
    workspace: &Path,
    action: WorkshopAction,
    output: Output,
    ui: &Ui,
    interrupt: Interrupt,
) -> Result<u8> {
    let ws = Workspace::discover(workspace)?;
    match action {
        WorkshopAction::Provision(args) => {
            let report = provision(&ws, args, ui, interrupt).await?;
            Ok(ui::show(&report, output))
        }
        WorkshopAction::Status(room) => {
            let instructor = connect(&ws, &room.cluster.access()).await?;
            let status = super::status(&instructor.client, &room_name(&ws, &room)).await?;
            Ok(ui::show(&status, output))
        }
        WorkshopAction::Reset {
            names,
            all,
            parallel,
            timeout,
            room,
        } => {
            interrupt.handle();
            let instructor = connect(&ws, &room.cluster.access()).await?;
            let name = room_name(&ws, &room);
            let in_room = super::attendees(&instructor.client, &name).await?;
            let chosen = match all {
                true => in_room,
                false => chosen_attendees(&names, &in_room, &name)?,
            };
            let env = LabEnv::open(&ws, instructor, room.registry.clone(), ui, interrupt).await?;
            let report = super::reset(&env, &chosen, parallel as usize, timeout).await?;
            Ok(ui::show(&report, output))
        }
        WorkshopAction::Teardown { dry_run, room } => {
            let instructor = connect(&ws, &room.cluster.access()).await?;
            let report =
                super::teardown(&instructor.client, &room_name(&ws, &room), dry_run, ui).await?;
            Ok(ui::show(&report, output))
        }
    }
}

async fn provision(
    ws: &Workspace,
    args: ProvisionArgs,
    ui: &Ui,
    interrupt: Interrupt,
) -> Result<ProvisionReport> {
    let room = room_name(ws, &args.room);
    let mut names = args.names.clone();
    if let Some(file) = &args.roster {
        let text = std::fs::read_to_string(file).map_err(|e| WorkshopError::Roster {
            why: format!("cannot read the roster {}: {e}", file.display()),
        })?;
        names.extend(text.lines().map(str::to_string));
    }
    let attendees = super::plan::roster(&names, args.count, &args.prefix)
        .map_err(|why| WorkshopError::Roster { why })?;
    let instructor = connect(ws, &args.room.cluster.access()).await?;
    let kubeconfig = instructor.kubeconfig.clone();
    let options = ProvisionOptions {
        out: args
            .out
            .clone()
            .unwrap_or_else(|| ws.root.join(".kindlab/workshop").join(&room)),
        room,
        attendees,
        token_ttl: args.token_ttl,
        server: args.server.clone(),
        dry_run: args.dry_run,
        parallel: args.parallel as usize,
        rollout_timeout: args.timeout,
    };
    let env = LabEnv::open(ws, instructor, args.room.registry.clone(), ui, interrupt).await?;
    super::provision(&env, &kubeconfig, &options).await
}

/// `--room`, else the workspace's cluster name.
fn room_name(ws: &Workspace, room: &RoomArgs) -> String {
    room.room.clone().unwrap_or_else(|| ws.cluster.name.clone())
}

/// The names asked for, each of which must be one of the room's.
fn chosen_attendees(names: &[String], in_room: &[String], room: &str) -> Result<Vec<String>> {
    if names.is_empty() {
        return Err(WorkshopError::Roster {
            why: "name the attendees to reset, or give --all".into(),
        }
        .into());
    }
    match names.iter().find(|n| !in_room.contains(n)) {
        Some(stranger) => Err(WorkshopError::Roster {
            why: format!(
                "{stranger:?} is not an attendee of room {room} (it has: {})",
                in_room.join(", ")
            ),
        }
        .into()),
        None => Ok(names.to_vec()),
    }
}

fn table() -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING);
    table
}

/// The text of `provision`: one line per attendee, then where the handout is.
pub fn provisioned(report: &ProvisionReport) -> String {
    let mut out = String::new();
    if report.dry_run {
        out.push_str("`kindlab workshop provision` would (nothing was changed):\n");
        for a in &report.attendees {
            for change in &a.changes {
                out.push_str(&format!("  {:<10} {change}\n", a.attendee));
            }
        }
        if report.is_noop() {
            out.push_str("  nothing: the room is as it should be\n");
        }
        return out;
    }
    let mut t = table();
    t.set_header(["ATTENDEE", "NAMESPACE", "CHANGES", "TOKEN", "EXPIRES"]);
    for a in &report.attendees {
        t.add_row([
            a.attendee.clone(),
            a.namespace.clone(),
            a.changes.len().to_string(),
            a.token.clone(),
            a.expires_at.clone(),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    out.push_str(&format!(
        "Room {} {} in {}: {} attendee(s). Handout: {}/ (one kubeconfig each, README.md)\n",
        report.room,
        if report.is_noop() {
            "already provisioned; nothing changed"
        } else {
            "provisioned"
        },
        ui::format_duration(report.duration),
        report.attendees.len(),
        report.handout
    ));
    if !report.guardrails.is_empty() {
        out.push_str(&format!(
            "Guardrails for the room: {}\n",
            report.guardrails.join(", ")
        ));
    }
    out
}

/// The room as a table.
pub fn status_table(status: &RoomStatus) -> String {
    if status.attendees.is_empty() {
        return format!(
            "Room {} has no attendees (`kindlab workshop provision` makes them).\n",
            status.room
        );
    }
    let mut t = table();
    t.set_header([
        "ATTENDEE",
        "LAB",
        "STATE",
        "SYMPTOMS",
        "FIXED",
        "HINTS",
        "CHECKS",
        "LAST ACTIVITY",
    ]);
    for a in &status.attendees {
        t.add_row([
            a.attendee.clone(),
            a.lab.clone().unwrap_or_else(|| "-".into()),
            a.state.clone(),
            crate::ui::format_seconds(a.time_to_symptoms_s),
            crate::ui::format_seconds(a.time_to_fix_s),
            a.hints_used.to_string(),
            a.checks.to_string(),
            a.last_activity.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let fixed = status
        .attendees
        .iter()
        .filter(|a| matches!(a.state.as_str(), "fixed" | "solved"))
        .count();
    format!(
        "{t}\nRoom {}: {} attendee(s), {fixed} fixed. `kindlab lab report -A` writes the room's HTML report.\n",
        status.room,
        status.attendees.len()
    )
}

fn reset_lines(report: &RoomReset) -> String {
    let mut out = String::new();
    for a in &report.attendees {
        out.push_str(&a.line());
        out.push('\n');
    }
    out.push_str(&format!(
        "Reset {} attendee(s) in {}.\n",
        report.attendees.len(),
        ui::format_duration(report.duration)
    ));
    out
}

fn torn_down(report: &Teardown) -> String {
    match (report.dry_run, report.namespaces.is_empty()) {
        (_, true) => format!("Room {} has nothing to delete.\n", report.room),
        (true, false) => format!(
            "`kindlab workshop teardown` would delete room {}'s namespaces: {}\n",
            report.room,
            report.namespaces.join(", ")
        ),
        (false, false) => format!(
            "Deleted room {}'s namespaces in {}: {}\n",
            report.room,
            ui::format_duration(report.duration),
            report.namespaces.join(", ")
        ),
    }
}

impl Report for ProvisionReport {
    fn text(&self) -> String {
        provisioned(self)
    }
}

impl Report for RoomStatus {
    fn text(&self) -> String {
        status_table(self)
    }
}

impl Report for RoomReset {
    fn text(&self) -> String {
        reset_lines(self)
    }
}

impl Report for Teardown {
    fn text(&self) -> String {
        torn_down(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_room_and_a_teardown_read_as_one_line() {
        use crate::ui::Report as _;
        let empty = RoomStatus {
            room: "r1".into(),
            attendees: vec![],
        };
        assert_eq!(
            empty.text(),
            "Room r1 has no attendees (`kindlab workshop provision` makes them).\n"
        );
        let planned = Teardown {
            room: "r1".into(),
            dry_run: true,
            namespaces: vec!["r1-ann".into(), "r1-bob".into()],
            duration: std::time::Duration::ZERO,
        };
        assert_eq!(
            planned.text(),
            "`kindlab workshop teardown` would delete room r1's namespaces: r1-ann, r1-bob\n"
        );
        let reset = RoomReset {
            attendees: vec![],
            duration: std::time::Duration::from_secs(2),
        };
        assert_eq!(reset.text(), "Reset 0 attendee(s) in 2.0s.\n");
    }
}
