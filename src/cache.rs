//! The no-op build cache, `.pressroom/build-cache`: what the last
//! `pressroom build` read and what it left in the output folder, so that a
//! build with nothing changed stops before loading a single article,
//! renders nothing and writes nothing.
//!
//! The last build is reused only when all of these still hold:
//! - the same pressroom version, and `config.toml` and every file under
//!   `templates/` with the same bytes (hashed);
//! - every folder the build listed, and every article file it read, with
//!   the same [`Stamp`] (size, times, inode). A file added to, removed from
//!   or renamed in a folder changes that folder's stamp, so the folders
//!   need not be listed again: each article is looked up by name;
//! - `now` falls where the set of published articles is the same as then:
//!   at or after the newest publish date that had come, and before the
//!   earliest that had not (a scheduled article goes public as time passes,
//!   with no file changing);
//! - every output file is still there with the stamp it had after that
//!   build.
//!
//! Anything else — no cache, a corrupt or unreadable one, one from another
//! version — means a full build, which writes a new cache. A stamp is
//! trusted only once its times are older than [`SETTLE`]: a file or folder
//! changed twice within one clock tick would otherwise go unnoticed, so a
//! build that sees such a young one saves no cache.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use chrono::{DateTime, FixedOffset};
use sha2::{Digest, Sha256};

use crate::content::{Found, Site};
use crate::stamp::{nanos, Stamp};

/// Where the cache lives, relative to the site root.
pub const CACHE_FILE: &str = ".pressroom/build-cache";

/// The first line of a cache file; a change of format changes it.
const MAGIC: &str = "pressroom-build-cache 2";

/// How old a stamp's times must be before a cache relies on them (coarse
/// file-system clocks tick in up to two seconds).
pub const SETTLE: Duration = Duration::from_secs(2);

impl Stamp {
    /// Both times before `trusted_before` (see [`SETTLE`]).
    fn settled(&self, trusted_before: i128) -> bool {
        self.modified < trusted_before && self.changed < trusted_before
    }

    fn write(&self, out: &mut String) {
        let _ = write!(
            out,
            "{} {} {} {}",
            self.size, self.modified, self.changed, self.inode
        );
    }

    /// Reads what [`Stamp::write`] wrote, from the next four of `parts`.
    fn parse<'a>(parts: &mut impl Iterator<Item = &'a str>) -> Option<Stamp> {
        let mut number = || parse_integer(parts.next()?.as_bytes());
        Some(Stamp {
            size: u64::try_from(number()?).ok()?,
            modified: number()?,
            changed: number()?,
            inode: u64::try_from(number()?).ok()?,
        })
    }
}

/// Times before this (nanoseconds) can be relied on, for a build that
/// started at `started`.
fn trusted(started: SystemTime) -> Option<i128> {
    started.checked_sub(SETTLE).and_then(nanos)
}

/// A digest of what a build reads besides the articles: the pressroom
/// version, `config.toml` and every file under `templates/` of the site at
/// `root`. None when one of them cannot be read (the build then runs, and
/// reports the problem).
pub fn settings_digest(root: &Path) -> Option<String> {
    let mut hasher = Sha256::new();
    hasher.update(MAGIC.as_bytes());
    hasher.update(b"\0");
    hasher.update(crate::VERSION.as_bytes());
    hasher.update(b"\0");

    let config_text = std::fs::read(root.join(crate::config::CONFIG_FILE)).ok()?;
    hash_file(
        &mut hasher,
        Path::new(crate::config::CONFIG_FILE),
        &config_text,
    );

    let templates = root.join(crate::email::templates::DIR);
    if templates.is_dir() {
        for entry in walkdir::WalkDir::new(&templates)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.ok()?;
            if entry.file_type().is_file() {
                let bytes = std::fs::read(entry.path()).ok()?;
                let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
                hash_file(&mut hasher, relative, &bytes);
            }
        }
    }
    Some(hex(&hasher.finalize()))
}

fn hash_file(hasher: &mut Sha256, relative: &Path, bytes: &[u8]) {
    hasher.update(relative.as_os_str().as_encoded_bytes());
    hasher.update(b"\0");
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The article files a build read, and the folders it listed to find
/// them, each with its stamp: what a later build checks, one stat each,
/// to know that the articles are the same without listing or reading
/// anything.
#[derive(Debug, Default)]
pub struct Manifest {
    /// Every folder listed, relative to the site root (or absolute, outside
    /// it), content folder first.
    folders: Vec<(PathBuf, Stamp)>,
    /// How many articles each folder holds (the lines that name it).
    held: Vec<usize>,
    /// How many article lines there are.
    count: usize,
    /// One line per article file: the index of its folder in `folders`,
    /// its stamp, and its name in that folder.
    lines: Lines,
}

/// Where the article lines of a [`Manifest`] are.
#[derive(Debug)]
enum Lines {
    /// In memory, as a build records them.
    Text(String),
    /// In the cache file, `len` bytes from byte `start`: the threads that
    /// check them read a chunk each at a time, so a cache is never held
    /// whole (one of 100,000 articles has about 7 MB of lines).
    #[cfg(unix)]
    File {
        file: std::fs::File,
        start: u64,
        len: usize,
    },
}

impl Default for Lines {
    fn default() -> Lines {
        Lines::Text(String::new())
    }
}

impl Lines {
    fn len(&self) -> usize {
        match self {
            Lines::Text(text) => text.len(),
            #[cfg(unix)]
            Lines::File { len, .. } => *len,
        }
    }

    /// Copies the lines that start in bytes `from..to` into `buffer`, and
    /// returns where they are in it. None when they cannot be read, or a
    /// line is longer than any [`Manifest::record`] writes.
    fn starting_in(&self, from: usize, to: usize, buffer: &mut Vec<u8>) -> Option<Range<usize>> {
        if from >= self.len() {
            return Some(0..0);
        }
        // From the byte before (does a line start at `from`?) to a whole
        // line past `to`.
        let first = from.saturating_sub(1);
        let last = (to + MAX_LINE).min(self.len());
        match self {
            Lines::Text(text) => {
                buffer.clear();
                buffer.extend_from_slice(text.as_bytes().get(first..last)?);
            }
            #[cfg(unix)]
            Lines::File { file, start, .. } => {
                use std::os::unix::fs::FileExt;
                buffer.resize(last - first, 0);
                file.read_exact_at(buffer, start + first as u64).ok()?;
            }
        }
        let begin = match from {
            0 => 0,
            _ => memchr::memchr(b'\n', buffer)? + 1,
        };
        let end = if to >= self.len() {
            buffer.len()
        } else {
            let at = to - 1 - first;
            at + memchr::memchr(b'\n', &buffer[at..])? + 1
        };
        Some(begin..end.max(begin))
    }

    /// All of them, as text.
    fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Lines::Text(text) => Some(std::borrow::Cow::Borrowed(text)),
            #[cfg(unix)]
            Lines::File { .. } => {
                let mut buffer = Vec::new();
                let range = self.starting_in(0, self.len(), &mut buffer)?;
                buffer.truncate(range.end);
                buffer.drain(..range.start);
                String::from_utf8(buffer).ok().map(std::borrow::Cow::Owned)
            }
        }
    }
}

