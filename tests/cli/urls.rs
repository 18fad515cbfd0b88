//! Every URL inside every feed's HTML content is absolute (feed readers and
//! RSS-to-email services ignore `xml:base`), and nothing active survives.
//! The HTML is tokenized with lol_html (the same kind of parser a browser
//! uses), so text that merely looks like `src="x"` in prose is not mistaken
//! for an attribute.

use std::cell::RefCell;

use lol_html::{element, rewrite_str, RewriteStrSettings};
use serde_json::Value;
use url::Url;

use crate::common::{read, relative, TestSite};
use crate::source;
use crate::structure::parse;

/// One URL-bearing attribute found in content HTML.
#[derive(Debug, Clone)]
struct Reference {
    element: String,
    attribute: String,
    url: String,
}

/// Minimal entity decoding for attribute values (lol_html keeps entities).
fn decode_entities(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every URL in `href`, `src`, `srcset` (each candidate), `poster`, `cite`,
/// `action`, `background` and `longdesc` attributes, plus every attribute
/// name, for the security checks.
fn scan(html: &str) -> (Vec<Reference>, Vec<(String, String)>) {
    let references = RefCell::new(Vec::new());
    let attributes = RefCell::new(Vec::new());
    let settings = RewriteStrSettings {
        element_content_handlers: vec![element!("*", |el| {
            let tag = el.tag_name();
            for attr in el.attributes() {
                let name = attr.name();
                let value = decode_entities(&attr.value());
                attributes.borrow_mut().push((tag.clone(), name.clone()));
                let urls: Vec<String> = match name.as_str() {
                    "href" | "src" | "poster" | "cite" | "action" | "background" | "longdesc" => {
                        vec![value.trim().to_owned()]
                    }
                    "srcset" => value
                        .split(',')
                        .filter_map(|c| c.split_whitespace().next())
                        .map(str::to_owned)
                        .collect(),
                    _ => Vec::new(),
                };
                for url in urls {
                    references.borrow_mut().push(Reference {
                        element: tag.clone(),
                        attribute: name.clone(),
                        url,
                    });
                }
            }
            Ok(())
        })],
        ..RewriteStrSettings::new()
    };
    rewrite_str(html, settings).expect("lol_html tokenizes the content");
    (references.into_inner(), attributes.into_inner())
}

/// The raw `srcset` values in some HTML.
fn srcset_values(html: &str) -> Vec<String> {
    let found = RefCell::new(Vec::new());
    let settings = RewriteStrSettings {
        element_content_handlers: vec![element!("[srcset]", |el| {
            if let Some(v) = el.get_attribute("srcset") {
                found.borrow_mut().push(decode_entities(&v));
            }
            Ok(())
        })],
        ..RewriteStrSettings::new()
    };
    rewrite_str(html, settings).expect("lol_html tokenizes the content");
    found.into_inner()
}

fn is_absolute(url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| match u.scheme() {
        "http" | "https" => u.host_str().is_some(),
        "mailto" => true,
        _ => false,
    })
}

/// (feed file, entry id, content HTML) for every entry of every feed.
fn contents(site: &TestSite) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for path in site.public_files("") {
        let name = relative(site.root(), &path);
        let text = read(&path);
        if name.ends_with("rss.xml") {
            let rss = parse(&name, &text);
            let channel = rss.first(None, "channel").expect("channel");
            for item in channel.all(None, "item") {
                let id = item
                    .first(None, "guid")
                    .map(|g| g.text.clone())
                    .unwrap_or_default();
                for c in item.all(Some("http://purl.org/rss/1.0/modules/content/"), "encoded") {
                    out.push((name.clone(), id.clone(), c.text.clone()));
                }
            }
        } else if name.ends_with("atom.xml") {
            let atom_ns = Some("http://www.w3.org/2005/Atom");
            let feed = parse(&name, &text);
            for entry in feed.all(atom_ns, "entry") {
                let id = entry
                    .first(atom_ns, "id")
                    .map(|g| g.text.clone())
                    .unwrap_or_default();
                for c in entry.all(atom_ns, "content") {
                    out.push((name.clone(), id.clone(), c.text.clone()));
                }
            }
        } else if name.ends_with(".json") {
            let feed: Value = serde_json::from_str(&text).expect("JSON");
            for item in feed["items"].as_array().into_iter().flatten() {
                if let Some(html) = item["content_html"].as_str() {
                    let id = item["id"].as_str().unwrap_or_default().to_owned();
                    out.push((name.clone(), id, html.to_owned()));
                }
            }
        }
    }
    out
}

