//! The no-op build cache, `.pressroom/build-cache`: a fingerprint of what
//! the last `pressroom build` read and what it left in the output folder,
//! so that a build with nothing changed stops before loading a single
//! article, renders nothing and writes nothing.
//!
//! The last build is reused only when all of these still hold:
//! - the same pressroom version;
//! - `config.toml` and every file under `templates/` have the same bytes
//!   (hashed);
//! - the same article files (as the loader finds them), each with the same
//!   size and modification time;
//! - `now` falls where the set of published articles is the same as then:
//!   at or after the newest publish date that had come, and before the
//!   earliest that had not (a scheduled article goes public as time passes,
//!   with no file changing);
//! - every output file is still there with the size and modification time
//!   it had after that build.
//!
//! Anything else — no cache, a corrupt or unreadable one, one from another
//! version — means a full build, which writes a new cache. Modification
//! times are trusted only once they are older than [`SETTLE`]: a file
//! changed twice within one clock tick of a scan would otherwise go
//! unnoticed, so a scan that sees such a young article saves no cache.

use std::fmt::Write as _;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use chrono::{DateTime, FixedOffset};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::content::{Found, Site};

/// Where the cache lives, relative to the site root.
pub const CACHE_FILE: &str = ".pressroom/build-cache";

/// The first line of a cache file; a change of format changes it.
const MAGIC: &str = "pressroom-build-cache 1";

/// How old an article's modification time must be before a cache relies
/// on it (coarse file-system clocks tick in up to two seconds).
pub const SETTLE: Duration = Duration::from_secs(2);

/// A file's size and modification time (nanoseconds from the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub modified: i128,
}

impl Stamp {
    /// The stamp of the file at `path` (links followed), if it can be read.
    pub fn of(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| Stamp::from_metadata(&m))
    }

    pub fn from_metadata(metadata: &Metadata) -> Option<Stamp> {
        if !metadata.is_file() {
            return None;
        }
        Some(Stamp {
            size: metadata.len(),
            modified: nanos(metadata.modified().ok()?)?,
        })
    }
}

/// Nanoseconds from the Unix epoch (negative before it).
fn nanos(time: SystemTime) -> Option<i128> {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).ok(),
        Err(before) => i128::try_from(before.duration().as_nanos())
            .ok()
            .map(|n| -n),
    }
}

/// A fingerprint of every input of a build, taken before it loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// SHA-256 over the version, config.toml, templates/ and the list of
    /// article files with their stamps.
    pub digest: String,
    /// False when some article was modified too recently (see [`SETTLE`])
    /// for its time to be relied on: such a fingerprint is not saved.
    pub settled: bool,
}

impl Inputs {
    /// Scans the inputs of the site at `root`. None when they cannot all be
    /// listed or read (a missing content folder, an unreadable file, a
    /// link that leads back to a folder it is in): the build then runs
    /// (and reports any problem).
    pub fn scan(root: &Path, config: &Config) -> Option<Inputs> {
        let started = SystemTime::now();
        let content_dir = root.join(&config.site.content_dir);
        let ancestors = [std::fs::canonicalize(&content_dir).ok()?];
        let sum = scan_folder(root, &content_dir, &ancestors, trusted(started))?;
        Inputs::from_sum(root, sum)
    }

    /// The fingerprint of the article files `found` with their `stamps`
    /// (each taken before its file was read, so a file changed during the
    /// build is seen as changed by the next one), listed at or after
    /// `started`: what [`Inputs::scan`] gives for the same files.
    pub fn from_stamps(
        root: &Path,
        found: &Found,
        stamps: &[Option<Stamp>],
        started: SystemTime,
    ) -> Option<Inputs> {
        if !found.problems.is_empty() || found.files.len() != stamps.len() {
            return None;
        }
        let trusted_before = trusted(started);
        let root_bytes = root.as_os_str().as_encoded_bytes();
        let sum = found
            .files
            .par_iter()
            .zip(stamps)
            .map(|(path, stamp)| {
                let path = path.as_os_str().as_encoded_bytes();
                Some(Sum::of(
                    path.strip_prefix(root_bytes)?,
                    (*stamp)?,
                    trusted_before,
                ))
            })
            .try_reduce(Sum::default, |a, b| Some(a.add(b)))?;
        Inputs::from_sum(root, sum)
    }

