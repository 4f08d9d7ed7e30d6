//! A manifest document as the API sees it: addressable (apiVersion, kind, name), in apply
//! order (Namespaces, then CRDs, then the rest), and the body kindlab sends (namespace set,
//! kubectl's last-applied annotation, kindlab's label). Pure.

use std::collections::HashSet;

use kube::core::GroupVersionKind;
use serde_json::Value;

use super::error::K8sError;

/// The field manager kindlab's server-side applies are recorded under.
pub const FIELD_MANAGER: &str = "kindlab";

/// Label kindlab adds to every object it applies, so its objects can be told apart.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "kindlab");

/// A document checked enough to address it in the API.
#[derive(Debug)]
pub(super) struct Target<'a> {
    pub(super) doc: &'a Value,
    pub(super) gvk: GroupVersionKind,
    pub(super) api_version: String,
    pub(super) name: String,
    pub(super) namespace: Option<String>,
}

impl<'a> Target<'a> {
    pub(super) fn parse(index: usize, doc: &'a Value) -> Result<Target<'a>, K8sError> {
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

    /// Every non-null document, checked before anything is sent (a malformed one changes
    /// nothing in the cluster); `null` documents (an empty `---` section) are skipped.
    pub(super) fn parse_all(docs: &'a [Value]) -> Result<Vec<Target<'a>>, K8sError> {
        docs.iter()
            .enumerate()
            .filter(|(_, doc)| !doc.is_null())
            .map(|(index, doc)| Target::parse(index, doc))
            .collect()
    }

    pub(super) fn kind(&self) -> &str {
        &self.gvk.kind
    }

    /// (group, kind), as [`crd_kinds`] lists what a batch's CRDs define.
    pub(super) fn group_kind(&self) -> (String, String) {
        (self.gvk.group.clone(), self.gvk.kind.clone())
    }

    /// The server does not serve this document's kind.
    pub(super) fn unknown_kind(&self, source: kube::Error) -> K8sError {
        K8sError::UnknownKind {
            api_version: self.api_version.clone(),
            kind: self.kind().to_string(),
            source,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Priority {
    Namespace,
    CustomResourceDefinition,
    Rest,
}

pub(super) fn priority(doc: &Value) -> Priority {
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
pub(super) fn apply_order<'a>(docs: impl IntoIterator<Item = &'a Value>) -> Vec<usize> {
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
pub(super) fn crd_kinds(docs: &[Value]) -> HashSet<(String, String)> {
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

pub(super) fn describe(kind: &str, namespace: Option<&str>, name: &str) -> String {
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
}
