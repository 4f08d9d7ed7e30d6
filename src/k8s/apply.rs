//! Server-side apply of the documents `kustomize build` prints.
//!
//! Each distinct apiVersion/kind is resolved once with `pinned_kind` (one request to its API
//! group) instead of a full discovery run, which would walk every group the cluster serves.
//! [`server_side_apply`] is the one apply request, real or dry run ([`super::plan`]).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope, pinned_kind};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;

use super::document::{
    FIELD_MANAGER, Priority, Target, apply_order, crd_kinds, describe, prepare, priority,
};
use super::error::K8sError;

/// How long a CustomResourceDefinition gets to be served before its custom resources are applied.
const CRD_ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);
/// A freshly established CRD can take a moment to show up in discovery.
const CRD_DISCOVERY_ATTEMPTS: u32 = 5;
const CRD_DISCOVERY_PAUSE: Duration = Duration::from_secs(1);

/// One object kindlab applied, and what the apply did to it.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Applied {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub outcome: ApplyOutcome,
}

#[derive(Debug, Clone, Copy, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    Created,
    Configured,
    Unchanged,
}

/// Server-side apply of every object, field manager [`FIELD_MANAGER`], force=true.
///
/// Namespaces and CustomResourceDefinitions go first (they are what later objects live in or
/// are instances of), then the rest in input order. Before the first object after the CRDs,
/// kindlab waits for the CRDs to be established. Every document is checked before anything is
/// applied, so a malformed document changes nothing in the cluster. `null` documents (an empty
/// `---` section) are skipped.
pub async fn apply_all(client: &kube::Client, docs: &[Value]) -> Result<Vec<Applied>, K8sError> {
    let targets = Target::parse_all(docs)?;
    let crd_kinds = crd_kinds(docs);
    let mut kinds = Kinds::default();
    let mut unestablished_crds: Vec<String> = Vec::new();
    let mut applied = Vec::with_capacity(targets.len());

    for position in apply_order(targets.iter().map(|t| t.doc)) {
        let Some(target) = targets.get(position) else {
            continue;
        };
        let priority = priority(target.doc);
        if priority == Priority::Rest && !unestablished_crds.is_empty() {
            await_crds_established(client, &unestablished_crds).await?;
            unestablished_crds.clear();
        }
        let defined_in_batch = crd_kinds.contains(&target.group_kind());
        let (resource, caps) = kinds.discover(client, target, defined_in_batch).await?;
        let result = apply_one(client, target, &resource, &caps.scope).await?;
        if priority == Priority::CustomResourceDefinition {
            unestablished_crds.push(result.name.clone());
        }
        applied.push(result);
    }
    // CRDs with no custom resources in this batch still have to be served before the caller
    // moves on (it may apply their instances next).
    if !unestablished_crds.is_empty() {
        await_crds_established(client, &unestablished_crds).await?;
    }
    Ok(applied)
}

/// What the server says of a kind: served (with its resource and scope), or unknown.
pub(super) enum Lookup {
    Found(ApiResource, ApiCapabilities),
    /// The server does not serve it (yet): the lookup's answer, for the error.
    Unknown(kube::Error),
}

/// The kinds of one batch, each looked up once.
#[derive(Default)]
pub(super) struct Kinds {
    found: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>,
}

impl Kinds {
    pub(super) async fn look_up(
        &mut self,
        client: &kube::Client,
        target: &Target<'_>,
    ) -> Result<Lookup, K8sError> {
        if let Some((resource, caps)) = self.found.get(&target.gvk) {
            return Ok(Lookup::Found(resource.clone(), caps.clone()));
        }
        match pinned_kind(client, &target.gvk).await {
            Ok((resource, caps)) => {
                self.found
                    .insert(target.gvk.clone(), (resource.clone(), caps.clone()));
                Ok(Lookup::Found(resource, caps))
            }
            Err(source) if is_unknown_kind(&source) => Ok(Lookup::Unknown(source)),
            Err(source) => Err(K8sError::request(
                format!("look up {} {}", target.api_version, target.kind()),
                source,
            )),
        }
    }

    /// The kind, asked again for a few seconds when its CRD is in this batch (a freshly
    /// established CRD can take a moment to show up in discovery).
    async fn discover(
        &mut self,
        client: &kube::Client,
        target: &Target<'_>,
        defined_in_batch: bool,
    ) -> Result<(ApiResource, ApiCapabilities), K8sError> {
        let attempts = if defined_in_batch {
            CRD_DISCOVERY_ATTEMPTS
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            match self.look_up(client, target).await? {
                Lookup::Found(resource, caps) => return Ok((resource, caps)),
                Lookup::Unknown(source) if attempt >= attempts => {
                    return Err(target.unknown_kind(source));
                }
                Lookup::Unknown(_) => {
                    tracing::debug!(
                        kind = target.kind(),
                        attempt,
                        "kind not in discovery yet, its CRD was just established"
                    );
                    attempt += 1;
                    tokio::time::sleep(CRD_DISCOVERY_PAUSE).await;
                }
            }
        }
    }
}

