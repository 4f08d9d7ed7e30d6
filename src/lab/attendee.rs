//! Attendee mode: kindlab sets the lab up, the attendee breaks through it by hand.
//!
//! `lab start` checks the environment is healthy, applies the break, waits until its symptoms
//! show, and prints the goal and the steps; `lab check` says what is still wrong (a pointer,
//! not a spoiler) or that it is fixed, with the times; `lab hint` gives the next hint;
//! `lab solve` applies the solution and records that help was used. The session lives in the
//! workspace (`.kindlab/sessions/`) and is mirrored into the lab's namespace.

use serde::Serialize;

use super::check::{self, Verdict};
use super::env::LabEnv;
use super::observe;
use super::phases;
use super::session::{self, CheckRecord, Session, SessionReport, SessionStore, unix_now};
use super::spec::{LabError, LabSpec, LabText, TextStep};
use super::target::{ResolvedTarget, TargetRef};
use crate::error::{Error, Result};
use crate::interrupt::Interrupted;

#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub session: SessionReport,
    /// What the break did (for the instructor's eyes; the attendee reads the text).
    pub broke: Vec<String>,
    pub text: LabText,
}

/// `kindlab lab start`.
pub async fn start(
    env: &LabEnv<'_>,
    lab: &LabSpec,
    source: &str,
    target: &TargetRef,
    attendee: &str,
    wait: bool,
) -> Result<Started> {
    let store = SessionStore::new(env.workspace);
    if let Ok(running) = store.find(env.workspace, Some(&target.namespace), Some(&env.context)) {
        if running.fixed_unix.is_some() || session::ended_on_cluster(&env.client, &running).await {
            // A finished lab (or one the instructor reset): its report is kept, the next
            // one starts.
            store.finish(&running)?;
        } else {
            return Err(LabError::SessionRunning {
                lab: running.lab,
                started: running.started_at,
            }
            .into());
        }
    }

    phases::require_guardrails(env, lab).await?;
    // The text's `kubectl apply -k ${overlay}` must fix this namespace, not the overlay's
    // own; written first, so the health check's pointers name it too.
    let overlay = env.overlay_for(&target.namespace).await?;
    let step = env.ui.step(format!("Checking {}", target.describe()));
    let mut resolved = phases::baseline(env, target, lab.uses_git_push()).await?;
    resolved.overlay = overlay;
    step.ok("healthy, as the workspace declares it");

    let mut session = phases::new_session(env, lab, source, &resolved, attendee);
    store.save(&session)?;
    let step = env.ui.step(format!("Starting lab {}", lab.name));
    let broke = phases::apply_break(env, lab, &resolved, &mut session).await;
    store.save(&session)?;
    let broke = match broke {
        Ok(b) => b,
        Err(e) => {
            // Failed before the restore prints its own lines.
            step.fail("");
            return Err(restore_after(env, &store, &session, e).await);
        }
    };
    // A refused break shows in its own words, at once.
    let (refused, watch, missing) =
        observe::refused_symptoms(&lab.symptoms.all, &broke, std::time::Instant::now());
    if !missing.is_empty() {
        step.fail("");
        let e = LabError::NotObserved {
            expected: missing.join(", "),
            within: std::time::Duration::ZERO,
            seen: broke.join("; "),
        };
        return Err(restore_after(env, &store, &session, e.into()).await);
    }
    if !refused.is_empty() {
        session.symptoms_unix = Some(unix_now());
    }
    if wait && !watch.is_empty() && refused.is_empty() {
        step.detail("waiting for the break to take effect");
        // The first symptom proves the break is live; the rest are the attendee's to see.
        let first = &watch[..1];
        let seen = observe::wait_for_symptoms(
            &env.client,
            &resolved,
            first,
            lab.symptoms.within.0,
            &env.interrupt,
            |_| {},
        )
        .await;
        match seen {
            Ok(_) => session.symptoms_unix = Some(unix_now()),
            Err(e) => {
                // Failed before the restore prints its own lines.
                step.fail("");
                return Err(restore_after(env, &store, &session, e).await);
            }
        }
    }
    // Not naming the symptom: seeing it is the attendee's first step.
    step.ok(match session.time_to_symptoms_s() {
        Some(s) => format!(
            "the failure is live (it took {} to show)",
            crate::ui::format_seconds(Some(s))
        ),
        None => "the break is applied".to_string(),
    });
    session::mirror(&env.client, &mut session).await;
    store.save(&session)?;
    Ok(Started {
        session: session.report(),
        broke,
        text: rendered_text(&lab.text, &resolved),
    })
}

