//! What can go wrong between kindlab and the Kubernetes API, with the fix and exit code.

use std::fmt;
use std::time::Duration;

use crate::exit;

/// What kindlab saw of a stuck rollout: the pod that is not ready and why, or (when no pod
/// exists at all) the Deployment condition that says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckRollout {
    /// The stuck pod; `None` when the Deployment could not create pods at all.
    pub pod: Option<String>,
    /// The kubelet's or controller's reason, e.g. `ImagePullBackOff`, `CrashLoopBackOff`.
    pub reason: String,
    /// The message that goes with the reason (may be empty).
    pub message: String,
    /// The newest Warning event about the pod.
    pub last_warning: Option<String>,
    /// Why the pod is stuck, in the user's terms, from the caller's [`super::ExplainPod`].
    pub explanation: Option<Explanation>,
}

/// A stuck pod explained: the cause in one line and what to do (kindlab's `diagnose` gives
/// both; this module only judges rollouts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub summary: String,
    pub fix: String,
}

impl fmt::Display for StuckRollout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pod {
            Some(pod) => write!(f, "pod {pod} is {}", self.reason)?,
            None => write!(f, "{}", self.reason)?,
        }
        // The explanation says why in fewer and better words than the raw messages.
        if let Some(explanation) = &self.explanation {
            return write!(f, ": {}", explanation.summary);
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(warning) = &self.last_warning {
            write!(f, "; last warning: {warning}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("cannot load the kubeconfig from {origin}")]
    Kubeconfig {
        origin: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("the kubeconfig from {origin} has no context named {context:?}")]
    ContextNotFound {
        context: String,
        origin: String,
        available: Vec<String>,
    },
    #[error("cannot set up a Kubernetes client for the cluster")]
    Client {
        #[source]
        source: kube::Error,
    },
    #[error("cannot reach the Kubernetes API server while trying to {action}")]
    Unreachable {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("manifest document {} cannot be applied: {problem}", .index + 1)]
    InvalidObject {
        /// 0-based position in the input (the message counts from 1, as people do).
        index: usize,
        problem: String,
    },
    #[error("the cluster does not know kind {kind} in apiVersion {api_version}")]
    UnknownKind {
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot apply {kind} {}: {message}", qualified(.namespace, .name))]
    Apply {
        kind: String,
        namespace: Option<String>,
        name: String,
        /// HTTP status code the API server answered with.
        code: u16,
        /// The API status message (what the server said was wrong).
        message: String,
    },
    #[error("CustomResourceDefinition {name} was not established within {}", crate::ui::format_duration(*.waited))]
    CrdNotEstablished { name: String, waited: Duration },
    #[error("Deployment {namespace}/{name} does not exist")]
    DeploymentNotFound { namespace: String, name: String },
    #[error("{object} is managed by {controller}: kindlab would fight it")]
    ManagedByGitOps {
        object: String,
        controller: String,
        fix: String,
    },
    #[error("watching {what} failed")]
    Watch {
        what: String,
        #[source]
        source: kube::runtime::watcher::Error,
    },
    #[error("deployment {name:?} in namespace {namespace:?} failed to roll out: {message}{}", with_stuck(.stuck))]
    RolloutFailed {
        namespace: String,
        name: String,
        message: String,
        /// Boxed: it is the bulk of the error, which travels up every `Result`.
        stuck: Option<Box<StuckRollout>>,
    },
    #[error("deployment {name:?} in namespace {namespace:?} did not finish rolling out within {} ({last_status}){}", crate::ui::format_duration(*.waited), with_stuck(.stuck))]
    RolloutTimeout {
        namespace: String,
        name: String,
        waited: Duration,
        /// The last progress message, e.g. "0 of 1 updated replicas are available".
        last_status: String,
        /// Boxed: it is the bulk of the error, which travels up every `Result`.
        stuck: Option<Box<StuckRollout>>,
    },
    #[error("Kubernetes API request failed while trying to {action}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
}

impl K8sError {
    /// The permission the API server refused, when this error is a refusal (401, 403).
    pub fn refusal(&self) -> Option<Refusal> {
        // When the server's message is not the authorizer's usual sentence, what kindlab was
        // doing says the verb and the resource.
        let (code, message, guess) = match self {
            K8sError::Apply {
                code,
                message,
                kind,
                namespace,
                ..
            } => (
                *code,
                message.as_str(),
                Some(("patch", plural(kind), namespace.clone())),
            ),
            K8sError::Api {
                source: kube::Error::Api(status),
                ..
            }
            | K8sError::UnknownKind {
                source: kube::Error::Api(status),
                ..
            } => (status.code, status.message.as_str(), None),
            K8sError::Watch { source, what } => match watch_status(source) {
                Some(status) => {
                    let (kind, namespace) = watched_kind(what);
                    (
                        status.code,
                        status.message.as_str(),
                        Some(("watch", plural(kind), namespace.map(str::to_string))),
                    )
                }
                None => return None,
            },
            _ => return None,
        };
        // Admission also answers 403 ("exceeded quota", "violates PodSecurity", a webhook's
        // "denied the request"): that is the object refused, not a permission missing. Only
        // the authorizer's sentence, or a bare "is forbidden" where kindlab knows what it
        // asked, names a permission.
        let bare_refusal = message.trim_end().ends_with("is forbidden")
            || message.split_once("forbidden: ").is_none() && message.contains("forbidden");
        match code {
            403 => Refusal::parse(message).or_else(|| match guess {
                Some((verb, resource, namespace)) if bare_refusal => Some(Refusal {
                    verb: verb.into(),
                    resource,
                    namespace,
                    ..Refusal::unparsed("")
                }),
                _ => None,
            }),
            401 => Some(Refusal::unauthenticated()),
            _ => None,
        }
    }

    /// One line telling the user what to do next, if kindlab knows it.
    pub fn fix(&self) -> Option<String> {
        if let Some(refusal) = self.refusal() {
            return Some(refusal.fix());
        }
        match self {
            K8sError::Kubeconfig {
                source:
                    kube::config::KubeconfigError::ReadConfig(..)
                    | kube::config::KubeconfigError::FindPath,
                ..
            } => Some(
                "point KUBECONFIG at your kubeconfig file, or leave out --context to use the lab's own cluster".into(),
            ),
            K8sError::Kubeconfig { .. } => Some(
                "check that the kubeconfig is valid YAML with the cluster, user and context it names (`kubectl config view`)".into(),
            ),
            K8sError::ContextNotFound { available, .. } => Some(if available.is_empty() {
                "the kubeconfig has no contexts; create the lab with `kindlab up`".into()
            } else {
                format!("use one of: {}", available.join(", "))
            }),
            K8sError::Client { .. } => None,
            K8sError::Unreachable { .. } => Some(
                "check that the cluster is running (`kind get clusters`, `docker ps`); `kindlab up` starts the lab".into(),
            ),
            K8sError::InvalidObject { .. } => Some(
                "every manifest needs apiVersion, kind and metadata.name; check the output of `kustomize build`".into(),
            ),
            K8sError::UnknownKind { .. } => Some(
                "check the apiVersion and kind spelling, or install the CustomResourceDefinition that defines it".into(),
            ),
            K8sError::Apply { code, .. } => match code {
                400 | 422 => Some("fix the field the API server names in the manifest, then run again".into()),
                409 => Some("another controller changed the object at the same time; run again".into()),
                _ => None,
            },
            K8sError::CrdNotEstablished { name, .. } => Some(format!(
                "check the CustomResourceDefinition's conditions with `kubectl get crd {name} -o yaml`"
            )),
            K8sError::DeploymentNotFound { .. } => Some(
                "check that the manifests define this Deployment and that nothing deletes it".into(),
            ),
            K8sError::ManagedByGitOps { fix, .. } => Some(fix.clone()),
            K8sError::Watch { .. } => Some("check that the cluster is running, then run again".into()),
            K8sError::RolloutFailed {
                namespace,
                name,
                stuck,
                ..
            }
            | K8sError::RolloutTimeout {
                namespace,
                name,
                stuck,
                ..
            } => Some(rollout_fix(namespace, name, stuck.as_deref())),
            K8sError::Api { .. } => None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        if self.refusal().is_some() {
            return exit::FORBIDDEN;
        }
        match self {
            K8sError::Kubeconfig { .. } | K8sError::Unreachable { .. } => {
                exit::MISSING_PREREQUISITE
            }
            K8sError::ContextNotFound { .. }
            | K8sError::InvalidObject { .. }
            | K8sError::UnknownKind { .. } => exit::BAD_INPUT,
            K8sError::Apply {
                code: 400 | 422, ..
            } => exit::BAD_INPUT,
            K8sError::CrdNotEstablished { .. } | K8sError::RolloutTimeout { .. } => exit::TIMEOUT,
            K8sError::ManagedByGitOps { .. } => exit::CONFLICT,
            K8sError::Client { .. }
            | K8sError::Apply { .. }
            | K8sError::DeploymentNotFound { .. }
            | K8sError::Watch { .. }
            | K8sError::RolloutFailed { .. }
            | K8sError::Api { .. } => exit::FAILED,
        }
    }

    /// Classifies a kube error from a request: transport failures mean the cluster is not
    /// reachable (a missing prerequisite), everything else is a failed request.
    pub(crate) fn request(action: impl Into<String>, source: kube::Error) -> K8sError {
        let action = action.into();
        if is_transport(&source) {
            K8sError::Unreachable { action, source }
        } else {
            K8sError::Api { action, source }
        }
    }
}

/// Errors that say the API server could not be talked to at all, as opposed to an answer.
fn is_transport(err: &kube::Error) -> bool {
    matches!(
        err,
        kube::Error::HyperError(_)
            | kube::Error::Service(_)
            | kube::Error::RustlsTls(_)
            | kube::Error::TlsRequired
            | kube::Error::ReadEvents(_)
    )
}

/// The API server's answer inside a watch error, if it gave one.
fn watch_status(err: &kube::runtime::watcher::Error) -> Option<&kube::core::Status> {
    use kube::runtime::watcher::Error as W;
    match err {
        W::InitialListFailed(kube::Error::Api(status))
        | W::WatchStartFailed(kube::Error::Api(status))
        | W::WatchFailed(kube::Error::Api(status))
        | W::WatchError(status) => Some(status),
        _ => None,
    }
}

/// A permission the API server refused, as its 403 message words it:
/// `User "system:serviceaccount:att1:attendee" cannot patch resource "namespaces" in API
/// group "" at the cluster scope` (or `in the namespace "att2"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// Who asked (`system:serviceaccount:att1:attendee`); empty when the message did not say.
    pub user: String,
    pub verb: String,
    /// `namespaces`, `deployments`, `pods/log`.
    pub resource: String,
    /// The API group (`apps`; empty for the core group).
    pub group: String,
    /// The namespace asked about; `None` for the cluster scope.
    pub namespace: Option<String>,
    /// The server's own words, when they could not be read as above.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Refusal {
    /// Reads the authorizer's message; `None` when it is not in that shape.
    pub fn parse(message: &str) -> Option<Refusal> {
        let quoted = |text: &str, after: &str| -> Option<String> {
            let start = text.find(after)? + after.len();
            let rest = text[start..].strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        };
        let user = quoted(message, "User ").unwrap_or_default();
        let cannot = message.find(" cannot ")? + " cannot ".len();
        let verb = message[cannot..].split_whitespace().next()?.to_string();
        let resource = quoted(message, "resource ")?;
        let group = quoted(message, "in API group ").unwrap_or_default();
        let namespace = quoted(message, "in the namespace ");
        Some(Refusal {
            user,
            verb,
            resource,
            group,
            namespace,
            message: String::new(),
        })
    }

    fn unparsed(message: &str) -> Refusal {
        Refusal {
            user: String::new(),
            verb: String::new(),
            resource: String::new(),
            group: String::new(),
            namespace: None,
            message: message.to_string(),
        }
    }

    fn unauthenticated() -> Refusal {
        Refusal::unparsed("the API server did not accept the credentials (401 Unauthorized)")
    }

    /// The namespace of a ServiceAccount user (`system:serviceaccount:NS:NAME`).
    pub fn account_namespace(&self) -> Option<&str> {
        let mut parts = self.user.strip_prefix("system:serviceaccount:")?.split(':');
        parts.next()
    }

    /// `deployments.apps`, `namespaces`: the resource as `kubectl auth can-i` takes it.
    pub fn qualified_resource(&self) -> String {
        match self.group.as_str() {
            "" => self.resource.clone(),
            group => format!("{}.{group}", self.resource),
        }
    }

    /// The missing permission and who can grant it, in one line.
    pub fn fix(&self) -> String {
        if self.verb.is_empty() {
            return format!(
                "{}; the credentials may have expired (a workshop token lasts a day): ask the cluster's admin (the workshop's instructor) for a new kubeconfig",
                self.message
            );
        }
        let who = match self.user.as_str() {
            "" => "the kubeconfig's user".to_string(),
            user => user.to_string(),
        };
        // A ServiceAccount asking about another namespace than its own is most often a
        // workshop attendee who typed another `-n`: say where it can work, before how to
        // get the permission.
        let own_namespace = match (self.account_namespace(), &self.namespace) {
            (Some(own), Some(asked)) if own != asked => format!(
                "; as a workshop attendee, work in your own namespace ({own}: leave out -n {asked}); otherwise"
            ),
            _ => ";".to_string(),
        };
        let resource = self.qualified_resource();
        let (scope, flag) = match &self.namespace {
            Some(ns) => (format!("in namespace {ns}"), format!(" -n {ns}")),
            None => ("at the cluster scope".to_string(), String::new()),
        };
        format!(
            "{who} lacks the permission to {} {resource} {scope}{own_namespace} the cluster's admin (a workshop's instructor) can grant it with a Role and RoleBinding{}; check with `kubectl auth can-i {} {resource}{flag}`",
            self.verb,
            match &self.namespace {
                Some(_) => "",
                None => " (a ClusterRole and ClusterRoleBinding for the cluster scope)",
            },
            self.verb,
        )
    }
}

/// `Deployment` -> `deployments`, as RBAC names resources (kube's own plural rules).
fn plural(kind: &str) -> String {
    kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("", "v1", kind)).plural
}

/// `Deployment dev/web` -> ("Deployment", Some("dev")).
fn watched_kind(what: &str) -> (&str, Option<&str>) {
    let (kind, rest) = what.split_once(' ').unwrap_or((what, ""));
    (kind, rest.split_once('/').map(|(ns, _)| ns))
}

/// The fix for a stuck rollout depends on why the pod is stuck: the explanation's fix, or
/// the kubectl command that shows more for the kubelet's reason.
fn rollout_fix(namespace: &str, name: &str, stuck: Option<&StuckRollout>) -> String {
    let describe_deployment =
        format!("inspect it with `kubectl describe deployment -n {namespace} {name}`");
    let Some(stuck) = stuck else {
        return describe_deployment;
    };
    if let Some(explanation) = &stuck.explanation {
        return explanation.fix.clone();
    }
    let Some(pod) = &stuck.pod else {
        return describe_deployment;
    };
    match stuck.reason.as_str() {
        "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
            "check the image reference; `kindlab status` lists what the registry holds".into()
        }
        "OOMKilled" => format!(
            "the container ran out of memory; raise resources.limits.memory (`kubectl describe pod -n {namespace} {pod}`)"
        ),
        "CrashLoopBackOff" | "Error" | "Completed" | "ContainerCannotRun" | "RunContainerError" => {
            format!(
                "the container keeps exiting; its log says why: `kubectl logs -n {namespace} {pod} --previous`"
            )
        }
        "CreateContainerConfigError" | "CreateContainerError" => format!(
            "a ConfigMap, Secret or key the pod references is missing; `kubectl describe pod -n {namespace} {pod}` names it"
        ),
        "Unschedulable" => format!(
            "no node can run the pod (resources, taints, node selectors); `kubectl describe pod -n {namespace} {pod}` says which"
        ),
        "ContainersNotReady" | "ReadinessGatesNotReady" => format!(
            "the container runs but is not ready; check its readiness probe and `kubectl logs -n {namespace} {pod}`"
        ),
        _ => format!("inspect the pod with `kubectl describe pod -n {namespace} {pod}`"),
    }
}

fn qualified(namespace: &Option<String>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

fn with_stuck(stuck: &Option<Box<StuckRollout>>) -> String {
    match stuck {
        Some(d) => format!("; {d}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_watch_says_which_permission_is_missing() {
        let forbidden = kube::core::Status::failure("deployments is forbidden", "Forbidden")
            .with_code(403)
            .boxed();
        let err = K8sError::Watch {
            what: "Deployment dev/web".into(),
            source: kube::runtime::watcher::Error::WatchStartFailed(kube::Error::Api(forbidden)),
        };
        let fix = err.fix().unwrap();
        assert!(
            fix.contains("permission to watch deployments in namespace dev"),
            "{fix}"
        );
        assert!(
            fix.contains("kubectl auth can-i watch deployments -n dev"),
            "{fix}"
        );
        assert_eq!(err.exit_code(), exit::FORBIDDEN);
    }

    #[test]
    fn the_authorizers_refusal_is_read() {
        let at_cluster = Refusal::parse(
            r#"namespaces "att1" is forbidden: User "system:serviceaccount:att1:attendee" cannot patch resource "namespaces" in API group "" at the cluster scope"#,
        )
        .unwrap();
        assert_eq!(at_cluster.user, "system:serviceaccount:att1:attendee");
        assert_eq!(at_cluster.verb, "patch");
        assert_eq!(at_cluster.qualified_resource(), "namespaces");
        assert_eq!(at_cluster.namespace, None);
        assert!(at_cluster.fix().contains("ClusterRoleBinding"));
        let other = Refusal::parse(
            r#"deployments.apps "orders-api" is forbidden: User "system:serviceaccount:att1:attendee" cannot get resource "deployments" in API group "apps" in the namespace "att2""#,
        )
        .unwrap();
        assert_eq!(other.namespace.as_deref(), Some("att2"));
        assert_eq!(
            other.fix(),
            "system:serviceaccount:att1:attendee lacks the permission to get deployments.apps in namespace att2; as a workshop attendee, work in your own namespace (att1: leave out -n att2); otherwise the cluster's admin (a workshop's instructor) can grant it with a Role and RoleBinding; check with `kubectl auth can-i get deployments.apps -n att2`"
        );
        let person = Refusal::parse(
            r#"deployments.apps "web" is forbidden: User "ada" cannot get resource "deployments" in API group "apps" in the namespace "att2""#,
        )
        .unwrap();
        let fix = person.fix();
        assert!(
            fix.contains("permission to get deployments.apps in namespace att2"),
            "{fix}"
        );
        assert!(
            fix.contains("kubectl auth can-i get deployments.apps -n att2"),
            "{fix}"
        );
        assert!(Refusal::parse("pods is forbidden: exceeded quota").is_none());
        let quota = K8sError::Apply {
            kind: "Pod".into(),
            namespace: Some("att1".into()),
            name: "p".into(),
            code: 403,
            message: r#"pods "p" is forbidden: exceeded quota: room, requested: cpu=64"#.into(),
        };
        assert_eq!(quota.refusal(), None, "a quota is not a missing permission");
        let webhook = K8sError::Apply {
            kind: "Deployment".into(),
            namespace: Some("att1".into()),
            name: "web".into(),
            code: 403,
            message: r#"admission webhook "policy.example" denied the request: no latest tags"#
                .into(),
        };
        assert_eq!(
            webhook.refusal(),
            None,
            "a webhook's denial is not a missing permission"
        );
    }

    #[test]
    fn a_refused_apply_is_exit_7_and_names_the_permission() {
        let err = K8sError::Apply {
            kind: "Namespace".into(),
            namespace: None,
            name: "att1".into(),
            code: 403,
            message: r#"namespaces "att1" is forbidden: User "u" cannot patch resource "namespaces" in API group "" at the cluster scope"#.into(),
        };
        assert_eq!(err.exit_code(), exit::FORBIDDEN);
        assert!(
            err.fix()
                .unwrap()
                .contains("u lacks the permission to patch namespaces at the cluster scope")
        );
        let quota = K8sError::Apply {
            kind: "Deployment".into(),
            namespace: Some("att1".into()),
            name: "web".into(),
            code: 422,
            message: "invalid".into(),
        };
        assert_eq!(quota.refusal(), None);
    }

    fn image_pull_stuck() -> StuckRollout {
        StuckRollout {
            pod: Some("web-7d9f-abcde".into()),
            reason: "ImagePullBackOff".into(),
            message: "Back-off pulling image \"localhost:5001/web:dev\"".into(),
            last_warning: Some("Failed to pull image \"localhost:5001/web:dev\": not found".into()),
            explanation: None,
        }
    }

    #[test]
    fn timeout_names_pod_reason_message_and_warning() {
        let err = K8sError::RolloutTimeout {
            namespace: "default".into(),
            name: "web".into(),
            waited: Duration::from_secs(120),
            last_status: "0 of 1 updated replicas are available".into(),
            stuck: Some(Box::new(image_pull_stuck())),
        };
        assert_eq!(
            err.to_string(),
            "deployment \"web\" in namespace \"default\" did not finish rolling out within 2m00s \
             (0 of 1 updated replicas are available); pod web-7d9f-abcde is ImagePullBackOff: \
             Back-off pulling image \"localhost:5001/web:dev\"; last warning: Failed to pull image \
             \"localhost:5001/web:dev\": not found"
        );
        assert_eq!(
            err.fix().as_deref(),
            Some("check the image reference; `kindlab status` lists what the registry holds")
        );
        assert_eq!(err.exit_code(), exit::TIMEOUT);
    }

    #[test]
    fn an_explanation_gives_the_reason_and_the_fix() {
        let mut stuck = image_pull_stuck();
        stuck.explanation = Some(Explanation {
            summary: "localhost:5001/web has no tag \"dev\"; nearest: v1".into(),
            fix: "use an existing tag".into(),
        });
        let err = K8sError::RolloutTimeout {
            namespace: "default".into(),
            name: "web".into(),
            waited: Duration::from_secs(60),
            last_status: "0 of 1 updated replicas are available".into(),
            stuck: Some(Box::new(stuck)),
        };
        assert_eq!(
            err.to_string(),
            "deployment \"web\" in namespace \"default\" did not finish rolling out within 1m00s \
             (0 of 1 updated replicas are available); pod web-7d9f-abcde is ImagePullBackOff: \
             localhost:5001/web has no tag \"dev\"; nearest: v1"
        );
        assert_eq!(err.fix().as_deref(), Some("use an existing tag"));
    }

    #[test]
    fn failed_rollout_is_a_failure_with_pod_specific_fix() {
        let err = K8sError::RolloutFailed {
            namespace: "shop".into(),
            name: "api".into(),
            message: "deployment \"api\" exceeded its progress deadline".into(),
            stuck: Some(Box::new(StuckRollout {
                pod: Some("api-1".into()),
                reason: "CrashLoopBackOff".into(),
                message: String::new(),
                last_warning: None,
                explanation: None,
            })),
        };
        assert_eq!(
            err.to_string(),
            "deployment \"api\" in namespace \"shop\" failed to roll out: deployment \"api\" \
             exceeded its progress deadline; pod api-1 is CrashLoopBackOff"
        );
        assert_eq!(err.exit_code(), exit::FAILED);
        assert_eq!(
            err.fix().as_deref(),
            Some(
                "the container keeps exiting; its log says why: `kubectl logs -n shop api-1 --previous`"
            )
        );
    }

    #[test]
    fn a_rollout_with_no_stuck_pod_seen_points_at_the_deployment() {
        let err = K8sError::RolloutTimeout {
            namespace: "default".into(),
            name: "web".into(),
            waited: Duration::from_secs(90),
            last_status: "waiting".into(),
            stuck: None,
        };
        assert!(err.to_string().ends_with("within 1m30s (waiting)"));
        assert_eq!(
            err.fix().as_deref(),
            Some("inspect it with `kubectl describe deployment -n default web`")
        );
    }

    #[test]
    fn apply_error_names_object_and_status_message() {
        let err = K8sError::Apply {
            kind: "Deployment".into(),
            namespace: Some("default".into()),
            name: "web".into(),
            code: 422,
            message: "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1".into(),
        };
        assert_eq!(
            err.to_string(),
            "cannot apply Deployment default/web: Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1"
        );
        assert_eq!(err.exit_code(), exit::BAD_INPUT);
        let cluster_scoped = K8sError::Apply {
            kind: "ClusterRole".into(),
            namespace: None,
            name: "reader".into(),
            code: 500,
            message: "boom".into(),
        };
        assert_eq!(
            cluster_scoped.to_string(),
            "cannot apply ClusterRole reader: boom"
        );
        assert_eq!(cluster_scoped.exit_code(), exit::FAILED);
        assert_eq!(cluster_scoped.fix(), None);
    }

    #[test]
    fn context_not_found_lists_alternatives() {
        let err = K8sError::ContextNotFound {
            context: "kind-lab".into(),
            origin: "~/.kube/config".into(),
            available: vec!["kind-kindlab".into(), "prod".into()],
        };
        assert_eq!(
            err.to_string(),
            "the kubeconfig from ~/.kube/config has no context named \"kind-lab\""
        );
        assert_eq!(err.fix().as_deref(), Some("use one of: kind-kindlab, prod"));
        assert_eq!(err.exit_code(), exit::BAD_INPUT);
    }

    #[test]
    fn invalid_object_counts_documents_from_one() {
        let err = K8sError::InvalidObject {
            index: 0,
            problem: "kind is missing".into(),
        };
        assert_eq!(
            err.to_string(),
            "manifest document 1 cannot be applied: kind is missing"
        );
        assert_eq!(err.exit_code(), exit::BAD_INPUT);
    }

    #[test]
    fn error_stays_small() {
        // Every Result in the crate carries this; clippy's large-error limit is 128 bytes.
        assert!(
            std::mem::size_of::<K8sError>() <= 128,
            "{}",
            std::mem::size_of::<K8sError>()
        );
    }
}

crate::error::failure_from_inherent!(K8sError);
