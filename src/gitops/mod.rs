//! GitOps mode (`gitops: {enabled: true}` in kindlab.yaml): the lab text's "commit, push, and
//! let the controller sync" made literal. `up` runs a Git server on the kind network
//! ([`server`]), installs Flux's source-controller and kustomize-controller ([`flux`]), gives
//! the workspace a `kindlab` remote, pushes, and points a GitRepository and a Kustomization
//! at the workspace's overlay ([`objects`]). From then on `git push kindlab` is how a change
//! reaches the cluster and `kindlab sync` ([`sync`]) is `flux reconcile`.
//!
//! Every resource is observed, planned by a pure function ([`plan`]) and acted on, like the
//! rest of `up`; `status` shows the same observations (revision synced, ready, last error).

pub mod flux;
pub mod objects;
pub mod plan;
pub mod remote;
pub mod server;
pub mod sync;

use std::path::PathBuf;

use crate::exit;
use crate::k8s::gitops::GitOpsOwner;

/// Where the controllers and kindlab's GitRepository and Kustomization live.
pub const NAMESPACE: &str = "flux-system";
/// The name of kindlab's GitRepository and Kustomization.
pub const OBJECT_NAME: &str = "kindlab";
/// The workspace's git remote for the lab's Git server.
pub const REMOTE: &str = "kindlab";
/// The repository's path on the Git server.
pub const REPOSITORY: &str = "workspace.git";
/// The branch the controller follows; the remote pushes the current branch there.
pub const BRANCH: &str = "main";
/// Flux's release the offline build pins (the newest declaring Go 1.26).
pub const FLUX_VERSION: &str = "v1.9.6";
/// The field manager (and the `requestedAt` author) for what kindlab writes.
pub const MANAGER: &str = "kindlab";

/// How to change an object a GitOps controller manages. kindlab's own Kustomization re-applies
/// the overlay on every interval, so a kubectl change lasts seconds: the way is Git and
/// `kindlab sync`.
pub fn change_through_git(owner: &GitOpsOwner) -> String {
    match owner {
        GitOpsOwner::FluxKustomization { name, namespace }
            if name == OBJECT_NAME && namespace == NAMESPACE =>
        {
            format!(
                "this workspace is in GitOps mode: Flux re-applies the overlay from Git every {} and undoes a kubectl change; change it through Git (commit, `git push {REMOTE}`, then `kindlab sync`), or run a GitOps lab (bad-image-tag-gitops)",
                objects::INTERVAL,
            )
        }
        other => other.fix(),
    }
}

/// The error that refuses to apply over `object`, which `owner` manages.
pub fn refusal(object: String, owner: &GitOpsOwner) -> crate::k8s::K8sError {
    crate::k8s::gitops::refusal(object, owner, change_through_git(owner))
}

