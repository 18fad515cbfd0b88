//! Feeds: pure functions from a [`Site`] to the bytes of RSS 2.0, Atom 1.0
//! and JSON Feed 1.1 documents, for the whole site and for each tag.
//!
//! Markdown is rendered here, once per article that appears in some feed
//! (however many feeds hold it), in parallel; articles beyond the item
//! limit are never rendered.

mod atom;
mod json;
mod rss;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use rayon::prelude::*;

use std::io::Write;

use crate::content::{Article, LoadError, Site, Slug};
use crate::error_kind::{ErrorKind, HasKind};

/// One file to write, relative to the output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// What every format needs to know about one feed.
#[derive(Debug)]
pub struct Channel<'a> {
    pub title: String,
    pub description: String,
    /// Stable id of the feed itself (Atom `<id>`).
    pub id: String,
    /// The page the feed belongs to.
    pub home: String,
    pub rss_url: Option<String>,
    pub atom_url: Option<String>,
    pub json_url: Option<String>,
    /// The newest entry's time; the Unix epoch for an empty feed, so that
    /// the file never depends on when it was built.
    pub updated: DateTime<FixedOffset>,
    pub entries: Vec<Entry<'a>>,
}

/// An article as a feed item.
#[derive(Debug)]
pub struct Entry<'a> {
    pub article: &'a Article,
    /// Full content HTML (with the CTA when configured), None in
    /// summary-only feeds.
    pub content: Option<Arc<str>>,
    /// The summary: `description`, else `subtitle`, else the first
    /// paragraph of the body (as emails have it). Feed readers and the
    /// W3C validator expect one before the full content.
    pub summary: Option<Arc<str>>,
}

/// What an entry carries besides the article's front matter.
#[derive(Debug, Clone, Default)]
struct Parts {
    content: Option<Arc<str>>,
    summary: Option<Arc<str>>,
}

impl Parts {
    /// Only what the front matter gives: for entries whose body is
    /// rendered later.
    fn front_matter(article: &Article) -> Parts {
        Parts {
            content: None,
            summary: article.summary().map(Arc::from),
        }
    }

    fn into_entry(self, article: &Article) -> Entry<'_> {
        Entry {
            article,
            content: self.content,
            summary: self.summary,
        }
    }
}

/// The articles of one feed: the whole site's (no tag) or one tag's.
type Selection<'a> = (Option<(String, Slug)>, Vec<&'a Article>);

/// Every feed file of the site at `now`, rendered in memory: the main
/// feeds, then one set per tag when `feeds.tag_feeds` is on. (A build
/// writes the same bytes with [`stream`], holding a few items at a time.)
pub fn build_all(site: &Site, now: DateTime<FixedOffset>) -> Result<Vec<Output>, LoadError> {
    let selections = selections(site, now);
    let contents = render_contents(site, selections.iter().flat_map(|(_, a)| a.iter().copied()))?;
    let channels: Vec<(PathBuf, Channel)> = selections
        .par_iter()
        .map(|(tag, articles)| {
            let dir = feed_dir(tag.as_ref());
            let channel = channel(site, tag.as_ref(), articles, &contents, &dir);
            (dir, channel)
        })
        .collect();
    // One job per file, so the three formats of a big feed render on
    // different cores. Outputs keep their order: per feed, RSS, Atom, JSON.
    let jobs: Vec<(&Channel, PathBuf, Format)> = channels
        .iter()
        .flat_map(|(dir, channel)| {
            files(site, dir)
                .into_iter()
                .map(move |(format, path)| (channel, path, format))
        })
        .collect();
    Ok(jobs
        .into_par_iter()
        .map(|(channel, path, format)| Output {
            path,
            bytes: match format {
                Format::Rss => rss::render(site, channel),
                Format::Atom => atom::render(site, channel),
                Format::Json => json::render(site, channel),
            },
        })
        .collect())
}

