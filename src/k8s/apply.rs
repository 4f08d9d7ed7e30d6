//! Server-side apply of the documents `kustomize build` prints.
//!
//! Each distinct apiVersion/kind is resolved once with `pinned_kind` (one request to its API
//! group) instead of a full discovery run, which would walk every group the cluster serves.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope, pinned_kind};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;

use super::{FIELD_MANAGER, K8sError, MANAGED_BY_LABEL};

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
    let targets = docs
        .iter()
        .enumerate()
        .filter(|(_, doc)| !doc.is_null())
        .map(|(index, doc)| Target::parse(index, doc))
        .collect::<Result<Vec<_>, _>>()?;
    let crd_kinds = crd_kinds(docs);

    let mut discovered: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)> = HashMap::new();
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

        let retry_discovery =
            crd_kinds.contains(&(target.gvk.group.clone(), target.gvk.kind.clone()));
        let (resource, caps) = match discovered.get(&target.gvk) {
            Some(found) => found.clone(),
            None => {
                let found = discover(client, target, retry_discovery).await?;
                discovered.insert(target.gvk.clone(), found.clone());
                found
            }
        };

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

/// What applying one document would do to the live object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum ObjectChange {
    /// It does not exist.
    Create,
    /// It exists and would change at these fields (`spec.replicas`, ...).
    Configure { fields: Vec<String> },
    /// Applying it would change nothing.
    Unchanged,
}

/// One document's plan: what it is, what applying it would do, and the live object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectPlan {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    #[serde(flatten)]
    pub change: ObjectChange,
    /// The object as the cluster has it now.
    #[serde(skip)]
    pub live: Option<Value>,
}

impl ObjectPlan {
    /// `Deployment dev/orders-api`.
    pub fn object(&self) -> String {
        describe(&self.kind, self.namespace.as_deref(), &self.name)
    }
}

/// What [`apply_all`] would do to each document, without changing anything: the live object
/// is read, then the same server-side apply is sent with dryRun=All and its answer compared
/// with the live object (so defaults, admission and field ownership are the server's, not a
/// guess). One plan per non-null document, in input order.
pub async fn plan_objects(
    client: &kube::Client,
    docs: &[Value],
) -> Result<Vec<ObjectPlan>, K8sError> {
    let targets = docs
        .iter()
        .enumerate()
        .filter(|(_, doc)| !doc.is_null())
        .map(|(index, doc)| Target::parse(index, doc))
        .collect::<Result<Vec<_>, _>>()?;
    let crd_kinds = crd_kinds(docs);
    let mut discovered: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)> = HashMap::new();
    let mut plans = Vec::with_capacity(targets.len());
    for target in &targets {
        let found = match discovered.get(&target.gvk) {
            Some(found) => Some(found.clone()),
            None => match pinned_kind(client, &target.gvk).await {
                Ok(found) => {
                    discovered.insert(target.gvk.clone(), found.clone());
                    Some(found)
                }
                // Its CustomResourceDefinition is in this batch and not applied yet.
                Err(source)
                    if is_unknown_kind(&source)
                        && crd_kinds
                            .contains(&(target.gvk.group.clone(), target.gvk.kind.clone())) =>
                {
                    None
                }
                Err(source) if is_unknown_kind(&source) => {
                    return Err(K8sError::UnknownKind {
                        api_version: target.api_version.clone(),
                        kind: target.kind().to_string(),
                        source,
                    });
                }
                Err(source) => {
                    return Err(K8sError::request(
                        format!("look up {} {}", target.api_version, target.kind()),
                        source,
                    ));
                }
            },
        };
        let Some((resource, caps)) = found else {
            plans.push(ObjectPlan {
                api_version: target.api_version.clone(),
                kind: target.kind().to_string(),
                namespace: target.namespace.clone(),
                name: target.name.clone(),
                change: ObjectChange::Create,
                live: None,
            });
            continue;
        };
        plans.push(plan_one(client, target, &resource, &caps.scope).await?);
    }
    Ok(plans)
}

