//! The values email templates see. Article text is passed as data and
//! never rendered as a template, so `{{ 7*7 }}` in a title or body shows
//! up literally; `html` and `cta_html` are marked safe (they are already
//! sanitized HTML), every other value is escaped in `.html` templates.
//!
//! # Template context
//!
//! | name | value |
//! | --- | --- |
//! | `site.title`, `site.description`, `site.author`, `site.language` | from `[site]` |
//! | `site.url` | the site's base URL (with campaign parameters when `[email.utm]` is set) |
//! | `site.postal_address` | `email.postal_address`, or empty |
//! | `site.copyright` | `site.copyright`, or empty |
//! | `site.logo`, `site.icon` | absolute URLs, or none |
//! | `articles` | the articles of this email, newest first (fields below) |
//! | `article` | `articles[0]`, for per-article templates |
//! | `kind` | `"digest"` or `"per-article"` |
//! | `content` | `"full"` or `"summary"`: what `email.content` resolved to |
//! | `recipient.email`, `recipient.name` | the reader (name may be empty) |
//! | `recipient.fields` | any other subscriber columns, by name |
//! | `unsubscribe_url` | the reader's signed one-click unsubscribe link |
//! | `issue.id` | the issue's stable id, e.g. `2025-03-09-3f2a…` |
//! | `issue.date`, `issue.date_iso` | the issue date, e.g. `9 March 2025`, and RFC 3339 |
//!
//! Each article has:
//!
//! | name | value |
//! | --- | --- |
//! | `title`, `subtitle`, `description`, `author`, `read_time` | front matter (`subtitle`, `description` may be none) |
//! | `publish_date`, `publish_date_iso` | e.g. `9 March 2025` (site time zone), and RFC 3339 |
//! | `created_date`, `created_date_iso`, `updated_date`, `updated_date_iso` | the same, or none |
//! | `hero_image` | absolute URL, or none |
//! | `hero_alt` | front matter `heroImageAlt`/`hero_image_alt`, else the title |
//! | `cta` | the call to action as written (Markdown), or none |
//! | `cta_html` | the call to action as inline HTML (safe) |
//! | `cta_text` | the call to action as plain text |
//! | `cta_url` | the first link in the call to action, else the article's URL |
//! | `cta_label` | that link's text, else `Read the article` |
//! | `cta_has_link` | whether the call to action has a link |
//! | `slug`, `id`, `tags`, `draft`, `source` | front matter / file path |
//! | `url` | the article's absolute URL |
//! | `html` | the whole article as HTML (absolute URLs, sanitized; safe) |
//! | `text` | the whole article as plain text, wrapped at 76 columns, links as numbered references |
//! | `summary` | `description`, else `subtitle`, else the first paragraph |
//! | `extra` | front-matter keys the format does not define, by name |
//!
//! With `[email.utm]`, every link to the site's host (`url`, `cta_url`,
//! links inside `html`, `cta_html` and `text`, `site.url`) carries
//! `utm_source`, `utm_medium` and `utm_campaign`; the unsubscribe link
//! never does.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use minijinja::Value;
use serde::Serialize;

use super::links::{collect_urls, cta_parts, Campaign};
use super::Recipient;
use crate::config::email::{Content, Mode};
use crate::content::{Article, Site};

/// Column width of the plain-text part.
pub const TEXT_WIDTH: usize = 76;

#[derive(Serialize)]
struct SiteCtx {
    title: String,
    description: String,
    url: String,
    author: String,
    language: String,
    postal_address: String,
    copyright: String,
    logo: Option<String>,
    icon: Option<String>,
}

#[derive(Serialize)]
struct ArticleCtx {
    title: String,
    subtitle: Option<String>,
    description: Option<String>,
    author: String,
    read_time: String,
    publish_date: String,
    publish_date_iso: String,
    created_date: Option<String>,
    created_date_iso: Option<String>,
    updated_date: Option<String>,
    updated_date_iso: Option<String>,
    hero_image: Option<String>,
    hero_alt: String,
    cta: Option<String>,
    cta_html: Option<Value>,
    cta_text: Option<String>,
    cta_url: String,
    cta_label: String,
    cta_has_link: bool,
    slug: String,
    id: String,
    tags: Vec<String>,
    draft: bool,
    source: String,
    url: String,
    html: Value,
    text: String,
    summary: String,
    extra: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Serialize)]
