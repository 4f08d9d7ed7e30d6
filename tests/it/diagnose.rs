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
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
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
            container_statuses(json).iter().any(|s| {
                reasons
                    .iter()
                    .any(|r| s["state"]["waiting"]["reason"] == *r)
            })
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
    let found: Vec<&Value> = findings
        .iter()
        .filter(|f| f["subject"] == subject)
        .collect();
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
    // A YAML double-quoted scalar; invisible characters go in as they are.
    let image = image.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: {name}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: main\n    image: \"{image}\"\n{extra}"
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

#[test]
fn a_missing_repository_is_told_apart_from_a_missing_tag() {
    let lab = shared_lab();
    let ns = Namespace::new("repo");
    let image = format!("{}/kldiag/no-such-repository:1", lab.registry_host);
    ns.apply(&pod_yaml("web", &image, ""));
    ns.wait_waiting("web", &["ErrImagePull", "ImagePullBackOff"]);

    let f = finding(&ns.diagnose("web"), "pod/web");
    assert_certain(&f, "repository-not-found");
    assert!(
        evidence_from(&f, "registry")
            .iter()
            .any(|e| e.contains("has no repository kldiag/no-such-repository")),
        "{f:#}"
    );
}

#[test]
fn invalid_references_point_at_the_offending_characters() {
    let lab = shared_lab();
    let ns = Namespace::new("ref");
    let upper = format!("{}/kldiag/BusyBox:1.36", lab.registry_host);
    let invisible = format!("{}/kldiag/busy\u{200B}box:1.36", lab.registry_host);
    ns.apply(&pod_yaml("upper", &upper, ""));
    ns.apply(&pod_yaml("invisible", &invisible, ""));
    ns.wait_waiting("upper", &["InvalidImageName"]);
    ns.wait_waiting("invisible", &["InvalidImageName"]);

    let diagnosis = ns.diagnose("");
    let f = finding(&diagnosis, "pod/upper");
    assert_certain(&f, "invalid-reference");
    let at = lab.registry_host.len() + "/kldiag/".len();
    assert_eq!(f["problems"][0]["at"], at, "{f:#}");
    assert_eq!(f["problems"][0]["text"], "B", "{f:#}");
    assert_eq!(
        f["suggestion"],
        format!("{}/kldiag/busybox:1.36", lab.registry_host)
    );
    let f = finding(&diagnosis, "pod/invisible");
    assert_certain(&f, "invalid-reference");
    assert_eq!(f["problems"][0]["text"], "U+200B", "{f:#}");
    assert_eq!(f["problems"][0]["at"], at + 4, "{f:#}");
}

#[test]
fn a_never_pull_policy_without_the_image() {
    let lab = shared_lab();
    let ns = Namespace::new("never");
    let image = format!("{}/kldiag/busybox:not-on-the-node", lab.registry_host);
    ns.apply(&pod_yaml("web", &image, "    imagePullPolicy: Never\n"));
    ns.wait_waiting("web", &["ErrImageNeverPull"]);

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    assert_certain(&f, "image-never-pull");
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("kind load docker-image"),
        "{f:#}"
    );
}

#[test]
fn a_host_that_does_not_resolve() {
    let ns = Namespace::new("dns");
    ns.apply(&pod_yaml(
        "web",
        "kldiag-no-such-host.invalid:5000/app:1",
        "",
    ));
    ns.wait_waiting("web", &["ErrImagePull", "ImagePullBackOff"]);

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    assert_certain(&f, "registry-unreachable");
    assert_eq!(f["problem"], "dns", "{f:#}");
}

/// A registry container of the test's own on the `kind` network. `wired`: the node reaches
/// it as `localhost:<port>` through a hosts.toml, as kindlab wires its own registry.
struct TestRegistry {
    name: String,
    port: u16,
    wired: bool,
    node: String,
}

