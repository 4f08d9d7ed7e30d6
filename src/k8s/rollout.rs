//! Waiting for a Deployment to roll out, judged the way `kubectl rollout status` judges it,
//! and explaining a stuck rollout by the pod that is stuck.

use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::core::Selector;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};

use super::error::{Explanation, K8sError, StuckRollout};

/// Looking at the stuck pod runs after the wait has already failed; it must not hold the
/// user much longer.
const STUCK_POD_TIMEOUT: Duration = Duration::from_secs(15);

/// Says why a pod is not ready, in the user's terms. This module judges rollouts; explaining
/// a pod is `diagnose`'s job, which the caller hands in, so a rollout error can carry both.
pub trait ExplainPod: Sync {
    fn explain(
        &self,
        client: &kube::Client,
        pod: &Pod,
    ) -> impl Future<Output = Option<Explanation>> + Send;
}

/// Container waiting reasons that only say "not there yet"; any other reason says more.
const BENIGN_WAITING: &[&str] = &["ContainerCreating", "PodInitializing"];

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Complete,
    /// Still going; the text says what it waits for.
    Progressing(String),
    /// The controller gave up (progress deadline exceeded).
    Failed(String),
}

/// The `kubectl rollout status` judgement of one Deployment.
///
/// kube-runtime's `is_deployment_completed` ignores observedGeneration, so right after an
/// apply it would report the previous rollout's completion; this checks it first.
pub fn judge(deployment: &Deployment) -> Rollout {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return Rollout::Progressing(
            "waiting for the deployment spec update to be observed".into(),
        );
    }
    let deadline_exceeded = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
    if deadline_exceeded {
        return Rollout::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    // The API server defaults spec.replicas to 1; a Deployment built by hand may lack it.
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        return Rollout::Progressing(format!(
            "{updated} out of {desired} new replicas have been updated"
        ));
    }
    if total > updated {
        return Rollout::Progressing(format!(
            "{} old replicas are pending termination",
            total - updated
        ));
    }
    if available < updated {
        return Rollout::Progressing(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Rollout::Complete
}

/// Waits, with a watch on this one Deployment, until [`judge`] says it is complete (`Ok`) or
/// failed ([`K8sError::RolloutFailed`]), or until `timeout` passes ([`K8sError::RolloutTimeout`]).
/// Failures carry what was seen of the stuck pod ([`StuckRollout`]), explained by `explain`.
/// `on_progress` receives each new progress message.
pub async fn wait_rollout(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
    explain: &impl ExplainPod,
    mut on_progress: impl FnMut(&str),
) -> Result<(), K8sError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    // The backoff paces reconnects after transient errors; the watcher resumes on its own.
    let mut events = pin!(watcher(api, config).default_backoff());

    let mut latest: Option<Deployment> = None;
    let mut last_status = String::new();
    let mut listed = false;
    let mut last_error: Option<watcher::Error> = None;
    let not_found = || K8sError::DeploymentNotFound {
        namespace: namespace.to_string(),
        name: name.to_string(),
    };

    // The watcher's stream never ends by itself, so leaving this loop means time is up.
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, events.next()).await {
        let event = match item {
            Ok(event) => {
                last_error = None;
                event
            }
            Err(err) if is_fatal_watch_error(&err) => {
                return Err(K8sError::Watch {
                    what: format!("Deployment {namespace}/{name}"),
                    source: err,
                });
            }
            Err(err) => {
                tracing::debug!(error = %err, "deployment watch interrupted, resuming");
                last_error = Some(err);
                continue;
            }
        };
        let deployment = match event {
            watcher::Event::Init => {
                listed = false;
                continue;
            }
            watcher::Event::InitApply(deployment) => {
                listed = true;
                deployment
            }
            watcher::Event::InitDone => {
                if listed {
                    continue;
                }
                return Err(not_found());
            }
            watcher::Event::Apply(deployment) => deployment,
            watcher::Event::Delete(_) => return Err(not_found()),
        };
        match judge(&deployment) {
            Rollout::Complete => return Ok(()),
            Rollout::Progressing(message) => {
                if message != last_status {
                    on_progress(&message);
                    last_status = message;
                }
            }
            Rollout::Failed(message) => {
                let stuck = look_at_stuck_pod(client, namespace, &deployment, explain).await;
                return Err(K8sError::RolloutFailed {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    message,
                    stuck: stuck.map(Box::new),
                });
            }
        }
        latest = Some(deployment);
    }

    // Never having seen the Deployment because the watch kept failing is a watch problem,
    // not a slow rollout.
    if latest.is_none()
        && let Some(source) = last_error
    {
        return Err(K8sError::Watch {
            what: format!("Deployment {namespace}/{name}"),
            source,
        });
    }
    let stuck = match &latest {
        Some(deployment) => look_at_stuck_pod(client, namespace, deployment, explain).await,
        None => None,
    };
    if last_status.is_empty() {
        last_status = "no status observed".into();
    }
    Err(K8sError::RolloutTimeout {
        namespace: namespace.to_string(),
        name: name.to_string(),
        waited: timeout,
        last_status,
        stuck: stuck.map(Box::new),
    })
}

