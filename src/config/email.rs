//! `[email]` in `config.toml`: who the newsletter is from, how issues are
//! put together, and the list headers. Every key has a default, so a site
//! without an `[email]` table still previews; [`EmailConfig::problems`]
//! lists what `check` should flag before anything is sent.
//!
//! ```toml
//! [email]
//! from = "news@dispatch.example.com"      # required to build messages
//! from_name = "The Pressroom Dispatch"    # default: site.title
//! reply_to = "mara@dispatch.example.com"  # default: none
//! list_id = "dispatch.example.com"        # default: base_url's host
//! unsubscribe_mailto = "unsubscribe@dispatch.example.com"  # default: none
//! unsubscribe_url = "https://dispatch.example.com/unsubscribe"  # default: {base_url}unsubscribe
//! postal_address = "Pressroom Ltd, 1 Quay Street, Bristol BS1 4DJ, UK"
//! mode = "digest"                         # or "per-article"
//! digest_max = 10
//! content = "auto"                        # "auto", "full" or "summary"
//! subject_digest = "{{ site.title }}: {{ articles[0].title }}{% if articles|length > 1 %} and {{ articles|length - 1 }} more{% endif %}"
//! subject_single = "{{ article.title }}"
//!
//! [email.utm]                             # optional; off when absent
//! source = "newsletter"
//! medium = "email"
//! campaign = "spring-2025"                # default: the issue id
//! ```

use serde::{Deserialize, Serialize};
use url::Url;

use super::SiteConfig;
use crate::address::EmailAddress;

/// The default subject of a digest.
pub const DEFAULT_SUBJECT_DIGEST: &str = "{{ site.title }}: {{ articles[0].title }}{% if articles|length > 1 %} and {{ articles|length - 1 }} more{% endif %}";
/// The default subject of a one-article email.
pub const DEFAULT_SUBJECT_SINGLE: &str = "{{ article.title }}";

/// `[email]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Sender address. Optional so a site can preview before it has one;
    /// building a message without it fails and `check` flags it.
    pub from: Option<EmailAddress>,
    /// Sender name shown in inboxes; default: `site.title`.
    pub from_name: Option<String>,
    /// Where replies go; default: the sender.
    pub reply_to: Option<EmailAddress>,
    /// The `List-Id` (RFC 2919) identifier, a dot-atom such as
    /// `dispatch.example.com` (angle brackets optional); default: the
    /// host of `site.base_url`.
    pub list_id: Option<String>,
    /// Address for `List-Unsubscribe: <mailto:…?subject=unsubscribe>`.
    pub unsubscribe_mailto: Option<EmailAddress>,
    /// Base of the one-click unsubscribe link (`?token=…` is appended);
    /// must be https. Default: `{base_url}unsubscribe`.
    pub unsubscribe_url: Option<Url>,
    /// Postal address printed in the footer (required by CAN-SPAM and
    /// friends for commercial mail).
    pub postal_address: Option<String>,
    /// One email bundling new articles, or one email per article.
    pub mode: Mode,
    /// Most articles in one digest (newest first). At least 1.
    pub digest_max: usize,
    /// How much of each article an email carries. `auto` (the default)
    /// means the summary in a digest and the full article in a
    /// per-article email.
    pub content: ContentSetting,
    /// Subject of a digest: a template over the same context as the
    /// email templates (no autoescaping; folded onto one line).
    pub subject_digest: String,
    /// Subject of a per-article email, as above.
    pub subject_single: String,
    /// Campaign parameters added to links that point at the site.
    pub utm: Option<Utm>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            from: None,
            from_name: None,
            reply_to: None,
            list_id: None,
            unsubscribe_mailto: None,
            unsubscribe_url: None,
            postal_address: None,
            mode: Mode::Digest,
            digest_max: 10,
            content: ContentSetting::Auto,
            subject_digest: DEFAULT_SUBJECT_DIGEST.to_owned(),
            subject_single: DEFAULT_SUBJECT_SINGLE.to_owned(),
            utm: None,
        }
    }
}

