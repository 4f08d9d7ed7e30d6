//! Faults during a lab, each ending in one line with its fix, a distinct exit code, and a
//! state the next `up` or `reset` recovers: the registry removed and the cluster deleted
//! under a running lab (on a cluster of the test's own: both break everyone's pulls), SIGINT
//! during an unattended run, a symptom that never shows, and a fix naming a missing image.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::support::*;

fn session_count(ws: &TestWorkspace) -> usize {
    let run = ws.run(&["lab", "status", "-o", "json"]);
    run.assert_code(0);
    run.json().as_array().unwrap().len()
}

#[test]
fn the_registry_removed_and_the_cluster_deleted_under_a_running_lab() {
    let _slot = own_cluster_slot();
    let cluster = unique("kl-lf");
    let ws = TestWorkspace::with_cluster(&cluster);
    let _guard = KindClusterGuard(cluster.clone());
    let env = node_image_env();
    ws.run_env(&["up", "--timeout", "180s"], &env)
        .assert_code(0);
    ws.run(&["lab", "start", "bad-image-tag"]).assert_code(0);

    // The registry goes away (with its images) in the middle of the lab.
    docker(&["rm", "-f", &ws.registry]);
    let check = ws.run(&["lab", "check"]);
    check.assert_code(10);
    assert!(check.stdout.contains("Not fixed yet"), "{}", check.stdout);
    // `up` puts the registry back (the image is pushed again from the engine's copy) and
    // leaves the lab's break to the attendee; `reset` then ends the lab.
    let started = Instant::now();
    ws.run_env(&["up", "--timeout", "180s"], &env);
    let reset = ws.run(&["reset"]);
    reset.assert_code(0);
    eprintln!(
        "registry removed during a lab: up + reset took {:?}",
        started.elapsed()
    );
    ws.run(&["status"]).assert_code(0);
    assert_eq!(session_count(&ws), 0);

    // The cluster goes away under a running lab.
    ws.run(&["lab", "start", "oom-killed"]).assert_code(0);
    let deleted = std::process::Command::new("kind")
        .args(["delete", "cluster", "--name", &cluster])
        .output()
        .unwrap();
    assert!(deleted.status.success());
    let check = ws.run(&["lab", "check"]);
    check.assert_code(10).assert_error(
        "error: the lab is not up: there is no kind cluster \"kl-lf-<id>\"\n\
             help: run `kindlab up` first",
    );
    let reset = ws.run(&["reset"]);
    reset.assert_code(10);
    // `up` makes the cluster again; `reset` then ends the stale session cleanly.
    let started = Instant::now();
    ws.run_env(&["up", "--timeout", "180s"], &env)
        .assert_code(0);
    ws.run(&["reset"]).assert_code(0);
    eprintln!(
        "cluster deleted under a lab: up + reset took {:?}",
        started.elapsed()
    );
    assert_eq!(session_count(&ws), 0);
    ws.run(&["status"]).assert_code(0);
}

/// SIGINT while `lab run` waits for the symptoms: the run restores the desired state itself
/// and exits 130, leaving no session behind.
#[test]
fn sigint_during_an_unattended_run_restores_the_lab() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let ns = lab.namespace("run-sigint");
    // The repository typo, waiting for a symptom that takes two minutes (the progress
    // deadline), so the signal surely comes during the wait.
    let source = kindlab(&["lab", "show", "repository-typo", "--source"]).stdout;
    let slow = source.replace(
        "  within: 120s\n  all:\n    - waitingReason: ErrImagePull\n    - waitingReason: ImagePullBackOff\n",
        "  within: 300s\n  all:\n    - deploymentCondition:\n        type: Progressing\n        reason: ProgressDeadlineExceeded\n",
    );
    assert_ne!(slow, source, "the lab's symptoms changed; update this test");
    let file = copy.path().join("slow-lab.yaml");
    std::fs::write(&file, slow).unwrap();
    let mut run = Spawned::start(
        &[
            "--workspace",
            copy.path().to_str().unwrap(),
            "lab",
            "run",
            file.to_str().unwrap(),
            "-n",
            &ns.name,
        ],
        &node_image_env(),
    );
    run.wait_for_line("Break:", Duration::from_secs(120));
    run.signal(rustix::process::Signal::INT);
    let done = run.finish(Duration::from_secs(60));
    done.assert_code(130);
    assert!(
        done.stderr
            .contains("restoring the workspace's desired state"),
        "{}",
        done.stderr
    );
    let image = lab.kubectl(&[
        "get",
        "deployment",
        "orders-api",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert!(!image.contains("orders-apis"), "still broken: {image}");
    let status = copy.run(&["lab", "status", "-o", "json"]);
    assert_eq!(
        status.json().as_array().unwrap().len(),
        0,
        "{}",
        status.stdout
    );
}

/// A symptom that never shows: the run gives up at the lab's time limit, says what it did
/// see, exits 6, and puts the lab back.
#[test]
fn a_symptom_that_never_shows_is_reported_with_what_was_seen() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let ns = lab.namespace("never");
    let source = kindlab(&["lab", "show", "bad-image-tag", "--source"]).stdout;
    let never = source.replace(
        "  within: 120s\n  all:\n    - waitingReason: ErrImagePull\n    - waitingReason: ImagePullBackOff\n",
        "  within: 8s\n  all:\n    - waitingReason: ErrImagePull\n    - terminatedReason: OOMKilled\n",
    );
    assert_ne!(
        never, source,
        "the lab's symptoms changed; update this test"
    );
    let file = copy.path().join("never.yaml");
    std::fs::write(&file, never).unwrap();
    let run = copy.run(&["lab", "run", file.to_str().unwrap(), "-n", &ns.name]);
    run.assert_code(6).assert_error(
        "error: expected OOMKilled within <duration>; saw pod orders-api-<pod> waiting: ErrImagePull (event: Error: ErrImagePull)\n\
             help: the cluster did not fail as the lab expects; `kindlab status` shows its state and `kindlab reset` restores it",
    );
    assert!(
        run.stderr
            .contains("restored the workspace's desired state"),
        "{}",
        run.stderr
    );
}

