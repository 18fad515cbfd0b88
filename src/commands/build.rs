//! `pressroom build`: load the site, render every feed, and write the files
//! that changed. Nothing is written unless the whole site loads.
//!
//! When nothing the feeds depend on has changed since the last build (see
//! [`crate::cache`]), the build stops before loading any article: nothing
//! is rendered and nothing is written.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tracing::{debug, info, warn};

use crate::cache::{BuildCache, Inputs, Stamp};
use crate::cli::Global;
use crate::content::Site;
use crate::fs::{write_if_changed, WriteOutcome};

pub fn run(global: &Global) -> Result<()> {
    let now = super::now(global);
    let root = &global.root;
    let config = super::load_config(root)?;
    // Taken before loading, so a file changed during the build is seen as
    // changed by the next one.
    let inputs = Inputs::scan(root, &config);
    if let Some(inputs) = &inputs {
        if let Some(cache) = BuildCache::load(root).filter(|c| c.is_fresh(root, inputs, now)) {
            info!(
                "nothing changed since the last build: {} feed files in {} are up to date",
                cache.outputs.len(),
                root.join(&config.site.output_dir).display()
            );
            return Ok(());
        }
    }

    let site = Site::load(root, config)?;
    let out_dir = root.join(&site.config.site.output_dir);
    // Each file is written as soon as it is rendered, in parallel, so the
    // big ones are not all held in memory at once.
    let results = crate::feed::build_each(&site, now, |output| {
        let path = out_dir.join(&output.path);
        write_if_changed(&path, &output.bytes).map(|outcome| (path, outcome))
    });
    let (mut written, mut unchanged) = (0, 0);
    let mut paths = Vec::with_capacity(results.len());
    for result in results {
        let (path, outcome) = result?;
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
    if let Some(inputs) = inputs.filter(|i| i.settled) {
        save_cache(root, &inputs, &site, now, &paths);
    }
    Ok(())
}

/// Records this build for the next one. A cache that cannot be written
/// only costs the next build its shortcut, so that is a warning.
fn save_cache(
    root: &Path,
    inputs: &Inputs,
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
    if let Err(e) = BuildCache::new(inputs, site, now, outputs).save(root) {
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
