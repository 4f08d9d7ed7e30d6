//! The whole lab on the shared kind cluster (`support::shared_lab`): a warm `up` that changes
//! nothing and plans nothing, drift that `status` and `up --dry-run` name and `up` then
//! repairs exactly, a bad image tag seen failing for real, a hand `kubectl apply -k` after
//! `up`, `--context` mode, and a Docker engine that is not there. (The labs: `lab.rs`.) Each scenario is its own
//! test, so one failure hides no other check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// The image the orders-api Deployment's pod template asks for.
fn deployed_image(context: &str) -> String {
    kubectl(
        context,
        &[
            "-n",
            "dev",
            "get",
            "deployment",
            "orders-api",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    )
}

/// `up -o json` on the shared lab, which must succeed.
fn up(lab: &SharedLab, extra: &[&str]) -> Value {
    let mut args = vec!["up", "-o", "json", "--timeout", "180s"];
    args.extend_from_slice(extra);
    let run = lab.run(&args);
    run.assert_code(0);
    run.json()
}

fn dry_run(lab: &SharedLab) -> Value {
    let run = lab.run(&["up", "--dry-run", "-o", "json"]);
    run.assert_code(0);
    run.json()
}

/// The pushed reference of the sample image, from a warm `up`.
fn reference(summary: &Value) -> String {
    summary["images"][0]["reference"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits (bounded) until some pod of the app is in `reason`; returns the pod's name.
fn wait_for_waiting_reason(context: &str, reason: &str, within: Duration) -> String {
    let started = Instant::now();
    loop {
        let pods = kubectl_json(
            context,
            &["-n", "dev", "get", "pods", "-l", "app=orders-api"],
        );
        for pod in pods["items"].as_array().unwrap() {
            let statuses = pod["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if statuses
                .iter()
                .any(|s| s["state"]["waiting"]["reason"] == reason)
            {
                return pod["metadata"]["name"].as_str().unwrap().to_string();
            }
        }
        assert!(
            started.elapsed() < within,
            "no pod reached {reason} within {within:?}: {pods}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_warm_up_changes_nothing_and_plans_nothing() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let node = format!("{}-control-plane", lab.cluster);

    let warm = up(lab, &[]);
    for name in ["registry", "cluster", "images", "wire-nodes", "deploy"] {
        assert_eq!(action(&warm, name)["outcome"], "reused", "{name}: {warm}");
        assert_eq!(
            action(&warm, name)["planned"],
            serde_json::json!([]),
            "{name}"
        );
    }
    let text = lab.run(&["up"]);
    text.assert_code(0);
    assert!(
        text.stdout.contains("already up; nothing changed"),
        "{}",
        text.stdout
    );
    let plan = dry_run(lab);
    assert_eq!(plan["empty"], true, "{plan}");
    let printed = lab.run(&["up", "--dry-run"]);
    printed.assert_code(0);
    assert!(
        printed.stdout.contains("Nothing to do"),
        "{}",
        printed.stdout
    );
    let status = lab.run(&["status", "-o", "json"]);
    status.assert_code(0);
    assert_eq!(status.json()["plan"], serde_json::json!([]));

    // Every part as kind's guide wires it, for both names of the registry.
    let reference = reference(&warm);
    assert!(reference.starts_with(&format!("{}/orders-api:", lab.registry_host)));
    assert_eq!(deployed_image(&lab.context), reference);
    for host in [lab.registry_host.clone(), format!("{}:5000", lab.registry)] {
        let hosts = docker(&[
            "exec",
            &node,
            "cat",
            &format!("/etc/containerd/certs.d/{host}/hosts.toml"),
        ]);
        assert!(
            hosts.contains(&format!("server = \"http://{}:5000\"", lab.registry)),
            "{host}: {hosts}"
        );
    }
    let hosting = kubectl(
        &lab.context,
        &[
            "-n",
            "kube-public",
            "get",
            "configmap",
            "local-registry-hosting",
            "-o",
            "jsonpath={.data.localRegistryHosting\\.v1}",
        ],
    );
    assert!(
        hosting.contains(&format!("host: \"{}\"", lab.registry_host)),
        "{hosting}"
    );
    let networks = docker(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks}}",
        &lab.registry,
    ]);
    assert!(networks.contains("\"kind\""), "{networks}");

    // Ownership names this workspace, in the registry's labels and the cluster's marker.
    let identity: Value = serde_json::from_str(
        &std::fs::read_to_string(lab.dir.join(".kindlab/workspace.json")).unwrap(),
    )
    .unwrap();
    let id = identity["id"].as_str().unwrap();
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"dev.kindlab.workspace\"}}",
            &lab.registry
        ]),
        id
    );
    let marker = docker(&["exec", &node, "cat", "/kind/kindlab-owner.json"]);
    assert!(marker.contains(id), "{marker}");
    // The images live on a named volume that outlives the container.
    let mounts = docker(&["inspect", "-f", "{{json .Mounts}}", &lab.registry]);
    assert!(
        mounts.contains(&format!("\"Name\":\"{}-images\"", lab.registry)),
        "{mounts}"
    );
}

