//! The structure rules of RFC 4287 (Atom) and of RSS 2.0 as the W3C feed
//! validator applies them, checked on a namespace-resolved element tree
//! built with quick-xml (never by searching the text).

use std::collections::BTreeSet;
use std::path::Path;

use chrono::DateTime;
use quick_xml::encoding::Decoder;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::common::{relative, TestSite};

const ATOM: &str = "http://www.w3.org/2005/Atom";
const CONTENT: &str = "http://purl.org/rss/1.0/modules/content/";
const DC: &str = "http://purl.org/dc/elements/1.1/";

/// One XML element: namespace, local name, attributes by qualified name
/// (`xml:base`, `isPermaLink`), children, and its text (CDATA included).
#[derive(Debug, Default)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Children in namespace `ns` (None: no namespace) named `name`.
    pub fn all<'a>(
        &'a self,
        ns: Option<&'a str>,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns.as_deref() == ns && c.name == name)
    }

    pub fn first(&self, ns: Option<&str>, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.ns.as_deref() == ns && c.name == name)
    }

    /// Position among the children, for ordering rules.
    pub fn position(&self, ns: Option<&str>, name: &str) -> Option<usize> {
        self.children
            .iter()
            .position(|c| c.ns.as_deref() == ns && c.name == name)
    }
}

/// The namespace an element resolved to; an undeclared prefix is an error.
fn namespace(ns: ResolveResult, start: &BytesStart) -> Option<String> {
    match ns {
        ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => None,
        ResolveResult::Unknown(prefix) => panic!(
            "element <{}> uses the undeclared prefix `{}`",
            String::from_utf8_lossy(start.name().as_ref()),
            String::from_utf8_lossy(&prefix)
        ),
    }
}

fn element(decoder: Decoder, ns: Option<String>, start: &BytesStart) -> Element {
    let attrs = start
        .attributes()
        .map(|a| {
            let a = a.expect("well-formed attribute");
            let value = a
                .decode_and_unescape_value(decoder)
                .expect("attribute value")
                .into_owned();
            (String::from_utf8_lossy(a.key.as_ref()).into_owned(), value)
        })
        .collect();
    Element {
        ns,
        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        attrs,
        ..Element::default()
    }
}

/// Parses a whole document into its root element; panics with the
/// position on any well-formedness error.
pub fn parse(name: &str, xml: &str) -> Element {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let at = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event()
            .unwrap_or_else(|e| panic!("{name}: not well-formed XML near byte {at}: {e}"));
        match event {
            Event::Start(start) => {
                let ns = namespace(ns, &start);
                stack.push(element(reader.decoder(), ns, &start));
            }
            Event::Empty(start) => {
                let ns = namespace(ns, &start);
                let el = element(reader.decoder(), ns, &start);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().expect("balanced tags");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(text) => {
                let text = text
                    .unescape()
                    .unwrap_or_else(|e| panic!("{name}: bad text near byte {at}: {e}"));
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&text);
                }
            }
            Event::CData(data) => {
                let text = String::from_utf8(data.into_inner().into_owned())
                    .unwrap_or_else(|e| panic!("{name}: CDATA is not UTF-8: {e}"));
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "{name}: unclosed elements");
    root.unwrap_or_else(|| panic!("{name}: no root element"))
}

