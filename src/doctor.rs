//! `kindlab doctor`: can this machine run `kindlab up`? One line per check, each problem
//! with its fix; it names the kind and kubectl it finds, and warns when that kubectl is
//! outside the version skew of the cluster (`kubectl`). `--workshop` adds what a room of machines needs checked before the day:
//! disk for the bundle and the clusters, inotify limits for the clusters planned (kind
//! #2219, #3317), the engine's memory and CPUs, and whether the bundle is loaded; its JSON
//! carries the machine's name and sizes so an instructor can collect a room's answers.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle;
use crate::cluster::Kind;
use crate::docker::Engine;
use crate::registry::{PortHolder, find_port_holder};
use crate::workspace::{RegistrySettings, find_renderer};

pub mod kubectl;

/// Free space below this on the engine's disk makes `up` likely to fail mid-way (a kind
/// node image alone is about 1 GB unpacked, plus the cluster's images).
const MIN_FREE_BYTES: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Passed, with something to know (a kubectl outside the cluster's version skew).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok: true,
            warning: false,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: Option<String>) -> Check {
        Check {
            name,
            ok: true,
            warning: true,
            detail: detail.into(),
            fix,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: Option<String>) -> Check {
        Check {
            name,
            ok: false,
            warning: false,
            detail: detail.into(),
            fix,
        }
    }

    /// `✓`, `!` (a warning) or `✗`.
    pub fn mark(&self) -> &'static str {
        match (self.ok, self.warning) {
            (false, _) => "✗",
            (true, true) => "!",
            (true, false) => "✓",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
    /// With `--workshop`: which machine answered, and what it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<Machine>,
}

/// What `--workshop` plans for.
#[derive(Debug, Clone)]
pub struct Workshop {
    /// Clusters running on this machine at the same time.
    pub clusters: u32,
    pub bundle: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub hostname: String,
    pub clusters_planned: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineFacts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineFacts {
    pub host: String,
    pub version: Option<String>,
    pub cpus: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub storage: Option<String>,
    pub storage_free_bytes: Option<u64>,
}

/// Runs every check; never fails itself — a failure is a failed check.
pub async fn run(registry: &RegistrySettings, workshop: Option<&Workshop>) -> Report {
    let mut checks = Vec::new();
    let engine = match Engine::connect().await {
        Ok(engine) => {
            let version = engine
                .docker
                .version()
                .await
                .ok()
                .and_then(|v| v.version)
                .unwrap_or_else(|| "unknown version".into());
            checks.push(Check::pass(
                "docker",
                format!(
                    "engine {version} at {} ({})",
                    engine.host.host, engine.host.origin
                ),
            ));
            Some(engine)
        }
        Err(e) => {
            let detail = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            checks.push(Check::fail("docker", detail, e.fix()));
            None
        }
    };

    checks.push(match Kind::find() {
        Ok(kind) => match kind.version().await {
            Ok(v) => Check::pass("kind", format!("{v} at {}", kind.path.display())),
            Err(e) => Check::fail("kind", e.to_string(), e.fix()),
        },
        Err(e) => Check::fail("kind", e.to_string(), e.fix()),
    });

    let (renderer, kubectl) = tokio::join!(find_renderer(), kubectl::observe(true));
    checks.push(match renderer {
        Ok(r) => Check::pass("kustomize", r.describe()),
        Err(e) => Check::fail("kustomize", e.to_string(), e.fix()),
    });
    checks.push(kubectl::judge(&kubectl));

    if let Some(engine) = &engine {
        checks.push(port_check(engine, registry).await);
        if workshop.is_none() {
            checks.push(disk_check(engine).await);
        }
    }

    let machine = match workshop {
        Some(plan) => Some(workshop_checks(engine.as_ref(), plan, &mut checks).await),
        None => None,
    };
    let ok = checks.iter().all(|c| c.ok);
    Report {
        ok,
        checks,
        machine,
    }
}

async fn port_check(engine: &Engine, registry: &RegistrySettings) -> Check {
    let port = registry.port;
    match find_port_holder(engine, port, Some(&registry.name)).await {
        Ok(None) => Check::pass(
            "registry port",
            format!("127.0.0.1:{port} is free or held by {}", registry.name),
        ),
        Ok(Some(holder)) => {
            let fix = match &holder {
                PortHolder::Container { name, .. } => {
                    format!("stop it (`docker stop {name}`) or set registry.port in kindlab.yaml")
                }
                _ => "free the port or set registry.port in kindlab.yaml".to_string(),
            };
            Check::fail(
                "registry port",
                format!("127.0.0.1:{port} is in use by {holder}"),
                Some(fix),
            )
        }
        Err(e) => Check::fail("registry port", e.to_string(), e.fix()),
    }
}

async fn disk_check(engine: &Engine) -> Check {
    let storage = engine.storage().await;
    let root = storage.root.display();
    match storage.free() {
        // Docker Desktop, Colima: the engine's disk is inside a VM kindlab cannot measure.
        None => Check::pass(
            "disk",
            format!("engine storage {root} is not on this machine"),
        ),
        Some(Ok(free)) => {
            let gib = free as f64 / (1024.0 * 1024.0 * 1024.0);
            if free >= MIN_FREE_BYTES {
                Check::pass("disk", format!("{gib:.1} GiB free for {root}"))
            } else {
                Check::fail(
                    "disk",
                    format!("only {gib:.1} GiB free for {root}; kindlab needs about 5 GiB"),
                    Some(
                        "free space: `docker system prune` removes unused images and containers"
                            .into(),
                    ),
                )
            }
        }
        Some(Err(e)) => Check::fail("disk", format!("cannot measure {root}: {e}"), None),
    }
}

/// Bytes a kind cluster adds on the engine's disk beyond its images. Measured: 1.3 GB, the
/// node's /var volume, where containerd keeps the node image's preloaded images; the rest
/// is room for the lab's images and logs.
const DISK_PER_CLUSTER: u64 = 2_000_000_000;
/// The node image and friends when no bundle says how big they are (kind's node images
/// are 1 to 1.2 GB unpacked).
const DISK_IMAGES_DEFAULT: u64 = 2_000_000_000;
/// Engine memory: a kind control plane with the sample app settles at 0.6 to 0.9 GiB
/// (measured, six clusters side by side); 1.5 GiB each leaves room for a lab's pods, plus
/// 1 GiB for the rest.
const MEMORY_BASE: u64 = 1 << 30;
const MEMORY_PER_CLUSTER: u64 = 3 << 29;
/// kubeadm's own preflight minimum for a control plane.
const MIN_CPUS: i64 = 2;

/// What `n` clusters need, so the checks and the fix lines agree. Pure, unit-tested.
pub fn memory_needed(clusters: u32) -> u64 {
    MEMORY_BASE + MEMORY_PER_CLUSTER * u64::from(clusters)
}

/// inotify limits `clusters` kind clusters need. Measured on a running node (kindlab's
/// sample lab): 26 instances and at most 650 watches each; with 128 instances (a common
/// default) a sixth cluster's systemd cannot start (kind #2219, #3317). Needs: 32
/// instances per cluster plus 64 for the desktop's own programs; 16384 watches per cluster
/// (pods that watch files need many more than the node itself).
pub fn inotify_needed(clusters: u32) -> (u64, u64) {
    let n = u64::from(clusters);
    (16_384 * n, 64 + 32 * n)
}

/// The sysctl lines that fix the limits, now and after a reboot: kind's known-issues values
/// (524288 watches, 512 instances), or more for many clusters.
pub fn inotify_fix(clusters: u32) -> String {
    let (watches, instances) = inotify_needed(clusters);
    let (watches, instances) = (watches.max(524_288), instances.max(512));
    format!(
        "sudo sysctl -w fs.inotify.max_user_watches={watches} fs.inotify.max_user_instances={instances}; to keep them, put `fs.inotify.max_user_watches = {watches}` and `fs.inotify.max_user_instances = {instances}` in /etc/sysctl.d/99-kindlab.conf"
    )
}

/// Judges the inotify limits read from /proc (`None`: unreadable).
pub fn inotify_check(watches: Option<u64>, instances: Option<u64>, clusters: u32) -> Check {
    let (need_watches, need_instances) = inotify_needed(clusters);
    let (Some(watches), Some(instances)) = (watches, instances) else {
        return Check::fail(
            "inotify",
            "cannot read /proc/sys/fs/inotify".to_string(),
            Some(inotify_fix(clusters)),
        );
    };
    let detail = format!(
        "max_user_watches {watches}, max_user_instances {instances} (for {clusters} cluster(s): {need_watches} and {need_instances})"
    );
    if watches >= need_watches && instances >= need_instances {
        Check::pass("inotify", detail)
    } else {
        Check::fail("inotify", detail, Some(inotify_fix(clusters)))
    }
}

pub fn disk_needed(images: u64, clusters: u32) -> u64 {
    images + DISK_PER_CLUSTER * u64::from(clusters)
}

async fn workshop_checks(
    engine: Option<&Engine>,
    plan: &Workshop,
    checks: &mut Vec<Check>,
) -> Machine {
    let clusters = plan.clusters;
    let mut facts = None;

    // The bundle first: its manifest says how much disk the images take.
    let manifest = plan.bundle.as_ref().map(|path| bundle::read_manifest(path));
    let mut images_on_disk_needed = DISK_IMAGES_DEFAULT;
    if let Some(manifest) = &manifest {
        match manifest {
            Ok(m) => images_on_disk_needed = m.unpacked_size(),
            Err(e) => checks.push(Check::fail("bundle", e.to_string(), e.fix())),
        }
    }

    if let Some(engine) = engine {
        let info = engine.docker.info().await.ok();
        let storage = crate::docker::EngineStorage::from_info(info.as_ref());
        // The engine runs on this kernel when its storage is on this machine (not in
        // Docker Desktop's or Colima's VM): only then do /proc's limits apply to it.
        let local = storage.is_local();
        let free = storage.free().and_then(Result::ok);
        let root = storage.root.display().to_string();
        let cpus = info.as_ref().and_then(|i| i.ncpu);
        let memory = info.as_ref().and_then(|i| i.mem_total);

        checks.push(match cpus {
            Some(n) if n >= MIN_CPUS => Check::pass("engine cpus", format!("{n} CPUs")),
            Some(n) => Check::fail(
                "engine cpus",
                format!("{n} CPU; a kind control plane needs {MIN_CPUS}"),
                Some("give the Docker engine (or its VM) 2 CPUs or more".into()),
            ),
            None => Check::fail("engine cpus", "the engine does not say", None),
        });
        let need_memory = memory_needed(clusters);
        checks.push(match memory {
            Some(m) if m >= 0 && m as u64 >= need_memory => Check::pass(
                "engine memory",
                format!(
                    "{} for {clusters} cluster(s) (needs {})",
                    gib(m as u64),
                    gib(need_memory)
                ),
            ),
            Some(m) => Check::fail(
                "engine memory",
                format!(
                    "{}; {clusters} cluster(s) need {}",
                    gib(m.max(0) as u64),
                    gib(need_memory)
                ),
                Some(format!(
                    "give the Docker engine (or its VM: Docker Desktop > Resources, `colima start --memory`) {} or more, or plan fewer clusters",
                    gib(need_memory)
                )),
            ),
            None => Check::fail("engine memory", "the engine does not say", None),
        });

        let loaded = match (&manifest, engine) {
            (Some(Ok(m)), engine) => Some(bundle::missing_images(engine, m).await),
            _ => None,
        };
        // Images already loaded take no more room.
        if let Some(Ok(missing)) = &loaded
            && missing.is_empty()
        {
            images_on_disk_needed = 0;
        }
        let need_disk = disk_needed(images_on_disk_needed, clusters);
        checks.push(match free {
            Some(free) if free >= need_disk => Check::pass(
                "disk",
                format!("{} free for {root}; needs {}", gib(free), gib(need_disk)),
            ),
            Some(free) => Check::fail(
                "disk",
                format!(
                    "{} free for {root}; the images and {clusters} cluster(s) need {}",
                    gib(free),
                    gib(need_disk)
                ),
                Some("free space: `docker system prune` removes unused images and containers".into()),
            ),
            None => Check::pass(
                "disk",
                format!("engine storage {root} is not on this machine (Docker's VM); give it {} or more", gib(need_disk)),
            ),
        });

        checks.push(if local {
            inotify_check(
                read_number("/proc/sys/fs/inotify/max_user_watches"),
                read_number("/proc/sys/fs/inotify/max_user_instances"),
                clusters,
            )
        } else {
            Check::pass(
                "inotify",
                "the engine runs in a VM; its limits are the VM's (Docker Desktop and Colima set them high)",
            )
        });

        if let (Some(path), Some(Ok(m)), Some(result)) = (&plan.bundle, &manifest, loaded) {
            checks.push(bundle_check(path, m, result));
        }

        facts = Some(EngineFacts {
            host: engine.host.host.clone(),
            version: info.as_ref().and_then(|i| i.server_version.clone()),
            cpus,
            memory_bytes: memory,
            storage: Some(root),
            storage_free_bytes: free,
        });
    }

    Machine {
        hostname: hostname(),
        clusters_planned: clusters,
        bundle: plan.bundle.as_ref().map(|p| p.display().to_string()),
        engine: facts,
    }
}

fn bundle_check(
    path: &Path,
    manifest: &bundle::Manifest,
    missing: Result<Vec<String>, crate::docker::DockerError>,
) -> Check {
    let total = manifest.images.len();
    match missing {
        Ok(missing) if missing.is_empty() => Check::pass(
            "bundle",
            format!(
                "all {total} images of {} are loaded (made {}, kind {})",
                path.display(),
                manifest.created_at,
                manifest.kind_version.as_deref().unwrap_or("unknown")
            ),
        ),
        Ok(missing) => Check::fail(
            "bundle",
            format!(
                "{} of {total} images of {} are not loaded: {}",
                missing.len(),
                path.display(),
                missing.join(", ")
            ),
            Some(format!("kindlab bundle load {}", path.display())),
        ),
        Err(e) => Check::fail("bundle", e.to_string(), e.fix()),
    }
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

impl crate::ui::Report for Report {
    fn text(&self) -> String {
        let mut lines = Vec::new();
        for check in &self.checks {
            lines.push(format!(
                "{} {:<14} {}",
                check.mark(),
                check.name,
                check.detail
            ));
            if let Some(fix) = &check.fix {
                lines.push(format!("  {:<14} fix: {fix}", ""));
            }
        }
        if self.ok {
            lines.push(String::new());
            lines.push(match &self.machine {
                Some(m) => format!(
                    "Ready for the workshop: {} cluster(s) on {}.",
                    m.clusters_planned, m.hostname
                ),
                None => "Ready for `kindlab up`.".to_string(),
            });
        }
        crate::ui::lines(lines)
    }
    fn exit_code(&self) -> u8 {
        if self.ok {
            crate::exit::OK
        } else {
            crate::exit::UNHEALTHY
        }
    }
}

/// `kindlab doctor [--workshop ...]`: works outside a workspace too, with the default
/// registry settings.
pub async fn command(workspace: &Path, args: &crate::cli::DoctorArgs) -> Report {
    let settings = crate::workspace::Workspace::discover(workspace)
        .map(|w| w.registry)
        .unwrap_or_default();
    // `--workshop`, or any of the flags that only make sense for one.
    let workshop =
        (args.workshop || args.clusters.is_some() || args.bundle.is_some()).then(|| Workshop {
            clusters: args.clusters.unwrap_or(1),
            bundle: args.bundle.clone(),
        });
    run(&settings, workshop.as_ref()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_grow_with_the_clusters_planned() {
        assert_eq!(inotify_needed(1), (16_384, 96));
        assert_eq!(inotify_needed(8), (131_072, 320));
        assert!(memory_needed(3) > memory_needed(1));
        assert_eq!(disk_needed(1_000, 2), 1_000 + 2 * DISK_PER_CLUSTER);
    }

    #[test]
    fn a_stock_limit_fits_one_cluster_not_five() {
        // 128 instances: what this CI VM had when its sixth cluster could not start.
        assert!(inotify_check(Some(192_536), Some(128), 1).ok);
        let five = inotify_check(Some(192_536), Some(128), 5);
        assert!(!five.ok, "{five:?}");
        let fix = five.fix.unwrap();
        assert!(
            fix.contains("sysctl -w fs.inotify.max_user_watches=524288"),
            "{fix}"
        );
        assert!(fix.contains("fs.inotify.max_user_instances=512"), "{fix}");
        assert!(fix.contains("/etc/sysctl.d/"), "{fix}");
        assert!(!inotify_check(Some(8192), Some(512), 1).ok);
        assert!(!inotify_check(None, None, 1).ok);
    }

    #[test]
    fn many_clusters_get_more_than_kinds_values() {
        assert!(inotify_fix(40).contains("max_user_instances=1344"));
    }

    #[test]
    fn the_text_marks_each_check_gives_its_fix_and_says_ready_only_when_all_pass() {
        use crate::ui::Report as _;
        let mut report = Report {
            ok: true,
            checks: vec![Check {
                name: "docker",
                ok: true,
                warning: false,
                detail: "engine 20.10".into(),
                fix: None,
            }],
            machine: None,
        };
        assert_eq!(
            report.text(),
            "✓ docker         engine 20.10\n\nReady for `kindlab up`.\n"
        );
        report.ok = false;
        report.checks[0].ok = false;
        report.checks[0].fix = Some("start it".into());
        assert_eq!(
            report.text(),
            "✗ docker         engine 20.10\n                 fix: start it\n"
        );
    }
}
