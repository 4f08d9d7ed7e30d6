//! Every built-in lab against a second app shaped unlike the sample (tests/fixtures/second-app:
//! Deployment `catalog`, container `web`, its own requests and limits, probes, Service,
//! ConfigMap and setting), each in a namespace of its own with a ResourceQuota and a
//! LimitRange, as a workshop gives an attendee: `lab run NAME --target deployment/catalog
//! --container web -n NS` must break, detect, diagnose, fix and verify there too.
//!
//! The app's image is built once per test run into the shared lab's registry (`kindlab build`
//! in a workspace of its own that names the shared registry); each test works in a copy of
//! that workspace, so a lab's commits and sessions are its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::support::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/second-app");

/// What a workshop might give each attendee: room for the app and a rollout (two pods of
/// two CPUs each at most), and defaults for containers that say nothing.
const ROOM: &str = "\
apiVersion: v1
kind: ResourceQuota
metadata:
  name: attendee-room
spec:
  hard:
    requests.cpu: \"2\"
    limits.cpu: \"4\"
    requests.memory: 1Gi
    limits.memory: 2Gi
    pods: \"10\"
---
apiVersion: v1
kind: LimitRange
metadata:
  name: attendee-limits
spec:
  limits:
    - type: Container
      defaultRequest:
        cpu: 50m
        memory: 32Mi
      default:
        cpu: \"1\"
        memory: 256Mi
      max:
        memory: 1Gi
";

/// The second app's workspace, its image built and pushed into the shared lab's registry.
struct SecondApp {
    dir: PathBuf,
}

fn second_app() -> &'static SecondApp {
    static APP: OnceLock<SecondApp> = OnceLock::new();
    APP.get_or_init(|| {
        let lab = shared_lab();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("second-app");
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(Path::new(FIXTURE), &dir);
        std::fs::write(
            dir.join("kindlab.yaml"),
            format!(
                "cluster:\n  name: {}\nregistry:\n  name: {}\n  port: {}\n  image: registry:3\nimages:\n  - name: catalog\n    context: apps/catalog\n    dockerfile: Dockerfile\ndeploy:\n  overlay: deploy/overlays/lab\n",
                lab.cluster, lab.registry, lab.port
            ),
        )
        .unwrap();
        let kustomization = dir.join("deploy/overlays/lab/kustomization.yaml");
        let text = std::fs::read_to_string(&kustomization).unwrap();
        std::fs::write(
            &kustomization,
            text.replace("localhost:5001/", &format!("{}/", lab.registry_host)),
        )
        .unwrap();
        // Build and push only: the registry and the cluster are the shared lab's, and each
        // lab deploys the app into its own namespace.
        let started = std::time::Instant::now();
        let built = kindlab_env(
            &["--workspace", dir.to_str().unwrap(), "build", "-o", "json"],
            &node_image_env(),
        );
        built.assert_code(0);
        eprintln!(
            "second app built and pushed in {:.1}s: {}",
            started.elapsed().as_secs_f64(),
            built.json()["images"][0]["reference"]
        );
        SecondApp { dir }
    })
}

impl SecondApp {
    /// A committed copy of the app's workspace (its overlay names the pushed tag).
    fn copy(&self) -> WorkspaceCopy {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&self.dir, dir.path());
        std::fs::write(dir.path().join(".gitignore"), ".kindlab/\n").unwrap();
        git(dir.path(), &["init", "-q"]);
        commit_all(
            dir.path(),
            "the second app, built into the test lab's registry",
        );
        WorkspaceCopy { dir }
    }
}

/// Copies a directory tree, leaving out kindlab's and git's own state.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".kindlab" || name == ".git" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A namespace of the test's own with the workshop's quota and LimitRange in it.
fn room(what: &str) -> TestNamespace {
    let lab = shared_lab();
    let ns = lab.namespace(what);
    lab.kubectl(&["create", "namespace", &ns.name]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("room.yaml");
    std::fs::write(&file, ROOM).unwrap();
    lab.kubectl(&["apply", "-n", &ns.name, "-f", file.to_str().unwrap()]);
    ns
}

fn target_args(ns: &str) -> Vec<&str> {
    vec![
        "--target",
        "deployment/catalog",
        "--container",
        "web",
        "-n",
        ns,
    ]
}

/// Runs a built-in lab unattended against the second app in a room of its own; checks its
/// report, and that the namespace is as the workspace declares it again.
fn run_lab(name: &str) -> Value {
    let copy = second_app().copy();
    let ns = room(&format!("2nd-{name}"));
    let mut args = vec!["lab", "run", name];
    args.extend(target_args(&ns.name));
    args.extend(["-o", "json"]);
    let started = std::time::Instant::now();
    let run = copy.run(&args);
    eprintln!(
        "{name} on the second app: exit {} in {:.1}s",
        run.code,
        started.elapsed().as_secs_f64()
    );
    run.assert_code(0);
    let report = run.json();
    assert_eq!(report["lab"], name);
    assert_eq!(
        report["target"],
        format!("Deployment {}/catalog", ns.name),
        "{report}"
    );
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases.first(), Some(&"baseline"), "{phases:?}");
    assert_eq!(&phases[phases.len() - 3..], ["diagnose", "fix", "verify"]);
    assert_eq!(report["diagnosis_matches"], true, "{report}");
    // Nothing the lab set is left: the next start finds the target healthy and as declared.
    let mut again = vec!["lab", "start", name];
    again.extend(target_args(&ns.name));
    again.push("--no-wait");
    copy.run(&again).assert_code(0);
    copy.run(&["reset", "-n", &ns.name]).assert_code(0);
    report
}

