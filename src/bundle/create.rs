//! `kindlab bundle create`: observe which images the workspace needs and what the engine
//! holds, build the app images it lacks, then stream each image out of the engine into one
//! file (written under a temporary name and renamed when complete).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use super::archive::BundleWriter;
use super::manifest::{
    AppImage, Encoding, FORMAT, ImageEntry, ImageRole, Manifest, RegistryInfo, Wanted,
    WorkspaceInfo, base_images_of_dockerfile, member_name, tag_form, wanted_images,
};
use super::{BundleError, inspect_image};
use crate::cluster::{self, Kind};
use crate::docker::{self, BuildEvent, BuildRequest, DockerError, Engine};
use crate::ui::{Ui, format_bytes};
use crate::workspace::Workspace;

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub output: PathBuf,
    /// `--node-image`; else kindlab.yaml's; else the image the workspace's cluster runs.
    pub node_image: Option<String>,
    pub encoding: Encoding,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreateReport {
    pub file: String,
    /// Bytes of the bundle file.
    pub size: u64,
    /// Bytes its images take in an engine.
    pub unpacked_size: u64,
    /// App images built because the engine did not have them.
    pub built: Vec<String>,
    pub warnings: Vec<String>,
    pub manifest: Manifest,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: Duration,
}

pub async fn create(
    engine: &Engine,
    ws: &Workspace,
    options: &CreateOptions,
    ui: &Ui,
) -> Result<CreateReport, BundleError> {
    let started = Instant::now();
    let step = ui.step("Bundle contents");
    let kind_version = match Kind::find() {
        Ok(kind) => kind.version().await.ok(),
        Err(_) => None,
    };
    step.detail("finding the node image");
    let (node_image, default_node_image) = node_image(engine, ws, options).await?;

    // What the Dockerfiles start from, and the content tag each app image has.
    let mut bases = Vec::new();
    let mut apps = Vec::new();
    let mut warnings = Vec::new();
    // Said, not left for `up` to find out where nothing can be fetched.
    if ws.gitops {
        let warning = "GitOps mode's pieces (the Flux controllers' and the Git server's images, Flux's manifests) are not bundled: where the bundle is loaded, build them with `make offline-images` or turn gitops off in kindlab.yaml".to_string();
        ui.note(format!("warning: {warning}"));
        warnings.push(warning);
    }
    for image in &ws.images {
        step.detail(format!("reading {}", image.name));
        let dockerfile = image.context.join(&image.dockerfile);
        let text = std::fs::read_to_string(&dockerfile).map_err(|source| BundleError::Read {
            path: dockerfile.clone(),
            source,
        })?;
        let from = base_images_of_dockerfile(&text).map_err(|message| BundleError::Dockerfile {
            path: dockerfile.clone(),
            message,
        })?;
        // A loaded image has no registry digest, so a build pinned to one cannot run
        // offline whatever the bundle holds; the app image itself is bundled, so `up` needs
        // no build unless the app changes.
        let (pinned, from): (Vec<String>, Vec<String>) =
            from.into_iter().partition(|b| b.contains('@'));
        for base in pinned {
            let warning = format!(
                "{}: FROM {base} is pinned by digest, which a loaded image cannot match; not bundled (the built {} image is)",
                dockerfile.display(),
                image.name
            );
            ui.note(format!("warning: {warning}"));
            warnings.push(warning);
        }
        let mut from = from;
        // A `# syntax=` frontend is an image BuildKit runs: offline, it must be in the bundle.
        if let Some(frontend) = crate::docker::dockerfile::frontend_image(&text)
            && !from.contains(&frontend)
        {
            from.push(frontend);
        }
        bases.push((image.name.clone(), from));
        let spec = image.clone();
        let request = tokio::task::spawn_blocking(move || BuildRequest::for_image(&spec))
            .await
            .map_err(|e| BundleError::Read {
                path: image.context.clone(),
                source: std::io::Error::other(e),
            })??;
        let tag = request.tag().to_string();
        let reference = format!(
            "{}/{}:{tag}",
            crate::registry::local_host(ws.registry.port),
            image.name
        );
        apps.push((
            AppImage {
                name: image.name.clone(),
                tag,
            },
            reference,
            request,
        ));
    }
    let app_refs: Vec<(AppImage, String)> = apps
        .iter()
        .map(|(app, reference, _)| (app.clone(), reference.clone()))
        .collect();
    let wanted = wanted_images(&node_image, &ws.registry.image, &bases, &app_refs);

    // Everything but the app images must already be in the engine: a bundle is made where
    // they could be pulled, and kindlab does not pull behind the user's back.
    for w in wanted.iter().filter(|w| w.role != ImageRole::App) {
        if inspect_image(engine, &w.reference).await?.is_none() {
            return Err(BundleError::ImageMissing {
                reference: w.reference.clone(),
                role: w.role,
            });
        }
    }
    step.ok(format!(
        "{} images: {}",
        wanted.len(),
        wanted
            .iter()
            .map(|w| w.reference.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let mut built = Vec::new();
    for (app, reference, request) in apps {
        if inspect_image(engine, &reference).await?.is_some() {
            continue;
        }
        build_app(engine, &app.name, &reference, request, ui).await?;
        built.push(reference);
    }

    let mut sized = Vec::new();
    for w in &wanted {
        let (id, size) = inspect_image(engine, &w.reference).await?.ok_or_else(|| {
            BundleError::ImageMissing {
                reference: w.reference.clone(),
                role: w.role,
            }
        })?;
        sized.push((w.clone(), id, size));
    }
    let unpacked: u64 = sized.iter().map(|(_, _, size)| size).sum();

    let dir = parent_dir(&options.output);
    // zstd keeps about 30% of these images (measured); half leaves a margin.
    let need = match options.encoding {
        Encoding::None => unpacked,
        Encoding::Zstd => unpacked / 2,
    };
    check_free_space(&dir, need)?;
    let manifest_base = Manifest {
        format: FORMAT.into(),
        created_at: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        kindlab_version: env!("CARGO_PKG_VERSION").into(),
        kind_version,
        workspace: WorkspaceInfo {
            cluster: ws.cluster.name.clone(),
            registry: RegistryInfo {
                name: ws.registry.name.clone(),
                port: ws.registry.port,
                image: ws.registry.image.clone(),
            },
        },
        default_node_image,
        images: Vec::new(),
    };
    let step = ui.step(format!("Bundle {}", options.output.display()));
    let written = write_bundle(engine, &dir, &sized, manifest_base, options, &step).await?;
    let (manifest, size) = written;
    let took = step.elapsed();
    step.ok(format!(
        "{} images, {} ({} unpacked, {}/s)",
        manifest.images.len(),
        format_bytes(size),
        format_bytes(unpacked),
        format_bytes((unpacked as f64 / took.as_secs_f64().max(0.001)) as u64),
    ));
    Ok(CreateReport {
        file: options.output.display().to_string(),
        size,
        unpacked_size: unpacked,
        built,
        warnings,
        manifest,
        duration: started.elapsed(),
    })
}

/// The node image, and whether it is to be `up`'s default (kindlab.yaml names none).
async fn node_image(
    engine: &Engine,
    ws: &Workspace,
    options: &CreateOptions,
) -> Result<(String, bool), BundleError> {
    // Where kindlab.yaml names no node image, `up` on the machines that load the bundle
    // must be told which one to use (kind's default cannot be pulled there).
    let default = ws.cluster.node_image.is_none();
    let reference = match options
        .node_image
        .clone()
        .or_else(|| ws.cluster.node_image.clone())
    {
        Some(image) => image,
        None => cluster_node_image(engine, &ws.cluster.name).await?,
    };
    if !reference.contains('@') {
        return Ok((reference, default));
    }
    // kind pins its default image by digest; a saved and loaded image has no registry
    // digest, so the bundle names it by its tag (checked to be the same image).
    let untagged = || BundleError::NodeImageUntagged {
        reference: reference.clone(),
    };
    let tagged = tag_form(&reference).ok_or_else(untagged)?.to_string();
    let pinned = inspect_image(engine, &reference).await?;
    let by_tag = inspect_image(engine, &tagged).await?;
    match (pinned, by_tag) {
        (Some((a, _)), Some((b, _))) if a == b => Ok((tagged, default)),
        (None, _) => Err(BundleError::ImageMissing {
            reference,
            role: ImageRole::Node,
        }),
        _ => Err(untagged()),
    }
}

/// The image the workspace's kind cluster runs (its control-plane container's image).
async fn cluster_node_image(engine: &Engine, cluster_name: &str) -> Result<String, BundleError> {
    let nodes = cluster::list_nodes(engine, cluster_name).await?;
    let none = || BundleError::NoNodeImage {
        cluster: cluster_name.to_string(),
    };
    let node = nodes
        .iter()
        .find(|n| n.role == "control-plane")
        .ok_or_else(none)?;
    let inspect = engine
        .docker
        .inspect_container(&node.name, None)
        .await
        .map_err(DockerError::api(format!("inspect node {}", node.name)))?;
    inspect
        .config
        .and_then(|c| c.image)
        .filter(|i| !i.is_empty())
        .ok_or_else(none)
}

async fn build_app(
    engine: &Engine,
    name: &str,
    reference: &str,
    request: BuildRequest,
    ui: &Ui,
) -> Result<(), BundleError> {
    let step = ui.step(format!("Image {name}"));
    step.detail("building");
    let built = docker::build_image(engine, name, reference, request, |event| {
        if let BuildEvent::Step { index, total, text } = event {
            step.progress(index, total);
            step.detail(text);
        }
    })
    .await;
    match built {
        Ok(_) => {
            step.ok(format!("built {reference}"));
            Ok(())
        }
        Err(e) => {
            // The build's output under its step; the step's guard then marks it failed.
            for line in e.details() {
                ui.note(format!("    | {line}"));
            }
            Err(e.into())
        }
    }
}

/// Streams every image into a temporary file beside `options.output`, then renames it.
/// The temporary file is removed if anything fails or the command is interrupted.
async fn write_bundle(
    engine: &Engine,
    dir: &Path,
    images: &[(Wanted, String, u64)],
    mut manifest: Manifest,
    options: &CreateOptions,
    step: &crate::ui::Step,
) -> Result<(Manifest, u64), BundleError> {
    let write_err = |source| BundleError::Write {
        path: options.output.clone(),
        source,
    };
    // Readable by others (the umask still applies): a bundle is made to be copied around,
    // unlike the private 0600 a temporary file gets by default.
    #[cfg(unix)]
    let permissions = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o644)
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".kindlab-bundle-").suffix(".partial");
    #[cfg(unix)]
    builder.permissions(permissions);
    let partial = builder.tempfile_in(dir).map_err(write_err)?;
    let file = partial.as_file().try_clone().map_err(write_err)?;
    let mtime = jiff::Timestamp::now().as_second().max(0) as u64;
    let mut writer = Some(BundleWriter::new(file, mtime));
    let total: u64 = images.iter().map(|(_, _, size)| size).sum();
    let progress = step.bytes(total);
    let mut done_before = 0u64;

    for (index, (wanted, id, size)) in images.iter().enumerate() {
        step.detail(wanted.reference.clone());
        let member = member_name(index, &wanted.reference, options.encoding);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
        let mut bundle = writer
            .take()
            .ok_or_else(|| write_err(std::io::Error::other("writer lost")))?;
        let name = member.clone();
        let encoding = options.encoding;
        let task = tokio::task::spawn_blocking(move || {
            let chunks = std::iter::from_fn(|| rx.blocking_recv());
            let result = bundle.write_member(&name, encoding, chunks);
            (bundle, result)
        });
        let mut export = engine.docker.export_image(&wanted.reference);
        let mut exported = 0u64;
        let mut export_error = None;
        while let Some(chunk) = export.next().await {
            match chunk {
                Ok(bytes) => {
                    exported += bytes.len() as u64;
                    // The export's length differs a little from the image's size.
                    progress.set(done_before + exported.min(*size));
                    if tx.send(Ok(bytes)).await.is_err() {
                        break; // the writer failed; its error is below
                    }
                }
                Err(source) => {
                    let message = source.to_string();
                    let _ = tx.send(Err(std::io::Error::other(message))).await;
                    export_error = Some(source);
                    break;
                }
            }
        }
        drop(tx);
        let (bundle, result) = task
            .await
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        if let Some(source) = export_error {
            return Err(DockerError::Api {
                action: format!("export {}", wanted.reference),
                source,
            }
            .into());
        }
        let written = result.map_err(write_err)?;
        done_before += size;
        progress.set(done_before);
        manifest.images.push(ImageEntry {
            role: wanted.role,
            reference: wanted.reference.clone(),
            id: id.clone(),
            size: *size,
            app: wanted.app.clone(),
            used_by: wanted.used_by.clone(),
            member,
            encoding: options.encoding,
            member_size: written.size,
            member_sha256: written.sha256,
        });
        writer = Some(bundle);
    }

    step.detail("writing the manifest");
    let bundle = writer
        .take()
        .ok_or_else(|| write_err(std::io::Error::other("writer lost")))?;
    let finished_manifest = manifest.clone();
    let file = tokio::task::spawn_blocking(move || bundle.finish(&finished_manifest))
        .await
        .map_err(|e| write_err(std::io::Error::other(e)))?
        .map_err(write_err)?;
    let size = file.metadata().map_err(write_err)?.len();
    partial
        .persist(&options.output)
        .map_err(|e| write_err(e.error))?;
    Ok((manifest, size))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Refuses to start when the images clearly cannot fit (compressed bundles are smaller,
/// but a full disk mid-way wastes minutes).
fn check_free_space(dir: &Path, need: u64) -> Result<(), BundleError> {
    let Some(free) = super::free_space(dir) else {
        return Ok(()); // unmeasurable: the write itself will say
    };
    if free < need {
        return Err(BundleError::NoSpace {
            path: dir.to_path_buf(),
            need,
            free,
        });
    }
    Ok(())
}
