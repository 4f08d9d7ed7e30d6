//! `kindlab status`: what is running against what kindlab.yaml wants. One row per part of
//! the lab; the exit code is non-zero when any row is not ok.

use serde::Serialize;

use crate::cli::TargetArgs;
use crate::cluster::{self, Kind};
use crate::docker::Engine;
use crate::k8s::{self, Rollout};
use crate::registry::{self, RegistryClient};
use crate::workspace::{Workspace, find_renderer};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub component: String,
    pub ok: bool,
    pub state: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub ok: bool,
    pub rows: Vec<Row>,
}

fn row(
    component: impl Into<String>,
    ok: bool,
    state: impl Into<String>,
    detail: impl Into<String>,
) -> Row {
    Row {
        component: component.into(),
        ok,
        state: state.into(),
        detail: detail.into(),
    }
}

/// Looks at everything; never fails: what cannot be looked at is a row that is not ok.
pub async fn run(engine: &Engine, ws: &Workspace, target: &TargetArgs) -> StatusReport {
    let mut rows = Vec::new();
    let spec = &ws.registry;
    let registry_host = target
        .registry
        .clone()
        .unwrap_or_else(|| format!("localhost:{}", spec.port));

    // Registry container.
    let seen = if target.registry.is_none() {
        match registry::observe(engine, &spec.name).await {
            Ok(Some(s)) => {
                let owner = if s.owned { "kindlab" } else { "adopted" };
                rows.push(row(
                    format!("registry {}", spec.name),
                    s.running,
                    if s.running { "running" } else { "stopped" },
                    format!(
                        "{} on 127.0.0.1:{} ({owner})",
                        s.image,
                        s.host_port.unwrap_or(0)
                    ),
                ));
                Some(s)
            }
            Ok(None) => {
                rows.push(row(
                    format!("registry {}", spec.name),
                    false,
                    "missing",
                    "run `kindlab up`",
                ));
                None
            }
            Err(e) => {
                rows.push(row(
                    format!("registry {}", spec.name),
                    false,
                    "unknown",
                    e.to_string(),
                ));
                None
            }
        }
    } else {
        None
    };

    // Images: what the workspace would build now, and whether the registry has it.
    let client_registry = RegistryClient::new(&registry_host);
    let references = match crate::desired::image_references(ws, &registry_host) {
        Ok(r) => r,
        Err(e) => {
            rows.push(row("images", false, "unreadable", e.to_string()));
            Vec::new()
        }
    };
    for (name, reference) in &references {
        let tag = reference.rsplit(':').next().unwrap_or_default();
        let present = client_registry
            .manifest_digest(name, tag)
            .await
            .ok()
            .flatten();
        rows.push(row(
            format!("image {name}"),
            present.is_some(),
            if present.is_some() {
                "pushed"
            } else {
                "not pushed"
            },
            reference.clone(),
        ));
    }

    // Cluster and nodes.
    let client = match &target.context {
        Some(context) => match k8s::client_for_context(context).await {
            Ok(c) => {
                rows.push(row("cluster", true, "context", context.clone()));
                Some(c)
            }
            Err(e) => {
                rows.push(row("cluster", false, "unreachable", e.to_string()));
                None
            }
        },
        None => kind_cluster_rows(engine, ws, seen.as_ref(), &mut rows).await,
    };

    // Workloads: the rendered overlay's Deployments against the live ones.
    if let (Some(client), Some(_)) = (&client, &ws.deploy) {
        let rendered = match find_renderer().await {
            Ok(r) => crate::desired::desired_objects(ws, &r, &registry_host, &references).await,
            Err(e) => Err(e),
        };
        match rendered {
            Ok(docs) => {
                for doc in docs.iter().filter(|d| d["kind"] == "Deployment") {
                    rows.push(deployment_row(client, doc).await);
                }
            }
            Err(e) => rows.push(row("overlay", false, "unrenderable", e.to_string())),
        }
    }

    StatusReport {
        ok: rows.iter().all(|r| r.ok),
        rows,
    }
}

