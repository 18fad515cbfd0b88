//! The live preview page: the index of the issue, each email's HTML part
//! in a desktop (600 px), a phone (375 px) and a dark-mode phone frame, its
//! text part, headers, size against Gmail's clipping limit and lint
//! findings, the controls, and the problems that stop a rendering. The
//! template is built into the binary (it is a tool's page, not the
//! site's), autoescaped; the emails go into sandboxed `srcdoc` frames
//! that run no script.

use std::cell::RefCell;

use lol_html::html_content::ContentType;
use lol_html::{element, text, HtmlRewriter, Settings};
use serde::Serialize;

use super::{Controls, Preview};
use crate::config::email::Mode;
use crate::content::Site;
use crate::email::lint::GMAIL_CLIP_BYTES;

/// Articles offered in the controls, newest first.
const ARTICLES_SHOWN: usize = 100;

/// The compiled page template.
pub struct Page {
    env: minijinja::Environment<'static>,
}

/// What one page shows.
pub struct Input<'a> {
    pub generation: u64,
    pub site: Option<&'a Site>,
    /// `file:line: message` lines that stop the preview.
    pub problems: Vec<String>,
    pub preview: Option<&'a Preview>,
    /// The controls as the query gave them, and the command line's.
    pub controls: &'a Controls,
    pub defaults: &'a Controls,
    pub readers: &'a [String],
}

#[derive(Serialize)]
struct EmailView<'a> {
    anchor: String,
    stem: &'a str,
    subject: &'a str,
    articles: &'a [String],
    html: &'a str,
    dark_html: String,
    text: &'a str,
    headers: String,
    html_size: String,
    eml_size: String,
    clip_percent: usize,
    clipped: bool,
    findings: Vec<FindingView<'a>>,
}

#[derive(Serialize)]
struct FindingView<'a> {
    severity: String,
    message: &'a str,
    article: Option<&'a str>,
}

#[derive(Serialize)]
struct ArticleOption<'a> {
    slug: &'a str,
    title: &'a str,
    date: String,
    chosen: bool,
}

impl Page {
    pub fn new() -> Result<Page, String> {
        let mut env = minijinja::Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        // Built into the binary: a unit test renders it.
        env.add_template("live.html", include_str!("page.html"))
            .map_err(|e| format!("the live preview page template: {e}"))?;
        Ok(Page { env })
    }

