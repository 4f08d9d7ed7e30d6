//! The phases both lab drivers share: the unattended run (`runner`) and the attendee's
//! verbs (`attendee`) check the target, open a session, break, and wait for the fix the
//! same way.

use std::time::Instant;

use super::actions::{self, Phase};
use super::check;
use super::env::LabEnv;
use super::observe::Snapshot;
use super::session::{Changes, Session, unix_now};
use super::spec::{LabError, LabSpec};
use super::target::{ResolvedTarget, TargetRef};
use crate::diagnose::StuckPodExplainer;
use crate::error::Result;
use crate::interrupt::Interrupted;
use crate::k8s::{self, Rollout};

/// The guardrails `lab` needs, enforced by the cluster, or the one-line error naming the
/// first that is not.
pub async fn require_guardrails(env: &LabEnv<'_>, lab: &LabSpec) -> Result<()> {
    for name in &lab.guardrails {
        let Some(rule) = crate::guardrails::Rule::from_name(name) else {
            continue;
        };
        if let Err(why) = crate::guardrails::reconcile::enforced(&env.client, rule).await {
            return Err(LabError::GuardrailMissing {
                lab: lab.name.clone(),
                rule: name.clone(),
                why,
            }
            .into());
        }
    }
    Ok(())
}

/// The target, found healthy and as the workspace declares it. In a namespace of its own
/// (`-n attendee-07`) where the workspace is not deployed yet, it is deployed first.
/// `through_git`: the lab changes the cluster only through the GitOps controller, so objects
/// it manages are expected, not refused.
pub async fn baseline(
    env: &LabEnv<'_>,
    target: &TargetRef,
    through_git: bool,
) -> Result<ResolvedTarget> {
    // Refused before anything is committed: only the controller can carry the push.
    if through_git && !env.workspace.gitops {
        return Err(crate::gitops::GitOpsError::Disabled.into());
    }
    let exists = k8s::object::get(
        &env.client,
        &k8s::object::ObjectKey {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some(target.namespace.clone()),
            name: target.deployment.clone(),
        },
    )
    .await?
    .is_some();
    if !exists {
        let desired = env.desired(&target.namespace).await?;
        let declared = declared_deployments(&desired);
        if !declared.contains(&target.deployment.as_str()) {
            return Err(LabError::NotReady {
                what: target.describe(),
                why: "it does not exist, and the workspace does not declare it".into(),
                fix: missing_target_fix(&declared, &env.overlay()),
            }
            .into());
        }
        env.ui.note(format!(
            "deploying the workspace into namespace {}",
            target.namespace
        ));
        env.restore(&target.namespace, &Changes::default(), true)
            .await?;
        k8s::wait_rollout(
            &env.client,
            &target.namespace,
            &target.deployment,
            std::time::Duration::from_secs(180),
            &StuckPodExplainer::default(),
            |_| {},
        )
        .await?;
    }
    let resolved = ResolvedTarget::resolve(&env.client, target, &env.overlay()).await?;
    // A GitOps lab changes the cluster only through Git (pushGit): the controller owning the
    // objects is the point. Any other lab would be undone by it: refused, saying so.
    if !through_git {
        env.refuse_gitops(&target.namespace).await?;
    }
    let snapshot = Snapshot::list(&env.client, &resolved).await?;
    let not_ready = |why: String| LabError::NotReady {
        what: target.describe(),
        why,
        fix: "`kindlab reset` puts the workspace's desired state back, then start the lab again"
            .into(),
    };
    match snapshot.deployment.as_ref().map(k8s::judge) {
        Some(Rollout::Complete) => {}
        Some(Rollout::Progressing(m)) | Some(Rollout::Failed(m)) => {
            return Err(not_ready(m).into());
        }
        None => return Err(not_ready("it does not exist".into()).into()),
    }
    // A GitOps lab's desired state is what the controller applied from the lab's Git server
    // (its objects carry the controller's labels, so they differ from kindlab's apply).
    let differences = if through_git {
        super::check::sync_pointers(env).await
    } else {
        env.differences(&target.namespace, &Changes::default())
            .await?
    };
    if !differences.is_empty() {
        return Err(not_ready(differences.join("; ")).into());
    }
    Ok(resolved)
}

