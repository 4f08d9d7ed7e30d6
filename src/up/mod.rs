//! `kindlab up`: the lab as an ordered list of small actions, each with one job and one
//! status line, as kind's own cluster creation is. The registry and the image builds run
//! alongside cluster creation (the long pole); wiring and deploy wait for both.
//!
//! Each action reconciles one resource as ctlptl does: observe, plan (a pure function),
//! act. `up` converges rather than creates, so a second run on a healthy lab changes
//! nothing; `status` and `up --dry-run` print the same observations and plans
//! ([`survey`]) without acting.
//!
//! Interruption (SIGINT, SIGTERM) stops `up` at its next safe point: a cluster kind was
//! creating is deleted, and the error says what was finished and what to run next.
//! Something `up` relies on going away under it (a node stopped or paused, the registry
//! removed) ends the run at once with that cause, not a timeout later.

mod actions;
pub mod command;
mod context;
mod outcome;
pub mod row;
pub mod survey;

use std::time::{Duration, Instant};

pub use actions::build_push::ImageStep;
pub use actions::deploy::DeployStep;
pub use context::{Progress, RegistryTarget, UpContext, UpOptions, interrupted};
pub use outcome::{ActionReport, Outcome, UpSummary};
pub use row::Row;
pub use survey::{ActionPlan, Survey, survey};

use crate::cluster::{self, ClusterError, Node};
use crate::docker::DockerError;
use crate::error::{Error, Result};
use crate::images::ImageResult;
use crate::interrupt::Interrupted;
use crate::k8s::Applied;
use crate::registry::{self, RegistryError};

/// How often `up` looks at the nodes and the registry while it works with them.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(ctx: &UpContext) -> Result<UpSummary> {
    ctx.interrupt.handle();
    let started = Instant::now();
    match run_actions(ctx).await {
        Ok((mut actions, images, applied)) => {
            for action in &mut actions {
                action.offset_from(started);
            }
            Ok(UpSummary {
                cluster: ctx.cluster_name().to_string(),
                context: ctx.kube_context(),
                registry: ctx.registry_host(),
                actions,
                images,
                applied,
                duration: started.elapsed(),
            })
        }
        Err(Error::Interrupted(i)) => Err(account(ctx, i).into()),
        Err(e) => Err(e),
    }
}

/// `kindlab registry up`: the registry action alone.
pub async fn registry_up(ctx: &UpContext) -> Result<ActionReport> {
    ctx.interrupt.handle();
    match actions::registry::execute(ctx).await {
        Err(Error::Interrupted(i)) => Err(account(ctx, i).into()),
        other => other,
    }
}

/// `up --dry-run`: the plan, action by action, with nothing changed.
pub async fn dry_run(ctx: &UpContext) -> Result<Vec<ActionPlan>> {
    survey(ctx).await.into_plan(ctx)
}

type Done = (Vec<ActionReport>, Vec<ImageResult>, Vec<Applied>);