/// The feeds of the site at `now` and their articles: the whole site's
/// first, then each tag's (by slug) when `feeds.tag_feeds` is on.
fn selections(site: &Site, now: DateTime<FixedOffset>) -> Vec<Selection<'_>> {
    let feeds = &site.config.feeds;
    let published: Vec<&Article> = site.published(now).collect();
    let limit = if feeds.limit == 0 {
        usize::MAX
    } else {
        feeds.limit
    };

    let mut selections: Vec<Selection> =
        vec![(None, published.iter().copied().take(limit).collect())];
    if feeds.tag_feeds {
        let mut by_tag: BTreeMap<Slug, (String, Vec<&Article>)> = BTreeMap::new();
        for article in &published {
            for (name, slug) in article.tag_slugs() {
                let (_, articles) = by_tag
                    .entry(slug)
                    .or_insert_with(|| (name.to_owned(), Vec::new()));
                // Two of its tags with one slug (`C++` and `C`): one feed,
                // which holds the article once.
                if articles
                    .last()
                    .is_none_or(|last| !std::ptr::eq(*last, *article))
                {
                    articles.push(article);
                }
            }
        }
        for (slug, (name, articles)) in by_tag {
            selections.push((
                Some((name, slug)),
                articles.into_iter().take(limit).collect(),
            ));
        }
    }
    selections
}

/// Where a feed's files go, inside the output folder.
fn feed_dir(tag: Option<&(String, Slug)>) -> PathBuf {
    match tag {
        Some((_, slug)) => Path::new("tags").join(slug.as_str()),
        None => PathBuf::new(),
    }
}

/// A feed file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rss,
    Atom,
    Json,
}

/// The files of the feed in `dir` (inside the output folder), in order:
/// RSS, Atom, JSON, leaving out those configured off (an empty name).
fn files(site: &Site, dir: &Path) -> Vec<(Format, PathBuf)> {
    let feeds = &site.config.feeds;
    [
        (Format::Rss, &feeds.rss),
        (Format::Atom, &feeds.atom),
        (Format::Json, &feeds.json),
    ]
    .into_iter()
    .filter(|(_, name)| !name.as_os_str().is_empty())
    .map(|(format, name)| (format, dir.join(name)))
    .collect()
}

/// One feed to write with [`stream`]: its files, and its channel with
/// every entry but no content yet.
#[derive(Debug)]
pub struct Feed<'a> {
    /// Format and path inside the output folder of each file, in order.
    pub files: Vec<(Format, PathBuf)>,
    pub channel: Channel<'a>,
}

/// Every feed of the site at `now`, in [`build_all`]'s order.
pub fn plan(site: &Site, now: DateTime<FixedOffset>) -> Vec<Feed<'_>> {
    let none = HashMap::new();
    selections(site, now)
        .iter()
        .map(|(tag, articles)| {
            let dir = feed_dir(tag.as_ref());
            Feed {
                files: files(site, &dir),
                channel: channel(site, tag.as_ref(), articles, &none, &dir),
            }
        })
        .collect()
}

/// Why [`stream`] could not write a feed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Articles whose body could not be read or rendered.
    #[error(transparent)]
    Content(#[from] LoadError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl HasKind for StreamError {
    fn kind(&self) -> ErrorKind {
        match self {
            StreamError::Content(e) => e.kind(),
            StreamError::Io(e) => HasKind::kind(e),
        }
    }
}

/// How many articles are rendered at once (in parallel) while streaming.
const BATCH: usize = 128;

