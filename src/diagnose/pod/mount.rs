//! Volumes that cannot be mounted.

use super::config::{config_fix, references};
use super::*;

/// A pod stuck creating its containers because a volume's ConfigMap or Secret is missing.
pub(super) fn mount_failure(facts: &PodFacts, subject: &str) -> Option<Finding> {
    let event = facts
        .events
        .iter()
        .rev()
        .find(|e| e.reason == "FailedMount" && missing_config(&e.message).is_some())?;
    let (kind, object, key) = missing_config(&event.message)?;
    let ns = namespace(&facts.pod);
    let mut evidence = vec![Evidence::new("event", event_line(event))];
    for line in references(&facts.pod, None, &kind, &object) {
        evidence.push(Evidence::new("spec", line));
    }
    let container = facts
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let mut f = finding(
        subject,
        &container,
        Cause::ConfigMissing {
            container: container.clone(),
            kind: kind.clone(),
            name: object.clone(),
            key: key.clone(),
        },
        format!(
            "{kind} {object} does not exist in namespace {ns}, so the pod's volume cannot be mounted"
        ),
        evidence,
        config_fix(&kind, &object, key.as_deref(), &ns),
    );
    f.container = None;
    Some(f)
}
