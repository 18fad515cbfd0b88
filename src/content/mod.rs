//! The content model: articles loaded from `content/`, checked, and sorted
//! into a [`Site`]. Loading reads every file (in parallel) and reports every
//! problem in every file at once; rendering Markdown is left to the outputs
//! that need it, so only the articles that appear somewhere pay for it.

pub mod date;
pub mod front_matter;
pub mod html;
pub mod slug;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, FixedOffset};
use rayon::prelude::*;
use serde_yaml::Value;
use url::Url;

use crate::config::Config;
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
    /// Line in the source file where the body starts.
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
    /// Markdown body.
    pub body: String,
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
    pub fn body_html(&self) -> String {
        html::render_markdown(&self.body, &self.url)
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

/// The loaded site: its configuration and every article, newest first.
#[derive(Debug, Clone)]
pub struct Site {
    pub config: Config,
    pub articles: Vec<Article>,
}

impl Site {
    /// Loads every article under the configured content folder of `root`.
    pub fn load(root: &Path, config: Config) -> Result<Site, LoadError> {
        let content_dir = root.join(&config.site.content_dir);
        let (files, mut problems) = find_articles(root, &content_dir);
        let results: Vec<Result<Article, Vec<Problem>>> = files
            .par_iter()
            // One read buffer per worker, reused from file to file: the
            // article keeps only what it needs (its body is a copy).
            .map_init(Vec::new, |buffer, path| {
                let source = display_path(root, path);
                let message = match read_into(path, buffer) {
                    Ok(true) => None,
                    Ok(false) => Some(format!(
                        "the file is larger than {} MB; an article must be smaller (move data files out of the content folder)",
                        MAX_ARTICLE_BYTES / (1024 * 1024)
                    )),
                    Err(e) => Some(format!("cannot read: {e}")),
                };
                if let Some(message) = message {
                    return Err(vec![Problem {
                        path: source.clone(),
                        line: None,
                        key: None,
                        message,
                    }]);
                }
                let relative = path.strip_prefix(&content_dir).unwrap_or(path);
                parse_article(&config, &source, relative, buffer)
            })
            .collect();
        let mut articles = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(article) => articles.push(article),
                Err(mut p) => problems.append(&mut p),
            }
        }
        problems.extend(duplicates(&articles));
        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        articles.sort_by(|a, b| {
            b.publish_date
                .cmp(&a.publish_date)
                .then_with(|| a.source.cmp(&b.source))
        });
        Ok(Site { config, articles })
    }

    /// Articles public at `now`, newest first.
    pub fn published(&self, now: DateTime<FixedOffset>) -> impl Iterator<Item = &Article> {
        self.articles.iter().filter(move |a| a.is_published(now))
    }
}

/// Replaces the contents of `buffer` with the file at `path`; false (and
/// nothing read past the limit) when it is over [`MAX_ARTICLE_BYTES`].
fn read_into(path: &Path, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    use std::io::Read;
    buffer.clear();
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() > MAX_ARTICLE_BYTES {
        return Ok(false);
    }
    // The file may grow between the two calls: never read past the limit.
    file.take(MAX_ARTICLE_BYTES + 1).read_to_end(buffer)?;
    Ok(buffer.len() as u64 <= MAX_ARTICLE_BYTES)
}

/// Every article file under `dir`, sorted, and the problems met walking it.
pub(crate) fn find_articles(root: &Path, dir: &Path) -> (Vec<PathBuf>, Vec<Problem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    if !dir.is_dir() {
        problems.push(Problem {
            path: display_path(root, dir),
            line: None,
            key: None,
            message: "the content folder does not exist; create it or set site.content_dir in config.toml".into(),
        });
        return (files, problems);
    }
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                let is_article = entry.file_type().is_file()
                    && path
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
                if is_article {
                    files.push(path.to_path_buf());
                }
            }
            Err(e) => {
                let path = e
                    .path()
                    .map(|p| display_path(root, p))
                    .unwrap_or_else(|| display_path(root, dir));
                let message = if e.loop_ancestor().is_some() {
                    "symbolic link loop; remove the link".to_owned()
                } else {
                    match e.io_error() {
                        Some(io) => format!("cannot read: {io}"),
                        None => e.to_string(),
                    }
                };
                problems.push(Problem {
                    path,
                    line: None,
                    key: None,
                    message,
                });
            }
        }
    }
    (files, problems)
}