async fn run_actions(ctx: &UpContext) -> Result<Done> {
    let mut reports = Vec::new();
    let (preflight, kind, renderer) = actions::preflight::execute(ctx).await?;
    reports.push(preflight);

    // Cluster creation takes the longest; the registry and the builds need only Docker.
    // Wiring and deploy start when both are done and the cluster's API server answers,
    // which during a creation is before kind returns (see `ClusterReady`).
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(None);
    let (cluster, rest) = tokio::join!(
        async move {
            // Dropped at the end of this block: a cluster that never became ready ends the
            // wait below.
            let ready_tx = ready_tx;
            let done = actions::cluster::execute(ctx, kind.as_ref(), &ready_tx).await?;
            ctx.finished(&done);
            Ok::<_, Error>(done)
        },
        async {
            let registry = actions::registry::execute(ctx).await?;
            ctx.finished(&registry);
            let images = match actions::build_push::execute(ctx).await {
                Ok(done) => done,
                Err(e) => return Err(explain(ctx, e, &[]).await),
            };
            ctx.finished(&images.0);
            let ready = match ready_rx.wait_for(Option::is_some).await {
                Ok(ready) => ready.clone(),
                // The cluster action failed: its error is the one to report.
                Err(_) => None,
            };
            let Some(ready) = ready else {
                return Ok(None);
            };
            // Wiring and deploy work through the nodes and the registry: watch that they
            // stay.
            let rest = async {
                let wiring = actions::wire_nodes::execute(ctx, &ready.client, ready.fresh).await?;
                ctx.finished(&wiring);
                let guarded =
                    actions::guardrails::execute(ctx, &ready.client, renderer.as_ref()).await?;
                ctx.finished(&guarded);
                // GitOps mode: the controller deploys the overlay from Git, not kindlab.
                let deployed = if ctx.workspace.gitops {
                    actions::gitops::execute(ctx, &ready.client, renderer.as_ref()).await?
                } else {
                    actions::deploy::execute(
                        ctx,
                        &ready.client,
                        renderer.as_ref(),
                        &images.1,
                        ready.fresh,
                    )
                    .await?
                };
                Ok::<_, Error>((wiring, guarded, deployed))
            };
            let (wiring, guarded, deployed) = tokio::select! {
                result = rest => match result {
                    Ok(done) => done,
                    Err(e) => return Err(explain(ctx, e, &ready.nodes).await),
                },
                disrupted = watch(ctx, &ready.nodes) => return Err(disrupted),
            };
            Ok(Some((registry, images, wiring, guarded, deployed)))
        }
    );
    let (cluster_report, rest) = both(cluster, rest)?;
    let Some((registry_report, (images_report, images), wiring, guarded, (deploy, applied))) = rest
    else {
        // Unreachable: a cluster action that succeeds has published the cluster.
        return Err(Error::Unhealthy {
            what: "the cluster was created but never became ready".into(),
        });
    };
    reports.extend([
        registry_report,
        cluster_report,
        images_report,
        wiring,
        guarded,
        deploy,
    ]);
    Ok((reports, images, applied))
}

/// Both halves of the concurrent phase, or the error to report: a failure of its own first
/// (the other half may only have been stopped by a Ctrl-C that came after it), then an
/// interruption (both halves' accounts of what they left, merged).
fn both<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(Error::Interrupted(x)), Err(Error::Interrupted(y))) => {
            let left = [x.left.as_str(), y.left.as_str()]
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            let during = if x.left.is_empty() {
                y.during
            } else {
                x.during
            };
            Err(interrupted(&during, &left).into())
        }
        (Err(Error::Interrupted(_)), Err(e)) | (Err(e), Err(Error::Interrupted(_))) => Err(e),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Completes an interruption with what this run finished and what it did not, and the
/// command to run next.
fn account(ctx: &UpContext, i: Interrupted) -> Interrupted {
    let progress = ctx.progress();
    let mut left: Vec<String> = progress.notes;
    if !i.left.is_empty() {
        left.push(i.left);
    }
    // The guardrails step counts only where kindlab.yaml has guardrails; GitOps mode deploys
    // through its own action.
    let guarded = ctx.workspace.guardrails.any_on();
    let deploy = if ctx.workspace.gitops {
        "gitops"
    } else {
        "deploy"
    };
    let pipeline: Vec<&str> = [
        "registry",
        "cluster",
        "images",
        "wire-nodes",
        "guardrails",
        deploy,
    ]
    .into_iter()
    .filter(|a| *a != "guardrails" || guarded)
    .collect();
    let action_of = |f: &String| f.split(' ').next().unwrap_or_default().to_string();
    let place = |f: &String| {
        pipeline
            .iter()
            .position(|a| *a == action_of(f))
            .unwrap_or(pipeline.len())
    };
    // Actions run side by side and finish in any order: said in the pipeline's order, so
    // the same interruption reads the same every time.
    let mut finished = progress.finished.clone();
    finished.sort_by_key(place);
    let not_done: Vec<&str> = pipeline
        .iter()
        .copied()
        .filter(|a| !finished.iter().any(|f| action_of(f) == *a))
        .collect();
    if finished.is_empty() {
        left.push("nothing was finished".into());
    } else {
        left.push(format!("finished: {}", finished.join(", ")));
    }
    if !not_done.is_empty() {
        left.push(format!("not finished: {}", not_done.join(", ")));
    }
    Interrupted {
        during: i.during,
        left: left.join("; "),
        next: if i.next.is_empty() {
            "run `kindlab up` to finish the lab (`kindlab status` shows where it stands; `kindlab down` removes what this workspace made)".into()
        } else {
            i.next
        },
    }
}

