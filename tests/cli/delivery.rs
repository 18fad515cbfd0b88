//! Delivery against real servers: Postfix (installed and started by
//! `.ci/mail-servers`) and the scriptable fault server
//! `tests/tools/fault_smtp.py` (aiosmtpd), driven through the library API.
//! Every assertion counts what the servers actually received, per
//! recipient, and reads the ledger. Without the servers these tests fail
//! and say how to start them; they never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::Message;
use pressroom::address::EmailAddress;
use pressroom::config::send::{DkimAlgorithm, DkimConfig, SmtpConfig};
use pressroom::delivery::dkim::DkimSigner;
use pressroom::delivery::ledger::{
    DeliveryState, IssueId, IssueKind, Ledger, NewIssue, SuppressionReason,
};
use pressroom::delivery::lock::{lock_path_for, LockError, SendLock};
use pressroom::delivery::smtp::{Password, SmtpConfigError, SmtpSender, SmtpSettings};
use pressroom::delivery::{
    exit_code, Clock, Delivery, IssueSummary, RenderError, Run, RunOptions, Stop, SystemClock,
};
use pressroom::email::MessageError;
use pressroom::error_kind::Boxed;

use crate::mail::{
    manifest_dir, require_postfix, unique_domain, wait_for_maildir, FaultServer, POSTFIX_CERT,
    SETUP_HINT,
};

fn addresses(domain: &str, n: usize) -> Vec<EmailAddress> {
    (0..n)
        .map(|i| EmailAddress::parse(&format!("reader{i:04}@{domain}")).unwrap())
        .collect()
}

fn create_issue(ledger: &mut Ledger, id: &str, recipients: &[EmailAddress]) -> IssueId {
    let id = IssueId::parse(id).unwrap();
    let articles = vec![format!("tag:example.com,2026:{id}")];
    let created = ledger
        .create_issue(
            &NewIssue {
                id: &id,
                kind: IssueKind::Article,
                article_ids: &articles,
                subject: "Rust at the Edge",
                content: b"{}",
            },
            recipients
                .iter()
                .cloned()
                .map(Ok::<_, std::convert::Infallible>),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(created, Some(recipients.len() as u64));
    id
}

/// What the renderer on main will produce, reduced to the headers that
/// matter for delivery and DKIM.
fn render(issue: &IssueId) -> impl FnMut(&Delivery) -> Result<Message, RenderError> + '_ {
    move |d| {
        let raw = |name: &'static str, value: String| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
        };
        Message::builder()
            .from("The Dispatch <news@example.com>".parse().unwrap())
            .to(d
                .address
                .as_str()
                .parse()
                .map_err(|e: lettre::address::AddressError| {
                    RenderError::Failed(Boxed::new(MessageError::Address(e.to_string())))
                })?)
            .subject("Rust at the Edge")
            .message_id(Some(format!(
                "<{issue}.{}@example.com>",
                d.recipient.replace('@', "=")
            )))
            .raw_header(raw(
                "List-Unsubscribe",
                "<mailto:unsubscribe@example.com>, <https://example.com/u/token>".to_owned(),
            ))
            .raw_header(raw(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_owned(),
            ))
            .body(format!(
                "Hello {},\r\nthis is issue {issue}.\r\n",
                d.address
            ))
            .map_err(|e| RenderError::Failed(Boxed::new(MessageError::Build(e))))
    }
}

fn settings(url: &str, password: Option<&str>, ca_file: Option<&str>) -> Arc<SmtpSettings> {
    let config = SmtpConfig {
        url: url.to_owned(),
        ca_file: ca_file.map(PathBuf::from),
        timeout_seconds: 10,
        ..SmtpConfig::default()
    };
    let password = password.map(|p| Password::new(p.to_owned()));
    Arc::new(SmtpSettings::resolve(&config, None, password, Path::new(".")).unwrap())
}

fn options(concurrency: usize) -> RunOptions {
    RunOptions {
        concurrency,
        ..RunOptions::default()
    }
}

