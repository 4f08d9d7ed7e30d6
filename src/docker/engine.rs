//! Connecting to the Docker engine the way the docker CLI does.
//!
//! Order: `DOCKER_HOST`; else the current context (`DOCKER_CONTEXT`, else `currentContext` in
//! `$DOCKER_CONFIG/config.json`), whose endpoint is in `contexts/meta/<sha256(name)>/meta.json`
//! (Docker Desktop, Colima and OrbStack users live here); else the default socket. bollard
//! does not read contexts itself, so this module does.

use std::path::{Path, PathBuf};

use bollard::Docker;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::exit;

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Long enough for an image push or a build step that prints nothing for a while.
const REQUEST_TIMEOUT_SECS: u64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker engine at {host}")]
    Unreachable {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("Docker host {host} (from {origin}) uses a scheme kindlab does not support")]
    UnsupportedHost { host: String, origin: String },
    #[error("cannot read Docker context {context:?} from {path}")]
    Context {
        context: String,
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Docker engine request failed: {action}")]
    Api {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
}

impl DockerError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            DockerError::Unreachable { .. } => {
                "start Docker (Docker Desktop, Colima, or `sudo systemctl start docker`), or point DOCKER_HOST at a running engine".into()
            }
            DockerError::UnsupportedHost { .. } => {
                "use a unix:// or tcp:// Docker host (for ssh://, forward the socket: `ssh -L /tmp/docker.sock:/var/run/docker.sock HOST` and set DOCKER_HOST=unix:///tmp/docker.sock)".into()
            }
            DockerError::Context { context, .. } => {
                format!("check the context with `docker context inspect {context}`, or set DOCKER_HOST")
            }
            DockerError::Api { .. } => return None,
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            DockerError::Api { .. } => exit::FAILED,
            _ => exit::MISSING_PREREQUISITE,
        }
    }

    /// Wraps a bollard error with what kindlab was doing.
    pub fn api(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
        let action = action.into();
        move |source| DockerError::Api { action, source }
    }
}

/// Where the engine is, and which setting said so (shown by `doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerHost {
    pub host: String,
    pub origin: String,
}

/// A connected engine, API version negotiated.
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    pub host: DockerHost,
}

/// Where the engine keeps images and containers (`docker info`'s DockerRootDir).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineStorage {
    pub root: PathBuf,
}

impl EngineStorage {
    /// From the engine's info (Docker's default root when the engine does not say).
    pub fn from_info(info: Option<&bollard::models::SystemInfo>) -> EngineStorage {
        let root = info
            .and_then(|i| i.docker_root_dir.clone())
            .unwrap_or_else(|| "/var/lib/docker".into());
        EngineStorage { root: root.into() }
    }

    /// On this machine, not inside Docker Desktop's or Colima's VM: only then can kindlab
    /// measure it, and only then do this kernel's limits apply to the engine.
    pub fn is_local(&self) -> bool {
        self.root.exists()
    }

    /// Bytes free for the engine; `None` when its storage is not on this machine.
    pub fn free(&self) -> Option<rustix::io::Result<u64>> {
        self.is_local().then(|| {
            rustix::fs::statvfs(&self.root).map(|st| st.f_bavail.saturating_mul(st.f_frsize))
        })
    }
}

impl Engine {
    /// Where the engine keeps its storage, asked once.
    pub async fn storage(&self) -> EngineStorage {
        EngineStorage::from_info(self.docker.info().await.ok().as_ref())
    }

    /// Tags the image `source` (an ID or a reference) as `repo:tag`.
    pub async fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), DockerError> {
        let options = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker
            .tag_image(source, Some(options))
            .await
            .map_err(DockerError::api(format!("tag {source} as {repo}:{tag}")))
    }

    /// The container named `name` as the engine describes it, or None when there is none.
    pub async fn inspect_container(
        &self,
        name: &str,
    ) -> Result<Option<bollard::models::ContainerInspectResponse>, DockerError> {
        match self.docker.inspect_container(name, None).await {
            Ok(inspect) => Ok(Some(inspect)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(source) => Err(DockerError::Api {
                action: format!("inspect container {name}"),
                source,
            }),
        }
    }

    /// Connects and checks the engine answers, negotiating the API version down to what an
    /// older engine speaks (Debian's 20.10 speaks 1.41).
    pub async fn connect() -> Result<Engine, DockerError> {
        let host = resolve_host(&DockerEnv::from_process())?;
        let docker = connect_to(&host)?;
        let unreachable = |source| DockerError::Unreachable {
            host: host.host.clone(),
            source,
        };
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        tracing::debug!(host = %host.host, origin = %host.origin, "connected to Docker");
        Ok(Engine { docker, host })
    }
}

