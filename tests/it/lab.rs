//! Labs on the real cluster: the lab text's own commands typed by hand, every lab of the
//! catalogue run unattended, the attendee's path (start, check, fix by hand, check, reset),
//! `solve`, `reset` after a hand-made mess, an interrupted lab, and `pin`.
//!
//! Every test but the ones on `dev` (which hold `lock_dev`) works in a namespace of its own,
//! so they run side by side on the one shared cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// Waits (bounded) until a pod matching `selector` in `ns` is waiting with `reason`.
fn wait_for_waiting(lab: &SharedLab, ns: &str, selector: &str, reason: &str) -> String {
    let started = Instant::now();
    loop {
        let pods: Value = serde_json::from_str(
            &lab.kubectl(&["get", "pods", "-n", ns, "-l", selector, "-o", "json"]),
        )
        .unwrap();
        for pod in pods["items"].as_array().unwrap() {
            let waiting = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["state"]["waiting"]["reason"] == reason);
            if waiting {
                return pod["metadata"]["name"].as_str().unwrap().to_string();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no pod in {ns} reached {reason}: {pods}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The lab text (docs/labs/lab-05-bad-image-tag.md in this repository), its commands typed verbatim.
#[test]
fn the_lab_texts_commands_work_verbatim_and_status_stays_clean() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let ws = &lab.dir;
    let sh = |args: &[&str]| {
        let run = lab.kubectl_in(ws, args);
        assert_eq!(
            run.code, 0,
            "kubectl {args:?}\n{}\n{}",
            run.stdout, run.stderr
        );
        run
    };

    // 1. Introduce a bad image tag.
    sh(&[
        "set",
        "image",
        "deployment/orders-api",
        "api=orders-api:nonexistent",
        "-n",
        "dev",
    ]);
    // 2. Observe the failure.
    wait_for_waiting(lab, "dev", "app=orders-api", "ImagePullBackOff");
    let pods = sh(&["get", "pods", "-n", "dev", "-l", "app=orders-api"]).stdout;
    assert!(
        pods.contains("ImagePullBackOff") || pods.contains("ErrImagePull"),
        "{pods}"
    );
    // 3. Diagnose.
    let described = sh(&["describe", "pod", "-n", "dev", "-l", "app=orders-api"]).stdout;
    assert!(
        described.contains("Failed to pull image \"orders-api:nonexistent\""),
        "{described}"
    );
    assert!(described.contains("ImagePullBackOff"), "{described}");
    // 4. Fix via GitOps: the workspace names the pushed tag.
    let applied = sh(&["apply", "-k", "deploy/overlays/dev"]);
    assert!(
        applied
            .stdout
            .contains("deployment.apps/orders-api configured"),
        "{}",
        applied.stdout
    );
    // 5. Verify recovery.
    let rollout = sh(&[
        "rollout",
        "status",
        "deployment/orders-api",
        "-n",
        "dev",
        "--timeout=120s",
    ]);
    assert!(
        rollout
            .stdout
            .contains("deployment \"orders-api\" successfully rolled out"),
        "{}",
        rollout.stdout
    );
    // What the hand apply left is what kindlab deploys: no drift.
    lab.run(&["status"]).assert_code(0);
}

/// The lab text's other fix: edit deploy/base/orders-api/deployment.yaml, then apply.
#[test]
fn editing_the_base_and_applying_restores_the_deployment() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let copy = lab.workspace_copy();
    let ws = copy.path();
    let base = ws.join("deploy/base/orders-api/deployment.yaml");
    let text = std::fs::read_to_string(&base).unwrap();
    lab.kubectl_in(
        ws,
        &[
            "set",
            "image",
            "deployment/orders-api",
            "api=orders-api:nonexistent",
            "-n",
            "dev",
        ],
    )
    .assert_code(0);
    wait_for_waiting(lab, "dev", "app=orders-api", "ErrImagePull");
    // "Ensure image is orders-api:latest (or your actual tag)": the overlay's images entry
    // turns it into the pushed reference.
    std::fs::write(
        &base,
        text.replace("image: orders-api\n", "image: orders-api:latest\n"),
    )
    .unwrap();
    lab.kubectl_in(ws, &["apply", "-k", "deploy/overlays/dev"])
        .assert_code(0);
    let rollout = lab.kubectl_in(
        ws,
        &[
            "rollout",
            "status",
            "deployment/orders-api",
            "-n",
            "dev",
            "--timeout=120s",
        ],
    );
    assert!(
        rollout.stdout.contains("successfully rolled out"),
        "{}{}",
        rollout.stdout,
        rollout.stderr
    );
    lab.run(&["status"]).assert_code(0);
}

/// Runs a built-in lab unattended in a namespace of its own; checks its report.
fn run_lab(name: &str) -> Value {
    let lab = shared_lab();
    // A workspace of its own: its lab sessions are its own (`reset` ends them all).
    let copy = lab.workspace_copy();
    let guard = lab.namespace(&format!("run-{name}"));
    let ns = guard.name.clone();
    let run = copy.run(&["lab", "run", name, "-n", &ns, "-o", "json"]);
    run.assert_code(0);
    let report = run.json();
    assert_eq!(report["lab"], name);
    let phases = report["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"baseline"), "{names:?}");
    assert_eq!(names[1], "break");
    assert_eq!(
        &names[names.len() - 3..],
        ["diagnose", "fix", "verify"],
        "{names:?}"
    );
    // Phases are consecutive: each one's duration is the distance between the marks.
    let total: f64 = phases.iter().map(|p| p["took_s"].as_f64().unwrap()).sum();
    let baseline = phases[0]["took_s"].as_f64().unwrap();
    let last_at = phases.last().unwrap()["at_s"].as_f64().unwrap();
    let first_at = phases[0]["at_s"].as_f64().unwrap();
    assert!(
        (total - (last_at - first_at + baseline)).abs() < 0.01,
        "durations do not add up: {total} vs {last_at} - {first_at} + {baseline}"
    );
    assert!(
        report["time_to_recover_s"].as_f64().unwrap()
            >= report["time_to_detect_s"].as_f64().unwrap()
    );
    assert_eq!(report["diagnosis_matches"], true, "{report}");
    // The namespace is as the workspace declares it again.
    copy.run(&["lab", "start", name, "-n", &ns, "--no-wait"])
        .assert_code(0);
    copy.run(&["reset", "-n", &ns]).assert_code(0);
    report
}

/// Runs a lab and checks that the report's `field` mentions `needle`.
fn run_lab_mentioning(name: &str, field: &str, needle: &str) {
    let report = run_lab(name);
    let text = report[field].to_string();
    assert!(text.contains(needle), "{field} lacks {needle:?}: {report}");
}

#[test]
fn lab_crashloop_missing_env() {
    run_lab_mentioning("crashloop-missing-env", "observed", "CrashLoopBackOff");
}

#[test]
fn lab_oom_killed() {
    run_lab_mentioning("oom-killed", "observed", "OOMKilled");
}

#[test]
fn lab_readiness_probe() {
    run_lab_mentioning("readiness-probe", "observed", "Readiness probe failed");
}

#[test]
fn lab_missing_configmap() {
    run_lab_mentioning(
        "missing-configmap",
        "observed",
        "CreateContainerConfigError",
    );
}

#[test]
fn lab_bad_image_tag() {
    run_lab_mentioning("bad-image-tag", "finding", "no tag \\\"nonexistent\\\"");
}

#[test]
fn lab_service_selector() {
    run_lab_mentioning("service-selector", "observed", "no ready endpoints");
}

#[test]
fn lab_pending_resources() {
    run_lab_mentioning("pending-resources", "observed", "Unschedulable");
}

#[test]
fn lab_repository_typo() {
    run_lab_mentioning("repository-typo", "finding", "no repository");
}

/// The git variant: a bad commit, then `git revert`; both commits are in `git log`.
#[test]
fn lab_bad_image_tag_git_commits_and_reverts() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let ns = lab.namespace("git");
    let run = copy.run(&[
        "lab",
        "run",
        "bad-image-tag-git",
        "-n",
        &ns.name,
        "-o",
        "json",
    ]);
    run.assert_code(0);
    let report = run.json();
    let commit = report["commits"][0].as_str().unwrap().to_string();
    let revert = report["reverts"][0].as_str().unwrap().to_string();
    let log = git(copy.path(), &["log", "--format=%H %s"]);
    assert!(
        log.contains(&format!("{commit} orders-api: use tag nonexistent")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{revert} Revert \"orders-api: use tag nonexistent\""
        )),
        "{log}"
    );
    assert!(git(copy.path(), &["status", "--porcelain"]).is_empty());
}

