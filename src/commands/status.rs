//! `pressroom status`: every issue in the ledger with its delivery counts,
//! the next retry, the last error, and the bounces and complaints that
//! came back for it, as a table or JSON.

use super::{Failure, Result};
use serde::Serialize;

use crate::cli::{Global, StatusArgs};
use crate::delivery::ledger::{IssueKind, Ledger};

#[derive(Serialize)]
struct IssueJson {
    id: String,
    kind: &'static str,
    subject: String,
    articles: Vec<String>,
    created_at: String,
    finished_at: Option<String>,
    counts: CountsJson,
    next_retry: Option<String>,
    last_error: Option<String>,
    reports: ReportsJson,
}

/// Bounce and complaint reports attributed to the issue.
#[derive(Serialize)]
struct ReportsJson {
    hard_bounces: u64,
    soft_bounces: u64,
    complaints: u64,
    auto_replies: u64,
}

#[derive(Serialize)]
struct CountsJson {
    sent: u64,
    deferred: u64,
    failed: u64,
    pending: u64,
}

pub fn run(global: &Global, args: &StatusArgs) -> Result<()> {
    let config = super::load_config(&global.root)?;
    let path = super::ledger_path(&global.root, &config);
    let issues = if path.exists() {
        Ledger::open(&path)?.status()?
    } else {
        Vec::new()
    };
    let rows: Vec<IssueJson> = issues
        .into_iter()
        .map(|s| IssueJson {
            id: s.id.to_string(),
            kind: match s.kind {
                IssueKind::Digest => "digest",
                IssueKind::Article => "per-article",
            },
            subject: s.subject,
            articles: s.article_ids,
            created_at: s.created_at.to_rfc3339(),
            finished_at: s.finished_at.map(|d| d.to_rfc3339()),
            counts: CountsJson {
                sent: s.counts.sent,
                deferred: s.counts.deferred,
                failed: s.counts.failed,
                pending: s.counts.pending,
            },
            next_retry: s.next_retry.map(|d| d.to_rfc3339()),
            last_error: s.last_error,
            reports: ReportsJson {
                hard_bounces: s.reports.hard,
                soft_bounces: s.reports.soft,
                complaints: s.reports.complaint,
                auto_replies: s.reports.auto_reply,
            },
        })
        .collect();
    if args.json {
        let json = serde_json::to_string_pretty(&rows).map_err(Failure::run)?;
        println!("{json}");
        return Ok(());
    }
    if rows.is_empty() {
        println!("no issues sent yet ({})", path.display());
        return Ok(());
    }
    for row in &rows {
        let state = if row.finished_at.is_some() {
            "finished"
        } else {
            "unfinished"
        };
        println!("{}  {}  \"{}\"  {state}", row.id, row.kind, row.subject);
        println!(
            "    sent {}  deferred {}  failed {}  pending {}",
            row.counts.sent, row.counts.deferred, row.counts.failed, row.counts.pending
        );
        let r = &row.reports;
        if r.hard_bounces + r.soft_bounces + r.complaints + r.auto_replies > 0 {
            println!(
                "    bounces {} hard, {} soft  complaints {}  auto-replies {}",
                r.hard_bounces, r.soft_bounces, r.complaints, r.auto_replies
            );
        }
        if let Some(next) = &row.next_retry {
            println!("    next retry {next}");
        }
        if let Some(error) = &row.last_error {
            println!("    last error: {error}");
        }
    }
    Ok(())
}
