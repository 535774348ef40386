//! The cache of compiled plugins. A `.cwasm` file is native code the host maps and runs, so a
//! cache is used only when nobody but this user can have written it: the directory and the file
//! belong to this user and are writable by no one else. Anything else is compiled afresh
//! (slower, never unsafe) and not written to.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Whether `path` (a directory or a file of the cache) is this user's alone to write. A path
/// that does not exist yet is fine for the directory, which [`write_atomically`] then creates
/// private.
pub(super) fn is_private(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            !meta.file_type().is_symlink()
                && meta.uid() == effective_uid()
                && meta.mode() & 0o022 == 0
        }
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Makes this user's cache directory private again when others could write it (an older
/// copa-host created it under a permissive umask): the `.cwasm` files in it are removed first,
/// since anyone who could write the directory could have swapped one for another, and are
/// compiled again. A directory of another user, or a symlink, is left as it is (and unused).
pub(super) fn reclaim(dir: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() || meta.uid() != effective_uid() || meta.mode() & 0o022 == 0 {
        return;
    }
    let compiled = std::fs::read_dir(dir).into_iter().flatten().flatten();
    for entry in compiled.filter(|e| e.path().extension().is_some_and(|x| x == "cwasm")) {
        let _ = std::fs::remove_file(entry.path());
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Writes `bytes` to `path` in `dir` (created readable and writable by this user only) so that
/// no reader ever sees half a file.
pub(super) fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_private_cache_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("plugins");
        assert!(is_private(&cache), "a cache not made yet");
        let file = cache.join("x.cwasm");
        write_atomically(&cache, &file, b"code").unwrap();
        assert!(is_private(&cache) && is_private(&file));
        assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o700);

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!is_private(&file), "a file others may write");
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!is_private(&cache), "a directory others may write");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&cache, &link).unwrap();
        assert!(!is_private(&link), "a symlink may point anywhere");
    }
}
