//! Why a pod is unhealthy, from its status, its spec, its events and its previous logs: image
//! pulls (handed to [`super::pull`]), crash loops, OOM kills, missing ConfigMaps and Secrets,
//! failing probes and pods no node can take. Pure: [`super::collect`] gathers the facts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pull::{PullFailure, classify_pull_failure};
use super::registry::RegistryAnswer;
use super::{Cause, CauseKind, Certainty, Evidence, Finding};

// One file per cause; this one gathers the facts' helpers and decides which applies.
mod config;
mod crash;
mod image;
mod mount;
mod probe;
mod schedule;
mod start;
#[cfg(test)]
mod tests;

use config::config_finding;
pub(crate) use config::missing_config;
use crash::crash_finding;
use image::pull_finding;
use mount::mount_failure;
use probe::probe_finding;
use schedule::unschedulable;
pub(crate) use schedule::{cpu_millis, memory_bytes};
use start::cannot_start;

/// Waiting reasons that mean the image could not be had.
pub(crate) const PULL_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "ImageInspectError",
    "RegistryUnavailable",
    "SignatureValidationFailed",
    "PullImageError",
];

/// Waiting reasons that mean the container could not be created or started.
const START_REASONS: &[&str] = &[
    "CreateContainerError",
    "RunContainerError",
    "StartError",
    "ContainerCannotRun",
    "PreStartHookError",
    "PostStartHookError",
];

/// One event about the pod, as the fields that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFact {
    pub reason: String,
    pub message: String,
    /// `Normal` or `Warning`.
    pub type_: String,
    pub count: i32,
    /// `spec.containers{api}` when the kubelet recorded which container.
    pub field_path: Option<String>,
}

/// A node's allocatable capacity and labels, for pods that fit nowhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFit {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub cpu_millis: Option<i64>,
    pub memory_bytes: Option<i64>,
}

/// Everything known about one pod.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    pub pod: Pod,
    /// The workload that owns it, `deployment/NAME`, for fix commands.
    pub owner: Option<String>,
    /// Events about the pod, oldest first.
    pub events: Vec<EventFact>,
    /// Container name → the last lines its previous instance logged.
    pub previous_logs: BTreeMap<String, Vec<String>>,
    /// Image → what its registry said.
    pub registry: BTreeMap<String, RegistryAnswer>,
    /// The node's `os/arch`.
    pub node_platform: Option<String>,
    /// imagePullSecrets the pod names that do not exist.
    pub missing_pull_secrets: Vec<String>,
    pub nodes: Vec<NodeFit>,
    /// When the facts were read: a container that failed and was restarted shortly before
    /// is crash-looping even while it happens to run (None: unknown, not judged).
    pub now: Option<k8s_openapi::jiff::Timestamp>,
}

/// A container restarted after a failure less than this long ago is still crash-looping:
/// between its restarts it runs (and may even be Ready) for a moment.
const RECENT_CRASH: std::time::Duration = std::time::Duration::from_secs(120);

/// True when `status` is the running instance that replaced a failed one (non-zero exit or
/// OOMKilled) less than [`RECENT_CRASH`] before `now`.
fn restarted_after_a_recent_crash(
    status: &ContainerStatus,
    now: Option<k8s_openapi::jiff::Timestamp>,
) -> bool {
    let Some(now) = now else {
        return false;
    };
    let failed = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some_and(|t| t.exit_code != 0 || t.reason.as_deref() == Some("OOMKilled"));
    let started = status
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .map(|t| t.0);
    failed
        && status.restart_count > 0
        && started.is_some_and(|at| {
            now.duration_since(at)
                .try_into()
                .is_ok_and(|d: std::time::Duration| d < RECENT_CRASH)
        })
}

/// True for a pod worth diagnosing: not finished, not being deleted, and not ready.
pub fn pod_needs_diagnosis(pod: &Pod) -> bool {
    pod_needs_diagnosis_at(pod, None)
}

/// [`pod_needs_diagnosis`], knowing the time: a pod whose container crashed and was
/// restarted moments ago needs it too, even while it runs.
pub fn pod_needs_diagnosis_at(pod: &Pod, now: Option<k8s_openapi::jiff::Timestamp>) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = &pod.status else {
        return true;
    };
    if status.phase.as_deref() == Some("Succeeded") {
        return false;
    }
    let ready = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let crashed = status
        .container_statuses
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| restarted_after_a_recent_crash(c, now));
    !ready || crashed
}

/// The images of containers whose pull is failing (to ask their registries).
pub(crate) fn failing_images(pod: &Pod) -> Vec<String> {
    let mut images: Vec<String> = statuses(pod)
        .filter_map(|(status, spec, _)| {
            let reason = waiting_reason(status)?;
            // Never-pull and unparseable references need no registry to explain them.
            (PULL_REASONS.contains(&reason)
                && !matches!(reason, "ErrImageNeverPull" | "InvalidImageName"))
            .then(|| image_of(status, spec))
        })
        .collect();
    images.sort();
    images.dedup();
    images
}