/// Writes the files of `feeds` to `sinks`: for each feed, one sink per
/// format in the order of its `files`. The bytes are those [`build_all`]
/// renders, but written in one pass over the articles of all the feeds,
/// newest first, a batch at a time: each article's content is rendered,
/// and its item written out, once for every feed that holds it (the main
/// feed and each of its tags' feeds), and only a batch of items is in
/// memory at a time. The `rss` and `atom_syndication` builders still
/// write every element: each format's document is written once with no
/// items and once per item with only that item, and the items are cut out
/// of their documents and spliced into the empty ones (see [`Frame`]).
/// Problems with article bodies are all reported, after the last batch;
/// what was written by then is not a feed.
pub fn stream<W: Write + Send>(
    site: &Site,
    feeds: &[Feed],
    sinks: &mut [Vec<(Format, W)>],
) -> Result<(), StreamError> {
    let frames = feeds
        .iter()
        .zip(sinks.iter())
        .map(|(feed, sinks)| {
            sinks
                .iter()
                .map(|(format, _)| Frame::new(site, &feed.channel, *format))
                .collect::<std::io::Result<Vec<Frame>>>()
        })
        .collect::<std::io::Result<Vec<Vec<Frame>>>>()?;
    for (sinks, frames) in sinks.iter_mut().zip(&frames) {
        for ((_, sink), frame) in sinks.iter_mut().zip(frames) {
            sink.write_all(frame.head())?;
        }
    }
    let holders = holders(site, feeds);
    let batches: Vec<&[Held]> = holders.chunks(BATCH).collect();
    let mut pass = Pass {
        items: vec![0; feeds.len()],
        problems: Vec::new(),
    };
    // Each batch is written while the next one renders.
    let mut rendered = batches
        .first()
        .map(|batch| render_batch(site, batch, &frames));
    for (i, batch) in batches.iter().enumerate() {
        let current = rendered.take().unwrap_or_default();
        let (next, written) = rayon::join(
            || {
                batches
                    .get(i + 1)
                    .map(|next| render_batch(site, next, &frames))
            },
            || pass.write(batch, current, &frames, sinks),
        );
        written?;
        rendered = next;
    }
    if !pass.problems.is_empty() {
        return Err(LoadError {
            problems: pass.problems,
        }
        .into());
    }
    for ((sinks, frames), items) in sinks.iter_mut().zip(&frames).zip(pass.items) {
        for ((_, sink), frame) in sinks.iter_mut().zip(frames) {
            sink.write_all(frame.tail(items))?;
        }
    }
    Ok(())
}

/// An article of some feed, and the feeds that hold it (their indices, in
/// order).
struct Held<'a> {
    article: &'a Article,
    feeds: Vec<usize>,
}