/// Problems of one Atom document under RFC 4287 and the rules of DESIGN.md.
fn atom_problems(name: &str, feed: &Element) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, message: String| {
        if !ok {
            problems.push(format!("{name}: {message}"));
        }
    };
    let atom = Some(ATOM);
    check(
        feed.ns.as_deref() == atom && feed.name == "feed",
        format!("root is <{}> in {:?}", feed.name, feed.ns),
    );
    let is_date = |el: Option<&Element>| {
        el.is_some_and(|e| DateTime::parse_from_rfc3339(e.text.trim()).is_ok())
    };
    for key in ["id", "title", "updated"] {
        check(
            feed.all(atom, key).count() == 1,
            format!("feed needs exactly one <{key}>"),
        );
    }
    check(
        is_date(feed.first(atom, "updated")),
        "feed <updated> is not RFC 3339".into(),
    );
    let self_links: Vec<&Element> = feed
        .all(atom, "link")
        .filter(|l| l.attr("rel") == Some("self"))
        .collect();
    check(
        self_links.len() == 1
            && self_links[0]
                .attr("href")
                .is_some_and(|h| h.starts_with("https://") && h.ends_with(".xml")),
        format!("feed needs one absolute link rel=\"self\", has {self_links:?}"),
    );
    let feed_has_author = feed
        .first(atom, "author")
        .and_then(|a| a.first(atom, "name"))
        .is_some_and(|n| !n.text.trim().is_empty());
    let mut ids = BTreeSet::new();
    let entries: Vec<&Element> = feed.all(atom, "entry").collect();
    for (i, entry) in entries.iter().enumerate() {
        let id = entry.first(atom, "id").map(|e| e.text.trim().to_owned());
        let label = format!("entry {} ({})", i + 1, id.as_deref().unwrap_or("no id"));
        for key in ["id", "title", "updated"] {
            check(
                entry.all(atom, key).count() == 1,
                format!("{label}: needs exactly one <{key}>"),
            );
        }
        if let Some(id) = &id {
            check(
                url::Url::parse(id).is_ok() && !id.contains(char::is_whitespace),
                format!("{label}: id is not an absolute IRI"),
            );
            check(ids.insert(id.clone()), format!("{label}: duplicate id"));
        }
        check(
            is_date(entry.first(atom, "updated")),
            format!("{label}: <updated> is not RFC 3339"),
        );
        if entry.first(atom, "published").is_some() {
            check(
                is_date(entry.first(atom, "published")),
                format!("{label}: <published> is not RFC 3339"),
            );
        }
        let entry_author = entry.all(atom, "author").any(|a| {
            a.first(atom, "name")
                .is_some_and(|n| !n.text.trim().is_empty())
        });
        check(
            entry_author || feed_has_author,
            format!("{label}: no author (and none on the feed)"),
        );
        for author in entry.all(atom, "author") {
            check(
                author
                    .first(atom, "name")
                    .is_some_and(|n| !n.text.contains('@')),
                format!("{label}: an e-mail address in <name>"),
            );
        }
        check(
            entry.all(atom, "link").any(|l| {
                matches!(l.attr("rel"), None | Some("alternate"))
                    && l.attr("href").is_some_and(|h| h.starts_with("https://"))
            }),
            format!("{label}: no absolute link rel=\"alternate\""),
        );
        for content in entry.all(atom, "content") {
            check(
                content.attr("type") == Some("html"),
                format!(
                    "{label}: <content type={:?}>, expected type=\"html\"",
                    content.attr("type")
                ),
            );
            check(
                content.children.is_empty(),
                format!("{label}: html content must be escaped text, not child elements"),
            );
        }
    }
    problems
}

/// Collects the namespace of `el` and of every element below it.
fn namespaces_used(el: &Element, out: &mut BTreeSet<String>) {
    if let Some(ns) = &el.ns {
        out.insert(ns.clone());
    }
    for child in &el.children {
        namespaces_used(child, out);
    }
}

/// Problems of one RSS 2.0 document.
fn rss_problems(name: &str, rss: &Element) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, message: String| {
        if !ok {
            problems.push(format!("{name}: {message}"));
        }
    };
    check(
        rss.ns.is_none() && rss.name == "rss" && rss.attr("version") == Some("2.0"),
        format!("root is <{}> version {:?}", rss.name, rss.attr("version")),
    );
    // Every namespace an element uses is declared on <rss> itself.
    let mut used = BTreeSet::new();
    namespaces_used(rss, &mut used);
    let declared: BTreeSet<&str> = rss
        .attrs
        .iter()
        .filter(|(name, _)| name.starts_with("xmlns:"))
        .map(|(_, uri)| uri.as_str())
        .collect();
    for uri in &used {
        check(
            declared.contains(uri.as_str()),
            format!("namespace {uri} is used but not declared on <rss>"),
        );
    }
    for uri in [ATOM, CONTENT, DC] {
        check(used.contains(uri), format!("namespace {uri} is not used"));
    }
    let Some(channel) = rss.first(None, "channel") else {
        problems.push(format!("{name}: no <channel>"));
        return problems;
    };
    let mut check = |ok: bool, message: String| {
        if !ok {
            problems.push(format!("{name}: {message}"));
        }
    };
    for key in ["title", "link", "description"] {
        check(
            channel.all(None, key).count() == 1,
            format!("channel needs exactly one <{key}>"),
        );
    }
    check(
        channel
            .all(Some(ATOM), "link")
            .any(|l| l.attr("rel") == Some("self")),
        "channel has no atom:link rel=\"self\"".into(),
    );
    let is_rfc822 = |el: Option<&Element>| {
        el.is_some_and(|e| {
            let text = e.text.trim();
            // A numeric offset (+0100), never a zone name such as GMT.
            let numeric = text
                .rsplit(' ')
                .next()
                .is_some_and(|z| z.len() == 5 && z.starts_with(['+', '-']));
            numeric && DateTime::parse_from_rfc2822(text).is_ok()
        })
    };
    for key in ["pubDate", "lastBuildDate"] {
        if channel.first(None, key).is_some() {
            check(
                is_rfc822(channel.first(None, key)),
                format!("channel <{key}> is not RFC 822 with a numeric offset"),
            );
        }
    }
    let mut guids = BTreeSet::new();
    for (i, item) in channel.all(None, "item").enumerate() {
        let label = format!(
            "item {} ({})",
            i + 1,
            item.first(None, "title")
                .map_or("no title", |t| t.text.as_str())
        );
        let guid = item.first(None, "guid");
        check(
            guid.is_some_and(|g| g.attr("isPermaLink") == Some("false")),
            format!("{label}: needs <guid isPermaLink=\"false\">"),
        );
        if let Some(guid) = guid {
            check(
                guids.insert(guid.text.trim().to_owned()),
                format!("{label}: duplicate guid"),
            );
        }
        check(
            is_rfc822(item.first(None, "pubDate")),
            format!("{label}: <pubDate> is not RFC 822 with a numeric offset"),
        );
        check(
            item.first(None, "author").is_none(),
            format!("{label}: a bare name in <author>; use dc:creator"),
        );
        check(
            item.first(Some(DC), "creator")
                .is_some_and(|c| !c.text.trim().is_empty()),
            format!("{label}: no dc:creator"),
        );
        let description = item.position(None, "description");
        let encoded = item.position(Some(CONTENT), "encoded");
        check(
            match (description, encoded) {
                (Some(d), Some(e)) => d < e,
                (_, None) => true,
                (None, Some(_)) => false,
            },
            format!(
                "{label}: <description> (at {description:?}) must come before <content:encoded> (at {encoded:?})"
            ),
        );
        for enclosure in item.all(None, "enclosure") {
            check(
                enclosure.attr("length").is_some() && enclosure.attr("type").is_some(),
                format!("{label}: <enclosure> without length and type"),
            );
        }
    }
    problems
}

