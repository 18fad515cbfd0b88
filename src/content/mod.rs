//! The content model: articles loaded from `content/`, checked, and sorted
//! into a [`Site`]. Loading reads every file (in parallel) and reports every
//! problem in every file at once; rendering Markdown is left to the outputs
//! that need it, so only the articles that appear somewhere pay for it.
//! A build goes further ([`Bodies::Deferred`]): it keeps no body, and
//! reads one again when it renders its article.

pub mod date;
pub mod front_matter;
pub mod html;
pub mod slug;
pub mod summary;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, FixedOffset};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rayon::prelude::*;
use serde_yaml::Value;
use url::Url;

use crate::config::Config;
use crate::error_kind::{ErrorKind, HasKind};
use crate::stamp::Stamp;
pub use slug::Slug;

/// File extensions that hold articles.
pub const EXTENSIONS: [&str; 3] = ["md", "markdown", "txt"];

/// The largest article file read. A book-length article is about 1 MB of
/// Markdown; anything past this is a data dump or a mistake, would make
/// feeds no reader fetches and emails no server accepts, and would cost
/// many times its size in memory to render.
pub const MAX_ARTICLE_BYTES: u64 = 10 * 1024 * 1024;

/// Words per minute used when `read_time` is not given.
const WORDS_PER_MINUTE: usize = 230;

/// One article, valid by construction.
#[derive(Debug, Clone)]
pub struct Article {
    /// Path relative to the site root, with `/` separators, for messages.
    pub source: String,
    /// The front matter's title, on one line.
    pub title: String,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    /// The article's author, or the site's.
    pub author: String,
    /// As written, or computed from the word count ("6 mins").
    pub read_time: String,
    pub publish_date: DateTime<FixedOffset>,
    pub created_date: Option<DateTime<FixedOffset>>,
    pub updated_date: Option<DateTime<FixedOffset>>,
    /// Absolute URL of the hero image.
    pub hero_image: Option<String>,
    /// The call to action, as inline Markdown.
    pub cta: Option<String>,
    pub slug: Slug,
    /// Stable id: the front matter's `id`, or a `tag:` URI.
    pub id: String,
    pub tags: Vec<String>,
    pub draft: bool,
    /// Absolute URL of the article.
    pub url: Url,
    /// The Markdown body, or where it is; [`Article::markdown`] gives it
    /// either way.
    pub body: Body,
    /// Front-matter keys the format does not define.
    pub extra: BTreeMap<String, Value>,
    /// Lines that name the slug and the id (or what they derive from), for
    /// messages about duplicates.
    pub slug_line: usize,
    pub id_line: usize,
}

impl Article {
    /// Public at `now`: not a draft, and its publish date has come.
    pub fn is_published(&self, now: DateTime<FixedOffset>) -> bool {
        !self.draft && self.publish_date <= now
    }

    /// The newest of the publish and update dates.
    pub fn updated(&self) -> DateTime<FixedOffset> {
        self.updated_date
            .map_or(self.publish_date, |u| u.max(self.publish_date))
    }

    /// The summary: `description`, else `subtitle`.
    pub fn summary(&self) -> Option<&str> {
        self.description.as_deref().or(self.subtitle.as_deref())
    }

    /// The body as publishable HTML (absolute URLs, no active content).
    pub fn body_html(&self) -> Result<String, Problem> {
        Ok(html::render_markdown(&self.markdown()?, &self.url))
    }

    /// The Markdown body: the one in memory, or for an article loaded
    /// without it, read again from its file. A file that changed since its
    /// front matter was read is a problem (the build read a different
    /// version of it), and so is a body that is not UTF-8 — with the same
    /// message a full load gives.
    pub fn markdown(&self) -> Result<Cow<'_, str>, Problem> {
        let deferred = match &self.body {
            Body::Loaded(body) => return Ok(Cow::Borrowed(body)),
            Body::Deferred(deferred) => deferred,
        };
        let problem = |line: Option<usize>, message: String| Problem {
            path: self.source.clone(),
            line,
            key: None,
            message,
        };
        let changed = || {
            problem(
                None,
                "the file changed while the build was reading it; run the build again".into(),
            )
        };
        let mut bytes = Vec::new();
        let stamp = File::open(&deferred.path)
            .and_then(|file| {
                let stamp = Stamp::from_metadata(&file.metadata()?);
                file.take(MAX_ARTICLE_BYTES + 1).read_to_end(&mut bytes)?;
                Ok(stamp)
            })
            .map_err(|e| problem(None, format!("cannot read: {e}")))?;
        if stamp != Some(deferred.stamp) || bytes.len() as u64 != deferred.stamp.size {
            return Err(changed());
        }
        let text = decode(&bytes).map_err(|(line, message)| problem(Some(line), message))?;
        let body = text.get(deferred.offset..).ok_or_else(changed)?;
        Ok(Cow::Owned(xml_clean(body)))
    }

    /// The call to action as inline HTML.
    pub fn cta_html(&self) -> Option<String> {
        self.cta
            .as_deref()
            .map(|cta| html::render_inline(cta, &self.url))
    }

    /// Tag names paired with the slug of their folder.
    pub fn tag_slugs(&self) -> impl Iterator<Item = (&str, Slug)> {
        self.tags
            .iter()
            .filter_map(|t| Slug::from_text(t).map(|s| (t.as_str(), s)))
    }
}

