//! BuildKit builds through the Engine API: the daemon's own BuildKit, reached with a session
//! over `/session` (bollard's `buildkit` feature), so cache and secret mounts, `--target`,
//! build args and the platform work without the `docker` CLI or its buildx plug-in.
//!
//! Two paths, both the engine's BuildKit and its build cache:
//! - `POST /build?version=2` with a session: BuildKit's step progress streams back;
//! - an image with secrets is solved over the engine's `/grpc` endpoint instead, because
//!   bollard's `/build` session offers no secret provider (its Solve path does). That path
//!   reports no step progress, only the result.
//!
//! An engine without BuildKit (API older than 1.39, a Windows engine, one whose `/_ping` asks
//! for the classic builder, or one that refuses a BuildKit build) gets the classic builder,
//! said once.

use std::collections::HashMap;

use bollard::grpc::build::{ImageBuildFrontendOptions, ImageBuildLoadInput, ImageBuildPlatform};
use bollard::grpc::driver::Build as _;
use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::build::{BuildError, BuildEvent, BuildRequest};
use super::{DockerError, Engine};
use crate::workspace::SecretSource;

/// The builder a run uses for every image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builder {
    BuildKit,
    /// The classic builder, and why (said once in the output).
    Classic {
        why: String,
    },
}

/// The first engine API version with BuildKit builds and sessions (Docker 18.09).
const BUILDKIT_MIN_API: (u32, u32) = (1, 39);

/// Decides the builder from what the engine says about itself. Pure.
pub fn decide_builder(
    api_version: &str,
    os: &str,
    ping_builder_version: Option<&str>,
    env_buildkit: Option<&str>,
) -> Builder {
    if let Some(v) = env_buildkit
        && matches!(v.trim(), "0" | "false")
    {
        return Builder::Classic {
            why: format!("DOCKER_BUILDKIT={v} asks for it"),
        };
    }
    let parsed = api_version
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    match parsed {
        Some(v) if v < BUILDKIT_MIN_API => {
            return Builder::Classic {
                why: format!(
                    "the engine's API {api_version} predates BuildKit (API 1.39, Docker 18.09)"
                ),
            };
        }
        None => {
            return Builder::Classic {
                why: format!(
                    "the engine reports an API version kindlab cannot read ({api_version:?})"
                ),
            };
        }
        Some(_) => {}
    }
    if os.eq_ignore_ascii_case("windows") {
        return Builder::Classic {
            why: "a Windows engine has no BuildKit".into(),
        };
    }
    if ping_builder_version == Some("1") {
        return Builder::Classic {
            why: "the engine's /_ping names the classic builder (Builder-Version: 1, its features.buildkit is false)".into(),
        };
    }
    Builder::BuildKit
}

/// Asks the engine which builder it offers.
pub async fn choose_builder(engine: &Engine) -> Builder {
    let env = std::env::var("DOCKER_BUILDKIT").ok();
    let version = match engine.docker.version().await {
        Ok(v) => v,
        Err(e) => {
            return Builder::Classic {
                why: format!("the engine did not say its version ({e})"),
            };
        }
    };
    let ping = ping_builder_version(&engine.host.host).await;
    decide_builder(
        version.api_version.as_deref().unwrap_or_default(),
        version.os.as_deref().unwrap_or("linux"),
        ping.as_deref(),
        env.as_deref(),
    )
}

/// The `Builder-Version` header of the engine's `/_ping` (bollard does not surface response
/// headers). Only for a unix socket; elsewhere None (the other signals still decide).
async fn ping_builder_version(host: &str) -> Option<String> {
    let path = host.strip_prefix("unix://")?;
    let mut stream = tokio::net::UnixStream::connect(path).await.ok()?;
    stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await
        .ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut response),
    )
    .await
    .ok()?
    .ok()?;
    let text = String::from_utf8_lossy(&response);
    builder_version_header(&text)
}

fn builder_version_header(response: &str) -> Option<String> {
    response
        .split("\r\n\r\n")
        .next()?
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("builder-version"))
        .map(|(_, value)| value.trim().to_string())
}

