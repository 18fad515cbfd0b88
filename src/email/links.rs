//! Links inside emails: the call to action's first link (read from its
//! Markdown, not from HTML text), and campaign (`utm_*`) parameters on
//! links back to the site. HTML is rewritten with a tokenizer (lol_html).

use std::cell::RefCell;
use std::collections::BTreeSet;

use lol_html::{element, rewrite_str, RewriteStrSettings};
use pulldown_cmark::{Event, Parser, Tag, TagEnd};
use url::Url;

use crate::config::email::Utm;

/// The parts of a call to action a template needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtaParts {
    /// The CTA as plain text (link text kept, URLs dropped).
    pub text: String,
    /// The first link's absolute URL, if the CTA has one.
    pub url: Option<String>,
    /// The first link's text, if the CTA has a link.
    pub label: Option<String>,
}

/// Splits inline CTA Markdown into text, first link and its label. Links
/// are made absolute against `base`; `javascript:` and the like are
/// ignored.
pub fn cta_parts(markdown: &str, base: &Url) -> CtaParts {
    let mut text = String::new();
    let mut url = None;
    let mut label: Option<String> = None;
    let mut in_first_link = false;
    for event in Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_SMART_PUNCTUATION) {
        match event {
            Event::Start(Tag::Link { dest_url, .. }) if url.is_none() => {
                if let Some(abs) = crate::content::html::absolute(&dest_url, base) {
                    url = Some(abs);
                    label = Some(String::new());
                    in_first_link = true;
                }
            }
            Event::End(TagEnd::Link) => in_first_link = false,
            Event::Text(t) | Event::Code(t) => {
                text.push_str(&t);
                if in_first_link {
                    if let Some(label) = label.as_mut() {
                        label.push_str(&t);
                    }
                }
            }
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            _ => {}
        }
    }
    let label = label
        .map(|l| crate::text::single_line(&l))
        .filter(|l| !l.is_empty());
    CtaParts {
        text: crate::text::single_line(&text),
        url: if label.is_some() { url } else { None },
        label,
    }
}

/// Campaign parameters for one issue.
#[derive(Debug, Clone)]
pub struct Campaign<'a> {
    pub host: &'a str,
    pub utm: &'a Utm,
    pub campaign: &'a str,
}

impl Campaign<'_> {
    /// `url` with `utm_*` added when it points at the site's host; other
    /// URLs, and parameters already present, are left as they are.
    pub fn tag(&self, url: &str) -> String {
        let Ok(mut parsed) = Url::parse(url) else {
            return url.to_owned();
        };
        let same_host = matches!(parsed.scheme(), "http" | "https")
            && parsed
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(self.host));
        if !same_host {
            return url.to_owned();
        }
        let present: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let wanted = [
            ("utm_source", self.utm.source.as_str()),
            ("utm_medium", self.utm.medium.as_str()),
            ("utm_campaign", self.campaign),
        ];
        let missing: Vec<_> = wanted
            .into_iter()
            .filter(|(k, v)| !v.is_empty() && !present.iter().any(|p| p == k))
            .collect();
        if missing.is_empty() {
            return url.to_owned();
        }
        {
            let mut pairs = parsed.query_pairs_mut();
            for (k, v) in missing {
                pairs.append_pair(k, v);
            }
        }
        parsed.into()
    }

    /// Tags every `<a href>` in an HTML fragment.
    pub fn tag_html(&self, html: &str) -> String {
        let settings = RewriteStrSettings {
            element_content_handlers: vec![element!("a[href]", |el| {
                if let Some(raw) = el.get_attribute("href") {
                    let href = decode_entities(&raw);
                    let tagged = self.tag(&href);
                    if tagged != href {
                        el.set_attribute("href", &escape_attribute(&tagged))?;
                    }
                }
                Ok(())
            })],
            ..RewriteStrSettings::new()
        };
        rewrite_str(html, settings).unwrap_or_else(|_| html.to_owned())
    }
}