/// One problem in the site's input, located as `path:line: key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found while loading, in file order.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct LoadError {
    pub problems: Vec<Problem>,
}

impl HasKind for LoadError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

/// The loaded site: its configuration and every article, newest first.
#[derive(Debug, Clone)]
pub struct Site {
    pub config: Config,
    pub articles: Vec<Article>,
}

impl Site {
    /// Loads every article under the configured content folder of `root`,
    /// bodies included.
    pub fn load(root: &Path, config: Config) -> Result<Site, LoadError> {
        let found = find_articles(root, &root.join(&config.site.content_dir));
        Site::load_found(root, config, &found, Bodies::Loaded).map(|(site, _)| site)
    }

    /// Loads the article files `found` (see [`find_articles`]). Returns the
    /// site and, in the order of `found.files`, each file's stamp as it was
    /// before the file was read (None when it has no modification time).
    pub fn load_found(
        root: &Path,
        config: Config,
        found: &Found,
        bodies: Bodies,
    ) -> Result<(Site, Vec<Option<Stamp>>), LoadError> {
        let content_dir = root.join(&config.site.content_dir);
        let mut problems = found.problems.clone();
        let results: Vec<(Option<Stamp>, Loaded)> = found
            .files
            .par_iter()
            // One read buffer per worker, reused from file to file: the
            // article keeps only what it needs (its body is a copy).
            .map_init(Vec::new, |buffer, path| {
                let source = display_path(root, path);
                let relative = path.strip_prefix(&content_dir).unwrap_or(path);
                load_article(&config, path, &source, relative, buffer, bodies)
            })
            .collect();
        let mut articles = Vec::with_capacity(results.len());
        let mut stamps = Vec::with_capacity(results.len());
        for (stamp, result) in results {
            stamps.push(stamp);
            match result {
                Ok(article) => articles.push(article),
                Err(mut p) => problems.append(&mut p),
            }
        }
        Site::from_articles(config, articles, problems).map(|site| (site, stamps))
    }

    /// The site made of `articles` (loaded one by one, in file order) when
    /// `problems` (those met loading them, in file order) is empty and no
    /// two of them share a slug or an id: what [`Site::load`] does once
    /// every file is read, for a caller that keeps articles between loads.
    pub fn from_articles(
        config: Config,
        articles: Vec<Article>,
        mut problems: Vec<Problem>,
    ) -> Result<Site, LoadError> {
        problems.extend(duplicates(&articles));
        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        // Newest first. Sorted as indices, then moved once: an article is
        // big, and a sort moves each element many times.
        let mut order: Vec<usize> = (0..articles.len()).collect();
        order.par_sort_by(|&a, &b| {
            let (a, b) = (&articles[a], &articles[b]);
            b.publish_date
                .cmp(&a.publish_date)
                .then_with(|| a.source.cmp(&b.source))
        });
        let mut slots: Vec<Option<Article>> = articles.into_iter().map(Some).collect();
        let articles = order.iter().filter_map(|&i| slots[i].take()).collect();
        Ok(Site { config, articles })
    }

    /// Articles public at `now`, newest first.
    pub fn published(&self, now: DateTime<FixedOffset>) -> impl Iterator<Item = &Article> {
        self.articles.iter().filter(move |a| a.is_published(now))
    }
}

/// How much of each article file a load reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bodies {
    /// Every file whole: each article holds its body.
    Loaded,
    /// Every file whole, and checked as a full load checks it (so the
    /// problems are the same), but the articles keep where their body is
    /// instead of a copy ([`Article::markdown`] reads it again). For a
    /// build, which renders only the articles its feeds show: memory for
    /// the front matter of every article, not for every body.
    Deferred,
}

/// An article's Markdown body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Read with the front matter ([`Bodies::Loaded`]).
    Loaded(String),
    /// Left in the file ([`Bodies::Deferred`]), read again when needed.
    Deferred(DeferredBody),
}

/// Where the body of an article loaded with [`Bodies::Deferred`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredBody {
    pub path: PathBuf,
    /// The file's size and time when its front matter was read: the body
    /// must come from the same version of the file.
    pub stamp: Stamp,
    /// Byte offset of the body in the file.
    pub offset: usize,
}

/// An article, or the problems of its file.
type Loaded = Result<Article, Vec<Problem>>;

/// One article file of `root`'s content folder, read and parsed as
/// [`Site::load`] reads each file (body included): the article, or every
/// problem of that file.
pub fn load_file(root: &Path, config: &Config, path: &Path) -> Result<Article, Vec<Problem>> {
    let content_dir = root.join(&config.site.content_dir);
    let source = display_path(root, path);
    let relative = path.strip_prefix(&content_dir).unwrap_or(path);
    let mut buffer = Vec::new();
    load_article(config, path, &source, relative, &mut buffer, Bodies::Loaded).1
}

