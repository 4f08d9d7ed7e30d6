//! Building an image through the Engine API and pushing it.
//!
//! The build context is packed here (honouring `.dockerignore`) and hashed: the hash of the
//! build inputs becomes the image tag, so an unchanged workspace maps to a tag the registry
//! already has and the build can be skipped.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::dockerignore;
use super::{DockerError, Engine};
use crate::exit;
use crate::workspace::{BuildSecret, ImageSpec};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read the build context {path}")]
    Context {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid .dockerignore in {dir}: {message}")]
    DockerIgnore { dir: PathBuf, message: String },
    #[error("building {image} failed at {step}: {message}")]
    StepFailed {
        image: String,
        step: String,
        message: String,
        log: Vec<String>,
    },
    #[error("pushing {reference} failed: {message}")]
    Push { reference: String, message: String },
    #[error(
        "the registry holds {registry_digest} for {reference}, but the engine pushed {engine_digest}"
    )]
    DigestMismatch {
        reference: String,
        registry_digest: String,
        engine_digest: String,
    },
    #[error("the engine refused a BuildKit build: {message}")]
    BuildKitRefused { message: String },
    #[error("building {image} needs the secret {id:?}, but {why}")]
    SecretMissing {
        image: String,
        id: String,
        why: String,
    },
    #[error(
        "{image}'s Dockerfile asks for the BuildKit frontend {frontend} (`# syntax=`), which the engine does not have"
    )]
    FrontendMissing { image: String, frontend: String },
    #[error(
        "{image}'s Dockerfile uses a heredoc, which the engine's Dockerfile frontend does not know: {message}"
    )]
    HeredocUnsupported { image: String, message: String },
    #[error(transparent)]
    Docker(#[from] DockerError),
}

impl BuildError {
    pub fn fix(&self) -> Option<String> {
        match self {
            BuildError::Context { .. } => Some("check images[].context in kindlab.yaml".into()),
            BuildError::DockerIgnore { .. } => Some("fix the pattern in .dockerignore".into()),
            BuildError::StepFailed { .. } => {
                Some("fix that Dockerfile step (its output is above), then run the command again".into())
            }
            BuildError::Push { .. } => {
                Some("check the registry with `kindlab registry status`; `kindlab registry up` repairs it".into())
            }
            BuildError::DigestMismatch { .. } => Some(
                "another push raced this one; run the command again".into(),
            ),
            BuildError::BuildKitRefused { .. } => Some(
                "run the command again with DOCKER_BUILDKIT=0 to use the classic builder".into(),
            ),
            BuildError::SecretMissing { .. } => Some(
                "create that file or set that variable (images[].secrets in kindlab.yaml says which), then run the command again".into(),
            ),
            BuildError::FrontendMissing { frontend, .. } => Some(format!(
                "load it with `kindlab bundle load` from a bundle made where it could be pulled (`docker pull {frontend}` there, then `kindlab bundle create`), or remove the `# syntax=` line to use the engine's built-in frontend"
            )),
            BuildError::HeredocUnsupported { .. } => Some(
                "heredocs need the Dockerfile frontend 1.4 or later, built into Docker Engine 23.0 and later: upgrade the engine, or add `# syntax=docker/dockerfile:1.4` with that image in the engine, or write the lines as one RUN joined with &&".into(),
            ),
            BuildError::Docker(e) => e.fix(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            BuildError::Docker(e) => e.exit_code(),
            BuildError::Context { .. }
            | BuildError::DockerIgnore { .. }
            | BuildError::SecretMissing { .. }
            | BuildError::FrontendMissing { .. }
            | BuildError::HeredocUnsupported { .. } => exit::BAD_INPUT,
            _ => exit::FAILED,
        }
    }

    /// Lines to show under the error (the build log's tail).
    pub fn details(&self) -> &[String] {
        match self {
            BuildError::StepFailed { log, .. } => log,
            _ => &[],
        }
    }
}

/// A packed build context and the hash of everything that goes into the build.
#[derive(Clone)]
pub struct BuildRequest {
    pub context_tar: Vec<u8>,
    /// Hex SHA-256 over the Dockerfile's name, every path of the context as `docker build`
    /// sends it (mode and content), the target, the build args and the platform. Not the
    /// secrets' values.
    pub input_hash: String,
    pub dockerfile: String,
    pub target: Option<String>,
    pub args: BTreeMap<String, String>,
    pub platform: Option<String>,
    pub secrets: Vec<BuildSecret>,
    /// The `# syntax=` frontend image the Dockerfile asks for.
    pub frontend: Option<String>,
    /// The Dockerfile has a heredoc (`RUN <<EOF`), which older frontends do not know.
    pub uses_heredoc: bool,
}

impl BuildRequest {
    /// Packs an image's context with its build settings.
    pub fn for_image(image: &ImageSpec) -> Result<BuildRequest, BuildError> {
        let mut request = BuildRequest::pack_with(
            &image.context,
            &image.dockerfile,
            image.target.as_deref(),
            &image.args,
            image.platform.as_deref(),
        )?;
        request.secrets = image.secrets.clone();
        Ok(request)
    }

