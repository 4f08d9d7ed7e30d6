//! What a room is made of, as pure functions: the attendees' names, and per attendee the
//! objects that give it a namespace of its own with the least privilege a lab needs.
//!
//! Per attendee (namespace = the attendee's name):
//! - the Namespace, with the Pod Security level the labs pass (`baseline`: the sample app
//!   runs as root, which `restricted` refuses);
//! - a ServiceAccount `attendee` bound to a Role `kindlab-attendee` of this namespace only:
//!   what kubectl's troubleshooting verbs and the labs ask (get/list/watch the workload's
//!   objects, events and logs; change Deployments, Services and ConfigMaps; read its own
//!   Namespace object, which `kubectl apply -k` reads); no Secrets, no exec, nothing
//!   cluster-scoped;
//! - a ResourceQuota and a LimitRange sized so every built-in lab still fails the way it
//!   teaches (the OOM lab's 16Mi limit is allowed, a runaway lab cannot starve the others);
//! - a NetworkPolicy that admits traffic from the same namespace only.
//!
//! Everything carries the room's label, so `teardown` removes exactly what `provision` made.

use serde_json::{Value, json};

/// Label on everything a room's `provision` makes: its value is the room's name.
pub const ROOM_LABEL: &str = "dev.kindlab.room";
/// Label naming the attendee an object belongs to.
pub const ATTENDEE_LABEL: &str = "dev.kindlab.attendee";
/// The field manager of a room's objects.
pub const ROOM_MANAGER: &str = "kindlab-workshop";
/// The attendee's ServiceAccount (the kubeconfig's user).
pub const ATTENDEE_ACCOUNT: &str = "attendee";
/// The attendee's Role and RoleBinding.
pub const ATTENDEE_ROLE: &str = "kindlab-attendee";

/// A room's sizes: what each attendee's namespace may use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Budget {
    pub requests_cpu: String,
    pub requests_memory: String,
    pub limits_cpu: String,
    pub limits_memory: String,
    pub pods: u32,
    /// Per container: a limit above this is refused at admission.
    pub max_cpu: String,
    pub max_memory: String,
    /// Defaults for containers that set none (so the quota can count them).
    pub default_request_cpu: String,
    pub default_request_memory: String,
    pub default_limit_cpu: String,
    pub default_limit_memory: String,
}

impl Default for Budget {
    /// A "medium" t-shirt, as Educates sizes sessions: room for the sample app and a second
    /// app, a rolling update of each (old and new pod at once) and a lab's extra pod.
    fn default() -> Budget {
        Budget {
            requests_cpu: "2".into(),
            requests_memory: "2Gi".into(),
            limits_cpu: "8".into(),
            limits_memory: "4Gi".into(),
            pods: 20,
            max_cpu: "2".into(),
            max_memory: "1Gi".into(),
            default_request_cpu: "50m".into(),
            default_request_memory: "32Mi".into(),
            default_limit_cpu: "1".into(),
            default_limit_memory: "256Mi".into(),
        }
    }
}

/// The attendees' names: the ones given, else `<prefix>01` .. `<prefix>NN`. Each must be a
/// valid namespace name (DNS-1123 label); duplicates are dropped, order kept.
pub fn roster(names: &[String], count: Option<u32>, prefix: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let generated: Vec<String> = match count {
        Some(n) => {
            let width = n.to_string().len().max(2);
            (1..=n).map(|i| format!("{prefix}{i:0width$}")).collect()
        }
        None => Vec::new(),
    };
    for name in names.iter().chain(generated.iter()) {
        let name = name.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if !is_dns_label(name) {
            return Err(format!(
                "{name:?} cannot be a namespace: use lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit"
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err("no attendees: name them, give --count N, or --roster FILE".into());
    }
    Ok(out)
}

/// A DNS-1123 label, as namespace names must be.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// The labels every object of `attendee` in `room` carries.
fn labels(room: &str, attendee: &str) -> Value {
    json!({ROOM_LABEL: room, ATTENDEE_LABEL: attendee, "app.kubernetes.io/managed-by": "kindlab"})
}

fn meta(name: &str, namespace: &str, room: &str) -> Value {
    json!({"name": name, "namespace": namespace, "labels": labels(room, namespace)})
}

/// The namespace-scoped rules of an attendee's Role: what kubectl's troubleshooting verbs,
/// `kubectl apply -k` and kindlab's attendee verbs ask, in the attendee's namespace only.
pub fn attendee_rules(namespace: &str) -> Value {
    const READ: [&str; 3] = ["get", "list", "watch"];
    const WRITE: [&str; 7] = [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    json!([
        // `kubectl apply -k` reads the Namespace object the overlay declares; it may not
        // change it (its Pod Security labels are the room's).
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [namespace], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods/log", "events", "endpoints", "resourcequotas", "limitranges", "serviceaccounts"], "verbs": READ},
        {"apiGroups": [""], "resources": ["services", "configmaps"], "verbs": WRITE},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": WRITE},
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "update", "patch"]},
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": READ},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": READ},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": READ},
        // `kubectl top pod` (the OOM lab's advice), where metrics-server runs.
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]},
    ])
}

