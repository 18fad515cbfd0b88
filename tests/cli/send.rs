//! `pressroom send`, `status` and `unsubscribe` through the real binary,
//! against Postfix (`.ci/mail-servers`) and the scriptable fault server
//! (`tests/tools/fault_smtp.py`). Every test checks both sides: what the
//! server actually received, per recipient (Postfix's Maildir by
//! `Delivered-To:`, or the fault server's record), and what the ledger
//! says (`status --json`, or the SQLite file opened read-only).
//!
//! The site is the repository's sample (8 articles published at
//! [`NOW`], one scheduled for 2030-01-15 that [`LATER`] publishes) with
//! `[send]` and `[smtp]` appended, and a `subscribers.csv` of
//! `r{i}@<a domain of its own>`, so Maildir counts never mix between
//! tests. Each test removes its Maildir copies when it ends.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{copy_dir, files_under, Run, BIN, NOW, REPO};
use crate::mail::{
    require_postfix, settle_maildir, unique_domain, FaultServer, MaildirCleanup, POSTFIX_CERT,
    POSTFIX_PASSWORD, POSTFIX_USER,
};

/// A time at which the sample's 2030 article is published too.
const LATER: &str = "2030-02-01T00:00:00Z";
/// PRESSROOM_SECRET for every run (distinctive, so a leak would be found).
const SECRET: &str = "unsubscribe-hmac-secret-5b1e9c27d4";
const POSTFIX_PLAIN: &str = "smtp://127.0.0.1:2525?tls=none";

/// A copy of the sample site with `[send]`, `[smtp]` and subscribers.
struct Site {
    dir: tempfile::TempDir,
    domain: String,
    /// Environment for every run, on top of a clean one (`None` removes).
    env: Vec<(&'static str, Option<String>)>,
}

impl Site {
    /// `send` and `smtp` are the bodies of the `[send]` and `[smtp]`
    /// sections; `n` subscribers `r0@DOMAIN` … are written.
    fn new(test: &str, n: usize, send: &str, smtp: &str) -> Site {
        Site::with_domain(unique_domain(test), n, send, smtp)
    }