/// Refuses when a GitOps controller manages the live object of any of `docs`: applying over
/// it would fight the controller.
pub async fn refuse_managed(
    client: &kube::Client,
    docs: &[serde_json::Value],
) -> Result<(), crate::k8s::K8sError> {
    for doc in docs {
        let Some(key) = crate::k8s::object::ObjectKey::of(doc) else {
            continue;
        };
        if let Some(live) = crate::k8s::object::get(client, &key).await? {
            let live = serde_json::to_value(&live).unwrap_or_default();
            if let Some(owner) = crate::k8s::gitops::owner(&live) {
                return Err(refusal(key.describe(), &owner));
            }
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum GitOpsError {
    #[error("Flux's controller manifests were not found ({what})")]
    NoFluxConfig { what: String },
    #[error("the image {image} is not in the Docker engine")]
    NoImage { image: String },
    #[error("the workspace {path} is not a git repository")]
    NotARepository { path: PathBuf },
    #[error("the overlay {overlay} is outside the workspace's git repository {top}")]
    OverlayOutside { overlay: PathBuf, top: PathBuf },
    #[error("GitOps mode is not enabled in kindlab.yaml")]
    Disabled,
    #[error("the controller did not sync: {message}")]
    SyncFailed { object: String, message: String },
    #[error("the controller did not sync within {secs}s: {last}")]
    SyncTimeout { secs: u64, last: String },
    #[error("no GitOps set-up in the cluster (no Kustomization in {namespace})")]
    NotSetUp { namespace: String },
    #[error("the container {name} is in the way (made by {owner})")]
    NameTaken { name: String, owner: String },
    #[error("the workspace's git remote {REMOTE:?} points at {url}, not at kindlab's Git server")]
    RemoteTaken { url: String },
    #[error("the Git server {name} did not answer on 127.0.0.1:{port}")]
    ServerNotAnswering { name: String, port: u16 },
    #[error("cannot render Flux's manifests: {message}")]
    Render { message: String },
}

impl GitOpsError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            GitOpsError::NoFluxConfig { .. } | GitOpsError::NoImage { .. } => {
                "build the GitOps images with `bash .ci/offline-images/gitops.sh` (make offline-images), then run kindlab through `bash .ci/with-env.sh`".into()
            }
            GitOpsError::NotARepository { path } => format!(
                "make it one: `git -C {} init && git -C {} add -A && git -C {} commit -m init`",
                path.display(),
                path.display(),
                path.display()
            ),
            GitOpsError::OverlayOutside { .. } => {
                "put deploy.overlay inside the workspace's repository".into()
            }
            GitOpsError::Disabled => {
                "add `gitops: {enabled: true}` to kindlab.yaml and run `kindlab up`".into()
            }
            GitOpsError::SyncFailed { object, .. } => format!(
                "fix it in Git (commit, `git push {REMOTE}`), then `kindlab sync`; `kubectl -n {NAMESPACE} describe {object}` shows the controller's view"
            ),
            GitOpsError::SyncTimeout { .. } => format!(
                "`kindlab status` shows what the controller is doing; `kubectl -n {NAMESPACE} logs deploy/kustomize-controller` its log"
            ),
            GitOpsError::NotSetUp { .. } => {
                "run `kindlab up` with `gitops: {enabled: true}` in kindlab.yaml".into()
            }
            GitOpsError::NameTaken { name, .. } => {
                format!("remove it (`docker rm -f {name}`) if it is not needed, or rename the cluster in kindlab.yaml")
            }
            GitOpsError::RemoteTaken { .. } => format!(
                "kindlab needs the remote name {REMOTE:?} for the lab's Git server: rename yours (`git remote rename {REMOTE} NAME`), then run again"
            ),
            GitOpsError::ServerNotAnswering { name, .. } => {
                format!("`docker logs {name}` shows why; `kindlab up` recreates it")
            }
            GitOpsError::Render { .. } => {
                "rebuild them with `KINDLAB_CI_REBUILD_IMAGES=1 bash .ci/offline-images/gitops.sh`".into()
            }
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            GitOpsError::NoFluxConfig { .. } | GitOpsError::NoImage { .. } => {
                exit::MISSING_PREREQUISITE
            }
            GitOpsError::NotARepository { .. }
            | GitOpsError::OverlayOutside { .. }
            | GitOpsError::Disabled
            | GitOpsError::NotSetUp { .. } => exit::BAD_INPUT,
            GitOpsError::NameTaken { .. } | GitOpsError::RemoteTaken { .. } => exit::CONFLICT,
            GitOpsError::ServerNotAnswering { .. } => exit::FAILED,
            GitOpsError::SyncFailed { .. } | GitOpsError::Render { .. } => exit::FAILED,
            GitOpsError::SyncTimeout { .. } => exit::TIMEOUT,
        }
    }
}

/// The images and manifests GitOps mode installs: from the environment the offline build
/// writes (`.ci/offline-images/gitops.sh` → gitops.env, read by `.ci/with-env.sh`), else
/// the names that build gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    pub source_controller: String,
    pub kustomize_controller: String,
    pub git_server: String,
    /// Each controller module's `config/` (source-controller/, kustomize-controller/).
    pub flux_config: Option<PathBuf>,
}