/// A namespaced kind the workspace declares, as RBAC names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeclaredResource {
    pub group: String,
    pub plural: String,
}

/// Write rules for the kinds the workspace declares beyond the Role's own (a ServiceAccount,
/// an Ingress, a PersistentVolumeClaim ...): kindlab's attendee verbs apply every workspace
/// object, as `kubectl apply -k` does. RBAC kinds are never granted (an attendee could
/// grant itself more).
pub fn workspace_rules(declared: &[DeclaredResource]) -> Vec<Value> {
    const COVERED: [(&str, &str); 4] = [
        ("", "services"),
        ("", "configmaps"),
        ("apps", "deployments"),
        ("", "namespaces"),
    ];
    let mut wanted: Vec<&DeclaredResource> = declared
        .iter()
        .filter(|d| d.group != "rbac.authorization.k8s.io")
        .filter(|d| !COVERED.contains(&(d.group.as_str(), d.plural.as_str())))
        .collect();
    wanted.sort();
    wanted.dedup();
    wanted
        .into_iter()
        .map(|d| {
            json!({"apiGroups": [d.group], "resources": [d.plural],
                   "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]})
        })
        .collect()
}

/// Every object that makes `attendee`'s corner of `room`, in apply order; `extra_rules` are
/// the workspace's own kinds ([`workspace_rules`]).
pub fn attendee_objects(
    room: &str,
    attendee: &str,
    budget: &Budget,
    extra_rules: &[Value],
) -> Vec<Value> {
    let ns = attendee;
    let mut namespace_labels = labels(room, attendee);
    namespace_labels["pod-security.kubernetes.io/enforce"] = json!("baseline");
    namespace_labels["pod-security.kubernetes.io/enforce-version"] = json!("latest");
    namespace_labels["pod-security.kubernetes.io/warn"] = json!("baseline");
    let mut rules = attendee_rules(ns);
    if let Some(list) = rules.as_array_mut() {
        list.extend(extra_rules.iter().cloned());
    }
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": ns, "labels": namespace_labels}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": meta(ATTENDEE_ACCOUNT, ns, room)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": meta(ATTENDEE_ROLE, ns, room),
               "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": meta(ATTENDEE_ROLE, ns, room),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ATTENDEE_ROLE},
               "subjects": [{"kind": "ServiceAccount", "name": ATTENDEE_ACCOUNT, "namespace": ns}]}),
        json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": meta("kindlab-room", ns, room),
        "spec": {"hard": {
            "requests.cpu": budget.requests_cpu,
            "requests.memory": budget.requests_memory,
            "limits.cpu": budget.limits_cpu,
            "limits.memory": budget.limits_memory,
            "pods": budget.pods.to_string(),
            // No Service that reaches past the cluster or takes a node port: those are
            // shared by the whole room.
            "services.loadbalancers": "0",
            "services.nodeports": "0",
            // A runaway lab cannot flood etcd for everyone.
            "services": "20",
            "count/configmaps": "50",
            "count/replicasets.apps": "200",
        }}}),
        json!({"apiVersion": "v1", "kind": "LimitRange",
        "metadata": meta("kindlab-room", ns, room),
        "spec": {"limits": [{
            "type": "Container",
            "max": {"cpu": budget.max_cpu, "memory": budget.max_memory},
            "default": {"cpu": budget.default_limit_cpu, "memory": budget.default_limit_memory},
            "defaultRequest": {"cpu": budget.default_request_cpu, "memory": budget.default_request_memory},
        }]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": meta("kindlab-same-namespace", ns, room),
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"podSelector": {}}]}]}}),
    ]
}

/// Network plugins that enforce NetworkPolicy, as their kube-system DaemonSets are named
/// (kind's kindnet from kind v0.24 on, through kube-network-policies).
const ENFORCERS: [&str; 9] = [
    "calico",
    "cilium",
    "antrea",
    "kube-router",
    "weave",
    "kindnet",
    "network-policies",
    "kube-network-policies",
    "canal",
];

