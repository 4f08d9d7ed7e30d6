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
    run_against(env, lab, target, changes, None).await
}

/// As `run`; `desired`: the workspace's objects in the target's namespace, when the caller
/// rendered them already (`verify` renders once, then checks until fixed).
pub async fn run_against(
    env: &LabEnv<'_>,
    lab: &LabSpec,
    target: &ResolvedTarget,
    changes: &Changes,
    desired: Option<&[serde_json::Value]>,
) -> Result<Verdict> {
    let snapshot = Snapshot::list(&env.client, target).await?;
    let mut checks = Vec::new();
    let mut kinds = lab.check.clone();
    // A GitOps lab: "matches the workspace" means "the controller applied HEAD".
    if lab.uses_git_push() {
        kinds.retain(|k| !matches!(k, CheckKind::MatchesWorkspace | CheckKind::SyncedFromGit));
        kinds.insert(0, CheckKind::SyncedFromGit);
    }
    for kind in &kinds {
        let pointers = match kind {
            CheckKind::SyncedFromGit => sync_pointers(env).await,
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
            CheckKind::MatchesWorkspace => match desired {
                Some(docs) => {
                    env.differences_from(docs, &target.target.namespace, changes)
                        .await?
                }
                None => env.differences(&target.target.namespace, changes).await?,
            },
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

/// GitOps mode: where the fix is between the workspace and the cluster.
pub(crate) async fn sync_pointers(env: &LabEnv<'_>) -> Vec<String> {
    let Ok(repo) = crate::gitops::remote::Repo::open(&env.workspace.root) else {
        return vec!["the workspace is not a git repository".into()];
    };
    let applied = k8s::object::get(&env.client, &crate::gitops::objects::kustomization_key())
        .await
        .ok()
        .flatten()
        .and_then(|o| serde_json::to_value(o).ok())
        .map(|k| crate::gitops::objects::FluxStatus::of(&k))
        .and_then(|s| s.applied());
    git_pointers(
        repo.head().as_deref(),
        repo.pushed().as_deref(),
        applied.as_deref().map(crate::gitops::objects::commit_of),
    )
}

/// "Fixed in Git, not synced yet" vs "fixed": HEAD, what the lab's Git server has, what the
/// controller applied. Pure.
pub fn git_pointers(
    head: Option<&str>,
    pushed: Option<&str>,
    applied: Option<&str>,
) -> Vec<String> {
    let short = |c: Option<&str>| c.map_or("-".to_string(), |c| c.chars().take(7).collect());
    let remote = crate::gitops::REMOTE;
    if head != pushed {
        return vec![format!(
            "fixed in Git? HEAD {} is not pushed: the controller only sees the lab's Git server (`git push {remote}`)",
            short(head)
        )];
    }
    if pushed != applied {
        return vec![format!(
            "pushed {}, not synced yet: the controller still applies {} (it polls every {}; `kindlab sync` asks now)",
            short(pushed),
            short(applied),
            crate::gitops::objects::INTERVAL
        )];
    }
    Vec::new()
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
    fn fixed_in_git_but_not_pushed_or_not_synced_is_not_fixed() {
        assert!(git_pointers(Some("bbb"), Some("aaa"), Some("aaa"))[0].contains("is not pushed"));
        let p = git_pointers(Some("bbb"), Some("bbb"), Some("aaa"));
        assert!(
            p[0].contains("not synced yet") && p[0].contains("kindlab sync"),
            "{p:?}"
        );
        assert!(git_pointers(Some("bbb"), Some("bbb"), Some("bbb")).is_empty());
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