/// Longer than any article line: a name is at most 255 bytes, and the five
/// numbers before it at most 39 digits each.
const MAX_LINE: usize = 1024;

impl Manifest {
    /// The manifest of the article files `found` by a build that started
    /// at `started`, with the `stamps` the loader took before reading each
    /// file; the folders are stamped now. None when it cannot be relied
    /// on: a problem was found, some stamp is missing or younger than
    /// [`SETTLE`] (a folder changed since the build started is young), or
    /// a name does not fit on a line of UTF-8 text.
    pub fn record(
        root: &Path,
        found: &Found,
        stamps: &[Option<Stamp>],
        started: SystemTime,
    ) -> Option<Manifest> {
        if !found.problems.is_empty() || found.files.len() != stamps.len() {
            return None;
        }
        let trusted_before = trusted(started)?;
        let mut folders = Vec::with_capacity(found.folders.len());
        let mut index = HashMap::with_capacity(found.folders.len());
        for (i, folder) in found.folders.iter().enumerate() {
            let stamp = Stamp::of_folder(folder).filter(|s| s.settled(trusted_before))?;
            let relative = folder.strip_prefix(root).unwrap_or(folder);
            line_safe(relative.to_str()?)?;
            folders.push((relative.to_path_buf(), stamp));
            index.insert(folder.as_os_str(), i);
        }
        let mut lines = String::with_capacity(found.files.len() * 64);
        // The files of one folder mostly come one after another.
        let mut last = None;
        let mut held = vec![0; folders.len()];
        for (path, stamp) in found.files.iter().zip(stamps) {
            let stamp = stamp.filter(|s| s.settled(trusted_before))?;
            let parent = path.parent()?.as_os_str();
            let folder = match last {
                Some((previous, i)) if previous == parent => i,
                _ => *index.get(parent)?,
            };
            last = Some((parent, folder));
            held[folder] += 1;
            let name = line_safe(path.file_name()?.to_str()?)?;
            let _ = write!(lines, "{folder} ");
            stamp.write(&mut lines);
            let _ = writeln!(lines, " {name}");
        }
        Some(Manifest {
            folders,
            held,
            count: found.files.len(),
            lines: Lines::Text(lines),
        })
    }

    /// True when every folder and every article file of the manifest is
    /// still there with its stamp: then the same article files would be
    /// found, with the same contents.
    pub fn unchanged(&self, root: &Path) -> bool {
        let check = Check::new(root, self);
        std::thread::scope(|scope| {
            check.start_helpers(scope);
            check.run();
        });
        check.passed()
    }
}

/// A check that the articles of a [`Manifest`] are unchanged, shared by
/// the threads that run it: this one, which starts at once, and one
/// helper per other core, which join in as soon as they run (a thread
/// pool would start every worker first and leave this thread waiting).
/// Each takes the article lines a chunk at a time; all stop at the first
/// change.
pub struct Check<'a> {
    root: &'a Path,
    manifest: &'a Manifest,
    /// The folders that hold no article, checked on their own a batch at
    /// a time before the chunks of lines (a folder that holds some is
    /// checked when a thread opens it for them).
    empty: Vec<usize>,
    /// Batches of `empty`, then chunks of lines.
    items: usize,
    chunks: usize,
    next: AtomicUsize,
    /// Article lines checked so far.
    seen: AtomicUsize,
    failed: AtomicBool,
}

impl<'a> Check<'a> {
    /// Bytes of article lines per chunk (about 250 articles).
    const CHUNK: usize = 16 * 1024;

    /// Folders per batch of [`Check::empty`].
    const FOLDERS: usize = 64;

    /// A folder that holds at least this many articles is opened to
    /// check them; one that holds fewer is looked up from its parent (see
    /// [`Cursor`]). Opening costs two calls more per folder, and saves
    /// walking one more name per article.
    const OPEN_FROM: usize = 16;

