//! What every action of `up` shares: settings resolved once, the engine, the UI.

use std::time::Duration;

use crate::docker::Engine;
use crate::ui::Ui;
use crate::workspace::Workspace;

/// `up` settings after flags and kindlab.yaml are merged (flags win).
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub node_image: Option<String>,
    /// `--context`: an existing cluster; kind and node wiring are skipped.
    pub context: Option<String>,
    /// `--registry`: an existing registry; kindlab runs none.
    pub registry: Option<String>,
    pub rollout_timeout: Duration,
}

/// Where images go and where the cluster pulls them from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryTarget {
    /// kindlab's registry container, published on localhost:<port>.
    Local,
    /// An existing registry at this `host:port`.
    External(String),
}

pub struct UpContext {
    pub workspace: Workspace,
    pub options: UpOptions,
    pub engine: Engine,
    pub ui: Ui,
}

impl UpContext {
    pub fn cluster_name(&self) -> &str {
        &self.workspace.cluster.name
    }

    pub fn registry_target(&self) -> RegistryTarget {
        match &self.options.registry {
            Some(host) => RegistryTarget::External(host.clone()),
            None => RegistryTarget::Local,
        }
    }

    /// `host:port` images are pushed to and pulled from (the same name on both sides: the
    /// nodes' hosts.toml maps localhost:<port> to the registry container).
    pub fn registry_host(&self) -> String {
        match self.registry_target() {
            RegistryTarget::External(host) => host,
            RegistryTarget::Local => format!("localhost:{}", self.workspace.registry.port),
        }
    }

    /// The kubeconfig context users type: `kind-<name>` or the one given.
    pub fn kube_context(&self) -> String {
        self.options
            .context
            .clone()
            .unwrap_or_else(|| format!("kind-{}", self.cluster_name()))
    }

    pub fn uses_kind(&self) -> bool {
        self.options.context.is_none()
    }

    pub fn node_image(&self) -> Option<&str> {
        self.options
            .node_image
            .as_deref()
            .or(self.workspace.cluster.node_image.as_deref())
    }

    pub fn rollout_timeout(&self) -> Duration {
        self.options.rollout_timeout
    }
}
