//! The whole lab on a real kind cluster: cold `up`, a warm `up` that changes nothing, a bad
//! image tag seen failing for real, every repair `up` promises, `--context` mode, and `down`.
//!
//! One cluster serves the whole scenario (creating one takes a minute or more). It uses
//! KINDLAB_TEST_NODE_IMAGE when set (machines that cannot pull kind's image: see
//! `make offline-images`), else kind's default node image.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// Deletes the cluster however the test ends.
struct ClusterGuard(String);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let _ = Command::new("kind")
            .args(["delete", "cluster", "--name", &self.0])
            .output();
    }
}

fn kubectl(context: &str, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--context")
        .arg(context)
        .args(args)
        .output()
        .expect("run kubectl (is it on PATH?)");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

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

fn kubectl_json(context: &str, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    serde_json::from_str(&kubectl(context, &full)).unwrap()
}

fn action<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == name)
        .unwrap_or_else(|| panic!("no action {name} in {summary}"))
}

#[track_caller]
fn assert_action(summary: &Value, name: &str, outcome: &str, detail_contains: &str) {
    let a = action(summary, name);
    assert_eq!(a["outcome"], outcome, "{name}: {a}");
    let details = a["details"].to_string();
    assert!(
        details.contains(detail_contains),
        "{name} details {details} lack {detail_contains:?}"
    );
}

