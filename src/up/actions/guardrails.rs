//! Guardrails: the admission policies of kindlab.yaml's `guardrails:` in the cluster, before
//! anything is deployed (so the workspace's own objects pass the same gate as an attendee's
//! `kubectl set image`). They hold in the overlay's namespaces. With every rule off, policies
//! an earlier run made are removed and nothing else is done.

use std::time::Instant;

use serde_json::Value;

use crate::error::Result;
use crate::guardrails::{self, Desired, GuardrailStep, Mode, Rule, Scope, Seen, scope_of};
use crate::up::context::UpContext;
use crate::up::outcome::{ActionReport, Outcome};
use crate::up::row::Row;
use crate::workspace::Renderer;

pub fn desired(ctx: &UpContext, docs: &[Value]) -> Desired {
    Desired::new(
        &ctx.workspace.guardrails,
        &ctx.registry_host(),
        scope_of(docs),
    )
    .owned_by(&ctx.identity.id)
}

/// What the cluster holds, and what `up` would do about it.
#[derive(Debug, Default)]
pub struct View {
    pub desired: Option<Desired>,
    pub seen: Seen,
    pub steps: Vec<GuardrailStep>,
    /// A policy of a guardrail's name that kindlab did not make.
    pub refused: Option<String>,
    /// The API server could not be asked (the cluster is not there yet, or stopped).
    pub unknown: bool,
}

/// `docs`: the rendered overlay. `client`: None when the cluster cannot be asked.
pub async fn observe(
    ctx: &UpContext,
    docs: &[Value],
    client: Option<&kube::Client>,
) -> Result<View> {
    let desired = desired(ctx, docs);
    let Some(client) = client else {
        let steps = guardrails::plan(&desired.objects(), &Seen::default())?;
        return Ok(View {
            steps,
            desired: Some(desired),
            unknown: true,
            ..View::default()
        });
    };
    let seen = match guardrails::observe(client, &ctx.identity.id, None).await {
        Ok(seen) => seen,
        // Every rule off and credentials that may not read policies (a namespaced user):
        // there is nothing to install, and nothing these credentials could have made.
        Err(guardrails::GuardrailError::List(e))
            if e.refusal().is_some() && desired.objects().is_empty() =>
        {
            Seen::default()
        }
        Err(e) => return Err(e.into()),
    };
    let (steps, refused) = match guardrails::plan(&desired.objects(), &seen) {
        Ok(steps) => (steps, None),
        Err(e) => {
            let error = crate::error::Error::from(e);
            let text = match error.fix() {
                Some(fix) => format!("{error}; {fix}"),
                None => error.to_string(),
            };
            (Vec::new(), Some(text))
        }
    };
    Ok(View {
        desired: Some(desired),
        seen,
        steps,
        refused,
        unknown: false,
    })
}

impl View {
    pub fn changes(&self) -> Vec<String> {
        self.steps.iter().map(GuardrailStep::describe).collect()
    }

    /// One row per rule that is on or still in the cluster.
    pub fn rows(&self) -> Vec<Row> {
        let Some(desired) = &self.desired else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for rule in Rule::ALL {
            let mode = desired
                .rules
                .iter()
                .find(|(r, _)| *r == rule)
                .map_or(Mode::Off, |(_, m)| *m);
            let name = rule.object_name();
            let live = self.seen.objects.iter().any(|l| l.name == name && l.ours);
            if mode == Mode::Off && !live {
                continue;
            }
            let planned: Vec<String> = self
                .steps
                .iter()
                .filter(|s| match s {
                    GuardrailStep::Create { name: n, .. }
                    | GuardrailStep::Repair { name: n, .. }
                    | GuardrailStep::Delete { name: n, .. } => *n == name,
                })
                .map(GuardrailStep::describe)
                .collect();
            let state = if self.refused.is_some() {
                "not ours"
            } else if self.unknown {
                "unknown"
            } else if mode == Mode::Off {
                "to remove"
            } else if planned.iter().any(|p| p.starts_with("create")) {
                "missing"
            } else if !planned.is_empty() {
                "drifted"
            } else {
                mode.as_str()
            };
            let detail = match (&self.refused, self.unknown, mode) {
                (Some(why), _, _) => why.clone(),
                (None, true, _) => format!("{name}: the API server does not answer"),
                (None, false, Mode::Off) => format!("{name}: the rule is off in kindlab.yaml"),
                (None, false, _) => format!(
                    "ValidatingAdmissionPolicy {name} ({} in {})",
                    match mode {
                        Mode::Warn => "warns",
                        _ => "refuses",
                    },
                    match &desired.scope {
                        Scope::Namespaces(n) => n.join(", "),
                        Scope::Label { key, value } => format!("namespaces {key}={value}"),
                    }
                ),
            };
            rows.push(Row::new(
                format!("guardrail {}", rule.name()),
                planned.is_empty() && self.refused.is_none() && !self.unknown,
                state,
                detail,
                planned,
            ));
        }
        rows
    }
}

pub async fn execute(
    ctx: &UpContext,
    client: &kube::Client,
    renderer: Option<&Renderer>,
) -> Result<ActionReport> {
    let started = Instant::now();
    let docs = match renderer {
        Some(renderer) if ctx.workspace.guardrails.any_on() => {
            crate::desired::render(&ctx.workspace, renderer).await?
        }
        _ => Vec::new(),
    };
    let view = observe(ctx, &docs, Some(client)).await?;
    if !ctx.workspace.guardrails.any_on() && view.steps.is_empty() {
        return Ok(ActionReport::new(
            "guardrails",
            Outcome::Skipped,
            vec!["no guardrails in kindlab.yaml".into()],
            started.elapsed(),
        ));
    }
    let step = ctx.ui.step("Guardrails");
    let desired = view
        .desired
        .as_ref()
        .map(Desired::objects)
        .unwrap_or_default();
    let result = ctx
        .interruptible("guardrails", async {
            if view.refused.is_some() {
                // The refusal as `plan` says it, with its fix.
                guardrails::plan(&desired, &view.seen)?;
            }
            guardrails::reconcile::act(client, &desired, &view.steps).await?;
            Ok(())
        })
        .await;
    // A failure returns here; the step's guard marks it failed.
    result?;
    let created = view
        .steps
        .iter()
        .all(|s| matches!(s, GuardrailStep::Create { .. }));
    let outcome = match (view.steps.is_empty(), created) {
        (true, _) => Outcome::Reused,
        (false, true) => Outcome::Created,
        (false, false) => Outcome::Repaired,
    };
    let details = if view.steps.is_empty() || created {
        ctx.workspace
            .guardrails
            .enabled()
            .iter()
            .map(|(rule, mode)| format!("{} ({})", rule.name(), mode.as_str()))
            .collect()
    } else {
        view.steps.iter().map(GuardrailStep::done).collect()
    };
    let report = ActionReport::new("guardrails", outcome, details, started.elapsed())
        .with_plan(view.changes());
    step.ok(report.summary());
    Ok(report)
}
