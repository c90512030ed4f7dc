//! Data folders and files private to the user who runs Haitao: on Unix a new folder is `0700` and
//! a new file `0600`, whatever the umask, and an existing folder or file loses any group and other
//! permissions when it is opened again (its owner's own bits are left as they are: a folder the
//! user made read-only stays read-only). SQLite gives a database's `-wal` and `-shm` files the mode of the database file, so
//! creating the database file private first keeps them private too.
//!
//! A folder or file this user does not own (a shared `/var/lib/haitao` set up by an
//! administrator) is left as its owner set it: tightening it is refused, and that is not an error.
//!
//! On Windows the per-user application data folders are already private to their user; these
//! functions then only create what is missing.

use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, and makes `dir` private.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        tighten(dir, mode, 0o700)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Creates `path` empty if it is missing (never truncating it), and makes it private.
pub fn private_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mode = options.open(path)?.metadata()?.permissions().mode();
        tighten(path, mode, 0o700)
    }
    #[cfg(not(unix))]
    {
        options.open(path).map(drop)
    }
}

/// Drops group and other bits from `mode` (already gone: nothing to do); a path owned by someone
/// else is left as it is.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32, keep: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if mode & 0o777 & !keep == 0 {
        return Ok(());
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & keep)) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

/// Makes a SQLite database file private before SQLite opens it: the file itself (created empty
/// when missing, which SQLite takes as a new database) and any journal it left beside it.
pub fn private_database(path: &Path) -> io::Result<()> {
    private_file(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if side.exists() {
            private_file(&side)?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` (replacing it), private to the user.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    private_file(path)?;
    std::fs::write(path, bytes)
}

/// The permission bits of a file or folder (Unix), for tests and checks.
#[cfg(unix)]
pub fn mode(path: &Path) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn folders_and_files_end_private_whatever_they_were() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir).unwrap(), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir).unwrap(), 0o700, "an existing folder is tightened");
        let locked = tmp.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        private_dir(&locked).unwrap();
        assert_eq!(mode(&locked).unwrap(), 0o500, "a read-only folder stays read-only");

        let db = dir.join("x.sqlite3");
        std::fs::write(&db, b"data").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = dir.join("x.sqlite3-wal");
        std::fs::write(&wal, b"wal").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o666)).unwrap();
        private_database(&db).unwrap();
        assert_eq!((mode(&db).unwrap(), mode(&wal).unwrap()), (0o600, 0o600));
        assert_eq!(std::fs::read(&db).unwrap(), b"data", "never truncated");
        assert!(!dir.join("x.sqlite3-shm").exists(), "no side file is made up");

        let settings = dir.join("settings.json");
        write_private(&settings, b"{}").unwrap();
        assert_eq!(mode(&settings).unwrap(), 0o600);
    }
}