struct RecipientCtx<'a> {
    email: &'a str,
    name: String,
    fields: Value,
}

#[derive(Serialize)]
struct IssueCtx<'a> {
    id: &'a str,
    date: String,
    date_iso: String,
}

/// Everything [`build`] needs besides the site.
pub(crate) struct Inputs<'a> {
    /// The articles as [`article_value`] made them, newest first.
    pub articles: &'a [Value],
    pub kind: Mode,
    pub content: Content,
    pub issue_id: &'a str,
    pub issue_date: DateTime<FixedOffset>,
}

/// One article as the templates see it (the plain-text body included),
/// and the URLs in its content. Pure; the article's own text is data.
pub(crate) fn article_value(
    site: &Site,
    article: &Article,
    campaign: Option<&Campaign<'_>>,
) -> Result<(Value, BTreeSet<String>), String> {
    let tz = site.config.site.timezone;
    let tag = |url: &str| campaign.map_or_else(|| url.to_owned(), |c| c.tag(url));
    let tag_html = |html: &str| campaign.map_or_else(|| html.to_owned(), |c| c.tag_html(html));
    let url = tag(article.url.as_str());
    let markdown = article.markdown().map_err(|problem| problem.to_string())?;
    let html = tag_html(&crate::content::html::render_markdown(
        &markdown,
        &article.url,
    ));
    let text = html_to_text(&html).map_err(|e| {
        format!(
            "{}: cannot convert the article to plain text: {e}",
            article.source
        )
    })?;
    let cta = article
        .cta
        .as_deref()
        .map(|cta| cta_parts(cta, &article.url));
    let cta_has_link = cta.as_ref().is_some_and(|c| c.url.is_some());
    let cta_url = cta
        .as_ref()
        .and_then(|c| c.url.as_deref())
        .map_or_else(|| url.clone(), tag);
    let cta_label = cta
        .as_ref()
        .and_then(|c| c.label.clone())
        .unwrap_or_else(|| "Read the article".to_owned());
    let cta_html = article.cta_html().map(|h| tag_html(&h));
    let mut urls = collect_urls(&html);
    if let Some(cta_html) = &cta_html {
        urls.extend(collect_urls(cta_html));
    }
    urls.extend(article.hero_image.clone());
    let hero_alt = ["heroImageAlt", "hero_image_alt", "heroAlt", "hero_alt"]
        .iter()
        .find_map(|key| article.extra.get(*key).and_then(|v| v.as_str()))
        .map(crate::text::single_line)
        .filter(|alt| !alt.is_empty())
        .unwrap_or_else(|| crate::text::single_line(&article.title));
    let summary = article
        .summary()
        .map(crate::text::single_line)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| crate::content::summary::first_paragraph(&markdown));
    let ctx = ArticleCtx {
        title: crate::text::single_line(&article.title),
        subtitle: article.subtitle.as_deref().map(crate::text::single_line),
        description: article.description.as_deref().map(crate::text::single_line),
        author: crate::text::single_line(&article.author),
        read_time: crate::text::single_line(&article.read_time),
        publish_date: human_date(article.publish_date, tz),
        publish_date_iso: article.publish_date.to_rfc3339(),
        created_date: article.created_date.map(|d| human_date(d, tz)),
        created_date_iso: article.created_date.map(|d| d.to_rfc3339()),
        updated_date: article.updated_date.map(|d| human_date(d, tz)),
        updated_date_iso: article.updated_date.map(|d| d.to_rfc3339()),
        hero_image: article.hero_image.clone(),
        hero_alt,
        cta: article.cta.clone(),
        cta_html: cta_html.map(Value::from_safe_string),
        cta_text: cta.as_ref().map(|c| c.text.clone()),
        cta_url,
        cta_label,
        cta_has_link,
        slug: article.slug.to_string(),
        id: article.id.clone(),
        tags: article.tags.clone(),
        draft: article.draft,
        source: article.source.clone(),
        url,
        html: Value::from_safe_string(html),
        text,
        summary,
        extra: article.extra.clone(),
    };
    Ok((Value::from_serialize(&ctx), urls))
}

