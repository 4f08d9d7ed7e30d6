//! What the fuzz targets share: how one input's bytes become the arguments of the function
//! under test. The formats are plain text, so the seed corpus is made of the repository's
//! real files and a fuzzer's mutations stay readable in a crash report.

use std::path::PathBuf;

use kindlab::diagnose::{Evidence, PullFailure, RegistryAnswer};
use kindlab::workspace::{DigestChange, WantedImage};
use oci_client::errors::{OciDistributionError, OciEnvelope};

/// The input as kindlab reads a file (`read_to_string`): UTF-8, or not read at all.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `HEAD\0BODY` as `(Some(HEAD), BODY)`; an input without a NUL byte is all body. Targets
/// that need a second argument take it from the head, so a real file is a seed as it is.
pub fn split_head(data: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    }
}

/// The sample workspace of `kindlab init` (templates/workspace): `images[].context` paths in
/// a fuzzed kindlab.yaml are checked against its real directories.
pub fn sample_workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../templates/workspace")
}

/// The registry host kindlab's images are pushed to by default.
pub const REGISTRY_HOST: &str = "localhost:5001";

/// Images a push asks the overlay's kustomization to name, one a line:
/// `NAME TAG [pin|update|keep] [DIGEST]` (`update` by default, as after a build). Only names
/// kindlab.yaml accepts (DNS labels, each once) are kept: the ones `set_images` is given.
pub fn wanted_images(head: &str) -> Vec<WantedImage> {
    let mut wanted: Vec<WantedImage> = Vec::new();
    for line in head.lines() {
        let mut fields = line.split(' ');
        let name = fields.next().unwrap_or_default();
        let tag = fields.next().unwrap_or_default();
        let mode = fields.next().unwrap_or("update");
        let digest = fields.next().unwrap_or("sha256:0").to_string();
        if !is_image_name(name) || wanted.iter().any(|w| w.image == name) {
            continue;
        }
        wanted.push(WantedImage {
            image: name.to_string(),
            new_name: format!("{REGISTRY_HOST}/{name}"),
            new_tag: tag.to_string(),
            digest: match mode {
                "pin" => DigestChange::Pin(digest),
                "keep" => DigestChange::Keep,
                _ => DigestChange::UpdateIfPinned(digest),
            },
        });
    }
    wanted
}

/// An `images[].name` kindlab.yaml accepts.
pub fn is_image_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// What the OCI client (oci-client 0.18, which kindlab asks registries with) makes of an
/// answer that is not `200 OK`, by the rule of its `validate_registry_response`: 401 is
/// `UnauthorizedError`; another 2xx a spec violation; a 4xx the body read as an OCI error
/// envelope when it is one, else a `ServerError` carrying the body as text; anything else a
/// `ServerError`. `None` for 200, which is not an error.
pub fn registry_error(status: u16, body: &[u8], url: &str) -> Option<OciDistributionError> {
    let server_error = || OciDistributionError::ServerError {
        code: status,
        url: url.to_string(),
        message: String::from_utf8_lossy(body).to_string(),
    };
    Some(match status {
        200 => return None,
        401 => OciDistributionError::UnauthorizedError {
            url: url.to_string(),
        },
        200..=299 => OciDistributionError::SpecViolationError(format!(
            "Expected HTTP Status 200, got {status}"
        )),
        400..=499 => match serde_json::from_slice::<OciEnvelope>(body) {
            Ok(envelope) => OciDistributionError::RegistryError {
                envelope,
                url: url.to_string(),
            },
            Err(_) => server_error(),
        },
        _ => server_error(),
    })
}

/// A failing pull as lines of text:
/// `image: REF`, `reason: ErrImagePull`, `node_platform: linux/amd64`, `pull_secret: NAME`,
/// `missing_secret: NAME`, `registry: {YAML of RegistryAnswer}`; every other line is one
/// message (an event or a container status). The registry line is written as the diagnose
/// test data writes it (`registry: {repository: exists, tag: missing, tags: [..]}`).
/// Without an `image:` line the image is the first one a message names, as in the tests.
pub fn pull_failure(text: &str) -> (PullFailure, Option<RegistryAnswer>) {
    let mut failure = PullFailure {
        subject: "pod/fuzz".into(),
        container: Some("app".into()),
        namespace: Some("default".into()),
        owner: Some("deployment/fuzz".into()),
        ..PullFailure::default()
    };
    let mut image = None;
    let mut registry = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("image: ") {
            image = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("reason: ") {
            failure.reason = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("node_platform: ") {
            failure.node_platform = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("pull_secret: ") {
            failure.pull_secrets.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("missing_secret: ") {
            failure.missing_pull_secrets.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("registry: ") {
            registry = serde_saphyr::from_str::<RegistryAnswer>(v).ok();
        } else {
            failure.messages.push(Evidence::new("event", line));
        }
    }
    failure.image = image
        .or_else(|| {
            failure
                .messages
                .iter()
                .find_map(|m| kindlab::diagnose::message::read(&m.text).image)
        })
        .unwrap_or_else(|| "example.invalid/team/app:1.0".into());
    (failure, registry)
}
