//! The registry container, reconciled as ctlptl does: observe what exists, plan with a pure
//! function, then act. kindlab repairs in place where it can (start a stopped registry),
//! recreates only what this workspace labelled, and keeps the images on a named volume that
//! outlives the container. A registry made by anyone else (kind's script, another
//! workspace) is used only when the user says so (`--adopt`), and never deleted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, PortBinding, RestartPolicy,
    RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::StreamExt;
use serde::Serialize;

use super::oci::Probe;
use super::{RegistryClient, RegistryError, find_port_holder};
use crate::docker::{DockerError, Engine, labels};
use crate::workspace::{Owner, RegistrySettings, WorkspaceIdentity};

/// The port the registry listens on inside its container (registry:2 and :3 alike).
pub const CONTAINER_PORT: u16 = 5000;
/// Where registry:2 and :3 keep their blobs.
const STORAGE_PATH: &str = "/var/lib/registry";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// An HTTP server that keeps answering, but not as a registry, is not going to become one.
const NOT_A_REGISTRY_GRACE: Duration = Duration::from_secs(3);

pub type RegistrySpec = RegistrySettings;

/// The named volume that keeps a registry's images when its container goes.
pub fn volume_name(registry: &str) -> String {
    format!("{registry}-images")
}

/// What the engine says about the registry container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrySeen {
    pub id: String,
    pub name: String,
    pub image: String,
    pub running: bool,
    pub paused: bool,
    /// The engine's word for its state (`running`, `exited`, `removing`, ...).
    pub state: String,
    /// Who made it, from its labels.
    #[serde(flatten)]
    pub owner: Owner,
    /// The host port published for 5000/tcp, and on which address.
    pub host_port: Option<u16>,
    pub host_ip: Option<String>,
    pub networks: Vec<String>,
    /// The named volume mounted at the registry's storage, if any.
    pub volume: Option<String>,
}

/// The images volume kindlab would use for this registry, if it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSeen {
    pub name: String,
    #[serde(flatten)]
    pub owner: Owner,
    /// The workspace that made it no longer exists where it was made (its folder, or the
    /// identity in it, is gone), so its images can be taken over (`up --adopt`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub owner_gone: bool,
}

/// Everything `plan` looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryObserved {
    pub container: Option<RegistrySeen>,
    pub volume: Option<VolumeSeen>,
}

/// What the workspace wants of its registry.
#[derive(Debug, Clone, Copy)]
pub struct RegistryDesired<'a> {
    pub settings: &'a RegistrySettings,
    /// `--adopt` was given, or this workspace adopted this registry before.
    pub adopt: bool,
    /// The adoption is already remembered in the workspace's state.
    pub adopted_before: bool,
    /// This workspace took over the images volume of a workspace that is gone.
    pub volume_adopted_before: bool,
}

/// One thing `up` does to the registry. [`RegistryStep::describe`] says it before (plans,
/// `--dry-run`), [`RegistryStep::done`] after (status lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryStep {
    /// Use a registry this workspace did not create, and remember that (never deleted).
    Adopt { owner: Owner },
    /// Use the images volume of a workspace that is gone, and remember that (never deleted).
    AdoptVolume { owner: Owner },
    /// Exists as desired but stopped.
    Start,
    /// Exists as desired but paused.
    Unpause,
    /// Nothing there: the images volume (unless it exists) and the container.
    Create,
    /// Ours, but different from the spec in a way only a new container fixes. The images
    /// volume is kept.
    Recreate { why: String },
}

