//! kind's node containers, found by kind's own label, and the files kindlab writes into
//! them through the Docker API (an upload, not a `docker exec` shell one-liner).

use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures::TryStreamExt;
use serde::Serialize;

use crate::docker::{DockerError, Engine, labels};
use crate::workspace::{Owner, WorkspaceIdentity};

/// Written into the control-plane node when kindlab creates a cluster. A file in the node,
/// not a Kubernetes object, so `down` can check ownership even when the API server is down.
pub const OWNER_MARKER: &str = "/kind/kindlab-owner.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    /// Running and not paused: the node works.
    pub running: bool,
    pub paused: bool,
    pub role: String,
    /// The engine's word for its state (`running`, `exited`, `paused`, ...).
    pub state: String,
}

/// The node containers of cluster `name` (label `io.x-k8s.kind.cluster=<name>`).
pub async fn list_nodes(engine: &Engine, cluster: &str) -> Result<Vec<Node>, DockerError> {
    let filter = format!("{}={cluster}", labels::KIND_CLUSTER);
    Ok(list_kind_nodes(engine, Some(&filter))
        .await?
        .into_iter()
        .map(|(_, node)| node)
        .collect())
}

/// Every kind node container on the engine, with its cluster's name.
pub async fn list_all_nodes(engine: &Engine) -> Result<Vec<(String, Node)>, DockerError> {
    list_kind_nodes(engine, None).await
}

async fn list_kind_nodes(
    engine: &Engine,
    label_filter: Option<&str>,
) -> Result<Vec<(String, Node)>, DockerError> {
    let filter = label_filter.unwrap_or(labels::KIND_CLUSTER);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&std::collections::HashMap::from([("label", vec![filter])]))
        .build();
    let containers = engine
        .docker
        .list_containers(Some(options))
        .await
        .map_err(DockerError::api("list kind nodes"))?;
    let mut nodes: Vec<(String, Node)> = containers
        .into_iter()
        .map(|c| {
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            let labels = c.labels.unwrap_or_default();
            let node = Node {
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                running: state == "running",
                paused: state == "paused",
                role: labels
                    .get("io.x-k8s.kind.role")
                    .cloned()
                    .unwrap_or_default(),
                state,
            };
            (
                labels
                    .get(labels::KIND_CLUSTER)
                    .cloned()
                    .unwrap_or_default(),
                node,
            )
        })
        .collect();
    nodes.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
    Ok(nodes)
}

/// Starts the named stopped nodes.
pub async fn start_nodes(engine: &Engine, names: &[String]) -> Result<(), DockerError> {
    for name in names {
        engine
            .docker
            .start_container(name, None)
            .await
            .map_err(DockerError::api(format!("start node {name}")))?;
    }
    Ok(())
}

/// Removes one node container (and its anonymous volumes), whatever its state; gone already
/// is fine.
pub async fn remove_node(engine: &Engine, name: &str) -> Result<(), DockerError> {
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match engine.docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(()),
        Err(source) => Err(DockerError::Api {
            action: format!("remove node {name}"),
            source,
        }),
    }
}

/// Unpauses the named paused nodes.
pub async fn unpause_nodes(engine: &Engine, names: &[String]) -> Result<(), DockerError> {
    for name in names {
        engine
            .docker
            .unpause_container(name)
            .await
            .map_err(DockerError::api(format!("unpause node {name}")))?;
    }
    Ok(())
}

/// `/etc/containerd/certs.d/<host>/hosts.toml`, where containerd looks for `host`.
pub fn hosts_toml_path(registry_host: &str) -> String {
    format!("/etc/containerd/certs.d/{registry_host}/hosts.toml")
}

/// Uploads `content` as the file at absolute `path` in `node`, creating its directories.
async fn upload_file(
    engine: &Engine,
    node: &str,
    path: &str,
    content: &[u8],
) -> Result<(), DockerError> {
    let relative = path.trim_start_matches('/');
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    let tar_err = |e: std::io::Error| DockerError::Api {
        action: format!("pack {path}"),
        source: bollard::errors::Error::IOError { err: e },
    };
    // Directory entries first, so the engine creates them with sane modes.
    let mut dir = String::new();
    if let Some((parents, _)) = relative.rsplit_once('/') {
        for part in parents.split('/') {
            dir.push_str(part);
            dir.push('/');
            let mut dh = tar::Header::new_gnu();
            dh.set_entry_type(tar::EntryType::Directory);
            dh.set_mode(0o755);
            dh.set_size(0);
            dh.set_mtime(0);
            tar.append_data(&mut dh, &dir, std::io::empty())
                .map_err(tar_err)?;
        }
    }
    tar.append_data(&mut header, relative, content)
        .map_err(tar_err)?;
    let bytes = tar.into_inner().map_err(tar_err)?;
    let options = UploadToContainerOptionsBuilder::default().path("/").build();
    engine
        .docker
        .upload_to_container(node, Some(options), bollard::body_full(bytes.into()))
        .await
        .map_err(DockerError::api(format!("write {path} in {node}")))
}

