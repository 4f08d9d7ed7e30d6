//! Cluster: reuse `kind-<name>` (starting stopped nodes), or create it with kind from
//! `templates/kind-config.yaml`. With `--context`, connect to that cluster instead.

use std::time::{Duration, Instant};

use crate::cluster::{self, ClusterError, Kind};
use crate::error::Result;
use crate::k8s;
use crate::up::{ActionReport, Outcome, UpContext};

/// A restarted node's API server needs a while: kubelet restarts the static pods first.
const API_READY_TIMEOUT: Duration = Duration::from_secs(180);

pub async fn execute(ctx: &UpContext, kind: Option<&Kind>) -> Result<(ActionReport, kube::Client)> {
    let started = Instant::now();
    let Some(kind) = kind else {
        let context = ctx.kube_context();
        let step = ctx.ui.step(format!("Cluster (context {context})"));
        let client = k8s::client_for_context(&context).await?;
        let report = ActionReport::new(
            "cluster",
            Outcome::Skipped,
            vec![format!("using the existing context {context}")],
            started.elapsed(),
        );
        step.ok(report.summary());
        return Ok((report, client));
    };

    let name = ctx.cluster_name();
    let step = ctx.ui.step(format!("Cluster kind-{name}"));
    let exists = kind.clusters().await?.iter().any(|c| c == name);
    let (outcome, details, restarted) = if exists {
        let nodes = cluster::list_nodes(&ctx.engine, name).await?;
        if nodes.is_empty() {
            return Err(ClusterError::NoNodes {
                name: name.to_string(),
            }
            .into());
        }
        step.detail("checking nodes");
        let started_nodes = cluster::start_stopped(&ctx.engine, &nodes).await?;
        if started_nodes.is_empty() {
            (Outcome::Reused, Vec::new(), false)
        } else {
            (
                Outcome::Repaired,
                vec![format!(
                    "started stopped nodes {}",
                    started_nodes.join(", ")
                )],
                true,
            )
        }
    } else {
        let config = cluster::render_kind_config(name);
        // With no node image named, a loaded bundle's (kind's default cannot be pulled
        // where a bundle was needed).
        let node_image = match ctx.node_image() {
            Some(image) => Some(image.to_string()),
            None => match kind.version().await {
                Ok(version) => crate::bundle::loaded_node_image(&ctx.engine, &version).await,
                Err(_) => None,
            },
        };
        let created = kind
            .create(name, &config, node_image.as_deref(), |line| {
                step.detail(line)
            })
            .await;
        if let Err(e) = created {
            step.fail("kind create cluster failed");
            return Err(e.into());
        }
        mark_owned(ctx, name).await?;
        (
            Outcome::Created,
            vec![match node_image.as_deref() {
                Some(image) => format!("kind cluster with {image}"),
                None => "kind cluster".to_string(),
            }],
            false,
        )
    };

    let kubeconfig = kind.kubeconfig(name).await?;
    let client = k8s::client_from_kubeconfig_yaml(&kubeconfig, None).await?;
    if restarted {
        step.detail("waiting for the API server");
        wait_for_api(&client, name).await?;
    }
    let report = ActionReport::new("cluster", outcome, details, started.elapsed());
    step.ok(report.summary());
    Ok((report, client))
}

/// Writes kindlab's owner marker into the control-plane node, so `down` deletes only
/// clusters kindlab created.
async fn mark_owned(ctx: &UpContext, name: &str) -> Result<()> {
    let marker = serde_json::json!({
        "createdBy": "kindlab",
        "version": env!("CARGO_PKG_VERSION"),
        "workspace": ctx.workspace.root.display().to_string(),
    })
    .to_string();
    for node in cluster::list_nodes(&ctx.engine, name).await? {
        if node.role == "control-plane" {
            cluster::write_owner_marker(&ctx.engine, &node.name, &marker)
                .await
                .map_err(ClusterError::from)?;
        }
    }
    Ok(())
}

async fn wait_for_api(client: &kube::Client, name: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        match client.apiserver_version().await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > API_READY_TIMEOUT => {
                return Err(ClusterError::ApiNotReady {
                    name: name.to_string(),
                    seconds: API_READY_TIMEOUT.as_secs(),
                    last_error: e.to_string(),
                }
                .into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
