//! The workspace as a git repository: `kindlab init` makes one, and the git variant of a lab
//! commits its break and reverts it.
//!
//! kindlab drives the `git` CLI (found on PATH) rather than a git library: the user's own
//! configuration applies (identity, hooks, signing, line endings), every step is a command
//! they could type themselves, and a library would add a C or large Rust dependency for four
//! commands. kindlab never commits, stages or discards a change it did not make: a file with
//! the user's uncommitted edits is refused with the fix.

use std::path::{Path, PathBuf};

use super::WorkspaceError;

#[derive(Debug, Clone)]
pub struct Git {
    program: PathBuf,
    dir: PathBuf,
}

impl Git {
    /// `git` for the repository that holds `dir`; None when git is not installed.
    pub fn find(dir: &Path) -> Option<Git> {
        which::which("git").ok().map(|program| Git {
            program,
            dir: dir.to_path_buf(),
        })
    }

    pub(crate) fn run(&self, args: &[&str]) -> Result<String, WorkspaceError> {
        let out = std::process::Command::new(&self.program)
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| WorkspaceError::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(WorkspaceError::Git {
                command: format!("git {}", args.join(" ")),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// True when the directory is inside a git work tree.
    pub fn is_repository(&self) -> bool {
        self.run(&["rev-parse", "--is-inside-work-tree"])
            .is_ok_and(|o| o == "true")
    }

    /// True when the directory is in a work tree that ignores it (a scratch directory such
    /// as `target/` or `.lab/`): it is not part of that repository.
    pub fn is_ignored_by_enclosing_repository(&self) -> bool {
        self.run(&["check-ignore", "-q", "."]).is_ok()
    }

    /// Identity flags for a commit when the user has none configured (a fresh machine, CI):
    /// the commit is then attributed to kindlab, which made it.
    fn identity(&self) -> Vec<&'static str> {
        let has = |key: &str| self.run(&["config", key]).is_ok_and(|v| !v.is_empty());
        if has("user.email") && has("user.name") {
            Vec::new()
        } else {
            vec![
                "-c",
                "user.name=kindlab",
                "-c",
                "user.email=kindlab@localhost",
            ]
        }
    }

    /// `git init` and a first commit of exactly `files` (relative to the directory): other
    /// files already there are the user's, and stay uncommitted.
    pub fn init_with_first_commit(
        &self,
        files: &[PathBuf],
        message: &str,
    ) -> Result<String, WorkspaceError> {
        self.run(&["init", "-q"])?;
        let mut add = vec!["add".to_string(), "--".to_string()];
        add.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
        let add: Vec<&str> = add.iter().map(String::as_str).collect();
        self.run(&add)?;
        let mut args = self.identity();
        args.extend(["commit", "-q", "-m", message]);
        self.run(&args)?;
        self.head()
    }

    pub fn head(&self) -> Result<String, WorkspaceError> {
        self.run(&["rev-parse", "HEAD"])
    }

    /// True when `path` has no uncommitted change (staged or not) and is tracked.
    pub fn is_clean(&self, path: &Path) -> Result<bool, WorkspaceError> {
        let path = path.to_string_lossy();
        let tracked = self
            .run(&["ls-files", "--error-unmatch", "--", &path])
            .is_ok();
        let status = self.run(&["status", "--porcelain", "--", &path])?;
        Ok(tracked && status.is_empty())
    }

    /// Refuses (with the fix) when `path` has changes kindlab did not make.
    pub fn require_clean(&self, path: &Path) -> Result<(), WorkspaceError> {
        if self.is_clean(path)? {
            Ok(())
        } else {
            Err(WorkspaceError::Uncommitted {
                path: path.to_path_buf(),
            })
        }
    }

    /// Commits exactly `path` (other staged changes stay staged, untouched).
    pub fn commit_file(&self, path: &Path, message: &str) -> Result<String, WorkspaceError> {
        let path = path.to_string_lossy();
        let mut args = self.identity();
        args.extend(["commit", "-q", "-m", message, "--only", "--", &path]);
        self.run(&args)?;
        self.head()
    }

    /// `git revert --no-edit COMMIT`, returning the new commit.
    pub fn revert(&self, commit: &str) -> Result<String, WorkspaceError> {
        let mut args = self.identity();
        args.extend(["revert", "--no-edit", commit]);
        self.run(&args)?;
        self.head()
    }

    /// True when `commit` is HEAD or one of its ancestors.
    pub fn is_ancestor(&self, commit: &str) -> bool {
        self.run(&["merge-base", "--is-ancestor", commit, "HEAD"])
            .is_ok()
    }

    /// True when a later commit says it reverts `commit` (as `git revert` writes it).
    pub fn is_reverted(&self, commit: &str) -> bool {
        self.run(&[
            "log",
            "--format=%H",
            &format!("--grep=This reverts commit {commit}"),
            &format!("{commit}..HEAD"),
        ])
        .is_ok_and(|o| !o.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_its_own_file_and_refuses_a_dirty_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "a: 1\n").unwrap();
        std::fs::write(dir.path().join("b.yaml"), "b: 1\n").unwrap();
        let git = Git::find(dir.path()).expect("git is installed");
        assert!(!git.is_repository());
        std::fs::write(dir.path().join("mine.txt"), "not kindlab's\n").unwrap();
        let first = git
            .init_with_first_commit(&["a.yaml".into(), "b.yaml".into()], "first")
            .unwrap();
        // A file that was there before is not committed.
        assert!(!git.is_clean(Path::new("mine.txt")).unwrap());
        assert!(git.is_repository());

        // The user's own edit, not committed: kindlab refuses to touch that file.
        std::fs::write(dir.path().join("b.yaml"), "b: 2\n").unwrap();
        assert!(matches!(
            git.require_clean(Path::new("b.yaml")),
            Err(WorkspaceError::Uncommitted { .. })
        ));

        std::fs::write(dir.path().join("a.yaml"), "a: 2\n").unwrap();
        let broke = git.commit_file(Path::new("a.yaml"), "break a").unwrap();
        assert_ne!(broke, first);
        // The user's change to b is still there, uncommitted.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.yaml")).unwrap(),
            "b: 2\n"
        );
        assert!(!git.is_clean(Path::new("b.yaml")).unwrap());

        assert!(!git.is_reverted(&broke));
        let reverted = git.revert(&broke).unwrap();
        assert_ne!(reverted, broke);
        assert!(git.is_reverted(&broke));
        assert!(git.is_ancestor(&broke));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.yaml")).unwrap(),
            "a: 1\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.yaml")).unwrap(),
            "b: 2\n"
        );
    }
}