/// Reads a file from a node; None when it does not exist.
pub(super) async fn download_file(
    engine: &Engine,
    node: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, DockerError> {
    Ok(download_tree(engine, node, path)
        .await?
        .into_iter()
        .next()
        .map(|(_, content)| content))
}

/// Every regular file at or under `path` in a node, with its path in the archive; empty when
/// `path` does not exist.
async fn download_tree(
    engine: &Engine,
    node: &str,
    path: &str,
) -> Result<Vec<(String, Vec<u8>)>, DockerError> {
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let chunks: Result<Vec<bytes::Bytes>, _> = engine
        .docker
        .download_from_container(node, Some(options))
        .try_collect()
        .await;
    let chunks = match chunks {
        Ok(c) => c,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok(Vec::new()),
        Err(source) => {
            return Err(DockerError::Api {
                action: format!("read {path} in {node}"),
                source,
            });
        }
    };
    let bytes: Vec<u8> = chunks.concat();
    let mut archive = tar::Archive::new(bytes.as_slice());
    let read_err = |e: std::io::Error| DockerError::Api {
        action: format!("unpack {path} from {node}"),
        source: bollard::errors::Error::IOError { err: e },
    };
    let mut files = Vec::new();
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).map_err(read_err)?;
        files.push((name, content));
    }
    Ok(files)
}

/// True when `node` already has exactly `content` as the hosts.toml for `registry_host`.
pub async fn hosts_toml_matches(
    engine: &Engine,
    node: &str,
    registry_host: &str,
    content: &str,
) -> Result<bool, DockerError> {
    let path = hosts_toml_path(registry_host);
    Ok(download_file(engine, node, &path).await?.as_deref() == Some(content.as_bytes()))
}

/// Writes the hosts.toml for `registry_host` into `node` unless it already has exactly that
/// content. Returns true when it wrote (a repair or a first wiring).
pub async fn write_hosts_toml(
    engine: &Engine,
    node: &str,
    registry_host: &str,
    content: &str,
) -> Result<bool, DockerError> {
    if hosts_toml_matches(engine, node, registry_host, content).await? {
        return Ok(false);
    }
    let path = hosts_toml_path(registry_host);
    upload_file(engine, node, &path, content.as_bytes()).await?;
    Ok(true)
}

/// The owner marker's content for a cluster made by workspace `by`.
pub fn owner_marker(by: &WorkspaceIdentity) -> String {
    serde_json::json!({
        "createdBy": "kindlab",
        "version": env!("CARGO_PKG_VERSION"),
        "workspace": { "id": by.id, "path": by.path },
    })
    .to_string()
}

pub async fn write_owner_marker(
    engine: &Engine,
    node: &str,
    by: &WorkspaceIdentity,
) -> Result<(), DockerError> {
    upload_file(engine, node, OWNER_MARKER, owner_marker(by).as_bytes()).await
}

