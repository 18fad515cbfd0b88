//! Delivery: getting already-rendered messages to every recipient of an
//! issue exactly once as far as the ledger can tell, and at least once
//! whatever happens.
//!
//! The pieces: [`subscribers`] reads the list, [`ledger`] remembers every
//! delivery, [`lock`] keeps runs from overlapping, [`smtp`] talks to the
//! server and classifies its answers, [`dkim`] signs. This module is the
//! worker that ties them together: [`Run::deliver`] takes an issue id, a
//! function that renders the [`lettre::Message`] for one recipient, and a
//! way to open [`Transport`]s, and goes through every due delivery.
//!
//! Guarantee: a delivery is marked sent in its own committed transaction
//! as soon as its result reaches the coordinator, and a connection sends
//! the body of its next message (what makes the server accept it) only
//! after that commit, so a crash (or `kill -9`) can repeat only messages
//! the server accepted in the last moments, at most one per connection
//! (`concurrency`), never lose one. The next message's envelope (MAIL,
//! RCPT, DATA) goes out while the commit runs: with PIPELINING in the
//! same write as the previous body (so one round trip per message), else
//! right after its reply. No server delivers an envelope without its
//! body; when the commit fails or the run stops, that body is never sent
//! and the connection is closed before it. Everything else —
//! 4xx, timeouts, dropped connections — is retried by later runs with
//! exponential backoff until `max_attempts`.
//!
//! Threads: `concurrency` worker threads each own one transport (one SMTP
//! connection, reused); the calling thread renders, signs and paces
//! (messages per second, hourly and daily caps counted from the ledger);
//! a recorder thread writes results to the ledger as they come, those
//! that arrive together in one group commit (one fsync). The ledger's one
//! connection sits behind a mutex, so SQLite sees a single writer. The
//! next message is rendered while the workers send and handed over while
//! the previous result is still being recorded: each worker holds at most
//! three messages, one waiting for its record, one whose body is on the
//! wire, and one whose envelope went behind that body.

pub mod bounces;
pub mod dkim;
pub mod frozen;
pub mod ledger;
pub mod lock;
pub mod mailbox;
pub mod roster;
pub mod smtp;
pub mod subscribers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lettre::Message;

use self::dkim::DkimSigner;
pub use self::ledger::Delivery;
use self::ledger::{Counts, IssueId, Ledger, LedgerError, SuppressionReason};
pub use self::smtp::Outcome;
use crate::config::send::SendConfig;
use crate::error_kind::{Boxed, ErrorKind, HasKind};

/// Sends one message and says what became of it. Implemented by
/// [`smtp::SmtpSender`]; the unit tests below use a scripted mock, because
/// they need thousands of precise outcomes per second. Integration tests
/// use real servers.
pub trait Transport: Send {
    /// Sends `message`, whose bytes are `formatted` (made by the caller
    /// while the connection was busy with the previous message).
    ///
    /// `ready` is called once the server has taken the envelope, right
    /// before the body (the step after which the server may accept): it
    /// waits until this connection's previous message is recorded in the
    /// ledger, and says false when the run is gone, in which case the body
    /// must not be sent.
    ///
    /// Right after `ready`, a transport that can pipeline may call `next`;
    /// when it gives the next message's envelope, the transport sends that
    /// envelope behind this body, so its replies come back with this
    /// body's, and keeps them for the next call, which must be for that
    /// message (a call for another message abandons the envelope). That
    /// next body still waits for its own `ready`.
    fn send_when(
        &mut self,
        message: &Message,
        formatted: Vec<u8>,
        ready: &mut dyn FnMut() -> bool,
        next: &mut dyn FnMut() -> Option<Ahead>,
    ) -> Outcome;

    /// Sends `message` now, on its own.
    fn send(&mut self, message: &Message) -> Outcome {
        self.send_when(message, message.formatted(), &mut || true, &mut || None)
    }
}

/// What a transport needs to send a message's envelope ahead of its
/// turn (see [`Transport::send_when`]).
#[derive(Debug, Clone)]
pub struct Ahead {
    pub envelope: lettre::address::Envelope,
    /// Whether the body has bytes above 127 (`BODY=8BITMIME`).
    pub eight_bit: bool,
}

/// When to retry a deferred delivery, and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// A delivery deferred this many times is marked failed.
    pub max_attempts: u32,
    /// The wait after the first failed attempt.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_secs(300),
            max: Duration::from_secs(6 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt (1-based):
    /// `base · 2^(attempts−1)`, at most `max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Pace limits. The hourly and daily caps count the ledger's sends, so
/// they hold across runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateLimits {
    pub per_second: Option<f64>,
    pub per_hour: Option<u64>,
    pub per_day: Option<u64>,
}

/// How one run delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Connections (and worker threads) used at once; at least 1.
    pub concurrency: usize,
    /// Messages to hand to the server in this run at most (`--limit`).
    pub limit: Option<u64>,
    pub retry: RetryPolicy,
    pub rates: RateLimits,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 2,
            limit: None,
            retry: RetryPolicy::default(),
            rates: RateLimits::default(),
        }
    }
}

impl RunOptions {
    /// Options from `[send]`, with `--limit`.
    pub fn from_config(config: &SendConfig, limit: Option<u64>) -> RunOptions {
        RunOptions {
            concurrency: config.concurrency.max(1),
            limit,
            retry: RetryPolicy::from_config(config),
            rates: RateLimits::from_config(config),
        }
    }
}

impl RetryPolicy {
    /// The retry policy `[send]` describes.
    pub fn from_config(config: &SendConfig) -> RetryPolicy {
        RetryPolicy {
            max_attempts: config.max_attempts.max(1),
            base: Duration::from_secs(config.retry_base_seconds.max(1)),
            max: Duration::from_secs(config.retry_max_seconds.max(1)),
        }
    }
}

impl RateLimits {
    /// The rate limits `[send]` describes.
    pub fn from_config(config: &SendConfig) -> RateLimits {
        RateLimits {
            per_second: if config.per_second > 0.0 && config.per_second.is_finite() {
                Some(config.per_second)
            } else {
                None
            },
            per_hour: config.per_hour,
            per_day: config.per_day,
        }
    }
}

