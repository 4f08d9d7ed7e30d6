//! A workshop room on the shared cluster: the instructor provisions attendees, each attendee
//! runs a lab with nothing but its own kubeconfig (a ServiceAccount token bound to a Role in
//! its own namespace), cannot touch the other's namespace, and the room is reset and torn
//! down leaving nothing labelled.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// The room every test here shares, provisioned once: ada and bob do a lab at once, cyd is
/// the one whose lab the instructor resets (and whose namespace ada tries to touch).
struct Room {
    name: String,
    attendees: [String; 3],
    handout: PathBuf,
    provisioned: Value,
    _dir: tempfile::TempDir,
}

impl Room {
    fn kubeconfig(&self, attendee: &str) -> PathBuf {
        self.handout.join(format!("{attendee}.kubeconfig"))
    }
}

fn room() -> &'static Room {
    static ROOM: std::sync::OnceLock<Room> = std::sync::OnceLock::new();
    ROOM.get_or_init(|| {
        let lab = shared_lab();
        let pid = std::process::id();
        let name = format!("it-room-{pid}");
        let attendees = [
            format!("rm-ada-{pid}"),
            format!("rm-bob-{pid}"),
            format!("rm-cyd-{pid}"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let handout = dir.path().join("handout");
        // Left over from an earlier run of this process id: nothing to keep.
        let provisioned = lab.run(&[
            "workshop",
            "provision",
            &attendees[0],
            &attendees[1],
            &attendees[2],
            "--room",
            &name,
            "--out",
            handout.to_str().unwrap(),
            "--token-ttl",
            "1h",
            "-o",
            "json",
        ]);
        provisioned.assert_code(0);
        Room {
            provisioned: provisioned.json(),
            name,
            attendees,
            handout,
            _dir: dir,
        }
    })
}

#[test]
fn provision_makes_a_namespace_credentials_budget_and_isolation_per_attendee() {
    let room = room();
    let lab = shared_lab();
    let attendees = room.provisioned["attendees"].as_array().unwrap();
    assert_eq!(attendees.len(), 3);
    for a in attendees {
        assert_eq!(a["token"], "issued", "{a}");
        let changes = a["changes"].to_string();
        for kind in [
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ResourceQuota",
            "LimitRange",
            "NetworkPolicy",
            "Deployment",
        ] {
            assert!(changes.contains(kind), "{kind} in {changes}");
        }
    }
    for attendee in &room.attendees {
        let kubeconfig = room.kubeconfig(attendee);
        let mode = std::fs::metadata(&kubeconfig).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            mode.permissions().mode() & 0o777,
            0o600,
            "a token is private"
        );
        // The namespace is the kubeconfig's own: no -n needed.
        let pods = kubectl_as(
            &kubeconfig,
            &lab.dir,
            &["get", "pods", "-l", "app=orders-api"],
        );
        pods.assert_code(0);
        assert!(pods.stdout.contains("Running"), "{}", pods.stdout);
        let labels = lab.kubectl(&[
            "get",
            "namespace",
            attendee,
            "-o",
            "jsonpath={.metadata.labels}",
        ]);
        assert!(labels.contains(&room.name), "{labels}");
        assert!(
            labels.contains("\"pod-security.kubernetes.io/enforce\":\"baseline\""),
            "{labels}"
        );
        let policy = lab.kubectl(&[
            "get",
            "networkpolicy",
            "kindlab-same-namespace",
            "-n",
            attendee,
            "-o",
            "jsonpath={.spec}",
        ]);
        assert!(policy.contains("\"policyTypes\":[\"Ingress\"]"), "{policy}");
        let quota = lab.kubectl(&[
            "get",
            "resourcequota",
            "kindlab-room",
            "-n",
            attendee,
            "-o",
            "jsonpath={.status.used.pods}",
        ]);
        // Another test's lab may be rolling this attendee's Deployment (two pods for a moment).
        let pods: u32 = quota.parse().unwrap_or(0);
        assert!(
            pods >= 1,
            "the deployed pod counts against the quota: {quota:?}"
        );
    }
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(room.handout.join("index.json")).unwrap())
            .unwrap();
    assert_eq!(index["attendees"].as_array().unwrap().len(), 3);
    assert!(
        std::fs::read_to_string(room.handout.join("README.md"))
            .unwrap()
            .contains("KINDLAB_KUBECONFIG")
    );
}

