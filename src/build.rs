//! `kindlab build [IMAGE...]`: builds the workspace's images, pushes them to the lab's
//! registry, and writes the pushed tags into the overlay (`images::publish`).

use serde::Serialize;

use crate::docker::Engine;
use crate::error::Result;
use crate::images::{self, ImageResult};
use crate::registry;
use crate::ui::{self, Report, Ui};
use crate::workspace::Workspace;

#[derive(Debug, Serialize)]
pub struct BuildReport {
    pub images: Vec<ImageResult>,
    /// What the push changed in the workspace's files, one line per change.
    pub workspace_changes: Vec<String>,
}

/// Builds `names` (every image of the workspace when empty) and pushes them.
pub async fn run(ws: &Workspace, names: &[String], ui: &Ui) -> Result<BuildReport> {
    let selected = match names.is_empty() {
        true => ws.images.clone(),
        false => names
            .iter()
            .map(|n| ws.image(n).cloned())
            .collect::<Result<Vec<_>, _>>()?,
    };
    let engine = Engine::connect().await?;
    let host = registry::local_host(ws.registry.port);
    let images = images::build_and_push(&engine, &host, &selected, ui).await?;
    let workspace_changes = images::publish(ws, &host, &images).await?;
    Ok(BuildReport {
        images,
        workspace_changes,
    })
}

impl Report for BuildReport {
    fn text(&self) -> String {
        let pushed = self
            .images
            .iter()
            .map(|r| format!("{}  {}", r.reference, r.digest));
        ui::lines(pushed.chain(self.workspace_changes.iter().cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_each_pushed_image_then_each_workspace_change() {
        let report = BuildReport {
            images: vec![ImageResult {
                name: "orders-api".into(),
                reference: "localhost:5001/orders-api:1f5bd6cbc52f".into(),
                tag: "1f5bd6cbc52f".into(),
                digest: "sha256:abc".into(),
                built: true,
                duration: std::time::Duration::from_secs(2),
            }],
            workspace_changes: vec![
                "deploy/overlays/dev/kustomization.yaml: orders-api -> 1f5bd6cbc52f".into(),
            ],
        };
        assert_eq!(
            report.text(),
            "localhost:5001/orders-api:1f5bd6cbc52f  sha256:abc\n\
             deploy/overlays/dev/kustomization.yaml: orders-api -> 1f5bd6cbc52f\n"
        );
    }
}
