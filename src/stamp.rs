//! What a build knows a file or folder by ([`Stamp`]): read when articles
//! are loaded and compared by the no-op build cache, so it sits below both.

use std::fs::Metadata;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a build knows a file or folder by: its size, its modification
/// time, its status change time (which no tool can set back, so a file
/// restored with an old modification time still differs) and its inode
/// number (a file replaced by another has a new one). Times are
/// nanoseconds from the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub modified: i128,
    pub changed: i128,
    pub inode: u64,
}

impl Stamp {
    /// The stamp of the file at `path` (links followed), if it can be read.
    pub fn of(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| Stamp::from_metadata(&m))
    }

    /// The stamp of a file; None for anything else.
    pub fn from_metadata(metadata: &Metadata) -> Option<Stamp> {
        if !metadata.is_file() {
            return None;
        }
        Stamp::read(metadata)
    }

    /// The stamp of the folder at `path` (links followed).
    pub fn of_folder(path: &Path) -> Option<Stamp> {
        let metadata = std::fs::metadata(path).ok()?;
        if !metadata.is_dir() {
            return None;
        }
        Stamp::read(&metadata)
    }

    #[cfg(unix)]
    fn read(metadata: &Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        Some(Stamp {
            size: metadata.size(),
            modified: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            changed: i128::from(metadata.ctime()) * 1_000_000_000
                + i128::from(metadata.ctime_nsec()),
            inode: metadata.ino(),
        })
    }

    /// Without a status change time or an inode number, the modification
    /// time stands in for both.
    #[cfg(not(unix))]
    fn read(metadata: &Metadata) -> Option<Stamp> {
        let modified = nanos(metadata.modified().ok()?)?;
        Some(Stamp {
            size: metadata.len(),
            modified,
            changed: modified,
            inode: 0,
        })
    }
}

/// Nanoseconds from the Unix epoch (negative before it).
pub fn nanos(time: SystemTime) -> Option<i128> {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).ok(),
        Err(before) => i128::try_from(before.duration().as_nanos())
            .ok()
            .map(|n| -n),
    }
}
