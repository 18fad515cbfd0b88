//! `pressroom bounces` through the real binary, with real mail: issues
//! are sent through Postfix (`.ci/mail-servers`) with `[bounces] address`
//! set, so every message leaves with a VERP envelope sender; Postfix
//! accepts mail for `*.gone.test` and then bounces it itself, writing a
//! delivery status notification to that VERP address, which it delivers
//! into its `returns` Maildir. The reports the other tests feed in (an
//! mbox, stdin, a Maildir) carry the VERP addresses and Message-IDs
//! Postfix actually received, read back from its catch-all Maildir.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{copy_dir, Run, BIN, NOW, REPO};
use crate::mail::{maildir_counts, require_postfix, settle_maildir, MaildirCleanup};

/// A time at which the sample's 2030 article is published too.
const LATER: &str = "2030-02-01T00:00:00Z";
const SECRET: &str = "bounce-tag-hmac-secret-8c41f0e2a7";
const POSTFIX_PLAIN: &str = "smtp://127.0.0.1:2525?tls=none";
/// Where Postfix delivers mail for `*.returns.test` (the VERP addresses).
const RETURNS: &str = "/var/mail/vhosts/returns";

/// The sample site with `[send]`, `[smtp]` (Postfix), `[bounces]` and
/// readers `r{i}@TAG.example.com`; `gone@TAG.gone.test` when asked.
struct Site {
    dir: tempfile::TempDir,
    tag: String,
    readers: Vec<String>,
}

