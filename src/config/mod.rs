//! The site's configuration (`config.toml`): what it may contain, its
//! defaults, and the checks that make every later use of it safe.
//! [`Config::parse`] is pure: it takes the text and the name to use in
//! messages; the command layer reads `config.toml` (`commands::load_config`).
//! Every other module may read it; it imports only the small modules
//! below it (`address`, `fs`, `text`), so no import cycle can run through it.

pub mod bounces;
pub mod email;
pub mod send;

use std::path::{Component, Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;
use url::Url;

use crate::error_kind::{ErrorKind, HasKind};

/// The configuration file's name inside the site root.
pub const CONFIG_FILE: &str = "config.toml";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub site: SiteConfig,
    #[serde(default)]
    pub feeds: FeedConfig,
    #[serde(default)]
    pub email: email::EmailConfig,
    /// `[send]`: subscribers, ledger, retries and rates.
    #[serde(default)]
    pub send: send::SendConfig,
    /// `[smtp]`: the mail server.
    #[serde(default)]
    pub smtp: send::SmtpConfig,
    /// `[serve]`: the signup and unsubscribe server.
    #[serde(default)]
    pub serve: ServeConfig,
    /// `[bounces]`: where bounces and complaints come back, and what they do.
    #[serde(default)]
    pub bounces: bounces::BounceConfig,
}

/// `[serve]`: what `pressroom serve` listens on and how it treats clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address and port to listen on (`--listen` overrides it).
    pub listen: std::net::SocketAddr,
    /// Path the routes live under, e.g. `/newsletter/`; starts and ends
    /// with `/`.
    pub path_prefix: String,
    /// The public URL of the path prefix, as readers reach it through the
    /// reverse proxy; confirmation links start with it. Default: the
    /// folder of `email.unsubscribe_url`.
    pub public_url: Option<Url>,
    /// Proxies whose `X-Forwarded-For` is believed (e.g. `["127.0.0.1"]`
    /// behind Caddy or nginx on the same host). Empty: the header is
    /// ignored and the connection's address is the client's.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long a client may take to send a request's head, or its
    /// whole request, and how long an idle connection is kept, in seconds.
    pub read_timeout_seconds: u64,
    /// How long a confirmation link works, in hours.
    pub confirm_hours: u64,
    /// Signup requests one client may make per hour.
    pub signups_per_client_per_hour: u32,
    /// Confirmation emails one address may get per hour.
    pub signups_per_address_per_hour: u32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            path_prefix: "/".to_owned(),
            public_url: None,
            trusted_proxies: Vec::new(),
            read_timeout_seconds: 10,
            confirm_hours: 48,
            signups_per_client_per_hour: 10,
            signups_per_address_per_hour: 3,
        }
    }
}

/// `[site]`: who publishes, where, and in which time zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site's name: feed titles, email footers.
    pub title: String,
    /// One line about the site: RSS `<description>`, Atom `<subtitle>`.
    #[serde(default)]
    pub description: String,
    /// Absolute URL the site is served from; every link is made absolute
    /// against it.
    #[serde(deserialize_with = "absolute_url")]
    pub base_url: Url,
    /// Default author for articles that do not name one.
    pub author: String,
    /// Language tag of the content (RSS `<language>`, `xml:lang`).
    #[serde(default = "default_language")]
    pub language: String,
    /// IANA time zone for dates written without an offset.
    #[serde(default = "default_timezone", deserialize_with = "time_zone")]
    pub timezone: Tz,
    /// Rights statement (RSS `<copyright>`, Atom `<rights>`).
    #[serde(default)]
    pub copyright: Option<String>,
    /// Small square icon (Atom `<icon>`, JSON `favicon`); relative to base_url.
    #[serde(default)]
    pub icon: Option<String>,
    /// Larger logo (RSS `<image>`, Atom `<logo>`, JSON `icon`); relative to base_url.
    #[serde(default)]
    pub logo: Option<String>,
    /// Where an article lives: `{slug}`, `{year}`, `{month}`, `{day}` are replaced.
    #[serde(default = "default_permalink")]
    pub permalink: String,
    /// Folder of articles, relative to the site root.
    #[serde(default = "default_content_dir")]
    pub content_dir: PathBuf,
    /// Folder that `build` writes, relative to the site root.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
}