/// The object's namespace (`default` for a namespaced one that names none, as kubectl
/// does) and the API to reach it.
fn object_api(
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

async fn plan_one(
    client: &kube::Client,
    target: &Target<'_>,
    resource: &ApiResource,
    scope: &Scope,
) -> Result<ObjectPlan, K8sError> {
    let (namespace, api) = object_api(client, target, resource, scope);
    let what = describe(target.kind(), namespace.as_deref(), &target.name);
    let live = api
        .get_opt(&target.name)
        .await
        .map_err(|source| K8sError::request(format!("read {what}"), source))?;
    let plan = |change, live| ObjectPlan {
        api_version: target.api_version.clone(),
        kind: target.kind().to_string(),
        namespace: namespace.clone(),
        name: target.name.clone(),
        change,
        live,
    };
    let Some(live) = live else {
        return Ok(plan(ObjectChange::Create, None));
    };
    let live = serde_json::to_value(&live).unwrap_or_default();
    let body = prepare(target.doc, namespace.as_deref());
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    let would_be = api
        .patch(&target.name, &params, &Patch::Apply(&body))
        .await
        .map_err(|source| match source {
            kube::Error::Api(status) => K8sError::Apply {
                kind: target.kind().to_string(),
                namespace: namespace.clone(),
                name: target.name.clone(),
                code: status.code,
                message: status.message.clone(),
            },
            other => K8sError::request(format!("dry-run apply {what}"), other),
        })?;
    let would_be = serde_json::to_value(&would_be).unwrap_or_default();
    Ok(plan(compare(&live, &would_be), Some(live)))
}

/// How many changed fields a plan names before it says "and N more".
const MAX_FIELDS: usize = 6;

/// Compares the live object with the server's dry-run answer. Pure. Bookkeeping (managed
/// fields, versions, status) is left out: a change of ownership alone is no drift. kubectl's
/// last-applied annotation counts only when it is missing (a hand `kubectl apply -k` would
/// then warn, and could not tell what to prune): one that merely differs is a hand apply's
/// own record of the same objects, or kubectl's formatting of it, and kindlab and kubectl
/// would otherwise take turns rewriting it.
pub fn compare(live: &Value, would_be: &Value) -> ObjectChange {
    let mut fields = Vec::new();
    let recorded = |object: &Value| {
        object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .is_some()
    };
    if !recorded(live) && recorded(would_be) {
        fields.push(format!("metadata.annotations.{LAST_APPLIED}"));
    }
    diff(
        "",
        &super::object::content(live),
        &super::object::content(would_be),
        &mut fields,
    );
    if fields.is_empty() {
        return ObjectChange::Unchanged;
    }
    if fields.len() > MAX_FIELDS {
        let more = fields.len() - MAX_FIELDS;
        fields.truncate(MAX_FIELDS);
        fields.push(format!("and {more} more"));
    }
    ObjectChange::Configure { fields }
}

/// The paths where `a` and `b` differ: `spec.template.spec.containers[api].image`. List items
/// that have a `name` are matched by it, as Kubernetes merges them.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff(&at(key), x, y, out),
                    _ => out.push(at(key)),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let named = |items: &[Value]| -> Option<Vec<String>> {
                items
                    .iter()
                    .map(|i| i.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            };
            match (named(a), named(b)) {
                (Some(names_a), Some(names_b)) if names_a == names_b => {
                    for ((name, x), y) in names_a.iter().zip(a).zip(b) {
                        diff(&format!("{path}[{name}]"), x, y, out);
                    }
                }
                _ if a.len() == b.len() => {
                    for (i, (x, y)) in a.iter().zip(b).enumerate() {
                        diff(&format!("{path}[{i}]"), x, y, out);
                    }
                }
                _ => out.push(path.to_string()),
            }
        }
        (a, b) if a != b => out.push(path.to_string()),
        _ => {}
    }
}

/// A document checked enough to address it in the API.
#[derive(Debug)]
struct Target<'a> {
    doc: &'a Value,
    gvk: GroupVersionKind,
    api_version: String,
    name: String,
    namespace: Option<String>,
}

