//! The workspace's side: its `kindlab` remote, what HEAD is, what the server has. Through the
//! `git` CLI, as the rest of kindlab's git (the user's configuration applies).

use std::path::{Path, PathBuf};

use super::{BRANCH, GitOpsError, REMOTE};
use crate::error::Result;
use crate::workspace::Git;

pub struct Repo {
    git: Git,
    pub top: PathBuf,
}

impl Repo {
    /// The git repository holding the workspace, refused with the fix when there is none.
    pub fn open(workspace: &Path) -> Result<Repo> {
        let not_one = || GitOpsError::NotARepository {
            path: workspace.to_path_buf(),
        };
        let git = Git::find(workspace).ok_or_else(not_one)?;
        if !git.is_repository() {
            return Err(not_one().into());
        }
        let top = PathBuf::from(git.run(&["rev-parse", "--show-toplevel"])?);
        Ok(Repo { git, top })
    }

    pub fn head(&self) -> Option<String> {
        self.git.head().ok()
    }

    /// The `kindlab` remote's URL, if the workspace has it.
    pub fn remote_url(&self) -> Option<String> {
        self.git.run(&["remote", "get-url", REMOTE]).ok()
    }

    /// Adds or corrects the `kindlab` remote; `git push kindlab` pushes the current branch to
    /// the branch the controller follows. A `kindlab` remote the user made is refused, not
    /// changed.
    pub fn set_remote(&self, url: &str) -> Result<()> {
        match self.remote_url() {
            Some(current) if !super::is_kindlab_remote(&current) => {
                return Err(GitOpsError::RemoteTaken { url: current }.into());
            }
            Some(_) => self.git.run(&["remote", "set-url", REMOTE, url])?,
            None => self.git.run(&["remote", "add", REMOTE, url])?,
        };
        let push = format!("remote.{REMOTE}.push");
        self.git
            .run(&["config", &push, &format!("HEAD:refs/heads/{BRANCH}")])?;
        Ok(())
    }

    /// Removes the `kindlab` remote (down: only after [`super::is_kindlab_remote`] says it is
    /// kindlab's).
    pub fn remove_remote(&self) -> Result<()> {
        self.git.run(&["remote", "remove", REMOTE])?;
        Ok(())
    }

    /// The commit the server's branch is at (None: empty repository or no answer).
    pub fn pushed(&self) -> Option<String> {
        let out = self
            .git
            .run(&["ls-remote", REMOTE, &format!("refs/heads/{BRANCH}")])
            .ok()?;
        out.split_whitespace().next().map(str::to_string)
    }

    /// `git push kindlab` (HEAD to the controller's branch). Forced: the workspace is the
    /// source of truth and the server only mirrors it.
    pub fn push(&self) -> Result<()> {
        self.git.run(&[
            "push",
            "--quiet",
            "--force",
            REMOTE,
            &format!("HEAD:refs/heads/{BRANCH}"),
        ])?;
        Ok(())
    }

    pub fn git(&self) -> &Git {
        &self.git
    }
}
