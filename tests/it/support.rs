//! Running the kindlab binary in a scratch workspace, and looking at Docker independently of
//! kindlab's own code (through the docker CLI) to check what it did.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl Run {
    /// What kindlab printed at the binary edge for its failure: the `error:` line (and any
    /// lines of the same message) and the `help:` line, without the `caused by:` chain, with
    /// the variable parts redacted by [`redact`]. With `-o json` the same two lines are made
    /// of the error document's `error` and `fix`.
    pub fn error_text(&self) -> String {
        let doc = serde_json::from_str::<serde_json::Value>(&self.stdout).unwrap_or_default();
        match (doc["error"].as_str(), doc.get("exit_code")) {
            (Some(error), Some(_)) => {
                let fix = doc["fix"]
                    .as_str()
                    .map(|fix| format!("\nhelp: {fix}"))
                    .unwrap_or_default();
                redact(&format!("error: {error}{fix}"))
            }
            _ => error_block(&self.stderr),
        }
    }

    /// Pins the failure's message and fix exactly: `expected` is the whole `error:`/`help:`
    /// text with [`redact`]'s placeholders in the variable parts. `<any>` stands for what
    /// kindlab passes on from another program (the Docker engine's, the API server's or a
    /// controller's words, the node image of the kind on PATH), which differs between their
    /// versions and runs; it matches anything within its line.
    #[track_caller]
    pub fn assert_error(&self, expected: &str) -> &Self {
        let actual = self.error_text();
        assert!(
            error_matches(&actual, expected.trim_end()),
            "the error kindlab printed is not the one pinned\n--- expected\n{}\n--- actual (redacted)\n{actual}\n--- whole stderr\n{}",
            expected.trim_end(),
            self.stderr
        );
        self
    }
}

/// Whether `actual` is `expected`, where each `<any>` in `expected` stands for any text
/// within its line.
pub fn error_matches(actual: &str, expected: &str) -> bool {
    let pattern = expected
        .split("<any>")
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join("[^\n]*");
    regex::Regex::new(&format!("^{pattern}$"))
        .unwrap()
        .is_match(actual)
}

/// The last `error:` block of `stderr` (the binary edge prints it last): the message, then
/// the fix; the `caused by:` lines (and their continuation lines) are left out, as their
/// text is the engine's or the API server's, not kindlab's.
pub fn error_block(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let Some(start) = lines.iter().rposition(|l| l.starts_with("error: ")) else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut in_cause = false;
    for line in &lines[start..] {
        if line.starts_with("  caused by: ") {
            in_cause = true;
        } else if line.starts_with("help: ") {
            in_cause = false;
        }
        if !in_cause {
            kept.push(*line);
        }
    }
    redact(kept.join("\n").trim_end())
}

