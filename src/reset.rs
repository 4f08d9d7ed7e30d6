//! `kindlab reset`: the lab back to the workspace's desired state after any lab or any
//! hand-made mess (a deleted Service, a Deployment scaled to zero, an image edited by hand),
//! without recreating the cluster: re-apply, release every field a lab set, delete what labs
//! created, undo the workspace changes a lab made (never the attendee's own edits), wait for
//! the rollouts. `reset --hard` recreates the cluster instead (`down` + `up`).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::ResetArgs;
use crate::docker::Engine;
use crate::down;
use crate::error::Result;
use crate::interrupt::Interrupt;
use crate::k8s;
use crate::lab::session::{self, SessionReport, SessionStore};
use crate::lab::{self, LabEnv};
use crate::ui::{self, Output, Ui};
use crate::up::{self, UpContext, UpOptions};
use crate::workspace::Workspace;

#[derive(Debug, Serialize)]
pub struct ResetReport {
    pub namespaces: Vec<NamespaceReset>,
    #[serde(serialize_with = "crate::images::serialize_secs")]
    pub duration: Duration,
}

#[derive(Debug, Serialize)]
pub struct NamespaceReset {
    pub namespace: String,
    /// The lab session this ended, if one was running.
    pub ended: Option<SessionReport>,
    /// What was done, in words (empty: it was already as desired).
    pub done: Vec<String>,
}

impl NamespaceReset {
    /// `att01: ended lab bad-image-tag (fixed)`, `dev: restored`.
    pub fn line(&self) -> String {
        match &self.ended {
            Some(s) => format!("{}: ended lab {} ({})", self.namespace, s.lab, s.state),
            None if self.done.is_empty() => {
                format!("{}: already as the workspace declares it", self.namespace)
            }
            None => format!("{}: restored", self.namespace),
        }
    }
}

/// Resets `namespace`, or every namespace with a lab session of this workspace plus the
/// overlay's own.
pub async fn run(
    env: &LabEnv<'_>,
    namespace: Option<&str>,
    rollout_timeout: Duration,
) -> Result<ResetReport> {
    let started = Instant::now();
    let store = SessionStore::new(env.workspace);
    let sessions: Vec<_> = store
        .all()
        .into_iter()
        .filter(|s| s.context == env.context)
        .filter(|s| namespace.is_none_or(|n| s.target.target.namespace == n))
        .collect();
    let mut namespaces: Vec<String> = match namespace {
        Some(n) => vec![n.to_string()],
        None => home_namespaces(env).await?,
    };
    for s in &sessions {
        if !namespaces.contains(&s.target.target.namespace) {
            namespaces.push(s.target.target.namespace.clone());
        }
    }

    let mut report = Vec::new();
    for ns in namespaces {
        let step = env.ui.step(format!("Resetting namespace {ns}"));
        // GitOps mode: the controller owns the objects; reset goes through Git (lab::undo).
        if !env.workspace.gitops {
            env.refuse_gitops(&ns).await?;
        }
        let session = sessions.iter().find(|s| s.target.target.namespace == ns);
        let done = match session {
            Some(s) => lab::undo(env, s).await,
            None if env.workspace.gitops => {
                crate::lab::actions::push_git(env).await.map(|l| vec![l])
            }
            // No session here (the lab ran from another machine, or by hand): what labs
            // left is read from the cluster.
            None => match env.observed_changes(&ns).await {
                Ok(changes) => env.restore(&ns, &changes, false).await,
                Err(e) => Err(e),
            },
        };
        let mut done = done?;
        let ended = match session {
            Some(s) => {
                store.finish(s)?;
                session::unmirror(&env.client, &ns).await;
                done.push(format!("ended lab {} ({})", s.lab, s.state()));
                Some(s.report())
            }
            None => None,
        };
        for deployment in deployments(env, &ns).await? {
            step.detail(format!("rollout of {ns}/{deployment}"));
            let waited = k8s::wait_rollout(
                &env.client,
                &ns,
                &deployment,
                rollout_timeout,
                &crate::diagnose::StuckPodExplainer::default(),
                |m| step.detail(format!("{ns}/{deployment}: {m}")),
            )
            .await;
            waited?;
        }
        step.ok(if done.is_empty() {
            "already as the workspace declares it".to_string()
        } else {
            done.join("; ")
        });
        report.push(NamespaceReset {
            namespace: ns,
            ended,
            done,
        });
    }
    Ok(ResetReport {
        namespaces: report,
        duration: started.elapsed(),
    })
}