#[test]
fn a_second_provision_changes_nothing_and_a_dry_run_plans_only_the_new_attendee() {
    let room = room();
    let lab = shared_lab();
    let out = room.handout.to_str().unwrap();
    let again = lab.run(&[
        "workshop",
        "provision",
        &room.attendees[0],
        &room.attendees[1],
        &room.attendees[2],
        "--room",
        &room.name,
        "--out",
        out,
        "--token-ttl",
        "1h",
        "-o",
        "json",
    ]);
    again.assert_code(0);
    for a in again.json()["attendees"].as_array().unwrap() {
        assert_eq!(a["changes"], serde_json::json!([]), "{a}");
        assert_eq!(a["token"], "kept", "{a}");
    }
    let newcomer = format!("rm-dan-{}", std::process::id());
    let plan = lab.run(&[
        "workshop",
        "provision",
        &room.attendees[0],
        &newcomer,
        "--room",
        &room.name,
        "--out",
        out,
        "--dry-run",
    ]);
    plan.assert_code(0);
    assert!(
        plan.stdout
            .contains(&format!("would create Namespace {newcomer}")),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains(&room.attendees[0]), "{}", plan.stdout);
    let absent = Command::new("kubectl")
        .args(["get", "namespace", &newcomer])
        .env("KUBECONFIG", lab.kubeconfig())
        .output()
        .unwrap();
    assert!(!absent.status.success(), "a dry run creates nothing");
}

/// What an attendee does, with only its own kubeconfig: start, a failing check, the lab
/// text's fix by hand, a passing check, reset.
fn attendee_does_the_lab(attendee: &str, kubeconfig: &Path) {
    let lab = shared_lab();
    let copy = lab.workspace_copy();
    let as_attendee = |args: &[&str]| {
        let mut full = vec!["--workspace", copy.path().to_str().unwrap()];
        full.extend_from_slice(args);
        kindlab_env(
            &full,
            &[("KINDLAB_KUBECONFIG", kubeconfig.to_str().unwrap())],
        )
    };
    let started = as_attendee(&["lab", "start", "bad-image-tag", "-o", "json"]);
    started.assert_code(0);
    let started = started.json();
    assert_eq!(
        started["session"]["target"],
        format!("Deployment {attendee}/orders-api")
    );
    let steps = started["text"].to_string();
    let overlay = format!("deploy/overlays/{attendee}");
    assert!(
        steps.contains(&format!("kubectl apply -k {overlay}")),
        "{steps}"
    );

    as_attendee(&["lab", "check"]).assert_code(10);
    let pods = kubectl_as(
        kubeconfig,
        copy.path(),
        &["get", "pods", "-l", "app=orders-api"],
    );
    pods.assert_code(0);
    // The lab text's fix, typed by the attendee in its workspace.
    kubectl_as(kubeconfig, copy.path(), &["apply", "-k", &overlay]).assert_code(0);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let check = as_attendee(&["lab", "check", "-o", "json"]);
        if check.code == 0 {
            assert_eq!(check.json()["session"]["state"], "fixed");
            break;
        }
        assert!(Instant::now() < deadline, "never fixed: {}", check.stdout);
        std::thread::sleep(Duration::from_millis(500));
    }
    let reset = as_attendee(&["reset", "-o", "json"]);
    reset.assert_code(0);
    assert_eq!(reset.json()["namespaces"][0]["namespace"], attendee);
}

