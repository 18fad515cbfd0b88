//! Newsletter emails, the pure core: which articles go out ([`plan`]),
//! rendering them with the site's templates into an HTML part (CSS
//! inlined, dark-mode and narrow-screen rules kept in the head) and a
//! plain-text part ([`render`]), checking the result ([`lint`]), and
//! building the MIME message with its list headers ([`build_message`]).
//! Nothing here reads the disk except [`Templates::load`], and nothing
//! talks to the network; sending lives elsewhere.

pub mod address;
pub mod config;
pub mod context;
pub mod links;
pub mod lint;
pub mod message;
pub mod plan;
pub mod templates;
pub mod token;

use std::collections::{BTreeMap, BTreeSet};

pub use address::{AddressError, EmailAddress};
pub use config::{Content, ContentSetting, EmailConfig, Mode, Utm};
pub use lint::{lint, Finding, Severity};
pub use message::{build_message, message_id, unsubscribe_url, MessageError};
pub use plan::{plan, plan_preview, Draft};
pub use templates::{TemplateError, Templates};
pub use token::verify_token;

use crate::content::Site;
use links::Campaign;

/// Who an email is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub email: EmailAddress,
    pub name: Option<String>,
    /// Other subscriber columns, available to templates as
    /// `recipient.fields`.
    pub fields: BTreeMap<String, String>,
}

/// The recipient previews are rendered for.
pub fn sample_recipient() -> Recipient {
    Recipient {
        email: EmailAddress::parse("reader@example.com")
            .unwrap_or_else(|e| unreachable!("the sample address is valid: {e}")),
        name: Some("Sample Reader".into()),
        fields: BTreeMap::new(),
    }
}

/// An article as a rendered email names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleRef {
    pub id: String,
    pub title: String,
    /// Path of the article's file, relative to the site root.
    pub source: String,
}

/// One email, rendered for one recipient.
#[derive(Debug, Clone)]
pub struct RenderedEmail {
    /// One line, not yet encoded.
    pub subject: String,
    /// The HTML part, CSS inlined.
    pub html: String,
    /// The plain-text part, ending with a newline.
    pub text: String,
    /// The articles in it, newest first.
    pub articles: Vec<ArticleRef>,
    pub issue_id: String,
    /// The unsubscribe link the email was rendered with.
    pub unsubscribe_url: String,
    /// For each article, the URLs (href/src) its own content brought in,
    /// so findings can name the article.
    article_urls: Vec<BTreeSet<String>>,
}

impl RenderedEmail {
    /// `title (source)` of the article whose content holds `url`.
    pub(crate) fn article_containing(&self, url: &str) -> Option<String> {
        let url = unescape_amp(url.trim());
        self.articles
            .iter()
            .zip(&self.article_urls)
            .find(|(_, urls)| urls.contains(&url))
            .map(|(a, _)| format!("\"{}\" ({})", a.title, a.source))
    }
}

/// Why an email could not be rendered. Every variant is a problem in the
/// user's input (templates or config), reported with its location.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template failed (`templates/x.html:12: …`).
    #[error("{0}")]
    Template(String),
    /// An article could not be turned into an email part.
    #[error("{0}")]
    Article(String),
    /// The CSS could not be inlined.
    #[error("{name}: cannot inline the stylesheet: {message}")]
    Css { name: String, message: String },
    /// The draft has no articles.
    #[error("nothing to render: the issue has no articles")]
    Empty,
}

/// Renders one draft for one recipient. `unsubscribe_url` is the
/// recipient's signed link (see [`unsubscribe_url`]). Article text is
/// data: nothing in an article is ever evaluated as a template.
pub fn render(
    site: &Site,
    templates: &Templates,
    draft: &Draft<'_>,
    recipient: &Recipient,
    unsubscribe_url: &str,
) -> Result<RenderedEmail, RenderError> {
    if draft.articles.is_empty() {
        return Err(RenderError::Empty);
    }
    let config = &site.config.email;
    let content = config.content.resolve(draft.kind);
    let host = site.config.site.base_url.host_str().unwrap_or_default();
    let campaign = config.utm.as_ref().map(|utm| Campaign {
        host,
        utm,
        campaign: utm.campaign.as_deref().unwrap_or(&draft.issue_id),
    });
    let inputs = context::Inputs {
        articles: &draft.articles,
        kind: draft.kind,
        content,
        recipient,
        unsubscribe_url,
        issue_id: &draft.issue_id,
        issue_date: draft.date,
    };
    let built = context::build(site, &inputs, campaign.as_ref()).map_err(RenderError::Article)?;
    let (stem, subject_key, subject_source) = match draft.kind {
        Mode::Digest => ("digest", "email.subject_digest", &config.subject_digest),
        Mode::PerArticle => ("article", "email.subject_single", &config.subject_single),
    };
    let subject = templates
        .render_str(subject_key, subject_source, &built.value)
        .map_err(RenderError::Template)?;
    let mut subject = crate::text::single_line(&subject);
    if subject.is_empty() {
        subject = crate::text::single_line(&draft.articles[0].title);
    }

    let html_name = format!("{stem}.html");
    let html = templates
        .render(&html_name, &built.value)
        .map_err(RenderError::Template)?;
    let html = inline_css(&html).map_err(|message| RenderError::Css {
        name: html_name,
        message,
    })?;
    let text = templates
        .render(&format!("{stem}.txt"), &built.value)
        .map_err(RenderError::Template)?;
    let mut text = context::tidy_text(&text);
    text.push('\n');

    Ok(RenderedEmail {
        subject,
        html,
        text,
        articles: draft
            .articles
            .iter()
            .map(|a| ArticleRef {
                id: a.id.clone(),
                title: crate::text::single_line(&a.title),
                source: a.source.clone(),
            })
            .collect(),
        issue_id: draft.issue_id.clone(),
        unsubscribe_url: unsubscribe_url.to_owned(),
        article_urls: built
            .article_urls
            .into_iter()
            .map(|urls| urls.iter().map(|u| unescape_amp(u)).collect())
            .collect(),
    })
}

/// Moves ordinary CSS rules into `style` attributes; `@media` blocks stay
/// in a `<style>` in the head (clients apply them, and they cannot be
/// inlined). Remote stylesheets are never fetched.
pub fn inline_css(html: &str) -> Result<String, String> {
    css_inline::CSSInliner::options()
        .keep_style_tags(false)
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .build()
        .inline(html)
        .map_err(|e| e.to_string())
}

fn unescape_amp(s: &str) -> String {
    s.replace("&amp;", "&")
}

#[cfg(test)]
pub(crate) mod tests;