/// `kindlab reset`: runs it and prints the report; returns the exit code.
pub async fn command(
    ws: &Workspace,
    args: ResetArgs,
    output: Output,
    ui: &Ui,
    interrupt: Interrupt,
) -> Result<u8> {
    if args.hard {
        let engine = Engine::connect().await?;
        let options = down::DownOptions {
            keep_registry: true,
            purge: false,
        };
        let down = down::run(&engine, ws, options, ui, &interrupt).await?;
        for line in &down.lines {
            ui.note(line);
        }
        let options = UpOptions {
            node_image: args.node_image,
            access: args.target.cluster.access(),
            registry: args.target.registry.clone(),
            rollout_timeout: args.timeout,
            adopt: false,
        };
        let ctx = UpContext::for_up(ws.clone(), options, engine, ui.clone(), interrupt).await?;
        let summary = up::run(&ctx).await?;
        return Ok(ui::show(&Recreated(summary), output));
    }
    let connection = crate::cluster::connect(ws, &args.target.cluster.access()).await?;
    let env = LabEnv::open(ws, connection, args.target.registry.clone(), ui, interrupt).await?;
    // An attendee's kubeconfig names its namespace: reset that one, not the overlay's.
    let namespace = args.namespace.clone().or(env.default_namespace.clone());
    let report = run(&env, namespace.as_deref(), args.timeout).await?;
    Ok(ui::show(&report, output))
}

impl ui::Report for ResetReport {
    fn text(&self) -> String {
        let mut lines: Vec<String> = self.namespaces.iter().map(NamespaceReset::line).collect();
        lines.push(format!(
            "Reset in {}: the lab is as the workspace declares it.",
            ui::format_duration(self.duration)
        ));
        ui::lines(lines)
    }
}

/// `reset --hard`: the cluster recreated; as JSON `up`'s summary.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Recreated(pub up::UpSummary);

impl ui::Report for Recreated {
    fn text(&self) -> String {
        ui::lines([format!(
            "Lab recreated in {}. Context: {}",
            ui::format_duration(self.0.duration),
            self.0.context
        )])
    }
}

/// The namespaces the overlay deploys into.
async fn home_namespaces(env: &LabEnv<'_>) -> Result<Vec<String>> {
    let references = crate::desired::image_references(env.workspace, &env.registry_host)?;
    let docs = crate::desired::desired_objects(
        env.workspace,
        &env.renderer,
        &env.registry_host,
        &references,
    )
    .await?;
    let mut namespaces: Vec<String> = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .filter_map(|d| d["metadata"]["namespace"].as_str().map(str::to_string))
        .collect();
    namespaces.sort();
    namespaces.dedup();
    Ok(namespaces)
}

async fn deployments(env: &LabEnv<'_>, namespace: &str) -> Result<Vec<String>> {
    Ok(env
        .desired(namespace)
        .await?
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_namespace_says_what_became_of_it_then_the_time() {
        use crate::ui::Report as _;
        let report = ResetReport {
            namespaces: vec![
                NamespaceReset {
                    namespace: "dev".into(),
                    ended: None,
                    done: vec![],
                },
                NamespaceReset {
                    namespace: "att01".into(),
                    ended: None,
                    done: vec!["re-applied Deployment att01/orders-api".into()],
                },
            ],
            duration: Duration::from_millis(300),
        };
        assert_eq!(
            report.text(),
            "dev: already as the workspace declares it\n\
             att01: restored\n\
             Reset in 0.3s: the lab is as the workspace declares it.\n"
        );
    }
}
