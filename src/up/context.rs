//! What every action of `up` shares: settings resolved once, the engine, the UI, the
//! interrupt, and the workspace's identity and local state.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use crate::docker::Engine;
use crate::error::Result;
use crate::interrupt::{Interrupt, Interrupted};
use crate::registry::{self, RegistryDesired};
use crate::ui::Ui;
use crate::workspace::{
    AUTO_PORTS, LocalState, Owner, StateError, Workspace, WorkspaceIdentity, WorkspaceLock,
    first_free_port,
};

/// `up` settings after flags and kindlab.yaml are merged (flags win).
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub node_image: Option<String>,
    /// `--kubeconfig` / `--context`: an existing cluster; kind and node wiring are skipped.
    pub access: crate::k8s::ClusterAccess,
    /// `--registry`: an existing registry; kindlab runs none.
    pub registry: Option<String>,
    pub rollout_timeout: Duration,
    /// `--adopt`: use a cluster or registry this workspace did not create.
    pub adopt: bool,
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
    pub interrupt: Interrupt,
    /// This workspace's identity. For a workspace that never ran `up`, looked at by
    /// `status` or `up --dry-run`, a stand-in that owns nothing and is never saved.
    pub identity: WorkspaceIdentity,
    /// False for that stand-in.
    identity_saved: bool,
    state: Mutex<LocalState>,
    /// `status` and `up --dry-run` change nothing, not even kindlab's own files.
    read_only: bool,
    /// What this run finished, for the message when it is interrupted.
    progress: Mutex<Progress>,
    _lock: Option<WorkspaceLock>,
}

#[derive(Debug, Default, Clone)]
pub struct Progress {
    /// `registry (created)`, ... in the order they finished.
    pub finished: Vec<String>,
    /// State left part way, in words (`3 objects applied; the rollout goes on`).
    pub notes: Vec<String>,
}

impl UpContext {
    /// For `up`: takes the workspace lock, makes the identity on first use, and settles the
    /// registry port (`port: auto`: the remembered port, else a free one, then remembered).
    pub async fn for_up(
        mut workspace: Workspace,
        options: UpOptions,
        engine: Engine,
        ui: Ui,
        interrupt: Interrupt,
    ) -> Result<UpContext> {
        let lock = workspace.lock()?;
        let identity = workspace.ensure_identity()?;
        let mut state = workspace.read_state()?;
        if workspace.registry.port_auto && options.registry.is_none() {
            let port =
                settle_auto_port(&engine, &workspace, &identity, &state, options.adopt).await?;
            workspace.registry.port = port;
            if state.registry.port != Some(port) {
                state.registry.port = Some(port);
                workspace.write_state(&state)?;
            }
        }
        Ok(UpContext {
            workspace,
            options,
            engine,
            ui,
            interrupt,
            identity,
            identity_saved: true,
            state: Mutex::new(state),
            read_only: false,
            progress: Mutex::default(),
            _lock: Some(lock),
        })
    }

    /// For `status` and `up --dry-run`: looks, never writes.
    pub fn read_only(
        workspace: Workspace,
        options: UpOptions,
        engine: Engine,
        ui: Ui,
        interrupt: Interrupt,
    ) -> Result<UpContext> {
        let saved = workspace.identity()?;
        let identity_saved = saved.is_some();
        let identity = saved.unwrap_or_else(|| WorkspaceIdentity {
            id: String::new(),
            path: workspace.root.display().to_string(),
        });
        let state = workspace.read_state()?;
        Ok(UpContext {
            workspace,
            options,
            engine,
            ui,
            interrupt,
            identity,
            identity_saved,
            state: Mutex::new(state),
            read_only: true,
            progress: Mutex::default(),
            _lock: None,
        })
    }

