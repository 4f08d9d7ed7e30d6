//! Rendering the kustomize overlay, and reading the images it asks for.
//!
//! kindlab renders with the user's own tool (`kustomize build`, else `kubectl kustomize`) and
//! applies what it prints unchanged, so a hand `kubectl apply -k` applies the same objects.
//! The pushed tags get into the overlay through its kustomization (`kustomization.rs`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::WorkspaceError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renderer {
    Kustomize(PathBuf),
    Kubectl(PathBuf),
}

impl Renderer {
    pub fn describe(&self) -> String {
        match self {
            Renderer::Kustomize(p) => format!("kustomize ({})", p.display()),
            Renderer::Kubectl(p) => format!("kubectl kustomize ({})", p.display()),
        }
    }
}

/// `kustomize` when on PATH, else `kubectl`, not yet checked.
fn renderer_on_path() -> Result<Renderer, WorkspaceError> {
    if let Ok(path) = which::which("kustomize") {
        return Ok(Renderer::Kustomize(path));
    }
    which::which("kubectl")
        .map(Renderer::Kubectl)
        .map_err(|_| WorkspaceError::NoRenderer)
}

/// `kustomize` when on PATH, else `kubectl` if its embedded kustomize is v5 or newer.
pub async fn find_renderer() -> Result<Renderer, WorkspaceError> {
    let kubectl = match renderer_on_path()? {
        Renderer::Kubectl(kubectl) => kubectl,
        kustomize => return Ok(kustomize),
    };
    let out = tokio::process::Command::new(&kubectl)
        .args(["version", "--client", "-o", "json"])
        .output()
        .await
        .map_err(|source| WorkspaceError::Spawn {
            program: kubectl.display().to_string(),
            source,
        })?;
    let version = serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v["kustomizeVersion"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    if kustomize_major(&version).is_some_and(|m| m >= 5) {
        Ok(Renderer::Kubectl(kubectl))
    } else {
        Err(WorkspaceError::OldKustomize { version })
    }
}

fn kustomize_major(version: &str) -> Option<u32> {
    version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
}

/// Finds the renderer and renders `overlay` with it. `kubectl`'s version check runs beside
/// its render rather than before it, which takes one process start (~130 ms) off `status`;
/// an old kubectl's error still wins over whatever it printed.
pub async fn find_renderer_and_render(overlay: &Path) -> Result<Vec<Value>, WorkspaceError> {
    let candidate = renderer_on_path()?;
    let (checked, docs) = tokio::join!(find_renderer(), render_overlay(&candidate, overlay));
    checked?;
    docs
}

/// Runs the renderer and parses every document it prints.
pub async fn render_overlay(
    renderer: &Renderer,
    overlay: &Path,
) -> Result<Vec<Value>, WorkspaceError> {
    let mut cmd = match renderer {
        Renderer::Kustomize(p) => {
            let mut c = tokio::process::Command::new(p);
            c.arg("build");
            c
        }
        Renderer::Kubectl(p) => {
            let mut c = tokio::process::Command::new(p);
            c.arg("kustomize");
            c
        }
    };
    let out = cmd
        .arg(overlay)
        .output()
        .await
        .map_err(|source| WorkspaceError::Spawn {
            program: renderer.describe(),
            source,
        })?;
    if !out.status.success() {
        return Err(WorkspaceError::Render {
            overlay: overlay.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    parse_documents(&String::from_utf8_lossy(&out.stdout))
}

/// Multi-document YAML to JSON values, skipping empty documents.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, WorkspaceError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|source| WorkspaceError::RenderedYaml { source })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// One container of a rendered object, and the image it asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerImage {
    /// `Deployment dev/orders-api`.
    pub object: String,
    pub container: String,
    pub image: String,
}

/// Every container (and init container) image of the rendered objects: Pods and any
/// workload's pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job; CronJob one
/// level deeper).
pub fn container_images(objects: &[Value]) -> Vec<ContainerImage> {
    let mut found = Vec::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let pod_spec = match kind {
            "Pod" => object.get("spec"),
            "CronJob" => object.pointer("/spec/jobTemplate/spec/template/spec"),
            _ => object.pointer("/spec/template/spec"),
        };
        let Some(spec) = pod_spec else {
            continue;
        };
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let described = match object["metadata"]["namespace"].as_str() {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        };
        for list in ["initContainers", "containers"] {
            for container in spec[list].as_array().into_iter().flatten() {
                if let Some(image) = container["image"].as_str() {
                    found.push(ContainerImage {
                        object: described.clone(),
                        container: container["name"].as_str().unwrap_or_default().to_string(),
                        image: image.to_string(),
                    });
                }
            }
        }
    }
    found
}

/// `host:5001/name:tag` -> `host:5001/name`; digests too. A colon before the last slash is a
/// port, not a tag.
pub fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_strips_tag_and_digest_but_not_port() {
        assert_eq!(
            repository("localhost:5001/orders-api:dev"),
            "localhost:5001/orders-api"
        );
        assert_eq!(
            repository("localhost:5001/orders-api"),
            "localhost:5001/orders-api"
        );
        assert_eq!(repository("orders-api:1"), "orders-api");
        assert_eq!(repository("busybox@sha256:abc"), "busybox");
    }

    #[test]
    fn kustomize_versions() {
        assert_eq!(kustomize_major("v5.5.0"), Some(5));
        assert_eq!(kustomize_major("v4.5.7"), Some(4));
        assert_eq!(kustomize_major("unknown"), None);
    }

    #[test]
    fn container_images_of_workloads_and_cronjobs() {
        let docs = parse_documents(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders-api, namespace: dev}
spec:
  template:
    spec:
      initContainers:
        - {name: init, image: busybox:1.36}
      containers:
        - {name: api, image: "localhost:5001/orders-api:dev"}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - {name: job, image: "localhost:5001/orders-api:dev"}
---
apiVersion: v1
kind: Service
metadata: {name: orders-api}
"#,
        )
        .unwrap();
        let images = container_images(&docs);
        let found: Vec<(&str, &str, &str)> = images
            .iter()
            .map(|c| (c.object.as_str(), c.container.as_str(), c.image.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("Deployment dev/orders-api", "init", "busybox:1.36"),
                (
                    "Deployment dev/orders-api",
                    "api",
                    "localhost:5001/orders-api:dev"
                ),
                ("CronJob nightly", "job", "localhost:5001/orders-api:dev"),
            ]
        );
    }
}

