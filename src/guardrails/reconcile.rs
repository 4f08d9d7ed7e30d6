//! The guardrails in the cluster, reconciled like every other resource: observe the
//! policies and bindings named `kindlab-<rule>`, plan (pure) what to apply or delete, act.
//! Only objects labelled as kindlab's are changed; one of the same name that kindlab did not
//! make is refused, never overwritten.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::Value;

use super::rules::Rule;
use super::{GuardrailError, RULE_LABEL, WORKSPACE_LABEL};
use crate::k8s::FIELD_MANAGER;

pub const POLICY: &str = "ValidatingAdmissionPolicy";
pub const BINDING: &str = "ValidatingAdmissionPolicyBinding";

/// One policy or binding found under a guardrail's name.
#[derive(Debug, Clone)]
pub struct Live {
    pub kind: &'static str,
    pub name: String,
    /// It carries kindlab's guardrail label and this workspace's id.
    pub ours: bool,
    pub object: Value,
}

/// What the cluster holds under the guardrails' names.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub objects: Vec<Live>,
}

/// One change `up` makes (and `status` and `up --dry-run` print).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum GuardrailStep {
    Create {
        kind: String,
        name: String,
    },
    /// Kindlab's object differs from the rule at these fields (edited by hand, or the rule
    /// changed in kindlab.yaml).
    Repair {
        kind: String,
        name: String,
        fields: Vec<String>,
    },
    /// The rule was turned off.
    Delete {
        kind: String,
        name: String,
    },
}

impl GuardrailStep {
    pub fn describe(&self) -> String {
        match self {
            GuardrailStep::Create { kind, name } => format!("create {kind} {name}"),
            GuardrailStep::Repair { kind, name, fields } => {
                format!("repair {kind} {name} ({})", fields.join(", "))
            }
            GuardrailStep::Delete { kind, name } => format!("delete {kind} {name} (rule off)"),
        }
    }

    pub fn done(&self) -> String {
        let short = |kind: &str| if kind == BINDING { "binding" } else { "policy" };
        match self {
            GuardrailStep::Create { kind, name } => format!("{} {name} created", short(kind)),
            GuardrailStep::Repair { kind, name, .. } => {
                format!("{} {name} repaired", short(kind))
            }
            GuardrailStep::Delete { kind, name } => format!("{} {name} deleted", short(kind)),
        }
    }
}

