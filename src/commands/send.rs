//! `pressroom send`: what cron runs. Takes the send lock, resumes
//! unfinished issues, then turns what is newly published into at most one
//! new issue (one per article in per-article mode), freezes its content in
//! the ledger, and delivers it to every subscriber not yet sent to.
//! `--dry-run` renders and counts; `--test` mails one address.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::{Context, Result};
use chrono::{DateTime, FixedOffset, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::{debug, info, warn};

use super::{Failure, InputError, RunError};
use crate::address::EmailAddress;
use crate::cli::{Global, SendArgs};
use crate::config::email::Mode;
use crate::content::Site;
use crate::delivery::dkim::DkimSigner;
use crate::delivery::frozen::{self, Thawed};
use crate::delivery::ledger::{IssueId, IssueKind, Ledger, NewIssue};
use crate::delivery::lock::{lock_path_for, SendLock};
use crate::delivery::roster::Roster;
use crate::delivery::smtp::{SmtpSender, SmtpSettings};
use crate::delivery::subscribers::Subscribers;
use crate::delivery::{
    self, IssueSummary, Outcome, RenderError, Run, RunOptions, Stop, SystemClock, Transport,
};
use crate::email::{self, Recipient, Templates};
use crate::error_kind::{Boxed, Described};

/// Everything a run needs that does not change between issues.
struct Sender {
    recipients: Roster,
    secret: Vec<u8>,
    settings: std::sync::Arc<SmtpSettings>,
    dkim: Option<DkimSigner>,
}

pub fn run(global: &Global, args: &SendArgs) -> Result<()> {
    let now = super::now(global);
    let root = global.root.as_path();
    let config_text = crate::fs::read_to_string(&root.join(super::CONFIG_FILE))?;
    let site = super::load_site(root)?;
    let template_sources = Templates::sources(root)?;
    let templates = Templates::from_sources(template_sources.clone())?;
    if site.config.email.from.is_none() {
        return Err(InputError(
            "config.toml: email.from: not set; set the address newsletters are sent from".into(),
        )
        .into());
    }
    let secret = super::secret()?;
    let list = read_subscribers(root, &site)?;

    if let Some(address) = &args.test {
        return send_test(root, &site, &templates, &list, &secret, address, now);
    }
    let ledger_path = super::ledger_path(root, &site.config);
    if args.dry_run {
        return dry_run(&site, &templates, &list, &secret, &ledger_path, args, now);
    }

    let settings = smtp_settings(root, &site)?;
    let dkim = match &site.config.smtp.dkim {
        Some(config) => Some(DkimSigner::load(config, root)?),
        None => None,
    };
    let _lock = SendLock::acquire(&lock_path_for(&ledger_path))?;
    let mut ledger = Ledger::open(&ledger_path)?;
    secure_ledger(&ledger_path);
    let utc_now = Utc::now();

    let published: Vec<&str> = site.published(now).map(|a| a.id.as_str()).collect();
    if ledger.is_fresh()? {
        if args.include_existing {
            ledger.baseline(std::iter::empty(), utc_now)?;
            info!(
                "fresh ledger: --include-existing, so the {} published article(s) will be mailed",
                published.len()
            );
        } else {
            let n = ledger.baseline(published.iter().copied(), utc_now)?;
            info!(
                "fresh ledger: {n} published article(s) recorded as already sent, so the back catalogue is not mailed \
                 (run with --include-existing on a fresh ledger to mail it); articles published from now on will be"
            );
        }
    }

    let trial = list.trial_reader();
    let sender = Sender {
        recipients: list.roster,
        secret,
        settings,
        dkim,
    };
    let mut limit = args.limit;
    let mut summaries: Vec<IssueSummary> = Vec::new();

    for issue in ledger.unfinished_issues()? {
        let thawed = frozen::thaw(issue.id.as_str(), &issue.content)?;
        info!("resuming issue {} \"{}\"", issue.id, issue.subject);
        let summary = sender.deliver(&mut ledger, &issue.id, &thawed, &mut limit)?;
        let stop = summary.stopped.clone();
        summaries.push(summary);
        if stop.is_some() {
            return finish(&summaries);
        }
    }

    let already = ledger.already_mailed(&published, args.include_existing)?;
    let config = &site.config.email;
    let drafts = email::plan(&site, now, config.mode, config.digest_max, &already);
    if drafts.is_empty() && summaries.is_empty() {
        info!("nothing new to send");
    }
    for draft in &drafts {
        let id = IssueId::parse(&draft.issue_id)?;
        let content = frozen::freeze(
            root,
            &site.config,
            &config_text,
            template_sources.clone(),
            draft,
        )
        .context("cannot read the issue's articles to freeze them")?;
        // A trial render before the issue exists, for the values of the
        // list's first row: a template that needs a column the list lacks
        // stops here, with nothing sent.
        let subject = email::render(&site, &templates, draft, &trial.0, "https://example.com/")
            .map_err(|e| trial.error(e))?
            .subject;
        let article_ids: Vec<String> = draft.articles.iter().map(|a| a.id.clone()).collect();
        let new = NewIssue {
            id: &id,
            kind: match draft.kind {
                Mode::Digest => IssueKind::Digest,
                Mode::PerArticle => IssueKind::Article,
            },
            article_ids: &article_ids,
            subject: &subject,
            content: &content,
        };
        let addresses = sender.recipients.iter().map(|r| r.map(|r| r.email));
        let created = ledger.create_issue(&new, addresses, Utc::now())?;
        let Some(count) = created else { continue };
        info!("new issue {id} \"{subject}\" for {count} subscriber(s)");
        let thawed = frozen::thaw(id.as_str(), &content)?;
        let summary = sender.deliver(&mut ledger, &id, &thawed, &mut limit)?;
        let stop = summary.stopped.clone();
        summaries.push(summary);
        if stop.is_some() {
            break;
        }
    }
    finish(&summaries)
}

/// Reports the run's end and turns it into the exit status.
fn finish(summaries: &[IssueSummary]) -> Result<()> {
    match delivery::exit_code(summaries) {
        0 => Ok(()),
        _ => {
            let deferred: u64 = summaries.iter().map(|s| s.counts.deferred).sum();
            let remaining: u64 = summaries.iter().map(IssueSummary::remaining).sum();
            let reason = summaries
                .iter()
                .find_map(|s| s.stopped.as_ref().map(ToString::to_string))
                .unwrap_or_else(|| {
                    format!("{deferred} delivery(ies) deferred; a later run retries them")
                });
            Err(RunError(format!(
                "not finished: {remaining} delivery(ies) still to make ({reason})"
            ))
            .into())
        }
    }
}

impl Sender {
    /// Delivers one issue with the content it was frozen with.
    fn deliver(
        &self,
        ledger: &mut Ledger,
        id: &IssueId,
        thawed: &Thawed,
        limit: &mut Option<u64>,
    ) -> Result<IssueSummary> {
        let draft = thawed.draft();
        let options = RunOptions::from_config(&thawed.site.config.send, *limit);
        let due = ledger.counts(id)?.unfinished();
        let bar = progress_bar(due);
        let clock = SystemClock;
        let mut run = Run::new(ledger, options, &clock, self.dkim.as_ref());
        let observer_bar = bar.clone();
        // Sent and deferred messages are reported (with `-v`) as they are
        // recorded, with the server's reply; refusals are warnings.
        run.observe(move |delivery, outcome| {
            observer_bar.inc(1);
            match outcome {
                Outcome::Accepted { .. } | Outcome::Deferred { .. } => {}
                Outcome::Rejected { reply, suppress } => warn!(
                    "{}: rejected{}: {reply}",
                    delivery.address,
                    if *suppress {
                        ", address suppressed"
                    } else {
                        ""
                    }
                ),
                Outcome::Fatal { reason } => debug!("{}: not sent: {reason}", delivery.address),
            }
        });
        let settings = self.settings.clone();
        // The issue is rendered once per recipient shape; each message is
        // that output with the reader's values filled in.
        // An article that cannot be prepared fails the first delivery's
        // rendering, as a per-recipient render would.
        let mut personalizer = email::Personalizer::new(&thawed.site, &thawed.templates, &draft)
            .map_err(|e| Described::of(&e));
        let summary = run.deliver(
            id,
            |delivery| match &mut personalizer {
                Ok(personalizer) => self.render(thawed, personalizer, delivery),
                Err(e) => Err(RenderError::Failed(Boxed::new(e.clone()))),
            },
            move || SmtpSender::new(settings.clone()),
        )?;
        if let Ok(personalizer) = &personalizer {
            let stats = personalizer.stats();
            debug!(
                "issue {id}: {} message(s) filled in from {} shared rendering(s), {} rendered in full",
                stats.spliced, stats.shapes, stats.full
            );
        }
        let handed = run.handed_over();
        drop(run);
        bar.finish_and_clear();
        if let Some(left) = limit.as_mut() {
            *left = left.saturating_sub(handed);
        }
        let stopped = match &summary.stopped {
            Some(stop) => format!(" ({stop})"),
            None => String::new(),
        };
        info!(
            "issue {id}: {} sent, {} deferred, {} failed in this run; {} still to make{stopped}",
            summary.sent,
            summary.deferred,
            summary.failed,
            summary.remaining()
        );
        if matches!(summary.stopped, Some(Stop::Fatal(_))) {
            warn!("the SMTP server could not be used; no recipient was failed, the next run carries on");
        }
        Ok(summary)
    }

    fn render(
        &self,
        thawed: &Thawed,
        personalizer: &mut email::Personalizer<'_>,
        delivery: &delivery::Delivery,
    ) -> Result<lettre::Message, RenderError> {
        let recipient = self
            .recipients
            .get(&delivery.recipient)
            .map_err(|e| RenderError::Failed(Boxed::new(e)))?
            .ok_or_else(|| {
                RenderError::Skip(format!(
                    "not sent: {} is no longer in the subscriber list",
                    delivery.address
                ))
            })?;
        let unsubscribe = email::unsubscribe_url(&thawed.site, &recipient.email, &self.secret);
        let mut rendered = personalizer
            .render(&recipient, &unsubscribe)
            .map_err(|e| RenderError::Failed(Boxed::new(e)))?;
        rendered.return_path = email::return_path(
            &thawed.site,
            &rendered.issue_id,
            &recipient.email,
            &self.secret,
        )
        .map_err(|e| RenderError::Failed(Boxed::new(e)))?;
        email::into_message(
            &thawed.site,
            rendered,
            &recipient,
            Utc::now().fixed_offset(),
        )
        .map_err(|e| RenderError::Failed(Boxed::new(e)))
    }
}

/// The subscriber list as a send reads it.
struct List {
    roster: Roster,
    /// The list's path as messages name it.
    name: PathBuf,
    /// The first usable row: its line and reader.
    first: Option<(u64, Recipient)>,
    /// The columns besides `email` and `name`.
    columns: Vec<String>,
}

/// The reader a trial render uses, and where its values come from.
struct Trial(Recipient, String);

impl List {
    /// The sample reader with the first row's fields (every column of
    /// the list, empty when the list has no rows): templates see the
    /// list's own columns, and values like the list's.
    fn trial_reader(&self) -> Trial {
        let mut reader = email::sample_recipient();
        let source = match &self.first {
            Some((line, first)) => {
                reader.fields = first.fields.clone();
                format!("{}:{line} ({})", self.name.display(), first.email)
            }
            None => {
                reader.fields = self.empty_fields();
                format!("{} (no rows)", self.name.display())
            }
        };
        Trial(reader, source)
    }

    /// Every column, empty: the fields of an address the list lacks.
    fn empty_fields(&self) -> BTreeMap<String, String> {
        self.columns
            .iter()
            .map(|c| (c.clone(), String::new()))
            .collect()
    }
}

impl Trial {
    /// A trial render's error, naming the row whose values it used.
    fn error(&self, e: email::RenderError) -> Failure {
        reader_error(&self.1, e)
    }
}

/// `e`, a render for the reader `who` failed with, as an input error that
/// names the reader (and the column, when one was missing).
fn reader_error(who: &str, e: email::RenderError) -> Failure {
    match e {
        email::RenderError::MissingField { message, field } => InputError(format!(
            "{who}: no `{field}` value, which the templates need ({message}); \
             add a `{field}` column to the subscriber list, or test for it with \
             `{{% if recipient.fields.{field} is defined %}}`"
        ))
        .into(),
        e => Failure::from(e).wrap(format!("rendering the issue for {who}")),
    }
}

/// The audience: confirmed signups from the ledger plus the subscriber
/// list, streamed into a [`Roster`] keyed by normalized address (on disk,
/// so memory does not grow with the list). Skipped rows
/// are reported, never dropped silently.
fn read_subscribers(root: &Path, site: &Site) -> Result<List> {
    let mut rows = Subscribers::open(root, &site.config.send.subscribers)?;
    let columns = rows.field_names();
    // Confirmed signups first: a CSV row for the same address replaces
    // its signup (it may carry more fields). A signup has every column of
    // the list, empty, like an address the list lacks.
    let ledger_path = super::ledger_path(root, &site.config);
    let signups = if ledger_path.is_file() {
        Ledger::open(&ledger_path)?.active_signups()?
    } else {
        Vec::new()
    };
    let empty: BTreeMap<String, String> =
        columns.iter().map(|c| (c.clone(), String::new())).collect();
    let signups = signups.into_iter().map(|mut signup| {
        for (column, value) in &empty {
            signup
                .fields
                .entry(column.clone())
                .or_insert_with(|| value.clone());
        }
        Ok(signup)
    });
    let mut first = None;
    let recipients = Roster::build(signups.chain((&mut rows).map(|row| {
        row.map(|row| {
            let recipient = Recipient {
                email: row.email,
                name: row.name,
                fields: row.fields,
            };
            if first.is_none() {
                first = Some((row.line, recipient.clone()));
            }
            recipient
        })
        .map_err(Failure::from)
    })))?;
    for problem in rows.problems() {
        warn!("{problem}");
    }
    if rows.problems_omitted() > 0 {
        warn!(
            "{} more problem row(s) in {} not shown",
            rows.problems_omitted(),
            rows.name().display()
        );
    }
    Ok(List {
        roster: recipients,
        name: rows.name().to_owned(),
        first,
        columns,
    })
}

fn smtp_settings(root: &Path, site: &Site) -> Result<std::sync::Arc<SmtpSettings>> {
    let (url, password) = super::smtp_env();
    let settings = SmtpSettings::resolve(&site.config.smtp, url.as_deref(), password, root)?;
    Ok(std::sync::Arc::new(settings))
}

/// The ledger holds subscriber addresses: owner-only, like a key file.
fn secure_ledger(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}") {
        bar.set_style(style);
    }
    bar
}

