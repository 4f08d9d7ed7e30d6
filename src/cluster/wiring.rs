//! Registry wiring as one resource, as kind's local-registry guide documents it: a
//! hosts.toml in every node for *both* names of the registry (`localhost:<port>`, the name
//! images are pushed and deployed with, and `<registry>:5000`, its name on the kind network,
//! for tools in the cluster), the registry container on the `kind` network, and the KEP-1755
//! `local-registry-hosting` ConfigMap. Observe, plan (pure), act.

use bollard::models::NetworkConnectRequest;
use serde::Serialize;
use serde_json::Value;

use super::{
    ClusterError, Node, hosts_toml_matches, render_hosts_toml, render_registry_hosting,
    write_hosts_toml,
};
use crate::docker::{DockerError, Engine};
use crate::k8s::{self, ObjectChange};
use crate::registry::CONTAINER_PORT;
use crate::workspace::parse_documents;

/// The Docker network kind puts its nodes on.
pub const KIND_NETWORK: &str = "kind";

/// The registry the nodes are wired to.
#[derive(Debug, Clone, Copy)]
pub struct WiringDesired<'a> {
    /// The registry container's name.
    pub registry: &'a str,
    /// Its port on the host.
    pub port: u16,
}

impl WiringDesired<'_> {
    /// The two names containerd must resolve to the registry.
    pub fn hosts(&self) -> [String; 2] {
        [
            crate::registry::local_host(self.port),
            format!("{}:{CONTAINER_PORT}", self.registry),
        ]
    }

    pub fn hosts_toml(&self) -> String {
        render_hosts_toml(self.registry)
    }

    /// The KEP-1755 ConfigMap, as documents to apply.
    pub fn configmap(&self) -> Result<Vec<Value>, ClusterError> {
        parse_documents(&render_registry_hosting(self.registry, self.port)).map_err(|e| {
            ClusterError::Template {
                what: "local-registry-hosting".into(),
                message: e.to_string(),
            }
        })
    }
}

/// One node and the registry names whose hosts.toml it lacks (or has different).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeWiring {
    pub node: String,
    pub stale: Vec<String>,
    /// Its containerd reads hosts.toml files (`config_path`): without it no wiring works.
    pub reads_hosts_toml: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WiringSeen {
    pub nodes: Vec<NodeWiring>,
    /// The registry container's networks; None when there is no registry container yet.
    pub registry_networks: Option<Vec<String>>,
    /// What applying the ConfigMap would do; None when the API server could not be asked.
    pub configmap: Option<ObjectChange>,
}

