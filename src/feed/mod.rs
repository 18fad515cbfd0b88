//! Feeds: pure functions from a [`Site`] to the bytes of RSS 2.0, Atom 1.0
//! and JSON Feed 1.1 documents, for the whole site and for each tag.
//!
//! Markdown is rendered here, once per article that appears in some feed,
//! in parallel; articles beyond the item limit are never rendered.

mod atom;
mod json;
mod rss;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use rayon::prelude::*;

use crate::content::{Article, Site, Slug};

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
}

/// The articles of one feed: the whole site's (no tag) or one tag's.
type Selection<'a> = (Option<(String, Slug)>, Vec<&'a Article>);

/// Every feed file of the site at `now`: the main feeds, then one set per
/// tag when `feeds.tag_feeds` is on.
pub fn build_all(site: &Site, now: DateTime<FixedOffset>) -> Vec<Output> {
    build_each(site, now, |output| output)
}

/// Renders every feed file of [`build_all`], in parallel, and hands each
/// to `each` as soon as it is ready (a caller that writes it there holds
/// one file per core in memory, not all of them). Returns what `each`
/// returned, in [`build_all`]'s order.
pub fn build_each<T: Send>(
    site: &Site,
    now: DateTime<FixedOffset>,
    each: impl Fn(Output) -> T + Sync,
) -> Vec<T> {
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
                by_tag
                    .entry(slug)
                    .or_insert_with(|| (name.to_owned(), Vec::new()))
                    .1
                    .push(article);
            }
        }
        for (slug, (name, articles)) in by_tag {
            selections.push((
                Some((name, slug)),
                articles.into_iter().take(limit).collect(),
            ));
        }
    }

    let contents = render_contents(site, selections.iter().flat_map(|(_, a)| a.iter().copied()));
    let channels: Vec<(PathBuf, Channel)> = selections
        .par_iter()
        .map(|(tag, articles)| {
            let dir = match tag {
                Some((_, slug)) => Path::new("tags").join(slug.as_str()),
                None => PathBuf::new(),
            };
            let channel = channel(site, tag.as_ref(), articles, &contents, &dir);
            (dir, channel)
        })
        .collect();
    // One job per file, so the three formats of a big feed (the main one
    // above all, and the only one with tag feeds off) render on different
    // cores. Outputs keep their order: per feed, RSS, Atom, JSON.
    let formats: [(&PathBuf, Format); 3] = [
        (&feeds.rss, rss::render),
        (&feeds.atom, atom::render),
        (&feeds.json, json::render),
    ];
    let jobs: Vec<(&Path, &Channel, &PathBuf, Format)> = channels
        .iter()
        .flat_map(|(dir, channel)| {
            formats
                .iter()
                .filter(|(file, _)| !file.as_os_str().is_empty())
                .map(move |&(file, render)| (dir.as_path(), channel, file, render))
        })
        .collect();
    jobs.into_par_iter()
        .map(|(dir, channel, file, render)| {
            each(Output {
                path: dir.join(file),
                bytes: render(site, channel),
            })
        })
        .collect()
}

/// A format's renderer.
type Format = fn(&Site, &Channel) -> Vec<u8>;

/// Renders the full content of each distinct article once.
fn render_contents<'a>(
    site: &Site,
    articles: impl Iterator<Item = &'a Article>,
) -> HashMap<&'a str, Arc<str>> {
    let feeds = &site.config.feeds;
    if !feeds.full_content {
        return HashMap::new();
    }
    let mut unique: Vec<&Article> = articles.collect();
    unique.sort_by(|a, b| a.id.cmp(&b.id));
    unique.dedup_by(|a, b| a.id == b.id);
    unique
        .par_iter()
        .map(|article| {
            let mut html = article.body_html();
            if feeds.append_cta {
                if let Some(cta) = article.cta_html() {
                    // Fixed markup around HTML that was escaped by the
                    // Markdown renderer and sanitized.
                    html.push_str("\n<aside class=\"cta\"><p><strong>");
                    html.push_str(&cta);
                    html.push_str("</strong></p></aside>\n");
                }
            }
            (article.id.as_str(), Arc::from(html))
        })
        .collect()
}

fn channel<'a>(
    site: &Site,
    tag: Option<&(String, Slug)>,
    articles: &[&'a Article],
    contents: &HashMap<&str, Arc<str>>,
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
            .map(|article| Entry {
                article,
                content: contents.get(article.id.as_str()).cloned(),
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
/// a library wrote.
pub(crate) fn finish_xml(bytes: Vec<u8>) -> Vec<u8> {
    match String::from_utf8(bytes) {
        Ok(mut text) => {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            // Clean in practice (the content was cleaned on loading): no copy.
            if crate::content::is_xml_clean(&text) {
                text.into_bytes()
            } else {
                crate::text::xml_safe(&text).into_bytes()
            }
        }
        Err(e) => e.into_bytes(),
    }
}

#[cfg(test)]
mod tests;