pub fn new_session(
    env: &LabEnv<'_>,
    lab: &LabSpec,
    source: &str,
    target: &ResolvedTarget,
    attendee: &str,
) -> Session {
    Session {
        lab: lab.name.clone(),
        source: source.to_string(),
        title: lab.title.clone(),
        target: target.clone(),
        context: env.context.clone(),
        access: env.access.clone(),
        registry_host: env.registry_host.clone(),
        attendee: attendee.to_string(),
        started_at: super::session::rfc3339(std::time::SystemTime::now()),
        broken_unix: unix_now(),
        symptoms_unix: None,
        fixed_unix: None,
        hints_used: 0,
        solved_with_help: false,
        checks: Vec::new(),
        changes: Changes::default(),
        mirrored: false,
    }
}

/// Applies the lab's break, recording every change in the session as it goes.
pub async fn apply_break(
    env: &LabEnv<'_>,
    lab: &LabSpec,
    target: &ResolvedTarget,
    session: &mut Session,
) -> Result<Vec<String>> {
    let mut broke = Vec::new();
    for action in &lab.breakage {
        check_interrupt(env, "the lab's break")?;
        broke.push(
            actions::run(env, lab, target, action, Phase::Break, &mut session.changes).await?,
        );
    }
    session.broken_unix = unix_now();
    Ok(broke)
}

pub fn check_interrupt(env: &LabEnv<'_>, during: &str) -> Result<()> {
    if env.interrupt.is_requested() {
        return Err(Interrupted {
            during: during.into(),
            left: "the lab's changes so far".into(),
            next: "`kindlab reset` restores the workspace's desired state".into(),
        }
        .into());
    }
    Ok(())
}

/// Waits (by watch) for the rollout, then until every check passes, within the lab's
/// `recoverWithin`.
pub async fn verify(
    env: &LabEnv<'_>,
    lab: &LabSpec,
    target: &ResolvedTarget,
    changes: &Changes,
    mut on_progress: impl FnMut(&str),
) -> Result<()> {
    let within = lab.recover_within.0;
    let deadline = Instant::now() + within;
    k8s::wait_rollout(
        &env.client,
        &target.target.namespace,
        &target.target.deployment,
        within,
        &StuckPodExplainer::default(),
        &mut on_progress,
    )
    .await?;
    // The workspace does not change while the fix is awaited: render it once (kustomize,
    // build-context hashes), then only ask the cluster again.
    let desired = env.desired(&target.target.namespace).await?;
    loop {
        let verdict = check::run_against(env, lab, target, changes, Some(&desired)).await?;
        if verdict.fixed {
            return Ok(());
        }
        let pointers = verdict.pointers();
        on_progress(pointers.first().map(String::as_str).unwrap_or_default());
        if Instant::now() >= deadline {
            return Err(LabError::NotRecovered {
                within,
                still: pointers.join("; "),
            }
            .into());
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
            _ = env.interrupt.requested() => {
                return Err(Interrupted {
                    during: "the wait for the fix".into(),
                    left: "the lab's fix is applied".into(),
                    next: "`kindlab reset` if the lab is not healthy".into(),
                }
                .into());
            }
        }
    }
}

/// The names of the Deployments among the workspace's objects, sorted.
fn declared_deployments(desired: &[serde_json::Value]) -> Vec<&str> {
    let mut names: Vec<&str> = desired
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    names
}

/// How to name a target the workspace has: its own Deployments, or where to declare one.
fn missing_target_fix(declared: &[&str], overlay: &str) -> String {
    match declared {
        [] => format!("the workspace declares no Deployment: add one to {overlay}"),
        [only] => format!("the workspace declares one Deployment: --target deployment/{only}"),
        several => format!(
            "name one of the workspace's Deployments with --target deployment/NAME: {}",
            several.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_target_is_answered_with_the_workspaces_own_deployments() {
        let docs = [
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "web"}}),
            serde_json::json!({"kind": "Service", "metadata": {"name": "web"}}),
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "orders-api"}}),
        ];
        let declared = declared_deployments(&docs);
        assert_eq!(declared, ["orders-api", "web"]);
        assert_eq!(
            missing_target_fix(&declared, "deploy/overlays/dev"),
            "name one of the workspace's Deployments with --target deployment/NAME: orders-api, web"
        );
        assert_eq!(
            missing_target_fix(&declared[..1], "deploy/overlays/dev"),
            "the workspace declares one Deployment: --target deployment/orders-api"
        );
        assert_eq!(
            missing_target_fix(&[], "deploy/overlays/dev"),
            "the workspace declares no Deployment: add one to deploy/overlays/dev"
        );
    }
}
