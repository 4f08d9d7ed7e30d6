//! What GitOps mode's `up` would do, from what it saw: a pure function, unit-tested.

use serde::Serialize;
use serde_json::Value;

use super::objects::{self, FluxStatus};
use super::server::ServerSeen;
use super::{REMOTE, REPOSITORY};
use crate::workspace::Owner;

/// One controller Deployment as seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControllerSeen {
    pub name: String,
    pub image: String,
    pub available: bool,
}

/// Everything the plan looks at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    pub server: Option<ServerSeen>,
    pub controllers: Vec<ControllerSeen>,
    /// The URL of the workspace's `kindlab` remote.
    pub remote: Option<String>,
    /// The commit the workspace's HEAD is at.
    pub head: Option<String>,
    /// The commit the server's branch is at (None: nothing pushed, or not reachable).
    pub pushed: Option<String>,
    pub git_repository: Option<Value>,
    pub kustomization: Option<Value>,
}

/// What the workspace wants.
#[derive(Debug, Clone)]
pub struct Desired {
    pub server_image: String,
    /// name → the image reference the cluster pulls.
    pub controllers: Vec<(String, String)>,
    pub git_repository: Value,
    pub kustomization: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A container of the server's name that this workspace did not make.
    Refuse {
        owner: Owner,
    },
    CreateServer,
    StartServer,
    UnpauseServer,
    RecreateServer {
        why: String,
    },
    /// Render Flux's config/, push the controller images to the registry, apply, wait.
    InstallControllers {
        why: String,
    },
    /// Add or correct the workspace's `kindlab` remote.
    SetRemote,
    /// Push HEAD to the server's branch.
    Push,
    /// Apply the GitRepository and Kustomization.
    ApplyObjects {
        why: String,
    },
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::Refuse { owner } => format!(
                "refuse: the Git server's container name is taken (made by {})",
                owner.describe()
            ),
            Step::CreateServer => "create the Git server on the kind network".into(),
            Step::StartServer => "start the stopped Git server".into(),
            Step::UnpauseServer => "unpause the Git server".into(),
            Step::RecreateServer { why } => format!("recreate the Git server ({why})"),
            Step::InstallControllers { why } => {
                format!("install Flux's source- and kustomize-controller ({why})")
            }
            Step::SetRemote => format!("point the workspace's `{REMOTE}` remote at the Git server"),
            Step::Push => format!("push HEAD to the Git server ({REPOSITORY})"),
            Step::ApplyObjects { why } => {
                format!("apply the GitRepository and Kustomization ({why})")
            }
        }
    }
}

pub fn plan(desired: &Desired, seen: &Observed, remote_url: Option<&str>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut server_new = false;
    match &seen.server {
        None => {
            steps.push(Step::CreateServer);
            server_new = true;
        }
        Some(s) if s.owner != Owner::ThisWorkspace => {
            return vec![Step::Refuse {
                owner: s.owner.clone(),
            }];
        }
        Some(s) if s.image != desired.server_image => {
            steps.push(Step::RecreateServer {
                why: format!("image {} → {}", s.image, desired.server_image),
            });
            server_new = true;
        }
        Some(s) if !s.on_kind_network => {
            steps.push(Step::RecreateServer {
                why: "not on the kind network".into(),
            });
            server_new = true;
        }
        Some(s) if s.paused => steps.push(Step::UnpauseServer),
        Some(s) if !s.running => steps.push(Step::StartServer),
        Some(_) => {}
    }
    let wrong: Vec<String> = desired
        .controllers
        .iter()
        .filter_map(
            |(name, image)| match seen.controllers.iter().find(|c| &c.name == name) {
                None => Some(format!("{name} missing")),
                Some(c) if &c.image != image => Some(format!("{name} runs {}", c.image)),
                Some(c) if !c.available => Some(format!("{name} not available")),
                Some(_) => None,
            },
        )
        .collect();
    if !wrong.is_empty() {
        steps.push(Step::InstallControllers {
            why: wrong.join(", "),
        });
    }
    // A new server (or a new port) means a new remote URL and an empty repository.
    if server_new || seen.remote.is_none() || seen.remote.as_deref() != remote_url {
        steps.push(Step::SetRemote);
    }
    if server_new || seen.head.is_none() || seen.pushed != seen.head {
        steps.push(Step::Push);
    }
    let objects_why = match (&seen.git_repository, &seen.kustomization) {
        (None, _) | (_, None) => Some("missing".to_string()),
        (Some(g), Some(k)) => {
            if !objects::spec_matches(g, &desired.git_repository) {
                Some("the GitRepository changed".into())
            } else if !objects::spec_matches(k, &desired.kustomization) {
                Some("the Kustomization changed".into())
            } else {
                None
            }
        }
    };
    if let Some(why) = objects_why {
        steps.push(Step::ApplyObjects { why });
    }
    steps
}