/// containerd's configuration in a node (None when it has none where kind puts it).
pub async fn read_containerd_config(
    engine: &Engine,
    node: &str,
) -> Result<Option<String>, DockerError> {
    Ok(download_file(engine, node, CONTAINERD_CONFIG)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";

/// True when a containerd configuration reads per-registry hosts.toml files from
/// /etc/containerd/certs.d (`config_path`, as kind's local-registry guide sets it, in the
/// CRI plugin of containerd 1.x or 2.x). Without it containerd ignores the files kindlab
/// writes and pulls `localhost:<port>` from the node itself.
pub fn reads_certs_d(config: &str) -> bool {
    config.lines().any(|line| {
        let line = line.trim();
        !line.starts_with('#')
            && line.starts_with("config_path")
            && line.contains("/etc/containerd/certs.d")
    })
}

pub async fn read_owner_marker(engine: &Engine, node: &str) -> Result<Option<String>, DockerError> {
    Ok(download_file(engine, node, OWNER_MARKER)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Who made a cluster, from its owner marker (None: no marker), as workspace `me` sees it.
/// Returns the owner and whether the marker is in the current format (an earlier kindlab
/// recorded only the workspace's path; a marker naming this workspace's path is this
/// workspace's and gets rewritten).
pub fn marker_owner(marker: Option<&str>, me: Option<&WorkspaceIdentity>) -> (Owner, bool) {
    let Some(text) = marker else {
        return (Owner::NotKindlab, true);
    };
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    match &value["workspace"] {
        serde_json::Value::Object(w) => (
            Owner::from_record(
                w.get("id").and_then(|v| v.as_str()),
                w.get("path").and_then(|v| v.as_str()),
                true,
                me,
            ),
            true,
        ),
        serde_json::Value::String(path) if me.is_some_and(|me| &me.path == path) => {
            (Owner::ThisWorkspace, false)
        }
        serde_json::Value::String(path) => (
            Owner::OtherWorkspace {
                id: String::new(),
                path: Some(path.clone()),
            },
            false,
        ),
        _ => (Owner::EarlierKindlab, false),
    }
}

/// The kind clusters, other than `except`, whose nodes pull from the registry container
/// `registry` (a hosts.toml under /etc/containerd/certs.d, or a legacy mirror in
/// containerd's config, that names `<registry>:5000`). A node that cannot be read is logged
/// and skipped.
pub async fn registry_users(
    engine: &Engine,
    registry: &str,
    except: &str,
) -> Result<Vec<String>, DockerError> {
    let mut users: Vec<String> = Vec::new();
    for (cluster, node) in list_all_nodes(engine).await? {
        if cluster == except || users.contains(&cluster) {
            continue;
        }
        match node_pulls_from(engine, &node.name, registry).await {
            Ok(true) => users.push(cluster),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(node = %node.name, error = %e, "cannot read the node's registry configuration")
            }
        }
    }
    Ok(users)
}

async fn node_pulls_from(engine: &Engine, node: &str, registry: &str) -> Result<bool, DockerError> {
    let needle = format!("{registry}:{}", crate::registry::CONTAINER_PORT);
    for path in ["/etc/containerd/certs.d", "/etc/containerd/config.toml"] {
        for (_, content) in download_tree(engine, node, path).await? {
            if names_registry(&content, &needle) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// True when a containerd hosts.toml or config names `host` as an endpoint (`http://host`,
/// `https://host`, or a quoted `host`).
fn names_registry(content: &[u8], host: &str) -> bool {
    let text = String::from_utf8_lossy(content);
    text.match_indices(host).any(|(at, _)| {
        let before = &text[..at];
        let after = &text[at + host.len()..];
        (before.ends_with("://") || before.ends_with('"'))
            && after
                .chars()
                .next()
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '-' && c != '.')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> WorkspaceIdentity {
        WorkspaceIdentity {
            id: "a1".into(),
            path: "/w/a".into(),
        }
    }

    #[test]
    fn markers_name_their_workspace() {
        let mine = owner_marker(&me());
        assert_eq!(
            marker_owner(Some(&mine), Some(&me())),
            (Owner::ThisWorkspace, true)
        );
        let other = WorkspaceIdentity {
            id: "b2".into(),
            path: "/w/b".into(),
        };
        assert_eq!(
            marker_owner(Some(&owner_marker(&other)), Some(&me())).0,
            Owner::OtherWorkspace {
                id: "b2".into(),
                path: Some("/w/b".into())
            }
        );
        assert_eq!(marker_owner(None, Some(&me())).0, Owner::NotKindlab);
        // An earlier kindlab's marker: the path decides, and the marker is out of date.
        let earlier = r#"{"createdBy":"kindlab","version":"0.1.0","workspace":"/w/a"}"#;
        assert_eq!(
            marker_owner(Some(earlier), Some(&me())),
            (Owner::ThisWorkspace, false)
        );
        assert!(matches!(
            marker_owner(Some(earlier), None).0,
            Owner::OtherWorkspace { .. }
        ));
        assert_eq!(
            marker_owner(Some("garbage"), Some(&me())).0,
            Owner::EarlierKindlab
        );
        // A workspace with no saved identity yet knows only its path (the id is empty):
        // an earlier kindlab's marker for that path is its own, a current one never is,
        // even one whose id is empty too.
        let path_only = WorkspaceIdentity {
            id: String::new(),
            path: "/w/a".into(),
        };
        assert_eq!(
            marker_owner(Some(earlier), Some(&path_only)).0,
            Owner::ThisWorkspace
        );
        let empty_id = r#"{"createdBy":"kindlab","workspace":{"id":"","path":"/w/a"}}"#;
        assert!(matches!(
            marker_owner(Some(empty_id), Some(&path_only)).0,
            Owner::OtherWorkspace { .. }
        ));
        assert!(matches!(
            marker_owner(Some(&mine), Some(&path_only)).0,
            Owner::OtherWorkspace { .. }
        ));
    }

    #[test]
    fn config_path_is_found_in_either_containerd_layout() {
        let v2 = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n";
        assert!(reads_certs_d(v2));
        let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d'\n";
        assert!(reads_certs_d(v3));
        let without = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"localhost:5001\"]\n  endpoint = [\"http://kind-registry:5000\"]\n# config_path = \"/etc/containerd/certs.d\"\n";
        assert!(!reads_certs_d(without));
    }

    #[test]
    fn a_hosts_toml_names_its_registry_exactly() {
        let hosts = br#"server = "http://kind-registry:5000"

[host."http://kind-registry:5000"]
  capabilities = ["pull", "resolve"]
"#;
        assert!(names_registry(hosts, "kind-registry:5000"));
        assert!(
            !names_registry(hosts, "registry:5000"),
            "a suffix is another name"
        );
        assert!(!names_registry(hosts, "kind-registry:500"));
        let legacy = br#"[plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:5001"]
  endpoint = ["http://team-registry:5000"]"#;
        assert!(names_registry(legacy, "team-registry:5000"));
        assert!(!names_registry(legacy, "kind-registry:5000"));
    }
}