/// The context of one issue, the same for every recipient (everything
/// but `recipient` and `unsubscribe_url`; see [`for_recipient`]).
pub(crate) fn build(site: &Site, inputs: &Inputs<'_>, campaign: Option<&Campaign<'_>>) -> Value {
    let config = &site.config;
    let tag = |url: &str| campaign.map_or_else(|| url.to_owned(), |c| c.tag(url));
    let articles = inputs.articles.to_vec();
    let first = articles.first().cloned().unwrap_or_default();
    let site_ctx = SiteCtx {
        title: crate::text::single_line(&config.site.title),
        description: crate::text::single_line(&config.site.description),
        url: tag(config.site.base_url.as_str()),
        author: crate::text::single_line(&config.site.author),
        language: crate::text::single_line(&config.site.language),
        postal_address: config
            .email
            .postal_address
            .as_deref()
            .map(crate::text::single_line)
            .unwrap_or_default(),
        copyright: config
            .site
            .copyright
            .as_deref()
            .map(crate::text::single_line)
            .unwrap_or_default(),
        logo: config.site.logo.as_deref().map(|l| config.site_url(l)),
        icon: config.site.icon.as_deref().map(|i| config.site_url(i)),
    };
    let issue = IssueCtx {
        id: inputs.issue_id,
        date: human_date(inputs.issue_date, config.site.timezone),
        date_iso: inputs.issue_date.to_rfc3339(),
    };
    minijinja::context! {
        site => Value::from_serialize(&site_ctx),
        articles => articles,
        article => first,
        kind => Value::from_serialize(inputs.kind),
        content => Value::from_serialize(inputs.content),
        issue => Value::from_serialize(&issue),
    }
}

/// The whole context of one email: the issue's context from [`build`]
/// with `recipient` and `unsubscribe_url`. `fields` stands in for the
/// recipient's fields when given (see [`RecordingFields`]).
pub(crate) fn for_recipient(
    issue: &Value,
    recipient: &Recipient,
    unsubscribe_url: &str,
    fields: Option<Value>,
) -> Value {
    let recipient = RecipientCtx {
        email: recipient.email.as_str(),
        name: recipient
            .name
            .as_deref()
            .map(crate::text::single_line)
            .unwrap_or_default(),
        fields: fields.unwrap_or_else(|| Value::from_serialize(&recipient.fields)),
    };
    minijinja::context! {
        recipient => Value::from_serialize(&recipient),
        unsubscribe_url => unsubscribe_url,
        ..issue.clone()
    }
}

/// A recipient's fields that note every name looked up and not found, to
/// tell which subscriber column a template needed.
#[derive(Debug)]
pub(crate) struct RecordingFields {
    fields: BTreeMap<String, String>,
    missing: std::sync::Mutex<Vec<String>>,
}

