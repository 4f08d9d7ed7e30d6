//! The kind cluster: driving the `kind` CLI, and wiring its nodes to the local registry
//! through the Docker API.

mod config;
mod connect;
mod kind_cli;
pub mod kubeconfig;
pub mod lifecycle;
mod nodes;
pub mod wiring;

pub use config::{render_hosts_toml, render_kind_config, render_registry_hosting};
pub use connect::{Connection, connect};
pub use kind_cli::{Kind, is_kind_process, kill_group};
pub use lifecycle::{ClusterSeen, ClusterStep};
pub use nodes::{
    Node, OWNER_MARKER, hosts_toml_matches, hosts_toml_path, list_all_nodes, list_nodes,
    marker_owner, owner_marker, read_containerd_config, read_owner_marker, reads_certs_d,
    registry_users, remove_node, start_nodes, unpause_nodes, write_hosts_toml, write_owner_marker,
};
pub use wiring::{KIND_NETWORK, WiringDesired, WiringSeen, WiringStep};

use crate::docker::DockerError;
use crate::exit;
use crate::workspace::Owner;

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
    #[error("cluster kind-{name} was made by {}", .owner.describe())]
    NotOurs { name: String, owner: Owner },
    #[error("cluster kind-{name} was made by {}, not by this workspace", .owner.describe())]
    NotOursToDelete { name: String, owner: Owner },
    #[error("`kind create cluster --name {name}` was stopped")]
    Cancelled { name: String },
    #[error(
        "node {node} of cluster kind-{cluster} is {state}; it was running when kindlab started"
    )]
    NodeDown {
        cluster: String,
        node: String,
        state: String,
    },
    #[error("kind still lists cluster {name:?} after deleting it: {remaining}")]
    NotDeleted { name: String, remaining: String },
    #[error(
        "containerd in node {node} does not read /etc/containerd/certs.d, so it cannot pull from the local registry"
    )]
    NoConfigPath { node: String },
    #[error("kindlab's {what} template is broken: {message}")]
    Template { what: String, message: String },
    #[error("the API server of cluster {name:?} did not answer within {seconds}s: {last_error}")]
    ApiNotReady {
        name: String,
        seconds: u64,
        last_error: String,
    },
    #[error("the lab is not up: {why}")]
    NotUp { why: String },
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Kube(#[from] crate::k8s::K8sError),
}

/// kind's words when its node container exited right after it started (systemd in the node
/// gave up: most often no inotify instance left for it).
fn node_stopped_at_start(kind_output: &str) -> bool {
    kind_output.contains("cannot exec in a stopped container")
        || kind_output.contains("is not running")
        // The node died while kind was exec-ing into it: the runtime cannot even start the
        // exec'd process.
        || kind_output.contains("OCI runtime exec failed")
}