/// Errors retrying cannot fix: the request itself is refused or malformed.
pub fn is_fatal_watch_error(err: &watcher::Error) -> bool {
    let status = match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::WatchError(status) => status,
        _ => return false,
    };
    matches!(status.code, 400 | 401 | 403 | 404)
}

/// Best effort: a failed lookup here must not hide the rollout error it explains.
async fn look_at_stuck_pod(
    client: &kube::Client,
    namespace: &str,
    deployment: &Deployment,
    explain: &impl ExplainPod,
) -> Option<StuckRollout> {
    match tokio::time::timeout(
        STUCK_POD_TIMEOUT,
        stuck_pod_seen(client, namespace, deployment, explain),
    )
    .await
    {
        Ok(stuck) => stuck,
        Err(_elapsed) => {
            tracing::debug!("looking at the stuck rollout's pod timed out");
            replica_failure(deployment)
        }
    }
}

async fn stuck_pod_seen(
    client: &kube::Client,
    namespace: &str,
    deployment: &Deployment,
    explain: &impl ExplainPod,
) -> Option<StuckRollout> {
    let Some(pod) = stuck_pod(client, namespace, deployment).await else {
        return replica_failure(deployment);
    };
    let (reason, message) = pod_not_ready_reason(&pod)?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={pod_name}"));
    let last_warning = match events.list(&params).await {
        Ok(list) => newest_warning(&list.items, &pod),
        Err(err) => {
            tracing::debug!(error = %err, pod = %pod_name, "cannot list events of the stuck pod");
            None
        }
    };
    let explanation = explain.explain(client, &pod).await;
    Some(StuckRollout {
        pod: Some(pod_name),
        reason,
        message,
        last_warning,
        explanation,
    })
}

async fn stuck_pod(client: &kube::Client, namespace: &str, deployment: &Deployment) -> Option<Pod> {
    let label_selector = deployment.spec.as_ref()?.selector.clone();
    let selector = match Selector::try_from(label_selector) {
        Ok(selector) => selector,
        Err(err) => {
            tracing::debug!(error = %err, "deployment selector cannot be turned into a label selector");
            return None;
        }
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match pods
        .list(&ListParams::default().labels_from(&selector))
        .await
    {
        Ok(list) => pick_stuck_pod(&list.items).cloned(),
        Err(err) => {
            tracing::debug!(error = %err, "cannot list the deployment's pods");
            None
        }
    }
}

/// The pod to blame: not being deleted, not ready, and the newest such (a rollout's new pods
/// are the ones that get stuck; old ones were ready before).
fn pick_stuck_pod(pods: &[Pod]) -> Option<&Pod> {
    pods.iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| pod_not_ready_reason(pod).is_some())
        .max_by_key(|pod| {
            (
                pod.metadata.creation_timestamp.clone(),
                pod.metadata.name.clone(),
            )
        })
}

/// When no pod exists, the Deployment's ReplicaFailure condition says why (quota, admission).
fn replica_failure(deployment: &Deployment) -> Option<StuckRollout> {
    let conditions = deployment.status.as_ref()?.conditions.as_ref()?;
    let condition = conditions
        .iter()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")?;
    Some(StuckRollout {
        pod: None,
        reason: condition
            .reason
            .clone()
            .unwrap_or_else(|| "ReplicaFailure".into()),
        message: condition.message.clone().unwrap_or_default(),
        last_warning: None,
        explanation: None,
    })
}

