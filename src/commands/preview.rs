//! `pressroom preview`: render the issue a send would mail next (or the
//! newest articles when nothing is pending) for one recipient, and write
//! each email as `.html`, `.txt` and `.eml` (the exact message bytes) with
//! an `index.html` listing subjects, sizes and lint findings. What is
//! pending is read from the send ledger, opened read-only: a preview never
//! changes it, and a missing ledger is the fresh state a first send starts
//! from (the back catalogue counts as sent).
//!
//! With `--serve`, the same rendering ([`Issue`]) feeds the live preview
//! page ([`crate::live`]) on every save instead of writing files once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Context, Failure, Result, RunError};
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
use crate::live::{self, state::Workspace};

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

/// The folder previews are written to without `--out`.
const DEFAULT_OUT: &str = "preview";

pub fn run(global: &Global, args: &PreviewArgs) -> Result<()> {
    if args.serve {
        return serve(global, args);
    }
    let mut site = super::load_site(&global.root)?;
    let templates = Templates::load(&global.root)?;
    placeholder_sender(&mut site, true)?;
    let issue = Issue::new(global, args);
    let preview = issue.render(&site, &templates, &controls(args))?;
    if preview.emails.is_empty() {
        info!("nothing is published yet: no email to preview");
        return Ok(());
    }
    let out_dir = global
        .root
        .join(args.out.as_deref().unwrap_or(Path::new(DEFAULT_OUT)));
    let (index_path, errors) = write_preview(&site, &out_dir, &preview)?;
    info!(
        "{} email(s) written to {}",
        preview.emails.len(),
        out_dir.display()
    );
    println!("{}", index_path.display());
    if args.open {
        open(index_path.as_os_str());
    }
    if errors > 0 {
        return Err(InputError(format!("{errors} lint error(s) in the preview; see above")).into());
    }
    Ok(())
}

/// `--serve`: the live preview server, until Ctrl-C or SIGTERM.
fn serve(global: &Global, args: &PreviewArgs) -> Result<()> {
    let defaults = controls(args);
    if let Some(to) = &defaults.to {
        EmailAddress::parse(to).map_err(|e| InputError(format!("--to: {e}")))?;
    }
    let warned = std::sync::atomic::AtomicBool::new(false);
    let root = global.root.clone();
    let load = move || {
        Workspace::load(
            &root,
            Box::new(move |site: &mut Site| {
                let first = !warned.swap(true, std::sync::atomic::Ordering::Relaxed);
                placeholder_sender(site, first).map_err(|e| format!("{e:#}"))
            }),
        )
    };
    let renderer: Arc<dyn live::Renderer> = Arc::new(Issue::new(global, args));
    let listen = args.listen;
    let open_page = args.open;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let ready = |url: &str| {
            info!("live preview on {url} (renders again on every save; Ctrl-C stops)");
            if open_page {
                open(std::ffi::OsStr::new(url));
            }
        };
        live::run(
            listener,
            &global.root,
            load,
            renderer,
            defaults,
            ready,
            super::serve::shutdown_signal(),
        )
        .await
        .map_err(RunError)?;
        info!("stopped");
        Ok::<(), super::Failure>(())
    })
}

/// The command line's choice of mode, articles and reader.
fn controls(args: &PreviewArgs) -> live::Controls {
    live::Controls {
        mode: args.mode.map(|m| match m {
            ModeArg::Digest => Mode::Digest,
            ModeArg::PerArticle => Mode::PerArticle,
        }),
        articles: args
            .articles
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        to: args.to.clone(),
    }
}

/// Without `email.from`, the preview's sender is `newsletter@` the
/// site's host (said once, when `warn`).
fn placeholder_sender(site: &mut Site, warn: bool) -> Result<()> {
    if site.config.email.from.is_some() {
        return Ok(());
    }
    let host = site
        .config
        .site
        .base_url
        .host_str()
        .unwrap_or("example.com")
        .to_owned();
    let placeholder = EmailAddress::parse(&format!("newsletter@{host}"))
        .map_err(|e| InputError(format!("config.toml: email.from: {e}")))?;
    if warn {
        warn!("email.from is not set in config.toml; the preview uses {placeholder}. Set it before sending.");
    }
    site.config.email.from = Some(placeholder);
    Ok(())
}

/// What renders a preview: the settings of one `preview` run. The same
/// code renders the files and the live page.
struct Issue {
    root: PathBuf,
    now: Option<chrono::DateTime<chrono::FixedOffset>>,
    secret: Vec<u8>,
    include_existing: bool,
    /// `--out`, with `--serve`.
    out: Option<PathBuf>,
}

impl Issue {
    fn new(global: &Global, args: &PreviewArgs) -> Issue {
        let secret = match std::env::var("PRESSROOM_SECRET") {
            Ok(secret) if !secret.is_empty() => secret.into_bytes(),
            _ => {
                warn!("PRESSROOM_SECRET is not set; unsubscribe links in the preview are signed with a preview-only key");
                PREVIEW_SECRET.to_vec()
            }
        };
        Issue {
            root: global.root.clone(),
            now: global.now,
            secret,
            include_existing: args.include_existing,
            out: args.out.as_ref().map(|out| global.root.join(out)),
        }
    }