fn deliver(
    ledger: &mut Ledger,
    issue: &IssueId,
    settings: &Arc<SmtpSettings>,
    options: RunOptions,
    clock: &(dyn Clock + Sync),
) -> IssueSummary {
    let mut run = Run::new(ledger, options, clock, None);
    run.deliver(issue, render(issue), || {
        SmtpSender::new(Arc::clone(settings))
    })
    .unwrap()
}

/// A clock `minutes` ahead: "a later run, after the backoff".
fn later(minutes: i64) -> impl Fn() -> DateTime<Utc> {
    move || Utc::now() + chrono::Duration::minutes(minutes)
}

fn state(ledger: &Ledger, issue: &IssueId, address: &EmailAddress) -> (DeliveryState, String) {
    let (d, reply) = ledger
        .deliveries(issue)
        .unwrap()
        .into_iter()
        .find(|(d, _)| d.recipient == address.normalized())
        .unwrap();
    (d.state, reply.unwrap_or_default())
}

// ---------- the tests ----------

#[test]
fn a_thousand_subscribers_through_postfix_each_get_exactly_one_copy() {
    require_postfix();
    let domain = unique_domain("bulk");
    let recipients = addresses(&domain, 1000);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join(".pressroom/state.db")).unwrap();
    let issue = create_issue(&mut ledger, "2026-03-09-rust-edge", &recipients);
    let postfix = settings("smtp://127.0.0.1:2525?tls=none", None, None);

    let started = Instant::now();
    let first = deliver(&mut ledger, &issue, &postfix, options(4), &SystemClock);
    eprintln!("1000 messages handed to Postfix in {:?}", started.elapsed());
    assert_eq!((first.sent, first.deferred, first.failed), (1000, 0, 0));
    assert!(first.finished && first.stopped.is_none());
    assert_eq!(exit_code([&first]), 0);

    // A second run finds nothing to do and exits 0.
    let second = deliver(&mut ledger, &issue, &postfix, options(4), &SystemClock);
    assert_eq!((second.sent, second.deferred, second.failed), (0, 0, 0));
    assert_eq!(exit_code([&second]), 0);
    // Nor does an issue with the same id get created twice.
    assert_eq!(
        ledger
            .create_issue(
                &NewIssue {
                    id: &issue,
                    kind: IssueKind::Article,
                    article_ids: &[],
                    subject: "again",
                    content: b"",
                },
                recipients
                    .iter()
                    .cloned()
                    .map(Ok::<_, std::convert::Infallible>),
                Utc::now(),
            )
            .unwrap(),
        None
    );

    let (counts, files) = wait_for_maildir(&domain, 1000);
    for r in &recipients {
        assert_eq!(counts.get(&r.normalized()), Some(&1), "{r}");
    }
    assert_eq!(counts.len(), 1000);
    assert_eq!(ledger.counts(&issue).unwrap().sent, 1000);
    for f in files {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn deferred_recipients_are_delivered_by_a_later_run_once_the_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("still-deferring");
    std::fs::write(&marker, "").unwrap();
    let recipients = addresses("defer.example.com", 30);
    let deferred = [&recipients[3], &recipients[17]];
    let list = format!("{},{}", deferred[0], deferred[1]);
    let server = FaultServer::start(&["--defer", &list, "--defer-while", marker.to_str().unwrap()]);
    let mut ledger = Ledger::open(&dir.path().join("state.db")).unwrap();
    let issue = create_issue(&mut ledger, "defer", &recipients);
    let smtp = settings(&server.url(), None, None);

    let first = deliver(&mut ledger, &issue, &smtp, options(2), &SystemClock);
    assert_eq!((first.sent, first.deferred, first.failed), (28, 2, 0));
    assert_eq!(
        exit_code([&first]),
        2,
        "deferred deliveries make the run exit 2"
    );
    let (s, reply) = state(&ledger, &issue, deferred[0]);
    assert_eq!(s, DeliveryState::Deferred);
    assert!(reply.starts_with("451 4.3.0"), "{reply}");
    let status = &ledger.status().unwrap()[0];
    assert!(status.next_retry.unwrap() > Utc::now() + chrono::Duration::minutes(4));

    // Right away: not due yet, nothing is sent.
    let early = deliver(&mut ledger, &issue, &smtp, options(2), &SystemClock);
    assert_eq!(early.sent + early.deferred, 0);
    // After the backoff, still 451: deferred again, with a longer wait.
    let again = deliver(&mut ledger, &issue, &smtp, options(2), &later(6));
    assert_eq!(again.deferred, 2);
    // The server recovers; a later run delivers them.
    std::fs::remove_file(&marker).unwrap();
    let last = deliver(&mut ledger, &issue, &smtp, options(2), &later(30));
    assert_eq!((last.sent, last.deferred), (2, 0));
    assert!(last.finished);
    assert_eq!(exit_code([&last]), 0);

    let counts = server.counts();
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
}