/// `up -o json`, which must succeed.
fn up(ws: &TestWorkspace, extra: &[&str]) -> Value {
    let mut args = vec!["up", "-o", "json", "--timeout", "180s"];
    args.extend_from_slice(extra);
    let run = ws.run(&args);
    run.assert_code(0);
    run.json()
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
fn the_lab_comes_up_fails_for_real_and_is_repaired() {
    let cluster = unique("kl-it");
    let ws = TestWorkspace::with_cluster(&cluster);
    let _guard = ClusterGuard(cluster.clone());
    let context = format!("kind-{cluster}");
    let node = format!("{cluster}-control-plane");
    let registry_host = format!("localhost:{}", ws.port);
    let env: Vec<(&str, String)> = std::env::var("KINDLAB_TEST_NODE_IMAGE")
        .map(|i| vec![("KINDLAB_NODE_IMAGE", i)])
        .unwrap_or_default();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // A container kindlab did not make: `down` must leave it alone.
    let bystander = unique("kl-bystander");
    docker(&[
        "run",
        "-d",
        "--name",
        &bystander,
        "busybox:1.36",
        "sleep",
        "3600",
    ]);
    struct Bystander(String);
    impl Drop for Bystander {
        fn drop(&mut self) {
            docker_quiet(&["rm", "-f", &self.0]);
        }
    }
    let _bystander = Bystander(bystander.clone());

    // --- Cold up.
    let run = ws.run_env(&["up", "-o", "json", "--timeout", "180s"], &env);
    run.assert_code(0);
    let cold = run.json();
    for name in ["registry", "cluster", "images", "wire-nodes", "deploy"] {
        assert_eq!(action(&cold, name)["outcome"], "created", "{name}: {cold}");
    }
    let reference = cold["images"][0]["reference"].as_str().unwrap().to_string();
    assert!(
        reference.starts_with(&format!("{registry_host}/orders-api:")),
        "{reference}"
    );
    let applied = cold["applied"].to_string();
    for object in ["Namespace", "Service", "Deployment"] {
        assert!(applied.contains(object), "{object} not applied: {applied}");
    }

    // Every object is there, the rollout is complete, and the pod serves the pushed image,
    // pulled by the node from localhost:<port> through the hosts.toml wiring.
    let deployment = kubectl_json(&context, &["-n", "dev", "get", "deployment", "orders-api"]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        reference.as_str()
    );
    assert_eq!(deployment["status"]["availableReplicas"], 1, "{deployment}");
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kindlab",
        "{deployment}"
    );
    let body = kubectl(
        &context,
        &[
            "-n",
            "dev",
            "exec",
            "deploy/orders-api",
            "--",
            "wget",
            "-qO-",
            "http://127.0.0.1:8080/",
        ],
    );
    assert!(
        body.contains(r#""service":"orders-api""#) && body.contains(r#""version":"1.0.0""#),
        "{body}"
    );
    let hosts = docker(&[
        "exec",
        &node,
        "cat",
        &format!("/etc/containerd/certs.d/{registry_host}/hosts.toml"),
    ]);
    assert!(
        hosts.contains(&format!("http://{}:5000", ws.registry)),
        "{hosts}"
    );
    let hosting = kubectl(
        &context,
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
        hosting.contains(&format!("host: \"{registry_host}\"")),
        "{hosting}"
    );
    assert!(
        hosting.contains(&format!(
            "hostFromContainerRuntime: \"{}:5000\"",
            ws.registry
        )),
        "{hosting}"
    );
    let networks = docker(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks}}",
        &ws.registry,
    ]);
    assert!(networks.contains("\"kind\""), "{networks}");
    ws.run(&["status"]).assert_code(0);

    // --- Warm up: everything reused, nothing created again.
    let warm = up(&ws, &[]);
    for name in ["registry", "cluster", "images", "wire-nodes", "deploy"] {
        assert_eq!(action(&warm, name)["outcome"], "reused", "{name}: {warm}");
    }
    assert_eq!(containers_named(&ws.registry).len(), 1);
    let text = ws.run(&["up"]);
    text.assert_code(0);
    assert!(
        text.stdout.contains("already up; nothing changed"),
        "{}",
        text.stdout
    );

    // (The labs run against the shared lab: tests/it/lab.rs.)

    // --- A tag that does not exist fails for real: ErrImagePull, then ImagePullBackOff, and
    // the kubelet's event says the reference was not found.
    let bad = format!("{registry_host}/orders-api:does-not-exist");
    kubectl(
        &context,
        &[
            "-n",
            "dev",
            "set",
            "image",
            "deployment/orders-api",
            &format!("api={bad}"),
        ],
    );
    let pod = wait_for_waiting_reason(&context, "ErrImagePull", Duration::from_secs(120));
    let pod_backoff =
        wait_for_waiting_reason(&context, "ImagePullBackOff", Duration::from_secs(120));
    assert_eq!(pod, pod_backoff);
    let events = kubectl_json(
        &context,
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
    let status = ws.run(&["status", "-o", "json"]);
    status.assert_code(10);
    assert!(status.stdout.contains("drifted"), "{}", status.stdout);

    // --- Repair: the image changed by hand is put back, and the rollout completes.
    let repaired = up(&ws, &[]);
    assert_action(
        &repaired,
        "deploy",
        "repaired",
        "configured Deployment dev/orders-api",
    );
    let image = deployed_image(&context);
    assert_eq!(image, reference);

    // --- Repair: the Deployment deleted.
    kubectl(
        &context,
        &[
            "-n",
            "dev",
            "delete",
            "deployment",
            "orders-api",
            "--wait=true",
        ],
    );
    assert_action(
        &up(&ws, &[]),
        "deploy",
        "repaired",
        "created Deployment dev/orders-api",
    );

    // --- Repair: the KEP-1755 ConfigMap deleted.
    kubectl(
        &context,
        &[
            "-n",
            "kube-public",
            "delete",
            "configmap",
            "local-registry-hosting",
        ],
    );
    assert_action(
        &up(&ws, &[]),
        "wire-nodes",
        "repaired",
        "created ConfigMap kube-public/local-registry-hosting",
    );

    // --- Repair: a node's hosts.toml missing.
    docker(&[
        "exec",
        &node,
        "rm",
        &format!("/etc/containerd/certs.d/{registry_host}/hosts.toml"),
    ]);
    assert_action(
        &up(&ws, &[]),
        "wire-nodes",
        "repaired",
        &format!("wrote hosts.toml for {registry_host} in {node}"),
    );

    // --- Repair: the registry off the kind network.
    docker(&["network", "disconnect", "kind", &ws.registry]);
    assert_action(
        &up(&ws, &[]),
        "wire-nodes",
        "repaired",
        "to the kind network",
    );

    // --- Repair: the registry stopped (started, not recreated).
    docker(&["stop", &ws.registry]);
    ws.run(&["status"]).assert_code(10);
    assert_action(
        &up(&ws, &[]),
        "registry",
        "repaired",
        "started the stopped container",
    );

    // --- Repair: the registry container removed (its images with it): made again, and the
    // image pushed again from the engine's copy, without a rebuild.
    docker(&["rm", "-f", "-v", &ws.registry]);
    let after_rm = up(&ws, &[]);
    assert_action(&after_rm, "registry", "created", "");
    assert_action(&after_rm, "images", "created", &reference);
    assert_action(&after_rm, "wire-nodes", "repaired", "to the kind network");

    // --- Repair: the node container stopped.
    docker(&["stop", &node]);
    assert_action(
        &up(&ws, &[]),
        "cluster",
        "repaired",
        &format!("started stopped nodes {node}"),
    );
    kubectl(
        &context,
        &[
            "-n",
            "dev",
            "rollout",
            "status",
            "deployment/orders-api",
            "--timeout=120s",
        ],
    );

    // --- Existing-cluster mode against the same cluster: no kind, no wiring.
    let existing = up(&ws, &["--context", &context, "--registry", &registry_host]);
    assert_action(&existing, "cluster", "skipped", &context);
    assert_action(&existing, "registry", "skipped", &registry_host);
    assert_action(&existing, "wire-nodes", "skipped", "");
    assert_eq!(
        action(&existing, "deploy")["outcome"],
        "reused",
        "{existing}"
    );
    ws.run(&[
        "status",
        "--context",
        &context,
        "--registry",
        &registry_host,
    ])
    .assert_code(0);

    // --- Down: the cluster and our registry go; nothing else does.
    let down = ws.run(&["down", "-o", "json"]);
    down.assert_code(0);
    assert_eq!(down.json()["cluster"], "deleted");
    let clusters = Command::new("kind")
        .args(["get", "clusters"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&clusters.stdout)
            .lines()
            .any(|c| c == cluster)
    );
    assert!(containers_named(&ws.registry).is_empty());
    assert!(containers_named(&node).is_empty());
    assert_eq!(
        containers_named(&bystander).len(),
        1,
        "down touched a container it did not create"
    );
    let labelled = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={}", ws.registry),
        "--filter",
        "label=dev.kindlab.owned=true",
        "--format",
        "{{.Names}}",
    ]);
    assert!(labelled.is_empty(), "{labelled}");
    let networks = docker(&[
        "network",
        "ls",
        "--filter",
        "label=dev.kindlab.owned=true",
        "--format",
        "{{.Name}}",
    ]);
    assert!(networks.is_empty(), "{networks}");
}