/// `--dry-run`: what a send would do now, rendered for every recipient
/// (so template problems show), without SMTP and without changing the
/// ledger.
fn dry_run(
    site: &Site,
    templates: &Templates,
    list: &List,
    secret: &[u8],
    ledger_path: &Path,
    args: &SendArgs,
    now: DateTime<FixedOffset>,
) -> Result<()> {
    let recipients = &list.roster;
    let published: Vec<&str> = site.published(now).map(|a| a.id.as_str()).collect();
    let (already, suppressed, unfinished): (HashSet<String>, usize, u64) = if ledger_path.exists() {
        let ledger = Ledger::open(ledger_path)?;
        let pending: HashSet<String> = ledger
            .not_yet_mailed(published.iter().copied())?
            .into_iter()
            .collect();
        let fresh = ledger.is_fresh()?;
        let already = published
            .iter()
            .filter(|id| (fresh && !args.include_existing) || !pending.contains(**id))
            .map(|id| id.to_string())
            .collect();
        let mut suppressed = 0;
        for r in recipients.iter() {
            if ledger.suppression(&r?.email)?.is_some() {
                suppressed += 1;
            }
        }
        let unfinished = ledger
            .unfinished_issues()?
            .iter()
            .map(|i| ledger.counts(&i.id).map(|c| c.unfinished()))
            .sum::<Result<u64, _>>()?;
        (already, suppressed, unfinished)
    } else if args.include_existing {
        (HashSet::new(), 0, 0)
    } else {
        (published.iter().map(|id| id.to_string()).collect(), 0, 0)
    };
    if unfinished > 0 {
        info!("would resume unfinished issues: {unfinished} delivery(ies) due or deferred");
    }
    let config = &site.config.email;
    let drafts = email::plan(site, now, config.mode, config.digest_max, &already);
    if drafts.is_empty() {
        info!("dry run: nothing new to send");
    }
    for draft in &drafts {
        let mut rendered = 0;
        let mut subject = String::new();
        let mut personalizer = email::Personalizer::new(site, templates, draft)?;
        for recipient in recipients.iter() {
            let recipient = recipient?;
            let recipient = &recipient;
            let unsubscribe = email::unsubscribe_url(site, &recipient.email, secret);
            let mut email = personalizer.render(recipient, &unsubscribe).map_err(|e| {
                reader_error(&format!("{} ({})", list.name.display(), recipient.email), e)
            })?;
            email.return_path = email::return_path(site, &email.issue_id, &recipient.email, secret)
                .map_err(|e| InputError(e.to_string()))?;
            email::build_message(site, &email, recipient, now)
                .map_err(|e| InputError(e.to_string()))?;
            subject = email.subject;
            rendered += 1;
        }
        info!(
            "dry run: new issue {} \"{subject}\" ({} article(s)) would go to {} subscriber(s) ({rendered} rendered, {suppressed} suppressed)",
            draft.issue_id,
            draft.articles.len(),
            rendered - suppressed
        );
    }
    Ok(())
}