/// A failure after the break: the lab is put back, and the error says so.
async fn restore_after(
    env: &LabEnv<'_>,
    store: &SessionStore,
    session: &Session,
    error: Error,
) -> Error {
    if matches!(error, Error::Interrupted(_)) {
        env.ui.note("interrupted: restoring the workspace's desired state (Ctrl-C again to stop now; `kindlab reset` finishes it later)");
    }
    match super::undo(env, session).await {
        Ok(_) => {
            let _ = store.finish(session);
            session::unmirror(&env.client, &session.target.target.namespace).await;
            match error {
                Error::Interrupted(i) => Error::Interrupted(Interrupted {
                    during: i.during,
                    left: "the workspace's desired state is restored".into(),
                    next: format!(
                        "start the lab again when you like: `kindlab lab start {}`",
                        session.lab
                    ),
                }),
                other => other,
            }
        }
        Err(undo_error) => {
            env.ui.note(format!(
                "could not restore the lab ({undo_error}): run `kindlab reset`"
            ));
            error
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub session: SessionReport,
    pub verdict: Verdict,
}

/// `kindlab lab check`: fixed or not, and what is still wrong.
pub async fn check(env: &LabEnv<'_>, lab: &LabSpec, mut session: Session) -> Result<Checked> {
    let store = SessionStore::new(env.workspace);
    end_if_ended_on_cluster(env, &store, &session).await?;
    let verdict = check::run(env, lab, &session.target, &session.changes).await?;
    let now = unix_now();
    if session.symptoms_unix.is_none() {
        // `start --no-wait`: the first check is the earliest kindlab can say it broke.
        session.symptoms_unix = Some(now);
    }
    if verdict.fixed && session.fixed_unix.is_none() {
        session.fixed_unix = Some(now);
    }
    session.checks.push(CheckRecord {
        at: session::rfc3339(std::time::SystemTime::now()),
        fixed: verdict.fixed,
        pointers: verdict.pointers(),
    });
    session::mirror(&env.client, &mut session).await;
    store.save(&session)?;
    if verdict.fixed {
        crate::workspace::write_json_atomic(&report_path(&store, &session), &session.report())?;
    }
    Ok(Checked {
        session: session.report(),
        verdict,
    })
}

/// A session the cluster no longer has (the instructor's `workshop reset`) ends here too,
/// with its report kept: checking it would credit a fix the attendee did not make.
async fn end_if_ended_on_cluster(
    env: &LabEnv<'_>,
    store: &SessionStore,
    session: &Session,
) -> Result<()> {
    if !session::ended_on_cluster(&env.client, session).await {
        return Ok(());
    }
    store.finish(session)?;
    Err(LabError::EndedOnCluster {
        lab: session.lab.clone(),
        namespace: session.target.target.namespace.clone(),
    }
    .into())
}

fn report_path(store: &SessionStore, session: &Session) -> std::path::PathBuf {
    let stamp: String = session
        .started_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    store.dir().join("reports").join(format!(
        "{stamp}-{}-{}.json",
        session.lab, session.target.target.namespace
    ))
}

#[derive(Debug, Clone, Serialize)]
pub struct Hint {
    pub lab: String,
    /// 1-based.
    pub number: usize,
    pub of: usize,
    pub hint: Option<String>,
}

/// `kindlab lab hint`: the next hint (no cluster needed).
pub fn hint(store: &SessionStore, lab: &LabSpec, mut session: Session) -> Result<Hint> {
    let index = session.hints_used as usize;
    let hint = lab.hints.get(index).map(|h| session.target.render(h));
    if hint.is_some() {
        session.hints_used += 1;
        store.save(&session)?;
    }
    Ok(Hint {
        lab: lab.name.clone(),
        number: (index + 1).min(lab.hints.len()),
        of: lab.hints.len(),
        hint,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Solved {
    pub session: SessionReport,
    pub applied: Vec<String>,
}

/// `kindlab lab solve`: the lab's solution, applied and verified; the session records help.
pub async fn solve(env: &LabEnv<'_>, lab: &LabSpec, mut session: Session) -> Result<Solved> {
    let store = SessionStore::new(env.workspace);
    end_if_ended_on_cluster(env, &store, &session).await?;
    let target: ResolvedTarget = session.target.clone();
    let step = env.ui.step(format!("Solving lab {}", lab.name));
    session.solved_with_help = true;
    let mut applied = Vec::new();
    for action in &lab.solution {
        let done = super::actions::run(
            env,
            lab,
            &target,
            action,
            super::actions::Phase::Solution,
            &mut session.changes,
        )
        .await;
        store.save(&session)?;
        match done {
            Ok(d) => {
                step.detail(&d);
                applied.push(d);
            }
            Err(e) => {
                return Err(e);
            }
        }
    }
    let verified = phases::verify(env, lab, &target, &session.changes, |m| step.detail(m)).await;
    verified?;
    step.ok("fixed");
    if session.fixed_unix.is_none() {
        session.fixed_unix = Some(unix_now());
    }
    session::mirror(&env.client, &mut session).await;
    store.save(&session)?;
    crate::workspace::write_json_atomic(&report_path(&store, &session), &session.report())?;
    Ok(Solved {
        session: session.report(),
        applied,
    })
}

/// The lab's text with the target's names filled in.
pub fn rendered_text(text: &LabText, target: &ResolvedTarget) -> LabText {
    let r = |s: &String| target.render(s);
    LabText {
        summary: r(&text.summary),
        goal: text.goal.iter().map(r).collect(),
        steps: text
            .steps
            .iter()
            .map(|s| TextStep {
                title: r(&s.title),
                text: s.text.as_ref().map(r),
                commands: s.commands.iter().map(r).collect(),
                expect: s.expect.as_ref().map(r),
            })
            .collect(),
        why: text.why.iter().map(r).collect(),
        prevent: text.prevent.iter().map(r).collect(),
    }
}