    /// Every email of the issue `controls` choose, rendered for its
    /// reader, with its message bytes and lint findings.
    fn render(
        &self,
        site: &Site,
        templates: &Templates,
        controls: &live::Controls,
    ) -> Result<live::Preview> {
        let now = self
            .now
            .unwrap_or_else(|| chrono::Utc::now().fixed_offset());
        let recipient = match &controls.to {
            Some(address) => {
                let email =
                    EmailAddress::parse(address).map_err(|e| InputError(format!("--to: {e}")))?;
                list_reader(&self.root, site, Some(email))
            }
            None => list_reader(&self.root, site, None),
        };
        let mode = controls.mode.unwrap_or(site.config.email.mode);
        let drafts = select(
            &self.root,
            site,
            now,
            mode,
            &controls.articles,
            self.include_existing,
        )?;
        let unsubscribe = email::unsubscribe_url(site, &recipient.email, &self.secret);
        let mut emails = Vec::new();
        for (n, draft) in drafts.iter().enumerate() {
            let mut rendered = email::render(site, templates, draft, &recipient, &unsubscribe)
                .map_err(|e| match e {
                    email::RenderError::MissingField { message, field } => InputError(format!(
                        "{message}: the preview's reader ({}) has no `{field}`; add a `{field}` column to the subscriber list, \
                         or test for it with `{{% if recipient.fields.{field} is defined %}}`",
                        recipient.email
                    )),
                    e => InputError(e.to_string()),
                })?;
            rendered.return_path =
                email::return_path(site, &rendered.issue_id, &recipient.email, &self.secret)
                    .map_err(|e| InputError(e.to_string()))?;
            let message = email::build_message(site, &rendered, &recipient, now)
                .map_err(|e| InputError(e.to_string()))?;
            let mut eml = message.formatted();
            // The receiving server records the envelope sender as the first
            // header; show it as the reader's copy will have it.
            if let Some(path) = &rendered.return_path {
                let mut with = format!("Return-Path: <{path}>\r\n").into_bytes();
                with.append(&mut eml);
                eml = with;
            }
            emails.push(live::PreviewEmail {
                stem: format!("{:02}-{}", n + 1, draft.articles[0].slug),
                subject: rendered.subject.clone(),
                articles: rendered.articles.iter().map(|a| a.title.clone()).collect(),
                findings: email::lint(&rendered),
                eml,
                html: rendered.html,
                text: rendered.text,
            });
        }
        let note = if drafts.iter().any(|d| d.fallback) {
            "nothing new is pending, so this shows the newest published articles"
        } else {
            "the issue a send would mail next"
        };
        Ok(live::Preview {
            note: note.to_owned(),
            recipient: recipient.email.as_str().to_owned(),
            emails,
        })
    }
}

impl live::Renderer for Issue {
    fn render(
        &self,
        site: &Site,
        templates: &Templates,
        controls: &live::Controls,
    ) -> std::result::Result<live::Preview, String> {
        Issue::render(self, site, templates, controls).map_err(|e| format!("{e:#}"))
    }

    fn rendered(&self, site: &Site, preview: &live::Preview) -> std::result::Result<(), String> {
        match &self.out {
            Some(out) if !preview.emails.is_empty() => write_preview(site, out, preview)
                .map(|_| ())
                .map_err(|e| format!("{e:#}")),
            _ => {
                warn_findings(preview.emails.iter().flat_map(|e| &e.findings));
                Ok(())
            }
        }
    }
}

/// Writes each email as `.html`, `.txt` and `.eml` and the index into
/// `out_dir`, saying each lint finding; returns the index's path and the
/// number of lint errors.
fn write_preview(site: &Site, out_dir: &Path, preview: &live::Preview) -> Result<(PathBuf, usize)> {
    let mut index = Vec::new();
    let mut errors = 0;
    for email in &preview.emails {
        let stem = &email.stem;
        write(out_dir, &format!("{stem}.html"), email.html.as_bytes())?;
        write(out_dir, &format!("{stem}.txt"), email.text.as_bytes())?;
        write(out_dir, &format!("{stem}.eml"), &email.eml)?;
        errors += warn_findings(&email.findings);
        index.push(IndexEntry {
            stem: stem.clone(),
            subject: email.subject.clone(),
            articles: email.articles.clone(),
            html_size: kilobytes(email.html.len()),
            eml_size: kilobytes(email.eml.len()),
            findings: email
                .findings
                .iter()
                .map(|f| IndexFinding {
                    severity: f.severity.to_string(),
                    message: f.message.clone(),
                    article: f.article.clone(),
                })
                .collect(),
        });
    }
    let index_html = render_index(site, &preview.recipient, &index, &preview.note)?;
    let index_path = write(out_dir, "index.html", index_html.as_bytes())?;
    Ok((index_path, errors))
}

/// Says each finding on stderr; returns how many are errors.
fn warn_findings<'a>(findings: impl IntoIterator<Item = &'a email::Finding>) -> usize {
    let mut errors = 0;
    for finding in findings {
        if finding.severity == email::Severity::Error {
            errors += 1;
        }
        warn!("{finding}");
    }
    errors
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
    slugs: &[String],
    include_existing: bool,
) -> Result<Vec<Draft<'a>>> {
    let max = site.config.email.digest_max;
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

fn render_index(site: &Site, recipient: &str, emails: &[IndexEntry], note: &str) -> Result<String> {
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
            recipient => recipient,
            emails => emails,
            note => note,
        })
        .map_err(Failure::run)
        .context("cannot render the preview index")
}

/// Opens `path` with the desktop's browser (`$BROWSER`, else xdg-open or
/// open). Failing to open is reported, not fatal: the files are written.
fn open(path: &std::ffi::OsStr) {
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
    warn!(
        "could not open a browser; open {} yourself",
        path.to_string_lossy()
    );
}