#[test]
fn permanent_rejections_fail_and_only_non_policy_ones_suppress() {
    let recipients = addresses("reject.example.com", 10);
    let (unknown, spam) = (&recipients[2], &recipients[5]);
    let server = FaultServer::start(&["--reject", unknown.as_str(), "--policy", spam.as_str()]);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("state.db")).unwrap();
    let issue = create_issue(&mut ledger, "reject", &recipients);
    let smtp = settings(&server.url(), None, None);

    let first = deliver(&mut ledger, &issue, &smtp, options(2), &SystemClock);
    assert_eq!((first.sent, first.deferred, first.failed), (8, 0, 2));
    assert!(first.finished, "failures are final");
    assert_eq!(exit_code([&first]), 0);

    let (s, reply) = state(&ledger, &issue, unknown);
    assert_eq!(s, DeliveryState::Failed);
    assert!(reply.starts_with("550 5.1.1"), "{reply}");
    assert_eq!(
        ledger.suppression(unknown).unwrap(),
        Some(SuppressionReason::HardBounce)
    );
    let (s, reply) = state(&ledger, &issue, spam);
    assert_eq!(s, DeliveryState::Failed);
    assert!(reply.starts_with("554 5.7.1"), "{reply}");
    assert_eq!(ledger.suppression(spam).unwrap(), None);

    // Never retried, however much later; and the suppressed address is
    // left out of the next issue.
    let later_run = deliver(&mut ledger, &issue, &smtp, options(2), &later(24 * 60));
    assert_eq!(later_run.sent + later_run.failed + later_run.deferred, 0);
    let next = IssueId::parse("reject-next").unwrap();
    let created = ledger
        .create_issue(
            &NewIssue {
                id: &next,
                kind: IssueKind::Article,
                article_ids: &["next".to_owned()],
                subject: "next",
                content: b"",
            },
            recipients
                .iter()
                .cloned()
                .map(Ok::<_, std::convert::Infallible>),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(created, Some(9));
    let counts = server.counts();
    assert_eq!(counts.get(&unknown.normalized()), None);
    assert_eq!(counts.get(&spam.normalized()), None);
    assert_eq!(counts.len(), 8);
}

#[test]
fn a_connection_dropped_mid_batch_loses_nobody_and_duplicates_nobody() {
    let server = FaultServer::start(&["--drop-after", "25"]);
    let recipients = addresses("drop.example.com", 60);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("state.db")).unwrap();
    let issue = create_issue(&mut ledger, "drop", &recipients);
    let smtp = settings(&server.url(), None, None);

    let first = deliver(&mut ledger, &issue, &smtp, options(2), &SystemClock);
    assert_eq!(
        (first.sent, first.deferred, first.failed),
        (59, 1, 0),
        "{first:?}"
    );
    let dropped: Vec<_> = ledger
        .deliveries(&issue)
        .unwrap()
        .into_iter()
        .filter(|(d, _)| d.state == DeliveryState::Deferred)
        .collect();
    let reply = dropped[0].1.clone().unwrap_or_default();
    assert!(
        reply.contains("connection lost during end of data"),
        "{reply}"
    );

    let second = deliver(&mut ledger, &issue, &smtp, options(2), &later(10));
    assert_eq!((second.sent, second.deferred), (1, 0));
    assert!(second.finished);
    let counts = server.counts();
    assert_eq!(counts.len(), 60, "nobody lost");
    assert!(counts.values().all(|&n| n == 1), "nobody twice: {counts:?}");
}

