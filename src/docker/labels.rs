//! The labels kindlab puts on what it creates, so it finds (and deletes) only its own things,
//! and only its own workspace's.

use std::collections::HashMap;

use crate::workspace::{Owner, WorkspaceIdentity};

/// Present, with value `true`, on every container, network or volume kindlab created.
pub const OWNED: &str = "dev.kindlab.owned";
/// What the object is for kindlab (`registry`, ...).
pub const ROLE: &str = "dev.kindlab.role";
/// The id of the workspace that created the object (`.kindlab/workspace.json`).
pub const WORKSPACE: &str = "dev.kindlab.workspace";
/// Where that workspace was, for messages ("belongs to the workspace at ...").
pub const WORKSPACE_PATH: &str = "dev.kindlab.workspace-path";
/// The kind label on node containers: `io.x-k8s.kind.cluster=<cluster name>`.
pub const KIND_CLUSTER: &str = "io.x-k8s.kind.cluster";

pub const ROLE_REGISTRY: &str = "registry";
/// The named volume that holds a registry's images and outlives its container.
pub const ROLE_REGISTRY_IMAGES: &str = "registry-images";

/// The label set for a new object with the given role, made for workspace `by`.
pub fn owned(role: &str, by: &WorkspaceIdentity) -> HashMap<String, String> {
    [
        (OWNED, "true"),
        (ROLE, role),
        (WORKSPACE, by.id.as_str()),
        (WORKSPACE_PATH, by.path.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The label set for an object kindlab makes outside any workspace (a bundle loaded where
/// there is none): kindlab's, no workspace's; a workspace uses it only with `--adopt`.
pub fn owned_by_no_workspace(role: &str) -> HashMap<String, String> {
    [(OWNED, "true"), (ROLE, role)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Who made an object, from its labels, as workspace `me` sees it.
pub fn owner(labels: Option<&HashMap<String, String>>, me: Option<&WorkspaceIdentity>) -> Owner {
    let get = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    Owner::from_record(
        get(WORKSPACE),
        get(WORKSPACE_PATH),
        get(OWNED) == Some("true"),
        me,
    )
}

/// What every observation of a kindlab container starts with: its image, whether it runs,
/// and who made it (from its labels, as workspace `me` sees it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerBasics {
    pub image: String,
    /// Running and not paused.
    pub running: bool,
    pub paused: bool,
    /// The engine's word for its state (`running`, `exited`, ...).
    pub status: String,
    pub owner: Owner,
}

impl ContainerBasics {
    pub fn of(
        inspect: &bollard::models::ContainerInspectResponse,
        me: Option<&WorkspaceIdentity>,
    ) -> ContainerBasics {
        let config = inspect.config.as_ref();
        let state = inspect.state.as_ref();
        let paused = state.and_then(|s| s.paused).unwrap_or(false);
        ContainerBasics {
            image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            running: state.and_then(|s| s.running).unwrap_or(false) && !paused,
            paused,
            status: state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .unwrap_or_default(),
            owner: owner(config.and_then(|c| c.labels.as_ref()), me),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_to_an_owner() {
        let a = WorkspaceIdentity {
            id: "a1".into(),
            path: "/w/a".into(),
        };
        let b = WorkspaceIdentity {
            id: "b2".into(),
            path: "/w/b".into(),
        };
        let labels = owned(ROLE_REGISTRY, &a);
        assert_eq!(owner(Some(&labels), Some(&a)), Owner::ThisWorkspace);
        assert_eq!(
            owner(Some(&labels), Some(&b)),
            Owner::OtherWorkspace {
                id: "a1".into(),
                path: Some("/w/a".into())
            }
        );
        let earlier = HashMap::from([(OWNED.to_string(), "true".to_string())]);
        assert_eq!(owner(Some(&earlier), Some(&a)), Owner::EarlierKindlab);
        assert_eq!(owner(None, Some(&a)), Owner::NotKindlab);
    }
}