/// The message of the newest Warning event about `pod`.
fn newest_warning(events: &[Event], pod: &Pod) -> Option<String> {
    let pod_name = pod.metadata.name.as_deref()?;
    let pod_uid = pod.metadata.uid.as_deref();
    events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter(|e| {
            let involved = &e.involved_object;
            involved.name.as_deref() == Some(pod_name)
                && involved.kind.as_deref().is_none_or(|kind| kind == "Pod")
                // A pod recreated under the same name is a different pod.
                && match (involved.uid.as_deref(), pod_uid) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        })
        .max_by_key(|e| event_time(e))
        .and_then(|e| {
            e.message
                .clone()
                .filter(|m| !m.is_empty())
                .or_else(|| e.reason.clone())
        })
}

/// When an event last happened; which field says so depends on who recorded it.
pub fn event_time(event: &Event) -> Option<Timestamp> {
    event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The most telling reason a pod is not ready, as (reason, message); `None` for a ready pod.
///
/// Order: a pod-level failure (eviction); a container waiting for a real reason
/// (ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError, ...); a terminated
/// container; an unschedulable pod; a container that is merely being created; the Ready
/// condition's own reason; finally the phase.
pub fn pod_not_ready_reason(pod: &Pod) -> Option<(String, String)> {
    let Some(status) = &pod.status else {
        return Some(("Pending".into(), "the pod has no status yet".into()));
    };
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let condition = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
    if condition("Ready").is_some_and(|c| c.status == "True") {
        return None;
    }
    let message_of = |m: &Option<String>| m.clone().unwrap_or_default();

    if status.phase.as_deref() == Some("Failed")
        && let Some(reason) = status.reason.as_ref().filter(|r| !r.is_empty())
    {
        return Some((reason.clone(), message_of(&status.message)));
    }

    let init = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    let regular = status.container_statuses.as_deref().unwrap_or_default();
    let containers = || {
        init.iter()
            .map(|c| (c, true))
            .chain(regular.iter().map(|c| (c, false)))
    };

    for (container, _) in containers() {
        if let Some((reason, message)) = waiting(container)
            && !BENIGN_WAITING.contains(&reason.as_str())
        {
            let message = match (reason.as_str(), last_exit(container)) {
                ("CrashLoopBackOff", Some(exit)) if message.is_empty() => exit,
                ("CrashLoopBackOff", Some(exit)) => format!("{message}; {exit}"),
                _ => message,
            };
            return Some((reason, message));
        }
    }

    for (container, is_init) in containers() {
        let Some(terminated) = container.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
            continue;
        };
        // An init container that finished cleanly did its job.
        if is_init && terminated.exit_code == 0 {
            continue;
        }
        let reason = terminated
            .reason
            .clone()
            .unwrap_or_else(|| "Terminated".into());
        let message = terminated
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                format!(
                    "container {} exited with code {}",
                    container.name, terminated.exit_code
                )
            });
        return Some((reason, message));
    }

    if let Some(scheduled) = condition("PodScheduled").filter(|c| c.status == "False") {
        return Some((
            scheduled
                .reason
                .clone()
                .unwrap_or_else(|| "Unschedulable".into()),
            message_of(&scheduled.message),
        ));
    }

    for (container, _) in containers() {
        if let Some(found) = waiting(container) {
            return Some(found);
        }
    }

    if let Some(ready) = condition("Ready") {
        return Some((
            ready.reason.clone().unwrap_or_else(|| "NotReady".into()),
            message_of(&ready.message),
        ));
    }
    Some((
        status.phase.clone().unwrap_or_else(|| "Pending".into()),
        message_of(&status.message),
    ))
}

fn waiting(container: &ContainerStatus) -> Option<(String, String)> {
    let waiting = container.state.as_ref()?.waiting.as_ref()?;
    Some((
        waiting
            .reason
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "Waiting".into()),
        waiting.message.clone().unwrap_or_default(),
    ))
}