/// `lab solve` refuses to apply a workspace that names an image the registry does not
/// have: a fix that applies a missing image fixes nothing.
#[test]
fn solve_refuses_to_apply_a_missing_image() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let ns = lab.namespace("solve-missing");
    copy.run(&["lab", "start", "oom-killed", "-n", &ns.name])
        .assert_code(0);
    let file = copy.path().join("deploy/overlays/dev/kustomization.yaml");
    let good = std::fs::read_to_string(&file).unwrap();
    let tag = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("newTag: "))
        .unwrap()
        .to_string();
    std::fs::write(&file, good.replace(&tag, "not-pushed")).unwrap();
    let solve = copy.run(&["lab", "solve"]);
    solve.assert_code(3).assert_error(&format!("error: the lab cannot apply the workspace (deploy/overlays/dev): it names localhost:<port>/orders-api:not-pushed for Deployment {}/orders-api, which the registry does not have (`kindlab check` lists what is missing)\nhelp: this lab does not fit the target; pick another (`kindlab lab list`) or another --target", ns.name));
    std::fs::write(&file, good).unwrap();
    copy.run(&["lab", "solve"]).assert_code(0);
    copy.run(&["reset", "-n", &ns.name]).assert_code(0);
}

/// A lab against another Deployment of the workspace (`--target`), not the sample's own.
#[test]
fn a_lab_runs_against_another_deployment_of_the_workspace() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let ns = lab.namespace("target");
    let base = copy.path().join("deploy/base/orders-api");
    let deployment = std::fs::read_to_string(base.join("deployment.yaml")).unwrap();
    std::fs::write(
        base.join("worker.yaml"),
        deployment
            .replace("name: orders-api\n", "name: orders-worker\n")
            .replace("app: orders-api", "app: orders-worker")
            .replace("- name: api\n", "- name: worker\n"),
    )
    .unwrap();
    let kustomization = std::fs::read_to_string(base.join("kustomization.yaml")).unwrap();
    std::fs::write(
        base.join("kustomization.yaml"),
        kustomization.replace(
            "  - deployment.yaml\n",
            "  - deployment.yaml\n  - worker.yaml\n",
        ),
    )
    .unwrap();
    commit_all(copy.path(), "a second Deployment");
    let run = copy.run(&[
        "lab",
        "run",
        "crashloop-missing-env",
        "--target",
        "deployment/orders-worker",
        "--container",
        "worker",
        "-n",
        &ns.name,
        "-o",
        "json",
    ]);
    run.assert_code(0);
    let report = run.json();
    assert_eq!(
        report["target"],
        format!("Deployment {}/orders-worker", ns.name),
        "{report}"
    );
    assert!(
        report["observed"].to_string().contains("orders-worker"),
        "{report}"
    );
    // A Deployment the workspace does not declare is named, with the fix.
    let missing = copy.run(&[
        "lab",
        "run",
        "oom-killed",
        "--target",
        "deployment/nope",
        "-n",
        &ns.name,
    ]);
    missing.assert_code(10).assert_error(&format!(
        "error: the lab needs Deployment {}/nope, which is not ready: it does not exist, and the workspace does not declare it\n\
         help: name one of the workspace's Deployments with --target deployment/NAME: orders-api, orders-worker",
        ns.name
    ));
}
