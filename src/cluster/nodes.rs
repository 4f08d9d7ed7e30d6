//! kind's node containers, found by kind's own label, and the files kindlab writes into
//! them through the Docker API (an upload, not a `docker exec` shell one-liner).

use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures::TryStreamExt;
use serde::Serialize;

use crate::docker::{DockerError, Engine, labels};

/// Written into the control-plane node when kindlab creates a cluster. A file in the node,
/// not a Kubernetes object, so `down` can check ownership even when the API server is down.
pub const OWNER_MARKER: &str = "/kind/kindlab-owner.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    pub running: bool,
    pub role: String,
}

/// The node containers of cluster `name` (label `io.x-k8s.kind.cluster=<name>`).
pub async fn list_nodes(engine: &Engine, cluster: &str) -> Result<Vec<Node>, DockerError> {
    let filter = format!("{}={cluster}", labels::KIND_CLUSTER);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&std::collections::HashMap::from([(
            "label",
            vec![filter.as_str()],
        )]))
        .build();
    let containers = engine
        .docker
        .list_containers(Some(options))
        .await
        .map_err(DockerError::api("list kind nodes"))?;
    let mut nodes: Vec<Node> = containers
        .into_iter()
        .map(|c| Node {
            name: c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            running: c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING),
            role: c
                .labels
                .and_then(|l| l.get("io.x-k8s.kind.role").cloned())
                .unwrap_or_default(),
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// Starts every stopped node; returns the names it started.
pub async fn start_stopped(engine: &Engine, nodes: &[Node]) -> Result<Vec<String>, DockerError> {
    let mut started = Vec::new();
    for node in nodes.iter().filter(|n| !n.running) {
        engine
            .docker
            .start_container(&node.name, None)
            .await
            .map_err(DockerError::api(format!("start node {}", node.name)))?;
        started.push(node.name.clone());
    }
    Ok(started)
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
async fn download_file(
    engine: &Engine,
    node: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, DockerError> {
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
        }) => return Ok(None),
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
    let mut entries = archive.entries().map_err(read_err)?;
    match entries.next() {
        Some(entry) => {
            let mut entry = entry.map_err(read_err)?;
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).map_err(read_err)?;
            Ok(Some(content))
        }
        None => Ok(None),
    }
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

pub async fn write_owner_marker(
    engine: &Engine,
    node: &str,
    content: &str,
) -> Result<(), DockerError> {
    upload_file(engine, node, OWNER_MARKER, content.as_bytes()).await
}

pub async fn read_owner_marker(engine: &Engine, node: &str) -> Result<Option<String>, DockerError> {
    Ok(download_file(engine, node, OWNER_MARKER)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}