/// How a crash-looping container last ended, e.g. "last exit: OOMKilled (code 137)".
fn last_exit(container: &ContainerStatus) -> Option<String> {
    let terminated = container.last_state.as_ref()?.terminated.as_ref()?;
    let reason = terminated.reason.as_deref().unwrap_or("Error");
    Some(format!(
        "last exit: {reason} (code {})",
        terminated.exit_code
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};

    use super::*;

    fn deployment(value: Value) -> Deployment {
        serde_json::from_value(value).unwrap()
    }

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn event(value: Value) -> Event {
        serde_json::from_value(value).unwrap()
    }

    /// A Deployment at generation 2 whose status the test fills in.
    fn web(replicas: Option<i32>, status: Value) -> Deployment {
        let mut spec = json!({
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web"}]}}
        });
        if let Some(replicas) = replicas {
            spec["replicas"] = json!(replicas);
        }
        deployment(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "generation": 2},
            "spec": spec,
            "status": status
        }))
    }

    fn progressing(message: &str) -> Rollout {
        Rollout::Progressing(message.into())
    }

    #[test]
    fn judge_waits_for_the_new_generation_to_be_observed() {
        // The old generation looks complete; kube-runtime's check would stop here too early.
        let d = web(
            Some(1),
            json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
        );
        assert_eq!(
            judge(&d),
            progressing("waiting for the deployment spec update to be observed")
        );
    }

    #[test]
    fn judge_without_status_is_waiting_for_observation() {
        let d = deployment(json!({
            "metadata": {"name": "web", "generation": 1},
            "spec": {"selector": {}, "template": {}}
        }));
        assert_eq!(
            judge(&d),
            progressing("waiting for the deployment spec update to be observed")
        );
    }

    #[test]
    fn judge_reports_progress_deadline_exceeded() {
        let d = web(
            Some(1),
            json!({
                "observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                     "message": "ReplicaSet \"web-abc\" has timed out progressing."}
                ]
            }),
        );
        assert_eq!(
            judge(&d),
            Rollout::Failed("deployment \"web\" exceeded its progress deadline".into())
        );
    }

    #[test]
    fn judge_ignores_deadline_of_an_unobserved_generation() {
        // A fix was just applied: the old failure no longer counts.
        let d = web(
            Some(1),
            json!({
                "observedGeneration": 1,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
            }),
        );
        assert_eq!(
            judge(&d),
            progressing("waiting for the deployment spec update to be observed")
        );
    }

    #[test]
    fn judge_counts_updated_replicas() {
        let d = web(
            Some(3),
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 3}),
        );
        assert_eq!(
            judge(&d),
            progressing("1 out of 3 new replicas have been updated")
        );
    }

    #[test]
    fn judge_defaults_desired_replicas_to_one() {
        let d = web(None, json!({"observedGeneration": 2}));
        assert_eq!(
            judge(&d),
            progressing("0 out of 1 new replicas have been updated")
        );
    }

    #[test]
    fn judge_waits_for_old_replicas_to_terminate() {
        let d = web(
            Some(2),
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(
            judge(&d),
            progressing("1 old replicas are pending termination")
        );
    }

    #[test]
    fn judge_waits_for_updated_replicas_to_be_available() {
        let d = web(
            Some(2),
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}),
        );
        assert_eq!(
            judge(&d),
            progressing("1 of 2 updated replicas are available")
        );
        let none_available = web(
            Some(1),
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1}),
        );
        assert_eq!(
            judge(&none_available),
            progressing("0 of 1 updated replicas are available")
        );
    }

    #[test]
    fn judge_complete() {
        let d = web(
            Some(2),
            json!({
                "observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]
            }),
        );
        assert_eq!(judge(&d), Rollout::Complete);
    }

    #[test]
    fn judge_scaled_to_zero_is_complete() {
        let d = web(Some(0), json!({"observedGeneration": 2}));
        assert_eq!(judge(&d), Rollout::Complete);
    }

    fn pod_with(name: &str, created: &str, status: Value) -> Pod {
        pod(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                         "creationTimestamp": created},
            "spec": {"containers": [{"name": "web", "image": "localhost:5001/web:dev"}]},
            "status": status
        }))
    }

    fn not_ready(containers: Value) -> Value {
        json!({
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                 "message": "containers with unready status: [web]"}
            ],
            "containerStatuses": containers
        })
    }

    fn waiting_container(reason: &str, message: &str) -> Value {
        json!([{
            "name": "web", "image": "localhost:5001/web:dev", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}
        }])
    }

    fn reason_of(pod: &Pod) -> Option<(String, String)> {
        pod_not_ready_reason(pod)
    }

    fn pair(reason: &str, message: &str) -> Option<(String, String)> {
        Some((reason.into(), message.into()))
    }

    #[test]
    fn err_image_pull() {
        let message = "failed to pull and unpack image \"localhost:5001/web:dev\": not found";
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            not_ready(waiting_container("ErrImagePull", message)),
        );
        assert_eq!(reason_of(&p), pair("ErrImagePull", message));
    }

    #[test]
    fn image_pull_back_off() {
        let message = "Back-off pulling image \"localhost:5001/web:dev\"";
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            not_ready(waiting_container("ImagePullBackOff", message)),
        );
        assert_eq!(reason_of(&p), pair("ImagePullBackOff", message));
    }

    #[test]
    fn crash_loop_back_off_mentions_last_exit() {
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            not_ready(json!([{
                "name": "web", "image": "web", "imageID": "", "ready": false, "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                                      "message": "back-off 1m20s restarting failed container=web pod=web-1_default(x)"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
            }])),
        );
        assert_eq!(
            reason_of(&p),
            pair(
                "CrashLoopBackOff",
                "back-off 1m20s restarting failed container=web pod=web-1_default(x); last exit: OOMKilled (code 137)"
            )
        );
    }

    #[test]
    fn pending_unschedulable() {
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            json!({
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                "message": "0/1 nodes are available: 1 Insufficient memory."}]
            }),
        );
        assert_eq!(
            reason_of(&p),
            pair(
                "Unschedulable",
                "0/1 nodes are available: 1 Insufficient memory."
            )
        );
    }

    #[test]
    fn ready_pod_has_no_reason() {
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            json!({
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "web", "image": "web", "imageID": "", "ready": true,
                                       "restartCount": 0, "state": {"running": {}}}]
            }),
        );
        assert_eq!(reason_of(&p), None);
    }

    #[test]
    fn telling_reason_beats_container_creating() {
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            not_ready(json!([
                {"name": "sidecar", "image": "s", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "ContainerCreating"}}},
                {"name": "web", "image": "w", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "CreateContainerConfigError",
                                       "message": "configmap \"web-config\" not found"}}}
            ])),
        );
        assert_eq!(
            reason_of(&p),
            pair(
                "CreateContainerConfigError",
                "configmap \"web-config\" not found"
            )
        );
    }

    #[test]
    fn container_creating_when_nothing_else() {
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            not_ready(waiting_container("ContainerCreating", "")),
        );
        assert_eq!(reason_of(&p), pair("ContainerCreating", ""));
    }

    #[test]
    fn terminated_container_without_message_names_exit_code() {
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            not_ready(
                json!([{"name": "web", "image": "w", "imageID": "", "ready": false, "restartCount": 1,
                              "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]),
            ),
        );
        assert_eq!(
            reason_of(&p),
            pair("Error", "container web exited with code 2")
        );
    }

    #[test]
    fn failed_init_container_is_reported_but_finished_one_is_not() {
        let mut status = not_ready(waiting_container("PodInitializing", ""));
        status["initContainerStatuses"] = json!([
            {"name": "ok", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        ]);
        let p = pod_with("web-1", "2025-01-01T00:00:00Z", status.clone());
        assert_eq!(reason_of(&p), pair("PodInitializing", ""));

        status["initContainerStatuses"] = json!([
            {"name": "migrate", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"terminated": {"exitCode": 1, "reason": "Error", "message": "db unreachable"}}}
        ]);
        let p = pod_with("web-1", "2025-01-01T00:00:00Z", status);
        assert_eq!(reason_of(&p), pair("Error", "db unreachable"));
    }

    #[test]
    fn running_but_unready_falls_back_to_ready_condition() {
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            not_ready(
                json!([{"name": "web", "image": "w", "imageID": "", "ready": false,
                              "restartCount": 0, "state": {"running": {}}}]),
            ),
        );
        assert_eq!(
            reason_of(&p),
            pair(
                "ContainersNotReady",
                "containers with unready status: [web]"
            )
        );
    }

    #[test]
    fn evicted_pod_reports_pod_reason() {
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}),
        );
        assert_eq!(
            reason_of(&p),
            pair("Evicted", "The node was low on resource: memory.")
        );
    }

    #[test]
    fn pod_without_status_is_pending() {
        let p = pod(json!({"metadata": {"name": "web-1"}}));
        assert_eq!(reason_of(&p).map(|(r, _)| r).as_deref(), Some("Pending"));
    }

    #[test]
    fn picks_newest_not_ready_pod_that_is_not_terminating() {
        let ready =
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
        let pull = not_ready(waiting_container("ImagePullBackOff", "Back-off"));
        let mut terminating = pod_with("web-old-gone", "2025-01-01T00:09:00Z", pull.clone());
        terminating.metadata.deletion_timestamp = terminating.metadata.creation_timestamp.clone();
        let pods = vec![
            pod_with("web-old-ready", "2025-01-01T00:00:00Z", ready),
            pod_with("web-new-1", "2025-01-01T00:05:00Z", pull.clone()),
            pod_with("web-new-2", "2025-01-01T00:06:00Z", pull),
            terminating,
        ];
        let picked = pick_stuck_pod(&pods).and_then(|p| p.metadata.name.as_deref());
        assert_eq!(picked, Some("web-new-2"));
        assert!(pick_stuck_pod(&pods[..1]).is_none());
    }

    #[test]
    fn newest_warning_for_this_pod() {
        let p = pod_with(
            "web-1",
            "2025-01-01T00:00:00Z",
            not_ready(waiting_container("ImagePullBackOff", "")),
        );
        let events = vec![
            event(json!({
                "metadata": {"name": "e1"}, "type": "Warning", "reason": "Failed",
                "message": "Failed to pull image \"web:dev\": older",
                "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "uid-web-1"},
                "lastTimestamp": "2025-01-01T00:01:00Z"
            })),
            event(json!({
                "metadata": {"name": "e2"}, "type": "Warning", "reason": "Failed",
                "message": "Error: ImagePullBackOff",
                "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "uid-web-1"},
                "lastTimestamp": "2025-01-01T00:03:00Z"
            })),
            event(json!({
                "metadata": {"name": "e3"}, "type": "Normal", "reason": "BackOff",
                "message": "Back-off pulling image",
                "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "uid-web-1"},
                "lastTimestamp": "2025-01-01T00:09:00Z"
            })),
            event(json!({
                "metadata": {"name": "e4"}, "type": "Warning", "reason": "Failed",
                "message": "from a previous pod of the same name",
                "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "uid-other"},
                "lastTimestamp": "2025-01-01T00:10:00Z"
            })),
            event(json!({
                "metadata": {"name": "e5"}, "type": "Warning", "reason": "FailedScheduling",
                "message": "series event, newest of all",
                "involvedObject": {"kind": "Pod", "name": "web-1"},
                "eventTime": "2025-01-01T00:02:00.000000Z",
                "series": {"count": 3, "lastObservedTime": "2025-01-01T00:04:00.000000Z"}
            })),
        ];
        assert_eq!(
            newest_warning(&events, &p).as_deref(),
            Some("series event, newest of all")
        );
        assert_eq!(
            newest_warning(&events[..2], &p).as_deref(),
            Some("Error: ImagePullBackOff")
        );
        assert_eq!(newest_warning(&events[2..3], &p), None);
    }

    #[test]
    fn replica_failure_explains_missing_pods() {
        let d = web(
            Some(1),
            json!({
                "observedGeneration": 2,
                "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                "message": "pods \"web-1\" is forbidden: exceeded quota"}]
            }),
        );
        assert_eq!(
            replica_failure(&d),
            Some(StuckRollout {
                pod: None,
                reason: "FailedCreate".into(),
                message: "pods \"web-1\" is forbidden: exceeded quota".into(),
                last_warning: None,
                explanation: None,
            })
        );
        assert_eq!(replica_failure(&web(Some(1), json!({}))), None);
    }

    #[test]
    fn forbidden_watch_is_fatal_but_disconnects_are_not() {
        let forbidden = kube::core::Status::failure("forbidden", "Forbidden")
            .with_code(403)
            .boxed();
        assert!(is_fatal_watch_error(&watcher::Error::InitialListFailed(
            kube::Error::Api(forbidden)
        )));
        let gone = kube::core::Status::failure("too old", "Expired")
            .with_code(410)
            .boxed();
        assert!(!is_fatal_watch_error(&watcher::Error::WatchError(gone)));
        assert!(!is_fatal_watch_error(&watcher::Error::NoResourceVersion));
    }
}
