//! Build and push of the workspace's images: content-hash tags, a warm path that asks the
//! registry before building, and a digest check against what the registry actually serves.

use std::time::{Duration, Instant};

use serde::Serialize;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::docker::{self, BuildError, BuildEvent, BuildRequest, Builder, Engine};
use crate::registry::{RegistryClient, RegistryError};
use crate::ui::Ui;
use crate::workspace::{
    self, DigestChange, ImageSpec, WantedImage, Workspace, WorkspaceError, find_entry,
    kustomization_file, read_images,
};

#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    pub name: String,
    /// `localhost:5001/orders-api:<content hash>`.
    pub reference: String,
    pub tag: String,
    /// The manifest digest the registry serves for `reference`.
    pub digest: String,
    /// False when the registry already had this tag and nothing was built.
    pub built: bool,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
}

impl crate::error::Failure for ImageError {
    fn fix(&self) -> Option<String> {
        match self {
            ImageError::Build(e) => e.fix(),
            ImageError::Registry(e) => e.fix(),
            ImageError::Workspace(e) => e.fix(),
        }
    }
    fn exit_code(&self) -> u8 {
        match self {
            ImageError::Build(e) => e.exit_code(),
            ImageError::Registry(e) => e.exit_code(),
            ImageError::Workspace(e) => crate::error::Failure::exit_code(e),
        }
    }
}

/// What a push changed in the workspace, for the status line: one line per change.
pub type Published = Vec<String>;

/// Makes the workspace's files say what was pushed, so `kubectl apply -k <overlay>` by hand
/// deploys it: each image's entry in the overlay's kustomization names the pushed tag (as
/// `kustomize edit set image` would), keeping a digest pin up to date. With
/// `deploy.updateImages: false` the files are left alone and the tag the overlay already
/// names is pushed too (registry-side), so the hand path still finds its image.
pub async fn publish(
    ws: &Workspace,
    registry_host: &str,
    results: &[ImageResult],
) -> Result<Published, ImageError> {
    let Some(deploy) = &ws.deploy else {
        return Ok(Vec::new());
    };
    if deploy.update_images {
        let wanted: Vec<WantedImage> = results
            .iter()
            .map(|r| WantedImage {
                image: r.name.clone(),
                new_name: format!("{registry_host}/{}", r.name),
                new_tag: r.tag.clone(),
                digest: DigestChange::UpdateIfPinned(r.digest.clone()),
            })
            .collect();
        let (file, changes) = workspace::record_images(&deploy.overlay, &wanted)?;
        let shown = file
            .strip_prefix(&ws.root)
            .unwrap_or(&file)
            .display()
            .to_string();
        return Ok(changes
            .iter()
            .map(|c| format!("{shown}: {} -> {}", c.image, c.after))
            .collect());
    }
    let Some(file) = kustomization_file(&deploy.overlay) else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(&file).map_err(|source| WorkspaceError::Read {
        path: file.clone(),
        source,
    })?;
    let entries = read_images(&text, &file)?;
    let registry = RegistryClient::new(registry_host);
    let mut lines = Vec::new();
    for result in results {
        let repository = format!("{registry_host}/{}", result.name);
        let Some(entry) = find_entry(&entries, &result.name, &repository).map(|i| &entries[i])
        else {
            continue;
        };
        let names_our_repository = entry.new_name.as_deref().unwrap_or(&entry.name) == repository;
        let Some(tag) = entry.new_tag.as_deref().filter(|t| *t != result.tag) else {
            continue;
        };
        if !names_our_repository || entry.digest.is_some() {
            continue;
        }
        if registry
            .manifest_digest(&result.name, tag)
            .await?
            .as_deref()
            == Some(&result.digest)
        {
            continue;
        }
        registry.retag(&result.name, &result.tag, tag).await?;
        lines.push(format!(
            "also tagged {repository}:{tag} (named by the overlay)"
        ));
    }
    Ok(lines)
}

/// Records the tags the workspace's images will get, without building: `kindlab init` writes
/// them into the new overlay so its first commit already names what `up` will push.
pub fn record_expected_tags(ws: &Workspace) -> Result<Published, ImageError> {
    let Some(deploy) = &ws.deploy else {
        return Ok(Vec::new());
    };
    let host = crate::registry::local_host(ws.registry.port);
    let wanted: Vec<WantedImage> = crate::desired::image_references(ws, &host)?
        .into_iter()
        .map(|(name, reference)| WantedImage {
            new_name: format!("{host}/{name}"),
            new_tag: reference.rsplit(':').next().unwrap_or_default().to_string(),
            image: name,
            digest: DigestChange::Keep,
        })
        .collect();
    let (_, changes) = workspace::record_images(&deploy.overlay, &wanted)?;
    Ok(changes.iter().map(|c| c.after.clone()).collect())
}