    /// Packs `context` as `docker build` would send it, with no target, args or platform.
    pub fn pack(context: &Path, dockerfile: &str) -> Result<BuildRequest, BuildError> {
        BuildRequest::pack_with(context, dockerfile, None, &BTreeMap::new(), None)
    }

    /// Packs `context` as `docker build` would send it. Entries are in Docker's walk order
    /// and timestamps fixed, so the same inputs give the same tar and the same hash on
    /// every machine.
    pub fn pack_with(
        context: &Path,
        dockerfile: &str,
        target: Option<&str>,
        args: &BTreeMap<String, String>,
        platform: Option<&str>,
    ) -> Result<BuildRequest, BuildError> {
        let ignore = dockerignore::load(context).map_err(|e| BuildError::DockerIgnore {
            dir: context.to_path_buf(),
            message: e.to_string(),
        })?;
        let entries =
            dockerignore::context_entries(context, &ignore, dockerfile).map_err(|source| {
                BuildError::Context {
                    path: context.to_path_buf(),
                    source,
                }
            })?;

        let mut hasher = Sha256::new();
        hasher.update(format!("dockerfile={dockerfile}\0"));
        let mut tar = tar::Builder::new(Vec::new());
        for entry in &entries {
            let rel_str = entry.path.as_str();
            let path = context.join(rel_str);
            let read_err = |source| BuildError::Context {
                path: path.clone(),
                source,
            };
            let meta = std::fs::symlink_metadata(&path).map_err(read_err)?;
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            if entry.is_dir {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(0o755);
                hasher.update(format!("dir {rel_str}\0"));
                tar.append_data(&mut header, format!("{rel_str}/"), std::io::empty())
                    .map_err(read_err)?;
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(read_err)?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                hasher.update(format!("link {rel_str} -> {}\0", target.display()));
                tar.append_link(&mut header, rel_str, &target)
                    .map_err(read_err)?;
            } else {
                let content = std::fs::read(&path).map_err(read_err)?;
                let mode = file_mode(&meta);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(content.len() as u64);
                header.set_mode(mode);
                hasher.update(format!("file {rel_str} {mode:o} {}\0", content.len()));
                hasher.update(&content);
                tar.append_data(&mut header, rel_str, content.as_slice())
                    .map_err(read_err)?;
            }
        }
        // The build settings that change the image (secrets do not: their values must not
        // leave a trace, and a step using one is re-run by changing its Dockerfile line).
        hasher.update(format!("target={}\0", target.unwrap_or_default()));
        for (key, value) in args {
            hasher.update(format!("arg {key}={value}\0"));
        }
        hasher.update(format!("platform={}\0", platform.unwrap_or_default()));
        let context_tar = tar.into_inner().map_err(|source| BuildError::Context {
            path: context.to_path_buf(),
            source,
        })?;
        let input_hash = hex::encode(hasher.finalize());
        let text = std::fs::read_to_string(context.join(dockerfile)).unwrap_or_default();
        let frontend = super::dockerfile::frontend_image(&text);
        let uses_heredoc = super::dockerfile::uses_heredoc(&text);
        Ok(BuildRequest {
            context_tar,
            input_hash,
            dockerfile: dockerfile.to_string(),
            target: target.map(str::to_string),
            args: args.clone(),
            platform: platform.map(str::to_string),
            secrets: Vec::new(),
            frontend,
            uses_heredoc,
        })
    }

    /// The tag kindlab gives the image: the first 12 hex digits of the input hash.
    pub fn tag(&self) -> &str {
        &self.input_hash[..12]
    }
}

/// A short random hex string (a BuildKit session's name).
pub(crate) fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    // A fixed name only risks a clash between concurrent builds; never a reason to fail.
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

#[cfg(unix)]
fn file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    // Only the executable bit matters to a build; normalise the rest (umask differs).
    if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

#[cfg(not(unix))]
fn file_mode(_meta: &std::fs::Metadata) -> u32 {
    0o644
}

/// What a build reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// The legacy builder's `Step 2/5 : COPY ...` line.
    Step {
        index: u64,
        total: u64,
        text: String,
    },
    /// Any other output line.
    Output(String),
}

