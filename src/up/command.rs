//! `kindlab up [--dry-run]`: from the flags to the run (or the plan), and the result as
//! people read it.

use serde::Serialize;

use super::context::{UpContext, UpOptions};
use super::outcome::UpSummary;
use super::survey::ActionPlan;
use crate::cli::UpArgs;
use crate::docker::Engine;
use crate::error::Result;
use crate::interrupt::Interrupt;
use crate::ui::{self, Output, Report, Ui, format_duration};
use crate::workspace::Workspace;

pub async fn run(
    ws: Workspace,
    args: UpArgs,
    output: Output,
    ui: Ui,
    interrupt: Interrupt,
) -> Result<u8> {
    let engine = Engine::connect().await?;
    let options = UpOptions {
        node_image: args.node_image,
        access: args.target.cluster.access(),
        registry: args.target.registry,
        rollout_timeout: args.timeout,
        adopt: args.adopt,
    };
    if args.dry_run {
        let ctx = UpContext::read_only(ws, options, engine, ui, interrupt)?;
        let actions = super::dry_run(&ctx).await?;
        let plan = DryRun {
            dry_run: true,
            empty: actions.iter().all(|a| a.planned.is_empty()),
            actions,
        };
        return Ok(ui::show(&plan, output));
    }
    let ctx = UpContext::for_up(ws, options, engine, ui, interrupt).await?;
    let summary = super::run(&ctx).await?;
    Ok(ui::show(&summary, output))
}

/// What `up --dry-run` would do; nothing was changed.
#[derive(Debug, Serialize)]
pub struct DryRun {
    pub dry_run: bool,
    pub empty: bool,
    pub actions: Vec<ActionPlan>,
}

impl Report for DryRun {
    fn text(&self) -> String {
        if self.empty {
            return ui::lines(["Nothing to do: the lab is up as kindlab.yaml wants it."]);
        }
        let mut lines = vec!["`kindlab up` would (nothing was changed):".to_string()];
        for action in self.actions.iter().filter(|a| !a.planned.is_empty()) {
            for change in &action.planned {
                lines.push(format!("  {:<11} {change}", action.action));
            }
        }
        ui::lines(lines)
    }
}

impl Report for UpSummary {
    fn text(&self) -> String {
        let verdict = if self.is_noop() {
            "already up; nothing changed"
        } else {
            "up"
        };
        ui::lines([
            format!(
                "Lab {verdict} in {}. Context: {}",
                format_duration(self.duration),
                self.context
            ),
            format!(
                "Next: `kubectl --context {} get pods -A` or `kindlab status`",
                self.context
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_lists_each_planned_change_under_its_action() {
        let plan = DryRun {
            dry_run: true,
            empty: false,
            actions: vec![
                ActionPlan {
                    action: "registry",
                    planned: vec!["create container kind-registry".into()],
                },
                ActionPlan {
                    action: "cluster",
                    planned: vec![],
                },
            ],
        };
        assert_eq!(
            plan.text(),
            "`kindlab up` would (nothing was changed):\n  registry    create container kind-registry\n"
        );
        let empty = DryRun {
            dry_run: true,
            empty: true,
            actions: vec![],
        };
        assert_eq!(
            empty.text(),
            "Nothing to do: the lab is up as kindlab.yaml wants it.\n"
        );
    }

    #[test]
    fn a_run_that_changed_nothing_says_so_and_names_the_context() {
        let summary = UpSummary {
            cluster: "kindlab".into(),
            context: "kind-kindlab".into(),
            registry: "kind-registry".into(),
            actions: vec![],
            images: vec![],
            applied: vec![],
            duration: std::time::Duration::from_millis(2400),
        };
        let text = summary.text();
        assert!(
            text.starts_with("Lab already up; nothing changed in "),
            "{text}"
        );
        assert!(
            text.ends_with(". Context: kind-kindlab\nNext: `kubectl --context kind-kindlab get pods -A` or `kindlab status`\n"),
            "{text}"
        );
    }
}
