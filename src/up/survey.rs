//! Observing and planning every resource of the lab without changing anything: what
//! `status` prints and what `up --dry-run` prints. Both call the actions' own observe and
//! plan functions, the ones `up` acts on, so the three cannot disagree.

use serde::Serialize;

use super::actions::{build_push, cluster, deploy, gitops, guardrails, registry, wire_nodes};
use super::context::UpContext;
use super::row::Row;
use crate::error::{Error, Result};
use crate::registry::Probe;

/// One action's share of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct ActionPlan {
    pub action: &'static str,
    pub planned: Vec<String>,
}

/// Every resource, observed and planned. A resource that could not be looked at holds the
/// error.
pub struct Survey {
    pub registry: Result<registry::View>,
    pub cluster: Result<cluster::View>,
    pub images: Result<build_push::View>,
    pub wiring: Result<wire_nodes::View>,
    pub guardrails: Result<guardrails::View>,
    pub deploy: Result<deploy::View>,
    /// GitOps mode's look (its `gitops` action deploys instead of `deploy`); None in the
    /// default mode.
    pub gitops: Option<Result<gitops::View>>,
    /// Another `up` or `down` holds the workspace: its pid.
    pub busy: Option<String>,
    /// The cluster's API, when it could be asked.
    pub client: Option<kube::Client>,
}