/// `--test EMAIL`: the issue a send would mail next (an unfinished one,
/// else what is newly published, else the newest articles) to one
/// address, subject prefixed `[TEST]`. The ledger is read, never written.
fn send_test(
    root: &Path,
    site: &Site,
    templates: &Templates,
    list: &List,
    secret: &[u8],
    address: &str,
    now: DateTime<FixedOffset>,
) -> Result<()> {
    let email_address =
        EmailAddress::parse(address).map_err(|e| InputError(format!("--test: {e}")))?;
    // An address the list lacks gets the list's columns, empty.
    let recipient = list
        .roster
        .get(&email_address.normalized())?
        .unwrap_or_else(|| Recipient {
            email: email_address,
            name: None,
            fields: list.empty_fields(),
        });
    let config = &site.config.email;
    // The server and the signing key are today's, even for a frozen issue.
    let settings = smtp_settings(root, site)?;
    let dkim = match &site.config.smtp.dkim {
        Some(config) => Some(DkimSigner::load(config, root)?),
        None => None,
    };
    let ledger_path = super::ledger_path(root, &site.config);
    let ledger = if ledger_path.exists() {
        Some(Ledger::open(&ledger_path)?)
    } else {
        None
    };
    let unfinished = match &ledger {
        Some(ledger) => ledger.unfinished_issues()?.into_iter().next(),
        None => None,
    };
    let thawed = match unfinished {
        Some(issue) => Some(frozen::thaw(issue.id.as_str(), &issue.content)?),
        None => None,
    };
    let mut already = HashSet::new();
    if let Some(ledger) = &ledger {
        let published: Vec<&str> = site.published(now).map(|a| a.id.as_str()).collect();
        let pending: HashSet<String> = ledger
            .not_yet_mailed(published.iter().copied())?
            .into_iter()
            .collect();
        let fresh = ledger.is_fresh()?;
        already = published
            .iter()
            .filter(|id| fresh || !pending.contains(**id))
            .map(|id| id.to_string())
            .collect();
    }
    let (site, templates, draft) = match &thawed {
        Some(thawed) => (&thawed.site, &thawed.templates, thawed.draft()),
        None => {
            let Some(draft) =
                email::plan_preview(site, now, config.mode, config.digest_max, &already)
                    .into_iter()
                    .next()
            else {
                info!("nothing is published yet: no test to send");
                return Ok(());
            };
            (site, templates, draft)
        }
    };
    let unsubscribe = email::unsubscribe_url(site, &recipient.email, secret);
    let mut rendered = email::render(site, templates, &draft, &recipient, &unsubscribe)
        .map_err(|e| reader_error(recipient.email.as_str(), e))?;
    rendered.subject = format!("[TEST] {}", rendered.subject);
    rendered.return_path = email::return_path(site, &rendered.issue_id, &recipient.email, secret)
        .map_err(|e| InputError(e.to_string()))?;
    let mut message = email::build_message(site, &rendered, &recipient, Utc::now().fixed_offset())
        .map_err(|e| InputError(e.to_string()))?;
    if let Some(dkim) = &dkim {
        dkim.sign(&mut message);
    }
    let mut sender = SmtpSender::new(settings);
    match sender.send(&message) {
        Outcome::Accepted { reply } => {
            info!(
                "test of issue {} sent to {}: {reply}",
                draft.issue_id, recipient.email
            );
            Ok(())
        }
        Outcome::Deferred { reply } => {
            Err(RunError(format!("the server deferred the test message: {reply}")).into())
        }
        Outcome::Rejected { reply, .. } => {
            Err(RunError(format!("the server rejected the test message: {reply}")).into())
        }
        Outcome::Fatal { reason } => {
            Err(RunError(format!("cannot send the test message: {reason}")).into())
        }
    }
}