/// Where "now" comes from (tests pass a closure).
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl<F: Fn() -> DateTime<Utc>> Clock for F {
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// Why rendering one recipient's message did not give a message.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Do not send to this recipient (e.g. no longer in the subscriber
    /// list); the delivery is marked failed with this reason, without
    /// suppressing the address.
    #[error("{0}")]
    Skip(String),
    /// Rendering is broken: the run stops, no recipient is failed.
    #[error(transparent)]
    Failed(Boxed),
}

impl HasKind for RenderError {
    fn kind(&self) -> ErrorKind {
        match self {
            RenderError::Skip(_) => ErrorKind::Run,
            RenderError::Failed(e) => e.kind(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("rendering the message for {recipient}")]
    Render {
        recipient: String,
        #[source]
        source: Boxed,
    },
    #[error("the message rendered for {recipient} is addressed to {found}; refusing to send it")]
    WrongRecipient { recipient: String, found: String },
}

/// The ledger's errors are the run's: its file, its database, what it
/// holds. (Here rather than in `ledger`, beside the other delivery errors.)
impl HasKind for LedgerError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Run
    }
}

/// An issue id comes from the command line or the ledger's own records.
impl HasKind for ledger::IssueIdError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

impl HasKind for DeliveryError {
    fn kind(&self) -> ErrorKind {
        match self {
            DeliveryError::Ledger(e) => e.kind(),
            DeliveryError::Render { source, .. } => source.kind(),
            DeliveryError::WrongRecipient { .. } => ErrorKind::Run,
        }
    }
}

/// Why a run stopped before every due delivery was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `--limit` was reached.
    Limit,
    /// `per_hour` messages were sent in the last hour.
    HourlyCap,
    /// `per_day` messages were sent in the last day.
    DailyCap,
    /// The server could not be used (refused, TLS, AUTH…): stop everything.
    Fatal(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Limit => f.write_str("stopped at --limit"),
            Stop::HourlyCap => f.write_str("stopped at the hourly cap (per_hour)"),
            Stop::DailyCap => f.write_str("stopped at the daily cap (per_day)"),
            Stop::Fatal(reason) => write!(f, "SMTP trouble, run stopped: {reason}"),
        }
    }
}

/// What one [`Run::deliver`] did to one issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueSummary {
    pub issue: IssueId,
    /// Accepted by the server in this run.
    pub sent: u64,
    /// Deferred in this run (will be retried).
    pub deferred: u64,
    /// Failed in this run (rejected, skipped, or out of attempts).
    pub failed: u64,
    /// The issue's totals in the ledger after the run.
    pub counts: Counts,
    /// Whether the issue is finished (nothing pending or deferred).
    pub finished: bool,
    pub stopped: Option<Stop>,
}

impl IssueSummary {
    /// Deliveries still to make in later runs.
    pub fn remaining(&self) -> u64 {
        self.counts.unfinished()
    }
}

/// The exit code for a run: 0 when every issue is finished (or there was
/// nothing to do), 2 when anything is deferred, unfinished, or the run was
/// stopped by SMTP trouble.
pub fn exit_code<'a>(summaries: impl IntoIterator<Item = &'a IssueSummary>) -> u8 {
    let trouble = summaries
        .into_iter()
        .any(|s| !s.finished || matches!(s.stopped, Some(Stop::Fatal(_))));
    if trouble {
        2
    } else {
        0
    }
}

