//! The server's one door to the ledger: a thread that owns the SQLite
//! connection and applies the requests handlers send it. Requests that
//! arrive together are written in one transaction (one fsync), and every
//! handler gets its answer only after that transaction committed, so a
//! 200 always means the change is on disk. `send` may write to the same
//! ledger at the same time: WAL mode and the ledger's busy timeout make
//! each wait for the other's short transactions.

use std::sync::mpsc;
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use crate::address::EmailAddress;
use crate::bounce::Report;
use crate::config::bounces::BounceConfig;
use crate::delivery::bounces::{self, Applied};
use crate::delivery::ledger::{Confirmation, Ledger, LedgerError, SignupRequest};

/// Changes (and one check) the server asks of the ledger.
#[derive(Debug)]
pub enum Op {
    Unsubscribe {
        address: EmailAddress,
        how: &'static str,
    },
    Signup {
        address: EmailAddress,
        name: Option<String>,
        client: String,
    },
    Confirm {
        address: EmailAddress,
        issued_at: DateTime<Utc>,
        client: String,
    },
    /// Bounce and complaint reports from a provider's webhook, applied
    /// together; `source` is `ses` or `postmark`.
    Bounces {
        reports: Vec<Report>,
        source: &'static str,
    },
    /// Whether the ledger still answers.
    Health,
}

/// What an [`Op`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Whether the address was newly suppressed.
    Unsubscribed(bool),
    Signup(SignupRequest),
    Confirm(Confirmation),
    /// What each report did, in order.
    Bounces(Vec<Applied>),
    Healthy,
}

/// What applying bounce reports needs besides the ledger.
#[derive(Debug, Clone, Default)]
pub struct BounceRules {
    /// `[bounces]`: the soft-bounce limit and window.
    pub settings: BounceConfig,
    /// `PRESSROOM_SECRET`, which signs VERP tags.
    pub secret: Vec<u8>,
}

type Reply = oneshot::Sender<Result<Done, String>>;

/// Most requests written in one transaction.
const GROUP: usize = 256;

/// A handle the handlers share; dropping every clone ends the thread once
/// it has answered everything sent before.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::Sender<(Op, Reply)>,
}

impl Store {
    /// Starts the thread that owns `ledger`.
    pub fn start(ledger: Ledger, rules: BounceRules) -> (Store, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<(Op, Reply)>();
        let handle = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || writer(ledger, rules, rx))
            .unwrap_or_else(|e| panic!("cannot start the ledger thread: {e}"));
        (Store { tx }, handle)
    }

    /// Applies `op` and waits until it is committed.
    pub async fn apply(&self, op: Op) -> Result<Done, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((op, reply))
            .map_err(|_| "the ledger thread has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the ledger thread has stopped".to_owned())?
    }
}

fn writer(mut ledger: Ledger, rules: BounceRules, rx: mpsc::Receiver<(Op, Reply)>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let results = write_group(&mut ledger, &rules, &group);
        for ((_, reply), result) in group.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// Applies the group in one transaction; on any failure nothing of it
/// stays and every request gets the error.
fn write_group(
    ledger: &mut Ledger,
    rules: &BounceRules,
    group: &[(Op, Reply)],
) -> Vec<Result<Done, String>> {
    let fail = |e: &LedgerError| {
        let message = format!("{:#}", anyhow::Error::from(clone_error(e)));
        tracing::error!("{message}");
        vec![Err(message); group.len()]
    };
    if let Err(e) = ledger.begin_group() {
        return fail(&e);
    }
    let now = Utc::now();
    let mut out = Vec::with_capacity(group.len());
    for (op, _) in group {
        let done = match op {
            Op::Unsubscribe { address, how } => ledger
                .unsubscribe(address, how, now)
                .map(Done::Unsubscribed),
            Op::Signup {
                address,
                name,
                client,
            } => ledger
                .request_signup(address, name.as_deref(), Some(client), now)
                .map(Done::Signup),
            Op::Confirm {
                address,
                issued_at,
                client,
            } => ledger
                .confirm_signup(address, *issued_at, Some(client), now)
                .map(Done::Confirm),
            Op::Bounces { reports, source } => reports
                .iter()
                .map(|report| {
                    // Webhook reports carry the provider's id; without
                    // one, the report's own fields make the key.
                    let key = bounces::report_key(report, format!("{report:?}").as_bytes());
                    bounces::apply(
                        ledger,
                        report,
                        &key,
                        source,
                        &rules.settings,
                        Some(&rules.secret),
                        now,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Done::Bounces),
            Op::Health => ledger.schema_version().map(|_| Done::Healthy),
        };
        match done {
            Ok(done) => out.push(Ok(done)),
            Err(e) => {
                ledger.rollback_group();
                return fail(&e);
            }
        }
    }
    if let Err(e) = ledger.commit_group() {
        ledger.rollback_group();
        return fail(&e);
    }
    out
}

/// The message of a ledger error, kept with its cause (ledger errors hold
/// a SQLite error that cannot be cloned).
fn clone_error(e: &LedgerError) -> std::io::Error {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    std::io::Error::other(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn requests_are_committed_before_they_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let (store, thread) = Store::start(Ledger::open(&path).unwrap(), BounceRules::default());
        let a = EmailAddress::parse("a@example.com").unwrap();
        let answers = futures_join(vec![
            store.apply(Op::Unsubscribe {
                address: a.clone(),
                how: "one-click",
            }),
            store.apply(Op::Unsubscribe {
                address: a.clone(),
                how: "page",
            }),
            store.apply(Op::Health),
        ])
        .await;
        assert_eq!(
            answers,
            [
                Ok(Done::Unsubscribed(true)),
                Ok(Done::Unsubscribed(false)),
                Ok(Done::Healthy)
            ]
        );
        // Another connection sees it at once.
        let other = Ledger::open(&path).unwrap();
        assert!(other.suppression(&a).unwrap().is_some());
        drop(store);
        thread.join().unwrap();
    }

    async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
        let mut out = Vec::new();
        for f in futures {
            out.push(f.await);
        }
        out
    }
}