    /// Like [`Site::new`], for subscribers at `domain`.
    fn with_domain(domain: String, n: usize, send: &str, smtp: &str) -> Site {
        let dir = tempfile::Builder::new()
            .prefix("prsend-")
            .tempdir()
            .expect("cannot create a temporary folder");
        let repo = Path::new(REPO);
        let mut config = std::fs::read_to_string(repo.join("config.toml")).unwrap();
        config.push_str(&format!("\n[send]\n{send}\n\n[smtp]\n{smtp}\n"));
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        copy_dir(&repo.join("content"), &dir.path().join("content"));
        let site = Site {
            dir,
            domain,
            env: vec![("PRESSROOM_SECRET", Some(SECRET.to_owned()))],
        };
        let mut csv = String::from("email,name\n");
        for i in 0..n {
            csv.push_str(&format!("{},Reader {i}\n", site.addr(i)));
        }
        site.write("subscribers.csv", csv);
        site
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    fn write(&self, relative: &str, text: impl AsRef<[u8]>) {
        std::fs::write(self.path(relative), text).unwrap();
    }

    fn addr(&self, i: usize) -> String {
        format!("r{i}@{}", self.domain)
    }

    fn ledger(&self) -> PathBuf {
        self.path(".pressroom/state.db")
    }

    fn set_env(&mut self, name: &'static str, value: Option<&str>) {
        self.env.retain(|(n, _)| *n != name);
        self.env.push((name, value.map(str::to_owned)));
    }

    /// `pressroom --root SITE --now NOW ARGS…` with the site's environment.
    fn command(&self, now: &str, args: &[&str]) -> (Command, Vec<String>) {
        let mut all: Vec<OsString> = vec![
            "--root".into(),
            self.root().into(),
            "--now".into(),
            now.into(),
        ];
        all.extend(args.iter().map(OsString::from));
        let mut command = Command::new(BIN);
        command
            .args(&all)
            .current_dir(std::env::temp_dir())
            .env_remove("PRESSROOM_LOG")
            .env_remove("PRESSROOM_SECRET")
            .env_remove("PRESSROOM_SMTP_URL")
            .env_remove("PRESSROOM_SMTP_PASSWORD")
            .env("NO_COLOR", "1");
        for (name, value) in &self.env {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        let shown = all
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        (command, shown)
    }

    fn run_at(&self, now: &str, args: &[&str]) -> Run {
        let (mut command, args) = self.command(now, args);
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Run {
            args,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_at(NOW, args)
    }

    /// `status --json`: one object per issue, oldest first.
    fn status(&self) -> Vec<Value> {
        let run = self.run(&["status", "--json"]);
        run.assert_code(0);
        let v: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON: {e}\n{run}"));
        v.as_array().expect("status --json prints an array").clone()
    }

    /// The ledger, opened read-only (nothing here may change it).
    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.ledger(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.ledger().display()))
    }

    /// Every delivery of `issue`: recipient → (state, attempts, last reply).
    fn deliveries(&self, issue: &str) -> HashMap<String, (String, u32, String)> {
        let db = self.db();
        let mut stmt = db
            .prepare(
                "SELECT recipient, state, attempts, COALESCE(last_reply, '') FROM deliveries WHERE issue_id = ?1",
            )
            .unwrap();
        stmt.query_map([issue], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// The suppression list: recipient → reason.
    fn suppressions(&self) -> HashMap<String, String> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT recipient, reason FROM suppressions")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Every file of the `.pressroom` folder with its bytes.
    fn ledger_files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        files_under(&self.path(".pressroom"))
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect()
    }
}

/// (sent, deferred, failed, pending) of one `status --json` issue.
fn tally(issue: &Value) -> (u64, u64, u64, u64) {
    let c = &issue["counts"];
    let n = |k: &str| {
        c[k].as_u64()
            .unwrap_or_else(|| panic!("no counts.{k} in {issue}"))
    };
    (n("sent"), n("deferred"), n("failed"), n("pending"))
}

fn output(run: &Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

/// A header of a raw message (folded lines joined).
fn header(message: &str, name: &str) -> Option<String> {
    let head = message
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", " ");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_owned())
}

/// A small deterministic generator (xorshift64*): the kill test's
/// moments, reproducible from the seed it prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

// ---------- the tests ----------

/// Must show 1: 1,000 subscribers through Postfix, each exactly one copy;
/// a second run sends nothing; a new article makes exactly one new issue.
#[test]
fn a_thousand_subscribers_get_one_copy_each_and_a_new_article_makes_one_new_issue() {
    require_postfix();
    let site = Site::new(
        "send-bulk",
        1000,
        "concurrency = 1\nper_second = 0",
        &format!("url = \"{POSTFIX_PLAIN}\""),
    );
    let _cleanup = MaildirCleanup(site.domain.clone());

    let started = Instant::now();
    let first = site.run(&["send", "--include-existing"]);
    let first_took = started.elapsed();
    first.assert_code(0);
    assert!(first.stderr.contains("for 1000 subscriber(s)"), "{first}");
    let counts = settle_maildir(&site.domain, 1000, Duration::from_secs(60));
    for i in 0..1000 {
        assert_eq!(counts.get(&site.addr(i)), Some(&1), "{}", site.addr(i));
    }
    assert_eq!(counts.len(), 1000);
    let status = site.status();
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(tally(&status[0]), (1000, 0, 0, 0));
    assert!(status[0]["finished_at"].is_string());
    assert_eq!(status[0]["articles"].as_array().unwrap().len(), 8);

    // A second run: nothing new, exit 0, no copy.
    let second = site.run(&["send"]);
    second.assert_code(0);
    assert!(output(&second).contains("nothing new to send"), "{second}");
    std::thread::sleep(Duration::from_millis(500));
    let again = settle_maildir(&site.domain, 1000, Duration::from_secs(30));
    assert_eq!(again.values().sum::<usize>(), 1000, "the second run mailed");
    assert_eq!(site.status().len(), 1);

    // The 2030 article is published: exactly one new issue, one more copy each.
    let started = Instant::now();
    let third = site.run_at(LATER, &["send"]);
    let third_took = started.elapsed();
    third.assert_code(0);
    let counts = settle_maildir(&site.domain, 2000, Duration::from_secs(60));
    for i in 0..1000 {
        assert_eq!(counts.get(&site.addr(i)), Some(&2), "{}", site.addr(i));
    }
    let status = site.status();
    assert_eq!(status.len(), 2, "exactly one new issue: {status:?}");
    assert_eq!(tally(&status[1]), (1000, 0, 0, 0));
    let articles = status[1]["articles"].as_array().unwrap();
    assert_eq!(articles.len(), 1, "{articles:?}");
    assert!(
        articles[0].as_str().unwrap().contains("newsletter-2030"),
        "{articles:?}"
    );
    // And running again at that time adds nothing.
    let fourth = site.run_at(LATER, &["send"]);
    fourth.assert_code(0);
    assert!(output(&fourth).contains("nothing new to send"), "{fourth}");
    assert_eq!(site.status().len(), 2);
    eprintln!(
        "send bulk: 1000 × 8-article digest in {first_took:.1?}, 1000 × 1-article issue in {third_took:.1?}"
    );
}

/// Must show 2: a fresh ledger records the back catalogue as sent and
/// mails nothing, until a new article is published.
#[test]
fn a_fresh_ledger_mails_nothing_until_a_new_article_is_published() {
    require_postfix();
    let site = Site::new(
        "send-fresh",
        5,
        "per_second = 0",
        &format!("url = \"{POSTFIX_PLAIN}\""),
    );
    let _cleanup = MaildirCleanup(site.domain.clone());

    let first = site.run(&["send"]);
    first.assert_code(0);
    assert!(
        first
            .stderr
            .contains("8 published article(s) recorded as already sent"),
        "{first}"
    );
    assert!(first.stderr.contains("--include-existing"), "{first}");
    assert!(site.status().is_empty());
    let again = site.run(&["send"]);
    again.assert_code(0);
    assert!(output(&again).contains("nothing new to send"), "{again}");
    std::thread::sleep(Duration::from_millis(500));
    let counts = settle_maildir(&site.domain, 0, Duration::from_secs(30));
    assert!(
        counts.is_empty(),
        "the back catalogue was mailed: {counts:?}"
    );

    let later = site.run_at(LATER, &["send"]);
    later.assert_code(0);
    let counts = settle_maildir(&site.domain, 5, Duration::from_secs(30));
    assert_eq!(counts.len(), 5);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let status = site.status();
    assert_eq!(status.len(), 1);
    assert_eq!(tally(&status[0]), (5, 0, 0, 0));
    assert_eq!(status[0]["articles"].as_array().unwrap().len(), 1);
}

/// Must show 3: 451 deferred with a next retry and delivered by a later run
/// once the server accepts; 550 failed, suppressed, never retried; 5.7.1
/// failed but not suppressed.
#[test]
fn deferred_rejected_and_policy_refused_recipients_through_the_cli() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("still-deferring");
    std::fs::write(&marker, "").unwrap();
    let domain = unique_domain("send-faults");
    let a = |i: usize| format!("r{i}@{domain}");
    let deferred = format!("{},{}", a(1), a(2));
    let server = FaultServer::start(&[
        "--defer",
        &deferred,
        "--defer-while",
        marker.to_str().unwrap(),
        "--reject",
        &a(3),
        "--policy",
        &a(4),
    ]);
    let site = Site::with_domain(
        domain.clone(),
        10,
        "per_second = 0\nretry_base_seconds = 1\nretry_max_seconds = 2",
        &format!("url = \"{}\"", server.url()),
    );

    let first = site.run(&["send", "--include-existing"]);
    first.assert_code(2);
    assert!(first.stderr.contains("deferred"), "{first}");
    let status = site.status();
    assert_eq!(status.len(), 1);
    let issue = status[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(tally(&status[0]), (6, 2, 2, 0), "{status:?}");
    assert!(status[0]["next_retry"].is_string(), "{status:?}");
    assert!(status[0]["finished_at"].is_null());
    let d = site.deliveries(&issue);
    for i in [1, 2] {
        let (state, attempts, reply) = &d[&a(i)];
        assert_eq!((state.as_str(), *attempts), ("deferred", 1), "{}", a(i));
        assert!(reply.starts_with("451 4.3.0"), "{reply}");
    }
    let (state, _, reply) = &d[&a(3)];
    assert_eq!(state, "failed");
    assert!(reply.starts_with("550 5.1.1"), "{reply}");
    let (state, _, reply) = &d[&a(4)];
    assert_eq!(state, "failed");
    assert!(reply.starts_with("554 5.7.1"), "{reply}");
    let suppressed = site.suppressions();
    assert_eq!(
        suppressed.get(&a(3)).map(String::as_str),
        Some("hard_bounce")
    );
    assert_eq!(suppressed.get(&a(4)), None, "5.7.x must not suppress");
    assert_eq!(server.counts().len(), 6);

    // The server recovers; after the backoff (1 s) a later run delivers.
    std::fs::remove_file(&marker).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let second = site.run(&["send"]);
    second.assert_code(0);
    let status = site.status();
    assert_eq!(tally(&status[0]), (8, 0, 2, 0), "{status:?}");
    assert!(status[0]["finished_at"].is_string());
    assert!(status[0]["next_retry"].is_null());

    // Failures are final: later runs never offer them again.
    std::thread::sleep(Duration::from_millis(1100));
    site.run(&["send"]).assert_code(0);
    let received = server.counts();
    assert_eq!(received.len(), 8, "{received:?}");
    assert!(received.values().all(|&n| n == 1), "{received:?}");
    assert_eq!(received.get(&a(3)), None);
    assert_eq!(received.get(&a(4)), None);
    let attempts = server.rcpt_attempts();
    assert_eq!(attempts.get(&a(3)), Some(&1), "550 retried: {attempts:?}");
    assert_eq!(attempts.get(&a(4)), Some(&1), "5.7.1 retried: {attempts:?}");
    assert_eq!(attempts.get(&a(1)), Some(&2), "{attempts:?}");

    // The next issue leaves the suppressed address out, not the 5.7.1 one.
    let next = site.run_at(LATER, &["send"]);
    next.assert_code(0);
    let status = site.status();
    assert_eq!(status.len(), 2);
    assert_eq!(tally(&status[1]), (8, 0, 1, 0), "{status:?}");
    let d = site.deliveries(status[1]["id"].as_str().unwrap());
    assert!(
        !d.contains_key(&a(3)),
        "a suppressed address got a delivery"
    );
    assert_eq!(d[&a(4)].0, "failed");
    assert_eq!(server.rcpt_attempts().get(&a(3)), Some(&1));
}

/// Must show 3: a connection dropped at the end of DATA mid-batch loses
/// nobody and duplicates nobody.
#[test]
fn a_connection_dropped_mid_batch_loses_nobody_and_duplicates_nobody() {
    let server = FaultServer::start(&["--drop-after", "25"]);
    let site = Site::new(
        "send-drop",
        60,
        "per_second = 0\nretry_base_seconds = 1",
        &format!("url = \"{}\"", server.url()),
    );
    let first = site.run(&["send", "--include-existing"]);
    first.assert_code(2);
    let status = site.status();
    assert_eq!(tally(&status[0]), (59, 1, 0, 0), "{status:?}");
    let error = status[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("connection lost during end of data"),
        "{error}"
    );
    assert_eq!(server.counts().len(), 59);

    std::thread::sleep(Duration::from_millis(2100));
    site.run(&["send"]).assert_code(0);
    let status = site.status();
    assert_eq!(tally(&status[0]), (60, 0, 0, 0), "{status:?}");
    let received = server.counts();
    assert_eq!(received.len(), 60, "nobody lost");
    assert!(
        received.values().all(|&n| n == 1),
        "nobody twice: {received:?}"
    );
}

/// Must show 4: `kill -9` at 20 random moments of a 1,000-recipient send,
/// each followed by another `send`: nobody lost, at most one duplicate per
/// kill, and the killed runs' locks never block the next one.
#[test]
fn kill_9_at_twenty_random_moments_loses_nobody_and_repeats_at_most_one_per_kill() {
    require_postfix();
    const KILLS: usize = 20;
    const N: usize = 1000;
    let seed = std::env::var("PRESSROOM_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64);
    let mut rng = Rng(seed | 1);
    let site = Site::new(
        "send-kill",
        N,
        "concurrency = 1\nper_second = 0",
        &format!("url = \"{POSTFIX_PLAIN}\""),
    );
    let _cleanup = MaildirCleanup(site.domain.clone());
    let logs = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let sent_now = || {
        site.status()
            .first()
            .map(|i| tally(i).0 as usize)
            .unwrap_or(0)
    };

    // Per kill: (delay ms, ledger sent, copies Postfix delivered, copies
    // delivered but not recorded as sent that this run added). Copies minus
    // recorded sends counts the messages the server took but the ledger
    // never heard of; each is sent once more by a later run, so at the end
    // it is exactly the number of extra copies. A killed run can add at
    // most one (concurrency 1: one message in flight).
    let mut kills: Vec<(u64, usize, usize, usize)> = Vec::new();
    // The fastest rate seen so far, in messages per ms of a run's life
    // (start-up included), guessed at one per ms before the first run.
    // Each kill's delay is capped so that, at that rate, the runs still to
    // come find work left: a faster sender must not finish the list before
    // the last kill.
    let mut rate: Option<f64> = None;
    for k in 0..KILLS {
        let left = N.saturating_sub(sent_now()) as f64;
        let budget = (left / (KILLS - k + 1) as f64 / rate.unwrap_or(1.0)) as u64;
        let delay = 20 + rng.next() % budget.clamp(1, 381);
        let log = logs.path().join(format!("run-{k}.log"));
        // --include-existing on every run: a kill can land before the
        // first run committed its baseline, and on a ledger that is no
        // longer fresh the flag does nothing.
        let (mut command, _) = site.command(NOW, &["send", "--include-existing"]);
        let mut child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let finished = child.try_wait().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let said = std::fs::read_to_string(&log).unwrap();
        assert!(
            !said.contains("another send is running"),
            "seed {seed}, run {k}: a killed run's lock blocked this one:\n{said}"
        );
        assert!(
            finished.is_none(),
            "seed {seed}, run {k} finished before its kill at {delay} ms: the test must kill runs that are sending\n{said}"
        );
        std::thread::sleep(Duration::from_millis(100));
        let copies: usize = settle_maildir(&site.domain, 0, Duration::from_secs(30))
            .values()
            .sum();
        let sent = sent_now();
        let unrecorded_before: usize = kills.iter().map(|k| k.3).sum();
        let unrecorded = copies.checked_sub(sent).unwrap_or_else(|| {
            panic!("seed {seed}, kill {k}: the ledger says {sent} sent but Postfix has {copies} copies")
        });
        let added = unrecorded.checked_sub(unrecorded_before).unwrap_or_else(|| {
            panic!("seed {seed}, kill {k}: {unrecorded} unrecorded copies, fewer than the {unrecorded_before} before: {kills:?}")
        });
        let before = kills.last().map_or(0, |k| k.1);
        let observed = sent.saturating_sub(before) as f64 / delay as f64;
        rate = Some(rate.map_or(observed, |r| r.max(observed)).max(0.01));
        kills.push((delay, sent, copies, added));
        assert!(
            added <= 1,
            "seed {seed}: kill {k} left {added} messages accepted but not recorded: {kills:?}"
        );
    }
    let killed_at = started.elapsed();

    let mut last = None;
    for _ in 0..5 {
        let run = site.run(&["send", "--include-existing"]);
        assert!(
            !run.stderr.contains("another send is running"),
            "seed {seed}: a stale lock blocked the run after the kills\n{run}"
        );
        let done = run.code == 0;
        last = Some(run);
        if done {
            break;
        }
    }
    let last = last.unwrap();
    last.assert_code(0);
    let counts_by_rcpt = settle_maildir(&site.domain, N, Duration::from_secs(60));
    let missing: Vec<String> = (0..N)
        .map(|i| site.addr(i))
        .filter(|a| !counts_by_rcpt.contains_key(a))
        .collect();
    assert!(missing.is_empty(), "seed {seed}: lost {missing:?}");
    let total: usize = counts_by_rcpt.values().sum();
    let extra = total - N;
    let predicted: usize = kills.iter().map(|k| k.3).sum();
    let twice: Vec<(&String, &usize)> = counts_by_rcpt.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "kill -9 (seed {seed}): {KILLS} kills in {killed_at:.1?}, total {:.1?}; extra copies {extra} (predicted {predicted}); per kill (delay ms, ledger sent, copies delivered, unrecorded copies added): {kills:?}; duplicated: {twice:?}",
        started.elapsed()
    );
    assert!(
        extra <= KILLS,
        "seed {seed}: {extra} extra copies for {KILLS} kills: {twice:?}"
    );
    assert_eq!(
        extra, predicted,
        "seed {seed}: the extra copies are not the messages left unrecorded by the kills: {kills:?}"
    );
    let status = site.status();
    assert_eq!(status.len(), 1, "seed {seed}: {status:?}");
    assert_eq!(
        tally(&status[0]),
        (N as u64, 0, 0, 0),
        "seed {seed}: {status:?}"
    );
}

/// Must show 5: a second `send` while one runs exits 2 with "another send
/// is running" and sends nothing.
#[test]
fn an_overlapping_second_send_exits_2_and_sends_nothing() {
    let server = FaultServer::start(&[]);
    // 10 messages at 2 a second: the first run holds the lock for ~4 s.
    let site = Site::new(
        "send-overlap",
        10,
        "per_second = 2",
        &format!("url = \"{}\"", server.url()),
    );
    let (mut command, _) = site.command(NOW, &["send", "--include-existing"]);
    let first = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.received().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first send never started sending"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = site.run(&["send"]);
    let received_meanwhile = server.received().len();
    second.assert_code(2);
    assert!(
        second.stderr.contains("another send is running"),
        "{second}"
    );
    assert!(
        received_meanwhile < 10,
        "the first run was over before the second started; slow it down"
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let received = server.counts();
    assert_eq!(received.len(), 10);
    assert!(received.values().all(|&n| n == 1), "{received:?}");
    let status = site.status();
    assert_eq!(status.len(), 1);
    assert_eq!(tally(&status[0]), (10, 0, 0, 0));
}

/// `--dry-run` renders and counts, sends nothing and leaves the ledger
/// as it was (absent, or byte for byte).
#[test]
fn dry_run_counts_and_changes_nothing() {
    let server = FaultServer::start(&[]);
    let site = Site::new(
        "send-dry",
        5,
        "per_second = 0",
        &format!("url = \"{}\"", server.url()),
    );
    let dry = site.run(&["send", "--dry-run", "--include-existing"]);
    dry.assert_code(0);
    assert!(
        dry.stderr
            .contains("(8 article(s)) would go to 5 subscriber(s)"),
        "{dry}"
    );
    assert!(
        !site.path(".pressroom").exists(),
        "a dry run created the ledger"
    );
    let dry = site.run(&["send", "--dry-run"]);
    dry.assert_code(0);
    assert!(dry.stderr.contains("nothing new to send"), "{dry}");
    assert!(!site.path(".pressroom").exists());
    assert!(
        server.rcpt_attempts().is_empty(),
        "a dry run talked to the server"
    );

    site.run(&["send", "--include-existing"]).assert_code(0);
    assert_eq!(server.received().len(), 5);
    let before = site.ledger_files();
    assert!(before.keys().any(|p| p.ends_with("state.db")), "{before:?}");
    let dry = site.run_at(LATER, &["send", "--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stderr
            .contains("(1 article(s)) would go to 5 subscriber(s)"),
        "{dry}"
    );
    assert!(
        site.ledger_files() == before,
        "a dry run changed the ledger's files"
    );
    assert_eq!(server.received().len(), 5, "a dry run sent mail");
    assert_eq!(site.status().len(), 1);
}

/// `--test EMAIL` mails exactly one `[TEST]` copy and never touches the
/// ledger.
#[test]
fn test_send_mails_one_tagged_copy_and_leaves_the_ledger_alone() {
    require_postfix();
    let site = Site::new(
        "send-test",
        3,
        "per_second = 0",
        &format!("url = \"{POSTFIX_PLAIN}\""),
    );
    let _cleanup = MaildirCleanup(site.domain.clone());
    let me = format!("me@{}", site.domain);

    let test = site.run(&["send", "--test", &me]);
    test.assert_code(0);
    let counts = settle_maildir(&site.domain, 1, Duration::from_secs(30));
    assert_eq!(counts, HashMap::from([(me.clone(), 1)]));
    assert!(
        !site.path(".pressroom").exists(),
        "--test created the ledger"
    );
    let (_, files) = crate::mail::maildir_counts(&site.domain);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let subject = header(&text, "Subject").unwrap();
    assert!(subject.starts_with("[TEST] "), "{subject}");

    site.run(&["send", "--include-existing"]).assert_code(0);
    let before = site.ledger_files();
    site.run(&["send", "--test", &me]).assert_code(0);
    assert!(site.ledger_files() == before, "--test changed the ledger");
    let counts = settle_maildir(&site.domain, 5, Duration::from_secs(30));
    assert_eq!(counts.get(&me), Some(&2));
    assert!(
        (0..3).all(|i| counts.get(&site.addr(i)) == Some(&1)),
        "{counts:?}"
    );
    let status = site.status();
    assert_eq!(tally(&status[0]), (3, 0, 0, 0));
}

/// `unsubscribe EMAIL` and `unsubscribe --token` (from a delivered
/// message's List-Unsubscribe; a tampered one is refused): neither address
/// is mailed in the next issue.
#[test]
fn unsubscribed_addresses_are_not_mailed_in_the_next_issue() {
    let server = FaultServer::start(&[]);
    let site = Site::new(
        "send-unsub",
        5,
        "per_second = 0",
        &format!("url = \"{}\"", server.url()),
    );
    site.run(&["send", "--include-existing"]).assert_code(0);
    let received = server.received();
    assert_eq!(received.len(), 5);
    let token_of = |i: usize| -> String {
        let (_, data) = received
            .iter()
            .find(|(to, _)| to == &[site.addr(i)])
            .unwrap();
        let list = header(data, "List-Unsubscribe").expect("a List-Unsubscribe header");
        let start = list
            .find("token=")
            .unwrap_or_else(|| panic!("no token in {list}"))
            + 6;
        list[start..].split(['>', '&']).next().unwrap().to_owned()
    };
    let (t0, t1) = (token_of(0), token_of(1));
    let (_, tag1) = t1.split_once('.').unwrap();
    let (address0, _) = t0.split_once('.').unwrap();

    // Tampered: another address with r1's tag, and a changed tag.
    let forged = format!("{address0}.{tag1}");
    let mut changed = t1.clone().into_bytes();
    let i = t1.find('.').unwrap() + 1;
    changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).unwrap();
    for bad in [&forged, &changed] {
        let run = site.run(&["unsubscribe", "--token", bad]);
        run.assert_code(1);
        assert!(run.stderr.contains("token is not valid"), "{run}");
    }
    assert!(site.suppressions().is_empty());

    let run = site.run(&["unsubscribe", "--token", &t1]);
    run.assert_code(0);
    assert!(run.stderr.contains(&site.addr(1)), "{run}");
    let upper = site.addr(2).to_uppercase();
    site.run(&["unsubscribe", &upper]).assert_code(0);
    let suppressed = site.suppressions();
    assert_eq!(suppressed.len(), 2, "{suppressed:?}");
    assert_eq!(suppressed[&site.addr(1)], "unsubscribed");
    assert_eq!(suppressed[&site.addr(2)], "unsubscribed");

    site.run_at(LATER, &["send"]).assert_code(0);
    let status = site.status();
    assert_eq!(status.len(), 2);
    assert_eq!(tally(&status[1]), (3, 0, 0, 0), "{status:?}");
    let received = server.counts();
    assert_eq!(received[&site.addr(0)], 2);
    assert_eq!(received[&site.addr(1)], 1, "mailed after unsubscribing");
    assert_eq!(received[&site.addr(2)], 1, "mailed after unsubscribing");
    assert_eq!(received[&site.addr(3)], 2);
}

/// STARTTLS + AUTH against Postfix's submission port through the binary,
/// with `-v` everywhere: neither the SMTP password nor PRESSROOM_SECRET
/// shows up in any output or any file of the site; the ledger is 0600.
#[test]
fn secrets_never_leak_and_the_ledger_is_private() {
    use base64::Engine as _;
    require_postfix();
    let mut site = Site::new(
        "send-secrets",
        3,
        "per_second = 0",
        // The certificate is copied into the site: its system path contains
        // the password's words, which would make the file scan meaningless.
        "url = \"smtp://pressroom%40localhost@localhost:2587\"\nca_file = \"postfix-ca.pem\"",
    );
    std::fs::copy(POSTFIX_CERT, site.path("postfix-ca.pem")).unwrap();
    let _cleanup = MaildirCleanup(site.domain.clone());
    site.set_env("PRESSROOM_SMTP_PASSWORD", Some(POSTFIX_PASSWORD));
    let b64 = base64::engine::general_purpose::STANDARD;
    let secrets = [
        POSTFIX_PASSWORD.to_owned(),
        SECRET.to_owned(),
        b64.encode(POSTFIX_PASSWORD),
        b64.encode(format!("\0{POSTFIX_USER}\0{POSTFIX_PASSWORD}")),
        b64.encode(SECRET),
    ];
    let check = |run: &Run| {
        for s in &secrets {
            assert!(!output(run).contains(s.as_str()), "{s:?} leaked:\n{run}");
        }
    };

    let mut runs = vec![
        site.run(&["-v", "check"]),
        site.run(&["-v", "preview"]),
        site.run(&["-v", "send", "--dry-run", "--include-existing"]),
        site.run(&["-v", "send", "--include-existing"]),
    ];
    runs[3].assert_code(0);
    // `-v` says once per reader what became of their message.
    for i in 0..3 {
        let lines: Vec<&str> = runs[3]
            .stderr
            .lines()
            .filter(|l| l.contains(&site.addr(i)))
            .collect();
        assert!(
            lines.len() == 1 && lines[0].contains(": sent: 250"),
            "{lines:?}\n{}",
            runs[3]
        );
    }
    let counts = settle_maildir(&site.domain, 3, Duration::from_secs(30));
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let (_, files) = crate::mail::maildir_counts(&site.domain);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.contains("with ESMTPSA"),
        "not sent over TLS with AUTH:\n{text}"
    );
    runs.push(site.run(&["-v", "send", "--test", &site.addr(0)]));
    runs.push(site.run(&["-v", "status"]));
    runs.push(site.run(&["-v", "status", "--json"]));
    runs.push(site.run(&["-v", "unsubscribe", &site.addr(2)]));
    runs.push(site.run_at(LATER, &["-v", "send"]));
    // A wrong password is not echoed either.
    site.set_env("PRESSROOM_SMTP_PASSWORD", Some("wrong-Pa55word-7d1c"));
    let wrong = site.run_at(LATER, &["-v", "send", "--test", &site.addr(0)]);
    wrong.assert_code(2);
    assert!(wrong.stderr.contains("535"), "{wrong}");
    assert!(!output(&wrong).contains("wrong-Pa55word-7d1c"), "{wrong}");
    // The commands that never mail see the secrets in their environment
    // too; their files are scanned below with the rest of the site.
    runs.push(site.run_at(LATER, &["-v", "build"]));
    runs.push(site.run_at(LATER, &["-v", "new", "A Title Written With Secrets Set"]));
    let fresh = site.path("fresh-site");
    runs.push(site.run_at(LATER, &["-v", "init", fresh.to_str().unwrap()]));
    assert!(fresh.join("config.toml").is_file(), "init wrote no site");
    assert!(site.path("public").is_dir(), "build wrote nothing");
    for run in &runs {
        assert!(run.code == 0, "{run}");
        check(run);
    }
    assert!(site.path("preview").is_dir(), "preview wrote nothing");

    for file in files_under(site.root()) {
        let bytes = std::fs::read(&file).unwrap();
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s:?} is in {}",
                file.display()
            );
        }
    }
    use std::os::unix::fs::PermissionsExt;
    for file in files_under(&site.path(".pressroom")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("state.db") {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} has mode {mode:o}", file.display());
        }
    }
    let status = site.status();
    assert_eq!(status.len(), 2);
    assert_eq!(tally(&status[1]), (2, 0, 0, 0), "{status:?}");
}

