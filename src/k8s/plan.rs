//! What applying documents would do, without changing anything: the live object is read,
//! then the same server-side apply is sent as a dry run and its answer compared with the live
//! object (so defaults, admission and field ownership are the server's, not a guess).

use serde_json::Value;

use super::apply::{Kinds, Lookup, object_api, server_side_apply};
use super::document::{LAST_APPLIED, Target, crd_kinds, describe};
use super::error::K8sError;

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

/// What [`super::apply_all`] would do to each document, without changing anything. One plan
/// per non-null document, in input order.
pub async fn plan_objects(
    client: &kube::Client,
    docs: &[Value],
) -> Result<Vec<ObjectPlan>, K8sError> {
    let targets = Target::parse_all(docs)?;
    let crd_kinds = crd_kinds(docs);
    let mut kinds = Kinds::default();
    let mut plans = Vec::with_capacity(targets.len());
    for target in &targets {
        let (resource, caps) = match kinds.look_up(client, target).await? {
            Lookup::Found(resource, caps) => (resource, caps),
            // Its CustomResourceDefinition is in this batch and not applied yet.
            Lookup::Unknown(_) if crd_kinds.contains(&target.group_kind()) => {
                plans.push(ObjectPlan {
                    api_version: target.api_version.clone(),
                    kind: target.kind().to_string(),
                    namespace: target.namespace.clone(),
                    name: target.name.clone(),
                    change: ObjectChange::Create,
                    live: None,
                });
                continue;
            }
            Lookup::Unknown(source) => return Err(target.unknown_kind(source)),
        };
        plans.push(plan_one(client, target, &resource, &caps.scope).await?);
    }
    Ok(plans)
}

async fn plan_one(
    client: &kube::Client,
    target: &Target<'_>,
    resource: &kube::discovery::ApiResource,
    scope: &kube::discovery::Scope,
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
    let would_be = server_side_apply(&api, target, namespace.as_deref(), true).await?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

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
}
