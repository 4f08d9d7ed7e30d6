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
}