#[test]
fn an_unreachable_server_stops_the_run_and_fails_nobody() {
    // A port nothing listens on once the listener is gone.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let recipients = addresses("down.example.com", 5);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("state.db")).unwrap();
    let issue = create_issue(&mut ledger, "down", &recipients);
    let smtp = settings(&format!("smtp://127.0.0.1:{port}?tls=none"), None, None);
    let s = deliver(&mut ledger, &issue, &smtp, options(2), &SystemClock);
    assert!(
        matches!(&s.stopped, Some(Stop::Fatal(r)) if r.contains("cannot connect")),
        "{s:?}"
    );
    assert_eq!(s.counts.pending, 5);
    assert_eq!(exit_code([&s]), 2);
}

#[test]
fn overlapping_runs_the_second_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lock = lock_path_for(&dir.path().join(".pressroom/state.db"));
    let first = SendLock::acquire(&lock).unwrap();
    // From another thread, as a second process would: same answer.
    let lock2 = lock.clone();
    let second = std::thread::spawn(move || SendLock::acquire(&lock2))
        .join()
        .unwrap();
    match second {
        Err(e @ LockError::Held { .. }) => {
            assert!(e.to_string().starts_with("another send is running"), "{e}")
        }
        other => panic!("second lock holder was not refused: {other:?}"),
    }
    // And from another process (flock(1) from util-linux).
    let status = Command::new("flock")
        .args(["--nonblock", "--conflict-exit-code", "75"])
        .arg(&lock)
        .arg("true")
        .status()
        .expect("flock(1) from util-linux");
    assert_eq!(
        status.code(),
        Some(75),
        "another process could take the lock"
    );
    drop(first);
    SendLock::acquire(&lock).unwrap();
}