impl Images {
    pub fn from_env() -> Images {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Images {
            source_controller: var("KINDLAB_GITOPS_SOURCE_CONTROLLER_IMAGE")
                .unwrap_or_else(|| format!("kindlab-ci/flux-source-controller:{FLUX_VERSION}")),
            kustomize_controller: var("KINDLAB_GITOPS_KUSTOMIZE_CONTROLLER_IMAGE")
                .unwrap_or_else(|| format!("kindlab-ci/flux-kustomize-controller:{FLUX_VERSION}")),
            git_server: var("KINDLAB_GITOPS_GIT_SERVER_IMAGE")
                .unwrap_or_else(|| "kindlab-ci/git-server:latest".into()),
            flux_config: var("KINDLAB_GITOPS_FLUX_CONFIG").map(PathBuf::from),
        }
    }
}

/// The Git server container of a cluster's lab.
pub fn server_name(cluster: &str) -> String {
    format!("{cluster}-git")
}

/// The URL the controller fetches from (inside the kind network, by container name).
pub fn cluster_url(cluster: &str) -> String {
    format!(
        "http://{}:{}/{REPOSITORY}",
        server_name(cluster),
        server::CONTAINER_PORT
    )
}

/// The workspace remote's URL (the server's port published on loopback).
pub fn remote_url(host_port: u16) -> String {
    format!("http://127.0.0.1:{host_port}/{REPOSITORY}")
}

/// Whether a `kindlab` remote is the one kindlab made ([`remote_url`] of some port): only
/// that one is changed or removed; a remote of that name the user made is theirs.
pub fn is_kindlab_remote(url: &str) -> bool {
    url.strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix(&format!("/{REPOSITORY}")))
        .is_some_and(|port| port.parse::<u16>().is_ok())
}

/// `down`'s part: the Git server container if this workspace made it, and the workspace's
/// `kindlab` remote (kindlab added it). The controllers went with the cluster. One line per
/// thing removed; nothing when GitOps mode never ran here.
pub async fn down(
    engine: &crate::docker::Engine,
    ws: &crate::workspace::Workspace,
    me: Option<&crate::workspace::WorkspaceIdentity>,
) -> crate::error::Result<Vec<String>> {
    let mut lines = Vec::new();
    let name = server_name(&ws.cluster.name);
    match server::observe(engine, &name, me).await? {
        Some(seen) if seen.owner == crate::workspace::Owner::ThisWorkspace => {
            server::remove(engine, &name).await?;
            lines.push(format!("git server {name}: deleted"));
        }
        Some(seen) => lines.push(format!(
            "git server {name}: kept (made by {})",
            seen.owner.describe()
        )),
        None => {}
    }
    if let Ok(repo) = remote::Repo::open(&ws.root) {
        match repo.remote_url() {
            Some(url) if is_kindlab_remote(&url) => {
                repo.remove_remote()?;
                lines.push(format!("git remote {REMOTE}: removed"));
            }
            Some(url) => lines.push(format!(
                "git remote {REMOTE}: kept (it points at {url}, not at kindlab's Git server)"
            )),
            None => {}
        }
    }
    Ok(lines)
}

crate::error::failure_from_inherent!(GitOpsError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kindlabs_own_kustomization_says_a_kubectl_change_is_undone_and_how_to_change_it() {
        let own = GitOpsOwner::FluxKustomization {
            name: OBJECT_NAME.into(),
            namespace: NAMESPACE.into(),
        };
        assert_eq!(
            change_through_git(&own),
            "this workspace is in GitOps mode: Flux re-applies the overlay from Git every 30s and undoes a kubectl change; change it through Git (commit, `git push kindlab`, then `kindlab sync`), or run a GitOps lab (bad-image-tag-gitops)"
        );
        let theirs = GitOpsOwner::FluxKustomization {
            name: "apps".into(),
            namespace: NAMESPACE.into(),
        };
        assert_eq!(change_through_git(&theirs), theirs.fix());
    }

    #[test]
    fn only_a_remote_kindlab_made_is_kindlabs() {
        assert!(is_kindlab_remote(&remote_url(32768)));
        for theirs in [
            "git@example.org:team/app.git",
            "http://127.0.0.1:8080/team/app.git",
            "http://127.0.0.1:workspace.git",
            "http://localhost:32768/workspace.git",
        ] {
            assert!(!is_kindlab_remote(theirs), "{theirs}");
        }
    }
}