/// A token bucket: `rate` tokens a second, bursts of up to `rate` (at
/// least one).
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64) -> TokenBucket {
        let capacity = rate.max(1.0);
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    /// Takes a token when one is available now (None); else says how
    /// long until one is.
    fn wait(&mut self) -> Option<Duration> {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// One `send` run: carries the pace and the `--limit` budget across the
/// issues it delivers.
pub struct Run<'a> {
    ledger: &'a mut Ledger,
    options: RunOptions,
    clock: &'a (dyn Clock + Sync),
    dkim: Option<&'a DkimSigner>,
    bucket: Option<TokenBucket>,
    handed_over: u64,
    observer: Option<Observer<'a>>,
}

/// Called with every result (see [`Run::observe`]).
type Observer<'a> = Box<dyn FnMut(&Delivery, &Outcome) + 'a>;

struct Job {
    delivery: Delivery,
    message: Message,
    /// `message.formatted()`, made on the coordinator's thread.
    formatted: Vec<u8>,
}

/// A worker's result, with the signal the recorder gives once it is
/// committed (the worker's next body waits for it).
type Done = (Delivery, Outcome, mpsc::SyncSender<()>);

/// Counters while delivering one issue, and who is shown each result.
struct Tally<'o, 'a> {
    sent: u64,
    deferred: u64,
    failed: u64,
    in_flight: usize,
    fatal: Option<String>,
    observer: Option<&'o mut Observer<'a>>,
}

impl Tally<'_, '_> {
    /// Counts one recorded result and shows it to the observer.
    fn count(&mut self, recorded: Recorded) -> Result<(), DeliveryError> {
        let (delivery, outcome, counted) = recorded?;
        self.in_flight = self.in_flight.saturating_sub(1);
        match counted {
            Counted::Sent => self.sent += 1,
            Counted::Deferred => self.deferred += 1,
            Counted::Failed => self.failed += 1,
            Counted::Untouched => {
                if let Outcome::Fatal { reason } = &outcome {
                    self.fatal.get_or_insert_with(|| reason.clone());
                }
            }
        }
        if let Some(observer) = self.observer.as_mut() {
            observer(&delivery, &outcome);
        }
        Ok(())
    }
}

impl<'a> Run<'a> {
    pub fn new(
        ledger: &'a mut Ledger,
        options: RunOptions,
        clock: &'a (dyn Clock + Sync),
        dkim: Option<&'a DkimSigner>,
    ) -> Run<'a> {
        let bucket = options
            .rates
            .per_second
            .filter(|r| *r > 0.0 && r.is_finite())
            .map(TokenBucket::new);
        Run {
            ledger,
            options,
            clock,
            dkim,
            bucket,
            handed_over: 0,
            observer: None,
        }
    }

    /// Called with every result, on the calling thread (progress bars,
    /// per-recipient log lines).
    pub fn observe(&mut self, observer: impl FnMut(&Delivery, &Outcome) + 'a) {
        self.observer = Some(Box::new(observer));
    }

    /// Messages handed to the server so far in this run.
    pub fn handed_over(&self) -> u64 {
        self.handed_over
    }

    /// Delivers every due delivery of `issue`: `render` builds the message
    /// for one recipient (its `To` must be that recipient), `connect` opens
    /// one transport per worker. Returns what happened; a [`Stop::Fatal`]
    /// in the summary means the server could not be used and the caller
    /// should not start another issue.
    pub fn deliver<R, C, T>(
        &mut self,
        issue: &IssueId,
        mut render: R,
        mut connect: C,
    ) -> Result<IssueSummary, DeliveryError>
    where
        R: FnMut(&Delivery) -> Result<Message, RenderError>,
        C: FnMut() -> T,
        T: Transport,
    {
        let now = self.clock.now();
        self.ledger.fail_suppressed(issue, now)?;
        let mut hour_left = match self.options.rates.per_hour {
            Some(cap) => {
                Some(cap.saturating_sub(self.ledger.sent_since(now - chrono::Duration::hours(1))?))
            }
            None => None,
        };
        let mut day_left = match self.options.rates.per_day {
            Some(cap) => {
                Some(cap.saturating_sub(self.ledger.sent_since(now - chrono::Duration::days(1))?))
            }
            None => None,
        };
        let workers = self.options.concurrency.max(1);
        let mut tally = Tally {
            sent: 0,
            deferred: 0,
            failed: 0,
            in_flight: 0,
            fatal: None,
            observer: self.observer.as_mut(),
        };
        let mut stopped = None;
        // Set by a worker whose transport reports Fatal: the messages
        // already handed over are then not tried (the run stops).
        let fatal_seen = AtomicBool::new(false);
        // Set by the recorder when the ledger cannot record: from then on
        // no connection sends a body (it could not be put on record).
        let unrecordable = AtomicBool::new(false);
        let (retry, clock, limit) = (self.options.retry, self.clock, self.options.limit);
        // The ledger, shared by this thread (pages, skips) and the
        // recorder thread (results).
        let ledger = Mutex::new(&mut *self.ledger);
        let lock = || ledger.lock().unwrap_or_else(PoisonError::into_inner);
        let handed_over = &mut self.handed_over;
        let result: Result<(), DeliveryError> = std::thread::scope(|scope| {
            // The workers alone own the receiving end: once the last of
            // them is gone (the ledger failed, a transport panicked), a
            // handover fails at once instead of waiting for room in the
            // queue that no one will make.
            let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers);
            let job_rx = Arc::new(Mutex::new(job_rx));
            let (result_tx, result_rx) = mpsc::channel::<Done>();
            for _ in 0..workers {
                let (transport, result_tx) = (connect(), result_tx.clone());
                let job_rx = Arc::clone(&job_rx);
                let (fatal_seen, unrecordable) = (&fatal_seen, &unrecordable);
                scope.spawn(move || work(transport, &job_rx, result_tx, fatal_seen, unrecordable));
            }
            drop((job_rx, result_tx));
            let (recorded_tx, recorded_rx) = mpsc::channel::<Recorded>();
            let (ledger, unrecordable) = (&ledger, &unrecordable);
            scope.spawn(move || {
                record(
                    result_rx,
                    recorded_tx,
                    ledger,
                    unrecordable,
                    issue,
                    retry,
                    clock,
                )
            });

            let mut after: Option<String> = None;
            'pages: loop {
                let page = lock().due(issue, clock.now(), after.as_deref(), ledger::PAGE)?;
                let Some(last) = page.last() else { break };
                after = Some(last.recipient.clone());
                for delivery in page {
                    // Count whatever was recorded meanwhile.
                    for recorded in recorded_rx.try_iter() {
                        tally.count(recorded)?;
                    }
                    stopped = match &tally.fatal {
                        Some(reason) => Some(Stop::Fatal(reason.clone())),
                        None if limit.is_some_and(|l| *handed_over >= l) => Some(Stop::Limit),
                        None if hour_left == Some(0) => Some(Stop::HourlyCap),
                        None if day_left == Some(0) => Some(Stop::DailyCap),
                        None => None,
                    };
                    if stopped.is_some() {
                        break 'pages;
                    }
                    let message = match render(&delivery) {
                        Ok(message) => message,
                        Err(RenderError::Skip(why)) => {
                            let why = format!("not sent: {why}");
                            lock().mark_failed(
                                issue,
                                &delivery.recipient,
                                &why,
                                None,
                                clock.now(),
                            )?;
                            tally.failed += 1;
                            continue;
                        }
                        Err(RenderError::Failed(source)) => {
                            return Err(DeliveryError::Render {
                                recipient: delivery.address.to_string(),
                                source,
                            });
                        }
                    };
                    let job = Job::new(delivery, message, self.dkim)?;
                    // The message is ready while the workers are busy; now
                    // keep at most three messages per worker in flight: one
                    // being recorded, one being sent (whose body waits for
                    // that record, so a crash repeats at most one message
                    // per connection), and one waiting to have its envelope
                    // sent behind that body.
                    while tally.in_flight >= 3 * workers {
                        match recorded_rx.recv() {
                            Ok(recorded) => tally.count(recorded)?,
                            Err(_) => break,
                        }
                    }
                    if let Some(reason) = &tally.fatal {
                        stopped = Some(Stop::Fatal(reason.clone()));
                        break 'pages;
                    }
                    // Pace: wait for a token, recording results meanwhile.
                    while let Some(wait) = self.bucket.as_mut().and_then(TokenBucket::wait) {
                        match recorded_rx.recv_timeout(wait) {
                            Ok(recorded) => tally.count(recorded)?,
                            Err(mpsc::RecvTimeoutError::Timeout) => {}
                            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
                        }
                    }
                    // Suppressions again, right before the handover: an
                    // unsubscribe that arrived since this page was read
                    // stops this reader's message.
                    let suppressed = lock().suppression(&job.delivery.address)?;
                    if let Some(reason) = suppressed {
                        lock().mark_failed(
                            issue,
                            &job.delivery.recipient,
                            &format!("not sent: address suppressed ({})", reason.as_str()),
                            None,
                            clock.now(),
                        )?;
                        tally.failed += 1;
                        continue;
                    }
                    // Fails only when every worker is gone; the reason is
                    // then on its way from the recorder (counted below).
                    if job_tx.send(job).is_err() {
                        break 'pages;
                    }
                    tally.in_flight += 1;
                    *handed_over += 1;
                    hour_left = hour_left.map(|n| n - 1);
                    day_left = day_left.map(|n| n - 1);
                }
            }
            drop(job_tx);
            while tally.in_flight > 0 {
                match recorded_rx.recv() {
                    Ok(recorded) => tally.count(recorded)?,
                    Err(_) => break,
                }
            }
            Ok(())
        });
        result?;
        if stopped.is_none() {
            if let Some(reason) = tally.fatal.take() {
                stopped = Some(Stop::Fatal(reason));
            }
        }
        if let Some(Stop::Fatal(reason)) = &stopped {
            tracing::warn!(issue = %issue, "{reason}");
        }
        let now = self.clock.now();
        let finished = self.ledger.finish_if_done(issue, now)?;
        let counts = self.ledger.counts(issue)?;
        Ok(IssueSummary {
            issue: issue.clone(),
            sent: tally.sent,
            deferred: tally.deferred,
            failed: tally.failed,
            counts,
            finished,
            stopped,
        })
    }
}

