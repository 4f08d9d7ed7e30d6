//! `kindlab lab run`: a lab from end to end with nobody at the keyboard (instructors
//! rehearsing, CI): baseline, break, the symptoms, a diagnosis, the solution, the checks, with
//! each phase timed. Built on the same data and steps as the attendee's `lab start`/`check`.

use std::time::{Instant, SystemTime};

use super::actions::{self, Phase};
use super::env::LabEnv;
use super::observe;
use super::phases::{
    apply_break, baseline, check_interrupt, new_session, require_guardrails, verify,
};
use super::report::{LabReport, Timeline, unix_ms};
use super::session::{Session, SessionStore, unix_now};
use super::spec::{LabError, LabSpec};
use super::target::{ResolvedTarget, TargetRef};
use crate::diagnose::{self, Finding};
use crate::error::{Error, Result};

/// Runs `lab` once against `target` and reports each phase.
pub async fn run(env: &LabEnv<'_>, lab: &LabSpec, target: &TargetRef) -> Result<LabReport> {
    require_guardrails(env, lab).await?;
    let mut timeline = Timeline::new(Instant::now());

    let step = env.ui.step(format!("Baseline: {}", target.describe()));
    let resolved = baseline(env, target, lab.uses_git_push()).await?;
    let detail = format!("healthy, running {}", resolved.image);
    step.ok(&detail);
    timeline.mark("baseline", detail, Instant::now());

    let store = SessionStore::new(env.workspace);
    let mut session = new_session(env, lab, &lab.name, &resolved, "kindlab lab run");
    // On disk before the break, so `kindlab reset` knows what to undo even if this process
    // is killed.
    store.save(&session)?;

    let result = break_detect_fix(env, lab, &resolved, &mut session, &mut timeline).await;
    match result {
        Ok(report) => {
            store.finish(&session)?;
            Ok(report)
        }
        Err(e) => {
            let restored = undo_after_failure(env, &session, &e).await;
            store.save(&session)?;
            if restored {
                store.finish(&session)?;
            }
            Err(e)
        }
    }
}