/// Every article of `feeds`, in the site's order (which each feed's
/// entries follow too), with the feeds that hold it.
fn holders<'a>(site: &'a Site, feeds: &[Feed<'a>]) -> Vec<Held<'a>> {
    let place: HashMap<*const Article, usize> = site
        .articles
        .iter()
        .enumerate()
        .map(|(i, article)| (std::ptr::from_ref(article), i))
        .collect();
    let place = &place;
    let mut pairs: Vec<(usize, usize)> = feeds
        .iter()
        .enumerate()
        .flat_map(|(f, feed)| {
            feed.channel.entries.iter().filter_map(move |entry| {
                let at = place.get(&std::ptr::from_ref(entry.article));
                debug_assert!(at.is_some(), "a feed entry is an article of the site");
                at.map(|&at| (at, f))
            })
        })
        .collect();
    pairs.sort_unstable();
    let mut held: Vec<Held> = Vec::new();
    for (at, feed) in pairs {
        match held.last_mut() {
            Some(last) if std::ptr::eq(last.article, &site.articles[at]) => last.feeds.push(feed),
            _ => held.push(Held {
                article: &site.articles[at],
                feeds: vec![feed],
            }),
        }
    }
    held
}

/// One article's item in each format, or why its body could not be used.
type Pieces = Result<Vec<(Format, Vec<u8>)>, StreamError>;

/// Renders the items of `batch` in parallel: each article's content once,
/// and its text in every format one of its feeds is written in.
fn render_batch(site: &Site, batch: &[Held], frames: &[Vec<Frame>]) -> Vec<Pieces> {
    batch
        .par_iter()
        .map(|held| {
            let entry = parts(site, held.article)?.into_entry(held.article);
            // An item's text does not depend on its feed: the first frame
            // of each format serves every feed.
            let mut pieces: Vec<(Format, Vec<u8>)> = Vec::with_capacity(3);
            for &feed in &held.feeds {
                for frame in &frames[feed] {
                    if pieces.iter().all(|(format, _)| *format != frame.format()) {
                        pieces.push((frame.format(), frame.piece(&entry)?));
                    }
                }
            }
            Ok(pieces)
        })
        .collect()
}

/// What a [`stream`] pass has written so far: items per feed, and the
/// problems met.
struct Pass {
    items: Vec<usize>,
    problems: Vec<crate::content::Problem>,
}

impl Pass {
    /// Appends the rendered items of `batch` to the sinks of the feeds
    /// that hold them; once there is a problem, only collects problems.
    fn write<W: Write>(
        &mut self,
        batch: &[Held],
        rendered: Vec<Pieces>,
        frames: &[Vec<Frame>],
        sinks: &mut [Vec<(Format, W)>],
    ) -> Result<(), StreamError> {
        for (held, result) in batch.iter().zip(rendered) {
            let pieces = match result {
                Ok(pieces) => pieces,
                Err(StreamError::Content(mut e)) => {
                    self.problems.append(&mut e.problems);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !self.problems.is_empty() {
                continue;
            }
            for &feed in &held.feeds {
                for ((format, sink), frame) in sinks[feed].iter_mut().zip(&frames[feed]) {
                    if self.items[feed] > 0 {
                        sink.write_all(frame.separator())?;
                    }
                    if let Some((_, piece)) = pieces.iter().find(|(f, _)| f == format) {
                        sink.write_all(piece)?;
                    }
                }
                self.items[feed] += 1;
            }
        }
        Ok(())
    }
}

/// One format's document around its items, and how to write an item.
enum Frame {
    /// RSS and Atom: `empty` is the document with no items as the crate
    /// writes it, `cut` the byte where an item's text starts in a
    /// document with one item (what precedes it is `empty[..cut]`, what
    /// follows it `empty[cut..]`).
    Xml {
        template: Template,
        empty: Vec<u8>,
        cut: usize,
        head: Vec<u8>,
        tail: Vec<u8>,
    },
    Json {
        head: Vec<u8>,
        empty_tail: Vec<u8>,
    },
}

/// A document with no items, ready to take one.
enum Template {
    Rss(Box<::rss::Channel>),
    Atom(Box<atom_syndication::Feed>),
}

impl Template {
    /// The document as the crate writes it, with `entry` its only item.
    fn document(&self, entry: Option<&Entry>) -> Vec<u8> {
        match self {
            Template::Rss(template) => {
                let mut channel = ::rss::Channel::clone(template);
                let hint = entry.map_or(0, |e| {
                    4096 + e.content.as_ref().map_or(0, |c| c.len() * 9 / 8)
                });
                channel.set_items(entry.map(rss::item).into_iter().collect::<Vec<_>>());
                rss::document(&channel, hint)
            }
            Template::Atom(template) => {
                let mut feed = atom_syndication::Feed::clone(template);
                let hint = entry.map_or(0, |e| {
                    4096 + e.content.as_ref().map_or(0, |c| c.len() * 9 / 8)
                });
                feed.entries = entry.map(atom::entry).into_iter().collect();
                atom::document(&feed, hint)
            }
        }
    }

    /// [`rss::render`]'s and [`atom::render`]'s passes over the text.
    fn finish(&self, piece: &[u8], last: bool) -> Vec<u8> {
        let piece = match self {
            Template::Rss(_) => rss::finish_piece(piece.to_vec()),
            Template::Atom(_) => clean_xml(piece.to_vec()),
        };
        if last {
            finish_xml(piece)
        } else {
            piece
        }
    }
}

impl Frame {
    fn new(site: &Site, channel: &Channel, format: Format) -> std::io::Result<Frame> {
        let template = match format {
            Format::Rss => Template::Rss(Box::new(rss::template(site, channel))),
            Format::Atom => Template::Atom(Box::new(atom::template(site, channel))),
            Format::Json => {
                let (head, empty_tail) = json::frame(site, channel);
                return Ok(Frame::Json { head, empty_tail });
            }
        };
        let empty = template.document(None);
        let Some(first) = channel.entries.first() else {
            // No items: the document as it is.
            let head = template.finish(&empty, true);
            let cut = empty.len();
            return Ok(Frame::Xml {
                template,
                empty,
                cut,
                head,
                tail: Vec::new(),
            });
        };
        // Any item shows where items go: the first byte where a document
        // with one differs from the empty one.
        let one = template.document(Some(&Entry {
            article: first.article,
            content: None,
            summary: None,
        }));
        let cut = empty
            .iter()
            .zip(&one)
            .position(|(a, b)| a != b)
            .unwrap_or(empty.len());
        let head = template.finish(&empty[..cut], false);
        let tail = template.finish(&empty[cut..], true);
        let frame = Frame::Xml {
            template,
            empty,
            cut,
            head,
            tail,
        };
        frame.item_text(&one)?;
        Ok(frame)
    }

    fn format(&self) -> Format {
        match self {
            Frame::Xml {
                template: Template::Rss(_),
                ..
            } => Format::Rss,
            Frame::Xml {
                template: Template::Atom(_),
                ..
            } => Format::Atom,
            Frame::Json { .. } => Format::Json,
        }
    }

    /// What comes before the first item.
    fn head(&self) -> &[u8] {
        match self {
            Frame::Xml { head, .. } | Frame::Json { head, .. } => head,
        }
    }

    /// What comes between two items.
    fn separator(&self) -> &[u8] {
        match self {
            Frame::Xml { .. } => b"",
            Frame::Json { .. } => b",",
        }
    }

    /// What comes after `items` items.
    fn tail(&self, items: usize) -> &[u8] {
        match self {
            Frame::Xml { tail, .. } => tail,
            Frame::Json { empty_tail, .. } if items == 0 => empty_tail,
            Frame::Json { .. } => json::END_AFTER_ITEMS,
        }
    }

    /// One entry's text in the document.
    fn piece(&self, entry: &Entry) -> std::io::Result<Vec<u8>> {
        match self {
            Frame::Xml { template, .. } => {
                let document = template.document(Some(entry));
                Ok(template.finish(self.item_text(&document)?, false))
            }
            Frame::Json { .. } => Ok(json::piece(entry)),
        }
    }

    /// The item's text in a document with one item: between the empty
    /// document's head and tail. Every item's text then starts with the
    /// same bytes as the empty document's rest at the cut (the item's
    /// opening), so the item texts of several documents spliced between
    /// that head and tail make the document with all of them. A document
    /// that does not fit the frame is an error, never a broken feed.
    fn item_text<'d>(&self, document: &'d [u8]) -> std::io::Result<&'d [u8]> {
        let Frame::Xml { empty, cut, .. } = self else {
            return Ok(document);
        };
        let (head, tail) = empty.split_at(*cut);
        if document.len() > empty.len() && document.starts_with(head) && document.ends_with(tail) {
            Ok(&document[head.len()..document.len() - tail.len()])
        } else {
            Err(std::io::Error::other(
                "a feed item does not fit its document; please report this as a bug",
            ))
        }
    }
}

/// The full content of an article as feeds carry it (its body as HTML,
/// and its call to action when configured; none in summary-only feeds),
/// and its summary. The body is read only when one of them needs it.
fn parts(site: &Site, article: &Article) -> Result<Parts, LoadError> {
    let full = site.config.feeds.full_content;
    let summary = article.summary().map(Arc::from);
    if !full && summary.is_some() {
        return Ok(Parts {
            content: None,
            summary,
        });
    }
    let markdown = article.markdown().map_err(|problem| LoadError {
        problems: vec![problem],
    })?;
    let summary = summary.or_else(|| {
        Some(crate::content::summary::first_paragraph(&markdown))
            .filter(|s| !s.is_empty())
            .map(Arc::from)
    });
    let content = full.then(|| {
        let mut html = crate::content::html::render_markdown(&markdown, &article.url);
        if site.config.feeds.append_cta {
            if let Some(cta) = article.cta_html() {
                // Fixed markup around HTML that was escaped by the
                // Markdown renderer and sanitized.
                html.push_str("\n<aside class=\"cta\"><p><strong>");
                html.push_str(&cta);
                html.push_str("</strong></p></aside>\n");
            }
        }
        Arc::from(html)
    });
    Ok(Parts { content, summary })
}

/// Renders the parts of each distinct article once.
fn render_contents<'a>(
    site: &Site,
    articles: impl Iterator<Item = &'a Article>,
) -> Result<HashMap<&'a str, Parts>, LoadError> {
    let mut unique: Vec<&Article> = articles.collect();
    unique.sort_by(|a, b| a.id.cmp(&b.id));
    unique.dedup_by(|a, b| a.id == b.id);
    let rendered: Vec<Result<(&str, Parts), LoadError>> = unique
        .par_iter()
        .map(|article| Ok((article.id.as_str(), parts(site, article)?)))
        .collect();
    let mut contents = HashMap::with_capacity(rendered.len());
    let mut problems = Vec::new();
    for result in rendered {
        match result {
            Ok((id, parts)) => {
                contents.insert(id, parts);
            }
            Err(mut e) => problems.append(&mut e.problems),
        }
    }
    if problems.is_empty() {
        Ok(contents)
    } else {
        Err(LoadError { problems })
    }
}