/// Resolves when a node `up` works through, or the registry, stops being there: the error
/// naming it.
async fn watch(ctx: &UpContext, nodes: &[Node]) -> Error {
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        if let Some(gone) = missing(ctx, nodes).await {
            return gone;
        }
    }
}

/// After a failure: if a node or the registry went away (or the engine itself), that is the
/// cause to report; otherwise the failure as it was.
async fn explain(ctx: &UpContext, error: Error, nodes: &[Node]) -> Error {
    if matches!(error, Error::Interrupted(_)) {
        return error;
    }
    if let Err(source) = ctx.engine.docker.ping().await {
        tracing::debug!(%error, "failed while the engine went away");
        return DockerError::Unreachable {
            host: ctx.engine.host.host.clone(),
            source,
        }
        .into();
    }
    // The failure can come a moment before the engine shows why (a `docker rm -f` closes
    // the registry's connections before the container is gone): look twice.
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
        if let Some(cause) = missing(ctx, nodes).await {
            tracing::debug!(%error, "failed because something went away");
            return cause;
        }
    }
    error
}

/// The first of `nodes` (and the local registry) that is no longer running.
async fn missing(ctx: &UpContext, nodes: &[Node]) -> Option<Error> {
    if !nodes.is_empty()
        && let Ok(now) = cluster::list_nodes(&ctx.engine, ctx.cluster_name()).await
    {
        for node in nodes.iter().filter(|n| n.running) {
            let state = match now.iter().find(|n| n.name == node.name) {
                None => "gone".to_string(),
                Some(n) if n.running => continue,
                Some(n) => n.state.clone(),
            };
            return Some(
                ClusterError::NodeDown {
                    cluster: ctx.cluster_name().to_string(),
                    node: node.name.clone(),
                    state,
                }
                .into(),
            );
        }
    }
    if ctx.registry_target() == RegistryTarget::Local {
        let name = &ctx.workspace.registry.name;
        match registry::observe_container(&ctx.engine, name, ctx.me()).await {
            Ok(None) => return Some(RegistryError::Vanished { name: name.clone() }.into()),
            // `docker rm -f` kills first: a container on its way out is gone.
            Ok(Some(seen)) if matches!(seen.state.as_str(), "removing" | "dead") => {
                return Some(RegistryError::Vanished { name: name.clone() }.into());
            }
            Ok(Some(seen)) if !seen.running => {
                // `docker rm -f` stops it first: give a removal the moment it takes.
                tokio::time::sleep(WATCH_INTERVAL).await;
                if let Ok(None) = registry::observe_container(&ctx.engine, name, ctx.me()).await {
                    return Some(RegistryError::Vanished { name: name.clone() }.into());
                }
                return Some(
                    RegistryError::Stopped {
                        name: name.clone(),
                        state: if seen.paused { "paused" } else { "stopped" }.into(),
                    }
                    .into(),
                );
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(during: &str, left: &str) -> Result<()> {
        Err(interrupted(during, left).into())
    }

    #[test]
    fn a_real_failure_wins_over_an_interruption_and_two_interruptions_merge() {
        let failed: Result<()> = Err(Error::Unhealthy {
            what: "kind failed".into(),
        });
        match both(failed, stopped("the images", "")) {
            Err(Error::Unhealthy { what }) => assert_eq!(what, "kind failed"),
            other => panic!("{other:?}"),
        }
        match both(
            stopped("cluster creation", "the half-made cluster was deleted"),
            stopped("the images", ""),
        ) {
            Err(Error::Interrupted(i)) => {
                assert_eq!(i.during, "cluster creation");
                assert_eq!(i.left, "the half-made cluster was deleted");
            }
            other => panic!("{other:?}"),
        }
    }
}