/// One file to an article (or its problems), and the file's stamp taken
/// before it was read.
fn load_article(
    config: &Config,
    path: &Path,
    source: &str,
    relative: &Path,
    buffer: &mut Vec<u8>,
    bodies: Bodies,
) -> (Option<Stamp>, Loaded) {
    let whole_problem = |message: String| {
        vec![Problem {
            path: source.to_owned(),
            line: None,
            key: None,
            message,
        }]
    };
    let stamp = match read_article(path, buffer) {
        Ok(Some(stamp)) => stamp,
        Ok(None) => {
            return (
                None,
                Err(whole_problem(format!(
                    "the file is larger than {} MB; an article must be smaller (move data files out of the content folder)",
                    MAX_ARTICLE_BYTES / (1024 * 1024)
                ))),
            )
        }
        Err(e) => return (None, Err(whole_problem(format!("cannot read: {e}")))),
    };
    // Without a stamp a body read later could not be checked: keep it.
    let result = match stamp {
        Some(stamp) if bodies == Bodies::Deferred => {
            parse_deferred(config, source, relative, buffer).map(|(head, offset, read_time)| {
                head.into_article(config, source, relative, String::new(), read_time)
                    .deferred(path, stamp, offset)
            })
        }
        _ => parse_article(config, source, relative, buffer),
    };
    (stamp, result)
}

/// Replaces the contents of `buffer` with the file at `path`, and returns
/// the file's stamp as it was before the read (None inside when it has no
/// modification time); None when it is over [`MAX_ARTICLE_BYTES`] (and
/// nothing is read).
fn read_article(path: &Path, buffer: &mut Vec<u8>) -> std::io::Result<Option<Option<Stamp>>> {
    buffer.clear();
    let mut file = File::open(path)?;
    let metadata = file.metadata()?;
    if metadata.len() > MAX_ARTICLE_BYTES {
        return Ok(None);
    }
    let stamp = Stamp::from_metadata(&metadata);
    // The bytes its size and time stand for, without asking for more (a
    // file that grows meanwhile is changed: its next build sees it).
    let len = metadata.len() as usize;
    buffer.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    buffer.truncate(filled);
    Ok(Some(stamp))
}

/// The article files of a content folder, sorted, and the problems met
/// walking it.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub files: Vec<PathBuf>,
    pub problems: Vec<Problem>,
    /// Every folder listed, the content folder first: a file added to any
    /// of them changes that folder (see [`crate::cache::Manifest`]).
    pub folders: Vec<PathBuf>,
}

/// Every article file under `dir`, sorted, and the problems met walking it.
pub fn find_articles(root: &Path, dir: &Path) -> Found {
    if !dir.is_dir() {
        return Found {
            files: Vec::new(),
            folders: Vec::new(),
            problems: vec![Problem {
                path: display_path(root, dir),
                line: None,
                key: None,
                message: "the content folder does not exist; create it or set site.content_dir in config.toml".into(),
            }],
        };
    }
    let ancestors: Vec<PathBuf> = std::fs::canonicalize(dir).into_iter().collect();
    let mut found = Found::default();
    walk(root, dir, &ancestors, &mut found);
    found
}

/// Adds the article files under `dir` to `found`, depth first in file-name
/// order, skipping hidden names; links are followed, except one back to a
/// folder in `ancestors` (canonical paths: `dir` and the folders above it).
/// Types come from the folder listing, so only links cost a `stat`, and
/// subfolders are walked in parallel.
fn walk(root: &Path, dir: &Path, ancestors: &[PathBuf], found: &mut Found) {
    let problem = |path: &Path, message: String| Problem {
        path: display_path(root, path),
        line: None,
        key: None,
        message,
    };
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) => {
            found
                .problems
                .push(problem(dir, format!("cannot read: {e}")));
            return;
        }
    };
    found.folders.push(dir.to_path_buf());
    let mut entries = Vec::new();
    for entry in listing {
        match entry {
            Ok(entry) => {
                let name = entry.file_name();
                if !name.as_encoded_bytes().starts_with(b".") {
                    entries.push((name, entry));
                }
            }
            Err(e) => found
                .problems
                .push(problem(dir, format!("cannot read: {e}"))),
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    /// What one entry adds, in order; folders are walked afterwards.
    enum Slot {
        File(PathBuf),
        Problem(Problem),
        Folder(PathBuf, Vec<PathBuf>),
    }
    let mut slots = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        let path = dir.join(&name);
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                slots.push(Slot::Problem(problem(&path, format!("cannot read: {e}"))));
                continue;
            }
        };
        let (is_dir, is_file) = if file_type.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(m) => (m.is_dir(), m.is_file()),
                Err(e) => {
                    slots.push(Slot::Problem(problem(&path, format!("cannot read: {e}"))));
                    continue;
                }
            }
        } else {
            (file_type.is_dir(), file_type.is_file())
        };
        if is_dir {
            let mut chain = ancestors.to_vec();
            if file_type.is_symlink() {
                match std::fs::canonicalize(&path) {
                    Ok(target) if ancestors.contains(&target) => {
                        slots.push(Slot::Problem(problem(
                            &path,
                            "symbolic link loop; remove the link".into(),
                        )));
                        continue;
                    }
                    Ok(target) => chain.push(target),
                    Err(e) => {
                        slots.push(Slot::Problem(problem(&path, format!("cannot read: {e}"))));
                        continue;
                    }
                }
            } else if let Some(parent) = ancestors.last() {
                chain.push(parent.join(&name));
            }
            slots.push(Slot::Folder(path, chain));
        } else if is_file && is_article_name(&path) {
            slots.push(Slot::File(path));
        }
    }
    let folders: Vec<Found> = slots
        .par_iter()
        .filter_map(|slot| match slot {
            Slot::Folder(path, chain) => {
                let mut inside = Found::default();
                walk(root, path, chain, &mut inside);
                Some(inside)
            }
            _ => None,
        })
        .collect();
    let mut folders = folders.into_iter();
    for slot in slots {
        match slot {
            Slot::File(path) => found.files.push(path),
            Slot::Problem(p) => found.problems.push(p),
            Slot::Folder(..) => {
                if let Some(mut inside) = folders.next() {
                    found.files.append(&mut inside.files);
                    found.problems.append(&mut inside.problems);
                    found.folders.append(&mut inside.folders);
                }
            }
        }
    }
}

