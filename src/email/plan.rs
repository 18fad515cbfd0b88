//! Which emails to render: the articles that are published and not yet
//! mailed, grouped into a digest or one draft per article, each with a
//! stable issue id. Pure: the caller says what was already sent.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset};
use sha2::{Digest, Sha256};

use crate::config::email::Mode;
use crate::content::{Article, Site};

/// One email to render (to every recipient).
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    pub kind: Mode,
    /// Newest first; never empty.
    pub articles: Vec<&'a Article>,
    /// `YYYY-MM-DD-<12 hex>`: the newest article's publish date (in the
    /// site's time zone) and a hash of the kind and the sorted article
    /// ids. The same articles always give the same id.
    pub issue_id: String,
    /// The newest article's publish date: the `Date` of a preview.
    pub date: DateTime<FixedOffset>,
    /// True when nothing was pending and this draft re-uses articles that
    /// were already mailed (previews only; never send it).
    pub fallback: bool,
}

impl<'a> Draft<'a> {
    /// A draft of `articles` (any order; sorted newest first here).
    /// None when `articles` is empty.
    pub fn new(site: &Site, kind: Mode, mut articles: Vec<&'a Article>) -> Option<Draft<'a>> {
        articles.sort_by(|a, b| {
            b.publish_date
                .cmp(&a.publish_date)
                .then_with(|| a.source.cmp(&b.source))
        });
        let newest = articles.first()?;
        let date = newest.publish_date;
        let mut ids: Vec<&str> = articles.iter().map(|a| a.id.as_str()).collect();
        ids.sort_unstable();
        let mut hash = Sha256::new();
        hash.update(match kind {
            Mode::Digest => b"digest".as_slice(),
            Mode::PerArticle => b"per-article".as_slice(),
        });
        for id in ids {
            hash.update([0]);
            hash.update(id.as_bytes());
        }
        let digest = hash.finalize();
        let hex = hex::encode(&digest[..6]);
        let day = date
            .with_timezone(&site.config.site.timezone)
            .format("%Y-%m-%d");
        Some(Draft {
            kind,
            issue_id: format!("{day}-{hex}"),
            articles,
            date,
            fallback: false,
        })
    }
}

/// The drafts to send at `now`: published articles whose ids are not in
/// `already_sent`. A digest takes the newest `max` of them (the rest stay
/// pending for the next issue); per-article mode gives one draft per
/// article, oldest first, so sending in order keeps the site's order.
/// Empty when nothing is pending.
pub fn plan<'a>(
    site: &'a Site,
    now: DateTime<FixedOffset>,
    mode: Mode,
    max: usize,
    already_sent: &HashSet<String>,
) -> Vec<Draft<'a>> {
    let pending: Vec<&Article> = site
        .published(now)
        .filter(|a| !already_sent.contains(&a.id))
        .collect();
    drafts(site, mode, max, pending)
}

/// Like [`plan`], but when nothing is pending it falls back to the newest
/// published article (per-article mode) or the newest `max` (digest), so a
/// preview always shows something. Fallback drafts are marked.
pub fn plan_preview<'a>(
    site: &'a Site,
    now: DateTime<FixedOffset>,
    mode: Mode,
    max: usize,
    already_sent: &HashSet<String>,
) -> Vec<Draft<'a>> {
    let pending = plan(site, now, mode, max, already_sent);
    if !pending.is_empty() {
        return pending;
    }
    let newest: Vec<&Article> = site.published(now).collect();
    let take = match mode {
        Mode::Digest => max.max(1),
        Mode::PerArticle => 1,
    };
    let mut fallback = drafts(site, mode, take, newest.into_iter().take(take).collect());
    for draft in &mut fallback {
        draft.fallback = true;
    }
    fallback
}

fn drafts<'a>(site: &Site, mode: Mode, max: usize, pending: Vec<&'a Article>) -> Vec<Draft<'a>> {
    match mode {
        Mode::Digest => {
            let newest: Vec<&Article> = pending.into_iter().take(max.max(1)).collect();
            Draft::new(site, Mode::Digest, newest).into_iter().collect()
        }
        Mode::PerArticle => pending
            .into_iter()
            .rev()
            .filter_map(|a| Draft::new(site, Mode::PerArticle, vec![a]))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::tests::{now, sample_site};

    fn ids(drafts: &[Draft<'_>]) -> Vec<Vec<String>> {
        drafts
            .iter()
            .map(|d| d.articles.iter().map(|a| a.slug.to_string()).collect())
            .collect()
    }

    #[test]
    fn digest_takes_the_newest_pending_published_articles() {
        let site = sample_site();
        let drafts = plan(&site, now(), Mode::Digest, 3, &HashSet::new());
        assert_eq!(drafts.len(), 1);
        let d = &drafts[0];
        assert_eq!(d.articles.len(), 3);
        assert!(d.articles.iter().all(|a| a.is_published(now())));
        assert!(d
            .articles
            .windows(2)
            .all(|w| w[0].publish_date >= w[1].publish_date));
        assert_eq!(d.date, d.articles[0].publish_date);
        assert!(d
            .issue_id
            .starts_with(&d.date.format("%Y-%m-%d").to_string()));
        assert!(!d.fallback);
        // Same articles, same id.
        let again = plan(&site, now(), Mode::Digest, 3, &HashSet::new());
        assert_eq!(again[0].issue_id, d.issue_id);
    }

    #[test]
    fn already_sent_articles_are_left_out_and_per_article_is_oldest_first() {
        let site = sample_site();
        let published: Vec<&Article> = site.published(now()).collect();
        assert!(published.len() >= 3);
        let sent: HashSet<String> = published[1..].iter().map(|a| a.id.clone()).collect();
        let drafts = plan(&site, now(), Mode::PerArticle, 10, &sent);
        assert_eq!(ids(&drafts), [[published[0].slug.to_string()]]);

        let sent: HashSet<String> = published[2..].iter().map(|a| a.id.clone()).collect();
        let drafts = plan(&site, now(), Mode::PerArticle, 10, &sent);
        assert_eq!(
            ids(&drafts),
            [
                [published[1].slug.to_string()],
                [published[0].slug.to_string()]
            ]
        );
        assert_ne!(drafts[0].issue_id, drafts[1].issue_id);
    }

    #[test]
    fn nothing_pending_gives_nothing_to_send_but_a_preview() {
        let site = sample_site();
        let all: HashSet<String> = site.articles.iter().map(|a| a.id.clone()).collect();
        assert!(plan(&site, now(), Mode::Digest, 10, &all).is_empty());
        let preview = plan_preview(&site, now(), Mode::PerArticle, 10, &all);
        assert_eq!(preview.len(), 1);
        assert!(preview[0].fallback);
        let newest = site.published(now()).next().unwrap();
        assert_eq!(preview[0].articles[0].id, newest.id);
        let preview = plan_preview(&site, now(), Mode::Digest, 2, &all);
        assert_eq!(preview[0].articles.len(), 2);
    }

    #[test]
    fn drafts_and_scheduled_articles_are_never_planned() {
        let site = sample_site();
        let drafts = plan(&site, now(), Mode::Digest, 100, &HashSet::new());
        let slugs = &ids(&drafts)[0];
        assert!(!slugs.iter().any(|s| s.contains("survey")), "{slugs:?}");
        assert!(!slugs.iter().any(|s| s.contains("2030")), "{slugs:?}");
    }
}
