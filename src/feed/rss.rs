//! RSS 2.0 with the `atom`, `content`, `dc` and `media` extensions, built
//! with the `rss` crate's typed builders.

use std::collections::BTreeMap;

use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::extension::{Extension, ExtensionMap};
use rss::{CategoryBuilder, ChannelBuilder, GuidBuilder, ImageBuilder, Item, ItemBuilder};

use super::{finish_xml, image_type, Channel, Entry};
use crate::content::Site;

const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

pub fn render(site: &Site, channel: &Channel) -> Vec<u8> {
    let mut rss = template(site, channel);
    rss.set_items(channel.entries.iter().map(item).collect::<Vec<Item>>());
    let out = document(&rss, super::size_hint(channel));
    // The items hold a copy of every content: free them before the pass
    // below makes its copy of the document.
    drop(rss);
    finish_xml(hex_references(out))
}

/// The channel of `channel` with no items: what [`super::stream`] writes
/// around them.
pub(super) fn template(site: &Site, channel: &Channel) -> rss::Channel {
    let config = &site.config;
    let mut links = Vec::new();
    if let Some(url) = &channel.rss_url {
        links.push(Link {
            rel: "self".into(),
            href: url.clone(),
            mime_type: Some("application/rss+xml".into()),
            ..Link::default()
        });
    }
    if let Some(hub) = &config.feeds.hub {
        links.push(Link {
            rel: "hub".into(),
            href: hub.to_string(),
            ..Link::default()
        });
    }
    let mut namespaces = BTreeMap::new();
    namespaces.insert("atom".to_owned(), "http://www.w3.org/2005/Atom".to_owned());
    namespaces.insert(
        "content".to_owned(),
        "http://purl.org/rss/1.0/modules/content/".to_owned(),
    );
    namespaces.insert(
        "dc".to_owned(),
        "http://purl.org/dc/elements/1.1/".to_owned(),
    );
    if channel
        .entries
        .iter()
        .any(|e| e.article.hero_image.is_some())
    {
        namespaces.insert("media".to_owned(), MEDIA_NS.to_owned());
    }
    let date = rfc822(channel.updated);
    ChannelBuilder::default()
        .title(channel.title.clone())
        .link(channel.home.clone())
        .description(escape_html(&non_empty(
            &channel.description,
            &channel.title,
        )))
        .language(Some(config.site.language.clone()))
        .copyright(
            config
                .site
                .copyright
                .as_deref()
                .map(crate::text::single_line),
        )
        .generator(Some(format!("pressroom {}", crate::VERSION)))
        .docs(Some(
            "https://www.rssboard.org/rss-specification".to_owned(),
        ))
        .pub_date(Some(date.clone()))
        .last_build_date(Some(date))
        .image(config.site.logo.as_deref().map(|logo| {
            // The W3C validator wants the image's title and link to match
            // the channel's.
            ImageBuilder::default()
                .url(config.site_url(logo))
                .title(channel.title.clone())
                .link(channel.home.clone())
                .build()
        }))
        .atom_ext(Some(AtomExtension { links }))
        .namespaces(namespaces)
        .build()
}

/// The document as the `rss` crate writes it, before the passes of
/// [`finish`].
pub(super) fn document(rss: &rss::Channel, size_hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint);
    // Writing to a Vec cannot fail.
    let _ = rss.pretty_write_to(&mut out, b' ', 2);
    out
}

/// The passes over a written document, or any piece of one cut outside
/// markup and CDATA sections (without the final line break, which
/// [`finish_xml`] adds to a whole document).
pub(super) fn finish_piece(piece: Vec<u8>) -> Vec<u8> {
    super::clean_xml(hex_references(piece))
}