/// Builds `request` as `reference` and returns the image ID.
pub async fn build_image(
    engine: &Engine,
    image_name: &str,
    reference: &str,
    request: BuildRequest,
    mut on_event: impl FnMut(BuildEvent),
) -> Result<String, BuildError> {
    // The classic builder: it works on every engine through the API without a BuildKit
    // session, and its `Step N/M` lines give an honest progress bar.
    let args: std::collections::HashMap<String, String> =
        request.args.clone().into_iter().collect();
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&request.dockerfile)
        .t(reference)
        .rm(true)
        .forcerm(true)
        .buildargs(&args);
    if let Some(target) = &request.target {
        options = options.target(target);
    }
    if let Some(platform) = &request.platform {
        options = options.platform(platform);
    }
    let options = options.build();
    let body = bollard::body_full(request.context_tar.into());
    let mut stream = engine.docker.build_image(options, None, Some(body));
    let mut log: Vec<String> = Vec::new();
    let mut current_step = String::from("the first step");
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream {
                    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                        log.push(line.to_string());
                        if let Some(step) = parse_step(line) {
                            current_step = line.to_string();
                            on_event(step);
                        } else {
                            on_event(BuildEvent::Output(line.to_string()));
                        }
                    }
                }
                if let Some(bollard::models::BuildInfoAux::Default(aux)) = info.aux
                    && let Some(id) = aux.id
                {
                    image_id = Some(id);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(BuildError::StepFailed {
                    image: image_name.to_string(),
                    step: current_step,
                    message: error.trim().to_string(),
                    log: tail(log, 20),
                });
            }
            Err(source) => {
                return Err(BuildError::Docker(DockerError::Api {
                    action: format!("build {image_name}"),
                    source,
                }));
            }
        }
    }
    match image_id {
        Some(id) => Ok(id),
        // Older engines print "Successfully built <id>" instead of an aux message.
        None => log
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("Successfully built "))
            .map(str::to_string)
            .ok_or_else(|| BuildError::StepFailed {
                image: image_name.to_string(),
                step: current_step,
                message: "the engine reported no image".into(),
                log: tail(log, 20),
            }),
    }
}

/// The failing step's own output: from its `Step N/M` line on, without the builder's
/// bookkeeping lines, at most `n` lines.
fn tail(log: Vec<String>, n: usize) -> Vec<String> {
    let step_start = log
        .iter()
        .rposition(|l| parse_step(l).is_some())
        .unwrap_or(0);
    let mut lines: Vec<String> = log
        .into_iter()
        .skip(step_start)
        .filter(|l| !l.starts_with(" ---> ") && !l.starts_with("Removing intermediate container"))
        .collect();
    let start = lines.len().saturating_sub(n);
    lines.drain(..start);
    lines
}

/// `Step 2/5 : COPY www/ /www/` -> Step { 2, 5, "COPY www/ /www/" }.
fn parse_step(line: &str) -> Option<BuildEvent> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, text) = rest.split_once(" : ")?;
    let (index, total) = counts.split_once('/')?;
    Some(BuildEvent::Step {
        index: index.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
        text: text.trim().to_string(),
    })
}