impl Job {
    /// The job of sending `message` to `delivery`'s recipient, signed,
    /// with its bytes made here rather than on the connection's thread,
    /// where they would delay the body. A message addressed to anyone
    /// else is refused.
    fn new(
        delivery: Delivery,
        mut message: Message,
        dkim: Option<&DkimSigner>,
    ) -> Result<Job, DeliveryError> {
        let to = message.envelope().to();
        if to.len() != 1
            || !AsRef::<str>::as_ref(&to[0]).eq_ignore_ascii_case(delivery.address.as_str())
        {
            return Err(DeliveryError::WrongRecipient {
                recipient: delivery.address.to_string(),
                found: to
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if let Some(signer) = dkim {
            signer.sign(&mut message);
        }
        let formatted = message.formatted();
        Ok(Job {
            delivery,
            message,
            formatted,
        })
    }
}

/// One connection's thread: takes jobs, sends each body only once the
/// connection's previous result is committed (and never once the ledger
/// has failed), and reports every result. A job taken while the run
/// stops is reported untried. Returns when the jobs end or no one takes
/// results any more.
fn work<T: Transport>(
    mut transport: T,
    jobs: &Mutex<mpsc::Receiver<Job>>,
    results: mpsc::Sender<Done>,
    fatal_seen: &AtomicBool,
    unrecordable: &AtomicBool,
) {
    let untried = |job: Job| {
        let outcome = Outcome::Fatal {
            reason: "not tried: the run is stopping".to_owned(),
        };
        results.send((job.delivery, outcome, mpsc::sync_channel(1).0))
    };
    // Signalled when this worker's last result is committed (results are
    // recorded in order, so all earlier ones are).
    let mut recorded: Option<mpsc::Receiver<()>> = None;
    // The job whose envelope the transport sent ahead (it took it through
    // `next`): this worker's next job.
    let mut ahead: Option<Job> = None;
    loop {
        let job = match ahead.take() {
            Some(job) => job,
            None => match jobs.lock().map(|jobs| jobs.recv()) {
                Ok(Ok(job)) => job,
                _ => return,
            },
        };
        if fatal_seen.load(Ordering::SeqCst) {
            if untried(job).is_err() {
                return;
            }
            continue;
        }
        // The previous result's commit, and a ledger that can still take
        // this one: a connection's first body must not go out after the
        // ledger failed either.
        let mut ready = || {
            recorded.take().is_none_or(|rx| rx.recv().is_ok())
                && !unrecordable.load(Ordering::SeqCst)
        };
        // The next job, if one is already waiting, for its envelope to go
        // behind this body. Never waits: a worker blocked in `recv` holds
        // the lock, and then there is no job to take anyway.
        let mut next = || {
            if fatal_seen.load(Ordering::SeqCst) || unrecordable.load(Ordering::SeqCst) {
                return None;
            }
            let job = jobs.try_lock().ok()?.try_recv().ok()?;
            let preview = Ahead {
                envelope: job.message.envelope().clone(),
                eight_bit: !job.formatted.is_ascii(),
            };
            ahead = Some(job);
            Some(preview)
        };
        // A panicking transport must not leave the coordinator waiting
        // for a result: report it as fatal and retire.
        let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            transport.send_when(&job.message, job.formatted, &mut ready, &mut next)
        }));
        let panicked = sent.is_err();
        let outcome = sent.unwrap_or_else(|_| Outcome::Fatal {
            reason: "internal error: the SMTP client panicked".to_owned(),
        });
        if matches!(outcome, Outcome::Fatal { .. }) {
            fatal_seen.store(true, Ordering::SeqCst);
        }
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        recorded = Some(done_rx);
        if results.send((job.delivery, outcome, done_tx)).is_err() {
            return;
        }
        if panicked {
            if let Some(job) = ahead.take() {
                let _ = untried(job);
            }
            return;
        }
    }
}

/// The recorder's thread: writes results to the ledger as they come,
/// those that arrive together in one group commit (one fsync), then opens
/// their workers' gates and passes them on to the coordinator. When the
/// ledger fails it says so to the workers (no more bodies) and to the
/// coordinator, and returns: every gate still shut is dropped, so no
/// worker waits for it.
fn record(
    results: mpsc::Receiver<Done>,
    recorded: mpsc::Sender<Recorded>,
    ledger: &Mutex<&mut Ledger>,
    unrecordable: &AtomicBool,
    issue: &IssueId,
    retry: RetryPolicy,
    clock: &(dyn Clock + Sync),
) {
    while let Ok(first) = results.recv() {
        let mut group = vec![first];
        group.extend(results.try_iter());
        let written = {
            let mut ledger = ledger.lock().unwrap_or_else(PoisonError::into_inner);
            write_group(&mut ledger, issue, retry, clock.now(), &group)
        };
        let counted = match written {
            Ok(counted) => counted,
            Err(e) => {
                unrecordable.store(true, Ordering::SeqCst);
                let _ = recorded.send(Err(e));
                return;
            }
        };
        for ((delivery, outcome, gate), counted) in group.into_iter().zip(counted) {
            // Committed: the worker may send its next body.
            let _ = gate.send(());
            if recorded.send(Ok((delivery, outcome, counted))).is_err() {
                return;
            }
        }
    }
}