#[test]
fn starttls_and_auth_against_postfix_submission() {
    require_postfix();
    let domain = unique_domain("auth");
    let recipients = addresses(&domain, 3);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("state.db")).unwrap();
    let issue = create_issue(&mut ledger, "auth", &recipients);
    let url = "smtp://pressroom%40localhost@localhost:2587";

    // Wrong password: the run stops at AUTH, nobody is failed.
    let wrong = settings(url, Some("not-the-password"), Some(POSTFIX_CERT));
    let s = deliver(&mut ledger, &issue, &wrong, options(1), &SystemClock);
    assert!(
        matches!(&s.stopped, Some(Stop::Fatal(r)) if r.contains("535") && !r.contains("not-the-password")),
        "{s:?}"
    );
    assert_eq!(s.counts.pending, 3);

    // The self-signed certificate is not trusted without ca_file.
    let untrusted = settings(url, Some("pressroom-test"), None);
    let s = deliver(&mut ledger, &issue, &untrusted, options(1), &SystemClock);
    assert!(
        matches!(&s.stopped, Some(Stop::Fatal(r)) if r.contains("STARTTLS")),
        "{s:?}"
    );
    assert_eq!(s.counts.pending, 3);

    let good = settings(url, Some("pressroom-test"), Some(POSTFIX_CERT));
    let s = deliver(&mut ledger, &issue, &good, options(1), &SystemClock);
    assert_eq!((s.sent, s.failed), (3, 0), "{s:?}");
    let (counts, files) = wait_for_maildir(&domain, 3);
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|&n| n == 1));
    // Postfix notes the TLS and the authenticated sender in Received:.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("with ESMTPSA"), "{text}");
    for f in files {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn plaintext_auth_to_a_non_local_host_is_refused_before_connecting() {
    // `.invalid` never resolves (RFC 6761): had anything tried to connect,
    // the error would be a lookup failure, not this refusal.
    let config = SmtpConfig {
        url: "smtp://news@smtp.mail.invalid:587?tls=none".into(),
        ..SmtpConfig::default()
    };
    let err = SmtpSettings::resolve(
        &config,
        None,
        Some(Password::new("hunter2".into())),
        Path::new("."),
    )
    .unwrap_err();
    assert!(matches!(err, SmtpConfigError::Plaintext { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with("refusing to send the password (AUTH) in plaintext to smtp.mail.invalid"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
    // Plaintext to localhost is fine (the fault server tests use it).
    let local = SmtpConfig {
        url: "smtp://news@localhost:2525?tls=none".into(),
        ..SmtpConfig::default()
    };
    SmtpSettings::resolve(
        &local,
        None,
        Some(Password::new("x".into())),
        Path::new("."),
    )
    .unwrap();
}

#[test]
fn dkim_signature_verifies_with_dkimpy_and_covers_the_unsubscribe_headers() {
    let server = FaultServer::start(&[]);
    let recipients = addresses("dkim.example.com", 2);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("state.db")).unwrap();
    let issue = create_issue(&mut ledger, "dkim", &recipients);
    let signer = DkimSigner::load(
        &DkimConfig {
            domain: "example.com".into(),
            selector: "s1".into(),
            private_key: PathBuf::from("tests/fixtures/dkim/test.key"),
            algorithm: DkimAlgorithm::Rsa,
        },
        &manifest_dir(),
    )
    .unwrap();
    let smtp = settings(&server.url(), None, None);
    let clock = SystemClock;
    let mut run = Run::new(&mut ledger, options(1), &clock, Some(&signer));
    let s = run
        .deliver(&issue, render(&issue), || {
            SmtpSender::new(Arc::clone(&smtp))
        })
        .unwrap();
    assert_eq!(s.sent, 2);

    let public =
        std::fs::read_to_string(manifest_dir().join("tests/fixtures/dkim/test.pub")).unwrap();
    let p: String = public.lines().filter(|l| !l.starts_with("-----")).collect();
    for (_, data) in server.received() {
        let signature = data
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ")
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
            .map(str::to_owned)
            .expect("a DKIM-Signature header");
        assert!(
            signature.contains(
                "h=from:to:subject:date:message-id:list-unsubscribe:list-unsubscribe-post;"
            ),
            "{signature}"
        );
        let (ok, said) = dkimpy_verifies(&data, &p);
        assert!(ok, "dkimpy did not verify the signature: {said}");
        // Swapping the unsubscribe target breaks the signature.
        let tampered = data.replace(
            "https://example.com/u/token",
            "https://evil.example/u/token",
        );
        assert_ne!(tampered, data);
        let (ok, said) = dkimpy_verifies(&tampered, &p);
        assert!(!ok, "a tampered List-Unsubscribe still verified: {said}");
    }
}

/// Runs dkimpy (Debian's python3-dkim) on `message`, answering its DNS
/// query for `s1._domainkey.example.com` with the public key `p`.
fn dkimpy_verifies(message: &str, p: &str) -> (bool, String) {
    let mut python = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, os, dkim\n\
             msg = sys.stdin.buffer.read()\n\
             key = os.environ['DKIM_P'].encode()\n\
             dns = lambda name, timeout=5: b'v=DKIM1; k=rsa; p=' + key if name == b's1._domainkey.example.com.' else None\n\
             ok = dkim.verify(msg, dnsfunc=dns)\n\
             print('verified' if ok else 'not verified')\n\
             sys.exit(0 if ok else 1)",
        ])
        .env("DKIM_P", p)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run /usr/bin/python3: {e}; {SETUP_HINT}"));
    std::io::Write::write_all(&mut python.stdin.take().unwrap(), message.as_bytes()).unwrap();
    let out = python.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if said.contains("No module named 'dkim'") {
        panic!("dkimpy is missing: {SETUP_HINT}");
    }
    (out.status.success(), said)
}

// ---------- PIPELINING across messages ----------
//
// With `--pipelining` the fault server advertises PIPELINING, and the
// client writes the next message's MAIL, RCPT and DATA behind each body.
// Its `--pipeline-log` says, for every end of DATA, whether the client's
// next command had already arrived before the reply (`ahead`) or not.

/// The fault server's pipeline log: (ahead, waited).
fn pipeline_log(path: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let ahead = text.lines().filter(|l| *l == "ahead").count();
    (ahead, text.lines().count() - ahead)
}

#[test]
fn refusals_of_a_pipelined_next_envelope_land_on_that_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pipeline.log");
    let recipients = addresses("pipe-refuse.example.com", 12);
    // 5's RCPT is refused and 8's deferred while 4's and 7's bodies are
    // answered; 2's body is refused with 3's envelope behind it.
    let (spam, unknown, busy) = (&recipients[2], &recipients[5], &recipients[8]);
    let server = FaultServer::start(&[
        "--pipelining",
        "--pipeline-log",
        log.to_str().unwrap(),
        "--policy",
        spam.as_str(),
        "--reject",
        unknown.as_str(),
        "--defer",
        busy.as_str(),
    ]);
    let mut ledger = Ledger::open(&dir.path().join("state.db")).unwrap();
    let issue = create_issue(&mut ledger, "pipe-refuse", &recipients);
    let smtp = settings(&server.url(), None, None);

    let s = deliver(&mut ledger, &issue, &smtp, options(1), &SystemClock);
    assert_eq!((s.sent, s.deferred, s.failed), (9, 1, 2), "{s:?}");
    for (i, r) in recipients.iter().enumerate() {
        let (state_now, reply) = state(&ledger, &issue, r);
        let want = match i {
            2 | 5 => DeliveryState::Failed,
            8 => DeliveryState::Deferred,
            _ => DeliveryState::Sent,
        };
        assert_eq!(state_now, want, "{r}: {reply}");
        match i {
            2 => assert!(reply.starts_with("554 5.7.1"), "{r}: {reply}"),
            5 => assert!(reply.starts_with("550 5.1.1"), "{r}: {reply}"),
            8 => assert!(reply.starts_with("451 4.3.0"), "{r}: {reply}"),
            _ => assert!(reply.starts_with("250"), "{r}: {reply}"),
        }
    }
    assert_eq!(
        ledger.suppression(unknown).unwrap(),
        Some(SuppressionReason::HardBounce)
    );
    assert_eq!(ledger.suppression(spam).unwrap(), None);
    let counts = server.counts();
    assert_eq!(counts.len(), 9, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    for r in [spam, unknown, busy] {
        assert_eq!(counts.get(&r.normalized()), None, "{r}");
    }
    // Every address was offered once: nothing was retried on the side.
    let offered = server.rcpt_attempts();
    assert_eq!(offered.len(), 12);
    assert!(offered.values().all(|&n| n == 1), "{offered:?}");
    let (ahead, _) = pipeline_log(&log);
    assert!(
        ahead >= 5,
        "envelopes went behind bodies only {ahead} times"
    );
}

#[test]
fn a_failed_commit_never_sends_the_body_whose_envelope_went_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pipeline.log");
    let recipients = addresses("pipe-commit.example.com", 20);
    let server = FaultServer::start(&["--pipelining", "--pipeline-log", log.to_str().unwrap()]);
    let path = dir.path().join("state.db");
    let mut ledger = Ledger::open(&path).unwrap();
    let issue = create_issue(&mut ledger, "pipe-commit", &recipients);
    // The ledger refuses to record 5's result (as a full disk would).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER full_disk BEFORE UPDATE ON deliveries
             WHEN NEW.recipient = '{}'
             BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
            recipients[5].normalized()
        ))
        .unwrap();
    let smtp = settings(&server.url(), None, None);
    let clock = SystemClock;
    let started = Instant::now();
    let mut run = Run::new(&mut ledger, options(1), &clock, None);
    let err = run
        .deliver(&issue, render(&issue), || {
            SmtpSender::new(Arc::clone(&smtp))
        })
        .unwrap_err();
    let took = started.elapsed();
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert!(chain.contains("disk is full"), "{chain}");
    drop(run);

    // 0–4 on record, 5 accepted but not (the one-message window), and 6,
    // whose envelope went behind 5's body, never got its body.
    let counts = server.counts();
    let got: Vec<usize> = (0..20)
        .filter(|&i| counts.contains_key(&recipients[i].normalized()))
        .collect();
    assert_eq!(got, [0, 1, 2, 3, 4, 5], "{counts:?}");
    assert_eq!(ledger.counts(&issue).unwrap().sent, 5);
    let offered = server.rcpt_attempts();
    assert_eq!(
        offered.get(&recipients[6].normalized()),
        Some(&1),
        "6's envelope was not sent ahead: {offered:?}"
    );
    // The connection was closed in DATA without waiting for an answer to
    // a QUIT the server would read as text (the timeout is 10 s).
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    let (ahead, _) = pipeline_log(&log);
    assert!(
        ahead >= 5,
        "envelopes went behind bodies only {ahead} times"
    );
}