/// Reads every policy and binding under a guardrail's name; `owner`: the workspace id whose
/// objects are ours; `room`: a workshop room's bindings instead of the workspace's.
pub async fn observe(
    client: &kube::Client,
    owner: &str,
    room: Option<&str>,
) -> Result<Seen, GuardrailError> {
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    let mut objects = Vec::new();
    for rule in Rule::ALL {
        let name = rule.object_name();
        let policy = policies
            .get_opt(&name)
            .await
            .map_err(|e| crate::k8s::K8sError::request("get ValidatingAdmissionPolicies", e))?;
        let binding = bindings
            .get_opt(&super::policy::binding_name(rule, room))
            .await
            .map_err(|e| {
                crate::k8s::K8sError::request("get ValidatingAdmissionPolicyBindings", e)
            })?;
        let found = [
            (
                POLICY,
                policy.map(|p| serde_json::to_value(p).unwrap_or_default()),
            ),
            (
                BINDING,
                binding.map(|b| serde_json::to_value(b).unwrap_or_default()),
            ),
        ];
        for (kind, object) in found {
            if let Some(object) = object {
                objects.push(Live {
                    kind,
                    name: object["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    ours: object["metadata"]["labels"][RULE_LABEL].is_string()
                        && object["metadata"]["labels"][WORKSPACE_LABEL] == owner,
                    object,
                });
            }
        }
    }
    Ok(Seen { objects })
}

/// What to do so the cluster holds exactly `desired` (the objects of the rules that are
/// on). Pure. Refuses when an object of a guardrail's name is not kindlab's.
pub fn plan(desired: &[Value], seen: &Seen) -> Result<Vec<GuardrailStep>, GuardrailError> {
    let mut steps = Vec::new();
    for want in desired {
        let kind = want["kind"].as_str().unwrap_or_default().to_string();
        let name = want["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match seen
            .objects
            .iter()
            .find(|l| l.kind == kind && l.name == name)
        {
            None => steps.push(GuardrailStep::Create { kind, name }),
            Some(live) if !live.ours => return Err(GuardrailError::NotOurs { kind, name }),
            Some(live) => {
                let mut fields = Vec::new();
                differs("spec", &want["spec"], &live.object["spec"], &mut fields);
                differs(
                    "metadata.labels",
                    &want["metadata"]["labels"],
                    &live.object["metadata"]["labels"],
                    &mut fields,
                );
                if !fields.is_empty() {
                    steps.push(GuardrailStep::Repair { kind, name, fields });
                }
            }
        }
    }
    // Bindings go before their policies.
    let mut stale: Vec<&Live> = seen
        .objects
        .iter()
        .filter(|l| l.ours)
        .filter(|l| {
            !desired
                .iter()
                .any(|d| d["kind"] == l.kind && d["metadata"]["name"] == l.name.as_str())
        })
        .collect();
    stale.sort_by_key(|l| l.kind != BINDING);
    steps.extend(stale.into_iter().map(|l| GuardrailStep::Delete {
        kind: l.kind.to_string(),
        name: l.name.clone(),
    }));
    Ok(steps)
}

/// The paths where `live` does not hold what `want` says. Fields the server adds (defaults)
/// are not drift; lists must match item by item.
fn differs(path: &str, want: &Value, live: &Value, out: &mut Vec<String>) {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => {
            for (key, value) in w {
                differs(
                    &format!("{path}.{key}"),
                    value,
                    l.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(w), Value::Array(l)) if w.len() == l.len() => {
            let before = out.len();
            for (i, (a, b)) in w.iter().zip(l).enumerate() {
                differs(&format!("{path}[{i}]"), a, b, out);
            }
            // The list is what changed: name it, not its items.
            if out.len() > before {
                out.truncate(before);
                out.push(path.to_string());
            }
        }
        (w, l) if w == l => {}
        _ => out.push(path.to_string()),
    }
}

/// Carries out `steps`; `desired` holds the objects the Create and Repair steps apply.
pub async fn act(
    client: &kube::Client,
    desired: &[Value],
    steps: &[GuardrailStep],
) -> Result<(), GuardrailError> {
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    for step in steps {
        let refused =
            |action: &'static str, kind: &str, name: &str, e: kube::Error| GuardrailError::Api {
                action,
                kind: kind.to_string(),
                name: name.to_string(),
                message: match e {
                    kube::Error::Api(status) => status.message.clone(),
                    other => other.to_string(),
                },
            };
        match step {
            GuardrailStep::Create { kind, name } | GuardrailStep::Repair { kind, name, .. } => {
                let Some(object) = desired
                    .iter()
                    .find(|d| d["kind"] == kind.as_str() && d["metadata"]["name"] == name.as_str())
                else {
                    continue;
                };
                let patch = Patch::Apply(object);
                let result = if kind == POLICY {
                    policies.patch(name, &apply, &patch).await.map(|_| ())
                } else {
                    bindings.patch(name, &apply, &patch).await.map(|_| ())
                };
                result.map_err(|e| refused("apply", kind, name, e))?;
            }
            GuardrailStep::Delete { kind, name } => {
                let result = if kind == POLICY {
                    policies
                        .delete(name, &DeleteParams::default())
                        .await
                        .map(|_| ())
                } else {
                    bindings
                        .delete(name, &DeleteParams::default())
                        .await
                        .map(|_| ())
                };
                match result {
                    Ok(()) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(e) => return Err(refused("delete", kind, name, e)),
                }
            }
        }
    }
    Ok(())
}

/// Whether the cluster enforces `rule` with `Deny` (whoever installed it: in a workshop room,
/// the instructor): Err says what is missing, in words.
pub async fn enforced(client: &kube::Client, rule: Rule) -> Result<(), String> {
    let name = rule.object_name();
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    // An attendee may not read cluster-scoped policies: that cannot be told from here, and
    // a `refused:` break that is admitted says so then (and is taken back).
    let unreadable = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 403);
    match policies.get_opt(&name).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(format!("there is no ValidatingAdmissionPolicy {name}")),
        Err(e) if unreadable(&e) => return Ok(()),
        Err(e) => return Err(format!("cannot read ValidatingAdmissionPolicy {name}: {e}")),
    }
    // The workspace's own binding, or a room's (`kindlab-<rule>-<room>`).
    let all = match bindings.list(&kube::api::ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) if unreadable(&e) => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot list the ValidatingAdmissionPolicyBindings: {e}"
            ));
        }
    };
    let for_policy: Vec<_> = all
        .into_iter()
        .filter(|b| b.spec.as_ref().and_then(|s| s.policy_name.as_deref()) == Some(name.as_str()))
        .collect();
    if for_policy.is_empty() {
        return Err(format!("no ValidatingAdmissionPolicyBinding uses {name}"));
    }
    let denies = for_policy.into_iter().any(|b| {
        b.spec
            .and_then(|s| s.validation_actions)
            .is_some_and(|a| a.iter().any(|a| a == "Deny"))
    });
    if denies {
        Ok(())
    } else {
        Err(format!("{name} only warns"))
    }
}