/// `[feeds]`: which feeds to write and what they carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// RSS 2.0 file, relative to output_dir; empty to skip.
    pub rss: PathBuf,
    /// Atom 1.0 file, relative to output_dir; empty to skip.
    pub atom: PathBuf,
    /// JSON Feed 1.1 file, relative to output_dir; empty to skip.
    pub json: PathBuf,
    /// Items per feed, newest first; 0 keeps every published article.
    pub limit: usize,
    /// Full article HTML in the feeds (else the summary only).
    pub full_content: bool,
    /// Append each article's call to action to its full content.
    pub append_cta: bool,
    /// Also write one set of feeds per tag under `tags/<tag>/`.
    pub tag_feeds: bool,
    /// WebSub hub to announce (`<link rel="hub">`).
    pub hub: Option<Url>,
    /// The authority in `tag:` ids; defaults to base_url's host. Set it
    /// before moving the site to another domain so ids stay the same.
    pub id_domain: Option<String>,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            rss: PathBuf::from("rss.xml"),
            atom: PathBuf::from("atom.xml"),
            json: PathBuf::from("feed.json"),
            limit: 20,
            full_content: true,
            append_cta: true,
            tag_feeds: true,
            hub: None,
            id_domain: None,
        }
    }
}

fn default_language() -> String {
    "en".into()
}
fn default_timezone() -> Tz {
    Tz::UTC
}
/// A URL with a scheme, or a message that shows how one looks.
pub fn absolute_url<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
    let text = String::deserialize(deserializer)?;
    Url::parse(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not an absolute URL ({e}); write it in full, like https://example.org/"
        ))
    })
}

