//! Files that other processes read while Wren replaces them: the CNI plugins the
//! container runtime runs, the conflist and the kubeconfig they read. Each is written to
//! a temporary file in its own directory, flushed, given its mode and renamed over the
//! old one, so that a reader sees the old file or the new one, never a part of either.

use std::fs::{File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::ClusterError;

/// Replaces `path` with `contents` (mode `mode`) atomically.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), ClusterError> {
    let mut file = temporary_beside(path)?;
    file.write_all(contents)
        .map_err(|e| file_error(path, format!("writing a temporary file: {e}")))?;
    finish(file, path, mode)
}

/// Replaces `target` with a copy of `source` (mode `mode`) atomically; `source` is read
/// as a stream (a plugin binary may be large).
pub fn copy_atomic(source: &Path, target: &Path, mode: u32) -> Result<(), ClusterError> {
    let mut input = File::open(source).map_err(|e| file_error(source, e.to_string()))?;
    let mut file = temporary_beside(target)?;
    std::io::copy(&mut input, &mut file)
        .map_err(|e| file_error(target, format!("copying {}: {e}", source.display())))?;
    finish(file, target, mode)
}

fn temporary_beside(path: &Path) -> Result<NamedTempFile, ClusterError> {
    let directory = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".wren-")
        .tempfile_in(directory)
        .map_err(|e| {
            file_error(
                path,
                format!("creating a temporary file in {}: {e}", directory.display()),
            )
        })
}

fn finish(file: NamedTempFile, path: &Path, mode: u32) -> Result<(), ClusterError> {
    file.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .map_err(|e| file_error(path, format!("setting mode {mode:o}: {e}")))?;
    file.as_file()
        .sync_all()
        .map_err(|e| file_error(path, format!("flushing: {e}")))?;
    file.persist(path)
        .map_err(|e| file_error(path, format!("renaming into place: {}", e.error)))?;
    Ok(())
}

fn file_error(path: &Path, reason: String) -> ClusterError {
    ClusterError::File {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("10-wren.conflist");
        write_atomic(&path, b"old", 0o644).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn copies_with_its_mode_and_names_a_missing_source() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("wren-ipam");
        std::fs::write(&source, b"\x7fELF...").unwrap();
        let target = dir.path().join("installed");
        copy_atomic(&source, &target, 0o755).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"\x7fELF...");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let missing = dir.path().join("absent");
        let error = copy_atomic(&missing, &target, 0o755)
            .unwrap_err()
            .to_string();
        assert!(error.contains("absent"), "{error}");
        assert_eq!(std::fs::read(&target).unwrap(), b"\x7fELF...");
    }
}