/// kindlab never commits or discards the user's own uncommitted change: it refuses.
#[test]
fn the_git_lab_refuses_a_dirty_overlay_and_keeps_the_change() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let ns = lab.namespace("git-dirty");
    let file = copy.path().join("deploy/overlays/dev/kustomization.yaml");
    let mine = format!("{}# my own note\n", std::fs::read_to_string(&file).unwrap());
    std::fs::write(&file, &mine).unwrap();
    let run = copy.run(&["lab", "start", "bad-image-tag-git", "-n", &ns.name]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    run.assert_error(
        "error: deploy/overlays/dev/kustomization.yaml has changes that are not committed\n\
             help: kindlab never commits or discards your changes: commit them (`git commit deploy/overlays/dev/kustomization.yaml`) or put them aside (`git stash`), then run it again",
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), mine);
    assert_eq!(git(copy.path(), &["log", "--oneline"]).lines().count(), 2);
    copy.run(&["reset", "-n", &ns.name]).assert_code(0);
}

/// The attendee's path: start, a failing check with a pointer, a fix by hand, a passing
/// check with the times, reset.
fn attendee_fixes_by_hand(name: &str, ns: &str, fix: &[&[&str]]) {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let started = copy.run(&[
        "lab",
        "start",
        name,
        "-n",
        ns,
        "--attendee",
        "ada",
        "-o",
        "json",
    ]);
    started.assert_code(0);
    let started = started.json();
    assert!(started["session"]["time_to_symptoms_s"].as_f64().unwrap() >= 0.0);
    assert!(!started["text"]["goal"].as_array().unwrap().is_empty());

    let check = copy.run(&["lab", "check", "-o", "json"]);
    check.assert_code(10);
    let verdict = check.json();
    assert_eq!(verdict["verdict"]["fixed"], false);
    let pointers = verdict["verdict"]["checks"].to_string();
    assert!(
        pointers.contains("kubectl"),
        "a pointer says where to look: {pointers}"
    );

    let hint = copy.run(&["lab", "hint"]);
    hint.assert_code(0);
    assert!(hint.stdout.starts_with("Hint 1/"), "{}", hint.stdout);

    for args in fix {
        let args: Vec<String> = args.iter().map(|a| a.replace("{ns}", ns)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = lab.kubectl_in(copy.path(), &args);
        assert_eq!(run.code, 0, "kubectl {args:?}: {}", run.stderr);
    }
    // The kubelet may need a moment (a back-off) to act on the fix.
    let started_checking = Instant::now();
    let fixed = loop {
        let check = copy.run(&["lab", "check", "-o", "json"]);
        if check.code == 0 {
            break check.json();
        }
        assert!(
            started_checking.elapsed() < Duration::from_secs(120),
            "never fixed: {}",
            check.stdout
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let times = &fixed["session"];
    assert_eq!(times["state"], "fixed");
    assert!(
        times["time_to_fix_s"].as_f64().unwrap() > times["time_to_symptoms_s"].as_f64().unwrap()
    );
    assert_eq!(times["hints_used"], 1);
    assert_eq!(times["attendee"], "ada");

    let reset = copy.run(&["reset", "-n", ns, "-o", "json"]);
    reset.assert_code(0);
    assert_eq!(reset.json()["namespaces"][0]["ended"]["state"], "fixed");
    let reports = std::fs::read_dir(copy.path().join(".kindlab/reports"))
        .unwrap()
        .count();
    assert!(reports >= 1);
}

/// The lab text's path in `dev`: the fix is the workspace, applied by hand.
#[test]
fn attendee_fixes_bad_image_tag_with_kubectl_apply_k() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    attendee_fixes_by_hand(
        "bad-image-tag",
        "dev",
        &[&["apply", "-k", "deploy/overlays/dev"]],
    );
    lab.run(&["status"]).assert_code(0);
}

#[test]
fn attendee_fixes_a_crashloop_with_rollout_undo() {
    attendee_fixes_by_hand(
        "crashloop-missing-env",
        &shared_lab().namespace("att-crashloop").name,
        &[&["rollout", "undo", "deployment/orders-api", "-n", "{ns}"]],
    );
}

#[test]
fn attendee_fixes_a_service_selector_with_a_patch() {
    attendee_fixes_by_hand(
        "service-selector",
        &shared_lab().namespace("att-selector").name,
        &[&[
            "patch",
            "service",
            "orders-api",
            "-n",
            "{ns}",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"selector":{"app":"orders-api","version":null}}}"#,
        ]],
    );
}

