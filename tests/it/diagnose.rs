//! `kindlab diagnose` on the shared kind cluster: every cause that can be produced here is
//! produced for real (a missing tag, a missing repository, a stopped registry, plain HTTP
//! asked over HTTPS, invalid references, a registry that wants credentials, a never-pull
//! policy, a platform the node is not, crash loops, OOM kills, missing ConfigMaps, failing
//! probes, a pod no node can take, a Service that selects nothing), and the diagnosis must
//! name it with evidence and a fix. Each test has its own namespace, so they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// How long a pod may take to reach the state a test waits for.
const SETTLE: Duration = Duration::from_secs(90);

fn kubectl(context: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new("kubectl")
        .arg("--context")
        .arg(context)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl (is it on PATH?)");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A namespace of the test's own, deleted however the test ends.
struct Namespace {
    name: String,
    context: String,
}

impl Namespace {
    fn new(prefix: &str) -> Namespace {
        let lab = shared_lab();
        let name = unique(&format!("kldiag-{prefix}"));
        let (ok, _, err) = kubectl(&lab.context, &["create", "namespace", &name], None);
        assert!(ok, "create namespace {name}: {err}");
        Namespace {
            name,
            context: lab.context.clone(),
        }
    }

    fn apply(&self, yaml: &str) {
        let (ok, _, err) = kubectl(
            &self.context,
            &["-n", &self.name, "apply", "-f", "-"],
            Some(yaml),
        );
        assert!(ok, "kubectl apply failed: {err}\n{yaml}");
    }

    fn pod(&self, name: &str) -> Value {
        let (ok, out, err) = kubectl(
            &self.context,
            &["-n", &self.name, "get", "pod", name, "-o", "json"],
            None,
        );
        assert!(ok, "get pod {name}: {err}");
        serde_json::from_str(&out).unwrap()
    }

    /// Polls the pod until `ready` says so; fails with the pod's JSON after [`SETTLE`].
    #[track_caller]
    fn wait(&self, pod: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let json = self.pod(pod);
            if ready(&json) {
                return json;
            }
            assert!(
                started.elapsed() < SETTLE,
                "pod {pod} did not reach {what} within {SETTLE:?}: {json}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits until the pod's container waits for one of `reasons`.
    #[track_caller]
    fn wait_waiting(&self, pod: &str, reasons: &[&str]) -> Value {
        self.wait(pod, &reasons.join(" or "), |json| {
            container_statuses(json)
                .iter()
                .any(|s| reasons.iter().any(|r| s["state"]["waiting"]["reason"] == *r))
        })
    }

    /// `kindlab diagnose TARGET -n NS -o json` through the shared workspace (its kind
    /// cluster); must exit 10 (a problem found). Returns the diagnosis.
    #[track_caller]
    fn diagnose(&self, target: &str) -> Value {
        let run = shared_lab().run(&["diagnose", target, "-n", &self.name, "-o", "json"]);
        run.assert_code(10);
        run.json()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl(
            &self.context,
            &["delete", "namespace", &self.name, "--wait=false"],
            None,
        );
    }
}

fn container_statuses(pod: &Value) -> Vec<Value> {
    let mut all = pod["status"]["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    all.extend(
        pod["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    all
}

/// The one finding about `subject`, checked for the fields every finding must have.
#[track_caller]
fn finding(diagnosis: &Value, subject: &str) -> Value {
    let findings = diagnosis["findings"].as_array().unwrap();
    let found: Vec<&Value> = findings.iter().filter(|f| f["subject"] == subject).collect();
    assert_eq!(found.len(), 1, "one finding about {subject}: {diagnosis:#}");
    let f = found[0].clone();
    assert!(
        f["summary"].as_str().is_some_and(|s| !s.is_empty()),
        "no summary: {f:#}"
    );
    assert!(
        f["fix"].as_str().is_some_and(|s| !s.is_empty()),
        "no fix: {f:#}"
    );
    assert!(
        f["evidence"].as_array().is_some_and(|e| !e.is_empty()),
        "no evidence: {f:#}"
    );
    f
}

#[track_caller]
fn assert_certain(f: &Value, cause: &str) {
    assert_eq!(f["cause"], cause, "{f:#}");
    assert_eq!(f["certainty"], "certain", "{f:#}");
}

#[track_caller]
fn evidence_from(f: &Value, from: &str) -> Vec<String> {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["from"] == from)
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

/// busybox:1.36 in the shared registry, pushed once per run.
fn busybox() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let lab = shared_lab();
        let image = format!("{}/kldiag/busybox:1.36", lab.registry_host);
        docker(&["tag", "busybox:1.36", &image]);
        docker(&["push", "-q", &image]);
        image
    })
}

fn pod_yaml(name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: main\n    image: {image:?}\n{extra}"
    )
}

#[test]
fn a_missing_tag_is_named_with_the_tags_that_exist() {
    let image = busybox();
    let ns = Namespace::new("tag");
    let missing = image.replace(":1.36", ":1.37");
    ns.apply(&pod_yaml("web", &missing, "    command: [sleep, '3600']\n"));
    ns.wait_waiting("web", &["ErrImagePull", "ImagePullBackOff"]);

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    assert_certain(&f, "tag-not-found");
    assert_eq!(f["nearest"][0], "1.36", "{f:#}");
    assert!(
        evidence_from(&f, "event")
            .iter()
            .chain(evidence_from(&f, "container").iter())
            .any(|e| e.contains("not found")),
        "{f:#}"
    );
    assert!(
        evidence_from(&f, "registry")
            .iter()
            .any(|e| e.contains("no tag 1.37")),
        "{f:#}"
    );
    assert!(f["fix"].as_str().unwrap().contains(":1.36"), "{f:#}");
}