const NAMESPACE_OVERLAY: &str = include_str!("../../templates/attendee-overlay.yaml");

/// The overlay that deploys `overlay` into `namespace`: a sibling directory named after the
/// namespace (`deploy/overlays/att01` beside `deploy/overlays/dev`), written when missing and
/// left as it is when present (it may hold the attendee's own fix). Returns its directory.
pub fn namespace_overlay(overlay: &Path, namespace: &str) -> Result<PathBuf, WorkspaceError> {
    let (Some(parent), Some(base)) = (overlay.parent(), overlay.file_name()) else {
        return Err(WorkspaceError::NoKustomization {
            overlay: overlay.to_path_buf(),
        });
    };
    let dir = parent.join(namespace);
    if let Some(file) = crate::workspace::kustomization_file(&dir) {
        // Reused only when it deploys into that namespace: `deploy/overlays/prod` may be
        // the workspace's production overlay, not an attendee's.
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let into_namespace = text
            .lines()
            .any(|l| l.trim() == format!("namespace: {namespace}"));
        if into_namespace {
            return Ok(dir);
        }
        return Err(WorkspaceError::Render {
            overlay: dir,
            stderr: format!(
                "it exists and does not deploy into namespace {namespace}, so it cannot be that namespace's overlay"
            ),
        });
    }
    let base = base.to_string_lossy();
    let text = NAMESPACE_OVERLAY
        .replace("{{base}}", &base)
        .replace("{{namespace}}", namespace);
    std::fs::create_dir_all(&dir).map_err(|source| WorkspaceError::Write {
        path: dir.clone(),
        source,
    })?;
    crate::workspace::write_atomic(&dir.join("kustomization.yaml"), text.as_bytes())?;
    Ok(dir)
}

#[cfg(test)]
mod namespace_overlay_tests {
    use super::*;

    #[test]
    fn a_namespace_overlay_is_written_once_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("deploy/overlays/dev");
        std::fs::create_dir_all(&dev).unwrap();
        let made = namespace_overlay(&dev, "att01").unwrap();
        assert_eq!(made, dir.path().join("deploy/overlays/att01"));
        let text = std::fs::read_to_string(made.join("kustomization.yaml")).unwrap();
        assert!(text.contains("namespace: att01\n"), "{text}");
        assert!(text.contains("  - ../dev\n"), "{text}");
        let edited = format!("{text}patches: []\n");
        std::fs::write(made.join("kustomization.yaml"), &edited).unwrap();
        namespace_overlay(&dev, "att01").unwrap();
        assert_eq!(
            std::fs::read_to_string(made.join("kustomization.yaml")).unwrap(),
            edited,
            "the attendee's edit stays"
        );
        let prod = dir.path().join("deploy/overlays/prod");
        std::fs::create_dir_all(&prod).unwrap();
        std::fs::write(prod.join("kustomization.yaml"), "namespace: production\n").unwrap();
        assert!(
            namespace_overlay(&dev, "prod").is_err(),
            "another overlay of that name is not taken for the namespace's"
        );
    }
}
