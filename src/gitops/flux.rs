//! Flux's source-controller and kustomize-controller in the lab's cluster: their own
//! manifests (each module's `config/`, rendered by kustomize with the namespace and images
//! set), their images pushed to the lab's registry, applied server-side.

use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use serde_json::{Value, json};

use super::plan::ControllerSeen;
use super::{FLUX_VERSION, GitOpsError, Images, NAMESPACE};
use crate::docker::Engine;
use crate::error::Result;
use crate::k8s::{self, K8sError};
use crate::workspace::{Renderer, render_overlay};

pub const CONTROLLERS: [&str; 2] = ["source-controller", "kustomize-controller"];

/// Where the cluster pulls a controller's image from: the lab's registry.
pub fn cluster_image(registry_host: &str, controller: &str) -> String {
    format!("{registry_host}/kindlab/flux-{controller}:{FLUX_VERSION}")
}

/// name → image, as the plan wants them.
pub fn desired(registry_host: &str) -> Vec<(String, String)> {
    CONTROLLERS
        .iter()
        .map(|c| (c.to_string(), cluster_image(registry_host, c)))
        .collect()
}

fn local_image<'a>(images: &'a Images, controller: &str) -> &'a str {
    if controller == "source-controller" {
        &images.source_controller
    } else {
        &images.kustomize_controller
    }
}

pub async fn observe(client: &kube::Client) -> Result<Vec<ControllerSeen>, K8sError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let mut seen = Vec::new();
    for name in CONTROLLERS {
        let found = api.get_opt(name).await.map_err(|source| {
            K8sError::request(format!("read Deployment {NAMESPACE}/{name}"), source)
        })?;
        if let Some(d) = found {
            let image = d
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            seen.push(ControllerSeen {
                name: name.into(),
                image,
                available: matches!(k8s::judge(&d), k8s::Rollout::Complete),
            });
        }
    }
    Ok(seen)
}

/// `to` relative to the directory `from` (both absolute): kustomize refuses absolute paths.
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to_parts: Vec<Component> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part.as_os_str());
    }
    out
}

/// The kustomization that gathers both controllers' CRDs, RBAC and Deployments into
/// [`NAMESPACE`], with the images the cluster pulls. `config` is relative to where it is
/// written.
pub fn install_kustomization(config: &Path, registry_host: &str) -> String {
    let mut text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {NAMESPACE}\nresources:\n"
    );
    for c in CONTROLLERS {
        for part in ["crd", "rbac", "manager"] {
            text.push_str(&format!("- {}\n", config.join(c).join(part).display()));
        }
    }
    // A pushed fix must not wait for the health check of the broken revision it replaces
    // (2 minutes): kustomize-controller's own feature gate for that.
    text.push_str(
        "patches:\n- target:\n    kind: Deployment\n    name: kustomize-controller\n  patch: |-\n    - op: add\n      path: /spec/template/spec/containers/0/args/-\n      value: --feature-gates=CancelHealthCheckOnNewRevision=true\n",
    );
    text.push_str("images:\n");
    for c in CONTROLLERS {
        let image = cluster_image(registry_host, c);
        let (name, tag) = image.rsplit_once(':').unwrap_or((&image, FLUX_VERSION));
        text.push_str(&format!(
            "- name: fluxcd/{c}\n  newName: {name}\n  newTag: {tag}\n"
        ));
    }
    text
}

/// Flux's manifests for this lab, rendered.
pub async fn render(renderer: &Renderer, config: &Path, registry_host: &str) -> Result<Vec<Value>> {
    for c in CONTROLLERS {
        if !config.join(c).join("manager").is_dir() {
            return Err(GitOpsError::NoFluxConfig {
                what: format!("no {}", config.join(c).join("manager").display()),
            }
            .into());
        }
    }
    let dir = tempfile::tempdir().map_err(|e| GitOpsError::Render {
        message: format!("a temporary directory: {e}"),
    })?;
    let root = std::path::absolute(dir.path()).unwrap_or_else(|_| dir.path().to_path_buf());
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let text = install_kustomization(&relative(&root, &config), registry_host);
    std::fs::write(root.join("kustomization.yaml"), text).map_err(|e| GitOpsError::Render {
        message: format!("writing the kustomization: {e}"),
    })?;
    let mut docs =
        vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})];
    docs.extend(render_overlay(renderer, &root).await?);
    Ok(docs)
}

/// Tags each controller image for the lab's registry and pushes it.
pub async fn push_images(
    engine: &Engine,
    images: &Images,
    registry_host: &str,
    mut on_detail: impl FnMut(String),
) -> Result<()> {
    for c in CONTROLLERS {
        let local = local_image(images, c);
        if engine.docker.inspect_image(local).await.is_err() {
            return Err(GitOpsError::NoImage {
                image: local.to_string(),
            }
            .into());
        }
        let target = cluster_image(registry_host, c);
        let (repo, tag) = target.rsplit_once(':').unwrap_or((&target, FLUX_VERSION));
        engine.tag_image(local, repo, tag).await?;
        on_detail(format!("pushing {target}"));
        crate::docker::push_image(engine, repo, tag, |_| {}).await?;
    }
    Ok(())
}

/// Applies the controllers and waits until both run.
pub async fn install(
    client: &kube::Client,
    docs: &[Value],
    timeout: std::time::Duration,
    mut on_detail: impl FnMut(String),
) -> Result<()> {
    on_detail(format!("applying {} objects", docs.len()));
    k8s::apply_all(client, docs).await?;
    for c in CONTROLLERS {
        on_detail(format!("rollout of {NAMESPACE}/{c}"));
        k8s::wait_rollout(
            client,
            NAMESPACE,
            c,
            timeout,
            &crate::diagnose::StuckPodExplainer::default(),
            |_| {},
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kustomize_gets_a_relative_path_to_the_config() {
        assert_eq!(
            relative(Path::new("/tmp/x1"), Path::new("/var/cache/flux/config")),
            PathBuf::from("../../var/cache/flux/config")
        );
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/b/c")),
            PathBuf::from("c")
        );
    }

    #[test]
    fn the_install_kustomization_names_both_controllers_and_the_registry_images() {
        let k = install_kustomization(Path::new("../cfg"), "localhost:5001");
        assert!(k.contains("namespace: flux-system"));
        assert!(k.contains("- ../cfg/source-controller/crd\n"));
        assert!(k.contains("- ../cfg/kustomize-controller/manager\n"));
        assert!(k.contains(
            "- name: fluxcd/kustomize-controller\n  newName: localhost:5001/kindlab/flux-kustomize-controller\n  newTag: v1.9.6\n"
        ));
    }
}