impl Site {
    fn new(test: &str, n: usize, gone: bool) -> Site {
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let tag = format!("{test}-{}-{nanos}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("prbounce-")
            .tempdir()
            .unwrap();
        let repo = Path::new(REPO);
        let mut config = std::fs::read_to_string(repo.join("config.toml")).unwrap();
        config.push_str(&format!(
            "\n[send]\nper_second = 0\n\n[smtp]\nurl = \"{POSTFIX_PLAIN}\"\n\n[bounces]\naddress = \"bounces@{tag}.returns.test\"\n"
        ));
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        copy_dir(&repo.join("content"), &dir.path().join("content"));
        let mut readers: Vec<String> = (0..n).map(|i| format!("r{i}@{tag}.example.com")).collect();
        if gone {
            readers.push(format!("gone@{tag}.gone.test"));
        }
        let mut csv = String::from("email,name\n");
        for r in &readers {
            csv.push_str(&format!("{r},\n"));
        }
        std::fs::write(dir.path().join("subscribers.csv"), csv).unwrap();
        Site { dir, tag, readers }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn domain(&self) -> String {
        format!("{}.example.com", self.tag)
    }

    fn returns_domain(&self) -> String {
        format!("{}.returns.test", self.tag)
    }

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
            .env_remove("PRESSROOM_SMTP_URL")
            .env_remove("PRESSROOM_SMTP_PASSWORD")
            .env("PRESSROOM_SECRET", SECRET)
            .env("NO_COLOR", "1");
        let shown = all
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        (command, shown)
    }

    fn run_with(&self, now: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let (mut command, args) = self.command(now, args);
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(bytes) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(bytes).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        Run {
            args,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(NOW, args, None)
    }

    fn ledger(&self) -> PathBuf {
        self.root().join(".pressroom/state.db")
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.ledger(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }

    /// recipient → (reason, status, reply).
    fn suppressions(&self) -> HashMap<String, (String, Option<String>, Option<String>)> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT recipient, reason, status, reply FROM suppressions")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn status(&self) -> Vec<Value> {
        let run = self.run(&["status", "--json"]);
        run.assert_code(0);
        serde_json::from_str::<Value>(&run.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Sends the first issue to everyone and returns, per reader Postfix
    /// delivered to, the envelope sender (`Return-Path`) and Message-ID
    /// it received.
    fn send_first_issue(&self) -> HashMap<String, (String, String)> {
        self.run(&["send", "--include-existing"]).assert_code(0);
        let delivered = self
            .readers
            .iter()
            .filter(|r| r.ends_with(".example.com"))
            .count();
        settle_maildir(&self.domain(), delivered, Duration::from_secs(60));
        let mut out = HashMap::new();
        for path in maildir_counts(&self.domain()).1 {
            let text = std::fs::read_to_string(&path).unwrap();
            let head = |name: &str| {
                text.lines()
                    .take_while(|l| !l.is_empty())
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| {
                        v.trim()
                            .trim_start_matches('<')
                            .trim_end_matches('>')
                            .to_owned()
                    })
                    .unwrap_or_else(|| panic!("no {name} in {}", path.display()))
            };
            out.insert(
                head("Delivered-To: ").to_lowercase(),
                (head("Return-Path: "), head("Message-ID: ")),
            );
        }
        assert_eq!(out.len(), delivered, "{out:?}");
        out
    }
}

/// A delivery status notification as Postfix writes one, to `verp`.
fn dsn(id: &str, verp: &str, recipient: &str, status: &str, message_id: &str) -> String {
    format!(
        "Delivered-To: {verp}\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
         To: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-Id: <{id}>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
         --b1\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n\
         Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected\r\n\r\n\
         --b1\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         From: news@dispatch.example.com\r\nTo: {recipient}\r\nMessage-ID: <{message_id}>\r\n\r\n--b1--\r\n"
    )
}

/// An abuse report (ARF) from a mailbox provider's feedback loop, which
/// names the original message only (no VERP address).
fn arf(id: &str, recipient: &str, message_id: &str) -> String {
    format!(
        "From: fbl@isp.example.net\r\nTo: abuse@dispatch.example.com\r\nSubject: complaint\r\n\
         Message-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"f1\"\r\n\r\n\
         --f1\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n\r\n\
         --f1\r\nContent-Type: message/feedback-report\r\n\r\n\
         Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {recipient}\r\n\r\n\
         --f1\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         From: news@dispatch.example.com\r\nTo: {recipient}\r\nMessage-ID: <{message_id}>\r\n\r\n--f1--\r\n"
    )
}

const NOT_A_REPORT: &str =
    "From: friend@example.org\r\nTo: bounces@dispatch.example.com\r\nSubject: hello\r\nMessage-ID: <hello-1@example.org>\r\n\r\nJust saying hi.\r\n";

/// The DSN Postfix delivered for `domain`'s VERP addresses, once there.
fn wait_for_dsn(domain: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    let suffix = format!("@{domain}");
    loop {
        for sub in ["new", "cur"] {
            let Ok(dir) = std::fs::read_dir(Path::new(RETURNS).join(sub)) else {
                continue;
            };
            for entry in dir.filter_map(Result::ok) {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let to = text
                    .lines()
                    .take_while(|l| !l.is_empty())
                    .find_map(|l| l.strip_prefix("Delivered-To: "));
                if to.is_some_and(|t| t.trim().to_lowercase().ends_with(&suffix)) {
                    return entry.path();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no DSN for {domain} in {RETURNS} within 60 s; see /var/log/postfix.log"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn maildir(root: &Path) -> PathBuf {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    root.to_owned()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The round trip a relay makes: pressroom sends through Postfix, Postfix
/// accepts the message for a mailbox that does not exist, bounces it to
/// the VERP envelope sender and delivers that DSN into a Maildir;
/// `bounces --maildir` suppresses the reader, and the next issue does not
/// mail them.
#[test]
fn a_bounce_through_postfix_suppresses_the_reader_and_the_next_send_skips_them() {
    require_postfix();
    let site = Site::new("bounce-trip", 2, true);
    let _cleanup = MaildirCleanup(site.domain());
    let gone = format!("gone@{}.gone.test", site.tag);
    let sent = site.send_first_issue();
    println!(
        "postfix round trip: sent issue 1 to {} reader(s) through {POSTFIX_PLAIN}, Postfix accepted all (one of them, {gone}, to bounce)",
        site.readers.len()
    );
    let status = site.status();
    assert_eq!(status[0]["counts"]["sent"], 3, "{status:?}");
    let (verp, _) = &sent[&format!("r0@{}", site.domain())];
    assert!(
        verp.starts_with("bounces+") && verp.ends_with(&format!("@{}", site.returns_domain())),
        "envelope sender {verp}"
    );
    let local = verp.split('@').next().unwrap();
    assert!(local.len() <= 64, "{local}");

    // Postfix's DSN, moved (as a mail client would) into this test's
    // own Maildir, so concurrent runs never take each other's.
    let delivered = wait_for_dsn(&site.returns_domain());
    let ours = tempfile::tempdir().unwrap();
    let box_dir = maildir(ours.path());
    let file = delivered.file_name().unwrap().to_owned();
    std::fs::copy(&delivered, box_dir.join("new").join(&file)).unwrap();
    std::fs::remove_file(&delivered).unwrap();
    let dsn_text = std::fs::read_to_string(box_dir.join("new").join(&file)).unwrap();
    println!(
        "postfix round trip: Postfix delivered its DSN to {} ({} bytes, {})",
        dsn_text
            .lines()
            .find_map(|l| l.strip_prefix("Delivered-To: "))
            .unwrap_or("?"),
        dsn_text.len(),
        dsn_text
            .lines()
            .find(|l| l.starts_with("Status: "))
            .unwrap_or("no Status line")
    );

    let dir = box_dir.to_str().unwrap();
    let run = site.run(&["bounces", "--maildir", dir]);
    run.assert_code(0);
    println!(
        "postfix round trip: pressroom bounces --maildir printed:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("suppressed {gone} (hard_bounce: 5.1.1")),
        "{run}"
    );
    assert!(run.stdout.contains("  hard          1"), "{run}");
    let suppressed = site.suppressions();
    assert_eq!(suppressed.len(), 1, "{suppressed:?}");
    let (reason, status_code, reply) = &suppressed[&gone];
    assert_eq!(
        (reason.as_str(), status_code.as_deref()),
        ("hard_bounce", Some("5.1.1"))
    );
    assert!(
        reply.as_deref().is_some_and(|r| r.contains("User unknown")),
        "{reply:?}"
    );
    // Marked processed: moved to cur/ with the seen flag, bytes intact.
    assert!(files(&box_dir.join("new")).is_empty());
    let marked = files(&box_dir.join("cur"));
    assert_eq!(marked, [format!("{}:2,S", file.to_string_lossy())]);
    assert_eq!(
        std::fs::read_to_string(box_dir.join("cur").join(&marked[0])).unwrap(),
        dsn_text
    );
    let again = site.run(&["bounces", "--maildir", dir]);
    again.assert_code(0);
    assert!(again.stdout.starts_with("0 message(s) read"), "{again}");

    // The operator's view.
    let status = site.status();
    assert_eq!(status[0]["reports"]["hard_bounces"], 1, "{status:?}");
    let table = site.run(&["status"]);
    assert!(
        table
            .stdout
            .contains("bounces 1 hard, 0 soft  complaints 0"),
        "{table}"
    );
    let list = site.run(&["subscribers"]);
    list.assert_code(0);
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&gone))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        line.contains("bounced") && line.contains("hard_bounce 5.1.1"),
        "{line}"
    );

    // The next issue mails everyone but the bounced reader.
    let next = site.run_with(LATER, &["send"], None);
    next.assert_code(0);
    let status = site.status();
    assert_eq!(status.len(), 2, "{status:?}");
    assert_eq!(status[1]["counts"]["sent"], 2, "{status:?}");
    let issue = status[1]["id"].as_str().unwrap().to_owned();
    let db = site.db();
    let to_gone: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM deliveries WHERE issue_id = ?1 AND recipient = ?2",
            [&issue, &gone],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(to_gone, 0, "the bounced reader is in the next issue");
    let counts = settle_maildir(&site.domain(), 4, Duration::from_secs(60));
    assert_eq!(counts.values().sum::<usize>(), 4, "{counts:?}");
    println!(
        "postfix round trip: issue 2 went to {} reader(s); {gone} was left out",
        status[1]["counts"]["sent"]
    );

    // Reactivated by hand: active again, recorded.
    let run = site.run(&["subscribers", "reactivate", &gone]);
    run.assert_code(0);
    assert!(site.suppressions().is_empty());
    let recorded: i64 = site
        .db()
        .query_row("SELECT COUNT(*) FROM reactivations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(recorded, 1);
    site.run(&["subscribers", "reactivate", &gone])
        .assert_code(1);
}

/// An mbox of a hard bounce (VERP), a complaint (by Message-ID only), a
/// soft bounce, a report about nobody pressroom mailed and a plain
/// message: each does what its verdict says, once; reading the mbox
/// again changes nothing.
#[test]
fn an_mbox_of_reports_is_applied_once_per_report() {
    require_postfix();
    let site = Site::new("bounce-mbox", 4, false);
    let _cleanup = MaildirCleanup(site.domain());
    let sent = site.send_first_issue();
    let r = |i: usize| format!("r{i}@{}", site.domain());
    let (verp0, mid0) = &sent[&r(0)];
    let (_, mid1) = &sent[&r(1)];
    let (verp2, mid2) = &sent[&r(2)];
    let forged_verp = {
        // r3's VERP address with the last tag letter changed.
        let (verp3, _) = &sent[&r(3)];
        let at = verp3.find('@').unwrap();
        let mut bytes = verp3.clone().into_bytes();
        bytes[at - 1] = if bytes[at - 1] == b'a' { b'b' } else { b'a' };
        String::from_utf8(bytes).unwrap()
    };
    let mut mbox = String::new();
    for message in [
        dsn("dsn-1@mx.example.net", verp0, &r(0), "5.1.1", mid0),
        arf("arf-1@isp.example.net", &r(1), mid1),
        dsn("dsn-2@mx.example.net", verp2, &r(2), "4.2.2", mid2),
        dsn(
            "dsn-3@mx.example.net",
            &forged_verp,
            "someone@else.example",
            "5.1.1",
            "x@y",
        ),
        NOT_A_REPORT.to_owned(),
    ] {
        mbox.push_str("From MAILER-DAEMON Sun Nov 29 12:00:00 2026\n");
        mbox.push_str(&message.replace("\r\n", "\n"));
        mbox.push('\n');
    }
    let path = site.root().join("bounces.mbox");
    std::fs::write(&path, &mbox).unwrap();
    let run = site.run(&["bounces", "--mbox", "bounces.mbox"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("\n5 message(s) read from mbox"),
        "{run}"
    );
    for line in [
        "  hard          2",
        "  soft          1",
        "  complaint     1",
        "  not-a-report  1",
        "  suppressed    2 (1 complained, 1 hard_bounce)",
        "  unattributed  1",
        "  duplicate     0",
    ] {
        assert!(run.stdout.contains(line), "{line:?} missing\n{run}");
    }
    assert!(
        run.stdout
            .contains(&format!("suppressed {} (hard_bounce: 5.1.1", r(0))),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&format!("suppressed {} (complained", r(1))),
        "{run}"
    );
    let suppressed = site.suppressions();
    let reasons: HashMap<&str, &str> = suppressed
        .iter()
        .map(|(k, v)| (k.as_str(), v.0.as_str()))
        .collect();
    assert_eq!(
        reasons,
        HashMap::from([
            (r(0).as_str(), "hard_bounce"),
            (r(1).as_str(), "complained")
        ])
    );
    let status = site.status();
    assert_eq!(status[0]["reports"]["soft_bounces"], 1);
    assert_eq!(status[0]["reports"]["complaints"], 1);

    // The mbox is left as it was; reading it again counts nothing twice.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), mbox);
    let again = site.run(&["bounces", "--mbox", path.to_str().unwrap()]);
    again.assert_code(0);
    assert!(again.stdout.contains("  duplicate     3"), "{again}");
    assert!(again.stdout.contains("  suppressed    0"), "{again}");
    let soft: i64 = site
        .db()
        .query_row(
            "SELECT COUNT(*) FROM reports WHERE verdict = 'soft'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(soft, 1);

    let list = site.run(&["subscribers", "--csv"]);
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with(&r(1)) && l.contains(",complained,")),
        "{list}"
    );

    // A missing mbox is named.
    let missing = site.run(&["bounces", "--mbox", "nope.mbox"]);
    missing.assert_code(1);
    assert!(
        missing.stderr.contains("nope.mbox: cannot open"),
        "{missing}"
    );
}

/// `bounces -` for an MTA alias: a report is applied and exits 0; a
/// message that is no report, or no message at all, exits 0 too (a
/// non-zero status would bounce it back); a ledger another process holds
/// locked exits 75 (EX_TEMPFAIL) with nothing changed, so the MTA keeps
/// the message and retries.
#[test]
fn stdin_exits_0_for_anything_it_reads_and_75_when_it_must_try_again() {
    require_postfix();
    let site = Site::new("bounce-stdin", 2, false);
    let _cleanup = MaildirCleanup(site.domain());
    let sent = site.send_first_issue();
    let r0 = format!("r0@{}", site.domain());
    let r1 = format!("r1@{}", site.domain());
    let (verp0, mid0) = &sent[&r0];
    let (verp1, mid1) = &sent[&r1];

    for (what, bytes) in [
        ("not a report", NOT_A_REPORT.as_bytes().to_vec()),
        ("empty", Vec::new()),
        ("binary junk", (0u8..=255).cycle().take(5000).collect()),
    ] {
        let run = site.run_with(NOW, &["bounces", "-"], Some(&bytes));
        run.assert_code(0);
        assert!(
            run.stdout.contains("1 message(s) read from stdin"),
            "{what}: {run}"
        );
        assert!(run.stdout.contains("  not-a-report  1"), "{what}: {run}");
    }
    assert!(site.suppressions().is_empty());

    let report = dsn("dsn-s1@mx.example.net", verp0, &r0, "5.2.1", mid0);
    let run = site.run_with(NOW, &["bounces", "-"], Some(report.as_bytes()));
    run.assert_code(0);
    assert!(
        run.stdout
            .contains(&format!("suppressed {r0} (hard_bounce: 5.2.1")),
        "{run}"
    );

    // Another process holds the ledger's write lock past the busy timeout.
    let holder = rusqlite::Connection::open(site.ledger()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let report = dsn("dsn-s2@mx.example.net", verp1, &r1, "5.1.1", mid1);
    let run = site.run_with(NOW, &["bounces", "-"], Some(report.as_bytes()));
    assert_eq!(run.code, 75, "{run}");
    assert!(run.stderr.contains("state.db"), "{run}");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert!(!site.suppressions().contains_key(&r1));
    // The MTA's retry goes through.
    let run = site.run_with(NOW, &["bounces", "-"], Some(report.as_bytes()));
    run.assert_code(0);
    assert!(site.suppressions().contains_key(&r1));

    // A broken config.toml is a try-again-later too, with the file named.
    let config = site.root().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n[bounces.nonsense\n")).unwrap();
    let run = site.run_with(NOW, &["bounces", "-"], Some(NOT_A_REPORT.as_bytes()));
    assert_eq!(run.code, 75, "{run}");
    assert!(run.stderr.contains("config.toml"), "{run}");
    // While `--maildir` from cron says it as a problem in the input.
    let dir = tempfile::tempdir().unwrap();
    let run = site.run(&[
        "bounces",
        "--maildir",
        maildir(dir.path()).to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{run}");
}

/// Messages a Maildir holds that cannot be read as reports are named,
/// left where they are byte for byte, and make the run exit 1; the
/// others are applied and marked. `check` flags a bounce address it
/// cannot sign.
#[test]
fn unreadable_maildir_messages_are_named_and_left_in_place() {
    require_postfix();
    let site = Site::new("bounce-unreadable", 1, false);
    let _cleanup = MaildirCleanup(site.domain());
    let sent = site.send_first_issue();
    let r0 = format!("r0@{}", site.domain());
    let (verp0, mid0) = &sent[&r0];
    let dir = tempfile::tempdir().unwrap();
    let box_dir = maildir(dir.path());
    let new = box_dir.join("new");
    std::fs::write(
        new.join("1.good"),
        dsn("dsn-m1@mx", verp0, &r0, "5.1.1", mid0),
    )
    .unwrap();
    std::fs::write(new.join("2.empty"), b"").unwrap();
    std::fs::write(
        new.join("3.noheader"),
        b"\x00\x01 this is no mail message at all",
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone-target"), new.join("4.dangling")).unwrap();
    std::fs::write(box_dir.join("cur/5.old:2,S"), b"processed before").unwrap();
    let run = site.run(&["bounces", "--maildir", box_dir.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{run}");
    for name in ["new/2.empty", "new/3.noheader", "new/4.dangling"] {
        assert!(run.stderr.contains(name), "{name} not named\n{run}");
    }
    assert!(
        run.stderr.contains("3 message(s) could not be read"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&format!("suppressed {r0} (hard_bounce")),
        "{run}"
    );
    assert_eq!(files(&new), ["2.empty", "3.noheader", "4.dangling"]);
    assert_eq!(
        std::fs::read(new.join("3.noheader")).unwrap(),
        b"\x00\x01 this is no mail message at all"
    );
    assert_eq!(files(&box_dir.join("cur")), ["1.good:2,S", "5.old:2,S"]);
    assert_eq!(
        std::fs::read(box_dir.join("cur/5.old:2,S")).unwrap(),
        b"processed before"
    );

    // No Maildir there: named.
    let run = site.run(&["bounces", "--maildir", "/nonexistent/box"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("/nonexistent/box/cur: no such folder"),
        "{run}"
    );

    // check: the bounce address needs PRESSROOM_SECRET, and room for the tag.
    let (mut command, _) = site.command(NOW, &["check"]);
    let out = command.env_remove("PRESSROOM_SECRET").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bounces.address: bounce addresses are signed with PRESSROOM_SECRET"),
        "{stderr}"
    );
    let config = site.root().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "address = \"bounces@",
            &format!("address = \"{}@", "b".repeat(40)),
        ),
    )
    .unwrap();
    let run = site.run(&["check"]);
    run.assert_code(1);
    assert!(run.stderr.contains("at most 31 characters"), "{run}");
}