/// The pending lab's hand fix, as its text writes it: only the lab's selector key goes.
#[test]
fn attendee_fixes_a_pending_pod_by_removing_the_node_selector() {
    attendee_fixes_by_hand(
        "pending-resources",
        &shared_lab().namespace("att-pending").name,
        &[&[
            "patch",
            "deployment",
            "orders-api",
            "-n",
            "{ns}",
            "--type",
            "json",
            "-p",
            r#"[{"op": "remove", "path": "/spec/template/spec/nodeSelector/node-pool"}]"#,
        ]],
    );
}

/// `lab solve` applies the solution and records that help was used.
#[test]
fn solve_fixes_it_and_says_help_was_used() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let guard = lab.namespace("solve");
    let ns = guard.name.as_str();
    copy.run(&["lab", "start", "oom-killed", "-n", ns])
        .assert_code(0);
    let solved = copy.run(&["lab", "solve", "-o", "json"]);
    solved.assert_code(0);
    let solved = solved.json();
    assert_eq!(solved["session"]["state"], "solved");
    assert_eq!(solved["session"]["solved_with_help"], true);
    copy.run(&["lab", "check"]).assert_code(0);
    copy.run(&["reset", "-n", ns]).assert_code(0);
}

/// A hand-made mess (a deleted Service, a Deployment scaled to zero, an image edited by
/// hand): `reset` puts back what the workspace declares, and `status` is clean.
#[test]
fn reset_repairs_a_hand_made_mess() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    lab.kubectl(&["delete", "service", "orders-api", "-n", "dev"]);
    lab.kubectl(&[
        "scale",
        "deployment/orders-api",
        "--replicas=0",
        "-n",
        "dev",
    ]);
    lab.kubectl(&[
        "set",
        "image",
        "deployment/orders-api",
        "api=busybox:1.36",
        "-n",
        "dev",
    ]);
    lab.run(&["status"]).assert_code(10);
    let started = Instant::now();
    let reset = lab.run(&["reset", "-n", "dev", "-o", "json"]);
    reset.assert_code(0);
    let done = reset.json()["namespaces"][0]["done"].to_string();
    assert!(done.contains("created Service dev/orders-api"), "{done}");
    lab.run(&["status"]).assert_code(0);
    eprintln!("reset after a hand-made mess took {:?}", started.elapsed());
    assert_eq!(
        lab.kubectl(&[
            "get",
            "deployment",
            "orders-api",
            "-n",
            "dev",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "1"
    );
}

/// SIGINT after the break: the lab puts the desired state back itself and exits 130; a
/// `reset` afterwards finds nothing left to do but end cleanly.
#[test]
fn an_interrupted_lab_is_restored() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let guard = lab.namespace("interrupt");
    let ns = guard.name.as_str();
    // The namespace gets the workspace first, so the break comes quickly after the start.
    copy.run(&["lab", "start", "bad-image-tag", "-n", ns, "--no-wait"])
        .assert_code(0);
    copy.run(&["reset", "-n", ns]).assert_code(0);

    // A lab file of the test's own: the repository typo, waiting for a symptom that takes
    // two minutes (the progress deadline), so the interrupt surely comes during the wait.
    let source = kindlab(&["lab", "show", "repository-typo", "--source"]).stdout;
    let slow = source.replace(
        "  within: 120s\n  all:\n    - waitingReason: ErrImagePull\n    - waitingReason: ImagePullBackOff\n",
        "  within: 300s\n  all:\n    - deploymentCondition:\n        type: Progressing\n        reason: ProgressDeadlineExceeded\n",
    );
    assert_ne!(slow, source, "the lab's symptoms changed; update this test");
    let lab_file = copy.path().join("slow-lab.yaml");
    std::fs::write(&lab_file, slow).unwrap();
    // The cue is the step's own detail as the wait for the symptom begins (the break is
    // applied by then).
    let mut env = node_image_env();
    env.push(("KINDLAB_LOG", "kindlab=warn,kindlab::ui::status=debug"));
    let mut start = Spawned::start(
        &[
            "--workspace",
            copy.path().to_str().unwrap(),
            "lab",
            "start",
            lab_file.to_str().unwrap(),
            "-n",
            ns,
        ],
        &env,
    );
    start.wait_for_line(
        "waiting for the break to take effect",
        Duration::from_secs(60),
    );
    start.signal(rustix::process::Signal::INT);
    let run = start.finish(Duration::from_secs(60));
    run.assert_code(130).assert_error(
        "error: interrupted during the wait for the lab's symptoms; the workspace's desired state is restored\n\
         help: start the lab again when you like: `kindlab lab start repository-typo`",
    );
    let image = lab.kubectl(&[
        "get",
        "deployment",
        "orders-api",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert!(!image.contains("orders-apis"), "still broken: {image}");
    let reset = copy.run(&["reset", "-n", ns]);
    reset.assert_code(0);
}

/// Three attendees at once on one cluster, each in a namespace of their own; the
/// instructor's table shows all three.
#[test]
fn three_attendees_in_their_own_namespaces() {
    let lab = shared_lab();
    let copies: Vec<_> = (0..3).map(|_| lab.workspace_copy()).collect();
    let namespaces: Vec<TestNamespace> = (0..3)
        .map(|i| lab.namespace(&format!("attendee-{i}")))
        .collect();
    let handles: Vec<_> = copies
        .iter()
        .enumerate()
        .map(|(i, copy)| {
            let dir = copy.path().to_path_buf();
            let ns = namespaces[i].name.clone();
            std::thread::spawn(move || {
                let who = format!("attendee-{i}");
                kindlab_env(
                    &[
                        "--workspace",
                        dir.to_str().unwrap(),
                        "lab",
                        "start",
                        "pending-resources",
                        "-n",
                        &ns,
                        "--attendee",
                        &who,
                    ],
                    &node_image_env(),
                )
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().assert_code(0);
    }
    let table = lab.run(&["lab", "status", "--all-namespaces", "-o", "json"]);
    table.assert_code(0);
    let text = table.stdout.clone();
    for (i, ns) in namespaces.iter().enumerate() {
        assert!(text.contains(&format!("attendee-{i}")), "{text}");
        assert!(
            text.contains(&format!("Deployment {}/orders-api", ns.name)),
            "{text}"
        );
    }
    for (copy, ns) in copies.iter().zip(&namespaces) {
        copy.run(&["reset", "-n", &ns.name]).assert_code(0);
    }
}

/// `pin` writes the digests; a hand `kubectl apply -k` then runs the pinned digest.
#[test]
fn pin_then_apply_runs_the_pinned_digest() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let copy = lab.workspace_copy();
    copy.run(&["pin", "--check"]).assert_code(10);
    let pinned = copy.run(&["pin", "-o", "json"]);
    pinned.assert_code(0);
    let after = pinned.json()["changes"][0]["after"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(after.contains("@sha256:"), "{after}");
    copy.run(&["pin", "--check"]).assert_code(0);
    lab.kubectl_in(copy.path(), &["apply", "-k", "deploy/overlays/dev"])
        .assert_code(0);
    lab.kubectl_in(
        copy.path(),
        &[
            "rollout",
            "status",
            "deployment/orders-api",
            "-n",
            "dev",
            "--timeout=120s",
        ],
    )
    .assert_code(0);
    let image = lab.kubectl(&[
        "get",
        "deployment",
        "orders-api",
        "-n",
        "dev",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, after);
    let digest = after.rsplit('@').next().unwrap();
    let running = lab.kubectl(&[
        "get",
        "pods",
        "-n",
        "dev",
        "-l",
        "app=orders-api",
        "-o",
        "jsonpath={.items[*].status.containerStatuses[0].imageID}",
    ]);
    assert!(running.contains(digest), "{running} vs {digest}");
    // Back to the shared workspace's own (unpinned) state for the other tests.
    lab.run(&["reset", "-n", "dev"]).assert_code(0);
}

/// A Deployment that Argo CD tracks (its tracking annotation, as Argo CD writes it): labs and
/// `reset` refuse to apply over it, and say how to go through Git instead.
#[test]
fn a_gitops_managed_target_is_not_fought() {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let guard = lab.namespace("gitops");
    let ns = guard.name.as_str();
    copy.run(&["lab", "start", "service-selector", "-n", ns, "--no-wait"])
        .assert_code(0);
    copy.run(&["reset", "-n", ns]).assert_code(0);
    lab.kubectl(&[
        "annotate",
        "deployment/orders-api",
        "-n",
        ns,
        "argocd.argoproj.io/tracking-id=apps-dev:apps/Deployment:it-gitops/orders-api",
    ]);
    let start = copy.run(&["lab", "start", "bad-image-tag", "-n", ns]);
    start.assert_code(5).assert_error(
        &format!("error: Deployment {ns}/orders-api is managed by Argo CD (Application apps-dev): kindlab would fight it\n\
             help: change it through Git: commit and push, then `argocd app sync apps-dev` (or wait for Argo CD to poll)"),
    );
    copy.run(&["reset", "-n", ns]).assert_code(5);
    lab.kubectl(&[
        "annotate",
        "deployment/orders-api",
        "-n",
        ns,
        "argocd.argoproj.io/tracking-id-",
    ]);
    copy.run(&["reset", "-n", ns]).assert_code(0);
}

#[test]
fn a_lab_without_its_cluster_says_to_run_up() {
    let ws = TestWorkspace::new();
    let run = ws.run(&["lab", "run", "bad-image-tag"]);
    run.assert_code(10).assert_error(
        "error: the lab is not up: there is no kind cluster \"kl-<id>\"\n\
             help: run `kindlab up` first",
    );
}

#[test]
fn a_malformed_lab_file_names_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let source = kindlab(&["lab", "show", "oom-killed", "--source"]).stdout;
    let file = dir.path().join("my-lab.yaml");
    std::fs::write(
        &file,
        source.replacen("minutes: 15", "minutes: 15\nduration: 3", 1),
    )
    .unwrap();
    let run = kindlab(&["lab", "show", file.to_str().unwrap()]);
    run.assert_code(3).assert_error(
        "error: <tmp>/my-lab.yaml:7:1: unknown field `duration`, expected one of name, order, title, level, minutes, text, target, break, symptoms, diagnosis, hints, solution, check, recoverWithin, guardrails at line 7, column 1\n\
             help: use a key the lab schema knows (`kindlab lab schema` prints it; labs/*.yaml are examples)",
    );
}

/// `up` does not apply over a Deployment Argo CD tracks: it stops and says how to go
/// through Git; without the drift it leaves it be.
#[test]
fn up_leaves_a_gitops_managed_deployment_to_its_controller() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let annotation = "argocd.argoproj.io/tracking-id";
    lab.kubectl(&[
        "annotate",
        "deployment/orders-api",
        "-n",
        "dev",
        &format!("{annotation}=apps-dev:apps/Deployment:dev/orders-api"),
    ]);
    // As desired: nothing to fight about.
    lab.run(&["up"]).assert_code(0);
    // Drifted by hand: `up` would undo the controller's state.
    lab.kubectl(&[
        "set",
        "image",
        "deployment/orders-api",
        "api=busybox:1.36",
        "-n",
        "dev",
    ]);
    let up = lab.run(&["up"]);
    let annotation_off = format!("{annotation}-");
    lab.kubectl(&[
        "annotate",
        "deployment/orders-api",
        "-n",
        "dev",
        &annotation_off,
    ]);
    up.assert_code(5).assert_error(
        "error: Deployment dev/orders-api is managed by Argo CD (Application apps-dev): kindlab would fight it\n\
             help: change it through Git: commit and push, then `argocd app sync apps-dev` (or wait for Argo CD to poll)",
    );
    lab.run(&["up"]).assert_code(0);
    lab.run(&["status"]).assert_code(0);
}

/// A rollout that cannot finish although `up` has nothing left to change (the files ask
/// for more CPU than the node has): `up` times out naming the cause, and `status` explains
/// the row the way `kindlab diagnose` does.
#[test]
fn status_explains_a_stuck_rollout_as_diagnose_does() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    let base = lab.dir.join("deploy/base/orders-api/deployment.yaml");
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(&base, text.replace("cpu: 10m", "cpu: \"64\"")).unwrap();
    let up = lab.run(&["up", "--timeout", "10s"]);
    let status = lab.run(&["status", "-o", "json"]);
    // Put the workspace back before judging, so a failed assertion leaves the lab usable.
    git(&lab.dir, &["checkout", "--", "deploy"]);
    let restored = lab.run(&["up"]);
    // The message names the node's allocatable CPU: the machine's.
    let node_cpu = lab.kubectl(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.allocatable.cpu}",
    ]);
    up.assert_code(6).assert_error(
        &format!("error: deployment \"orders-api\" in namespace \"dev\" did not finish rolling out within <duration> (1 old replicas are pending termination); pod orders-api-<pod> is Unschedulable: no node can run the pod: 1 Insufficient cpu (it requests 64 CPU; the largest node has {node_cpu} CPU allocatable)\n\
             help: lower the pod's resources.requests.cpu to fit a node (`kubectl set resources deployment/orders-api --requests=cpu=... -n dev`), or add a bigger node"),
    );
    status.assert_code(10);
    let report = status.json();
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["component"] == "Deployment dev/orders-api")
        .cloned()
        .unwrap_or_else(|| panic!("no Deployment row: {report}"));
    assert_eq!(row["diagnosis"]["cause"], "unschedulable", "{row}");
    restored.assert_code(0);
}