/// `email.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One email with every new article (up to `digest_max`).
    Digest,
    /// One email per new article.
    PerArticle,
}

/// `email.content`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentSetting {
    /// Summary in digests, full article in per-article emails.
    Auto,
    /// The whole article.
    Full,
    /// Title, summary and a link to the article.
    Summary,
}

/// What one email carries, once `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Content {
    Full,
    Summary,
}

impl ContentSetting {
    /// The content for an email of this kind.
    pub fn resolve(self, kind: Mode) -> Content {
        match (self, kind) {
            (ContentSetting::Full, _) => Content::Full,
            (ContentSetting::Summary, _) => Content::Summary,
            (ContentSetting::Auto, Mode::Digest) => Content::Summary,
            (ContentSetting::Auto, Mode::PerArticle) => Content::Full,
        }
    }
}

/// `[email.utm]`: added as `utm_source`, `utm_medium`, `utm_campaign` to
/// every link whose host is the site's, keeping existing query strings
/// and fragments (parameters already present are not overwritten).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Utm {
    /// Default `newsletter`.
    pub source: String,
    /// Default `email`.
    pub medium: String,
    /// Default: the issue id.
    pub campaign: Option<String>,
}

impl Default for Utm {
    fn default() -> Self {
        Utm {
            source: "newsletter".into(),
            medium: "email".into(),
            campaign: None,
        }
    }
}

impl EmailConfig {
    /// The sender's display name: `from_name`, else the site title.
    pub fn from_name(&self, site: &SiteConfig) -> String {
        crate::text::single_line(self.from_name.as_deref().unwrap_or(&site.title))
    }

    /// The `List-Id` identifier without angle brackets, lower case.
    pub fn list_id(&self, site: &SiteConfig) -> String {
        match &self.list_id {
            Some(id) => id
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_ascii_lowercase(),
            None => site
                .base_url
                .host_str()
                .unwrap_or("localhost")
                .to_ascii_lowercase(),
        }
    }

    /// The unsubscribe page, without a token.
    pub fn unsubscribe_base(&self, site: &SiteConfig) -> Url {
        match &self.unsubscribe_url {
            Some(url) => url.clone(),
            None => site
                .base_url
                .join("unsubscribe")
                .unwrap_or_else(|_| site.base_url.clone()),
        }
    }

    /// The subject templates with their keys. Their syntax is checked
    /// where templates are compiled (`email::templates::subject_problems`).
    pub fn subjects(&self) -> [(&'static str, &str); 2] {
        [
            ("email.subject_digest", &self.subject_digest),
            ("email.subject_single", &self.subject_single),
        ]
    }

    /// Everything `check` should report about `[email]`, as
    /// `email.key: message` lines. A missing `from` is reported because
    /// nothing can be sent without it.
    pub fn problems(&self, site: &SiteConfig) -> Vec<String> {
        let mut problems = Vec::new();
        if self.from.is_none() {
            problems.push(
                "email.from: not set; emails need a sender, e.g. from = \"news@example.com\""
                    .to_owned(),
            );
        }
        if let Some(name) = &self.from_name {
            if crate::text::single_line(name).is_empty() {
                problems.push("email.from_name: must not be empty".into());
            }
        }
        let list_id = self.list_id(site);
        if !is_dot_atom(&list_id) || !list_id.contains('.') {
            problems.push(format!(
                "email.list_id: `{list_id}` is not a list identifier; use a domain-like name such as `news.example.com`"
            ));
        }
        let unsubscribe = self.unsubscribe_base(site);
        if unsubscribe.scheme() != "https" || unsubscribe.host_str().is_none() {
            problems.push(format!(
                "email.unsubscribe_url: `{unsubscribe}` must be an https URL (mail providers ignore other one-click links)"
            ));
        }
        if unsubscribe.fragment().is_some() {
            problems.push(format!(
                "email.unsubscribe_url: `{unsubscribe}` must not have a #fragment"
            ));
        }
        if self.digest_max == 0 {
            problems.push("email.digest_max: must be at least 1".into());
        }
        for (key, source) in self.subjects() {
            if source.trim().is_empty() {
                problems.push(format!("{key}: must not be empty"));
            }
        }
        if let Some(utm) = &self.utm {
            if utm.source.trim().is_empty() || utm.medium.trim().is_empty() {
                problems.push("email.utm: source and medium must not be empty".into());
            }
        }
        problems
    }
}

/// RFC 5322 `dot-atom-text`.
fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const SITE: &str =
        "[site]\ntitle = 'Dispatch'\nbase_url = 'https://dispatch.example.com/'\nauthor = 'Mara'\n";

