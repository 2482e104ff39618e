//! The dashboard's two login tokens, each in a file of the data directory readable by the
//! daemon's user only (0600): `dashboard.token` lets support staff read, and
//! `dashboard-operator.token` also lets an operator retry, cancel and pause. The daemon reads
//! them at every login and request, so `tickler dashboard rotate-token` takes effect at once.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tickler_admin::dashboard::{Clearance, Tokens, random_hex};

/// The file holding the read-only token, in the data directory.
pub const READ_TOKEN_FILE: &str = "dashboard.token";
/// The file holding the operator's token, in the data directory.
pub const OPERATOR_TOKEN_FILE: &str = "dashboard-operator.token";

#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct TokenError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// The token files of a data directory.
#[derive(Clone, Debug)]
pub struct TokenFiles {
    dir: PathBuf,
}

fn file_of(clearance: Clearance) -> &'static str {
    match clearance {
        Clearance::ReadOnly => READ_TOKEN_FILE,
        Clearance::Operator => OPERATOR_TOKEN_FILE,
    }
}

impl TokenFiles {
    /// The tokens of `dir`, each created if it does not exist yet; an existing file that others
    /// could read is made private again.
    pub fn ensure(dir: &Path) -> Result<TokenFiles, TokenError> {
        for clearance in [Clearance::ReadOnly, Clearance::Operator] {
            let path = dir.join(file_of(clearance));
            match std::fs::metadata(&path) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    tracing::warn!(path = %path.display(), "a dashboard token was readable by others: made 0600");
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|source| error("cannot make private", &path, source))?;
                }
                Ok(_) => {}
                Err(_) => {
                    write_new_token(&path, false)?;
                }
            }
        }
        Ok(TokenFiles {
            dir: dir.to_owned(),
        })
    }

    /// Replaces the token of `clearance` with a new one and returns it.
    pub fn rotate(dir: &Path, clearance: Clearance) -> Result<String, TokenError> {
        write_new_token(&dir.join(file_of(clearance)), true)
    }

    /// The token of `clearance`, as its file holds it now.
    pub fn read(dir: &Path, clearance: Clearance) -> Result<String, TokenError> {
        let path = dir.join(file_of(clearance));
        let text = std::fs::read_to_string(&path)
            .map_err(|source| error("cannot read the dashboard token", &path, source))?;
        Ok(text.trim().to_owned())
    }
}

impl Tokens for TokenFiles {
    fn current(&self, clearance: Clearance) -> Option<String> {
        TokenFiles::read(&self.dir, clearance).ok()
    }
}

/// Writes a fresh token to `path`, readable by this user only: to a new file, or (`replace`)
/// to a temporary one renamed over the old, so a reader never sees half a token.
fn write_new_token(path: &Path, replace: bool) -> Result<String, TokenError> {
    let token = random_hex();
    let target = if replace {
        path.with_extension("token.new")
    } else {
        path.to_owned()
    };
    if replace {
        // A leftover of a rotation that died half-way.
        let _ = std::fs::remove_file(&target);
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
        .map_err(|source| error("cannot create the dashboard token", &target, source))?;
    writeln!(file, "{token}")
        .and_then(|()| file.sync_all())
        .map_err(|source| error("cannot write the dashboard token", &target, source))?;
    if replace {
        std::fs::rename(&target, path)
            .map_err(|source| error("cannot replace the dashboard token", path, source))?;
    }
    Ok(token)
}

fn error(what: &'static str, path: &Path, source: std::io::Error) -> TokenError {
    TokenError {
        what,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_created_readable_by_the_daemons_user_only_and_differ() {
        let dir = tempfile::tempdir().unwrap();
        TokenFiles::ensure(dir.path()).unwrap();
        for file in [READ_TOKEN_FILE, OPERATOR_TOKEN_FILE] {
            let meta = std::fs::metadata(dir.path().join(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        }
        let read = TokenFiles::read(dir.path(), Clearance::ReadOnly).unwrap();
        let operator = TokenFiles::read(dir.path(), Clearance::Operator).unwrap();
        assert_eq!(read.len(), 64);
        assert_ne!(read, operator);
    }

    #[test]
    fn ensuring_keeps_existing_tokens_and_makes_a_readable_file_private() {
        let dir = tempfile::tempdir().unwrap();
        let files = TokenFiles::ensure(dir.path()).unwrap();
        let before = files.current(Clearance::Operator).unwrap();
        let path = dir.path().join(OPERATOR_TOKEN_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let files = TokenFiles::ensure(dir.path()).unwrap();
        assert_eq!(files.current(Clearance::Operator).unwrap(), before);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn rotating_replaces_the_token_and_keeps_the_file_private() {
        let dir = tempfile::tempdir().unwrap();
        let files = TokenFiles::ensure(dir.path()).unwrap();
        let old = files.current(Clearance::ReadOnly).unwrap();
        let new = TokenFiles::rotate(dir.path(), Clearance::ReadOnly).unwrap();
        assert_ne!(old, new);
        assert_eq!(files.current(Clearance::ReadOnly).unwrap(), new);
        let mode = std::fs::metadata(dir.path().join(READ_TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