fn channel<'a>(
    site: &Site,
    tag: Option<&(String, Slug)>,
    articles: &[&'a Article],
    contents: &HashMap<&str, Parts>,
    dir: &Path,
) -> Channel<'a> {
    let config = &site.config;
    let feed_url = |file: &Path| {
        (!file.as_os_str().is_empty()).then(|| {
            let path: Vec<String> = dir
                .join(file)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            config.site_url(&path.join("/"))
        })
    };
    let (title, description, id) = match tag {
        Some((name, slug)) => (
            format!("{} · {}", config.site.title, name),
            format!("Articles tagged “{}” from {}", name, config.site.title),
            config.site_url(&format!("tags/{slug}/")),
        ),
        None => (
            config.site.title.clone(),
            config.site.description.clone(),
            config.site.base_url.to_string(),
        ),
    };
    let updated = articles
        .iter()
        .map(|a| a.updated())
        .max()
        .unwrap_or_else(|| {
            Utc.timestamp_opt(0, 0)
                .single()
                .expect("epoch exists")
                .fixed_offset()
        });
    Channel {
        title: crate::text::single_line(&title),
        description: crate::text::single_line(&description),
        id,
        home: config.site.base_url.to_string(),
        rss_url: feed_url(&config.feeds.rss),
        atom_url: feed_url(&config.feeds.atom),
        json_url: feed_url(&config.feeds.json),
        updated,
        entries: articles
            .iter()
            .map(|article| {
                contents
                    .get(article.id.as_str())
                    .cloned()
                    .unwrap_or_else(|| Parts::front_matter(article))
                    .into_entry(article)
            })
            .collect(),
    }
}