/// Runs the binary under `strace -f`, recording socket calls; returns the
/// run and the trace.
fn traced(site: &Site, args: &[&str]) -> (Run, String) {
    let strace = crate::common::require_tool("strace", "strace");
    let trace = tempfile::NamedTempFile::new().unwrap();
    let (command, shown) = site.command(NOW, args);
    let mut traced = Command::new(&strace);
    traced
        .args(["-f", "-qq", "-e", "trace=socket,connect,sendto", "-o"])
        .arg(trace.path())
        .arg(command.get_program())
        .args(command.get_args())
        .current_dir(std::env::temp_dir());
    for (k, v) in command.get_envs() {
        match v {
            Some(v) => traced.env(k, v),
            None => traced.env_remove(k),
        };
    }
    let out = traced.output().unwrap();
    let run = Run {
        args: shown,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, std::fs::read_to_string(trace.path()).unwrap())
}

/// The lines of an strace log that open or use a network socket.
fn network_calls(trace: &str) -> Vec<&str> {
    trace
        .lines()
        .filter(|l| l.contains("AF_INET") || l.contains("connect("))
        .collect()
}

/// AUTH over plaintext to a host that is not local is refused, exit 1,
/// before any connection: no network socket is even opened (strace), so
/// no DNS lookup and no byte of the password.
#[test]
fn plaintext_auth_to_a_remote_host_is_refused_before_any_connection() {
    let mut site = Site::new(
        "send-plain",
        2,
        "",
        "url = \"smtp://user@mail.invalid:25?tls=none\"",
    );
    site.set_env("PRESSROOM_SMTP_PASSWORD", Some("plain-Pa55word-92f0"));
    for args in [
        &["send", "--include-existing"][..],
        &["send", "--test", "me@example.com"][..],
    ] {
        let (run, trace) = traced(&site, args);
        run.assert_code(1);
        assert!(
            run.stderr
                .contains("refusing to send the password (AUTH) in plaintext to mail.invalid"),
            "{run}"
        );
        assert!(!output(&run).contains("plain-Pa55word-92f0"), "{run}");
        let network = network_calls(&trace);
        assert!(
            network.is_empty(),
            "it touched the network:\n{}",
            network.join("\n")
        );
        assert!(!site.path(".pressroom").exists());
    }
    // Same through PRESSROOM_SMTP_URL over a harmless config.
    site.write(
        "config.toml",
        std::fs::read_to_string(site.path("config.toml"))
            .unwrap()
            .replace("smtp://user@mail.invalid:25?tls=none", POSTFIX_PLAIN),
    );
    site.set_env(
        "PRESSROOM_SMTP_URL",
        Some("smtp://user@mail.invalid?tls=none"),
    );
    let run = site.run(&["send", "--include-existing"]);
    run.assert_code(1);
    assert!(run.stderr.contains("in plaintext to mail.invalid"), "{run}");
    assert!(!site.path(".pressroom").exists());

    // The control: strace does see a run that connects.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://127.0.0.1:{closed}?tls=none");
    site.set_env("PRESSROOM_SMTP_URL", Some(&url));
    site.set_env("PRESSROOM_SMTP_PASSWORD", None);
    let (run, trace) = traced(&site, &["send", "--test", "me@example.com"]);
    run.assert_code(2);
    assert!(
        network_calls(&trace)
            .iter()
            .any(|l| l.contains(&format!("htons({closed})"))),
        "strace did not record the connection attempt:\n{trace}"
    );
}