/// Replaces what differs between runs and machines by placeholders, in this order:
/// - `<target-tmp>`: the test binary's scratch directory (where the shared lab lives), and
///   `<checkout>`: this checkout;
/// - `<tmp>`: a temporary file or directory (`tempfile`'s `.tmpXXXXXX`);
/// - `sha256:<digest>` and `<hex>` (12 or more hex digits: image ids, content tags);
/// - `NAME-<pod>`: a pod a ReplicaSet named;
/// - `<lab>`: the shared lab's cluster name (`kl-it-` and six hex digits of the checkout);
/// - `NAME-<id>`: a [`unique`] name's process id and counter;
/// - `<port>`: a port after a loopback host or after the word `port`;
/// - `<duration>`: `1.2s`, `350ms`, `2m3s`.
pub fn redact(text: &str) -> String {
    use regex::Regex;
    static RULES: std::sync::OnceLock<Vec<(Regex, String)>> = std::sync::OnceLock::new();
    let rules = RULES.get_or_init(|| {
        let literal = |path: &str| regex::escape(path.trim_end_matches('/'));
        vec![
            (
                Regex::new(&literal(env!("CARGO_TARGET_TMPDIR"))).unwrap(),
                "<target-tmp>".to_string(),
            ),
            (
                Regex::new(&literal(env!("CARGO_MANIFEST_DIR"))).unwrap(),
                "<checkout>".to_string(),
            ),
            (
                Regex::new(&format!(
                    r"{}/\.tmp[A-Za-z0-9]{{6}}",
                    literal(std::env::temp_dir().to_str().unwrap())
                ))
                .unwrap(),
                "<tmp>".to_string(),
            ),
            (
                Regex::new(r"sha256:[0-9a-f]{64}").unwrap(),
                "sha256:<digest>".to_string(),
            ),
            (
                Regex::new(r"\b[0-9a-f]{12,}\b").unwrap(),
                "<hex>".to_string(),
            ),
            (
                // A ReplicaSet's pod: its template hash and a suffix, both in the alphabet
                // Kubernetes makes names of (no vowels, no 0, 1 or 3).
                Regex::new(
                    r"\b([a-z][a-z0-9-]*?)-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}\b",
                )
                .unwrap(),
                "${1}-<pod>".to_string(),
            ),
            (
                Regex::new(r"\bkl-it-[0-9a-f]{6}\b").unwrap(),
                "<lab>".to_string(),
            ),
            (
                Regex::new(r"\b([a-z][a-z0-9-]*?)-\d+-\d+\b").unwrap(),
                "${1}-<id>".to_string(),
            ),
            (
                Regex::new(r"\b(localhost|127\.0\.0\.1|0\.0\.0\.0):\d{2,5}\b").unwrap(),
                "${1}:<port>".to_string(),
            ),
            (
                Regex::new(r"\b(port|port other than) \d{2,5}\b").unwrap(),
                "${1} <port>".to_string(),
            ),
            (
                Regex::new(r"\b(\d+(\.\d+)?(ms|µs|h|m|s))+\b").unwrap(),
                "<duration>".to_string(),
            ),
        ]
    });
    let mut text = text.to_string();
    for (pattern, placeholder) in rules {
        text = pattern
            .replace_all(&text, placeholder.as_str())
            .into_owned();
    }
    text
}

/// Runs `kindlab ARGS` with extra environment.
pub fn kindlab_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kindlab"));
    cmd.args(args).env_remove("KINDLAB_WORKSPACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run kindlab");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn kindlab(args: &[&str]) -> Run {
    kindlab_env(args, &[])
}

