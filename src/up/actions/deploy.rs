//! Deploy: the overlay rendered and pointed at the pushed images is what the cluster runs.
//! The plan comes from the server itself (server-side apply with dryRun=All against the live
//! objects); `up` applies what would change and waits for the rollouts that are not done.

use std::time::Instant;

use serde_json::Value;

use crate::error::Result;
use crate::images::ImageResult;
use crate::k8s::{self, Applied, ApplyOutcome, ObjectChange, ObjectPlan, Rollout};
use crate::up::actions::build_push::Record;
use crate::up::context::UpContext;
use crate::up::outcome::{ActionReport, Outcome};
use crate::up::row::Row;
use crate::workspace::Renderer;

/// One desired object, what applying it would do, and (Deployments) its rollout now.
#[derive(Debug, Clone)]
pub struct ObjectSeen {
    pub plan: ObjectPlan,
    pub rollout: Option<Rollout>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployStep {
    /// Server-side apply of one object (create or configure).
    Apply {
        kind: String,
        object: String,
        change: ObjectChange,
    },
    /// A GitOps controller manages the object and it differs: applying would fight the
    /// controller, so `up` stops and says how to go through Git.
    Refuse {
        object: String,
        owner: crate::k8s::gitops::GitOpsOwner,
    },
    /// The object is as desired, but its rollout is not complete.
    WaitRollout {
        namespace: String,
        name: String,
        status: String,
    },
}

impl DeployStep {
    pub fn describe(&self) -> String {
        match self {
            DeployStep::Apply {
                object,
                change: ObjectChange::Configure { fields },
                ..
            } => format!("configure {object} ({})", fields.join(", ")),
            DeployStep::Apply { object, .. } => format!("create {object}"),
            DeployStep::Refuse { object, owner } => format!(
                "leave {object} to {} (it differs from the workspace)",
                owner.describe()
            ),
            DeployStep::WaitRollout {
                namespace,
                name,
                status,
            } => format!("wait for the rollout of Deployment {namespace}/{name} ({status})"),
        }
    }

