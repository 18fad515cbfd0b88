//! What a site's own files say the feeds must contain: config.toml and the
//! front matter of every article, read here with serde_yaml, toml and
//! chrono-tz, independently of pressroom's own loader, so the tests compare
//! the output with the source rather than with the code under test.

use std::path::Path;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_yaml::Value;
use url::Url;

use crate::common::{files_under, read, relative, NOW};

/// The parts of config.toml the expectations need.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub title: String,
    pub base_url: Url,
    pub author: String,
    pub timezone: Tz,
    pub permalink: String,
    pub id_domain: String,
}

/// One article as its file describes it.
#[derive(Debug, Clone)]
pub struct SourceArticle {
    /// Path relative to the site root, e.g. `content/2025/json-feed.md`.
    pub source: String,
    pub title: String,
    /// The article's author, else the site's.
    pub author: String,
    pub description: Option<String>,
    pub subtitle: Option<String>,
    pub publish_date: DateTime<FixedOffset>,
    pub updated_date: Option<DateTime<FixedOffset>>,
    pub hero_image: Option<String>,
    pub cta: Option<String>,
    pub tags: Vec<String>,
    pub draft: bool,
    /// The id the feeds must carry: front matter `id`, else the `tag:` URI
    /// from the id domain, the local publish date and the path.
    pub id: String,
    /// The article's absolute URL from the permalink pattern.
    pub url: String,
    /// The Markdown body.
    pub body: String,
}

impl SourceArticle {
    pub fn is_published(&self, now: DateTime<FixedOffset>) -> bool {
        !self.draft && self.publish_date <= now
    }

    /// The summary the feeds carry: description, else subtitle.
    pub fn summary(&self) -> Option<&str> {
        self.description.as_deref().or(self.subtitle.as_deref())
    }

    /// Newest of publish and update dates.
    pub fn updated(&self) -> DateTime<FixedOffset> {
        self.updated_date
            .map_or(self.publish_date, |u| u.max(self.publish_date))
    }

    /// The `## ` headings of the body, as written.
    pub fn headings(&self) -> Vec<&str> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(str::trim)
            .collect()
    }
}

/// The fixed time of every run.
pub fn now() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(NOW).expect("NOW is RFC 3339")
}

/// Reads config.toml of the site at `root`.
pub fn config(root: &Path) -> SourceConfig {
    let text = read(&root.join("config.toml"));
    let doc: toml::Table = toml::from_str(&text).expect("config.toml is TOML");
    let site = doc["site"].as_table().expect("[site]");
    let get = |key: &str| site.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let base_url = Url::parse(&get("base_url").expect("site.base_url")).expect("base_url is a URL");
    let id_domain = doc
        .get("feeds")
        .and_then(|f| f.get("id_domain"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| base_url.host_str().expect("base_url has a host").to_owned());
    SourceConfig {
        title: get("title").expect("site.title"),
        author: get("author").expect("site.author"),
        timezone: get("timezone")
            .unwrap_or_else(|| "UTC".into())
            .parse()
            .expect("site.timezone is an IANA zone"),
        permalink: get("permalink").unwrap_or_else(|| "/{slug}/".into()),
        base_url,
        id_domain,
    }
}

/// Every article of the site at `root`, newest first.
pub fn articles(root: &Path) -> Vec<SourceArticle> {
    let config = config(root);
    let content = root.join("content");
    let mut articles: Vec<SourceArticle> = files_under(&content)
        .into_iter()
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("md" | "markdown" | "txt")
            )
        })
        .map(|path| {
            let text = read(&path);
            article(
                &config,
                &relative(root, &path),
                &relative(&content, &path),
                &text,
            )
        })
        .collect();
    articles.sort_by(|a, b| {
        b.publish_date
            .cmp(&a.publish_date)
            .then_with(|| a.source.cmp(&b.source))
    });
    articles
}

/// The articles public at [`NOW`], newest first.
pub fn published(root: &Path) -> Vec<SourceArticle> {
    let now = now();
    articles(root)
        .into_iter()
        .filter(|a| a.is_published(now))
        .collect()
}

fn article(config: &SourceConfig, source: &str, in_content: &str, text: &str) -> SourceArticle {
    let rest = text
        .strip_prefix("---\n")
        .unwrap_or_else(|| panic!("{source}: no front matter"));
    let end = rest
        .find("\n---\n")
        .unwrap_or_else(|| panic!("{source}: front matter not closed"));
    let (yaml, body) = (&rest[..end], &rest[end + "\n---\n".len()..]);
    let fm: Value = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{source}: {e}"));
    let text = |key: &str| {
        fm.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let date = |key: &str| text(key).map(|d| parse_date(&d, config.timezone, source));
    let title = text("title").unwrap_or_else(|| panic!("{source}: no title"));
    let publish_date = date("publish_date").unwrap_or_else(|| panic!("{source}: no publish_date"));
    let slug = text("slug").unwrap_or_else(|| slug::slugify(&title));
    let local = publish_date.with_timezone(&config.timezone);
    let path = config
        .permalink
        .replace("{slug}", &slug)
        .replace("{year}", &format!("{:04}", local.year()))
        .replace("{month}", &format!("{:02}", local.month()))
        .replace("{day}", &format!("{:02}", local.day()));
    let url = config
        .base_url
        .join(path.trim_start_matches('/'))
        .expect("permalink joins")
        .to_string();
    let stem = in_content
        .rsplit_once('.')
        .map_or(in_content, |(stem, _)| stem);
    let id = text("id").unwrap_or_else(|| {
        format!(
            "tag:{},{}:{}",
            config.id_domain,
            local.format("%Y-%m-%d"),
            stem
        )
    });
    SourceArticle {
        source: source.to_owned(),
        author: text("author").unwrap_or_else(|| config.author.clone()),
        description: text("description"),
        subtitle: text("subtitle"),
        updated_date: date("updated_date"),
        hero_image: text("heroImage"),
        cta: text("cta"),
        tags: fm
            .get("tags")
            .and_then(Value::as_sequence)
            .map(|tags| {
                tags.iter()
                    .map(|t| t.as_str().expect("tags are text").to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        draft: fm.get("draft").and_then(Value::as_bool).unwrap_or(false),
        title,
        publish_date,
        id,
        url,
        body: body.to_owned(),
    }
}

/// `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` in the site's zone, or RFC 3339.
fn parse_date(value: &str, tz: Tz, source: &str) -> DateTime<FixedOffset> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(value) {
        return dt;
    }
    let naive = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight"))
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M"))
        .unwrap_or_else(|e| panic!("{source}: `{value}` is not a date: {e}"));
    tz.from_local_datetime(&naive)
        .single()
        .unwrap_or_else(|| panic!("{source}: `{value}` is not a single instant in {tz}"))
        .fixed_offset()
}

/// The text of a string with everything but letters and digits removed,
/// lower-cased: compares prose across Markdown, HTML and typographic quotes.
pub fn letters(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}
