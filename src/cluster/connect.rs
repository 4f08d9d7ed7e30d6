//! Which cluster a command talks to: the one `--kubeconfig`/`--context` name (any conformant
//! cluster, namespace-scoped credentials included), else the workspace's own kind cluster.

use super::{ClusterError, Kind, list_nodes};
use crate::k8s::{self, ClusterAccess};
use crate::workspace::Workspace;

/// The cluster a command talks to.
pub struct Connection {
    pub client: kube::Client,
    pub context: String,
    pub namespace: Option<String>,
    pub access: ClusterAccess,
    /// The kubeconfig it came from (its server and CA, for a workshop's handout).
    pub kubeconfig: kube::config::Kubeconfig,
}

/// Connects as `access` says; without `--kubeconfig` or `--context`, to the workspace's kind
/// cluster, which must be up (else the error says to run `kindlab up`, not kind's own words).
pub async fn connect(ws: &Workspace, access: &ClusterAccess) -> Result<Connection, ClusterError> {
    if access.is_explicit() {
        let connected = access.connect().await?;
        return Ok(Connection {
            client: connected.client,
            context: connected.context,
            namespace: connected.namespace,
            access: access.clone(),
            kubeconfig: connected.kubeconfig,
        });
    }
    let kind = Kind::find()?;
    let engine = crate::docker::Engine::connect().await?;
    let name = &ws.cluster.name;
    let not_up = |why: String| ClusterError::NotUp { why };
    let nodes = list_nodes(&engine, name).await?;
    if nodes.is_empty() {
        return Err(not_up(format!("there is no kind cluster {name:?}")));
    }
    let kubeconfig = super::kubeconfig::read(&engine, &kind, name).await?;
    let client = k8s::client_from_kubeconfig(
        kubeconfig.clone(),
        "the admin kubeconfig of the kind cluster",
    )
    .await?;
    if let Err(e) = client.apiserver_version().await {
        return Err(not_up(format!(
            "the API server of kind-{name} does not answer ({e})"
        )));
    }
    Ok(Connection {
        client,
        context: format!("kind-{name}"),
        namespace: None,
        access: ClusterAccess::default(),
        kubeconfig,
    })
}
