//! The desired state a workspace declares: its images' content-hash references and the
//! overlay rendered with them. `up` deploys it, `status` compares against it, and a lab's
//! GitOps fix re-applies it; all three compute it here, the same way.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::docker::{BuildError, BuildRequest};
use crate::workspace::{Renderer, Workspace, WorkspaceError, render_overlay, set_images};

/// `(image name, registry_host/name:tag)` for every workspace image, from the hash of its
/// build inputs: what `up` pushes, computed without building.
pub fn image_references(
    ws: &Workspace,
    registry_host: &str,
) -> Result<Vec<(String, String)>, BuildError> {
    ws.images
        .iter()
        .map(|image| {
            let request = BuildRequest::pack(&image.context, &image.dockerfile)?;
            Ok((
                image.name.clone(),
                format!("{registry_host}/{}:{}", image.name, request.tag()),
            ))
        })
        .collect()
}

/// The overlay rendered with every workspace image pointed at its reference. The overlay may
/// name an image as `<registry_host>/<name>` (kustomize `images:` renamed it) or as the bare
/// `<name>`: both are replaced.
pub async fn desired_objects(
    ws: &Workspace,
    renderer: &Renderer,
    registry_host: &str,
    references: &[(String, String)],
) -> Result<Vec<Value>, WorkspaceError> {
    let Some(deploy) = &ws.deploy else {
        return Ok(Vec::new());
    };
    let mut docs = render_overlay(renderer, &deploy.overlay).await?;
    let map: BTreeMap<String, String> = references
        .iter()
        .flat_map(|(name, reference)| {
            [
                (format!("{registry_host}/{name}"), reference.clone()),
                (name.clone(), reference.clone()),
            ]
        })
        .collect();
    set_images(&mut docs, &map);
    Ok(docs)
}