    #[test]
    fn defaults_apply_without_an_email_table() {
        let config = Config::parse("config.toml", SITE).unwrap();
        let email = &config.email;
        assert_eq!(email.mode, Mode::Digest);
        assert_eq!(email.digest_max, 10);
        assert_eq!(email.content.resolve(Mode::Digest), Content::Summary);
        assert_eq!(email.content.resolve(Mode::PerArticle), Content::Full);
        assert_eq!(email.list_id(&config.site), "dispatch.example.com");
        assert_eq!(
            email.unsubscribe_base(&config.site).as_str(),
            "https://dispatch.example.com/unsubscribe"
        );
        assert_eq!(email.from_name(&config.site), "Dispatch");
        assert_eq!(
            email.problems(&config.site),
            ["email.from: not set; emails need a sender, e.g. from = \"news@example.com\""]
        );
    }

    #[test]
    fn a_full_email_table_parses() {
        let text = format!(
            "{SITE}[email]\nfrom = 'news@dispatch.example.com'\nfrom_name = 'The Dispatch'\nlist_id = '<News.Dispatch.example.com>'\nmode = 'per-article'\ncontent = 'summary'\nunsubscribe_mailto = 'leave@dispatch.example.com'\n[email.utm]\ncampaign = 'spring'\n"
        );
        let config = Config::parse("config.toml", &text).unwrap();
        let email = &config.email;
        assert_eq!(email.mode, Mode::PerArticle);
        assert_eq!(email.content.resolve(Mode::PerArticle), Content::Summary);
        assert_eq!(email.list_id(&config.site), "news.dispatch.example.com");
        let utm = email.utm.clone().unwrap();
        assert_eq!(utm.source, "newsletter");
        assert_eq!(utm.campaign.as_deref(), Some("spring"));
        assert!(email.problems(&config.site).is_empty());
    }

    #[test]
    fn bad_values_are_named() {
        let text = format!("{SITE}[email]\nfrom = 'news at example'\n");
        let err = Config::parse("config.toml", &text).unwrap_err().to_string();
        assert!(err.contains("config.toml:6"), "{err}");
        assert!(
            err.contains("`news at example` is not an email address"),
            "{err}"
        );

        let text = format!("{SITE}[email]\nfromm = 'x@example.com'\n");
        let err = Config::parse("config.toml", &text).unwrap_err().to_string();
        assert!(err.contains("email.fromm: unknown key"), "{err}");

        let text = format!(
            "{SITE}[email]\nfrom = 'a@example.com'\nunsubscribe_url = 'http://example.com/u'\ndigest_max = 0\nsubject_single = ' '\n"
        );
        let config = Config::parse("config.toml", &text).unwrap();
        let problems = config.email.problems(&config.site).join("\n");
        assert!(
            problems.contains("email.unsubscribe_url: `http://example.com/u` must be an https URL"),
            "{problems}"
        );
        assert!(
            problems.contains("email.digest_max: must be at least 1"),
            "{problems}"
        );
        assert!(
            problems.contains("email.subject_single: must not be empty"),
            "{problems}"
        );
    }
}
