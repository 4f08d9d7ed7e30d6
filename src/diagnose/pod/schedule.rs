//! Pods no node can take: the scheduler's reasons, requests against what nodes have.

use super::*;

/// CPU in millicores: `100m`, `2`, `0.5`.
pub(crate) fn cpu_millis(quantity: &str) -> Option<i64> {
    let q = quantity.trim();
    if let Some(m) = q.strip_suffix('m') {
        return m.parse().ok();
    }
    q.parse::<f64>().ok().map(|v| (v * 1000.0).round() as i64)
}

/// Memory in bytes: `64Mi`, `1Gi`, `128M`, `1e9`, `1000`.
pub(crate) fn memory_bytes(quantity: &str) -> Option<i64> {
    let q = quantity.trim();
    let units: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|v| (v * factor) as i64);
        }
    }
    q.parse::<f64>().ok().map(|v| v as i64)
}

pub(super) fn human_cpu(millis: i64) -> String {
    if millis % 1000 == 0 {
        format!("{} CPU", millis / 1000)
    } else {
        format!("{millis}m CPU")
    }
}

pub(super) fn human_memory(bytes: i64) -> String {
    const MI: i64 = 1024 * 1024;
    if bytes >= 1024 * MI {
        format!("{:.1}Gi", bytes as f64 / (1024 * MI) as f64)
    } else {
        format!("{}Mi", bytes / MI)
    }
}

/// The scheduler's reasons, from `0/1 nodes are available: 1 Insufficient cpu. preemption: ...`
/// or the older `No nodes are available that match all of the following predicates:: ...`.
pub(crate) fn scheduler_reasons(message: &str) -> Vec<String> {
    let main = message.split(" preemption:").next().unwrap_or(message);
    let list = if let Some((_, rest)) = main.split_once("are available: ") {
        // The reasons end at the first full stop; what follows is the post-filter plugins'
        // say (Kubernetes 1.34 writes "... affinity/selector. no new claims to deallocate,").
        rest.split_once(". ").map_or(rest, |(reasons, _)| reasons)
    } else if let Some((_, rest)) = main.split_once("predicates:: ") {
        rest
    } else if main.contains("fit failure on node") {
        let mut reasons: Vec<String> = main
            .lines()
            .filter_map(|l| l.split_once("): ").map(|(_, r)| r.trim().to_string()))
            .collect();
        reasons.dedup();
        return reasons;
    } else {
        main
    };
    list.split(", ")
        .map(|r| r.trim().trim_end_matches('.').trim().to_string())
        .filter(|r| !r.is_empty())
        .collect()
}