    /// The identity things are compared with: None for a workspace that has none yet (it
    /// owns nothing).
    pub fn me(&self) -> Option<&WorkspaceIdentity> {
        self.identity_saved.then_some(&self.identity)
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// A copy of the workspace's local state as it is now.
    pub fn state(&self) -> LocalState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Changes the local state and saves it at once (actions run concurrently; each change
    /// is read-modify-write under the lock). A no-op when read-only.
    pub fn update_state(&self, change: impl FnOnce(&mut LocalState)) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut state);
        self.workspace.write_state(&state)
    }

    /// Records that an action finished, with its outcome.
    pub fn finished(&self, report: &super::outcome::ActionReport) {
        let word = report.summary();
        let word = word.split(':').next().unwrap_or_default().to_string();
        self.with_progress(|p| p.finished.push(format!("{} ({word})", report.action)));
    }

    /// Records state an action left part way, for the message if the run is interrupted.
    pub fn note_progress(&self, note: impl Into<String>) {
        let note = note.into();
        self.with_progress(|p| p.notes.push(note));
    }

    pub fn progress(&self) -> Progress {
        let mut copy = Progress::default();
        self.with_progress(|p| copy = p.clone());
        copy
    }

    fn with_progress(&self, f: impl FnOnce(&mut Progress)) {
        let mut progress = self
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut progress);
    }

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
            RegistryTarget::Local => crate::registry::local_host(self.workspace.registry.port),
        }
    }

    /// What the workspace wants of its registry container.
    pub fn registry_desired(&self) -> RegistryDesired<'_> {
        let adopted_before =
            self.state().registry.adopted.as_deref() == Some(&self.workspace.registry.name);
        let volume = crate::registry::volume_name(&self.workspace.registry.name);
        RegistryDesired {
            settings: &self.workspace.registry,
            adopt: self.options.adopt || adopted_before,
            adopted_before,
            volume_adopted_before: self.state().registry.adopted_volume.as_deref()
                == Some(volume.as_str()),
        }
    }

    /// The kubeconfig context users type: `kind-<name>` or the one given.
    pub fn kube_context(&self) -> String {
        match (
            &self.options.access.context,
            &self.options.access.kubeconfig,
        ) {
            (Some(context), _) => context.clone(),
            (None, Some(file)) => format!("the current context of {}", file.display()),
            (None, None) => format!("kind-{}", self.cluster_name()),
        }
    }

    pub fn uses_kind(&self) -> bool {
        !self.options.access.is_explicit()
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

    /// Runs `work` until it ends or the user interrupts; then `work` is dropped at its
    /// current await point and the result is [`Interrupted`] during `during`.
    pub async fn interruptible<T>(
        &self,
        during: &str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::select! {
            result = work => result,
            () = self.interrupt.requested() => Err(interrupted(during, "").into()),
        }
    }
}

/// An [`Interrupted`] whose `left` and `next` `up` completes from what it finished.
pub fn interrupted(during: &str, left: &str) -> Interrupted {
    Interrupted {
        during: during.to_string(),
        left: left.to_string(),
        next: String::new(),
    }
}

/// `registry.port: auto`: the port remembered, else the port the registry container already
/// publishes (if it is this workspace's, or being adopted), else the first port from 5001
/// that no listener and no container (running or not) holds.
async fn settle_auto_port(
    engine: &Engine,
    workspace: &Workspace,
    identity: &WorkspaceIdentity,
    state: &LocalState,
    adopt: bool,
) -> Result<u16> {
    let existing =
        registry::observe_container(engine, &workspace.registry.name, Some(identity)).await?;
    let adopted = state.registry.adopted.as_deref() == Some(workspace.registry.name.as_str());
    if let Some(seen) = existing
        && (seen.owner == Owner::ThisWorkspace || adopt || adopted)
        && let Some(port) = seen.host_port
    {
        return Ok(port);
    }
    if let Some(port) = state.registry.port {
        return Ok(port);
    }
    let published = registry::published_ports(engine).await?;
    first_free_port(AUTO_PORTS, |p| published.contains(&p)).ok_or_else(|| {
        registry::RegistryError::NoFreePort {
            from: *AUTO_PORTS.start(),
            to: *AUTO_PORTS.end(),
        }
        .into()
    })
}