/// Bad input exits 1 and names the problem; an SMTP server that refuses
/// connections exits 2 and fails nobody.
#[test]
fn bad_input_exits_1_and_a_refused_connection_exits_2_failing_nobody() {
    let nothing = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut site = Site::new(
        "send-bad",
        4,
        "per_second = 0",
        &format!("url = \"smtp://127.0.0.1:{nothing}?tls=none\""),
    );
    let csv = std::fs::read_to_string(site.path("subscribers.csv")).unwrap();

    std::fs::remove_file(site.path("subscribers.csv")).unwrap();
    let run = site.run(&["send"]);
    run.assert_code(1);
    // Named relative to the site folder, as articles are.
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("subscribers.csv: no such file; create")),
        "{run}"
    );

    site.write("subscribers.csv", "name,city\nAda,Berlin\n");
    let run = site.run(&["send"]);
    run.assert_code(1);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("subscribers.csv:1:")),
        "{run}"
    );
    assert!(run.stderr.contains("email"), "{run}");
    site.write("subscribers.csv", &csv);

    site.set_env("PRESSROOM_SECRET", None);
    let run = site.run(&["send"]);
    run.assert_code(1);
    assert!(run.stderr.contains("PRESSROOM_SECRET is not set"), "{run}");
    site.set_env("PRESSROOM_SECRET", Some("short"));
    let run = site.run(&["send"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("PRESSROOM_SECRET is too short"),
        "{run}"
    );
    site.set_env("PRESSROOM_SECRET", Some(SECRET));
    assert!(!site.path(".pressroom").exists());

    for _ in 0..2 {
        let run = site.run(&["send", "--include-existing"]);
        run.assert_code(2);
        assert!(run.stderr.contains("cannot connect"), "{run}");
        let status = site.status();
        assert_eq!(status.len(), 1);
        assert_eq!(
            tally(&status[0]),
            (0, 0, 0, 4),
            "nobody may fail: {status:?}"
        );
    }
}

