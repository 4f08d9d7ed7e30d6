//! Break/fix labs. Each lab is data (`labs/*.yaml`, embedded at build time, or a file the
//! user names); one generic engine breaks the target, watches for the symptoms, diagnoses,
//! applies the solution and checks the result. `lab run` does it all unattended; attendee
//! mode (`lab start`, `check`, `hint`, `solve`) leaves the diagnosis and the fix to a person.

pub mod actions;
pub mod attendee;
pub mod check;
pub mod command;
pub mod env;
pub mod observe;
pub mod phases;
pub mod render;
pub mod report;
pub mod resources;
pub mod runner;
pub mod session;
mod spec;
pub mod target;
pub mod timeline;

pub use env::LabEnv;
pub use spec::{
    Action, CheckKind, LabError, LabSpec, LabText, Level, Symptom, builtin_labs, builtin_source,
    load_lab, parse, schema,
};

use crate::error::Result;
use crate::workspace::Git;
use session::Session;

/// Undoes what a lab session changed: its break commits reverted, files it edited put back
/// (never a file the attendee has edited since: that one is kept and reported), then the
/// workspace's desired state applied over every field the lab set, and what it created
/// deleted. Returns what it did, in words.
pub async fn undo(env: &LabEnv<'_>, session: &Session) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let changes = &session.changes;
    let root = &env.workspace.root;
    let git = Git::find(root).filter(Git::is_repository);
    for commit in &changes.commits {
        let Some(git) = &git else {
            break;
        };
        if !git.is_ancestor(commit) || git.is_reverted(commit) {
            continue;
        }
        let clean = changes
            .files
            .iter()
            .all(|f| git.is_clean(&f.path).unwrap_or(false));
        if clean {
            let revert = git.revert(commit)?;
            done.push(format!(
                "reverted the lab's commit {} with {}",
                actions::short(commit),
                actions::short(&revert)
            ));
        } else {
            done.push(format!(
                "kept the lab's commit {}: its files have your uncommitted changes (revert it yourself: `git revert {}`)",
                actions::short(commit),
                actions::short(commit)
            ));
        }
    }
    if changes.commits.is_empty() {
        for file in &changes.files {
            let path = root.join(&file.path);
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current == file.lab_version {
                crate::workspace::write_atomic(&path, file.original.as_bytes())?;
                done.push(format!("restored {}", file.path.display()));
            } else if current != file.original {
                done.push(format!(
                    "kept {}: it differs from both the lab's version and the original (your edit?)",
                    file.path.display()
                ));
            }
        }
    }
    // GitOps mode: the cluster follows the lab's Git server; the revert reaches it by a push
    // and the controller's sync (kindlab's own apply would fight the controller).
    if env.workspace.gitops {
        done.push(actions::push_git(env).await?);
        return Ok(done);
    }
    done.extend(
        env.restore(&session.target.target.namespace, changes, false)
            .await?,
    );
    Ok(done)
}
