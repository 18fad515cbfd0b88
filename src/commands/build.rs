//! `pressroom build`: load the site, render every feed, and write the files
//! that changed. Nothing is written unless the whole site loads.
//!
//! When nothing the feeds depend on has changed since the last build (see
//! [`crate::cache`]), the build stops before loading any article: nothing
//! is rendered and nothing is written.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Context, Failure, Result};
use rayon::prelude::*;
use tracing::{debug, info, warn};

use crate::cache::{BuildCache, Manifest};
use crate::cli::Global;
use crate::content::{Bodies, LoadError, Site};
use crate::feed::{Feed, StreamError};
use crate::fs::{Ready, Staged, WriteOutcome};
use crate::stamp::Stamp;

pub fn run(global: &Global) -> Result<()> {
    run_started(global, SystemTime::now())
}

/// [`run`], for a build taken to have started at `started` (what the
/// build cache trusts depends on it).
pub(crate) fn run_started(global: &Global, started: SystemTime) -> Result<()> {
    let now = super::now(global);
    let root = &global.root;
    // Read before the config: a config changed while the build reads it
    // leaves a cache that does not match it.
    let settings = crate::cache::settings_digest(root);
    let config = super::load_config(root)?;
    if let (Some(cache), Some(settings)) = (BuildCache::load(root), &settings) {
        if cache.is_fresh(root, settings, now) {
            info!(
                "nothing changed since the last build: {} feed files in {} are up to date",
                cache.outputs.len(),
                root.join(&config.site.output_dir).display()
            );
            return Ok(());
        }
    }

    let found = crate::content::find_articles(root, &root.join(&config.site.content_dir));
    // Front matter only: bodies are read when their article is rendered.
    let (site, stamps) = Site::load_found(root, config, &found, Bodies::Deferred)?;
    let out_dir = root.join(&site.config.site.output_dir);
    // Feeds are streamed a batch of items at a time into temporary files,
    // in passes over a few dozen feeds each; the files are moved into place
    // only once every one is complete, so a failed build leaves the output
    // folder as it was.
    let feeds = crate::feed::plan(&site, now);
    let mut problems = Vec::new();
    let mut outputs = Vec::new();
    for group in feeds.chunks(FEEDS_PER_PASS) {
        match write_feeds(&site, group, &out_dir) {
            Ok(files) => outputs.extend(files),
            Err(e) => match e.downcast::<LoadError>() {
                Ok(e) => problems.extend(e.problems),
                Err(e) => return Err(e),
            },
        }
    }
    if !problems.is_empty() {
        // An article in several feeds reports its problem once.
        let mut seen = HashSet::new();
        problems.retain(|p| seen.insert(p.to_string()));
        return Err(LoadError { problems }.into());
    }
    let (mut written, mut unchanged) = (0, 0);
    let mut paths = Vec::with_capacity(outputs.len());
    for (path, outcome, ready) in outputs {
        if let Some(ready) = ready {
            ready.commit()?;
        }
        match outcome {
            WriteOutcome::Written => {
                written += 1;
                debug!("wrote {}", path.display());
            }
            WriteOutcome::Unchanged => {
                unchanged += 1;
                debug!("unchanged {}", path.display());
            }
        }
        paths.push(path);
    }
    let removed = remove_stale_tag_feeds(&site, &out_dir, &paths)?;
    let published = site.published(now).count();
    info!(
        "{} articles ({} published): {} feed files written, {} unchanged, {} stale removed, in {}",
        site.articles.len(),
        published,
        written,
        unchanged,
        removed,
        out_dir.display()
    );
    if let Some(settings) = settings {
        // Each stamp was taken before its file was read, so a file changed
        // during the build is seen as changed by the next one.
        match Manifest::record(root, &found, &stamps, started) {
            Some(articles) => save_cache(root, &settings, articles, &site, now, &paths),
            None => debug!(
                "not caching this build: an article or folder changed less than {} s before or during it",
                crate::cache::SETTLE.as_secs()
            ),
        }
    }
    // The process ends here: freeing every article one by one, on this
    // one thread, would only delay that.
    std::mem::forget(site);
    std::mem::forget(found);
    Ok(())
}

