//! The local registry: its container (observe → plan → act, as ctlptl reconciles one) and
//! an OCI client to ask it which tags and digests it holds.

mod container;
mod oci;
mod port;

pub use container::{
    RegistryPlan, RegistrySeen, RegistrySpec, RegistryState, observe, plan, reconcile, remove,
};
pub use oci::{RegistryClient, is_not_found, manifest_media_type};
pub use port::{PortHolder, find_port_holder};

use crate::docker::DockerError;
use crate::error::exit;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("port {port} on 127.0.0.1 is already in use by {holder}")]
    PortTaken { port: u16, holder: PortHolder },
    #[error("container {name:?} exists but was not made by kindlab and {why}")]
    Foreign { name: String, why: String },
    #[error("registry image {image} is not available locally and could not be pulled: {message}")]
    ImageMissing { image: String, message: String },
    #[error("the registry at {host} did not answer within {seconds}s")]
    NotReady { host: String, seconds: u64 },
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
            RegistryError::ImageMissing { image, .. } => format!(
                "pull it where a registry is reachable (`docker pull {image}`), or set registry.image in kindlab.yaml to an image you have"
            ),
            RegistryError::NotReady { .. } => {
                "look at the registry's log: `docker logs kind-registry`".into()
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
            RegistryError::PortTaken { .. } | RegistryError::Foreign { .. } => exit::CONFLICT,
            RegistryError::ImageMissing { .. } => exit::MISSING_PREREQUISITE,
            RegistryError::NotReady { .. } => exit::TIMEOUT,
            RegistryError::Docker(e) => e.exit_code(),
            _ => exit::FAILED,
        }
    }
}
