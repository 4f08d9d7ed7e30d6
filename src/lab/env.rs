//! What every lab command shares: the workspace, the cluster, the registry, and the
//! workspace's desired state in the lab's namespace, applied, compared and restored.
//!
//! The desired state is the overlay as rendered (`desired::desired_objects`), moved into the
//! lab's namespace when that is not the overlay's own (one namespace per attendee on a shared
//! cluster). Applying it is the GitOps fix; comparing the live objects with it (server-side,
//! as dry runs) is how "fixed" and `status` know nothing the lab set is left.

use serde_json::Value;

use super::session::Changes;
use super::spec::LabError;
use crate::cluster::Connection;
use crate::error::Result;
use crate::interrupt::Interrupt;
use crate::k8s::object::{self, ObjectKey};
use crate::k8s::{self, ClusterAccess, FIELD_MANAGER};
use crate::registry::RegistryClient;
use crate::ui::Ui;
use crate::workspace::{Renderer, Workspace, container_images, repository};

/// The field manager of everything a lab's break sets: reset and the fix release exactly
/// these fields.
pub const LAB_MANAGER: &str = "kindlab-lab";
/// Label on objects a lab creates.
pub const LAB_LABEL: &str = "dev.kindlab.lab";

pub struct LabEnv<'a> {
    pub workspace: &'a Workspace,
    pub client: kube::Client,
    pub renderer: Renderer,
    /// Where the workspace's images are (`localhost:5001`).
    pub registry_host: String,
    /// The kubeconfig context (`kind-kindlab`).
    pub context: String,
    /// How the cluster was reached (`--kubeconfig`, `--context`; neither: the kind cluster),
    /// kept in a session so its later commands reach it the same way.
    pub access: ClusterAccess,
    /// The kubeconfig context's namespace (an attendee's own), the default for `-n`.
    pub default_namespace: Option<String>,
    pub ui: &'a Ui,
    pub interrupt: Interrupt,
}

impl<'a> LabEnv<'a> {
    /// Everything a lab command needs, on `connection`'s cluster; `registry` is the host the
    /// cluster pulls the workspace's images from (default: the workspace's own registry).
    pub async fn open(
        workspace: &'a Workspace,
        connection: Connection,
        registry: Option<String>,
        ui: &'a Ui,
        interrupt: Interrupt,
    ) -> Result<LabEnv<'a>> {
        Ok(LabEnv {
            workspace,
            client: connection.client,
            renderer: crate::workspace::find_renderer().await?,
            registry_host: registry
                .unwrap_or_else(|| crate::registry::local_host(workspace.registry.port)),
            context: connection.context,
            access: connection.access,
            default_namespace: connection.namespace,
            ui,
            interrupt,
        })
    }
}