impl TestRegistry {
    fn start(prefix: &str, args: &[&str], wired: bool) -> TestRegistry {
        let lab = shared_lab();
        let registry = TestRegistry {
            name: unique(&format!("kldiag-{prefix}")),
            port: free_port(),
            wired,
            node: format!("{}-control-plane", lab.cluster),
        };
        let publish = format!("127.0.0.1:{}:5000", registry.port);
        let mut run = vec![
            "run",
            "-d",
            "--name",
            &registry.name,
            "--network",
            "kind",
            "-p",
            &publish,
        ];
        run.extend_from_slice(args);
        run.push("registry:3");
        docker(&run);
        registry.wait_answers();
        if wired {
            let dir = format!("/etc/containerd/certs.d/{}", registry.host());
            let toml = format!(
                "server = \"http://{name}:5000\"\n[host.\"http://{name}:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                name = registry.name
            );
            let mut child = Command::new("docker")
                .args(["exec", "-i", &registry.node, "sh", "-c"])
                .arg(format!("mkdir -p {dir} && cat > {dir}/hosts.toml"))
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(toml.as_bytes())
                .unwrap();
            assert!(child.wait().unwrap().success(), "write hosts.toml");
        }
        registry
    }

    /// `localhost:<port>`, as pods name it when wired.
    fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    fn wait_answers(&self) {
        use std::io::Read as _;
        let started = Instant::now();
        loop {
            let answered = std::net::TcpStream::connect(("127.0.0.1", self.port))
                .and_then(|mut s| {
                    s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n")?;
                    let mut buf = [0u8; 12];
                    s.read_exact(&mut buf)?;
                    Ok(buf.starts_with(b"HTTP/"))
                })
                .unwrap_or(false);
            if answered {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "registry {} did not answer",
                self.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        docker_quiet(&["rm", "-f", "-v", &self.name]);
        if self.wired {
            docker_quiet(&[
                "exec",
                &self.node,
                "rm",
                "-rf",
                &format!("/etc/containerd/certs.d/{}", self.host()),
            ]);
        }
    }
}

#[test]
fn a_stopped_registry_is_unreachable_from_the_node_and_from_here() {
    let registry = TestRegistry::start("stopped", &[], true);
    docker(&["stop", "-t", "0", &registry.name]);
    let ns = Namespace::new("stopped");
    ns.apply(&pod_yaml("web", &format!("{}/app:1", registry.host()), ""));
    ns.wait_waiting("web", &["ErrImagePull", "ImagePullBackOff"]);

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    assert_certain(&f, "registry-unreachable");
    assert!(
        evidence_from(&f, "registry")
            .iter()
            .any(|e| e.contains("could not ask")),
        "{f:#}"
    );
    assert!(
        f["summary"].as_str().unwrap().contains("looks down"),
        "{f:#}"
    );
}

#[test]
fn plain_http_asked_over_https() {
    let registry = TestRegistry::start("plain", &[], false);
    let ns = Namespace::new("plain");
    // No hosts.toml: the node's containerd speaks HTTPS to it.
    ns.apply(&pod_yaml(
        "web",
        &format!("{}:5000/app:1", registry.name),
        "",
    ));
    ns.wait_waiting("web", &["ErrImagePull", "ImagePullBackOff"]);

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    assert_certain(&f, "registry-tls");
    assert_eq!(f["problem"], "plain-http-registry", "{f:#}");
    assert!(f["fix"].as_str().unwrap().contains("hosts.toml"), "{f:#}");
}

#[test]
fn a_registry_that_wants_credentials() {
    let auth = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("right-password", 4).unwrap();
    std::fs::write(auth.path().join("htpasswd"), format!("kldiag:{hash}\n")).unwrap();
    let mount = format!("{}:/auth:ro", auth.path().display());
    let registry = TestRegistry::start(
        "auth",
        &[
            "-v",
            &mount,
            "-e",
            "REGISTRY_AUTH=htpasswd",
            "-e",
            "REGISTRY_AUTH_HTPASSWD_REALM=kldiag",
            "-e",
            "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
        ],
        true,
    );
    let ns = Namespace::new("auth");
    let image = format!("{}/kldiag/app:1", registry.host());
    let (ok, _, err) = kubectl(
        &ns.context,
        &[
            "-n",
            &ns.name,
            "create",
            "secret",
            "docker-registry",
            "wrong",
            &format!("--docker-server={}", registry.host()),
            "--docker-username=kldiag",
            "--docker-password=wrong-password",
        ],
        None,
    );
    assert!(ok, "{err}");
    ns.apply(&pod_yaml("anonymous", &image, ""));
    ns.apply(&format!(
        "{}  imagePullSecrets: [{{name: no-such-secret}}]\n",
        pod_yaml("missing-secret", &image, "")
    ));
    ns.apply(&format!(
        "{}  imagePullSecrets: [{{name: wrong}}]\n",
        pod_yaml("wrong-password", &image, "")
    ));
    for pod in ["anonymous", "missing-secret", "wrong-password"] {
        ns.wait_waiting(pod, &["ErrImagePull", "ImagePullBackOff"]);
    }

    let diagnosis = ns.diagnose("");
    for (pod, problem) in [
        ("anonymous", "missing-credentials"),
        ("missing-secret", "missing-pull-secret"),
        ("wrong-password", "rejected-credentials"),
    ] {
        let f = finding(&diagnosis, &format!("pod/{pod}"));
        assert_certain(&f, "unauthorized");
        assert_eq!(f["problem"], problem, "{pod}: {f:#}");
    }
}

#[test]
fn an_image_built_for_another_platform() {
    let lab = shared_lab();
    let image = format!("{}/kldiag/s390x-only:1", lab.registry_host);
    push_foreign_platform_index(&lab.registry_host, "kldiag/s390x-only", "1");
    let ns = Namespace::new("platform");
    ns.apply(&pod_yaml("web", &image, ""));
    ns.wait_waiting("web", &["ErrImagePull", "ImagePullBackOff"]);

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    assert_certain(&f, "platform-mismatch");
    assert_eq!(f["available"][0], "linux/s390x", "{f:#}");
    assert!(
        f["node"].as_str().is_some_and(|n| n.starts_with("linux/")),
        "{f:#}"
    );
}

/// An image index whose only entry is for linux/s390x (its manifest has a config and no
/// layers: the node refuses it before it would need any).
fn push_foreign_platform_index(host: &str, repository: &str, tag: &str) {
    use oci_client::client::{ClientConfig, ClientProtocol};
    use oci_client::manifest::{OciImageIndex, OciImageManifest, OciManifest};
    use oci_client::secrets::RegistryAuth;
    use oci_client::{Client, Reference};
    use sha2::Digest as _;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![host.to_string()]),
            ..Default::default()
        });
        let at = |t: &str| -> Reference {
            Reference::with_tag(host.to_string(), repository.to_string(), t.to_string())
        };
        let config = br#"{"architecture":"s390x","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = format!("sha256:{:x}", sha2::Sha256::digest(config));
        client
            .push_blob(&at(tag), config.to_vec(), &config_digest)
            .await
            .unwrap();
        let manifest: OciImageManifest = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": []
        }))
        .unwrap();
        let part = format!("{tag}-s390x");
        client
            .push_manifest(&at(&part), &OciManifest::Image(manifest))
            .await
            .unwrap();
        let (raw, digest) = client
            .pull_manifest_raw(
                &at(&part),
                &RegistryAuth::Anonymous,
                &["application/vnd.oci.image.manifest.v1+json"],
            )
            .await
            .unwrap();
        let index: OciImageIndex = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": digest, "size": raw.len(),
                           "platform": {"architecture": "s390x", "os": "linux"}}]
        }))
        .unwrap();
        client
            .push_manifest_list(&at(tag), &RegistryAuth::Anonymous, index)
            .await
            .unwrap();
    });
}

