//! The rules evaluated locally, on the rendered overlay, with the very CEL text the cluster's
//! policies carry ([`Desired::variables`], [`Rule::message`]): `kindlab check` and the API
//! server reach the same verdict on the same object.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::policy::{Desired, Scope};
use super::rules::{GUARDED_KINDS, Rule};
use super::{GuardrailError, Mode, PRODUCTION_LABEL};

/// One object that breaks one rule, with the message the API server would give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `Deployment dev/orders-api`.
    pub object: String,
    pub rule: Rule,
    pub mode: Mode,
    pub message: String,
}

/// The rules of `desired` on every guarded object of `docs`. The digest rule holds in the
/// namespaces a rendered Namespace marks production (`dev.kindlab.production: "true"`).
pub fn evaluate_objects(desired: &Desired, docs: &[Value]) -> Result<Vec<Finding>, GuardrailError> {
    let production: BTreeSet<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "Namespace")
        .filter(|d| d["metadata"]["labels"][PRODUCTION_LABEL] == "true")
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    let mut findings = Vec::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if !GUARDED_KINDS.contains(&kind) {
            continue;
        }
        let namespace = doc["metadata"]["namespace"].as_str().unwrap_or("default");
        if let Scope::Namespaces(names) = &desired.scope
            && !names.iter().any(|n| n == namespace)
        {
            continue;
        }
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        for (rule, mode) in &desired.rules {
            if *rule == Rule::DigestInProduction && !production.contains(namespace) {
                continue;
            }
            if let Some(message) = evaluate(desired, *rule, doc)? {
                findings.push(Finding {
                    object: format!("{kind} {namespace}/{name}"),
                    rule: *rule,
                    mode: *mode,
                    message,
                });
            }
        }
    }
    Ok(findings)
}

/// One rule on one object: the message when the object breaks it, as the API server would
/// compute it; None when it keeps it.
pub fn evaluate(
    desired: &Desired,
    rule: Rule,
    object: &Value,
) -> Result<Option<String>, GuardrailError> {
    let failed = |message: String| GuardrailError::Cel {
        rule: rule.name().into(),
        message,
    };
    let env = Arc::new(cel::Env::stdlib());
    let mut context = cel::Context::with_env(env.clone());
    let object = cel::to_value(object).map_err(|e| failed(e.to_string()))?;
    context
        .add_variable("object", object)
        .map_err(|e| failed(e.to_string()))?;
    let run = |context: &cel::Context, expression: &str| {
        env.compile(expression)
            .map_err(|e| failed(format!("{expression}: {e}")))?
            .execute(context)
            .map_err(|e| failed(format!("{expression}: {e}")))
    };
    // Each variable may use those before it, as the API server evaluates them.
    let mut variables: HashMap<String, cel::Value> = HashMap::new();
    for (name, expression) in desired.variables(rule) {
        let value = run(&context, &expression)?;
        variables.insert(name.to_string(), value);
        context
            .add_variable("variables", cel::Value::Map(variables.clone().into()))
            .map_err(|e| failed(e.to_string()))?;
    }
    match run(&context, "size(variables.bad) == 0")? {
        cel::Value::Bool(true) => Ok(None),
        cel::Value::Bool(false) => match run(&context, rule.message())? {
            cel::Value::String(message) => Ok(Some(message.to_string())),
            other => Err(failed(format!("the message is not a string: {other:?}"))),
        },
        other => Err(failed(format!("the verdict is not a bool: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardrails::rules::{CASES, CASES_ALLOWED, CASES_REGISTRY, case_digest};
    use crate::guardrails::{GuardrailSettings, Mode};
    use serde_json::json;

    fn all_rules() -> Desired {
        let settings = GuardrailSettings {
            registry: Mode::Deny,
            no_latest: Mode::Deny,
            digest_in_production: Mode::Warn,
            allowed_registries: vec![CASES_ALLOWED.into()],
        };
        Desired::new(
            &settings,
            CASES_REGISTRY,
            Scope::Namespaces(vec!["dev".into(), "prod".into()]),
        )
    }

    fn deployment(list: &str, image: &str) -> Value {
        let filler = format!("{CASES_REGISTRY}/orders-api{}", case_digest());
        let mut spec = json!({"containers": [{"name": "api", "image": filler}]});
        if list == "containers" {
            spec["containers"][0]["image"] = json!(image);
        } else {
            spec[list] = json!([{"name": "first", "image": image}]);
        }
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "orders-api", "namespace": "dev"},
            "spec": {"template": {"spec": spec}}
        })
    }

    #[test]
    fn the_shared_table_passes_locally() {
        let desired = all_rules();
        for case in CASES {
            let verdict =
                evaluate(&desired, case.rule, &deployment(case.list, case.image)).unwrap();
            assert_eq!(verdict.is_none(), case.admitted, "{case:?}: {verdict:?}");
            if let Some(message) = verdict {
                assert!(message.contains(case.image), "{message}");
                assert!(message.contains(case.rule.name()), "{message}");
            }
        }
    }

    #[test]
    fn pods_cronjobs_and_ephemeral_containers_are_looked_into() {
        let desired = all_rules();
        let pod = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "dev"},
            "spec": {"containers": [{"name": "a", "image": "localhost:5001/a:1"}],
                     "ephemeralContainers": [{"name": "debug", "image": "busybox:latest"}]}});
        let message = evaluate(&desired, Rule::NoLatest, &pod).unwrap().unwrap();
        assert!(
            message.starts_with("image busybox:latest uses the tag :latest"),
            "{message}"
        );
        let cronjob = json!({"kind": "CronJob", "metadata": {"name": "c", "namespace": "dev"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "localhost:5001/a"}]}}}}}});
        let message = evaluate(&desired, Rule::NoLatest, &cronjob)
            .unwrap()
            .unwrap();
        assert!(message.contains("localhost:5001/a has no tag"), "{message}");
    }

    #[test]
    fn the_digest_rule_holds_only_in_namespaces_marked_production() {
        let desired = all_rules();
        let mut in_prod = deployment("containers", "localhost:5001/orders-api:1.0");
        in_prod["metadata"]["namespace"] = json!("prod");
        let docs = vec![
            json!({"kind": "Namespace", "metadata": {"name": "prod", "labels": {PRODUCTION_LABEL: "true"}}}),
            json!({"kind": "Namespace", "metadata": {"name": "dev"}}),
            deployment("containers", "localhost:5001/orders-api:1.0"),
            in_prod,
            // Outside the guarded namespaces nothing is checked.
            json!({"kind": "Pod", "metadata": {"name": "x", "namespace": "other"},
                "spec": {"containers": [{"name": "a", "image": "nginx"}]}}),
        ];
        let findings = evaluate_objects(&desired, &docs).unwrap();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].object, "Deployment prod/orders-api");
        assert_eq!(findings[0].rule, Rule::DigestInProduction);
        assert_eq!(findings[0].mode, Mode::Warn);
    }
}
