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
//!   need not be listed again: each article is stat'ed by its path;
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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use chrono::{DateTime, FixedOffset};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::content::{Found, Site};
use crate::stamp::{nanos, Stamp};

/// Where the cache lives, relative to the site root.
pub const CACHE_FILE: &str = ".pressroom/build-cache";

/// The first line of a cache file; a change of format changes it.
const MAGIC: &str = "pressroom-build-cache 3";

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
/// version and the commit it was built from, `config.toml` and every file under `templates/` of the site at
/// `root`. None when one of them cannot be read (the build then runs, and
/// reports the problem).
pub fn settings_digest(root: &Path) -> Option<String> {
    // Another build of the same version may render differently (a fixed
    // sanitizer, say): its first build must not be a no-op.
    settings_digest_of_build(root, crate::BUILT_FROM)
}

/// [`settings_digest`] as the build named `built_from` computes it.
fn settings_digest_of_build(root: &Path, built_from: &str) -> Option<String> {
    let mut hasher = Sha256::new();
    hasher.update(MAGIC.as_bytes());
    hasher.update(b"\0");
    hasher.update(crate::VERSION.as_bytes());
    hasher.update(b"\0");
    hasher.update(built_from.as_bytes());
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

/// The article files a build read and the folders it listed to find them,
/// each with its stamp and its path relative to the site root (or
/// absolute, outside it): what a later build checks, one `stat` each, to
/// know that the same articles would be found with the same contents. A
/// file added to, removed from or renamed in a folder changes that
/// folder's stamp, so the folders need not be listed again.
///
/// Kept as the lines of the cache file, `folder STAMP PATH` and `article
/// STAMP PATH`, and checked from them.
#[derive(Debug, Default)]
pub struct Manifest {
    lines: String,
}

impl Manifest {
    /// The manifest of the article files `found` by a build that started
    /// at `started`, with the `stamps` the loader took before reading each
    /// file; the folders are stamped now. None when it cannot be relied
    /// on: a problem was found, some stamp is missing or younger than
    /// [`SETTLE`] (a folder changed since the build started is young), or
    /// a path does not fit on a line of UTF-8 text.
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
        let folders = found
            .folders
            .iter()
            .map(|f| ("folder", f, Stamp::of_folder(f)));
        let files = found
            .files
            .iter()
            .zip(stamps)
            .map(|(f, s)| ("article", f, *s));
        let mut lines = String::with_capacity((found.folders.len() + found.files.len()) * 80);
        for (kind, path, stamp) in folders.chain(files) {
            let stamp = stamp.filter(|s| s.settled(trusted_before))?;
            let relative = path.strip_prefix(root).unwrap_or(path);
            write_line(&mut lines, kind, &stamp, relative)?;
        }
        Some(Manifest { lines })
    }

    /// True when every folder and every article file of the manifest is
    /// still there with its stamp: then the same article files would be
    /// found, with the same contents. The stats run on every core.
    pub fn unchanged(&self, root: &Path) -> bool {
        self.lines.starts_with("folder ")
            && self
                .lines
                .par_lines()
                .map_init(PathBuf::new, |path, line| {
                    let mut parts = line.splitn(6, ' ');
                    let (Some(kind), Some(stamp)) = (parts.next(), Stamp::parse(&mut parts)) else {
                        return false;
                    };
                    path.clear();
                    path.push(root);
                    path.push(parts.next().unwrap_or_default());
                    let now = match kind {
                        "folder" => Stamp::of_folder(path),
                        "article" => Stamp::of(path),
                        _ => None,
                    };
                    now == Some(stamp)
                })
                .all(|same| same)
    }
}

/// Adds `KIND STAMP PATH` to `out`; None when `path` cannot be a line of
/// UTF-8 text.
fn write_line(out: &mut String, kind: &str, stamp: &Stamp, path: &Path) -> Option<()> {
    let path = line_safe(path.to_str()?)?;
    out.push_str(kind);
    out.push(' ');
    stamp.write(out);
    let _ = writeln!(out, " {path}");
    Some(())
}

