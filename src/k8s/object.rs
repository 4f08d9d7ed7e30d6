//! One object at a time, addressed by apiVersion, kind, namespace and name: read it, apply a
//! partial object under a given field manager (optionally as a dry run), delete it. Labs and
//! `reset` work on single objects this way; `apply_all` is the batch form for an overlay.

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope, pinned_kind};
use serde_json::Value;

use super::error::K8sError;

/// Which object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    /// The key of a rendered document (its namespace as written, if any).
    pub fn of(doc: &Value) -> Option<ObjectKey> {
        Some(ObjectKey {
            api_version: doc["apiVersion"].as_str()?.to_string(),
            kind: doc["kind"].as_str()?.to_string(),
            namespace: doc["metadata"]["namespace"].as_str().map(str::to_string),
            name: doc["metadata"]["name"].as_str()?.to_string(),
        })
    }

    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// The smallest object server-side apply accepts for this key: applying it under a field
    /// manager releases every field that manager alone owned.
    pub fn identity(&self) -> Value {
        let mut metadata = serde_json::json!({"name": self.name});
        if let Some(ns) = &self.namespace {
            metadata["namespace"] = Value::String(ns.clone());
        }
        serde_json::json!({"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata})
    }
}

/// The apiVersion of the built-in kinds labs name without one.
pub fn default_api_version(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        "Ingress" | "NetworkPolicy" => "networking.k8s.io/v1",
        "PodDisruptionBudget" => "policy/v1",
        "HorizontalPodAutoscaler" => "autoscaling/v2",
        "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => {
            "rbac.authorization.k8s.io/v1"
        }
        _ => "v1",
    }
}

async fn api_for(client: &kube::Client, key: &ObjectKey) -> Result<Api<DynamicObject>, K8sError> {
    let (group, version) = match key.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", key.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &key.kind);
    let (resource, caps): (ApiResource, _) =
        pinned_kind(client, &gvk)
            .await
            .map_err(|source| K8sError::UnknownKind {
                api_version: key.api_version.clone(),
                kind: key.kind.clone(),
                source,
            })?;
    Ok(match (caps.scope, &key.namespace) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        (Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
        (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    })
}

pub async fn get(
    client: &kube::Client,
    key: &ObjectKey,
) -> Result<Option<DynamicObject>, K8sError> {
    api_for(client, key)
        .await?
        .get_opt(&key.name)
        .await
        .map_err(|source| K8sError::request(format!("read {}", key.describe()), source))
}

/// Server-side apply of `body` (a full or partial object) as `manager`.
pub async fn apply(
    client: &kube::Client,
    key: &ObjectKey,
    body: &Value,
    manager: &str,
    force: bool,
    dry_run: bool,
) -> Result<DynamicObject, K8sError> {
    let mut params = PatchParams::apply(manager);
    params.force = force;
    params.dry_run = dry_run;
    api_for(client, key)
        .await?
        .patch(&key.name, &params, &Patch::Apply(body))
        .await
        .map_err(|source| match source {
            kube::Error::Api(status) => K8sError::Apply {
                kind: key.kind.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                code: status.code,
                message: status.message.clone(),
            },
            other => K8sError::request(format!("apply {}", key.describe()), other),
        })
}

/// A JSON patch (RFC 6902) or strategic-merge patch, recorded under `manager`.
pub async fn patch(
    client: &kube::Client,
    key: &ObjectKey,
    patch: Patch<Value>,
    manager: &str,
) -> Result<DynamicObject, K8sError> {
    let params = PatchParams {
        field_manager: Some(manager.to_string()),
        ..Default::default()
    };
    api_for(client, key)
        .await?
        .patch(&key.name, &params, &patch)
        .await
        .map_err(|source| K8sError::request(format!("patch {}", key.describe()), source))
}

/// Deletes the object; false when it was not there.
pub async fn delete(client: &kube::Client, key: &ObjectKey) -> Result<bool, K8sError> {
    match api_for(client, key)
        .await?
        .delete(&key.name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
        Err(source) => Err(K8sError::request(
            format!("delete {}", key.describe()),
            source,
        )),
    }
}

/// kubectl's record of its last client-side apply: bookkeeping, not desired state (a hand
/// `kubectl apply -k` rewrites it in its own words).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The parts of an object that say what it is, without what the server keeps about it
/// (resourceVersion, managedFields, status, ...): two objects with equal content are the same
/// desired state.
pub fn content(object: &Value) -> Value {
    let mut content = object.clone();
    if let Some(map) = content.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove(LAST_APPLIED);
                if annotations.is_empty() {
                    meta.remove("annotations");
                }
            }
            for key in [
                "managedFields",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "uid",
                "selfLink",
            ] {
                meta.remove(key);
            }
        }
    }
    content
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_identities() {
        let doc = json!({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "web", "namespace": "dev"}, "spec": {}});
        let key = ObjectKey::of(&doc).unwrap();
        assert_eq!(key.describe(), "Service dev/web");
        assert_eq!(
            key.identity(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "dev"}})
        );
        assert_eq!(default_api_version("Deployment"), "apps/v1");
        assert_eq!(default_api_version("ConfigMap"), "v1");
    }

    #[test]
    fn content_ignores_what_the_server_keeps() {
        let a = json!({"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "1",
                       "managedFields": [], "labels": {"a": "b"}}, "data": {"k": "v"}});
        let b = json!({"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "7",
                       "labels": {"a": "b"}}, "data": {"k": "v"}, "status": {}});
        assert_eq!(content(&a), content(&b));
        let c = json!({"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}},
                       "data": {"k": "w"}});
        assert_ne!(content(&a), content(&c));
    }
}
