//! `pressroom check`: load config.toml and every article, and report every
//! problem at once. Writes nothing.

use anyhow::Result;
use tracing::info;

use crate::cli::Global;

pub fn run(global: &Global) -> Result<()> {
    let now = super::now(global);
    let site = super::load_site(&global.root)?;
    let published = site.published(now).count();
    let drafts = site.articles.iter().filter(|a| a.draft).count();
    let scheduled = site
        .articles
        .iter()
        .filter(|a| !a.draft && a.publish_date > now)
        .count();
    for article in site
        .articles
        .iter()
        .filter(|a| !a.draft && a.publish_date > now)
    {
        info!(
            "{}: scheduled for {}",
            article.source,
            article.publish_date.to_rfc3339()
        );
    }
    info!(
        "ok: {} articles ({published} published, {scheduled} scheduled, {drafts} drafts)",
        site.articles.len()
    );
    Ok(())
}