impl RegistryStep {
    pub fn describe(&self, spec: &RegistrySpec) -> String {
        match self {
            RegistryStep::Adopt { owner } => format!(
                "adopt registry {} (made by {}; kindlab will never delete it)",
                spec.name,
                owner.describe()
            ),
            RegistryStep::AdoptVolume { owner } => format!(
                "take over volume {} and its images (made by {}, which is gone; kindlab will never delete it)",
                volume_name(&spec.name),
                owner.describe()
            ),
            RegistryStep::Start => format!("start the stopped container {}", spec.name),
            RegistryStep::Unpause => format!("unpause the paused container {}", spec.name),
            RegistryStep::Create => format!(
                "create registry {} on 127.0.0.1:{} (images on volume {})",
                spec.name,
                spec.port,
                volume_name(&spec.name)
            ),
            RegistryStep::Recreate { why } => format!(
                "recreate registry {} because {why} (images kept on volume {})",
                spec.name,
                volume_name(&spec.name)
            ),
        }
    }

    pub fn done(&self, spec: &RegistrySpec) -> String {
        match self {
            RegistryStep::Adopt { owner } => {
                format!("adopted {} (made by {})", spec.name, owner.describe())
            }
            RegistryStep::AdoptVolume { owner } => format!(
                "took over volume {} (made by {})",
                volume_name(&spec.name),
                owner.describe()
            ),
            RegistryStep::Start => "started the stopped container".into(),
            RegistryStep::Unpause => "unpaused the paused container".into(),
            RegistryStep::Create => format!("{} on 127.0.0.1:{}", spec.name, spec.port),
            RegistryStep::Recreate { why } => format!("recreated because {why}"),
        }
    }
}

/// Decides what to do. Pure, so every drift and ownership rule is a unit test.
pub fn plan(
    desired: RegistryDesired<'_>,
    observed: &RegistryObserved,
) -> Result<Vec<RegistryStep>, RegistryError> {
    let spec = desired.settings;
    let Some(seen) = &observed.container else {
        let mut steps: Vec<RegistryStep> = check_volume(desired, observed.volume.as_ref())?
            .into_iter()
            .collect();
        steps.push(RegistryStep::Create);
        return Ok(steps);
    };
    let mut steps = Vec::new();
    let port_differs = seen.host_port != Some(spec.port);
    if seen.owner.is_this_workspace() {
        // The port decides whether clients reach it; a different image is drift only for a
        // registry this workspace made.
        let why = if port_differs {
            Some(format!(
                "it publishes {} but kindlab.yaml asks for port {}",
                describe_port(seen.host_port),
                spec.port
            ))
        } else if seen.image != spec.image {
            Some(format!(
                "it runs {} but kindlab.yaml asks for {}",
                seen.image, spec.image
            ))
        } else {
            None
        };
        if let Some(why) = why {
            let mut steps: Vec<RegistryStep> = check_volume(desired, observed.volume.as_ref())?
                .into_iter()
                .collect();
            steps.push(RegistryStep::Recreate { why });
            return Ok(steps);
        }
    } else {
        if !desired.adopt {
            return Err(RegistryError::NotOurs {
                name: spec.name.clone(),
                owner: seen.owner.clone(),
            });
        }
        if port_differs {
            return Err(RegistryError::Foreign {
                name: spec.name.clone(),
                why: format!(
                    "it publishes {} instead of port {}, and kindlab changes no registry it did not create",
                    describe_port(seen.host_port),
                    spec.port
                ),
            });
        }
        if !desired.adopted_before {
            steps.push(RegistryStep::Adopt {
                owner: seen.owner.clone(),
            });
        }
    }
    if seen.paused {
        steps.push(RegistryStep::Unpause);
    } else if !seen.running {
        steps.push(RegistryStep::Start);
    }
    Ok(steps)
}

fn describe_port(port: Option<u16>) -> String {
    port.map_or("no port".to_string(), |p| format!("port {p}"))
}

