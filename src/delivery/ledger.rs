//! The send ledger: an SQLite database (default `.pressroom/state.db`) that
//! remembers every issue, every (issue, recipient) delivery and its state,
//! the suppression list (with why, when and how each address left), the
//! readers who signed up through `pressroom serve` (pending until they
//! confirm, then active, with the client address and times kept as
//! evidence of consent), and which articles were already mailed.
//!
//! It is what makes `send` safe from cron: rows are created with
//! `INSERT … ON CONFLICT DO NOTHING`, so repeating a step never duplicates
//! it, and each delivery is marked sent in its own committed transaction
//! right after the server accepts the message. The database runs in WAL
//! mode with `synchronous=FULL`, so a commit survives a power cut; the
//! schema is versioned with `PRAGMA user_version`. The file is created
//! readable by its owner only (it holds every subscriber's address).
//!
//! Times are stored as Unix seconds (UTC).

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::address::EmailAddress;
use crate::email::verp::{delivery_key, KEY_LEN};

/// An issue's stable id (chosen by the caller, e.g. `2026-03-09-rust-edge`):
/// 1 to 200 characters from `A-Z a-z 0-9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssueId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an issue id: use 1 to 200 letters, digits, `.`, `_`, `:` or `-`")]
pub struct IssueIdError(pub String);

impl IssueId {
    pub fn parse(value: &str) -> Result<IssueId, IssueIdError> {
        let ok = !value.is_empty()
            && value.len() <= 200
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
        if ok {
            Ok(IssueId(value.to_owned()))
        } else {
            Err(IssueIdError(value.escape_debug().to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IssueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One issue per article, or a digest of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    Article,
    Digest,
}

impl IssueKind {
    fn as_str(self) -> &'static str {
        match self {
            IssueKind::Article => "article",
            IssueKind::Digest => "digest",
        }
    }
}

/// What the caller freezes when it creates an issue. `content` is opaque
/// to the ledger: whatever the renderer needs to render the same email
/// again when the issue is resumed (e.g. serialized template data).
#[derive(Debug, Clone)]
pub struct NewIssue<'a> {
    pub id: &'a IssueId,
    pub kind: IssueKind,
    pub article_ids: &'a [String],
    pub subject: &'a str,
    pub content: &'a [u8],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub id: IssueId,
    pub kind: IssueKind,
    pub article_ids: Vec<String>,
    pub subject: String,
    pub content: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Sent,
    Deferred,
    Failed,
}

impl DeliveryState {
    fn parse(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "sent" => DeliveryState::Sent,
            "deferred" => DeliveryState::Deferred,
            "failed" => DeliveryState::Failed,
            _ => return None,
        })
    }
}

/// A delivery due now: whom to send to, and how often it was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The normalized (lower-case) address: the ledger's key.
    pub recipient: String,
    /// The address as the subscriber list wrote it.
    pub address: EmailAddress,
    pub state: DeliveryState,
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub pending: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
}

impl Counts {
    /// Deliveries that still need a run: pending or deferred.
    pub fn unfinished(&self) -> u64 {
        self.pending + self.deferred
    }
    pub fn total(&self) -> u64 {
        self.pending + self.sent + self.deferred + self.failed
    }
}

/// One line of `pressroom status`.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueStatus {
    pub id: IssueId,
    pub kind: IssueKind,
    pub article_ids: Vec<String>,
    pub subject: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub counts: Counts,
    /// The earliest retry of a deferred delivery.
    pub next_retry: Option<DateTime<Utc>>,
    /// The server's reply for the most recently deferred or failed delivery.
    pub last_error: Option<String>,
    /// Bounce and complaint reports attributed to this issue.
    pub reports: ReportCounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionReason {
    /// The reader left (a link, a mailto, `pressroom unsubscribe`).
    Unsubscribed,
    /// A permanent failure: the server's 5xx during a send, or a bounce.
    HardBounce,
    /// A spam complaint (an ARF report, a provider's complaint).
    Complained,
    /// `bounces.soft_limit` temporary failures within `bounces.soft_days`.
    SoftBounce,
}

impl SuppressionReason {
    /// The reason as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Unsubscribed => "unsubscribed",
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::Complained => "complained",
            SuppressionReason::SoftBounce => "soft_bounce",
        }
    }

    /// The reason as stored, read back.
    pub fn parse(stored: &str) -> Option<SuppressionReason> {
        Some(match stored {
            "unsubscribed" => SuppressionReason::Unsubscribed,
            "hard_bounce" => SuppressionReason::HardBounce,
            "complained" => SuppressionReason::Complained,
            "soft_bounce" => SuppressionReason::SoftBounce,
            _ => return None,
        })
    }

    /// Whether the mail system (not the reader) asked for it: what
    /// [`Ledger::reactivate`] may lift.
    pub fn is_from_mail_system(self) -> bool {
        !matches!(self, SuppressionReason::Unsubscribed)
    }
}

/// One bounce or complaint report, attributed to a delivery, as
/// [`Ledger::record_report`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow<'a> {
    /// Unique per report: the same report seen twice counts once.
    pub key: &'a str,
    /// The normalized address of the delivery.
    pub recipient: &'a str,
    pub issue: &'a IssueId,
    /// `hard`, `soft`, `complaint` or `auto-reply`.
    pub verdict: &'static str,
    pub status: Option<&'a str>,
    pub diagnostic: Option<&'a str>,
    /// Where it came from (`maildir`, `mbox`, `stdin`, `imap`, `ses`, …).
    pub source: &'a str,
    /// How it was matched to the delivery (`verp`, `message-id`, `recipient`).
    pub attributed_by: &'static str,
}

/// What [`Ledger::record_report`] does besides keeping the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportEffect {
    /// Nothing (an auto-reply).
    Nothing,
    /// Suppress the recipient for this reason (first suppression wins).
    Suppress(SuppressionReason),
    /// Count the recipient's soft bounces recorded at or after `since`
    /// (and after the latest reactivation), this one included; suppress
    /// as [`SuppressionReason::SoftBounce`] at `limit`.
    CountSoft { limit: u32, since: DateTime<Utc> },
}

/// What [`Ledger::record_report`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A report with this key is already kept: nothing changed.
    Duplicate,
    Kept {
        /// The reason, when this report suppressed the recipient (it was
        /// not suppressed before).
        suppressed: Option<SuppressionReason>,
        /// For [`ReportEffect::CountSoft`]: the soft bounces counted.
        soft_count: Option<u64>,
    },
}

/// What [`Ledger::reactivate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reactivation {
    /// The suppression (bounce or complaint) is lifted and recorded.
    Lifted { reason: SuppressionReason },
    /// The address is not suppressed.
    NotSuppressed,
    /// The reader unsubscribed: only a fresh signup brings them back.
    Unsubscribed,
}

/// Reports kept for one issue, per verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportCounts {
    pub hard: u64,
    pub soft: u64,
    pub complaint: u64,
    pub auto_reply: u64,
}

/// Where an address stood when a signup was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupRequest {
    /// Not known as a signup (it may be in the CSV): now pending.
    New,
    /// Asked before, not confirmed yet: still pending, asked again.
    Pending,
    /// A confirmed signup, not suppressed: nothing changes.
    Active,
    /// Suppressed (unsubscribed, bounced, complained): pending again;
    /// only a fresh confirmation lifts the suppression.
    Suppressed,
}

impl SignupRequest {
    /// Whether a confirmation email should go out.
    pub fn needs_confirmation(self) -> bool {
        !matches!(self, SignupRequest::Active)
    }
}

/// What a confirmation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The address is now an active subscriber.
    Confirmed,
    /// It already was (the link was used twice): nothing changes.
    AlreadyActive,
    /// The address left after this link was made: the link cannot bring
    /// it back (a newer signup sends a newer link). Nothing changes.
    Stale,
}

/// One signup row (`pressroom subscribers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    pub address: EmailAddress,
    pub name: Option<String>,
    /// `pending` or `active`.
    pub active: bool,
    pub requested_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The client address that asked, and the one that confirmed.
    pub request_client: Option<String>,
    pub confirm_client: Option<String>,
}