impl WiringSeen {
    /// The wiring of a cluster that does not exist yet: kind's single node, unwired.
    pub fn of_new_cluster(
        cluster: &str,
        desired: WiringDesired<'_>,
        registry_networks: Option<Vec<String>>,
    ) -> WiringSeen {
        WiringSeen {
            nodes: vec![NodeWiring {
                node: format!("{cluster}-control-plane"),
                stale: desired.hosts().to_vec(),
                // kindlab's kind config sets config_path.
                reads_hosts_toml: true,
            }],
            registry_networks,
            configmap: Some(ObjectChange::Create),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WiringStep {
    WriteHostsToml { node: String, host: String },
    ConnectNetwork { registry: String },
    ApplyConfigMap { change: ObjectChange },
}

const CONFIGMAP: &str = "ConfigMap kube-public/local-registry-hosting";

impl WiringStep {
    pub fn describe(&self) -> String {
        match self {
            WiringStep::WriteHostsToml { node, host } => {
                format!("write hosts.toml for {host} in {node}")
            }
            WiringStep::ConnectNetwork { registry } => {
                format!("connect {registry} to the {KIND_NETWORK} network")
            }
            WiringStep::ApplyConfigMap { change } => match change {
                ObjectChange::Configure { fields } => {
                    format!("update {CONFIGMAP} ({})", fields.join(", "))
                }
                _ => format!("create {CONFIGMAP}"),
            },
        }
    }

    pub fn done(&self) -> String {
        match self {
            WiringStep::WriteHostsToml { node, host } => {
                format!("wrote hosts.toml for {host} in {node}")
            }
            WiringStep::ConnectNetwork { registry } => {
                format!("connected {registry} to the {KIND_NETWORK} network")
            }
            WiringStep::ApplyConfigMap { change } => match change {
                ObjectChange::Configure { .. } => format!("updated {CONFIGMAP}"),
                _ => format!("created {CONFIGMAP}"),
            },
        }
    }
}

/// Whether wiring can work at all: every node's containerd must read hosts.toml files. Pure.
/// A cluster made without `config_path` (kind's own default) cannot be wired by files; it
/// would silently pull from the node itself.
pub fn check(seen: &WiringSeen) -> Result<(), ClusterError> {
    match seen.nodes.iter().find(|n| !n.reads_hosts_toml) {
        Some(node) => Err(ClusterError::NoConfigPath {
            node: node.node.clone(),
        }),
        None => Ok(()),
    }
}

/// Decides what to do. Pure.
pub fn plan(desired: WiringDesired<'_>, seen: &WiringSeen) -> Vec<WiringStep> {
    let mut steps = Vec::new();
    for node in &seen.nodes {
        for host in &node.stale {
            steps.push(WiringStep::WriteHostsToml {
                node: node.node.clone(),
                host: host.clone(),
            });
        }
    }
    let connected = seen
        .registry_networks
        .as_ref()
        .is_some_and(|n| n.iter().any(|n| n == KIND_NETWORK));
    if !connected {
        steps.push(WiringStep::ConnectNetwork {
            registry: desired.registry.to_string(),
        });
    }
    match &seen.configmap {
        // Not observed (the API server does not answer): `up` looks again once it does.
        None | Some(ObjectChange::Unchanged) => {}
        Some(change) => steps.push(WiringStep::ApplyConfigMap {
            change: change.clone(),
        }),
    }
    steps
}

/// One node's hosts.toml files and whether its containerd reads them.
async fn observe_node(
    engine: &Engine,
    node: &Node,
    desired: WiringDesired<'_>,
    content: &str,
) -> Result<NodeWiring, ClusterError> {
    let hosts = desired.hosts();
    let checks = hosts
        .iter()
        .map(|host| hosts_toml_matches(engine, &node.name, host, content));
    let (matches, config) = tokio::join!(
        futures::future::try_join_all(checks),
        super::read_containerd_config(engine, &node.name)
    );
    let stale = hosts
        .iter()
        .zip(matches.map_err(ClusterError::from)?)
        .filter(|(_, matched)| !matched)
        .map(|(host, _)| host.clone())
        .collect();
    Ok(NodeWiring {
        node: node.name.clone(),
        stale,
        reads_hosts_toml: config
            .map_err(ClusterError::from)?
            .as_deref()
            .is_some_and(super::reads_certs_d),
    })
}

/// Looks at every node's hosts.toml files, the registry's networks (None: no registry
/// container) and, when `client` is given, what applying the ConfigMap would do.
pub async fn observe(
    engine: &Engine,
    client: Option<&kube::Client>,
    nodes: &[Node],
    desired: WiringDesired<'_>,
    registry_networks: Option<Vec<String>>,
) -> Result<WiringSeen, ClusterError> {
    let content = desired.hosts_toml();
    // Every file of every node at once: each read is a tar download (~50 ms) from the engine.
    let configmap = async {
        match client {
            Some(client) => Ok::<_, ClusterError>(
                k8s::plan_objects(client, &desired.configmap()?)
                    .await?
                    .into_iter()
                    .next()
                    .map(|p| p.change),
            ),
            None => Ok(None),
        }
    };
    let (wiring, configmap) = tokio::join!(
        futures::future::try_join_all(
            nodes
                .iter()
                .map(|node| observe_node(engine, node, desired, &content))
        ),
        configmap
    );
    let (wiring, configmap) = (wiring?, configmap?);
    Ok(WiringSeen {
        nodes: wiring,
        registry_networks,
        configmap,
    })
}

/// Carries out `steps`. `on_detail` gets progress text.
pub async fn apply(
    engine: &Engine,
    client: &kube::Client,
    desired: WiringDesired<'_>,
    steps: &[WiringStep],
    mut on_detail: impl FnMut(&str),
) -> Result<(), ClusterError> {
    let content = desired.hosts_toml();
    for step in steps {
        on_detail(&step.describe());
        match step {
            WiringStep::WriteHostsToml { node, host } => {
                write_hosts_toml(engine, node, host, &content)
                    .await
                    .map_err(ClusterError::from)?;
            }
            WiringStep::ConnectNetwork { registry } => {
                engine
                    .docker
                    .connect_network(
                        KIND_NETWORK,
                        NetworkConnectRequest {
                            container: registry.clone(),
                            endpoint_config: None,
                        },
                    )
                    .await
                    .map_err(DockerError::api(format!(
                        "connect {registry} to the {KIND_NETWORK} network"
                    )))
                    .map_err(ClusterError::from)?;
            }
            WiringStep::ApplyConfigMap { .. } => {
                k8s::apply_all(client, &desired.configmap()?).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIRED: WiringDesired<'static> = WiringDesired {
        registry: "kind-registry",
        port: 5001,
    };

    fn wired() -> WiringSeen {
        WiringSeen {
            nodes: vec![NodeWiring {
                node: "lab-control-plane".into(),
                stale: vec![],
                reads_hosts_toml: true,
            }],
            registry_networks: Some(vec!["bridge".into(), "kind".into()]),
            configmap: Some(ObjectChange::Unchanged),
        }
    }

    #[test]
    fn both_registry_names_are_wired() {
        assert_eq!(
            DESIRED.hosts(),
            [
                "localhost:5001".to_string(),
                "kind-registry:5000".to_string()
            ]
        );
    }

    #[test]
    fn a_wired_cluster_needs_nothing() {
        assert!(plan(DESIRED, &wired()).is_empty());
    }

    #[test]
    fn every_missing_piece_is_one_step() {
        let mut seen = wired();
        seen.nodes[0].stale = vec!["kind-registry:5000".into()];
        seen.registry_networks = Some(vec!["bridge".into()]);
        seen.configmap = Some(ObjectChange::Configure {
            fields: vec!["data.localRegistryHosting.v1".into()],
        });
        let steps = plan(DESIRED, &seen);
        let described: Vec<String> = steps.iter().map(WiringStep::describe).collect();
        assert_eq!(
            described,
            [
                "write hosts.toml for kind-registry:5000 in lab-control-plane",
                "connect kind-registry to the kind network",
                "update ConfigMap kube-public/local-registry-hosting (data.localRegistryHosting.v1)",
            ]
        );
    }

    #[test]
    fn a_node_that_ignores_hosts_toml_cannot_be_wired() {
        let mut seen = wired();
        assert!(check(&seen).is_ok());
        seen.nodes[0].reads_hosts_toml = false;
        match check(&seen) {
            Err(ClusterError::NoConfigPath { node }) => assert_eq!(node, "lab-control-plane"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_new_cluster_gets_everything() {
        let steps = plan(
            DESIRED,
            &WiringSeen::of_new_cluster("lab", DESIRED, Some(vec!["bridge".into()])),
        );
        assert_eq!(steps.len(), 4, "{steps:?}");
        assert!(matches!(
            steps.last(),
            Some(WiringStep::ApplyConfigMap {
                change: ObjectChange::Create
            })
        ));
    }
}
