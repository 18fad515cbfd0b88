//! `pressroom init DIR`: a fresh site that `build` accepts at once.

use std::path::Path;

use super::{Context, Result};
use tracing::info;

use super::{InputError, CONFIG_FILE};
use crate::cli::InitArgs;

/// The starting configuration, every key explained.
pub const CONFIG_TEMPLATE: &str = include_str!("init_config.toml");

const EXAMPLE_ARTICLE: &str = "---
title: 'Hello, world'
subtitle: 'The first issue'
description: 'What this newsletter is about, and how often it arrives.'
publish_date: '2025-01-01'
cta: 'Enjoyed this? Reply to this email and tell us what to cover next.'
tags: [news]
---

Welcome! This is the first article. Edit it, or create another with
`pressroom new \"My next article\"`, then run `pressroom build`.
";

pub fn run(args: &InitArgs) -> Result<()> {
    let dir = &args.dir;
    let config_path = dir.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(InputError(format!(
            "{} already exists; init only creates new sites",
            config_path.display()
        ))
        .into());
    }
    create(&dir.join("content/hello-world.md"), EXAMPLE_ARTICLE)?;
    for (name, text) in crate::email::templates::BUILTIN {
        create(&dir.join(crate::email::templates::DIR).join(name), text)?;
    }
    create(&config_path, CONFIG_TEMPLATE)?;
    info!(
        "created a new site in {}; next: edit config.toml, then `pressroom build`",
        dir.display()
    );
    Ok(())
}

fn create(path: &Path, text: &str) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    crate::fs::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot create {}", path.display()))
}
