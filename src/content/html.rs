//! Rendering Markdown to HTML that is safe to publish anywhere: every
//! relative `href`, `src`, `srcset` and `poster` made absolute against the
//! article's URL, and everything a feed validator calls a security risk
//! (scripts, embedded objects, `on*` handlers, `javascript:` URLs) removed.
//! The pass is an HTML tokenizer (lol_html), not a pattern over text.

use lol_html::html_content::Element;
use lol_html::{element, rewrite_str, RewriteStrSettings};
use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};
use url::Url;

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_SMART_PUNCTUATION
}

/// Markdown to HTML, made absolute against `base` and sanitized.
pub fn render_markdown(markdown: &str, base: &Url) -> String {
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(markdown, options()));
    publishable(&out, base)
}

/// Inline Markdown (a call to action) to HTML without the surrounding
/// paragraph, made absolute against `base` and sanitized.
pub fn render_inline(markdown: &str, base: &Url) -> String {
    let events = Parser::new_ext(markdown, options()).filter(|event| {
        !matches!(
            event,
            Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph)
        )
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    publishable(out.trim_end(), base)
}

/// Elements whose whole content is removed.
const REMOVED_ELEMENTS: &str =
    "script, noscript, style, iframe, frame, frameset, object, embed, applet, meta, link, base, form";

/// Makes URLs absolute and removes active content.
pub fn publishable(html: &str, base: &Url) -> String {
    let settings = RewriteStrSettings {
        element_content_handlers: vec![
            element!(REMOVED_ELEMENTS, |el| {
                el.remove();
                Ok(())
            }),
            element!("*", |el| {
                clean_element(el, base);
                Ok(())
            }),
        ],
        ..RewriteStrSettings::new()
    };
    // lol_html only fails on its memory limit or a handler error; neither
    // applies here, but never lose content over it.
    rewrite_str(html, settings).unwrap_or_else(|_| html.to_owned())
}

fn clean_element(el: &mut Element, base: &Url) {
    let names: Vec<String> = el.attributes().iter().map(|a| a.name()).collect();
    for name in names {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("on") {
            el.remove_attribute(&name);
            continue;
        }
        let Some(value) = el.get_attribute(&name) else {
            continue;
        };
        match lower.as_str() {
            "href" | "src" | "poster" | "cite" | "action" | "background" | "longdesc" => {
                match absolute(&value, base) {
                    Some(url) => {
                        let _ = el.set_attribute(&name, &url);
                    }
                    None => el.remove_attribute(&name),
                }
            }
            "srcset" => {
                let _ = el.set_attribute(&name, &absolute_srcset(&value, base));
            }
            _ => {}
        }
    }
}

/// The absolute form of a URL reference, or None when it is active
/// content (`javascript:`, `vbscript:`, non-image `data:`).
pub fn absolute(reference: &str, base: &Url) -> Option<String> {
    let trimmed = reference.trim();
    let scheme_probe: String = trimmed
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    if scheme_probe.starts_with("javascript:") || scheme_probe.starts_with("vbscript:") {
        return None;
    }
    if scheme_probe.starts_with("data:") {
        return scheme_probe
            .starts_with("data:image/")
            .then(|| trimmed.to_owned());
    }
    match base.join(trimmed) {
        Ok(url) => Some(url.into()),
        Err(_) => Some(trimmed.to_owned()),
    }
}

/// Each candidate of a `srcset` made absolute; descriptors kept.
fn absolute_srcset(srcset: &str, base: &Url) -> String {
    let mut candidates = Vec::new();
    for candidate in srcset.split(',') {
        let candidate = candidate.trim();
        if candidate.is_empty() {
            continue;
        }
        let (url, descriptor) = match candidate.split_once(char::is_whitespace) {
            Some((u, d)) => (u, d.trim()),
            None => (candidate, ""),
        };
        let Some(url) = absolute(url, base) else {
            continue;
        };
        if descriptor.is_empty() {
            candidates.push(url);
        } else {
            candidates.push(format!("{url} {descriptor}"));
        }
    }
    candidates.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://example.com/posts/hello/").unwrap()
    }

    #[test]
    fn relative_links_and_images_become_absolute() {
        let html = render_markdown(
            "[up](../archive/) [root](/about/) [frag](#notes) [mail](mailto:a@example.com)\n\n![chart](img/chart.png)",
            &base(),
        );
        assert!(
            html.contains(r#"href="https://example.com/posts/archive/""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="https://example.com/about/""#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="https://example.com/posts/hello/#notes""#),
            "{html}"
        );
        assert!(html.contains(r#"href="mailto:a@example.com""#), "{html}");
        assert!(
            html.contains(r#"src="https://example.com/posts/hello/img/chart.png""#),
            "{html}"
        );
    }

    #[test]
    fn raw_html_srcset_is_rewritten() {
        let html = render_markdown(
            "<img src=\"a.svg\" srcset=\"a.svg 1x, /b@2x.svg 2x\" alt=\"A\">\n",
            &base(),
        );
        assert!(
            html.contains(r#"srcset="https://example.com/posts/hello/a.svg 1x, https://example.com/b@2x.svg 2x""#),
            "{html}"
        );
    }

    #[test]
    fn text_that_looks_like_a_url_is_left_alone() {
        let html = render_markdown("Write `src=\"x.png\"` and href=\"y\" in prose.", &base());
        assert!(html.contains("<code>src=\"x.png\"</code>"), "{html}");
        assert!(
            !html.contains("https://example.com/posts/hello/x.png"),
            "{html}"
        );
    }

    #[test]
    fn active_content_is_removed() {
        let html = render_markdown(
            "<script>alert(1)</script>\n\n<p onclick=\"x()\" title=\"t\">Hi <a href=\"javascript:alert(1)\">there</a> <a href=\" JaVa\tscript:x\">x</a></p>\n\n<iframe src=\"https://evil.example\"></iframe>",
            &base(),
        );
        assert!(!html.contains("script"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
        assert!(!html.contains("iframe"), "{html}");
        assert!(html.contains(r#"title="t""#), "{html}");
    }

    #[test]
    fn inline_cta_has_no_paragraph() {
        let html = render_inline("Read [the guide](guide/) & reply", &base());
        assert_eq!(
            html,
            r#"Read <a href="https://example.com/posts/hello/guide/">the guide</a> &amp; reply"#
        );
    }
}