/// What a result did to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    Sent,
    Deferred,
    Failed,
    /// Fatal: the recipient stays as due as before.
    Untouched,
}

/// A result as the recorder reports it to the coordinator.
type Recorded = Result<(Delivery, Outcome, Counted), DeliveryError>;

/// Writes `group` to the ledger: one result in its own transaction,
/// several in one group commit (one fsync). Each connection has at most
/// one accepted message in a group (its next body waits for the commit).
fn write_group(
    ledger: &mut Ledger,
    issue: &IssueId,
    retry: RetryPolicy,
    now: DateTime<Utc>,
    group: &[Done],
) -> Result<Vec<Counted>, DeliveryError> {
    if group.len() > 1 {
        ledger.begin_group()?;
    }
    let mut counted = Vec::with_capacity(group.len());
    for (delivery, outcome, _) in group {
        match write(ledger, issue, retry, now, delivery, outcome) {
            Ok(c) => counted.push(c),
            Err(e) => {
                ledger.rollback_group();
                return Err(e);
            }
        }
    }
    if group.len() > 1 {
        ledger.commit_group()?;
    }
    Ok(counted)
}

/// Writes one result to the ledger; with `-v`, says what was recorded
/// for a sent or deferred message (a refusal is a warning the command
/// prints as it happens).
fn write(
    ledger: &mut Ledger,
    issue: &IssueId,
    retry: RetryPolicy,
    now: DateTime<Utc>,
    delivery: &Delivery,
    outcome: &Outcome,
) -> Result<Counted, DeliveryError> {
    let recipient = delivery.recipient.as_str();
    Ok(match outcome {
        Outcome::Accepted { reply } => {
            ledger.mark_sent(issue, recipient, reply, now)?;
            tracing::debug!("{}: sent: {reply}", delivery.address);
            Counted::Sent
        }
        Outcome::Deferred { reply } => {
            let attempts = delivery.attempts + 1;
            if attempts >= retry.max_attempts {
                let reply = format!("gave up after {attempts} attempts; last: {reply}");
                ledger.mark_failed(issue, recipient, &reply, None, now)?;
                tracing::debug!("{}: failed: {reply}", delivery.address);
                Counted::Failed
            } else {
                let wait = retry.backoff(attempts);
                let next =
                    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(6));
                ledger.mark_deferred(issue, recipient, reply, next, now)?;
                tracing::debug!("{}: deferred until {next}: {reply}", delivery.address);
                Counted::Deferred
            }
        }
        Outcome::Rejected { reply, suppress } => {
            let reason = suppress.then_some(SuppressionReason::HardBounce);
            ledger.mark_failed(issue, recipient, reply, reason, now)?;
            Counted::Failed
        }
        // The recipient is untouched: it is as due as before.
        Outcome::Fatal { .. } => Counted::Untouched,
    })
}

#[cfg(test)]
mod tests {
    use super::ledger::{DeliveryState, IssueKind, NewIssue};
    use super::*;
    use crate::address::EmailAddress;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    /// A scripted transport (mock): answers by recipient local part, and
    /// records what it was given. The real-server behaviour is covered by
    /// the integration tests in tests/cli/delivery.rs.
    #[derive(Clone, Default)]
    struct Script {
        answers: Arc<HashMap<String, Outcome>>,
        got: Arc<Mutex<Vec<String>>>,
    }

    impl Transport for Script {
        fn send_when(
            &mut self,
            message: &Message,
            _: Vec<u8>,
            ready: &mut dyn FnMut() -> bool,
            _: &mut dyn FnMut() -> Option<Ahead>,
        ) -> Outcome {
            if !ready() {
                return Outcome::Deferred {
                    reply: "run gone".into(),
                };
            }
            let to = message.envelope().to()[0].to_string();
            self.got.lock().unwrap().push(to.clone());
            let local = to.split('@').next().unwrap_or("").to_owned();
            self.answers
                .get(&local)
                .cloned()
                .unwrap_or(Outcome::Accepted {
                    reply: "250 ok".into(),
                })
        }
    }

    fn setup(n: usize) -> (Ledger, IssueId) {
        with_issue(Ledger::open_in_memory().unwrap(), n)
    }