impl<'a> Target<'a> {
    fn parse(index: usize, doc: &'a Value) -> Result<Target<'a>, K8sError> {
        let invalid = |problem: &str| K8sError::InvalidObject {
            index,
            problem: problem.to_string(),
        };
        if !doc.is_object() {
            return Err(invalid("it is not a mapping"));
        }
        let api_version =
            str_at(doc, &["apiVersion"]).ok_or_else(|| invalid("apiVersion is missing"))?;
        let kind = str_at(doc, &["kind"]).ok_or_else(|| invalid("kind is missing"))?;
        let name = str_at(doc, &["metadata", "name"]).ok_or_else(|| {
            invalid(&format!(
                "{kind} has no metadata.name (generateName cannot be applied)"
            ))
        })?;
        let (group, version) = split_api_version(api_version).ok_or_else(|| {
            invalid(&format!(
                "apiVersion {api_version:?} is not GROUP/VERSION or VERSION"
            ))
        })?;
        Ok(Target {
            doc,
            gvk: GroupVersionKind::gvk(group, version, kind),
            api_version: api_version.to_string(),
            name: name.to_string(),
            namespace: str_at(doc, &["metadata", "namespace"]).map(str::to_string),
        })
    }

    fn kind(&self) -> &str {
        &self.gvk.kind
    }
}

async fn discover(
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
        match pinned_kind(client, &target.gvk).await {
            Ok(found) => return Ok(found),
            Err(source) if is_unknown_kind(&source) => {
                if attempt >= attempts {
                    return Err(K8sError::UnknownKind {
                        api_version: target.api_version.clone(),
                        kind: target.kind().to_string(),
                        source,
                    });
                }
                tracing::debug!(
                    kind = target.kind(),
                    attempt,
                    "kind not in discovery yet, its CRD was just established"
                );
                attempt += 1;
                tokio::time::sleep(CRD_DISCOVERY_PAUSE).await;
            }
            Err(source) => {
                return Err(K8sError::request(
                    format!("look up {} {}", target.api_version, target.kind()),
                    source,
                ));
            }
        }
    }
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
    let body = prepare(target.doc, namespace.as_deref());
    let what = describe(target.kind(), namespace.as_deref(), &target.name);

    let before = api
        .get_metadata_opt(&target.name)
        .await
        .map_err(|source| K8sError::request(format!("read {what}"), source))?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let after = api
        .patch(&target.name, &params, &Patch::Apply(&body))
        .await
        .map_err(|source| match source {
            kube::Error::Api(status) => K8sError::Apply {
                kind: target.kind().to_string(),
                namespace: namespace.clone(),
                name: target.name.clone(),
                code: status.code,
                message: status.message.clone(),
            },
            other => K8sError::request(format!("apply {what}"), other),
        })?;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Priority {
    Namespace,
    CustomResourceDefinition,
    Rest,
}

fn priority(doc: &Value) -> Priority {
    let api_version = str_at(doc, &["apiVersion"]).unwrap_or_default();
    let kind = str_at(doc, &["kind"]).unwrap_or_default();
    let group = split_api_version(api_version)
        .map(|(g, _)| g)
        .unwrap_or_default();
    match (group, kind) {
        ("", "Namespace") => Priority::Namespace,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Priority::CustomResourceDefinition,
        _ => Priority::Rest,
    }
}

/// Positions of `docs` in apply order: Namespaces, then CRDs, then everything else, each group
/// in input order.
fn apply_order<'a>(docs: impl IntoIterator<Item = &'a Value>) -> Vec<usize> {
    let mut order: Vec<(Priority, usize)> = docs
        .into_iter()
        .enumerate()
        .map(|(i, doc)| (priority(doc), i))
        .collect();
    // Sorting by (priority, position) keeps input order within a priority.
    order.sort();
    order.into_iter().map(|(_, i)| i).collect()
}

/// (group, kind) of every CRD in the batch, so discovery of their kinds may wait a moment.
fn crd_kinds(docs: &[Value]) -> HashSet<(String, String)> {
    docs.iter()
        .filter(|doc| priority(doc) == Priority::CustomResourceDefinition)
        .filter_map(|doc| {
            let group = str_at(doc, &["spec", "group"])?;
            let kind = str_at(doc, &["spec", "names", "kind"])?;
            Some((group.to_string(), kind.to_string()))
        })
        .collect()
}