    pub fn render(&self, input: &Input<'_>) -> Result<String, String> {
        let template = self
            .env
            .get_template("live.html")
            .map_err(|e| format!("the live preview page template: {e}"))?;
        let emails: Vec<EmailView<'_>> = input
            .preview
            .map(|p| p.emails.iter().map(email_view).collect())
            .unwrap_or_default();
        let chosen = input.controls.or(input.defaults);
        let articles: Vec<ArticleOption<'_>> = input
            .site
            .map(|site| {
                site.articles
                    .iter()
                    .take(ARTICLES_SHOWN)
                    .map(|a| ArticleOption {
                        slug: a.slug.as_str(),
                        title: &a.title,
                        date: a.publish_date.format("%Y-%m-%d").to_string(),
                        chosen: chosen.articles.iter().any(|s| s == a.slug.as_str()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mode = chosen
            .mode
            .or(input.site.map(|s| s.config.email.mode))
            .map(|m| match m {
                Mode::Digest => "digest",
                Mode::PerArticle => "per-article",
            });
        template
            .render(minijinja::context! {
                generation => input.generation,
                site_title => input.site.map(|s| s.config.site.title.clone()),
                problems => input.problems,
                note => input.preview.map(|p| p.note.clone()),
                recipient => input.preview.map(|p| p.recipient.clone()),
                emails => emails,
                mode => mode,
                articles => articles,
                chosen_articles => chosen.articles.join(","),
                to => chosen.to,
                readers => input.readers,
                clip_kb => GMAIL_CLIP_BYTES / 1024,
            })
            .map_err(|e| format!("the live preview page: {e}"))
    }
}

fn email_view(email: &super::PreviewEmail) -> EmailView<'_> {
    let clip_percent = email.html.len() * 100 / GMAIL_CLIP_BYTES;
    EmailView {
        anchor: format!("email-{}", email.stem),
        stem: &email.stem,
        subject: &email.subject,
        articles: &email.articles,
        html: &email.html,
        dark_html: force_dark(&email.html),
        text: &email.text,
        headers: headers(&email.eml),
        html_size: kilobytes(email.html.len()),
        eml_size: kilobytes(email.eml.len()),
        clip_percent,
        clipped: email.html.len() > GMAIL_CLIP_BYTES,
        findings: email
            .findings
            .iter()
            .map(|f| FindingView {
                severity: f.severity.to_string(),
                message: &f.message,
                article: f.article.as_deref(),
            })
            .collect(),
    }
}

fn kilobytes(bytes: usize) -> String {
    format!("{:.1} KB", bytes as f64 / 1024.0)
}

/// The message's header block, as sent (folded lines kept).
fn headers(eml: &[u8]) -> String {
    let end = memchr::memmem::find(eml, b"\r\n\r\n").unwrap_or(eml.len());
    String::from_utf8_lossy(&eml[..end]).replace("\r\n", "\n")
}

/// The email as a mail client in dark mode shows it: every
/// `prefers-color-scheme: dark` media condition in its `<style>`
/// elements made always true (and `light` never), and the document's
/// color scheme set to dark. A frame cannot be told to prefer dark on its
/// own, so the condition is rewritten instead; the rest is unchanged.
pub fn force_dark(html: &str) -> String {
    let buffer = RefCell::new(String::new());
    let mut out = Vec::with_capacity(html.len() + 128);
    let mut rewriter = HtmlRewriter::new(
        Settings {
            element_content_handlers: vec![
                element!("head", |el| {
                    el.prepend(
                        "<meta name=\"color-scheme\" content=\"dark\"><style>:root{color-scheme:dark}</style>",
                        ContentType::Html,
                    );
                    Ok(())
                }),
                text!("style", |chunk| {
                    buffer.borrow_mut().push_str(chunk.as_str());
                    if chunk.last_in_text_node() {
                        let css = std::mem::take(&mut *buffer.borrow_mut());
                        chunk.replace(&dark_css(&css), ContentType::Html);
                    } else {
                        chunk.remove();
                    }
                    Ok(())
                }),
            ],
            ..Settings::new()
        },
        |c: &[u8]| out.extend_from_slice(c),
    );
    let written = rewriter
        .write(html.as_bytes())
        .and_then(|()| rewriter.end());
    match written {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|_| html.to_owned()),
        // The HTML came from our own renderer; show it as it is.
        Err(_) => html.to_owned(),
    }
}

/// `css` with `prefers-color-scheme: dark` conditions always true and
/// `light` ones never (any spacing around the colon).
fn dark_css(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(at) = rest.find("prefers-color-scheme") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "prefers-color-scheme".len()..];
        let value = after.trim_start().strip_prefix(':').map(str::trim_start);
        match value {
            Some(v) if v.starts_with("dark") => {
                // `min-width: 0px` holds in every frame.
                out.push_str("min-width: 0px");
                rest = &v["dark".len()..];
            }
            Some(v) if v.starts_with("light") => {
                out.push_str("max-width: -1px");
                rest = &v["light".len()..];
            }
            _ => {
                out.push_str("prefers-color-scheme");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_mode_rules_apply_unconditionally_and_only_inside_styles() {
        let html =
            "<html><head><style>p{color:#000}@media (prefers-color-scheme : dark){p{color:#fff}}\
                    @media (prefers-color-scheme: light){p{color:#111}}</style></head>\
                    <body><p>prefers-color-scheme: dark stays in text</p></body></html>";
        let dark = force_dark(html);
        assert!(
            dark.contains("@media (min-width: 0px){p{color:#fff}}"),
            "{dark}"
        );
        assert!(
            dark.contains("@media (max-width: -1px){p{color:#111}}"),
            "{dark}"
        );
        assert!(dark.contains("<p>prefers-color-scheme: dark stays in text</p>"));
        assert!(dark.contains("<meta name=\"color-scheme\" content=\"dark\">"));
        assert!(!dark.contains("(prefers-color-scheme"));
    }

    #[test]
    fn the_page_renders_an_issue_and_escapes_it_into_its_frames() {
        let page = Page::new().unwrap();
        let preview = Preview {
            note: "the issue a send would mail next".into(),
            recipient: "reader@example.com".into(),
            emails: vec![super::super::PreviewEmail {
                stem: "01-a".into(),
                subject: "Hello <world>".into(),
                articles: vec!["A & B".into()],
                html: "<html><head></head><body><p class=\"x\">Hi</p><script>x()</script></body></html>"
                    .into(),
                text: "Hi\n".into(),
                eml: b"Subject: Hello\r\nTo: reader@example.com\r\n\r\nbody".to_vec(),
                findings: Vec::new(),
            }],
        };
        let controls = Controls::default();
        let body = page
            .render(&Input {
                generation: 7,
                site: None,
                problems: Vec::new(),
                preview: Some(&preview),
                controls: &controls,
                defaults: &controls,
                readers: &["ada@example.com".to_owned()],
            })
            .unwrap();
        assert!(body.contains("data-generation=\"7\""));
        assert!(body.contains("Hello &lt;world&gt;"));
        // The email is an attribute value: quoted, never markup of the page.
        assert!(body.contains("srcdoc=\"&lt;html&gt;&lt;head&gt;"), "{body}");
        assert!(!body.contains("<script>x()"));
        assert_eq!(body.matches("<iframe").count(), 3);
        assert_eq!(body.matches("sandbox=\"allow-popups").count(), 3);
        assert!(body.contains("To: reader@example.com"));
        assert!(body.contains("ada@example.com"));
    }

    #[test]
    fn problems_replace_the_emails() {
        let page = Page::new().unwrap();
        let controls = Controls::default();
        let body = page
            .render(&Input {
                generation: 1,
                site: None,
                problems: vec!["content/a.md:2: title: expected a string".into()],
                preview: None,
                controls: &controls,
                defaults: &controls,
                readers: &[],
            })
            .unwrap();
        // minijinja's HTML escaping writes `/` as `&#x2f;`.
        assert!(
            body.contains("content&#x2f;a.md:2: title: expected a string"),
            "{body}"
        );
        assert!(!body.contains("<iframe"));
    }

    #[test]
    fn controls_come_from_the_query_and_fall_back_to_the_command_line() {
        let c = Controls::from_query("mode=per-article&articles=a,b&articles=c&to=+x%40y.z+");
        assert_eq!(c.mode, Some(Mode::PerArticle));
        assert_eq!(c.articles, ["a", "b", "c"]);
        assert_eq!(c.to.as_deref(), Some("x@y.z"));
        let defaults = Controls {
            mode: Some(Mode::Digest),
            articles: vec!["d".into()],
            to: None,
        };
        let blank = Controls::from_query("mode=&articles=&to=");
        assert_eq!(blank, Controls::default());
        assert_eq!(blank.or(&defaults), defaults);
    }
}