pub(super) fn unschedulable(facts: &PodFacts, subject: &str) -> Option<Finding> {
    let pod = &facts.pod;
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    let event = facts
        .events
        .iter()
        .rev()
        .find(|e| e.reason == "FailedScheduling");
    let message = event
        .map(|e| e.message.clone())
        .or_else(|| condition.message.clone())
        .unwrap_or_default();
    let reasons = scheduler_reasons(&message);
    let ns = namespace(pod);
    let mut evidence = vec![Evidence::new(
        "scheduler",
        event.map_or_else(|| message.clone(), event_line),
    )];

    // What the pod asks for, against the biggest node.
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let request = |resource: &str, parse: fn(&str) -> Option<i64>| -> i64 {
        containers
            .iter()
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(resource))
            .filter_map(|q| parse(&q.0))
            .sum()
    };
    let cpu = request("cpu", cpu_millis);
    let memory = request("memory", memory_bytes);
    let max_cpu = facts.nodes.iter().filter_map(|n| n.cpu_millis).max();
    let max_memory = facts.nodes.iter().filter_map(|n| n.memory_bytes).max();
    let mut detail = Vec::new();
    let lacks = |word: &str| reasons.iter().any(|r| r.contains(word));
    if lacks("Insufficient cpu") && cpu > 0 {
        detail.push(match max_cpu {
            Some(max) => format!(
                "it requests {}; the largest node has {} allocatable",
                human_cpu(cpu),
                human_cpu(max)
            ),
            None => format!("it requests {}", human_cpu(cpu)),
        });
    }
    if lacks("Insufficient memory") && memory > 0 {
        detail.push(match max_memory {
            Some(max) => format!(
                "it requests {} of memory; the largest node has {} allocatable",
                human_memory(memory),
                human_memory(max)
            ),
            None => format!("it requests {} of memory", human_memory(memory)),
        });
    }
    // What the pod asks of a node's labels, and which of those no node has (when the
    // nodes could be read: an attendee limited to a namespace cannot).
    let node_selector = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.clone())
        .unwrap_or_default();
    let selector_text = |pairs: &[(&String, &String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let wanted: Vec<(&String, &String)> = node_selector.iter().collect();
    let unmatched: Vec<(&String, &String)> = if facts.nodes.is_empty() {
        Vec::new()
    } else {
        wanted
            .iter()
            .copied()
            .filter(|(k, v)| !facts.nodes.iter().any(|n| n.labels.get(*k) == Some(*v)))
            .collect()
    };
    let selector_misses = (lacks("affinity") || lacks("selector")) && !wanted.is_empty();
    if selector_misses {
        evidence.push(Evidence::new(
            "spec",
            format!("its nodeSelector asks for {}", selector_text(&wanted)),
        ));
        if !unmatched.is_empty() {
            detail.push(format!(
                "no node has {}; the pod's nodeSelector asks for it",
                selector_text(&unmatched)
            ));
            evidence.push(Evidence::new(
                "cluster",
                format!(
                    "none of the {} node(s) is labelled {}",
                    facts.nodes.len(),
                    selector_text(&unmatched)
                ),
            ));
        } else {
            detail.push(format!(
                "its nodeSelector asks for {}",
                selector_text(&wanted)
            ));
        }
    }
    for line in detail.iter().filter(|d| d.starts_with("it requests")) {
        evidence.push(Evidence::new("spec", line.clone()));
    }
    let owner = facts
        .owner
        .clone()
        .unwrap_or_else(|| format!("pod/{}", pod_name(facts)));
    let fix = if lacks("Insufficient cpu") || lacks("Insufficient memory") {
        let resource = if lacks("Insufficient cpu") {
            "cpu"
        } else {
            "memory"
        };
        format!(
            "lower the pod's resources.requests.{resource} to fit a node (`kubectl set resources {owner} --requests={resource}=... -n {ns}`), or add a bigger node"
        )
    } else if lacks("taint") {
        "add a toleration for the node's taint to the pod, or remove the taint (`kubectl describe nodes` shows them)".to_string()
    } else if selector_misses {
        // Shown with the namespace's rights alone: the pod template, not the nodes.
        let path = if owner.starts_with("pod/") {
            "{.spec.nodeSelector}"
        } else {
            "{.spec.template.spec.nodeSelector}"
        };
        let shown = if unmatched.is_empty() {
            &wanted
        } else {
            &unmatched
        };
        format!(
            "remove or correct the nodeSelector {} of {owner} (`kubectl get {owner} -n {ns} -o jsonpath='{path}'` shows it; the workspace's manifests say what it should be), or have a cluster admin label a node with it",
            selector_text(shown)
        )
    } else if lacks("affinity") || lacks("selector") {
        "fix the pod's node affinity, or label a node to match (`kubectl get nodes --show-labels`, for whoever may read nodes)".to_string()
    } else if lacks("PersistentVolumeClaim") || lacks("volume") {
        "create the PersistentVolumeClaim the pod uses, or a StorageClass that can bind it"
            .to_string()
    } else {
        format!(
            "`kubectl describe pod -n {ns} {}` shows the scheduler's events",
            pod_name(facts)
        )
    };
    let summary = if reasons.is_empty() {
        format!("no node can run the pod{}", colon(&message))
    } else {
        format!(
            "no node can run the pod: {}{}",
            reasons.join(", "),
            detail
                .first()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )
    };
    Some(Finding {
        subject: subject.to_string(),
        container: None,
        cause: Cause::Unschedulable { reasons },
        certainty: Certainty::Certain,
        candidates: vec![],
        summary,
        evidence,
        fix,
    })
}