/// Whether a build error is the engine refusing BuildKit itself (then the classic builder is
/// tried), rather than a Dockerfile step failing.
pub fn is_buildkit_refusal(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("buildkit")
        && (m.contains("not supported") || m.contains("not enabled") || m.contains("unsupported"))
        || m.contains("invalid version") // an engine that knows only builder version 1
        || m.contains("/session") && m.contains("not found")
}

/// A failed build of a Dockerfile with a heredoc, on a frontend that does not know them,
/// is said as such (the frontend's own words are "unknown instruction").
pub fn explain_heredoc(error: BuildError, uses_heredoc: bool) -> BuildError {
    match error {
        BuildError::StepFailed { image, message, .. }
            if uses_heredoc && message.contains("unknown instruction") =>
        {
            BuildError::HeredocUnsupported { image, message }
        }
        other => other,
    }
}

/// What one BuildKit progress message adds to the build's log and progress.
#[derive(Debug, Default)]
struct Progress {
    /// Vertex digest -> name, in first-seen order of steps.
    names: Vec<(String, String)>,
    log: Vec<String>,
    /// The vertex that reported an error, and the error.
    failed: Option<(String, String)>,
}

impl Progress {
    fn name_of(&self, digest: &str) -> &str {
        self.names
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, n)| n.as_str())
            .unwrap_or("a build step")
    }

    fn absorb(
        &mut self,
        status: &bollard::moby::buildkit::v1::StatusResponse,
        on_event: &mut impl FnMut(BuildEvent),
    ) {
        for vertex in &status.vertexes {
            if !self.names.iter().any(|(d, _)| *d == vertex.digest) {
                self.names
                    .push((vertex.digest.clone(), vertex.name.clone()));
            }
            if vertex.started.is_some() && vertex.completed.is_none() {
                on_event(step_event(&vertex.name));
            }
            if !vertex.error.is_empty() && self.failed.is_none() {
                self.failed = Some((vertex.name.clone(), vertex.error.clone()));
            }
        }
        for entry in &status.logs {
            let name = self.name_of(&entry.vertex).to_string();
            for line in String::from_utf8_lossy(&entry.msg).lines() {
                let line = line.trim_end();
                if line.is_empty() {
                    continue;
                }
                self.log.push(format!("{name}: {line}"));
                on_event(BuildEvent::Output(line.to_string()));
            }
        }
    }

    /// The failing step's own output lines (at most `n`).
    fn failed_output(&self, step: &str, n: usize) -> Vec<String> {
        let prefix = format!("{step}: ");
        let lines: Vec<String> = self
            .log
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let start = lines.len().saturating_sub(n);
        lines[start..].to_vec()
    }
}

/// `[build 2/4] RUN make` -> Step { 2, 4, text }; other vertices are output lines.
fn step_event(name: &str) -> BuildEvent {
    let counted = name.strip_prefix('[').and_then(|rest| {
        let (inside, _) = rest.split_once("] ")?;
        let counts = inside.rsplit(' ').next()?;
        let (index, total) = counts.split_once('/')?;
        Some(BuildEvent::Step {
            index: index.parse().ok()?,
            total: total.parse().ok()?,
            text: name.to_string(),
        })
    });
    counted.unwrap_or_else(|| BuildEvent::Output(name.to_string()))
}

/// Builds `request` as `reference` with the engine's BuildKit; returns the image ID.
pub async fn build_image(
    engine: &Engine,
    image_name: &str,
    reference: &str,
    request: BuildRequest,
    on_event: impl FnMut(BuildEvent),
) -> Result<String, BuildError> {
    if !request.secrets.is_empty() {
        return solve_with_secrets(engine, image_name, reference, request, on_event).await;
    }
    build_streamed(engine, image_name, reference, request, on_event).await
}