#[test]
fn drift_is_named_by_status_and_dry_run_then_repaired_exactly() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let node = format!("{}-control-plane", lab.cluster);
    let reference = reference(&up(lab, &[]));

    // Drift in the objects and the ConfigMap. (Drift that would break other tests' pulls, in
    // the nodes' hosts.toml and the kind network, is made on a cluster of its own: lifecycle.)
    kubectl(
        &lab.context,
        &[
            "-n",
            "dev",
            "set",
            "image",
            "deployment/orders-api",
            &format!("api={}/orders-api:by-hand", lab.registry_host),
        ],
    );
    kubectl(
        &lab.context,
        &["-n", "dev", "delete", "service", "orders-api"],
    );
    kubectl(
        &lab.context,
        &[
            "-n",
            "kube-public",
            "delete",
            "configmap",
            "local-registry-hosting",
        ],
    );

    let status = lab.run(&["status", "-o", "json"]);
    status.assert_code(10);
    let report = status.json();
    let row = |component: &str| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["component"] == component)
            .cloned()
            .unwrap_or_else(|| panic!("no row {component}: {report}"))
    };
    assert_eq!(row("Deployment dev/orders-api")["state"], "drifted");
    assert_eq!(row("Service dev/orders-api")["state"], "missing");
    assert_eq!(row("local-registry-hosting")["state"], "missing");
    assert_eq!(row("registry network")["state"], "connected");
    assert_eq!(row(&format!("node {node}"))["state"], "wired");

    let planned = plans(&dry_run(lab));
    assert_eq!(
        planned["wire-nodes"],
        vec!["create ConfigMap kube-public/local-registry-hosting".to_string()]
    );
    assert_eq!(
        planned["deploy"],
        vec![
            "create Service dev/orders-api".to_string(),
            "configure Deployment dev/orders-api (spec.template.spec.containers[api].image)"
                .to_string()
        ]
    );
    for quiet in ["registry", "cluster", "images"] {
        assert!(planned[quiet].is_empty(), "{quiet}: {planned:?}");
    }
    // status lists the same plan.
    let status_plan: Vec<String> = report["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let all: Vec<String> = planned.values().flatten().cloned().collect();
    assert_eq!(
        status_plan
            .iter()
            .collect::<std::collections::BTreeSet<_>>(),
        all.iter().collect(),
    );

    // `up` makes exactly these repairs.
    let repaired = up(lab, &[]);
    assert_eq!(plans(&repaired), planned, "{repaired}");
    assert_action(
        &repaired,
        "wire-nodes",
        "repaired",
        "created ConfigMap kube-public/local-registry-hosting",
    );
    assert_action(
        &repaired,
        "deploy",
        "repaired",
        "configured Deployment dev/orders-api",
    );
    assert_eq!(deployed_image(&lab.context), reference);
    assert_eq!(dry_run(lab)["empty"], true);
    lab.run(&["status"]).assert_code(0);
}

#[test]
fn a_tag_that_does_not_exist_fails_for_real_and_up_puts_it_back() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let reference = reference(&up(lab, &[]));
    let bad = format!("{}/orders-api:does-not-exist", lab.registry_host);
    kubectl(
        &lab.context,
        &[
            "-n",
            "dev",
            "set",
            "image",
            "deployment/orders-api",
            &format!("api={bad}"),
        ],
    );
    let pod = wait_for_waiting_reason(&lab.context, "ErrImagePull", Duration::from_secs(120));
    let pod_backoff =
        wait_for_waiting_reason(&lab.context, "ImagePullBackOff", Duration::from_secs(120));
    assert_eq!(pod, pod_backoff);
    let events = kubectl_json(
        &lab.context,
        &[
            "-n",
            "dev",
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod}"),
        ],
    );
    let not_found = events["items"].as_array().unwrap().iter().any(|e| {
        e["type"] == "Warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains(&bad) && m.contains("not found"))
    });
    assert!(
        not_found,
        "no Warning event saying {bad} was not found: {events}"
    );
    let status = lab.run(&["status", "-o", "json"]);
    status.assert_code(10);
    assert!(status.stdout.contains("drifted"), "{}", status.stdout);

    let repaired = up(lab, &[]);
    assert_action(
        &repaired,
        "deploy",
        "repaired",
        "configured Deployment dev/orders-api",
    );
    assert_eq!(deployed_image(&lab.context), reference);
}

