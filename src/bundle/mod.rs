//! Offline bundles: one file with every image a workspace needs to run `up` and its labs
//! with no image registry in reach (the kind node image, the registry image, the base
//! images its Dockerfiles start from, its built app images), for workshops on conference
//! Wi-Fi and air-gapped sites.
//!
//! Format `kindlab-bundle/v1`: a plain tar file. One member per image,
//! `images/NN-<name>.tar` (or `.tar.zst`), holding that image's `docker save` stream; then
//! `manifest.json` with the versions, each image's ID and size, and each member's size and
//! SHA-256. The manifest is last because a member's size and checksum are known only once
//! the engine has streamed it; `load` reads the whole file once to check every member
//! before it touches the engine.

mod archive;
pub mod command;
mod create;
mod load;
mod manifest;

use std::path::{Path, PathBuf};

pub use create::{CreateOptions, CreateReport, create};
pub use load::{LoadOptions, LoadReport, LoadedImage, RegistryChoice, load};
pub use manifest::{
    AppImage, Encoding, FORMAT, ImageEntry, ImageRole, Manifest, base_images_of_dockerfile,
    node_alias,
};

use crate::docker::{BuildError, DockerError, Engine};
use crate::exit;
use crate::interrupt::Interrupted;
use crate::registry::RegistryError;
use crate::ui::format_bytes;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path} is not a usable bundle: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the {} {reference} is not in the Docker engine", role.describe())]
    ImageMissing { reference: String, role: ImageRole },
    #[error("kindlab.yaml names no node image and cluster {cluster:?} is not running")]
    NoNodeImage { cluster: String },
    #[error("the node image {reference} has no tag to load it by")]
    NodeImageUntagged { reference: String },
    #[error("{}: {message}", path.display())]
    Dockerfile { path: PathBuf, message: String },
    #[error("{} needs {} free, it has {}", path.display(), format_bytes(*need), format_bytes(*free))]
    NoSpace { path: PathBuf, need: u64, free: u64 },
    #[error("the engine did not load {reference}: {message}")]
    Load { reference: String, message: String },
    #[error("after loading, {reference} is {}, not {expected} as the bundle says", found.as_deref().unwrap_or("missing"))]
    IdMismatch {
        reference: String,
        expected: String,
        found: Option<String>,
    },
    #[error("pushing {reference} failed: {message}")]
    Push { reference: String, message: String },
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

impl BundleError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            BundleError::Corrupt { path, .. } => format!(
                "nothing was loaded; copy {} again from a good copy (compare `sha256sum`), or make a new one with `kindlab bundle create`",
                path.display()
            ),
            BundleError::Open { .. } => "check the path and its permissions".into(),
            BundleError::Read { .. } => "check the path and its permissions".into(),
            BundleError::Write { .. } => {
                "check the directory exists, is writable and has room, or pass another FILE".into()
            }
            BundleError::ImageMissing { reference, role } => match role {
                ImageRole::Node => format!(
                    "make the bundle where the node image is: run `kindlab up` once (kind pulls it), `docker pull {reference}`, or build one offline with `make offline-images`"
                ),
                _ => format!(
                    "pull it where a registry is reachable (`docker pull {reference}`), then run `kindlab bundle create` again"
                ),
            },
            BundleError::NoNodeImage { .. } => {
                "run `kindlab up` first (the bundle takes the image the cluster runs), or name one with --node-image or cluster.nodeImage in kindlab.yaml".into()
            }
            BundleError::NodeImageUntagged { .. } => {
                "name a tagged node image with --node-image or cluster.nodeImage in kindlab.yaml".into()
            }
            BundleError::Dockerfile { .. } => {
                "write the base image in the FROM line itself, or pull and bundle it yourself".into()
            }
            BundleError::NoSpace { .. } => {
                "free space (`docker system prune` removes unused images and containers) or write the bundle elsewhere".into()
            }
            BundleError::Load { .. } | BundleError::IdMismatch { .. } => {
                "nothing was left half-loaded; check the engine's disk (`docker system df`) and run the load again".into()
            }
            BundleError::Push { .. } => {
                "nothing was left half-loaded; check the registry with `kindlab registry status`, or load with --no-registry".into()
            }
            BundleError::Docker(e) => return e.fix(),
            BundleError::Build(e) => return e.fix(),
            BundleError::Registry(e) => return e.fix(),
            BundleError::Interrupted(e) => return e.fix(),
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            BundleError::Corrupt { .. }
            | BundleError::Open { .. }
            | BundleError::Read { .. }
            | BundleError::Dockerfile { .. }
            | BundleError::NodeImageUntagged { .. } => exit::BAD_INPUT,
            BundleError::ImageMissing { .. }
            | BundleError::NoNodeImage { .. }
            | BundleError::NoSpace { .. } => exit::MISSING_PREREQUISITE,
            BundleError::Docker(e) => e.exit_code(),
            BundleError::Build(e) => e.exit_code(),
            BundleError::Registry(e) => e.exit_code(),
            BundleError::Interrupted(e) => e.exit_code(),
            _ => exit::FAILED,
        }
    }
}