#[test]
fn two_attendees_do_a_lab_at_once_with_only_their_own_credentials() {
    let room = room();
    let handles: Vec<_> = room.attendees[..2]
        .iter()
        .map(|attendee| {
            let attendee = attendee.clone();
            let kubeconfig = room.kubeconfig(&attendee);
            std::thread::spawn(move || attendee_does_the_lab(&attendee, &kubeconfig))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn an_attendee_cannot_touch_the_other_namespace() {
    let room = room();
    let lab = shared_lab();
    let (mine, theirs) = (&room.attendees[0], &room.attendees[2]);
    let kubeconfig = room.kubeconfig(mine);
    let read = kubectl_as(&kubeconfig, &lab.dir, &["get", "pods", "-n", theirs]);
    assert_ne!(read.code, 0);
    assert!(read.stderr.contains("forbidden"), "{}", read.stderr);
    let write = kubectl_as(
        &kubeconfig,
        &lab.dir,
        &[
            "scale",
            "deployment/orders-api",
            "--replicas=0",
            "-n",
            theirs,
        ],
    );
    assert!(write.stderr.contains("forbidden"), "{}", write.stderr);
    let cluster_wide = kubectl_as(&kubeconfig, &lab.dir, &["get", "nodes"]);
    assert!(
        cluster_wide.stderr.contains("forbidden"),
        "{}",
        cluster_wide.stderr
    );

    let copy = lab.workspace_copy();
    let refused = kindlab_env(
        &[
            "--workspace",
            copy.path().to_str().unwrap(),
            "lab",
            "start",
            "bad-image-tag",
            "-n",
            theirs,
        ],
        &[("KINDLAB_KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    refused.assert_code(7).assert_error(
        &format!("error: Kubernetes API request failed while trying to read Deployment {theirs}/orders-api\n\
             help: system:serviceaccount:{mine}:attendee lacks the permission to get deployments.apps in namespace {theirs}; as a workshop attendee, work in your own namespace ({mine}: leave out -n {theirs}); otherwise the cluster's admin (a workshop's instructor) can grant it with a Role and RoleBinding; check with `kubectl auth can-i get deployments.apps -n {theirs}`"),
    );
    // Nothing changed there.
    let image = lab.kubectl(&[
        "get",
        "deployment",
        "orders-api",
        "-n",
        theirs,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert!(!image.contains("nonexistent"), "{image}");
}

#[test]
fn the_instructor_sees_the_room_and_resets_an_attendee() {
    let room = room();
    let lab = shared_lab();
    let attendee = &room.attendees[2];
    let kubeconfig = room.kubeconfig(attendee);
    let status = lab.run(&["workshop", "status", "--room", &room.name, "-o", "json"]);
    status.assert_code(0);
    let rows = status.json()["attendees"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let text = lab.run(&["workshop", "status", "--room", &room.name]);
    assert!(text.stdout.contains("ATTENDEE"), "{}", text.stdout);

    // The attendee's lab runs from its own machine: the instructor has no session of it.
    let copy = lab.workspace_copy();
    kindlab_env(
        &[
            "--workspace",
            copy.path().to_str().unwrap(),
            "lab",
            "start",
            "readiness-probe",
        ],
        &[("KINDLAB_KUBECONFIG", kubeconfig.to_str().unwrap())],
    )
    .assert_code(0);
    let row = status_row(room, attendee);
    assert_eq!(row["lab"], "readiness-probe", "{row}");
    assert!(row["last_activity"].is_string(), "{row}");

    let reset = lab.run(&[
        "workshop", "reset", attendee, "--room", &room.name, "-o", "json",
    ]);
    reset.assert_code(0);
    let reset = reset.json();
    assert_eq!(
        reset["attendees"][0]["ended"]["lab"], "readiness-probe",
        "{reset}"
    );
    let probe = lab.kubectl(&[
        "get",
        "deployment",
        "orders-api",
        "-n",
        attendee,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].readinessProbe.httpGet.path}",
    ]);
    assert_eq!(
        probe, "/healthz",
        "the lab's field is released from the cluster alone"
    );
    // The attendee's kindlab learns it from the cluster: no credit for a fix not made.
    let stale = kindlab_env(
        &["--workspace", copy.path().to_str().unwrap(), "lab", "check"],
        &[("KINDLAB_KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    stale.assert_code(5).assert_error(
        &format!("error: lab \"readiness-probe\" in namespace {attendee} was ended on the cluster (reset by the instructor, or by another kindlab)\n\
             help: your namespace is back as the workspace declares it: start the next lab (`kindlab lab list`)"),
    );
    let row = status_row(room, attendee);
    assert_eq!(row["state"], "idle", "{row}");
}

/// The instructor's `workshop status` row of `attendee`.
fn status_row(room: &Room, attendee: &str) -> Value {
    let status = shared_lab()
        .run(&["workshop", "status", "--room", &room.name, "-o", "json"])
        .json();
    status["attendees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["attendee"] == attendee)
        .unwrap()
        .clone()
}

#[test]
fn teardown_removes_exactly_what_provision_made() {
    let lab = shared_lab();
    let pid = std::process::id();
    let name = format!("it-gone-{pid}");
    let attendee = format!("rm-gone-{pid}");
    let dir = tempfile::tempdir().unwrap();
    let bystander = lab.namespace("bystander");
    lab.kubectl(&["create", "namespace", &bystander.name]);
    lab.run(&[
        "workshop",
        "provision",
        &attendee,
        "--room",
        &name,
        "--out",
        dir.path().to_str().unwrap(),
    ])
    .assert_code(0);
    // A namespace of the attendee's name that the room did not make is refused.
    let foreign = lab.run(&[
        "workshop",
        "provision",
        &bystander.name,
        "--room",
        &name,
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    foreign.assert_code(5);
    let plan = lab.run(&["workshop", "teardown", "--room", &name, "--dry-run"]);
    plan.assert_code(0);
    assert!(plan.stdout.contains(&attendee), "{}", plan.stdout);
    lab.run(&["workshop", "teardown", "--room", &name])
        .assert_code(0);
    let left = lab.kubectl(&[
        "get",
        "namespaces",
        "-l",
        &format!("dev.kindlab.room={name}"),
        "-o",
        "name",
    ]);
    assert_eq!(left, "", "nothing labelled remains");
    lab.kubectl(&["get", "namespace", &bystander.name]);
}

/// Runs a one-off pod in `namespace` (the app's own image: busybox's wget) that fetches
/// `url`; true when it got an answer.
fn fetch_from(namespace: &str, url: &str) -> bool {
    let lab = shared_lab();
    // A running pod's image: another test's lab may have broken the Deployment's.
    let image = lab.kubectl(&[
        "get",
        "pods",
        "-n",
        namespace,
        "--field-selector=status.phase=Running",
        "-o",
        "jsonpath={.items[0].spec.containers[0].image}",
    ]);
    let pod = format!("probe-{}", unique("p"));
    // Five tries over ~10 s: the policy agent learns a new pod's address a moment after it
    // starts, and until then even its own namespace may refuse it. (busybox 1.35's
    // `wget -T` segfaults: the timeout applet bounds each try instead.)
    let script = format!(
        "for i in 1 2 3 4 5; do timeout 2 wget -q -O /dev/null {url} && exit 0; sleep 1; done; exit 1"
    );
    lab.kubectl(&[
        "run",
        &pod,
        "-n",
        namespace,
        "--image",
        &image,
        "--restart=Never",
        "--command",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let phase = loop {
        let phase = lab.kubectl(&[
            "get",
            "pod",
            &pod,
            "-n",
            namespace,
            "-o",
            "jsonpath={.status.phase}",
        ]);
        if phase == "Succeeded" || phase == "Failed" {
            break phase;
        }
        assert!(Instant::now() < deadline, "probe pod still {phase}");
        std::thread::sleep(Duration::from_millis(300));
    };
    lab.kubectl(&["delete", "pod", &pod, "-n", namespace, "--wait=false"]);
    phase == "Succeeded"
}

/// The room's NetworkPolicy holds: another attendee's pod is refused, a pod of the same
/// namespace is served (the test cluster enforces policies: kindnet, or kube-router's policy
/// controller beside the offline node image's CNI).
#[test]
fn a_pod_of_one_attendee_cannot_reach_another_attendees_service() {
    let room = room();
    let (target, other) = (&room.attendees[0], &room.attendees[1]);
    let url = format!("http://orders-api.{target}.svc.cluster.local/healthz");
    assert!(fetch_from(target, &url), "the same namespace is served");
    assert!(
        !fetch_from(other, &url),
        "another attendee's namespace is refused"
    );
}