/// One suppression row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The normalized address.
    pub recipient: String,
    /// As stored: `unsubscribed`, `hard_bounce`, or a reason a newer
    /// pressroom wrote.
    pub reason: String,
    /// How it was asked for (`one-click`, `page`, `command`), or where
    /// the report came from (`maildir`, `stdin`, `ses`, …), when known.
    pub how: Option<String>,
    pub at: DateTime<Utc>,
    /// For a bounce: the status code (`5.1.1`) the report gave.
    pub status: Option<String>,
    /// For a bounce or a refusal: the server's words.
    pub reply: Option<String>,
    /// The issue whose delivery bounced or was reported.
    pub issue: Option<String>,
}

/// What went wrong with the ledger. The cause of an I/O or SQLite error is
/// its source, which the `{:#}` form shows once after the message.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{}: cannot open the send ledger", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the send ledger has schema version {found}, newer than this pressroom knows ({known}); upgrade pressroom", path.display())]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{}: send ledger", path.display())]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{}: send ledger holds something this pressroom cannot read: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error("{}: no issue `{id}` in the send ledger", path.display())]
    NoSuchIssue { path: PathBuf, id: IssueId },
    #[error("reading the recipients of issue `{id}`")]
    Recipients {
        id: IssueId,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Schema migrations, applied in order; `user_version` counts those done.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE issues (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('article', 'digest')),
        article_ids TEXT NOT NULL,
        subject TEXT NOT NULL,
        content BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE TABLE deliveries (
        issue_id TEXT NOT NULL REFERENCES issues(id),
        recipient TEXT NOT NULL,
        address TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'deferred', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        last_reply TEXT,
        sent_at INTEGER,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (issue_id, recipient)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_by_state ON deliveries (issue_id, state, next_attempt_at);
    CREATE INDEX deliveries_by_sent_at ON deliveries (sent_at) WHERE sent_at IS NOT NULL;
    CREATE TABLE suppressions (
        recipient TEXT PRIMARY KEY,
        reason TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'hard_bounce')),
        reply TEXT,
        at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE mailed_articles (
        article_id TEXT PRIMARY KEY,
        issue_id TEXT,
        at INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 2: signups through `serve`, and how an address left.
    "ALTER TABLE suppressions ADD COLUMN how TEXT;
    CREATE TABLE signups (
        recipient TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        name TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'active')),
        requested_at INTEGER NOT NULL,
        request_client TEXT,
        confirmed_at INTEGER,
        confirm_client TEXT
    ) WITHOUT ROWID;",
    // 3: bounces and complaints. Each delivery gets the key its VERP tag
    // and Message-ID carry (filled in for older rows by `backfill_keys`),
    // and an index by recipient; reports are kept once each (by their
    // dedupe key); suppressions take the reasons reports give (SQLite
    // cannot change a CHECK, so the table is rebuilt, rows kept); lifted
    // suppressions are recorded.
    "ALTER TABLE deliveries ADD COLUMN tag BLOB;
    CREATE INDEX deliveries_by_tag ON deliveries (tag);
    CREATE INDEX deliveries_by_recipient ON deliveries (recipient, sent_at);
    CREATE TABLE reports (
        key TEXT PRIMARY KEY,
        recipient TEXT NOT NULL,
        issue_id TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('hard', 'soft', 'complaint', 'auto-reply')),
        status TEXT,
        diagnostic TEXT,
        source TEXT NOT NULL,
        attributed_by TEXT NOT NULL,
        at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX reports_by_recipient ON reports (recipient, verdict, at);
    CREATE INDEX reports_by_issue ON reports (issue_id, verdict);
    CREATE TABLE suppressions_v3 (
        recipient TEXT PRIMARY KEY,
        reason TEXT NOT NULL
            CHECK (reason IN ('unsubscribed', 'hard_bounce', 'complained', 'soft_bounce')),
        reply TEXT,
        at INTEGER NOT NULL,
        how TEXT,
        status TEXT,
        issue_id TEXT
    ) WITHOUT ROWID;
    INSERT INTO suppressions_v3 (recipient, reason, reply, at, how)
        SELECT recipient, reason, reply, at, how FROM suppressions;
    DROP TABLE suppressions;
    ALTER TABLE suppressions_v3 RENAME TO suppressions;
    CREATE TABLE reactivations (
        recipient TEXT NOT NULL,
        reason TEXT NOT NULL,
        status TEXT,
        reply TEXT,
        suppressed_at INTEGER NOT NULL,
        how TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX reactivations_by_recipient ON reactivations (recipient, at);",
];

/// Recipients written per statement when an issue is created.
const INSERT_BATCH: usize = 1000;

pub struct Ledger {
    path: PathBuf,
    conn: Connection,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or_default()
}

/// [`Ledger::already_mailed`] for a ledger that does not exist yet: the
/// first send finds it fresh.
pub fn already_mailed_fresh(published: &[&str], include_existing: bool) -> HashSet<String> {
    if include_existing {
        HashSet::new()
    } else {
        published.iter().map(|id| (*id).to_owned()).collect()
    }
}