/// An article's extension, in any case.
fn is_article_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// `path` relative to the site root with `/` separators.
pub fn display_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut out = String::with_capacity(relative.as_os_str().len());
    for part in relative.components() {
        // After the root of a path outside the site (`/`), no separator.
        if !out.is_empty() && !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(&part.as_os_str().to_string_lossy());
    }
    out
}

/// Turns one file's bytes into an article. `relative` is the path inside
/// the content folder (it names the default id).
pub fn parse_article(
    config: &Config,
    source: &str,
    relative: &Path,
    bytes: &[u8],
) -> Result<Article, Vec<Problem>> {
    let text = decode(bytes).map_err(|(line, message)| vec![at(source, line, None, message)])?;
    let split =
        front_matter::split(text).map_err(|e| vec![at(source, e.line, e.key, e.message)])?;
    let head = Head::parse(config, source, relative, &split)?;
    let body = xml_clean(split.body);
    let read_time = head
        .front_matter
        .read_time
        .clone()
        .unwrap_or_else(|| read_time(&body));
    Ok(head.into_article(config, source, relative, body, read_time))
}

/// A file's bytes to everything an article holds but its body: the
/// head, the offset in the file where the body starts, and the read time.
/// Checks and reports exactly what [`parse_article`] does.
fn parse_deferred(
    config: &Config,
    source: &str,
    relative: &Path,
    bytes: &[u8],
) -> Result<(Head, usize, String), Vec<Problem>> {
    let text = decode(bytes).map_err(|(line, message)| vec![at(source, line, None, message)])?;
    let split =
        front_matter::split(text).map_err(|e| vec![at(source, e.line, e.key, e.message)])?;
    let offset = split.body.as_ptr() as usize - text.as_ptr() as usize;
    let head = Head::parse(config, source, relative, &split)?;
    let read_time = match &head.front_matter.read_time {
        Some(read_time) => read_time.clone(),
        // Counted in the body as it would be kept.
        None if is_xml_clean(split.body) => read_time(split.body),
        None => read_time(&xml_clean(split.body)),
    };
    Ok((head, offset, read_time))
}

fn at(source: &str, line: usize, key: Option<String>, message: String) -> Problem {
    Problem {
        path: source.to_owned(),
        line: Some(line),
        key,
        message,
    }
}

/// Everything an article is made of but its body and read time: the front
/// matter, checked, and what derives from it.
struct Head {
    front_matter: front_matter::FrontMatter,
    slug: Slug,
    url: Url,
    hero_image: Option<String>,
    slug_line: usize,
    id_line: usize,
}

impl Head {
    fn parse(
        config: &Config,
        source: &str,
        relative: &Path,
        split: &front_matter::Split,
    ) -> Result<Head, Vec<Problem>> {
        let problem =
            |line: usize, key: Option<String>, message: String| at(source, line, key, message);
        let fm = front_matter::parse(split.yaml, split.yaml_line, config.site.timezone).map_err(
            |errors| {
                errors
                    .into_iter()
                    .map(|e| problem(e.line, e.key, e.message))
                    .collect::<Vec<_>>()
            },
        )?;

        let slug = match fm.slug.clone().or_else(|| Slug::from_text(&fm.title)) {
            Some(slug) => slug,
            None => {
                let stem = relative
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match Slug::from_text(&stem) {
                    Some(slug) => slug,
                    None => {
                        return Err(vec![problem(
                            split.yaml_line,
                            Some("slug".into()),
                            "the title has no letters or digits to make a slug from; add `slug:`"
                                .into(),
                        )])
                    }
                }
            }
        };
        let url = permalink(config, &slug, fm.publish_date);
        let hero_image = match fm.hero_image.as_deref() {
            Some(reference) => match html::absolute(reference, &url) {
                Some(abs) => Some(abs),
                None => {
                    return Err(vec![problem(
                        split.yaml_line,
                        Some("heroImage".into()),
                        format!("`{reference}` is not an image URL"),
                    )]);
                }
            },
            None => None,
        };
        let line = |key: &str| front_matter::key_line(split.yaml, split.yaml_line, key);
        let slug_line = if fm.slug.is_some() {
            line("slug")
        } else {
            line("title")
        };
        let id_line = if fm.id.is_some() {
            line("id")
        } else {
            line("publish_date")
        };
        Ok(Head {
            front_matter: fm,
            slug,
            url,
            hero_image,
            slug_line,
            id_line,
        })
    }

