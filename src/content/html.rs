//! Rendering Markdown to HTML that is safe to publish anywhere: every
//! relative `href`, `src`, `srcset`, `poster` and `cite` made absolute
//! against the article's URL, and nothing a feed validator or a mail
//! client calls active content. Sanitizing is an allow-list (ammonia, on
//! an HTML5 parser): elements, attributes and URL schemes not named here
//! are dropped, however they are spelled (character references, mixed
//! case, control characters, foreign namespaces).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

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

/// Elements kept, with the attributes each may carry besides
/// [`GLOBAL_ATTRIBUTES`]: what Markdown produces (tables, footnotes, task
/// lists, code blocks) and what articles write by hand (figures,
/// responsive images, video, details).
const ELEMENTS: &[(&str, &[&str])] = &[
    ("a", &["href", "hreflang", "name"]),
    ("abbr", &[]),
    ("article", &[]),
    ("aside", &[]),
    ("audio", &["src", "controls", "loop", "muted", "preload"]),
    ("b", &[]),
    ("bdi", &[]),
    ("bdo", &[]),
    ("blockquote", &["cite"]),
    ("br", &[]),
    ("caption", &[]),
    ("cite", &[]),
    ("code", &[]),
    ("col", &["span"]),
    ("colgroup", &["span"]),
    ("data", &["value"]),
    ("dd", &[]),
    ("del", &["cite", "datetime"]),
    ("details", &["open"]),
    ("dfn", &[]),
    ("div", &[]),
    ("dl", &[]),
    ("dt", &[]),
    ("em", &[]),
    ("figcaption", &[]),
    ("figure", &[]),
    ("footer", &[]),
    ("h1", &[]),
    ("h2", &[]),
    ("h3", &[]),
    ("h4", &[]),
    ("h5", &[]),
    ("h6", &[]),
    ("header", &[]),
    ("hgroup", &[]),
    ("hr", &[]),
    ("i", &[]),
    (
        "img",
        &[
            "src", "srcset", "sizes", "alt", "width", "height", "loading", "decoding",
        ],
    ),
    // Task-list boxes only: `publishable` makes every input a checkbox.
    ("input", &["checked", "disabled"]),
    ("ins", &["cite", "datetime"]),
    ("kbd", &[]),
    ("li", &["value"]),
    ("mark", &[]),
    ("ol", &["start", "reversed", "type"]),
    ("p", &[]),
    ("picture", &[]),
    ("pre", &[]),
    ("q", &["cite"]),
    ("rp", &[]),
    ("rt", &[]),
    ("ruby", &[]),
    ("s", &[]),
    ("samp", &[]),
    ("section", &[]),
    ("small", &[]),
    ("source", &["src", "srcset", "sizes", "media", "type"]),
    ("span", &[]),
    ("strong", &[]),
    ("sub", &[]),
    ("summary", &[]),
    ("sup", &[]),
    ("table", &[]),
    ("tbody", &[]),
    ("td", &["colspan", "rowspan", "headers"]),
    ("tfoot", &[]),
    ("th", &["colspan", "rowspan", "headers", "scope", "abbr"]),
    ("thead", &[]),
    ("time", &["datetime"]),
    ("tr", &[]),
    ("track", &["src", "kind", "srclang", "label", "default"]),
    ("u", &[]),
    ("ul", &[]),
    ("var", &[]),
    (
        "video",
        &[
            "src",
            "poster",
            "controls",
            "width",
            "height",
            "loop",
            "muted",
            "playsinline",
            "preload",
        ],
    ),
    ("wbr", &[]),
];

/// Attributes every kept element may carry (`class` for syntax
/// highlighting, `id` for heading anchors and footnotes).
const GLOBAL_ATTRIBUTES: &[&str] = &["class", "id", "title", "lang", "dir"];

/// Elements removed together with everything inside them (any other
/// element not in [`ELEMENTS`] is removed and its content kept).
const REMOVED_WITH_CONTENT: &[&str] = &[
    "applet", "button", "embed", "form", "frame", "frameset", "head", "iframe", "math", "noembed",
    "noframes", "noscript", "object", "script", "select", "style", "svg", "template", "textarea",
    "title", "xmp",
];