async fn kind_cluster_rows(
    engine: &Engine,
    ws: &Workspace,
    registry: Option<&registry::RegistrySeen>,
    rows: &mut Vec<Row>,
) -> Option<kube::Client> {
    let name = &ws.cluster.name;
    let nodes = match cluster::list_nodes(engine, name).await {
        Ok(n) => n,
        Err(e) => {
            rows.push(row(
                format!("cluster kind-{name}"),
                false,
                "unknown",
                e.to_string(),
            ));
            return None;
        }
    };
    if nodes.is_empty() {
        rows.push(row(
            format!("cluster kind-{name}"),
            false,
            "missing",
            "run `kindlab up`",
        ));
        return None;
    }
    let running = nodes.iter().filter(|n| n.running).count();
    rows.push(row(
        format!("cluster kind-{name}"),
        running == nodes.len(),
        if running == nodes.len() {
            "running"
        } else {
            "stopped nodes"
        },
        format!("{running}/{} nodes running", nodes.len()),
    ));
    let hosts = cluster::render_hosts_toml(&ws.registry.name);
    let host = format!("localhost:{}", ws.registry.port);
    for node in nodes.iter().filter(|n| n.running) {
        let wired = cluster::hosts_toml_matches(engine, &node.name, &host, &hosts)
            .await
            .unwrap_or(false);
        rows.push(row(
            format!("node {}", node.name),
            wired,
            if wired { "wired" } else { "hosts.toml missing" },
            cluster::hosts_toml_path(&host),
        ));
    }
    if let Some(reg) = registry {
        let on_kind = reg.networks.iter().any(|n| n == "kind");
        rows.push(row(
            "registry network",
            on_kind,
            if on_kind {
                "connected"
            } else {
                "not connected"
            },
            format!("{} on networks {}", reg.name, reg.networks.join(", ")),
        ));
    }
    if running < nodes.len() {
        return None;
    }
    let kind = Kind::find().ok()?;
    let client = match kind.kubeconfig(name).await {
        Ok(cfg) => k8s::client_from_kubeconfig_yaml(&cfg, None).await.ok(),
        Err(_) => None,
    };
    let Some(client) = client else {
        rows.push(row(
            "api server",
            false,
            "unreachable",
            format!("kind-{name}"),
        ));
        return None;
    };
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "kube-public");
    let present = matches!(api.get_opt("local-registry-hosting").await, Ok(Some(_)));
    rows.push(row(
        "local-registry-hosting",
        present,
        if present { "present" } else { "missing" },
        "ConfigMap kube-public/local-registry-hosting (KEP-1755)",
    ));
    Some(client)
}

async fn deployment_row(client: &kube::Client, desired: &serde_json::Value) -> Row {
    let ns = desired["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let name = desired["metadata"]["name"].as_str().unwrap_or_default();
    let component = format!("deployment {ns}/{name}");
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), ns);
    let live = match api.get_opt(name).await {
        Ok(Some(d)) => d,
        Ok(None) => return row(component, false, "missing", "run `kindlab up`"),
        Err(e) => return row(component, false, "unknown", e.to_string()),
    };
    let want: Vec<String> = desired
        .pointer("/spec/template/spec/containers")
        .and_then(|c| c.as_array())
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["image"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let have: Vec<String> = live
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default();
    if want != have {
        return row(
            component,
            false,
            "drifted",
            format!(
                "runs {} but the workspace wants {}",
                have.join(","),
                want.join(",")
            ),
        );
    }
    match k8s::judge(&live) {
        Rollout::Complete => row(component, true, "available", have.join(",")),
        Rollout::Progressing(m) => row(component, false, "progressing", m),
        Rollout::Failed(m) => row(component, false, "failed", m),
    }
}

/// The report as a table for people.
pub fn table(report: &StatusReport) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(vec!["", "COMPONENT", "STATE", "DETAIL"]);
    for r in &report.rows {
        table.add_row(vec![
            if r.ok { "✓" } else { "✗" }.to_string(),
            r.component.clone(),
            r.state.clone(),
            r.detail.clone(),
        ]);
    }
    let verdict = if report.ok {
        "Lab is up."
    } else {
        "Lab needs repair: run `kindlab up`."
    };
    format!("{table}\n{verdict}\n")
}
