//! The rules rendered as the cluster's objects: one ValidatingAdmissionPolicy and one
//! binding per rule that is on (the binding carries the rule's mode, so each rule can warn
//! or deny on its own). Pure.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::rules::{IMAGES, POD_SPEC, Rule};
use super::{GuardrailSettings, Mode, PRODUCTION_LABEL, RULE_LABEL, WORKSPACE_LABEL};
use crate::k8s::MANAGED_BY_LABEL;

/// Which namespaces the guardrails hold in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// These namespaces by name (the workspace's overlay's).
    Namespaces(Vec<String>),
    /// Namespaces carrying this label and value (a workshop room's).
    Label { key: String, value: String },
}

/// What the cluster should hold: the rules that are on, their mode, where they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub rules: Vec<(Rule, Mode)>,
    /// Image prefixes the registry rule allows: the lab's registry first.
    pub allowed: Vec<String>,
    pub scope: Scope,
    /// The workspace id the objects are labelled with: only that workspace changes them.
    pub owner: String,
    /// A workshop room's bindings are its own (`kindlab-<rule>-<room>`), beside the
    /// workspace's (`kindlab-<rule>`), on the same policy.
    pub binding_suffix: Option<String>,
}

impl Desired {
    /// `registry_host`: where the lab's images come from (`localhost:5001`).
    pub fn new(settings: &GuardrailSettings, registry_host: &str, scope: Scope) -> Desired {
        let mut allowed = vec![prefix(registry_host)];
        allowed.extend(settings.allowed_registries.iter().map(|a| prefix(a)));
        allowed.dedup();
        Desired {
            rules: settings.enabled(),
            allowed,
            scope,
            owner: String::new(),
            binding_suffix: None,
        }
    }

    /// The same, with bindings of a room's own (`kindlab-<rule>-<room>`).
    pub fn for_room(mut self, room: &str) -> Desired {
        self.binding_suffix = Some(room.to_string());
        self
    }

    /// The name of `rule`'s binding.
    pub fn binding_name(&self, rule: Rule) -> String {
        binding_name(rule, self.binding_suffix.as_deref())
    }

    /// The same, labelled as workspace `id`'s.
    pub fn owned_by(mut self, id: &str) -> Desired {
        self.owner = id.to_string();
        self
    }

    /// The policy and binding of every rule that is on, in rule order.
    pub fn objects(&self) -> Vec<Value> {
        self.rules
            .iter()
            .flat_map(|(rule, mode)| [self.policy(*rule), self.binding(*rule, *mode)])
            .collect()
    }

    /// The CEL variables of a rule's policy, in order (later ones use earlier ones).
    pub fn variables(&self, rule: Rule) -> Vec<(&'static str, String)> {
        let list = self
            .allowed
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = self
            .allowed
            .iter()
            .map(|a| a.trim_end_matches('/'))
            .collect::<Vec<_>>()
            .join(", ");
        vec![
            ("spec", POD_SPEC.to_string()),
            ("images", IMAGES.to_string()),
            ("allowed", format!("[{list}]")),
            ("allowedText", format!("'{text}'")),
            (
                "bad",
                format!("variables.images.filter(i, !({}))", rule.keeps()),
            ),
        ]
    }

    fn policy(&self, rule: Rule) -> Value {
        let variables: Vec<Value> = self
            .variables(rule)
            .into_iter()
            .map(|(name, expression)| json!({"name": name, "expression": expression}))
            .collect();
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": rule.object_name(), "labels": labels(rule, &self.owner)},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["pods", "pods/ephemeralcontainers"]
                        },
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"]
                        },
                        {
                            "apiGroups": ["batch"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["jobs", "cronjobs"]
                        }
                    ]
                },
                "variables": variables,
                "validations": [{
                    "expression": "size(variables.bad) == 0",
                    "messageExpression": rule.message(),
                    "message": rule.fallback_message(),
                    "reason": "Forbidden"
                }]
            }
        })
    }

    fn binding(&self, rule: Rule, mode: Mode) -> Value {
        let mut expressions = Vec::new();
        let mut match_labels = serde_json::Map::new();
        match &self.scope {
            Scope::Namespaces(names) => expressions.push(json!({
                "key": "kubernetes.io/metadata.name",
                "operator": "In",
                "values": names,
            })),
            Scope::Label { key, value } => {
                match_labels.insert(key.clone(), Value::String(value.clone()));
            }
        }
        if rule == Rule::DigestInProduction {
            match_labels.insert(PRODUCTION_LABEL.into(), Value::String("true".into()));
        }
        let mut selector = serde_json::Map::new();
        if !expressions.is_empty() {
            selector.insert("matchExpressions".into(), Value::Array(expressions));
        }
        if !match_labels.is_empty() {
            selector.insert("matchLabels".into(), Value::Object(match_labels));
        }
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": self.binding_name(rule), "labels": labels(rule, &self.owner)},
            "spec": {
                "policyName": rule.object_name(),
                "validationActions": [match mode {
                    Mode::Warn => "Warn",
                    Mode::Deny | Mode::Off => "Deny",
                }],
                "matchResources": {"namespaceSelector": Value::Object(selector)}
            }
        })
    }
}

