//! A ConfigMap or Secret (or one of its keys) the pod needs and the namespace lacks.

use super::*;

/// `configmap "x" not found`, `couldn't find key K in Secret ns/x`, ... as (kind, name, key).
pub(crate) fn missing_config(message: &str) -> Option<(String, String, Option<String>)> {
    if let Some(at) = message.find("couldn't find key ") {
        let rest = &message[at + "couldn't find key ".len()..];
        let (key, rest) = rest.split_once(" in ")?;
        let (kind, object) = rest.split_once(' ')?;
        let name = object
            .trim()
            .rsplit('/')
            .next()?
            .trim_end_matches(['.', '"'])
            .to_string();
        return Some((kind.to_string(), name, Some(key.to_string())));
    }
    for (needle, kind) in [
        ("configmap \"", "ConfigMap"),
        ("configmaps \"", "ConfigMap"),
        ("secret \"", "Secret"),
        ("secrets \"", "Secret"),
    ] {
        let lower = message.to_lowercase();
        if let Some(at) = lower.find(needle) {
            let rest = &message[at + needle.len()..];
            let (name, after) = rest.split_once('"')?;
            if after.trim_start().starts_with("not found") {
                return Some((kind.to_string(), name.to_string(), None));
            }
        }
    }
    None
}

/// Where the spec refers to a ConfigMap or Secret, in words.
pub(super) fn references(
    pod: &Pod,
    container: Option<&Container>,
    kind: &str,
    name: &str,
) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(c) = container {
        for env in c.env.as_deref().unwrap_or_default() {
            let source = env.value_from.as_ref();
            let by_key = match kind {
                "ConfigMap" => source
                    .and_then(|s| s.config_map_key_ref.as_ref())
                    .filter(|r| r.name == name)
                    .map(|r| r.key.clone()),
                _ => source
                    .and_then(|s| s.secret_key_ref.as_ref())
                    .filter(|r| r.name == name)
                    .map(|r| r.key.clone()),
            };
            if let Some(key) = by_key {
                found.push(format!(
                    "env {} of container {} reads key {key} of {kind} {name}",
                    env.name, c.name
                ));
            }
        }
        for from in c.env_from.as_deref().unwrap_or_default() {
            let hit = match kind {
                "ConfigMap" => from.config_map_ref.as_ref().is_some_and(|r| r.name == name),
                _ => from.secret_ref.as_ref().is_some_and(|r| r.name == name),
            };
            if hit {
                found.push(format!(
                    "envFrom of container {} reads all of {kind} {name}",
                    c.name
                ));
            }
        }
    }
    for volume in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
    {
        let hit = match kind {
            "ConfigMap" => volume.config_map.as_ref().is_some_and(|v| v.name == name),
            _ => volume
                .secret
                .as_ref()
                .is_some_and(|v| v.secret_name.as_deref() == Some(name)),
        };
        if hit {
            found.push(format!("volume {} mounts {kind} {name}", volume.name));
        }
    }
    found
}

pub(super) fn config_fix(kind: &str, name: &str, key: Option<&str>, ns: &str) -> String {
    let create = match kind {
        "Secret" => format!(
            "`kubectl create secret generic {name} -n {ns} --from-literal={}=VALUE`",
            key.unwrap_or("KEY")
        ),
        _ => format!(
            "`kubectl create configmap {name} -n {ns} --from-literal={}=VALUE`",
            key.unwrap_or("KEY")
        ),
    };
    match key {
        Some(key) => format!(
            "add key {key} to {kind} {name} (`kubectl edit {} {name} -n {ns}`), or fix the key in the pod spec",
            kind.to_lowercase()
        ),
        None => format!(
            "create it ({create}), fix the name in the pod spec, or mark the reference optional: true"
        ),
    }
}

pub(super) fn config_finding(
    facts: &PodFacts,
    subject: &str,
    status: &ContainerStatus,
    spec: Option<&Container>,
) -> Finding {
    let name = status.name.as_str();
    let ns = namespace(&facts.pod);
    let mut messages: Vec<String> = waiting_message(status)
        .map(str::to_string)
        .into_iter()
        .collect();
    messages.extend(
        facts
            .events
            .iter()
            .rev()
            .filter(|e| e.type_ == "Warning" && (about(e, name) || e.field_path.is_none()))
            .map(|e| e.message.clone()),
    );
    let parsed = messages
        .iter()
        .find_map(|m| missing_config(m).map(|p| (m, p)));
    let mut evidence = vec![Evidence::new(
        "container",
        format!("{name} is waiting: CreateContainerConfigError"),
    )];
    match parsed {
        Some((message, (kind, object, key))) => {
            evidence.push(Evidence::new("container", message.clone()));
            for line in references(&facts.pod, spec, &kind, &object) {
                evidence.push(Evidence::new("spec", line));
            }
            let summary = match &key {
                Some(key) => {
                    format!("{kind} {object} has no key {key}, which container {name} needs")
                }
                None => format!(
                    "{kind} {object} does not exist in namespace {ns}; container {name} needs it"
                ),
            };
            let fix = config_fix(&kind, &object, key.as_deref(), &ns);
            finding(
                subject,
                name,
                Cause::ConfigMissing {
                    container: name.to_string(),
                    kind,
                    name: object,
                    key,
                },
                summary,
                evidence,
                fix,
            )
        }
        None => {
            let message = messages.first().cloned().unwrap_or_default();
            evidence.push(Evidence::new("container", message.clone()));
            let mut f = finding(
                subject,
                name,
                Cause::ContainerCannotStart {
                    container: name.to_string(),
                    reason: "CreateContainerConfigError".into(),
                },
                format!(
                    "container {name}'s configuration is invalid{}",
                    colon(&message)
                ),
                evidence,
                format!(
                    "`kubectl describe pod -n {ns} {}` names what is wrong",
                    pod_name(facts)
                ),
            );
            f.certainty = Certainty::Unknown;
            f
        }
    }
}