    /// The fingerprint from the articles' [`Sum`], with the version,
    /// config.toml and templates/.
    fn from_sum(root: &Path, sum: Sum) -> Option<Inputs> {
        let mut hasher = Sha256::new();
        hasher.update(MAGIC.as_bytes());
        hasher.update(b"\0");
        hasher.update(crate::VERSION.as_bytes());
        hasher.update(b"\0");

        let config_text = std::fs::read(root.join(crate::commands::CONFIG_FILE)).ok()?;
        hash_file(
            &mut hasher,
            Path::new(crate::commands::CONFIG_FILE),
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

        hasher.update(sum.count.to_le_bytes());
        for lane in sum.lanes {
            hasher.update(lane.to_le_bytes());
        }
        Some(Inputs {
            digest: hex(&hasher.finalize()),
            settled: sum.settled,
        })
    }
}

/// Modification times before this (nanoseconds) can be relied on.
fn trusted(started: SystemTime) -> Option<i128> {
    started.checked_sub(SETTLE).and_then(nanos)
}

/// The article files as an order-free sum: each file's SHA-256 over its
/// path (relative to the site root), size and time, added up lane by lane,
/// so that folders scanned in parallel add up to the same value in any
/// order; with the number of files and whether every time is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sum {
    lanes: [u64; 4],
    count: u64,
    settled: bool,
}

impl Default for Sum {
    fn default() -> Sum {
        Sum {
            lanes: [0; 4],
            count: 0,
            settled: true,
        }
    }
}

impl Sum {
    fn of(relative: &[u8], stamp: Stamp, trusted_before: Option<i128>) -> Sum {
        let mut hasher = Sha256::new();
        hasher.update(relative);
        hasher.update(b"\0");
        hasher.update(stamp.size.to_le_bytes());
        hasher.update(stamp.modified.to_le_bytes());
        let digest = hasher.finalize();
        let mut lanes = [0; 4];
        for (lane, bytes) in lanes.iter_mut().zip(digest.chunks_exact(8)) {
            *lane = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
        }
        Sum {
            lanes,
            count: 1,
            settled: trusted_before.is_some_and(|before| stamp.modified < before),
        }
    }

    fn add(self, other: Sum) -> Sum {
        let mut lanes = self.lanes;
        for (lane, more) in lanes.iter_mut().zip(other.lanes) {
            *lane = lane.wrapping_add(more);
        }
        Sum {
            lanes,
            count: self.count + other.count,
            settled: self.settled && other.settled,
        }
    }
}

