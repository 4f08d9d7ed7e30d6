//! What `down` (and `registry down`) do to the registry: decided from what is there (a pure
//! plan), then carried out. Only what this workspace made is removed; its images only with
//! `--purge`, and never a volume taken over from a workspace that is gone.

use bollard::query_parameters::RemoveVolumeOptionsBuilder;
use serde::Serialize;

use super::RegistryError;
use super::container::{RegistryObserved, observe_container, remove_container, volume_name};
use crate::docker::{DockerError, Engine};

/// What `down` (and `registry down`) do to a registry, decided from what is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RegistryRemoval {
    /// No container of that name.
    Absent,
    /// Remove the container; the images volume stays unless `purge`.
    Remove { purge: bool },
    /// Remove the container; its images volume was taken over from a workspace that is gone,
    /// so it stays even with `--purge`.
    RemoveKeepingImages { why: String },
    /// Leave the container (and its images) alone, for the reason given.
    Keep { why: String },
}

/// Decides what `down` does to the registry. Pure. `used_by`: other kind clusters whose
/// nodes pull from it. A registry of another workspace is refused (nothing is deleted);
/// one this workspace adopted is left alone.
pub fn plan_removal(
    observed: &RegistryObserved,
    adopted: bool,
    used_by: &[String],
    keep_registry: bool,
    purge: bool,
) -> Result<RegistryRemoval, RegistryError> {
    let Some(seen) = &observed.container else {
        // The container is gone; its images may not be.
        return Ok(match &observed.volume {
            Some(v) if purge && v.owner.is_this_workspace() => RegistryRemoval::Remove { purge },
            _ => RegistryRemoval::Absent,
        });
    };
    // Asked to leave the registry alone: whoever made it, there is nothing to refuse.
    if keep_registry {
        return Ok(RegistryRemoval::Keep {
            why: "--keep-registry".into(),
        });
    }
    if !seen.owner.is_this_workspace() {
        if adopted {
            return Ok(RegistryRemoval::Keep {
                why: format!(
                    "adopted, made by {}: kindlab never deletes it",
                    seen.owner.describe()
                ),
            });
        }
        return Err(RegistryError::NotOurs {
            name: seen.name.clone(),
            owner: seen.owner.clone(),
        });
    }
    if !used_by.is_empty() {
        return Ok(RegistryRemoval::Keep {
            why: format!("kind cluster {} still pulls from it", used_by.join(", ")),
        });
    }
    match &observed.volume {
        Some(v) if purge && !v.owner.is_this_workspace() => {
            Ok(RegistryRemoval::RemoveKeepingImages {
                why: format!(
                    "taken over from {}: kindlab never deletes it (`docker volume rm {}` does)",
                    v.owner.describe(),
                    v.name
                ),
            })
        }
        _ => Ok(RegistryRemoval::Remove { purge }),
    }
}

/// Carries out a removal; returns what happened, in words.
pub async fn remove(
    engine: &Engine,
    name: &str,
    removal: &RegistryRemoval,
) -> Result<String, RegistryError> {
    Ok(match removal {
        RegistryRemoval::Absent => "not found; nothing to remove".into(),
        RegistryRemoval::Keep { why } => format!("kept: {why}"),
        RegistryRemoval::RemoveKeepingImages { why } => {
            if observe_container(engine, name, None).await?.is_some() {
                remove_container(engine, name).await?;
            }
            format!("removed; images volume {} kept: {why}", volume_name(name))
        }
        RegistryRemoval::Remove { purge } => {
            let gone = observe_container(engine, name, None).await?.is_none();
            if !gone {
                remove_container(engine, name).await?;
            }
            let volume = volume_name(name);
            let what = if gone {
                "container already gone"
            } else {
                "removed"
            };
            if *purge {
                remove_volume(engine, &volume).await?;
                format!("{what}; images volume {volume} removed (--purge)")
            } else {
                format!("{what}; images kept on volume {volume} (`--purge` removes them)")
            }
        }
    })
}

async fn remove_volume(engine: &Engine, name: &str) -> Result<(), DockerError> {
    match engine
        .docker
        .remove_volume(name, Some(RemoveVolumeOptionsBuilder::default().build()))
        .await
    {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(source) => Err(DockerError::Api {
            action: format!("remove volume {name}"),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::container::VolumeSeen;
    use crate::registry::container::tests::{NOTHING, other, ours, seen};

    #[test]
    fn down_purge_keeps_a_volume_taken_over() {
        let observed = RegistryObserved {
            volume: Some(VolumeSeen {
                name: "kind-registry-images".into(),
                owner: other(),
                owner_gone: true,
            }),
            ..ours(true, Some(5001), "registry:3")
        };
        assert_eq!(
            plan_removal(&observed, false, &[], false, true).unwrap(),
            RegistryRemoval::RemoveKeepingImages {
                why: "taken over from the kindlab workspace at /w/b: kindlab never deletes it (`docker volume rm kind-registry-images` does)".into()
            }
        );
        assert_eq!(
            plan_removal(&observed, false, &[], false, false).unwrap(),
            RegistryRemoval::Remove { purge: false }
        );
    }

    #[test]
    fn down_removes_ours_keeps_images_and_leaves_the_rest() {
        let registry = ours(true, Some(5001), "registry:3");
        assert_eq!(
            plan_removal(&registry, false, &[], false, false).unwrap(),
            RegistryRemoval::Remove { purge: false }
        );
        assert_eq!(
            plan_removal(&registry, false, &[], false, true).unwrap(),
            RegistryRemoval::Remove { purge: true }
        );
        assert!(matches!(
            plan_removal(&registry, false, &[], true, true).unwrap(),
            RegistryRemoval::Keep { .. }
        ));
        // Another kind cluster pulls from it: kept, even with --purge.
        match plan_removal(&registry, false, &["team-b".into()], false, true).unwrap() {
            RegistryRemoval::Keep { why } => assert!(why.contains("team-b"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Another workspace's: refused. Adopted: left alone.
        let theirs = seen(other(), true, Some(5001), "registry:3");
        assert!(matches!(
            plan_removal(&theirs, false, &[], false, false),
            Err(RegistryError::NotOurs { .. })
        ));
        assert!(matches!(
            plan_removal(&theirs, true, &[], false, true).unwrap(),
            RegistryRemoval::Keep { .. }
        ));
        // --keep-registry: kept whoever made it, so `down --keep-registry` (the refusal's
        // own advice) takes the cluster down beside someone else's registry.
        assert_eq!(
            plan_removal(&theirs, false, &[], true, false).unwrap(),
            RegistryRemoval::Keep {
                why: "--keep-registry".into()
            }
        );
        assert_eq!(
            plan_removal(&NOTHING, false, &[], false, true).unwrap(),
            RegistryRemoval::Absent
        );
    }
}
