//! `kindlab status`: what is running against what kindlab.yaml wants, and what `up` would do
//! about it. The rows come from the same observe and plan functions `up` acts on
//! (`up::survey`), so `status` and `up` cannot disagree. The exit code is non-zero when any
//! row is not ok.

use serde::Serialize;

use crate::diagnose;
use crate::k8s::Rollout;
use crate::up::{Row, UpContext, survey};

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub ok: bool,
    pub rows: Vec<Row>,
    /// Everything `up` would do, in order (the rows' plans together).
    pub plan: Vec<String>,
}

/// Looks at everything; never fails: what cannot be looked at is a row that is not ok.
/// A Deployment whose rollout is stuck is explained as `kindlab diagnose` explains it.
pub async fn run(ctx: &UpContext) -> StatusReport {
    let survey = survey(ctx).await;
    let mut rows = survey.rows(ctx);
    if let (Some(client), Ok(deploy)) = (&survey.client, &survey.deploy) {
        let access = diagnose::RegistryAccess::new().with_plain_http(ctx.registry_host());
        for object in deploy.objects.iter().flatten() {
            let stuck = matches!(
                object.rollout,
                Some(Rollout::Progressing(_) | Rollout::Failed(_))
            );
            let (Some(namespace), true) = (&object.plan.namespace, stuck) else {
                continue;
            };
            let found =
                diagnose::diagnose_deployment(client, namespace, &object.plan.name, &access).await;
            let finding = found.ok().and_then(|d| d.findings.into_iter().next());
            if let Some(row) = rows
                .iter_mut()
                .find(|r| r.component == object.plan.object())
            {
                row.diagnosis = finding;
            }
        }
    }
    let plan = rows.iter().flat_map(|r| r.plan.iter().cloned()).collect();
    StatusReport {
        ok: rows.iter().all(|r| r.ok),
        rows,
        plan,
    }
}

/// The report as a table for people, then `up`'s plan.
pub fn table(report: &StatusReport) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(vec!["", "COMPONENT", "STATE", "DETAIL"]);
    for r in &report.rows {
        let detail = match &r.diagnosis {
            Some(d) => format!("{}: {} (fix: {})", r.detail, d.summary, d.fix),
            None => r.detail.clone(),
        };
        table.add_row(vec![
            if r.ok { "✓" } else { "✗" }.to_string(),
            r.component.clone(),
            r.state.clone(),
            detail,
        ]);
    }
    let mut out = format!("{table}\n");
    if !report.plan.is_empty() {
        out.push_str("`kindlab up` would:\n");
        for change in &report.plan {
            out.push_str(&format!("  - {change}\n"));
        }
    }
    out.push_str(if report.ok {
        "Lab is up.\n"
    } else if report.plan.is_empty() {
        "Lab is not healthy, and `kindlab up` has nothing to change: the rows above say why.\n"
    } else {
        "Lab needs repair: run `kindlab up`.\n"
    });
    out
}

impl crate::ui::Report for StatusReport {
    fn text(&self) -> String {
        table(self)
    }
    fn exit_code(&self) -> u8 {
        if self.ok {
            crate::exit::OK
        } else {
            crate::exit::UNHEALTHY
        }
    }
}

/// `kindlab status`: the lab's rows, observed without changing anything.
pub async fn command(
    ws: crate::workspace::Workspace,
    target: crate::cli::TargetArgs,
    ui: crate::ui::Ui,
    interrupt: crate::interrupt::Interrupt,
) -> crate::error::Result<StatusReport> {
    let engine = crate::docker::Engine::connect().await?;
    let options = crate::up::UpOptions {
        access: target.cluster.access(),
        registry: target.registry,
        ..crate::up::UpOptions::default()
    };
    let ctx = UpContext::read_only(ws, options, engine, ui, interrupt)?;
    Ok(run(&ctx).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_the_plan_and_the_verdict() {
        let report = StatusReport {
            ok: false,
            rows: vec![Row::new(
                "Deployment dev/web",
                false,
                "drifted",
                "differs at spec.replicas",
                vec!["configure Deployment dev/web (spec.replicas)".into()],
            )],
            plan: vec!["configure Deployment dev/web (spec.replicas)".into()],
        };
        let text = table(&report);
        assert!(text.contains("✗  Deployment dev/web"), "{text}");
        assert!(
            text.contains(
                "`kindlab up` would:\n  - configure Deployment dev/web (spec.replicas)\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("Lab needs repair: run `kindlab up`.\n"),
            "{text}"
        );
    }
}