/// The DaemonSet that enforces NetworkPolicy on this cluster, from the names of kube-system's
/// DaemonSets; `None`: the policy objects are made, but nothing may enforce them.
pub fn policy_enforcer(daemonsets: &[String]) -> Option<&String> {
    daemonsets
        .iter()
        .find(|name| ENFORCERS.iter().any(|e| name.contains(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enforcing_network_plugin_is_recognised_by_its_daemonset() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            policy_enforcer(&names(&["kube-proxy", "kindnet"])).map(String::as_str),
            Some("kindnet")
        );
        assert_eq!(
            policy_enforcer(&names(&["calico-node", "kube-proxy"])).map(String::as_str),
            Some("calico-node")
        );
        assert!(policy_enforcer(&names(&["kube-proxy", "kube-flannel-ds"])).is_none());
        assert!(policy_enforcer(&[]).is_none());
    }

    #[test]
    fn a_roster_from_names_or_a_count() {
        let names = vec![
            "ada".to_string(),
            "# a comment".into(),
            "ada".into(),
            "bob".into(),
        ];
        assert_eq!(roster(&names, None, "att").unwrap(), ["ada", "bob"]);
        assert_eq!(
            roster(&[], Some(3), "att").unwrap(),
            ["att01", "att02", "att03"]
        );
        assert_eq!(roster(&[], Some(100), "a").unwrap()[0], "a001");
        assert!(
            roster(&["Ada".into()], None, "att")
                .unwrap_err()
                .contains("\"Ada\"")
        );
        assert!(roster(&[], None, "att").is_err());
        assert!(!is_dns_label("-x") && !is_dns_label("x-") && !is_dns_label(&"x".repeat(64)));
    }

    #[test]
    fn every_object_is_labelled_and_in_the_attendees_namespace() {
        let objects = attendee_objects("room1", "att01", &Budget::default(), &[]);
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ResourceQuota",
                "LimitRange",
                "NetworkPolicy"
            ]
        );
        for o in &objects {
            assert_eq!(o["metadata"]["labels"][ROOM_LABEL], "room1", "{o}");
            assert_eq!(o["metadata"]["labels"][ATTENDEE_LABEL], "att01", "{o}");
            if o["kind"] != "Namespace" {
                assert_eq!(o["metadata"]["namespace"], "att01", "{o}");
            }
        }
        assert_eq!(
            objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "baseline"
        );
    }

    #[test]
    fn the_workspaces_own_kinds_are_granted_but_never_rbac() {
        let declared = |group: &str, plural: &str| DeclaredResource {
            group: group.into(),
            plural: plural.into(),
        };
        let rules = workspace_rules(&[
            declared("", "serviceaccounts"),
            declared("networking.k8s.io", "ingresses"),
            declared("apps", "deployments"),
            declared("rbac.authorization.k8s.io", "roles"),
            declared("", "serviceaccounts"),
        ]);
        let text = serde_json::to_string(&rules).unwrap();
        assert_eq!(rules.len(), 2, "{text}");
        assert!(
            text.contains("ingresses") && text.contains("serviceaccounts"),
            "{text}"
        );
        assert!(
            !text.contains("roles") && !text.contains("deployments"),
            "{text}"
        );
        let objects = attendee_objects("r", "a", &Budget::default(), &rules);
        assert!(objects[2]["rules"].to_string().contains("ingresses"));
        let quota = &objects[4]["spec"]["hard"];
        assert_eq!(quota["services.loadbalancers"], "0");
        assert_eq!(quota["services.nodeports"], "0");
    }

    #[test]
    fn the_role_grants_nothing_outside_its_namespace_and_no_secrets() {
        let rules = attendee_rules("att01");
        let text = rules.to_string();
        assert!(!text.contains("secrets"), "{text}");
        assert!(!text.contains("pods/exec"), "{text}");
        assert!(!text.contains('*'), "no wildcards: {text}");
        let namespaces = rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resources"][0] == "namespaces")
            .unwrap();
        assert_eq!(namespaces["resourceNames"], json!(["att01"]));
        assert_eq!(namespaces["verbs"], json!(["get"]));
    }

    #[test]
    fn the_oom_labs_limit_fits_the_limit_range() {
        // The OOM lab lowers a limit to 16Mi: the LimitRange must have no minimum above it.
        // (A container with a limit and no request gets the limit as its request from the
        // API's own defaulting, before the LimitRange's defaultRequest could apply.)
        let objects = attendee_objects("r", "a", &Budget::default(), &[]);
        let range = &objects[5]["spec"]["limits"][0];
        assert_eq!(range["type"], "Container");
        assert!(range.get("min").is_none(), "{range}");
    }
}