/// Reads a bundle's manifest without checking the images (fast: the members are skipped).
pub fn read_manifest(path: &Path) -> Result<Manifest, BundleError> {
    archive::read_manifest(path).map_err(|e| match e {
        archive::ScanError::Open(source) => BundleError::Open {
            path: path.to_path_buf(),
            source,
        },
        archive::ScanError::Damaged(what) => BundleError::Corrupt {
            path: path.to_path_buf(),
            what,
        },
    })
}

/// Which of a bundle's images the engine lacks (a name missing, or naming another image).
pub async fn missing_images(
    engine: &Engine,
    manifest: &Manifest,
) -> Result<Vec<String>, DockerError> {
    let mut missing = Vec::new();
    for image in &manifest.images {
        match inspect_image(engine, &image.reference).await? {
            Some((id, _)) if id == image.id => {}
            _ => missing.push(image.reference.clone()),
        }
    }
    Ok(missing)
}

/// The node image a loaded bundle left for `up` when kindlab.yaml names none, if this
/// engine has one made for `kind_version`.
pub async fn loaded_node_image(engine: &Engine, kind_version: &str) -> Option<String> {
    let alias = node_alias(kind_version);
    match inspect_image(engine, &alias).await {
        Ok(Some(_)) => Some(alias),
        _ => None,
    }
}

/// Bytes free for an unprivileged writer on the file system holding `path`, if measurable.
pub fn free_space(path: &Path) -> Option<u64> {
    rustix::fs::statvfs(path)
        .ok()
        .map(|st| st.f_bavail.saturating_mul(st.f_frsize))
}

/// An image's ID and size, or None when the engine has no such name.
pub(crate) async fn inspect_image(
    engine: &Engine,
    reference: &str,
) -> Result<Option<(String, u64)>, DockerError> {
    match engine.docker.inspect_image(reference).await {
        Ok(inspect) => Ok(Some((
            inspect.id.unwrap_or_default(),
            inspect.size.unwrap_or_default().max(0) as u64,
        ))),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(source) => Err(DockerError::Api {
            action: format!("inspect image {reference}"),
            source,
        }),
    }
}

/// `localhost:5001/app:tag` -> (`localhost:5001/app`, `tag`); no tag means `latest`.
pub(crate) fn split_reference(reference: &str) -> (&str, &str) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (
            &reference[..name_start + i],
            &reference[name_start + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_reference("localhost:5001/orders-api:abc"),
            ("localhost:5001/orders-api", "abc")
        );
        assert_eq!(split_reference("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(
            split_reference("localhost:5001/app"),
            ("localhost:5001/app", "latest")
        );
    }

    #[test]
    fn a_corrupt_bundle_names_the_file_and_the_fix() {
        let e = BundleError::Corrupt {
            path: "/tmp/w.tar".into(),
            what: "member images/00-registry-3.tar has sha256 x".into(),
        };
        assert!(
            e.to_string()
                .starts_with("/tmp/w.tar is not a usable bundle")
        );
        assert!(e.fix().unwrap().contains("nothing was loaded"));
        assert_eq!(e.exit_code(), exit::BAD_INPUT);
    }
}

crate::error::failure_from_inherent!(BundleError);
