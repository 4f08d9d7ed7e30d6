//! The command line (clap only). Flags are resolved into settings by `app`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::ui::Output;

#[derive(Debug, Parser)]
#[command(
    name = "kindlab",
    version,
    about = "A local Kubernetes lab in one command: kind cluster, local registry, your images, your overlay.",
    after_help = "Start with `kindlab init` in an empty directory, then `kindlab up`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// How to print results: text for people, json for machines (progress stays on stderr).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// The workspace directory (the one with kindlab.yaml, or below it).
    #[arg(
        long,
        short = 'w',
        global = true,
        env = "KINDLAB_WORKSPACE",
        default_value = "."
    )]
    pub workspace: PathBuf,

    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the sample workspace (kindlab.yaml, an app, a kustomize overlay) into DIR.
    Init {
        /// Where to write it; created if missing.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Check that this machine can run `kindlab up`, and say how to fix what it cannot.
    Doctor(DoctorArgs),
    /// Bring the whole lab up, or repair it: registry, cluster, wiring, images, deployment.
    Up(UpArgs),
    /// Delete the cluster and the registry this workspace created (its images stay).
    Down {
        /// Keep the registry container and the images in it.
        #[arg(long)]
        keep_registry: bool,
        /// Also remove the registry's images (its volume).
        #[arg(long, conflicts_with = "keep_registry")]
        purge: bool,
    },
    /// Show the lab's state; exits non-zero when anything is off.
    Status(TargetArgs),
    /// GitOps mode: ask Flux to sync the pushed commit now, wait, and report the revision
    /// applied and its rollout (what `argocd app sync` / `flux reconcile` are to a lab text).
    Sync {
        /// How long to wait for the controller, in seconds.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
    },
    /// Build the workspace's images and push them to the local registry.
    Build {
        /// Images to build (names from kindlab.yaml); all when none are given.
        images: Vec<String>,
    },
    /// Why a workload is unhealthy: the cause, the evidence and the fix, on any cluster.
    Diagnose(DiagnoseArgs),
    /// Break/fix troubleshooting labs: for attendees (start, check, hint, solve) and
    /// unattended (run).
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
    /// Put the lab back to the workspace's desired state after a lab or a hand-made mess.
    Reset(ResetArgs),
    /// Check that every image the overlay names exists (a CI gate; no cluster needed).
    Check {
        /// Also fail on references that cannot be checked, `:latest` and untagged ones.
        #[arg(long)]
        strict: bool,
        /// The workspace's registry (default: localhost:<registry.port>).
        #[arg(long, value_name = "HOST:PORT")]
        registry: Option<String>,
    },
    /// Pin each image of the overlay to the digest the registry serves for it.
    Pin {
        /// Only list the references that are not pinned; write nothing (exit 10 if any).
        #[arg(long)]
        check: bool,
        /// The registry the images were pushed to (default: the workspace's own).
        #[arg(long, value_name = "HOST:PORT")]
        registry: Option<String>,
    },
    /// Manage the local registry container on its own.
    Registry {
        #[command(subcommand)]
        action: RegistryAction,
    },
    /// Offline bundles: every image the workspace needs, in one file, for machines that
    /// cannot pull images (workshop rooms, air-gapped sites).
    Bundle {
        #[command(subcommand)]
        action: BundleAction,
    },
    /// A workshop room on one shared cluster, for the instructor: a namespace, credentials,
    /// a budget and isolation per attendee; the room's status; reset; teardown.
    Workshop {
        #[command(subcommand)]
        action: WorkshopAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Install (bash): kindlab completion bash > /usr/local/share/bash-completion/completions/kindlab\n\
                      Install (zsh):  kindlab completion zsh > \"${fpath[1]}/_kindlab\"\n\
                      Install (fish): kindlab completion fish > ~/.config/fish/completions/kindlab.fish"
    )]
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print kindlab's man page (roff), or write one page per command into --dir.
    #[command(after_help = "Install: kindlab man --dir /usr/local/share/man/man1 && man kindlab")]
    Man {
        /// Write kindlab.1 and kindlab-VERB.1 for each command here instead of printing kindlab.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkshopAction {
    /// Per attendee: a namespace with a ServiceAccount bound to a namespaced Role, a
    /// ResourceQuota and LimitRange, a same-namespace NetworkPolicy, Pod Security, the
    /// workspace deployed; and one kubeconfig (a time-limited token) in the handout folder.
    /// A second run changes nothing; new names add only them.
    Provision(ProvisionArgs),
    /// Every attendee's lab, state, times, hints and last activity.
    Status(RoomArgs),
    /// Put attendees' namespaces back to the workspace (their running lab ends).
    Reset {
        /// The attendees to reset; with --all, every one of the room.
        names: Vec<String>,
        /// Every attendee of the room.
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// How many at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
        parallel: u32,
        /// How long to wait for each rollout, e.g. 90s, 5m.
        #[arg(long, default_value = "3m", value_parser = parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        room: RoomArgs,
    },
    /// Delete exactly what `provision` made: the room's namespaces (labelled with it).
    Teardown {
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        room: RoomArgs,
    },
}

