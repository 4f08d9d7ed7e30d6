//! Diagnosis as a pure function: from what the kubelet said and what the registry holds, the
//! cause, in words an attendee can act on.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum Cause {
    /// The repository exists but has no such tag.
    TagNotFound { tag: String, available: Vec<String> },
    /// The registry has no such repository at all.
    RepositoryNotFound { repository: String },
    /// The node could not reach the registry.
    RegistryUnreachable,
    /// The tag exists, yet the pull failed; the events say why.
    Unknown,
    /// The container keeps exiting; its previous log says why.
    CrashLoop { exit_code: Option<i32> },
    /// The kernel killed the container for exceeding its memory limit.
    OomKilled,
    /// The container cannot be created from its configuration (a missing ConfigMap or Secret).
    CreateContainerConfigError,
    /// No node can take the pod.
    Unschedulable,
    /// The container runs but its readiness probe fails.
    ReadinessProbeFailing,
    /// A Service selects no ready pod.
    ServiceWithoutEndpoints { service: String },
    /// Any other reason the pod gives.
    Other { reason: String },
}

/// A pod that is not ready for a reason other than an image pull: the cause from its status
/// and the Warning events about it.
pub fn pod_failure(
    pod: &k8s_openapi::api::core::v1::Pod,
    reason: &str,
    message: &str,
    events: &[String],
) -> Finding {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let last_terminated = statuses.iter().find_map(|c| {
        c.last_state
            .as_ref()
            .and_then(|s| s.terminated.clone())
            .or_else(|| c.state.as_ref().and_then(|s| s.terminated.clone()))
    });
    let oom = last_terminated
        .as_ref()
        .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"));
    let probe_failed = events.iter().any(|m| m.contains("Readiness probe failed"));
    let cause = if oom {
        Cause::OomKilled
    } else {
        match reason {
            "CrashLoopBackOff" | "Error" => Cause::CrashLoop {
                exit_code: last_terminated.as_ref().map(|t| t.exit_code),
            },
            "CreateContainerConfigError" => Cause::CreateContainerConfigError,
            "Unschedulable" => Cause::Unschedulable,
            _ if probe_failed => Cause::ReadinessProbeFailing,
            other => Cause::Other {
                reason: other.to_string(),
            },
        }
    };
    let summary = match &cause {
        Cause::OomKilled => {
            "the container was killed for exceeding its memory limit (OOMKilled)".to_string()
        }
        Cause::CrashLoop { exit_code } => format!(
            "the container keeps exiting{}; its previous log says why",
            exit_code
                .map(|c| format!(" (code {c})"))
                .unwrap_or_default()
        ),
        Cause::ReadinessProbeFailing => {
            "the container runs but its readiness probe fails".to_string()
        }
        _ if message.is_empty() => reason.to_string(),
        _ => format!("{reason}: {message}"),
    };
    Finding {
        cause,
        summary,
        evidence: events.to_vec(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(flatten)]
    pub cause: Cause,
    pub summary: String,
    /// The facts the finding rests on: event messages and the registry's answer.
    pub evidence: Vec<String>,
}

/// `image` is the reference the pod asks for; `events` the Warning messages about the pod;
/// `registry_tags` the repository's tags as the registry lists them (None: not asked or
/// unreachable from here).
pub fn classify(image: &str, events: &[String], registry_tags: Option<&[String]>) -> Finding {
    let repository = crate::workspace::repository(image).to_string();
    let tag = image
        .strip_prefix(&repository)
        .and_then(|t| t.strip_prefix(':'))
        .unwrap_or("latest")
        .to_string();
    let mut evidence: Vec<String> = events
        .iter()
        .filter(|m| {
            m.contains(image) || m.contains("ErrImagePull") || m.contains("ImagePullBackOff")
        })
        .cloned()
        .collect();
    let says = |needle: &str| events.iter().any(|m| m.contains(needle));
    if let Some(tags) = registry_tags {
        evidence.push(if tags.is_empty() {
            format!("the registry lists no tags for {repository}")
        } else {
            format!("the registry lists {repository} tags: {}", tags.join(", "))
        });
    }
    let cause = match registry_tags {
        Some([]) => Cause::RepositoryNotFound {
            repository: repository.clone(),
        },
        Some(tags) if !tags.contains(&tag) => Cause::TagNotFound {
            tag: tag.clone(),
            available: tags.to_vec(),
        },
        None if says("not found") => Cause::TagNotFound {
            tag: tag.clone(),
            available: Vec::new(),
        },
        _ if says("connection refused") || says("no such host") || says("i/o timeout") => {
            Cause::RegistryUnreachable
        }
        _ => Cause::Unknown,
    };
    let summary = match &cause {
        Cause::TagNotFound { tag, available } if available.is_empty() => {
            format!("{repository} has no tag {tag:?}")
        }
        Cause::TagNotFound { tag, available } => format!(
            "{repository} has no tag {tag:?}; it has {}",
            available.join(", ")
        ),
        Cause::RepositoryNotFound { repository } => {
            format!("the registry has no repository {repository}")
        }
        Cause::RegistryUnreachable => "the node cannot reach the registry".to_string(),
        Cause::Unknown => format!("{image} exists, yet the pull failed; read the events"),
        other => format!("{other:?}"),
    };
    Finding {
        cause,
        summary,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "localhost:5001/orders-api:does-not-exist";

    fn events() -> Vec<String> {
        vec![
            format!(
                "Failed to pull image \"{IMAGE}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{IMAGE}\": failed to resolve reference \"{IMAGE}\": {IMAGE}: not found"
            ),
            "Error: ErrImagePull".to_string(),
            "Pulling image \"other\"".to_string(),
        ]
    }

    #[test]
    fn a_missing_tag_names_the_tags_that_exist() {
        let tags = vec!["4aaa724028c0".to_string()];
        let finding = classify(IMAGE, &events(), Some(&tags));
        assert_eq!(
            finding.cause,
            Cause::TagNotFound {
                tag: "does-not-exist".into(),
                available: tags.clone()
            }
        );
        assert!(
            finding.summary.contains("it has 4aaa724028c0"),
            "{}",
            finding.summary
        );
        assert_eq!(finding.evidence.len(), 3, "{:?}", finding.evidence);
    }

    #[test]
    fn a_missing_repository_is_its_own_cause() {
        let finding = classify(IMAGE, &events(), Some(&[]));
        assert!(matches!(finding.cause, Cause::RepositoryNotFound { .. }));
    }

    #[test]
    fn without_the_registry_the_events_decide() {
        let finding = classify(IMAGE, &events(), None);
        assert_eq!(
            finding.cause,
            Cause::TagNotFound {
                tag: "does-not-exist".into(),
                available: vec![]
            }
        );
        let refused = vec!["dial tcp [::1]:5001: connect: connection refused".to_string()];
        assert_eq!(
            classify(IMAGE, &refused, None).cause,
            Cause::RegistryUnreachable
        );
    }

    #[test]
    fn an_existing_tag_that_fails_is_unknown() {
        let tags = vec!["does-not-exist".to_string()];
        assert_eq!(classify(IMAGE, &[], Some(&tags)).cause, Cause::Unknown);
    }
}