/// The body to apply: the document with the namespace the object is addressed in (set for
/// namespaced kinds, removed for cluster-scoped ones, which reject it), kubectl's
/// last-applied annotation, and kindlab's label.
///
/// The annotation is what `kubectl apply` itself would record for the document as rendered
/// (kindlab's label is not in it), so a later `kubectl apply -k` by hand finds it, neither
/// warns that it is missing nor deletes what kindlab added, and changes nothing. Dry runs
/// that compare with the live object must send exactly this.
pub(crate) fn prepare(doc: &Value, namespace: Option<&str>) -> Value {
    let mut rendered = doc.clone();
    if let Some(metadata) = rendered.get_mut("metadata").and_then(Value::as_object_mut) {
        match namespace {
            Some(ns) => {
                metadata.insert("namespace".into(), Value::String(ns.to_string()));
            }
            None => {
                metadata.remove("namespace");
            }
        }
    }
    let last_applied = kubectl_last_applied(&rendered);
    let mut body = with_managed_label(&rendered);
    if let Some(annotations) = body
        .get_mut("metadata")
        .and_then(|m| m.as_object_mut())
        .map(|m| {
            m.entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()))
        })
    {
        if !annotations.is_object() {
            *annotations = Value::Object(Default::default());
        }
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(LAST_APPLIED.into(), Value::String(last_applied));
        }
    }
    body
}

/// kubectl's client-side apply bookkeeping.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The annotation `kubectl apply` writes for `doc`, byte for byte (kubectl's
/// `GetModifiedConfiguration`): the object with its annotations map present (empty if it
/// had none) and without this annotation, encoded as Go's encoding/json encodes it (keys
/// sorted, compact, `<`, `>`, `&`, U+2028 and U+2029 escaped, a final newline).
pub fn kubectl_last_applied(doc: &Value) -> String {
    let mut object = doc.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if !annotations.is_object() {
            *annotations = Value::Object(Default::default());
        }
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.remove(LAST_APPLIED);
        }
    }
    // serde_json's map is sorted by key, as Go sorts map keys.
    let compact = serde_json::to_string(&object).unwrap_or_default();
    let mut encoded = String::with_capacity(compact.len() + 1);
    for c in compact.chars() {
        match c {
            '<' => encoded.push_str("\\u003c"),
            '>' => encoded.push_str("\\u003e"),
            '&' => encoded.push_str("\\u0026"),
            '\u{2028}' => encoded.push_str("\\u2028"),
            '\u{2029}' => encoded.push_str("\\u2029"),
            c => encoded.push(c),
        }
    }
    encoded.push('\n');
    encoded
}

