//! File-system helpers that name the path in every error and write
//! atomically, so a reader never sees half a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error_kind::{ErrorKind, HasKind};

/// A file-system call that failed: what was being done, naming the path,
/// and the system's reason as its cause.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct FsError {
    what: String,
    #[source]
    source: std::io::Error,
}

impl HasKind for FsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Run
    }
}

pub type Result<T, E = FsError> = std::result::Result<T, E>;

/// Names what was being done when a call fails.
trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<std::io::Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: &str) -> Result<T> {
        self.with_context(|| what.to_owned())
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| FsError {
            what: what(),
            source: e.into(),
        })
    }
}

/// Reads a UTF-8 file, naming it in the error.
pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Whether a [`Staged`] file differs from what is already at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    Unchanged,
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".pressroom-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    set_readable(tmp.as_file())?;
    tmp.persist(path)
        .with_context(|| format!("cannot move the new file into place at {}", path.display()))?;
    Ok(())
}

/// A file written bit by bit next to where it belongs, through a buffer;
/// nothing appears at `path` until [`Staged::finish`] and [`Ready::commit`],
/// and a staged file that is dropped is deleted.
pub struct Staged {
    path: PathBuf,
    file: BufWriter<tempfile::NamedTempFile>,
}

/// A staged file, complete, whose bytes differ from the file at its path.
pub struct Ready {
    path: PathBuf,
    tmp: tempfile::TempPath,
}

impl Staged {
    /// Starts a file for `path` (creating its folder).
    pub fn new(path: &Path) -> Result<Staged> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(".pressroom-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(Staged {
            path: path.to_path_buf(),
            // A build keeps up to a few hundred of these open at once.
            file: BufWriter::with_capacity(64 * 1024, tmp),
        })
    }

    /// Completes the file: [`WriteOutcome::Unchanged`] (and nothing to
    /// commit) when the file at its path already holds exactly these
    /// bytes, else the file to move into place.
    pub fn finish(self) -> Result<(WriteOutcome, Option<Ready>)> {
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|tmp| {
                tmp.as_file().sync_all()?;
                Ok(tmp)
            })
            .with_context(|| {
                format!("cannot write a temporary file for {}", self.path.display())
            })?;
        if same_bytes(tmp.path(), &self.path) {
            return Ok((WriteOutcome::Unchanged, None));
        }
        set_readable(tmp.as_file())?;
        Ok((
            WriteOutcome::Written,
            Some(Ready {
                path: self.path,
                tmp: tmp.into_temp_path(),
            }),
        ))
    }
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Ready {
    /// Moves the file into place.
    pub fn commit(self) -> Result<PathBuf> {
        self.tmp.persist(&self.path).with_context(|| {
            format!(
                "cannot move the new file into place at {}",
                self.path.display()
            )
        })?;
        Ok(self.path)
    }
}

/// True when the files at `a` and `b` both exist and hold the same bytes
/// (compared a block at a time, after their sizes).
fn same_bytes(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(mut a), Ok(mut b)) = (File::open(a), File::open(b)) else {
        return false;
    };
    match (a.metadata(), b.metadata()) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() && mb.is_file() => {}
        _ => return false,
    }
    let (mut block_a, mut block_b) = (vec![0; 256 * 1024], vec![0; 256 * 1024]);
    loop {
        let Ok(n) = read_full(&mut a, &mut block_a) else {
            return false;
        };
        if n == 0 {
            return true;
        }
        let Ok(m) = read_full(&mut b, &mut block_b[..n]) else {
            return false;
        };
        if m != n || block_a[..n] != block_b[..n] {
            return false;
        }
    }

    fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(filled)
    }
}

/// Temporary files are created 0600; published files are meant to be served.
#[cfg(unix)]
fn set_readable(file: &std::fs::File) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .context("cannot set file permissions")
}

#[cfg(not(unix))]
fn set_readable(_file: &std::fs::File) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(path: &Path, bytes: &[u8]) -> (WriteOutcome, Option<Ready>) {
        let mut staged = Staged::new(path).unwrap();
        staged.write_all(bytes).unwrap();
        staged.finish().unwrap()
    }

    fn leftovers(dir: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_staged_file_appears_only_when_committed_and_only_if_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feeds/rss.xml");

        let (outcome, ready) = staged(&path, b"one");
        assert_eq!(outcome, WriteOutcome::Written);
        assert!(!path.exists(), "nothing in place before the commit");
        ready.unwrap().commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();

        let (outcome, ready) = staged(&path, b"one");
        assert_eq!(outcome, WriteOutcome::Unchanged);
        assert!(ready.is_none());
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );

        // Same size, other bytes; and a file that is dropped, not committed.
        let (outcome, ready) = staged(&path, b"two");
        assert_eq!(outcome, WriteOutcome::Written);
        drop(ready);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let (_, ready) = staged(&path, b"three");
        ready.unwrap().commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert!(leftovers(path.parent().unwrap()).is_empty());
    }
}
