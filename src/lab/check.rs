//! "Is it fixed?": the lab's checks against the live cluster, each failing one with a pointer
//! for the attendee (where to look, not what to type: the hints are for that).

use serde::Serialize;

use super::env::LabEnv;
use super::observe::Snapshot;
use super::session::Changes;
use super::spec::{CheckKind, LabSpec, Symptom};
use super::target::ResolvedTarget;
use crate::error::Result;
use crate::k8s::{self, Rollout};

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub fixed: bool,
    pub checks: Vec<CheckResult>,
}

impl Verdict {
    pub fn pointers(&self) -> Vec<String> {
        self.checks
            .iter()
            .flat_map(|c| c.pointers.iter().cloned())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: CheckKind,
    pub ok: bool,
    pub pointers: Vec<String>,
}

/// Runs every check the lab declares. Cheap on a healthy cluster: a handful of reads and
/// dry-run applies.
pub async fn run(
    env: &LabEnv<'_>,
    lab: &LabSpec,
    target: &ResolvedTarget,
    changes: &Changes,
) -> Result<Verdict> {
    let snapshot = Snapshot::list(&env.client, target).await?;
    let mut checks = Vec::new();
    for kind in &lab.check {
        let pointers = match kind {
            CheckKind::RolloutComplete => rollout_pointers(&snapshot, target),
            CheckKind::SymptomsGone => lab
                .symptoms
                .all
                .iter()
                .filter_map(|s| {
                    snapshot
                        .still_shows(s, target, k8s_openapi::jiff::Timestamp::now())
                        .map(|e| (s, e))
                })
                .map(|(s, evidence)| symptom_pointer(s, &evidence, target))
                .collect(),
            CheckKind::MatchesWorkspace => {
                env.differences(&target.target.namespace, changes).await?
            }
        };
        checks.push(CheckResult {
            check: *kind,
            ok: pointers.is_empty(),
            pointers,
        });
    }
    Ok(Verdict {
        fixed: checks.iter().all(|c| c.ok),
        checks,
    })
}

fn rollout_pointers(snapshot: &Snapshot, target: &ResolvedTarget) -> Vec<String> {
    let t = &target.target;
    let watch = format!(
        "`kubectl rollout status deployment/{} -n {}`",
        t.deployment, t.namespace
    );
    match snapshot.deployment.as_ref().map(k8s::judge) {
        None => vec![format!("{} does not exist", t.describe())],
        Some(Rollout::Complete) => Vec::new(),
        Some(Rollout::Progressing(m)) => vec![format!(
            "the rollout of {} is not complete ({m}): {watch}",
            t.describe()
        )],
        Some(Rollout::Failed(m)) => vec![format!(
            "the rollout of {} failed ({m}): {watch}",
            t.describe()
        )],
    }
}

/// Where to look when a symptom still shows.
fn symptom_pointer(symptom: &Symptom, evidence: &str, target: &ResolvedTarget) -> String {
    let t = &target.target;
    let describe = format!(
        "`kubectl describe pod -n {} -l {}`",
        t.namespace, target.selector
    );
    match symptom {
        Symptom::WaitingReason(_) | Symptom::PodCondition(_) | Symptom::Event(_) => {
            format!("still {evidence}: the pod's events say why ({describe})")
        }
        Symptom::TerminatedReason(_) | Symptom::RestartCount(_) => format!(
            "still {evidence}: the last run's log says why (`kubectl logs -n {} deployment/{} -c {} --previous`)",
            t.namespace, t.deployment, t.container
        ),
        Symptom::DeploymentCondition(_) => format!(
            "still {evidence}: `kubectl describe deployment {} -n {}`",
            t.deployment, t.namespace
        ),
        Symptom::ServiceWithoutEndpoints(_) => format!(
            "still {evidence}: compare the Service's selector with the pods' labels (`kubectl get pods -n {} --show-labels`)",
            t.namespace
        ),
        Symptom::Refused(_) => format!("still {evidence}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ResolvedTarget {
        crate::lab::target::sample_target()
    }

    #[test]
    fn pointers_say_where_to_look() {
        let p = symptom_pointer(
            &Symptom::WaitingReason("ImagePullBackOff".into()),
            "pod x waiting: ImagePullBackOff",
            &target(),
        );
        assert!(
            p.contains("kubectl describe pod -n dev -l app=orders-api"),
            "{p}"
        );
        let p = symptom_pointer(
            &Symptom::TerminatedReason("OOMKilled".into()),
            "pod x terminated: OOMKilled",
            &target(),
        );
        assert!(p.contains("deployment/orders-api -c api --previous"), "{p}");
        assert!(rollout_pointers(&Snapshot::default(), &target())[0].contains("does not exist"));
    }
}