/// A volume of that name that is not this workspace's is not reused: its images are someone
/// else's. Only when the workspace that made it is gone may the user take it over (`--adopt`).
fn check_volume(
    desired: RegistryDesired<'_>,
    volume: Option<&VolumeSeen>,
) -> Result<Option<RegistryStep>, RegistryError> {
    let Some(v) = volume else {
        return Ok(None);
    };
    if v.owner.is_this_workspace() || desired.volume_adopted_before {
        return Ok(None);
    }
    if v.owner_gone && desired.adopt {
        return Ok(Some(RegistryStep::AdoptVolume {
            owner: v.owner.clone(),
        }));
    }
    Err(RegistryError::VolumeNotOurs {
        volume: v.name.clone(),
        registry: desired.settings.name.clone(),
        owner: v.owner.clone(),
        owner_gone: v.owner_gone,
    })
}

/// Reads the container named `name` and its images volume, as workspace `me` sees them.
pub async fn observe(
    engine: &Engine,
    name: &str,
    me: Option<&WorkspaceIdentity>,
) -> Result<RegistryObserved, DockerError> {
    Ok(RegistryObserved {
        container: observe_container(engine, name, me).await?,
        volume: observe_volume(engine, &volume_name(name), me).await?,
    })
}

/// Reads the container named `name`, if any.
pub async fn observe_container(
    engine: &Engine,
    name: &str,
    me: Option<&WorkspaceIdentity>,
) -> Result<Option<RegistrySeen>, DockerError> {
    let Some(inspect) = engine.inspect_container(name).await? else {
        return Ok(None);
    };
    let basics = labels::ContainerBasics::of(&inspect, me);
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
    let volume = inspect
        .mounts
        .unwrap_or_default()
        .into_iter()
        .find_map(|m| {
            (m.destination.as_deref() == Some(STORAGE_PATH) && m.typ.as_deref() == Some("volume"))
                .then_some(m.name)
                .flatten()
        });
    Ok(Some(RegistrySeen {
        id: inspect.id.unwrap_or_default(),
        name: name.to_string(),
        image: basics.image,
        running: basics.running,
        paused: basics.paused,
        state: basics.status,
        owner: basics.owner,
        host_port: binding
            .as_ref()
            .and_then(|b| b.host_port.as_deref())
            .and_then(|p| p.parse().ok()),
        host_ip: binding.and_then(|b| b.host_ip),
        networks,
        volume,
    }))
}

