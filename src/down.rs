//! `kindlab down`: delete what `up` created, and only that. The cluster goes if kindlab's
//! owner marker is in its control-plane node; the registry goes if it carries kindlab's
//! label (kept with `--keep-registry`). Anything else is left alone, and said so.

use serde::Serialize;

use crate::cluster::{self, ClusterError, Kind};
use crate::docker::Engine;
use crate::error::Result;
use crate::registry;
use crate::ui::Ui;
use crate::workspace::Workspace;

#[derive(Debug, Serialize)]
pub struct DownReport {
    pub cluster: String,
    pub registry: String,
    /// One line per thing done or left alone, for people.
    pub lines: Vec<String>,
}

pub async fn run(
    engine: &Engine,
    ws: &Workspace,
    keep_registry: bool,
    ui: &Ui,
) -> Result<DownReport> {
    let name = &ws.cluster.name;
    let nodes = cluster::list_nodes(engine, name).await?;
    let cluster_state = if nodes.is_empty() {
        "not found".to_string()
    } else {
        // Refuse before deleting anything, so a refusal leaves the lab exactly as it was.
        let mut owned = false;
        for node in nodes.iter().filter(|n| n.role == "control-plane") {
            owned |= cluster::read_owner_marker(engine, &node.name)
                .await
                .map_err(ClusterError::from)?
                .is_some();
        }
        if !owned {
            return Err(ClusterError::NotOurs { name: name.clone() }.into());
        }
        let kind = Kind::find()?;
        let step = ui.step(format!("Deleting cluster kind-{name}"));
        if let Err(e) = kind.delete(name).await {
            step.fail("");
            return Err(e.into());
        }
        step.ok("");
        "deleted".to_string()
    };

    let registry_state = if keep_registry {
        "kept (--keep-registry)".to_string()
    } else {
        let step = ui.step(format!("Removing registry {}", ws.registry.name));
        match registry::remove(engine, &ws.registry.name).await {
            Ok(what) => {
                step.ok(what);
                what.to_string()
            }
            Err(e) => {
                step.fail("");
                return Err(e.into());
            }
        }
    };

    Ok(DownReport {
        lines: vec![
            format!("cluster kind-{name}: {cluster_state}"),
            format!("registry {}: {registry_state}", ws.registry.name),
        ],
        cluster: cluster_state,
        registry: registry_state,
    })
}