    pub fn new(root: &'a Path, manifest: &'a Manifest) -> Check<'a> {
        let empty: Vec<usize> = (0..manifest.folders.len())
            .filter(|&i| manifest.held.get(i) == Some(&0))
            .collect();
        let chunks = manifest.lines.len().div_ceil(Self::CHUNK);
        Check {
            root,
            manifest,
            items: empty.len().div_ceil(Self::FOLDERS) + chunks,
            empty,
            chunks,
            next: AtomicUsize::new(0),
            seen: AtomicUsize::new(0),
            failed: AtomicBool::new(
                manifest.folders.is_empty() || manifest.held.len() != manifest.folders.len(),
            ),
        }
    }

    /// How many threads besides this one to start: one per core, so one
    /// more thread than cores, as long as there are chunks for them. With
    /// one thread per core, a scheduler that packs threads onto few cores
    /// (as some virtual machines' kernels do) was seen to run the helper on
    /// this thread's core for milliseconds while the other core idled:
    /// 12.2 ms against 9.5 ms for a no-op build of 10,000 articles on two
    /// cores. The extra thread costs a few context switches.
    pub fn helpers(&self) -> usize {
        match self.items {
            0 | 1 => 0,
            items => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(items - 1),
        }
    }

    /// Starts [`Check::helpers`] threads in `scope`, each running
    /// [`Check::run`]; this thread joins in with its own call.
    pub fn start_helpers<'scope>(&'scope self, scope: &'scope std::thread::Scope<'scope, '_>) {
        for _ in 0..self.helpers() {
            scope.spawn(|| self.run());
        }
    }

    /// Checks batches of folders and chunks of lines until none is left
    /// or something changed. A thread keeps open the one folder it looks
    /// articles up in (a site with a folder per article would otherwise
    /// need one descriptor per folder); threads that share one descriptor
    /// would contend on its reference count at every stat.
    pub fn run(&self) {
        let batches = self.items - self.chunks;
        let mut cursor: Option<Cursor<'a>> = None;
        let mut buffer = Vec::new();
        while !self.failed.load(Ordering::Relaxed) {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.items {
                break;
            }
            let same = if i < batches {
                let end = ((i + 1) * Self::FOLDERS).min(self.empty.len());
                self.empty[i * Self::FOLDERS..end]
                    .iter()
                    .all(|&folder| self.folder_unchanged(folder))
            } else {
                self.check_chunk(i - batches, &mut buffer, &mut cursor)
            };
            if !same {
                self.stop();
            }
        }
    }

    /// Checks the lines of chunk `i`.
    fn check_chunk(&self, i: usize, buffer: &mut Vec<u8>, cursor: &mut Option<Cursor<'a>>) -> bool {
        let Some(range) =
            self.manifest
                .lines
                .starting_in(i * Self::CHUNK, (i + 1) * Self::CHUNK, buffer)
        else {
            return false;
        };
        let mut seen = 0;
        let mut lines = &mut buffer[range];
        let mut same = true;
        while same && !lines.is_empty() {
            // Each line ends with a newline; made a NUL, the name before it
            // is handed to the kernel as it is.
            let Some(end) = memchr::memchr(b'\n', lines) else {
                same = false;
                break;
            };
            let (line, rest) = std::mem::take(&mut lines).split_at_mut(end + 1);
            lines = rest;
            line[end] = 0;
            seen += 1;
            same = parse_article(line).is_some_and(|(folder, stamp, name)| {
                if cursor.as_ref().is_none_or(|c| c.folder != folder) {
                    *cursor = self.enter(folder, cursor.take());
                }
                cursor
                    .as_mut()
                    .is_some_and(|c| c.article_stamp(name) == Some(stamp))
            });
        }
        self.seen.fetch_add(seen, Ordering::Relaxed);
        same
    }

    /// Whether folder `index` still has its stamp.
    fn folder_unchanged(&self, index: usize) -> bool {
        self.manifest
            .folders
            .get(index)
            .is_some_and(|(path, stamp)| Stamp::of_folder(&self.root.join(path)) == Some(*stamp))
    }

    /// A cursor on folder `index` when it still has its stamp. The folder
    /// `previous` has open is kept when it is this one's parent, and
    /// closed otherwise before another is opened; its name buffer is
    /// reused (with a folder per article, this runs once per article).
    fn enter(&self, index: usize, previous: Option<Cursor<'a>>) -> Option<Cursor<'a>> {
        let (path, stamp) = self.manifest.folders.get(index)?;
        let (open, mut buffer) = match previous {
            Some(c) => (Some((c.path, c.open)), c.name),
            None => (None, Vec::new()),
        };
        buffer.clear();
        let few = self
            .manifest
            .held
            .get(index)
            .is_some_and(|&n| n < Self::OPEN_FROM);
        if let (true, Some(parent), Some(name)) = (few, path.parent(), path.file_name()) {
            let open = match open.filter(|(open_path, _)| *open_path == parent) {
                Some((_, open)) => open,
                None => open_dir(&self.root.join(parent))?,
            };
            // Names in the cache are UTF-8 (see `Manifest::record`).
            buffer.extend_from_slice(name.to_str()?.as_bytes());
            buffer.push(0);
            let now = folder_stamp(&open, CStr::from_bytes_with_nul(&buffer).ok()?);
            buffer.pop();
            buffer.push(b'/');
            return (now == Some(*stamp)).then(|| Cursor {
                folder: index,
                path: parent,
                open,
                prefix: buffer.len(),
                name: buffer,
            });
        }
        drop(open);
        Some(Cursor {
            folder: index,
            path,
            open: open_folder(&self.root.join(path), stamp)?,
            name: buffer,
            prefix: 0,
        })
    }

    /// Makes every thread stop at its next chunk: the answer is no.
    pub fn stop(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Once every [`Check::run`] has returned: whether nothing changed
    /// (and every article line was there to be checked).
    pub fn passed(&self) -> bool {
        !self.failed.load(Ordering::Relaxed)
            && self.seen.load(Ordering::Relaxed) == self.manifest.count
    }
}

/// Where a checking thread looks up the articles of one folder: the
/// folder itself, opened, or, for a folder of few articles, its parent,
/// with the folder's name and a slash before each article's name. With a
/// folder per article, opening, checking and closing each folder took
/// four calls per article; from the parent it takes two.
struct Cursor<'a> {
    /// The folder's index in the manifest.
    folder: usize,
    /// The folder `open` is, relative to the root: kept for the next
    /// folder with the same parent.
    path: &'a Path,
    open: Folder,
    /// The name last looked up in `open`: `prefix` bytes of folder name
    /// and slash (none when `open` is the folder), the article's name, NUL.
    name: Vec<u8>,
    prefix: usize,
}

impl Cursor<'_> {
    /// The stamp of the article `name` in the cursor's folder.
    fn article_stamp(&mut self, name: &CStr) -> Option<Stamp> {
        if self.prefix == 0 {
            return article_stamp(&self.open, name);
        }
        self.name.truncate(self.prefix);
        self.name.extend_from_slice(name.to_bytes_with_nul());
        article_stamp(&self.open, CStr::from_bytes_with_nul(&self.name).ok()?)
    }
}

/// `text` when it can be one line of the cache file.
fn line_safe(text: &str) -> Option<&str> {
    (!text.is_empty() && !text.contains(['\n', '\r'])).then_some(text)
}

/// A line of the article lines, its newline made a NUL: folder index,
/// stamp, name. Read byte by byte: a no-op build reads one per article.
fn parse_article(line: &[u8]) -> Option<(usize, Stamp, &CStr)> {
    let mut rest = line;
    let mut number = || {
        let end = rest.iter().position(|&b| b == b' ')?;
        let digits = &rest[..end];
        rest = &rest[end + 1..];
        parse_integer(digits)
    };
    let folder = usize::try_from(number()?).ok()?;
    let stamp = Stamp {
        size: u64::try_from(number()?).ok()?,
        modified: number()?,
        changed: number()?,
        inode: u64::try_from(number()?).ok()?,
    };
    let name = CStr::from_bytes_with_nul(rest).ok()?;
    (!name.is_empty()).then_some((folder, stamp, name))
}

/// A decimal integer, maybe negative, of at most 38 digits.
fn parse_integer(text: &[u8]) -> Option<i128> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 38 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = if digits.len() <= 19 {
        // Fits in 64 bits: the common case (times in nanoseconds).
        i128::from(
            digits
                .iter()
                .fold(0u64, |value, &digit| value * 10 + u64::from(digit - b'0')),
        )
    } else {
        digits
            .iter()
            .fold(0i128, |value, &digit| value * 10 + i128::from(digit - b'0'))
    };
    Some(if negative { -value } else { value })
}

