//! A Service that sends traffic nowhere: its selector matches no pod, or none that is ready.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};

use super::{Cause, Certainty, Evidence, Finding};

/// The finding for a Service without endpoints, `None` when it has some (or manages its
/// endpoints itself: no selector, or ExternalName). `ready_endpoints`: the addresses its
/// EndpointSlices list as ready, when known.
pub fn diagnose_service(
    service: &Service,
    pods: &[Pod],
    ready_endpoints: Option<usize>,
) -> Option<Finding> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    if ready_endpoints.is_some_and(|n| n > 0) {
        return None;
    }
    let name = service.metadata.name.clone().unwrap_or_default();
    let ns = service
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let selector_text = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let matching: Vec<&Pod> = live
        .iter()
        .copied()
        .filter(|p| matches(selector, p.metadata.labels.as_ref()))
        .collect();
    let mut evidence = vec![Evidence::new(
        "spec",
        format!("service {name} selects {selector_text}"),
    )];

    if matching.is_empty() {
        // What the pods here are labelled, for the keys the selector uses.
        let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for pod in &live {
            for (key, value) in pod.metadata.labels.iter().flatten() {
                if selector.contains_key(key) {
                    let values = seen.entry(key.as_str()).or_default();
                    if !values.contains(&value.as_str()) {
                        values.push(value.as_str());
                    }
                }
            }
        }
        for (key, values) in &seen {
            evidence.push(Evidence::new(
                "cluster",
                format!("pods in namespace {ns} have {key}={}", values.join(", ")),
            ));
        }
        if seen.is_empty() {
            evidence.push(Evidence::new(
                "cluster",
                format!(
                    "no pod in namespace {ns} has any of the labels {}",
                    selector.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        // Keys no pod carries at all (a label added to the selector, not to the pods).
        let missing: Vec<String> = selector
            .iter()
            .filter(|(key, _)| !seen.contains_key(key.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !seen.is_empty() {
            for label in &missing {
                let key = label.split('=').next().unwrap_or_default();
                evidence.push(Evidence::new(
                    "cluster",
                    format!(
                        "no pod in namespace {ns} has a label {key} (the selector wants {label})"
                    ),
                ));
            }
        }
        // The closest existing value for a mistyped selector value (a key whose value some
        // pod has is not the mistake).
        let suggestion = selector.iter().find_map(|(key, wanted)| {
            let values = seen.get(key.as_str())?;
            if values.contains(&wanted.as_str()) {
                return None;
            }
            let best = values
                .iter()
                .min_by_key(|v| strsim::damerau_levenshtein(wanted, v))?;
            (strsim::damerau_levenshtein(wanted, best) <= wanted.len().max(3) / 2)
                .then(|| format!("{key}={best}"))
        });
        let fix = match (&suggestion, missing.as_slice()) {
            (Some(label), _) => format!(
                "point the selector at the pods' label ({label}: `kubectl edit service {name} -n {ns}`), or label the pods to match"
            ),
            (None, [_, ..]) if !seen.is_empty() => format!(
                "take {} out of the selector (`kubectl edit service {name} -n {ns}`), or label the pods with it",
                missing.join(", ")
            ),
            (None, _) => format!(
                "make the selector match the pods' labels (`kubectl get pods -n {ns} --show-labels`), or create the pods it should select"
            ),
        };
        let why = match (&suggestion, missing.as_slice()) {
            (Some(s), _) => format!(" (the pods have {s})"),
            (None, [_, ..]) if !seen.is_empty() => {
                format!(" (no pod has {})", missing.join(", "))
            }
            _ => String::new(),
        };
        return Some(Finding {
            subject: format!("service/{name}"),
            container: None,
            cause: Cause::ServiceWithoutEndpoints {
                service: name.clone(),
                selector: selector_text.clone(),
                matching_pods: 0,
            },
            certainty: Certainty::Certain,
            candidates: vec![],
            summary: format!(
                "service {name} has no endpoints: its selector {selector_text} matches no pod{why}"
            ),
            evidence,
            fix,
        });
    }

    let ready = matching.iter().filter(|p| is_ready(p)).count();
    if ready > 0 && ready_endpoints.is_none() {
        return None;
    }
    let names: Vec<String> = matching
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    evidence.push(Evidence::new(
        "cluster",
        format!(
            "it selects {} pod(s), {ready} ready: {}",
            matching.len(),
            names.join(", ")
        ),
    ));
    let first = names.first().cloned().unwrap_or_default();
    Some(Finding {
        subject: format!("service/{name}"),
        container: None,
        cause: Cause::ServiceWithoutEndpoints {
            service: name.clone(),
            selector: selector_text.clone(),
            matching_pods: matching.len(),
        },
        certainty: Certainty::Certain,
        candidates: vec![],
        summary: if ready == 0 {
            format!(
                "service {name} has no endpoints: it selects {} pod(s) and none is ready",
                matching.len()
            )
        } else {
            format!(
                "service {name} lists no ready endpoints although {ready} selected pod(s) are ready"
            )
        },
        evidence,
        fix: if ready == 0 {
            format!("fix the pods first: `kindlab diagnose pod/{first} -n {ns}`")
        } else {
            format!(
                "check the Service's ports against the pods' (`kubectl describe service {name} -n {ns}`)"
            )
        },
    })
}

fn matches(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(labels) = labels else {
        return false;
    };
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(selector: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "orders", "namespace": "dev"},
            "spec": {"selector": selector, "ports": [{"port": 80}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn pod(name: &str, labels: serde_json::Value, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "dev", "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_mistyped_selector_points_at_the_label_the_pods_have() {
        let pods = [pod("orders-api-1", json!({"app": "orders-api"}), true)];
        let finding = diagnose_service(&service(json!({"app": "orders-apii"})), &pods, Some(0))
            .unwrap_or_else(|| panic!("expected a finding"));
        assert_eq!(
            finding.summary,
            "service orders has no endpoints: its selector app=orders-apii matches no pod (the pods have app=orders-api)"
        );
        assert!(
            finding
                .evidence
                .iter()
                .any(|e| e.text == "pods in namespace dev have app=orders-api")
        );
    }

    /// A label added to the selector but not to the pods: the matching key is not the
    /// mistake, the missing one is.
    #[test]
    fn a_label_no_pod_carries_is_named() {
        let pods = [pod(
            "catalog-1",
            json!({"app.kubernetes.io/name": "catalog"}),
            true,
        )];
        let finding = diagnose_service(
            &service(json!({"app.kubernetes.io/name": "catalog", "version": "v2"})),
            &pods,
            Some(0),
        )
        .unwrap_or_else(|| panic!("expected a finding"));
        assert_eq!(
            finding.summary,
            "service orders has no endpoints: its selector app.kubernetes.io/name=catalog,version=v2 matches no pod (no pod has version=v2)"
        );
        assert!(
            finding.evidence.iter().any(|e| e.text
                == "no pod in namespace dev has a label version (the selector wants version=v2)"),
            "{:?}",
            finding.evidence
        );
        assert!(
            finding
                .fix
                .starts_with("take version=v2 out of the selector"),
            "{}",
            finding.fix
        );
    }

    #[test]
    fn selected_but_unready_pods_send_you_to_the_pods() {
        let pods = [pod("orders-api-1", json!({"app": "orders-api"}), false)];
        let finding = diagnose_service(&service(json!({"app": "orders-api"})), &pods, Some(0))
            .unwrap_or_else(|| panic!("expected a finding"));
        assert!(
            finding
                .fix
                .contains("kindlab diagnose pod/orders-api-1 -n dev"),
            "{}",
            finding.fix
        );
    }

    #[test]
    fn healthy_and_selectorless_services_are_fine() {
        let pods = [pod("orders-api-1", json!({"app": "orders-api"}), true)];
        assert_eq!(
            diagnose_service(&service(json!({"app": "orders-api"})), &pods, Some(1)),
            None
        );
        assert_eq!(diagnose_service(&service(json!({})), &pods, Some(0)), None);
    }
}
