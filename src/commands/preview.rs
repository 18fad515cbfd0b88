//! `pressroom preview`: render the issue a send would mail next (or the
//! newest articles when nothing is pending) for one recipient, and write
//! each email as `.html`, `.txt` and `.eml` (the exact message bytes) with
//! an `index.html` listing subjects, sizes and lint findings. What is
//! pending is read from the send ledger, opened read-only: a preview never
//! changes it, and a missing ledger is the fresh state a first send starts
//! from (the back catalogue counts as sent).

use std::path::Path;

use super::{Context, Failure, Result};
use serde::Serialize;
use tracing::{info, warn};

use super::InputError;
use crate::address::EmailAddress;
use crate::cli::{Global, ModeArg, PreviewArgs};
use crate::config::email::Mode;
use crate::content::{Article, Site};
use crate::delivery::ledger::{self, Ledger};
use crate::delivery::subscribers::{Subscribers, SubscribersError};
use crate::email::{self, Draft, Recipient, Templates};

/// The secret previews sign unsubscribe links with when `PRESSROOM_SECRET`
/// is not set (such links are for looking at, not for sending).
const PREVIEW_SECRET: &[u8] = b"pressroom-preview-only";

#[derive(Serialize)]
struct IndexEntry {
    stem: String,
    subject: String,
    articles: Vec<String>,
    html_size: String,
    eml_size: String,
    findings: Vec<IndexFinding>,
}

#[derive(Serialize)]
struct IndexFinding {
    severity: String,
    message: String,
    article: Option<String>,
}

pub fn run(global: &Global, args: &PreviewArgs) -> Result<()> {
    let now = super::now(global);
    let mut site = super::load_site(&global.root)?;
    let templates = Templates::load(&global.root)?;
    if site.config.email.from.is_none() {
        let host = site
            .config
            .site
            .base_url
            .host_str()
            .unwrap_or("example.com")
            .to_owned();
        let placeholder = EmailAddress::parse(&format!("newsletter@{host}"))
            .map_err(|e| InputError(format!("config.toml: email.from: {e}")))?;
        warn!("email.from is not set in config.toml; the preview uses {placeholder}. Set it before sending.");
        site.config.email.from = Some(placeholder);
    }
    let secret = match std::env::var("PRESSROOM_SECRET") {
        Ok(secret) if !secret.is_empty() => secret.into_bytes(),
        _ => {
            warn!("PRESSROOM_SECRET is not set; unsubscribe links in the preview are signed with a preview-only key");
            PREVIEW_SECRET.to_vec()
        }
    };
    let recipient = match &args.to {
        Some(address) => {
            let email =
                EmailAddress::parse(address).map_err(|e| InputError(format!("--to: {e}")))?;
            list_reader(&global.root, &site, Some(email))
        }
        None => list_reader(&global.root, &site, None),
    };
    let mode = match args.mode {
        Some(ModeArg::Digest) => Mode::Digest,
        Some(ModeArg::PerArticle) => Mode::PerArticle,
        None => site.config.email.mode,
    };
    let drafts = select(&global.root, &site, now, mode, args)?;
    if drafts.is_empty() {
        info!("nothing is published yet: no email to preview");
        return Ok(());
    }

    let out_dir = global.root.join(&args.out);
    let unsubscribe = email::unsubscribe_url(&site, &recipient.email, &secret);
    let mut index = Vec::new();
    let mut errors = 0;
    for (n, draft) in drafts.iter().enumerate() {
        let mut rendered = email::render(&site, &templates, draft, &recipient, &unsubscribe)
            .map_err(|e| match e {
                email::RenderError::MissingField { message, field } => InputError(format!(
                    "{message}: the preview's reader ({}) has no `{field}`; add a `{field}` column to the subscriber list, \
                     or test for it with `{{% if recipient.fields.{field} is defined %}}`",
                    recipient.email
                )),
                e => InputError(e.to_string()),
            })?;
        rendered.return_path =
            email::return_path(&site, &rendered.issue_id, &recipient.email, &secret)
                .map_err(|e| InputError(e.to_string()))?;
        let message = email::build_message(&site, &rendered, &recipient, now)
            .map_err(|e| InputError(e.to_string()))?;
        let mut eml = message.formatted();
        // The receiving server records the envelope sender as the first
        // header; show it as the reader's copy will have it.
        if let Some(path) = &rendered.return_path {
            let mut with = format!("Return-Path: <{path}>\r\n").into_bytes();
            with.append(&mut eml);
            eml = with;
        }
        let stem = format!("{:02}-{}", n + 1, draft.articles[0].slug);
        write(&out_dir, &format!("{stem}.html"), rendered.html.as_bytes())?;
        write(&out_dir, &format!("{stem}.txt"), rendered.text.as_bytes())?;
        write(&out_dir, &format!("{stem}.eml"), &eml)?;
        let findings = email::lint(&rendered);
        for finding in &findings {
            if finding.severity == email::Severity::Error {
                errors += 1;
            }
            warn!("{finding}");
        }
        index.push(IndexEntry {
            stem,
            subject: rendered.subject.clone(),
            articles: rendered.articles.iter().map(|a| a.title.clone()).collect(),
            html_size: kilobytes(rendered.html.len()),
            eml_size: kilobytes(eml.len()),
            findings: findings
                .iter()
                .map(|f| IndexFinding {
                    severity: f.severity.to_string(),
                    message: f.message.clone(),
                    article: f.article.clone(),
                })
                .collect(),
        });
    }
    let note = if drafts.iter().any(|d| d.fallback) {
        "nothing new is pending, so this shows the newest published articles"
    } else {
        "the issue a send would mail next"
    };
    let index_html = render_index(&site, &recipient, &index, note)?;
    let index_path = write(&out_dir, "index.html", index_html.as_bytes())?;
    info!("{} email(s) written to {}", index.len(), out_dir.display());
    println!("{}", index_path.display());
    if args.open {
        open(&index_path);
    }
    if errors > 0 {
        return Err(InputError(format!("{errors} lint error(s) in the preview; see above")).into());
    }
    Ok(())
}

