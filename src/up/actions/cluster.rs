//! Cluster: `kind-<name>` exists, is this workspace's (or adopted), and runs; or kind creates
//! it from `templates/kind-config.yaml`. With `--context`, that cluster is used instead.
//!
//! Creation is recorded in the workspace's state before kind starts; an interrupted creation
//! kills kind's process group and deletes the half-made cluster before `up` stops.

use std::time::{Duration, Instant};

use crate::cluster::{self, ClusterError, ClusterSeen, ClusterStep, Kind, Node, lifecycle};
use crate::error::Result;
use crate::up::context::{UpContext, interrupted};
use crate::up::outcome::{ActionReport, Outcome};
use crate::up::row::Row;
use crate::workspace::Creating;

/// A restarted node's API server needs a while: kubelet restarts the static pods first.
const API_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a half-made cluster's last node container may take to appear and go.
const DELETE_TIMEOUT: Duration = Duration::from_secs(30);

/// What wiring and deploy need of the cluster, published as soon as its API server answers:
/// during creation that is when kubeadm has started the control plane, while kind still
/// installs the CNI and the StorageClass and writes the kubeconfig (1–2 s that wiring and
/// deploy overlap; the controller-manager is starting then anyway).
#[derive(Clone)]
pub struct ClusterReady {
    pub client: kube::Client,
    pub nodes: Vec<Node>,
    /// Created by this run.
    pub fresh: bool,
}

/// Publishes the cluster once, the first time it is ready.
pub type ReadySender = tokio::sync::watch::Sender<Option<ClusterReady>>;

fn publish(ready: &ReadySender, cluster: ClusterReady) {
    ready.send_if_modified(|slot| match slot {
        Some(_) => false,
        None => {
            *slot = Some(cluster);
            true
        }
    });
}

/// kind's line for the end of `kubeadm init` (the control plane answers from then on), or
/// for its next step, in case a kind words the first differently. A kind that prints
/// neither only loses the head start: readiness is published when kind returns.
fn control_plane_started(line: &str) -> bool {
    (line.contains("Starting control-plane") && line.contains('✓'))
        || line.contains("Installing CNI")
}

/// The client of a cluster kind is still creating: kind's kubeconfig for it (read from the
/// control-plane node, so available before kind writes it out), once the API server answers.
async fn early_ready(ctx: &UpContext, kind: &Kind, name: &str) -> Result<ClusterReady> {
    let client = cluster::kubeconfig::client(&ctx.engine, kind, name).await?;
    wait_for_api(&client, name).await?;
    let nodes = cluster::list_nodes(&ctx.engine, name)
        .await
        .map_err(ClusterError::from)?;
    Ok(ClusterReady {
        client,
        nodes,
        fresh: true,
    })
}

/// What `status` and `--dry-run` show of the cluster.
pub struct View {
    /// None with `--context`.
    pub seen: Option<ClusterSeen>,
    pub plan: Result<Vec<ClusterStep>>,
}

pub async fn observe(ctx: &UpContext) -> Result<View> {
    if !ctx.uses_kind() {
        return Ok(View {
            seen: None,
            plan: Ok(Vec::new()),
        });
    }
    let seen = lifecycle::observe(&ctx.engine, ctx.cluster_name(), ctx.me(), &ctx.state()).await?;
    let plan = lifecycle::plan(&seen, ctx.options.adopt).map_err(Into::into);
    Ok(View {
        seen: Some(seen),
        plan,
    })
}