fn connect_to(host: &DockerHost) -> Result<Docker, DockerError> {
    let h = host.host.as_str();
    let unsupported = || DockerError::UnsupportedHost {
        host: host.host.clone(),
        origin: host.origin.clone(),
    };
    let docker = if h.starts_with("unix://") {
        Docker::connect_with_unix(h, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else if h.starts_with("tcp://") || h.starts_with("http://") {
        Docker::connect_with_http(h, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else {
        return Err(unsupported());
    };
    docker.map_err(|source| DockerError::Unreachable {
        host: host.host.clone(),
        source,
    })
}

/// The environment the resolution reads, separated from the process so tests can vary it.
#[derive(Debug, Clone, Default)]
pub struct DockerEnv {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub config_dir: Option<PathBuf>,
}

impl DockerEnv {
    pub fn from_process() -> DockerEnv {
        let non_empty = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        DockerEnv {
            docker_host: non_empty("DOCKER_HOST"),
            docker_context: non_empty("DOCKER_CONTEXT"),
            config_dir: non_empty("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| std::env::home_dir().map(|h| h.join(".docker"))),
        }
    }
}

/// Decides which engine to talk to, as the docker CLI would.
pub fn resolve_host(env: &DockerEnv) -> Result<DockerHost, DockerError> {
    if let Some(host) = &env.docker_host {
        return Ok(DockerHost {
            host: host.clone(),
            origin: "DOCKER_HOST".into(),
        });
    }
    let default = || DockerHost {
        host: DEFAULT_HOST.into(),
        origin: "default socket".into(),
    };
    let Some(config_dir) = &env.config_dir else {
        return Ok(default());
    };
    let (context, origin) = match &env.docker_context {
        Some(c) => (c.clone(), "DOCKER_CONTEXT".to_string()),
        None => match current_context(config_dir) {
            Some(c) => (c, format!("{}", config_dir.join("config.json").display())),
            None => return Ok(default()),
        },
    };
    if context == "default" {
        return Ok(default());
    }
    let host = context_endpoint(config_dir, &context)?;
    Ok(DockerHost {
        host,
        origin: format!("context {context:?} ({origin})"),
    })
}

fn current_context(config_dir: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "currentContext")]
        current_context: Option<String>,
    }
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let config: Config = serde_json::from_str(&text).ok()?;
    config.current_context.filter(|c| !c.is_empty())
}

fn context_endpoint(config_dir: &Path, context: &str) -> Result<String, DockerError> {
    #[derive(Deserialize)]
    struct Meta {
        #[serde(rename = "Endpoints")]
        endpoints: Endpoints,
    }
    #[derive(Deserialize)]
    struct Endpoints {
        docker: Endpoint,
    }
    #[derive(Deserialize)]
    struct Endpoint {
        #[serde(rename = "Host")]
        host: String,
    }
    // The docker CLI stores each context under the hex SHA-256 of its name.
    let digest = Sha256::digest(context.as_bytes());
    let dir = hex::encode(digest);
    let path = config_dir
        .join("contexts")
        .join("meta")
        .join(dir)
        .join("meta.json");
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| DockerError::Context {
        context: context.to_string(),
        path: path.clone(),
        source,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| fail(Box::new(e)))?;
    let meta: Meta = serde_json::from_str(&text).map_err(|e| fail(Box::new(e)))?;
    Ok(meta.endpoints.docker.host)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A docker config dir whose config.json holds `config`.
    fn config_dir(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        dir
    }

    fn write_context(dir: &Path, name: &str, host: &str) {
        let digest = Sha256::digest(name.as_bytes());
        let hex = hex::encode(digest);
        let meta = dir.join("contexts/meta").join(hex);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(r#"{{"Name":"{name}","Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
        )
        .unwrap();
    }

    #[test]
    fn docker_host_wins_over_context() {
        let env = DockerEnv {
            docker_host: Some("tcp://10.0.0.1:2375".into()),
            docker_context: Some("colima".into()),
            config_dir: None,
        };
        assert_eq!(resolve_host(&env).unwrap().host, "tcp://10.0.0.1:2375");
    }

    #[test]
    fn current_context_from_config_json() {
        let dir = config_dir(r#"{"currentContext":"colima"}"#);
        write_context(
            dir.path(),
            "colima",
            "unix:///home/me/.colima/default/docker.sock",
        );
        let env = DockerEnv {
            config_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let host = resolve_host(&env).unwrap();
        assert_eq!(host.host, "unix:///home/me/.colima/default/docker.sock");
        assert!(host.origin.contains("colima"), "{}", host.origin);
    }

    #[test]
    fn docker_context_env_overrides_config_json() {
        let dir = config_dir(r#"{"currentContext":"colima"}"#);
        write_context(
            dir.path(),
            "orbstack",
            "unix:///home/me/.orbstack/run/docker.sock",
        );
        let env = DockerEnv {
            docker_context: Some("orbstack".into()),
            config_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        assert_eq!(
            resolve_host(&env).unwrap().host,
            "unix:///home/me/.orbstack/run/docker.sock"
        );
    }

    #[test]
    fn default_context_and_no_config_use_the_default_socket() {
        let dir = tempfile::tempdir().unwrap();
        let env = DockerEnv {
            config_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        assert_eq!(resolve_host(&env).unwrap().host, DEFAULT_HOST);
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"default"}"#,
        )
        .unwrap();
        assert_eq!(resolve_host(&env).unwrap().host, DEFAULT_HOST);
    }

    #[test]
    fn missing_context_metadata_is_an_error_naming_the_context() {
        let dir = config_dir(r#"{"currentContext":"gone"}"#);
        let env = DockerEnv {
            config_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let err = resolve_host(&env).unwrap_err();
        assert!(err.to_string().contains("\"gone\""), "{err}");
        assert!(err.fix().unwrap().contains("docker context inspect gone"));
    }
}

crate::error::failure_from_inherent!(DockerError);
