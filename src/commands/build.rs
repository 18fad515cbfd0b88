//! `pressroom build`: load the site, render every feed, and write the files
//! that changed. Nothing is written unless the whole site loads.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tracing::{debug, info};

use crate::cli::Global;
use crate::content::Site;
use crate::feed::Output;
use crate::fs::{write_if_changed, WriteOutcome};

pub fn run(global: &Global) -> Result<()> {
    let now = super::now(global);
    let site = super::load_site(&global.root)?;
    let outputs = crate::feed::build_all(&site, now);
    let out_dir = global.root.join(&site.config.site.output_dir);
    let (mut written, mut unchanged) = (0, 0);
    for output in &outputs {
        let path = out_dir.join(&output.path);
        match write_if_changed(&path, &output.bytes)? {
            WriteOutcome::Written => {
                written += 1;
                debug!("wrote {}", path.display());
            }
            WriteOutcome::Unchanged => {
                unchanged += 1;
                debug!("unchanged {}", path.display());
            }
        }
    }
    let removed = remove_stale_tag_feeds(&site, &out_dir, &outputs)?;
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
    Ok(())
}

/// Removes the feeds of tags that no article carries any more (only files
/// with the configured feed names, inside `tags/<tag>/`), so readers of a
/// vanished tag do not see a frozen feed. Other files are left alone.
fn remove_stale_tag_feeds(site: &Site, out_dir: &Path, outputs: &[Output]) -> Result<usize> {
    let tags_dir = out_dir.join("tags");
    let Ok(entries) = std::fs::read_dir(&tags_dir) else {
        return Ok(0);
    };
    let current: HashSet<PathBuf> = outputs.iter().map(|o| out_dir.join(&o.path)).collect();
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
            if file.is_file() && !current.contains(&file) {
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
