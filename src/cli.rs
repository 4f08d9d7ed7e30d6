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
    /// Delete the cluster and the registry kindlab created.
    Down {
        /// Keep the registry container and the images in it.
        #[arg(long)]
        keep_registry: bool,
    },
    /// Show the lab's state; exits non-zero when anything is off.
    Status(TargetArgs),
    /// Build the workspace's images and push them to the local registry.
    Build {
        /// Images to build (names from kindlab.yaml); all when none are given.
        images: Vec<String>,
    },
    /// Break/fix troubleshooting labs in the running lab.
    Lab {
        #[command(subcommand)]
        action: LabAction,
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
    Up,
    /// Remove the registry if kindlab created it.
    Down,
    /// Show the registry container and whether it answers.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// List the built-in labs.
    List,
    /// Run a lab: break, detect, diagnose, fix (GitOps), verify, and report the timings.
    Run {
        /// A built-in lab's name (`kindlab lab list`) or a lab file's path.
        lab: String,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// Where the lab lives when it is not kindlab's own kind cluster and registry.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Use this kubeconfig context instead of a kind cluster (no kind, no node wiring).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Use this existing registry instead of running one (HOST:PORT, as the cluster pulls it).
    #[arg(long, value_name = "HOST:PORT")]
    pub registry: Option<String>,
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
}

/// `90`, `90s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; use e.g. 90s or 5m"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?} has an unknown unit; use s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
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
}
