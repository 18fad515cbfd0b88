//! What an issue freezes when it is created, so that a resumed issue
//! delivers exactly the content it was created with, whatever happened to
//! `content/`, `templates/` or `config.toml` since: the configuration's
//! text, the source text of each of its articles, and the site's template
//! files. Thawing parses them again with the same code as a fresh load.

use std::path::Path;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::config::email::Mode;
use crate::config::Config;
use crate::content::{parse_article, Article, Site};
use crate::email::{Draft, Templates};
use crate::error_kind::{ErrorKind, HasKind};

/// Bumped when the layout changes; older layouts are still read.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Frozen {
    version: u32,
    /// `config.toml` as it was.
    config: String,
    kind: String,
    issue_id: String,
    /// RFC 3339.
    date: String,
    articles: Vec<FrozenArticle>,
    /// The site's own template files (the built-ins come with the binary).
    templates: Vec<(String, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FrozenArticle {
    /// Path relative to the site root, for messages.
    source: String,
    /// Path inside the content folder (it names the default id).
    relative: String,
    text: String,
}

/// An issue brought back to life: the site as it was (only the issue's
/// articles), its templates, and the draft to render.
#[derive(Debug)]
pub struct Thawed {
    pub site: Site,
    pub templates: Templates,
    pub kind: Mode,
    pub issue_id: String,
    pub date: DateTime<FixedOffset>,
}

impl Thawed {
    /// The draft to render for every recipient.
    pub fn draft(&self) -> Draft<'_> {
        Draft {
            kind: self.kind,
            articles: self.site.articles.iter().collect(),
            issue_id: self.issue_id.clone(),
            date: self.date,
            fallback: false,
        }
    }
}

/// Why frozen content could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("issue `{issue}`: its frozen content cannot be read back: {what}")]
pub struct ThawError {
    pub issue: String,
    pub what: String,
}

impl HasKind for ThawError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Run
    }
}

/// Freezes `draft`. `root` is the site root (the articles' files are read
/// again from there), `config_text` the configuration's text.
pub fn freeze(
    root: &Path,
    config: &Config,
    config_text: &str,
    template_sources: Vec<(String, String)>,
    draft: &Draft<'_>,
) -> std::io::Result<Vec<u8>> {
    let content_dir = root.join(&config.site.content_dir);
    let mut articles = Vec::with_capacity(draft.articles.len());
    for article in &draft.articles {
        let path = root.join(&article.source);
        let bytes = std::fs::read(&path)?;
        let relative = path
            .strip_prefix(&content_dir)
            .map(|p| crate::content::display_path(Path::new(""), p))
            .unwrap_or_else(|_| article.source.clone());
        articles.push(FrozenArticle {
            source: article.source.clone(),
            relative,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    let frozen = Frozen {
        version: VERSION,
        config: config_text.to_owned(),
        kind: mode_name(draft.kind).to_owned(),
        issue_id: draft.issue_id.clone(),
        date: draft.date.to_rfc3339(),
        articles,
        templates: template_sources,
    };
    serde_json::to_vec(&frozen).map_err(std::io::Error::other)
}

/// Reads frozen content back.
pub fn thaw(issue: &str, bytes: &[u8]) -> Result<Thawed, ThawError> {
    let fail = |what: String| ThawError {
        issue: issue.to_owned(),
        what,
    };
    let frozen: Frozen = serde_json::from_slice(bytes).map_err(|e| fail(e.to_string()))?;
    if frozen.version > VERSION {
        return Err(fail(format!(
            "layout {} is newer than this pressroom knows",
            frozen.version
        )));
    }
    let config =
        Config::parse("config.toml (frozen)", &frozen.config).map_err(|e| fail(e.to_string()))?;
    let mut articles: Vec<Article> = Vec::with_capacity(frozen.articles.len());
    for a in &frozen.articles {
        let article = parse_article(
            &config,
            &a.source,
            Path::new(&a.relative),
            a.text.as_bytes(),
        )
        .map_err(|problems| {
            fail(
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        articles.push(article);
    }
    articles.sort_by(|a, b| {
        b.publish_date
            .cmp(&a.publish_date)
            .then_with(|| a.source.cmp(&b.source))
    });
    let date = DateTime::parse_from_rfc3339(&frozen.date)
        .map_err(|e| fail(format!("date `{}`: {e}", frozen.date)))?;
    let templates = Templates::from_sources(frozen.templates).map_err(|e| fail(e.to_string()))?;
    let kind = match frozen.kind.as_str() {
        "digest" => Mode::Digest,
        "per-article" => Mode::PerArticle,
        other => return Err(fail(format!("unknown kind `{other}`"))),
    };
    Ok(Thawed {
        site: Site { config, articles },
        templates,
        kind,
        issue_id: frozen.issue_id,
        date,
    })
}

pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Digest => "digest",
        Mode::PerArticle => "per-article",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thawed_issue_renders_what_was_frozen_even_after_edits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let config_text = "[site]\ntitle='T'\nbase_url='https://example.com/'\nauthor='A'\n[email]\nfrom='news@example.com'\n";
        std::fs::create_dir_all(root.join("content")).unwrap();
        std::fs::write(root.join("config.toml"), config_text).unwrap();
        std::fs::write(
            root.join("content/a.md"),
            "---\ntitle: 'Original title'\npublish_date: '2025-01-01'\n---\nOriginal body\n",
        )
        .unwrap();
        let config = Config::parse("config.toml", config_text).unwrap();
        let site = Site::load(root, config.clone()).unwrap();
        let draft = Draft::new(&site, Mode::Digest, site.articles.iter().collect()).unwrap();
        let templates = vec![(
            "article.txt".to_owned(),
            "custom {{ article.title }}".to_owned(),
        )];
        let bytes = freeze(root, &config, config_text, templates, &draft).unwrap();

        // The writer edits the article after the issue was created.
        std::fs::write(
            root.join("content/a.md"),
            "---\ntitle: 'Edited'\npublish_date: '2025-01-01'\n---\nNew body\n",
        )
        .unwrap();

        let thawed = thaw(&draft.issue_id, &bytes).unwrap();
        let again = thawed.draft();
        assert_eq!(again.issue_id, draft.issue_id);
        assert_eq!(again.articles[0].title, "Original title");
        assert_eq!(again.articles[0].id, draft.articles[0].id);
        assert!(again.articles[0]
            .markdown()
            .unwrap()
            .contains("Original body"));
        assert!(thawed.templates.overridden().any(|n| n == "article.txt"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = thaw("2025-01-01-abc", b"{not json").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("issue `2025-01-01-abc`: its frozen content cannot be read back"),
            "{err}"
        );
    }
}
