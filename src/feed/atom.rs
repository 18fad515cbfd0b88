//! Atom 1.0 (RFC 4287), built with `atom_syndication`'s typed structs.

use atom_syndication::{
    Category, Content, Entry as AtomEntry, Feed, Generator, Link, Person, Text, WriteConfig,
};

use super::{finish_xml, image_type, Channel, Entry};
use crate::content::Site;

pub fn render(site: &Site, channel: &Channel) -> Vec<u8> {
    let mut feed = template(site, channel);
    feed.entries = channel.entries.iter().map(entry).collect();
    let out = document(&feed, super::size_hint(channel));
    drop(feed);
    finish_xml(out)
}

/// The feed of `channel` with no entries: what [`super::stream`] writes
/// around them.
pub(super) fn template(site: &Site, channel: &Channel) -> Feed {
    let config = &site.config;
    let mut links = vec![Link {
        href: channel.home.clone(),
        rel: "alternate".into(),
        mime_type: Some("text/html".into()),
        ..Link::default()
    }];
    if let Some(url) = &channel.atom_url {
        links.push(Link {
            href: url.clone(),
            rel: "self".into(),
            mime_type: Some("application/atom+xml".into()),
            ..Link::default()
        });
    }
    if let Some(hub) = &config.feeds.hub {
        links.push(Link {
            href: hub.to_string(),
            rel: "hub".into(),
            ..Link::default()
        });
    }
    Feed {
        title: Text::plain(channel.title.clone()),
        id: channel.id.clone(),
        updated: channel.updated,
        authors: vec![person(&config.site.author)],
        generator: Some(Generator {
            value: "pressroom".into(),
            uri: Some("https://crates.io/crates/pressroom".into()),
            version: Some(crate::VERSION.into()),
        }),
        icon: config.site.icon.as_deref().map(|i| config.site_url(i)),
        logo: config.site.logo.as_deref().map(|l| config.site_url(l)),
        links,
        rights: config
            .site
            .copyright
            .as_deref()
            .map(|c| Text::plain(crate::text::single_line(c))),
        subtitle: (!channel.description.is_empty())
            .then(|| Text::plain(channel.description.clone())),
        // No feed-level xml:base: every URL is already absolute, and the
        // W3C validator warns (SameDocumentReference) when the alternate
        // link resolves to the base itself. Entry content keeps its own.
        lang: Some(config.site.language.clone()),
        ..Feed::default()
    }
}

/// The document as `atom_syndication` writes it, before [`finish_xml`].
pub(super) fn document(feed: &Feed, size_hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint);
    // Writing to a Vec cannot fail.
    let _ = feed.write_with_config(
        &mut out,
        WriteConfig {
            write_document_declaration: true,
            indent_size: Some(2),
        },
    );
    out
}

fn person(name: &str) -> Person {
    Person {
        name: crate::text::single_line(name),
        ..Person::default()
    }
}

pub(super) fn entry(entry: &Entry) -> AtomEntry {
    let a = entry.article;
    let mut links = vec![Link {
        href: a.url.to_string(),
        rel: "alternate".into(),
        mime_type: Some("text/html".into()),
        ..Link::default()
    }];
    if let Some(image) = &a.hero_image {
        links.push(Link {
            href: image.clone(),
            rel: "enclosure".into(),
            mime_type: Some(image_type(image).into()),
            ..Link::default()
        });
    }
    AtomEntry {
        title: Text::plain(a.title.clone()),
        id: a.id.clone(),
        updated: a.updated(),
        published: Some(a.publish_date),
        authors: vec![person(&a.author)],
        categories: a
            .tags
            .iter()
            .map(|t| Category {
                term: t.clone(),
                label: Some(t.clone()),
                ..Category::default()
            })
            .collect(),
        links,
        summary: entry.summary.as_deref().map(|s| Text::plain(s.to_owned())),
        content: entry.content.as_deref().map(|html| Content {
            base: Some(a.url.to_string()),
            value: Some(html.to_owned()),
            content_type: Some("html".into()),
            ..Content::default()
        }),
        ..AtomEntry::default()
    }
}