/// A digest template whose line 7 compares a subscriber column.
const PLAN_DIGEST_HTML: &str = r#"{% extends "base.html" %}
{% block content %}
        <tr>
          <td class="article">
            <p>Dear {{ recipient.name }},</p>
            {#- the reader's plan decides -#}
            {% if recipient.fields.plan == "vip" %}<p>VIP EDITION</p>{% endif %}
            {% for a in articles %}<p>{{ a.title }}</p>{% endfor %}
          </td>
        </tr>
{% endblock %}
"#;
const PLAN_DIGEST_TXT: &str = "{% if recipient.fields.plan == \"vip\" %}VIP EDITION\n{% endif %}Dear {{ recipient.name }}\n{% for a in articles %}{{ a.title }}\n{% endfor %}\n{% include \"footer.txt\" %}\n";

/// A message file with its quoted-printable soft line breaks removed (the
/// phrases looked for are plain ASCII).
fn unfolded(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "")
}

/// Regression test for a bug: a template that read a subscriber column
/// (`recipient.fields.plan`, with a `plan` column in every row) stopped
/// `send` with `templates/digest.html:7: undefined value`, because the
/// trial render before sending used a sample reader without the list's
/// columns. The trial now has them; each reader gets their plan's text,
/// the `vip` rows included though they come last.
#[test]
fn a_template_that_reads_a_subscriber_column_sends_each_reader_their_variant() {
    require_postfix();
    let site = Site::new(
        "send-column",
        0,
        "per_second = 0",
        &format!("url = \"{POSTFIX_PLAIN}\""),
    );
    let _cleanup = MaildirCleanup(site.domain.clone());
    std::fs::create_dir_all(site.path("templates")).unwrap();
    site.write("templates/digest.html", PLAN_DIGEST_HTML);
    site.write("templates/digest.txt", PLAN_DIGEST_TXT);
    let mut csv = String::from("email,name,plan\n");
    for i in 0..6 {
        let plan = if i >= 4 { "vip" } else { "free" };
        csv.push_str(&format!("{},Reader {i},{plan}\n", site.addr(i)));
    }
    site.write("subscribers.csv", csv);

    // The preview's sample reader has the list's columns too.
    let preview = site.run(&["preview", "--out", "preview"]);
    preview.assert_code(0);
    let vip = site.run(&["preview", "--to", &site.addr(5), "--out", "vip"]);
    vip.assert_code(0);
    let text = files_under(&site.path("vip"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "txt"))
        .expect("a .txt preview");
    let text = std::fs::read_to_string(text).unwrap();
    assert!(text.starts_with("VIP EDITION\nDear Reader 5\n"), "{text}");

    let run = site.run(&["send", "--include-existing"]);
    run.assert_code(0);
    let counts = settle_maildir(&site.domain, 6, Duration::from_secs(60));
    assert_eq!(counts.len(), 6, "{counts:?}");
    let (_, files) = crate::mail::maildir_counts(&site.domain);
    assert_eq!(files.len(), 6);
    for file in files {
        let message = unfolded(&file);
        let to = header(&message, "To").unwrap();
        let vip = to.contains(&site.addr(4)) || to.contains(&site.addr(5));
        assert_eq!(
            message.matches("VIP EDITION").count(),
            if vip { 2 } else { 0 },
            "{to}: both parts say VIP EDITION only for the vip rows"
        );
    }
    assert_eq!(tally(&site.status()[0]), (6, 0, 0, 0));
}

