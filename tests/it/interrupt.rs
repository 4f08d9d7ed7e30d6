//! SIGINT in each phase of `up`, the registry removed during `up`, and a watch the API server
//! refuses: each ends in one line naming the cause, with its fix and its exit code, and the
//! next `up` recovers. These share the shared lab's cluster (in namespaces of their own);
//! interrupting cluster creation is in `lifecycle`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::support::*;

/// Deletes a namespace of the shared cluster however the test ends.
struct NamespaceGuard {
    context: String,
    namespace: String,
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kubectl")
            .args([
                "--context",
                &self.context,
                "delete",
                "namespace",
                &self.namespace,
                "--wait=false",
            ])
            .output();
    }
}

/// Moves the sample overlay to namespace `namespace` and names the image at `registry_host`.
fn own_namespace(ws: &TestWorkspace, namespace: &str, registry_host: &str) {
    let overlay = ws.path().join("deploy/overlays/dev");
    let kustomization = overlay.join("kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization).unwrap();
    let text = text
        .replace("namespace: dev", &format!("namespace: {namespace}"))
        .replace(&format!("localhost:{}", ws.port), registry_host);
    std::fs::write(&kustomization, text).unwrap();
    let ns = overlay.join("namespace.yaml");
    let text = std::fs::read_to_string(&ns).unwrap();
    std::fs::write(
        &ns,
        text.replace("name: dev", &format!("name: {namespace}")),
    )
    .unwrap();
}

/// A build step that takes `seconds`, and content of its own (a new image to build).
fn slow_build(ws: &TestWorkspace, seconds: u32) {
    let dockerfile = ws.app_dir().join("Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(
        &dockerfile,
        text.replace("EXPOSE 8080", &format!("RUN sleep {seconds}\nEXPOSE 8080")),
    )
    .unwrap();
    std::fs::write(
        ws.app_dir().join("VERSION"),
        format!("{}\n", unique("interrupt")),
    )
    .unwrap();
}

/// Starts `up` in `ws`, waits for the stderr line with `cue` and for the cluster step's end
/// (it runs beside the registry and the images: waiting for it makes what the run finished
/// the same every time), sends SIGINT, and checks the run ends at once with exit 130.
#[track_caller]
fn interrupt_up(ws: &TestWorkspace, hold: &str, cue: &str, during: &str) -> Run {
    let mut args = vec!["--workspace", ws.path().to_str().unwrap()];
    args.extend(["up", "--adopt", "--timeout", "180s"]);
    // The steps' progress (debug) on stderr, so a cue can be a step's detail.
    let mut up = Spawned::start(
        &args,
        &[
            ("KINDLAB_TEST_HOLD", hold),
            ("KINDLAB_LOG", "kindlab=warn,kindlab::ui::status=debug"),
        ],
    );
    up.wait_for_lines(&[cue, "✓ Cluster kind-"], Duration::from_secs(120));
    let signalled = Instant::now();
    up.signal(Signal::INT);
    let run = up.finish(Duration::from_secs(30));
    eprintln!(
        "SIGINT during {during}: stopped in {:.1}s",
        signalled.elapsed().as_secs_f64()
    );
    run.assert_code(130);
    run
}

/// Pins an interrupted `up`'s error. The registry and the cluster are made at the same
/// time and finish in any order; `up` says the `finished:` list in the pipeline's order, so
/// the text is compared as it is.
#[track_caller]
fn assert_interrupted(run: &Run, expected: &str) {
    run.assert_error(expected);
}

#[test]
fn sigint_in_each_phase_of_up_stops_it_and_the_next_up_finishes() {
    let lab = shared_lab();
    // This workspace's `up` wires the shared cluster (to the same registry): it must not
    // repair what a drift test has just broken on purpose.
    let _dev = lab.lock_dev();
    // A workspace that shares the shared lab's cluster and registry (adopted), with its own
    // namespace and its own image.
    let ws = TestWorkspace::new();
    ws.write_manifest(&manifest(
        &lab.cluster,
        &lab.registry,
        &lab.port.to_string(),
    ));
    let namespace = unique("kl-int");
    own_namespace(&ws, &namespace, &lab.registry_host);
    let _namespace = NamespaceGuard {
        context: lab.context.clone(),
        namespace: namespace.clone(),
    };
    slow_build(&ws, 8);
    ws.slow_readiness(15);

    // Each phase is a scenario of its own; they share the workspace, its slow build (one
    // each would build the slow image again) and what an earlier phase adopted, so a failed
    // phase is recorded and the next one still runs.
    let mut checks = Checks::new();

    // The registry: held at its start (it is otherwise too quick to hit).
    checks.soft("SIGINT during the registry", || {
        let run = interrupt_up(&ws, "registry", "(test hold at registry)", "the registry");
        assert_interrupted(
            &run,
            "error: interrupted during the registry; finished: cluster (adopted); not finished: registry, images, wire-nodes, deploy\nhelp: run `kindlab up` to finish the lab (`kindlab status` shows where it stands; `kindlab down` removes what this workspace made)",
        );
    });

    // The images: during the slow build step, cued by the build's own step line.
    checks.soft("SIGINT during the images", || {
        let run = interrupt_up(&ws, "", "RUN sleep", "the images");
        assert_interrupted(
            &run,
            "error: interrupted during the images; finished: registry (adopted), cluster (reused); not finished: images, wire-nodes, deploy\nhelp: run `kindlab up` to finish the lab (`kindlab status` shows where it stands; `kindlab down` removes what this workspace made)",
        );
    });

    // Registry wiring: held at its start, after the images are pushed.
    checks.soft("SIGINT during registry wiring", || {
        let run = interrupt_up(
            &ws,
            "wire-nodes",
            "(test hold at wire-nodes)",
            "registry wiring",
        );
        assert_interrupted(
            &run,
            "error: interrupted during registry wiring; finished: registry (reused), cluster (reused), images (created); not finished: wire-nodes, deploy\nhelp: run `kindlab up` to finish the lab (`kindlab status` shows where it stands; `kindlab down` removes what this workspace made)",
        );
    });

    // Deploy: while the rollout waits for the slow readiness probe. The cue is the wait's
    // first report of the Deployment (`<ns>/<name>: 0 of 1 ...`): the watch is running.
    checks.soft("SIGINT during deploy", || {
        let run = interrupt_up(&ws, "", &format!("{namespace}/orders-api: "), "deploy");
        assert_interrupted(
            &run,
            "error: interrupted during deploy; 4 object(s) applied; the rollout of Deployment kl-int-<id>/orders-api goes on in the cluster; finished: registry (reused), cluster (reused), images (reused), wire-nodes (reused), guardrails (skipped); not finished: deploy\nhelp: run `kindlab up` to finish the lab (`kindlab status` shows where it stands; `kindlab down` removes what this workspace made)",
        );
    });

    let started = Instant::now();
    let done = ws.run(&["up", "-o", "json", "--timeout", "180s"]);
    eprintln!(
        "recovery after SIGINT in deploy: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    done.assert_code(0);
    ws.run(&["status"]).assert_code(0);
    // This workspace's own image (its VERSION is its own): untagged from the engine again.
    let reference = done.json()["images"][0]["reference"]
        .as_str()
        .unwrap()
        .to_string();
    docker_quiet(&["rmi", &reference]);

    // What this workspace adopted stays the shared lab's.
    let down = ws.run(&["down", "-o", "json"]);
    down.assert_code(0);
    let report = down.json();
    assert!(
        report["cluster"]
            .as_str()
            .unwrap()
            .starts_with("kept: adopted"),
        "{report}"
    );
    assert!(
        report["registry"]
            .as_str()
            .unwrap()
            .starts_with("kept: adopted"),
        "{report}"
    );
    lab.run(&["status"]).assert_code(0);
}

#[test]
fn the_registry_removed_during_up_is_named_and_the_next_up_recovers() {
    let lab = shared_lab();
    let ws = TestWorkspace::new();
    // Images only (the cluster is the shared lab's, through its context): no deploy.
    ws.write_manifest(&format!(
        "cluster:\n  name: {}\nregistry:\n  name: {}\n  port: {}\nimages:\n  - name: orders-api\n    context: apps/orders-api\n",
        lab.cluster, ws.registry, ws.port
    ));
    slow_build(&ws, 6);
    let mut up = Spawned::start(
        &[
            "--workspace",
            ws.path().to_str().unwrap(),
            "up",
            "--context",
            &lab.context,
        ],
        &[],
    );
    up.wait_for_line(" • Image orders-api", Duration::from_secs(60));
    docker(&["rm", "-f", &ws.registry]);
    let run = up.finish(Duration::from_secs(60));
    run.assert_code(11);
    run.assert_error(
        "error: registry container \"kl-registry-<id>\" was removed while kindlab was using it\n\
             help: run `kindlab up` again: it recreates kl-registry-<id>; its images are kept on volume kl-registry-<id>-images",
    );
    let started = Instant::now();
    let recovered = ws.run(&["up", "-o", "json", "--context", &lab.context]);
    eprintln!(
        "recovery after the registry was removed mid-up: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    recovered.assert_code(0);
    let summary = recovered.json();
    assert_action(&summary, "registry", "created", "");
    assert_action(&summary, "images", "created", "pushed");
}

#[test]
fn a_watch_refused_for_lack_of_permission_fails_at_once_with_the_fix() {
    let lab = shared_lab();
    let name = unique("kl-nowatch");
    let namespace = unique("kl-rbac");
    let _namespace = NamespaceGuard {
        context: lab.context.clone(),
        namespace: namespace.clone(),
    };
    struct RbacGuard(String, String);
    impl Drop for RbacGuard {
        fn drop(&mut self) {
            for what in ["clusterrolebinding", "clusterrole"] {
                let _ = std::process::Command::new("kubectl")
                    .args(["--context", &self.0, "delete", what, &self.1])
                    .output();
            }
            let _ = std::process::Command::new("kubectl")
                .args([
                    "--context",
                    &self.0,
                    "-n",
                    "kube-system",
                    "delete",
                    "serviceaccount",
                    &self.1,
                ])
                .output();
        }
    }
    let _rbac = RbacGuard(lab.context.clone(), name.clone());
    // May read and apply the sample's objects, but not watch them.
    kubectl(
        &lab.context,
        &["-n", "kube-system", "create", "serviceaccount", &name],
    );
    kubectl(
        &lab.context,
        &[
            "create",
            "clusterrole",
            &name,
            "--verb=get,list,create,patch",
            "--resource=namespaces,services,configmaps,deployments.apps",
        ],
    );
    kubectl(
        &lab.context,
        &[
            "create",
            "clusterrolebinding",
            &name,
            &format!("--clusterrole={name}"),
            &format!("--serviceaccount=kube-system:{name}"),
        ],
    );
    let token = kubectl(
        &lab.context,
        &["-n", "kube-system", "create", "token", &name],
    );
    let server = kubectl(
        &lab.context,
        &[
            "config",
            "view",
            "-o",
            &format!(
                "jsonpath={{.clusters[?(@.name==\"{}\")].cluster.server}}",
                lab.context
            ),
        ],
    );
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        kubeconfig.path(),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: restricted\n  context:\n    cluster: c\n    user: u\ncurrent-context: restricted\n"
        ),
    )
    .unwrap();

    let ws = TestWorkspace::new();
    ws.write_manifest(&manifest(&lab.cluster, &ws.registry, &ws.port.to_string()));
    own_namespace(&ws, &namespace, &lab.registry_host);
    let started = Instant::now();
    let run = ws.run_env(
        &[
            "up",
            "--context",
            "restricted",
            "--registry",
            &lab.registry_host,
            "--timeout",
            "120s",
        ],
        &[("KUBECONFIG", kubeconfig.path().to_str().unwrap())],
    );
    let took = started.elapsed();
    // 7: the credentials lack a permission.
    run.assert_code(7);
    assert!(
        took < Duration::from_secs(60),
        "a refused watch was retried for {took:?}"
    );
    run.assert_error(
        "error: watching Deployment kl-rbac-<id>/orders-api failed\n\
             help: system:serviceaccount:kube-system:kl-nowatch-<id> lacks the permission to watch deployments.apps in namespace kl-rbac-<id>; as a workshop attendee, work in your own namespace (kube-system: leave out -n kl-rbac-<id>); otherwise the cluster's admin (a workshop's instructor) can grant it with a Role and RoleBinding; check with `kubectl auth can-i watch deployments.apps -n kl-rbac-<id>`",
    );
}
