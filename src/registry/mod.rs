//! The local registry: its container (observe → plan → act, as ctlptl reconciles one) and
//! an OCI client to ask it which tags and digests it holds.

mod container;
mod oci;
mod port;
mod removal;

pub use container::{
    CONTAINER_PORT, RegistryDesired, RegistryObserved, RegistrySeen, RegistrySpec, RegistryStep,
    VolumeSeen, apply, ensure_for_push, observe, observe_container, plan, volume_name,
};
pub use oci::{Probe, RegistryClient, is_not_found, manifest_media_type};
pub use port::{PortHolder, find_port_holder, published_ports};
pub use removal::{RegistryRemoval, plan_removal, remove};

use crate::docker::DockerError;
use crate::exit;
use crate::workspace::Owner;

/// `localhost:5001`: the registry as the host (Docker, kindlab's pushes, the nodes' mirror
/// entry) names it. The one place that spells it.
pub fn local_host(port: u16) -> String {
    format!("localhost:{port}")
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("port {port} on 127.0.0.1 is already in use by {holder}")]
    PortTaken { port: u16, holder: PortHolder },
    #[error("container {name:?} is not this workspace's registry and {why}")]
    Foreign { name: String, why: String },
    #[error("registry container {name:?} was made by {}", .owner.describe())]
    NotOurs { name: String, owner: Owner },
    #[error("registry container {name:?} was made by {}, not by this workspace", .owner.describe())]
    NotOursToDelete { name: String, owner: Owner },
    #[error("volume {volume:?} (for registry {registry:?}) holds the images of {}{}", .owner.describe(), if *.owner_gone { ", which no longer exists" } else { "" })]
    VolumeNotOurs {
        volume: String,
        registry: String,
        owner: Owner,
        owner_gone: bool,
    },
    #[error("{host} (container {name:?}) answers {answer}: it is not a registry")]
    NotARegistry {
        host: String,
        name: String,
        answer: String,
    },
    #[error("registry container {name:?} was removed while kindlab was using it")]
    Vanished { name: String },
    #[error("registry container {name:?} stopped while kindlab was using it ({state})")]
    Stopped { name: String, state: String },
    #[error("no port from {from} to {to} is free for the registry")]
    NoFreePort { from: u16, to: u16 },
    #[error("registry image {image} is not available locally and could not be pulled: {message}")]
    ImageMissing { image: String, message: String },
    #[error("the registry at {host} did not answer within {seconds}s")]
    NotReady {
        host: String,
        name: String,
        seconds: u64,
    },
    #[error("registry request failed: {action}")]
    Oci {
        action: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    #[error("invalid image reference {reference:?}: {message}")]
    Reference { reference: String, message: String },
    #[error(transparent)]
    Docker(#[from] DockerError),
}

impl RegistryError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            RegistryError::PortTaken { holder, port } => match holder {
                PortHolder::Container { name, .. } => format!(
                    "stop that container (`docker stop {name}`) or set registry.port in kindlab.yaml to a free port"
                ),
                PortHolder::Process { pid, .. } => format!(
                    "stop process {pid} or set registry.port in kindlab.yaml to a port other than {port}"
                ),
                PortHolder::Unknown => {
                    format!("free port {port} or set registry.port in kindlab.yaml to a free port")
                }
            },
            RegistryError::Foreign { name, .. } => format!(
                "remove it yourself (`docker rm -f {name}`) or set registry.name in kindlab.yaml to another name"
            ),
            RegistryError::NotOurs { name, owner } => match owner {
                Owner::OtherWorkspace { .. } => format!(
                    "give this workspace its own registry (set registry.name, and registry.port or `port: auto`, in kindlab.yaml), or share {name} with `kindlab up --adopt`"
                ),
                Owner::EarlierKindlab => format!(
                    "`kindlab up --adopt` uses it as it is, or remove it (`docker rm -f {name}`) and `kindlab up` makes a new one"
                ),
                _ => "`kindlab up --adopt` uses it as it is (kindlab never deletes an adopted registry), or set registry.name in kindlab.yaml to another name".into(),
            },
            RegistryError::NotOursToDelete { name, owner } => match owner {
                Owner::OtherWorkspace { path: Some(path), .. } => format!(
                    "run `kindlab down` in {path}; kindlab deletes only what this workspace made"
                ),
                Owner::OtherWorkspace { .. } => {
                    "run `kindlab down` in the workspace that made it; kindlab deletes only what this workspace made".into()
                }
                _ => format!(
                    "kindlab deletes only registries this workspace made; `docker rm -f {name}` removes it if you mean to (`--keep-registry` leaves it)"
                ),
            },
            RegistryError::VolumeNotOurs {
                volume,
                owner_gone: true,
                ..
            } => format!(
                "take it over with its images: `kindlab up --adopt` (kindlab then uses it and never deletes it); or set registry.name in kindlab.yaml to another name, or remove it with `docker volume rm {volume}`"
            ),
            RegistryError::VolumeNotOurs { volume, .. } => format!(
                "set registry.name in kindlab.yaml to another name, or remove the volume where it belongs (`kindlab down --purge` there, or `docker volume rm {volume}`)"
            ),
            RegistryError::NotARegistry { name, .. } => format!(
                "check what runs in {name} (`docker logs {name}`); set registry.image to a registry image such as registry:3"
            ),
            RegistryError::Vanished { name } => format!(
                "run `kindlab up` again: it recreates {name}; its images are kept on volume {}",
                volume_name(name)
            ),
            RegistryError::NoFreePort { .. } => {
                "set registry.port in kindlab.yaml to a free port, or stop containers you no longer need (`docker ps -a`)".into()
            }
            RegistryError::Stopped { .. } => {
                "run `kindlab up` again: it starts the registry".into()
            }
            RegistryError::ImageMissing { image, .. } => format!(
                "pull it where a registry is reachable (`docker pull {image}`), or set registry.image in kindlab.yaml to an image you have"
            ),
            RegistryError::NotReady { name, .. } => {
                format!("look at the registry's log: `docker logs {name}`")
            }
            RegistryError::Oci { .. } => {
                "check the registry with `kindlab registry status`; `kindlab registry up` repairs it".into()
            }
            RegistryError::Reference { .. } => return None,
            RegistryError::Docker(e) => return e.fix(),
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            RegistryError::PortTaken { .. }
            | RegistryError::Foreign { .. }
            | RegistryError::NotOurs { .. }
            | RegistryError::NotOursToDelete { .. }
            | RegistryError::VolumeNotOurs { .. }
            | RegistryError::NotARegistry { .. }
            | RegistryError::NoFreePort { .. } => exit::CONFLICT,
            RegistryError::Vanished { .. } | RegistryError::Stopped { .. } => exit::DISRUPTED,
            RegistryError::ImageMissing { .. } => exit::MISSING_PREREQUISITE,
            RegistryError::NotReady { .. } => exit::TIMEOUT,
            RegistryError::Docker(e) => e.exit_code(),
            _ => exit::FAILED,
        }
    }
}

crate::error::failure_from_inherent!(RegistryError);
