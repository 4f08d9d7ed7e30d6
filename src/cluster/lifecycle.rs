//! The kind cluster as one resource: observe (its nodes, its owner marker, what the
//! workspace's state remembers), plan with a pure function, act. kind cannot label its node
//! containers, so ownership is a marker file in the control-plane node, written right after
//! creation, and, before that, a "creating" record in the workspace's own state: a cluster
//! found with that record and without the marker is one an interrupted `up` half made.

use serde::Serialize;

use super::{ClusterError, Node, kind_cli, list_nodes, marker_owner, read_owner_marker};
use crate::docker::Engine;
use crate::workspace::{Creating, LocalState, Owner, WorkspaceIdentity};

/// What is there, from the engine and the workspace's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterSeen {
    pub name: String,
    /// Its node containers; empty when the cluster does not exist.
    pub nodes: Vec<Node>,
    /// Who made it, from the owner marker (NotKindlab: no marker).
    #[serde(flatten)]
    pub owner: Owner,
    /// False when the marker is an earlier kindlab's (to be rewritten).
    pub marker_current: bool,
    /// An earlier `up` of this workspace was creating this cluster when it stopped.
    pub interrupted_create: Option<Creating>,
    /// That creation's `kind` process, still running (its kindlab was killed).
    pub orphan_kind: Option<u32>,
    /// This workspace adopted the cluster before (`up --adopt`).
    pub adopted_before: bool,
}

impl ClusterSeen {
    pub fn exists(&self) -> bool {
        !self.nodes.is_empty()
    }
}

/// One thing `up` does to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterStep {
    /// Kill the `kind create` an interrupted run left behind, before touching its cluster.
    StopOrphanKind {
        pid: u32,
    },
    /// Delete a cluster this workspace half made.
    Delete {
        why: String,
    },
    Create,
    /// Use a cluster this workspace did not create, and remember that (never deleted).
    Adopt {
        owner: Owner,
    },
    Unpause {
        nodes: Vec<String>,
    },
    Start {
        nodes: Vec<String>,
    },
    /// Write this workspace's owner marker (an earlier kindlab's marker, or a creation that
    /// finished just before its run was killed).
    WriteMarker,
    /// Drop the "creating" record: the creation had finished.
    ForgetCreating,
}

impl ClusterStep {
    pub fn describe(&self, name: &str) -> String {
        match self {
            ClusterStep::StopOrphanKind { pid } => format!(
                "stop `kind create cluster` (pid {pid}), left running by an interrupted `kindlab up`"
            ),
            ClusterStep::Delete { why } => {
                format!("delete the half-made cluster kind-{name}: {why}")
            }
            ClusterStep::Create => format!("create kind cluster kind-{name}"),
            ClusterStep::Adopt { owner } => format!(
                "adopt cluster kind-{name} (made by {}; kindlab will never delete it)",
                owner.describe()
            ),
            ClusterStep::Unpause { nodes } => format!("unpause paused nodes {}", nodes.join(", ")),
            ClusterStep::Start { nodes } => format!("start stopped nodes {}", nodes.join(", ")),
            ClusterStep::WriteMarker => {
                format!("record this workspace as the owner of kind-{name}")
            }
            ClusterStep::ForgetCreating => {
                "forget an interrupted creation that had in fact finished".into()
            }
        }
    }

    pub fn done(&self, name: &str) -> String {
        match self {
            ClusterStep::StopOrphanKind { pid } => {
                format!("stopped the `kind create` (pid {pid}) an interrupted run left")
            }
            ClusterStep::Delete { why } => format!("deleted the half-made cluster ({why})"),
            ClusterStep::Create => "kind cluster".into(),
            ClusterStep::Adopt { owner } => {
                format!("adopted kind-{name} (made by {})", owner.describe())
            }
            ClusterStep::Unpause { nodes } => format!("unpaused paused nodes {}", nodes.join(", ")),
            ClusterStep::Start { nodes } => format!("started stopped nodes {}", nodes.join(", ")),
            ClusterStep::WriteMarker => "recorded this workspace as its owner".into(),
            ClusterStep::ForgetCreating => "the interrupted creation had finished".into(),
        }
    }
}

/// Decides what to do. Pure. `adopt`: `--adopt` was given.
pub fn plan(seen: &ClusterSeen, adopt: bool) -> Result<Vec<ClusterStep>, ClusterError> {
    let mut steps = Vec::new();
    if let Some(pid) = seen.orphan_kind {
        steps.push(ClusterStep::StopOrphanKind { pid });
    }
    if !seen.exists() {
        steps.push(ClusterStep::Create);
        return Ok(steps);
    }
    if seen.interrupted_create.is_some() {
        match seen.owner {
            // No marker: kind never finished, or kindlab was stopped before writing it. Either
            // way this workspace made it, and a cluster of unknown state is cheaper to make
            // again than to trust.
            Owner::NotKindlab => {
                steps.push(ClusterStep::Delete {
                    why: "an earlier `kindlab up` was interrupted while creating it".into(),
                });
                steps.push(ClusterStep::Create);
                return Ok(steps);
            }
            _ => steps.push(ClusterStep::ForgetCreating),
        }
    }
    if seen.owner.is_this_workspace() {
        if !seen.marker_current {
            steps.push(ClusterStep::WriteMarker);
        }
    } else if seen.adopted_before || adopt {
        if !seen.adopted_before {
            steps.push(ClusterStep::Adopt {
                owner: seen.owner.clone(),
            });
        }
    } else {
        return Err(ClusterError::NotOurs {
            name: seen.name.clone(),
            owner: seen.owner.clone(),
        });
    }
    let paused: Vec<String> = seen
        .nodes
        .iter()
        .filter(|n| n.paused)
        .map(|n| n.name.clone())
        .collect();
    let stopped: Vec<String> = seen
        .nodes
        .iter()
        .filter(|n| !n.running && !n.paused)
        .map(|n| n.name.clone())
        .collect();
    if !paused.is_empty() {
        steps.push(ClusterStep::Unpause { nodes: paused });
    }
    if !stopped.is_empty() {
        steps.push(ClusterStep::Start { nodes: stopped });
    }
    Ok(steps)
}

