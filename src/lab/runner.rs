//! The generic lab runner: baseline, break, detect, diagnose, fix, verify. Every step is
//! driven by the lab's data; only the kinds of breakage and fix are code.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use super::spec::{Breakage, Fix, LabError, LabSpec};
use super::{Finding, classify};
use crate::error::{Error, Result};
use crate::k8s::{self, K8sError, Rollout};
use crate::registry::RegistryClient;
use crate::report::{LabReport, Timeline};
use crate::ui::Ui;
use crate::workspace::{Renderer, Workspace, repository};

/// The field manager of the lab's breakage, so the fix's server-side apply visibly takes the
/// field back from it.
const BREAK_MANAGER: &str = "kindlab-lab";

pub struct LabContext<'a> {
    pub workspace: &'a Workspace,
    pub client: Client,
    pub renderer: Renderer,
    /// Where the workspace's images are (`localhost:5001`).
    pub registry_host: String,
    pub ui: &'a Ui,
}

pub async fn run(ctx: &LabContext<'_>, lab: &LabSpec) -> Result<LabReport> {
    let target = &lab.target;
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &target.namespace);
    let mut timeline = Timeline::new(Instant::now());

    // Baseline: the lab starts from a healthy rollout.
    let step = ctx.ui.step(format!(
        "Baseline: Deployment {}/{}",
        target.namespace, target.name
    ));
    let not_ready = |why: String| LabError::NotReady {
        what: format!("Deployment {}/{}", target.namespace, target.name),
        why,
    };
    let deployment = deployments
        .get_opt(&target.name)
        .await
        .map_err(|source| K8sError::Api {
            action: format!("read Deployment {}/{}", target.namespace, target.name),
            source,
        })?
        .ok_or_else(|| not_ready("it does not exist".into()))?;
    if let Rollout::Progressing(m) | Rollout::Failed(m) = k8s::judge(&deployment) {
        return Err(not_ready(m).into());
    }
    let healthy_image = container_image(&deployment, &target.container)
        .ok_or_else(|| not_ready(format!("it has no container {:?}", target.container)))?;
    step.ok(format!("healthy, running {healthy_image}"));
    timeline.mark(
        "baseline",
        format!("healthy, running {healthy_image}"),
        Instant::now(),
    );

    // Break.
    let step = ctx.ui.step("Break");
    let broken_image = match &lab.breakage {
        Breakage::SetImageTag(tag) => format!("{}:{tag}", repository(&healthy_image)),
    };
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [
        {"name": target.container, "image": broken_image}
    ]}}}});
    deployments
        .patch(
            &target.name,
            &PatchParams {
                field_manager: Some(BREAK_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Strategic(&patch),
        )
        .await
        .map_err(|source| K8sError::Api {
            action: format!("patch Deployment {}/{}", target.namespace, target.name),
            source,
        })?;
    let broke_at = Instant::now();
    timeline.mark("break", format!("image set to {broken_image}"), broke_at);
    timeline.set_zero(broke_at);
    step.ok(format!("image set to {broken_image}"));

    // Detect: watch the pods until every expected waiting reason has been seen.
    let step = ctx.ui.step(format!(
        "Detect {}",
        lab.expect.waiting_reasons.join(" -> ")
    ));
    let selector = match_labels(&deployment);
    let (observed, failing_pod) = match tokio::time::timeout(
        lab.expect.within,
        watch_waiting_reasons(ctx, lab, &selector, &broken_image, |reason, pod| {
            step.detail(format!("{reason} on {pod}"));
        }),
    )
    .await
    {
        Ok(Ok(seen)) => seen,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            step.fail("");
            return Err(LabError::NotObserved {
                expected: lab.expect.waiting_reasons.join(", "),
                within: lab.expect.within,
                seen: "not all of them".into(),
            }
            .into());
        }
    };
    for (reason, at) in &observed {
        timeline.mark(reason.clone(), format!("pod {failing_pod}"), *at);
    }
    step.ok(format!("pod {failing_pod}"));

    // Diagnose: the kubelet's events and the registry's list of tags.
    let step = ctx.ui.step("Diagnose");
    let events = if lab.diagnose.events {
        warning_events(ctx, &target.namespace, &failing_pod).await?
    } else {
        Vec::new()
    };
    let tags = if lab.diagnose.registry_tags {
        registry_tags(ctx, &broken_image).await
    } else {
        None
    };
    let finding: Finding = classify(&broken_image, &events, tags.as_deref());
    timeline.mark("diagnose", finding.summary.clone(), Instant::now());
    step.ok(&finding.summary);

    // Fix, the GitOps way: the workspace's desired state, applied again.
    let step = ctx.ui.step("Fix: re-apply the workspace's desired state");
    match lab.fix {
        Fix::Reapply => {
            let references = crate::desired::image_references(ctx.workspace, &ctx.registry_host)?;
            let docs = crate::desired::desired_objects(
                ctx.workspace,
                &ctx.renderer,
                &ctx.registry_host,
                &references,
            )
            .await?;
            let applied = k8s::apply_all(&ctx.client, &docs).await?;
            timeline.mark(
                "fix",
                format!("server-side apply of {} objects", applied.len()),
                Instant::now(),
            );
            step.ok(format!("{} objects applied", applied.len()));
        }
    }

    // Verify.
    let step = ctx.ui.step(format!(
        "Verify rollout of {}/{}",
        target.namespace, target.name
    ));
    let verified = k8s::wait_rollout(
        &ctx.client,
        &target.namespace,
        &target.name,
        lab.verify.within,
        |m| step.detail(m),
    )
    .await;
    if let Err(e) = verified {
        step.fail("");
        return Err(e.into());
    }
    timeline.mark("verify", "rollout complete", Instant::now());
    step.ok("rollout complete");

    let first_reason = lab
        .expect
        .waiting_reasons
        .first()
        .cloned()
        .unwrap_or_default();
    Ok(LabReport {
        lab: lab.name.clone(),
        title: lab.title.clone(),
        target: format!("Deployment {}/{}", target.namespace, target.name),
        healthy_image,
        broken_image,
        observed: observed.iter().map(|(r, _)| r.clone()).collect(),
        finding,
        time_to_detect_s: timeline.since_zero(&first_reason).unwrap_or_default(),
        time_to_recover_s: timeline.since_zero("verify").unwrap_or_default(),
        phases: timeline.phases(),
    })
}

