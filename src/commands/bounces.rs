//! `pressroom bounces --maildir DIR | --mbox FILE | -`: reads bounce and
//! complaint reports from a mailbox, applies each to the ledger
//! (`delivery::bounces::apply`), and prints each reader it suppressed and
//! a summary per verdict.
//!
//! Messages are read a batch at a time (memory stays flat), parsed on
//! every core, and applied in one ledger transaction per batch; a
//! Maildir's messages are marked processed only after that commit, so a
//! crash reads them again, and the ledger counts each report once.
//!
//! With `-` (an MTA's alias pipe) a message that is no report, or cannot
//! be read as one, exits 0 (a non-zero status would bounce it back); any
//! failure of the run itself (the ledger busy or unwritable, the site
//! unreadable) exits 75, EX_TEMPFAIL, so the MTA keeps it and retries.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use tracing::{info, warn};

use super::{Context, InputError, Result};
use crate::bounce::{self, Verdict};
use crate::cli::{BouncesArgs, Global};
use crate::config::Config;
use crate::delivery::bounces::{apply, report_key, Applied, Outcome};
use crate::delivery::ledger::Ledger;
use crate::delivery::mailbox::{Mailbox, Maildir, Mbox, Message, Stdin, Unreadable};
use crate::error_kind::ErrorKind;

/// Most messages per ledger transaction.
const BATCH: usize = 512;
/// Most bytes of messages held at once (a batch ends early past it).
const BATCH_BYTES: usize = 32 << 20;

pub fn run(global: &Global, args: &BouncesArgs) -> Result<()> {
    if args.stdin.is_some() {
        // A mail server's pipe: every failure is a try-again-later.
        return read(global, args).map_err(|e| e.with_kind(ErrorKind::TempFail));
    }
    read(global, args)
}

fn read(global: &Global, args: &BouncesArgs) -> Result<()> {
    let root = global.root.as_path();
    let config = super::load_config(root)?;
    let secret = secret(&config)?;
    let (mut mailbox, what): (Box<dyn Mailbox>, String) =
        match (&args.maildir, &args.mbox, &args.stdin) {
            (Some(dir), _, _) => {
                let dir = root.join(dir);
                let maildir =
                    Maildir::open(&dir).map_err(|e| InputError(format!("--maildir: {e}")))?;
                (Box::new(maildir), format!("Maildir {}", dir.display()))
            }
            (None, Some(file), _) => {
                let file = root.join(file);
                let mbox = Mbox::open(&file).map_err(|e| {
                    InputError(format!("--mbox: {}: cannot open: {e}", file.display()))
                })?;
                (Box::new(mbox), format!("mbox {}", file.display()))
            }
            (None, None, _) => (Box::new(Stdin::new()), "stdin".to_owned()),
        };
    let path = super::ledger_path(root, &config);
    let mut ledger = Ledger::open(&path)?;
    let now = super::now(global).with_timezone(&Utc);
    let stdin = args.stdin.is_some();
    let tally = process(
        &mut ledger,
        mailbox.as_mut(),
        &config,
        secret.as_deref(),
        now,
        stdin,
    )?;
    tally.print(&what)?;
    if !tally.unreadable.is_empty() && !stdin {
        let names: Vec<&str> = tally.unreadable.iter().map(|u| u.name.as_str()).collect();
        return Err(InputError(format!(
            "{} message(s) could not be read as reports and were left where they are: {}",
            tally.unreadable.len(),
            names.join(", ")
        ))
        .into());
    }
    Ok(())
}

/// `PRESSROOM_SECRET`, which checks the tags of the bounce address: needed
/// when `[bounces] address` is set, else optional.
fn secret(config: &Config) -> Result<Option<Vec<u8>>> {
    match (super::secret(), &config.bounces.address) {
        (Ok(secret), _) => Ok(Some(secret)),
        (Err(e), Some(address)) => Err(e).with_context(|| {
            format!("bounces.address is {address}, whose tags are checked with PRESSROOM_SECRET")
        }),
        (Err(_), None) => Ok(None),
    }
}

/// What a run read and did.
#[derive(Debug, Default)]
struct Tally {
    read: u64,
    by_verdict: BTreeMap<&'static str, u64>,
    suppressed: BTreeMap<&'static str, u64>,
    unattributed: u64,
    duplicate: u64,
    /// Messages that could not be read, or read as a report (named).
    unreadable: Vec<Unreadable>,
}

impl Tally {
    fn count(&mut self, applied: &Applied) {
        *self.by_verdict.entry(applied.verdict.as_str()).or_default() += 1;
        match &applied.outcome {
            Outcome::Unattributed => self.unattributed += 1,
            Outcome::Duplicate { .. } => self.duplicate += 1,
            _ => {}
        }
        if let Some((_, reason)) = applied.suppressed() {
            *self.suppressed.entry(reason.as_str()).or_default() += 1;
        }
    }

