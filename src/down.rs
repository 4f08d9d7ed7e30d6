//! `kindlab down`: delete what this workspace's `up` created, and only that.
//!
//! Observe, plan (pure), act, as `up` does. The cluster goes if its owner marker names this
//! workspace (or this workspace half made it when an `up` was interrupted); the registry
//! container goes if its labels name this workspace and no other kind cluster pulls from
//! it; its images stay on their volume unless `--purge`. What another workspace made is
//! refused before anything is deleted; what this workspace adopted is left alone.

use serde::Serialize;

use crate::cluster::{self, ClusterError, ClusterSeen, Kind, lifecycle};
use crate::error::{Error, Result};
use crate::interrupt::{Interrupt, Interrupted};
use crate::registry::{self, RegistryObserved, RegistryRemoval};
use crate::ui::Ui;
use crate::workspace::{Owner, Workspace};

#[derive(Debug, Clone, Copy, Default)]
pub struct DownOptions {
    /// Keep the registry container (and its images).
    pub keep_registry: bool,
    /// Remove the registry's images volume too.
    pub purge: bool,
}

/// What `down` does to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum ClusterRemoval {
    Absent,
    Delete,
    Keep { why: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownPlan {
    pub cluster: ClusterRemoval,
    pub registry: RegistryRemoval,
}

/// Decides what `down` does. Pure. Refuses (nothing is deleted) when the cluster or the
/// registry is another workspace's or another tool's and this workspace did not adopt it.
/// `registry_users`: the other kind clusters that pull from the registry.
pub fn plan(
    cluster: &ClusterSeen,
    registry: &RegistryObserved,
    registry_adopted: bool,
    registry_users: &[String],
    options: DownOptions,
) -> Result<DownPlan> {
    let cluster_removal = if !cluster.exists() {
        ClusterRemoval::Absent
    } else if cluster.owner.is_this_workspace()
        || (cluster.interrupted_create.is_some() && cluster.owner == Owner::NotKindlab)
    {
        ClusterRemoval::Delete
    } else if cluster.adopted_before {
        ClusterRemoval::Keep {
            why: format!(
                "adopted, made by {}: kindlab never deletes it",
                cluster.owner.describe()
            ),
        }
    } else {
        return Err(ClusterError::NotOursToDelete {
            name: cluster.name.clone(),
            owner: cluster.owner.clone(),
        }
        .into());
    };
    let registry_removal = registry::plan_removal(
        registry,
        registry_adopted,
        registry_users,
        options.keep_registry,
        options.purge,
    )
    .map_err(|e| match e {
        registry::RegistryError::NotOurs { name, owner } => {
            registry::RegistryError::NotOursToDelete { name, owner }
        }
        other => other,
    })?;
    Ok(DownPlan {
        cluster: cluster_removal,
        registry: registry_removal,
    })
}

#[derive(Debug, Serialize)]
pub struct DownReport {
    pub cluster: String,
    pub registry: String,
    pub plan: DownPlan,
    /// One line per thing done or left alone, for people.
    pub lines: Vec<String>,
}

pub async fn run(
    engine: &crate::docker::Engine,
    ws: &Workspace,
    options: DownOptions,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<DownReport> {
    interrupt.handle();
    let _lock = ws.lock()?;
    let me = Some(ws.identity_or_path()?);
    let state = ws.read_state()?;
    let name = &ws.cluster.name;
    let registry_name = &ws.registry.name;

    let cluster_seen = lifecycle::observe(engine, name, me.as_ref(), &state).await?;
    let registry_seen = registry::observe(engine, registry_name, me.as_ref()).await?;
    let deleting_cluster = cluster_seen.exists()
        && (cluster_seen.owner.is_this_workspace() || cluster_seen.interrupted_create.is_some());
    let users = match &registry_seen.container {
        Some(_) => {
            cluster::registry_users(
                engine,
                registry_name,
                if deleting_cluster { name } else { "" },
            )
            .await?
        }
        None => Vec::new(),
    };
    let registry_adopted = state.registry.adopted.as_deref() == Some(registry_name.as_str());
    // Refuse before deleting anything, so a refusal leaves the lab exactly as it was.
    let plan = plan(
        &cluster_seen,
        &registry_seen,
        registry_adopted,
        &users,
        options,
    )?;

    let cluster_state = match &plan.cluster {
        ClusterRemoval::Absent => "not found".to_string(),
        ClusterRemoval::Keep { why } => {
            // The cluster stays, the admission policies this workspace put in it go. Best
            // effort and bounded: a stopped cluster must not hold `down` up.
            let me_id = me.as_ref().map(|m| m.id.clone()).unwrap_or_default();
            let remove = async {
                let kind = Kind::find().map_err(|e| e.to_string())?;
                let client = cluster::kubeconfig::client(engine, &kind, name)
                    .await
                    .map_err(|e| e.to_string())?;
                crate::guardrails::reconcile::remove_all(&client, &me_id)
                    .await
                    .map_err(|e| e.to_string())
            };
            let removed =
                match tokio::time::timeout(std::time::Duration::from_secs(15), remove).await {
                    Ok(Ok(removed)) => removed,
                    Ok(Err(e)) => vec![format!("guardrails not removed: {e}")],
                    Err(_) => vec!["guardrails not removed: the API server did not answer".into()],
                };
            match removed.is_empty() {
                true => format!("kept: {why}"),
                false => format!("kept: {why}; {}", removed.join(", ")),
            }
        }
        ClusterRemoval::Delete => {
            if let Some(pid) = cluster_seen.orphan_kind {
                cluster::kill_group(Some(pid));
            }
            let kind = Kind::find()?;
            let step = ui.step(format!("Deleting cluster kind-{name}"));
            kind.delete(name).await?;
            step.ok("");
            "deleted".to_string()
        }
    };
    if plan.cluster != ClusterRemoval::Absent || state.cluster.creating.is_some() {
        let deleted = plan.cluster == ClusterRemoval::Delete;
        let mut next = ws.read_state()?;
        next.cluster.creating = None;
        if deleted {
            next.cluster.adopted = None;
        }
        ws.write_state(&next)?;
    }
    if interrupt.is_requested() {
        return Err(Interrupted {
            during: "down".into(),
            left: format!(
                "cluster kind-{name}: {cluster_state}; registry {registry_name} not looked at"
            ),
            next: "run `kindlab down` again to finish".into(),
        }
        .into());
    }

    let registry_state = match &plan.registry {
        RegistryRemoval::Absent => "not found".to_string(),
        removal => {
            let step = ui.step(format!("Registry {registry_name}"));
            match registry::remove(engine, registry_name, removal).await {
                Ok(what) => {
                    step.ok(&what);
                    what
                }
                Err(e) => {
                    return Err(Error::from(e));
                }
            }
        }
    };

    let mut lines = vec![
        format!("cluster kind-{name}: {cluster_state}"),
        format!("registry {registry_name}: {registry_state}"),
    ];
    lines.extend(crate::gitops::down(engine, ws, me.as_ref()).await?);
    Ok(DownReport {
        lines,
        cluster: cluster_state,
        registry: registry_state,
        plan,
    })
}

impl crate::ui::Report for DownReport {
    fn text(&self) -> String {
        crate::ui::lines(&self.lines)
    }
}

/// `kindlab down [--keep-registry | --purge]`.
pub async fn command(
    ws: &Workspace,
    options: DownOptions,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<DownReport> {
    let engine = crate::docker::Engine::connect().await?;
    run(&engine, ws, options, ui, interrupt).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Node;
    use crate::registry::RegistrySeen;
    use crate::workspace::Creating;

    fn cluster(owner: Owner, exists: bool) -> ClusterSeen {
        ClusterSeen {
            name: "lab".into(),
            nodes: if exists {
                vec![Node {
                    name: "lab-control-plane".into(),
                    running: true,
                    paused: false,
                    role: "control-plane".into(),
                    state: "running".into(),
                }]
            } else {
                vec![]
            },
            owner,
            marker_current: true,
            interrupted_create: None,
            orphan_kind: None,
            adopted_before: false,
        }
    }

    fn registry(owner: Option<Owner>) -> RegistryObserved {
        RegistryObserved {
            container: owner.map(|owner| RegistrySeen {
                id: "r".into(),
                name: "kind-registry".into(),
                image: "registry:3".into(),
                running: true,
                paused: false,
                state: "running".into(),
                owner,
                host_port: Some(5001),
                host_ip: None,
                networks: vec![],
                volume: Some("kind-registry-images".into()),
            }),
            volume: None,
        }
    }

    fn other() -> Owner {
        Owner::OtherWorkspace {
            id: "b2".into(),
            path: Some("/w/b".into()),
        }
    }

    #[test]
    fn ours_goes_and_the_images_stay() {
        let plan = plan(
            &cluster(Owner::ThisWorkspace, true),
            &registry(Some(Owner::ThisWorkspace)),
            false,
            &[],
            DownOptions::default(),
        )
        .unwrap();
        assert_eq!(plan.cluster, ClusterRemoval::Delete);
        assert_eq!(plan.registry, RegistryRemoval::Remove { purge: false });
    }

    #[test]
    fn another_workspaces_cluster_or_registry_is_refused_whole() {
        let err = plan(
            &cluster(other(), true),
            &registry(Some(Owner::ThisWorkspace)),
            false,
            &[],
            DownOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), crate::exit::CONFLICT);
        assert!(
            err.fix().unwrap().contains("kindlab down` in /w/b"),
            "{:?}",
            err.fix()
        );
        let err = plan(
            &cluster(Owner::ThisWorkspace, true),
            &registry(Some(other())),
            false,
            &[],
            DownOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), crate::exit::CONFLICT);
        // A cluster kind made without kindlab: refused too.
        assert!(
            plan(
                &cluster(Owner::NotKindlab, true),
                &registry(None),
                false,
                &[],
                DownOptions::default()
            )
            .is_err()
        );
    }

    #[test]
    fn adopted_things_are_left_alone() {
        let mut adopted = cluster(Owner::NotKindlab, true);
        adopted.adopted_before = true;
        let plan = plan(
            &adopted,
            &registry(Some(Owner::NotKindlab)),
            true,
            &[],
            DownOptions {
                keep_registry: false,
                purge: true,
            },
        )
        .unwrap();
        assert!(matches!(plan.cluster, ClusterRemoval::Keep { .. }));
        assert!(matches!(plan.registry, RegistryRemoval::Keep { .. }));
    }

    #[test]
    fn a_half_made_cluster_is_deleted() {
        let mut half = cluster(Owner::NotKindlab, true);
        half.interrupted_create = Some(Creating::new("lab"));
        let plan = plan(&half, &registry(None), false, &[], DownOptions::default()).unwrap();
        assert_eq!(plan.cluster, ClusterRemoval::Delete);
        assert_eq!(plan.registry, RegistryRemoval::Absent);
    }

    #[test]
    fn a_registry_another_cluster_uses_is_kept() {
        let plan = plan(
            &cluster(Owner::ThisWorkspace, false),
            &registry(Some(Owner::ThisWorkspace)),
            false,
            &["team-b".into()],
            DownOptions {
                keep_registry: false,
                purge: true,
            },
        )
        .unwrap();
        assert_eq!(plan.cluster, ClusterRemoval::Absent);
        assert!(matches!(plan.registry, RegistryRemoval::Keep { .. }));
    }

    #[test]
    fn the_text_is_one_line_per_thing_done() {
        use crate::ui::Report as _;
        let report = DownReport {
            cluster: "kindlab".into(),
            registry: "kind-registry".into(),
            plan: DownPlan {
                cluster: ClusterRemoval::Delete,
                registry: RegistryRemoval::Remove { purge: false },
            },
            lines: vec![
                "cluster kind-kindlab: deleted".into(),
                "registry kind-registry: removed; images kept".into(),
            ],
        };
        assert_eq!(
            report.text(),
            "cluster kind-kindlab: deleted\nregistry kind-registry: removed; images kept\n"
        );
    }
}