    fn into_article(
        self,
        config: &Config,
        source: &str,
        relative: &Path,
        body: String,
        read_time: String,
    ) -> Article {
        let fm = self.front_matter;
        Article {
            source: source.to_owned(),
            id: fm
                .id
                .unwrap_or_else(|| tag_uri(config, relative, fm.publish_date)),
            title: fm.title,
            subtitle: fm.subtitle,
            description: fm.description,
            author: fm
                .author
                .unwrap_or_else(|| crate::text::single_line(&config.site.author)),
            read_time,
            publish_date: fm.publish_date,
            created_date: fm.created_date,
            updated_date: fm.updated_date,
            hero_image: self.hero_image,
            cta: fm.cta,
            slug: self.slug,
            tags: fm.tags,
            draft: fm.draft,
            url: self.url,
            body: Body::Loaded(body),
            extra: fm.extra,
            slug_line: self.slug_line,
            id_line: self.id_line,
        }
    }
}

impl Article {
    /// This article with its body left in its file, at `offset`.
    fn deferred(self, path: &Path, stamp: Stamp, offset: usize) -> Article {
        Article {
            body: Body::Deferred(DeferredBody {
                path: path.to_path_buf(),
                stamp,
                offset,
            }),
            ..self
        }
    }
}

/// Bytes to text, refusing binary files and naming the line of the first
/// byte that is not UTF-8. A file that opens with a front-matter fence is an
/// article even if it holds a stray NUL (removed later, like every
/// character XML forbids); one that does not and has a NUL is binary.
fn decode(bytes: &[u8]) -> Result<&str, (usize, String)> {
    let unmarked = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let looks_like_article = unmarked.starts_with(b"---");
    let nul = if looks_like_article {
        None
    } else {
        bytes.iter().take(8192).position(|&b| b == 0)
    };
    if let Some(at) = nul {
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err((
            line,
            "this is a binary file, not a text article; move it out of the content folder".into(),
        ));
    }
    if let Ok(text) = simdutf8::basic::from_utf8(bytes) {
        return Ok(text);
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        (
            line,
            format!("the file is not valid UTF-8 (byte {at}); save it as UTF-8"),
        )
    })
}

/// "N min" / "N mins" at 230 words a minute, at least one minute.
pub fn read_time(body: &str) -> String {
    minutes(word_count(body.as_bytes()))
}

/// "N min" / "N mins" for `words` at 230 words a minute.
fn minutes(words: usize) -> String {
    let minutes = words.div_ceil(WORDS_PER_MINUTE).max(1);
    if minutes == 1 {
        "1 min".into()
    } else {
        format!("{minutes} mins")
    }
}

/// The number of words as `str::split_whitespace` counts them, read a byte
/// at a time without branching on most bytes: only the lead bytes of the
/// few non-ASCII whitespace characters (U+0085, U+00A0, U+1680,
/// U+2000–U+3000) are decoded.
fn word_count(bytes: &[u8]) -> usize {
    let space = |b: u8| (b == b' ') | (b.wrapping_sub(b'\t') < 5);
    // Only these bytes start a whitespace character outside ASCII.
    let wide_lead = |b: u8| (b == 0xC2) | (b.wrapping_sub(0xE1) < 3);
    // Text without them (most text) is counted a byte at a time: a word
    // starts at every non-space byte after a space, and at the first byte.
    // Counted in blocks with a byte-wide sum, which the compiler vectorizes.
    let pairs = bytes.len().saturating_sub(1);
    let (before, at) = (&bytes[..pairs], &bytes[bytes.len() - pairs..]);
    let (mut starts, mut wide) = (0usize, 0u8);
    for (before, at) in before.chunks(128).zip(at.chunks(128)) {
        let mut block = 0u8;
        for (&p, &q) in before.iter().zip(at) {
            block += u8::from(space(p) & !space(q));
            wide |= u8::from(wide_lead(q));
        }
        starts += usize::from(block);
    }
    match bytes.first() {
        None => return 0,
        Some(&first) if wide == 0 && !wide_lead(first) => {
            return starts + usize::from(!space(first));
        }
        Some(_) => {}
    }
    // Bytes that are not UTF-8 count as what they are replaced with.
    let text = String::from_utf8_lossy(bytes);
    let bytes = text.as_bytes();
    let (mut count, mut after_space, mut i) = (0, true, 0);
    while i < bytes.len() {
        let b = bytes[i];
        let mut space = matches!(b, b'\t'..=b'\r' | b' ');
        let mut len = 1;
        if matches!(b, 0xC2 | 0xE1 | 0xE2 | 0xE3) {
            if let Some(c) = text[i..].chars().next().filter(|c| c.is_whitespace()) {
                space = true;
                len = c.len_utf8();
            }
        }
        count += usize::from(after_space && !space);
        after_space = space;
        i += len;
    }
    count
}