#[test]
fn a_crash_loop_names_the_exit_code_and_the_last_log_lines() {
    let ns = Namespace::new("crash");
    ns.apply(&pod_yaml(
        "web",
        busybox(),
        "    command: [sh, -c, 'echo starting; echo config file missing, giving up >&2; exit 3']\n",
    ));
    ns.wait("web", "CrashLoopBackOff after a restart", |json| {
        container_statuses(json).iter().any(|s| {
            s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                && s["restartCount"].as_i64().unwrap_or(0) >= 1
        })
    });

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    assert_certain(&f, "crash-loop");
    assert_eq!(f["exit_code"], 3, "{f:#}");
    assert!(
        evidence_from(&f, "log")
            .iter()
            .any(|l| l.contains("config file missing, giving up")),
        "{f:#}"
    );
    assert!(f["fix"].as_str().unwrap().contains("--previous"), "{f:#}");
}

#[test]
fn an_oom_kill_names_the_memory_limit() {
    let ns = Namespace::new("oom");
    ns.apply(&pod_yaml(
        "web",
        busybox(),
        "    command: [sh, -c, 'exec dd if=/dev/zero of=/dev/null bs=64M count=1']\n    resources: {limits: {memory: 16Mi}}\n",
    ));
    ns.wait("web", "an OOM kill", |json| {
        container_statuses(json).iter().any(|s| {
            s["lastState"]["terminated"]["reason"] == "OOMKilled"
                || s["state"]["terminated"]["reason"] == "OOMKilled"
        })
    });

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    // The runtime records the kill as OOMKilled, or (containerd on cgroup v1, on a later
    // restart) as "Error" with code 137: then the memory limit is named as the likely cause,
    // with a crash as the other candidate.
    assert_eq!(f["cause"], "oom-killed", "{f:#}");
    match f["certainty"].as_str() {
        Some("certain") => {}
        Some("ambiguous") => {
            assert_eq!(
                f["candidates"],
                serde_json::json!(["oom-killed", "crash-loop"]),
                "{f:#}"
            );
            assert!(
                evidence_from(&f, "container")
                    .iter()
                    .any(|e| e.contains("code 137")),
                "{f:#}"
            );
        }
        _ => panic!("{f:#}"),
    }
    assert_eq!(f["limit"], "16Mi", "{f:#}");
    assert!(
        f["fix"].as_str().unwrap().contains("--limits=memory"),
        "{f:#}"
    );
}

