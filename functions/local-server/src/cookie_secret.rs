//! The key pull cookies are signed with, kept in a file so that it survives restarts (a
//! cookie signed before a restart must still verify after it) and can be shared by several
//! server processes (point them at the same file).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use sync_core::cookie::{CookieKeyError, CookieKeys};

/// The file inside `DATA_DIR` when `COOKIE_SECRET_FILE` is unset.
pub const DEFAULT_FILE_NAME: &str = "cookie-secret";

#[derive(Debug, thiserror::Error)]
pub enum CookieSecretError {
    #[error("cannot read or create the cookie secret {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the cookie secret {path} is not usable: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: CookieKeyError,
    },
}

/// The keys in `path`, creating the file with a new random secret (readable by its owner
/// only) when it does not exist.
pub fn load_or_create(path: &Path) -> Result<CookieKeys, CookieSecretError> {
    let io = |source| CookieSecretError::Io {
        path: path.to_owned(),
        source,
    };
    let (text, created) = read_or_create(path, CookieKeys::generate_secret_text).map_err(io)?;
    if created {
        tracing::info!(path = %path.display(), "created a new cookie secret");
    }
    CookieKeys::from_secret_text(&text).map_err(|source| CookieSecretError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// The text of the secret file `path`, first creating it (and its directory) with
/// `new_text()`, readable by its owner only, when it does not exist; `true` when it was
/// created now.
pub(crate) fn read_or_create(
    path: &Path,
    new_text: impl FnOnce() -> String,
) -> std::io::Result<(String, bool)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let created = match create_new(path, &new_text()) {
        Ok(()) => true,
        // Another process (or an earlier run) made it: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(e),
    };
    Ok((std::fs::read_to_string(path)?, created))
}

fn create_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{text}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::SpaceId;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(DEFAULT_FILE_NAME);
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        let space = SpaceId::parse("s").unwrap();
        let cookie = first.sign(&space, 9);
        assert!(
            again.verify(&space, 9, &cookie.sig),
            "the same key after a restart"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only");
        }
    }

    #[test]
    fn a_weak_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weak");
        std::fs::write(&path, "short").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(CookieSecretError::Invalid { .. })
        ));
    }
}