/// About how many bytes a feed of `channel` takes (its contents, escaped,
/// plus the rest of each entry), so the writer does not grow its buffer
/// by doubling and copying a large feed several times.
pub(crate) fn size_hint(channel: &Channel) -> usize {
    let contents: usize = channel
        .entries
        .iter()
        .map(|e| e.content.as_ref().map_or(0, |c| c.len()))
        .sum();
    4096 + contents + contents / 8 + channel.entries.len() * 1024
}

/// The MIME type of an image, guessed from its URL's extension.
pub(crate) fn image_type(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next().unwrap_or("") {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "avif" => "image/avif",
        _ => "image/jpeg",
    }
}

/// Last line of defence: no byte XML 1.0 forbids reaches a file, whatever
/// a library wrote; and the file ends with a line break.
pub(crate) fn finish_xml(mut bytes: Vec<u8>) -> Vec<u8> {
    if std::str::from_utf8(&bytes).is_ok() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    clean_xml(bytes)
}

/// [`finish_xml`] without the final line break, for a piece of a document
/// cut between characters.
pub(crate) fn clean_xml(bytes: Vec<u8>) -> Vec<u8> {
    match String::from_utf8(bytes) {
        // Clean in practice (the content was cleaned on loading): no copy.
        Ok(text) if crate::content::is_xml_clean(&text) => text.into_bytes(),
        Ok(text) => crate::text::xml_safe(&text).into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

#[cfg(test)]
mod tests;
