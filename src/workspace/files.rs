//! Writing the user's files and kindlab's own state without ever leaving half a file: write a
//! temporary file in the same directory, then rename it over the target (atomic on POSIX).

use std::path::Path;

use super::WorkspaceError;

/// Replaces `path` with `contents` atomically, keeping the old file's permissions. Creates
/// missing parent directories.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), WorkspaceError> {
    use std::io::Write;
    let write_err = |source| WorkspaceError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".kindlab-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_err)?;
    temp.write_all(contents).map_err(write_err)?;
    temp.as_file().sync_all().map_err(write_err)?;
    // An existing file keeps its mode; a new one gets the usual 0644 (a temporary file is
    // created 0600).
    let permissions = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions(),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(0o644)
        }
    };
    temp.as_file()
        .set_permissions(permissions)
        .map_err(write_err)?;
    temp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// [`write_atomic`] of `value` as pretty JSON with a final newline.
pub fn write_json_atomic<T: serde::Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), WorkspaceError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| WorkspaceError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    text.push(b'\n');
    write_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.yaml");
        write_atomic(&path, b"one\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "a new file is readable by others");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b.yaml")]);
    }
}
