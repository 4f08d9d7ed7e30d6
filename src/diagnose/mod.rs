//! Why a pod is not healthy, on any cluster: the cause, the evidence it rests on and the fix.
//!
//! The judgement is pure and unit-tested over real messages (`testdata/`): [`message`] reads
//! what kubelets and runtimes print in every era, [`pull`] turns an image-pull failure into a
//! [`Finding`] (asking the registry's answer when there is one), [`pod`] does the same for the
//! other ways a pod fails, and [`service`] for a Service that selects nothing. [`registry`] asks
//! the image's registry (injectable: [`RegistryProbe`]); [`collect`] reads the cluster and calls
//! the pure parts; [`render`] prints. A confident wrong answer is worse than an honest "one of
//! these", so every finding says whether it is [`Certainty::Certain`] or which causes it cannot
//! tell apart.
//!
//! Callers: `kindlab diagnose` ([`diagnose_target`]), rollout timeouts ([`diagnose_pod`]), and
//! labs and `status` ([`diagnose_deployment`], [`classify_pull_failure`]).

pub mod admission;
mod collect;
pub mod command;
pub mod message;
mod pod;
mod pull;
pub mod reference;
mod registry;
mod render;
mod service;
mod target;
mod versions;

#[cfg(test)]
mod corpus_tests;

use serde::{Deserialize, Serialize};

pub use collect::{
    StuckPodExplainer, default_client, diagnose_deployment, diagnose_pod, diagnose_target,
};
pub use pod::{
    EventFact, NodeFit, PodFacts, diagnose_pod_facts, pod_needs_diagnosis, pod_needs_diagnosis_at,
};
pub use pull::{PullFailure, classify_pull_failure};
pub use registry::{
    ErrorMeaning, ManifestPlatforms, NoRegistry, Presence, RegistryAccess, RegistryAnswer,
    RegistryProbe, classify_error, config_platform, manifest_platforms,
};
pub use render::render_text;
pub use service::diagnose_service;
pub use target::Target;
pub use versions::nearest;

use crate::exit;
use crate::k8s::K8sError;

