//! The kind cluster: driving the `kind` CLI, and wiring its nodes to the local registry
//! through the Docker API.

mod config;
mod kind_cli;
mod nodes;

pub use config::{render_hosts_toml, render_kind_config, render_registry_hosting};
pub use kind_cli::Kind;
pub use nodes::{
    Node, OWNER_MARKER, hosts_toml_matches, hosts_toml_path, list_nodes, read_owner_marker,
    start_stopped, write_hosts_toml, write_owner_marker,
};

use crate::docker::DockerError;
use crate::error::exit;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("kind was not found on PATH")]
    KindNotFound,
    #[error("`kind {args}` failed: {stderr}")]
    KindFailed { args: String, stderr: String },
    #[error("the kind node image {image} is not in the Docker engine and cannot be pulled")]
    NodeImageUnavailable { image: String, stderr: String },
    #[error("cannot run kind ({path})")]
    KindSpawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster {name:?} has no node containers")]
    NoNodes { name: String },
    #[error("cluster {name:?} was not created by kindlab")]
    NotOurs { name: String },
    #[error("the API server of cluster {name:?} did not answer within {seconds}s: {last_error}")]
    ApiNotReady {
        name: String,
        seconds: u64,
        last_error: String,
    },
    #[error(transparent)]
    Docker(#[from] DockerError),
}

impl ClusterError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            ClusterError::KindNotFound => {
                "install kind: `go install sigs.k8s.io/kind@v0.33.0` (or `make lab`, which installs it into .bin/)".into()
            }
            ClusterError::KindFailed { .. } => {
                "read kind's output above; `kind export logs` collects the node logs".into()
            }
            ClusterError::NodeImageUnavailable { .. } => {
                "load it from a bundle made where it can be pulled (`kindlab bundle load FILE`, made by `kindlab bundle create`), or build one offline (`make offline-images`) and pass it with --node-image".into()
            }
            ClusterError::KindSpawn { .. } => "check that `kind version` runs".into(),
            ClusterError::NoNodes { name } => {
                format!("delete the broken cluster with `kind delete cluster --name {name}` and run `kindlab up` again")
            }
            ClusterError::NotOurs { name } => format!(
                "delete it yourself (`kind delete cluster --name {name}`) or set cluster.name in kindlab.yaml to another name"
            ),
            ClusterError::ApiNotReady { name, .. } => format!(
                "look at the node: `docker logs {name}-control-plane`; if it stays down, `kindlab down` and `kindlab up`"
            ),
            ClusterError::Docker(e) => return e.fix(),
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            ClusterError::KindNotFound
            | ClusterError::KindSpawn { .. }
            | ClusterError::NodeImageUnavailable { .. } => exit::MISSING_PREREQUISITE,
            ClusterError::NotOurs { .. } => exit::CONFLICT,
            ClusterError::ApiNotReady { .. } => exit::TIMEOUT,
            ClusterError::Docker(e) => e.exit_code(),
            _ => exit::FAILED,
        }
    }
}