/// The reader a preview is for, with the subscriber list's columns so
/// templates that read them render as they will for the list: `to`'s own
/// row (or, for an address the list lacks, every column empty), else the
/// sample reader with the values of the list's first row. Without a list
/// (or one that cannot be read, which a send reports), no columns.
fn list_reader(root: &Path, site: &Site, to: Option<EmailAddress>) -> Recipient {
    let mut reader = match &to {
        Some(email) => Recipient {
            email: email.clone(),
            name: None,
            fields: Default::default(),
        },
        None => email::sample_recipient(),
    };
    let mut rows = match Subscribers::open(root, &site.config.send.subscribers) {
        Ok(rows) => rows,
        Err(SubscribersError::Missing { .. }) => return reader,
        Err(e) => {
            warn!("{e:#}; the preview's reader has no subscriber fields");
            return reader;
        }
    };
    reader.fields = rows
        .field_names()
        .into_iter()
        .map(|c| (c, String::new()))
        .collect();
    let wanted = to.as_ref().map(EmailAddress::normalized);
    for row in rows.by_ref().flatten() {
        match &wanted {
            None => {
                reader.fields = row.fields;
                break;
            }
            Some(wanted) if row.email.normalized() == *wanted => {
                reader.name = row.name;
                reader.fields = row.fields;
                break;
            }
            Some(_) => {}
        }
    }
    reader
}

/// The drafts to preview: the named articles, or what a send would mail
/// next (as `send` picks it from the ledger), else the newest articles.
fn select<'a>(
    root: &Path,
    site: &'a Site,
    now: chrono::DateTime<chrono::FixedOffset>,
    mode: Mode,
    args: &PreviewArgs,
) -> Result<Vec<Draft<'a>>> {
    let max = site.config.email.digest_max;
    let (slugs, include_existing) = (&args.articles, args.include_existing);
    if slugs.is_empty() {
        let published: Vec<&str> = site.published(now).map(|a| a.id.as_str()).collect();
        let ledger_path = super::ledger_path(root, &site.config);
        let already = if ledger_path.exists() {
            let ledger = Ledger::open_read_only(&ledger_path)?;
            let unfinished = ledger.unfinished_issues()?.len();
            if unfinished > 0 {
                info!("{unfinished} unfinished issue(s) in the ledger: the next send resumes them first (`pressroom status` shows them)");
            }
            ledger.already_mailed(&published, include_existing)?
        } else {
            ledger::already_mailed_fresh(&published, include_existing)
        };
        let drafts = email::plan_preview(site, now, mode, max, &already);
        if drafts.iter().any(|d| d.fallback) {
            info!("nothing new to send: the preview shows the newest published article(s)");
        }
        return Ok(drafts);
    }
    let mut chosen: Vec<&Article> = Vec::new();
    for slug in slugs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let article = site
            .articles
            .iter()
            .find(|a| a.slug.as_str() == slug)
            .ok_or_else(|| InputError(format!("--articles: no article has the slug `{slug}`")))?;
        chosen.push(article);
    }
    chosen.sort_by_key(|a| std::cmp::Reverse(a.publish_date));
    Ok(match mode {
        Mode::Digest => Draft::new(site, Mode::Digest, chosen).into_iter().collect(),
        // Oldest first, as a send would mail them.
        Mode::PerArticle => chosen
            .into_iter()
            .rev()
            .filter_map(|a| Draft::new(site, Mode::PerArticle, vec![a]))
            .collect(),
    })
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    crate::fs::write_atomic(&path, bytes)?;
    Ok(path)
}

fn kilobytes(bytes: usize) -> String {
    format!("{:.1} KB", bytes as f64 / 1024.0)
}

fn render_index(
    site: &Site,
    recipient: &Recipient,
    emails: &[IndexEntry],
    note: &str,
) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    // Built into the binary: a failure here is not the user's input.
    env.add_template("index.html", include_str!("preview_index.html"))
        .map_err(Failure::run)
        .context("the preview index template")?;
    let template = env
        .get_template("index.html")
        .map_err(Failure::run)
        .context("the preview index template")?;
    template
        .render(minijinja::context! {
            site_title => site.config.site.title,
            recipient => recipient.email.as_str(),
            emails => emails,
            note => note,
        })
        .map_err(Failure::run)
        .context("cannot render the preview index")
}

/// Opens `path` with the desktop's browser (`$BROWSER`, else xdg-open or
/// open). Failing to open is reported, not fatal: the files are written.
fn open(path: &Path) {
    let browser = std::env::var("BROWSER").ok().filter(|b| !b.is_empty());
    let candidates: Vec<String> = browser
        .into_iter()
        .chain(["xdg-open".to_owned(), "open".to_owned()])
        .collect();
    for program in candidates {
        if std::process::Command::new(&program)
            .arg(path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
        {
            return;
        }
    }
    warn!("could not open a browser; open {} yourself", path.display());
}
