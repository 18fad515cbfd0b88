//! Newsletter emails, the pure core: which articles go out ([`plan`]),
//! rendering them with the site's templates into an HTML part (CSS
//! inlined, dark-mode and narrow-screen rules kept in the head) and a
//! plain-text part ([`render`]), checking the result ([`lint`]), and
//! building the MIME message with its list headers ([`build_message`]).
//! Nothing here reads the disk except [`Templates::load`], and nothing
//! talks to the network; sending lives elsewhere.

pub mod context;
pub mod links;
pub mod lint;
pub mod message;
pub mod personalize;
pub mod plan;
pub mod qp;
pub mod templates;
pub mod token;
pub mod verp;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use lint::{lint, Finding, Severity};
pub use message::{
    build_message, into_message, message_id, return_path, unsubscribe_url, MessageError,
};
pub use personalize::Personalizer;
pub use plan::{plan, plan_preview, Draft};
pub use templates::{TemplateError, Templates};
pub use token::verify_token;

use crate::address::EmailAddress;
use crate::config::email::Mode;
use crate::content::Site;
use crate::error_kind::{ErrorKind, HasKind};
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
    /// The envelope sender (`Return-Path`) when bounces come back to a
    /// VERP address ([`return_path`]); None: `email.from`. Set by the
    /// caller after rendering.
    pub return_path: Option<EmailAddress>,
    /// `html` quoted-printable encoded, when the [`Personalizer`] spliced
    /// it from pieces encoded once per issue (see [`qp`]).
    pub(crate) html_encoded: Option<Vec<u8>>,
    /// `text` quoted-printable encoded, likewise.
    pub(crate) text_encoded: Option<Vec<u8>>,
    /// For each article, the URLs (href/src) its own content brought in,
    /// so findings can name the article (shared by every recipient's
    /// copy).
    article_urls: Arc<Vec<BTreeSet<String>>>,
}

impl RenderedEmail {
    /// `title (source)` of the article whose content holds `url`.
    pub(crate) fn article_containing(&self, url: &str) -> Option<String> {
        let url = unescape_amp(url.trim());
        self.articles
            .iter()
            .zip(self.article_urls.iter())
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
    /// A template needs a recipient field (a subscriber list column) this
    /// recipient does not have: `message` is the template's error.
    #[error("{message}: the reader has no `{field}` (recipient.fields.{field}: a column of the subscriber list)")]
    MissingField { message: String, field: String },
    /// The draft has no articles.
    #[error("nothing to render: the issue has no articles")]
    Empty,
}

impl HasKind for RenderError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

/// Renders one draft for one recipient. `unsubscribe_url` is the
/// recipient's signed link (see [`unsubscribe_url`]). Article text is
/// data: nothing in an article is ever evaluated as a template.
///
/// To render one draft for many recipients, use [`Personalizer`]: it
/// gives the same bytes and does the expensive work once.
pub fn render(
    site: &Site,
    templates: &Templates,
    draft: &Draft<'_>,
    recipient: &Recipient,
    unsubscribe_url: &str,
) -> Result<RenderedEmail, RenderError> {
    let articles = Articles::new(site, draft)?;
    render_with(
        site,
        templates,
        draft,
        &articles,
        recipient,
        unsubscribe_url,
    )
}

/// The articles of one draft as templates see them (converted to HTML and
/// plain text once, whoever the email is for).
pub(crate) struct Articles {
    values: Vec<minijinja::Value>,
    /// Per article, the URLs its content brought in (`&amp;` decoded).
    urls: Arc<Vec<BTreeSet<String>>>,
    refs: Vec<ArticleRef>,
}

impl Articles {
    pub(crate) fn new(site: &Site, draft: &Draft<'_>) -> Result<Articles, RenderError> {
        if draft.articles.is_empty() {
            return Err(RenderError::Empty);
        }
        let campaign = campaign(site, draft);
        let (values, urls): (Vec<_>, Vec<BTreeSet<String>>) = draft
            .articles
            .iter()
            .map(|a| context::article_value(site, a, campaign.as_ref()))
            .collect::<Result<Vec<_>, String>>()
            .map_err(RenderError::Article)?
            .into_iter()
            .unzip();
        let refs = draft
            .articles
            .iter()
            .map(|a| ArticleRef {
                id: a.id.clone(),
                title: crate::text::single_line(&a.title),
                source: a.source.clone(),
            })
            .collect();
        let urls = urls
            .into_iter()
            .map(|urls| urls.iter().map(|u| unescape_amp(u)).collect())
            .collect();
        Ok(Articles {
            values,
            urls: Arc::new(urls),
            refs,
        })
    }
}

fn campaign<'a>(site: &'a Site, draft: &'a Draft<'_>) -> Option<Campaign<'a>> {
    let config = &site.config.email;
    let host = site.config.site.base_url.host_str().unwrap_or_default();
    config.utm.as_ref().map(|utm| Campaign {
        host,
        utm,
        campaign: utm.campaign.as_deref().unwrap_or(&draft.issue_id),
    })
}