/// `text` when it can be one line of the cache file.
fn line_safe(text: &str) -> Option<&str> {
    (!text.is_empty() && !text.contains(['\n', '\r'])).then_some(text)
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
    /// it cannot be read or understood.
    pub fn load(root: &Path) -> Option<BuildCache> {
        BuildCache::parse(&std::fs::read_to_string(root.join(CACHE_FILE)).ok()?)
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
        for (path, stamp) in &self.outputs {
            write_line(&mut out, "output", stamp, path)?;
        }
        out.push_str(&self.articles.lines);
        out.push_str("end\n");
        Some(out)
    }

    /// Reads [`BuildCache::to_text`]'s format; None for anything else.
    /// The article lines are read when they are checked.
    pub fn parse(text: &str) -> Option<BuildCache> {
        // A file cut short, even at the end of a line, lacks its last.
        let text = text.strip_suffix("end\n")?;
        let (head, articles) = text.split_at(text.find("\nfolder ")? + 1);
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
        // `output SIZE MODIFIED CHANGED INODE PATH`, the path the rest of
        // the line, spaces and all.
        let outputs = lines
            .map(|line| {
                let mut parts = line.strip_prefix("output ")?.splitn(5, ' ');
                let stamp = Stamp::parse(&mut parts)?;
                let path = parts.next().filter(|p| !p.is_empty())?;
                Some((PathBuf::from(path), stamp))
            })
            .collect::<Option<_>>()?;
        Some(BuildCache {
            settings,
            published_from,
            published_until,
            outputs,
            articles: Manifest {
                lines: articles.to_owned(),
            },
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
    use crate::config::Config;
    use crate::content::Bodies;
    use std::fs::File;

    /// A binary built from another commit of the same version rebuilds
    /// once: it may render the same articles differently.
    #[test]
    fn another_build_of_the_same_version_does_not_trust_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(crate::config::CONFIG_FILE), "").unwrap();
        let this = settings_digest_of_build(dir.path(), "commit aaaa").unwrap();
        let same = settings_digest_of_build(dir.path(), "commit aaaa").unwrap();
        let other = settings_digest_of_build(dir.path(), "commit bbbb").unwrap();
        assert_eq!(this, same);
        assert_ne!(this, other);
        assert_eq!(
            settings_digest(dir.path()),
            settings_digest_of_build(dir.path(), crate::BUILT_FROM)
        );
    }

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

    /// The paths of a manifest's lines of `kind` (folder or article).
    fn paths(manifest: &Manifest, kind: &str) -> Vec<PathBuf> {
        let lines = manifest.lines.lines().filter_map(|l| l.strip_prefix(kind));
        lines
            .map(|l| PathBuf::from(l.splitn(6, ' ').nth(5).unwrap()))
            .collect()
    }

    /// The names of the article files of a manifest.
    fn names(manifest: &Manifest) -> Vec<String> {
        let paths = paths(manifest, "article");
        let names = paths.iter().map(|path| path.file_name().unwrap());
        names
            .map(|name| name.to_str().unwrap().to_owned())
            .collect()
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
        let first_article = good.find("\narticle ").unwrap() + 1;
        for bad in [
            String::new(),
            "garbage".to_owned(),
            good.replace(MAGIC, "pressroom-build-cache 1"),
            good.replacen("settings ", "settings x", 1),
            good.replacen("from ", "from yesterday", 1),
            good.replacen("output ", "output x", 1),
            good.replacen("folder ", "folder 1 ", 1),
            good.replacen("\narticle ", "\narticles ", 1),
            // An article line lost, or cut short.
            good[..first_article].to_owned(),
            good[..good.len() - 1].to_owned(),
            good.replacen("\narticle ", "\narticle x", 1),
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
        let mut names = names(&cache.articles);
        names.sort_unstable();
        assert_eq!(
            names,
            ["a.md", "b.MD", "later.md", "link.md", "s.md", "z.txt"],
        );
        let folders = paths(&cache.articles, "folder");
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
        // Enough articles for every core to check some.
        for i in 0..1200 {
            site.write(
                &format!("content/{}/post-with-a-longer-name-{i:04}.md", i % 7),
                &format!("---\ntitle: 'P{i}'\npublish_date: '2025-02-01'\n---\n"),
            );
        }
        let cache = site.build(NOW);
        assert!(site.fresh(NOW));
        // A change anywhere is seen: every hundredth article, then a build
        // again.
        for path in paths(&cache.articles, "article").iter().step_by(100) {
            let relative = path.to_str().unwrap();
            site.write(
                relative,
                &format!("---\ntitle: 'Changed {relative}'\npublish_date: '2025-02-01'\n---\n"),
            );
            assert!(!site.fresh(NOW), "{relative}");
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
        assert_eq!(paths(&cache.articles, "folder").len(), 1503);
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
    fn folders_of_one_or_two_articles_beside_a_flat_folder_are_checked() {
        let site = Fixture::new();
        let article =
            |title: &str| format!("---\ntitle: '{title}'\npublish_date: '2025-02-01'\n---\n");
        // A folder of many articles, with folders of one or two articles
        // beside them.
        for i in 0..16 {
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
        site.build(NOW);
        assert!(site.fresh(NOW));

        // The second article of a folder.
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
    fn a_stamp_reads_back() {
        let stamp = |text: &str| Stamp::parse(&mut text.split(' '));
        assert_eq!(
            stamp("10 -5 1795952324700457243 77"),
            Some(Stamp {
                size: 10,
                modified: -5,
                changed: 1795952324700457243,
                inode: 77
            })
        );
        for bad in [
            "",
            "10 -5 1",
            "-10 5 1 77",
            "10 5 1 7-7",
            "10 5 1 +7",
            "10 5 1 123456789012345678901234567890123456789",
        ] {
            assert_eq!(stamp(bad), None, "{bad:?}");
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
                lines: "folder 10 -5 7 42 content\nfolder 1 2 3 4 content/a b\n\
                        article 10 -5 7 42 content/a b.md\narticle 1 2 3 4 /elsewhere/c.md\n"
                    .to_owned(),
            },
        };
        let text = cache.to_text().unwrap();
        let read = BuildCache::parse(&text).unwrap();
        assert_eq!(read.to_text().unwrap(), text);
        assert_eq!(read.settings, cache.settings);
        assert_eq!(read.published_from, cache.published_from);
        assert_eq!(read.published_until, cache.published_until);
        assert_eq!(read.outputs, cache.outputs);
        assert_eq!(read.articles.lines, cache.articles.lines);
    }
}
