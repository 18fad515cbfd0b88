//! `pressroom build`: load the site, render every feed, and write the files
//! that changed. Nothing is written unless the whole site loads.

use anyhow::Result;
use tracing::{debug, info};

use crate::cli::Global;
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
    let published = site.published(now).count();
    info!(
        "{} articles ({} published): {} feed files written, {} unchanged, in {}",
        site.articles.len(),
        published,
        written,
        unchanged,
        out_dir.display()
    );
    Ok(())
}
