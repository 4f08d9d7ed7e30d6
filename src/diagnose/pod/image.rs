//! Images that cannot be had: the pull failure classified (`super::super::pull`), with
//! what the registry answers.

use super::*;

pub(super) fn pull_finding(
    facts: &PodFacts,
    subject: &str,
    status: &ContainerStatus,
    spec: Option<&Container>,
    reason: &str,
) -> Finding {
    let name = status.name.as_str();
    let image = image_of(status, spec);
    let mut messages: Vec<Evidence> = facts
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.reason.as_str(),
                "Failed"
                    | "BackOff"
                    | "ErrImageNeverPull"
                    | "InspectFailed"
                    | "FailedToInspectImage"
                    | "Pulling"
            )
        })
        .filter(|e| about(e, name) || e.message.contains(&image))
        .map(|e| Evidence::new("event", e.message.clone()))
        .collect();
    if let Some(message) = waiting_message(status) {
        messages.push(Evidence::new("container", message.to_string()));
    }
    // The kubelet says which secrets it could not read, even to callers who may not.
    let mut missing = facts.missing_pull_secrets.clone();
    for event in facts
        .events
        .iter()
        .filter(|e| e.reason == "FailedToRetrieveImagePullSecret")
    {
        if let Some((_, rest)) = event.message.split_once('(')
            && let Some((names, _)) = rest.split_once(')')
        {
            missing.extend(names.split(',').map(|n| n.trim().to_string()));
        }
    }
    missing.sort();
    missing.dedup();
    let pull_secrets: Vec<String> = facts
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|r| r.name.clone())
        .filter(|n| !missing.contains(n))
        .collect();
    let failure = PullFailure {
        image: image.clone(),
        subject: subject.to_string(),
        container: Some(name.to_string()),
        namespace: Some(namespace(&facts.pod)),
        owner: facts.owner.clone(),
        reason: Some(reason.to_string()),
        messages,
        pull_secrets,
        missing_pull_secrets: missing,
        node_platform: facts.node_platform.clone(),
    };
    classify_pull_failure(&failure, facts.registry.get(&image))
}