impl LabEnv<'_> {
    /// The overlay, relative to the workspace (`deploy/overlays/dev`).
    pub fn overlay(&self) -> String {
        self.workspace
            .deploy
            .as_ref()
            .map(|d| {
                d.overlay
                    .strip_prefix(&self.workspace.root)
                    .unwrap_or(&d.overlay)
                    .display()
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// The overlay of `namespace` when one was written for it (`overlay_for`), else the
    /// workspace's: what pointers tell a person to diff or apply.
    fn overlay_in(&self, namespace: &str) -> String {
        let own = self.workspace.deploy.as_ref().and_then(|d| {
            let dir = d.overlay.parent()?.join(namespace);
            crate::workspace::kustomization_file(&dir)?;
            Some(
                dir.strip_prefix(&self.workspace.root)
                    .unwrap_or(&dir)
                    .display()
                    .to_string(),
            )
        });
        own.unwrap_or_else(|| self.overlay())
    }

    /// The overlay a person applies by hand for `namespace` (relative to the workspace): the
    /// workspace's own when `namespace` is the overlay's, else a sibling overlay that moves
    /// it into `namespace` (written when missing), so a lab text's `kubectl apply -k` fixes
    /// the attendee's namespace and no other.
    pub async fn overlay_for(&self, namespace: &str) -> Result<String> {
        let Some(deploy) = &self.workspace.deploy else {
            return Ok(self.overlay());
        };
        let rendered = self.desired_everywhere().await?;
        let home = rendered
            .iter()
            .find(|d| d["kind"] == "Deployment")
            .and_then(|d| d["metadata"]["namespace"].as_str());
        if home.is_none_or(|home| home == namespace) {
            return Ok(self.overlay());
        }
        let dir = crate::workspace::namespace_overlay(&deploy.overlay, namespace)?;
        Ok(dir
            .strip_prefix(&self.workspace.root)
            .unwrap_or(&dir)
            .display()
            .to_string())
    }

    /// The workspace's objects as they must be in `namespace`.
    pub async fn desired(&self, namespace: &str) -> Result<Vec<Value>> {
        let docs = in_namespace(self.desired_everywhere().await?, namespace);
        Ok(match self.namespace_is_given(namespace).await? {
            true => without_namespace_object(docs),
            false => docs,
        })
    }

    /// The workspace's objects as the overlay renders them (in its own namespaces).
    pub async fn desired_everywhere(&self) -> Result<Vec<Value>> {
        let references = crate::desired::image_references(self.workspace, &self.registry_host)?;
        Ok(crate::desired::desired_objects(
            self.workspace,
            &self.renderer,
            &self.registry_host,
            &references,
        )
        .await?)
    }

    /// What labs left in `namespace`, read from the cluster (no session to say it: the
    /// attendee's kindlab runs on another machine): every workspace object in which the
    /// labs' field manager still holds fields.
    pub async fn observed_changes(&self, namespace: &str) -> Result<Changes> {
        let mut changes = Changes::default();
        for doc in self.desired(namespace).await? {
            let Some(key) = ObjectKey::of(&doc) else {
                continue;
            };
            let Some(live) = object::get(&self.client, &key).await? else {
                continue;
            };
            let touched_by_a_lab = live
                .metadata
                .managed_fields
                .iter()
                .flatten()
                .any(|m| m.manager.as_deref() == Some(LAB_MANAGER));
            if touched_by_a_lab {
                changes.patched(key);
            }
        }
        Ok(changes)
    }

    /// The namespace exists, or is not ours to see: either way a lab neither creates nor
    /// changes it. An attendee on a shared cluster may not patch its own Namespace (its
    /// Pod Security labels are the instructor's), so the labs never ask to.
    async fn namespace_is_given(&self, namespace: &str) -> Result<bool> {
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(self.client.clone());
        match api.get_opt(namespace).await {
            Ok(found) => Ok(found.is_some()),
            Err(kube::Error::Api(status)) if matches!(status.code, 401 | 403) => Ok(true),
            Err(source) => {
                Err(k8s::K8sError::request(format!("read namespace {namespace}"), source).into())
            }
        }
    }

    /// Refuses when a GitOps controller (Argo CD, Flux) manages an object the workspace
    /// declares in `namespace`: applying over it would fight the controller.
    pub async fn refuse_gitops(&self, namespace: &str) -> Result<()> {
        let docs = self.desired(namespace).await?;
        Ok(crate::gitops::refuse_managed(&self.client, &docs).await?)
    }

    /// Applies the workspace's desired state in `namespace` (kindlab's field manager, taking
    /// every field back), then releases what the lab's manager still holds and deletes what
    /// the lab created. With `verify_images`, refuses first when an image the workspace names
    /// is not in the registry (a fix that applies a missing image fixes nothing).
    pub async fn restore(
        &self,
        namespace: &str,
        changes: &Changes,
        verify_images: bool,
    ) -> Result<Vec<String>> {
        let docs = self.desired(namespace).await?;
        if verify_images {
            self.verify_images(&docs).await?;
        }
        let applied = k8s::apply_all(&self.client, &docs).await?;
        let mut done: Vec<String> = applied
            .iter()
            .filter(|a| a.outcome != k8s::ApplyOutcome::Unchanged)
            .map(|a| {
                let verb = match a.outcome {
                    k8s::ApplyOutcome::Created => "created",
                    _ => "restored",
                };
                match &a.namespace {
                    Some(ns) => format!("{verb} {} {ns}/{}", a.kind, a.name),
                    None => format!("{verb} {} {}", a.kind, a.name),
                }
            })
            .collect();
        for key in released_keys(&docs, changes) {
            // Fields only the lab set (none of the workspace's) go away.
            let released = object::apply(
                &self.client,
                &key,
                &key.identity(),
                LAB_MANAGER,
                true,
                false,
            )
            .await;
            match released {
                Ok(_) => {}
                Err(k8s::K8sError::Apply { code: 404, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for key in &changes.created {
            if object::delete(&self.client, key).await? {
                done.push(format!("deleted {}", key.describe()));
            }
        }
        Ok(done)
    }

    /// The ways the live objects differ from the workspace in `namespace`, as pointers for
    /// people (empty: they match). Compared server-side: a dry-run apply of the workspace
    /// must change nothing, and a dry-run release of the lab's fields must change nothing.
    pub async fn differences(&self, namespace: &str, changes: &Changes) -> Result<Vec<String>> {
        let docs = self.desired(namespace).await?;
        self.differences_from(&docs, namespace, changes).await
    }

    /// As `differences`, against desired objects already rendered (a wait that checks again
    /// and again renders the workspace once).
    pub async fn differences_from(
        &self,
        docs: &[Value],
        namespace: &str,
        changes: &Changes,
    ) -> Result<Vec<String>> {
        let overlay = self.overlay_in(namespace);
        let mut differences = Vec::new();
        for doc in docs {
            let Some(key) = ObjectKey::of(doc) else {
                continue;
            };
            let Some(live) = object::get(&self.client, &key).await? else {
                differences.push(format!(
                    "{} is missing; the workspace declares it ({overlay})",
                    key.describe()
                ));
                continue;
            };
            let live = serde_json::to_value(&live).unwrap_or_default();
            let body = k8s::prepare(doc, key.namespace.as_deref());
            let applied =
                object::apply(&self.client, &key, &body, FIELD_MANAGER, true, true).await?;
            let same = |other: &kube::api::DynamicObject| {
                object::content(&serde_json::to_value(other).unwrap_or_default())
                    == object::content(&live)
            };
            // Releasing the lab's fields must change nothing. The server refusing the release
            // (422) means the lab alone still holds a required field, such as the image.
            let lab_fields_left = if changes.patched.contains(&key) {
                match object::apply(&self.client, &key, &key.identity(), LAB_MANAGER, true, true)
                    .await
                {
                    Ok(released) => !same(&released),
                    Err(k8s::K8sError::Apply { code: 422, .. }) => true,
                    Err(e) => return Err(e.into()),
                }
            } else {
                false
            };
            if !same(&applied) || lab_fields_left {
                differences.push(format!(
                    "{} differs from the workspace (`kubectl diff -k {overlay}` shows how)",
                    key.describe()
                ));
            }
        }
        for key in &changes.created {
            if object::get(&self.client, key).await?.is_some() {
                differences.push(format!(
                    "{} is still there; the workspace does not declare it",
                    key.describe()
                ));
            }
        }
        Ok(differences)
    }

    /// Every image of ours the documents name must be in the registry.
    pub async fn verify_images(&self, docs: &[Value]) -> Result<()> {
        let registry = RegistryClient::new(&self.registry_host);
        let prefix = format!("{}/", self.registry_host);
        for used in container_images(docs) {
            let Some(path) = repository(&used.image).strip_prefix(&prefix) else {
                continue;
            };
            // `name:tag@digest` pulls by digest; `name:tag` by tag.
            let rest = &used.image[prefix.len() + path.len()..];
            let tag_or_digest = match rest.split_once('@') {
                Some((_, digest)) => digest,
                None => rest.trim_start_matches(':'),
            };
            if tag_or_digest.is_empty() {
                continue;
            }
            let found = registry.manifest_digest(path, tag_or_digest).await?;
            if found.is_none() {
                return Err(LabError::CannotApply {
                    action: format!("apply the workspace ({})", self.overlay()),
                    why: format!(
                        "it names {} for {}, which the registry does not have (`kindlab check` lists what is missing)",
                        used.image, used.object
                    ),
                }
                .into());
            }
        }
        Ok(())
    }
}

/// The objects whose lab-set fields must be released: every workspace object the lab
/// patched. Objects the lab never touched keep their field managers as they are.
fn released_keys(docs: &[Value], changes: &Changes) -> Vec<ObjectKey> {
    docs.iter()
        .filter_map(ObjectKey::of)
        .filter(|k| changes.patched.contains(k))
        .collect()
}

/// `docs` without their Namespace object.
fn without_namespace_object(docs: Vec<Value>) -> Vec<Value> {
    docs.into_iter()
        .filter(|d| !(d["apiVersion"] == "v1" && d["kind"] == "Namespace"))
        .collect()
}

/// The rendered objects moved into `namespace`: namespaced objects of the overlay's own
/// namespace go to `namespace`, its Namespace object becomes `namespace`'s. Objects in other
/// namespaces and cluster-scoped ones are left out: a lab only restores its own namespace.
pub fn in_namespace(docs: Vec<Value>, namespace: &str) -> Vec<Value> {
    let home = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| d["metadata"]["namespace"].as_str())
        .map(str::to_string);
    let mut out = Vec::new();
    let mut has_namespace = false;
    for mut doc in docs {
        if doc["apiVersion"] == "v1" && doc["kind"] == "Namespace" {
            let name = doc["metadata"]["name"].as_str().map(str::to_string);
            if name.as_deref() == Some(namespace) || name == home {
                doc["metadata"]["name"] = Value::String(namespace.to_string());
                has_namespace = true;
                out.push(doc);
            }
            continue;
        }
        let ns = doc["metadata"]["namespace"].as_str().map(str::to_string);
        if ns.is_some() && (ns == home || ns.as_deref() == Some(namespace)) {
            doc["metadata"]["namespace"] = Value::String(namespace.to_string());
            out.push(doc);
        }
    }
    if !has_namespace {
        out.insert(
            0,
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn docs() -> Vec<Value> {
        vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "dev"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "dev"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "tools"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}),
        ]
    }

    #[test]
    fn the_overlay_moves_into_an_attendee_namespace() {
        let moved = in_namespace(docs(), "attendee-07");
        let names: Vec<String> = moved
            .iter()
            .map(|d| {
                format!(
                    "{} {}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["namespace"].as_str().unwrap_or("-"),
                    d["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "Namespace -/attendee-07",
                "ConfigMap attendee-07/c",
                "Deployment attendee-07/d"
            ]
        );
    }

    #[test]
    fn the_overlays_own_namespace_stays() {
        let same = in_namespace(docs(), "dev");
        assert_eq!(same.len(), 3);
        assert_eq!(same[0]["metadata"]["name"], "dev");
    }

    #[test]
    fn a_given_namespace_is_neither_created_nor_changed() {
        let kept = without_namespace_object(in_namespace(docs(), "att1"));
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|d| d["kind"] != "Namespace"));
    }

    #[test]
    fn only_patched_objects_are_released() {
        let docs = docs();
        let mut changes = Changes::default();
        changes.patched(ObjectKey::of(&docs[2]).unwrap());
        let keys = released_keys(&docs, &changes);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].name, "d");
    }
}