#[track_caller]
fn assert_mentions(report: &Value, field: &str, needle: &str) {
    let text = report[field].to_string();
    assert!(text.contains(needle), "{field} lacks {needle:?}: {report}");
}

#[test]
fn second_app_crashloop_missing_env() {
    let report = run_lab("crashloop-missing-env");
    // The app's own required setting, not the sample's.
    assert_mentions(&report, "broke", "removed CATALOG_STORE from container web");
    assert_mentions(&report, "observed", "CrashLoopBackOff");
    assert_mentions(&report, "finding", "CATALOG_STORE is not set");
}

#[test]
fn second_app_oom_killed() {
    let report = run_lab("oom-killed");
    // 16Mi is below the app's own request of 64Mi: the request came down with it.
    assert_mentions(
        &report,
        "broke",
        "memory request lowered from 64Mi to the new limit 16Mi",
    );
    assert_mentions(&report, "observed", "OOMKilled");
}

#[test]
fn second_app_readiness_probe() {
    let report = run_lab("readiness-probe");
    assert_mentions(&report, "observed", "Readiness probe failed");
}

#[test]
fn second_app_missing_configmap() {
    let report = run_lab("missing-configmap");
    assert_mentions(&report, "broke", "catalog-settings");
    assert_mentions(&report, "observed", "CreateContainerConfigError");
}

#[test]
fn second_app_bad_image_tag() {
    let report = run_lab("bad-image-tag");
    assert_mentions(&report, "finding", "no tag \\\"nonexistent\\\"");
}

#[test]
fn second_app_service_selector() {
    let report = run_lab("service-selector");
    assert_mentions(&report, "broke", "catalog-svc");
    assert_mentions(&report, "observed", "no ready endpoints");
    assert_mentions(&report, "finding", "version=v2");
}

#[test]
fn second_app_pending_resources() {
    let report = run_lab("pending-resources");
    assert_mentions(&report, "observed", "Unschedulable");
    assert_mentions(&report, "finding", "node-pool=high-memory");
    // The scheduler's reason alone, without what its post-filter plugins add.
    let summary = report["finding"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "no node can run the pod: 1 node(s) didn't match Pod's node affinity/selector ("
        ),
        "{summary}"
    );
}

#[test]
fn second_app_repository_typo() {
    let report = run_lab("repository-typo");
    assert_mentions(&report, "finding", "no repository");
}

#[test]
fn second_app_bad_image_tag_git() {
    let copy = second_app().copy();
    let ns = room("2nd-git");
    let mut args = vec!["lab", "run", "bad-image-tag-git"];
    args.extend(target_args(&ns.name));
    args.extend(["-o", "json"]);
    let run = copy.run(&args);
    run.assert_code(0);
    let report = run.json();
    assert_eq!(report["diagnosis_matches"], true, "{report}");
    let commit = report["commits"][0].as_str().unwrap().to_string();
    let revert = report["reverts"][0].as_str().unwrap().to_string();
    let log = git(copy.path(), &["log", "--format=%H %s"]);
    assert!(
        log.contains(&format!("{commit} catalog: use tag nonexistent")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{revert} Revert \"catalog: use tag nonexistent\"")),
        "{log}"
    );
    assert!(git(copy.path(), &["status", "--porcelain"]).is_empty());
}

/// A resources change the quota cannot hold (the old pending lab's 64 CPUs) is refused
/// before the break, naming the quota, and the target is left as it was.
#[test]
fn second_app_a_change_the_quota_cannot_hold_is_refused_before_the_break() {
    let copy = second_app().copy();
    let ns = room("2nd-quota");
    let source = kindlab(&["lab", "show", "oom-killed", "--source"]).stdout;
    let greedy = source.replace(
        "        limits:\n          memory: 16Mi\n",
        "        requests:\n          cpu: \"64\"\n",
    );
    assert_ne!(
        greedy, source,
        "the OOM lab's break changed; update this test"
    );
    let file = copy.path().join("greedy-lab.yaml");
    std::fs::write(&file, greedy).unwrap();
    let mut args = vec!["lab", "run", file.to_str().unwrap()];
    args.extend(target_args(&ns.name));
    let run = copy.run(&args);
    run.assert_code(3).assert_error(&format!("error: the lab cannot change the resources of container web: ResourceQuota {}/attendee-room has 2 of limits.cpu left (4 allowed, 2 used) and the new pod would need 64; the rollout could not create it\nhelp: this lab does not fit the target; pick another (`kindlab lab list`) or another --target", ns.name));
    let resources = shared_lab().kubectl(&[
        "get",
        "deployment",
        "catalog",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].resources}",
    ]);
    let resources: Value = serde_json::from_str(&resources).unwrap();
    assert_eq!(resources["requests"]["cpu"], "100m", "{resources}");
    assert_eq!(resources["limits"]["cpu"], "2", "{resources}");
}

/// The sample in the same kind of room: Pending and OOMKilled still show there.
fn run_sample_in_a_room(name: &str) -> Value {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let ns = room(&format!("2nd-sample-{name}"));
    let run = copy.run(&["lab", "run", name, "-n", &ns.name, "-o", "json"]);
    run.assert_code(0);
    let report = run.json();
    assert_eq!(report["diagnosis_matches"], true, "{report}");
    report
}

#[test]
fn second_app_room_holds_the_samples_pending_lab() {
    let report = run_sample_in_a_room("pending-resources");
    assert_mentions(&report, "observed", "Unschedulable");
}

#[test]
fn second_app_room_holds_the_samples_oom_lab() {
    let report = run_sample_in_a_room("oom-killed");
    assert_mentions(&report, "observed", "OOMKilled");
}