/// `docker ARGS`; panics with its stderr when it fails.
/// Whether the engine has a volume of exactly this name.
pub fn volume_exists(name: &str) -> bool {
    !docker(&["volume", "ls", "-q", "--filter", &format!("name=^{name}$")]).is_empty()
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker ARGS`, ignoring failure (cleanup).
pub fn docker_quiet(args: &[&str]) {
    let _ = Command::new("docker").args(args).output();
}

/// Tests that need Docker fail loudly without it.
pub fn require_docker() {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "these tests need a running Docker engine: start one (`make engine` starts or installs it)"
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A unique, DNS-safe name for this test run.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A scaffolded sample workspace with its own registry name and port, so tests run in
/// parallel. Removes the registry container when dropped, even after a failed assertion.
pub struct TestWorkspace {
    pub dir: tempfile::TempDir,
    pub registry: String,
    pub port: u16,
    pub cluster: String,
}

impl TestWorkspace {
    /// Makes every new pod of the sample take `seconds` to become ready.
    pub fn slow_readiness(&self, seconds: u32) {
        let path = self.path().join("deploy/base/orders-api/deployment.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace(
                "          readinessProbe:\n",
                &format!("          readinessProbe:\n            initialDelaySeconds: {seconds}\n"),
            ),
        )
        .unwrap();
    }

    pub fn new() -> TestWorkspace {
        Self::with_cluster(&unique("kl"))
    }

    pub fn with_cluster(cluster: &str) -> TestWorkspace {
        require_docker();
        let dir = tempfile::tempdir().unwrap();
        kindlab(&["init", dir.path().to_str().unwrap()]).assert_code(0);
        let ws = TestWorkspace {
            dir,
            registry: unique("kl-registry"),
            port: free_port(),
            cluster: cluster.to_string(),
        };
        ws.write_manifest(&format!(
            "cluster:\n  name: {}\nregistry:\n  name: {}\n  port: {}\n  image: registry:3\nimages:\n  - name: orders-api\n    context: apps/orders-api\n    dockerfile: Dockerfile\ndeploy:\n  overlay: deploy/overlays/dev\n",
            ws.cluster, ws.registry, ws.port
        ));
        // The overlay names the registry by port; keep it in step with this workspace's port.
        let kustomization = ws.path().join("deploy/overlays/dev/kustomization.yaml");
        let text = std::fs::read_to_string(&kustomization).unwrap();
        std::fs::write(
            &kustomization,
            text.replace("localhost:5001", &format!("localhost:{}", ws.port)),
        )
        .unwrap();
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_manifest(&self, text: &str) {
        std::fs::write(self.path().join("kindlab.yaml"), text).unwrap();
    }

    /// Runs kindlab with `--workspace` set to this workspace.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut full = vec!["--workspace", self.path().to_str().unwrap()];
        full.extend_from_slice(args);
        kindlab_env(&full, env)
    }

    pub fn app_dir(&self) -> PathBuf {
        self.path().join("apps/orders-api")
    }
}

impl Drop for TestWorkspace {
    fn drop(&mut self) {
        docker_quiet(&["rm", "-f", "-v", &self.registry]);
        docker_quiet(&["volume", "rm", "-f", &format!("{}-images", self.registry)]);
        // The images this workspace built are tagged with its private port. Untag by name,
        // not by ID: other tests' tags may share the same image ID.
        let out = Command::new("docker")
            .args([
                "images",
                "--format",
                "{{.Repository}}:{{.Tag}}",
                "--filter",
                &format!("reference=localhost:{}/*", self.port),
            ])
            .output();
        if let Ok(out) = out {
            let tags = String::from_utf8_lossy(&out.stdout).to_string();
            let tags: Vec<&str> = tags.split_whitespace().collect();
            if !tags.is_empty() {
                let mut args = vec!["rmi"];
                args.extend(tags);
                docker_quiet(&args);
            }
        }
    }
}

/// Containers (all states) with exactly this name.
pub fn containers_named(name: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=^/{name}$"),
        "--format",
        "{{.ID}}",
    ])
    .lines()
    .map(str::to_string)
    .filter(|l| !l.is_empty())
    .collect()
}

/// The kind cluster and registry the integration tests share: one `kindlab up` of a
/// scaffolded workspace under the target dir, made once per test run and reused by a later
/// run while it is still there (a warm `up` takes about a second). Its names derive from the
/// checkout's path, so two checkouts on one machine never share a lab. `make test` removes it
/// at the end (`kindlab down` of [`shared_lab_dir`]) unless KEEP_TEST_LAB=1.
///
/// Tests that change the sample Deployment in `dev` hold [`SharedLab::lock_dev`]; tests that
/// make their own namespace need no lock.
pub struct SharedLab {
    pub dir: PathBuf,
    pub cluster: String,
    pub context: String,
    pub registry: String,
    pub port: u16,
    /// `localhost:<port>`, as the overlay and the nodes name the registry.
    pub registry_host: String,
    dev: std::sync::Mutex<()>,
}

impl SharedLab {
    /// Serialises the tests that change the `dev` namespace of the sample workspace.
    pub fn lock_dev(&self) -> std::sync::MutexGuard<'_, ()> {
        // A test that failed while holding the lock leaves the lab as it was; the next
        // holder's own checks say so, so the poison carries no information.
        self.dev
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs kindlab with `--workspace` set to the shared workspace.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["--workspace", self.dir.to_str().unwrap()];
        full.extend_from_slice(args);
        kindlab_env(&full, &node_image_env())
    }
}

impl SharedLab {
    /// A kubeconfig whose current context is the shared cluster, so kubectl commands can be
    /// typed exactly as a lab text writes them (no --context).
    pub fn kubeconfig(&self) -> PathBuf {
        static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        FILE.get_or_init(|| {
            let out = Command::new("kind")
                .args(["get", "kubeconfig", "--name", &self.cluster])
                .output()
                .expect("run kind");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let path = self
                .dir
                .parent()
                .unwrap()
                .join(format!("{}.kubeconfig", self.cluster));
            std::fs::write(&path, &out.stdout).unwrap();
            path
        })
        .clone()
    }

    /// `kubectl ARGS` in `dir` against the shared cluster, as a person types it.
    pub fn kubectl_in(&self, dir: &Path, args: &[&str]) -> Run {
        kubectl_as(&self.kubeconfig(), dir, args)
    }

    /// `kubectl ARGS` that must succeed; its stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let run = self.kubectl_in(&self.dir, args);
        assert_eq!(run.code, 0, "kubectl {args:?}: {}", run.stderr);
        run.stdout.trim().to_string()
    }

    /// A workspace of its own (a fresh `kindlab init`, committed) that uses the shared
    /// cluster and registry: for tests that change workspace files (pin, git labs) without
    /// disturbing the others.
    pub fn workspace_copy(&self) -> WorkspaceCopy {
        let dir = tempfile::tempdir().unwrap();
        kindlab(&["init", dir.path().to_str().unwrap()]).assert_code(0);
        std::fs::copy(
            self.dir.join("kindlab.yaml"),
            dir.path().join("kindlab.yaml"),
        )
        .unwrap();
        let kustomization = dir.path().join("deploy/overlays/dev/kustomization.yaml");
        let text = std::fs::read_to_string(&kustomization).unwrap();
        std::fs::write(
            &kustomization,
            text.replace("localhost:5001/", &format!("{}/", self.registry_host)),
        )
        .unwrap();
        commit_all(
            dir.path(),
            "test fixture: the shared cluster, registry and port",
        );
        WorkspaceCopy { dir }
    }
}

impl SharedLab {
    /// A namespace name of the test's own, new for every run (`it-<what>-<pid>`); the
    /// namespace is deleted when the guard drops, however the test ends.
    pub fn namespace(&'static self, what: &str) -> TestNamespace {
        TestNamespace {
            name: format!("it-{what}-{}", std::process::id()),
            lab: self,
        }
    }
}

pub struct TestNamespace {
    pub name: String,
    lab: &'static SharedLab,
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = self.lab.kubectl_in(
            &self.lab.dir,
            &["delete", "namespace", &self.name, "--wait=false"],
        );
    }
}

/// A workspace directory of a test's own, on the shared lab.
pub struct WorkspaceCopy {
    pub dir: tempfile::TempDir,
}

impl WorkspaceCopy {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["--workspace", self.path().to_str().unwrap()];
        full.extend_from_slice(args);
        kindlab_env(&full, &node_image_env())
    }
}

/// `git ARGS` in `dir`, which must succeed; its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=kindlab-tests",
            "-c",
            "user.email=tests@localhost",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Commits everything in the repository at `dir`, if anything changed. `dir` must be the
/// top of its own repository: never the checkout that holds it.
pub fn commit_all(dir: &Path, message: &str) {
    let top = git(dir, &["rev-parse", "--show-toplevel"]);
    assert_eq!(
        std::fs::canonicalize(&top).unwrap(),
        std::fs::canonicalize(dir).unwrap(),
        "{} is not a repository of its own",
        dir.display()
    );
    git(dir, &["add", "-A"]);
    if !git(dir, &["status", "--porcelain"]).is_empty() {
        git(dir, &["commit", "-q", "-m", message]);
    }
}

/// Where the shared workspace lives: `<target>/tmp/shared-lab`.
pub fn shared_lab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shared-lab")
}

/// `KINDLAB_NODE_IMAGE` from KINDLAB_TEST_NODE_IMAGE when set (machines that cannot pull
/// kind's node image: see `make offline-images`).
pub fn node_image_env() -> Vec<(&'static str, &'static str)> {
    static IMAGE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    IMAGE
        .get_or_init(|| std::env::var("KINDLAB_TEST_NODE_IMAGE").ok())
        .as_deref()
        .map(|image| vec![("KINDLAB_NODE_IMAGE", image)])
        .unwrap_or_default()
}

pub fn shared_lab() -> &'static SharedLab {
    static LAB: std::sync::OnceLock<SharedLab> = std::sync::OnceLock::new();
    LAB.get_or_init(|| {
        require_docker();
        let dir = shared_lab_dir();
        // A short stable id for this checkout: cluster and registry names, and the port.
        let id = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            env!("CARGO_MANIFEST_DIR").hash(&mut h);
            h.finish()
        };
        let cluster = format!("kl-it-{:06x}", id & 0xff_ffff);
        let registry = format!("{cluster}-registry");
        let port = 5300 + (id % 400) as u16;
        // The sample as this build writes it, every run (the template may have changed
        // since the last run); kindlab's own state (`.kindlab/`: the workspace's identity,
        // which owns the cluster) is kept.
        let state = dir.parent().unwrap().join("shared-lab.state");
        let _ = std::fs::remove_dir_all(&state);
        if dir.join(".kindlab").is_dir() {
            std::fs::rename(dir.join(".kindlab"), &state).unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        kindlab(&["init", dir.to_str().unwrap()]).assert_code(0);
        if state.is_dir() {
            std::fs::rename(&state, dir.join(".kindlab")).unwrap();
        }
        // Under target/ (ignored by this checkout) `init` makes a repository of its own;
        // make sure of it, so the fixture never commits into the checkout.
        if !dir.join(".git").is_dir() {
            git(&dir, &["init", "-q"]);
        }
        std::fs::write(
            dir.join("kindlab.yaml"),
            format!(
                "cluster:\n  name: {cluster}\nregistry:\n  name: {registry}\n  port: {port}\n  image: registry:3\nimages:\n  - name: orders-api\n    context: apps/orders-api\n    dockerfile: Dockerfile\ndeploy:\n  overlay: deploy/overlays/dev\n"
            ),
        )
        .unwrap();
        let kustomization = dir.join("deploy/overlays/dev/kustomization.yaml");
        let text = std::fs::read_to_string(&kustomization).unwrap();
        std::fs::write(
            &kustomization,
            text.replace("localhost:5001/", &format!("localhost:{port}/")),
        )
        .unwrap();
        commit_all(&dir, "test fixture: this checkout's cluster, registry and port");
        let lab = SharedLab {
            dir,
            context: format!("kind-{cluster}"),
            cluster,
            registry,
            port,
            registry_host: format!("localhost:{port}"),
            dev: std::sync::Mutex::new(()),
        };
        let mut up = lab.run(&["up", "--timeout", "300s"]);
        if up.code == 5 && up.stderr.contains("an earlier kindlab") {
            // A lab left by a kindlab that did not record workspaces: its registry is this
            // checkout's own (named after it), so it can go and be made again.
            docker_quiet(&["rm", "-f", "-v", &lab.registry]);
            up = lab.run(&["up", "--timeout", "300s"]);
        }
        assert_eq!(
            up.code, 0,
            "the shared lab did not come up\nstdout:\n{}\nstderr:\n{}",
            up.stdout, up.stderr
        );
        // The offline node image's CNI ignores NetworkPolicy: its enforcer goes in beside
        // (kube-router's policy controller, .ci/offline-images/netpol.sh). kind's own kindnet
        // enforces policies on a machine that can pull kind's node image.
        if std::env::var_os("KINDLAB_CI_NETPOL_IMAGE").is_some() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/offline-images/netpol.sh");
            let out = Command::new("bash")
                .arg(&script)
                .args(["install", &lab.cluster])
                .env("KUBECONFIG", lab.kubeconfig())
                .output()
                .expect("run netpol.sh");
            assert!(
                out.status.success(),
                "netpol.sh install {}: {}",
                lab.cluster,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lab
    })
}

/// A kindlab run whose stderr is read line by line while it runs, so a test can act at a
/// given moment of it (send a signal, stop a container).
pub struct Spawned {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Spawned {
    /// Starts `kindlab ARGS` with extra environment.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Spawned {
        use std::io::{BufRead, Read};
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kindlab"));
        cmd.args(args)
            .env_remove("KINDLAB_WORKSPACE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run kindlab");
        let stderr = child.stderr.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .split(b'\n')
                .map_while(Result::ok)
            {
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        Spawned {
            child,
            lines,
            stdout: Some(stdout),
            seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stderr line containing `needle`; panics with what was seen if none comes
    /// `within`.
    #[track_caller]
    pub fn wait_for_line(&mut self, needle: &str, within: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {needle:?} within {within:?}; seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits until every one of `needles` has been in a stderr line (seen before or now), in
    /// any order: for steps that run side by side.
    #[track_caller]
    pub fn wait_for_lines(&mut self, needles: &[&str], within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        for needle in needles {
            if self.seen.iter().any(|line| line.contains(needle)) {
                continue;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            self.wait_for_line(needle, left.max(std::time::Duration::from_millis(1)));
        }
    }

    /// Sends `signal` to kindlab (not to its process group: as `kill -INT <pid>` does).
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Waits for the end (at most `within`, then kills it and panics) and returns the run.
    #[track_caller]
    pub fn finish(mut self, within: std::time::Duration) -> Run {
        let deadline = std::time::Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "kindlab did not end within {within:?}; stderr so far:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(2)) {
            self.seen.push(line);
        }
        let stdout = self.stdout.take().unwrap().join().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: self.seen.join("\n"),
        }
    }
}

/// Deletes a kind cluster however the test ends.
pub struct KindClusterGuard(pub String);

impl Drop for KindClusterGuard {
    fn drop(&mut self) {
        let _ = Command::new("kind")
            .args(["delete", "cluster", "--name", &self.0])
            .output();
    }
}

/// `kubectl --context CONTEXT ARGS`, which must succeed.
#[track_caller]
/// `kubectl ARGS` in `dir` as the user of `kubeconfig` (a workshop attendee's, say).
pub fn kubectl_as(kubeconfig: &Path, dir: &Path, args: &[&str]) -> Run {
    let out = Command::new("kubectl")
        .args(args)
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run kubectl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn kubectl(context: &str, args: &[&str]) -> String {
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

pub fn kubectl_json(context: &str, args: &[&str]) -> serde_json::Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    serde_json::from_str(&kubectl(context, &full)).unwrap()
}

/// The node containers of kind cluster `name`, any state.
pub fn kind_nodes(cluster: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={cluster}"),
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_string)
    .collect()
}

/// The clusters `kind get clusters` lists.
pub fn kind_clusters() -> Vec<String> {
    let out = Command::new("kind")
        .args(["get", "clusters"])
        .output()
        .expect("run kind (is it on PATH?)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A container kindlab did not make, removed however the test ends.
pub struct Bystander(pub String);

impl Bystander {
    pub fn container(prefix: &str) -> Bystander {
        let name = unique(prefix);
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "busybox:1.36",
            "sleep",
            "3600",
        ]);
        Bystander(name)
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        docker_quiet(&["rm", "-f", &self.0]);
    }
}

/// A Docker network kindlab did not make, removed however the test ends.
pub struct BystanderNetwork(pub String);

impl BystanderNetwork {
    pub fn new(prefix: &str) -> BystanderNetwork {
        let name = unique(prefix);
        docker(&["network", "create", &name]);
        BystanderNetwork(name)
    }
}

impl Drop for BystanderNetwork {
    fn drop(&mut self) {
        docker_quiet(&["network", "rm", &self.0]);
    }
}

/// The action named `name` in `up -o json`'s summary.
#[track_caller]
pub fn action<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == name)
        .unwrap_or_else(|| panic!("no action {name} in {summary}"))
}

#[track_caller]
pub fn assert_action(
    summary: &serde_json::Value,
    name: &str,
    outcome: &str,
    detail_contains: &str,
) {
    let a = action(summary, name);
    assert_eq!(a["outcome"], outcome, "{name}: {a}");
    let details = a["details"].to_string();
    assert!(
        details.contains(detail_contains),
        "{name} details {details} lack {detail_contains:?}"
    );
}

/// The `planned` lists of `up --dry-run -o json`, or of `up -o json`'s actions, by action.
pub fn plans(doc: &serde_json::Value) -> std::collections::BTreeMap<String, Vec<String>> {
    doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] != "preflight")
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["planned"]
                    .as_array()
                    .map(|p| p.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The sample workspace's manifest with these names; `port` is a number or `auto`.
pub fn manifest(cluster: &str, registry: &str, port: &str) -> String {
    format!(
        "cluster:\n  name: {cluster}\nregistry:\n  name: {registry}\n  port: {port}\n  image: registry:3\nimages:\n  - name: orders-api\n    context: apps/orders-api\n    dockerfile: Dockerfile\ndeploy:\n  overlay: deploy/overlays/dev\n"
    )
}

/// Held by every test that makes a kind cluster of its own, so at most one exists at a
/// time beside the shared lab: kind nodes run out of inotify instances beyond a few clusters
/// per machine (kind #2744, #3317), and each creation takes two busy cores.
pub fn own_cluster_slot() -> std::sync::MutexGuard<'static, ()> {
    static SLOT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SLOT.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks that gate no later step of a long scenario: a failed one is recorded with its name
/// and the scenario goes on, so one failure does not hide the next; the checks that failed
/// are listed together when the collector drops (at the end of the test).
#[derive(Default)]
pub struct Checks {
    failed: Vec<String>,
}

impl Checks {
    pub fn new() -> Checks {
        Checks::default()
    }

    /// Runs `check` (ordinary assertions); if it panics, records `name` and its message.
    pub fn soft(&mut self, name: &str, check: impl FnOnce()) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
        if let Err(payload) = outcome {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            self.failed.push(format!("{name}: {message}"));
        }
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        if !self.failed.is_empty() && !std::thread::panicking() {
            panic!(
                "{} check(s) failed:\n\n{}",
                self.failed.len(),
                self.failed.join("\n\n")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_replaces_each_variable_part_by_its_placeholder() {
        let tmp = std::env::temp_dir().join(".tmpAb12Cd");
        let text = format!(
            "error: {}/kindlab.yaml: cluster kind-kl-f-25517-87 (node kl-f-25517-87-control-plane) and registry kl-registry-25517-88 on localhost:35085 and 127.0.0.1:5300, port 5001; {}/shared-lab of kind-kl-it-0a1b2c; took 1.2s, then 350ms, then 2m3s\nhelp: use a port other than 5301; image sha256:{} tagged 3f2a9c0d1e2b, see {}/README.md; saw pod orders-api-7fc7bd7598-ttmbb",
            tmp.display(),
            env!("CARGO_TARGET_TMPDIR"),
            "ab".repeat(32),
            env!("CARGO_MANIFEST_DIR"),
        );
        assert_eq!(
            redact(&text),
            "error: <tmp>/kindlab.yaml: cluster kind-kl-f-<id> (node kl-f-<id>-control-plane) and registry kl-registry-<id> on localhost:<port> and 127.0.0.1:<port>, port <port>; <target-tmp>/shared-lab of kind-<lab>; took <duration>, then <duration>, then <duration>\nhelp: use a port other than <port>; image sha256:<digest> tagged <hex>, see <checkout>/README.md; saw pod orders-api-<pod>"
        );
    }

    #[test]
    fn redact_leaves_versions_counts_and_words_alone() {
        let text =
            "error: [2/2] RUN exit 3 failed on v1.34.12 with 0 of 1 replicas; kl-it-registry";
        assert_eq!(redact(text), text);
    }

    #[test]
    fn any_matches_anything_within_its_line_only() {
        let expected = "error: building failed: <any>: exit code: 3\nhelp: fix it";
        assert!(error_matches(
            "error: building failed: executor failed running [/bin/sh -c exit 3]: exit code: 3\nhelp: fix it",
            expected
        ));
        assert!(!error_matches(
            "error: building failed: a\nb: exit code: 3\nhelp: fix it",
            expected
        ));
        assert!(!error_matches(
            "error: building failed: x: exit code: 3\nhelp: fix it now",
            expected
        ));
        assert!(error_matches(
            "error: a (b) [c] *\nhelp: d?",
            "error: a (b) [c] *\nhelp: d?"
        ));
    }

    #[test]
    fn the_error_block_is_the_last_error_and_its_fix_without_causes() {
        let stderr = " • Registry ...\nerror: an old one\n • Deploy ...\nerror: deploying failed\n  second line of the message\n  caused by: the server said no\n    and more\nhelp: run `kindlab up` again";
        assert_eq!(
            error_block(stderr),
            "error: deploying failed\n  second line of the message\nhelp: run `kindlab up` again"
        );
    }

    #[test]
    fn with_json_output_the_error_text_is_the_documents_error_and_fix() {
        let run = Run {
            code: 3,
            stdout:
                r#"{"error": "bad port 0", "causes": [], "fix": "use 1 to 65535", "exit_code": 3}"#
                    .into(),
            stderr: String::new(),
        };
        assert_eq!(run.error_text(), "error: bad port 0\nhelp: use 1 to 65535");
    }

    #[test]
    fn failed_soft_checks_are_all_named_at_the_end() {
        let outcome = std::panic::catch_unwind(|| {
            let mut checks = Checks::new();
            checks.soft("first", || panic!("one"));
            checks.soft("passes", || {});
            checks.soft("third", || assert_eq!(1, 2, "two"));
        });
        let payload = outcome.unwrap_err();
        let message = payload.downcast_ref::<String>().unwrap();
        assert!(
            message.starts_with("2 check(s) failed:\n\nfirst: one\n\nthird: "),
            "{message}"
        );
        assert!(message.contains("two"), "{message}");
    }
}
