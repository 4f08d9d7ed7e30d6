//! The desired state a workspace declares: the overlay rendered exactly as its files say.
//!
//! After a push, the overlay's kustomization names the pushed tags
//! (`workspace::record_images`), so what kindlab applies here is what a hand
//! `kubectl apply -k <overlay>` applies. `up` deploys it, `status` compares against it, and
//! a lab's GitOps fix and `reset` re-apply it; all compute it here, the same way.

use serde_json::Value;

use crate::docker::{BuildError, BuildRequest};
use crate::workspace::{
    Renderer, Workspace, WorkspaceError, container_images, find_renderer_and_render,
    render_overlay, repository,
};

/// `(image name, registry_host/name:tag)` for every workspace image, from the hash of its
/// build inputs: what `up` pushes, computed without building.
pub fn image_references(
    ws: &Workspace,
    registry_host: &str,
) -> Result<Vec<(String, String)>, BuildError> {
    ws.images
        .iter()
        .map(|image| {
            let request = BuildRequest::for_image(image)?;
            Ok((
                image.name.clone(),
                format!("{registry_host}/{}:{}", image.name, request.tag()),
            ))
        })
        .collect()
}

/// The overlay rendered as its files say. Every workspace image in `references` must be run
/// by some container of the overlay (by repository: the overlay may name another tag or a
/// digest); an image that no container runs would silently never deploy, so it is an error
/// naming the overlay.
pub async fn desired_objects(
    ws: &Workspace,
    renderer: &Renderer,
    registry_host: &str,
    references: &[(String, String)],
) -> Result<Vec<Value>, WorkspaceError> {
    let docs = render(ws, renderer).await?;
    check_images_used(ws, &docs, registry_host, references)?;
    Ok(docs)
}

/// The overlay's documents as its files say (none without `deploy`).
pub async fn render(ws: &Workspace, renderer: &Renderer) -> Result<Vec<Value>, WorkspaceError> {
    match &ws.deploy {
        Some(deploy) => render_overlay(renderer, &deploy.overlay).await,
        None => Ok(Vec::new()),
    }
}

/// [`render`], finding the renderer on the way (`status`: the version check overlaps the
/// render).
pub async fn find_and_render(ws: &Workspace) -> Result<Vec<Value>, WorkspaceError> {
    match &ws.deploy {
        Some(deploy) => find_renderer_and_render(&deploy.overlay).await,
        None => Ok(Vec::new()),
    }
}

/// Every image of `references` is used by a container of `docs`: an image nothing runs is a
/// mistake (a registry port changed under the overlay) that would end in a rollout timeout.
pub fn check_images_used(
    ws: &Workspace,
    docs: &[Value],
    registry_host: &str,
    references: &[(String, String)],
) -> Result<(), WorkspaceError> {
    let Some(deploy) = &ws.deploy else {
        return Ok(());
    };
    let used = container_images(docs);
    for (name, reference) in references {
        let wanted = repository(reference);
        if !used.iter().any(|c| repository(&c.image) == wanted) {
            return Err(WorkspaceError::ImageUnused {
                image: name.clone(),
                repository: wanted.to_string(),
                overlay: deploy.overlay.clone(),
                registry_host: registry_host.to_string(),
                seen: used.iter().map(|c| c.image.clone()).collect(),
            });
        }
    }
    Ok(())
}