/// The object's namespace (`default` for a namespaced one that names none, as kubectl
/// does) and the API to reach it.
pub(super) fn object_api(
    client: &kube::Client,
    target: &Target<'_>,
    resource: &ApiResource,
    scope: &Scope,
) -> (Option<String>, Api<DynamicObject>) {
    let namespace = match scope {
        Scope::Namespaced => Some(
            target
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
        ),
        Scope::Cluster => None,
    };
    let api = match &namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    (namespace, api)
}

/// The one server-side apply request (field manager [`FIELD_MANAGER`], force), a dry run
/// when asked. The API server's refusal names the object ([`K8sError::Apply`]).
pub(super) async fn server_side_apply(
    api: &Api<DynamicObject>,
    target: &Target<'_>,
    namespace: Option<&str>,
    dry_run: bool,
) -> Result<DynamicObject, K8sError> {
    let body = prepare(target.doc, namespace);
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if dry_run {
        params = params.dry_run();
    }
    api.patch(&target.name, &params, &Patch::Apply(&body))
        .await
        .map_err(|source| match source {
            kube::Error::Api(status) => K8sError::Apply {
                kind: target.kind().to_string(),
                namespace: namespace.map(str::to_string),
                name: target.name.clone(),
                code: status.code,
                message: status.message.clone(),
            },
            other => {
                let what = describe(target.kind(), namespace, &target.name);
                let action = if dry_run { "dry-run apply" } else { "apply" };
                K8sError::request(format!("{action} {what}"), other)
            }
        })
}

/// A group/version the server does not serve answers 404; a served group without the kind
/// is kube's `MissingKind`.
fn is_unknown_kind(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.is_not_found(),
        kube::Error::Discovery(_) => true,
        _ => false,
    }
}

async fn apply_one(
    client: &kube::Client,
    target: &Target<'_>,
    resource: &ApiResource,
    scope: &Scope,
) -> Result<Applied, K8sError> {
    let (namespace, api) = object_api(client, target, resource, scope);
    let what = describe(target.kind(), namespace.as_deref(), &target.name);
    let before = api
        .get_metadata_opt(&target.name)
        .await
        .map_err(|source| K8sError::request(format!("read {what}"), source))?;
    let after = server_side_apply(&api, target, namespace.as_deref(), false).await?;
    let outcome = decide_outcome(
        before
            .as_ref()
            .and_then(|meta| meta.metadata.resource_version.as_deref()),
        before.is_some(),
        after.metadata.resource_version.as_deref(),
    );
    tracing::debug!(object = %what, ?outcome, "applied");
    Ok(Applied {
        api_version: target.api_version.clone(),
        kind: target.kind().to_string(),
        namespace,
        name: target.name.clone(),
        outcome,
    })
}

async fn await_crds_established(client: &kube::Client, names: &[String]) -> Result<(), K8sError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in names {
        let wait = await_condition(api.clone(), name, conditions::is_crd_established());
        match tokio::time::timeout(CRD_ESTABLISH_TIMEOUT, wait).await {
            Ok(Ok(_)) => {}
            Ok(Err(kube::runtime::wait::Error::ProbeFailed(source))) => {
                return Err(K8sError::Watch {
                    what: format!("CustomResourceDefinition {name}"),
                    source,
                });
            }
            Err(_elapsed) => {
                return Err(K8sError::CrdNotEstablished {
                    name: name.clone(),
                    waited: CRD_ESTABLISH_TIMEOUT,
                });
            }
        }
    }
    Ok(())
}

/// Created when the object did not exist; otherwise an unchanged resourceVersion means the
/// apply was a no-op.
fn decide_outcome(before: Option<&str>, existed: bool, after: Option<&str>) -> ApplyOutcome {
    if !existed {
        ApplyOutcome::Created
    } else if before.is_some() && before == after {
        ApplyOutcome::Unchanged
    } else {
        ApplyOutcome::Configured
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn outcome_from_resource_versions() {
        assert_eq!(
            decide_outcome(None, false, Some("5")),
            ApplyOutcome::Created
        );
        assert_eq!(
            decide_outcome(Some("5"), true, Some("5")),
            ApplyOutcome::Unchanged
        );
        assert_eq!(
            decide_outcome(Some("5"), true, Some("6")),
            ApplyOutcome::Configured
        );
        // Without a version to compare, claiming "unchanged" would be a guess.
        assert_eq!(decide_outcome(None, true, None), ApplyOutcome::Configured);
    }

    #[test]
    fn applied_serializes_outcome_lowercase() {
        let applied = Applied {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: Some("default".into()),
            name: "web".into(),
            outcome: ApplyOutcome::Created,
        };
        assert_eq!(
            serde_json::to_value(&applied).unwrap(),
            json!({"api_version": "v1", "kind": "Service", "namespace": "default",
                   "name": "web", "outcome": "created"})
        );
    }
}