pub fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Builds (or finds already pushed) every image in `images`, concurrently, each with its own
/// status line. `registry_host` is where to push (`localhost:5001`).
pub async fn build_and_push(
    engine: &Engine,
    registry_host: &str,
    images: &[ImageSpec],
    ui: &Ui,
) -> Result<Vec<ImageResult>, ImageError> {
    let registry = RegistryClient::new(registry_host);
    let builder = if images.is_empty() {
        Builder::BuildKit
    } else {
        docker::buildkit::choose_builder(engine).await
    };
    if let Builder::Classic { why } = &builder {
        ui.note(classic_note(why));
    }
    let builder = Choice {
        builder,
        refusal_said: AtomicBool::new(false),
    };
    let jobs = images
        .iter()
        .map(|image| build_one(engine, &registry, image, &builder, ui));
    futures::future::try_join_all(jobs).await
}

/// The one line that says a run builds without BuildKit, and what that costs.
fn classic_note(why: &str) -> String {
    format!(
        "building with the classic builder: {why}; Dockerfiles using RUN --mount, heredocs or secrets need BuildKit (Docker 18.09+ on Linux)"
    )
}

/// The builder of one run, shared by its images; a refusal met by one image is said once.
struct Choice {
    builder: Builder,
    refusal_said: AtomicBool,
}

async fn build_one(
    engine: &Engine,
    registry: &RegistryClient,
    image: &ImageSpec,
    builder: &Choice,
    ui: &Ui,
) -> Result<ImageResult, ImageError> {
    let started = Instant::now();
    let step = ui.step(format!("Image {}", image.name));
    step.detail("hashing the build context");
    let spec = image.clone();
    let request = tokio::task::spawn_blocking(move || BuildRequest::for_image(&spec))
        .await
        .map_err(|e| BuildError::Context {
            path: image.context.clone(),
            source: std::io::Error::other(e),
        })??;
    let tag = request.tag().to_string();
    let repository = format!("{}/{}", registry.host(), image.name);
    let reference = format!("{repository}:{tag}");

    // Warm path: the registry already serves this exact content.
    if let Some(digest) = registry.manifest_digest(&image.name, &tag).await? {
        step.ok(format!(
            "{reference} already in the registry, build skipped"
        ));
        return Ok(ImageResult {
            name: image.name.clone(),
            reference,
            tag,
            digest,
            built: false,
            duration: started.elapsed(),
        });
    }

    // The engine may still have the image though the registry lost it (registry container
    // deleted): pushing again is the whole repair.
    if engine.docker.inspect_image(&reference).await.is_err() {
        build(engine, image, &reference, request, builder, &step, ui).await?;
    }

    step.detail(format!("pushing {reference}"));
    let engine_digest =
        docker::push_image(engine, &repository, &tag, |status| step.detail(status)).await?;
    // The registry's Docker-Content-Digest is the truth clusters pull by; the engine's
    // RepoDigest must agree with it.
    let registry_digest = registry
        .manifest_digest(&image.name, &tag)
        .await?
        .ok_or_else(|| BuildError::Push {
            reference: reference.clone(),
            message: "the registry does not list the tag after the push".into(),
        })?;
    if let Some(engine_digest) = engine_digest
        && engine_digest != registry_digest
    {
        return Err(BuildError::DigestMismatch {
            reference,
            registry_digest,
            engine_digest,
        }
        .into());
    }
    step.ok(format!("built and pushed {reference}"));
    Ok(ImageResult {
        name: image.name.clone(),
        reference,
        tag,
        digest: registry_digest,
        built: true,
        duration: started.elapsed(),
    })
}

async fn build(
    engine: &Engine,
    image: &ImageSpec,
    reference: &str,
    request: BuildRequest,
    builder: &Choice,
    step: &crate::ui::Step,
    ui: &Ui,
) -> Result<(), ImageError> {
    let on_event = |event| match event {
        BuildEvent::Step { index, total, text } => {
            step.progress(index, total);
            step.detail(text);
        }
        BuildEvent::Output(line) => tracing::debug!(image = %image.name, "{line}"),
    };
    let uses_heredoc = request.uses_heredoc;
    let built = match &builder.builder {
        Builder::BuildKit => {
            if let Some(frontend) = &request.frontend
                && engine.docker.inspect_image(frontend).await.is_err()
            {
                return Err(BuildError::FrontendMissing {
                    image: image.name.clone(),
                    frontend: frontend.clone(),
                }
                .into());
            }
            step.detail("building with BuildKit");
            let fallback = request.clone();
            match docker::buildkit::build_image(engine, &image.name, reference, request, on_event)
                .await
            {
                Err(BuildError::BuildKitRefused { message }) => {
                    if !builder.refusal_said.swap(true, Ordering::SeqCst) {
                        ui.note(classic_note(&format!(
                            "the engine refused BuildKit ({message})"
                        )));
                    }
                    docker::build_image(engine, &image.name, reference, fallback, on_event).await
                }
                other => other,
            }
        }
        Builder::Classic { .. } => {
            step.detail("building");
            docker::build_image(engine, &image.name, reference, request, on_event).await
        }
    };
    let built = built.map_err(|e| docker::buildkit::explain_heredoc(e, uses_heredoc));
    if let Err(e) = built {
        // The failing step's output, where the user looks: right under the step line.
        for line in e.details() {
            ui.note(format!("    | {line}"));
        }
        return Err(e.into());
    }
    Ok(())
}
