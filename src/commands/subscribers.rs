//! `pressroom subscribers [--csv] | export`: every address pressroom
//! knows, from `subscribers.csv` and the ledger's signups and
//! suppressions, with its state, source and since when; `export` writes
//! the active audience (who the next send mails) as CSV.

use std::collections::BTreeMap;
use std::io::Write;

use super::{Failure, Result};
use chrono::{DateTime, Utc};

use crate::cli::{Global, SubscribersAction, SubscribersArgs};
use crate::delivery::ledger::Ledger;
use crate::delivery::subscribers::Subscribers;

/// One address and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    email: String,
    name: Option<String>,
    state: &'static str,
    source: &'static str,
    since: Option<DateTime<Utc>>,
}

pub fn run(global: &Global, args: &SubscribersArgs) -> Result<()> {
    let root = global.root.as_path();
    let config = super::load_config(root)?;
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
            });
            entry.state = match s.reason.as_str() {
                "unsubscribed" => "unsubscribed",
                "hard_bounce" | "bounce" | "bounced" => "bounced",
                "complaint" | "complained" => "complained",
                _ => "unsubscribed",
            };
            entry.since = Some(s.at);
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.action {
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
                .write_record(["email", "name", "state", "source", "since"])
                .map_err(Failure::run)?;
            for e in entries.values() {
                writer
                    .write_record([
                        e.email.as_str(),
                        e.name.as_deref().unwrap_or(""),
                        e.state,
                        e.source,
                        &since(e.since),
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
                writeln!(
                    out,
                    "{:width$}  {:12}  {:6}  {shown}",
                    e.email, e.state, e.source
                )?;
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

fn since(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
