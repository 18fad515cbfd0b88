//! `pressroom subscribers [--csv] | export | reactivate EMAIL`: every
//! address pressroom knows, from `subscribers.csv` and the ledger's
//! signups and suppressions, with its state, source and since when (and,
//! for a bounced or complained one, the reason: status code and the
//! server's words); `export` writes the active audience (who the next
//! send mails) as CSV; `reactivate` lifts a bounce or complaint.

use std::collections::BTreeMap;
use std::io::Write;

use super::{Failure, Result};
use chrono::{DateTime, Utc};

use super::InputError;
use crate::address::EmailAddress;
use crate::cli::{Global, SubscribersAction, SubscribersArgs};
use crate::delivery::ledger::{Ledger, Reactivation};
use crate::delivery::subscribers::Subscribers;
use tracing::info;

/// One address and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    email: String,
    name: Option<String>,
    state: &'static str,
    source: &'static str,
    since: Option<DateTime<Utc>>,
    /// Why a bounced or complained address is suppressed: the status
    /// code and the server's words, and the issue.
    reason: Option<String>,
}

pub fn run(global: &Global, args: &SubscribersArgs) -> Result<()> {
    let root = global.root.as_path();
    let config = super::load_config(root)?;
    if let Some(SubscribersAction::Reactivate { email }) = &args.action {
        return reactivate(root, &config, email);
    }
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let csv_path = root.join(&config.send.subscribers);
    if csv_path.is_file() {
        let mut rows = Subscribers::open(root, &config.send.subscribers)?;
        for row in &mut rows {
            let row = row?;
            entries.entry(row.email.normalized()).or_insert(Entry {
                email: row.email.as_str().to_owned(),
                name: row.name,
                state: "active",
                source: "csv",
                since: None,
                reason: None,
            });
        }
        for problem in rows.problems() {
            tracing::warn!("{problem}");
        }
    }
    let ledger_path = super::ledger_path(root, &config);
    if ledger_path.is_file() {
        let ledger = Ledger::open(&ledger_path)?;
        for signup in ledger.signups()? {
            let entry = entries.entry(signup.address.normalized()).or_insert(Entry {
                email: signup.address.as_str().to_owned(),
                name: signup.name.clone(),
                state: "pending",
                source: "signup",
                since: None,
                reason: None,
            });
            if entry.source == "signup" {
                entry.state = if signup.active { "active" } else { "pending" };
                entry.since = Some(signup.confirmed_at.unwrap_or(signup.requested_at));
            } else if signup.active && entry.since.is_none() {
                entry.since = signup.confirmed_at;
            }
        }
        for s in ledger.suppressions()? {
            let entry = entries.entry(s.recipient.clone()).or_insert(Entry {
                email: s.recipient.clone(),
                name: None,
                state: "unsubscribed",
                source: "-",
                since: None,
                reason: None,
            });
            entry.state = match s.reason.as_str() {
                "unsubscribed" => "unsubscribed",
                "hard_bounce" | "soft_bounce" | "bounce" | "bounced" => "bounced",
                "complaint" | "complained" => "complained",
                _ => "unsubscribed",
            };
            entry.since = Some(s.at);
            if entry.state != "unsubscribed" {
                let mut reason = s.reason.clone();
                for part in [s.status.as_deref(), s.reply.as_deref()]
                    .into_iter()
                    .flatten()
                {
                    reason.push(' ');
                    reason.push_str(&crate::text::single_line(part));
                }
                if let Some(issue) = &s.issue {
                    reason.push_str(&format!(" (issue {issue})"));
                }
                entry.reason = Some(reason);
            }
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.action {
        Some(SubscribersAction::Reactivate { .. }) => {}
        Some(SubscribersAction::Export) => {
            let mut writer = csv::Writer::from_writer(&mut out);
            writer
                .write_record(["email", "name", "source", "subscribed_at"])
                .map_err(Failure::run)?;
            for e in entries.values().filter(|e| e.state == "active") {
                writer
                    .write_record([
                        e.email.as_str(),
                        e.name.as_deref().unwrap_or(""),
                        e.source,
                        &since(e.since),
                    ])
                    .map_err(Failure::run)?;
            }
            writer.flush()?;
        }
        None if args.csv => {
            let mut writer = csv::Writer::from_writer(&mut out);
            writer
                .write_record(["email", "name", "state", "source", "since", "reason"])
                .map_err(Failure::run)?;
            for e in entries.values() {
                writer
                    .write_record([
                        e.email.as_str(),
                        e.name.as_deref().unwrap_or(""),
                        e.state,
                        e.source,
                        &since(e.since),
                        e.reason.as_deref().unwrap_or(""),
                    ])
                    .map_err(Failure::run)?;
            }
            writer.flush()?;
        }
        None => {
            let width = entries
                .values()
                .map(|e| e.email.chars().count())
                .max()
                .unwrap_or(5)
                .max(5);
            writeln!(
                out,
                "{:width$}  {:12}  {:6}  SINCE",
                "EMAIL", "STATE", "SOURCE"
            )?;
            for e in entries.values() {
                let shown = since(e.since);
                let shown = if shown.is_empty() {
                    "-".to_owned()
                } else {
                    shown
                };
                match &e.reason {
                    Some(reason) => writeln!(
                        out,
                        "{:width$}  {:12}  {:6}  {shown}  {reason}",
                        e.email, e.state, e.source
                    )?,
                    None => writeln!(
                        out,
                        "{:width$}  {:12}  {:6}  {shown}",
                        e.email, e.state, e.source
                    )?,
                }
            }
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for e in entries.values() {
                *counts.entry(e.state).or_default() += 1;
            }
            let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            writeln!(out, "{} address(es): {}", entries.len(), summary.join(", "))?;
        }
    }
    Ok(())
}

/// `subscribers reactivate EMAIL`: lifts a bounce or complaint
/// suppression, recorded in the ledger.
fn reactivate(root: &std::path::Path, config: &crate::config::Config, email: &str) -> Result<()> {
    let address = EmailAddress::parse(email).map_err(|e| InputError(e.to_string()))?;
    let path = super::ledger_path(root, config);
    if !path.is_file() {
        return Err(InputError(format!(
            "{address} is not suppressed: there is no ledger yet ({})",
            path.display()
        ))
        .into());
    }
    let mut ledger = Ledger::open(&path)?;
    match ledger.reactivate(&address, "command", Utc::now())? {
        Reactivation::Lifted { reason } => {
            info!(
                "{address} reactivated (was {}): the next send mails it again",
                reason.as_str()
            );
            Ok(())
        }
        Reactivation::NotSuppressed => Err(InputError(format!(
            "{address} is not suppressed: nothing to reactivate"
        ))
        .into()),
        Reactivation::Unsubscribed => Err(InputError(format!(
            "{address} unsubscribed; only the reader can subscribe again (a signup they confirm)"
        ))
        .into()),
    }
}

fn since(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
