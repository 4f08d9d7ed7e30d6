//! Deploy: render the overlay, point it at the pushed images, apply every object with
//! server-side apply, and wait for each Deployment's rollout (judged as kubectl does).

use std::time::Instant;

use crate::error::Result;
use crate::images::ImageResult;
use crate::k8s::{self, Applied, ApplyOutcome};
use crate::up::{ActionReport, Outcome, UpContext};
use crate::workspace::Renderer;

pub async fn execute(
    ctx: &UpContext,
    client: &kube::Client,
    renderer: Option<&Renderer>,
    images: &[ImageResult],
    fresh: bool,
) -> Result<(ActionReport, Vec<Applied>)> {
    let started = Instant::now();
    let (Some(deploy), Some(renderer)) = (&ctx.workspace.deploy, renderer) else {
        return Ok((
            ActionReport::new(
                "deploy",
                Outcome::Skipped,
                vec!["no deploy.overlay in kindlab.yaml".into()],
                started.elapsed(),
            ),
            Vec::new(),
        ));
    };
    let step = ctx.ui.step("Deploy");
    step.detail(format!("rendering {}", deploy.overlay.display()));
    let references: Vec<(String, String)> = images
        .iter()
        .map(|i| (i.name.clone(), i.reference.clone()))
        .collect();
    let docs = crate::desired::desired_objects(
        &ctx.workspace,
        renderer,
        &ctx.registry_host(),
        &references,
    )
    .await?;

    step.detail("server-side apply");
    let applied = k8s::apply_all(client, &docs).await?;

    for (namespace, name) in deployments(&applied) {
        step.detail(format!("rollout of {namespace}/{name}"));
        let waited = k8s::wait_rollout(client, &namespace, &name, ctx.rollout_timeout(), |m| {
            step.detail(format!("{namespace}/{name}: {m}"))
        })
        .await;
        if let Err(e) = waited {
            step.fail(format!("rollout of {namespace}/{name}"));
            return Err(e.into());
        }
    }

    let changed: Vec<String> = applied
        .iter()
        .filter(|a| a.outcome != ApplyOutcome::Unchanged)
        .map(|a| {
            let verb = match a.outcome {
                ApplyOutcome::Created => "created",
                _ => "configured",
            };
            match &a.namespace {
                Some(ns) => format!("{verb} {} {ns}/{}", a.kind, a.name),
                None => format!("{verb} {} {}", a.kind, a.name),
            }
        })
        .collect();
    let (outcome, details) = if fresh
        || applied.iter().all(|a| a.outcome == ApplyOutcome::Created) && !applied.is_empty()
    {
        (
            Outcome::Created,
            vec![format!(
                "{} objects applied, rollout complete",
                applied.len()
            )],
        )
    } else if changed.is_empty() {
        (
            Outcome::Reused,
            vec![format!(
                "{} objects unchanged, rollout complete",
                applied.len()
            )],
        )
    } else {
        (Outcome::Repaired, changed)
    };
    let report = ActionReport::new("deploy", outcome, details, started.elapsed());
    step.ok(report.summary());
    Ok((report, applied))
}

fn deployments(applied: &[Applied]) -> Vec<(String, String)> {
    applied
        .iter()
        .filter(|a| a.kind == "Deployment")
        .map(|a| {
            (
                a.namespace.clone().unwrap_or_else(|| "default".into()),
                a.name.clone(),
            )
        })
        .collect()
}