/// A copy of `doc` with [`MANAGED_BY_LABEL`] in metadata.labels (created if missing or null).
fn with_managed_label(doc: &Value) -> Value {
    let mut body = doc.clone();
    let Some(object) = body.as_object_mut() else {
        return body;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    if !metadata.is_object() {
        *metadata = Value::Object(Default::default());
    }
    if let Some(metadata) = metadata.as_object_mut() {
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if !labels.is_object() {
            *labels = Value::Object(Default::default());
        }
        if let Some(labels) = labels.as_object_mut() {
            let (key, value) = MANAGED_BY_LABEL;
            labels.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
    body
}

/// "apps/v1" -> ("apps", "v1"); "v1" -> ("", "v1").
fn split_api_version(api_version: &str) -> Option<(&str, &str)> {
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    if version.is_empty()
        || version.contains('/')
        || (api_version.contains('/') && group.is_empty())
    {
        return None;
    }
    Some((group, version))
}

fn str_at<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(doc, |value, key| value.get(key))?
        .as_str()
        .filter(|s| !s.is_empty())
}

fn describe(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    fn obj(api_version: &str, kind: &str, name: &str) -> Value {
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}})
    }

    #[test]
    fn namespaces_then_crds_then_input_order() {
        let docs = [
            obj("apps/v1", "Deployment", "web"),
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "widgets.example.com",
            ),
            obj("v1", "Service", "web"),
            obj("v1", "Namespace", "shop"),
            obj("example.com/v1", "Widget", "w"),
            obj("v1", "Namespace", "tools"),
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "gadgets.example.com",
            ),
            obj("v1", "ConfigMap", "cfg"),
        ];
        assert_eq!(apply_order(&docs), vec![3, 5, 1, 6, 0, 2, 4, 7]);
    }

    #[test]
    fn lookalike_kinds_keep_their_place() {
        // Only the core Namespace and apiextensions' CRD are hoisted; a custom kind that
        // happens to be called Namespace is not.
        let docs = [
            obj("v1", "ConfigMap", "a"),
            obj("example.com/v1", "Namespace", "fake"),
            obj(
                "apiextensions.k8s.io/v1beta1",
                "CustomResourceDefinition",
                "old.example.com",
            ),
        ];
        assert_eq!(apply_order(&docs), vec![2, 0, 1]);
    }

    #[test]
    fn empty_input_has_empty_order() {
        assert!(apply_order(&[] as &[Value]).is_empty());
    }

    #[test]
    fn label_is_added_next_to_existing_labels() {
        let doc = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "labels": {"app": "web"}},
            "data": {"k": "v"}
        });
        let labelled = with_managed_label(&doc);
        assert_eq!(
            labelled["metadata"]["labels"],
            json!({"app": "web", "app.kubernetes.io/managed-by": "kindlab"})
        );
        assert_eq!(labelled["data"], json!({"k": "v"}));
        // The input is left alone: the caller's documents are not mutated.
        assert_eq!(doc["metadata"]["labels"], json!({"app": "web"}));
    }

    #[test]
    fn label_map_is_created_when_missing_or_null() {
        let missing = with_managed_label(&obj("v1", "ConfigMap", "cfg"));
        assert_eq!(
            missing["metadata"]["labels"],
            json!({"app.kubernetes.io/managed-by": "kindlab"})
        );
        let null = with_managed_label(
            &json!({"kind": "ConfigMap", "metadata": {"name": "x", "labels": null}}),
        );
        assert_eq!(
            null["metadata"]["labels"],
            json!({"app.kubernetes.io/managed-by": "kindlab"})
        );
        assert_eq!(null["metadata"]["name"], json!("x"));
    }

    #[test]
    fn label_overrides_a_different_managed_by() {
        let doc =
            json!({"metadata": {"name": "x", "labels": {"app.kubernetes.io/managed-by": "helm"}}});
        assert_eq!(
            with_managed_label(&doc)["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            json!("kindlab")
        );
    }

    #[test]
    fn last_applied_is_what_kubectl_writes() {
        // kubectl 1.34 recorded exactly this for `kubectl apply` of the same document.
        let doc = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}});
        assert_eq!(
            kubectl_last_applied(&doc),
            "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"annotations\":{},\"name\":\"dev\"}}\n"
        );
        let with = json!({"kind": "ConfigMap", "metadata": {"name": "c", "annotations": {
            "a": "x<y>&z", LAST_APPLIED: "old"}}, "data": {"k": "\u{2028}"}});
        assert_eq!(
            kubectl_last_applied(&with),
            "{\"data\":{\"k\":\"\\u2028\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{\"a\":\"x\\u003cy\\u003e\\u0026z\"},\"name\":\"c\"}}\n"
        );
    }

    #[test]
    fn the_applied_body_carries_the_annotation_without_kindlabs_label() {
        let doc = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}});
        let body = prepare(&doc, Some("dev"));
        let annotation = body["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap();
        let recorded: Value = serde_json::from_str(annotation).unwrap();
        assert_eq!(recorded["metadata"]["namespace"], json!("dev"));
        assert!(recorded["metadata"].get("labels").is_none(), "{recorded}");
        assert_eq!(
            body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            json!("kindlab")
        );
    }

    #[test]
    fn comparison_ignores_bookkeeping_and_names_changed_fields() {
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "resourceVersion": "5", "generation": 2,
                         "managedFields": [{"manager": "kubectl"}],
                         "annotations": {LAST_APPLIED: "by kubectl"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "api", "image": "a:1"}, {"name": "side", "image": "s:1"}]}}},
            "status": {"replicas": 1}
        });
        let mut same = live.clone();
        same["metadata"]["resourceVersion"] = json!("6");
        same["metadata"]["managedFields"] = json!([{"manager": "kindlab"}]);
        same["metadata"]["annotations"][LAST_APPLIED] = json!("by kindlab");
        same["status"] = json!({});
        assert_eq!(compare(&live, &same), ObjectChange::Unchanged);

        let mut changed = live.clone();
        changed["spec"]["replicas"] = json!(2);
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("a:2");
        assert_eq!(
            compare(&live, &changed),
            ObjectChange::Configure {
                fields: vec![
                    "spec.replicas".into(),
                    "spec.template.spec.containers[api].image".into()
                ]
            }
        );
        // A missing last-applied annotation is drift (a hand `kubectl apply` would warn).
        let mut unrecorded = live.clone();
        unrecorded["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        assert_eq!(
            compare(&unrecorded, &same),
            ObjectChange::Configure {
                fields: vec![format!("metadata.annotations.{LAST_APPLIED}")]
            }
        );
        let mut label = live.clone();
        label["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "kindlab"});
        assert_eq!(
            compare(&live, &label),
            ObjectChange::Configure {
                fields: vec!["metadata.labels".into()]
            }
        );
    }

    #[test]
    fn a_long_diff_is_capped() {
        let a = json!({"data": {}});
        let b = json!({"data": {"a": "1", "b": "1", "c": "1", "d": "1", "e": "1", "f": "1", "g": "1", "h": "1"}});
        match compare(&a, &b) {
            ObjectChange::Configure { fields } => {
                assert_eq!(fields.len(), MAX_FIELDS + 1);
                assert_eq!(fields.last().unwrap(), "and 2 more");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prepare_sets_or_drops_namespace() {
        let doc = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}});
        let namespaced = prepare(&doc, Some("default"));
        assert_eq!(namespaced["metadata"]["namespace"], json!("default"));
        assert_eq!(
            namespaced["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            json!("kindlab")
        );

        let doc = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                         "metadata": {"name": "r", "namespace": "oops"}});
        let cluster = prepare(&doc, None);
        assert!(cluster["metadata"].get("namespace").is_none());
    }

    #[test]
    fn parse_target_reads_gvk_and_namespace() {
        let doc = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "web", "namespace": "shop"}});
        let t = Target::parse(0, &doc).unwrap();
        assert_eq!(t.gvk, GroupVersionKind::gvk("apps", "v1", "Deployment"));
        assert_eq!(t.api_version, "apps/v1");
        assert_eq!(t.name, "web");
        assert_eq!(t.namespace.as_deref(), Some("shop"));

        let core = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}});
        let t = Target::parse(1, &core).unwrap();
        assert_eq!(t.gvk, GroupVersionKind::gvk("", "v1", "Service"));
        assert_eq!(t.namespace, None);
    }

    #[test]
    fn parse_target_rejects_unaddressable_documents() {
        let cases = [
            (
                json!({"kind": "Service", "metadata": {"name": "x"}}),
                "apiVersion is missing",
            ),
            (
                json!({"apiVersion": "v1", "metadata": {"name": "x"}}),
                "kind is missing",
            ),
            (
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "x-"}}),
                "Pod has no metadata.name",
            ),
            (
                json!({"apiVersion": "a/b/c", "kind": "Pod", "metadata": {"name": "x"}}),
                "is not GROUP/VERSION",
            ),
            (json!(["not", "a", "map"]), "not a mapping"),
        ];
        for (index, (doc, expected)) in cases.iter().enumerate() {
            match Target::parse(index, doc) {
                Err(K8sError::InvalidObject {
                    index: got,
                    problem,
                }) => {
                    assert_eq!(got, index);
                    assert!(
                        problem.contains(expected),
                        "{problem:?} should contain {expected:?}"
                    );
                }
                other => panic!("document {index}: expected InvalidObject, got {other:?}"),
            }
        }
    }

    #[test]
    fn api_version_split() {
        assert_eq!(split_api_version("v1"), Some(("", "v1")));
        assert_eq!(split_api_version("apps/v1"), Some(("apps", "v1")));
        assert_eq!(split_api_version("/v1"), None);
        assert_eq!(split_api_version("apps/"), None);
        assert_eq!(split_api_version(""), None);
    }

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
    fn crd_kinds_come_from_spec() {
        let docs = [
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "widgets.example.com"},
                   "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}}}),
            obj("v1", "ConfigMap", "cfg"),
        ];
        let kinds = crd_kinds(&docs);
        assert_eq!(kinds.len(), 1);
        assert!(kinds.contains(&("example.com".to_string(), "Widget".to_string())));
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