#[test]
fn a_missing_configmap_is_named_with_the_env_that_reads_it() {
    let ns = Namespace::new("config");
    ns.apply(&pod_yaml(
        "web",
        busybox(),
        "    command: [sleep, '3600']\n    env:\n    - name: MODE\n      valueFrom: {configMapKeyRef: {name: app-config, key: mode}}\n",
    ));
    ns.wait_waiting("web", &["CreateContainerConfigError"]);

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    assert_certain(&f, "config-missing");
    assert_eq!(f["kind"], "ConfigMap", "{f:#}");
    assert_eq!(f["name"], "app-config", "{f:#}");
    assert!(
        evidence_from(&f, "spec")
            .iter()
            .any(|e| e.contains("env MODE")),
        "{f:#}"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("kubectl create configmap app-config"),
        "{f:#}"
    );
}

#[test]
fn failing_probes_are_named_with_their_last_unhealthy_event() {
    let ns = Namespace::new("probe");
    ns.apply(&pod_yaml(
        "unready",
        busybox(),
        "    command: [sleep, '3600']\n    readinessProbe: {exec: {command: [cat, /tmp/ready]}, periodSeconds: 1}\n",
    ));
    ns.apply(&pod_yaml(
        "unlive",
        busybox(),
        "    command: [sleep, '3600']\n    livenessProbe: {exec: {command: [cat, /tmp/alive]}, periodSeconds: 1, failureThreshold: 1}\n",
    ));
    ns.wait("unready", "a running container", |json| {
        container_statuses(json)
            .iter()
            .any(|s| s["state"]["running"].is_object())
    });
    ns.wait("unlive", "a restart", |json| {
        container_statuses(json)
            .iter()
            .any(|s| s["restartCount"].as_i64().unwrap_or(0) >= 1)
    });
    // The first Unhealthy event comes a period after the start.
    let started = Instant::now();
    let diagnosis = loop {
        let run = shared_lab().run(&["diagnose", "-n", &ns.name, "-o", "json"]);
        let json = run.json();
        let named = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["cause"] == "probe-failing")
            .count();
        if named == 2 || started.elapsed() > SETTLE {
            break json;
        }
        std::thread::sleep(Duration::from_secs(1));
    };

    let f = finding(&diagnosis, "pod/unready");
    assert_certain(&f, "probe-failing");
    assert_eq!(f["probe"], "readiness", "{f:#}");
    assert!(
        f["check"].as_str().unwrap().contains("cat /tmp/ready"),
        "{f:#}"
    );
    assert!(
        evidence_from(&f, "event")
            .iter()
            .any(|e| e.contains("Readiness probe failed")),
        "{f:#}"
    );
    let f = finding(&diagnosis, "pod/unlive");
    assert_certain(&f, "probe-failing");
    assert_eq!(f["probe"], "liveness", "{f:#}");
}