/// The [`Sum`] of the article files under `dir`, found as
/// [`crate::content::find_articles`] finds them (hidden names skipped, an
/// article extension, links followed) and stat'ed by name in their opened
/// folder, with nothing allocated per file; subfolders in parallel.
/// `ancestors` are the canonical paths of `dir` and the folders above it,
/// as the walk keeps them to stop at a link loop. Paths are hashed
/// relative to `root`. None when anything is out of the ordinary (a link
/// loop, an entry that cannot be read or stat'ed): the build finds out
/// what.
#[cfg(target_os = "linux")]
fn scan_folder(
    root: &Path,
    dir: &Path,
    ancestors: &[PathBuf],
    trusted_before: Option<i128>,
) -> Option<Sum> {
    use rustix::fs::{open, statat, AtFlags, FileType, Mode, OFlags, RawDir};
    use std::os::unix::ffi::OsStrExt;

    let folder = open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut path = dir.as_os_str().as_bytes().to_vec();
    if !path.ends_with(b"/") {
        path.push(b'/');
    }
    let base = path.len();
    let mut sum = Sum::default();
    // Each with its canonical path.
    let mut subfolders: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut buffer = vec![std::mem::MaybeUninit::uninit(); 32 * 1024];
    let mut entries = RawDir::new(&folder, &mut buffer);
    while let Some(entry) = entries.next() {
        let entry = entry.ok()?;
        let name = entry.file_name().to_bytes();
        if name.starts_with(b".") {
            continue;
        }
        let is_file = match entry.file_type() {
            FileType::Directory => {
                let name = std::ffi::OsStr::from_bytes(name);
                let canonical = ancestors.last()?.join(name);
                subfolders.push((dir.join(name), canonical));
                continue;
            }
            FileType::RegularFile => true,
            // Followed: a link to a file counts as the file, a link to a
            // folder as the folder.
            FileType::Symlink => {
                let target = statat(&folder, entry.file_name(), AtFlags::empty()).ok()?;
                match FileType::from_raw_mode(target.st_mode as _) {
                    FileType::Directory => {
                        let link = dir.join(std::ffi::OsStr::from_bytes(name));
                        let canonical = std::fs::canonicalize(&link).ok()?;
                        if ancestors.contains(&canonical) {
                            return None;
                        }
                        subfolders.push((link, canonical));
                        continue;
                    }
                    FileType::RegularFile => true,
                    _ => false,
                }
            }
            FileType::Unknown => return None,
            _ => false,
        };
        if !is_file || !is_article_name(name) {
            continue;
        }
        let stat = statat(&folder, entry.file_name(), AtFlags::empty()).ok()?;
        if FileType::from_raw_mode(stat.st_mode as _) != FileType::RegularFile {
            return None;
        }
        let stamp = Stamp {
            size: u64::try_from(stat.st_size).ok()?,
            modified: i128::from(stat.st_mtime) * 1_000_000_000 + i128::from(stat.st_mtime_nsec),
        };
        path.truncate(base);
        path.extend_from_slice(name);
        let relative = path.strip_prefix(root.as_os_str().as_bytes())?;
        sum = sum.add(Sum::of(relative, stamp, trusted_before));
    }
    // Rayon starts each split from the identity, so this folder's own
    // files are added once, outside the reduction.
    let below = subfolders
        .par_iter()
        .map(|(sub, canonical)| {
            let mut chain = ancestors.to_vec();
            chain.push(canonical.clone());
            scan_folder(root, sub, &chain, trusted_before)
        })
        .try_reduce(Sum::default, |a, b| Some(a.add(b)))?;
    Some(sum.add(below))
}

/// Elsewhere: listed by the loader's walk, each file stat'ed by path.
#[cfg(not(target_os = "linux"))]
fn scan_folder(
    root: &Path,
    dir: &Path,
    _ancestors: &[PathBuf],
    trusted_before: Option<i128>,
) -> Option<Sum> {
    let found = crate::content::find_articles(root, dir);
    if !found.problems.is_empty() {
        return None;
    }
    let root = root.as_os_str().as_encoded_bytes();
    found
        .files
        .par_iter()
        .map(|path| {
            let relative = path.as_os_str().as_encoded_bytes().strip_prefix(root)?;
            Some(Sum::of(relative, Stamp::of(path)?, trusted_before))
        })
        .try_reduce(Sum::default, |a, b| Some(a.add(b)))
}

/// An article's extension, in any case (as `Path::extension` reads a
/// file name).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn is_article_name(name: &[u8]) -> bool {
    match name.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => {
            let extension = &name[dot + 1..];
            crate::content::EXTENSIONS
                .iter()
                .any(|e| extension.eq_ignore_ascii_case(e.as_bytes()))
        }
        _ => false,
    }
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

/// What the last build read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCache {
    /// [`Inputs::digest`] of the build.
    pub inputs: String,
    /// The newest publish date at or before the build's `now`, and the
    /// earliest after it: for any `now` in `[from, until)` the same
    /// articles are published, so the feeds are the same.
    pub published_from: Option<DateTime<FixedOffset>>,
    pub published_until: Option<DateTime<FixedOffset>>,
    /// Every feed file the build wrote or found up to date, relative to
    /// the site root, as it was afterwards.
    pub outputs: Vec<(PathBuf, Stamp)>,
}

impl BuildCache {
    /// The cache of a build of `site` at `now` whose files are `outputs`.
    pub fn new(
        inputs: &Inputs,
        site: &Site,
        now: DateTime<FixedOffset>,
        outputs: Vec<(PathBuf, Stamp)>,
    ) -> BuildCache {
        let (published_from, published_until) = publication_window(site, now);
        BuildCache {
            inputs: inputs.digest.clone(),
            published_from,
            published_until,
            outputs,
        }
    }

    /// Reads the cache of the site at `root`; None when there is none or
    /// it cannot be read or understood.
    pub fn load(root: &Path) -> Option<BuildCache> {
        let text = std::fs::read_to_string(root.join(CACHE_FILE)).ok()?;
        BuildCache::parse(&text)
    }

