//! The admin kubeconfig of a kind cluster, read through the Docker API as `kind get
//! kubeconfig` makes it: `/etc/kubernetes/admin.conf` of the control-plane node, with the API
//! server at the host port the node (or the load balancer of a cluster with several control
//! planes) publishes. `kind get kubeconfig` costs ~0.5 s (kind runs eight `docker` commands);
//! this costs two API calls, and every command that talks to the cluster pays it.

use bollard::query_parameters::InspectContainerOptions;
use kube::config::Kubeconfig;

use super::nodes::{Node, download_file, list_nodes};
use super::{ClusterError, Kind};
use crate::docker::{DockerError, Engine};
use crate::k8s;

const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
const API_SERVER_PORT: &str = "6443/tcp";
const LOAD_BALANCER_ROLE: &str = "external-load-balancer";

/// A client for kind cluster `name`: its kubeconfig read from the node, or `kind get
/// kubeconfig` when that cannot be done (a layout this code does not know).
pub async fn client(
    engine: &Engine,
    kind: &Kind,
    name: &str,
) -> Result<kube::Client, ClusterError> {
    let kubeconfig = read(engine, kind, name).await?;
    Ok(k8s::client_from_kubeconfig(kubeconfig, "the admin kubeconfig of the kind cluster").await?)
}

/// The admin kubeconfig of kind cluster `name`, as [`client`] reads it.
pub async fn read(engine: &Engine, kind: &Kind, name: &str) -> Result<Kubeconfig, ClusterError> {
    match from_node(engine, name).await {
        Ok(Some(kubeconfig)) => Ok(kubeconfig),
        outcome => {
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "kubeconfig from the node failed; asking kind");
            }
            let yaml = kind.kubeconfig(name).await?;
            Kubeconfig::from_yaml(&yaml).map_err(|source| {
                k8s::K8sError::Kubeconfig {
                    origin: "the kubeconfig kind printed".into(),
                    source,
                }
                .into()
            })
        }
    }
}

/// The kubeconfig, or None when the cluster's layout is not the one handled here.
async fn from_node(engine: &Engine, name: &str) -> Result<Option<Kubeconfig>, DockerError> {
    let nodes = list_nodes(engine, name).await?;
    let Some((control_plane, endpoint)) = endpoint_node(&nodes) else {
        return Ok(None);
    };
    let inspected = engine
        .docker
        .inspect_container(&endpoint.name, None::<InspectContainerOptions>)
        .await
        .map_err(DockerError::api("inspect the API server's node"))?;
    let binding = inspected
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|mut ports| ports.remove(API_SERVER_PORT))
        .flatten()
        .and_then(|bindings| bindings.into_iter().next());
    let Some(server) =
        binding.and_then(|b| server_url(b.host_ip.as_deref(), b.host_port.as_deref()?))
    else {
        return Ok(None);
    };
    let Some(admin) = download_file(engine, &control_plane.name, ADMIN_CONF).await? else {
        return Ok(None);
    };
    let Ok(mut kubeconfig) = Kubeconfig::from_yaml(&String::from_utf8_lossy(&admin)) else {
        return Ok(None);
    };
    for cluster in &mut kubeconfig.clusters {
        if let Some(c) = cluster.cluster.as_mut() {
            c.server = Some(server.clone());
        }
    }
    Ok(Some(kubeconfig))
}

/// The control-plane node that holds admin.conf, and the node that publishes the API
/// server: the same node, or the load balancer when there is one. None for no control
/// plane, or several without a load balancer.
fn endpoint_node(nodes: &[Node]) -> Option<(&Node, &Node)> {
    let control_planes: Vec<&Node> = nodes.iter().filter(|n| n.role == "control-plane").collect();
    // kind's bootstrap control plane is the first by name.
    let first = *control_planes.first()?;
    match nodes.iter().find(|n| n.role == LOAD_BALANCER_ROLE) {
        Some(lb) => Some((first, lb)),
        None if control_planes.len() == 1 => Some((first, first)),
        None => None,
    }
}

/// `https://<host>:<port>` for a published port, as kind writes it: a port published on
/// every address is reached on the loopback one.
fn server_url(host_ip: Option<&str>, host_port: &str) -> Option<String> {
    if host_port.is_empty() || host_port.parse::<u16>().is_err() {
        return None;
    }
    let host = match host_ip.unwrap_or_default() {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        ip if ip.contains(':') => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    Some(format!("https://{host}:{host_port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, role: &str) -> Node {
        Node {
            name: name.into(),
            running: true,
            paused: false,
            role: role.into(),
            state: "running".into(),
        }
    }

    #[test]
    fn the_api_server_is_the_published_port_on_a_reachable_address() {
        assert_eq!(
            server_url(Some("127.0.0.1"), "41235").as_deref(),
            Some("https://127.0.0.1:41235")
        );
        assert_eq!(
            server_url(Some("0.0.0.0"), "6443").as_deref(),
            Some("https://127.0.0.1:6443")
        );
        assert_eq!(
            server_url(Some("::1"), "6443").as_deref(),
            Some("https://[::1]:6443")
        );
        assert_eq!(
            server_url(Some("::"), "6443").as_deref(),
            Some("https://[::1]:6443")
        );
        assert_eq!(server_url(Some("127.0.0.1"), ""), None);
        assert_eq!(server_url(Some("127.0.0.1"), "http"), None);
    }

    #[test]
    fn the_endpoint_is_the_one_control_plane_or_the_load_balancer() {
        let one = [
            node("a-control-plane", "control-plane"),
            node("a-worker", "worker"),
        ];
        let (admin, endpoint) = endpoint_node(&one).unwrap();
        assert_eq!(
            (admin.name.as_str(), endpoint.name.as_str()),
            ("a-control-plane", "a-control-plane")
        );
        let ha = [
            node("a-control-plane", "control-plane"),
            node("a-control-plane2", "control-plane"),
            node("a-external-load-balancer", "external-load-balancer"),
        ];
        let (admin, endpoint) = endpoint_node(&ha).unwrap();
        assert_eq!(
            (admin.name.as_str(), endpoint.name.as_str()),
            ("a-control-plane", "a-external-load-balancer")
        );
        assert!(endpoint_node(&ha[..2]).is_none());
        assert!(endpoint_node(&[node("a-worker", "worker")]).is_none());
    }
}
