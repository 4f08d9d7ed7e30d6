//! `kindlab init`: writes the sample workspace embedded from `templates/workspace/`.

use std::path::{Path, PathBuf};

use include_dir::{Dir, DirEntry, include_dir};

use super::{MANIFEST_FILE, WorkspaceError};

static WORKSPACE_TEMPLATE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/workspace");

/// Writes the sample workspace into `dir` (created if needed). Refuses to overwrite an
/// existing `kindlab.yaml` or any file the template would write, so no user file is lost.
/// Returns the files written, relative to `dir`.
pub fn scaffold(dir: &Path) -> Result<Vec<PathBuf>, WorkspaceError> {
    let mut files = Vec::new();
    collect_files(&WORKSPACE_TEMPLATE, &mut files);
    let existing = dir.join(MANIFEST_FILE);
    if existing.exists() {
        return Err(WorkspaceError::ScaffoldExists { path: existing });
    }
    if let Some(clash) = files
        .iter()
        .map(|f| dir.join(f.path()))
        .find(|p| p.exists())
    {
        return Err(WorkspaceError::ScaffoldExists { path: clash });
    }
    let mut written = Vec::new();
    for file in files {
        let target = dir.join(file.path());
        let write_err = |source| WorkspaceError::Write {
            path: target.clone(),
            source,
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        std::fs::write(&target, file.contents()).map_err(write_err)?;
        written.push(file.path().to_path_buf());
    }
    Ok(written)
}

fn collect_files<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(d) => collect_files(d, out),
            DirEntry::File(f) => out.push(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Workspace;

    #[test]
    fn scaffolded_workspace_loads_and_refuses_a_second_init() {
        let dir = tempfile::tempdir().unwrap();
        let written = scaffold(dir.path()).unwrap();
        assert!(written.contains(&PathBuf::from(MANIFEST_FILE)));
        let ws = Workspace::discover(dir.path()).unwrap();
        assert_eq!(ws.images[0].name, "orders-api");
        assert!(ws.deploy.is_some());
        assert!(matches!(
            scaffold(dir.path()),
            Err(WorkspaceError::ScaffoldExists { .. })
        ));
    }
}