async fn build_streamed(
    engine: &Engine,
    image_name: &str,
    reference: &str,
    request: BuildRequest,
    mut on_event: impl FnMut(BuildEvent),
) -> Result<String, BuildError> {
    let session = format!("kindlab-{}", crate::docker::build::random_suffix());
    let args: HashMap<String, String> = request.args.clone().into_iter().collect();
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&request.dockerfile)
        .t(reference)
        .version(BuilderVersion::BuilderBuildKit)
        .session(&session)
        .buildargs(&args);
    if let Some(target) = &request.target {
        options = options.target(target);
    }
    if let Some(platform) = &request.platform {
        options = options.platform(platform);
    }
    let body = bollard::body_full(request.context_tar.into());
    let mut stream = engine.docker.build_image(options.build(), None, Some(body));
    let mut progress = Progress::default();
    let mut image_id = None;
    let failure = |progress: &Progress, message: String| {
        let (step, vertex_error) = progress
            .failed
            .clone()
            .unwrap_or_else(|| ("the build".to_string(), String::new()));
        let message = if message.is_empty() {
            vertex_error
        } else {
            message
        };
        BuildError::StepFailed {
            image: image_name.to_string(),
            log: progress.failed_output(&step, 20),
            step,
            message: message.trim().to_string(),
        }
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(BuildInfo {
                aux: Some(BuildInfoAux::BuildKit(status)),
                ..
            }) => progress.absorb(&status, &mut on_event),
            Ok(BuildInfo {
                aux: Some(BuildInfoAux::Default(id)),
                ..
            }) => image_id = id.id.or(image_id),
            Ok(_) => {}
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                if progress.names.is_empty() && is_buildkit_refusal(&error) {
                    return Err(BuildError::BuildKitRefused { message: error });
                }
                return Err(failure(&progress, error));
            }
            Err(source) => {
                return Err(BuildError::Docker(DockerError::Api {
                    action: format!("build {image_name}"),
                    source,
                }));
            }
        }
    }
    if progress.failed.is_some() {
        return Err(failure(&progress, String::new()));
    }
    match image_id {
        Some(id) => Ok(id),
        None => image_id_of(engine, image_name, reference).await,
    }
}

/// An image with secrets: the engine's BuildKit solves it over `/grpc` with a session that
/// serves the secrets' values (read by bollard from the file or variable at the moment the
/// step asks, and never stored by kindlab).
async fn solve_with_secrets(
    engine: &Engine,
    image_name: &str,
    reference: &str,
    request: BuildRequest,
    mut on_event: impl FnMut(BuildEvent),
) -> Result<String, BuildError> {
    for secret in &request.secrets {
        let missing = match &secret.source {
            SecretSource::File(path) if !path.is_file() => {
                Some(format!("its file {} does not exist", path.display()))
            }
            SecretSource::Env(var) if std::env::var_os(var).is_none() => {
                Some(format!("the environment variable {var} is not set"))
            }
            _ => None,
        };
        if let Some(why) = missing {
            return Err(BuildError::SecretMissing {
                image: image_name.to_string(),
                id: secret.id.clone(),
                why,
            });
        }
    }
    let mut options =
        ImageBuildFrontendOptions::builder().dockerfile(std::path::Path::new(&request.dockerfile));
    for (key, value) in &request.args {
        options = options.buildarg(key, value);
    }
    if let Some(target) = &request.target {
        options = options.target(target);
    }
    if let Some(platform) = request.platform.as_deref().and_then(parse_platform) {
        options = options.platforms(&platform);
    }
    for secret in &request.secrets {
        let source = match &secret.source {
            SecretSource::File(path) => bollard::grpc::build::SecretSource::File(path.clone()),
            SecretSource::Env(var) => bollard::grpc::build::SecretSource::Env(var.clone()),
        };
        options = options.set_secret(&secret.id, &source);
    }
    on_event(BuildEvent::Output(
        "BuildKit with secrets: the engine reports no step progress on this path".into(),
    ));
    let driver = bollard::grpc::driver::moby::Moby::new(&engine.docker);
    driver
        .docker_build(
            reference,
            options.build(),
            ImageBuildLoadInput::Upload(request.context_tar.into()),
            None,
            None,
        )
        .await
        .map_err(|e| {
            let (step, message) = solve_failure(&e.to_string());
            BuildError::StepFailed {
                image: image_name.to_string(),
                step,
                message,
                log: Vec::new(),
            }
        })?;
    image_id_of(engine, image_name, reference).await
}

