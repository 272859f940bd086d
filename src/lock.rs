//! One writer per directory: a run directory or a batch's summary directory is held through an
//! exclusive advisory lock on a file inside it (std's [`File::try_lock`], `flock` on Unix).
//!
//! The lock belongs to the open file, so the operating system releases it when the holder
//! exits in any way, `kill -9` included: a lock file left behind by a dead process never blocks
//! anyone. The file also records who holds it (pid, host, start time, command), so a refused
//! writer can say whom it is waiting for. Lock files are never deleted (deleting one while
//! another process opens it would let two writers in), and are hidden (`.neurograph.lock`), so
//! they do not count as content of the directory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file of a run directory or a batch summary directory.
pub const LOCK_FILE: &str = ".neurograph.lock";

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process (or another writer in this one) holds the directory.
    #[error(
        "{dir} is in use by another neurograph process ({holder}); wait for it to finish, or \
         choose another output directory"
    )]
    Busy {
        /// The directory.
        dir: String,
        /// Who holds it, as its lock file says.
        holder: String,
    },
    /// The lock file could not be created or locked.
    #[error("cannot lock {dir}: {source}")]
    Io {
        /// The directory.
        dir: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// An exclusive hold on a directory, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    /// Keeps the lock: the lock lives as long as this open file.
    _file: File,
    dir: PathBuf,
}

impl DirLock {
    /// Creates `dir` (and its parents) if needed and takes its lock without waiting; refuses
    /// with [`LockError::Busy`], naming the holder, when someone else has it.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let io_error = |source| LockError::Io {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_error)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Busy {
                    dir: dir.display().to_string(),
                    holder: if holder.is_empty() {
                        "it has not written its details yet".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(e)),
        }
        let me = holder_line();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(me.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(io_error)?;
        Ok(DirLock {
            _file: file,
            dir: dir.to_path_buf(),
        })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `pid 1234 on host since 2026-12-01T21:00:00Z: neurograph run ...`.
fn holder_line() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unknown host".to_string());
    let command: Vec<String> = std::env::args().collect();
    format!(
        "pid {} on {host} since {}: {}\n",
        std::process::id(),
        crate::run::now_rfc3339(),
        command.join(" ")
    )
}

/// The entries of `dir` other than its lock file, sorted by name (empty when `dir` does not
/// exist).
pub fn contents(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_name() != LOCK_FILE {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Removes everything in the directory `lock` holds except the lock file.
pub fn clear(lock: &DirLock) -> io::Result<()> {
    for path in contents(lock.dir())? {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_and_told_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LockError::Busy { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        DirLock::acquire(dir.path()).expect("free again once the holder is gone");
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(LOCK_FILE),
            "pid 999999 on elsewhere since 2020-01-01T00:00:00Z: neurograph run\n",
        )
        .unwrap();
        let lock = DirLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(
            text.starts_with(&format!("pid {} ", std::process::id())),
            "{text}"
        );
        drop(lock);
    }

    #[test]
    fn clearing_keeps_only_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DirLock::acquire(dir.path()).unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), "{}\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x"), "x").unwrap();
        assert_eq!(contents(dir.path()).unwrap().len(), 2);
        clear(&lock).unwrap();
        assert!(contents(dir.path()).unwrap().is_empty());
        assert!(dir.path().join(LOCK_FILE).exists());
    }
}