/// True when `text` holds no character XML 1.0 forbids (see
/// [`crate::text::is_xml_char`]). Checked bytewise in one pass the compiler
/// vectorizes; only text with a 0xEF byte (U+F000–U+FFFF, where U+FFFE and
/// U+FFFF live) needs a closer look.
pub(crate) fn is_xml_clean(text: &str) -> bool {
    let bytes = text.as_bytes();
    let suspect = bytes.iter().fold(false, |acc, &b| {
        acc | (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r') | (b == 0xEF)
    });
    !suspect || text.chars().all(crate::text::is_xml_char)
}

/// [`crate::text::xml_safe`] with the fast check first: an owned copy of
/// `text` without the characters XML 1.0 forbids.
pub(crate) fn xml_clean(text: &str) -> String {
    if is_xml_clean(text) {
        text.to_owned()
    } else {
        crate::text::xml_safe(text)
    }
}

/// The article's URL from the site's permalink pattern.
pub fn permalink(config: &Config, slug: &Slug, date: DateTime<FixedOffset>) -> Url {
    let local = date.with_timezone(&config.site.timezone);
    let path = config
        .site
        .permalink
        .replace("{slug}", slug.as_str())
        .replace("{year}", &format!("{:04}", local.year()))
        .replace("{month}", &format!("{:02}", local.month()))
        .replace("{day}", &format!("{:02}", local.day()));
    config
        .site
        .base_url
        .join(path.trim_start_matches('/'))
        .unwrap_or_else(|_| config.site.base_url.clone())
}

/// The default id: `tag:DOMAIN,YYYY-MM-DD:PATH` (RFC 4151) from the id
/// domain, the publish date and the file's path inside the content folder
/// without its extension. Titles and URLs may change; this does not.
pub fn tag_uri(config: &Config, relative: &Path, date: DateTime<FixedOffset>) -> String {
    let local = date.with_timezone(&config.site.timezone);
    let without_ext = relative.with_extension("");
    let specific: Vec<String> = without_ext
        .components()
        .map(|c| percent_encode_segment(&c.as_os_str().to_string_lossy()))
        .collect();
    format!(
        "tag:{},{}:{}",
        config.id_domain(),
        local.format("%Y-%m-%d"),
        specific.join("/")
    )
}

/// Everything but RFC 3986 unreserved characters.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything outside RFC 3986 `pchar` minus `:` and `@`
/// (kept simple and canonical: upper-case hex).
fn percent_encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, NOT_UNRESERVED).to_string()
}

