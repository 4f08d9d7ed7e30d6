//! `kindlab init DIR`: the sample workspace, its overlay naming the tag `up` will push, and a
//! git repository with the sample as its first commit (never a commit in the user's own
//! repository).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::images;
use crate::ui::{self, Report};
use crate::workspace::{self, Workspace};

#[derive(Debug, Serialize)]
pub struct InitReport {
    pub workspace: String,
    pub files: Vec<PathBuf>,
    pub git: InitGit,
}

/// What `init` did about git.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum InitGit {
    /// A new repository with the sample as its first commit.
    Committed { commit: String },
    /// The directory is inside the user's own repository: kindlab commits nothing there.
    InsideRepository,
    /// git is not installed.
    NoGit,
}

pub fn run(dir: &Path) -> Result<InitReport> {
    let written = workspace::scaffold(dir)?;
    // The overlay names the tag `up` will push, so the first commit already says what runs.
    let ws = Workspace::discover(dir)?;
    images::record_expected_tags(&ws)?;
    let git = init_git(dir, &written)?;
    Ok(InitReport {
        workspace: dir.display().to_string(),
        files: written,
        git,
    })
}

/// A workspace is a git repository, as GitOps wants: `init` makes one with a first commit,
/// unless it is already inside one (never committing in the user's own repository).
fn init_git(dir: &Path, files: &[PathBuf]) -> Result<InitGit> {
    let Some(git) = workspace::Git::find(dir) else {
        return Ok(InitGit::NoGit);
    };
    if git.is_repository() && !git.is_ignored_by_enclosing_repository() {
        return Ok(InitGit::InsideRepository);
    }
    let commit = git.init_with_first_commit(files, "kindlab init: the sample workspace")?;
    Ok(InitGit::Committed { commit })
}

impl InitGit {
    fn describe(&self) -> String {
        match self {
            InitGit::Committed { commit } => format!(
                "git: a new repository, first commit {} (the GitOps labs commit and revert in it)",
                &commit[..commit.len().min(12)]
            ),
            InitGit::InsideRepository => {
                "git: inside an existing repository; commit the new files yourself".into()
            }
            InitGit::NoGit => {
                "git: not installed, so the workspace is not a repository (the git labs need one)"
                    .into()
            }
        }
    }
}

impl Report for InitReport {
    fn text(&self) -> String {
        let dir = Path::new(&self.workspace);
        let mut lines: Vec<String> = self
            .files
            .iter()
            .map(|f| format!("wrote {}", dir.join(f).display()))
            .collect();
        lines.push(self.git.describe());
        lines.push(String::new());
        lines.push(format!("Next: `cd {} && kindlab up`", self.workspace));
        ui::lines(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_lists_the_files_the_commit_and_the_next_step() {
        let report = InitReport {
            workspace: "lab".into(),
            files: vec!["kindlab.yaml".into(), "app/Dockerfile".into()],
            git: InitGit::Committed {
                commit: "0123456789abcdef0123".into(),
            },
        };
        assert_eq!(
            report.text(),
            "wrote lab/kindlab.yaml\n\
             wrote lab/app/Dockerfile\n\
             git: a new repository, first commit 0123456789ab (the GitOps labs commit and revert in it)\n\
             \n\
             Next: `cd lab && kindlab up`\n"
        );
    }

    #[test]
    fn json_names_the_git_state() {
        let report = InitReport {
            workspace: "lab".into(),
            files: vec![],
            git: InitGit::InsideRepository,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["git"]["state"], "inside-repository");
    }
}