    /// Writes the cache atomically. Fails (writing nothing) when an output
    /// path cannot be recorded in the format.
    pub fn save(&self, root: &Path) -> Result<()> {
        let text = self
            .to_text()
            .ok_or_else(|| anyhow::anyhow!("an output path is not plain UTF-8 text"))?;
        crate::fs::write_atomic(&root.join(CACHE_FILE), text.as_bytes())
    }

    /// True when a build with `inputs` at `now` would produce the recorded
    /// outputs, and they are all still on disk as that build left them.
    pub fn is_fresh(&self, root: &Path, inputs: &Inputs, now: DateTime<FixedOffset>) -> bool {
        self.covers(inputs, now) && self.outputs_untouched(root)
    }

    /// Same inputs, and `now` in the window of the same published set.
    pub fn covers(&self, inputs: &Inputs, now: DateTime<FixedOffset>) -> bool {
        self.inputs == inputs.digest
            && self.published_from.is_none_or(|from| from <= now)
            && self.published_until.is_none_or(|until| now < until)
    }

    /// Every recorded output exists with its recorded size and time.
    pub fn outputs_untouched(&self, root: &Path) -> bool {
        !self.outputs.is_empty()
            && self
                .outputs
                .par_iter()
                .all(|(path, stamp)| Stamp::of(&root.join(path)) == Some(*stamp))
    }

    /// The file's text; None when a path cannot be written in it.
    pub fn to_text(&self) -> Option<String> {
        let date = |d: Option<DateTime<FixedOffset>>| d.map_or("-".to_owned(), |d| d.to_rfc3339());
        let mut out = format!(
            "{MAGIC}\ninputs {}\nfrom {}\nuntil {}\n",
            self.inputs,
            date(self.published_from),
            date(self.published_until)
        );
        for (path, stamp) in &self.outputs {
            let path = path.to_str().filter(|p| !p.contains(['\n', '\r']))?;
            let _ = writeln!(out, "output {} {} {path}", stamp.size, stamp.modified);
        }
        Some(out)
    }