/// A folder open for looking up its articles by name, with no path to
/// walk.
#[cfg(target_os = "linux")]
type Folder = rustix::fd::OwnedFd;

/// The folder at `path`, opened.
#[cfg(target_os = "linux")]
fn open_dir(path: &Path) -> Option<Folder> {
    use rustix::fs::{open, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    open(path, flags, Mode::empty()).ok()
}

/// The folder at `path`, opened, when it has `stamp`.
#[cfg(target_os = "linux")]
fn open_folder(path: &Path, stamp: &Stamp) -> Option<Folder> {
    let folder = open_dir(path)?;
    let now = rustix::fs::fstat(&folder)
        .ok()
        .and_then(|s| Stamp::from_stat(&s))?;
    (now == *stamp).then_some(folder)
}

/// The stamp of the regular file `name` in `folder` (links followed).
#[cfg(target_os = "linux")]
fn article_stamp(folder: &Folder, name: &CStr) -> Option<Stamp> {
    stamp_at(folder, name, rustix::fs::FileType::RegularFile)
}

/// The stamp of the folder `name` in `folder` (links followed).
#[cfg(target_os = "linux")]
fn folder_stamp(folder: &Folder, name: &CStr) -> Option<Stamp> {
    stamp_at(folder, name, rustix::fs::FileType::Directory)
}

/// The stamp of `name` in `folder` when it is a `kind`.
#[cfg(target_os = "linux")]
fn stamp_at(folder: &Folder, name: &CStr, kind: rustix::fs::FileType) -> Option<Stamp> {
    use rustix::fs::{statat, AtFlags, FileType};
    let stat = statat(folder, name, AtFlags::empty()).ok()?;
    if FileType::from_raw_mode(stat.st_mode as _) != kind {
        return None;
    }
    Stamp::from_stat(&stat)
}

/// Elsewhere, a folder is its path.
#[cfg(not(target_os = "linux"))]
type Folder = PathBuf;

#[cfg(not(target_os = "linux"))]
fn open_dir(path: &Path) -> Option<Folder> {
    Some(path.to_path_buf())
}

#[cfg(not(target_os = "linux"))]
fn open_folder(path: &Path, stamp: &Stamp) -> Option<Folder> {
    (Stamp::of_folder(path) == Some(*stamp)).then(|| path.to_path_buf())
}

#[cfg(not(target_os = "linux"))]
fn article_stamp(folder: &Folder, name: &CStr) -> Option<Stamp> {
    Stamp::of(&folder.join(name.to_str().ok()?))
}

#[cfg(not(target_os = "linux"))]
fn folder_stamp(folder: &Folder, name: &CStr) -> Option<Stamp> {
    Stamp::of_folder(&folder.join(name.to_str().ok()?))
}

/// What the last build read and wrote.
#[derive(Debug)]
pub struct BuildCache {
    /// [`settings_digest`] of the build.
    pub settings: String,
    /// The newest publish date at or before the build's `now`, and the
    /// earliest after it: for any `now` in `[from, until)` the same
    /// articles are published, so the feeds are the same.
    pub published_from: Option<DateTime<FixedOffset>>,
    pub published_until: Option<DateTime<FixedOffset>>,
    /// Every feed file the build wrote or found up to date, relative to
    /// the site root, as it was afterwards.
    pub outputs: Vec<(PathBuf, Stamp)>,
    /// The article files the build read.
    pub articles: Manifest,
}

impl BuildCache {
    /// The cache of a build of `site` at `now` with `settings` (see
    /// [`settings_digest`]), whose articles are `articles` and whose files
    /// are `outputs`.
    pub fn new(
        settings: &str,
        articles: Manifest,
        site: &Site,
        now: DateTime<FixedOffset>,
        outputs: Vec<(PathBuf, Stamp)>,
    ) -> BuildCache {
        let (published_from, published_until) = publication_window(site, now);
        BuildCache {
            settings: settings.to_owned(),
            published_from,
            published_until,
            outputs,
            articles,
        }
    }

    /// Reads the cache of the site at `root`; None when there is none or
    /// it cannot be read or understood. Only the head of the file is read
    /// here: the article lines are read by the check.
    #[cfg(unix)]
    pub fn load(root: &Path) -> Option<BuildCache> {
        use std::io::Read;
        let mut file = std::fs::File::open(root.join(CACHE_FILE)).ok()?;
        let size = file.metadata().ok()?.len();
        let mut head = Vec::new();
        let head_len = loop {
            if let Some(end) = head_end(&head) {
                break end;
            }
            let filled = head.len();
            head.resize(filled + 16 * 1024, 0);
            let read = file.read(&mut head[filled..]).ok()?;
            head.truncate(filled + read);
            if read == 0 {
                return None;
            }
        };
        let (mut cache, bytes) =
            BuildCache::parse_head(std::str::from_utf8(&head[..head_len]).ok()?)?;
        if size != (head_len + bytes) as u64 {
            return None;
        }
        cache.articles.lines = Lines::File {
            file,
            start: head_len as u64,
            len: bytes,
        };
        Some(cache)
    }

    #[cfg(not(unix))]
    pub fn load(root: &Path) -> Option<BuildCache> {
        BuildCache::parse(std::fs::read_to_string(root.join(CACHE_FILE)).ok()?)
    }

    /// Writes the cache atomically. Fails (writing nothing) when an output
    /// path cannot be recorded in the format.
    pub fn save(&self, root: &Path) -> Result<()> {
        let text = self
            .to_text()
            .ok_or_else(|| anyhow::anyhow!("an output path is not plain UTF-8 text"))?;
        Ok(crate::fs::write_atomic(
            &root.join(CACHE_FILE),
            text.as_bytes(),
        )?)
    }

    /// True when a build with `settings` at `now` would produce the
    /// recorded outputs from the same articles, and the outputs are all
    /// still on disk as that build left them. The cheap checks go first.
    pub fn is_fresh(&self, root: &Path, settings: &str, now: DateTime<FixedOffset>) -> bool {
        self.covers(settings, now) && self.outputs_untouched(root) && self.articles.unchanged(root)
    }

    /// Same settings, and `now` in the window of the same published set.
    pub fn covers(&self, settings: &str, now: DateTime<FixedOffset>) -> bool {
        self.settings == settings
            && self.published_from.is_none_or(|from| from <= now)
            && self.published_until.is_none_or(|until| now < until)
    }

    /// Every recorded output exists with its recorded stamp.
    pub fn outputs_untouched(&self, root: &Path) -> bool {
        // On this thread: a few hundred stats do not pay for starting a
        // thread pool.
        !self.outputs.is_empty()
            && self
                .outputs
                .iter()
                .all(|(path, stamp)| Stamp::of(&root.join(path)) == Some(*stamp))
    }

    /// The file's text; None when a path cannot be written in it.
    pub fn to_text(&self) -> Option<String> {
        let date = |d: Option<DateTime<FixedOffset>>| d.map_or("-".to_owned(), |d| d.to_rfc3339());
        let mut out = format!(
            "{MAGIC}\nsettings {}\nfrom {}\nuntil {}\n",
            self.settings,
            date(self.published_from),
            date(self.published_until)
        );
        let outputs = self
            .outputs
            .iter()
            .map(|(path, stamp)| ("output", None, path, stamp));
        let folders = self.articles.folders.iter().zip(&self.articles.held);
        let folders = folders.map(|((path, stamp), held)| ("folder", Some(held), path, stamp));
        for (kind, held, path, stamp) in outputs.chain(folders) {
            let path = line_safe(path.to_str()?)?;
            out.push_str(kind);
            out.push(' ');
            if let Some(held) = held {
                let _ = write!(out, "{held} ");
            }
            stamp.write(&mut out);
            let _ = writeln!(out, " {path}");
        }
        let lines = self.articles.lines.text()?;
        let _ = writeln!(out, "articles {} {}", self.articles.count, lines.len());
        out.push_str(&lines);
        Some(out)
    }

    /// Reads [`BuildCache::to_text`]'s format; None for anything else. The
    /// article lines are checked when they are used, but they must have the
    /// length the head says.
    pub fn parse(mut text: String) -> Option<BuildCache> {
        let head_len = head_end(text.as_bytes())?;
        let (mut cache, bytes) = BuildCache::parse_head(&text[..head_len])?;
        if text.len() != head_len + bytes {
            return None;
        }
        text.replace_range(..head_len, "");
        cache.articles.lines = Lines::Text(text);
        Some(cache)
    }

    /// The head of the file, up to its `articles COUNT BYTES` line: the
    /// cache with no article lines yet, and how many bytes of them follow.
    fn parse_head(head: &str) -> Option<(BuildCache, usize)> {
        let mut lines = head.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let settings = lines.next()?.strip_prefix("settings ")?.to_owned();
        if settings.len() != 64 || !settings.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let date = |text: &str| -> Option<Option<DateTime<FixedOffset>>> {
            if text == "-" {
                Some(None)
            } else {
                DateTime::parse_from_rfc3339(text).ok().map(Some)
            }
        };
        let published_from = date(lines.next()?.strip_prefix("from ")?)?;
        let published_until = date(lines.next()?.strip_prefix("until ")?)?;
        let mut outputs = Vec::new();
        let mut folders = Vec::new();
        let mut held = Vec::new();
        let (count, bytes) = loop {
            let line = lines.next()?;
            let (kind, rest) = line.split_once(' ')?;
            if kind == "articles" {
                let (count, bytes) = rest.split_once(' ')?;
                break (count.parse().ok()?, bytes.parse().ok()?);
            }
            // A folder's line has the number of its articles first; the
            // path is the rest of the line, spaces and all.
            let folder = kind == "folder";
            let mut parts = rest.splitn(if folder { 6 } else { 5 }, ' ');
            if folder {
                held.push(parts.next()?.parse().ok()?);
            }
            let stamp = Stamp::parse(&mut parts)?;
            let path = PathBuf::from(parts.next().filter(|p| !p.is_empty())?);
            match kind {
                "output" => outputs.push((path, stamp)),
                "folder" => folders.push((path, stamp)),
                _ => return None,
            }
        };
        let cache = BuildCache {
            settings,
            published_from,
            published_until,
            outputs,
            articles: Manifest {
                folders,
                held,
                count,
                lines: Lines::default(),
            },
        };
        Some((cache, bytes))
    }
}

/// The length of the head of a cache file in `bytes`: up to and with the
/// end of its `articles` line (no path in the lines before it can hold a
/// line break). None when that line is not there (yet).
fn head_end(bytes: &[u8]) -> Option<usize> {
    let at = memchr::memmem::find(bytes, b"\narticles ")? + 1;
    Some(at + memchr::memchr(b'\n', &bytes[at..])? + 1)
}

/// The newest publish date at or before `now` and the earliest after it,
/// over every article (drafts included: that can only narrow the window).
pub fn publication_window(
    site: &Site,
    now: DateTime<FixedOffset>,
) -> (Option<DateTime<FixedOffset>>, Option<DateTime<FixedOffset>>) {
    let mut from = None;
    let mut until = None;
    for date in site.articles.iter().map(|a| a.publish_date) {
        if date <= now {
            from = from.max(Some(date));
        } else if until.is_none_or(|u| date < u) {
            until = Some(date);
        }
    }
    (from, until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::content::Bodies;
    use std::fs::File;

    const CONFIG: &str = "[site]\ntitle = 'T'\nbase_url = 'https://example.com/'\nauthor = 'A'\n";

    /// A site folder whose files carry modification times an hour ago,
    /// each a second apart.
    struct Fixture {
        dir: tempfile::TempDir,
        /// Seconds before now of the next write: each one a second
        /// later than the last, so even a coarse clock tells them apart.
        age: std::cell::Cell<u64>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let fixture = Fixture {
                dir: tempfile::tempdir().unwrap(),
                age: std::cell::Cell::new(3600),
            };
            fixture.write("config.toml", CONFIG);
            fixture.write(
                "content/a.md",
                "---\ntitle: 'A'\npublish_date: '2025-01-01'\n---\nBody\n",
            );
            fixture.write(
                "content/later.md",
                "---\ntitle: 'Later'\npublish_date: '2025-06-01'\n---\nBody\n",
            );
            fixture.write("templates/article.txt", "{{ title }}");
            fixture
        }

        fn root(&self) -> &Path {
            self.dir.path()
        }

        /// Writes a file dated about an hour ago.
        fn write(&self, relative: &str, text: &str) {
            let path = self.root().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            let age = self.age.get();
            self.age.set(age - 1);
            self.age(relative, age);
        }

        fn age(&self, relative: &str, seconds: u64) {
            let time = SystemTime::now() - Duration::from_secs(seconds);
            File::options()
                .write(true)
                .open(self.root().join(relative))
                .unwrap()
                .set_modified(time)
                .unwrap();
        }

        fn config(&self) -> Config {
            Config::parse("config.toml", CONFIG).unwrap()
        }

        fn settings(&self) -> String {
            settings_digest(self.root()).expect("settings")
        }

        /// The manifest of the articles as a build that started at
        /// `started` records it.
        fn manifest(&self, started: SystemTime) -> Option<Manifest> {
            let found = crate::content::find_articles(self.root(), &self.root().join("content"));
            let (_, stamps) =
                Site::load_found(self.root(), self.config(), &found, Bodies::Deferred).unwrap();
            Manifest::record(self.root(), &found, &stamps, started)
        }

        /// A "build" at `now`: two output files and the cache saved. It
        /// counts as starting a minute from now, so that what was just
        /// written is settled (status change times cannot be set back).
        fn build(&self, now: &str) -> BuildCache {
            let site = Site::load(self.root(), self.config()).unwrap();
            self.write("public/rss.xml", "<rss/>");
            self.write("public/feed.json", "{}");
            let outputs = ["public/rss.xml", "public/feed.json"]
                .iter()
                .map(|p| (PathBuf::from(p), Stamp::of(&self.root().join(p)).unwrap()))
                .collect();
            let articles = self.manifest(in_a_minute()).expect("settled");
            let cache = BuildCache::new(&self.settings(), articles, &site, time(now), outputs);
            cache.save(self.root()).unwrap();
            cache
        }

        fn fresh(&self, now: &str) -> bool {
            BuildCache::load(self.root())
                .is_some_and(|c| c.is_fresh(self.root(), &self.settings(), time(now)))
        }
    }

    /// The article lines of a manifest a build recorded.
    fn lines(manifest: &Manifest) -> &str {
        match &manifest.lines {
            Lines::Text(text) => text,
            #[cfg(unix)]
            Lines::File { .. } => panic!("not recorded by a build"),
        }
    }

    /// [`parse_article`] on a line as it is in a file.
    fn parse(line: &str) -> Option<(usize, Stamp, String)> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(0);
        parse_article(&bytes)
            .map(|(folder, stamp, name)| (folder, stamp, name.to_str().unwrap().to_owned()))
    }

    /// The lines that start in bytes `from..to` of `lines`.
    fn starting_in(lines: &Lines, from: usize, to: usize) -> String {
        let mut buffer = Vec::new();
        let range = lines.starting_in(from, to, &mut buffer).unwrap();
        String::from_utf8(buffer[range].to_vec()).unwrap()
    }

    fn in_a_minute() -> SystemTime {
        SystemTime::now() + Duration::from_secs(60)
    }

    fn time(rfc3339: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap()
    }

    const NOW: &str = "2025-03-01T00:00:00Z";

    #[test]
    fn nothing_changed_reuses_the_last_build() {
        let site = Fixture::new();
        site.build(NOW);
        assert!(site.fresh(NOW));
    }

    #[test]
    fn a_changed_article_rebuilds() {
        let site = Fixture::new();
        site.build(NOW);
        // Same size, new time.
        site.write(
            "content/a.md",
            "---\ntitle: 'B'\npublish_date: '2025-01-01'\n---\nBody\n",
        );
        assert!(!site.fresh(NOW));
    }

    #[test]
    fn an_article_replaced_with_the_same_size_and_time_rebuilds() {
        let site = Fixture::new();
        let path = site.root().join("content/a.md");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        site.build(NOW);
        // As `cp -p` or a sync tool would leave it: new bytes, old time.
        let other = site.root().join("other.md");
        std::fs::write(
            &other,
            "---\ntitle: 'Z'\npublish_date: '2025-01-01'\n---\nBody\n",
        )
        .unwrap();
        File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(before)
            .unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        assert!(!site.fresh(NOW));
    }

    #[test]
    fn a_new_or_removed_article_rebuilds() {
        let site = Fixture::new();
        site.build(NOW);
        site.write(
            "content/new.md",
            "---\ntitle: 'N'\npublish_date: '2025-01-02'\n---\n",
        );
        assert!(!site.fresh(NOW));
        site.build(NOW);
        assert!(site.fresh(NOW));
        std::fs::remove_file(site.root().join("content/a.md")).unwrap();
        assert!(!site.fresh(NOW));
    }

    #[test]
    fn an_article_added_to_a_folder_without_articles_rebuilds() {
        let site = Fixture::new();
        site.write("content/2026/drafts/notes.csv", "x");
        site.build(NOW);
        assert!(site.fresh(NOW));
        site.write(
            "content/2026/drafts/new.md",
            "---\ntitle: 'N'\npublish_date: '2025-01-02'\n---\n",
        );
        assert!(!site.fresh(NOW));
    }

    #[test]
    fn any_change_to_a_folder_rebuilds_once() {
        let site = Fixture::new();
        site.build(NOW);
        // Not an article, but the folder changed: the articles are not
        // listed again, so the build cannot tell.
        site.write("content/image.png", "png");
        assert!(!site.fresh(NOW));
        site.build(NOW);
        assert!(site.fresh(NOW));
    }

    #[test]
    fn a_touched_config_or_template_rebuilds() {
        let site = Fixture::new();
        site.build(NOW);
        site.write("config.toml", &format!("{CONFIG}# a comment\n"));
        assert!(!site.fresh(NOW));

        let site = Fixture::new();
        site.build(NOW);
        site.write("templates/article.txt", "{{ title }}!");
        assert!(!site.fresh(NOW));
    }

    #[test]
    fn a_scheduled_article_going_public_rebuilds() {
        let site = Fixture::new();
        let cache = site.build(NOW);
        assert_eq!(cache.published_from, Some(time("2025-01-01T00:00:00Z")));
        assert_eq!(cache.published_until, Some(time("2025-06-01T00:00:00Z")));
        assert!(site.fresh("2025-05-31T23:59:59Z"));
        assert!(
            !site.fresh("2025-06-01T00:00:00Z"),
            "`later` is published now"
        );
        assert!(
            !site.fresh("2024-12-31T23:59:59Z"),
            "an earlier `now` unpublishes `a`"
        );
    }

    #[test]
    fn a_deleted_or_modified_output_rebuilds() {
        let site = Fixture::new();
        site.build(NOW);
        std::fs::remove_file(site.root().join("public/feed.json")).unwrap();
        assert!(!site.fresh(NOW));

        let site = Fixture::new();
        site.build(NOW);
        site.write("public/rss.xml", "<rss></rss>");
        assert!(!site.fresh(NOW));
    }

    #[test]
    fn a_corrupt_or_foreign_cache_is_ignored() {
        let site = Fixture::new();
        site.build(NOW);
        let path = site.root().join(CACHE_FILE);
        let good = std::fs::read_to_string(&path).unwrap();
        let first_article = good.rfind("\n0 ").unwrap() + 1;
        for bad in [
            String::new(),
            "garbage".to_owned(),
            good.replace(MAGIC, "pressroom-build-cache 1"),
            good.replacen("settings ", "settings x", 1),
            good.replacen("from ", "from yesterday", 1),
            good.replacen("output ", "output x", 1),
            good.replacen("folder ", "folder 1 ", 1),
            good.replacen("articles 2", "articles 1", 1),
            // An article line lost, or cut short.
            good[..first_article].to_owned(),
            good[..good.len() - 1].to_owned(),
            good.replacen("\n0 ", "\n9 ", 1),
            good.replacen("\n0 ", "\n0 x", 1),
            good[..good.len() / 2].to_owned(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(!site.fresh(NOW), "{bad:?}");
        }
        std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        assert!(!site.fresh(NOW));
        std::fs::write(&path, &good).unwrap();
        assert!(site.fresh(NOW));
    }

    #[test]
    fn a_young_article_or_folder_is_not_trusted() {
        let site = Fixture::new();
        // Just written: its status change time is now, whatever its
        // modification time says.
        assert!(site.manifest(SystemTime::now()).is_none());
        assert!(site.manifest(in_a_minute()).is_some());
        site.age("content/a.md", 0);
        assert!(site
            .manifest(SystemTime::now() + SETTLE - Duration::from_millis(500))
            .is_none());
    }

    #[test]
    fn links_hidden_names_and_other_files_are_taken_as_the_build_finds_them() {
        let site = Fixture::new();
        site.write(
            "content/2025/deep/b.MD",
            "---\ntitle: 'B'\npublish_date: '2025-02-01'\n---\n",
        );
        site.write("content/.hidden/c.md", "x");
        site.write("content/.d.md", "x");
        site.write("content/notes.csv", "x");
        site.write(
            "content/z.txt",
            "---\ntitle: 'Z'\npublish_date: '2025-02-02'\n---\n",
        );
        site.write(
            "shelf/deep/s.md",
            "---\ntitle: 'S'\npublish_date: '2025-02-03'\n---\n",
        );
        site.write(
            "elsewhere.md",
            "---\ntitle: 'E'\npublish_date: '2025-02-04'\n---\n",
        );
        std::os::unix::fs::symlink("../elsewhere.md", site.root().join("content/link.md")).unwrap();
        std::os::unix::fs::symlink("../shelf", site.root().join("content/again")).unwrap();
        let cache = site.build(NOW);
        let mut names: Vec<String> = lines(&cache.articles)
            .lines()
            .map(|l| parse(l).unwrap().2)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["a.md", "b.MD", "later.md", "link.md", "s.md", "z.txt"],
            "{}",
            lines(&cache.articles)
        );
        let folders: Vec<&Path> = cache
            .articles
            .folders
            .iter()
            .map(|(p, _)| p.as_path())
            .collect();
        assert_eq!(
            folders,
            [
                "content",
                "content/2025",
                "content/2025/deep",
                "content/again",
                "content/again/deep"
            ]
            .map(Path::new),
        );
        assert!(site.fresh(NOW));

        // Through the link to a folder, and through the link to a file.
        site.write(
            "shelf/deep/s.md",
            "---\ntitle: 'T'\npublish_date: '2025-02-03'\n---\n",
        );
        assert!(!site.fresh(NOW));
        site.build(NOW);
        assert!(site.fresh(NOW));
        site.write(
            "elsewhere.md",
            "---\ntitle: 'F'\npublish_date: '2025-02-04'\n---\n",
        );
        assert!(!site.fresh(NOW));
        site.build(NOW);
        assert!(site.fresh(NOW));
        site.write(
            "shelf/deep/new.md",
            "---\ntitle: 'N'\npublish_date: '2025-02-05'\n---\n",
        );
        assert!(!site.fresh(NOW), "an article added behind a link");

        // A link back to a folder it is in: the build reports the loop,
        // so there is nothing to record.
        std::os::unix::fs::symlink("..", site.root().join("content/2025/up")).unwrap();
        let found = crate::content::find_articles(site.root(), &site.root().join("content"));
        assert!(!found.problems.is_empty());
        let stamps = vec![None; found.files.len()];
        assert!(Manifest::record(site.root(), &found, &stamps, in_a_minute()).is_none());
    }

    #[test]
    fn every_article_of_a_large_site_is_checked() {
        let site = Fixture::new();
        // Enough lines for many chunks, so that helper threads take part.
        for i in 0..1200 {
            site.write(
                &format!("content/{}/post-with-a-longer-name-{i:04}.md", i % 7),
                &format!("---\ntitle: 'P{i}'\npublish_date: '2025-02-01'\n---\n"),
            );
        }
        let cache = site.build(NOW);
        let text = lines(&cache.articles);
        let chunks = text.len().div_ceil(Check::CHUNK);
        assert!(chunks > 4, "{chunks} chunks");
        assert!(site.fresh(NOW));
        // A change in any chunk is seen: one article from the middle of
        // each (or its first, when it ends sooner), then a build again.
        for chunk in 0..chunks {
            let (from, to) = (chunk * Check::CHUNK, (chunk + 1) * Check::CHUNK);
            let mut part = starting_in(&cache.articles.lines, from + Check::CHUNK / 2, to);
            if part.is_empty() {
                part = starting_in(&cache.articles.lines, from, to);
            }
            let (folder, _, name) = parse(part.lines().next().unwrap()).unwrap();
            let relative = cache.articles.folders[folder].0.join(name);
            let relative = relative.to_str().unwrap();
            site.write(
                relative,
                &format!("---\ntitle: 'Changed {chunk}'\npublish_date: '2025-02-01'\n---\n"),
            );
            assert!(!site.fresh(NOW), "{relative} in chunk {chunk}");
            site.build(NOW);
            assert!(site.fresh(NOW));
        }
    }

    #[test]
    fn a_site_with_a_folder_per_article_is_checked() {
        let site = Fixture::new();
        // More folders than a process may usually hold open at once.
        for i in 0..1500 {
            site.write(
                &format!("content/posts/{i:04}/index.md"),
                &format!("---\ntitle: 'P{i}'\npublish_date: '2025-02-01'\n---\n"),
            );
        }
        site.write("content/posts/empty/notes.csv", "x");
        let cache = site.build(NOW);
        assert_eq!(cache.articles.folders.len(), 1503);
        assert!(site.fresh(NOW));
        site.write(
            "content/posts/0750/index.md",
            "---\ntitle: 'Changed'\npublish_date: '2025-02-01'\n---\n",
        );
        assert!(!site.fresh(NOW));
        site.build(NOW);
        assert!(site.fresh(NOW));
        // A folder that holds no article is checked too.
        site.write(
            "content/posts/empty/new.md",
            "---\ntitle: 'New'\npublish_date: '2025-02-01'\n---\n",
        );
        assert!(!site.fresh(NOW));
    }

    #[test]
    fn folders_of_few_articles_are_checked_from_their_parent() {
        let site = Fixture::new();
        let article =
            |title: &str| format!("---\ntitle: '{title}'\npublish_date: '2025-02-01'\n---\n");
        // A folder opened for its many articles, with folders of one or
        // two articles beside them: looked up from it, and after it.
        for i in 0..Check::OPEN_FROM {
            site.write(
                &format!("content/posts/{i:02}.md"),
                &article(&format!("Flat {i}")),
            );
        }
        for i in 0..40 {
            site.write(
                &format!("content/posts/b{i:02}/index.md"),
                &article(&format!("Bundle {i}")),
            );
        }
        site.write("content/posts/b07/extra.md", &article("Extra"));
        let cache = site.build(NOW);
        assert!(site.fresh(NOW));
        let held = |folder: &str| {
            let index = cache
                .articles
                .folders
                .iter()
                .position(|(path, _)| path == Path::new(folder));
            cache.articles.held[index.unwrap()]
        };
        assert_eq!(held("content/posts"), Check::OPEN_FROM);
        assert_eq!(held("content/posts/b07"), 2);

        // The second article of a folder looked up from its parent.
        site.write("content/posts/b07/extra.md", &article("Extra, changed"));
        assert!(!site.fresh(NOW));
        site.build(NOW);
        assert!(site.fresh(NOW));
        // A file that is no article, in such a folder: its stamp changed.
        site.write("content/posts/b20/photo.jpg", "jpg");
        assert!(!site.fresh(NOW));
        site.build(NOW);
        assert!(site.fresh(NOW));
        // The folder replaced by another with the same article in it
        // (which changes its parent too).
        let folder = site.root().join("content/posts/b30");
        std::fs::rename(&folder, site.root().join("b30-old")).unwrap();
        site.write("content/posts/b30/index.md", &article("Bundle 30"));
        assert!(!site.fresh(NOW));
        site.build(NOW);
        assert!(site.fresh(NOW));
        // A folder's article gone, the folder left.
        std::fs::remove_file(site.root().join("content/posts/b39/index.md")).unwrap();
        assert!(!site.fresh(NOW));
    }

    #[test]
    fn chunks_hold_every_line_once() {
        let text = "0 1 2 3 4 a\n12 1 2 3 4 bb\n\n7 1 2 3 4 ccc\n";
        let lines = Lines::Text(text.to_owned());
        for size in 1..=text.len() + 1 {
            let mut read = String::new();
            for i in 0..text.len().div_ceil(size) {
                read.push_str(&starting_in(&lines, i * size, (i + 1) * size));
            }
            assert_eq!(read, text, "chunks of {size}");
        }
    }

    #[test]
    fn an_article_line_reads_back() {
        assert_eq!(
            parse("3 10 -5 1795952324700457243 77 a name.md"),
            Some((
                3,
                Stamp {
                    size: 10,
                    modified: -5,
                    changed: 1795952324700457243,
                    inode: 77
                },
                "a name.md".to_owned()
            ))
        );
        for bad in [
            "",
            "3 10 -5 1 77",
            "3 10 -5 1 77 ",
            "x 10 -5 1 77 a",
            "3 -10 5 1 77 a",
            "3 10 5 1 7-7 a",
            "3 10 5 1 77 a\0b",
            "3 10 5 1 123456789012345678901234567890123456789 a",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_text_round_trips() {
        let stamp = Stamp {
            size: 10,
            modified: -5,
            changed: 7,
            inode: 42,
        };
        let cache = BuildCache {
            settings: "ab".repeat(32),
            published_from: Some(time("2025-01-01T10:00:00.5+01:00")),
            published_until: None,
            outputs: vec![(PathBuf::from("public/tags/a b/rss.xml"), stamp)],
            articles: Manifest {
                folders: vec![
                    (PathBuf::from("content"), stamp),
                    (PathBuf::from("content/a b"), stamp),
                ],
                held: vec![2, 0],
                count: 2,
                lines: Lines::Text("0 10 -5 7 42 a b.md\n0 1 2 3 4 c.md\n".to_owned()),
            },
        };
        let text = cache.to_text().unwrap();
        let read = BuildCache::parse(text.clone()).unwrap();
        assert_eq!(read.to_text().unwrap(), text);
        assert_eq!(read.settings, cache.settings);
        assert_eq!(read.published_from, cache.published_from);
        assert_eq!(read.published_until, cache.published_until);
        assert_eq!(read.outputs, cache.outputs);
        assert_eq!(read.articles.folders, cache.articles.folders);
        assert_eq!(read.articles.held, cache.articles.held);
        assert_eq!(read.articles.count, 2);
        assert_eq!(lines(&read.articles), lines(&cache.articles));
    }

    #[test]
    fn lines_read_from_the_file_in_chunks_are_the_lines_in_memory() {
        let site = Fixture::new();
        for i in 0..300 {
            site.write(
                &format!("content/{}/p-{i:03}.md", i % 3),
                &format!("---\ntitle: 'P{i}'\npublish_date: '2025-02-01'\n---\n"),
            );
        }
        let built = site.build(NOW);
        let text = lines(&built.articles);
        let loaded = BuildCache::load(site.root()).unwrap();
        assert!(matches!(loaded.articles.lines, Lines::File { .. }));
        assert_eq!(loaded.articles.count, 302);
        for size in [1, 7, 64, 100, 4096, text.len()] {
            let mut read = String::new();
            for i in 0..text.len().div_ceil(size) {
                read.push_str(&starting_in(
                    &loaded.articles.lines,
                    i * size,
                    (i + 1) * size,
                ));
            }
            assert_eq!(read, text, "chunks of {size}");
        }
    }
}
