//! The lab's Git server: one container on the kind network (like the registry), Git's own
//! smart-HTTP server inside (`.ci/offline-images/gitserver`). The cluster reaches it by
//! container name; the workspace by a loopback port the engine picks. Its repositories live
//! in the container: the workspace is the source of truth, and `up` pushes it again.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use serde::Serialize;

use crate::cluster::wiring::KIND_NETWORK;
use crate::docker::{DockerError, Engine, labels};
use crate::workspace::{Owner, WorkspaceIdentity};

/// The port the server listens on in its container.
pub const CONTAINER_PORT: u16 = 8080;
pub const ROLE_GIT_SERVER: &str = "git-server";

/// What the engine says about the server container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerSeen {
    pub name: String,
    pub image: String,
    pub running: bool,
    pub paused: bool,
    #[serde(flatten)]
    pub owner: Owner,
    /// The loopback port published for the server.
    pub host_port: Option<u16>,
    pub on_kind_network: bool,
}

pub async fn observe(
    engine: &Engine,
    name: &str,
    me: Option<&WorkspaceIdentity>,
) -> Result<Option<ServerSeen>, DockerError> {
    let Some(inspect) = engine.inspect_container(name).await? else {
        return Ok(None);
    };
    let basics = labels::ContainerBasics::of(&inspect, me);
    let network = inspect.network_settings.unwrap_or_default();
    let host_port = network
        .ports
        .and_then(|mut p| p.remove(&format!("{CONTAINER_PORT}/tcp")))
        .flatten()
        .and_then(|b| b.into_iter().find_map(|b| b.host_port?.parse().ok()));
    let on_kind_network = network
        .networks
        .is_some_and(|n| n.contains_key(KIND_NETWORK));
    Ok(Some(ServerSeen {
        name: name.to_string(),
        image: basics.image,
        running: basics.running,
        paused: basics.paused,
        owner: basics.owner,
        host_port,
        on_kind_network,
    }))
}

/// Creates and starts the server on the kind network, its port published on loopback (the
/// engine picks the host port: nothing to collide with).
pub async fn create(
    engine: &Engine,
    name: &str,
    image: &str,
    by: &WorkspaceIdentity,
) -> Result<(), DockerError> {
    let port_key = format!("{CONTAINER_PORT}/tcp");
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some(labels::owned(ROLE_GIT_SERVER, by)),
        exposed_ports: Some(vec![port_key.clone()]),
        host_config: Some(HostConfig {
            // Loopback only: the server has no authentication.
            port_bindings: Some(HashMap::from([(
                port_key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            )])),
            network_mode: Some(KIND_NETWORK.into()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(DockerError::api(format!("create container {name}")))?;
    start(engine, name).await
}

pub async fn start(engine: &Engine, name: &str) -> Result<(), DockerError> {
    engine
        .docker
        .start_container(name, None)
        .await
        .map_err(DockerError::api(format!("start container {name}")))
}

pub async fn unpause(engine: &Engine, name: &str) -> Result<(), DockerError> {
    engine
        .docker
        .unpause_container(name)
        .await
        .map_err(DockerError::api(format!("unpause container {name}")))
}

/// Removes the container (force); false when it was not there.
pub async fn remove(engine: &Engine, name: &str) -> Result<bool, DockerError> {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    match engine.docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(source) => Err(DockerError::Api {
            action: format!("remove container {name}"),
            source,
        }),
    }
}

/// Waits until the server answers its health check on the published port.
pub async fn wait_ready(host_port: u16, timeout: std::time::Duration) -> bool {
    let url = format!("http://127.0.0.1:{host_port}/healthz");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if client
            .get(&url)
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    false
}