/// Decodes the character references an HTML serializer writes (`&amp;`,
/// `&lt;`, `&gt;`, `&quot;`, `&#39;`, numeric ones); others are kept.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let code =
                        if let Some(hex) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
                            u32::from_str_radix(hex, 16).ok()
                        } else {
                            name.strip_prefix('#').and_then(|d| d.parse().ok())
                        };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes a value for a double-quoted HTML attribute.
fn escape_attribute(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

/// Every `href` and `src` value in an HTML fragment.
pub fn collect_urls(html: &str) -> BTreeSet<String> {
    let urls = RefCell::new(BTreeSet::new());
    let settings = RewriteStrSettings {
        element_content_handlers: vec![element!("[href], [src]", |el| {
            for attr in ["href", "src"] {
                if let Some(value) = el.get_attribute(attr) {
                    urls.borrow_mut().insert(decode_entities(value.trim()));
                }
            }
            Ok(())
        })],
        ..RewriteStrSettings::new()
    };
    let _ = rewrite_str(html, settings);
    urls.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://dispatch.example.com/2025/post/").unwrap()
    }

    #[test]
    fn cta_with_a_link() {
        let parts = cta_parts(
            "Want the checklist? [Download *the* checklist](../../checklist/) & tell us.",
            &base(),
        );
        assert_eq!(
            parts.text,
            "Want the checklist? Download the checklist & tell us."
        );
        assert_eq!(
            parts.url.as_deref(),
            Some("https://dispatch.example.com/checklist/")
        );
        assert_eq!(parts.label.as_deref(), Some("Download the checklist"));
    }

    #[test]
    fn cta_without_a_usable_link() {
        let parts = cta_parts("Reply and tell us\nwhat you think.", &base());
        assert_eq!(parts.text, "Reply and tell us what you think.");
        assert_eq!(parts.url, None);
        assert_eq!(parts.label, None);
        let parts = cta_parts("[Click](javascript:alert(1)) me", &base());
        assert_eq!(parts.url, None);
        assert_eq!(parts.label, None);
    }

    #[test]
    fn utm_only_on_the_sites_links_and_keeps_query_and_fragment() {
        let utm = Utm {
            source: "newsletter".into(),
            medium: "email".into(),
            campaign: None,
        };
        let c = Campaign {
            host: "dispatch.example.com",
            utm: &utm,
            campaign: "2025-03-09-abc",
        };
        assert_eq!(
            c.tag("https://dispatch.example.com/a/?x=1#notes"),
            "https://dispatch.example.com/a/?x=1&utm_source=newsletter&utm_medium=email&utm_campaign=2025-03-09-abc#notes"
        );
        assert_eq!(
            c.tag("https://dispatch.example.com/?utm_source=rss"),
            "https://dispatch.example.com/?utm_source=rss&utm_medium=email&utm_campaign=2025-03-09-abc"
        );
        assert_eq!(c.tag("https://other.example/a"), "https://other.example/a");
        assert_eq!(c.tag("mailto:x@example.com"), "mailto:x@example.com");
        let html = c.tag_html(
            r#"<p><a href="https://dispatch.example.com/x">x</a> <a href="https://rust-lang.org/">r</a></p>"#,
        );
        assert!(html.contains(r#"href="https://dispatch.example.com/x?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=2025-03-09-abc""#), "{html}");
        assert!(html.contains(r#"href="https://rust-lang.org/""#), "{html}");
        let html = c.tag_html(r#"<a href="https://dispatch.example.com/?a=1&amp;b=2">x</a>"#);
        assert!(
            html.contains(r#"href="https://dispatch.example.com/?a=1&amp;b=2&amp;utm_source"#),
            "{html}"
        );
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(
            decode_entities("a&amp;b &lt;c&gt; &quot;&#39;&#x41; &bogus; & &amp"),
            "a&b <c> \"'A &bogus; & &amp"
        );
    }
}