#[test]
fn a_pod_no_node_can_take() {
    let ns = Namespace::new("pending");
    ns.apply(&pod_yaml(
        "web",
        busybox(),
        "    command: [sleep, '3600']\n    resources: {requests: {cpu: '500'}}\n",
    ));
    ns.wait("web", "Unschedulable", |json| {
        json["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["reason"] == "Unschedulable"))
    });

    let f = finding(&ns.diagnose("pod/web"), "pod/web");
    assert_certain(&f, "unschedulable");
    assert!(
        f["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("Insufficient cpu")),
        "{f:#}"
    );
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("it requests 500 CPU"),
        "{f:#}"
    );
}

#[test]
fn a_service_that_selects_nothing() {
    let ns = Namespace::new("svc");
    ns.apply(&pod_yaml(
        "orders-api",
        busybox(),
        "    command: [sleep, '3600']\n",
    ));
    ns.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: orders\nspec:\n  selector: {app: orders-apii}\n  ports: [{port: 80}]\n",
    );
    ns.wait("orders-api", "Ready", |json| {
        json["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    });

    let diagnosis = ns.diagnose("service/orders");
    let f = finding(&diagnosis, "service/orders");
    assert_certain(&f, "service-without-endpoints");
    assert_eq!(f["matching_pods"], 0, "{f:#}");
    assert!(
        f["summary"].as_str().unwrap().contains("app=orders-api"),
        "{f:#}"
    );
}

#[test]
fn a_deployment_target_with_text_output_and_its_exit_codes() {
    let lab = shared_lab();
    let ns = Namespace::new("deploy");
    let missing = busybox().replace(":1.36", ":1.37");
    ns.apply(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: api}}}}\n  template:\n    metadata: {{labels: {{app: api}}}}\n    spec:\n      containers:\n      - name: api\n        image: {missing}\n"
    ));
    let started = Instant::now();
    let run = loop {
        let run = lab.run(&["diagnose", "deployment/api", "-n", &ns.name]);
        if run.code == 10 && run.stdout.contains("tag-not-found") || started.elapsed() > SETTLE {
            break run;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    run.assert_code(10);
    for line in [
        format!("deployment/api in namespace {}: 1 problem found", ns.name),
        "  cause:    tag-not-found".to_string(),
        "  evidence:".to_string(),
        // The fix names the Deployment, not the pod.
        format!("kubectl set image deployment/api api={}", busybox()),
    ] {
        assert!(
            run.stdout.contains(&line),
            "{line:?} not in:\n{}",
            run.stdout
        );
    }

    // A bare name finds the Deployment; another namespace is suggested for a wrong one.
    lab.run(&["diagnose", "api", "-n", &ns.name])
        .assert_code(10);
    let wrong = lab.run(&["diagnose", "api", "-n", "default"]);
    wrong.assert_code(3).assert_error(
        "error: there is no deployment, pod or service named \"api\" in namespace \"default\"\n\
             help: it exists in namespace kldiag-deploy-<id>: add `-n kldiag-deploy-<id>`",
    );
    let bad = lab.run(&["diagnose", "cronjob/api"]);
    bad.assert_code(3).assert_error(
        "error: \"cronjob/api\" is not something kindlab can diagnose: kind \"cronjob\" is not one diagnose knows (deployment, pod, service)\n\
             help: name a deployment/NAME, pod/NAME, service/NAME or a bare NAME (or nothing, for the whole namespace)",
    );
}

#[test]
fn a_healthy_deployment_exits_zero_in_context_mode() {
    let lab = shared_lab();
    let _dev = lab.lock_dev();
    // --context: any cluster in the kubeconfig, no workspace needed.
    let outside = tempfile::tempdir().unwrap();
    let run = kindlab(&[
        "--workspace",
        outside.path().to_str().unwrap(),
        "diagnose",
        "deployment/orders-api",
        "-n",
        "dev",
        "--context",
        &lab.context,
        "-o",
        "json",
    ]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["healthy"], true, "{json:#}");
    assert_eq!(json["findings"].as_array().unwrap().len(), 0, "{json:#}");
}

/// Issue 19: a namespace that does not exist is a bad input (exit 3), not "healthy".
#[test]
fn a_namespace_that_does_not_exist_is_named_not_called_healthy() {
    let lab = shared_lab();
    let run = lab.run(&["diagnose", "-n", "no-such-namespace-kl"]);
    run.assert_code(3).assert_error(
        "error: there is no namespace \"no-such-namespace-kl\"\n\
             help: check the name: `kubectl get namespaces` lists what exists",
    );
}
