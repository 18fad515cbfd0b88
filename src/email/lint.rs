//! Checks on a rendered email that mail clients would punish: images
//! without alt text, no visible unsubscribe link, HTML Gmail clips, `http:`
//! images, relative links, long subjects. The HTML is read with a
//! tokenizer (lol_html). Each finding names the email and, where the
//! problem comes from an article, that article.

use std::cell::RefCell;
use std::fmt;

use lol_html::{element, HtmlRewriter, Settings};
use url::Url;

use super::RenderedEmail;

/// Gmail clips messages whose HTML is larger than this.
pub const GMAIL_CLIP_BYTES: usize = 102 * 1024;

/// Subjects longer than this (in characters) get cut off in most inboxes
/// (RFC 5322 also recommends lines of at most 78 characters).
pub const SUBJECT_MAX_CHARS: usize = 78;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem in one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// The email: its subject.
    pub email: String,
    /// The article it comes from (`title (source)`), or None for the
    /// email as a whole or the template.
    pub article: Option<String>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "email \"{}\"", self.email)?;
        if let Some(article) = &self.article {
            write!(f, ", article {article}")?;
        }
        write!(f, ": {}: {}", self.severity, self.message)
    }
}

#[derive(Default)]
struct Scan {
    images_without_alt: Vec<String>,
    http_images: Vec<String>,
    relative: Vec<(String, String)>,
    links: Vec<String>,
}

fn scan(html: &str) -> Scan {
    let found = RefCell::new(Scan::default());
    let mut rewriter = HtmlRewriter::new(
        Settings {
            element_content_handlers: vec![
                element!("img", |el| {
                    let src = el.get_attribute("src").unwrap_or_default();
                    let alt = el.get_attribute("alt");
                    if alt.is_none_or(|a| a.trim().is_empty()) {
                        found.borrow_mut().images_without_alt.push(src.clone());
                    }
                    if src
                        .trim_start()
                        .get(..5)
                        .is_some_and(|s| s.eq_ignore_ascii_case("http:"))
                    {
                        found.borrow_mut().http_images.push(src);
                    }
                    Ok(())
                }),
                element!("[href], [src], [background]", |el| {
                    for attr in ["href", "src", "background"] {
                        if let Some(value) = el.get_attribute(attr) {
                            if Url::parse(value.trim()).is_err() {
                                found
                                    .borrow_mut()
                                    .relative
                                    .push((format!("{} {attr}", el.tag_name()), value.clone()));
                            }
                            if attr == "href" {
                                found.borrow_mut().links.push(value);
                            }
                        }
                    }
                    Ok(())
                }),
            ],
            ..Settings::new()
        },
        |_: &[u8]| {},
    );
    // Scanning never fails on content; a failure would only lose findings.
    let _ = rewriter.write(html.as_bytes());
    let _ = rewriter.end();
    found.into_inner()
}

/// Every finding for one rendered email.
pub fn lint(email: &RenderedEmail) -> Vec<Finding> {
    let subject = crate::text::single_line(&email.subject);
    let mut findings = Vec::new();
    let mut add = |severity, article: Option<String>, message: String| {
        findings.push(Finding {
            severity,
            email: subject.clone(),
            article,
            message,
        })
    };
    let scan = scan(&email.html);
    for src in &scan.images_without_alt {
        add(
            Severity::Warning,
            email.article_containing(src),
            format!("image `{src}` has no alt text; screen readers and clients that block images show nothing"),
        );
    }
    for src in &scan.http_images {
        add(
            Severity::Warning,
            email.article_containing(src),
            format!("image `{src}` is served over http:; many clients block or warn about it, use https:"),
        );
    }
    for (what, value) in &scan.relative {
        add(
            Severity::Error,
            email.article_containing(value),
            format!("{what} `{value}` is relative; links in emails must be absolute URLs"),
        );
    }
    let base = email.unsubscribe_url.split(['?', '#']).next().unwrap_or("");
    let has_unsubscribe = !base.is_empty()
        && scan
            .links
            .iter()
            .any(|href| href.trim() == email.unsubscribe_url || href.trim().starts_with(base));
    if !has_unsubscribe {
        add(
            Severity::Error,
            None,
            "the HTML part has no unsubscribe link; add `<a href=\"{{ unsubscribe_url }}\">` to the template".into(),
        );
    }
    if email.html.len() > GMAIL_CLIP_BYTES {
        add(
            Severity::Warning,
            None,
            format!(
                "the HTML part is {} KB; Gmail clips messages over 102 KB (hiding the footer and unsubscribe link); send summaries or fewer articles",
                email.html.len().div_ceil(1024)
            ),
        );
    }
    let chars = subject.chars().count();
    if chars > SUBJECT_MAX_CHARS {
        add(
            Severity::Warning,
            None,
            format!("the subject is {chars} characters long; inboxes cut it off after about {SUBJECT_MAX_CHARS}"),
        );
    }
    if subject.is_empty() {
        add(Severity::Error, None, "the subject is empty".into());
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::tests::{render_one, sample_site_with};

    fn with_html(html: &str) -> RenderedEmail {
        let site = sample_site_with("");
        let mut email = render_one(&site);
        email.html = html.to_owned();
        email
    }

    #[test]
    fn the_sample_email_is_clean() {
        let site = sample_site_with("");
        let email = render_one(&site);
        let findings = lint(&email);
        assert!(findings.is_empty(), "{findings:#?}");
    }

    #[test]
    fn each_problem_is_found_and_attributed() {
        let site = sample_site_with("");
        let mut email = render_one(&site);
        let article = email.articles[0].clone();
        let hero = site
            .articles
            .iter()
            .find(|a| a.id == article.id)
            .and_then(|a| a.hero_image.clone())
            .unwrap_or_else(|| "https://dispatch.example.com/x.png".into());
        email.html = format!(
            "<p><img src=\"{hero}\"><img src=\"http://cdn.example.com/a.png\" alt=\"A\"><a href=\"/about/\">about</a><a href=\"https://example.com/\">x</a></p>"
        );
        email.subject = "S".repeat(80);
        let findings = lint(&email);
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        assert_eq!(findings.len(), 5, "{all}");
        assert!(
            all.contains(&format!("image `{hero}` has no alt text")),
            "{all}"
        );
        assert!(
            findings[0]
                .article
                .as_deref()
                .is_some_and(|a| a.contains(&article.title)),
            "{all}"
        );
        assert!(
            all.contains("image `http://cdn.example.com/a.png` is served over http:"),
            "{all}"
        );
        assert!(all.contains("a href `/about/` is relative"), "{all}");
        assert!(all.contains("no unsubscribe link"), "{all}");
        assert!(all.contains("the subject is 80 characters long"), "{all}");
        assert!(
            text[1].starts_with(&format!("email \"{}\": warning:", "S".repeat(80))),
            "{all}"
        );
    }

    #[test]
    fn big_html_is_clipped_by_gmail() {
        let email = with_html("x");
        let unsubscribe = email.unsubscribe_url.clone();
        let email = with_html(&format!(
            "<a href=\"{unsubscribe}\">u</a>{}",
            "<p>words</p>".repeat(GMAIL_CLIP_BYTES / 12 + 1)
        ));
        let findings = lint(&email);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert!(
            findings[0].message.contains("Gmail clips"),
            "{}",
            findings[0]
        );
    }
}
