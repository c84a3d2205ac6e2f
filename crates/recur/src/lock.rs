//! One writer per directory: an OS file lock on `DIR/.lock` (released by the OS when the
//! process ends, however it ends), holding the writer's pid so a refused second writer can name
//! it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file inside a locked directory.
pub const LOCK_FILE: &str = ".lock";

/// An exclusive lock on a directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
    created_dir: bool,
    created_file: bool,
}

impl DirLock {
    /// Locks `dir` (created if missing), or fails at once with [`Error::Locked`] naming the
    /// process that holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let created_dir = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let created_file = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if let Err(e) = file.try_lock() {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return match e {
                std::fs::TryLockError::WouldBlock => Err(Error::Locked {
                    path: dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                }),
                std::fs::TryLockError::Error(e) => Err(Error::io(&path, e)),
            };
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(|e| Error::io(&path, e))?;
        Ok(DirLock {
            file,
            path,
            created_dir,
            created_file,
        })
    }

    /// Releases the lock and removes what [`DirLock::acquire`] created (the lock file, and the
    /// directory if it made it and it is empty): for a command that failed before writing
    /// anything, so that it leaves the directory as it was.
    pub fn release_and_clean(self) {
        let dir = self.path.parent().map(Path::to_path_buf);
        if self.created_file {
            let _ = std::fs::remove_file(&self.path);
        }
        drop(self.file);
        if let (true, Some(dir)) = (self.created_dir, dir) {
            let _ = std::fs::remove_dir(dir); // only if empty
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid() {
        let dir = std::env::temp_dir().join(format!("recur-lock-{}", std::process::id()));
        let first = DirLock::acquire(&dir).unwrap();
        let err = DirLock::acquire(&dir).unwrap_err();
        match &err {
            Error::Locked { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains(&std::process::id().to_string()));
        first.release_and_clean();
        assert!(!dir.exists(), "the lock made the directory and removed it");
        let again = DirLock::acquire(&dir).unwrap();
        drop(again);
        assert!(dir.join(LOCK_FILE).exists(), "a held lock's file stays");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