/// The namespaces the overlay's objects live in (`default` for those that name none), and
/// the Namespaces it makes.
pub fn scope_of(docs: &[Value]) -> Scope {
    let mut names = BTreeSet::new();
    for doc in docs.iter().filter(|d| !d.is_null()) {
        if doc["kind"] == "Namespace" {
            if let Some(n) = doc["metadata"]["name"].as_str() {
                names.insert(n.to_string());
            }
        } else if let Some(n) = doc["metadata"]["namespace"].as_str() {
            names.insert(n.to_string());
        } else if super::rules::GUARDED_KINDS.contains(&doc["kind"].as_str().unwrap_or_default()) {
            names.insert("default".to_string());
        }
    }
    if names.is_empty() {
        names.insert("default".to_string());
    }
    Scope::Namespaces(names.into_iter().collect())
}

/// `kindlab-<rule>`, or `kindlab-<rule>-<suffix>` for a room's.
pub fn binding_name(rule: Rule, suffix: Option<&str>) -> String {
    match suffix {
        Some(suffix) => format!("{}-{suffix}", rule.object_name()),
        None => rule.object_name(),
    }
}

/// `localhost:5001` -> `localhost:5001/`: a prefix that ends a host or path, so
/// `localhost:50010/x` does not pass for `localhost:5001`.
fn prefix(entry: &str) -> String {
    format!("{}/", entry.trim_end_matches('/'))
}

fn labels(rule: Rule, owner: &str) -> Value {
    json!({
        MANAGED_BY_LABEL.0: MANAGED_BY_LABEL.1,
        RULE_LABEL: rule.name(),
        WORKSPACE_LABEL: owner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GuardrailSettings {
        GuardrailSettings {
            registry: Mode::Deny,
            no_latest: Mode::Warn,
            digest_in_production: Mode::Off,
            allowed_registries: vec!["registry.k8s.io".into()],
        }
    }

    #[test]
    fn each_rule_that_is_on_is_a_policy_and_a_binding_with_its_mode() {
        let desired = Desired::new(
            &settings(),
            "localhost:5001",
            Scope::Namespaces(vec!["dev".into()]),
        );
        let objects = desired.objects();
        let names: Vec<String> = objects
            .iter()
            .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
            .collect();
        assert_eq!(
            names,
            [
                "\"ValidatingAdmissionPolicy\" \"kindlab-registry\"",
                "\"ValidatingAdmissionPolicyBinding\" \"kindlab-registry\"",
                "\"ValidatingAdmissionPolicy\" \"kindlab-no-latest\"",
                "\"ValidatingAdmissionPolicyBinding\" \"kindlab-no-latest\"",
            ]
        );
        assert_eq!(objects[1]["spec"]["validationActions"][0], "Deny");
        assert_eq!(objects[3]["spec"]["validationActions"][0], "Warn");
        assert_eq!(
            objects[1]["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"]
                [0],
            "dev"
        );
        let allowed = &objects[0]["spec"]["variables"][2]["expression"];
        assert_eq!(allowed, "['localhost:5001/', 'registry.k8s.io/']");
    }

    #[test]
    fn the_digest_rule_holds_only_where_a_namespace_is_marked_production() {
        let mut s = settings();
        s.digest_in_production = Mode::Deny;
        let desired = Desired::new(
            &s,
            "localhost:5001",
            Scope::Label {
                key: "dev.kindlab.room".into(),
                value: "r1".into(),
            },
        );
        let binding = &desired.objects()[5];
        let selector = &binding["spec"]["matchResources"]["namespaceSelector"];
        assert_eq!(selector["matchLabels"][PRODUCTION_LABEL], "true");
        assert_eq!(selector["matchLabels"]["dev.kindlab.room"], "r1");
        let registry_binding = &desired.objects()[1];
        assert!(
            registry_binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
                .get(PRODUCTION_LABEL)
                .is_none()
        );
    }

    #[test]
    fn the_scope_is_the_overlays_namespaces() {
        let docs = vec![
            json!({"kind": "Namespace", "metadata": {"name": "dev"}}),
            json!({"kind": "Deployment", "metadata": {"name": "a", "namespace": "dev"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "b", "namespace": "shop"}}),
            json!({"kind": "ClusterRole", "metadata": {"name": "c"}}),
        ];
        assert_eq!(
            scope_of(&docs),
            Scope::Namespaces(vec!["dev".into(), "shop".into()])
        );
        assert_eq!(scope_of(&[]), Scope::Namespaces(vec!["default".into()]));
    }
}