    /// `ledger` with one issue `issue-1` for `n` recipients.
    /// Makes every attempt to record `recipient`'s delivery in the ledger
    /// at `path` fail, as a full disk would.
    fn fail_recording_of(path: &std::path::Path, recipient: &str) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(&format!(
                "CREATE TRIGGER full_disk BEFORE UPDATE ON deliveries
                 WHEN NEW.recipient = '{recipient}'
                 BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;"
            ))
            .unwrap();
    }

    fn with_issue(mut ledger: Ledger, n: usize) -> (Ledger, IssueId) {
        let id = IssueId::parse("issue-1").unwrap();
        let recipients: Vec<Result<EmailAddress, std::convert::Infallible>> = (0..n)
            .map(|i| Ok(EmailAddress::parse(&format!("r{i:04}@example.com")).unwrap()))
            .collect();
        ledger
            .create_issue(
                &NewIssue {
                    id: &id,
                    kind: IssueKind::Article,
                    article_ids: &["a".to_owned()],
                    subject: "s",
                    content: b"",
                },
                recipients,
                Utc::now(),
            )
            .unwrap();
        (ledger, id)
    }

    fn render(d: &Delivery) -> Result<Message, RenderError> {
        Message::builder()
            .from("news@example.com".parse().unwrap())
            .to(d.address.as_str().parse().unwrap())
            .subject("s")
            .body("b".to_owned())
            .map_err(|e| RenderError::Failed(Boxed::new(crate::email::MessageError::Build(e))))
    }

    fn deliver(
        ledger: &mut Ledger,
        id: &IssueId,
        options: RunOptions,
        clock: &(dyn Clock + Sync),
        script: &Script,
    ) -> IssueSummary {
        let mut run = Run::new(ledger, options, clock, None);
        run.deliver(id, render, || script.clone()).unwrap()
    }

    fn options() -> RunOptions {
        RunOptions {
            concurrency: 3,
            ..RunOptions::default()
        }
    }

    #[test]
    fn every_outcome_lands_in_the_ledger() {
        let (mut ledger, id) = setup(20);
        let answers: HashMap<String, Outcome> = [
            (
                "r0001",
                Outcome::Deferred {
                    reply: "451 later".into(),
                },
            ),
            (
                "r0002",
                Outcome::Rejected {
                    reply: "550 5.1.1 unknown".into(),
                    suppress: true,
                },
            ),
            (
                "r0003",
                Outcome::Rejected {
                    reply: "554 5.7.1 spam".into(),
                    suppress: false,
                },
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let script = Script {
            answers: Arc::new(answers),
            ..Script::default()
        };
        let clock = SystemClock;
        let s = deliver(&mut ledger, &id, options(), &clock, &script);
        assert_eq!((s.sent, s.deferred, s.failed), (17, 1, 2));
        assert!(!s.finished);
        assert_eq!(exit_code([&s]), 2);
        assert_eq!(script.got.lock().unwrap().len(), 20);

        // Nothing is due on an immediate second run: deferred waits.
        let again = deliver(&mut ledger, &id, options(), &clock, &script);
        assert_eq!((again.sent, again.deferred, again.failed), (0, 0, 0));
        assert_eq!(script.got.lock().unwrap().len(), 20);

        let r2 = EmailAddress::parse("r0002@example.com").unwrap();
        let r3 = EmailAddress::parse("r0003@example.com").unwrap();
        assert_eq!(
            ledger.suppression(&r2).unwrap(),
            Some(SuppressionReason::HardBounce)
        );
        assert_eq!(ledger.suppression(&r3).unwrap(), None);

        // Once due and accepted, the issue finishes.
        ledger.retry_deferred_at(&id, Utc::now()).unwrap();
        let ok = Script::default();
        let last = deliver(&mut ledger, &id, options(), &clock, &ok);
        assert_eq!(last.sent, 1);
        assert!(last.finished);
        assert_eq!(exit_code([&last]), 0);
        assert_eq!(*ok.got.lock().unwrap(), ["r0001@example.com"]);
    }

    #[test]
    fn a_message_that_cannot_be_rendered_stops_the_run_naming_its_cause_once() {
        let (mut ledger, id) = setup(3);
        let script = Script::default();
        let broken = |_: &Delivery| -> Result<Message, RenderError> {
            Err(RenderError::Failed(Boxed::new(std::io::Error::other(
                "template exploded",
            ))))
        };
        let mut run = Run::new(&mut ledger, options(), &SystemClock, None);
        let err = run.deliver(&id, broken, || script.clone()).unwrap_err();
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert!(
            shown.starts_with("rendering the message for r000"),
            "{shown}"
        );
        assert_eq!(shown.matches("template exploded").count(), 1, "{shown}");
        drop(run);
        assert!(script.got.lock().unwrap().is_empty(), "nothing is sent");
    }

    /// Before each body, counts the deliveries committed as sent, reading
    /// the ledger's file through a connection of its own.
    #[derive(Clone)]
    struct Checking {
        ledger: std::path::PathBuf,
        bodies: Arc<std::sync::atomic::AtomicU64>,
        concurrency: u64,
    }

    impl Transport for Checking {
        fn send_when(
            &mut self,
            _: &Message,
            _: Vec<u8>,
            ready: &mut dyn FnMut() -> bool,
            _: &mut dyn FnMut() -> Option<Ahead>,
        ) -> Outcome {
            // Give the coordinator every chance to run ahead.
            std::thread::sleep(Duration::from_micros(300));
            assert!(ready(), "the run is still there");
            // This body's place among all bodies, taken before reading
            // the ledger (which only grows).
            let before = self.bodies.fetch_add(1, Ordering::SeqCst);
            let committed: i64 = rusqlite::Connection::open(&self.ledger)
                .unwrap()
                .query_row(
                    "SELECT COUNT(*) FROM deliveries WHERE state = 'sent'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let committed = committed as u64;
            // Every other connection may have one accepted message not yet
            // on record; this one has none.
            assert!(
                committed + (self.concurrency - 1) >= before,
                "c={}: body {before} with {committed} on record",
                self.concurrency
            );
            Outcome::Accepted {
                reply: "250 ok".into(),
            }
        }
    }

    /// The one-message window: a connection sends a body only after its
    /// previous message is committed, even though the next message is
    /// handed over (and its envelope sent) before that.
    #[test]
    fn a_body_waits_for_the_previous_record() {
        for concurrency in [1u64, 2, 3] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            let (mut ledger, id) = with_issue(Ledger::open(&path).unwrap(), 40);
            let transport = Checking {
                ledger: path.clone(),
                bodies: Arc::default(),
                concurrency,
            };
            let options = RunOptions {
                concurrency: concurrency as usize,
                ..RunOptions::default()
            };
            let mut run = Run::new(&mut ledger, options, &SystemClock, None);
            let summary = run.deliver(&id, render, || transport.clone()).unwrap();
            assert_eq!(summary.sent, 40, "c={concurrency}");
        }
    }

    /// Counts the bodies it is allowed to send.
    #[derive(Clone, Default)]
    struct Bodies(Arc<std::sync::atomic::AtomicU64>);

    impl Transport for Bodies {
        fn send_when(
            &mut self,
            _: &Message,
            _: Vec<u8>,
            ready: &mut dyn FnMut() -> bool,
            _: &mut dyn FnMut() -> Option<Ahead>,
        ) -> Outcome {
            if !ready() {
                return Outcome::Deferred {
                    reply: "not sent: the run stopped before the body".into(),
                };
            }
            self.0.fetch_add(1, Ordering::SeqCst);
            Outcome::Accepted {
                reply: "250 ok".into(),
            }
        }
    }

    /// When the ledger cannot record a result, the run fails and no
    /// connection sends another body.
    #[test]
    fn a_ledger_that_cannot_record_stops_every_body() {
        for concurrency in [1u64, 3] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            let (mut ledger, id) = with_issue(Ledger::open(&path).unwrap(), 30);
            fail_recording_of(&path, "r0005@example.com");
            let bodies = Bodies::default();
            let options = RunOptions {
                concurrency: concurrency as usize,
                ..RunOptions::default()
            };
            let mut run = Run::new(&mut ledger, options, &SystemClock, None);
            let err = run.deliver(&id, render, || bodies.clone()).unwrap_err();
            // The cause is the error's source, not part of its message:
            // `{:#}` shows the whole chain.
            let chain = format!("{:#}", anyhow::Error::from(err));
            assert!(chain.contains("disk is full"), "{chain}");
            drop(run);
            let sent = bodies.0.load(Ordering::SeqCst);
            let counts = ledger.counts(&id).unwrap();
            assert_eq!(counts.sent + counts.pending, 30, "c={concurrency}");
            // Accepted but not on record: r0005, and at most one more per
            // other connection (the body it had cleared before the
            // failure); nothing after.
            assert!(
                (1..=concurrency).contains(&(sent - counts.sent)),
                "c={concurrency}: {sent} bodies, {counts:?}"
            );
            if concurrency == 1 {
                assert_eq!((sent, counts.sent), (6, 5));
            }
        }
    }

    /// Which step a [`Staged`] run has reached.
    #[derive(Default)]
    struct Stages {
        /// Messages rendered so far.
        rendered: std::sync::atomic::AtomicU64,
        /// A connection was told not to send a body (the ledger failed).
        refused: AtomicBool,
        /// Bodies sent.
        bodies: std::sync::atomic::AtomicU64,
    }

    impl Stages {
        /// Waits until `done` holds; gives up after a while so that a run
        /// that went wrong fails its assertions instead of waiting here.
        fn wait(&self, done: impl Fn(&Stages) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !done(self) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// A transport (mock) that holds each connection at a chosen step, to
    /// force one interleaving of coordinator, workers and recorder; a real
    /// server cannot be made to wait on the coordinator's progress.
    #[derive(Clone)]
    struct Staged(Arc<Stages>);

    impl Transport for Staged {
        fn send_when(
            &mut self,
            message: &Message,
            _: Vec<u8>,
            ready: &mut dyn FnMut() -> bool,
            next: &mut dyn FnMut() -> Option<Ahead>,
        ) -> Outcome {
            let stages = &*self.0;
            let to = message.envelope().to()[0].to_string();
            match to.as_str() {
                // The first connection waits until the coordinator has
                // filled the queue (r0002 and r0003 in it, r0004 rendered),
                // takes r0002 ahead, which lets r0004 in, and answers once
                // the coordinator is past its look at the results for r0005.
                "r0000@example.com" => {
                    stages.wait(|s| s.rendered.load(Ordering::SeqCst) >= 5);
                    assert!(ready(), "the first body has nothing to wait for");
                    stages.bodies.fetch_add(1, Ordering::SeqCst);
                    assert!(next().is_some(), "r0002 is waiting in the queue");
                    stages.wait(|s| s.rendered.load(Ordering::SeqCst) >= 6);
                }
                // The second connection's first message: it answers only
                // after the ledger failed (so its result finds no recorder).
                "r0001@example.com" => stages.wait(|s| s.refused.load(Ordering::SeqCst)),
                _ => {}
            }
            if !ready() {
                stages.refused.store(true, Ordering::SeqCst);
                return Outcome::Deferred {
                    reply: "not sent: the run stopped before the body".into(),
                };
            }
            if to != "r0000@example.com" {
                stages.bodies.fetch_add(1, Ordering::SeqCst);
            }
            Outcome::Accepted {
                reply: "250 ok".into(),
            }
        }
    }

    /// The ledger fails on the first result while the job queue is full
    /// and the coordinator is handing over one more: both connections
    /// then end without taking another job, and the run must still end
    /// with the ledger's error rather than wait for room in the queue.
    /// The second connection's first body, cleared by no commit, must not
    /// go out after the failure either.
    #[test]
    fn a_ledger_failure_while_the_queue_is_full_ends_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let (ledger, id) = with_issue(Ledger::open(&path).unwrap(), 12);
        fail_recording_of(&path, "r0000@example.com");
        let stages = Arc::new(Stages::default());
        let transport = Staged(Arc::clone(&stages));
        let seen = Arc::clone(&stages);
        let render = move |d: &Delivery| {
            // r0005, the message handed over after the queue filled up
            // again, goes only once a connection was refused its body.
            if seen.rendered.fetch_add(1, Ordering::SeqCst) == 5 {
                seen.wait(|s| s.refused.load(Ordering::SeqCst));
            }
            render(d)
        };
        // On its own thread: a run that never ends fails this test
        // instead of hanging it.
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ledger = ledger;
            let options = RunOptions {
                concurrency: 2,
                ..RunOptions::default()
            };
            let mut run = Run::new(&mut ledger, options, &SystemClock, None);
            let result = run.deliver(&id, render, || transport.clone());
            let chain = result.map_err(|e| format!("{:#}", anyhow::Error::from(e)));
            drop(run);
            let _ = done_tx.send((chain.map(|s| s.sent), ledger.counts(&id).unwrap()));
        });
        let (result, counts) = done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the run ends after the ledger failed");
        let chain = result.expect_err("the ledger's failure fails the run");
        assert!(chain.contains("disk is full"), "{chain}");
        assert!(
            stages.refused.load(Ordering::SeqCst),
            "the interleaving was forced"
        );
        // Only r0000 went out, and it is not on record: nothing else is.
        assert_eq!(stages.bodies.load(Ordering::SeqCst), 1);
        assert_eq!((counts.sent, counts.pending), (0, 12), "{counts:?}");
    }

    #[test]
    fn send_settings_become_the_policy_and_rates() {
        let defaults = SendConfig::default();
        assert_eq!(RetryPolicy::from_config(&defaults), RetryPolicy::default());
        assert_eq!(
            RateLimits::from_config(&defaults).per_second,
            Some(defaults.per_second)
        );
        let odd = SendConfig {
            max_attempts: 0,
            retry_base_seconds: 0,
            per_second: f64::NAN,
            per_hour: Some(500),
            ..SendConfig::default()
        };
        let policy = RetryPolicy::from_config(&odd);
        assert_eq!(policy.max_attempts, 1);
        assert_eq!(policy.base, Duration::from_secs(1));
        let rates = RateLimits::from_config(&odd);
        assert_eq!(rates.per_second, None);
        assert_eq!(rates.per_hour, Some(500));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_secs(300));
        assert_eq!(policy.backoff(2), Duration::from_secs(600));
        assert_eq!(policy.backoff(7), Duration::from_secs(300 * 64));
        assert_eq!(policy.backoff(8), Duration::from_secs(6 * 3600));
        assert_eq!(policy.backoff(40), Duration::from_secs(6 * 3600));

        let (mut ledger, id) = setup(1);
        let later = Script {
            answers: Arc::new(
                [(
                    "r0000".to_owned(),
                    Outcome::Deferred {
                        reply: "451 busy".into(),
                    },
                )]
                .into(),
            ),
            ..Script::default()
        };
        let t = Arc::new(AtomicI64::new(Utc::now().timestamp()));
        let t2 = Arc::clone(&t);
        let clock = move || DateTime::from_timestamp(t2.load(Ordering::SeqCst), 0).unwrap();
        let opts = RunOptions {
            retry: RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
            ..options()
        };
        for expected_wait in [300, 600] {
            let s = deliver(&mut ledger, &id, opts.clone(), &clock, &later);
            assert_eq!(s.deferred, 1);
            let next = ledger.status().unwrap()[0].next_retry.unwrap();
            assert_eq!(next.timestamp() - t.load(Ordering::SeqCst), expected_wait);
            t.store(next.timestamp(), Ordering::SeqCst);
        }
        let s = deliver(&mut ledger, &id, opts, &clock, &later);
        assert_eq!((s.deferred, s.failed), (0, 1));
        assert!(s.finished);
        let (d, reply) = ledger.deliveries(&id).unwrap().remove(0);
        assert_eq!(d.state, DeliveryState::Failed);
        assert_eq!(d.attempts, 3);
        assert!(reply.unwrap().starts_with("gave up after 3 attempts"));
        let r = EmailAddress::parse("r0000@example.com").unwrap();
        assert_eq!(ledger.suppression(&r).unwrap(), None);
    }

    #[test]
    fn fatal_stops_the_run_and_fails_nobody() {
        let (mut ledger, id) = setup(50);
        let down = Script {
            answers: Arc::new(
                [(
                    "r0010".to_owned(),
                    Outcome::Fatal {
                        reason: "connection refused".into(),
                    },
                )]
                .into(),
            ),
            ..Script::default()
        };
        let clock = SystemClock;
        let s = deliver(
            &mut ledger,
            &id,
            RunOptions {
                concurrency: 1,
                ..options()
            },
            &clock,
            &down,
        );
        assert_eq!(s.stopped, Some(Stop::Fatal("connection refused".into())));
        assert_eq!(s.sent, 10);
        assert_eq!(s.failed + s.deferred, 0);
        assert_eq!(s.counts.pending, 40);
        assert_eq!(exit_code([&s]), 2);
    }

    #[test]
    fn limit_and_caps_stop_early_and_caps_count_earlier_runs() {
        let (mut ledger, id) = setup(30);
        let ok = Script::default();
        let clock = SystemClock;
        let s = deliver(
            &mut ledger,
            &id,
            RunOptions {
                limit: Some(7),
                ..options()
            },
            &clock,
            &ok,
        );
        assert_eq!((s.sent, s.stopped.clone()), (7, Some(Stop::Limit)));
        let capped = RunOptions {
            rates: RateLimits {
                per_hour: Some(10),
                ..RateLimits::default()
            },
            ..options()
        };
        let s = deliver(&mut ledger, &id, capped.clone(), &clock, &ok);
        assert_eq!((s.sent, s.stopped.clone()), (3, Some(Stop::HourlyCap)));
        let s = deliver(&mut ledger, &id, capped, &clock, &ok);
        assert_eq!(s.sent, 0);
        assert_eq!(s.counts.pending, 20);
    }

    #[test]
    fn per_second_rate_paces_the_run() {
        let (mut ledger, id) = setup(12);
        let ok = Script::default();
        let clock = SystemClock;
        let paced = RunOptions {
            rates: RateLimits {
                per_second: Some(20.0),
                ..RateLimits::default()
            },
            ..options()
        };
        let start = Instant::now();
        let s = deliver(&mut ledger, &id, paced, &clock, &ok);
        assert_eq!(s.sent, 12);
        // A burst of 20 is allowed, so 12 go at once; now spend the bucket.
        let (mut ledger, id) = setup(50);
        let paced = RunOptions {
            rates: RateLimits {
                per_second: Some(20.0),
                ..RateLimits::default()
            },
            ..options()
        };
        deliver(&mut ledger, &id, paced, &clock, &ok);
        // 50 messages, 20 at once, 30 more at 20/s: at least 1.4 s.
        assert!(
            start.elapsed() >= Duration::from_millis(1400),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_message_for_someone_else_is_refused_and_skips_are_recorded() {
        let (mut ledger, id) = setup(3);
        let ok = Script::default();
        let clock = SystemClock;
        let mut run = Run::new(&mut ledger, options(), &clock, None);
        let s = run
            .deliver(
                &id,
                |d| {
                    if d.recipient == "r0001@example.com" {
                        Err(RenderError::Skip("no longer in subscribers.csv".into()))
                    } else {
                        render(d)
                    }
                },
                || ok.clone(),
            )
            .unwrap();
        assert_eq!((s.sent, s.failed), (2, 1));

        let (mut ledger, id) = setup(3);
        let ok = Script::default();
        let mut run = Run::new(&mut ledger, options(), &clock, None);
        let err = run
            .deliver(
                &id,
                |_| {
                    Ok(Message::builder()
                        .from("news@example.com".parse().unwrap())
                        .to("someone@example.com".parse().unwrap())
                        .subject("s")
                        .body("b".to_owned())
                        .unwrap())
                },
                || ok.clone(),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("addressed to someone@example.com"),
            "{err}"
        );
        assert!(ok.got.lock().unwrap().is_empty());
    }
}