/// Which room, on which cluster.
#[derive(Debug, Args, Clone, Default)]
pub struct RoomArgs {
    /// The room's name: the label on everything it is made of (default: the workspace's
    /// cluster name).
    #[arg(long, value_name = "NAME")]
    pub room: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The registry the cluster pulls the workspace's images from (default:
    /// localhost:<registry.port>, the workspace's own).
    #[arg(long, value_name = "HOST:PORT")]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Attendee names (each becomes a namespace).
    pub names: Vec<String>,
    /// Or N attendees named PREFIX01 .. PREFIXNN.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub count: Option<u32>,
    /// The prefix of --count's names.
    #[arg(long, default_value = "att")]
    pub prefix: String,
    /// A file with one attendee name per line (`#` comments).
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// The handout folder: one kubeconfig per attendee, index.json, README.md (default:
    /// .kindlab/workshop/ROOM in the workspace).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// How long the attendees' tokens last, e.g. 8h (a workshop day).
    #[arg(long, default_value = "8h", value_parser = parse_duration)]
    pub token_ttl: Duration,
    /// The API server's address as attendees reach it (default: the instructor's).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How many attendees at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: u32,
    /// How long to wait for each attendee's rollout, e.g. 90s, 5m.
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub room: RoomArgs,
}

#[derive(Debug, Args, Default)]
pub struct DoctorArgs {
    /// Also check what a workshop room needs: disk for the bundle, inotify limits for the
    /// clusters planned, the engine's memory and CPUs (implied by --clusters and --bundle).
    #[arg(long)]
    pub workshop: bool,

    /// Clusters planned on this machine at the same time.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub clusters: Option<u32>,

