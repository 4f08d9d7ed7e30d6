//! Every failure a user can see, with the one-line fix and the exit code scripts rely on.
//!
//! Modules return their own typed errors; this enum gathers them at the binary edge, where
//! `ui::render` prints `error:` / `caused by:` / `help:` (or the same fields as JSON).

use crate::interrupt::Interrupted;
use crate::{bundle, cluster, diagnose, docker, k8s, lab, registry, workspace};

/// Exit codes, stable for scripts. 2 is clap's usage error.
pub mod exit {
    pub const OK: u8 = 0;
    /// The operation was attempted and failed (engine error, build failed, rollout failed).
    pub const FAILED: u8 = 1;
    /// Bad input: an invalid kindlab.yaml, an unknown image name, a workspace that is not one.
    pub const BAD_INPUT: u8 = 3;
    /// A prerequisite is missing: Docker not reachable, kind or kustomize not installed.
    pub const MISSING_PREREQUISITE: u8 = 4;
    /// Something kindlab does not own is in the way (a port, a container, a cluster).
    pub const CONFLICT: u8 = 5;
    /// A wait ran out of time (rollout, registry readiness).
    pub const TIMEOUT: u8 = 6;
    /// The credentials lack a permission the command needs (the API server answered 401 or
    /// 403); the error names the verb, the resource and the namespace, and who can grant it.
    pub const FORBIDDEN: u8 = 7;
    /// `status`, `doctor` or `diagnose` found a problem; nothing failed while looking.
    pub const UNHEALTHY: u8 = 10;
    /// Something the command was using went away under it (a node stopped or paused, the
    /// registry removed); running the command again recovers.
    pub const DISRUPTED: u8 = 11;
    /// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Docker(#[from] docker::DockerError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Build(#[from] docker::BuildError),
    #[error(transparent)]
    Workspace(#[from] workspace::WorkspaceError),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    #[error(transparent)]
    K8s(#[from] k8s::K8sError),
    #[error(transparent)]
    Lab(#[from] lab::LabError),
    #[error(transparent)]
    Diagnose(#[from] diagnose::DiagnoseError),
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error(transparent)]
    Workshop(#[from] crate::workshop::WorkshopError),
    #[error(transparent)]
    GitOps(#[from] crate::gitops::GitOpsError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    #[error(transparent)]
    State(#[from] workspace::StateError),
    #[error("{what}")]
    Unhealthy { what: String },
    #[error("cannot write {path}: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// One line telling the user what to do next, if kindlab knows it.
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Docker(e) => e.fix(),
            Error::Registry(e) => e.fix(),
            Error::Build(e) => e.fix(),
            Error::Workspace(e) => e.fix(),
            Error::Cluster(e) => e.fix(),
            Error::K8s(e) => e.fix(),
            Error::Lab(e) => e.fix(),
            Error::Diagnose(e) => e.fix(),
            Error::Bundle(e) => e.fix(),
            Error::Workshop(e) => e.fix(),
            Error::GitOps(e) => e.fix(),
            Error::Interrupted(e) => e.fix(),
            Error::State(e) => e.fix(),
            Error::Unhealthy { .. } => Some("run `kindlab up` to repair the lab".into()),
            Error::Output { .. } => None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Docker(e) => e.exit_code(),
            Error::Registry(e) => e.exit_code(),
            Error::Build(e) => e.exit_code(),
            Error::Workspace(_) => exit::BAD_INPUT,
            Error::Cluster(e) => e.exit_code(),
            Error::K8s(e) => e.exit_code(),
            Error::Lab(e) => e.exit_code(),
            Error::Diagnose(e) => e.exit_code(),
            Error::Bundle(e) => e.exit_code(),
            Error::Workshop(e) => e.exit_code(),
            Error::GitOps(e) => e.exit_code(),
            Error::Interrupted(e) => e.exit_code(),
            Error::State(e) => e.exit_code(),
            Error::Unhealthy { .. } => exit::UNHEALTHY,
            Error::Output { .. } => exit::FAILED,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