fn time_zone<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{name}` is not an IANA time zone name (such as Europe/Berlin, America/New_York or UTC)"
        ))
    })
}
fn default_permalink() -> String {
    "/{slug}/".into()
}
fn default_content_dir() -> PathBuf {
    PathBuf::from("content")
}
fn default_output_dir() -> PathBuf {
    PathBuf::from("public")
}

/// Every problem found in a configuration, one per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl HasKind for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

impl Config {
    /// Parses and checks a configuration. `name` is the file name used in
    /// messages.
    pub fn parse(name: &str, text: &str) -> Result<Config, ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let deserializer = toml::Deserializer::new(text);
        let mut config: Config =
            serde_path_to_error::deserialize(deserializer).map_err(|e| ConfigError {
                problems: vec![toml_problem(name, text, &e)],
            })?;
        let problems = config.validate(name, text);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    fn validate(&mut self, name: &str, text: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            let line = key_line(text, key).unwrap_or(1);
            problems.push(format!("{name}:{line}: {key}: {message}"));
        };

        let site = &mut self.site;
        if site.title.trim().is_empty() {
            problem("site.title", "must not be empty".into());
        }
        if site.author.trim().is_empty() {
            problem("site.author", "must not be empty".into());
        }
        if !matches!(site.base_url.scheme(), "http" | "https") || site.base_url.host_str().is_none()
        {
            problem(
                "site.base_url",
                format!("`{}` is not an http(s) URL with a host", site.base_url),
            );
        }
        if !site.base_url.path().ends_with('/') {
            let path = format!("{}/", site.base_url.path());
            site.base_url.set_path(&path);
        }
        site.base_url.set_query(None);
        site.base_url.set_fragment(None);
        if !site.permalink.contains("{slug}") {
            problem(
                "site.permalink",
                format!("`{}` must contain {{slug}}", site.permalink),
            );
        }
        if let Some(bad) = unknown_placeholder(&site.permalink) {
            problem(
                "site.permalink",
                format!(
                    "unknown placeholder `{{{bad}}}`; use {{slug}}, {{year}}, {{month}} or {{day}}"
                ),
            );
        }
        for (key, path) in [
            ("site.content_dir", &site.content_dir),
            ("site.output_dir", &site.output_dir),
            ("feeds.rss", &self.feeds.rss),
            ("feeds.atom", &self.feeds.atom),
            ("feeds.json", &self.feeds.json),
        ] {
            if !is_inside(path) {
                problem(
                    key,
                    format!(
                        "`{}` must be a relative path that stays inside the site",
                        path.display()
                    ),
                );
            }
        }
        let prefix = &self.serve.path_prefix;
        if !prefix.starts_with('/')
            || !prefix.ends_with('/')
            || prefix.contains("//")
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-_.~".contains(c))
        {
            problem(
                "serve.path_prefix",
                format!("`{prefix}` must start and end with `/`, e.g. \"/newsletter/\", and use only letters, digits, `-`, `_`, `.`, `~`"),
            );
        }
        if let Some(url) = &self.serve.public_url {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                problem(
                    "serve.public_url",
                    format!("`{url}` is not an http(s) URL with a host"),
                );
            }
        }
        if self.serve.read_timeout_seconds == 0 {
            problem("serve.read_timeout_seconds", "must be at least 1".into());
        }
        if self.serve.confirm_hours == 0 {
            problem("serve.confirm_hours", "must be at least 1".into());
        }
        if self.bounces.soft_limit == 0 {
            problem("bounces.soft_limit", "must be at least 1".into());
        }
        if self.bounces.soft_days == 0 {
            problem("bounces.soft_days", "must be at least 1".into());
        }
        if self.site.output_dir.as_os_str().is_empty() {
            problem("site.output_dir", "must not be empty".into());
        }
        if let Some(domain) = &self.feeds.id_domain {
            if domain.is_empty()
                || !domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                problem(
                    "feeds.id_domain",
                    format!("`{domain}` is not a domain name"),
                );
            }
        }
        problems
    }

    /// The authority of `tag:` ids, lower case.
    pub fn id_domain(&self) -> String {
        self.feeds
            .id_domain
            .clone()
            .or_else(|| self.site.base_url.host_str().map(str::to_owned))
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    /// An absolute URL for a site-relative reference such as the logo.
    pub fn site_url(&self, reference: &str) -> String {
        self.site
            .base_url
            .join(reference.trim_start_matches('/'))
            .map(String::from)
            .unwrap_or_else(|_| reference.to_owned())
    }
}

/// The 1-based line where the dotted `key` (`email.from`) is set, from
/// the spans of the parsed document: its `from = ` line inside `[email]`
/// (or `email.from = `, or `"from" = `, wherever TOML puts it), or, when
/// it is not set, the line where its table starts; None when neither is
/// in `text` (or `text` is not TOML).
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = document.as_table();
    let mut found = None;
    for segment in key.split('.') {
        let Some((key, item)) = table.get_key_value(segment) else {
            break;
        };
        found = key.span().or_else(|| item.span()).or(found);
        match item.as_table_like() {
            Some(inner) => table = inner,
            None => break,
        }
    }
    found.map(|span| line_of(text, span.start))
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// `name:line: key: message` for a TOML syntax or type error, the key
/// being the dotted path serde was reading (`site.timezone`). A missing
/// key is named in full and placed on its table's line.
fn toml_problem(name: &str, text: &str, e: &serde_path_to_error::Error<toml::de::Error>) -> String {
    let inner = e.inner();
    let line = inner.span().map_or(1, |span| line_of(text, span.start));
    let message = inner.message().trim();
    let path = e.path().to_string();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    match (missing, path.as_str()) {
        (Some(field), ".") => format!("{name}:{line}: {field}: required but missing"),
        (Some(field), table) => format!(
            "{name}:{line}: {table}.{field}: required but missing; add `{field} = …` under [{table}]"
        ),
        (None, ".") => format!("{name}:{line}: {message}"),
        (None, key) => {
            // serde says "unknown field `x`, expected one of …"; the path
            // already names x, and TOML calls it a key.
            let message = match message.strip_prefix("unknown field `") {
                Some(rest) => match rest.split_once("`, ") {
                    Some((_, expected)) => format!("unknown key, {expected}"),
                    None => "unknown key".to_owned(),
                },
                None => message.to_owned(),
            };
            format!("{name}:{line}: {key}: {message}")
        }
    }
}

