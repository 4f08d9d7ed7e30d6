//! Which `kubectl` the user types, and whether it fits the cluster: kubectl supports a
//! kube-apiserver one minor version older or newer than itself, so a kubectl outside that
//! skew (a machine's own v1.32 against the lab's v1.34 cluster) gets a warning, never a
//! failure (kindlab itself talks to the cluster through its own client).
//!
//! Observed ([`observe`]), then judged by a pure function ([`judge`], unit-tested) against the
//! best reference there is: the cluster kubectl's current context answers with, else the
//! node image the workspace's cluster runs, else the kubectl the lab was set up with
//! (recorded by `make install` in `<prefix>/share/kindlab/lab-tools`, beside the installed
//! binary's `bin/`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::Check;

/// How long `kubectl version` may take to ask the cluster (it is a local kind cluster, or
/// nothing).
const SERVER_TIMEOUT: Duration = Duration::from_secs(5);

/// What a kubectl's version is judged against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// The API server of kubectl's current context answered with this version.
    Cluster {
        context: Option<String>,
        version: String,
    },
    /// The kind node image the workspace's cluster runs (or will run).
    NodeImage { image: String, version: String },
    /// The kubectl `make lab` set the lab up with, as `make install` recorded it.
    LabKubectl { path: PathBuf, version: String },
}

impl Reference {
    fn version(&self) -> &str {
        match self {
            Reference::Cluster { version, .. }
            | Reference::NodeImage { version, .. }
            | Reference::LabKubectl { version, .. } => version,
        }
    }

    fn describe(&self) -> String {
        match self {
            Reference::Cluster {
                context: Some(context),
                version,
            } => format!("the cluster of context {context} runs {version}"),
            Reference::Cluster {
                context: None,
                version,
            } => format!("the cluster it talks to runs {version}"),
            Reference::NodeImage { image, version } => {
                format!("the cluster's node image {image} is Kubernetes {version}")
            }
            Reference::LabKubectl { path, version } => format!(
                "the lab was set up with kubectl {version} ({})",
                path.display()
            ),
        }
    }
}

/// The kubectl on PATH and what to judge it against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub path: Option<PathBuf>,
    /// Its `clientVersion.gitVersion`; `None` when it did not say.
    pub version: Option<String>,
    /// The cluster's version when one answered (or the node image's, for `up`).
    pub against: Option<Reference>,
    /// `make install`'s record of the lab's kubectl: the reference when nothing better is
    /// known, and the fix's pointer either way.
    pub lab: Option<Reference>,
}

/// `v1.34.12`, `v1.32.4-dispatcher`, `1.29+` -> (1, 34), (1, 32), (1, 29).
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// Within kubectl's supported skew (one minor version either way)? `None` when either
/// version cannot be read.
pub fn within_skew(client: &str, server: &str) -> Option<bool> {
    let (client, server) = (major_minor(client)?, major_minor(server)?);
    Some(client.0 == server.0 && client.1.abs_diff(server.1) <= 1)
}

/// The Kubernetes version a kind node image's tag names (`kindest/node:v1.34.12`,
/// `kindest/node:v1.34.12-offline@sha256:...`); `None` for tags that name none.
pub fn node_image_version(image: &str) -> Option<String> {
    let name = image.split('@').next().unwrap_or(image);
    let (repository, tag) = name.rsplit_once(':')?;
    // `host:5000/node` has a port, not a tag.
    if tag.contains('/') || repository.is_empty() {
        return None;
    }
    // `v1.34.12-offline` -> `v1.34.12`: the version, without the build's suffix.
    let numbers: String = tag
        .strip_prefix('v')?
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version = format!("v{}", numbers.trim_end_matches('.'));
    major_minor(&version).map(|_| version)
}

/// `make install`'s lab-tools file: `KINDLAB_LAB_KUBECTL=PATH` and
/// `KINDLAB_LAB_KUBECTL_VERSION=vX.Y.Z` lines (comments and other keys ignored).
pub fn parse_lab_tools(text: &str) -> Option<Reference> {
    let value = |key: &str| {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "unknown")
    };
    Some(Reference::LabKubectl {
        path: PathBuf::from(value("KINDLAB_LAB_KUBECTL")?),
        version: value("KINDLAB_LAB_KUBECTL_VERSION")?.to_string(),
    })
}

