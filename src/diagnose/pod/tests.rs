use super::schedule::scheduler_reasons;
use super::*;
use crate::diagnose::CauseKind;
use serde_json::json;

fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("bad pod: {e}"))
}

fn facts(pod: Pod, events: Vec<EventFact>) -> PodFacts {
    PodFacts {
        pod,
        owner: Some("deployment/web".into()),
        events,
        ..PodFacts::default()
    }
}

fn event(reason: &str, message: &str, container: Option<&str>) -> EventFact {
    EventFact {
        reason: reason.into(),
        message: message.into(),
        type_: if matches!(reason, "Pulling" | "BackOff" | "Killing") {
            "Normal"
        } else {
            "Warning"
        }
        .into(),
        count: 1,
        field_path: container.map(|c| format!("spec.containers{{{c}}}")),
    }
}

fn not_ready(containers: serde_json::Value, spec: serde_json::Value) -> Pod {
    pod(json!({
        "metadata": {"name": "web-1", "namespace": "dev"},
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": containers
        }
    }))
}

#[test]
fn crash_loop_names_the_exit_code_and_the_last_log_line() {
    let p = not_ready(
        json!([{"name": "web", "image": "busybox:1.36", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=web pod=web-1_dev(uid)"}},
                "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}]),
        json!({"containers": [{"name": "web", "image": "busybox:1.36"}]}),
    );
    let mut f = facts(p, vec![]);
    f.previous_logs.insert(
        "web".into(),
        vec!["starting".into(), "config file missing, giving up".into()],
    );
    let findings = diagnose_pod_facts(&f);
    assert_eq!(findings.len(), 1);
    let finding = &findings[0];
    assert_eq!(finding.kind(), CauseKind::CrashLoop);
    assert_eq!(
        finding.summary,
        "container web keeps exiting with code 3 (restarted 3 times); it last logged \"config file missing, giving up\""
    );
    assert!(
        finding
            .evidence
            .iter()
            .any(|e| e.from == "log" && e.text == "starting")
    );
}

#[test]
fn oom_kill_names_the_limit() {
    let p = not_ready(
        json!([{"name": "web", "image": "busybox:1.36", "imageID": "", "ready": false, "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]),
        json!({"containers": [{"name": "web", "image": "busybox:1.36", "resources": {"limits": {"memory": "16Mi"}}}]}),
    );
    let finding = &diagnose_pod_facts(&facts(p, vec![]))[0];
    assert_eq!(
        finding.cause,
        Cause::OomKilled {
            container: "web".into(),
            limit: Some("16Mi".into()),
            restarts: 2
        }
    );
    assert!(
        finding
            .fix
            .contains("kubectl set resources deployment/web -c web"),
        "{}",
        finding.fix
    );
}

#[test]
fn a_kill_under_a_memory_limit_that_the_runtime_called_error_is_probably_oom() {
    let exit = |limits: serde_json::Value| {
        let p = not_ready(
            json!([{"name": "web", "image": "busybox:1.36", "imageID": "", "ready": false, "restartCount": 1,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "Error"}}}]),
            json!({"containers": [{"name": "web", "image": "busybox:1.36", "resources": {"limits": limits}}]}),
        );
        diagnose_pod_facts(&facts(p, vec![])).remove(0)
    };
    let limited = exit(json!({"memory": "16Mi"}));
    assert!(
        matches!(limited.cause, Cause::OomKilled { .. }),
        "{limited:?}"
    );
    assert_eq!(limited.certainty, Certainty::Ambiguous);
    assert_eq!(
        limited.candidates,
        vec![CauseKind::OomKilled, CauseKind::CrashLoop]
    );
    assert!(
        limited.summary.contains("did not record OOMKilled"),
        "{}",
        limited.summary
    );
    // No memory limit: nothing points at memory, it is a crash with code 137.
    let unlimited = exit(json!({}));
    assert!(
        matches!(unlimited.cause, Cause::CrashLoop { .. }),
        "{unlimited:?}"
    );
    assert_eq!(unlimited.certainty, Certainty::Certain);
}

#[test]
fn liveness_failures_beat_the_exit_code() {
    let p = not_ready(
        json!([{"name": "web", "image": "busybox:1.36", "imageID": "", "ready": false, "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "Error"}}}]),
        json!({"containers": [{"name": "web", "image": "busybox:1.36",
               "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2}}]}),
    );
    // Real messages (kubernetes/kubernetes#24306).
    let events = vec![
        event(
            "Unhealthy",
            "Liveness probe failed: Get \"http://x.x.x.x.x:8080/actuator/health\": dial tcp  x.x.x.x:8080: connect: connection refused",
            Some("web"),
        ),
        event(
            "Killing",
            "Container web failed liveness probe, will be restarted",
            Some("web"),
        ),
    ];
    let finding = &diagnose_pod_facts(&facts(p, events))[0];
    assert_eq!(finding.kind(), CauseKind::ProbeFailing);
    assert_eq!(
        finding.cause,
        Cause::ProbeFailing {
            container: "web".into(),
            probe: "liveness".into(),
            check: "httpGet :8080/healthz every 2s, failing after 3".into()
        }
    );
}

#[test]
fn readiness_probe_with_its_last_unhealthy_event() {
    let p = not_ready(
        json!([{"name": "web", "image": "busybox:1.36", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"running": {}}}]),
        json!({"containers": [{"name": "web", "image": "busybox:1.36",
               "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}}}]}),
    );
    // Real message (CrunchyData/postgres-operator#2736).
    let events = vec![event(
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        Some("web"),
    )];
    let finding = &diagnose_pod_facts(&facts(p, events))[0];
    assert_eq!(
        finding.summary,
        "container web runs but its readiness probe (exec \"cat /tmp/ready\") fails: HTTP probe failed with statuscode: 503"
    );
    assert!(
        finding.evidence[0].text.contains("exec \"cat /tmp/ready\""),
        "{:?}",
        finding.evidence
    );
}

#[test]
fn a_failed_readiness_probe_is_named_before_the_status_says_the_container_runs() {
    // CI: the Unhealthy event was listed while the pod still said ContainerCreating.
    let p = not_ready(
        json!([{"name": "api", "image": "orders-api:1", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]),
        json!({"containers": [{"name": "api", "image": "orders-api:1",
               "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 1}}]}),
    );
    let events = vec![event(
        "Unhealthy",
        "Readiness probe failed: Get \"http://10.244.0.52:8080/health\": dial tcp 10.244.0.52:8080: connect: connection refused",
        Some("api"),
    )];
    let findings = diagnose_pod_facts(&facts(p.clone(), events));
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].kind(), CauseKind::ProbeFailing);
    // Without probe events a creating container is just starting: nothing to report.
    assert!(diagnose_pod_facts(&facts(p, vec![])).is_empty());
}

#[test]
fn missing_config_in_every_wording() {
    // Real messages: kruize/autotune#35, eirini-release#111, shieldworks/aegis#293,
    // hetznercloud/csi-driver#1389, projectcontour/contour#3548, kubernetes/kubernetes#25096.
    assert_eq!(
        missing_config("Error: configmap \"autotune-config-key\" not found"),
        Some(("ConfigMap".into(), "autotune-config-key".into(), None))
    );
    assert_eq!(
        missing_config("Error: secrets \"secrets-2.16.4-1\" not found"),
        Some(("Secret".into(), "secrets-2.16.4-1".into(), None))
    );
    assert_eq!(
        missing_config(
            "Error: couldn't find key VALUE in Secret default/aegis-secret-aegis-workload-demo"
        ),
        Some((
            "Secret".into(),
            "aegis-secret-aegis-workload-demo".into(),
            Some("VALUE".into())
        ))
    );
    assert_eq!(
        missing_config("couldn't find key network in Secret kube-system/hcloud"),
        Some(("Secret".into(), "hcloud".into(), Some("network".into())))
    );
    assert_eq!(
        missing_config(
            "MountVolume.SetUp failed for volume \"contourcert\" : secret \"contourcert\" not found"
        ),
        Some(("Secret".into(), "contourcert".into(), None))
    );
    assert_eq!(
        missing_config(
            "Unable to mount volumes for pod \"nginx-ingress-controller-1626740531-88561_default(d125e230-1151-11e6-a2d1-0adbaa6061ff)\": configmaps \"nginx-template\" not found"
        ),
        Some(("ConfigMap".into(), "nginx-template".into(), None))
    );
}

#[test]
fn create_container_config_error_names_the_configmap_and_the_env_that_reads_it() {
    let p = pod(json!({
        "metadata": {"name": "web-1", "namespace": "dev"},
        "spec": {"containers": [{"name": "web", "image": "busybox:1.36",
            "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "mode"}}}]}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "web", "image": "busybox:1.36", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "configmap \"app-config\" not found"}}}]}
    }));
    let finding = &diagnose_pod_facts(&facts(p, vec![]))[0];
    assert_eq!(
        finding.summary,
        "ConfigMap app-config does not exist in namespace dev; container web needs it"
    );
    assert!(
        finding
            .evidence
            .iter()
            .any(|e| e.text == "env MODE of container web reads key mode of ConfigMap app-config")
    );
    assert!(
        finding
            .fix
            .contains("kubectl create configmap app-config -n dev --from-literal=KEY=VALUE"),
        "{}",
        finding.fix
    );
}

#[test]
fn scheduler_reasons_in_every_era() {
    // Real messages: kiwix/operations#245, NVIDIA/k8s-device-plugin#430,
    // argoproj/argo-workflows#190, hystax/optscale#568, kubernetes/kubernetes#37232.
    assert_eq!(
        scheduler_reasons(
            "0/5 nodes are available: 1 Insufficient cpu, 4 node(s) didn't match Pod's node affinity/selector. preemption: 0/5 nodes are available: 1  No preemption victims found for incoming pod, 4 Preemption is not helpful for scheduling."
        ),
        [
            "1 Insufficient cpu",
            "4 node(s) didn't match Pod's node affinity/selector"
        ]
    );
    assert_eq!(
        scheduler_reasons(
            "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
        ),
        ["1 Insufficient nvidia.com/gpu"]
    );
    assert_eq!(
        scheduler_reasons(
            "No nodes are available that match all of the following predicates:: Insufficient cpu (9), Insufficient memory (15), MatchNodeSelector (18)."
        ),
        [
            "Insufficient cpu (9)",
            "Insufficient memory (15)",
            "MatchNodeSelector (18)"
        ]
    );
    // Kubernetes 1.34 (a kind cluster's own event): the DRA plugin's post-filter word
    // sits between the reasons and the preemption part.
    assert_eq!(
        scheduler_reasons(
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. no new claims to deallocate, preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        ),
        ["1 node(s) didn't match Pod's node affinity/selector"]
    );
    assert_eq!(
        scheduler_reasons(
            "0/1 nodes are available: 1 Insufficient cpu. no new claims to deallocate, preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        ),
        ["1 Insufficient cpu"]
    );
    assert_eq!(
        scheduler_reasons(
            "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        ),
        ["1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
    );
    assert_eq!(
        scheduler_reasons(
            "pod (jenkins-master-645022479-ov9ka) failed to fit in any node\nfit failure on node (gke-warpdrive-default-pool-eae1f3b0-spgr): Insufficient cpu\nfit failure on node (gke-warpdrive-default-pool-eae1f3b0-jitr): Insufficient cpu"
        ),
        ["Insufficient cpu"]
    );
}

#[test]
fn unschedulable_compares_the_request_with_the_biggest_node() {
    let p = pod(json!({
        "metadata": {"name": "web-1", "namespace": "dev"},
        "spec": {"containers": [{"name": "web", "image": "busybox:1.36", "resources": {"requests": {"cpu": "64"}}}]},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}]}
    }));
    let mut f = facts(p, vec![]);
    f.nodes = vec![NodeFit {
        name: "n".into(),
        labels: BTreeMap::new(),
        cpu_millis: Some(2000),
        memory_bytes: None,
    }];
    let finding = &diagnose_pod_facts(&f)[0];
    assert_eq!(
        finding.summary,
        "no node can run the pod: 1 Insufficient cpu (it requests 64 CPU; the largest node has 2 CPU allocatable)"
    );
    assert!(finding.fix.contains("--requests=cpu="), "{}", finding.fix);
}

/// A label no node has: said from the pod's own spec, so it reads the same for an
/// attendee who cannot list nodes; with the nodes, which label none of them has.
#[test]
fn an_unmatched_node_selector_names_the_label() {
    let p = pod(json!({
        "metadata": {"name": "catalog-1", "namespace": "att1"},
        "spec": {"containers": [{"name": "web", "image": "busybox:1.36"}],
                 "nodeSelector": {"kubernetes.io/os": "linux", "node-pool": "high-memory"}},
        "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."}]}
    }));
    let without_nodes = &diagnose_pod_facts(&facts(p.clone(), vec![]))[0];
    assert!(matches!(without_nodes.cause, Cause::Unschedulable { .. }));
    assert_eq!(
        without_nodes.summary,
        "no node can run the pod: 1 node(s) didn't match Pod's node affinity/selector (its nodeSelector asks for kubernetes.io/os=linux,node-pool=high-memory)"
    );
    assert_eq!(
        without_nodes.fix,
        "remove or correct the nodeSelector kubernetes.io/os=linux,node-pool=high-memory of deployment/web (`kubectl get deployment/web -n att1 -o jsonpath='{.spec.template.spec.nodeSelector}'` shows it; the workspace's manifests say what it should be), or have a cluster admin label a node with it"
    );
    assert!(!without_nodes.fix.contains("get nodes"));
    let mut f = facts(p, vec![]);
    f.nodes = vec![NodeFit {
        name: "kind-control-plane".into(),
        labels: BTreeMap::from([("kubernetes.io/os".to_string(), "linux".to_string())]),
        cpu_millis: Some(2000),
        memory_bytes: None,
    }];
    let with_nodes = &diagnose_pod_facts(&f)[0];
    assert_eq!(
        with_nodes.summary,
        "no node can run the pod: 1 node(s) didn't match Pod's node affinity/selector (no node has node-pool=high-memory; the pod's nodeSelector asks for it)"
    );
    assert!(
        with_nodes
            .evidence
            .iter()
            .any(|e| e.text == "none of the 1 node(s) is labelled node-pool=high-memory"),
        "{:?}",
        with_nodes.evidence
    );
    assert!(
        with_nodes.fix.starts_with(
            "remove or correct the nodeSelector node-pool=high-memory of deployment/web"
        )
    );
}

#[test]
fn quantities() {
    assert_eq!(cpu_millis("100m"), Some(100));
    assert_eq!(cpu_millis("2"), Some(2000));
    assert_eq!(cpu_millis("0.5"), Some(500));
    assert_eq!(memory_bytes("64Mi"), Some(64 * 1024 * 1024));
    assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
    assert_eq!(memory_bytes("1024"), Some(1024));
}

#[test]
fn a_crash_loop_between_restarts_is_still_a_crash_loop() {
    // Caught running between two crashes: Ready, yet restarted 3s after exit code 3.
    let running = pod(json!({
        "metadata": {"name": "web-1", "namespace": "dev"},
        "spec": {"containers": [{"name": "web", "image": "busybox:1.36"}]},
        "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "web", "image": "busybox:1.36", "imageID": "",
                "ready": true, "restartCount": 2,
                "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}},
                "lastState": {"terminated": {"exitCode": 3, "reason": "Error",
                    "finishedAt": "2026-12-01T09:59:59Z"}}}]}
    }));
    let soon: k8s_openapi::jiff::Timestamp = "2026-12-01T10:00:03Z".parse().unwrap();
    let later: k8s_openapi::jiff::Timestamp = "2026-12-01T10:30:00Z".parse().unwrap();
    assert!(
        !pod_needs_diagnosis(&running),
        "without the time, nothing is judged"
    );
    assert!(pod_needs_diagnosis_at(&running, Some(soon)));
    assert!(
        !pod_needs_diagnosis_at(&running, Some(later)),
        "an old crash is history"
    );
    let mut f = facts(running, vec![]);
    f.now = Some(soon);
    let findings = diagnose_pod_facts(&f);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].kind(), CauseKind::CrashLoop);
}

#[test]
fn a_ready_or_finished_pod_needs_no_diagnosis() {
    let ready = pod(
        json!({"metadata": {"name": "a"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
    );
    assert!(!pod_needs_diagnosis(&ready));
    let done = pod(json!({"metadata": {"name": "a"}, "status": {"phase": "Succeeded"}}));
    assert!(!pod_needs_diagnosis(&done));
    assert!(diagnose_pod_facts(&facts(ready, vec![])).is_empty());
}