/// Pushes `repository:tag` and returns the digest the engine now lists for it.
pub async fn push_image(
    engine: &Engine,
    repository: &str,
    tag: &str,
    mut on_progress: impl FnMut(String),
) -> Result<Option<String>, BuildError> {
    let reference = format!("{repository}:{tag}");
    let options = PushImageOptionsBuilder::default().tag(tag).build();
    let mut stream = engine.docker.push_image(repository, Some(options), None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(status) = info.status {
                    on_progress(status);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(BuildError::Push {
                    reference,
                    message: error,
                });
            }
            Err(source) => {
                return Err(BuildError::Docker(DockerError::Api {
                    action: format!("push {reference}"),
                    source,
                }));
            }
        }
    }
    let inspect = engine
        .docker
        .inspect_image(&reference)
        .await
        .map_err(DockerError::api(format!("inspect {reference}")))?;
    let prefix = format!("{repository}@");
    Ok(inspect
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .find_map(|d| d.strip_prefix(&prefix).map(str::to_string)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("www/sub")).unwrap();
        std::fs::write(p.join("Dockerfile"), "FROM busybox:1.36\n").unwrap();
        std::fs::write(p.join("www/index.html"), "hi").unwrap();
        std::fs::write(p.join("www/sub/README.md"), "nested readme").unwrap();
        std::fs::write(p.join("README.md"), "top readme").unwrap();
        std::fs::write(p.join("notes.swp"), "x").unwrap();
        dir
    }

    fn tar_paths(tar_bytes: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut paths: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn dockerignore_patterns_are_anchored_at_the_context_root() {
        let dir = context();
        std::fs::write(
            dir.path().join(".dockerignore"),
            "README.md\n*.swp\nDockerfile\n",
        )
        .unwrap();
        let req = BuildRequest::pack(dir.path(), "Dockerfile").unwrap();
        assert_eq!(
            tar_paths(&req.context_tar),
            vec![
                ".dockerignore",
                "Dockerfile",
                "www/",
                "www/index.html",
                "www/sub/",
                "www/sub/README.md"
            ]
        );
    }

    #[test]
    fn negation_brings_a_file_back() {
        let dir = context();
        std::fs::write(dir.path().join(".dockerignore"), "www\n!www/index.html\n").unwrap();
        let req = BuildRequest::pack(dir.path(), "Dockerfile").unwrap();
        let paths = tar_paths(&req.context_tar);
        assert!(paths.contains(&"www/index.html".to_string()), "{paths:?}");
        assert!(
            !paths.contains(&"www/sub/README.md".to_string()),
            "{paths:?}"
        );
    }

    #[test]
    fn hash_follows_content_not_ignored_files() {
        let dir = context();
        std::fs::write(dir.path().join(".dockerignore"), "README.md\n").unwrap();
        let first = BuildRequest::pack(dir.path(), "Dockerfile").unwrap();
        std::fs::write(dir.path().join("README.md"), "edited").unwrap();
        let same = BuildRequest::pack(dir.path(), "Dockerfile").unwrap();
        assert_eq!(first.input_hash, same.input_hash);
        assert_eq!(first.context_tar, same.context_tar);
        std::fs::write(dir.path().join("www/index.html"), "changed").unwrap();
        let changed = BuildRequest::pack(dir.path(), "Dockerfile").unwrap();
        assert_ne!(first.input_hash, changed.input_hash);
        assert_eq!(changed.tag().len(), 12);
    }

    #[test]
    fn target_args_and_platform_change_the_tag_and_secret_values_do_not() {
        let dir = context();
        let no_args = BTreeMap::new();
        let tag = |target, args: &BTreeMap<String, String>, platform| {
            BuildRequest::pack_with(dir.path(), "Dockerfile", target, args, platform)
                .unwrap()
                .input_hash
        };
        let plain = tag(None, &no_args, None);
        let args = BTreeMap::from([("A".to_string(), "b".to_string())]);
        let other_args = BTreeMap::from([("A".to_string(), "c".to_string())]);
        let all = [
            plain.clone(),
            tag(Some("runtime"), &no_args, None),
            tag(None, &args, None),
            tag(None, &other_args, None),
            tag(None, &no_args, Some("linux/arm64")),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let with_secret = |var: &str| {
            let spec = ImageSpec {
                name: "api".into(),
                context: dir.path().to_path_buf(),
                dockerfile: "Dockerfile".into(),
                target: None,
                args: BTreeMap::new(),
                platform: None,
                secrets: vec![BuildSecret {
                    id: "token".into(),
                    source: crate::workspace::SecretSource::Env(var.into()),
                }],
            };
            BuildRequest::for_image(&spec).unwrap().input_hash
        };
        assert_eq!(with_secret("ONE"), plain);
        assert_eq!(with_secret("TWO"), plain);
    }

    #[test]
    fn an_empty_directory_is_part_of_the_context() {
        let dir = context();
        let before = BuildRequest::pack(dir.path(), "Dockerfile").unwrap();
        std::fs::create_dir(dir.path().join("cache")).unwrap();
        let after = BuildRequest::pack(dir.path(), "Dockerfile").unwrap();
        assert_ne!(before.input_hash, after.input_hash);
        assert!(tar_paths(&after.context_tar).contains(&"cache/".to_string()));
    }

    #[test]
    fn step_lines_parse() {
        assert_eq!(
            parse_step("Step 2/5 : COPY www/ /www/"),
            Some(BuildEvent::Step {
                index: 2,
                total: 5,
                text: "COPY www/ /www/".into()
            })
        );
        assert_eq!(parse_step(" ---> Running in abc"), None);
    }
}

crate::error::failure_from_inherent!(BuildError);