#[test]
fn a_hand_kubectl_apply_after_up_warns_of_nothing_and_changes_nothing() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    // Objects whose last-applied record kindlab wrote: without one, kindlab plans to write it
    // (a hand apply would warn), and `up` does.
    for object in [
        "namespace/dev",
        "configmap/orders-api-config",
        "service/orders-api",
        "deployment/orders-api",
    ] {
        kubectl(
            &lab.context,
            &[
                "-n",
                "dev",
                "annotate",
                object,
                "kubectl.kubernetes.io/last-applied-configuration-",
            ],
        );
    }
    let planned = plans(&dry_run(lab));
    assert!(
        planned["deploy"].contains(&format!(
            "configure Deployment dev/orders-api (metadata.annotations.{})",
            "kubectl.kubernetes.io/last-applied-configuration"
        )),
        "{planned:?}"
    );
    let reference = reference(&up(lab, &[]));
    let tag = reference.rsplit(':').next().unwrap();
    // The overlay as it names the pushed image, in a copy (the shared workspace stays as
    // it is): what a user runs `kubectl apply -k` on.
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .args(["-r"])
        .arg(lab.dir.join("deploy"))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    let kustomization = copy.path().join("deploy/overlays/dev/kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization).unwrap();
    let pinned: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("newTag:") {
                format!("    newTag: {tag}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&kustomization, pinned + "\n").unwrap();

    let out = std::process::Command::new("kubectl")
        .args(["--context", &lab.context, "apply", "-k"])
        .arg(copy.path().join("deploy/overlays/dev"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stderr.contains("Warning") && !stderr.contains("last-applied-configuration"),
        "kubectl warned: {stderr}"
    );
    for object in [
        "namespace/dev",
        "configmap/orders-api-config",
        "service/orders-api",
        "deployment.apps/orders-api",
    ] {
        assert!(
            stdout.contains(&format!("{object} unchanged")),
            "{object} changed by a hand apply: {stdout}"
        );
    }
    // Nothing kindlab added was removed, and kindlab sees nothing to do.
    let labels = kubectl(
        &lab.context,
        &[
            "-n",
            "dev",
            "get",
            "deployment",
            "orders-api",
            "-o",
            "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}",
        ],
    );
    assert_eq!(labels, "kindlab");
    lab.run(&["status"]).assert_code(0);
    assert_eq!(dry_run(lab)["empty"], true);
}

#[test]
fn an_existing_cluster_and_registry_are_used_as_they_are() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let existing = up(
        lab,
        &["--context", &lab.context, "--registry", &lab.registry_host],
    );
    assert_action(&existing, "cluster", "skipped", &lab.context);
    assert_action(&existing, "registry", "skipped", &lab.registry_host);
    assert_action(&existing, "wire-nodes", "skipped", "");
    assert_eq!(
        action(&existing, "deploy")["outcome"],
        "reused",
        "{existing}"
    );
    lab.run(&[
        "status",
        "--context",
        &lab.context,
        "--registry",
        &lab.registry_host,
    ])
    .assert_code(0);
}

#[test]
fn an_unreachable_engine_at_start_changes_nothing_and_the_next_up_is_warm() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let state_before = std::fs::read_to_string(lab.dir.join(".kindlab/state.json")).ok();
    let mut args = vec!["--workspace", lab.dir.to_str().unwrap(), "up"];
    args.push("--timeout=60s");
    let mut env = node_image_env();
    env.push(("DOCKER_HOST", "unix:///nonexistent/docker.sock"));
    let run = kindlab_env(&args, &env);
    run.assert_code(4).assert_error(
        "error: cannot reach the Docker engine at unix:///nonexistent/docker.sock\n\
             help: start Docker (Docker Desktop, Colima, or `sudo systemctl start docker`), or point DOCKER_HOST at a running engine",
    );
    assert_eq!(
        std::fs::read_to_string(lab.dir.join(".kindlab/state.json")).ok(),
        state_before
    );
    let started = Instant::now();
    let recovered = up(lab, &[]);
    eprintln!(
        "recovery after an unreachable engine: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(action(&recovered, "deploy")["outcome"], "reused");
}