impl ClusterError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            ClusterError::KindNotFound => {
                "install kind: `go install sigs.k8s.io/kind@v0.33.0` (or `make lab`, which installs it into .bin/)".into()
            }
            ClusterError::KindFailed { stderr, .. } if node_stopped_at_start(stderr) => {
                "kind's node stopped as soon as it started: with several kind clusters on one machine that is usually the inotify limit (`sudo sysctl fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288`); otherwise `kind create cluster --retain` then `docker logs <node>` shows why".into()
            }
            ClusterError::KindFailed { .. } => {
                "read kind's output above; `kind export logs` collects the node logs".into()
            }
            ClusterError::NodeImageUnavailable { .. } => {
                "load it from a bundle made where it can be pulled (`kindlab bundle load FILE`, made by `kindlab bundle create`), or build one offline (`make offline-images`) and pass it with --node-image".into()
            }
            ClusterError::KindSpawn { .. } => "check that `kind version` runs".into(),
            ClusterError::NotOurs { name, owner } => match owner {
                Owner::OtherWorkspace { .. } => format!(
                    "give this workspace its own cluster (set cluster.name in kindlab.yaml), run `kindlab down` in the workspace that made kind-{name}, or share it with `kindlab up --adopt`"
                ),
                _ => "`kindlab up --adopt` uses it as it is (kindlab never deletes an adopted cluster), or set cluster.name in kindlab.yaml to another name".into(),
            },
            ClusterError::NotOursToDelete { name, owner } => match owner {
                Owner::OtherWorkspace { path: Some(path), .. } => format!(
                    "run `kindlab down` in {path}; kindlab deletes only what this workspace made"
                ),
                Owner::OtherWorkspace { .. } => {
                    "run `kindlab down` in the workspace that made it; kindlab deletes only what this workspace made".into()
                }
                _ => format!(
                    "kindlab deletes only clusters this workspace made; `kind delete cluster --name {name}` deletes it if you mean to"
                ),
            },
            ClusterError::Cancelled { .. } => "run `kindlab up` again".into(),
            ClusterError::NodeDown { node, state, .. } => {
                if state == "paused" {
                    format!("run `kindlab up` again: it unpauses {node} (or `docker unpause {node}`)")
                } else {
                    format!("run `kindlab up` again: it starts {node} (or `docker start {node}`)")
                }
            }
            ClusterError::NotDeleted { name, .. } => {
                format!("delete it with `kind delete cluster --name {name}`, then run again")
            }
            ClusterError::Template { .. } => return None,
            ClusterError::NoConfigPath { .. } => {
                "make the cluster with containerd's config_path set, as kind's local-registry guide does (containerdConfigPatches), or let kindlab make one (set cluster.name to a new name)".into()
            }
            ClusterError::ApiNotReady { name, .. } => format!(
                "look at the node: `docker logs {name}-control-plane`; if it stays down, `kindlab down` and `kindlab up`"
            ),
            ClusterError::NotUp { .. } => "run `kindlab up` first".into(),
            ClusterError::Docker(e) => return e.fix(),
            ClusterError::Kube(e) => return e.fix(),
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            ClusterError::KindNotFound
            | ClusterError::KindSpawn { .. }
            | ClusterError::NodeImageUnavailable { .. }
            | ClusterError::NoConfigPath { .. } => exit::MISSING_PREREQUISITE,
            ClusterError::NotOurs { .. } | ClusterError::NotOursToDelete { .. } => exit::CONFLICT,
            ClusterError::NodeDown { .. } => exit::DISRUPTED,
            ClusterError::Cancelled { .. } => exit::INTERRUPTED,
            ClusterError::ApiNotReady { .. } => exit::TIMEOUT,
            ClusterError::NotUp { .. } => exit::UNHEALTHY,
            ClusterError::Docker(e) => e.exit_code(),
            ClusterError::Kube(e) => e.exit_code(),
            _ => exit::FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_stops_at_once_points_at_the_inotify_limit() {
        let err = ClusterError::KindFailed {
            args: "create cluster".into(),
            stderr: "ERROR: failed to create cluster: failed to generate kubeadm config content: failed to get kubernetes version from node: failed to get file: command \"docker exec --privileged lab-control-plane cat /kind/version\" failed with error: exit status 126\nCommand Output: OCI runtime exec failed: exec failed: cannot exec in a stopped container: unknown".into(),
        };
        assert!(err.fix().unwrap().contains("fs.inotify.max_user_instances"));
        let died_during_exec = ClusterError::KindFailed {
            args: "create cluster".into(),
            stderr: "ERROR: failed to create cluster: failed to copy kubeadm config to node: command \"docker exec --privileged -i lab-control-plane cp /dev/stdin /kind/kubeadm.conf\" failed with error: exit status 126\nCommand Output: OCI runtime exec failed: exec failed: unable to start container process: read init-p: connection reset by peer: unknown".into(),
        };
        assert!(
            died_during_exec
                .fix()
                .unwrap()
                .contains("fs.inotify.max_user_instances")
        );
        let other = ClusterError::KindFailed {
            args: "create cluster".into(),
            stderr: "ERROR: failed to pull image".into(),
        };
        assert!(other.fix().unwrap().contains("kind export logs"));
    }
}

crate::error::failure_from_inherent!(ClusterError);