/// Looks at cluster `name`: its nodes, its owner marker, and the workspace's state.
pub async fn observe(
    engine: &Engine,
    name: &str,
    me: Option<&WorkspaceIdentity>,
    state: &LocalState,
) -> Result<ClusterSeen, ClusterError> {
    let nodes = list_nodes(engine, name).await?;
    let mut marker = None;
    for node in nodes.iter().filter(|n| n.role == "control-plane") {
        if let Some(m) = read_owner_marker(engine, &node.name).await? {
            marker = Some(m);
            break;
        }
    }
    let (owner, marker_current) = marker_owner(marker.as_deref(), me);
    let interrupted_create = state.cluster.creating.clone().filter(|c| c.name == name);
    let orphan_kind = interrupted_create
        .as_ref()
        .and_then(|c| c.kind_pid)
        .filter(|pid| kind_cli::is_kind_process(*pid));
    Ok(ClusterSeen {
        name: name.to_string(),
        nodes,
        owner,
        marker_current,
        interrupted_create,
        orphan_kind,
        adopted_before: state.cluster.adopted.as_deref() == Some(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, state: &str) -> Node {
        Node {
            name: name.into(),
            running: state == "running",
            paused: state == "paused",
            role: "control-plane".into(),
            state: state.into(),
        }
    }

    fn seen(owner: Owner, nodes: Vec<Node>) -> ClusterSeen {
        ClusterSeen {
            name: "lab".into(),
            nodes,
            owner,
            marker_current: true,
            interrupted_create: None,
            orphan_kind: None,
            adopted_before: false,
        }
    }

    fn other() -> Owner {
        Owner::OtherWorkspace {
            id: "b2".into(),
            path: Some("/w/b".into()),
        }
    }

    #[test]
    fn a_missing_cluster_is_created() {
        assert_eq!(
            plan(&seen(Owner::NotKindlab, vec![]), false).unwrap(),
            vec![ClusterStep::Create]
        );
    }

    #[test]
    fn our_running_cluster_needs_nothing_and_stopped_nodes_are_started() {
        let running = seen(
            Owner::ThisWorkspace,
            vec![node("lab-control-plane", "running")],
        );
        assert!(plan(&running, false).unwrap().is_empty());
        let mixed = seen(
            Owner::ThisWorkspace,
            vec![
                node("lab-control-plane", "paused"),
                node("lab-worker", "exited"),
            ],
        );
        assert_eq!(
            plan(&mixed, false).unwrap(),
            vec![
                ClusterStep::Unpause {
                    nodes: vec!["lab-control-plane".into()]
                },
                ClusterStep::Start {
                    nodes: vec!["lab-worker".into()]
                }
            ]
        );
    }

    #[test]
    fn another_workspaces_or_tools_cluster_needs_adopt() {
        for owner in [other(), Owner::NotKindlab, Owner::EarlierKindlab] {
            let theirs = seen(owner.clone(), vec![node("lab-control-plane", "running")]);
            match plan(&theirs, false) {
                Err(ClusterError::NotOurs { owner: o, .. }) => assert_eq!(o, owner),
                other => panic!("{other:?}"),
            }
            assert_eq!(
                plan(&theirs, true).unwrap(),
                vec![ClusterStep::Adopt { owner }]
            );
        }
        let mut remembered = seen(Owner::NotKindlab, vec![node("lab-control-plane", "exited")]);
        remembered.adopted_before = true;
        assert_eq!(
            plan(&remembered, false).unwrap(),
            vec![ClusterStep::Start {
                nodes: vec!["lab-control-plane".into()]
            }]
        );
    }

    #[test]
    fn a_half_made_cluster_is_deleted_and_made_again() {
        let mut half = seen(
            Owner::NotKindlab,
            vec![node("lab-control-plane", "running")],
        );
        half.interrupted_create = Some(Creating::new("lab"));
        half.orphan_kind = Some(4242);
        assert_eq!(
            plan(&half, false).unwrap()[..],
            [
                ClusterStep::StopOrphanKind { pid: 4242 },
                ClusterStep::Delete {
                    why: "an earlier `kindlab up` was interrupted while creating it".into()
                },
                ClusterStep::Create
            ]
        );
        // kind had not made a node yet: just create.
        let mut nothing = seen(Owner::NotKindlab, vec![]);
        nothing.interrupted_create = Some(Creating::new("lab"));
        assert_eq!(plan(&nothing, false).unwrap(), vec![ClusterStep::Create]);
        // The marker was written before the run died: the creation had finished.
        let mut finished = seen(
            Owner::ThisWorkspace,
            vec![node("lab-control-plane", "running")],
        );
        finished.interrupted_create = Some(Creating::new("lab"));
        assert_eq!(
            plan(&finished, false).unwrap(),
            vec![ClusterStep::ForgetCreating]
        );
    }

    #[test]
    fn an_earlier_kindlabs_marker_for_this_workspace_is_rewritten() {
        let mut earlier = seen(
            Owner::ThisWorkspace,
            vec![node("lab-control-plane", "running")],
        );
        earlier.marker_current = false;
        assert_eq!(
            plan(&earlier, false).unwrap(),
            vec![ClusterStep::WriteMarker]
        );
    }
}