    /// The bundle the room will use: is there disk for it, and is it loaded?
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BundleAction {
    /// Write the kind node image, the registry image, the Dockerfiles' base images and the
    /// built app images, with a checksummed manifest, into FILE.
    Create {
        /// The bundle file to write (replaced only once complete).
        #[arg(default_value = "kindlab-bundle.tar")]
        file: PathBuf,
        /// kind node image (default: cluster.nodeImage in kindlab.yaml, else the image the
        /// workspace's cluster runs).
        #[arg(long, value_name = "IMAGE", env = "KINDLAB_NODE_IMAGE")]
        node_image: Option<String>,
        /// How to store each image: zstd (smaller, for copying to a room) or none.
        #[arg(long, value_enum, default_value_t = Compression::Zstd)]
        compress: Compression,
    },
    /// Verify FILE, then load its images into the Docker engine and the app images into
    /// the local registry; on any failure, nothing stays half-loaded.
    Load {
        /// A file made by `kindlab bundle create`.
        file: PathBuf,
        /// Load into the engine only; `kindlab up` pushes the app images later.
        #[arg(long)]
        no_registry: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Zstd,
    None,
}

#[derive(Debug, Subcommand)]
pub enum RegistryAction {
    /// Create or repair the registry (a second run is a no-op that says so).
    Up {
        /// Use a registry container this workspace did not create (never deleted by kindlab).
        #[arg(long)]
        adopt: bool,
    },
    /// Remove the registry if this workspace created it (its images stay).
    Down {
        /// Also remove the registry's images (its volume).
        #[arg(long)]
        purge: bool,
    },
    /// Show the registry container and whether it answers.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// The catalogue, in workshop order: level and expected minutes.
    List,
    /// A lab's text: goal, steps, why it happens, how to prevent it.
    Show {
        /// A built-in lab's name or a lab file's path.
        lab: String,
        /// Print the lab's YAML source instead.
        #[arg(long)]
        source: bool,
    },
    /// The JSON Schema of lab files (for editors).
    Schema,
    /// Start a lab for a person: check the lab is healthy, break it, print the goal.
    Start {
        /// A built-in lab's name (`kindlab lab list`) or a lab file's path.
        lab: String,
        #[command(flatten)]
        on: LabTargetArgs,
        /// Who does the lab (shown in reports); default: $USER.
        #[arg(long, env = "KINDLAB_ATTENDEE")]
        attendee: Option<String>,
        /// Do not wait for the break to show.
        #[arg(long)]
        no_wait: bool,
    },
    /// Is it fixed? Says what is still wrong (a pointer), or the times when it is.
    Check(SessionArgs),
    /// The next hint.
    Hint(SessionArgs),
    /// Apply the lab's solution (recorded as help used).
    Solve(SessionArgs),
    /// The running labs of this workspace, or of every namespace of the cluster.
    Status {
        /// Every attendee's lab on the cluster (from the sessions mirrored into namespaces).
        #[arg(long, short = 'A')]
        all_namespaces: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// A room's (or this workspace's) lab results as a self-contained HTML page with a
    /// timeline chart.
    Report {
        /// Every attendee's session mirrored on the cluster (a shared cluster).
        #[arg(long, short = 'A')]
        all_namespaces: bool,
        /// Reports collected from attendees' machines (`.kindlab/reports/*.json`), in DIR.
        #[arg(long, value_name = "DIR", conflicts_with = "all_namespaces")]
        from: Option<PathBuf>,
        /// Where to write the page (default: .kindlab/reports/report.html).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The page's title.
        #[arg(long, default_value = "Troubleshooting labs: results")]
        title: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Run a lab unattended: break, detect, diagnose, fix, verify, with each phase timed.
    Run {
        /// A built-in lab's name (`kindlab lab list`) or a lab file's path.
        lab: String,
        #[command(flatten)]
        on: LabTargetArgs,
        /// Run it N times and report min, median and p95 of every phase.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
    },
}

/// Which workload a lab breaks (default: the lab's own, the sample's Deployment).
#[derive(Debug, Args, Clone, Default)]
pub struct LabTargetArgs {
    /// The Deployment to break: deployment/NAME.
    #[arg(long, value_name = "deployment/NAME")]
    pub target: Option<String>,
    /// Its namespace; a namespace without it gets the workspace deployed first (one per
    /// attendee on a shared cluster).
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// The container to break.
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    #[command(flatten)]
    pub cluster: TargetArgs,
}

/// Which running lab session.
#[derive(Debug, Args, Clone, Default)]
pub struct SessionArgs {
    /// The session's namespace (when labs run in several; default: the kubeconfig
    /// context's namespace).
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Which cluster, as whom: as kubectl takes them.
#[derive(Debug, Args, Clone, Default)]
pub struct ClusterArgs {
    /// Use this kubeconfig context instead of the workspace's kind cluster.
    #[arg(long, value_name = "NAME", env = "KINDLAB_CONTEXT")]
    pub context: Option<String>,

    /// Use this kubeconfig file (an attendee's, from `kindlab workshop provision`); its
    /// context's namespace is the default for -n.
    #[arg(long, value_name = "FILE", env = "KINDLAB_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

impl ClusterArgs {
    pub fn access(&self) -> crate::k8s::ClusterAccess {
        crate::k8s::ClusterAccess {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct ResetArgs {
    /// Recreate the cluster instead (`down` + `up`).
    #[arg(long)]
    pub hard: bool,
    /// Only this namespace.
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long to wait for the rollouts, e.g. 90s, 5m.
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// With --hard: the kind node image to recreate the cluster from (as `up --node-image`).
    #[arg(long, value_name = "IMAGE", env = "KINDLAB_NODE_IMAGE")]
    pub node_image: Option<String>,
}

/// Where the lab lives when it is not kindlab's own kind cluster and registry.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Use this existing registry instead of running one (HOST:PORT, as the cluster pulls it).
    #[arg(long, value_name = "HOST:PORT")]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 healthy, 10 a problem was found, 3 no such target.")]
pub struct DiagnoseArgs {
    /// deployment/NAME, pod/NAME, service/NAME or a bare NAME; nothing for the whole namespace.
    pub target: Option<String>,

    /// The namespace (default: the context's namespace, else `default`).
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// The cluster (default: the workspace's kind cluster, else the current context).
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Ask no registry: the cluster's messages alone decide.
    #[arg(long)]
    pub no_registry: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// kind node image (overrides cluster.nodeImage in kindlab.yaml).
    #[arg(long, value_name = "IMAGE", env = "KINDLAB_NODE_IMAGE")]
    pub node_image: Option<String>,

    /// How long to wait for the rollout, e.g. 90s, 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Use a cluster or registry this workspace did not create (another workspace's, one made
    /// by kind's script or by hand). Remembered; kindlab never deletes what it adopted.
    #[arg(long)]
    pub adopt: bool,

    /// Print what `up` would do, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The longest wait a duration may ask for. Callers take `now + duration` as a deadline,
/// which must exist (a wait of 10^19 seconds has none), and no step of kindlab needs a year.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `90`, `90s`, `5m`, `1h`; at most a year.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; use e.g. 90s or 5m"))?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?} has an unknown unit; use s, m or h")),
    };
    n.checked_mul(unit_seconds)
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| format!("{text:?} is longer than a year; use e.g. 90s or 5m"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5 parsecs").is_err());
    }

    /// Found by fuzzing (fuzz/fuzz_targets/duration.rs): a number of seconds that fits a u64
    /// was accepted, and the deadline `Instant::now() + timeout` then panicked; `h` and `m`
    /// overflowed the multiplication (a panic in debug builds, a wrong wait in release).
    #[test]
    fn durations_past_any_deadline_are_refused() {
        for text in [
            "15627615079656386286",
            "18446744073709551615s",
            "5124095576030432h",
            "307445734561825861m",
            "8761h",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
        let longest = parse_duration("8760h").unwrap();
        assert_eq!(longest, MAX_DURATION);
        assert!(std::time::Instant::now().checked_add(longest).is_some());
    }
}