/// `path` relative to the site root with `/` separators.
pub fn display_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Turns one file's bytes into an article. `relative` is the path inside
/// the content folder (it names the default id).
pub fn parse_article(
    config: &Config,
    source: &str,
    relative: &Path,
    bytes: &[u8],
) -> Result<Article, Vec<Problem>> {
    let problem = |line: usize, key: Option<String>, message: String| Problem {
        path: source.to_owned(),
        line: Some(line),
        key,
        message,
    };
    let text = decode(bytes).map_err(|(line, message)| vec![problem(line, None, message)])?;
    let split = front_matter::split(text).map_err(|e| vec![problem(e.line, e.key, e.message)])?;
    let fm = front_matter::parse(split.yaml, split.yaml_line, config.site.timezone).map_err(
        |errors| {
            errors
                .into_iter()
                .map(|e| problem(e.line, e.key, e.message))
                .collect::<Vec<_>>()
        },
    )?;

    let mut problems = Vec::new();
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
                problems.push(problem(
                    split.yaml_line,
                    Some("heroImage".into()),
                    format!("`{reference}` is not an image URL"),
                ));
                None
            }
        },
        None => None,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
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
    let body = xml_clean(split.body);
    let read_time = fm.read_time.clone().unwrap_or_else(|| read_time(&body));
    Ok(Article {
        source: source.to_owned(),
        id: fm
            .id
            .clone()
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
        hero_image,
        cta: fm.cta,
        slug,
        tags: fm.tags,
        draft: fm.draft,
        url,
        body,
        extra: fm.extra,
        slug_line,
        id_line,
    })
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
    let words = word_count(body);
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
fn word_count(text: &str) -> usize {
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

/// Percent-encodes everything outside RFC 3986 `pchar` minus `:` and `@`
/// (kept simple and canonical: upper-case hex).
fn percent_encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Two articles with one slug or one id would overwrite each other.
fn duplicates(articles: &[Article]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut by_slug: HashMap<&str, &Article> = HashMap::new();
    let mut by_id: HashMap<&str, &Article> = HashMap::new();
    let mut sorted: Vec<&Article> = articles.iter().collect();
    sorted.sort_by(|a, b| a.source.cmp(&b.source));
    for article in sorted {
        if let Some(first) = by_slug.insert(article.slug.as_str(), article) {
            problems.push(Problem {
                path: article.source.clone(),
                line: Some(article.slug_line),
                key: Some("slug".into()),
                message: format!(
                    "`{}` is also the slug of {}; give one of them another `slug:`",
                    article.slug, first.source
                ),
            });
            by_slug.insert(first.slug.as_str(), first);
        }
        if let Some(first) = by_id.insert(article.id.as_str(), article) {
            problems.push(Problem {
                path: article.source.clone(),
                line: Some(article.id_line),
                key: Some("id".into()),
                message: format!(
                    "`{}` is also the id of {}; ids must be unique",
                    article.id, first.source
                ),
            });
            by_id.insert(first.id.as_str(), first);
        }
    }
    problems
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
                word_count(text),
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

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn word_count_and_xml_check_match_the_simple_forms(text in "(\\PC|\\s|[\u{0}-\u{1f}\u{fffe}\u{ffff}\u{a0}\u{2000}-\u{200b}])*") {
                prop_assert_eq!(word_count(&text), text.split_whitespace().count());
                prop_assert_eq!(is_xml_clean(&text), text.chars().all(crate::text::is_xml_char));
            }
        }
    }
}