/// URL schemes a link or image may use; a relative URL is made absolute.
pub const URL_SCHEMES: &[&str] = &["http", "https", "mailto", "tel", "sms", "ftp", "xmpp"];

/// Table cell alignment as the Markdown renderer writes it: the only
/// inline styles kept.
const CELL_STYLES: &[&str] = &[
    "text-align: left",
    "text-align: center",
    "text-align: right",
];

/// Makes URLs absolute and removes everything the allow-list does not name.
pub fn publishable(html: &str, base: &Url) -> String {
    BASE.with(|current| *current.borrow_mut() = Some(base.clone()));
    let clean = sanitizer().clean(html).to_string();
    BASE.with(|current| *current.borrow_mut() = None);
    clean
}

thread_local! {
    /// The URL that relative references are joined to while this thread
    /// runs [`publishable`]. The sanitizer is built once per process (its
    /// tables cost about as much as cleaning a short article), and
    /// ammonia's attribute filter must be `'static`, so the article's URL
    /// reaches it here.
    static BASE: std::cell::RefCell<Option<Url>> = const { std::cell::RefCell::new(None) };
}

/// The sanitizer: [`ELEMENTS`] and their attributes, [`URL_SCHEMES`], and
/// every URL-bearing attribute (srcset candidates and `cite` included)
/// through [`absolute`] against the current [`BASE`].
fn sanitizer() -> &'static ammonia::Builder<'static> {
    static SANITIZER: std::sync::OnceLock<ammonia::Builder<'static>> = std::sync::OnceLock::new();
    SANITIZER.get_or_init(|| {
        let tags: HashSet<&str> = ELEMENTS.iter().map(|(tag, _)| *tag).collect();
        let tag_attributes: HashMap<&str, HashSet<&str>> = ELEMENTS
            .iter()
            .map(|(tag, attributes)| (*tag, attributes.iter().copied().collect()))
            .collect();
        let cell_style: HashMap<&str, HashSet<&str>> =
            HashMap::from([("style", CELL_STYLES.iter().copied().collect())]);
        // One attribute only: ammonia adds them in its map's (random) order.
        let input = HashMap::from([("type", "checkbox")]);
        let mut builder = ammonia::Builder::empty();
        builder
            .tags(tags)
            .tag_attributes(tag_attributes)
            .tag_attribute_values(HashMap::from([
                ("td", cell_style.clone()),
                ("th", cell_style),
            ]))
            .set_tag_attribute_values(HashMap::from([("input", input)]))
            .generic_attributes(GLOBAL_ATTRIBUTES.iter().copied().collect())
            .clean_content_tags(REMOVED_WITH_CONTENT.iter().copied().collect())
            .url_schemes(URL_SCHEMES.iter().copied().collect())
            .link_rel(None)
            .strip_comments(true)
            .url_relative(ammonia::UrlRelative::PassThrough)
            .attribute_filter(|_element, attribute, value| {
                let url = matches!(attribute, "href" | "src" | "poster" | "cite" | "srcset");
                if !url {
                    return Some(Cow::Borrowed(value));
                }
                BASE.with(|current| {
                    // Outside `publishable` there is no base: keep no URL.
                    let base = current.borrow();
                    let base = base.as_ref()?;
                    match attribute {
                        "srcset" => Some(Cow::Owned(absolute_srcset(value, base))),
                        _ => absolute(value, base).map(Cow::Owned),
                    }
                })
            });
        builder
    })
}

/// The absolute form of a URL reference: a relative one joined to `base`,
/// an absolute one kept when its scheme is in [`URL_SCHEMES`]. None for
/// any other scheme (`javascript:`, `vbscript:`, `data:`, …) however it is
/// written (URL parsing ignores case, tabs and line breaks, as browsers
/// do) and for what does not parse as a URL.
pub fn absolute(reference: &str, base: &Url) -> Option<String> {
    let url = base.join(reference.trim()).ok()?;
    URL_SCHEMES.contains(&url.scheme()).then(|| url.into())
}