#[test]
fn a_connection_dropped_after_a_pipelined_body_defers_only_that_message() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pipeline.log");
    // The server reads the 26th body's end (with the 27th envelope behind
    // it) and closes the connection without answering.
    let server = FaultServer::start(&[
        "--pipelining",
        "--pipeline-log",
        log.to_str().unwrap(),
        "--drop-after",
        "25",
    ]);
    let recipients = addresses("pipe-drop.example.com", 40);
    let mut ledger = Ledger::open(&dir.path().join("state.db")).unwrap();
    let issue = create_issue(&mut ledger, "pipe-drop", &recipients);
    let smtp = settings(&server.url(), None, None);

    let first = deliver(&mut ledger, &issue, &smtp, options(1), &SystemClock);
    assert_eq!(
        (first.sent, first.deferred, first.failed),
        (39, 1, 0),
        "{first:?}"
    );
    let (s, reply) = state(&ledger, &issue, &recipients[25]);
    assert_eq!(s, DeliveryState::Deferred);
    assert!(
        reply.contains("connection lost during end of data"),
        "{reply}"
    );
    // The message behind it went on a new connection.
    assert_eq!(
        state(&ledger, &issue, &recipients[26]).0,
        DeliveryState::Sent
    );

    let second = deliver(&mut ledger, &issue, &smtp, options(1), &later(10));
    assert_eq!((second.sent, second.deferred), (1, 0));
    assert!(second.finished);
    let counts = server.counts();
    assert_eq!(counts.len(), 40, "nobody lost");
    assert!(counts.values().all(|&n| n == 1), "nobody twice: {counts:?}");
    let (ahead, _) = pipeline_log(&log);
    assert!(
        ahead >= 20,
        "envelopes went behind bodies only {ahead} times"
    );
}

#[test]
fn a_server_without_pipelining_gets_one_command_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pipeline.log");
    let recipients = addresses("no-pipe.example.com", 10);
    let server = FaultServer::start(&[
        "--pipeline-log",
        log.to_str().unwrap(),
        "--reject",
        recipients[4].as_str(),
    ]);
    let mut ledger = Ledger::open(&dir.path().join("state.db")).unwrap();
    let issue = create_issue(&mut ledger, "no-pipe", &recipients);
    let smtp = settings(&server.url(), None, None);

    let s = deliver(&mut ledger, &issue, &smtp, options(1), &SystemClock);
    assert_eq!((s.sent, s.deferred, s.failed), (9, 0, 1), "{s:?}");
    assert!(state(&ledger, &issue, &recipients[4])
        .1
        .starts_with("550 5.1.1"));
    let counts = server.counts();
    assert_eq!(counts.len(), 9);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    assert_eq!(
        pipeline_log(&log),
        (0, 9),
        "nothing may be sent before a reply"
    );
}
