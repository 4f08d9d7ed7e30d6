//! `kindlab bundle load`: verify the whole file first (nothing touches the engine before
//! every member's checksum matched), load each image the engine lacks and check it ends up
//! with the manifest's image ID, then push the app images into the local registry. If any
//! of that fails or is interrupted, every name the load added is taken back out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::query_parameters::{ImportImageOptionsBuilder, RemoveImageOptionsBuilder};
use futures::StreamExt;
use serde::Serialize;

use super::archive::{self, ScanError};
use super::manifest::{
    FoundMember, ImageEntry, ImageRole, LoadStep, Manifest, check_members, node_alias, plan_load,
};
use super::{BundleError, inspect_image, split_reference};
use crate::docker::{self, Engine};
use crate::interrupt::{Interrupt, Interrupted};
use crate::registry::{self, RegistryClient, RegistryRemoval};
use crate::ui::{Ui, format_bytes};
use crate::workspace::RegistrySettings;

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub file: PathBuf,
    /// Where the app images go.
    pub registry: RegistryChoice,
    /// kind on this machine, to warn when the bundle was made for another one.
    pub kind_version: Option<String>,
}

#[derive(Debug, Clone)]
pub enum RegistryChoice {
    /// The workspace's registry (made for that workspace if missing).
    Workspace(RegistrySettings, crate::workspace::WorkspaceIdentity),
    /// Outside a workspace: the registry the bundle was made for.
    FromBundle,
    /// `--no-registry`: the engine only (`up` pushes the app images later).
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub file: String,
    pub images: Vec<LoadedImage>,
    /// The tag `up` uses as node image when kindlab.yaml names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_alias: Option<String>,
    /// App images now in the local registry (`localhost:5001/orders-api:…`).
    pub pushed: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub verify_duration: Duration,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub load_duration: Duration,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadedImage {
    pub reference: String,
    pub role: ImageRole,
    pub id: String,
    /// `loaded`, or `present` when the engine already had it.
    pub state: &'static str,
}

/// What a load changed, so a failure can undo it.
#[derive(Debug, Default)]
struct Undo {
    /// Names the load set, with the image each named before (None: it did not exist).
    tags: Vec<(String, Option<String>)>,
    /// The registry container, when this load created it.
    registry: Option<String>,
}

pub async fn load(
    engine: &Engine,
    options: &LoadOptions,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<LoadReport, BundleError> {
    let started = Instant::now();
    let file = &options.file;
    let (manifest, located) = verify(file, ui).await?;
    let verify_duration = started.elapsed();

    let mut warnings = Vec::new();
    if let (Some(made), Some(here)) = (&manifest.kind_version, &options.kind_version)
        && made != here
    {
        let warning = format!(
            "the bundle was made with kind {made}; this machine has kind {here}: its node image may not suit this kind"
        );
        ui.note(format!("warning: {warning}"));
        warnings.push(warning);
    }

    // Observe, then plan: the engine's names for the bundle's images.
    let mut present = BTreeMap::new();
    for image in &manifest.images {
        if let Some((id, _)) = inspect_image(engine, &image.reference).await? {
            present.insert(image.reference.clone(), id);
        }
    }
    let plan = plan_load(&manifest, &present);
    let need: u64 = manifest
        .images
        .iter()
        .zip(&plan)
        .filter(|(_, step)| matches!(step, LoadStep::Load { .. }))
        .map(|(image, _)| image.size)
        .sum();
    check_engine_space(engine, need).await?;

    // From here on a signal stops at the next safe point, and the load is undone.
    interrupt.handle();
    let mut undo = Undo::default();
    let load_started = Instant::now();
    let work = apply(engine, options, &manifest, &located, &plan, &mut undo, ui);
    let outcome = tokio::select! {
        result = work => result,
        _ = interrupt.requested() => Err(BundleError::Interrupted(Interrupted {
            during: format!("bundle load of {}", file.display()),
            left: "what was loaded so far has been removed again".into(),
            next: format!("run `kindlab bundle load {}` again", file.display()),
        })),
    };
    let (images, alias, pushed) = match outcome {
        Ok(done) => done,
        Err(e) => {
            let problems = rollback(engine, &undo).await;
            for problem in &problems {
                ui.note(format!("warning: {problem}"));
            }
            return Err(e);
        }
    };
    Ok(LoadReport {
        file: file.display().to_string(),
        images,
        node_alias: alias,
        pushed,
        warnings,
        verify_duration,
        load_duration: load_started.elapsed(),
        duration: started.elapsed(),
    })
}

/// Reads the whole file once: every member hashed and checked against the manifest.
async fn verify(file: &Path, ui: &Ui) -> Result<(Manifest, Vec<FoundMember>), BundleError> {
    let step = ui.step(format!("Verify {}", file.display()));
    let total = std::fs::metadata(file)
        .map_err(|source| BundleError::Open {
            path: file.to_path_buf(),
            source,
        })?
        .len();
    let progress = step.bytes(total);
    let path = file.to_path_buf();
    let scanned = tokio::task::spawn_blocking(move || archive::scan(&path, |n| progress.set(n)))
        .await
        .map_err(|e| BundleError::Open {
            path: file.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
    let corrupt = |what: String| BundleError::Corrupt {
        path: file.to_path_buf(),
        what,
    };
    let result = match scanned {
        Ok((manifest, found)) => check_members(&manifest, &found)
            .map(|located| (manifest, located))
            .map_err(corrupt),
        Err(ScanError::Open(source)) => Err(BundleError::Open {
            path: file.to_path_buf(),
            source,
        }),
        Err(ScanError::Damaged(what)) => Err(corrupt(what)),
    };
    match result {
        Ok((manifest, located)) => {
            step.ok(format!(
                "{} images, {} checked (sha256)",
                manifest.images.len(),
                format_bytes(total)
            ));
            Ok((manifest, located))
        }
        Err(e) => {
            step.fail("refused");
            Err(e)
        }
    }
}

type Applied = (Vec<LoadedImage>, Option<String>, Vec<String>);

async fn apply(
    engine: &Engine,
    options: &LoadOptions,
    manifest: &Manifest,
    located: &[FoundMember],
    plan: &[LoadStep],
    undo: &mut Undo,
    ui: &Ui,
) -> Result<Applied, BundleError> {
    let to_load: u64 = manifest
        .images
        .iter()
        .zip(plan)
        .filter(|(_, s)| matches!(s, LoadStep::Load { .. }))
        .map(|(i, _)| i.size)
        .sum();
    let count = plan
        .iter()
        .filter(|s| matches!(s, LoadStep::Load { .. }))
        .count();
    let step = ui.step("Load images");
    let progress = step.bytes(to_load);
    let mut images = Vec::new();
    for ((image, member), planned) in manifest.images.iter().zip(located).zip(plan) {
        let state = match planned {
            LoadStep::Present => "present",
            LoadStep::Load { previous } => {
                step.detail(image.reference.clone());
                // Recorded before the load: an interrupted load may still have named it.
                undo.tags.push((image.reference.clone(), previous.clone()));
                let before = progress.position();
                let loaded =
                    load_one(engine, &options.file, member, image, &progress, before).await;
                loaded?;
                progress.set(before + image.size);
                match inspect_image(engine, &image.reference).await? {
                    Some((id, _)) if id == image.id => {}
                    found => {
                        return Err(BundleError::IdMismatch {
                            reference: image.reference.clone(),
                            expected: image.id.clone(),
                            found: found.map(|(id, _)| id),
                        });
                    }
                }
                "loaded"
            }
        };
        images.push(LoadedImage {
            reference: image.reference.clone(),
            role: image.role,
            id: image.id.clone(),
            state,
        });
    }
    let took = step.elapsed();
    step.ok(if count == 0 {
        "every image was already in the engine".to_string()
    } else {
        format!(
            "{count} of {} loaded, each image ID checked ({}/s)",
            manifest.images.len(),
            format_bytes((to_load as f64 / took.as_secs_f64().max(0.001)) as u64)
        )
    });

    let alias = match (
        manifest.default_node_image,
        manifest.node_image(),
        &manifest.kind_version,
    ) {
        (true, Some(node), Some(kind)) => {
            let alias = node_alias(kind);
            let previous = inspect_image(engine, &alias).await?.map(|(id, _)| id);
            if previous.as_deref() != Some(node.id.as_str()) {
                undo.tags.push((alias.clone(), previous));
                tag(engine, &node.id, &alias).await?;
            }
            Some(alias)
        }
        _ => None,
    };

    let settings = match &options.registry {
        RegistryChoice::Workspace(settings, by) => Some((settings.clone(), Some(by))),
        RegistryChoice::FromBundle => Some((
            RegistrySettings {
                name: manifest.workspace.registry.name.clone(),
                port: manifest.workspace.registry.port,
                port_auto: false,
                image: manifest.workspace.registry.image.clone(),
            },
            None,
        )),
        RegistryChoice::Skip => None,
    };
    let pushed = match settings {
        Some((settings, by)) if manifest.images.iter().any(|i| i.app.is_some()) => {
            push_apps(engine, &settings, by, manifest, undo, ui).await?
        }
        _ => Vec::new(),
    };
    Ok((images, alias, pushed))
}

/// Streams one member into the engine's image load endpoint. The byte bar moves from
/// `base` by the image's bytes as they stream (at most `size`).
async fn load_one(
    engine: &Engine,
    file: &Path,
    member: &FoundMember,
    image: &ImageEntry,
    progress: &crate::ui::ByteProgress,
    base: u64,
) -> Result<(), BundleError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
    let path = file.to_path_buf();
    let located = member.clone();
    let bar = progress.clone();
    let (encoding, size) = (image.encoding, image.size);
    let reader = tokio::task::spawn_blocking(move || {
        let mut sent = 0u64;
        let mut failed = None;
        archive::stream_member(&path, &located, encoding, |chunk| {
            match &chunk {
                Ok(bytes) => {
                    sent += bytes.len() as u64;
                    bar.set(base + sent.min(size));
                }
                Err(e) => failed = Some(e.to_string()),
            }
            tx.blocking_send(chunk).is_ok()
        });
        failed
    });
    let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let options = ImportImageOptionsBuilder::default().quiet(true).build();
    let mut responses = engine.docker.import_image_stream(options, body, None);
    let mut failure = None;
    while let Some(item) = responses.next().await {
        match item {
            Ok(info) => {
                if let Some(error) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(error);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => failure = Some(error),
            Err(source) => {
                failure = Some(source.to_string());
                break;
            }
        }
    }
    // The file's own failure (it changed since it was verified) explains the engine's.
    if let Ok(Some(read_failure)) = reader.await {
        failure = Some(read_failure);
    }
    match failure {
        None => Ok(()),
        Some(message) => Err(BundleError::Load {
            reference: image.reference.clone(),
            message,
        }),
    }
}

async fn push_apps(
    engine: &Engine,
    settings: &RegistrySettings,
    by: Option<&crate::workspace::WorkspaceIdentity>,
    manifest: &Manifest,
    undo: &mut Undo,
    ui: &Ui,
) -> Result<Vec<String>, BundleError> {
    let step = ui.step(format!("Registry {}", settings.name));
    let created = registry::ensure_for_push(engine, settings, by, |d| step.detail(d)).await?;
    if created {
        undo.registry = Some(settings.name.clone());
    }
    let host = crate::registry::local_host(settings.port);
    let client = RegistryClient::new(&host);
    let mut pushed = Vec::new();
    for image in &manifest.images {
        let Some(app) = &image.app else { continue };
        let repository = format!("{host}/{}", app.name);
        let reference = format!("{repository}:{}", app.tag);
        if client.manifest_digest(&app.name, &app.tag).await?.is_some() {
            pushed.push(reference);
            continue;
        }
        // The bundle names the image for the registry port it was made with; this
        // machine's workspace may use another.
        if reference != image.reference {
            let previous = inspect_image(engine, &reference).await?.map(|(id, _)| id);
            if previous.as_deref() != Some(image.id.as_str()) {
                undo.tags.push((reference.clone(), previous));
                tag(engine, &image.id, &reference).await?;
            }
        }
        step.detail(format!("pushing {reference}"));
        let engine_digest =
            docker::push_image(engine, &repository, &app.tag, |s| step.detail(s)).await?;
        let registry_digest = client.manifest_digest(&app.name, &app.tag).await?;
        match (engine_digest, registry_digest) {
            (Some(e), Some(r)) if e == r => {}
            (e, r) => {
                return Err(BundleError::Push {
                    reference,
                    message: format!(
                        "the engine pushed {} but the registry serves {}",
                        e.as_deref().unwrap_or("no digest"),
                        r.as_deref().unwrap_or("nothing")
                    ),
                });
            }
        }
        pushed.push(reference);
    }
    step.ok(format!(
        "{}: {} in {host}",
        if created { "created" } else { "reused" },
        if pushed.is_empty() {
            "no app images".to_string()
        } else {
            pushed.join(", ")
        }
    ));
    Ok(pushed)
}

async fn tag(engine: &Engine, id: &str, reference: &str) -> Result<(), BundleError> {
    let (repo, tag) = split_reference(reference);
    Ok(engine.tag_image(id, repo, tag).await?)
}

/// Undoes a load: names it added are removed (an image left with no name goes with its
/// last one), names it moved point back at their old image, and a registry it created is
/// removed. Returns what could not be undone.
async fn rollback(engine: &Engine, undo: &Undo) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(name) = &undo.registry
        && let Err(e) =
            registry::remove(engine, name, &RegistryRemoval::Remove { purge: true }).await
    {
        problems.push(format!("could not remove registry {name}: {e}"));
    }
    for (reference, previous) in undo.tags.iter().rev() {
        let result = match previous {
            Some(id) => tag(engine, id, reference).await.map_err(|e| e.to_string()),
            None => {
                let options = RemoveImageOptionsBuilder::default().build();
                match engine
                    .docker
                    .remove_image(reference, Some(options), None)
                    .await
                {
                    Ok(_) => Ok(()),
                    // Never loaded (the load failed before naming it).
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        if let Err(e) = result {
            problems.push(format!("could not undo {reference}: {e}"));
        }
    }
    problems
}

/// Refuses a load that cannot fit in the engine's storage, when kindlab can measure it.
async fn check_engine_space(engine: &Engine, need: u64) -> Result<(), BundleError> {
    if need == 0 {
        return Ok(());
    }
    let storage = engine.storage().await;
    let Some(Ok(free)) = storage.free() else {
        return Ok(()); // the engine's disk is in a VM (Docker Desktop, Colima)
    };
    if free < need {
        return Err(BundleError::NoSpace {
            path: storage.root,
            need,
            free,
        });
    }
    Ok(())
}