fn unknown_placeholder(pattern: &str) -> Option<String> {
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        let name = &after[..end];
        if !matches!(name, "slug" | "year" | "month" | "day") {
            return Some(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    None
}

/// True when `path` is relative and never climbs out with `..`.
pub fn is_inside(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[site]
title = "Dispatch"
base_url = "https://example.com/blog"
author = "Mara"
timezone = "Europe/Berlin"
"#;

    #[test]
    fn a_key_is_found_in_its_own_table() {
        let text = "[site]\ntitle = 'T'\nfrom = 'not this one'\n\n[ email ]\nfrom_name = 'N'\nfrom = 'a@b.example'\n\n[email.utm]\ncampaign = 'c'\n[feeds]\n";
        assert_eq!(key_line(text, "email.from"), Some(7));
        assert_eq!(key_line(text, "email.from_name"), Some(6));
        assert_eq!(key_line(text, "email.utm.campaign"), Some(10));
        assert_eq!(key_line(text, "site.title"), Some(2));
        // Not set: the line of its table, if there is one.
        assert_eq!(key_line(text, "feeds.limit"), Some(11));
        assert_eq!(key_line(text, "email.list_id"), Some(5));
        assert_eq!(key_line(text, "send.subscribers"), None);
    }

    /// Problems found after parsing are placed by the parsed document's
    /// spans, not by scanning lines: a dotted key, a quoted key, and a
    /// multi-line string that holds a line looking like a table header.
    #[test]
    fn problems_are_placed_on_dotted_and_quoted_keys_past_multi_line_strings() {
        let dotted = "site.title = \"Dispatch\"\nsite.base_url = \"https://example.com/\"\nsite.author = \"Mara\"\nsite.permalink = \"/posts/\"\nfeeds.rss = \"../rss.xml\"\n";
        let err = Config::parse("config.toml", dotted).unwrap_err();
        assert_eq!(
            err.problems,
            [
                "config.toml:4: site.permalink: `/posts/` must contain {slug}",
                "config.toml:5: feeds.rss: `../rss.xml` must be a relative path that stays inside the site",
            ]
        );

        let tricky = r#"[site]
title = "Dispatch"
description = """
A newsletter.
[feeds]
author = "not this one"
"""
"base_url" = "https://example.com/"
author = ""
'permalink' = "/posts/"
"#;
        let err = Config::parse("config.toml", tricky).unwrap_err();
        assert_eq!(
            err.problems,
            [
                "config.toml:9: site.author: must not be empty",
                "config.toml:10: site.permalink: `/posts/` must contain {slug}",
            ]
        );
        assert_eq!(key_line(tricky, "feeds.rss"), None);
        assert_eq!(key_line(tricky, "site.language"), Some(1));
        let inline = "[feeds]\nlimit = 3\n[email]\nutm = { source = 'n', campaign = 'c' }\n";
        assert_eq!(key_line(inline, "email.utm.campaign"), Some(4));
        assert_eq!(key_line("not = [toml", "site.title"), None);
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse("config.toml", MINIMAL).unwrap();
        assert_eq!(c.site.base_url.as_str(), "https://example.com/blog/");
        assert_eq!(c.feeds.limit, 20);
        assert_eq!(c.site.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(c.id_domain(), "example.com");
        assert_eq!(c.site_url("/logo.png"), "https://example.com/blog/logo.png");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = format!("{MINIMAL}colour = \"red\"\n");
        let err = Config::parse("config.toml", &text).unwrap_err().to_string();
        assert!(
            err.starts_with("config.toml:7: site.colour: unknown key, expected one of `title`"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_key_is_named_in_full_on_its_table_line() {
        let text = MINIMAL.replace("author = \"Mara\"\n", "");
        let err = Config::parse("config.toml", &text).unwrap_err().to_string();
        let table = text.lines().position(|l| l == "[site]").unwrap() + 1;
        assert_eq!(
            err,
            format!("config.toml:{table}: site.author: required but missing; add `author = …` under [site]")
        );
    }

    #[test]
    fn a_relative_base_url_says_how_a_url_looks() {
        let text = MINIMAL.replace("https://example.com/blog", "example.com/blog");
        let err = Config::parse("config.toml", &text).unwrap_err().to_string();
        assert!(
            err.contains("site.base_url: `example.com/blog` is not an absolute URL"),
            "{err}"
        );
        assert!(err.contains("like https://example.org/"), "{err}");
    }

    #[test]
    fn unknown_time_zone_is_an_error() {
        let text = MINIMAL.replace("Europe/Berlin", "Mars/Olympus");
        let err = Config::parse("config.toml", &text).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "config.toml:6: site.timezone: `Mars/Olympus` is not an IANA time zone"
            ),
            "{err}"
        );
    }

    #[test]
    fn all_semantic_problems_are_listed_together() {
        let text = format!(
            "{}[feeds]\nrss = \"../../etc/rss.xml\"\n",
            MINIMAL.replace(
                "author = \"Mara\"",
                "author = \"\"\npermalink = \"/{title}/\""
            )
        );
        let err = Config::parse("config.toml", &text).unwrap_err();
        let all = err.problems.join("\n");
        assert_eq!(err.problems.len(), 4, "{all}");
        assert!(all.contains("site.author: must not be empty"), "{all}");
        assert!(
            all.contains("site.permalink: `/{title}/` must contain {slug}"),
            "{all}"
        );
        assert!(all.contains("unknown placeholder `{title}`"), "{all}");
        assert!(
            all.contains("feeds.rss: `../../etc/rss.xml` must be a relative path"),
            "{all}"
        );
    }
}