/// Two articles with one slug or one id would overwrite each other. Each
/// later file (by path) is reported against the first one with its slug
/// or id, in file order. Found by sorting, not hashing: cheaper for the
/// many short keys of a big site.
fn duplicates(articles: &[Article]) -> Vec<Problem> {
    // (source, 0 for the slug or 1 for the id, problem)
    let mut found: Vec<(&str, u8, Problem)> = Vec::new();
    type Key = fn(&Article) -> &str;
    let keys: [(u8, Key); 2] = [(0, |a| a.slug.as_str()), (1, |a| &a.id)];
    for (kind, key) in keys {
        let mut sorted: Vec<(&str, &Article)> = articles.iter().map(|a| (key(a), a)).collect();
        sorted.par_sort_unstable_by(|x, y| x.0.cmp(y.0).then_with(|| x.1.source.cmp(&y.1.source)));
        for same in sorted.chunk_by(|x, y| x.0 == y.0) {
            let first = same[0].1;
            for &(value, article) in &same[1..] {
                let (line, name, message) = if kind == 0 {
                    (
                        article.slug_line,
                        "slug",
                        format!(
                            "`{value}` is also the slug of {}; give one of them another `slug:`",
                            first.source
                        ),
                    )
                } else {
                    (
                        article.id_line,
                        "id",
                        format!(
                            "`{value}` is also the id of {}; ids must be unique",
                            first.source
                        ),
                    )
                };
                found.push((
                    &article.source,
                    kind,
                    Problem {
                        path: article.source.clone(),
                        line: Some(line),
                        key: Some(name.into()),
                        message,
                    },
                ));
            }
        }
    }
    found.sort_by(|x, y| x.0.cmp(y.0).then(x.1.cmp(&y.1)));
    found.into_iter().map(|(_, _, problem)| problem).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            "config.toml",
            "[site]\ntitle='T'\nbase_url='https://Example.com/blog/'\nauthor='Site Author'\ntimezone='Europe/Berlin'\npermalink='/{year}/{month}/{slug}/'\n",
        )
        .unwrap()
    }

    fn article(path: &str, text: &str) -> Result<Article, Vec<Problem>> {
        parse_article(
            &config(),
            &format!("content/{path}"),
            Path::new(path),
            text.as_bytes(),
        )
    }

    #[test]
    fn defaults_are_derived() {
        let a = article(
            "2025/edge.md",
            "---\ntitle: 'Rust at the Edge'\npublish_date: '2025-03-09 23:30'\n---\nfew words here",
        )
        .unwrap();
        assert_eq!(a.slug.as_str(), "rust-at-the-edge");
        assert_eq!(
            a.url.as_str(),
            "https://example.com/blog/2025/03/rust-at-the-edge/"
        );
        assert_eq!(a.id, "tag:example.com,2025-03-09:2025/edge");
        assert_eq!(a.author, "Site Author");
        assert_eq!(a.read_time, "1 min");
    }

    #[test]
    fn id_does_not_follow_the_title() {
        let a = article(
            "edge.md",
            "---\ntitle: 'Old'\npublish_date: '2025-03-09'\n---\n",
        )
        .unwrap();
        let b = article(
            "edge.md",
            "---\ntitle: 'New title'\npublish_date: '2025-03-09'\n---\n",
        )
        .unwrap();
        assert_ne!(a.url, b.url);
        assert_eq!(a.id, b.id);
    }

    #[test]
    fn odd_file_names_give_canonical_ids() {
        let a = article(
            "notes/Ünï code.md",
            "---\ntitle: 'x'\npublish_date: '2025-03-09'\n---\n",
        )
        .unwrap();
        assert_eq!(
            a.id,
            "tag:example.com,2025-03-09:notes/%C3%9Cn%C3%AF%20code"
        );
    }

    #[test]
    fn read_time_counts_words() {
        assert_eq!(read_time(""), "1 min");
        assert_eq!(read_time(&"word ".repeat(1000)), "5 mins");
    }

    #[test]
    fn relative_hero_image_is_made_absolute() {
        let a = article(
            "a.md",
            "---\ntitle: 'A'\npublish_date: '2025-03-09'\nheroImage: 'hero.jpg'\n---\n",
        )
        .unwrap();
        assert_eq!(
            a.hero_image.as_deref(),
            Some("https://example.com/blog/2025/03/a/hero.jpg")
        );
    }

    #[test]
    fn binary_and_non_utf8_files_are_refused_with_a_line() {
        let err = parse_article(
            &config(),
            "content/x.md",
            Path::new("x.md"),
            b"---\ntitle: x\n\xff\n",
        )
        .unwrap_err();
        assert_eq!(
            err[0].to_string(),
            "content/x.md:3: the file is not valid UTF-8 (byte 13); save it as UTF-8"
        );
        let err = parse_article(
            &config(),
            "content/x.md",
            Path::new("x.md"),
            b"\x89PNG\r\n\x00\x00",
        )
        .unwrap_err();
        assert!(err[0].message.contains("binary file"), "{}", err[0]);
    }

    #[test]
    fn duplicate_slugs_and_ids_are_problems() {
        let a = article(
            "a.md",
            "---\ntitle: 'Same'\npublish_date: '2025-03-09'\nid: 'urn:x:1'\n---\n",
        )
        .unwrap();
        let b = article(
            "b.md",
            "---\ntitle: 'Same'\npublish_date: '2025-03-10'\nid: 'urn:x:1'\n---\n",
        )
        .unwrap();
        let problems: Vec<String> = duplicates(&[b, a])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "content/b.md:2: slug: `same` is also the slug of content/a.md; give one of them another `slug:`",
                "content/b.md:4: id: `urn:x:1` is also the id of content/a.md; ids must be unique",
            ]
        );
    }

    #[test]
    fn words_are_counted_like_split_whitespace() {
        for text in [
            "",
            "   ",
            "one",
            " two  words ",
            "tab\tand\nnew\r\nlines\u{b}vt\u{c}ff",
            "no\u{a0}break\u{2003}em\u{3000}ideographic\u{85}next\u{2028}line",
            "café Zürich 🦀 ünï\u{1c}code",
        ] {
            assert_eq!(
                word_count(text.as_bytes()),
                text.split_whitespace().count(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_xml_check_agrees_with_the_char_check() {
        for text in [
            "plain",
            "tab\t\r\n",
            "nul\u{0}",
            "unit\u{1f}",
            "del\u{7f} c1\u{85}",
            "\u{fffe}",
            "\u{ffff}",
            "\u{fffd}\u{ff01}\u{f000}",
            "🦀",
        ] {
            assert_eq!(
                is_xml_clean(text),
                text.chars().all(crate::text::is_xml_char),
                "{text:?}"
            );
            assert_eq!(xml_clean(text), crate::text::xml_safe(text), "{text:?}");
        }
    }

    /// A site folder with `files` under content/, loaded both ways.
    fn load_both(
        files: &[(&str, &[u8])],
    ) -> (
        tempfile::TempDir,
        Result<Site, LoadError>,
        Result<Site, LoadError>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (path, bytes) in files {
            let path = dir.path().join("content").join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        let load = |bodies| {
            let found = find_articles(dir.path(), &dir.path().join("content"));
            Site::load_found(dir.path(), config(), &found, bodies).map(|(site, _)| site)
        };
        let (loaded, deferred) = (load(Bodies::Loaded), load(Bodies::Deferred));
        (dir, loaded, deferred)
    }

    /// The article as a full load gives it: body read, no file reference.
    fn as_loaded(article: &Article) -> String {
        let mut article = article.clone();
        article.body = Body::Loaded(article.markdown().unwrap().into_owned());
        format!("{article:?}")
    }

    #[test]
    fn a_deferred_load_gives_the_articles_a_full_load_gives() {
        let long = "x".repeat(9000);
        let files: Vec<(String, Vec<u8>)> = vec![
            ("plain.md".into(), b"---\ntitle: 'Plain'\npublish_date: '2025-01-01'\nread_time: '3 mins'\n---\n\nSome *body*.\n".to_vec()),
            ("counted.md".into(), format!("---\ntitle: 'Counted'\npublish_date: '2025-01-02'\n---\n{}", "word ".repeat(999)).into_bytes()),
            ("bom.md".into(), "\u{feff}---\r\ntitle: 'Bom'\r\npublish_date: '2025-01-03'\r\n---\r\nHello\r\n".as_bytes().to_vec()),
            ("long.md".into(), format!("---\ntitle: 'Long'\ndescription: '{long}'\npublish_date: '2025-01-04'\n---\nAfter a long head.\n").into_bytes()),
            ("dots.md".into(), b"---\ntitle: 'Dots'\npublish_date: '2025-01-05'\n...\nBody after dots\n".to_vec()),
            ("no-newline.md".into(), b"---\ntitle: 'Edge'\npublish_date: '2025-01-06'\n---".to_vec()),
            ("controls.md".into(), b"---\ntitle: 'Controls'\npublish_date: '2025-01-07'\n---\none\x0btwo\x00three \xef\xbf\xbe four\n".to_vec()),
            ("nested/yaml.md".into(), b"---\ntitle: >\n  Folded\npublish_date: 2025-01-08\ntags:\n  - a\n---\nYAML the long way.\n".to_vec()),
        ];
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        let (_dir, loaded, deferred) = load_both(&files);
        let (loaded, deferred) = (loaded.unwrap(), deferred.unwrap());
        assert_eq!(loaded.articles.len(), files.len());
        for (l, d) in loaded.articles.iter().zip(&deferred.articles) {
            assert_eq!(as_loaded(l), as_loaded(d));
        }
        let long = deferred
            .articles
            .iter()
            .find(|a| a.title == "Long")
            .unwrap();
        assert!(
            matches!(long.body, Body::Deferred(_)),
            "the body is left on disk"
        );
        let counted = deferred
            .articles
            .iter()
            .find(|a| a.title == "Counted")
            .unwrap();
        assert_eq!(counted.read_time, "5 mins");
    }

    #[test]
    fn head_problems_are_the_same_either_way() {
        for bytes in [
            &b"no fence\n"[..],
            b"---\ntitle: [x]\npublish_date: '2025-01-01'\n---\nbody\n",
            b"---\ntitle: 'Caf\xe9'\npublish_date: '2025-01-01'\n---\nbody\n",
            b"---\ntitle: 'Unclosed'\n",
            b"",
            b"\x89PNG\r\n\x1a\n\x00\x00",
        ] {
            let (_dir, loaded, deferred) = load_both(&[("a.md", bytes)]);
            assert_eq!(
                loaded.unwrap_err().to_string(),
                deferred.unwrap_err().to_string(),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_deferred_body_is_checked_when_loaded_and_when_read_again() {
        let bytes =
            b"---\ntitle: 'Latin'\npublish_date: '2025-01-01'\nread_time: '1 min'\n---\nCaf\xe9\n";
        let (dir, loaded, deferred) = load_both(&[("a.md", bytes)]);
        let message = loaded.unwrap_err().to_string();
        assert_eq!(
            message,
            "content/a.md:6: the file is not valid UTF-8 (byte 72); save it as UTF-8"
        );
        assert_eq!(
            deferred.unwrap_err().to_string(),
            message,
            "the body is checked on loading"
        );

        // A file that changed after its front matter was read.
        let good =
            b"---\ntitle: 'Good'\npublish_date: '2025-01-01'\nread_time: '1 min'\n---\nBody\n";
        std::fs::write(dir.path().join("content/a.md"), good).unwrap();
        let found = find_articles(dir.path(), &dir.path().join("content"));
        let (site, stamps) =
            Site::load_found(dir.path(), config(), &found, Bodies::Deferred).unwrap();
        assert_eq!(stamps, [Stamp::of(&dir.path().join("content/a.md"))]);
        std::fs::write(
            dir.path().join("content/a.md"),
            b"---\ntitle: 'Good'\n---\nOther\n",
        )
        .unwrap();
        assert_eq!(
            site.articles[0].markdown().unwrap_err().to_string(),
            "content/a.md: the file changed while the build was reading it; run the build again"
        );
    }

    #[test]
    fn the_walk_finds_what_it_always_found() {
        let dir = tempfile::tempdir().unwrap();
        for path in [
            "b.md",
            "a/z.MD",
            "a/y.txt",
            "a/.hidden.md",
            ".git/x.md",
            "c.markdown",
            "d.csv",
            "a/b/c.md",
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        let found = find_articles(dir.path(), dir.path());
        let files: Vec<String> = found
            .files
            .iter()
            .map(|p| display_path(dir.path(), p))
            .collect();
        assert_eq!(
            files,
            ["a/b/c.md", "a/y.txt", "a/z.MD", "b.md", "c.markdown"]
        );
        assert!(found.problems.is_empty());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn word_count_and_xml_check_match_the_simple_forms(text in "(\\PC|\\s|[\u{0}-\u{1f}\u{fffe}\u{ffff}\u{a0}\u{2000}-\u{200b}])*") {
                prop_assert_eq!(word_count(text.as_bytes()), text.split_whitespace().count());
                prop_assert_eq!(is_xml_clean(&text), text.chars().all(crate::text::is_xml_char));
            }

            /// Ids must not change: the encoder from percent-encoding
            /// gives the bytes the hand-written one gave.
            #[test]
            fn tag_uri_segments_are_encoded_as_before(segment in "(\\PC|[\u{0}-\u{1f} %/:@?#\\[\\]])*") {
                let mut before = String::new();
                for byte in segment.bytes() {
                    if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                        before.push(byte as char);
                    } else {
                        before.push_str(&format!("%{byte:02X}"));
                    }
                }
                prop_assert_eq!(percent_encode_segment(&segment), before);
            }
        }
    }
}