#[test]
fn every_url_in_feed_content_is_absolute_and_nothing_is_active() {
    let site = TestSite::sample();
    site.build();
    let all = contents(&site);
    assert!(!all.is_empty(), "no content found in any feed");
    let mut problems = Vec::new();
    let mut count = 0;
    for (file, id, html) in &all {
        let (references, attributes) = scan(html);
        count += references.len();
        for r in &references {
            if !is_absolute(&r.url) {
                problems.push(format!(
                    "{file} {id}: <{} {}=\"{}\"> is not absolute",
                    r.element, r.attribute, r.url
                ));
            }
            if r.url.trim().to_ascii_lowercase().starts_with("javascript:") {
                problems.push(format!("{file} {id}: javascript: URL {}", r.url));
            }
        }
        for (tag, name) in &attributes {
            if tag == "script" || name.starts_with("on") {
                problems.push(format!("{file} {id}: active content <{tag} {name}>"));
            }
        }
    }
    assert!(
        count > 20,
        "only {count} URLs found; is the scanner broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn relative_links_in_an_article_come_out_absolute_against_its_url() {
    let site = TestSite::sample();
    site.build();
    let article = source::published(site.root())
        .into_iter()
        .find(|a| a.source == "content/guides/relative-links.md")
        .expect("the sample's relative-links article is published");
    let base = Url::parse(&article.url).expect("article URL");
    // Every relative reference in the article as written: its Markdown
    // rendered by a plain CommonMark renderer, then tokenized.
    let mut source_html = String::new();
    pulldown_cmark::html::push_html(&mut source_html, pulldown_cmark::Parser::new(&article.body));
    let (written, _) = scan(&source_html);
    let written: Vec<Reference> = written
        .into_iter()
        .filter(|r| !is_absolute(&r.url))
        .collect();
    for (element, attribute) in [("a", "href"), ("img", "src"), ("img", "srcset")] {
        assert!(
            written
                .iter()
                .any(|r| r.element == element && r.attribute == attribute),
            "the sample article no longer has a relative <{element} {attribute}>: {written:#?}"
        );
    }
    assert!(
        written.iter().any(|r| r.url.starts_with('#')),
        "the sample article no longer has a fragment-only link"
    );
    let entries: Vec<_> = contents(&site)
        .into_iter()
        .filter(|(_, id, _)| *id == article.id)
        .collect();
    // Main feed and its three tag feeds (email, feeds, html), three formats each.
    let feeds: Vec<&str> = entries.iter().map(|(f, _, _)| f.as_str()).collect();
    assert_eq!(entries.len(), 3 * (1 + article.tags.len()), "{feeds:?}");
    for (file, _, html) in &entries {
        let (references, _) = scan(html);
        for w in &written {
            let wanted = base.join(&w.url).expect("joins").to_string();
            assert!(
                references.iter().any(|r| r.element == w.element
                    && r.attribute == w.attribute
                    && r.url == wanted),
                "{file}: <{} {}=\"{}\"> should be `{wanted}`; found {references:#?}",
                w.element,
                w.attribute,
                w.url
            );
        }
        // srcset keeps each candidate's descriptor.
        let srcsets = srcset_values(html);
        assert!(
            !srcsets.is_empty()
                && srcsets
                    .iter()
                    .all(|s| s.split(',').all(|c| c.split_whitespace().count() == 2)),
            "{file}: srcset descriptors lost: {srcsets:?}"
        );
        // The prose that shows `src="images/open-rates.png"` in code is
        // text, and stays as written.
        assert!(
            html.contains("<code>src=\"images/open-rates.png\"</code>")
                || html.contains("<code>src=&quot;images/open-rates.png&quot;</code>"),
            "{file}: the code sample was rewritten:\n{html}"
        );
    }
}
