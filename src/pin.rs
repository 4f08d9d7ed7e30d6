//! `kindlab pin`: the lab text's "digest pinning" advice, for this workspace. Each image's
//! entry in the overlay's kustomization gets the digest the registry serves for the pushed
//! tag (`images[].digest`), so `kubectl apply -k` deploys by digest and a moved tag changes
//! nothing. `up` keeps a pin up to date when it rebuilds. `pin --check` lists every reference
//! the rendered overlay does not pin, without writing anything.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::registry::RegistryClient;
use crate::workspace::{
    ContainerImage, DigestChange, ImageChange, Renderer, WantedImage, Workspace, container_images,
    record_images,
};

#[derive(Debug, Serialize)]
pub struct Pinned {
    /// The kustomization written (relative to the workspace).
    pub file: String,
    /// What changed (empty: every image was already pinned to its digest).
    pub changes: Vec<ImageChange>,
}

/// Pins every workspace image to the digest of its pushed tag.
pub async fn pin(ws: &Workspace, registry_host: &str) -> Result<Pinned> {
    let Some(deploy) = &ws.deploy else {
        return Err(Error::Unhealthy {
            what: "kindlab.yaml has no deploy.overlay to pin images in".into(),
        });
    };
    let registry = RegistryClient::new(registry_host);
    let mut wanted = Vec::new();
    for (name, reference) in crate::desired::image_references(ws, registry_host)? {
        let tag = reference.rsplit(':').next().unwrap_or_default().to_string();
        let digest = registry
            .manifest_digest(&name, &tag)
            .await?
            .ok_or_else(|| Error::Unhealthy {
                what: format!("{reference} is not in the registry yet, so it has no digest to pin"),
            })?;
        wanted.push(WantedImage {
            new_name: format!("{registry_host}/{name}"),
            image: name,
            new_tag: tag,
            digest: DigestChange::Pin(digest),
        });
    }
    let (file, changes) = record_images(&deploy.overlay, &wanted)?;
    Ok(Pinned {
        file: file
            .strip_prefix(&ws.root)
            .unwrap_or(&file)
            .display()
            .to_string(),
        changes,
    })
}

/// Every container image of the rendered overlay that is not pinned by digest.
pub async fn unpinned(ws: &Workspace, renderer: &Renderer) -> Result<Vec<ContainerImage>> {
    let Some(deploy) = &ws.deploy else {
        return Ok(Vec::new());
    };
    let docs = crate::workspace::render_overlay(renderer, &deploy.overlay).await?;
    Ok(container_images(&docs)
        .into_iter()
        .filter(|c| !is_pinned(&c.image))
        .collect())
}

/// `name@sha256:...` or `name:tag@sha256:...`.
pub fn is_pinned(image: &str) -> bool {
    image
        .split_once('@')
        .is_some_and(|(_, digest)| digest.starts_with("sha256:") && digest.len() == 71)
}

/// `kindlab pin`: what was pinned, or with `--check` what is not.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PinReport {
    Pinned(Pinned),
    Checked { unpinned: Vec<ContainerImage> },
}

/// `kindlab pin [--check] [--registry HOST]`.
pub async fn command(ws: &Workspace, check: bool, registry: Option<String>) -> Result<PinReport> {
    if check {
        let renderer = crate::workspace::find_renderer().await?;
        let unpinned = unpinned(ws, &renderer).await?;
        return Ok(PinReport::Checked { unpinned });
    }
    let host = registry.unwrap_or_else(|| crate::registry::local_host(ws.registry.port));
    Ok(PinReport::Pinned(pin(ws, &host).await?))
}

impl crate::ui::Report for PinReport {
    fn text(&self) -> String {
        let mut lines = Vec::new();
        match self {
            PinReport::Checked { unpinned } if unpinned.is_empty() => {
                lines.push("Every image reference of the overlay is pinned by digest.".to_string())
            }
            PinReport::Checked { unpinned } => {
                lines.push("Not pinned by digest:".to_string());
                for c in unpinned {
                    lines.push(format!(
                        "  {}  ({}, container {})",
                        c.image, c.object, c.container
                    ));
                }
                lines.push("`kindlab pin` pins the workspace's own images.".to_string());
            }
            PinReport::Pinned(pinned) if pinned.changes.is_empty() => {
                lines.push(format!("{}: already pinned.", pinned.file))
            }
            PinReport::Pinned(pinned) => {
                for c in &pinned.changes {
                    lines.push(format!("{}: {} -> {}", pinned.file, c.image, c.after));
                }
                lines.push(
                    "`kubectl apply -k` (or `kindlab up`) now deploys by digest.".to_string(),
                );
            }
        }
        crate::ui::lines(lines)
    }
    fn exit_code(&self) -> u8 {
        match self {
            PinReport::Checked { unpinned } if !unpinned.is_empty() => crate::exit::UNHEALTHY,
            _ => crate::exit::OK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_sha256_digest_pins() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(is_pinned(&format!("localhost:5001/x@{digest}")));
        assert!(is_pinned(&format!("localhost:5001/x:tag@{digest}")));
        assert!(!is_pinned("localhost:5001/x:tag"));
        assert!(!is_pinned("busybox"));
        assert!(!is_pinned("x@sha256:short"));
    }

    #[test]
    fn the_check_lists_what_is_not_pinned_and_is_unhealthy() {
        use crate::ui::Report as _;
        let report = PinReport::Checked {
            unpinned: vec![ContainerImage {
                object: "Deployment dev/orders-api".into(),
                container: "app".into(),
                image: "nginx:1.27".into(),
            }],
        };
        assert_eq!(
            report.text(),
            "Not pinned by digest:\n  nginx:1.27  (Deployment dev/orders-api, container app)\n`kindlab pin` pins the workspace's own images.\n"
        );
        assert_eq!(report.exit_code(), crate::exit::UNHEALTHY);
        let none = PinReport::Checked { unpinned: vec![] };
        assert_eq!(none.exit_code(), crate::exit::OK);
        let pinned = PinReport::Pinned(Pinned {
            file: "deploy/overlays/dev/kustomization.yaml".into(),
            changes: vec![],
        });
        assert_eq!(
            pinned.text(),
            "deploy/overlays/dev/kustomization.yaml: already pinned.\n"
        );
    }
}