    fn print(&self, what: &str) -> std::io::Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        writeln!(out, "{} message(s) read from {what}", self.read)?;
        for verdict in [
            Verdict::Hard,
            Verdict::Soft,
            Verdict::Complaint,
            Verdict::AutoReply,
            Verdict::NotAReport,
        ] {
            let name = verdict.as_str();
            let n = self.by_verdict.get(name).copied().unwrap_or(0);
            writeln!(out, "  {name:<13} {n}")?;
        }
        let suppressed: u64 = self.suppressed.values().sum();
        let reasons: Vec<String> = self
            .suppressed
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        if reasons.is_empty() {
            writeln!(out, "  suppressed    0")?;
        } else {
            writeln!(out, "  suppressed    {suppressed} ({})", reasons.join(", "))?;
        }
        writeln!(
            out,
            "  unattributed  {} (about nothing pressroom sent)",
            self.unattributed
        )?;
        writeln!(out, "  duplicate     {} (applied before)", self.duplicate)?;
        writeln!(out, "  unreadable    {}", self.unreadable.len())?;
        Ok(())
    }
}

/// Reads every message of `mailbox` and applies it, a batch per ledger
/// transaction; prints each suppressed reader as its batch commits.
fn process(
    ledger: &mut Ledger,
    mailbox: &mut dyn Mailbox,
    config: &Config,
    secret: Option<&[u8]>,
    now: DateTime<Utc>,
    stdin: bool,
) -> Result<Tally> {
    let mut tally = Tally::default();
    let source = mailbox.source();
    loop {
        let mut batch: Vec<Message> = Vec::new();
        let mut bytes = 0;
        while batch.len() < BATCH && bytes < BATCH_BYTES {
            match mailbox.next_message() {
                None => break,
                Some(Ok(message)) => {
                    bytes += message.raw.len();
                    batch.push(message);
                }
                Some(Err(unreadable)) => {
                    if stdin {
                        // Nothing came: the MTA should try again.
                        return Err(super::RunError(unreadable.to_string()).into());
                    }
                    warn!("{unreadable} (left where it is)");
                    tally.read += 1;
                    tally.unreadable.push(unreadable);
                }
            }
        }
        if batch.is_empty() {
            return Ok(tally);
        }
        let parsed: Vec<_> = batch.par_iter().map(|m| bounce::parse(&m.raw)).collect();
        let mut done: Vec<String> = Vec::with_capacity(batch.len());
        let mut lines: Vec<String> = Vec::new();
        ledger.begin_group()?;
        for (message, parsed) in batch.iter().zip(parsed) {
            tally.read += 1;
            let report = match parsed {
                Ok(report) => report,
                Err(e) => {
                    let unreadable = Unreadable {
                        name: message.name.clone(),
                        why: e.to_string(),
                    };
                    if stdin {
                        // Not a report pressroom can read: never bounce
                        // it back to the mail system.
                        warn!("{unreadable}: not read as a report; ignored");
                        *tally
                            .by_verdict
                            .entry(Verdict::NotAReport.as_str())
                            .or_default() += 1;
                    } else {
                        warn!("{unreadable} (left where it is)");
                        tally.unreadable.push(unreadable);
                    }
                    continue;
                }
            };
            let key = report_key(&report, &message.raw);
            let applied = match apply(ledger, &report, &key, source, &config.bounces, secret, now) {
                Ok(applied) => applied,
                Err(e) => {
                    ledger.rollback_group();
                    return Err(e)
                        .with_context(|| format!("{}: recording the report", message.name));
                }
            };
            tally.count(&applied);
            if let Some((recipient, reason)) = applied.suppressed() {
                let detail = [report.status.as_deref(), report.diagnostic.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                let issue = match &applied.outcome {
                    Outcome::Recorded { target, .. } => target.issue.as_str(),
                    _ => "",
                };
                lines.push(if detail.is_empty() {
                    format!(
                        "suppressed {recipient} ({}, issue {issue})",
                        reason.as_str()
                    )
                } else {
                    format!(
                        "suppressed {recipient} ({}: {detail}, issue {issue})",
                        reason.as_str()
                    )
                });
            }
            if stdin && !matches!(applied.outcome, Outcome::Recorded { .. }) {
                info!(
                    "{}: {} report, {}",
                    message.name,
                    applied.verdict.as_str(),
                    match applied.outcome {
                        Outcome::Unattributed => "about nothing pressroom sent",
                        Outcome::Duplicate { .. } => "applied before",
                        _ => "nothing to do",
                    }
                );
            }
            done.push(message.name.clone());
        }
        if let Err(e) = ledger.commit_group() {
            ledger.rollback_group();
            return Err(e.into());
        }
        {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for line in &lines {
                writeln!(out, "{line}")?;
            }
        }
        for problem in mailbox.mark_processed(&done) {
            warn!("{problem}; it will be read again and count once");
        }
    }
}