impl View {
    pub fn changes(&self, ctx: &UpContext) -> Vec<String> {
        match &self.plan {
            Ok(steps) => steps
                .iter()
                .map(|s| s.describe(ctx.cluster_name()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The cluster will be (re)made by `up`: nothing in it can be observed yet.
    pub fn will_create(&self) -> bool {
        matches!(&self.plan, Ok(steps) if steps.contains(&ClusterStep::Create))
    }

    /// Every node runs and the plan leaves the cluster as it is: its API can be asked.
    pub fn is_running(&self) -> bool {
        match (&self.seen, &self.plan) {
            (Some(seen), Ok(steps)) => {
                seen.exists()
                    && seen.nodes.iter().all(|n| n.running)
                    && !steps
                        .iter()
                        .any(|s| matches!(s, ClusterStep::Create | ClusterStep::Delete { .. }))
            }
            _ => false,
        }
    }

    pub fn rows(&self, ctx: &UpContext) -> Vec<Row> {
        let Some(seen) = &self.seen else {
            return vec![Row::new(
                "cluster",
                true,
                "context",
                ctx.kube_context(),
                Vec::new(),
            )];
        };
        let component = format!("cluster kind-{}", seen.name);
        if let Err(e) = &self.plan {
            return vec![Row::refused(component, e)];
        }
        let changes = self.changes(ctx);
        if !seen.exists() {
            return vec![Row::new(component, false, "missing", "", changes)];
        }
        let running = seen.nodes.iter().filter(|n| n.running).count();
        let state = if seen.interrupted_create.is_some() && !seen.owner.is_this_workspace() {
            "half-made"
        } else if running == seen.nodes.len() {
            "running"
        } else {
            "not running"
        };
        let made_by = if state == "half-made" {
            "an interrupted `kindlab up` of this workspace was creating it".to_string()
        } else if seen.adopted_before {
            format!("made by {}, adopted", seen.owner.describe())
        } else {
            format!("made by {}", seen.owner.describe())
        };
        vec![Row::new(
            component,
            changes.is_empty(),
            state,
            format!("{running}/{} nodes running ({made_by})", seen.nodes.len()),
            changes,
        )]
    }
}

/// The cluster's client, for a cluster that runs (`status`, `--dry-run`).
pub async fn connect(ctx: &UpContext, kind: Option<&Kind>) -> Result<kube::Client> {
    match kind {
        None => Ok(ctx.options.access.connect().await?.client),
        Some(kind) => Ok(cluster::kubeconfig::client(&ctx.engine, kind, ctx.cluster_name()).await?),
    }
}

/// Returns the report; the cluster itself goes to `ready` (nodes empty with `--context`).
pub async fn execute(
    ctx: &UpContext,
    kind: Option<&Kind>,
    ready: &ReadySender,
) -> Result<ActionReport> {
    let started = Instant::now();
    let Some(kind) = kind else {
        let context = ctx.kube_context();
        let step = ctx.ui.step(format!("Cluster (context {context})"));
        let client = ctx
            .interruptible("connecting to the cluster", async {
                Ok(ctx.options.access.connect().await?.client)
            })
            .await?;
        let report = ActionReport::new(
            "cluster",
            Outcome::Skipped,
            vec![format!("using the existing context {context}")],
            started.elapsed(),
        );
        step.ok(report.summary());
        publish(
            ready,
            ClusterReady {
                client,
                nodes: Vec::new(),
                fresh: false,
            },
        );
        return Ok(report);
    };

    let name = ctx.cluster_name();
    let step = ctx.ui.step(format!("Cluster kind-{name}"));
    let result = async {
        ctx.interruptible("the cluster", super::hold(ctx, "cluster"))
            .await?;
        let seen = ctx
            .interruptible("the cluster", async {
                Ok(lifecycle::observe(&ctx.engine, name, ctx.me(), &ctx.state()).await?)
            })
            .await?;
        let steps = lifecycle::plan(&seen, ctx.options.adopt)?;
        let node_image = match steps.contains(&ClusterStep::Create) {
            true => node_image(ctx, kind).await,
            false => None,
        };
        let mut restarted = false;
        for s in &steps {
            match s {
                ClusterStep::Create => {
                    let control_plane = tokio::sync::Notify::new();
                    let creating = create(ctx, kind, name, node_image.as_deref(), |line| {
                        if control_plane_started(line) {
                            control_plane.notify_one();
                        }
                        step.detail(line)
                    });
                    let head_start = async {
                        control_plane.notified().await;
                        match early_ready(ctx, kind, name).await {
                            Ok(cluster) => publish(ready, cluster),
                            // Not fatal: wiring and deploy wait for kind to finish instead.
                            Err(e) => tracing::debug!(error = %e, "no head start"),
                        }
                        std::future::pending::<()>().await
                    };
                    tokio::select! {
                        created = creating => created?,
                        () = head_start => {}
                    }
                }
                other => {
                    step.detail(other.describe(name));
                    restarted |= matches!(
                        other,
                        ClusterStep::Start { .. } | ClusterStep::Unpause { .. }
                    );
                    ctx.interruptible("the cluster", act(ctx, kind, name, other))
                        .await?;
                }
            }
        }
        let (client, api_waited) = ctx
            .interruptible("the cluster", async {
                let client = cluster::kubeconfig::client(&ctx.engine, kind, name).await?;
                // A node the engine itself restarted (after a reboot or an engine restart:
                // restart policy) runs before its API server answers, with no step of ours
                // to say so; one version call tells, and costs a round trip when it answers.
                let mut waited = None;
                if restarted || client.apiserver_version().await.is_err() {
                    step.detail("waiting for the API server");
                    let since = Instant::now();
                    wait_for_api(&client, name).await?;
                    waited = Some(since.elapsed());
                }
                Ok((client, waited))
            })
            .await?;
        let nodes = cluster::list_nodes(&ctx.engine, name)
            .await
            .map_err(ClusterError::from)?;
        Ok::<_, crate::error::Error>((steps, client, nodes, node_image, api_waited))
    }
    .await;
    let (steps, client, nodes, node_image, api_waited) = result?;
    let outcome = if steps.contains(&ClusterStep::Create) {
        Outcome::Created
    } else if steps.is_empty() {
        Outcome::Reused
    } else if steps.iter().all(|s| matches!(s, ClusterStep::Adopt { .. })) {
        Outcome::Adopted
    } else {
        Outcome::Repaired
    };
    let mut details: Vec<String> = steps
        .iter()
        .map(|s| match s {
            ClusterStep::Create => match node_image.as_deref() {
                Some(image) => format!("kind cluster with {image}"),
                None => "kind cluster".to_string(),
            },
            other => other.done(name),
        })
        .collect();
    if let Some(waited) = api_waited {
        details.push(format!(
            "API server answered after {}",
            crate::ui::format_duration(waited)
        ));
    }
    let report = ActionReport::new("cluster", outcome, details, started.elapsed())
        .with_plan(steps.iter().map(|s| s.describe(name)).collect());
    step.ok(report.summary());
    publish(
        ready,
        ClusterReady {
            client,
            nodes,
            fresh: report.outcome == Outcome::Created,
        },
    );
    Ok(report)
}

/// Every step but creation.
async fn act(ctx: &UpContext, kind: &Kind, name: &str, step: &ClusterStep) -> Result<()> {
    match step {
        ClusterStep::Create => {}
        ClusterStep::StopOrphanKind { pid } => {
            cluster::kill_group(Some(*pid));
            let started = Instant::now();
            while cluster::is_kind_process(*pid) && started.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        ClusterStep::Delete { .. } => delete(ctx, kind, name).await?,
        ClusterStep::Adopt { .. } => {
            ctx.update_state(|s| s.cluster.adopted = Some(name.to_string()))?;
        }
        ClusterStep::Unpause { nodes } => cluster::unpause_nodes(&ctx.engine, nodes)
            .await
            .map_err(ClusterError::from)?,
        ClusterStep::Start { nodes } => cluster::start_nodes(&ctx.engine, nodes)
            .await
            .map_err(ClusterError::from)?,
        ClusterStep::WriteMarker => mark_owned(ctx, name).await?,
        ClusterStep::ForgetCreating => ctx.update_state(|s| s.cluster.creating = None)?,
    }
    Ok(())
}

/// The node image to create the cluster with: the one named (flag, kindlab.yaml), else a
/// loaded bundle's (kind's default cannot be pulled where a bundle was needed), else kind's.
async fn node_image(ctx: &UpContext, kind: &Kind) -> Option<String> {
    match ctx.node_image() {
        Some(image) => Some(image.to_string()),
        None => match kind.version().await {
            Ok(version) => crate::bundle::loaded_node_image(&ctx.engine, &version).await,
            Err(_) => None,
        },
    }
}

/// `kind create cluster`, recorded first; on interruption, kind's process group is killed,
/// the half-made cluster deleted, and the record cleared.
async fn create(
    ctx: &UpContext,
    kind: &Kind,
    name: &str,
    node_image: Option<&str>,
    on_line: impl FnMut(&str),
) -> Result<()> {
    // Before kind runs: whatever happens next, the next run knows this workspace made it.
    ctx.update_state(|s| s.cluster.creating = Some(Creating::new(name)))?;
    let config = cluster::render_kind_config(name);
    let created = kind
        .create(
            name,
            &config,
            node_image,
            |pid| {
                if let Err(e) = ctx.update_state(|s| {
                    if let Some(c) = s.cluster.creating.as_mut() {
                        c.kind_pid = Some(pid);
                    }
                }) {
                    tracing::warn!(error = %e, "cannot record kind's pid");
                }
            },
            on_line,
            ctx.interrupt.requested(),
        )
        .await;
    match created {
        Ok(()) => {
            mark_owned(ctx, name).await?;
            ctx.update_state(|s| s.cluster.creating = None)?;
            Ok(())
        }
        Err(ClusterError::Cancelled { .. }) => {
            // kind is dead; what it made goes too. A second Ctrl-C ends the process here and
            // leaves the record: the next `up` finishes this cleanup.
            delete(ctx, kind, name).await?;
            ctx.update_state(|s| s.cluster.creating = None)?;
            Err(interrupted(
                "cluster creation",
                &format!("the half-made cluster kind-{name} was deleted"),
            )
            .into())
        }
        Err(e) => {
            // kind removes what it made when it fails; the record goes once nothing is left.
            if cluster::list_nodes(&ctx.engine, name)
                .await
                .is_ok_and(|n| n.is_empty())
            {
                ctx.update_state(|s| s.cluster.creating = None)?;
            }
            Err(e.into())
        }
    }
}

/// `kind delete cluster`, checked: a node container that a `docker run` in flight when kind
/// was killed creates after the delete is removed too (it carries this cluster's kind label,
/// and the workspace's record says this workspace was making it).
async fn delete(ctx: &UpContext, kind: &Kind, name: &str) -> Result<()> {
    kind.delete(name).await?;
    let started = Instant::now();
    loop {
        let left = cluster::list_nodes(&ctx.engine, name)
            .await
            .map_err(ClusterError::from)?;
        if left.is_empty() {
            return Ok(());
        }
        if started.elapsed() > DELETE_TIMEOUT {
            return Err(ClusterError::NotDeleted {
                name: name.to_string(),
                remaining: left
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        }
        for node in &left {
            cluster::remove_node(&ctx.engine, &node.name)
                .await
                .map_err(ClusterError::from)?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes this workspace's owner marker into the control-plane node(s), so `down` deletes
/// only clusters this workspace created.
async fn mark_owned(ctx: &UpContext, name: &str) -> Result<()> {
    for node in cluster::list_nodes(&ctx.engine, name)
        .await
        .map_err(ClusterError::from)?
    {
        if node.role == "control-plane" {
            cluster::write_owner_marker(&ctx.engine, &node.name, &ctx.identity)
                .await
                .map_err(ClusterError::from)?;
        }
    }
    Ok(())
}

async fn wait_for_api(client: &kube::Client, name: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        match client.apiserver_version().await {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > API_READY_TIMEOUT => {
                return Err(ClusterError::ApiNotReady {
                    name: name.to_string(),
                    seconds: API_READY_TIMEOUT.as_secs(),
                    last_error: e.to_string(),
                }
                .into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
