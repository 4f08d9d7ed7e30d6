//! Rendering the kustomize overlay and pointing its images at what `build` pushed.
//!
//! kindlab renders with the user's own tool (`kustomize build`, else `kubectl kustomize`) so
//! what it applies is exactly what they would get by hand, then rewrites container images in
//! the rendered objects. It never edits the user's kustomization files.

use std::collections::BTreeMap;
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

/// `kustomize` when on PATH, else `kubectl` if its embedded kustomize is v5 or newer.
pub async fn find_renderer() -> Result<Renderer, WorkspaceError> {
    if let Ok(path) = which::which("kustomize") {
        return Ok(Renderer::Kustomize(path));
    }
    let kubectl = which::which("kubectl").map_err(|_| WorkspaceError::NoRenderer)?;
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

/// Points every container whose image is one of ours at the pushed reference.
///
/// `images` maps the repository as the overlay writes it (`localhost:5001/orders-api`, or the
/// bare `orders-api` when the overlay does not rename it) to the full pushed reference. Returns
/// how many containers were changed.
pub fn set_images(objects: &mut [Value], images: &BTreeMap<String, String>) -> usize {
    let mut changed = 0;
    for object in objects.iter_mut() {
        for containers in pod_container_lists(object) {
            let Some(list) = containers.as_array_mut() else {
                continue;
            };
            for container in list {
                let Some(image) = container["image"].as_str() else {
                    continue;
                };
                if let Some(new) = images.get(repository(image)) {
                    container["image"] = Value::String(new.clone());
                    changed += 1;
                }
            }
        }
    }
    changed
}

/// The container lists of a Pod or of any workload's pod template (Deployment, StatefulSet,
/// DaemonSet, ReplicaSet, Job; CronJob one level deeper).
fn pod_container_lists(object: &mut Value) -> Vec<&mut Value> {
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let pod_spec = match kind.as_str() {
        "Pod" => object.get_mut("spec"),
        "CronJob" => object.pointer_mut("/spec/jobTemplate/spec/template/spec"),
        _ => object.pointer_mut("/spec/template/spec"),
    };
    let Some(Value::Object(spec)) = pod_spec else {
        return Vec::new();
    };
    spec.iter_mut()
        .filter(|(k, _)| *k == "containers" || *k == "initContainers")
        .map(|(_, v)| v)
        .collect()
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
    fn set_images_rewrites_only_our_containers() {
        let mut docs = parse_documents(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders-api}
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
        assert_eq!(docs.len(), 3);
        let images: BTreeMap<String, String> = [(
            "localhost:5001/orders-api".to_string(),
            "localhost:5001/orders-api:abc123".to_string(),
        )]
        .into();
        assert_eq!(set_images(&mut docs, &images), 2);
        assert_eq!(
            docs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
            "localhost:5001/orders-api:abc123"
        );
        assert_eq!(
            docs[0]["spec"]["template"]["spec"]["initContainers"][0]["image"],
            "busybox:1.36"
        );
        assert_eq!(
            docs[1].pointer("/spec/jobTemplate/spec/template/spec/containers/0/image"),
            Some(&Value::String("localhost:5001/orders-api:abc123".into()))
        );
    }
}
