//! One module per subcommand: wiring and reporting only. The work happens
//! in the pure core (`content`, `feed`); this layer reads and writes files.

mod build;
mod check;
mod init;
mod new;
mod preview;
mod send;
mod status;
mod unsubscribe;

use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, FixedOffset, Utc};

use crate::cli::{Cli, Command, Global};
use crate::config::{Config, ConfigError, CONFIG_FILE};
use crate::content::{LoadError, Site};

/// Runs the chosen command.
pub fn run(cli: Cli) -> Result<()> {
    let global = &cli.global;
    match &cli.command {
        Command::Build => build::run(global),
        Command::Check => check::run(global),
        Command::New(args) => new::run(global, args),
        Command::Preview(args) => preview::run(global, args),
        Command::Send(args) => send::run(global, args),
        Command::Status(args) => status::run(global, args),
        Command::Unsubscribe(args) => unsubscribe::run(global, args),
        Command::Init(args) => init::run(args),
    }
}

/// A problem in the user's input (content, config, templates): exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// 1 for problems in the user's input, 2 for a run that could not finish.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let input = err.chain().any(|cause| {
        cause.is::<InputError>()
            || cause.is::<ConfigError>()
            || cause.is::<LoadError>()
            || cause.is::<crate::email::TemplateError>()
            || cause.is::<crate::email::RenderError>()
            || cause.is::<crate::delivery::smtp::SmtpConfigError>()
            || cause.is::<crate::delivery::subscribers::SubscribersError>()
            || cause.is::<crate::delivery::dkim::DkimError>()
    });
    if input {
        1
    } else {
        2
    }
}

/// The time that decides what is published: `--now`, or the clock.
pub fn now(global: &Global) -> DateTime<FixedOffset> {
    global.now.unwrap_or_else(|| Utc::now().fixed_offset())
}

/// Reads the site's config.toml.
pub fn load_config(root: &Path) -> Result<Config> {
    let path = root.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(InputError(format!(
            "{}: no such file; run `pressroom init` to create a site, or pass --root DIR",
            path.display()
        ))
        .into());
    }
    let text = crate::fs::read_to_string(&path)?;
    Ok(Config::parse(
        &crate::content::display_path(root, &path),
        &text,
    )?)
}

/// Reads config.toml and every article.
pub fn load_site(root: &Path) -> Result<Site> {
    let config = load_config(root)?;
    Ok(Site::load(root, config)?)
}

/// The secret that signs unsubscribe tokens, from `PRESSROOM_SECRET`.
pub fn secret() -> Result<Vec<u8>> {
    match std::env::var("PRESSROOM_SECRET") {
        Ok(secret) if secret.len() >= 16 => Ok(secret.into_bytes()),
        Ok(_) => Err(InputError(
            "PRESSROOM_SECRET is too short: use at least 16 random characters (e.g. `openssl rand -hex 32`)".into(),
        )
        .into()),
        Err(_) => Err(InputError(
            "PRESSROOM_SECRET is not set: it signs every unsubscribe link; set it to a long random string (e.g. `openssl rand -hex 32`) and keep it the same across runs".into(),
        )
        .into()),
    }
}

/// The ledger's path from `[send]`.
pub fn ledger_path(root: &Path, config: &Config) -> std::path::PathBuf {
    root.join(&config.send.ledger)
}