/// The findings for one pod: one per failing container, or one for the pod when it cannot
/// be scheduled. Empty for a healthy pod.
pub fn diagnose_pod_facts(facts: &PodFacts) -> Vec<Finding> {
    if !pod_needs_diagnosis_at(&facts.pod, facts.now) {
        return Vec::new();
    }
    let pod = &facts.pod;
    let subject = format!("pod/{}", pod.metadata.name.as_deref().unwrap_or_default());
    if let Some(finding) = unschedulable(facts, &subject) {
        return vec![finding];
    }
    let mut findings: Vec<Finding> = statuses(pod)
        .filter_map(|(status, spec, is_init)| {
            container_finding(facts, &subject, status, spec, is_init)
        })
        .collect();
    if findings.is_empty()
        && let Some(finding) = mount_failure(facts, &subject)
    {
        findings.push(finding);
    }
    if findings.is_empty()
        && let Some((reason, message)) = crate::k8s::pod_not_ready_reason(pod)
        // A container that is merely starting is not a problem yet.
        && !matches!(reason.as_str(), "ContainerCreating" | "PodInitializing")
    {
        let mut evidence = vec![Evidence::new("container", format!("{reason}: {message}"))];
        evidence.extend(warnings(facts, None).into_iter().take(3));
        findings.push(Finding {
            subject: subject.clone(),
            container: None,
            cause: Cause::Unknown {
                reason: reason.clone(),
            },
            certainty: Certainty::Unknown,
            candidates: vec![],
            summary: format!("the pod is not ready: {reason}{}", colon(&message)),
            evidence,
            fix: format!(
                "`kubectl describe pod {} -n {}` shows the pod's events",
                pod.metadata.name.as_deref().unwrap_or_default(),
                namespace(pod)
            ),
        });
    }
    findings
}

fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn namespace(pod: &Pod) -> String {
    pod.metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into())
}

/// (status, spec, is_init) for every container that has a status, init containers first.
fn statuses(pod: &Pod) -> impl Iterator<Item = (&ContainerStatus, Option<&Container>, bool)> {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let init = status
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or_default()
        .iter()
        .map(move |s| {
            let c = spec
                .and_then(|sp| sp.init_containers.as_deref())
                .unwrap_or_default()
                .iter()
                .find(|c| c.name == s.name);
            (s, c, true)
        });
    let regular = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default()
        .iter()
        .map(move |s| {
            let c = spec
                .map(|sp| sp.containers.as_slice())
                .unwrap_or_default()
                .iter()
                .find(|c| c.name == s.name);
            (s, c, false)
        });
    init.chain(regular)
}

fn waiting_reason(status: &ContainerStatus) -> Option<&str> {
    status.state.as_ref()?.waiting.as_ref()?.reason.as_deref()
}

fn waiting_message(status: &ContainerStatus) -> Option<&str> {
    status
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .message
        .as_deref()
        .filter(|m| !m.is_empty())
}

/// The image as the spec names it (the status may spell it normalised).
fn image_of(status: &ContainerStatus, spec: Option<&Container>) -> String {
    spec.and_then(|c| c.image.clone())
        .unwrap_or_else(|| status.image.clone())
}

/// Whether an event is about this container.
fn about(event: &EventFact, container: &str) -> bool {
    event.field_path.as_deref().is_some_and(|path| {
        path.strip_suffix('}')
            .and_then(|p| p.rsplit_once('{'))
            .is_some_and(|(_, name)| name == container)
    })
}

/// Warning events, newest last, optionally only those about one container.
fn warnings(facts: &PodFacts, container: Option<&str>) -> Vec<Evidence> {
    facts
        .events
        .iter()
        .filter(|e| e.type_ == "Warning")
        .filter(|e| container.is_none_or(|c| e.field_path.is_none() || about(e, c)))
        .map(|e| Evidence::new("event", event_line(e)))
        .collect()
}

fn event_line(event: &EventFact) -> String {
    if event.count > 1 {
        format!("{} (x{}): {}", event.reason, event.count, event.message)
    } else {
        format!("{}: {}", event.reason, event.message)
    }
}

fn finding(
    subject: &str,
    container: &str,
    cause: Cause,
    summary: String,
    evidence: Vec<Evidence>,
    fix: String,
) -> Finding {
    Finding {
        subject: subject.to_string(),
        container: Some(container.to_string()),
        cause,
        certainty: Certainty::Certain,
        candidates: vec![],
        summary,
        evidence,
        fix,
    }
}

fn container_finding(
    facts: &PodFacts,
    subject: &str,
    status: &ContainerStatus,
    spec: Option<&Container>,
    is_init: bool,
) -> Option<Finding> {
    let name = status.name.as_str();
    let reason = waiting_reason(status);
    if let Some(reason) = reason {
        if PULL_REASONS.contains(&reason) {
            return Some(pull_finding(facts, subject, status, spec, reason));
        }
        if reason == "CreateContainerConfigError" {
            return Some(config_finding(facts, subject, status, spec));
        }
        if START_REASONS.contains(&reason) {
            return Some(cannot_start(
                facts,
                subject,
                name,
                reason,
                waiting_message(status),
            ));
        }
    }
    let restarting = reason == Some("CrashLoopBackOff")
        || (!is_init && restarted_after_a_recent_crash(status, facts.now));
    let terminated_now = status
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .filter(|t| t.exit_code != 0 || !is_init);
    if restarting || terminated_now.is_some() {
        return Some(crash_finding(facts, subject, status, spec));
    }
    let running = status.state.as_ref().is_some_and(|s| s.running.is_some());
    // On a busy node the kubelet's probe events can reach the API before its status update
    // that says the container runs: a failed probe is itself proof that it started.
    let status_lags = matches!(reason, None | Some("ContainerCreating"));
    if (running || status_lags) && !status.ready && !is_init {
        return probe_finding(facts, subject, status, spec);
    }
    None
}

fn pod_name(facts: &PodFacts) -> String {
    facts.pod.metadata.name.clone().unwrap_or_default()
}
