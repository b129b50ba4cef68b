//! Advisory file locks (flock) on the git cache's lock files, released on
//! drop and by the kernel when the process dies, so a crash never leaves a
//! stale lock.
//!
//! A lock file may be deleted by whoever holds it exclusively (eviction
//! does). Someone who opened the file just before the deletion would then
//! lock an unlinked inode that no one else can see, so every acquisition
//! checks, once locked, that the path still names the locked file, and
//! starts over otherwise.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::codehost::CodeError;

/// A held lock on one lock file.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
}

#[derive(Clone, Copy)]
enum Kind {
    Shared,
    Exclusive,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Whether `file` is still what `path` names.
#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn still_named(_file: &File, path: &Path) -> io::Result<bool> {
    Ok(path.exists())
}

impl FileLock {
    /// Waits for the exclusive lock on `path` (created if missing).
    pub(crate) fn acquire(path: &Path) -> Result<FileLock, CodeError> {
        Self::wait(path, Kind::Exclusive)
            .map_err(|e| CodeError::Other(format!("locking {}: {e}", path.display())))
    }

    /// Waits for a shared lock on `path` (created if missing).
    pub(crate) fn shared(path: &Path) -> Result<FileLock, CodeError> {
        Self::wait(path, Kind::Shared)
            .map_err(|e| CodeError::Other(format!("locking {}: {e}", path.display())))
    }

    fn wait(path: &Path, kind: Kind) -> io::Result<FileLock> {
        loop {
            let file = open(path)?;
            match kind {
                Kind::Shared => fs4::FileExt::lock_shared(&file)?,
                Kind::Exclusive => fs4::FileExt::lock(&file)?,
            }
            if still_named(&file, path)? {
                return Ok(FileLock {
                    file,
                    path: path.to_path_buf(),
                });
            }
        }
    }

    /// The exclusive lock on `path` if no one holds any lock on it now;
    /// `None` when someone does. Never waits.
    pub(crate) fn try_exclusive(path: &Path) -> io::Result<Option<FileLock>> {
        loop {
            let file = open(path)?;
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => {}
                Err(fs4::TryLockError::WouldBlock) => return Ok(None),
                Err(fs4::TryLockError::Error(e)) => return Err(e),
            }
            if still_named(&file, path)? {
                return Ok(Some(FileLock {
                    file,
                    path: path.to_path_buf(),
                }));
            }
        }
    }

    /// The locked file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Deletes the lock file while still holding the lock (only sound for
    /// an exclusive lock: waiters then find it gone and start over).
    pub(crate) fn remove_file(self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock as well; unlocking first
        // just makes the release immediate for waiters.
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_coexist_and_keep_out_the_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.use");
        let a = FileLock::shared(&path).unwrap();
        let b = FileLock::shared(&path).unwrap();
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(a);
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(b);
        let held = FileLock::try_exclusive(&path).unwrap().expect("free");
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        held.remove_file().unwrap();
        assert!(!path.exists());
        // A removed lock file is recreated by the next taker.
        assert!(FileLock::try_exclusive(&path).unwrap().is_some());
    }

    #[test]
    fn a_waiter_on_a_deleted_lock_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = FileLock::acquire(&path).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || FileLock::shared(&path).unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        held.remove_file().unwrap();
        let got = waiter.join().unwrap();
        // The waiter holds the file the path names now, not the unlinked one.
        assert!(still_named(got.file(), &path).unwrap());
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
    }
}
