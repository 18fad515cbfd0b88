//! The send lock: `send.lock` beside the ledger, held with an exclusive
//! advisory lock (`File::try_lock`) for a whole run, so two `send`s from
//! cron never overlap. The operating system drops the lock when the
//! process ends, however it ends (`kill -9` included), so a stale lock
//! file never blocks the next run. The holder's pid is written into the
//! file for the operator.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error_kind::{ErrorKind, HasKind};

/// Held for as long as it lives; dropping it releases the lock.
#[derive(Debug)]
pub struct SendLock {
    _file: File,
    path: PathBuf,
}

/// Why the send lock was not taken (an I/O error's cause is its source,
/// shown once by the `{:#}` form).
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock: the run must stop and send nothing.
    #[error("another send is running (it holds {}{}); this run sent nothing. Wait for it to finish, or check that it is not stuck", path.display(), holder.as_ref().map(|p| format!(", pid {p}")).unwrap_or_default())]
    Held {
        path: PathBuf,
        holder: Option<String>,
    },
    #[error("{}: cannot take the send lock", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for LockError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Run
    }
}

/// `send.lock` in the ledger's folder.
pub fn lock_path_for(ledger: &Path) -> PathBuf {
    ledger.with_file_name("send.lock")
}

impl SendLock {
    /// Takes the lock at `path` (creating the file and its folder), or says
    /// who holds it. Never waits.
    pub fn acquire(path: &Path) -> Result<SendLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    path: path.to_owned(),
                    holder: (!holder.is_empty() && holder.len() < 32).then(|| holder.to_owned()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(SendLock {
            _file: file,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path_for(&dir.path().join(".pressroom/state.db"));
        assert!(path.ends_with(".pressroom/send.lock"));
        let first = SendLock::acquire(&path).unwrap();
        let err = SendLock::acquire(&path).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LockError::Held { .. }));
        assert!(text.starts_with("another send is running"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        SendLock::acquire(&path).unwrap();
    }
}
