//! A second, empty Docker engine for one test, in a network namespace of its own whose only
//! interface is loopback: no registry and no internet can be reached from it, and nothing
//! it does (networks, published ports, kind clusters, images) touches the machine's engine,
//! which other tests and sessions share.
//!
//! It needs root (dockerd, network namespaces). kindlab, kind and kubectl are run inside
//! the namespace with DOCKER_HOST pointing at the engine and a private KUBECONFIG.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Run;

pub struct IsolatedEngine {
    pub dir: PathBuf,
    pub netns: String,
    /// `unix:///…/docker.sock`.
    pub host: String,
    pub kubeconfig: PathBuf,
    dockerd: Option<Child>,
}

/// Runtimes dockerd reserves: redefining them in a config file is an error.
const BUILTIN_RUNTIMES: [&str; 3] = [
    "runc",
    "io.containerd.runc.v2",
    "io.containerd.runtime.v1.linux",
];

impl IsolatedEngine {
    /// Starts an empty engine named `name` (a short, unique name), ready when this returns.
    pub fn start(name: &str) -> IsolatedEngine {
        Self::start_with(name, serde_json::json!({}))
    }

    /// The same, with more daemon.json settings (`{"features": {"buildkit": false}}`).
    pub fn start_with(name: &str, settings: serde_json::Value) -> IsolatedEngine {
        let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
        assert_eq!(
            uid.trim(),
            "0",
            "the offline round trip starts its own Docker engine in its own network namespace, which needs root: run the tests as root (CI does)"
        );
        crate::support::require_docker();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let netns = name.to_string();
        // Leftovers of a killed run with this name.
        cleanup_netns(&netns);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        run_ok("ip", &["netns", "add", &netns]);
        run_ok(
            "ip",
            &["netns", "exec", &netns, "ip", "link", "set", "lo", "up"],
        );

        // The machine's engine's extra runtimes (a VM may need a runc wrapper: see
        // .ci/docker-engine.sh): this engine must start containers the same way.
        let runtimes: serde_json::Value = serde_json::from_str(&crate::support::docker(&[
            "info",
            "--format",
            "{{json .Runtimes}}",
        ]))
        .unwrap();
        let default_runtime = crate::support::docker(&["info", "--format", "{{.DefaultRuntime}}"]);
        let mut extra = serde_json::Map::new();
        for (runtime, spec) in runtimes.as_object().unwrap() {
            let path = spec["path"].as_str().unwrap_or_default();
            if !BUILTIN_RUNTIMES.contains(&runtime.as_str()) && path.starts_with('/') {
                extra.insert(runtime.clone(), serde_json::json!({ "path": path }));
            }
        }
        let mut config = serde_json::json!({ "runtimes": extra });
        if extra.contains_key(&default_runtime) {
            config["default-runtime"] = default_runtime.into();
        }
        for (key, value) in settings.as_object().into_iter().flatten() {
            config[key] = value.clone();
        }
        let config_path = dir.join("daemon.json");
        std::fs::write(&config_path, config.to_string()).unwrap();

        let socket = dir.join("docker.sock");
        let host = format!("unix://{}", socket.display());
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let dockerd = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{netns}"))
            .arg("--")
            .arg(which("dockerd"))
            .arg("--config-file")
            .arg(&config_path)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("--host")
            .arg(&host)
            // Its own namespace already keeps its networks apart; a pool unlike the
            // machine's engine's keeps addresses apart in logs too.
            .args(["--default-address-pool", "base=10.213.0.0/16,size=24"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let engine = IsolatedEngine {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            netns,
            host,
            dockerd: Some(dockerd),
        };
        let started = Instant::now();
        while !engine
            .docker_output(&["info", "--format", "{{.ID}}"])
            .status
            .success()
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the isolated dockerd did not answer within 60s; its log:\n{}",
                std::fs::read_to_string(engine.dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        engine
    }

    /// A command run inside the namespace, talking to this engine.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(program)
            .env("DOCKER_HOST", &self.host)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("KINDLAB_NODE_IMAGE")
            .env_remove("KINDLAB_WORKSPACE");
        cmd
    }

    /// `kindlab ARGS` in the namespace, against this engine.
    pub fn kindlab(&self, args: &[&str]) -> Run {
        let out = self
            .command(env!("CARGO_BIN_EXE_kindlab"))
            .args(args)
            .output()
            .expect("run kindlab");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn docker_output(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("--host")
            .arg(&self.host)
            .args(args)
            .output()
            .expect("run docker")
    }

    /// `docker ARGS` against this engine; panics with its stderr when it fails.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = self.docker_output(args);
        assert!(
            out.status.success(),
            "docker {args:?} (isolated engine) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Every image the engine holds, dangling ones included.
    pub fn image_ids(&self) -> Vec<String> {
        self.docker(&["images", "-a", "-q", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The engine's ID for `reference`, or None.
    pub fn image_id(&self, reference: &str) -> Option<String> {
        let out = self.docker_output(&["image", "inspect", "-f", "{{.Id}}", reference]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for IsolatedEngine {
    fn drop(&mut self) {
        // Containers first (kind nodes, the registry), so dockerd stops quickly and
        // leaves no mounts; then dockerd; then its files and the namespace.
        let ids = self.docker_output(&["ps", "-aq"]);
        let ids = String::from_utf8_lossy(&ids.stdout).to_string();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            let _ = self.docker_output(&args);
        }
        if let Some(mut child) = self.dockerd.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        unmount_below(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        cleanup_netns(&self.netns);
    }
}

fn cleanup_netns(netns: &str) {
    let _ = Command::new("ip")
        .args(["netns", "delete", netns])
        .stderr(Stdio::null())
        .status();
}

/// Lazily unmounts whatever an engine left mounted below `dir` (a killed dockerd can).
fn unmount_below(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).status();
    }
}

fn run_ok(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which(program: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(program);
        if path.is_file() {
            return path;
        }
    }
    PathBuf::from(program)
}
