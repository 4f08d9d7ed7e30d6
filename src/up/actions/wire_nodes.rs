//! Registry wiring, as kind's local-registry guide documents it: a hosts.toml in every node
//! (for localhost:<port>, and for <registry>:5000 so in-cluster tools can push), the registry
//! on the `kind` network, and the KEP-1755 `local-registry-hosting` ConfigMap.

use std::time::Instant;

use bollard::models::NetworkConnectRequest;

use crate::cluster::{self, ClusterError};
use crate::docker::DockerError;
use crate::error::Result;
use crate::k8s::{self, ApplyOutcome};
use crate::registry;
use crate::up::{ActionReport, Outcome, RegistryTarget, UpContext};
use crate::workspace::parse_documents;

const KIND_NETWORK: &str = "kind";

/// `fresh`: the cluster was created by this run, so wiring it is creation, not repair.
pub async fn execute(ctx: &UpContext, client: &kube::Client, fresh: bool) -> Result<ActionReport> {
    let started = Instant::now();
    if !ctx.uses_kind() || ctx.registry_target() != RegistryTarget::Local {
        return Ok(ActionReport::new(
            "wire-nodes",
            Outcome::Skipped,
            vec!["existing cluster or registry: wiring is theirs".into()],
            started.elapsed(),
        ));
    }
    let step = ctx.ui.step("Registry wiring");
    let spec = &ctx.workspace.registry;
    let mut changes = Vec::new();

    let nodes = cluster::list_nodes(&ctx.engine, ctx.cluster_name()).await?;
    let hosts_toml = cluster::render_hosts_toml(&spec.name);
    let registry_hosts = [
        format!("localhost:{}", spec.port),
        format!("{}:5000", spec.name),
    ];
    for node in &nodes {
        step.detail(format!("hosts.toml in {}", node.name));
        let mut wrote = Vec::new();
        for host in &registry_hosts {
            if cluster::write_hosts_toml(&ctx.engine, &node.name, host, &hosts_toml)
                .await
                .map_err(ClusterError::from)?
            {
                wrote.push(host.as_str());
            }
        }
        if !wrote.is_empty() {
            changes.push(format!(
                "wrote hosts.toml for {} in {}",
                wrote.join(", "),
                node.name
            ));
        }
    }

    step.detail("kind network");
    let seen = registry::observe(&ctx.engine, &spec.name).await?;
    if !seen.is_some_and(|s| s.networks.iter().any(|n| n == KIND_NETWORK)) {
        ctx.engine
            .docker
            .connect_network(
                KIND_NETWORK,
                NetworkConnectRequest {
                    container: spec.name.clone(),
                    endpoint_config: None,
                },
            )
            .await
            .map_err(DockerError::api(format!(
                "connect {} to the {KIND_NETWORK} network",
                spec.name
            )))?;
        changes.push(format!(
            "connected {} to the {KIND_NETWORK} network",
            spec.name
        ));
    }

    step.detail("local-registry-hosting ConfigMap");
    let docs = parse_documents(&cluster::render_registry_hosting(&spec.name, spec.port))?;
    for applied in k8s::apply_all(client, &docs).await? {
        if applied.outcome != ApplyOutcome::Unchanged {
            changes.push(format!(
                "{} ConfigMap kube-public/{}",
                match applied.outcome {
                    ApplyOutcome::Created => "created",
                    _ => "updated",
                },
                applied.name
            ));
        }
    }

    let outcome = match (fresh, changes.is_empty()) {
        (true, _) => Outcome::Created,
        (false, true) => Outcome::Reused,
        (false, false) => Outcome::Repaired,
    };
    let details = if fresh {
        vec![format!(
            "{} node(s), kind network, local-registry-hosting",
            nodes.len()
        )]
    } else {
        changes
    };
    let report = ActionReport::new("wire-nodes", outcome, details, started.elapsed());
    step.ok(report.summary());
    Ok(report)
}