/// The failing step and the engine's message out of a failed solve's gRPC status, e.g.
/// `... message = executor failed running [/bin/sh -c make]: exit code: 2`.
fn solve_failure(error: &str) -> (String, String) {
    let message = error
        .split_once("message = ")
        .map_or(error, |(_, m)| m)
        .trim()
        .to_string();
    let step = message
        .split_once("failed running [")
        .and_then(|(_, rest)| rest.split_once("]:"))
        .map(|(command, _)| {
            let command = command.strip_prefix("/bin/sh -c ").unwrap_or(command);
            format!("RUN {command}")
        })
        .unwrap_or_else(|| "the build".into());
    (step, message)
}

async fn image_id_of(
    engine: &Engine,
    image_name: &str,
    reference: &str,
) -> Result<String, BuildError> {
    let inspect =
        engine
            .docker
            .inspect_image(reference)
            .await
            .map_err(|_| BuildError::StepFailed {
                image: image_name.to_string(),
                step: "the build".into(),
                message: "the engine reported no image".into(),
                log: Vec::new(),
            })?;
    Ok(inspect.id.unwrap_or_default())
}

fn parse_platform(platform: &str) -> Option<ImageBuildPlatform> {
    let mut parts = platform.split('/');
    Some(ImageBuildPlatform {
        os: parts.next()?.to_string(),
        architecture: parts.next()?.to_string(),
        variant: parts.next().map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_decides_the_builder() {
        assert_eq!(
            decide_builder("1.41", "linux", None, None),
            Builder::BuildKit
        );
        assert_eq!(
            decide_builder("1.47", "linux", Some("2"), None),
            Builder::BuildKit
        );
        let classic = |api, os, ping, env| {
            matches!(decide_builder(api, os, ping, env), Builder::Classic { .. })
        };
        assert!(classic("1.38", "linux", None, None), "18.06 and older");
        assert!(classic("1.41", "windows", None, None));
        assert!(classic("1.41", "linux", Some("1"), None));
        assert!(classic("1.41", "linux", None, Some("0")));
        assert!(classic("garbage", "linux", None, None));
        assert_eq!(
            decide_builder("1.41", "linux", None, Some("1")),
            Builder::BuildKit
        );
    }

    #[test]
    fn the_ping_header_is_read() {
        let response =
            "HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nBuilder-Version: 1\r\nOstype: linux\r\n\r\nOK";
        assert_eq!(builder_version_header(response).as_deref(), Some("1"));
        assert_eq!(
            builder_version_header("HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\n\r\nOK"),
            None
        );
    }

    #[test]
    fn refusals_are_told_from_failed_steps() {
        assert!(is_buildkit_refusal("buildkit not supported by daemon"));
        assert!(is_buildkit_refusal("BuildKit is not enabled on daemon"));
        assert!(is_buildkit_refusal("invalid version 2"));
        assert!(!is_buildkit_refusal(
            "process \"/bin/sh -c make\" did not complete successfully: exit code: 2"
        ));
    }

    #[test]
    fn a_failed_solve_names_its_step() {
        let (step, message) = solve_failure(
            "Grpc response failure: status = Unknown error, message = executor failed running [/bin/sh -c echo hi && exit 3]: exit code: 3",
        );
        assert_eq!(step, "RUN echo hi && exit 3");
        assert_eq!(
            message,
            "executor failed running [/bin/sh -c echo hi && exit 3]: exit code: 3"
        );
    }

    #[test]
    fn vertex_names_become_steps() {
        assert_eq!(
            step_event("[build 2/4] RUN make"),
            BuildEvent::Step {
                index: 2,
                total: 4,
                text: "[build 2/4] RUN make".into()
            }
        );
        assert_eq!(
            step_event("[3/3] COPY . ."),
            BuildEvent::Step {
                index: 3,
                total: 3,
                text: "[3/3] COPY . .".into()
            }
        );
        assert_eq!(
            step_event("[internal] load metadata for x"),
            BuildEvent::Output("[internal] load metadata for x".into())
        );
    }
}