/// Looks at the whole lab. Never fails: what cannot be looked at is kept as an error.
pub async fn survey(ctx: &UpContext) -> Survey {
    let busy = ctx.workspace.lock_holder();
    let kind = if ctx.uses_kind() {
        crate::cluster::Kind::find().ok()
    } else {
        None
    };
    // Independent looks run together: `status` is something people run often.
    // The overlay renders from the files alone: it starts with the rest.
    let rendered = async {
        match &ctx.workspace.deploy {
            Some(_) => Ok(Some(crate::desired::find_and_render(&ctx.workspace).await?)),
            None => Ok::<_, Error>(None),
        }
    };
    // The cluster, then a client for its API: connecting overlaps the render too.
    let cluster_and_client = async {
        let cluster = cluster::observe(ctx).await;
        // The nodes to look into (None: `up` will make the cluster), a client when the API
        // can be asked, and whether anything can be said about the objects.
        let (nodes, client, reachable) = match &cluster {
            Ok(view) if view.will_create() => (None, None, true),
            Ok(view) => {
                let nodes = view.seen.as_ref().map(|s| s.nodes.clone());
                // A kind cluster is asked only when it runs, and only through kind's
                // kubeconfig.
                let askable = !ctx.uses_kind() || (view.is_running() && kind.is_some());
                let client = if askable {
                    cluster::connect(ctx, kind.as_ref()).await.ok()
                } else {
                    None
                };
                let reachable = client.is_some();
                (nodes, client, reachable)
            }
            Err(_) => (Some(Vec::new()), None, false),
        };
        (cluster, nodes, client, reachable)
    };
    let (rendered, registry, (cluster, nodes, client, reachable)) =
        tokio::join!(rendered, registry::observe(ctx), cluster_and_client);
    let registry_ready = match &registry {
        Ok(view) => matches!(view.probe, Some(Probe::Registry)),
        Err(_) => false,
    };
    // What `up` would refuse to touch stops the survey there, as it stops `up`.
    let registry_usable = matches!(&registry, Ok(view) if view.plan.is_ok());
    let cluster_usable = matches!(&cluster, Ok(view) if view.plan.is_ok());
    let usable = registry_usable && cluster_usable;
    let wiring = async {
        match usable {
            true => wire_nodes::observe(ctx, nodes.as_deref(), client.as_ref()).await,
            false => Ok(wire_nodes::View::default()),
        }
    };
    // The guardrails hold in the overlay's namespaces.
    let overlay_docs: Vec<serde_json::Value> = match &rendered {
        Ok(Some(docs)) => docs.clone(),
        _ => Vec::new(),
    };
    let guarded = async {
        match usable {
            true => guardrails::observe(ctx, &overlay_docs, client.as_ref()).await,
            false => Ok(guardrails::View::default()),
        }
    };
    // The objects need the images' references; the nodes' wiring needs nothing of either.
    let images_then_deploy = async {
        let images = match registry_usable {
            true => build_push::observe(ctx, registry_ready).await,
            false => Ok(build_push::View::default()),
        };
        let references: Vec<(String, String)> = match &images {
            Ok(view) => view
                .images
                .iter()
                .map(|i| (i.name.clone(), i.reference.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        // The overlay as it will render once the images action has recorded the new tags.
        let records = match &images {
            Ok(view) => view.records.clone(),
            Err(_) => Vec::new(),
        };
        let deploy = match (rendered, usable) {
            (_, false) => Ok(deploy::View::default()),
            (Ok(rendered), true) => {
                deploy::observe(
                    ctx,
                    rendered,
                    &references,
                    &records,
                    client.as_ref(),
                    reachable,
                )
                .await
            }
            (Err(e), true) => Err(e),
        };
        (images, deploy)
    };
    let gitops = async {
        match ctx.workspace.gitops {
            true => Some(gitops::view(ctx, client.as_ref()).await),
            false => None,
        }
    };
    let (wiring, guardrails, (images, deploy), gitops) =
        tokio::join!(wiring, guarded, images_then_deploy, gitops);
    Survey {
        registry,
        cluster,
        images,
        wiring,
        guardrails,
        deploy,
        gitops,
        busy,
        client,
    }
}

impl Survey {
    /// `up`'s plan, action by action, or the first reason `up` would stop.
    pub fn into_plan(self, ctx: &UpContext) -> Result<Vec<ActionPlan>> {
        let registry = self.registry?;
        let cluster = self.cluster?;
        let planned_registry = match &registry.plan {
            Err(_) => return registry.plan.map(|_| Vec::new()),
            Ok(_) => registry.changes(ctx),
        };
        let planned_cluster = match &cluster.plan {
            Err(_) => return cluster.plan.map(|_| Vec::new()),
            Ok(_) => cluster.changes(ctx),
        };
        Ok(vec![
            ActionPlan {
                action: "registry",
                planned: planned_registry,
            },
            ActionPlan {
                action: "cluster",
                planned: planned_cluster,
            },
            ActionPlan {
                action: "images",
                planned: self.images?.changes(),
            },
            ActionPlan {
                action: "wire-nodes",
                planned: {
                    let wiring = self.wiring?;
                    if let Some(e) = wiring.unwirable {
                        return Err(e.into());
                    }
                    wiring.changes()
                },
            },
            ActionPlan {
                action: "guardrails",
                planned: {
                    let view = self.guardrails?;
                    if view.refused.is_some()
                        && let Some(desired) = &view.desired
                    {
                        crate::guardrails::plan(&desired.objects(), &view.seen)?;
                    }
                    view.changes()
                },
            },
            match self.gitops {
                Some(view) => ActionPlan {
                    action: "gitops",
                    planned: view?.changes(),
                },
                None => ActionPlan {
                    action: "deploy",
                    planned: self.deploy?.changes(),
                },
            },
        ])
    }

    /// `status`'s rows, in the order `up` works.
    pub fn rows(&self, ctx: &UpContext) -> Vec<Row> {
        let mut rows = Vec::new();
        if let Some(pid) = &self.busy {
            rows.push(Row::new(
                "workspace",
                false,
                "busy",
                format!("another kindlab command (pid {pid}) is changing the lab"),
                Vec::new(),
            ));
        }
        match &self.registry {
            Ok(view) => rows.extend(view.rows(ctx)),
            Err(e) => rows.push(Row::failed(
                format!("registry {}", ctx.workspace.registry.name),
                e,
            )),
        }
        match &self.images {
            Ok(view) => rows.extend(view.rows()),
            Err(e) => rows.push(Row::failed("images", e)),
        }
        match &self.cluster {
            Ok(view) => rows.extend(view.rows(ctx)),
            Err(e) => rows.push(Row::failed(
                format!("cluster kind-{}", ctx.cluster_name()),
                e,
            )),
        }
        match &self.wiring {
            Ok(view) => rows.extend(view.rows(ctx)),
            Err(e) => rows.push(Row::failed("registry wiring", e)),
        }
        match &self.guardrails {
            Ok(view) => rows.extend(view.rows()),
            Err(e) => rows.push(Row::failed("guardrails", e)),
        }
        // GitOps mode: the controller deploys the overlay; its rows replace the overlay's.
        match (&self.gitops, &self.deploy) {
            (Some(Ok(view)), _) => rows.extend(view.rows(ctx)),
            (Some(Err(e)), _) => rows.push(Row::refused("gitops", e)),
            (None, Ok(view)) => rows.extend(view.rows()),
            (None, Err(e)) => rows.push(Row::failed("overlay", e)),
        }
        rows
    }
}
