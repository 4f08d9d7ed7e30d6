//! Registry wiring, as kind's local-registry guide documents it: a hosts.toml in every node
//! for both registry names, the registry on the `kind` network, and the KEP-1755
//! `local-registry-hosting` ConfigMap (see `cluster::wiring`).

use std::time::Instant;

use crate::cluster::wiring::{self, WiringDesired, WiringSeen, WiringStep};
use crate::cluster::{ClusterError, Node};
use crate::error::Result;
use crate::registry;
use crate::up::context::{RegistryTarget, UpContext};
use crate::up::outcome::{ActionReport, Outcome};
use crate::up::row::Row;

/// True when this run wires nothing: an existing cluster or registry is wired by its owner.
fn skipped(ctx: &UpContext) -> bool {
    !ctx.uses_kind() || ctx.registry_target() != RegistryTarget::Local
}

fn desired(ctx: &UpContext) -> WiringDesired<'_> {
    WiringDesired {
        registry: &ctx.workspace.registry.name,
        port: ctx.workspace.registry.port,
    }
}

#[derive(Default)]
pub struct View {
    /// None when wiring is skipped.
    pub seen: Option<WiringSeen>,
    pub steps: Vec<WiringStep>,
    /// Why the cluster cannot be wired at all, if it cannot.
    pub unwirable: Option<ClusterError>,
    /// The cluster's API server could not be asked (a stopped cluster): the ConfigMap is
    /// checked once `up` has started it.
    pub api_unknown: bool,
}

/// `nodes`: the cluster's nodes, or None when `up` will create the cluster. `client`: the
/// cluster's API, when it runs.
pub async fn observe(
    ctx: &UpContext,
    nodes: Option<&[Node]>,
    client: Option<&kube::Client>,
) -> Result<View> {
    if skipped(ctx) {
        return Ok(View::default());
    }
    let desired = desired(ctx);
    let networks = registry::observe_container(&ctx.engine, desired.registry, ctx.me())
        .await?
        .map(|r| r.networks);
    let seen = match nodes {
        None => WiringSeen::of_new_cluster(ctx.cluster_name(), desired, networks),
        Some(nodes) => wiring::observe(&ctx.engine, client, nodes, desired, networks).await?,
    };
    let steps = wiring::plan(desired, &seen);
    Ok(View {
        api_unknown: seen.configmap.is_none(),
        unwirable: wiring::check(&seen).err(),
        seen: Some(seen),
        steps,
    })
}

impl View {
    pub fn changes(&self) -> Vec<String> {
        self.steps.iter().map(WiringStep::describe).collect()
    }

    pub fn rows(&self, ctx: &UpContext) -> Vec<Row> {
        let Some(seen) = &self.seen else {
            return Vec::new();
        };
        let desired = desired(ctx);
        let mut rows = Vec::new();
        for node in &seen.nodes {
            if !node.reads_hosts_toml {
                let why = crate::error::Error::from(ClusterError::NoConfigPath {
                    node: node.node.clone(),
                });
                rows.push(Row::new(
                    format!("node {}", node.node),
                    false,
                    "cannot be wired",
                    match why.fix() {
                        Some(fix) => format!("{why}; {fix}"),
                        None => why.to_string(),
                    },
                    Vec::new(),
                ));
                continue;
            }
            let planned: Vec<String> = self
                .steps
                .iter()
                .filter(
                    |s| matches!(s, WiringStep::WriteHostsToml { node: n, .. } if *n == node.node),
                )
                .map(WiringStep::describe)
                .collect();
            rows.push(Row::new(
                format!("node {}", node.node),
                node.stale.is_empty(),
                if node.stale.is_empty() {
                    "wired".to_string()
                } else {
                    "hosts.toml missing".to_string()
                },
                if node.stale.is_empty() {
                    format!("hosts.toml for {}", desired.hosts().join(" and "))
                } else {
                    format!("no hosts.toml for {}", node.stale.join(" and "))
                },
                planned,
            ));
        }
        let connect: Vec<String> = self
            .steps
            .iter()
            .filter(|s| matches!(s, WiringStep::ConnectNetwork { .. }))
            .map(WiringStep::describe)
            .collect();
        rows.push(Row::new(
            "registry network",
            connect.is_empty(),
            if connect.is_empty() {
                "connected"
            } else {
                "not connected"
            },
            format!(
                "{} on networks {}",
                desired.registry,
                seen.registry_networks
                    .as_ref()
                    .map_or("-".to_string(), |n| n.join(", "))
            ),
            connect,
        ));
        let configmap: Vec<String> = self
            .steps
            .iter()
            .filter(|s| matches!(s, WiringStep::ApplyConfigMap { .. }))
            .map(WiringStep::describe)
            .collect();
        let (ok, state) = match &seen.configmap {
            None => (false, "unknown"),
            Some(crate::k8s::ObjectChange::Unchanged) => (true, "present"),
            Some(crate::k8s::ObjectChange::Create) => (false, "missing"),
            Some(crate::k8s::ObjectChange::Configure { .. }) => (false, "drifted"),
        };
        rows.push(Row::new(
            "local-registry-hosting",
            ok,
            state,
            if self.api_unknown {
                "ConfigMap kube-public/local-registry-hosting: the API server does not answer"
            } else {
                "ConfigMap kube-public/local-registry-hosting (KEP-1755)"
            },
            configmap,
        ));
        rows
    }
}

/// `fresh`: the cluster was created by this run, so wiring it is creation, not repair.
pub async fn execute(ctx: &UpContext, client: &kube::Client, fresh: bool) -> Result<ActionReport> {
    let started = Instant::now();
    if skipped(ctx) {
        return Ok(ActionReport::new(
            "wire-nodes",
            Outcome::Skipped,
            vec!["existing cluster or registry: wiring is theirs".into()],
            started.elapsed(),
        ));
    }
    let step = ctx.ui.step("Registry wiring");
    let result = ctx
        .interruptible("registry wiring", async {
            super::hold(ctx, "wire-nodes").await?;
            let nodes = crate::cluster::list_nodes(&ctx.engine, ctx.cluster_name())
                .await
                .map_err(ClusterError::from)?;
            let view = observe(ctx, Some(&nodes), Some(client)).await?;
            if let Some(e) = view.unwirable {
                return Err(e.into());
            }
            wiring::apply(&ctx.engine, client, desired(ctx), &view.steps, |d| {
                step.detail(d)
            })
            .await?;
            Ok((nodes.len(), view.steps))
        })
        .await;
    let (node_count, steps) = result?;
    let outcome = match (fresh, steps.is_empty()) {
        (true, _) => Outcome::Created,
        (false, true) => Outcome::Reused,
        (false, false) => Outcome::Repaired,
    };
    let details = if fresh {
        vec![format!(
            "{node_count} node(s), kind network, local-registry-hosting"
        )]
    } else {
        steps.iter().map(WiringStep::done).collect()
    };
    let report = ActionReport::new("wire-nodes", outcome, details, started.elapsed())
        .with_plan(steps.iter().map(WiringStep::describe).collect());
    step.ok(report.summary());
    Ok(report)
}
