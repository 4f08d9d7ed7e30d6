//! `kindlab doctor`: can this machine run `kindlab up`? One line per check, each problem
//! with its fix.

use std::path::Path;

use serde::Serialize;

use crate::cluster::Kind;
use crate::docker::Engine;
use crate::registry::{PortHolder, find_port_holder};
use crate::workspace::{RegistrySettings, find_renderer};

/// Free space below this on the engine's disk makes `up` likely to fail mid-way (a kind
/// node image alone is about 1 GB unpacked, plus the cluster's images).
const MIN_FREE_BYTES: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: Option<String>) -> Check {
        Check {
            name,
            ok: false,
            detail: detail.into(),
            fix,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// Runs every check; never fails itself — a failure is a failed check.
pub async fn run(registry: &RegistrySettings) -> Report {
    let mut checks = Vec::new();
    let engine = match Engine::connect().await {
        Ok(engine) => {
            let version = engine
                .docker
                .version()
                .await
                .ok()
                .and_then(|v| v.version)
                .unwrap_or_else(|| "unknown version".into());
            checks.push(Check::pass(
                "docker",
                format!(
                    "engine {version} at {} ({})",
                    engine.host.host, engine.host.origin
                ),
            ));
            Some(engine)
        }
        Err(e) => {
            let detail = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            checks.push(Check::fail("docker", detail, e.fix()));
            None
        }
    };

    checks.push(match Kind::find() {
        Ok(kind) => match kind.version().await {
            Ok(v) => Check::pass("kind", format!("{v} at {}", kind.path.display())),
            Err(e) => Check::fail("kind", e.to_string(), e.fix()),
        },
        Err(e) => Check::fail("kind", e.to_string(), e.fix()),
    });

    checks.push(match find_renderer().await {
        Ok(r) => Check::pass("kustomize", r.describe()),
        Err(e) => Check::fail("kustomize", e.to_string(), e.fix()),
    });

    if let Some(engine) = &engine {
        checks.push(port_check(engine, registry).await);
        checks.push(disk_check(engine).await);
    }

    let ok = checks.iter().all(|c| c.ok);
    Report { ok, checks }
}

async fn port_check(engine: &Engine, registry: &RegistrySettings) -> Check {
    let port = registry.port;
    match find_port_holder(engine, port, Some(&registry.name)).await {
        Ok(None) => Check::pass(
            "registry port",
            format!("127.0.0.1:{port} is free or held by {}", registry.name),
        ),
        Ok(Some(holder)) => {
            let fix = match &holder {
                PortHolder::Container { name, .. } => {
                    format!("stop it (`docker stop {name}`) or set registry.port in kindlab.yaml")
                }
                _ => "free the port or set registry.port in kindlab.yaml".to_string(),
            };
            Check::fail(
                "registry port",
                format!("127.0.0.1:{port} is in use by {holder}"),
                Some(fix),
            )
        }
        Err(e) => Check::fail("registry port", e.to_string(), e.fix()),
    }
}

async fn disk_check(engine: &Engine) -> Check {
    let root = engine
        .docker
        .info()
        .await
        .ok()
        .and_then(|i| i.docker_root_dir)
        .unwrap_or_else(|| "/var/lib/docker".into());
    let path = Path::new(&root);
    if !path.exists() {
        // Docker Desktop, Colima: the engine's disk is inside a VM kindlab cannot measure.
        return Check::pass(
            "disk",
            format!("engine storage {root} is not on this machine"),
        );
    }
    match rustix::fs::statvfs(path) {
        Ok(st) => {
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            let gib = free as f64 / (1024.0 * 1024.0 * 1024.0);
            if free >= MIN_FREE_BYTES {
                Check::pass("disk", format!("{gib:.1} GiB free for {root}"))
            } else {
                Check::fail(
                    "disk",
                    format!("only {gib:.1} GiB free for {root}; kindlab needs about 5 GiB"),
                    Some(
                        "free space: `docker system prune` removes unused images and containers"
                            .into(),
                    ),
                )
            }
        }
        Err(e) => Check::fail("disk", format!("cannot measure {root}: {e}"), None),
    }
}