fn container_image(deployment: &Deployment, container: &str) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == container)?
        .image
        .clone()
}

fn match_labels(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Watches the target's pods and records when each expected waiting reason is first seen
/// on a pod running `image`. Returns them in the order seen, and the pod.
async fn watch_waiting_reasons(
    ctx: &LabContext<'_>,
    lab: &LabSpec,
    selector: &str,
    image: &str,
    mut on_seen: impl FnMut(&str, &str),
) -> Result<(Vec<(String, Instant)>, String)> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &lab.target.namespace);
    let config = watcher::Config::default().labels(selector);
    let mut stream = std::pin::pin!(watcher(pods, config).default_backoff().applied_objects());
    let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut failing_pod = String::new();
    while let Some(pod) = stream.next().await {
        let pod = match pod {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "pod watch interrupted, resuming");
                continue;
            }
        };
        let Some(statuses) = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
        else {
            continue;
        };
        for status in statuses
            .iter()
            .filter(|s| s.name == lab.target.container && s.image == image)
        {
            let reason = status
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone());
            if let Some(reason) = reason
                && lab.expect.waiting_reasons.contains(&reason)
                && !seen.contains_key(&reason)
            {
                let name = pod.metadata.name.clone().unwrap_or_default();
                on_seen(&reason, &name);
                seen.insert(reason.clone(), Instant::now());
                order.push(reason);
                failing_pod = name;
            }
        }
        if lab
            .expect
            .waiting_reasons
            .iter()
            .all(|r| seen.contains_key(r))
        {
            let observed = order
                .into_iter()
                .filter_map(|r| seen.get(&r).map(|at| (r, *at)))
                .collect();
            return Ok((observed, failing_pod));
        }
    }
    Err(Error::from(LabError::NotObserved {
        expected: lab.expect.waiting_reasons.join(", "),
        within: lab.expect.within,
        seen: order.join(", "),
    }))
}

async fn warning_events(ctx: &LabContext<'_>, namespace: &str, pod: &str) -> Result<Vec<String>> {
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={pod},type=Warning"));
    let list = events.list(&params).await.map_err(|source| K8sError::Api {
        action: format!("list the events of pod {namespace}/{pod}"),
        source,
    })?;
    Ok(list.items.into_iter().filter_map(|e| e.message).collect())
}

/// The tags the registry holds for the broken image's repository, when that repository is
/// in the workspace's registry; None when it is elsewhere or does not answer.
async fn registry_tags(ctx: &LabContext<'_>, image: &str) -> Option<Vec<String>> {
    let repo = repository(image);
    let name = repo.strip_prefix(&format!("{}/", ctx.registry_host))?;
    RegistryClient::new(&ctx.registry_host)
        .tags(name)
        .await
        .ok()
}