pub(super) fn item(entry: &Entry) -> Item {
    let a = entry.article;
    let mut extensions = ExtensionMap::default();
    if let Some(image) = &a.hero_image {
        let mut media = BTreeMap::new();
        let mut attrs = BTreeMap::new();
        attrs.insert("url".to_owned(), image.clone());
        attrs.insert("medium".to_owned(), "image".to_owned());
        attrs.insert("type".to_owned(), image_type(image).to_owned());
        let mut thumb_attrs = BTreeMap::new();
        thumb_attrs.insert("url".to_owned(), image.clone());
        media.insert(
            "content".to_owned(),
            vec![Extension {
                name: "media:content".into(),
                attrs,
                ..Extension::default()
            }],
        );
        media.insert(
            "thumbnail".to_owned(),
            vec![Extension {
                name: "media:thumbnail".into(),
                attrs: thumb_attrs,
                ..Extension::default()
            }],
        );
        extensions.insert("media".to_owned(), media);
    }
    ItemBuilder::default()
        .title(Some(a.title.clone()))
        .link(Some(a.url.to_string()))
        .description(entry.summary.as_deref().map(escape_html))
        .guid(Some(
            GuidBuilder::default()
                .value(a.id.clone())
                .permalink(false)
                .build(),
        ))
        .pub_date(Some(rfc822(a.publish_date)))
        .categories(
            a.tags
                .iter()
                .map(|t| CategoryBuilder::default().name(t.clone()).build())
                .collect::<Vec<_>>(),
        )
        .content(entry.content.as_deref().map(str::to_owned))
        .dublin_core_ext(Some(DublinCoreExtension {
            creators: vec![a.author.clone()],
            ..Default::default()
        }))
        .extensions(extensions)
        .build()
}

fn non_empty(value: &str, fallback: &str) -> String {
    if value.trim().is_empty() {
        fallback.to_owned()
    } else {
        value.to_owned()
    }
}

/// RFC 822 date with a two-digit day and a numeric offset.
fn rfc822(date: chrono::DateTime<chrono::FixedOffset>) -> String {
    date.format("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// Rewrites `&amp;`, `&lt;` and `&gt;` outside CDATA sections as the
/// equivalent hexadecimal character references. The document means the
/// same to every XML parser; the W3C validator asks for this form in RSS
/// plain-text elements (its `CharacterData` warning), since RSS readers
/// disagree on whether such text is HTML.
///
/// Done in place, from the back, so a feed of every article is never held
/// twice.
fn hex_references(mut xml: Vec<u8>) -> Vec<u8> {
    const REFERENCES: [(&[u8], &[u8]); 3] = [
        (b"&amp;", b"&#x26;"),
        (b"&lt;", b"&#x3C;"),
        (b"&gt;", b"&#x3E;"),
    ];
    let Ok(text) = std::str::from_utf8(&xml) else {
        return xml;
    };
    // (offset, which reference) of every replacement, in order.
    let mut hits: Vec<(usize, usize)> = Vec::new();
    let mut offset = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (plain, cdata) = match rest.find("<![CDATA[") {
            Some(start) => {
                let end = rest[start..]
                    .find("]]>")
                    .map_or(rest.len(), |e| start + e + 3);
                (&rest[..start], &rest[start..end])
            }
            None => (rest, ""),
        };
        let mut at = 0;
        while let Some(found) = plain[at..].find('&') {
            let start = at + found;
            let tail = &plain.as_bytes()[start..];
            match REFERENCES
                .iter()
                .position(|(from, _)| tail.starts_with(from))
            {
                Some(which) => {
                    hits.push((offset + start, which));
                    at = start + REFERENCES[which].0.len();
                }
                None => at = start + 1,
            }
        }
        offset += plain.len() + cdata.len();
        rest = &rest[plain.len() + cdata.len()..];
    }
    let growth: usize = hits
        .iter()
        .map(|&(_, w)| REFERENCES[w].1.len() - REFERENCES[w].0.len())
        .sum();
    let mut end = xml.len();
    xml.resize(end + growth, 0);
    let mut write = xml.len();
    for &(start, which) in hits.iter().rev() {
        let (from, to) = REFERENCES[which];
        let tail = start + from.len()..end;
        write -= tail.len();
        xml.copy_within(tail, write);
        write -= to.len();
        xml[write..write + to.len()].copy_from_slice(to);
        end = start;
    }
    xml
}

/// RSS readers read `<description>` as HTML; a plain-text summary must
/// arrive as the text it is (a `<br>` in prose is not a line break).
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_references_replace_entities_outside_cdata_only() {
        let xml = "<a>&amp;lt; &lt;b&gt; &amp; &#38; &quot;</a><![CDATA[&amp; &lt;]]>&gt;&";
        assert_eq!(
            String::from_utf8(hex_references(xml.as_bytes().to_vec())).unwrap(),
            "<a>&#x26;lt; &#x3C;b&#x3E; &#x26; &#38; &quot;</a><![CDATA[&amp; &lt;]]>&#x3E;&"
        );
    }
}