/// Removes every guardrail kindlab made in the cluster (`down` on a cluster it keeps): what
/// was removed, in words.
pub async fn remove_all(client: &kube::Client, owner: &str) -> Result<Vec<String>, GuardrailError> {
    let seen = observe(client, owner, None).await?;
    let steps = plan(&[], &seen)?;
    act(client, &[], &steps).await?;
    Ok(steps.iter().map(GuardrailStep::done).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::{Desired, GuardrailSettings, Mode, Scope};

    fn desired(no_latest: Mode) -> Vec<Value> {
        let settings = GuardrailSettings {
            no_latest,
            ..GuardrailSettings::default()
        };
        Desired::new(
            &settings,
            "localhost:5001",
            Scope::Namespaces(vec!["dev".into()]),
        )
        .objects()
    }

    /// What the cluster holds after applying `objects`: the server adds defaults.
    fn as_applied(objects: &[Value]) -> Seen {
        Seen {
            objects: objects
                .iter()
                .map(|o| {
                    let mut object = o.clone();
                    object["spec"]["matchPolicy"] = "Equivalent".into();
                    Live {
                        kind: if o["kind"] == POLICY { POLICY } else { BINDING },
                        name: o["metadata"]["name"].as_str().unwrap_or_default().into(),
                        ours: true,
                        object,
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn missing_objects_are_created_and_applied_ones_are_kept_despite_defaults() {
        let want = desired(Mode::Deny);
        let steps = plan(&want, &Seen::default()).unwrap();
        assert_eq!(
            steps
                .iter()
                .map(GuardrailStep::describe)
                .collect::<Vec<_>>(),
            [
                "create ValidatingAdmissionPolicy kindlab-no-latest",
                "create ValidatingAdmissionPolicyBinding kindlab-no-latest"
            ]
        );
        assert_eq!(plan(&want, &as_applied(&want)).unwrap(), []);
    }

    #[test]
    fn a_changed_mode_is_repaired_and_a_rule_turned_off_is_deleted_binding_first() {
        let seen = as_applied(&desired(Mode::Deny));
        let steps = plan(&desired(Mode::Warn), &seen).unwrap();
        assert_eq!(
            steps,
            [GuardrailStep::Repair {
                kind: BINDING.into(),
                name: "kindlab-no-latest".into(),
                fields: vec!["spec.validationActions".into()],
            }]
        );
        let steps = plan(&[], &seen).unwrap();
        assert_eq!(
            steps
                .iter()
                .map(GuardrailStep::describe)
                .collect::<Vec<_>>(),
            [
                "delete ValidatingAdmissionPolicyBinding kindlab-no-latest (rule off)",
                "delete ValidatingAdmissionPolicy kindlab-no-latest (rule off)"
            ]
        );
    }

    #[test]
    fn an_object_kindlab_did_not_make_is_refused() {
        let want = desired(Mode::Deny);
        let mut seen = as_applied(&want);
        seen.objects[0].ours = false;
        assert!(matches!(
            plan(&want, &seen),
            Err(GuardrailError::NotOurs { .. })
        ));
        // Nor is it deleted when the rule is off.
        assert_eq!(plan(&[], &seen).unwrap().len(), 1);
    }
}
