//! JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) through serde.

use serde::Serialize;

use super::{Channel, Entry};
use crate::content::Site;

#[derive(Serialize)]
struct Feed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    feed_url: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    favicon: Option<String>,
    authors: Vec<Author<'a>>,
    language: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub>,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Hub {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    date_published: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_modified: Option<String>,
    authors: [Author<'a>; 1],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
}

pub fn render(site: &Site, channel: &Channel) -> Vec<u8> {
    let mut feed = template(site, channel);
    feed.items = channel.entries.iter().map(item).collect();
    let mut out = Vec::with_capacity(super::size_hint(channel));
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer_pretty(&mut out, &feed);
    out.push(b'\n');
    out
}

/// The feed of `channel` with no items.
fn template<'a>(site: &'a Site, channel: &'a Channel) -> Feed<'a> {
    let config = &site.config;
    Feed {
        version: "https://jsonfeed.org/version/1.1",
        title: &channel.title,
        home_page_url: &channel.home,
        feed_url: channel.json_url.as_deref(),
        description: &channel.description,
        icon: config.site.logo.as_deref().map(|l| config.site_url(l)),
        favicon: config.site.icon.as_deref().map(|i| config.site_url(i)),
        authors: vec![Author {
            name: &config.site.author,
        }],
        language: &config.site.language,
        hubs: config
            .feeds
            .hub
            .iter()
            .map(|h| Hub {
                kind: "WebSub",
                url: h.to_string(),
            })
            .collect(),
        items: Vec::new(),
    }
}

fn item<'a>(entry: &'a Entry) -> Item<'a> {
    let a = entry.article;
    let content_html = entry.content.as_deref();
    Item {
        id: &a.id,
        url: a.url.as_str(),
        title: &a.title,
        content_html,
        // JSON Feed requires one of the two contents.
        content_text: content_html
            .is_none()
            .then(|| entry.summary.as_deref().unwrap_or(&a.title)),
        summary: entry.summary.as_deref(),
        image: a.hero_image.as_deref(),
        date_published: a.publish_date.to_rfc3339(),
        date_modified: a.updated_date.map(|d| d.to_rfc3339()),
        authors: [Author { name: &a.author }],
        tags: &a.tags,
    }
}

/// The document of `channel` with no items, cut where they go: the text
/// up to the items' `[`, and the end for an empty list. serde_json writes
/// `"items": []` for none, and each item on its own lines, indented two
/// levels and separated by commas, for some: see [`piece`].
pub(super) fn frame(site: &Site, channel: &Channel) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    let _ = serde_json::to_writer_pretty(&mut out, &template(site, channel));
    out.push(b'\n');
    // `items` is the last field, so the document ends `[]\n}\n`.
    let head = out.len() - b"]\n}\n".len();
    (out[..head].to_vec(), out[head..].to_vec())
}

/// The end of a document with at least one item.
pub(super) const END_AFTER_ITEMS: &[u8] = b"\n  ]\n}\n";

/// One item as it stands in the document after the `[` or the comma
/// before it: on a new line, indented two levels (4 spaces). JSON text
/// holds no raw line break, so every line break is one of the layout's.
pub(super) fn piece(entry: &Entry) -> Vec<u8> {
    let mut alone = Vec::new();
    let _ = serde_json::to_writer_pretty(&mut alone, &item(entry));
    let mut out = Vec::with_capacity(alone.len() + alone.len() / 8 + 8);
    out.extend_from_slice(b"\n    ");
    for &b in &alone {
        out.push(b);
        if b == b'\n' {
            out.extend_from_slice(b"    ");
        }
    }
    out
}