/// Each candidate of a `srcset` made absolute; descriptors kept, and
/// candidates with a scheme that is not allowed left out.
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

    /// `xlink:href` inside `<svg>` or `<math>` was not a URL attribute to a
    /// deny-list of names, so a `javascript:` link there reached feeds.
    #[test]
    fn foreign_namespace_links_are_not_published() {
        for markdown in [
            "<svg><a xlink:href=\"javascript:alert(1)\"><text x=\"0\" y=\"20\">Click</text></a></svg>\n",
            "<math><a xlink:href=\"javascript:alert(1)\">Click</a></math>\n",
            "<p>Before <svg><a xlink:href=\"javascript:alert(1)\">Click</a></svg> after</p>\n",
        ] {
            let html = render_markdown(markdown, &base());
            assert!(!html.contains("javascript"), "{markdown} gave {html}");
            assert!(!html.contains("alert"), "{markdown} gave {html}");
        }
    }

    /// Filter-evasion vectors in the manner of OWASP's XSS filter evasion
    /// cheat sheet, each with the exact HTML that comes out.
    #[test]
    fn filter_evasion_vectors_come_out_exactly_so() {
        let cases: &[(&str, &str)] = &[
            // Schemes behind character references, case and controls.
            (r#"<a href="&#106;avascript:alert(1)">a</a>"#, "<a>a</a>"),
            (
                r#"<a href="&#x6A;&#x61;vascript:alert(1)">a</a>"#,
                "<a>a</a>",
            ),
            (
                r#"<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)">a</a>"#,
                "<a>a</a>",
            ),
            (
                r#"<a href="&#x6A&#x61&#x76&#x61script:alert(1)">a</a>"#,
                "<a>a</a>",
            ),
            (r#"<a href="jav&#x09;ascript:alert(1)">a</a>"#, "<a>a</a>"),
            (r#"<a href="jav&#x0A;ascript:alert(1)">a</a>"#, "<a>a</a>"),
            (r#"<a href="jav&#x0D;ascript:alert(1)">a</a>"#, "<a>a</a>"),
            (r#"<a href="jav	ascript:alert(1)">a</a>"#, "<a>a</a>"),
            (r#"<a href=" &#14;  javascript:alert(1)">a</a>"#, "<a>a</a>"),
            (r#"<a href="JaVaScRiPt:alert(1)">a</a>"#, "<a>a</a>"),
            (r#"<a href="javascript&colon;alert(1)">a</a>"#, "<a>a</a>"),
            // A NUL becomes U+FFFD: what is left is a harmless relative path.
            (
                "<a href=\"java\0script:alert(1)\">a</a>",
                r#"<a href="https://example.com/posts/hello/java%EF%BF%BDscript:alert(1)">a</a>"#,
            ),
            (r#"<a href="vbscript:msgbox(1)">a</a>"#, "<a>a</a>"),
            (r#"<a href="livescript:alert(1)">a</a>"#, "<a>a</a>"),
            (
                r#"<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">a</a>"#,
                "<a>a</a>",
            ),
            (
                r#"<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="x">"#,
                r#"<img alt="x">"#,
            ),
            (r#"<IMG SRC=javascript:alert('XSS')>"#, "<img>"),
            (r#"<IMG SRC="javascript:alert('XSS')""#, ""),
            (
                r#"<img src=x onerror=alert(1)>"#,
                r#"<img src="https://example.com/posts/hello/x">"#,
            ),
            (r#"<IMG """><SCRIPT>alert("XSS")</SCRIPT>">"#, "<img>\"&gt;"),
            // Foreign namespaces go with everything inside them.
            (r#"<svg/onload=alert(1)>"#, ""),
            (
                r#"<svg><script>alert(1)</script></svg><p>t</p>"#,
                "<p>t</p>",
            ),
            (
                r#"<svg><a xlink:href="javascript:alert(1)"><text>Click</text></a></svg>"#,
                "",
            ),
            (
                r#"<math><a xlink:href="javascript:alert(1)">Click</a></math>"#,
                "",
            ),
            (
                r#"<math href="javascript:alert(1)">x</math><p>t</p>"#,
                "<p>t</p>",
            ),
            (
                r#"<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"#,
                "",
            ),
            // Style sheets and style attributes.
            (
                r#"<style>body{background:url(javascript:alert(1))}</style><p>t</p>"#,
                "<p>t</p>",
            ),
            (
                r#"<STYLE>li {list-style-image: url("javascript:alert('XSS')");}</STYLE><UL><LI>XSS</br>"#,
                "<ul><li>XSS<br></li></ul>",
            ),
            (
                r#"<p style="background:url(javascript:alert(1))">t</p>"#,
                "<p>t</p>",
            ),
            (
                r#"<div style="width: expression(alert(1))">t</div>"#,
                "<div>t</div>",
            ),
            (
                r#"<IMG STYLE="xss:expr/*XSS*/ession(alert('XSS'))">"#,
                "<img>",
            ),
            (
                r#"<td style="text-align: left; background: url(javascript:x)">c</td>"#,
                "c",
            ),
            // Frames, forms, objects, document-level elements.
            (
                r#"<iframe srcdoc="<script>alert(1)</script>"></iframe><p>t</p>"#,
                "<p>t</p>",
            ),
            (r#"<iframe src=http://xss.example/x.html <"#, ""),
            (
                r#"<form action="javascript:alert(1)"><input type="submit"></form><p>t</p>"#,
                "<p>t</p>",
            ),
            (
                r#"<button formaction="javascript:alert(1)">b</button><p>t</p>"#,
                "<p>t</p>",
            ),
            (
                r#"<base href="javascript:alert(1)//"><a href="x">x</a>"#,
                r#"<a href="https://example.com/posts/hello/x">x</a>"#,
            ),
            (
                r#"<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><p>t</p>"#,
                "<p>t</p>",
            ),
            (
                r#"<link rel="stylesheet" href="javascript:alert(1)"><p>t</p>"#,
                "<p>t</p>",
            ),
            (
                r#"<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)"><p>t</p>"#,
                "<p>t</p>",
            ),
            (
                r#"<TABLE BACKGROUND="javascript:alert(1)"><tr><td>c</td></tr></TABLE>"#,
                "<table><tbody><tr><td>c</td></tr></tbody></table>",
            ),
            (
                r#"<template><img src=x onerror=alert(1)></template><p>t</p>"#,
                "<p>t</p>",
            ),
            // Event handlers, on any element, however written.
            (
                r#"<p onmouseover="alert(1)" title="t">t</p>"#,
                r#"<p title="t">t</p>"#,
            ),
            (r#"<BODY ONLOAD=alert('XSS')>text"#, "text"),
            (r#"<x onclick=alert(1)>x</x>"#, "x"),
            (
                r#"<details open ontoggle=alert(1)>d</details>"#,
                r#"<details open="">d</details>"#,
            ),
            // Unclosed and nested tags.
            (r#"<a href="javascript:alert(1)"#, ""),
            (
                r#"<scr<script>ipt>alert(1)</scr</script>ipt>"#,
                "ipt&gt;alert(1)ipt&gt;",
            ),
            (
                r#"<!--<img src="--><img src=x onerror=alert(1)//">"#,
                r#"<img src="https://example.com/posts/hello/x">"#,
            ),
            (r#"<<SCRIPT>alert("XSS");//\<</SCRIPT>"#, "&lt;"),
            // Link targets and unknown attributes.
            (
                r#"<a href="https://example.org/" target="_blank" rel="opener">o</a>"#,
                r#"<a href="https://example.org/">o</a>"#,
            ),
            (
                r#"<a href="//evil.example/x">p</a>"#,
                r#"<a href="https://evil.example/x">p</a>"#,
            ),
            (
                r#"<blockquote cite="javascript:alert(1)">q</blockquote><q cite="/src">q</q>"#,
                r#"<blockquote>q</blockquote><q cite="https://example.com/src">q</q>"#,
            ),
            (
                r#"<img src="a.png" srcset="a.png 1x, javascript:alert(1) 2x, vbscript:x 3x">"#,
                r#"<img src="https://example.com/posts/hello/a.png" srcset="https://example.com/posts/hello/a.png 1x">"#,
            ),
            (
                r#"<input type="text" value="x" onfocus=alert(1) autofocus>"#,
                r#"<input type="checkbox">"#,
            ),
        ];
        let mut wrong = Vec::new();
        for (input, expected) in cases {
            let got = publishable(input, &base());
            if got != *expected {
                wrong.push(format!("{input}\n  expected {expected}\n  got      {got}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// What articles legitimately use comes through as written.
    #[test]
    fn article_markup_survives() {
        let cases: &[(&str, &str)] = &[
            (
                r#"<h2 id="intro" class="x">Intro</h2><figure><img src="f.png" alt="f" width="600" height="300" loading="lazy"><figcaption>F</figcaption></figure>"#,
                r#"<h2 id="intro" class="x">Intro</h2><figure><img src="https://example.com/posts/hello/f.png" alt="f" width="600" height="300" loading="lazy"><figcaption>F</figcaption></figure>"#,
            ),
            (
                r#"<picture><source srcset="a.webp 1x, a@2x.webp 2x" type="image/webp"><img src="a.png" alt="A"></picture>"#,
                r#"<picture><source srcset="https://example.com/posts/hello/a.webp 1x, https://example.com/posts/hello/a@2x.webp 2x" type="image/webp"><img src="https://example.com/posts/hello/a.png" alt="A"></picture>"#,
            ),
            (
                r#"<video src="v.mp4" poster="p.jpg" controls></video>"#,
                r#"<video src="https://example.com/posts/hello/v.mp4" poster="https://example.com/posts/hello/p.jpg" controls=""></video>"#,
            ),
            (
                r#"<details><summary>More</summary><p>Hidden <kbd>Ctrl</kbd>+<kbd>C</kbd>, <abbr title="HyperText">HTML</abbr>, H<sub>2</sub>O, x<sup>2</sup>, <mark>m</mark>.</p></details>"#,
                r#"<details><summary>More</summary><p>Hidden <kbd>Ctrl</kbd>+<kbd>C</kbd>, <abbr title="HyperText">HTML</abbr>, H<sub>2</sub>O, x<sup>2</sup>, <mark>m</mark>.</p></details>"#,
            ),
            (
                r#"<dl><dt>T</dt><dd>D</dd></dl><a href="mailto:a@example.com">m</a> <a href="tel:+1555">t</a>"#,
                r#"<dl><dt>T</dt><dd>D</dd></dl><a href="mailto:a@example.com">m</a> <a href="tel:+1555">t</a>"#,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(publishable(input, &base()), *expected, "{input}");
        }
        let markdown = "## Setup\n\n```rust\nlet x = 1 < 2;\n```\n\n| a | b |\n|:-:|--:|\n| 1 | 2 |\n\n- [x] done\n- [ ] todo\n\nNote[^1] ~~old~~.\n\n[^1]: Foot.\n";
        assert_eq!(
            render_markdown(markdown, &base()),
            "<h2>Setup</h2>\n\
             <pre><code class=\"language-rust\">let x = 1 &lt; 2;\n</code></pre>\n\
             <table><thead><tr><th style=\"text-align: center\">a</th><th style=\"text-align: right\">b</th></tr></thead><tbody>\n\
             <tr><td style=\"text-align: center\">1</td><td style=\"text-align: right\">2</td></tr>\n\
             </tbody></table>\n\
             <ul>\n\
             <li><input disabled=\"\" checked=\"\" type=\"checkbox\">\ndone</li>\n\
             <li><input disabled=\"\" type=\"checkbox\">\ntodo</li>\n\
             </ul>\n\
             <p>Note<sup class=\"footnote-reference\"><a href=\"https://example.com/posts/hello/#1\">1</a></sup> <del>old</del>.</p>\n\
             <div class=\"footnote-definition\" id=\"1\"><sup class=\"footnote-definition-label\">1</sup>\n\
             <p>Foot.</p>\n\
             </div>\n"
        );
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
