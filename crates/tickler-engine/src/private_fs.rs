//! Files and directories that hold recipients' addresses: created private, trusted only when
//! ours. tickler changes permissions only on what it created, never follows a symbolic link it
//! did not make, and refuses a path another user owns or could write, naming it and its owner
//! (as sshd refuses a key file others could write). The daemon, the offline tools and the CLI
//! all go through here for what they create: the data directory, the socket's directory, the
//! outboxes, exports and reports.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TrustError {
    #[error(
        "{path} is owned by uid {owner}, not by this user (uid {me}): tickler trusts only what it \
         owns; chown it to uid {me} or use another path"
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "{path} is writable by its group or by others (mode {mode:04o}): another user could \
         replace what tickler keeps there; chmod go-w it or use another path"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error("{path} is a symbolic link: tickler does not follow it; give the real path")]
    Symlink { path: PathBuf },
    #[error("{path} is not a {expected}")]
    WrongKind {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TrustError + use<> {
    let path = path.to_owned();
    move |source| TrustError::Io { what, path, source }
}

/// This process's effective uid.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A directory tickler keeps private things in. Created with `mode` (and its missing parents)
/// when absent: then, and only then, its permissions (and `group`) are set. An existing one
/// must be a real directory, owned by this user, writable by no one else; it is left as it is.
/// Returns whether it was created.
pub fn private_dir(path: &Path, mode: u32, group: Option<u32>) -> Result<bool, TrustError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            check_owned(path, &meta, "directory")?;
            Ok(false)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io("create", parent))?;
            }
            std::fs::DirBuilder::new()
                .mode(mode)
                .create(path)
                .map_err(io("create", path))?;
            // The umask may have taken bits the mode asked for (a group's read and search).
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(io("set the permissions of", path))?;
            if let Some(gid) = group {
                std::os::unix::fs::chown(path, None, Some(gid))
                    .map_err(io("give its group to", path))?;
            }
            Ok(true)
        }
        Err(err) => Err(io("inspect", path)(err)),
    }
}

/// Checks an existing path: not a symbolic link, of the expected kind, owned by this user and
/// writable by no one else.
pub fn check_owned(
    path: &Path,
    meta: &std::fs::Metadata,
    expected: &'static str,
) -> Result<(), TrustError> {
    if meta.file_type().is_symlink() {
        return Err(TrustError::Symlink {
            path: path.to_owned(),
        });
    }
    let kind_ok = match expected {
        "directory" => meta.is_dir(),
        _ => meta.is_file(),
    };
    if !kind_ok {
        return Err(TrustError::WrongKind {
            path: path.to_owned(),
            expected,
        });
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(TrustError::NotOwned {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(TrustError::Writable {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Opens a file tickler appends to (an outbox), creating it 0600 when absent; never through a
/// symbolic link, and only a regular file this user owns that no one else may write.
pub fn open_private_append(path: &Path) -> Result<File, TrustError> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => TrustError::Symlink {
                path: path.to_owned(),
            },
            _ => io("open", path)(err),
        })?;
    let meta = file.metadata().map_err(io("inspect", path))?;
    check_owned(path, &meta, "regular file")?;
    Ok(file)
}

/// Creates `path` afresh, 0600, for writing: whatever was there (a file, or a symbolic link,
/// which is removed rather than followed) is replaced by a new private file.
pub fn create_private_fresh(path: &Path) -> Result<File, TrustError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(TrustError::WrongKind {
                path: path.to_owned(),
                expected: "regular file",
            });
        }
        Ok(_) => std::fs::remove_file(path).map_err(io("replace", path))?,
        Err(_) => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(io("create", path))
}

/// Writes a whole file (an export, a report) privately: into a new 0600 file beside it, synced,
/// then renamed over `path`, so a reader never sees half of it, a symbolic link at `path` is
/// replaced rather than followed, and an existing file's looser mode is not kept.
pub struct PrivateFile {
    target: PathBuf,
    temporary: PathBuf,
    file: Option<File>,
}

impl PrivateFile {
    pub fn create(target: &Path) -> Result<PrivateFile, TrustError> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temporary)
            .map_err(io("create", &temporary))?;
        Ok(PrivateFile {
            target: target.to_owned(),
            temporary,
            file: Some(file),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until committed")
    }

    /// Syncs and renames the file into place.
    pub fn commit(mut self) -> Result<(), TrustError> {
        let mut file = self.file.take().expect("open until committed");
        file.flush().map_err(io("write", &self.temporary))?;
        file.sync_all().map_err(io("sync", &self.temporary))?;
        std::fs::rename(&self.temporary, &self.target).map_err(io("rename into", &self.target))
    }
}

impl Write for PrivateFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file().flush()
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.temporary); // not committed: leave nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_directory_keeps_its_mode_and_a_new_one_gets_the_one_asked() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!private_dir(&shared, 0o700, None).unwrap());
        let mode = std::fs::metadata(&shared).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "not ours to change");
        let new = shared.join("admin");
        assert!(private_dir(&new, 0o700, None).unwrap());
        assert_eq!(std::fs::metadata(&new).unwrap().mode() & 0o7777, 0o700);
    }

    #[test]
    fn a_directory_others_can_write_or_a_symlink_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = private_dir(&open, 0o700, None).unwrap_err().to_string();
        assert!(
            err.contains("writable by its group or by others (mode 1777)"),
            "{err}"
        );
        assert!(err.contains("open"), "{err}");
        assert_eq!(std::fs::metadata(&open).unwrap().mode() & 0o7777, 0o1777);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        let err = private_dir(&link, 0o700, None).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn an_append_file_is_never_opened_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep\nlast").unwrap();
        let outbox = dir.path().join("outbox.jsonl");
        std::os::unix::fs::symlink(&victim, &outbox).unwrap();
        let err = open_private_append(&outbox).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\nlast");
    }

    #[test]
    fn a_whole_file_replaces_a_symlink_and_a_loose_mode_instead_of_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        let export = dir.path().join("export.jsonl");
        std::os::unix::fs::symlink(&victim, &export).unwrap();
        let mut file = PrivateFile::create(&export).unwrap();
        file.write_all(b"events").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        let meta = std::fs::symlink_metadata(&export).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&export).unwrap(), "events");
    }
}