async fn observe_volume(
    engine: &Engine,
    name: &str,
    me: Option<&WorkspaceIdentity>,
) -> Result<Option<VolumeSeen>, DockerError> {
    match engine.docker.inspect_volume(name).await {
        Ok(v) => {
            let owner = labels::owner(Some(&v.labels), me);
            Ok(Some(VolumeSeen {
                name: name.to_string(),
                owner_gone: crate::workspace::is_gone(&owner),
                owner,
            }))
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(source) => Err(DockerError::Api {
            action: format!("inspect volume {name}"),
            source,
        }),
    }
}

/// Carries out `steps` (from [`plan`]), waits until the registry answers its API, and returns
/// what the engine then says. `on_detail` gets progress text.
pub async fn apply(
    engine: &Engine,
    spec: &RegistrySpec,
    by: &WorkspaceIdentity,
    steps: &[RegistryStep],
    mut on_detail: impl FnMut(&str),
) -> Result<RegistrySeen, RegistryError> {
    for step in steps {
        tracing::debug!(?step, "registry");
        match step {
            // Nothing to do in the engine: the adoption is remembered in the workspace's
            // state, and creating a volume that exists leaves it (and its labels) as it is.
            RegistryStep::Adopt { .. } | RegistryStep::AdoptVolume { .. } => {}
            RegistryStep::Start => {
                on_detail("starting the stopped container");
                engine
                    .docker
                    .start_container(&spec.name, None)
                    .await
                    .map_err(DockerError::api(format!("start {}", spec.name)))?;
            }
            RegistryStep::Unpause => {
                on_detail("unpausing the container");
                engine
                    .docker
                    .unpause_container(&spec.name)
                    .await
                    .map_err(DockerError::api(format!("unpause {}", spec.name)))?;
            }
            RegistryStep::Create => create(engine, spec, Some(by), &mut on_detail).await?,
            RegistryStep::Recreate { why } => {
                on_detail(&format!("recreating: {why}"));
                tracing::info!(name = %spec.name, %why, "recreating the registry");
                remove_container(engine, &spec.name).await?;
                create(engine, spec, Some(by), &mut on_detail).await?;
            }
        }
    }
    on_detail("waiting for the registry API");
    let host = super::local_host(spec.port);
    wait_ready(&RegistryClient::new(&host), &spec.name).await?;
    observe_container(engine, &spec.name, Some(by))
        .await?
        .ok_or_else(|| RegistryError::Vanished {
            name: spec.name.clone(),
        })
}

/// Makes the images volume and the registry container, labelled for workspace `by` (None: a
/// registry made outside any workspace).
async fn create(
    engine: &Engine,
    spec: &RegistrySpec,
    by: Option<&WorkspaceIdentity>,
    on_detail: &mut impl FnMut(&str),
) -> Result<(), RegistryError> {
    let owned = |role| match by {
        Some(by) => labels::owned(role, by),
        None => labels::owned_by_no_workspace(role),
    };
    if let Some(holder) = find_port_holder(engine, spec.port, None).await? {
        return Err(RegistryError::PortTaken {
            port: spec.port,
            holder,
        });
    }
    ensure_image(engine, &spec.image, on_detail).await?;
    let volume = volume_name(&spec.name);
    // Creating a volume that exists returns it unchanged: `plan` has already checked that it
    // is this workspace's, or one the user took over from a workspace that is gone.
    engine
        .docker
        .create_volume(VolumeCreateRequest {
            name: Some(volume.clone()),
            labels: Some(owned(labels::ROLE_REGISTRY_IMAGES)),
            ..Default::default()
        })
        .await
        .map_err(DockerError::api(format!("create volume {volume}")))?;
    on_detail("creating the container");
    let port_key = format!("{CONTAINER_PORT}/tcp");
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        labels: Some(owned(labels::ROLE_REGISTRY)),
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
            mounts: Some(vec![Mount {
                target: Some(STORAGE_PATH.into()),
                source: Some(volume),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }]),
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

/// A registry to push into, for `bundle load`: made if missing (for workspace `by`, or for
/// none), started or unpaused if need be, and answering. A registry someone else made is
/// pushed into as it is, never changed. Returns true when it was made here (so a failed
/// load can remove it again).
pub async fn ensure_for_push(
    engine: &Engine,
    spec: &RegistrySpec,
    by: Option<&WorkspaceIdentity>,
    mut on_detail: impl FnMut(&str),
) -> Result<bool, RegistryError> {
    let created = match observe_container(engine, &spec.name, by).await? {
        None => {
            create(engine, spec, by, &mut on_detail).await?;
            true
        }
        Some(seen) => {
            if seen.paused {
                engine
                    .docker
                    .unpause_container(&spec.name)
                    .await
                    .map_err(DockerError::api(format!("unpause {}", spec.name)))?;
            } else if !seen.running {
                engine
                    .docker
                    .start_container(&spec.name, None)
                    .await
                    .map_err(DockerError::api(format!("start {}", spec.name)))?;
            }
            false
        }
    };
    on_detail("waiting for the registry API");
    wait_ready(
        &RegistryClient::new(&super::local_host(spec.port)),
        &spec.name,
    )
    .await?;
    Ok(created)
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

/// Waits until `/v2/` answers as a registry. Something that answers HTTP but not as a
/// registry fails after a short grace (it is not starting up, it is something else).
async fn wait_ready(client: &RegistryClient, name: &str) -> Result<(), RegistryError> {
    let started = Instant::now();
    let mut not_a_registry_since: Option<Instant> = None;
    loop {
        match client.probe().await {
            Probe::Registry => return Ok(()),
            Probe::NotARegistry { status, version } => {
                let since = *not_a_registry_since.get_or_insert_with(Instant::now);
                if since.elapsed() > NOT_A_REGISTRY_GRACE {
                    return Err(RegistryError::NotARegistry {
                        host: client.host().to_string(),
                        name: name.to_string(),
                        answer: match version {
                            Some(v) => {
                                format!("HTTP {status} with Docker-Distribution-Api-Version {v:?}")
                            }
                            None => format!(
                                "HTTP {status} without a Docker-Distribution-Api-Version header"
                            ),
                        },
                    });
                }
            }
            Probe::NoAnswer(_) => not_a_registry_since = None,
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(RegistryError::NotReady {
                host: client.host().to_string(),
                name: name.to_string(),
                seconds: READY_TIMEOUT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) async fn remove_container(engine: &Engine, name: &str) -> Result<(), DockerError> {
    // v=true removes anonymous volumes only; the images are on the named volume, which stays.
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn spec() -> RegistrySpec {
        RegistrySettings::default()
    }

    fn desired(spec: &RegistrySpec, adopt: bool) -> RegistryDesired<'_> {
        RegistryDesired {
            settings: spec,
            adopt,
            adopted_before: false,
            volume_adopted_before: false,
        }
    }

    pub(crate) fn other() -> Owner {
        Owner::OtherWorkspace {
            id: "b2".into(),
            path: Some("/w/b".into()),
        }
    }

    pub(crate) fn seen(
        owner: Owner,
        running: bool,
        port: Option<u16>,
        image: &str,
    ) -> RegistryObserved {
        RegistryObserved {
            container: Some(RegistrySeen {
                id: "abc".into(),
                name: "kind-registry".into(),
                image: image.into(),
                running,
                paused: false,
                state: if running { "running" } else { "exited" }.into(),
                owner,
                host_port: port,
                host_ip: Some("127.0.0.1".into()),
                networks: vec!["bridge".into()],
                volume: Some("kind-registry-images".into()),
            }),
            volume: None,
        }
    }

    pub(crate) fn ours(running: bool, port: Option<u16>, image: &str) -> RegistryObserved {
        seen(Owner::ThisWorkspace, running, port, image)
    }

    pub(crate) const NOTHING: RegistryObserved = RegistryObserved {
        container: None,
        volume: None,
    };

    #[test]
    fn nothing_there_is_created() {
        let s = spec();
        assert_eq!(
            plan(desired(&s, false), &NOTHING).unwrap(),
            vec![RegistryStep::Create]
        );
    }

    #[test]
    fn our_healthy_registry_needs_nothing() {
        let s = spec();
        assert!(
            plan(desired(&s, false), &ours(true, Some(5001), "registry:3"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn our_stopped_or_paused_registry_is_started_not_recreated() {
        let s = spec();
        assert_eq!(
            plan(desired(&s, false), &ours(false, Some(5001), "registry:3")).unwrap(),
            vec![RegistryStep::Start]
        );
        let mut paused = ours(false, Some(5001), "registry:3");
        if let Some(c) = paused.container.as_mut() {
            c.paused = true;
        }
        assert_eq!(
            plan(desired(&s, false), &paused).unwrap(),
            vec![RegistryStep::Unpause]
        );
    }

    #[test]
    fn our_registry_on_another_port_or_image_is_recreated() {
        let s = spec();
        assert!(matches!(
            plan(desired(&s, false), &ours(true, Some(5002), "registry:3")).unwrap()[..],
            [RegistryStep::Recreate { .. }]
        ));
        match &plan(desired(&s, false), &ours(true, Some(5001), "registry:2")).unwrap()[..] {
            [RegistryStep::Recreate { why }] => assert!(why.contains("registry:2"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_registry_of_another_workspace_or_tool_needs_adopt() {
        let s = spec();
        for owner in [other(), Owner::NotKindlab, Owner::EarlierKindlab] {
            let observed = seen(owner.clone(), true, Some(5001), "registry:2");
            match plan(desired(&s, false), &observed) {
                Err(RegistryError::NotOurs { owner: o, .. }) => assert_eq!(o, owner),
                other => panic!("{other:?}"),
            }
            // With --adopt it is used as it is (even with another image), and remembered.
            assert_eq!(
                plan(desired(&s, true), &observed).unwrap(),
                vec![RegistryStep::Adopt {
                    owner: owner.clone()
                }]
            );
        }
        // Adopted before: nothing to do; stopped: started.
        let remembered = RegistryDesired {
            settings: &s,
            adopt: true,
            adopted_before: true,
            volume_adopted_before: false,
        };
        assert!(
            plan(
                remembered,
                &seen(Owner::NotKindlab, true, Some(5001), "registry:2")
            )
            .unwrap()
            .is_empty()
        );
        assert_eq!(
            plan(
                remembered,
                &seen(Owner::NotKindlab, false, Some(5001), "registry:2")
            )
            .unwrap(),
            vec![RegistryStep::Start]
        );
    }

    #[test]
    fn an_adopted_registry_on_another_port_is_refused_not_changed() {
        let s = spec();
        match plan(
            desired(&s, true),
            &seen(Owner::NotKindlab, true, None, "nginx"),
        ) {
            Err(RegistryError::Foreign { why, .. }) => assert!(why.contains("no port"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_images_volume_of_another_workspace_is_never_reused() {
        let s = spec();
        let observed = RegistryObserved {
            container: None,
            volume: Some(VolumeSeen {
                name: "kind-registry-images".into(),
                owner: other(),
                owner_gone: false,
            }),
        };
        assert!(matches!(
            plan(desired(&s, false), &observed),
            Err(RegistryError::VolumeNotOurs { .. })
        ));
        let ours_volume = RegistryObserved {
            container: None,
            volume: Some(VolumeSeen {
                name: "kind-registry-images".into(),
                owner: Owner::ThisWorkspace,
                owner_gone: false,
            }),
        };
        assert_eq!(
            plan(desired(&s, false), &ours_volume).unwrap(),
            vec![RegistryStep::Create]
        );
    }

    #[test]
    fn the_images_volume_of_a_gone_workspace_is_taken_over_only_with_adopt() {
        let s = spec();
        let gone = RegistryObserved {
            container: None,
            volume: Some(VolumeSeen {
                name: "kind-registry-images".into(),
                owner: other(),
                owner_gone: true,
            }),
        };
        let refused = plan(desired(&s, false), &gone).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "volume \"kind-registry-images\" (for registry \"kind-registry\") holds the images of the kindlab workspace at /w/b, which no longer exists"
        );
        assert_eq!(
            refused.fix().as_deref(),
            Some(
                "take it over with its images: `kindlab up --adopt` (kindlab then uses it and never deletes it); or set registry.name in kindlab.yaml to another name, or remove it with `docker volume rm kind-registry-images`"
            )
        );
        assert_eq!(
            plan(desired(&s, true), &gone).unwrap(),
            vec![
                RegistryStep::AdoptVolume { owner: other() },
                RegistryStep::Create
            ]
        );
        let remembered = RegistryDesired {
            volume_adopted_before: true,
            ..desired(&s, false)
        };
        assert_eq!(plan(remembered, &gone).unwrap(), vec![RegistryStep::Create]);
        // A workspace that still exists keeps its images, --adopt or not.
        let alive = RegistryObserved {
            container: None,
            volume: Some(VolumeSeen {
                owner_gone: false,
                ..gone.volume.clone().unwrap()
            }),
        };
        assert!(matches!(
            plan(desired(&s, true), &alive),
            Err(RegistryError::VolumeNotOurs {
                owner_gone: false,
                ..
            })
        ));
    }
}