/// What the templates produced for one recipient, before the subject is
/// folded, the CSS inlined and the text tidied.
pub(crate) struct RawParts {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// One draft's three templates (subject, HTML, text), ready to run for
/// any recipient: the subject template is compiled and the issue's
/// context built once.
pub(crate) struct Renderer<'a> {
    templates: &'a Templates,
    html: &'static str,
    text: &'static str,
    subject_key: &'static str,
    subject_source: &'a str,
    /// `None` when the subject does not compile: rendering reports why.
    subject: Option<minijinja::Template<'a, 'a>>,
    issue: minijinja::Value,
}

impl<'a> Renderer<'a> {
    pub(crate) fn new(
        site: &'a Site,
        templates: &'a Templates,
        draft: &Draft<'_>,
        articles: &Articles,
    ) -> Renderer<'a> {
        let config = &site.config.email;
        let content = config.content.resolve(draft.kind);
        let campaign = campaign(site, draft);
        let inputs = context::Inputs {
            articles: &articles.values,
            kind: draft.kind,
            content,
            issue_id: &draft.issue_id,
            issue_date: draft.date,
        };
        let issue = context::build(site, &inputs, campaign.as_ref());
        let (html, text, subject_key, subject_source) = match draft.kind {
            Mode::Digest => (
                "digest.html",
                "digest.txt",
                "email.subject_digest",
                &config.subject_digest,
            ),
            Mode::PerArticle => (
                "article.html",
                "article.txt",
                "email.subject_single",
                &config.subject_single,
            ),
        };
        Renderer {
            templates,
            html,
            text,
            subject_key,
            subject_source,
            subject: templates.compile_str(subject_key, subject_source).ok(),
            issue,
        }
    }

    /// Runs the three templates for one recipient. When one needs a
    /// field the recipient does not have, the error says which
    /// ([`RenderError::MissingField`]).
    pub(crate) fn render_raw(
        &self,
        recipient: &Recipient,
        unsubscribe_url: &str,
    ) -> Result<RawParts, RenderError> {
        let ctx = context::for_recipient(&self.issue, recipient, unsubscribe_url, None);
        self.run(&ctx).map_err(|message| {
            match self.missing_field(recipient, unsubscribe_url, &message) {
                Some(field) => RenderError::MissingField { message, field },
                None => RenderError::Template(message),
            }
        })
    }

    fn run(&self, ctx: &minijinja::Value) -> Result<RawParts, String> {
        let subject = match &self.subject {
            Some(template) => Templates::render_compiled(self.subject_key, template, ctx)?,
            None => self
                .templates
                .render_str(self.subject_key, self.subject_source, ctx)?,
        };
        Ok(RawParts {
            subject,
            html: self.templates.render(self.html, ctx)?,
            text: self.templates.render(self.text, ctx)?,
        })
    }

    /// The recipient field whose absence made a render fail with
    /// `message`: the last one the templates looked up and did not find,
    /// if giving it a value (empty) makes that error go away.
    fn missing_field(
        &self,
        recipient: &Recipient,
        unsubscribe_url: &str,
        message: &str,
    ) -> Option<String> {
        let recording = context::RecordingFields::new(&recipient.fields);
        let fields = minijinja::Value::from_dyn_object(recording.clone());
        let ctx = context::for_recipient(&self.issue, recipient, unsubscribe_url, Some(fields));
        if self.run(&ctx).err().as_deref() != Some(message) {
            return None;
        }
        let field = recording.missing().pop()?;
        let mut with_field = recipient.clone();
        with_field.fields.insert(field.clone(), String::new());
        let ctx = context::for_recipient(&self.issue, &with_field, unsubscribe_url, None);
        (self.run(&ctx).err().as_deref() != Some(message)).then_some(field)
    }
}

