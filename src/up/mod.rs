//! `kindlab up`: the lab as an ordered list of small actions, each with one job and one
//! status line, as kind's own cluster creation is. The registry and the image builds run
//! alongside cluster creation (the long pole); wiring and deploy wait for both.
//!
//! `up` converges rather than creates: each action observes what exists, reuses it, and
//! repairs drift in place, so a second run on a healthy lab changes nothing.

mod actions;
mod context;
mod outcome;

use std::time::Instant;

use serde::Serialize;

pub use context::{RegistryTarget, UpContext, UpOptions};
pub use outcome::{ActionReport, Outcome};

use crate::error::Result;
use crate::images::ImageResult;
use crate::k8s::Applied;

#[derive(Debug, Serialize)]
pub struct UpSummary {
    pub cluster: String,
    pub context: String,
    pub registry: String,
    pub actions: Vec<ActionReport>,
    pub images: Vec<ImageResult>,
    pub applied: Vec<Applied>,
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

pub async fn run(ctx: &UpContext) -> Result<UpSummary> {
    let started = Instant::now();
    let mut reports = Vec::new();

    let (preflight, kind, renderer) = actions::preflight::execute(ctx).await?;
    reports.push(preflight);

    // Cluster creation takes a minute; the registry and the builds need only Docker.
    let (cluster, registry_and_images) =
        tokio::join!(actions::cluster::execute(ctx, kind.as_ref()), async {
            let registry = actions::registry::execute(ctx).await?;
            let (images_report, images) = actions::build_push::execute(ctx).await?;
            Ok::<_, crate::error::Error>((registry, images_report, images))
        });
    let (cluster_report, client) = cluster?;
    let (registry_report, images_report, images) = registry_and_images?;
    let fresh = cluster_report.outcome == Outcome::Created;
    reports.push(registry_report);
    reports.push(cluster_report);
    reports.push(images_report);

    reports.push(actions::wire_nodes::execute(ctx, &client, fresh).await?);

    let (deploy_report, applied) =
        actions::deploy::execute(ctx, &client, renderer.as_ref(), &images, fresh).await?;
    reports.push(deploy_report);

    Ok(UpSummary {
        cluster: ctx.cluster_name().to_string(),
        context: ctx.kube_context(),
        registry: ctx.registry_host(),
        actions: reports,
        images,
        applied,
        duration: started.elapsed(),
    })
}