async fn break_detect_fix(
    env: &LabEnv<'_>,
    lab: &LabSpec,
    target: &ResolvedTarget,
    session: &mut Session,
    timeline: &mut Timeline,
) -> Result<LabReport> {
    let store = SessionStore::new(env.workspace);
    let step = env.ui.step("Break");
    let broke = apply_break(env, lab, target, session).await;
    store.save(session)?;
    let broke = broke?;
    let broke_at = Instant::now();
    let broke_wall = SystemTime::now();
    step.ok(broke.join("; "));
    timeline.mark("break", broke.join("; "), broke_at);
    timeline.set_zero(broke_at);

    let step = env.ui.step(format!(
        "Detect {}",
        lab.symptoms
            .all
            .iter()
            .map(|s| target.render(&observe::describe(s)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // A refused break shows in its own words; the rest is watched for.
    let (mut seen, watch, missing) = observe::refused_symptoms(&lab.symptoms.all, &broke, broke_at);
    if !missing.is_empty() {
        return Err(LabError::NotObserved {
            expected: missing.join(", "),
            within: std::time::Duration::ZERO,
            seen: broke.join("; "),
        }
        .into());
    }
    let watched = match watch.is_empty() {
        true => Ok(Vec::new()),
        false => {
            observe::wait_for_symptoms(
                &env.client,
                target,
                &watch,
                lab.symptoms.within.0,
                &env.interrupt,
                |s| step.detail(&s.evidence),
            )
            .await
        }
    };
    seen.extend(watched?);
    session.symptoms_unix = Some(unix_now());
    for s in &seen {
        timeline.mark(
            target.render(&observe::describe(&s.symptom)),
            s.evidence.clone(),
            s.at,
        );
    }
    step.ok(format!("{} symptom(s) seen", seen.len()));

    let step = env.ui.step("Diagnose");
    let finding = diagnose(env, target).await?;
    let summary = finding
        .as_ref()
        .map_or("no problem found".to_string(), |f| f.summary.clone());
    timeline.mark("diagnose", summary.clone(), Instant::now());
    let expected_cause = lab.diagnosis.as_ref().map(|d| d.cause.name().to_string());
    let diagnosis_matches = expected_cause
        .as_ref()
        .map(|e| finding.as_ref().map(cause_name).as_ref() == Some(e));
    step.ok(&summary);

    let step = env.ui.step("Fix");
    let mut fixed_by = Vec::new();
    for action in &lab.solution {
        check_interrupt(env, "the lab's fix")?;
        // GitOps mode: the push's way to the cluster goes on the timeline (pushed,
        // fetched, applied; rolled out once verified).
        let done = if matches!(action, crate::lab::spec::Action::PushGit) {
            actions::push_git_timed(env).await.map(|(done, moments)| {
                for (name, detail, at) in moments {
                    timeline.mark(name, detail, at);
                }
                done
            })
        } else {
            actions::run(
                env,
                lab,
                target,
                action,
                Phase::Solution,
                &mut session.changes,
            )
            .await
        };
        match done {
            Ok(done) => {
                step.detail(&done);
                fixed_by.push(done);
            }
            Err(e) => {
                return Err(e);
            }
        }
    }
    store.save(session)?;
    timeline.mark("fix", fixed_by.join("; "), Instant::now());
    step.ok(fixed_by.join("; "));

    let step = env.ui.step("Verify");
    let verified = verify(env, lab, target, &session.changes, |m| step.detail(m)).await;
    verified?;
    session.fixed_unix = Some(unix_now());
    if lab.uses_git_push() {
        timeline.mark(
            "rolled out",
            "the controller's apply rolled out and every check passes",
            Instant::now(),
        );
    }
    timeline.mark("verify", "every check passes", Instant::now());
    step.ok("every check passes");

    Ok(LabReport {
        lab: lab.name.clone(),
        title: lab.title.clone(),
        target: target.target.describe(),
        healthy_image: target.image.clone(),
        broke,
        observed: seen.iter().map(|s| s.evidence.clone()).collect(),
        finding,
        expected_cause,
        diagnosis_matches,
        fixed_by,
        time_to_detect_s: seen
            .iter()
            .map(|s| timeline.seconds_since_zero(s.at))
            .fold(0.0, f64::max),
        time_to_recover_s: timeline.since_zero("verify").unwrap_or_default(),
        broke_unix_ms: unix_ms(broke_wall),
        detected_unix_ms: seen
            .iter()
            .map(|s| unix_ms(s.wall))
            .max()
            .unwrap_or_default(),
        phases: timeline.phases(),
        commits: session.changes.commits.clone(),
        reverts: session.changes.reverts.clone(),
    })
}

/// After a failed or interrupted run: puts the desired state back (the lab's changes
/// undone), and turns an interruption into one that says so. Returns whether it restored.
async fn undo_after_failure(env: &LabEnv<'_>, session: &Session, error: &Error) -> bool {
    let interrupted = matches!(error, Error::Interrupted(_));
    if interrupted {
        env.ui
            .note("interrupted: restoring the workspace's desired state (Ctrl-C again to stop now; `kindlab reset` finishes it later)");
    }
    match super::undo(env, session).await {
        Ok(done) => {
            env.ui.note(format!(
                "restored the workspace's desired state{}",
                if done.is_empty() {
                    String::new()
                } else {
                    format!(": {}", done.join(", "))
                }
            ));
            true
        }
        Err(e) => {
            env.ui.note(format!(
                "could not restore the desired state ({e}): run `kindlab reset`"
            ));
            false
        }
    }
}

/// How long a diagnosis that finds nothing is asked again after the symptoms were seen: the
/// kubelet's status update can trail the events that showed them.
const DIAGNOSIS_SETTLES_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The first finding, asked again for a few seconds while there is none (the symptoms are
/// already seen, so the cluster's status is what lags).
async fn diagnose(env: &LabEnv<'_>, target: &ResolvedTarget) -> Result<Option<Finding>> {
    let deadline = Instant::now() + DIAGNOSIS_SETTLES_WITHIN;
    loop {
        let finding = diagnose_once(env, target).await?;
        if finding.is_some() || Instant::now() >= deadline {
            return Ok(finding);
        }
        tracing::debug!("symptoms seen but no finding yet; asking again");
        check_interrupt(env, "the diagnosis")?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// What is wrong, as `kindlab diagnose` says it: the Deployment's unhealthy pods first
/// (asking the workspace's registry), else the Service in front of them.
async fn diagnose_once(env: &LabEnv<'_>, target: &ResolvedTarget) -> Result<Option<Finding>> {
    let access = diagnose::RegistryAccess::new().with_plain_http(env.registry_host.clone());
    let ns = &target.target.namespace;
    let mut found =
        diagnose::diagnose_deployment(&env.client, ns, &target.target.deployment, &access)
            .await?
            .findings;
    if found.is_empty()
        && let Some(service) = &target.service
    {
        found = diagnose::diagnose_target(
            &env.client,
            &diagnose::Target::Service(service.clone()),
            ns,
            &access,
        )
        .await?
        .findings;
    }
    Ok(found.into_iter().next())
}

/// The cause's name as `kindlab diagnose --output json` prints it (`tag-not-found`).
pub fn cause_name(finding: &Finding) -> String {
    serde_json::to_value(finding.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
