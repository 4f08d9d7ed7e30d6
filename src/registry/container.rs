//! The registry container, reconciled as ctlptl does: observe what exists, plan with a pure
//! function, then act. kindlab repairs in place where it can (start a stopped registry) and
//! recreates only what it labelled; a registry made by kind's own script is adopted as is.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::StreamExt;
use serde::Serialize;

use super::{RegistryClient, RegistryError, find_port_holder};
use crate::docker::{DockerError, Engine, labels};
use crate::workspace::RegistrySettings;

/// The port the registry listens on inside its container (registry:2 and :3 alike).
const CONTAINER_PORT: u16 = 5000;
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub type RegistrySpec = RegistrySettings;

/// What the engine says about the registry container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrySeen {
    pub id: String,
    pub name: String,
    pub image: String,
    pub running: bool,
    /// Labelled by kindlab; otherwise made by someone else (kind's script, by hand).
    pub owned: bool,
    /// The host port published for 5000/tcp, and on which address.
    pub host_port: Option<u16>,
    pub host_ip: Option<String>,
    pub networks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryPlan {
    /// Running as desired.
    Keep,
    /// Exists as desired but stopped.
    Start,
    /// Nothing there.
    Create,
    /// Ours, but different from the spec in a way only a new container fixes.
    Recreate { why: String },
    /// Not ours and not usable as it is: never touched.
    Refuse { why: String },
}

/// Decides what to do. Pure, so every drift rule is a unit test.
pub fn plan(spec: &RegistrySpec, seen: Option<&RegistrySeen>) -> RegistryPlan {
    let Some(seen) = seen else {
        return RegistryPlan::Create;
    };
    let port_differs = seen.host_port != Some(spec.port);
    // The port decides whether clients reach it; a different image is only drift for a
    // registry kindlab made (kind's script runs registry:2, which serves just as well).
    let image_differs = seen.image != spec.image;
    if !seen.owned {
        if port_differs {
            return RegistryPlan::Refuse {
                why: format!(
                    "it publishes {} instead of port {}",
                    seen.host_port
                        .map_or("no port".to_string(), |p| format!("port {p}")),
                    spec.port
                ),
            };
        }
        return if seen.running {
            RegistryPlan::Keep
        } else {
            RegistryPlan::Start
        };
    }
    if port_differs {
        return RegistryPlan::Recreate {
            why: format!(
                "it publishes {:?} but kindlab.yaml asks for port {}",
                seen.host_port, spec.port
            ),
        };
    }
    if image_differs {
        return RegistryPlan::Recreate {
            why: format!(
                "it runs {} but kindlab.yaml asks for {}",
                seen.image, spec.image
            ),
        };
    }
    if seen.running {
        RegistryPlan::Keep
    } else {
        RegistryPlan::Start
    }
}

/// What reconciling did, for status lines and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryState {
    Created,
    Reused,
    /// Reused a registry kindlab did not create.
    Adopted,
    Started,
    Recreated,
}

impl RegistryState {
    pub fn describe(self) -> &'static str {
        match self {
            RegistryState::Created => "created",
            RegistryState::Reused => "reused",
            RegistryState::Adopted => "adopted (not created by kindlab; left as is)",
            RegistryState::Started => "repaired: started the stopped container",
            RegistryState::Recreated => "recreated",
        }
    }
}

/// Reads the container named `name`, if any.
pub async fn observe(engine: &Engine, name: &str) -> Result<Option<RegistrySeen>, DockerError> {
    let inspect = match engine.docker.inspect_container(name, None).await {
        Ok(i) => i,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok(None),
        Err(source) => {
            return Err(DockerError::Api {
                action: format!("inspect container {name}"),
                source,
            });
        }
    };
    let config = inspect.config.unwrap_or_default();
    let binding = inspect
        .host_config
        .and_then(|h| h.port_bindings)
        .and_then(|mut b| b.remove(&format!("{CONTAINER_PORT}/tcp")))
        .flatten()
        .and_then(|b| b.into_iter().next());
    let mut networks: Vec<String> = inspect
        .network_settings
        .and_then(|n| n.networks)
        .map(|n| n.into_keys().collect())
        .unwrap_or_default();
    networks.sort();
    Ok(Some(RegistrySeen {
        id: inspect.id.unwrap_or_default(),
        name: name.to_string(),
        image: config.image.unwrap_or_default(),
        running: inspect.state.and_then(|s| s.running).unwrap_or(false),
        owned: labels::is_owned(config.labels.as_ref()),
        host_port: binding
            .as_ref()
            .and_then(|b| b.host_port.as_deref())
            .and_then(|p| p.parse().ok()),
        host_ip: binding.and_then(|b| b.host_ip),
        networks,
    }))
}

/// Brings the registry to `spec` and waits until it answers. `on_detail` gets progress text.
pub async fn reconcile(
    engine: &Engine,
    spec: &RegistrySpec,
    mut on_detail: impl FnMut(&str),
) -> Result<(RegistryState, RegistrySeen), RegistryError> {
    let seen = observe(engine, &spec.name).await?;
    let decided = plan(spec, seen.as_ref());
    tracing::debug!(?decided, "registry plan");
    let state = match decided {
        RegistryPlan::Keep => {
            if seen.as_ref().is_some_and(|s| s.owned) {
                RegistryState::Reused
            } else {
                RegistryState::Adopted
            }
        }
        RegistryPlan::Start => {
            on_detail("starting the stopped container");
            engine
                .docker
                .start_container(&spec.name, None)
                .await
                .map_err(DockerError::api(format!("start {}", spec.name)))?;
            RegistryState::Started
        }
        RegistryPlan::Create => {
            create(engine, spec, &mut on_detail).await?;
            RegistryState::Created
        }
        RegistryPlan::Recreate { why } => {
            on_detail(&format!("recreating: {why}"));
            tracing::info!(name = %spec.name, %why, "recreating the registry");
            remove_container(engine, &spec.name).await?;
            create(engine, spec, &mut on_detail).await?;
            RegistryState::Recreated
        }
        RegistryPlan::Refuse { why } => {
            return Err(RegistryError::Foreign {
                name: spec.name.clone(),
                why,
            });
        }
    };
    on_detail("waiting for the registry to answer");
    let host = format!("localhost:{}", spec.port);
    wait_ready(&RegistryClient::new(&host)).await?;
    let seen = observe(engine, &spec.name)
        .await?
        .ok_or_else(|| RegistryError::NotReady {
            host: host.clone(),
            seconds: 0,
        })?;
    Ok((state, seen))
}