/// A column the templates need and the list lacks: `send` (and `--dry-run`
/// and `preview`) exit 1 naming the row, the column and the template line,
/// and nothing is sent or recorded.
#[test]
fn a_column_the_list_lacks_is_named_with_its_row_and_nothing_is_sent() {
    let nothing = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = Site::new(
        "send-no-column",
        3,
        "per_second = 0",
        &format!("url = \"smtp://127.0.0.1:{nothing}?tls=none\""),
    );
    std::fs::create_dir_all(site.path("templates")).unwrap();
    site.write("templates/digest.html", PLAN_DIGEST_HTML);

    let run = site.run(&["send", "--include-existing"]);
    run.assert_code(1);
    let wanted = format!("subscribers.csv:2 ({}): no `plan` value", site.addr(0));
    assert!(run.stderr.contains(&wanted), "{run}");
    assert!(
        run.stderr
            .contains("templates/digest.html:7: undefined value"),
        "{run}"
    );
    assert!(run.stderr.contains("add a `plan` column"), "{run}");
    assert!(!run.stderr.contains("cannot connect"), "{run}");
    assert!(site.status().is_empty(), "no issue may be recorded");

    let dry = site.run(&["send", "--dry-run", "--include-existing"]);
    dry.assert_code(1);
    assert!(dry.stderr.contains("no `plan` value"), "{dry}");
    assert!(dry.stderr.contains("subscribers.csv ("), "{dry}");

    let preview = site.run(&["preview", "--out", "preview"]);
    preview.assert_code(1);
    assert!(
        preview
            .stderr
            .contains("templates/digest.html:7: undefined value")
            && preview.stderr.contains("has no `plan`"),
        "{preview}"
    );
}