/// Runs the three templates (subject, HTML, text) for one recipient.
pub(crate) fn render_raw(
    site: &Site,
    templates: &Templates,
    draft: &Draft<'_>,
    articles: &Articles,
    recipient: &Recipient,
    unsubscribe_url: &str,
) -> Result<RawParts, RenderError> {
    Renderer::new(site, templates, draft, articles).render_raw(recipient, unsubscribe_url)
}

/// The HTML template's name, for errors about it.
pub(crate) fn html_name(draft: &Draft<'_>) -> &'static str {
    match draft.kind {
        Mode::Digest => "digest.html",
        Mode::PerArticle => "article.html",
    }
}

/// The subject line from the subject template's output: one line, the
/// first article's title when the template gave nothing.
pub(crate) fn finish_subject(raw: &str, draft: &Draft<'_>) -> String {
    let subject = crate::text::single_line(raw);
    if subject.is_empty() {
        draft
            .articles
            .first()
            .map(|a| crate::text::single_line(&a.title))
            .unwrap_or_default()
    } else {
        subject
    }
}

/// The text part from the text template's output: tidied, one final
/// newline.
pub(crate) fn finish_text(raw: &str) -> String {
    let mut text = context::tidy_text(raw);
    text.push('\n');
    text
}

/// [`render`] with the draft's articles already prepared.
pub(crate) fn render_with(
    site: &Site,
    templates: &Templates,
    draft: &Draft<'_>,
    articles: &Articles,
    recipient: &Recipient,
    unsubscribe_url: &str,
) -> Result<RenderedEmail, RenderError> {
    let raw = render_raw(site, templates, draft, articles, recipient, unsubscribe_url)?;
    finish(draft, articles, &raw, unsubscribe_url)
}

/// The email from the templates' output: subject folded, CSS inlined,
/// text tidied.
pub(crate) fn finish(
    draft: &Draft<'_>,
    articles: &Articles,
    raw: &RawParts,
    unsubscribe_url: &str,
) -> Result<RenderedEmail, RenderError> {
    let html = inline_css(&raw.html).map_err(|message| RenderError::Css {
        name: html_name(draft).to_owned(),
        message,
    })?;
    Ok(assemble(
        draft,
        articles,
        finish_subject(&raw.subject, draft),
        html,
        finish_text(&raw.text),
        unsubscribe_url,
    ))
}

/// A [`RenderedEmail`] from its finished parts.
pub(crate) fn assemble(
    draft: &Draft<'_>,
    articles: &Articles,
    subject: String,
    html: String,
    text: String,
    unsubscribe_url: &str,
) -> RenderedEmail {
    RenderedEmail {
        subject,
        html,
        text,
        articles: articles.refs.clone(),
        issue_id: draft.issue_id.clone(),
        unsubscribe_url: unsubscribe_url.to_owned(),
        return_path: None,
        html_encoded: None,
        text_encoded: None,
        article_urls: Arc::clone(&articles.urls),
    }
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