impl Ledger {
    /// Opens (creating, with its folder, if needed) the ledger at `path`,
    /// and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let open_err = |source| LedgerError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
        // Create the file ourselves so it is 0600 from the first byte;
        // SQLite gives its -wal and -shm files the same mode.
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).map_err(open_err)?;
        let conn = Connection::open(path).map_err(|source| LedgerError::Sql {
            path: path.to_owned(),
            source,
        })?;
        Ledger::setup(path.to_owned(), conn)
    }

    /// Opens the existing ledger at `path` for reading only: nothing is
    /// created, migrated or written (`preview`). A ledger newer than this
    /// pressroom is refused as [`Ledger::open`] refuses it.
    ///
    /// A read-only SQLite connection to a WAL database creates the `-wal`
    /// and `-shm` files when they are missing and, unable to checkpoint,
    /// leaves them behind. So when there is no `-wal` file (no send has
    /// the ledger open, and the last one checkpointed everything into the
    /// main file) the file is opened as immutable, which needs neither; a
    /// send that starts meanwhile only appends to its own WAL. Otherwise
    /// the existing WAL files are shared as usual.
    pub fn open_read_only(path: &Path) -> Result<Ledger, LedgerError> {
        let sql = |source| LedgerError::Sql {
            path: path.to_owned(),
            source,
        };
        let open_err = |source| LedgerError::Open {
            path: path.to_owned(),
            source,
        };
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = if Path::new(&wal).exists() {
            Connection::open_with_flags(path, flags - OpenFlags::SQLITE_OPEN_URI)
        } else {
            let absolute = std::path::absolute(path).map_err(open_err)?;
            let mut uri = url::Url::from_file_path(&absolute).map_err(|()| {
                open_err(std::io::Error::other("the path cannot be written as a URI"))
            })?;
            uri.set_query(Some("immutable=1"));
            Connection::open_with_flags(uri.as_str(), flags)
        }
        .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        let ledger = Ledger {
            path: path.to_owned(),
            conn,
        };
        let (found, known) = (ledger.schema_version()?, MIGRATIONS.len() as i64);
        if found > known {
            return Err(LedgerError::TooNew {
                path: path.to_owned(),
                found,
                known,
            });
        }
        Ok(ledger)
    }

    /// A ledger that lives in memory only (unit tests, `--dry-run`).
    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| LedgerError::Sql {
            path: path.clone(),
            source,
        })?;
        Ledger::setup(path, conn)
    }

    fn setup(path: PathBuf, conn: Connection) -> Result<Ledger, LedgerError> {
        let mut ledger = Ledger { path, conn };
        let sql = ledger.sql();
        ledger
            .conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(&sql)?;
        // journal_mode answers with a row, so it is queried, not updated.
        let _mode: String = ledger
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(&sql)?;
        ledger
            .conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(&sql)?;
        ledger.migrate()?;
        Ok(ledger)
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> LedgerError + use<> {
        let path = self.path.clone();
        move |source| LedgerError::Sql {
            path: path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let sql = self.sql();
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&sql)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(LedgerError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&sql)?;
            tx.execute_batch(step).map_err(&sql)?;
            if i + 1 == 3 {
                backfill_keys(&tx).map_err(&sql)?;
            }
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(&sql)?;
            tx.commit().map_err(&sql)?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version in use.
    pub fn schema_version(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql())
    }

    /// True until [`Ledger::baseline`] has run once: a fresh ledger must not
    /// mail the back catalogue.
    pub fn is_fresh(&self) -> Result<bool, LedgerError> {
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'baseline_at'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        Ok(found.is_none())
    }

    /// Records `article_ids` as already mailed (without an issue) and marks
    /// the ledger as no longer fresh. Returns how many were new. Idempotent.
    pub fn baseline<'a>(
        &mut self,
        article_ids: impl IntoIterator<Item = &'a str>,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        let sql = self.sql();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO mailed_articles (article_id, issue_id, at) VALUES (?1, NULL, ?2)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(&sql)?;
            for id in article_ids {
                added += insert.execute(params![id, ts(now)]).map_err(&sql)?;
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('baseline_at', ?1) ON CONFLICT DO NOTHING",
            params![now.to_rfc3339()],
        )
        .map_err(&sql)?;
        tx.commit().map_err(&sql)?;
        Ok(added)
    }

    /// The ids among `article_ids` that no issue (nor the baseline) covers
    /// yet, in the order given.
    pub fn not_yet_mailed<'a>(
        &self,
        article_ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<String>, LedgerError> {
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM mailed_articles WHERE article_id = ?1")
            .map_err(&sql)?;
        let mut out = Vec::new();
        for id in article_ids {
            if !stmt.exists(params![id]).map_err(&sql)? {
                out.push(id.to_owned());
            }
        }
        Ok(out)
    }

    /// The ids among `published` that a send treats as already mailed: on
    /// a fresh ledger all of them (the back catalogue is recorded as sent,
    /// see [`Ledger::baseline`]) unless `include_existing`; otherwise
    /// those an issue or the baseline covers.
    pub fn already_mailed(
        &self,
        published: &[&str],
        include_existing: bool,
    ) -> Result<HashSet<String>, LedgerError> {
        if self.is_fresh()? {
            return Ok(already_mailed_fresh(published, include_existing));
        }
        let pending: HashSet<String> = self
            .not_yet_mailed(published.iter().copied())?
            .into_iter()
            .collect();
        Ok(published
            .iter()
            .filter(|id| !pending.contains(**id))
            .map(|id| (*id).to_owned())
            .collect())
    }

    /// Creates the issue, marks its articles as mailed, and adds one pending
    /// delivery per recipient that is not suppressed (duplicates collapse),
    /// all in one transaction: a crash leaves either all of it or none.
    /// Returns `None` when an issue with this id already exists (nothing
    /// changes), or the number of deliveries created.
    pub fn create_issue<I, E>(
        &mut self,
        issue: &NewIssue<'_>,
        recipients: I,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, LedgerError>
    where
        I: IntoIterator<Item = Result<EmailAddress, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let sql = self.sql();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&sql)?;
        let article_ids =
            serde_json::to_string(issue.article_ids).map_err(|e| LedgerError::Corrupt {
                path: self.path.clone(),
                what: e.to_string(),
            })?;
        let created = tx
            .execute(
                "INSERT INTO issues (id, kind, article_ids, subject, content, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![
                    issue.id.as_str(),
                    issue.kind.as_str(),
                    article_ids,
                    issue.subject,
                    issue.content,
                    ts(now)
                ],
            )
            .map_err(&sql)?;
        if created == 0 {
            return Ok(None);
        }
        let mut added = 0u64;
        {
            let mut mark = tx
                .prepare(
                    "INSERT INTO mailed_articles (article_id, issue_id, at) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(&sql)?;
            for id in issue.article_ids {
                mark.execute(params![id, issue.id.as_str(), ts(now)])
                    .map_err(&sql)?;
            }
            // A batch of recipients per statement, as one JSON array of
            // [normalized, address, hex key] triples: one statement run instead of
            // one per recipient (figures: README, Performance).
            let mut insert = tx
                .prepare(
                    "INSERT INTO deliveries (issue_id, recipient, address, state, updated_at, tag)
                     SELECT ?1, json_extract(r.value, '$[0]'), json_extract(r.value, '$[1]'),
                            'pending', ?3, unhex(json_extract(r.value, '$[2]'))
                     FROM json_each(?2) r
                     WHERE NOT EXISTS (SELECT 1 FROM suppressions s
                                       WHERE s.recipient = json_extract(r.value, '$[0]'))
                     ON CONFLICT DO NOTHING",
                )
                .map_err(&sql)?;
            let mut batch: Vec<(String, String, String)> = Vec::with_capacity(INSERT_BATCH);
            let mut insert_batch = |batch: &mut Vec<(String, String, String)>| {
                let json = serde_json::to_string(&*batch).map_err(|e| LedgerError::Corrupt {
                    path: self.path.clone(),
                    what: e.to_string(),
                })?;
                batch.clear();
                insert
                    .execute(params![issue.id.as_str(), json, ts(now)])
                    .map(|n| n as u64)
                    .map_err(&sql)
            };
            for recipient in recipients {
                let address = recipient.map_err(|e| LedgerError::Recipients {
                    id: issue.id.clone(),
                    source: e.into(),
                })?;
                let normalized = address.normalized();
                let key = hex::encode(delivery_key(issue.id.as_str(), &normalized));
                batch.push((normalized, address.as_str().to_owned(), key));
                if batch.len() == INSERT_BATCH {
                    added += insert_batch(&mut batch)?;
                }
            }
            if !batch.is_empty() {
                added += insert_batch(&mut batch)?;
            }
        }
        tx.commit().map_err(&sql)?;
        Ok(Some(added))
    }

    fn issue_from_row(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Issue, String>> {
        let id: String = row.get(0)?;
        let kind: String = row.get(1)?;
        let article_ids: String = row.get(2)?;
        let subject: String = row.get(3)?;
        let content: Vec<u8> = row.get(4)?;
        let created_at: i64 = row.get(5)?;
        let finished_at: Option<i64> = row.get(6)?;
        Ok((|| {
            Ok(Issue {
                id: IssueId::parse(&id).map_err(|e| e.to_string())?,
                kind: match kind.as_str() {
                    "article" => IssueKind::Article,
                    "digest" => IssueKind::Digest,
                    other => return Err(format!("issue `{id}` has unknown kind `{other}`")),
                },
                article_ids: serde_json::from_str(&article_ids)
                    .map_err(|e| format!("issue `{id}` article ids: {e}"))?,
                subject,
                content,
                created_at: from_ts(created_at),
                finished_at: finished_at.map(from_ts),
            })
        })())
    }

    /// The issue with this id, with its frozen content.
    pub fn issue(&self, id: &IssueId) -> Result<Option<Issue>, LedgerError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, kind, article_ids, subject, content, created_at, finished_at
                 FROM issues WHERE id = ?1",
                params![id.as_str()],
                |r| self.issue_from_row(r),
            )
            .optional()
            .map_err(self.sql())?;
        row.map(|r| r.map_err(|what| self.corrupt(what)))
            .transpose()
    }

    fn corrupt(&self, what: String) -> LedgerError {
        LedgerError::Corrupt {
            path: self.path.clone(),
            what,
        }
    }

    /// Issues with deliveries still to make, oldest first: a run resumes
    /// these before creating a new one.
    pub fn unfinished_issues(&self) -> Result<Vec<Issue>, LedgerError> {
        self.issues_where("finished_at IS NULL")
    }

    /// Every issue, oldest first.
    pub fn issues(&self) -> Result<Vec<Issue>, LedgerError> {
        self.issues_where("1")
    }

    fn issues_where(&self, condition: &str) -> Result<Vec<Issue>, LedgerError> {
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, kind, article_ids, subject, content, created_at, finished_at
                 FROM issues WHERE {condition} ORDER BY created_at, id"
            ))
            .map_err(&sql)?;
        let rows = stmt
            .query_map([], |r| self.issue_from_row(r))
            .map_err(&sql)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(&sql)?.map_err(|what| self.corrupt(what))?);
        }
        Ok(out)
    }

    /// Marks unfinished deliveries to suppressed addresses as failed (they
    /// were suppressed after the issue was created). Returns how many.
    pub fn fail_suppressed(
        &mut self,
        issue: &IssueId,
        now: DateTime<Utc>,
    ) -> Result<u64, LedgerError> {
        let n = self
            .conn
            .execute(
                "UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, updated_at = ?2,
                     last_reply = 'not sent: address suppressed (' ||
                         (SELECT reason FROM suppressions s WHERE s.recipient = deliveries.recipient) || ')'
                 WHERE issue_id = ?1 AND state IN ('pending', 'deferred')
                   AND recipient IN (SELECT recipient FROM suppressions)",
                params![issue.as_str(), ts(now)],
            )
            .map_err(self.sql())?;
        Ok(n as u64)
    }

    /// Up to `limit` deliveries of `issue` due at `now` (pending, or
    /// deferred with their retry time reached), not suppressed, with a key
    /// greater than `after`: page with the last recipient returned.
    pub fn due(
        &self,
        issue: &IssueId,
        now: DateTime<Utc>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Delivery>, LedgerError> {
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT recipient, address, state, attempts FROM deliveries d
                 WHERE issue_id = ?1 AND recipient > ?2
                   AND (state = 'pending' OR (state = 'deferred' AND next_attempt_at <= ?3))
                   AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.recipient = d.recipient)
                 ORDER BY recipient LIMIT ?4",
            )
            .map_err(&sql)?;
        let rows = stmt
            .query_map(
                params![issue.as_str(), after.unwrap_or(""), ts(now), limit as i64],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, u32>(3)?,
                    ))
                },
            )
            .map_err(&sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (recipient, address, state, attempts) = row.map_err(&sql)?;
            let address = EmailAddress::parse(&address)
                .map_err(|e| self.corrupt(format!("issue `{issue}`: {e}")))?;
            let state = DeliveryState::parse(&state)
                .ok_or_else(|| self.corrupt(format!("delivery state `{state}`")))?;
            out.push(Delivery {
                recipient,
                address,
                state,
                attempts,
            });
        }
        Ok(out)
    }

    /// Starts a group commit: the marks until [`Ledger::commit_group`] are
    /// one transaction (one fsync). Results of different connections that
    /// arrive together are recorded so; each connection still has at most
    /// one accepted message not on record.
    pub fn begin_group(&mut self) -> Result<(), LedgerError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(self.sql())
    }

    /// Commits the group started by [`Ledger::begin_group`].
    pub fn commit_group(&mut self) -> Result<(), LedgerError> {
        self.conn.execute_batch("COMMIT").map_err(self.sql())
    }

    /// Abandons the group started by [`Ledger::begin_group`], if any.
    pub fn rollback_group(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// The server accepted the message: one committed transaction (or part
    /// of a group commit), so a crash right after it never sends this one
    /// again.
    pub fn mark_sent(
        &mut self,
        issue: &IssueId,
        recipient: &str,
        reply: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        // Cached: parsed once per ledger, not once per message.
        self.conn
            .prepare_cached(
                "UPDATE deliveries SET state = 'sent', attempts = attempts + 1,
                     next_attempt_at = NULL, last_reply = ?3, sent_at = ?4, updated_at = ?4
                 WHERE issue_id = ?1 AND recipient = ?2",
            )
            .and_then(|mut update| {
                update.execute(params![issue.as_str(), recipient, reply, ts(now)])
            })
            .map_err(self.sql())?;
        Ok(())
    }

    /// A temporary failure: try again at `next_attempt_at`.
    pub fn mark_deferred(
        &mut self,
        issue: &IssueId,
        recipient: &str,
        reply: &str,
        next_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "UPDATE deliveries SET state = 'deferred', attempts = attempts + 1,
                     next_attempt_at = ?4, last_reply = ?3, updated_at = ?5
                 WHERE issue_id = ?1 AND recipient = ?2",
            )
            .and_then(|mut update| {
                update.execute(params![
                    issue.as_str(),
                    recipient,
                    reply,
                    ts(next_attempt_at),
                    ts(now)
                ])
            })
            .map_err(self.sql())?;
        Ok(())
    }

    /// A permanent failure (or too many temporary ones); with `suppress`
    /// the address is also added to the suppression list, in the same
    /// transaction.
    pub fn mark_failed(
        &mut self,
        issue: &IssueId,
        recipient: &str,
        reply: &str,
        suppress: Option<SuppressionReason>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let sql = self.sql();
        // A savepoint: its own transaction, or part of a group commit.
        let tx = self.conn.savepoint().map_err(&sql)?;
        tx.execute(
            "UPDATE deliveries SET state = 'failed', attempts = attempts + 1,
                 next_attempt_at = NULL, last_reply = ?3, updated_at = ?4
             WHERE issue_id = ?1 AND recipient = ?2",
            params![issue.as_str(), recipient, reply, ts(now)],
        )
        .map_err(&sql)?;
        if let Some(reason) = suppress {
            tx.execute(
                "INSERT INTO suppressions (recipient, reason, reply, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![recipient, reason.as_str(), reply, ts(now)],
            )
            .map_err(&sql)?;
        }
        tx.commit().map_err(&sql)
    }

    /// Adds `address` to the suppression list (`unsubscribe`). Returns false
    /// when it was already there.
    pub fn suppress(
        &mut self,
        address: &EmailAddress,
        reason: SuppressionReason,
        reply: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let n = self
            .conn
            .execute(
                "INSERT INTO suppressions (recipient, reason, reply, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
                params![address.normalized(), reason.as_str(), reply, ts(now)],
            )
            .map_err(self.sql())?;
        Ok(n > 0)
    }

    /// Adds `address` to the suppression list as unsubscribed, recording
    /// how (`one-click`, `page`, `command`). Returns false when it was
    /// already suppressed (the first record stays).
    pub fn unsubscribe(
        &mut self,
        address: &EmailAddress,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO suppressions (recipient, reason, how, at) VALUES (?1, 'unsubscribed', ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )
            .and_then(|mut insert| insert.execute(params![address.normalized(), how, ts(now)]))
            .map_err(self.sql())?;
        Ok(n > 0)
    }

    /// Records a signup request: the address becomes (or stays) pending
    /// unless it is an active, unsuppressed signup. Returns where it
    /// stood before.
    pub fn request_signup(
        &mut self,
        address: &EmailAddress,
        name: Option<&str>,
        client: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<SignupRequest, LedgerError> {
        let sql = self.sql();
        let tx = self.conn.savepoint().map_err(&sql)?;
        let key = address.normalized();
        let state = signup_state(&tx, &key).map_err(&sql)?;
        let suppressed = tx
            .prepare_cached("SELECT 1 FROM suppressions WHERE recipient = ?1")
            .and_then(|mut s| s.exists(params![key]))
            .map_err(&sql)?;
        let before = match (state.as_deref(), suppressed) {
            (_, true) => SignupRequest::Suppressed,
            (Some("active"), false) => SignupRequest::Active,
            (Some(_), false) => SignupRequest::Pending,
            (None, false) => SignupRequest::New,
        };
        if before != SignupRequest::Active {
            tx.execute(
                "INSERT INTO signups (recipient, address, name, state, requested_at, request_client)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5)
                 ON CONFLICT (recipient) DO UPDATE SET
                     address = excluded.address,
                     name = coalesce(excluded.name, signups.name),
                     state = 'pending',
                     requested_at = excluded.requested_at,
                     request_client = excluded.request_client",
                params![key, address.as_str(), name, ts(now), client],
            )
            .map_err(&sql)?;
        }
        tx.commit().map_err(&sql)?;
        Ok(before)
    }

    /// Confirms the signup of `address` whose link was made at
    /// `issued_at`: it becomes an active subscriber (source `signup`),
    /// with the time and `client` kept, and a suppression older than the
    /// link is lifted (the reader asked again and confirmed). A link made
    /// before the address's latest suppression changes nothing.
    pub fn confirm_signup(
        &mut self,
        address: &EmailAddress,
        issued_at: DateTime<Utc>,
        client: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Confirmation, LedgerError> {
        let sql = self.sql();
        let tx = self.conn.savepoint().map_err(&sql)?;
        let key = address.normalized();
        let suppressed_at: Option<i64> = tx
            .query_row(
                "SELECT at FROM suppressions WHERE recipient = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(&sql)?;
        let state = signup_state(&tx, &key).map_err(&sql)?;
        let outcome = match suppressed_at {
            Some(at) if at >= ts(issued_at) => Confirmation::Stale,
            None if state.as_deref() == Some("active") => Confirmation::AlreadyActive,
            _ => Confirmation::Confirmed,
        };
        if outcome == Confirmation::Confirmed {
            tx.execute(
                "DELETE FROM suppressions WHERE recipient = ?1",
                params![key],
            )
            .map_err(&sql)?;
            tx.execute(
                "INSERT INTO signups (recipient, address, state, requested_at, confirmed_at, confirm_client)
                 VALUES (?1, ?2, 'active', ?3, ?4, ?5)
                 ON CONFLICT (recipient) DO UPDATE SET
                     state = 'active', confirmed_at = excluded.confirmed_at,
                     confirm_client = excluded.confirm_client",
                params![key, address.as_str(), ts(issued_at), ts(now), client],
            )
            .map_err(&sql)?;
        }
        tx.commit().map_err(&sql)?;
        Ok(outcome)
    }

    /// Every signup, pending and active, by normalized address.
    pub fn signups(&self) -> Result<Vec<Signup>, LedgerError> {
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT address, name, state, requested_at, confirmed_at, request_client, confirm_client
                 FROM signups ORDER BY recipient",
            )
            .map_err(&sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(&sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (address, name, state, requested, confirmed, request_client, confirm_client) =
                row.map_err(&sql)?;
            out.push(Signup {
                address: EmailAddress::parse(&address)
                    .map_err(|e| self.corrupt(format!("signup: {e}")))?,
                name,
                active: state == "active",
                requested_at: from_ts(requested),
                confirmed_at: confirmed.map(from_ts),
                request_client,
                confirm_client,
            });
        }
        Ok(out)
    }

    /// The confirmed signups as recipients of a send (suppressed ones are
    /// left out when an issue's deliveries are created).
    pub fn active_signups(&self) -> Result<Vec<crate::email::Recipient>, LedgerError> {
        Ok(self
            .signups()?
            .into_iter()
            .filter(|s| s.active)
            .map(|s| crate::email::Recipient {
                email: s.address,
                name: s.name,
                fields: Default::default(),
            })
            .collect())
    }

    /// Every suppression, by normalized address.
    pub fn suppressions(&self) -> Result<Vec<Suppression>, LedgerError> {
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT recipient, reason, how, at, status, reply, issue_id
                 FROM suppressions ORDER BY recipient",
            )
            .map_err(&sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Suppression {
                    recipient: r.get(0)?,
                    reason: r.get(1)?,
                    how: r.get(2)?,
                    at: from_ts(r.get(3)?),
                    status: r.get(4)?,
                    reply: r.get(5)?,
                    issue: r.get(6)?,
                })
            })
            .map_err(&sql)?;
        rows.collect::<Result<_, _>>().map_err(&sql)
    }

    /// Why `address` is suppressed, if it is.
    pub fn suppression(
        &self,
        address: &EmailAddress,
    ) -> Result<Option<SuppressionReason>, LedgerError> {
        let reason: Option<String> = self
            .conn
            .query_row(
                "SELECT reason FROM suppressions WHERE recipient = ?1",
                params![address.normalized()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        // A reason a newer pressroom wrote still suppresses.
        Ok(reason.map(|r| SuppressionReason::parse(&r).unwrap_or(SuppressionReason::HardBounce)))
    }

    /// The delivery whose key (see `email::verp::delivery_key`) is `key`:
    /// its issue and normalized recipient.
    pub fn delivery_by_key(
        &self,
        key: &[u8; KEY_LEN],
    ) -> Result<Option<(IssueId, String)>, LedgerError> {
        let row: Option<(String, String)> = self
            .conn
            .prepare_cached("SELECT issue_id, recipient FROM deliveries WHERE tag = ?1 LIMIT 1")
            .and_then(|mut s| {
                s.query_row(params![&key[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(self.sql())?;
        row.map(|(issue, recipient)| {
            IssueId::parse(&issue)
                .map(|id| (id, recipient))
                .map_err(|e| self.corrupt(e.to_string()))
        })
        .transpose()
    }

    /// The latest issue the server accepted a message of for the
    /// normalized address `recipient`.
    pub fn last_sent_to(&self, recipient: &str) -> Result<Option<IssueId>, LedgerError> {
        let issue: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT issue_id FROM deliveries
                 WHERE recipient = ?1 AND sent_at IS NOT NULL
                 ORDER BY sent_at DESC LIMIT 1",
            )
            .and_then(|mut s| s.query_row(params![recipient], |r| r.get(0)).optional())
            .map_err(self.sql())?;
        issue
            .map(|i| IssueId::parse(&i).map_err(|e| self.corrupt(e.to_string())))
            .transpose()
    }

    /// Keeps one attributed report and applies `effect`, in one
    /// transaction (a savepoint inside a group commit). A report whose
    /// key is already kept changes nothing.
    pub fn record_report(
        &mut self,
        row: &ReportRow<'_>,
        effect: ReportEffect,
        now: DateTime<Utc>,
    ) -> Result<Recorded, LedgerError> {
        let sql = self.sql();
        let tx = self.write_tx()?;
        let recorded = record_report_in(&tx, row, effect, now).map_err(&sql)?;
        tx.commit().map_err(&sql)?;
        Ok(recorded)
    }

    /// A write transaction: IMMEDIATE on its own (so it never fails to
    /// upgrade a read lock), a savepoint inside a group commit.
    fn write_tx(&mut self) -> Result<WriteTx<'_>, LedgerError> {
        let sql = self.sql();
        if self.conn.is_autocommit() {
            self.conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map(WriteTx::Own)
                .map_err(sql)
        } else {
            self.conn.savepoint().map(WriteTx::Nested).map_err(sql)
        }
    }

    /// Lifts a suppression the mail system asked for (a hard or soft
    /// bounce, a complaint) and records when and how (`command`, …); an
    /// unsubscribe is never lifted here.
    pub fn reactivate(
        &mut self,
        address: &EmailAddress,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<Reactivation, LedgerError> {
        let sql = self.sql();
        let key = address.normalized();
        let tx = self.write_tx()?;
        let found: Option<(String, Option<String>, Option<String>, i64)> = tx
            .query_row(
                "SELECT reason, status, reply, at FROM suppressions WHERE recipient = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(&sql)?;
        let outcome = match found {
            None => Reactivation::NotSuppressed,
            Some((reason, status, reply, at)) => {
                let parsed =
                    SuppressionReason::parse(&reason).unwrap_or(SuppressionReason::HardBounce);
                if parsed.is_from_mail_system() {
                    tx.execute(
                        "INSERT INTO reactivations (recipient, reason, status, reply, suppressed_at, how, at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![key, reason, status, reply, at, how, ts(now)],
                    )
                    .map_err(&sql)?;
                    tx.execute(
                        "DELETE FROM suppressions WHERE recipient = ?1",
                        params![key],
                    )
                    .map_err(&sql)?;
                    Reactivation::Lifted { reason: parsed }
                } else {
                    Reactivation::Unsubscribed
                }
            }
        };
        tx.commit().map_err(&sql)?;
        Ok(outcome)
    }

    /// Reports kept for `issue`, per verdict.
    pub fn report_counts(&self, issue: &IssueId) -> Result<ReportCounts, LedgerError> {
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT verdict, COUNT(*) FROM reports WHERE issue_id = ?1 GROUP BY verdict",
            )
            .map_err(&sql)?;
        let rows = stmt
            .query_map(params![issue.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(&sql)?;
        let mut counts = ReportCounts::default();
        for row in rows {
            let (verdict, n) = row.map_err(&sql)?;
            match verdict.as_str() {
                "hard" => counts.hard = n,
                "soft" => counts.soft = n,
                "complaint" => counts.complaint = n,
                _ => counts.auto_reply += n,
            }
        }
        Ok(counts)
    }

    /// Deliveries of `issue` per state.
    pub fn counts(&self, issue: &IssueId) -> Result<Counts, LedgerError> {
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT state, COUNT(*) FROM deliveries WHERE issue_id = ?1 GROUP BY state",
            )
            .map_err(&sql)?;
        let rows = stmt
            .query_map(params![issue.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(&sql)?;
        let mut counts = Counts::default();
        for row in rows {
            let (state, n) = row.map_err(&sql)?;
            match DeliveryState::parse(&state) {
                Some(DeliveryState::Pending) => counts.pending = n,
                Some(DeliveryState::Sent) => counts.sent = n,
                Some(DeliveryState::Deferred) => counts.deferred = n,
                Some(DeliveryState::Failed) => counts.failed = n,
                None => return Err(self.corrupt(format!("delivery state `{state}`"))),
            }
        }
        Ok(counts)
    }

    /// Every issue with its counts, next retry and last error, oldest first.
    pub fn status(&self) -> Result<Vec<IssueStatus>, LedgerError> {
        let sql = self.sql();
        let mut out = Vec::new();
        for issue in self.issues()? {
            let counts = self.counts(&issue.id)?;
            let next_retry: Option<i64> = self
                .conn
                .query_row(
                    "SELECT MIN(next_attempt_at) FROM deliveries WHERE issue_id = ?1 AND state = 'deferred'",
                    params![issue.id.as_str()],
                    |r| r.get(0),
                )
                .map_err(&sql)?;
            let last_error: Option<String> = self
                .conn
                .query_row(
                    "SELECT last_reply FROM deliveries
                     WHERE issue_id = ?1 AND state IN ('deferred', 'failed')
                     ORDER BY updated_at DESC LIMIT 1",
                    params![issue.id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&sql)?
                .flatten();
            let reports = self.report_counts(&issue.id)?;
            out.push(IssueStatus {
                id: issue.id,
                kind: issue.kind,
                article_ids: issue.article_ids,
                subject: issue.subject,
                created_at: issue.created_at,
                finished_at: issue.finished_at,
                counts,
                next_retry: next_retry.map(from_ts),
                last_error,
                reports,
            });
        }
        Ok(out)
    }

    /// Messages accepted by the server at or after `since`, across issues:
    /// what the hourly and daily caps count.
    pub fn sent_since(&self, since: DateTime<Utc>) -> Result<u64, LedgerError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM deliveries WHERE sent_at >= ?1",
                params![ts(since)],
                |r| r.get::<_, i64>(0).map(|n| n as u64),
            )
            .map_err(self.sql())
    }

    /// Sets `finished_at` when nothing is pending or deferred any more.
    /// Returns whether the issue is finished.
    pub fn finish_if_done(
        &mut self,
        issue: &IssueId,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let counts = self.counts(issue)?;
        if counts.unfinished() > 0 {
            return Ok(false);
        }
        self.conn
            .execute(
                "UPDATE issues SET finished_at = ?2 WHERE id = ?1 AND finished_at IS NULL",
                params![issue.as_str(), ts(now)],
            )
            .map_err(self.sql())?;
        Ok(true)
    }

    /// Makes every deferred delivery of `issue` due at `at` (the operator's
    /// "retry now"; tests use it instead of waiting for the backoff).
    pub fn retry_deferred_at(
        &mut self,
        issue: &IssueId,
        at: DateTime<Utc>,
    ) -> Result<u64, LedgerError> {
        let n = self
            .conn
            .execute(
                "UPDATE deliveries SET next_attempt_at = ?2 WHERE issue_id = ?1 AND state = 'deferred'",
                params![issue.as_str(), ts(at)],
            )
            .map_err(self.sql())?;
        Ok(n as u64)
    }

    /// Every delivery of `issue` with its state and last reply, by
    /// recipient (for `status -v` and tests).
    pub fn deliveries(
        &self,
        issue: &IssueId,
    ) -> Result<Vec<(Delivery, Option<String>)>, LedgerError> {
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT recipient, address, state, attempts, last_reply FROM deliveries
                 WHERE issue_id = ?1 ORDER BY recipient",
            )
            .map_err(&sql)?;
        let rows = stmt
            .query_map(params![issue.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(&sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (recipient, address, state, attempts, reply) = row.map_err(&sql)?;
            let address = EmailAddress::parse(&address).map_err(|e| self.corrupt(e.to_string()))?;
            let state = DeliveryState::parse(&state)
                .ok_or_else(|| self.corrupt(format!("delivery state `{state}`")))?;
            out.push((
                Delivery {
                    recipient,
                    address,
                    state,
                    attempts,
                },
                reply,
            ));
        }
        Ok(out)
    }
}

/// A transaction of its own, or a savepoint inside a group commit;
/// dropped without [`WriteTx::commit`], it rolls back.
enum WriteTx<'a> {
    Own(rusqlite::Transaction<'a>),
    Nested(rusqlite::Savepoint<'a>),
}

impl WriteTx<'_> {
    fn commit(self) -> rusqlite::Result<()> {
        match self {
            WriteTx::Own(tx) => tx.commit(),
            WriteTx::Nested(sp) => sp.commit(),
        }
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            WriteTx::Own(tx) => tx,
            WriteTx::Nested(sp) => sp,
        }
    }
}

fn record_report_in(
    conn: &rusqlite::Connection,
    row: &ReportRow<'_>,
    effect: ReportEffect,
    now: DateTime<Utc>,
) -> rusqlite::Result<Recorded> {
    let kept = conn
        .prepare_cached(
            "INSERT INTO reports
                 (key, recipient, issue_id, verdict, status, diagnostic, source, attributed_by, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            row.key,
            row.recipient,
            row.issue.as_str(),
            row.verdict,
            row.status,
            row.diagnostic,
            row.source,
            row.attributed_by,
            ts(now)
        ])?;
    if kept == 0 {
        return Ok(Recorded::Duplicate);
    }
    let suppress = |reason: SuppressionReason| -> rusqlite::Result<Option<SuppressionReason>> {
        let n = conn
            .prepare_cached(
                "INSERT INTO suppressions (recipient, reason, reply, at, how, status, issue_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                row.recipient,
                reason.as_str(),
                row.diagnostic,
                ts(now),
                row.source,
                row.status,
                row.issue.as_str()
            ])?;
        Ok((n > 0).then_some(reason))
    };
    Ok(match effect {
        ReportEffect::Nothing => Recorded::Kept {
            suppressed: None,
            soft_count: None,
        },
        ReportEffect::Suppress(reason) => Recorded::Kept {
            suppressed: suppress(reason)?,
            soft_count: None,
        },
        ReportEffect::CountSoft { limit, since } => {
            let count: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM reports
                     WHERE recipient = ?1 AND verdict = 'soft' AND at >= ?2
                       AND at > coalesce((SELECT MAX(at) FROM reactivations
                                          WHERE recipient = ?1), -1)",
                )?
                .query_row(params![row.recipient, ts(since)], |r| r.get(0))?;
            let count = count.max(0) as u64;
            let suppressed = if count >= u64::from(limit) {
                suppress(SuppressionReason::SoftBounce)?
            } else {
                None
            };
            Recorded::Kept {
                suppressed,
                soft_count: Some(count),
            }
        }
    })
}

/// Fills in the VERP/Message-ID key of deliveries written before
/// schema 3.
fn backfill_keys(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mut select =
        conn.prepare("SELECT issue_id, recipient FROM deliveries WHERE tag IS NULL")?;
    let mut update =
        conn.prepare("UPDATE deliveries SET tag = ?3 WHERE issue_id = ?1 AND recipient = ?2")?;
    let rows = select.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (issue, recipient) = row?;
        let key = delivery_key(&issue, &recipient);
        update.execute(params![issue, recipient, &key[..]])?;
    }
    Ok(())
}

/// Page size the worker uses when reading due deliveries: memory stays
/// bounded however many recipients an issue has.
pub const PAGE: usize = 500;

/// The signup state (`pending`, `active`) of the normalized address `key`.
fn signup_state(conn: &rusqlite::Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT state FROM signups WHERE recipient = ?1",
        params![key],
        |r| r.get(0),
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn addr(s: &str) -> Result<EmailAddress, Infallible> {
        Ok(EmailAddress::parse(s).unwrap())
    }

    fn t(s: i64) -> DateTime<Utc> {
        from_ts(1_800_000_000 + s)
    }

    fn new_issue(ledger: &mut Ledger, id: &str, recipients: &[&str]) -> IssueId {
        let id = IssueId::parse(id).unwrap();
        let articles = vec!["tag:example.com,2026:a".to_owned()];
        let created = ledger
            .create_issue(
                &NewIssue {
                    id: &id,
                    kind: IssueKind::Article,
                    article_ids: &articles,
                    subject: "Hello",
                    content: b"frozen",
                },
                recipients.iter().map(|r| addr(r)),
                t(0),
            )
            .unwrap();
        assert!(created.is_some());
        id
    }

    #[test]
    fn file_is_private_and_schema_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".pressroom/state.db");
        let ledger = Ledger::open(&path).unwrap();
        assert_eq!(ledger.schema_version().unwrap(), MIGRATIONS.len() as i64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let mode: String = ledger
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = ledger
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        drop(ledger);
        // Reopening migrates nothing and keeps the data.
        Ledger::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Ledger::open(&path).unwrap_err().to_string();
        assert!(err.contains("schema version 99, newer"), "{err}");
    }

    #[test]
    fn issues_are_created_once_with_deduplicated_unsuppressed_recipients() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        let suppressed = EmailAddress::parse("Gone@example.com").unwrap();
        ledger
            .suppress(&suppressed, SuppressionReason::Unsubscribed, None, t(0))
            .unwrap();
        let id = new_issue(
            &mut ledger,
            "i1",
            &[
                "a@example.com",
                "A@Example.com",
                "b@example.com",
                "gone@example.com",
            ],
        );
        assert_eq!(
            ledger.counts(&id).unwrap(),
            Counts {
                pending: 2,
                ..Counts::default()
            }
        );
        let again = ledger
            .create_issue(
                &NewIssue {
                    id: &id,
                    kind: IssueKind::Article,
                    article_ids: &[],
                    subject: "Other",
                    content: b"",
                },
                [addr("c@example.com")],
                t(1),
            )
            .unwrap();
        assert_eq!(again, None);
        assert_eq!(ledger.counts(&id).unwrap().total(), 2);
        let issue = ledger.issue(&id).unwrap().unwrap();
        assert_eq!(issue.subject, "Hello");
        assert_eq!(issue.content, b"frozen");
        assert_eq!(issue.article_ids, ["tag:example.com,2026:a"]);
        assert_eq!(
            ledger
                .not_yet_mailed(["tag:example.com,2026:a", "new"])
                .unwrap(),
            ["new"]
        );
    }

    /// Deliveries are written a batch at a time: across batch
    /// boundaries, repeats still collapse (the first address as written
    /// wins), suppressed readers are left out, and addresses with
    /// punctuation or non-ASCII come back as they were.
    #[test]
    fn issues_for_many_recipients_are_written_in_batches() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        for gone in ["r00007@example.com", "r01500@example.com"] {
            ledger
                .suppress(
                    &EmailAddress::parse(gone).unwrap(),
                    SuppressionReason::HardBounce,
                    None,
                    t(0),
                )
                .unwrap();
        }
        let n = 2 * INSERT_BATCH + 345;
        let mut list: Vec<String> = (0..n).map(|i| format!("r{i:05}@example.com")).collect();
        // Repeats of earlier readers, in a later batch, in another case.
        list.extend((0..10).map(|i| format!("R{i:05}@EXAMPLE.com")));
        list.push("o'brien&co+{x}@example.org".to_owned());
        list.push("zoë@exämple.com".to_owned());
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        let id = new_issue(&mut ledger, "many", &refs);
        let counts = ledger.counts(&id).unwrap();
        assert_eq!(counts.pending as usize, n - 2 + 2);
        let mut after = None;
        let mut due = Vec::new();
        loop {
            let page = ledger.due(&id, t(1), after.as_deref(), PAGE).unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.recipient.clone());
            due.extend(page);
        }
        assert_eq!(due.len(), n);
        let find = |key: &str| {
            due.iter()
                .find(|d| d.recipient == key)
                .map(|d| d.address.as_str().to_owned())
        };
        assert_eq!(
            find("r00003@example.com").as_deref(),
            Some("r00003@example.com")
        );
        assert_eq!(find("r00007@example.com"), None);
        assert_eq!(find("r01500@example.com"), None);
        for odd in &list[n + 10..] {
            let address = EmailAddress::parse(odd).unwrap();
            assert_eq!(find(&address.normalized()).as_deref(), Some(odd.as_str()));
        }
    }

    #[test]
    fn states_move_and_due_pages() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        let id = new_issue(
            &mut ledger,
            "i1",
            &[
                "a@example.com",
                "b@example.com",
                "c@example.com",
                "d@example.com",
            ],
        );
        let due = ledger.due(&id, t(10), None, 2).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].recipient, "a@example.com");
        let rest = ledger.due(&id, t(10), Some("b@example.com"), 10).unwrap();
        assert_eq!(rest.len(), 2);

        ledger
            .mark_sent(&id, "a@example.com", "250 ok", t(10))
            .unwrap();
        ledger
            .mark_deferred(&id, "b@example.com", "451 later", t(310), t(10))
            .unwrap();
        ledger
            .mark_failed(
                &id,
                "c@example.com",
                "550 no such user",
                Some(SuppressionReason::HardBounce),
                t(10),
            )
            .unwrap();
        let due: Vec<_> = ledger
            .due(&id, t(11), None, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.recipient)
            .collect();
        assert_eq!(due, ["d@example.com"]);
        let due = ledger.due(&id, t(310), None, 10).unwrap();
        assert_eq!(due[0].recipient, "b@example.com");
        assert_eq!(due[0].state, DeliveryState::Deferred);
        assert_eq!(due[0].attempts, 1);
        let c = EmailAddress::parse("C@example.com").unwrap();
        assert_eq!(
            ledger.suppression(&c).unwrap(),
            Some(SuppressionReason::HardBounce)
        );
        assert_eq!(ledger.sent_since(t(0)).unwrap(), 1);
        assert_eq!(ledger.sent_since(t(11)).unwrap(), 0);

        let status = &ledger.status().unwrap()[0];
        assert_eq!(
            status.counts,
            Counts {
                pending: 1,
                sent: 1,
                deferred: 1,
                failed: 1
            }
        );
        assert_eq!(status.next_retry, Some(t(310)));
        assert!(status.last_error.is_some());

        // d unsubscribes between runs: it fails as suppressed, not silently.
        let d = EmailAddress::parse("d@example.com").unwrap();
        ledger
            .suppress(&d, SuppressionReason::Unsubscribed, None, t(20))
            .unwrap();
        assert_eq!(ledger.fail_suppressed(&id, t(20)).unwrap(), 1);
        assert!(!ledger.finish_if_done(&id, t(20)).unwrap());
        ledger
            .mark_sent(&id, "b@example.com", "250 ok", t(400))
            .unwrap();
        assert!(ledger.finish_if_done(&id, t(400)).unwrap());
        assert!(ledger.unfinished_issues().unwrap().is_empty());
        let (_, reply) = ledger
            .deliveries(&id)
            .unwrap()
            .into_iter()
            .find(|(d, _)| d.recipient == "d@example.com")
            .unwrap();
        assert_eq!(
            reply.as_deref(),
            Some("not sent: address suppressed (unsubscribed)")
        );
    }

    #[test]
    fn baseline_makes_the_ledger_not_fresh_even_with_no_articles() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        assert!(ledger.is_fresh().unwrap());
        assert_eq!(ledger.baseline([], t(0)).unwrap(), 0);
        assert!(!ledger.is_fresh().unwrap());
        assert_eq!(ledger.baseline(["x", "y"], t(1)).unwrap(), 2);
        assert_eq!(ledger.baseline(["x"], t(2)).unwrap(), 0);
        assert_eq!(ledger.not_yet_mailed(["x", "z"]).unwrap(), ["z"]);
    }

    #[test]
    fn a_recipient_error_rolls_the_issue_back() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        let id = IssueId::parse("i1").unwrap();
        let recipients: Vec<Result<EmailAddress, std::io::Error>> = vec![
            Ok(EmailAddress::parse("a@example.com").unwrap()),
            Err(std::io::Error::other("disk on fire")),
        ];
        let err = ledger
            .create_issue(
                &NewIssue {
                    id: &id,
                    kind: IssueKind::Digest,
                    article_ids: &["a".to_owned()],
                    subject: "s",
                    content: b"",
                },
                recipients,
                t(0),
            )
            .unwrap_err();
        // The cause is the error's source: shown once by `{:#}`.
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(shown.matches("disk on fire").count(), 1, "{shown}");
        assert!(ledger.issue(&id).unwrap().is_none());
        assert_eq!(ledger.not_yet_mailed(["a"]).unwrap(), ["a"]);
    }

    #[test]
    fn signups_move_from_pending_to_active_and_a_fresh_link_lifts_an_unsubscribe() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        let a = EmailAddress::parse("New@Example.com").unwrap();
        assert_eq!(
            ledger
                .request_signup(&a, Some("Ann"), Some("192.0.2.1"), t(0))
                .unwrap(),
            SignupRequest::New
        );
        assert_eq!(
            ledger
                .request_signup(&a, None, Some("192.0.2.2"), t(5))
                .unwrap(),
            SignupRequest::Pending
        );
        let rows = ledger.signups().unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].active);
        assert_eq!(
            rows[0].name.as_deref(),
            Some("Ann"),
            "a later request without a name keeps it"
        );
        assert_eq!(rows[0].requested_at, t(5));

        assert_eq!(
            ledger
                .confirm_signup(&a, t(5), Some("192.0.2.3"), t(10))
                .unwrap(),
            Confirmation::Confirmed
        );
        assert_eq!(
            ledger
                .confirm_signup(&a, t(5), Some("192.0.2.3"), t(11))
                .unwrap(),
            Confirmation::AlreadyActive
        );
        let row = &ledger.signups().unwrap()[0];
        assert!(row.active);
        assert_eq!(row.confirmed_at, Some(t(10)));
        assert_eq!(row.request_client.as_deref(), Some("192.0.2.2"));
        assert_eq!(row.confirm_client.as_deref(), Some("192.0.2.3"));
        assert_eq!(
            ledger.request_signup(&a, None, None, t(12)).unwrap(),
            SignupRequest::Active
        );

        // Leaving: the old link cannot bring the reader back.
        assert!(ledger.unsubscribe(&a, "one-click", t(20)).unwrap());
        assert!(!ledger.unsubscribe(&a, "page", t(21)).unwrap());
        let s = &ledger.suppressions().unwrap()[0];
        assert_eq!(
            (s.reason.as_str(), s.how.as_deref(), s.at),
            ("unsubscribed", Some("one-click"), t(20))
        );
        assert_eq!(
            ledger.confirm_signup(&a, t(5), None, t(22)).unwrap(),
            Confirmation::Stale
        );
        assert!(ledger.suppression(&a).unwrap().is_some());
        // Joining again takes a new request and a newer link.
        assert_eq!(
            ledger.request_signup(&a, None, None, t(30)).unwrap(),
            SignupRequest::Suppressed
        );
        assert!(
            ledger.suppression(&a).unwrap().is_some(),
            "asking alone lifts nothing"
        );
        assert_eq!(
            ledger.confirm_signup(&a, t(30), None, t(31)).unwrap(),
            Confirmation::Confirmed
        );
        assert_eq!(ledger.suppression(&a).unwrap(), None);
    }

    /// A ledger written by the previous schema (version 2) keeps every
    /// row through migration 3, its deliveries get their VERP keys, and
    /// its suppressions table takes the new reasons.
    #[test]
    fn a_version_2_ledger_with_rows_migrates_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute_batch(
                "INSERT INTO issues (id, kind, article_ids, subject, content, created_at, finished_at)
                     VALUES ('2026-01-01-old', 'article', '[\"a\"]', 'Old', x'00', 10, 20);
                 INSERT INTO deliveries (issue_id, recipient, address, state, attempts, last_reply, sent_at, updated_at)
                     VALUES ('2026-01-01-old', 'a@example.com', 'A@example.com', 'sent', 1, '250 ok', 15, 15),
                            ('2026-01-01-old', 'b@example.com', 'b@example.com', 'failed', 1, '550 no', NULL, 15);
                 INSERT INTO suppressions (recipient, reason, reply, at, how)
                     VALUES ('b@example.com', 'hard_bounce', '550 no', 15, NULL),
                            ('c@example.com', 'unsubscribed', NULL, 16, 'one-click');
                 INSERT INTO signups (recipient, address, state, requested_at)
                     VALUES ('d@example.com', 'd@example.com', 'pending', 17);
                 INSERT INTO mailed_articles (article_id, issue_id, at) VALUES ('a', '2026-01-01-old', 10);",
            )
            .unwrap();
        }
        let mut ledger = Ledger::open(&path).unwrap();
        assert_eq!(ledger.schema_version().unwrap(), 3);
        let id = IssueId::parse("2026-01-01-old").unwrap();
        let issue = ledger.issue(&id).unwrap().unwrap();
        assert_eq!(
            (issue.subject.as_str(), issue.finished_at),
            ("Old", Some(from_ts(20)))
        );
        let deliveries = ledger.deliveries(&id).unwrap();
        assert_eq!(deliveries.len(), 2);
        assert_eq!(deliveries[0].0.address.as_str(), "A@example.com");
        assert_eq!(deliveries[1].1.as_deref(), Some("550 no"));
        assert_eq!(ledger.counts(&id).unwrap().sent, 1);
        // Keys filled in for the old rows: a VERP tag finds them.
        assert_eq!(
            ledger
                .delivery_by_key(&delivery_key(id.as_str(), "a@example.com"))
                .unwrap(),
            Some((id.clone(), "a@example.com".to_owned()))
        );
        assert_eq!(
            ledger.last_sent_to("a@example.com").unwrap(),
            Some(id.clone())
        );
        let s = ledger.suppressions().unwrap();
        let rows: Vec<_> = s
            .iter()
            .map(|s| {
                (
                    s.recipient.as_str(),
                    s.reason.as_str(),
                    s.reply.as_deref(),
                    s.how.as_deref(),
                    s.at,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "b@example.com",
                    "hard_bounce",
                    Some("550 no"),
                    None,
                    from_ts(15)
                ),
                (
                    "c@example.com",
                    "unsubscribed",
                    None,
                    Some("one-click"),
                    from_ts(16)
                ),
            ]
        );
        assert_eq!(ledger.signups().unwrap().len(), 1);
        assert_eq!(ledger.not_yet_mailed(["a", "z"]).unwrap(), ["z"]);
        // The new reasons are accepted now.
        let e = EmailAddress::parse("e@example.com").unwrap();
        assert!(ledger
            .suppress(&e, SuppressionReason::Complained, None, t(0))
            .unwrap());
        assert_eq!(
            ledger.suppression(&e).unwrap(),
            Some(SuppressionReason::Complained)
        );
        drop(ledger);
        // Opening again migrates nothing.
        assert_eq!(
            Ledger::open(&path).unwrap().suppressions().unwrap().len(),
            3
        );
    }

    #[test]
    fn issue_ids_are_checked() {
        assert!(IssueId::parse("2026-03-09-rust-edge").is_ok());
        assert!(IssueId::parse("").is_err());
        assert!(IssueId::parse("a b").is_err());
        assert!(IssueId::parse("a/../b").is_err());
    }
}