/// How many feeds one pass writes. Every file of a pass is open at once
/// (three per feed), so a site with hundreds of tags is written a few dozen
/// feeds at a time; an article held by feeds of two passes is rendered in
/// both.
const FEEDS_PER_PASS: usize = 64;

/// A feed file's path, whether it changes, and the file to move there.
type StagedFile = (PathBuf, WriteOutcome, Option<Ready>);

/// Streams the files of `feeds` into temporary files beside their paths
/// in `out_dir`, in one pass over their articles: each path, whether it
/// changes, and the file to move there when it does.
fn write_feeds(site: &Site, feeds: &[Feed], out_dir: &Path) -> Result<Vec<StagedFile>> {
    let mut sinks = Vec::with_capacity(feeds.len());
    for feed in feeds {
        let mut files = Vec::with_capacity(feed.files.len());
        for (format, path) in &feed.files {
            files.push((*format, Staged::new(&out_dir.join(path))?));
        }
        sinks.push(files);
    }
    crate::feed::stream(site, feeds, &mut sinks).map_err(|e| match e {
        StreamError::Content(e) => Failure::from(e),
        StreamError::Io(e) => Failure::from(e).wrap(format!(
            "cannot write the feed files in {}",
            out_dir.display()
        )),
    })?;
    // Finished (synced, compared) in parallel.
    let staged: Vec<(&PathBuf, Staged)> = feeds
        .iter()
        .zip(sinks)
        .flat_map(|(feed, sinks)| {
            feed.files
                .iter()
                .zip(sinks)
                .map(|((_, path), (_, staged))| (path, staged))
        })
        .collect();
    staged
        .into_par_iter()
        .map(|(path, staged)| {
            let (outcome, ready) = staged.finish()?;
            Ok((out_dir.join(path), outcome, ready))
        })
        .collect()
}

/// Records this build for the next one. A cache that cannot be written
/// only costs the next build its shortcut, so that is a warning.
fn save_cache(
    root: &Path,
    settings: &str,
    articles: Manifest,
    site: &Site,
    now: chrono::DateTime<chrono::FixedOffset>,
    paths: &[PathBuf],
) {
    let outputs: Option<Vec<(PathBuf, Stamp)>> = paths
        .iter()
        .map(|path| {
            let stamp = Stamp::of(path)?;
            Some((path.strip_prefix(root).ok()?.to_path_buf(), stamp))
        })
        .collect();
    let Some(outputs) = outputs else {
        debug!("not caching this build: an output file cannot be read back");
        return;
    };
    if let Err(e) = BuildCache::new(settings, articles, site, now, outputs).save(root) {
        warn!(
            "cannot save the build cache {}: {e:#}",
            root.join(crate::cache::CACHE_FILE).display()
        );
    }
}

/// Removes the feeds of tags that no article carries any more (only files
/// with the configured feed names, inside `tags/<tag>/`), so readers of a
/// vanished tag do not see a frozen feed. Other files are left alone.
fn remove_stale_tag_feeds(site: &Site, out_dir: &Path, written: &[PathBuf]) -> Result<usize> {
    let tags_dir = out_dir.join("tags");
    let Ok(entries) = std::fs::read_dir(&tags_dir) else {
        return Ok(0);
    };
    let current: HashSet<&Path> = written.iter().map(PathBuf::as_path).collect();
    let feeds = &site.config.feeds;
    let names = [&feeds.rss, &feeds.atom, &feeds.json];
    let mut removed = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        for name in names.iter().filter(|n| !n.as_os_str().is_empty()) {
            let file = dir.join(name);
            if file.is_file() && !current.contains(file.as_path()) {
                std::fs::remove_file(&file)
                    .with_context(|| format!("cannot remove {}", file.display()))?;
                debug!("removed stale {}", file.display());
                removed += 1;
            }
        }
        // Only succeeds when nothing else is left in it.
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(removed)
}

#[cfg(test)]
mod cache_differential;