/// What is wrong, with the facts a fix needs. `cause` is the tag in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum Cause {
    /// The repository exists; the tag does not.
    TagNotFound {
        image: String,
        repository: String,
        tag: String,
        /// Existing tags closest to the one asked for (edit distance, neighbouring versions).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nearest: Vec<String>,
    },
    /// The registry has no such repository (or hides it from anonymous callers).
    RepositoryNotFound { image: String, repository: String },
    /// The registry refused: no credentials, wrong ones, or a pull secret that does not exist.
    Unauthorized {
        image: String,
        registry: String,
        problem: AuthProblem,
    },
    /// The node could not talk to the registry at all.
    RegistryUnreachable {
        image: String,
        registry: String,
        problem: NetworkProblem,
    },
    /// HTTP versus HTTPS, or a certificate the node does not trust.
    RegistryTls {
        image: String,
        registry: String,
        problem: TlsProblem,
    },
    /// The image reference cannot be parsed; `problems` points at the offending characters.
    InvalidReference {
        image: String,
        problems: Vec<reference::RefProblem>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        suggestion: Option<String>,
    },
    /// The registry throttled the node (HTTP 429, toomanyrequests).
    RateLimited { image: String, registry: String },
    /// The image exists, but not for the node's OS/architecture.
    PlatformMismatch {
        image: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        available: Vec<String>,
    },
    /// `imagePullPolicy: Never` and the image is not on the node.
    ImageNeverPull { image: String },
    /// The registry has the tag but not all the content it points to (a broken push).
    ImageIncomplete { image: String },
    /// The pull failed for a reason kindlab does not recognise; the evidence has the message.
    PullFailed { image: String },
    /// The container keeps exiting.
    CrashLoop {
        container: String,
        exit_code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        restarts: i32,
        /// The last lines the previous instance logged.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        last_log: Vec<String>,
    },
    /// The kernel killed the container for exceeding its memory limit.
    OomKilled {
        container: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<String>,
        restarts: i32,
    },
    /// A ConfigMap, Secret or key the pod needs does not exist.
    ConfigMissing {
        container: String,
        kind: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// The container cannot be created or started (bad command, bad mount, ...).
    ContainerCannotStart { container: String, reason: String },
    /// A readiness, liveness or startup probe keeps failing.
    ProbeFailing {
        container: String,
        probe: String,
        /// The probe as configured, e.g. `httpGet :8080/healthz every 10s`.
        check: String,
    },
    /// The scheduler cannot place the pod.
    Unschedulable {
        /// The scheduler's reasons, e.g. `1 Insufficient cpu`.
        reasons: Vec<String>,
    },
    /// A Service whose selector matches no pod (or no ready pod).
    ServiceWithoutEndpoints {
        service: String,
        selector: String,
        matching_pods: usize,
    },
    /// An admission policy refuses the workload's pods (its message names why).
    AdmissionRefused {
        policy: String,
        binding: String,
        message: String,
    },
    /// Not healthy, for a reason none of the above covers.
    Unknown { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthProblem {
    /// The registry wants credentials and none were sent.
    MissingCredentials,
    /// Credentials were sent and rejected.
    RejectedCredentials,
    /// The pod names an imagePullSecret that does not exist.
    MissingPullSecret,
    /// The registry denied access; it does not say whether credentials would help.
    Denied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkProblem {
    Dns,
    Refused,
    Timeout,
    NoRoute,
    /// The registry (or a proxy in front of it) answered 5xx.
    ServerError,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsProblem {
    /// The registry speaks plain HTTP and the node asked over HTTPS.
    PlainHttpRegistry,
    /// The certificate is signed by a CA the node does not trust.
    UntrustedCertificate,
    /// The certificate is for another name.
    WrongName,
    Expired,
    Other,
}

/// The causes, without their facts: what an ambiguous finding lists, and what a lab file
/// expects a correct diagnosis to name (so a typo there is refused when the lab is parsed).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum CauseKind {
    TagNotFound,
    RepositoryNotFound,
    Unauthorized,
    RegistryUnreachable,
    RegistryTls,
    InvalidReference,
    RateLimited,
    PlatformMismatch,
    ImageNeverPull,
    ImageIncomplete,
    PullFailed,
    CrashLoop,
    OomKilled,
    ConfigMissing,
    ContainerCannotStart,
    ProbeFailing,
    Unschedulable,
    ServiceWithoutEndpoints,
    AdmissionRefused,
    Unknown,
}

impl Cause {
    pub fn kind(&self) -> CauseKind {
        match self {
            Cause::TagNotFound { .. } => CauseKind::TagNotFound,
            Cause::RepositoryNotFound { .. } => CauseKind::RepositoryNotFound,
            Cause::Unauthorized { .. } => CauseKind::Unauthorized,
            Cause::RegistryUnreachable { .. } => CauseKind::RegistryUnreachable,
            Cause::RegistryTls { .. } => CauseKind::RegistryTls,
            Cause::InvalidReference { .. } => CauseKind::InvalidReference,
            Cause::RateLimited { .. } => CauseKind::RateLimited,
            Cause::PlatformMismatch { .. } => CauseKind::PlatformMismatch,
            Cause::ImageNeverPull { .. } => CauseKind::ImageNeverPull,
            Cause::ImageIncomplete { .. } => CauseKind::ImageIncomplete,
            Cause::PullFailed { .. } => CauseKind::PullFailed,
            Cause::CrashLoop { .. } => CauseKind::CrashLoop,
            Cause::OomKilled { .. } => CauseKind::OomKilled,
            Cause::ConfigMissing { .. } => CauseKind::ConfigMissing,
            Cause::ContainerCannotStart { .. } => CauseKind::ContainerCannotStart,
            Cause::ProbeFailing { .. } => CauseKind::ProbeFailing,
            Cause::Unschedulable { .. } => CauseKind::Unschedulable,
            Cause::ServiceWithoutEndpoints { .. } => CauseKind::ServiceWithoutEndpoints,
            Cause::AdmissionRefused { .. } => CauseKind::AdmissionRefused,
            Cause::Unknown { .. } => CauseKind::Unknown,
        }
    }
}

impl CauseKind {
    /// The kebab-case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            CauseKind::TagNotFound => "tag-not-found",
            CauseKind::RepositoryNotFound => "repository-not-found",
            CauseKind::Unauthorized => "unauthorized",
            CauseKind::RegistryUnreachable => "registry-unreachable",
            CauseKind::RegistryTls => "registry-tls",
            CauseKind::InvalidReference => "invalid-reference",
            CauseKind::RateLimited => "rate-limited",
            CauseKind::PlatformMismatch => "platform-mismatch",
            CauseKind::ImageNeverPull => "image-never-pull",
            CauseKind::ImageIncomplete => "image-incomplete",
            CauseKind::PullFailed => "pull-failed",
            CauseKind::CrashLoop => "crash-loop",
            CauseKind::OomKilled => "oom-killed",
            CauseKind::ConfigMissing => "config-missing",
            CauseKind::ContainerCannotStart => "container-cannot-start",
            CauseKind::ProbeFailing => "probe-failing",
            CauseKind::Unschedulable => "unschedulable",
            CauseKind::ServiceWithoutEndpoints => "service-without-endpoints",
            CauseKind::AdmissionRefused => "admission-refused",
            CauseKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for CauseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How sure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Certainty {
    /// The evidence names this cause.
    Certain,
    /// The evidence fits every one of `candidates`; `cause` is the first of them.
    Ambiguous,
    /// The evidence names no cause kindlab knows; `cause` is `pull-failed` or `unknown`.
    Unknown,
}

/// One fact a finding rests on, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// `event`, `container`, `registry`, `log`, `spec`, `node` or `scheduler`.
    pub from: String,
    pub text: String,
}

impl Evidence {
    pub fn new(from: &str, text: impl Into<String>) -> Evidence {
        Evidence {
            from: from.to_string(),
            text: text.into(),
        }
    }
}

/// Why one pod (or Service) is not healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `pod/NAME` or `service/NAME`.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(flatten)]
    pub cause: Cause,
    pub certainty: Certainty,
    /// The causes the evidence cannot tell apart (ambiguous findings only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<CauseKind>,
    /// One line for people.
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// What to do, one line (a command where there is one).
    pub fix: String,
}

impl Finding {
    pub fn kind(&self) -> CauseKind {
        self.cause.kind()
    }
}

/// The diagnosis of a target: what was looked at and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// As the user named it, resolved: `deployment/orders-api`, `pod/x`, `namespace/dev`.
    pub target: String,
    pub namespace: String,
    pub healthy: bool,
    /// The pods and Services looked at.
    pub checked: Vec<String>,
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    /// 0 when healthy, 10 when a problem was found.
    pub fn exit_code(&self) -> u8 {
        if self.healthy {
            exit::OK
        } else {
            exit::UNHEALTHY
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error("{target:?} is not something kindlab can diagnose: {why}")]
    BadTarget { target: String, why: String },
    #[error("{}", not_found_message(kind, name, namespace))]
    NotFound {
        kind: String,
        name: String,
        namespace: String,
        /// Namespaces where an object of that name does exist.
        elsewhere: Vec<String>,
    },
    #[error("no cluster to diagnose: {why}")]
    NoCluster { why: String },
    #[error(transparent)]
    K8s(#[from] K8sError),
}

fn not_found_message(kind: &str, name: &str, namespace: &str) -> String {
    match kind {
        "namespace" => format!("there is no namespace {name:?}"),
        _ => format!("there is no {kind} named {name:?} in namespace {namespace:?}"),
    }
}

impl DiagnoseError {
    pub fn fix(&self) -> Option<String> {
        match self {
            DiagnoseError::BadTarget { .. } => Some(
                "name a deployment/NAME, pod/NAME, service/NAME or a bare NAME (or nothing, for the whole namespace)".into(),
            ),
            DiagnoseError::NotFound {
                kind,
                elsewhere,
                namespace,
                ..
            } => Some(match elsewhere.as_slice() {
                [] if kind == "namespace" => {
                    "check the name: `kubectl get namespaces` lists what exists".to_string()
                }
                [] => format!(
                    "check the name: `kubectl get deployments,pods,services -n {namespace}` lists what exists"
                ),
                [one] => format!("it exists in namespace {one}: add `-n {one}`"),
                many => format!(
                    "it exists in namespaces {}: add `-n` with one of them",
                    many.join(", ")
                ),
            }),
            DiagnoseError::NoCluster { .. } => Some(
                "pass --context NAME, point KUBECONFIG at a kubeconfig, or run inside a kindlab workspace after `kindlab up`".into(),
            ),
            DiagnoseError::K8s(e) => e.fix(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            DiagnoseError::BadTarget { .. } | DiagnoseError::NotFound { .. } => exit::BAD_INPUT,
            DiagnoseError::NoCluster { .. } => exit::MISSING_PREREQUISITE,
            DiagnoseError::K8s(e) => e.exit_code(),
        }
    }
}

crate::error::failure_from_inherent!(DiagnoseError);