/// `status`'s words for the sync: ok, state, detail.
pub fn sync_state(seen: &Observed) -> (bool, String, String) {
    let Some(k) = &seen.kustomization else {
        return (false, "missing".into(), "no Kustomization yet".into());
    };
    let ks = FluxStatus::of(k);
    let gs = seen
        .git_repository
        .as_ref()
        .map(FluxStatus::of)
        .unwrap_or_default();
    let short = |r: &Option<String>| {
        r.as_deref()
            .map(|r| objects::commit_of(r).chars().take(12).collect::<String>())
            .unwrap_or_else(|| "-".into())
    };
    let head = seen
        .head
        .as_deref()
        .map(|h| h.chars().take(12).collect::<String>());
    let applied = ks.applied();
    let mut detail = format!("revision {} applied", short(&applied));
    if let Some(h) = &head
        && short(&applied) != *h
    {
        let pushed = seen
            .pushed
            .as_deref()
            .is_some_and(|p| p.starts_with(h.as_str()));
        detail.push_str(&format!(
            "; HEAD {h} {}",
            if pushed {
                "pushed, not synced yet"
            } else {
                "not pushed"
            }
        ));
    }
    if gs.ready == Some(false) {
        return (
            false,
            "source failing".into(),
            format!("{detail}; GitRepository: {}", gs.message),
        );
    }
    match ks.ready {
        Some(true) => (true, "synced".into(), detail),
        Some(false) => (
            false,
            "failing".into(),
            format!("{detail}; last error: {}", ks.message),
        ),
        None => (
            false,
            "reconciling".into(),
            format!("{detail}; {}", ks.message),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::objects::{git_repository, kustomization};

    fn desired() -> Desired {
        Desired {
            server_image: "git:1".into(),
            controllers: vec![
                ("source-controller".into(), "r/sc:1".into()),
                ("kustomize-controller".into(), "r/kc:1".into()),
            ],
            git_repository: git_repository("http://lab-git:8080/workspace.git"),
            kustomization: kustomization("./deploy/overlays/dev"),
        }
    }

    fn server(owner: Owner) -> ServerSeen {
        ServerSeen {
            name: "lab-git".into(),
            image: "git:1".into(),
            running: true,
            paused: false,
            owner,
            host_port: Some(32000),
            on_kind_network: true,
        }
    }

    fn healthy() -> Observed {
        Observed {
            server: Some(server(Owner::ThisWorkspace)),
            controllers: vec![
                ControllerSeen {
                    name: "source-controller".into(),
                    image: "r/sc:1".into(),
                    available: true,
                },
                ControllerSeen {
                    name: "kustomize-controller".into(),
                    image: "r/kc:1".into(),
                    available: true,
                },
            ],
            remote: Some("http://127.0.0.1:32000/workspace.git".into()),
            head: Some("abc".into()),
            pushed: Some("abc".into()),
            git_repository: Some(desired().git_repository),
            kustomization: Some(desired().kustomization),
        }
    }

    const URL: Option<&str> = Some("http://127.0.0.1:32000/workspace.git");

    #[test]
    fn nothing_there_plans_everything_in_order() {
        let steps = plan(&desired(), &Observed::default(), None);
        assert_eq!(steps[0], Step::CreateServer);
        assert!(matches!(steps[1], Step::InstallControllers { .. }));
        assert_eq!(steps[2], Step::SetRemote);
        assert_eq!(steps[3], Step::Push);
        assert!(matches!(steps[4], Step::ApplyObjects { .. }));
    }

    #[test]
    fn a_healthy_lab_plans_nothing() {
        assert_eq!(plan(&desired(), &healthy(), URL), Vec::<Step>::new());
    }

    #[test]
    fn a_new_commit_is_pushed_and_nothing_else() {
        let mut seen = healthy();
        seen.head = Some("def".into());
        assert_eq!(plan(&desired(), &seen, URL), vec![Step::Push]);
    }

    #[test]
    fn a_server_someone_else_made_is_refused_and_nothing_else_planned() {
        let mut seen = healthy();
        seen.server = Some(server(Owner::NotKindlab));
        assert!(matches!(
            plan(&desired(), &seen, URL)[..],
            [Step::Refuse { .. }]
        ));
    }

    #[test]
    fn a_recreated_server_gets_the_remote_set_and_the_push_again() {
        let mut seen = healthy();
        seen.server.as_mut().unwrap().image = "git:0".into();
        let steps = plan(&desired(), &seen, URL);
        assert!(matches!(steps[0], Step::RecreateServer { .. }));
        assert!(steps.contains(&Step::SetRemote) && steps.contains(&Step::Push));
    }

    #[test]
    fn a_controller_on_another_image_is_reinstalled() {
        let mut seen = healthy();
        seen.controllers[1].image = "r/kc:0".into();
        match &plan(&desired(), &seen, URL)[..] {
            [Step::InstallControllers { why }] => {
                assert!(why.contains("kustomize-controller runs r/kc:0"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_tells_pushed_but_not_synced_from_synced() {
        let mut seen = healthy();
        seen.kustomization.as_mut().unwrap()["status"] = serde_json::json!({
            "lastAppliedRevision": "main@sha1:aaa",
            "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied"}]
        });
        seen.head = Some("aaa".into());
        let (ok, state, _) = sync_state(&seen);
        assert!(ok);
        assert_eq!(state, "synced");
        seen.head = Some("bbb".into());
        seen.pushed = Some("bbb".into());
        let (_, _, detail) = sync_state(&seen);
        assert!(
            detail.contains("HEAD bbb pushed, not synced yet"),
            "{detail}"
        );
    }
}