async fn create(
    engine: &Engine,
    spec: &RegistrySpec,
    on_detail: &mut impl FnMut(&str),
) -> Result<(), RegistryError> {
    if let Some(holder) = find_port_holder(engine, spec.port, None).await? {
        return Err(RegistryError::PortTaken {
            port: spec.port,
            holder,
        });
    }
    ensure_image(engine, &spec.image, on_detail).await?;
    on_detail("creating the container");
    let port_key = format!("{CONTAINER_PORT}/tcp");
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        labels: Some(labels::owned(labels::ROLE_REGISTRY)),
        exposed_ports: Some(vec![port_key.clone()]),
        host_config: Some(HostConfig {
            // Loopback only, as kind's guide does: the registry has no auth.
            port_bindings: Some(HashMap::from([(
                port_key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(spec.port.to_string()),
                }]),
            )])),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default()
        .name(&spec.name)
        .build();
    engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(DockerError::api(format!("create container {}", spec.name)))?;
    engine
        .docker
        .start_container(&spec.name, None)
        .await
        .map_err(DockerError::api(format!("start container {}", spec.name)))?;
    Ok(())
}

/// Pulls the image when the engine does not have it (a laptop pulls; an air-gapped machine
/// gets a clear error).
async fn ensure_image(
    engine: &Engine,
    image: &str,
    on_detail: &mut impl FnMut(&str),
) -> Result<(), RegistryError> {
    if engine.docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    on_detail(&format!("pulling {image}"));
    let options = CreateImageOptionsBuilder::default()
        .from_image(image)
        .build();
    let mut stream = engine.docker.create_image(Some(options), None, None);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            return Err(RegistryError::ImageMissing {
                image: image.to_string(),
                message: e.to_string(),
            });
        }
    }
    Ok(())
}

async fn wait_ready(client: &RegistryClient) -> Result<(), RegistryError> {
    let started = Instant::now();
    loop {
        if client.ping().await {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(RegistryError::NotReady {
                host: client.host().to_string(),
                seconds: READY_TIMEOUT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn remove_container(engine: &Engine, name: &str) -> Result<(), DockerError> {
    // v=true removes the anonymous volume with the images: it was created with the
    // container, by kindlab, and nothing else can use it.
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    engine
        .docker
        .remove_container(name, Some(options))
        .await
        .map_err(DockerError::api(format!("remove container {name}")))
}

/// Removes the registry if kindlab created it. Returns what happened, in words.
pub async fn remove(engine: &Engine, name: &str) -> Result<&'static str, RegistryError> {
    match observe(engine, name).await? {
        None => Ok("not found; nothing to remove"),
        Some(seen) if !seen.owned => Ok("left alone: it was not created by kindlab"),
        Some(_) => {
            remove_container(engine, name).await?;
            Ok("removed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RegistrySpec {
        RegistrySettings::default()
    }

    fn seen(owned: bool, running: bool, port: Option<u16>, image: &str) -> RegistrySeen {
        RegistrySeen {
            id: "abc".into(),
            name: "kind-registry".into(),
            image: image.into(),
            running,
            owned,
            host_port: port,
            host_ip: Some("127.0.0.1".into()),
            networks: vec!["bridge".into()],
        }
    }

    #[test]
    fn nothing_there_is_created() {
        assert_eq!(plan(&spec(), None), RegistryPlan::Create);
    }

    #[test]
    fn our_healthy_registry_is_kept() {
        assert_eq!(
            plan(&spec(), Some(&seen(true, true, Some(5001), "registry:3"))),
            RegistryPlan::Keep
        );
    }

    #[test]
    fn our_stopped_registry_is_started_not_recreated() {
        assert_eq!(
            plan(&spec(), Some(&seen(true, false, Some(5001), "registry:3"))),
            RegistryPlan::Start
        );
    }

    #[test]
    fn our_registry_on_another_port_or_image_is_recreated() {
        assert!(matches!(
            plan(&spec(), Some(&seen(true, true, Some(5002), "registry:3"))),
            RegistryPlan::Recreate { .. }
        ));
        match plan(&spec(), Some(&seen(true, true, Some(5001), "registry:2"))) {
            RegistryPlan::Recreate { why } => assert!(why.contains("registry:2"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_registry_from_kinds_script_is_adopted_even_with_another_image() {
        assert_eq!(
            plan(&spec(), Some(&seen(false, true, Some(5001), "registry:2"))),
            RegistryPlan::Keep
        );
        assert_eq!(
            plan(&spec(), Some(&seen(false, false, Some(5001), "registry:2"))),
            RegistryPlan::Start
        );
    }

    #[test]
    fn a_foreign_container_on_another_port_is_refused() {
        match plan(&spec(), Some(&seen(false, true, None, "nginx"))) {
            RegistryPlan::Refuse { why } => assert!(why.contains("no port"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
