//! Images: every workspace image is in the registry under the content-hash tag of its build
//! inputs (the missing ones are pushed from the engine's copy, or built and pushed), and the
//! overlay's kustomization names that tag (`images::publish`), so the files say what runs.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Result;
use crate::images::{self, ImageResult};
use crate::registry::RegistryClient;
use crate::up::context::UpContext;
use crate::up::outcome::{ActionReport, Outcome};
use crate::up::row::Row;
use crate::workspace::{self, DigestChange, WantedImage};

/// One workspace image: the reference it must have, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSeen {
    pub name: String,
    /// `localhost:5001/orders-api:<content hash>`.
    pub reference: String,
    pub tag: String,
    /// The digest the registry serves for the tag; None when it has no such tag (or no
    /// registry answers yet).
    pub digest: Option<String>,
    /// The engine has an image under that reference (built before; a push is enough).
    pub in_engine: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStep {
    /// The engine has it: push only.
    Push {
        name: String,
        reference: String,
    },
    BuildAndPush {
        name: String,
        reference: String,
    },
}

impl ImageStep {
    pub fn describe(&self) -> String {
        match self {
            ImageStep::Push { reference, .. } => format!("push {reference}"),
            ImageStep::BuildAndPush { reference, .. } => format!("build and push {reference}"),
        }
    }

    fn name(&self) -> &str {
        match self {
            ImageStep::Push { name, .. } | ImageStep::BuildAndPush { name, .. } => name,
        }
    }
}

/// Decides what to do. Pure.
pub fn plan(images: &[ImageSeen]) -> Vec<ImageStep> {
    images
        .iter()
        .filter(|i| i.digest.is_none())
        .map(|i| {
            let (name, reference) = (i.name.clone(), i.reference.clone());
            if i.in_engine {
                ImageStep::Push { name, reference }
            } else {
                ImageStep::BuildAndPush { name, reference }
            }
        })
        .collect()
}

#[derive(Default)]
pub struct View {
    pub images: Vec<ImageSeen>,
    pub steps: Vec<ImageStep>,
    /// The overlay's kustomization edits the push brings (`deploy.updateImages`).
    pub records: Vec<Record>,
    /// Why the registry could not be asked, if it could not.
    pub registry_unreachable: Option<String>,
}

/// `registry_ready`: a registry answers at the workspace's registry host (otherwise every
/// image counts as not pushed, without asking).
pub async fn observe(ctx: &UpContext, registry_ready: bool) -> Result<View> {
    let host = ctx.registry_host();
    let ws = ctx.workspace.clone();
    let host_for_hash = host.clone();
    // Hashing packs every build context: not on the async threads.
    let references =
        tokio::task::spawn_blocking(move || crate::desired::image_references(&ws, &host_for_hash))
            .await
            .map_err(|e| crate::docker::BuildError::Context {
                path: ctx.workspace.root.clone(),
                source: std::io::Error::other(e),
            })??;
    let client = RegistryClient::new(&host);
    let mut images = Vec::new();
    let mut registry_unreachable = None;
    for (name, reference) in references {
        let tag = reference.rsplit(':').next().unwrap_or_default().to_string();
        let digest = if registry_ready && registry_unreachable.is_none() {
            match client.manifest_digest(&name, &tag).await {
                Ok(d) => d,
                Err(e) => {
                    registry_unreachable = Some(e.to_string());
                    None
                }
            }
        } else {
            None
        };
        let in_engine = ctx.engine.docker.inspect_image(&reference).await.is_ok();
        images.push(ImageSeen {
            name,
            reference,
            tag,
            digest,
            in_engine,
        });
    }
    let steps = plan(&images);
    let records = records(ctx, &images)?;
    Ok(View {
        images,
        steps,
        records,
        registry_unreachable,
    })
}

/// One edit of the overlay's kustomization a push brings: the image's entry then names
/// `reference`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub image: String,
    /// The repository the overlay renders now for this image, before the edit.
    pub before: Option<String>,
    pub reference: String,
    /// The kustomization file, relative to the workspace.
    pub file: String,
}

impl Record {
    pub fn describe(&self) -> String {
        format!("record {} in {}", self.reference, self.file)
    }
}