    pub fn done(&self) -> String {
        match self {
            DeployStep::Apply {
                object,
                change: ObjectChange::Configure { .. },
                ..
            } => format!("configured {object}"),
            DeployStep::Apply { object, .. } => format!("created {object}"),
            DeployStep::Refuse { object, .. } => format!("left {object} alone"),
            DeployStep::WaitRollout {
                namespace, name, ..
            } => format!("rollout of Deployment {namespace}/{name} complete"),
        }
    }
}

/// Decides what to do. Pure.
pub fn plan(objects: &[ObjectSeen]) -> Vec<DeployStep> {
    let mut steps = Vec::new();
    for object in objects {
        let plan = &object.plan;
        match &plan.change {
            ObjectChange::Unchanged => {
                if let Some(Rollout::Progressing(status) | Rollout::Failed(status)) =
                    &object.rollout
                {
                    steps.push(DeployStep::WaitRollout {
                        namespace: plan.namespace.clone().unwrap_or_else(|| "default".into()),
                        name: plan.name.clone(),
                        status: status.clone(),
                    });
                }
            }
            change => match plan.live.as_ref().and_then(crate::k8s::gitops::owner) {
                Some(owner) => steps.push(DeployStep::Refuse {
                    object: plan.object(),
                    owner,
                }),
                None => steps.push(DeployStep::Apply {
                    kind: plan.kind.clone(),
                    object: plan.object(),
                    change: change.clone(),
                }),
            },
        }
    }
    steps
}

#[derive(Default)]
pub struct View {
    /// None when the objects cannot be looked at (no overlay, a stopped cluster).
    pub objects: Option<Vec<ObjectSeen>>,
    pub steps: Vec<DeployStep>,
    /// Why nothing is deployed or looked at.
    pub note: Option<String>,
}

/// What the workspace wants deployed: the overlay pointed at `references`.
pub async fn desired(
    ctx: &UpContext,
    renderer: &Renderer,
    references: &[(String, String)],
) -> Result<Vec<Value>> {
    Ok(
        crate::desired::desired_objects(&ctx.workspace, renderer, &ctx.registry_host(), references)
            .await?,
    )
}

/// `client`: None when the cluster does not exist yet (everything would be created) or does
/// not run (`reachable` false: nothing can be said until `up` starts it). `records`: the
/// kustomization edits the images action will make first.
/// `rendered`: the overlay as its files say now (None: no renderer, or no `deploy`).
pub async fn observe(
    ctx: &UpContext,
    rendered: Option<Vec<Value>>,
    references: &[(String, String)],
    records: &[Record],
    client: Option<&kube::Client>,
    reachable: bool,
) -> Result<View> {
    let (Some(_), Some(mut docs)) = (&ctx.workspace.deploy, rendered) else {
        return Ok(View {
            objects: None,
            steps: Vec::new(),
            note: Some("no deploy.overlay in kindlab.yaml".into()),
        });
    };
    // An image about to be recorded is not in the files yet: it is put in below instead of
    // being required of the overlay now.
    let settled: Vec<(String, String)> = references
        .iter()
        .filter(|(name, _)| !records.iter().any(|r| r.image == *name))
        .cloned()
        .collect();
    crate::desired::check_images_used(&ctx.workspace, &docs, &ctx.registry_host(), &settled)?;
    retarget(&mut docs, records);
    let objects = match client {
        Some(client) => look(client, &docs).await?,
        None if reachable => docs.iter().filter_map(not_created).collect(),
        None => {
            return Ok(View {
                objects: None,
                steps: Vec::new(),
                note: Some("the cluster does not run: looked at once `up` starts it".into()),
            });
        }
    };
    let steps = plan(&objects);
    Ok(View {
        objects: Some(objects),
        steps,
        note: None,
    })
}

/// The rendered documents as the overlay will render them once the kustomization names the
/// new references: every container image whose repository is the one an edit replaces
/// points at the new reference (as kustomize's `images:` would render it).
pub fn retarget(docs: &mut [Value], records: &[Record]) {
    use crate::workspace::repository;
    for record in records {
        // What the overlay renders for the image now: the entry's reference, the bare name
        // (no entry yet), or the new repository under an older tag.
        let mut from = vec![
            record.image.clone(),
            repository(&record.reference).to_string(),
        ];
        if let Some(before) = &record.before {
            from.push(repository(before).to_string());
        }
        for doc in docs.iter_mut() {
            for containers in container_lists(doc) {
                for container in containers.iter_mut() {
                    let matches = container["image"]
                        .as_str()
                        .is_some_and(|image| from.iter().any(|f| f == repository(image)));
                    if matches {
                        container["image"] = Value::String(record.reference.clone());
                    }
                }
            }
        }
    }
}

/// The container lists of a workload's pod template (or a Pod's spec).
fn container_lists(doc: &mut Value) -> Vec<&mut Vec<Value>> {
    let spec = if doc["kind"] == "Pod" {
        doc.get_mut("spec")
    } else if doc["kind"] == "CronJob" {
        doc.pointer_mut("/spec/jobTemplate/spec/template/spec")
    } else {
        doc.pointer_mut("/spec/template/spec")
    };
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    spec.iter_mut()
        .filter(|(k, _)| *k == "containers" || *k == "initContainers")
        .filter_map(|(_, v)| v.as_array_mut())
        .collect()
}

/// Plans every document against the cluster and judges the live Deployments.
async fn look(client: &kube::Client, docs: &[Value]) -> Result<Vec<ObjectSeen>> {
    Ok(k8s::plan_objects(client, docs)
        .await?
        .into_iter()
        .map(|plan| {
            let rollout = (plan.kind == "Deployment")
                .then(|| plan.live.clone())
                .flatten()
                .and_then(|live| serde_json::from_value(live).ok())
                .map(|d| k8s::judge(&d));
            ObjectSeen { plan, rollout }
        })
        .collect())
}

/// A document as an object that does not exist yet (the cluster is still to be made).
fn not_created(doc: &Value) -> Option<ObjectSeen> {
    let text = |path: &str| {
        doc.pointer(path)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Some(ObjectSeen {
        plan: ObjectPlan {
            api_version: text("/apiVersion")?,
            kind: text("/kind")?,
            namespace: text("/metadata/namespace"),
            name: text("/metadata/name")?,
            change: ObjectChange::Create,
            live: None,
        },
        rollout: None,
    })
}

impl View {
    pub fn changes(&self) -> Vec<String> {
        self.steps.iter().map(DeployStep::describe).collect()
    }

    pub fn rows(&self) -> Vec<Row> {
        let Some(objects) = &self.objects else {
            return match &self.note {
                Some(note) if note.starts_with("the cluster") => {
                    vec![Row::new(
                        "objects",
                        false,
                        "unknown",
                        note.clone(),
                        Vec::new(),
                    )]
                }
                _ => Vec::new(),
            };
        };
        objects
            .iter()
            .map(|o| {
                let object = o.plan.object();
                let planned: Vec<String> = self
                    .steps
                    .iter()
                    .filter(|s| match s {
                        DeployStep::Apply { object: x, .. }
                        | DeployStep::Refuse { object: x, .. } => *x == object,
                        DeployStep::WaitRollout {
                            namespace, name, ..
                        } => {
                            o.plan.kind == "Deployment"
                                && o.plan.namespace.as_deref() == Some(namespace.as_str())
                                && o.plan.name == *name
                        }
                    })
                    .map(DeployStep::describe)
                    .collect();
                let (ok, state, detail) = match (&o.plan.change, &o.rollout) {
                    (ObjectChange::Create, _) => (false, "missing", String::new()),
                    (ObjectChange::Configure { fields }, _) => (
                        false,
                        "drifted",
                        format!("differs at {}", fields.join(", ")),
                    ),
                    (ObjectChange::Unchanged, Some(Rollout::Complete)) => {
                        (true, "available", images_of(o))
                    }
                    (ObjectChange::Unchanged, Some(Rollout::Progressing(m))) => {
                        (false, "progressing", m.clone())
                    }
                    (ObjectChange::Unchanged, Some(Rollout::Failed(m))) => {
                        (false, "failed", m.clone())
                    }
                    (ObjectChange::Unchanged, None) => (true, "as desired", String::new()),
                };
                Row::new(object, ok, state, detail, planned)
            })
            .collect()
    }
}

fn images_of(object: &ObjectSeen) -> String {
    object
        .plan
        .live
        .as_ref()
        .and_then(|l| l.pointer("/spec/template/spec/containers"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["image"].as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub async fn execute(
    ctx: &UpContext,
    client: &kube::Client,
    renderer: Option<&Renderer>,
    images: &[ImageResult],
    fresh: bool,
) -> Result<(ActionReport, Vec<Applied>)> {
    let started = Instant::now();
    let (Some(deploy), Some(renderer)) = (&ctx.workspace.deploy, renderer) else {
        return Ok((
            ActionReport::new(
                "deploy",
                Outcome::Skipped,
                vec!["no deploy.overlay in kindlab.yaml".into()],
                started.elapsed(),
            ),
            Vec::new(),
        ));
    };
    let step = ctx.ui.step("Deploy");
    let references: Vec<(String, String)> = images
        .iter()
        .map(|i| (i.name.clone(), i.reference.clone()))
        .collect();
    let result = ctx
        .interruptible("deploy", async {
            super::hold(ctx, "deploy").await?;
            step.detail(format!("rendering {}", deploy.overlay.display()));
            let docs: Vec<Value> = desired(ctx, renderer, &references)
                .await?
                .into_iter()
                .filter(|d| !d.is_null())
                .collect();
            step.detail("server-side apply, dry run");
            let objects = look(client, &docs).await?;
            let steps = plan(&objects);
            if let Some(DeployStep::Refuse { object, owner }) =
                steps.iter().find(|s| matches!(s, DeployStep::Refuse { .. }))
            {
                return Err(crate::gitops::refusal(object.clone(), owner).into());
            }
            let changed: Vec<Value> = docs
                .iter()
                .zip(&objects)
                .filter(|(_, o)| o.plan.change != ObjectChange::Unchanged)
                .map(|(d, _)| d.clone())
                .collect();
            let applied = if changed.is_empty() {
                Vec::new()
            } else {
                step.detail("server-side apply");
                k8s::apply_all(client, &changed).await?
            };
            if !applied.is_empty() {
                let waits = rollouts(&applied, &steps);
                let note = match waits.first() {
                    Some((ns, name)) => format!(
                        "{} object(s) applied; the rollout of Deployment {ns}/{name} goes on in the cluster",
                        applied.len()
                    ),
                    None => format!("{} object(s) applied", applied.len()),
                };
                ctx.note_progress(note);
            }
            for (namespace, name) in rollouts(&applied, &steps) {
                step.detail(format!("rollout of {namespace}/{name}"));
                k8s::wait_rollout(client, &namespace, &name, ctx.rollout_timeout(), &crate::diagnose::StuckPodExplainer::default(), |m| {
                    step.detail(format!("{namespace}/{name}: {m}"))
                })
                .await?;
            }
            Ok((objects, steps, applied))
        })
        .await;
    let (objects, steps, applied) = result?;
    let all_created = !objects.is_empty()
        && objects
            .iter()
            .all(|o| o.plan.change == ObjectChange::Create);
    let (outcome, details) = if fresh || all_created {
        (
            Outcome::Created,
            vec![format!(
                "{} objects applied, rollout complete",
                objects.len()
            )],
        )
    } else if steps.is_empty() {
        (
            Outcome::Reused,
            vec![format!(
                "{} objects unchanged, rollout complete",
                objects.len()
            )],
        )
    } else {
        (
            Outcome::Repaired,
            steps.iter().map(DeployStep::done).collect(),
        )
    };
    let report = ActionReport::new("deploy", outcome, details, started.elapsed())
        .with_plan(steps.iter().map(DeployStep::describe).collect());
    step.ok(report.summary());
    // Report every object, applied now or already as desired.
    let applied = objects
        .iter()
        .map(|o| {
            applied
                .iter()
                .find(|a| {
                    a.kind == o.plan.kind
                        && a.name == o.plan.name
                        && a.namespace == o.plan.namespace
                })
                .cloned()
                .unwrap_or_else(|| Applied {
                    api_version: o.plan.api_version.clone(),
                    kind: o.plan.kind.clone(),
                    namespace: o.plan.namespace.clone(),
                    name: o.plan.name.clone(),
                    outcome: ApplyOutcome::Unchanged,
                })
        })
        .collect();
    Ok((report, applied))
}

/// The Deployments to wait for: those just applied, and those whose rollout was not done.
fn rollouts(applied: &[Applied], steps: &[DeployStep]) -> Vec<(String, String)> {
    let mut waits: Vec<(String, String)> = applied
        .iter()
        .filter(|a| a.kind == "Deployment")
        .map(|a| {
            (
                a.namespace.clone().unwrap_or_else(|| "default".into()),
                a.name.clone(),
            )
        })
        .collect();
    for step in steps {
        if let DeployStep::WaitRollout {
            namespace, name, ..
        } = step
        {
            let wait = (namespace.clone(), name.clone());
            if !waits.contains(&wait) {
                waits.push(wait);
            }
        }
    }
    waits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, change: ObjectChange, rollout: Option<Rollout>) -> ObjectSeen {
        ObjectSeen {
            plan: ObjectPlan {
                api_version: "v1".into(),
                kind: kind.into(),
                namespace: Some("dev".into()),
                name: "web".into(),
                change,
                live: None,
            },
            rollout,
        }
    }

    #[test]
    fn an_object_argo_cd_manages_is_left_to_it() {
        let mut managed = object(
            "Deployment",
            ObjectChange::Configure {
                fields: vec!["spec.template".into()],
            },
            None,
        );
        managed.plan.live = Some(serde_json::json!({"metadata": {"annotations": {
            "argocd.argoproj.io/tracking-id": "apps-dev:apps/Deployment:dev/web"}}}));
        let steps = plan(&[managed]);
        assert!(
            matches!(&steps[..], [DeployStep::Refuse { object, .. }] if object == "Deployment dev/web"),
            "{steps:?}"
        );
        assert!(
            steps[0]
                .describe()
                .contains("Argo CD (Application apps-dev)")
        );
        // As it is, a managed object needs nothing and is not refused.
        let mut same = object(
            "Deployment",
            ObjectChange::Unchanged,
            Some(Rollout::Complete),
        );
        same.plan.live = Some(serde_json::json!({"metadata": {"labels": {
            "kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}}));
        assert!(plan(&[same]).is_empty());
    }

    #[test]
    fn a_healthy_deployment_needs_nothing() {
        assert!(
            plan(&[
                object("Service", ObjectChange::Unchanged, None),
                object(
                    "Deployment",
                    ObjectChange::Unchanged,
                    Some(Rollout::Complete)
                ),
            ])
            .is_empty()
        );
    }

    #[test]
    fn drift_and_missing_objects_are_applied_and_slow_rollouts_awaited() {
        let steps = plan(&[
            object("Service", ObjectChange::Create, None),
            object(
                "Deployment",
                ObjectChange::Configure {
                    fields: vec!["spec.replicas".into()],
                },
                Some(Rollout::Complete),
            ),
            object(
                "Deployment",
                ObjectChange::Unchanged,
                Some(Rollout::Progressing(
                    "0 of 1 updated replicas are available".into(),
                )),
            ),
        ]);
        assert_eq!(
            steps.iter().map(DeployStep::describe).collect::<Vec<_>>(),
            [
                "create Service dev/web",
                "configure Deployment dev/web (spec.replicas)",
                "wait for the rollout of Deployment dev/web (0 of 1 updated replicas are available)",
            ]
        );
        assert_eq!(steps[1].done(), "configured Deployment dev/web");
    }

    #[test]
    fn a_recorded_tag_is_what_the_plan_deploys() {
        let mut docs = vec![serde_json::json!({
            "kind": "Deployment",
            "spec": {"template": {"spec": {
                "containers": [{"name": "api", "image": "localhost:5001/orders-api:old"},
                               {"name": "side", "image": "busybox:1.36"}]}}}
        })];
        retarget(
            &mut docs,
            &[Record {
                image: "orders-api".into(),
                before: Some("localhost:5001/orders-api:old".into()),
                reference: "localhost:5001/orders-api:new".into(),
                file: "kustomization.yaml".into(),
            }],
        );
        assert_eq!(
            docs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
            "localhost:5001/orders-api:new"
        );
        assert_eq!(
            docs[0]["spec"]["template"]["spec"]["containers"][1]["image"],
            "busybox:1.36"
        );
    }

    #[test]
    fn applied_deployments_and_unfinished_rollouts_are_awaited_once() {
        let applied = [Applied {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("dev".into()),
            name: "web".into(),
            outcome: ApplyOutcome::Configured,
        }];
        let steps = [DeployStep::WaitRollout {
            namespace: "dev".into(),
            name: "web".into(),
            status: "x".into(),
        }];
        assert_eq!(
            rollouts(&applied, &steps),
            vec![("dev".to_string(), "web".to_string())]
        );
    }
}