fn feeds(site: &TestSite) -> Vec<(String, String)> {
    site.public_files(".xml")
        .into_iter()
        .map(|p| (relative(site.root(), &p), crate::common::read(&p)))
        .collect()
}

fn file_name(name: &str) -> &str {
    Path::new(name)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(name)
}

#[test]
fn atom_feeds_follow_rfc_4287() {
    let site = TestSite::sample();
    site.build();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (name, xml) in feeds(&site) {
        if file_name(&name) == "atom.xml" {
            let root = parse(&name, &xml);
            problems.extend(atom_problems(&name, &root));
            checked += 1;
        }
    }
    assert!(checked > 1, "expected the main and tag Atom feeds");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rss_feeds_follow_the_rss_2_rules() {
    let site = TestSite::sample();
    site.build();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (name, xml) in feeds(&site) {
        if file_name(&name) == "rss.xml" {
            let root = parse(&name, &xml);
            problems.extend(rss_problems(&name, &root));
            checked += 1;
        }
    }
    assert!(checked > 1, "expected the main and tag RSS feeds");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_itself_catches_broken_feeds() {
    // The rules above must be able to fail: feed them bad documents.
    let atom = r#"<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id>
<updated>yesterday</updated>
<entry><id>urn:a</id><title>a</title><updated>2025-01-01T00:00:00Z</updated>
<content type="text">x</content></entry>
<entry><id>urn:a</id><title>b</title><updated>2025-01-01T00:00:00Z</updated></entry>
</feed>"#;
    let problems = atom_problems("bad.xml", &parse("bad.xml", atom)).join("\n");
    for expected in [
        "feed <updated> is not RFC 3339",
        "link rel=\"self\"",
        "no author",
        "type=\"html\"",
        "duplicate id",
        "no absolute link rel=\"alternate\"",
    ] {
        assert!(
            problems.contains(expected),
            "missed `{expected}` in:\n{problems}"
        );
    }
    let rss = r#"<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>t</title><link>https://x.example/</link><description>d</description>
<item><title>a</title><guid>g</guid><pubDate>Tue, 17 Nov 2026 00:00:00 GMT</pubDate>
<content:encoded>x</content:encoded><description>late</description><author>Jane</author>
<dc:subject xmlns:dc="http://purl.org/dc/elements/1.1/">s</dc:subject></item>
</channel></rss>"#;
    let problems = rss_problems("bad.xml", &parse("bad.xml", rss)).join("\n");
    for expected in [
        "atom:link rel=\"self\"",
        "isPermaLink",
        "numeric offset",
        "must come before",
        "bare name",
        "dc:creator",
        "used but not declared on <rss>",
    ] {
        assert!(
            problems.contains(expected),
            "missed `{expected}` in:\n{problems}"
        );
    }
}