/// Where `make install` writes lab-tools for a binary installed as `exe`:
/// `<prefix>/bin/kindlab` -> `<prefix>/share/kindlab/lab-tools`.
pub fn lab_tools_path(exe: &Path) -> Option<PathBuf> {
    Some(exe.parent()?.parent()?.join("share/kindlab/lab-tools"))
}

/// The lab's kubectl, for the fix: `/usr/local/bin/kubectl (v1.34.12)`, unless it is the one
/// already on PATH.
fn lab_kubectl(seen: &Seen) -> Option<String> {
    match &seen.lab {
        Some(Reference::LabKubectl { path, version }) if seen.path.as_ref() != Some(path) => {
            Some(format!("{} ({version})", path.display()))
        }
        _ => None,
    }
}

/// Judges what [`observe`] saw. Pure.
pub fn judge(seen: &Seen) -> Check {
    const NAME: &str = "kubectl";
    let Some(path) = &seen.path else {
        let fix = match lab_kubectl(seen) {
            Some(lab) => format!("the lab text's commands need kubectl: put the lab's, {lab}, on PATH"),
            None => "the lab text's commands need kubectl: `make install` puts the one the lab was set up with beside kindlab, or install it (https://kubernetes.io/docs/tasks/tools/)".to_string(),
        };
        return Check::warn(NAME, "not on PATH", Some(fix));
    };
    let Some(version) = &seen.version else {
        return Check::warn(
            NAME,
            format!(
                "{} did not say its version (`kubectl version --client`)",
                path.display()
            ),
            None,
        );
    };
    let here = format!("{version} at {}", path.display());
    let Some(reference) = seen.against.as_ref().or(seen.lab.as_ref()) else {
        return Check::pass(
            NAME,
            format!(
                "{here} (no cluster answers, and no record of the kubectl the lab was set up with)"
            ),
        );
    };
    let same_kubectl = matches!(reference, Reference::LabKubectl { path: lab, .. } if lab == path);
    let detail = if same_kubectl {
        format!("{here}, the kubectl the lab was set up with")
    } else {
        format!("{here}; {}", reference.describe())
    };
    let fits = within_skew(version, reference.version());
    if same_kubectl || fits == Some(true) {
        return Check::pass(NAME, detail);
    }
    let Some((major, minor)) = major_minor(reference.version()).filter(|_| fits.is_some()) else {
        return Check::pass(NAME, format!("{detail} (versions not comparable)"));
    };
    let wanted = format!(
        "put a kubectl v{major}.{} to v{major}.{} first on PATH",
        minor.saturating_sub(1),
        minor + 1
    );
    let fix = match lab_kubectl(seen) {
        Some(lab) => format!("{wanted}, such as the lab's: {lab}"),
        None => format!("{wanted} (`make install` installs the lab's beside kindlab)"),
    };
    Check::warn(
        NAME,
        format!("{detail}: outside kubectl's supported version skew (one minor version)"),
        Some(fix),
    )
}

/// The kubectl on PATH, its version and, with `ask_cluster`, the version of the cluster its
/// current context names (when it answers within a few seconds); and the lab's kubectl as
/// `make install` recorded it beside this binary.
pub async fn observe(ask_cluster: bool) -> Seen {
    let lab = std::env::current_exe()
        .ok()
        .and_then(|exe| lab_tools_path(&exe))
        .and_then(|file| std::fs::read_to_string(file).ok())
        .and_then(|text| parse_lab_tools(&text));
    let Ok(path) = which::which("kubectl") else {
        return Seen {
            lab,
            ..Seen::default()
        };
    };
    let timeout = format!("--request-timeout={}s", SERVER_TIMEOUT.as_secs());
    let mut args = vec!["version", "-o", "json"];
    if ask_cluster {
        args.push(&timeout);
    } else {
        args.push("--client");
    }
    let (version, context) = tokio::join!(kubectl_output(&path, &args), async {
        match ask_cluster {
            true => kubectl_output(&path, &["config", "current-context"]).await,
            false => None,
        }
    });
    let json = version.and_then(|out| serde_json::from_str::<Value>(&out).ok());
    let field = |key: &str| {
        json.as_ref()
            .and_then(|v| v[key]["gitVersion"].as_str())
            .map(str::to_string)
    };
    let against = field("serverVersion").map(|version| Reference::Cluster {
        context: context
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        version,
    });
    Seen {
        version: field("clientVersion"),
        path: Some(path),
        against,
        lab,
    }
}