impl RecordingFields {
    pub(crate) fn new(fields: &BTreeMap<String, String>) -> std::sync::Arc<RecordingFields> {
        std::sync::Arc::new(RecordingFields {
            fields: fields.clone(),
            missing: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The names looked up and not found, in order.
    pub(crate) fn missing(&self) -> Vec<String> {
        self.missing
            .lock()
            .map(|m| m.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

impl minijinja::value::Object for RecordingFields {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        match self.fields.get(name) {
            Some(value) => Some(Value::from(value.as_str())),
            None => {
                if let Ok(mut missing) = self.missing.lock() {
                    missing.push(name.to_owned());
                }
                None
            }
        }
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(
            self.fields
                .keys()
                .map(|k| Value::from(k.as_str()))
                .collect(),
        )
    }
}

/// `9 March 2025`, in the site's time zone.
pub fn human_date(date: DateTime<FixedOffset>, tz: Tz) -> String {
    date.with_timezone(&tz).format("%-d %B %Y").to_string()
}

/// Article HTML as readable plain text: wrapped, headings marked, links
/// as numbered references listed after the text. Preformatted blocks
/// (code) are kept line for line and indented, never wrapped: a wrapped
/// command or DNS record is a wrong one.
pub fn html_to_text(html: &str) -> Result<String, html2text::Error> {
    let (html, blocks) = take_pre_blocks(html);
    let text = html2text::config::plain()
        .link_footnotes(true)
        .no_link_wrapping()
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), TEXT_WIDTH)?;
    let mut text = tidy_text(&text);
    for (i, block) in blocks.iter().enumerate() {
        let indented: Vec<String> = block
            .trim_end_matches('\n')
            .lines()
            .map(|l| format!("    {l}").trim_end().to_owned())
            .collect();
        text = text.replace(&pre_marker(i), &indented.join("\n"));
    }
    Ok(text)
}

fn pre_marker(i: usize) -> String {
    format!("PRESSROOMPREFORMATTED{i}X")
}

/// Replaces each `<pre>` with a marker paragraph and returns the blocks'
/// text (entities decoded).
fn take_pre_blocks(html: &str) -> (String, Vec<String>) {
    use lol_html::html_content::ContentType;
    use lol_html::{element, rewrite_str, text, RewriteStrSettings};
    use std::cell::RefCell;
    let blocks: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let settings = RewriteStrSettings {
        element_content_handlers: vec![
            element!("pre", |el| {
                let mut blocks = blocks.borrow_mut();
                el.before(
                    &format!("<p>{}</p>", pre_marker(blocks.len())),
                    ContentType::Html,
                );
                blocks.push(String::new());
                el.remove();
                Ok(())
            }),
            text!("pre", |t| {
                if let Some(block) = blocks.borrow_mut().last_mut() {
                    block.push_str(&super::links::decode_entities(t.as_str()));
                }
                Ok(())
            }),
        ],
        ..RewriteStrSettings::new()
    };
    match rewrite_str(html, settings) {
        Ok(out) => (out, blocks.into_inner()),
        Err(_) => (html.to_owned(), Vec::new()),
    }
}

/// Trailing spaces removed, runs of blank lines folded to one, no blank
/// lines at either end.
pub fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_tidied() {
        assert_eq!(tidy_text("\n\na  \n\n\n\nb\nc\n\n"), "a\n\nb\nc");
    }

    #[test]
    fn html_becomes_wrapped_text_with_references() {
        let text = html_to_text(
            "<h2>Heading</h2><p>Read <a href=\"https://example.com/x\">the guide</a> now. \
             A long sentence that goes on and on so that it has to be wrapped somewhere.</p>",
        )
        .unwrap();
        assert!(text.contains("## Heading"), "{text}");
        assert!(text.contains("[the guide][1]"), "{text}");
        assert!(text.contains("[1]: https://example.com/x"), "{text}");
        assert!(
            text.lines().all(|l| l.chars().count() <= TEXT_WIDTH),
            "{text}"
        );
    }
}
#[cfg(test)]
mod pre_tests {
    #[test]
    fn pre_lines_are_not_broken() {
        let long = "x ".repeat(60);
        let text = super::html_to_text(&format!(
            "<pre><code>dispatch.example.com.  IN TXT  \"v=spf1 include:_spf.mailprovider.example -all\"\n</code></pre><p>{long}</p><blockquote><p>{long}</p></blockquote><ul><li>{long}</li></ul>"
        ))
        .unwrap();
        println!("{text}");
        assert!(text.contains("    dispatch.example.com.  IN TXT  \"v=spf1 include:_spf.mailprovider.example -all\"\n\n"), "{text}");
        assert!(
            text.lines()
                .all(|l| l.chars().count() <= 80 || l.contains("spf1")),
            "{text}"
        );
    }
}