    /// Reads [`BuildCache::to_text`]'s format; None for anything else.
    pub fn parse(text: &str) -> Option<BuildCache> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|line| line.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_owned)
        };
        let inputs = field("inputs")?;
        if inputs.len() != 64 || !inputs.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let date = |text: String| -> Option<Option<DateTime<FixedOffset>>> {
            if text == "-" {
                Some(None)
            } else {
                DateTime::parse_from_rfc3339(&text).ok().map(Some)
            }
        };
        let published_from = date(field("from")?)?;
        let published_until = date(field("until")?)?;
        let mut outputs = Vec::new();
        for line in lines {
            let rest = line.strip_prefix("output ")?;
            let mut parts = rest.splitn(3, ' ');
            let size = parts.next()?.parse().ok()?;
            let modified = parts.next()?.parse().ok()?;
            let path = parts.next().filter(|p| !p.is_empty())?;
            outputs.push((PathBuf::from(path), Stamp { size, modified }));
        }
        Some(BuildCache {
            inputs,
            published_from,
            published_until,
            outputs,
        })
    }
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
    use std::fs::File;

    const CONFIG: &str = "[site]\ntitle = 'T'\nbase_url = 'https://example.com/'\nauthor = 'A'\n";

    /// A site folder whose files are all older than [`SETTLE`].
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

        /// Writes a file dated about an hour ago (so it is settled).
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

        fn inputs(&self) -> Inputs {
            Inputs::scan(self.root(), &self.config()).expect("inputs")
        }

        /// A "build" at `now`: two output files and the cache saved.
        fn build(&self, now: &str) -> BuildCache {
            let site = Site::load(self.root(), self.config()).unwrap();
            self.write("public/rss.xml", "<rss/>");
            self.write("public/feed.json", "{}");
            let outputs = ["public/rss.xml", "public/feed.json"]
                .iter()
                .map(|p| (PathBuf::from(p), Stamp::of(&self.root().join(p)).unwrap()))
                .collect();
            let cache = BuildCache::new(&self.inputs(), &site, time(now), outputs);
            cache.save(self.root()).unwrap();
            cache
        }

        fn fresh(&self, now: &str) -> bool {
            BuildCache::load(self.root())
                .is_some_and(|c| c.is_fresh(self.root(), &self.inputs(), time(now)))
        }
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
        assert!(site.inputs().settled);
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
    fn a_new_or_removed_article_rebuilds() {
        let site = Fixture::new();
        site.build(NOW);
        site.write(
            "content/new.md",
            "---\ntitle: 'N'\npublish_date: '2025-01-02'\n---\n",
        );
        assert!(!site.fresh(NOW));
        std::fs::remove_file(site.root().join("content/new.md")).unwrap();
        assert!(site.fresh(NOW), "back to the state that was built");
        std::fs::remove_file(site.root().join("content/a.md")).unwrap();
        assert!(!site.fresh(NOW));
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
        for bad in [
            String::new(),
            "garbage".to_owned(),
            good.replace(MAGIC, "pressroom-build-cache 0"),
            good.replacen("inputs ", "inputs x", 1),
            good.replacen("from ", "from yesterday", 1),
            good.replacen("output ", "output x", 1),
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
    fn a_young_article_is_not_trusted() {
        let site = Fixture::new();
        site.age("content/a.md", 0);
        assert!(!site.inputs().settled);
    }

    #[test]
    fn a_scan_gives_the_fingerprint_of_the_loaded_stamps() {
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
        std::os::unix::fs::symlink("a.md", site.root().join("content/link.md")).unwrap();
        let found = crate::content::find_articles(site.root(), &site.root().join("content"));
        assert_eq!(found.files.len(), 5, "{found:?}");
        let stamps: Vec<Option<Stamp>> = found.files.iter().map(|p| Stamp::of(p)).collect();
        let loaded = Inputs::from_stamps(site.root(), &found, &stamps, SystemTime::now());
        assert!(loaded.is_some());
        assert_eq!(site.inputs(), loaded.unwrap());

        // A link to a folder is walked like the folder.
        let before = site.inputs();
        std::os::unix::fs::symlink("2025", site.root().join("content/again")).unwrap();
        let found = crate::content::find_articles(site.root(), &site.root().join("content"));
        assert_eq!(found.files.len(), 6, "{found:?}");
        let stamps: Vec<Option<Stamp>> = found.files.iter().map(|p| Stamp::of(p)).collect();
        let loaded = Inputs::from_stamps(site.root(), &found, &stamps, SystemTime::now());
        assert_eq!(Inputs::scan(site.root(), &site.config()), loaded);
        assert_ne!(loaded, Some(before), "the linked articles count");

        // A link back to a folder it is in: no shortcut (the build reports
        // the loop).
        std::os::unix::fs::symlink("..", site.root().join("content/2025/up")).unwrap();
        assert!(
            !crate::content::find_articles(site.root(), &site.root().join("content"))
                .problems
                .is_empty()
        );
        assert_eq!(Inputs::scan(site.root(), &site.config()), None);
    }

    #[test]
    fn a_folder_with_articles_and_subfolders_counts_each_article_once() {
        let site = Fixture::new();
        for (i, folder) in ["x", "y", "z", "x/deep", "y/deep"].iter().enumerate() {
            site.write(
                &format!("content/{folder}/p{i}.md"),
                "---\ntitle: 'P'\npublish_date: '2025-02-01'\n---\n",
            );
        }
        let found = crate::content::find_articles(site.root(), &site.root().join("content"));
        let stamps: Vec<Option<Stamp>> = found.files.iter().map(|p| Stamp::of(p)).collect();
        let loaded = Inputs::from_stamps(site.root(), &found, &stamps, SystemTime::now());
        for _ in 0..20 {
            assert_eq!(Inputs::scan(site.root(), &site.config()), loaded);
        }
    }

    #[test]
    fn the_text_round_trips() {
        let cache = BuildCache {
            inputs: "ab".repeat(32),
            published_from: Some(time("2025-01-01T10:00:00.5+01:00")),
            published_until: None,
            outputs: vec![(
                PathBuf::from("public/tags/a b/rss.xml"),
                Stamp {
                    size: 10,
                    modified: -5,
                },
            )],
        };
        assert_eq!(BuildCache::parse(&cache.to_text().unwrap()), Some(cache));
    }
}