/// A kubectl command's stdout, whatever its exit status (`kubectl version` prints the
/// client's part and exits 1 when no cluster answers); `None` when it cannot run in time.
async fn kubectl_output(path: &Path, args: &[&str]) -> Option<String> {
    let run = tokio::process::Command::new(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(SERVER_TIMEOUT + Duration::from_secs(3), run)
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(version: &str, against: Option<Reference>) -> Seen {
        Seen {
            path: Some(PathBuf::from("/usr/bin/kubectl")),
            version: Some(version.to_string()),
            against,
            lab: None,
        }
    }

    fn cluster(version: &str) -> Option<Reference> {
        Some(Reference::Cluster {
            context: Some("kind-kindlab".into()),
            version: version.into(),
        })
    }

    fn lab(path: &str, version: &str) -> Option<Reference> {
        Some(Reference::LabKubectl {
            path: PathBuf::from(path),
            version: version.into(),
        })
    }

    #[test]
    fn versions_are_read_as_kubernetes_writes_them() {
        assert_eq!(major_minor("v1.34.12"), Some((1, 34)));
        assert_eq!(major_minor("v1.32.4-dispatcher"), Some((1, 32)));
        assert_eq!(major_minor("1.29+"), Some((1, 29)));
        assert_eq!(major_minor("v1.30.1-eks-1a2b3c"), Some((1, 30)));
        assert_eq!(major_minor("unknown"), None);
        assert_eq!(major_minor("v1"), None);
    }

    #[test]
    fn the_skew_is_one_minor_version_either_way() {
        assert_eq!(within_skew("v1.34.12", "v1.34.0"), Some(true));
        assert_eq!(within_skew("v1.33.1", "v1.34.0"), Some(true));
        assert_eq!(within_skew("v1.35.0", "v1.34.0"), Some(true));
        assert_eq!(within_skew("v1.32.4-dispatcher", "v1.34.12"), Some(false));
        assert_eq!(within_skew("v1.36.0", "v1.34.12"), Some(false));
        assert_eq!(within_skew("v2.34.0", "v1.34.0"), Some(false));
        assert_eq!(within_skew("dev", "v1.34.0"), None);
    }

    #[test]
    fn a_kubectl_outside_the_clusters_skew_is_a_warning_with_the_versions_that_fit() {
        let check = judge(&seen("v1.32.4-dispatcher", cluster("v1.34.12")));
        assert!(check.ok, "a warning, not a failure: {check:?}");
        assert!(check.warning, "{check:?}");
        assert!(check.detail.contains("/usr/bin/kubectl"), "{check:?}");
        assert!(
            check.detail.contains("context kind-kindlab runs v1.34.12"),
            "{check:?}"
        );
        let fix = check.fix.unwrap_or_default();
        assert!(fix.contains("v1.33 to v1.35"), "{fix}");
        assert!(fix.contains("make install"), "{fix}");
    }

    #[test]
    fn a_kubectl_within_the_skew_passes_and_names_itself_and_the_cluster() {
        for version in ["v1.33.0", "v1.34.12", "v1.35.2"] {
            let check = judge(&seen(version, cluster("v1.34.12")));
            assert!(check.ok && !check.warning, "{check:?}");
            assert!(
                check
                    .detail
                    .starts_with(&format!("{version} at /usr/bin/kubectl"))
            );
        }
    }

    #[test]
    fn without_a_cluster_the_lab_kubectl_is_the_reference_and_the_fix_names_it() {
        let mut s = seen("v1.32.4", None);
        s.lab = lab("/usr/local/bin/kubectl", "v1.34.12");
        let check = judge(&s);
        assert!(check.warning, "{check:?}");
        assert!(
            check
                .detail
                .contains("the lab was set up with kubectl v1.34.12"),
            "{check:?}"
        );
        let fix = check.fix.unwrap_or_default();
        assert!(
            fix.contains("such as the lab's: /usr/local/bin/kubectl (v1.34.12)"),
            "{fix}"
        );

        // The cluster wins over the record when it answers.
        s.against = cluster("v1.32.0");
        let check = judge(&s);
        assert!(check.ok && !check.warning, "{check:?}");
        assert!(check.detail.contains("runs v1.32.0"), "{check:?}");
    }

    #[test]
    fn the_lab_kubectl_itself_is_named_as_such() {
        let mut s = seen("v1.34.12", None);
        s.lab = lab("/usr/bin/kubectl", "v1.34.12");
        let check = judge(&s);
        assert!(check.ok && !check.warning, "{check:?}");
        assert!(
            check
                .detail
                .ends_with("the kubectl the lab was set up with"),
            "{check:?}"
        );
    }

    #[test]
    fn no_kubectl_or_no_version_warns_and_nothing_to_compare_passes() {
        let missing = judge(&Seen::default());
        assert!(missing.ok && missing.warning, "{missing:?}");
        assert!(missing.fix.unwrap_or_default().contains("make install"));
        let mut s = Seen {
            lab: lab("/usr/local/bin/kubectl", "v1.34.12"),
            ..Seen::default()
        };
        assert!(
            judge(&s)
                .fix
                .unwrap_or_default()
                .contains("put the lab's, /usr/local/bin/kubectl (v1.34.12), on PATH")
        );
        s.path = Some(PathBuf::from("/opt/kubectl"));
        assert!(judge(&s).warning);
        let alone = judge(&seen("v1.30.0", None));
        assert!(alone.ok && !alone.warning, "{alone:?}");
        assert!(alone.detail.contains("no cluster answers"), "{alone:?}");
    }

    #[test]
    fn node_images_name_their_kubernetes_version_in_the_tag() {
        assert_eq!(
            node_image_version("kindest/node:v1.34.12-offline").as_deref(),
            Some("v1.34.12")
        );
        assert_eq!(
            node_image_version("kindest/node:v1.33.1@sha256:abc").as_deref(),
            Some("v1.33.1")
        );
        assert_eq!(node_image_version("kindlab-bundle/node:kind-v0.33.0"), None);
        assert_eq!(node_image_version("localhost:5000/node"), None);
        assert_eq!(node_image_version("kindest/node"), None);
        assert_eq!(node_image_version("kindest/node:latest"), None);
        assert_eq!(node_image_version("kindest/node:v1"), None);
        assert_eq!(node_image_version("kindest/node:version"), None);
    }

    #[test]
    fn lab_tools_are_read_from_make_installs_record() {
        let text = "# The kind and kubectl `make lab` set this machine's lab up with\nKINDLAB_LAB_KIND=/usr/local/bin/kind\nKINDLAB_LAB_KIND_VERSION=v0.33.0\nKINDLAB_LAB_KUBECTL=/usr/local/bin/kubectl\nKINDLAB_LAB_KUBECTL_VERSION=v1.34.12\n";
        assert_eq!(
            parse_lab_tools(text),
            lab("/usr/local/bin/kubectl", "v1.34.12")
        );
        assert_eq!(
            parse_lab_tools("KINDLAB_LAB_KUBECTL=/x\nKINDLAB_LAB_KUBECTL_VERSION=unknown\n"),
            None
        );
        assert_eq!(parse_lab_tools(""), None);
        assert_eq!(
            lab_tools_path(Path::new("/usr/local/bin/kindlab")),
            Some(PathBuf::from("/usr/local/share/kindlab/lab-tools"))
        );
    }
}