/// The kustomization edits `images::publish` will make for `images`, computed on the file's
/// text without writing it. None with `deploy.updateImages: false` (the files stay as they
/// are).
fn records(ctx: &UpContext, images: &[ImageSeen]) -> Result<Vec<Record>> {
    let Some(deploy) = ctx.workspace.deploy.as_ref().filter(|d| d.update_images) else {
        return Ok(Vec::new());
    };
    let Some(file) = workspace::kustomization_file(&deploy.overlay) else {
        return Ok(Vec::new());
    };
    let text =
        std::fs::read_to_string(&file).map_err(|source| workspace::WorkspaceError::Read {
            path: file.clone(),
            source,
        })?;
    let host = ctx.registry_host();
    let wanted: Vec<WantedImage> = images
        .iter()
        .map(|i| WantedImage {
            image: i.name.clone(),
            new_name: format!("{host}/{}", i.name),
            new_tag: i.tag.clone(),
            digest: match &i.digest {
                Some(d) => DigestChange::UpdateIfPinned(d.clone()),
                None => DigestChange::Keep,
            },
        })
        .collect();
    let shown = file
        .strip_prefix(&ctx.workspace.root)
        .unwrap_or(&file)
        .display()
        .to_string();
    let Some((_, changes)) = workspace::set_images(&text, &file, &wanted)? else {
        return Ok(Vec::new());
    };
    Ok(changes
        .into_iter()
        .filter_map(|c| {
            let seen = images.iter().find(|i| i.name == c.image)?;
            Some(Record {
                image: c.image,
                before: c.before,
                reference: seen.reference.clone(),
                file: shown.clone(),
            })
        })
        .collect())
}

impl View {
    pub fn changes(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(ImageStep::describe)
            .chain(self.records.iter().map(Record::describe))
            .collect()
    }

    pub fn rows(&self) -> Vec<Row> {
        self.images
            .iter()
            .map(|i| {
                let planned: Vec<String> = self
                    .steps
                    .iter()
                    .filter(|s| s.name() == i.name)
                    .map(ImageStep::describe)
                    .chain(
                        self.records
                            .iter()
                            .filter(|r| r.image == i.name)
                            .map(Record::describe),
                    )
                    .collect();
                let pushed = i.digest.is_some();
                let recorded = !self.records.iter().any(|r| r.image == i.name);
                Row::new(
                    format!("image {}", i.name),
                    pushed && recorded,
                    match (pushed, recorded) {
                        (false, _) => "not pushed",
                        (true, false) => "not in the overlay",
                        (true, true) => "pushed",
                    },
                    match (&self.registry_unreachable, pushed) {
                        (Some(why), false) => format!("{} (registry: {why})", i.reference),
                        _ => i.reference.clone(),
                    },
                    planned,
                )
            })
            .collect()
    }
}

pub async fn execute(ctx: &UpContext) -> Result<(ActionReport, Vec<ImageResult>)> {
    let started = Instant::now();
    let (view, pushed) = ctx
        .interruptible("the images", async {
            super::hold(ctx, "images").await?;
            let view = observe(ctx, true).await?;
            let needed: Vec<_> = ctx
                .workspace
                .images
                .iter()
                .filter(|i| view.steps.iter().any(|s| s.name() == i.name))
                .cloned()
                .collect();
            let pushed =
                images::build_and_push(&ctx.engine, &ctx.registry_host(), &needed, &ctx.ui).await?;
            Ok((view, pushed))
        })
        .await?;
    let mut results = Vec::new();
    for image in &view.images {
        match (&image.digest, pushed.iter().find(|r| r.name == image.name)) {
            (_, Some(result)) => results.push(result.clone()),
            (Some(digest), None) => {
                ctx.ui.step(format!("Image {}", image.name)).ok(format!(
                    "{} already in the registry, build skipped",
                    image.reference
                ));
                results.push(ImageResult {
                    name: image.name.clone(),
                    reference: image.reference.clone(),
                    tag: image.tag.clone(),
                    digest: digest.clone(),
                    built: false,
                    duration: Duration::ZERO,
                });
            }
            (None, None) => {}
        }
    }
    let mut done: Vec<String> = pushed
        .iter()
        .map(|r| {
            if r.built {
                format!("pushed {}", r.reference)
            } else {
                format!("{} already in the registry", r.reference)
            }
        })
        .collect();
    let published = ctx
        .interruptible("the images", async {
            Ok(images::publish(&ctx.workspace, &ctx.registry_host(), &results).await?)
        })
        .await?;
    if !published.is_empty() {
        // The user's file changed: say which, on its own line.
        ctx.ui.step("Overlay").ok(published.join("; "));
    }
    let outcome = match (view.steps.is_empty(), published.is_empty()) {
        (false, _) => Outcome::Created,
        (true, false) => Outcome::Repaired,
        (true, true) => Outcome::Reused,
    };
    done.extend(published);
    Ok((
        ActionReport::new("images", outcome, done, started.elapsed()).with_plan(view.changes()),
        results,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str, pushed: bool, in_engine: bool) -> ImageSeen {
        ImageSeen {
            name: name.into(),
            reference: format!("localhost:5001/{name}:abc"),
            tag: "abc".into(),
            digest: pushed.then(|| "sha256:1".to_string()),
            in_engine,
        }
    }

    #[test]
    fn only_missing_images_are_pushed_and_only_unbuilt_ones_built() {
        let steps = plan(&[
            image("api", true, true),
            image("web", false, true),
            image("db", false, false),
        ]);
        assert_eq!(
            steps.iter().map(ImageStep::describe).collect::<Vec<_>>(),
            [
                "push localhost:5001/web:abc",
                "build and push localhost:5001/db:abc"
            ]
        );
        assert!(plan(&[image("api", true, false)]).is_empty());
    }
}
