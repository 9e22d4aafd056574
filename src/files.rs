//! Private files (keyring, identities, extracts): written atomically, exclusively, without
//! following links, mode 0600, and durable before the call returns.
//!
//! Every write goes to a temporary file of its own, created with `O_CREAT | O_EXCL` (which
//! never follows a link and never reuses a file someone else created: its mode is ours), in
//! the target's folder; it is synced, renamed over the target (a rename replaces a link at
//! the target instead of following it), and the folder is synced so that the rename itself
//! survives a crash. A failure at any step is an error: callers such as key rotation go on
//! to destroy keys only once the new file is known to be durable.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates `dir` (and its parents) if missing; a folder this creates has mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

/// A temporary path beside `path` that nobody else uses: `.<name>.<random>.tmp`.
fn temporary_beside(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let suffix = hex::encode(*crate::crypto::random_secret::<8>()?);
    Ok(path.with_file_name(format!(".{name}.{suffix}.tmp")))
}

/// Writes `bytes` to a new temporary file beside `path` (exclusive, 0600, synced) and
/// returns its path. The caller renames it into place ([`commit_temporary`]) or removes it.
pub fn write_temporary(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let dir = parent_of(path);
    create_private_dir(dir)?;
    let tmp = temporary_beside(path)?;
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        // INVARIANT: create_new made this file, so its mode is the 0600 asked for; set it
        // again anyway in case a umask narrowed or a filesystem ignored it.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(Error::io(&tmp, e))
        }
    }
}

/// Renames `tmp` over `path` and syncs the folder. A failed rename leaves `tmp` where it is:
/// it may be the only copy of what it holds (a new identity that the keyring already opens
/// only with), so it is never removed here.
pub fn commit_temporary(tmp: &Path, path: &Path) -> Result<()> {
    fs::rename(tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(parent_of(path))
}

/// Writes `bytes` to `path` atomically with mode 0600, replacing what was there.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temporary(path, bytes)?;
    commit_temporary(&tmp, path).inspect_err(|_| {
        // The bytes are still in the caller's hands: the temporary copy can go.
        let _ = fs::remove_file(&tmp);
    })
}

/// Writes `bytes` to `path` atomically with mode 0600, refusing if `path` exists (checked
/// by the link that puts the file in place, so two writers cannot both succeed).
pub fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temporary(path, bytes)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_dir(parent_of(path)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::VaultExists {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes renames and creations in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_private_file_is_0600_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.age");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private_file(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_link_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        let path = dir.path().join("keyring.age");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_private_file(&path, b"secret").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert!(!fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&path).unwrap(), b"secret");
    }

    #[test]
    fn the_old_fixed_temporary_name_is_never_used_or_followed() {
        // A link planted at the name the previous version always used (`keyring.tmp`) and
        // a world-readable file there are both left alone.
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("keyring.tmp")).unwrap();
        write_private_file(&dir.path().join("keyring.age"), b"secret").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    }

    #[test]
    fn a_new_private_file_refuses_an_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.txt");
        write_new_private_file(&path, b"first").unwrap();
        let second = write_new_private_file(&path, b"second").unwrap_err();
        assert!(matches!(second, Error::VaultExists { .. }), "{second}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_rename_keeps_the_source() {
        // The source may be the only copy of a new identity: it must survive a failed move.
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("identity.txt.next");
        write_new_private_file(&source, b"the only copy of a new identity").unwrap();
        let nowhere = dir.path().join("missing-folder").join("identity.txt");
        assert!(commit_temporary(&source, &nowhere).is_err());
        assert_eq!(
            fs::read(&source).unwrap(),
            b"the only copy of a new identity"
        );
    }

    #[test]
    fn a_private_folder_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a").join("data");
        create_private_dir(&data).unwrap();
        assert_eq!(fs::metadata(&data).unwrap().mode() & 0o777, 0o700);
    }
}
