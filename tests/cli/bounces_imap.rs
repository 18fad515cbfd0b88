//! The IMAP bounce mailbox against a real server: Dovecot, installed and
//! started by `.ci/imap-server` on 127.0.0.1 (10993 imaps, 10143
//! STARTTLS). Mail goes in, and the server's state is read back, with
//! Python's imaplib (`tests/tools/imap_box.py`), a client other than the
//! one under test. Each test works in folders of its own. Without the
//! server these tests fail and say how to start it; they never skip.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use pressroom::error_kind::{ErrorKind, HasKind};
use pressroom::inbox::imap::{ImapError, ImapSettings, Mailbox, Marking, Password};

use pressroom::address::EmailAddress;
use pressroom::delivery::ledger::{IssueId, IssueKind, Ledger, NewIssue};
use pressroom::email::verp;

use crate::common::{run_tool, Run, TestSite, BIN, NOW, PYTHON, REPO};

/// The certificate `.ci/imap-server` made for the test server.
pub const IMAP_CERT: &str = "/etc/pressroom-imap/imap.crt";
pub const IMAP_USER: &str = "bounces%40localhost";
pub const IMAP_PASSWORD: &str = "imap-test-password";
const SETUP_HINT: &str = "run `bash .ci/imap-server` as root (it installs and starts Dovecot)";

pub fn require_dovecot() {
    for port in [10993, 10143, 10994] {
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            panic!("Dovecot is not listening on 127.0.0.1:{port}: {SETUP_HINT}");
        }
    }
    assert!(
        Path::new(IMAP_CERT).is_file(),
        "{IMAP_CERT} is missing: {SETUP_HINT}"
    );
}

/// A folder name no other test (or earlier run) uses.
pub fn unique_folder(test: &str) -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// Runs `tests/tools/imap_box.py` with `args`; its stdout.
pub fn imap_box(args: &[&str]) -> String {
    run_tool(
        Command::new(PYTHON)
            .arg(Path::new(REPO).join("tests/tools/imap_box.py"))
            .args(args),
    )
}

/// APPENDs `messages` to `folder`; their UIDs.
pub fn append(folder: &str, messages: &[Vec<u8>]) -> Vec<u32> {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let path = dir.path().join(format!("{i}.eml"));
        std::fs::write(&path, m).unwrap();
        paths.push(path.to_string_lossy().into_owned());
    }
    let mut args = vec!["append", folder];
    args.extend(paths.iter().map(String::as_str));
    imap_box(&args)
        .lines()
        .map(|l| l.parse().expect("a UID"))
        .collect()
}

/// One message of a folder as the server holds it.
#[derive(Debug)]
pub struct Held {
    pub uid: u32,
    pub flags: Vec<String>,
    pub bytes: Vec<u8>,
}

pub fn state(folder: &str) -> Vec<Held> {
    let json: serde_json::Value = serde_json::from_str(&imap_box(&["state", folder])).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|m| Held {
            uid: m["uid"].as_u64().unwrap() as u32,
            flags: m["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect(),
            // Latin-1 text: one char per byte.
            bytes: m["bytes"]
                .as_str()
                .unwrap()
                .chars()
                .map(|c| c as u8)
                .collect(),
        })
        .collect()
}

fn settings(url: &str, password: &str, move_to: Option<&str>) -> Result<ImapSettings, ImapError> {
    ImapSettings::resolve(
        url,
        Some(Password::new(password.to_owned())),
        Some(Path::new(IMAP_CERT)),
        move_to,
        Path::new("."),
    )
}

fn url(scheme: &str, port: u16, folder: &str) -> String {
    format!("{scheme}://{IMAP_USER}@localhost:{port}/{folder}")
}

/// Messages whose bytes are hard to carry: a literal-looking `{5}` and a
/// lone `)` on their own lines, 8-bit bytes that are not UTF-8, a long
/// line, CRLF throughout.
fn tricky_message(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: MAILER-DAEMON@localhost\r\nTo: bounces@localhost\r\nSubject: Undelivered {i}\r\nMessage-ID: <tricky-{i}@localhost>\r\n\r\n{{5}}\r\n)\r\n* OK [ALERT] not a response\r\n"
    )
    .into_bytes();
    m.extend_from_slice(b"Latin-1 \xe9\xe8 bytes\r\n");
    m.extend_from_slice("x".repeat(2000 + i).as_bytes());
    m.extend_from_slice(b"\r\n");
    m
}

#[test]
fn messages_come_back_byte_for_byte_in_batches_and_marking_is_seen_by_another_client() {
    require_dovecot();
    let folder = unique_folder("imap-read");
    imap_box(&["create", &folder]);
    // More than one fetch batch (100 messages).
    let messages: Vec<Vec<u8>> = (0..130).map(tricky_message).collect();
    let uids = append(&folder, &messages);
    assert_eq!(uids.len(), 130);

    let mut mailbox =
        Mailbox::open(settings(&url("imaps", 10993, &folder), IMAP_PASSWORD, None).unwrap())
            .unwrap();
    assert_eq!(mailbox.marking, Marking::Keyword, "Dovecot takes keywords");
    assert_eq!(mailbox.unprocessed().unwrap(), 130);
    let mut seen = Vec::new();
    let mut batches = 0;
    while let Some(batch) = mailbox.next_batch().unwrap() {
        batches += 1;
        assert!(batch.missing.is_empty(), "{:?}", batch.missing);
        for m in batch.messages() {
            let i = uids
                .iter()
                .position(|u| *u == m.uid)
                .expect("a UID we appended");
            assert_eq!(
                m.bytes,
                &messages[i][..],
                "message {i} (UID {}) came back changed",
                m.uid
            );
            seen.push(m.uid);
        }
    }
    assert_eq!(batches, 2);
    assert_eq!(seen, uids, "every message once, in UID order");
    // Reading marked nothing (BODY.PEEK[]).
    assert!(
        state(&folder).iter().all(|m| m.flags.is_empty()),
        "{:?}",
        state(&folder)
    );

    // All but the last are recorded: only they get the keyword.
    mailbox.finish(&uids[..129]).unwrap();
    mailbox.close();
    let held = state(&folder);
    for m in &held[..129] {
        assert_eq!(m.flags, ["$PressroomProcessed"], "UID {}", m.uid);
    }
    assert!(held[129].flags.is_empty(), "{:?}", held[129].flags);

    // The next run sees only the one left, over STARTTLS this time.
    let mut again =
        Mailbox::open(settings(&url("imap", 10143, &folder), IMAP_PASSWORD, None).unwrap())
            .unwrap();
    assert_eq!(again.unprocessed().unwrap(), 1);
    let batch = again.next_batch().unwrap().unwrap();
    let only: Vec<u32> = batch.messages().iter().map(|m| m.uid).collect();
    assert_eq!(only, [uids[129]]);
    assert!(again.next_batch().unwrap().is_none());
    // A message URL names the mailbox's UIDVALIDITY and the UID.
    let url = again.message_url(uids[129]);
    assert!(
        url.starts_with(&format!(
            "imap://bounces%40localhost@localhost:10143/{}",
            folder.replace('-', "%2D")
        )) && url.ends_with(&format!(
            ";UIDVALIDITY={}/;UID={}",
            again.uid_validity, uids[129]
        )),
        "{url}"
    );
    again.close();
}

#[test]
fn processed_messages_move_to_the_folder_with_their_keyword() {
    require_dovecot();
    let folder = unique_folder("imap-move");
    // imaplib sends names as given: this one in modified UTF-7, as IMAP
    // writes `Done Ü`, which is how pressroom is told it.
    let done = format!("{folder}/Done Ü");
    let done_wire = format!("{folder}/Done &ANw-");
    imap_box(&["create", &folder, &done_wire]);
    let messages: Vec<Vec<u8>> = (0..3).map(tricky_message).collect();
    let uids = append(&folder, &messages);

    let mut mailbox =
        Mailbox::open(settings(&url("imaps", 10993, &folder), IMAP_PASSWORD, Some(&done)).unwrap())
            .unwrap();
    let batch = mailbox.next_batch().unwrap().unwrap();
    assert_eq!(batch.messages().len(), 3);
    mailbox.finish(&uids[..2]).unwrap();
    mailbox.close();

    let left = state(&folder);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].uid, uids[2]);
    assert!(left[0].flags.is_empty());
    let moved = state(&done_wire);
    assert_eq!(moved.len(), 2, "{moved:?}");
    for (m, original) in moved.iter().zip(&messages) {
        assert_eq!(&m.bytes, original);
        assert_eq!(m.flags, ["$PressroomProcessed"]);
    }
}

#[test]
fn without_move_or_keywords_messages_are_marked_seen_copied_and_expunged_by_uid() {
    require_dovecot();
    let folder = unique_folder("imap-nomove");
    let done = format!("{folder}/Done");
    imap_box(&["create", &folder, &done]);
    let messages: Vec<Vec<u8>> = (0..4).map(tricky_message).collect();
    let uids = append(&folder, &messages);
    // Someone else marked one \Deleted and has not expunged it yet: an
    // EXPUNGE of the whole mailbox would take it too.
    imap_box(&["store", &folder, &uids[3].to_string(), "\\Deleted"]);

    // Port 10994: the same Dovecot mail, a CAPABILITY without MOVE, and
    // no right to set keywords.
    let mut mailbox =
        Mailbox::open(settings(&url("imaps", 10994, &folder), IMAP_PASSWORD, Some(&done)).unwrap())
            .unwrap();
    assert_eq!(mailbox.marking, Marking::Seen);
    assert_eq!(
        mailbox.unprocessed().unwrap(),
        3,
        "the \\Deleted one is not ours to read"
    );
    mailbox.finish(&uids[..2]).unwrap();
    mailbox.close();

    let left = state(&folder);
    let left_uids: Vec<u32> = left.iter().map(|m| m.uid).collect();
    assert_eq!(left_uids, [uids[2], uids[3]], "{left:?}");
    assert_eq!(left[1].flags, ["\\Deleted"]);
    let moved = state(&done);
    assert_eq!(moved.len(), 2);
    for (m, original) in moved.iter().zip(&messages) {
        assert_eq!(&m.bytes, original);
        assert_eq!(m.flags, ["\\Seen"]);
    }
    // The next run there reads only the one left unseen.
    let mut again =
        Mailbox::open(settings(&url("imaps", 10994, &folder), IMAP_PASSWORD, None).unwrap())
            .unwrap();
    assert_eq!(again.unprocessed().unwrap(), 1);
    again.close();
}

fn server_error(result: Result<Mailbox, ImapError>) -> String {
    let e = result.expect_err("the mailbox should not open");
    assert_eq!(e.kind(), ErrorKind::Run, "{e}");
    assert!(matches!(e, ImapError::Server { .. }), "{e}");
    let text = e.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(!text.contains(IMAP_PASSWORD), "{text}");
    println!("{text}");
    text
}

#[test]
fn a_wrong_password_an_unknown_mailbox_and_an_unknown_folder_name_the_server() {
    require_dovecot();
    let folder = unique_folder("imap-errors");
    imap_box(&["create", &folder]);
    append(&folder, &[tricky_message(0)]);

    let e = server_error(Mailbox::open(
        settings(&url("imaps", 10993, &folder), "not-the-password", None).unwrap(),
    ));
    assert!(
        e.starts_with("IMAP server localhost:10993: login as `bounces@localhost` refused: ")
            && e.ends_with("(check the user in --imap and PRESSROOM_IMAP_PASSWORD)"),
        "{e}"
    );

    let e = server_error(Mailbox::open(
        settings(&url("imaps", 10993, "No-Such-Box"), IMAP_PASSWORD, None).unwrap(),
    ));
    assert!(e.contains("cannot open mailbox `No-Such-Box`"), "{e}");

    let e = server_error(Mailbox::open(
        settings(
            &url("imaps", 10993, &folder),
            IMAP_PASSWORD,
            Some("No-Such-Folder"),
        )
        .unwrap(),
    ));
    assert!(
        e.contains("the --move-to folder `No-Such-Folder` cannot be used"),
        "{e}"
    );
    // Nothing was marked by any of these.
    assert!(state(&folder).iter().all(|m| m.flags.is_empty()));
}

#[test]
fn tls_trouble_is_named_with_what_to_do() {
    require_dovecot();
    // Without the test CA the self-signed certificate is refused.
    let no_ca = ImapSettings::resolve(
        &url("imaps", 10993, "INBOX"),
        Some(Password::new(IMAP_PASSWORD.to_owned())),
        None,
        None,
        Path::new("."),
    )
    .unwrap();
    let e = server_error(Mailbox::open(no_ca));
    assert!(
        e.contains("TLS handshake failed") && e.contains("--imap-ca-file"),
        "{e}"
    );

    // imaps:// at the STARTTLS port: the server's plaintext greeting is no TLS.
    let e = server_error(Mailbox::open(
        settings(&url("imaps", 10143, "INBOX"), IMAP_PASSWORD, None).unwrap(),
    ));
    assert!(
        e.starts_with("IMAP server localhost:10143: TLS handshake failed"),
        "{e}"
    );

    // imap:// (STARTTLS) at the TLS port: no greeting arrives in clear.
    let slow = settings(&url("imap", 10993, "INBOX"), IMAP_PASSWORD, None)
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let e = server_error(Mailbox::open(slow));
    assert!(
        e.starts_with("IMAP server localhost:10993: no STARTTLS: no answer in time"),
        "{e}"
    );
}

/// A port that was free a moment ago: nothing listens there.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_refused_connection_and_a_server_that_hangs_up_stop_the_run() {
    // Dovecot cannot be made to hang up on cue: these use a bare socket.
    let port = closed_port();
    let e = server_error(Mailbox::open(
        settings(
            &format!("imap://{IMAP_USER}@127.0.0.1:{port}/INBOX?tls=none"),
            "x",
            None,
        )
        .unwrap(),
    ));
    assert!(
        e.starts_with(&format!("IMAP server 127.0.0.1:{port}: cannot connect: ")),
        "{e}"
    );

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // Greets, then hangs up at the first command.
        let (mut socket, _) = listener.accept().unwrap();
        use std::io::{Read, Write};
        socket.write_all(b"* OK ready\r\n").unwrap();
        let mut buf = [0u8; 64];
        let _ = socket.read(&mut buf);
    });
    let e = server_error(Mailbox::open(
        settings(
            &format!("imap://{IMAP_USER}@127.0.0.1:{port}/INBOX?tls=none"),
            "x",
            None,
        )
        .unwrap(),
    ));
    server.join().unwrap();
    assert!(
        e.contains("hung up during CAPABILITY") || e.contains("connection lost during CAPABILITY"),
        "{e}"
    );
}

// ---------- `pressroom bounces --imap`, end to end ----------

const SECRET: &str = "imap-test-secret-0123456789abcdef";
const BOUNCES: &str = "bounces@dispatch.example.com";

/// Runs `pressroom --root SITE --now NOW bounces ARGS…` with `password`
/// as PRESSROOM_IMAP_PASSWORD and prints what it printed.
fn bounces(site: &TestSite, args: &[&str], password: &str) -> Run {
    let mut all: Vec<String> = vec![
        "--root".into(),
        site.root().to_string_lossy().into_owned(),
        "--now".into(),
        NOW.into(),
        "bounces".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let output = Command::new(BIN)
        .args(&all)
        .current_dir(site.root())
        .env_remove("PRESSROOM_LOG")
        .env("NO_COLOR", "1")
        .env("PRESSROOM_SECRET", SECRET)
        .env("PRESSROOM_IMAP_PASSWORD", password)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    let run = Run {
        args: all,
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    println!("{run}\n");
    run
}

/// A delivery status notification (RFC 3464) for `reader`, sent back to
/// the VERP address its message went out with.
fn dsn(verp: &str, reader: &str, status: &str, n: usize) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
To: {verp}\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <dsn-{n}-{nanos}@mx.example.net>\r\n\
Date: Sun, 29 Nov 2026 11:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b{n}\"\r\n\
\r\n\
--b{n}\r\n\
Content-Type: text/plain\r\n\
\r\n\
Your message could not be delivered to {reader}.\r\n\
--b{n}\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Final-Recipient: rfc822; {reader}\r\n\
Action: failed\r\n\
Status: {status}\r\n\
Diagnostic-Code: smtp; 550 {status} mailbox unavailable\r\n\
--b{n}--\r\n",
        nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
    .into_bytes()
}

/// An abuse report (ARF, RFC 5965) about the message sent to `reader`.
fn complaint(verp: &str, reader: &str, n: usize) -> Vec<u8> {
    format!(
        "From: Feedback Loop <fbl@isp.example.org>\r\n\
To: {verp}\r\n\
Subject: Abuse report\r\n\
Message-ID: <arf-{n}-{nanos}@isp.example.org>\r\n\
Date: Sun, 29 Nov 2026 11:05:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"f{n}\"\r\n\
\r\n\
--f{n}\r\n\
Content-Type: text/plain\r\n\
\r\n\
This is an email abuse report.\r\n\
--f{n}\r\n\
Content-Type: message/feedback-report\r\n\
\r\n\
Feedback-Type: abuse\r\n\
User-Agent: ExampleFBL/1.0\r\n\
Version: 1\r\n\
Original-Rcpt-To: <{reader}>\r\n\
--f{n}\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: dispatch@example.com\r\n\
To: {reader}\r\n\
Subject: Rust at the Edge\r\n\
--f{n}--\r\n",
        nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
    .into_bytes()
}

/// The sample site with `[bounces] address` and a ledger in which issue
/// `2026-11-29-edge` was sent to three readers; their VERP addresses.
fn site_with_sent_issue() -> (TestSite, Vec<(String, String)>) {
    let site = TestSite::sample();
    let mut config = site.read("config.toml");
    config.push_str(&format!("\n[bounces]\naddress = \"{BOUNCES}\"\n"));
    site.write("config.toml", config);
    std::fs::create_dir_all(site.path(".pressroom")).unwrap();
    let mut ledger = Ledger::open(&site.path(".pressroom/state.db")).unwrap();
    let id = IssueId::parse("2026-11-29-edge").unwrap();
    let readers: Vec<EmailAddress> = ["mara@example.org", "jun@example.org", "ines@example.org"]
        .iter()
        .map(|a| EmailAddress::parse(a).unwrap())
        .collect();
    let articles = vec!["tag:example.com,2026:edge".to_owned()];
    let now = Utc::now();
    ledger
        .create_issue(
            &NewIssue {
                id: &id,
                kind: IssueKind::Article,
                article_ids: &articles,
                subject: "Rust at the Edge",
                content: b"{}",
            },
            readers
                .iter()
                .cloned()
                .map(Ok::<_, std::convert::Infallible>),
            now,
        )
        .unwrap();
    let bounce_box = EmailAddress::parse(BOUNCES).unwrap();
    let mut out = Vec::new();
    for reader in &readers {
        ledger
            .mark_sent(&id, &reader.normalized(), "250 2.0.0 Ok: queued", now)
            .unwrap();
        let verp =
            verp::bounce_address(&bounce_box, id.as_str(), reader, SECRET.as_bytes()).unwrap();
        out.push((reader.to_string(), verp.to_string()));
    }
    (site, out)
}

/// (reader, reason) of every suppression, each checked to come from IMAP.
fn suppressed(site: &TestSite) -> Vec<(String, String)> {
    Ledger::open(&site.path(".pressroom/state.db"))
        .unwrap()
        .suppressions()
        .unwrap()
        .into_iter()
        .map(|s| {
            assert_eq!(s.how.as_deref(), Some("imap"), "{s:?}");
            (s.recipient, s.reason)
        })
        .collect()
}

#[test]
fn bounces_from_an_imap_mailbox_suppress_readers_once_and_are_moved() {
    require_dovecot();
    let folder = unique_folder("imap-command");
    let done = format!("{folder}/Processed");
    imap_box(&["create", &folder, &done]);
    let (site, readers) = site_with_sent_issue();
    let (mara, mara_verp) = &readers[0];
    let (jun, jun_verp) = &readers[1];
    // The reports name addresses the readers forward to: only the VERP
    // tag of the address they came back to says whose they are.
    let messages = vec![
        dsn(mara_verp, "mara.forwarded@mx.example.net", "5.1.1", 1),
        complaint(jun_verp, "jun.forwarded@isp.example.org", 2),
        b"From: friend@example.net\r\nTo: bounces@dispatch.example.com\r\nSubject: hello\r\n\r\nJust a note.\r\n".to_vec(),
    ];
    let uids = append(&folder, &messages);
    let url = url("imaps", 10993, &folder);
    let args = [
        "--imap",
        &url,
        "--imap-ca-file",
        IMAP_CERT,
        "--move-to",
        &done,
    ];

    // A wrong password: exit 2, one line naming the server, nothing changed.
    let wrong = bounces(&site, &args, "not-the-password");
    wrong.assert_code(2);
    assert!(
        wrong
            .stderr
            .contains("IMAP server localhost:10993: login as `bounces@localhost` refused"),
        "{wrong}"
    );
    assert!(!wrong.stderr.contains("not-the-password"), "{wrong}");
    assert_eq!(suppressed(&site), []);
    assert_eq!(state(&folder).len(), 3);
    assert!(state(&folder).iter().all(|m| m.flags.is_empty()));

    let first = bounces(&site, &args, IMAP_PASSWORD);
    first.assert_code(0);
    assert!(first.stdout.contains("3 message(s) read from"), "{first}");
    assert!(
        first.stdout.contains(&format!("suppressed {mara}")),
        "{first}"
    );
    assert!(
        first.stdout.contains(&format!("suppressed {jun}")),
        "{first}"
    );
    assert_eq!(
        suppressed(&site),
        [
            (jun.clone(), "complained".to_owned()),
            (mara.clone(), "hard_bounce".to_owned())
        ]
    );
    // All three left the mailbox for the folder, with the keyword.
    assert_eq!(state(&folder).len(), 0, "{:?}", state(&folder));
    let moved = state(&done);
    assert_eq!(moved.len(), 3);
    for (m, original) in moved.iter().zip(&messages) {
        assert_eq!(&m.bytes, original);
        assert_eq!(m.flags, ["$PressroomProcessed"]);
    }
    assert_eq!(uids.len(), 3);

    // The next run finds nothing to do.
    let second = bounces(&site, &args, IMAP_PASSWORD);
    second.assert_code(0);
    assert!(second.stdout.contains("0 message(s) read from"), "{second}");
    assert!(!second.stdout.contains("suppressed mara"), "{second}");
}

#[test]
fn a_message_that_is_no_mail_is_named_by_its_uid_and_left_unmarked() {
    require_dovecot();
    let folder = unique_folder("imap-unreadable");
    imap_box(&["create", &folder]);
    let (site, readers) = site_with_sent_issue();
    let (ines, ines_verp) = &readers[2];
    let uids = append(
        &folder,
        &[
            b"this is no mail message at all\r\n".to_vec(),
            dsn(ines_verp, ines, "5.2.1", 3),
        ],
    );
    let url = url("imap", 10143, &folder);
    let args = ["--imap", &url, "--imap-ca-file", IMAP_CERT];
    let run = bounces(&site, &args, IMAP_PASSWORD);
    run.assert_code(1);
    assert!(run.stderr.contains(&format!("UID {}", uids[0])), "{run}");
    assert_eq!(
        suppressed(&site),
        [(ines.clone(), "hard_bounce".to_owned())]
    );
    let held = state(&folder);
    assert!(
        held[0].flags.is_empty(),
        "the bad one stays unmarked: {held:?}"
    );
    assert_eq!(held[1].flags, ["$PressroomProcessed"], "{held:?}");

    // Run again: only the bad one is read.
    let again = bounces(&site, &args, IMAP_PASSWORD);
    again.assert_code(1);
    assert!(again.stdout.contains("1 message(s) read from"), "{again}");
}

/// A scripted IMAP server on 127.0.0.1 (plaintext: `tls=none` is allowed
/// to loopback) holding `count` copies of `message`. It answers as
/// Dovecot does until the fetch of the last message's body, then hangs
/// up mid-run, which a real server will not do on cue. Returns its port
/// and the commands it received.
fn server_that_hangs_up_at_the_last_body(
    message: Vec<u8>,
    count: u32,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(socket.try_clone().unwrap());
        let mut out = socket;
        let mut received = Vec::new();
        out.write_all(b"* OK scripted server ready\r\n").unwrap();
        let uids = |set: &str| -> Vec<u32> {
            set.split(',')
                .flat_map(|part| match part.split_once(':') {
                    Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect(),
                    None => vec![part.parse().unwrap()],
                })
                .collect()
        };
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return received;
            }
            let line = line.trim_end().to_owned();
            let (tag, command) = line.split_once(' ').unwrap();
            received.push(command.to_owned());
            let upper = command.to_ascii_uppercase();
            let reply: Vec<u8> = if upper == "CAPABILITY" {
                format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN MOVE UIDPLUS\r\n{tag} OK done\r\n")
                    .into()
            } else if upper.starts_with("AUTHENTICATE PLAIN") {
                out.write_all(b"+ \r\n").unwrap();
                let mut response = String::new();
                reader.read_line(&mut response).unwrap();
                format!("{tag} OK logged in\r\n").into()
            } else if upper.starts_with("SELECT") {
                format!(
                    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
                     * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n\
                     * {count} EXISTS\r\n* 0 RECENT\r\n\
                     * OK [UIDVALIDITY 1764000000] UIDs valid\r\n\
                     * OK [UIDNEXT {}] Predicted next UID\r\n\
                     {tag} OK [READ-WRITE] Select completed.\r\n",
                    count + 1
                )
                .into()
            } else if upper.starts_with("UID SEARCH") {
                let all: Vec<String> = (1..=count).map(|u| u.to_string()).collect();
                format!(
                    "* SEARCH {}\r\n{tag} OK Search completed.\r\n",
                    all.join(" ")
                )
                .into()
            } else if upper.starts_with("UID FETCH") && upper.contains("RFC822.SIZE") {
                let set = command.split(' ').nth(2).unwrap();
                let mut r = String::new();
                for uid in uids(set) {
                    r.push_str(&format!(
                        "* {uid} FETCH (UID {uid} RFC822.SIZE {})\r\n",
                        message.len()
                    ));
                }
                r.push_str(&format!("{tag} OK Fetch completed.\r\n"));
                r.into()
            } else if upper.starts_with("UID FETCH") {
                let set = uids(command.split(' ').nth(2).unwrap());
                if set.contains(&count) {
                    // Half a response, then gone.
                    out.write_all(format!("* {count} FETCH (UID {count} BODY[] {{").as_bytes())
                        .unwrap();
                    return received;
                }
                let mut r = Vec::new();
                for uid in set {
                    r.extend_from_slice(
                        format!("* {uid} FETCH (UID {uid} BODY[] {{{}}}\r\n", message.len())
                            .as_bytes(),
                    );
                    r.extend_from_slice(&message);
                    r.extend_from_slice(b")\r\n");
                }
                r.extend_from_slice(format!("{tag} OK Fetch completed.\r\n").as_bytes());
                r
            } else if upper == "LOGOUT" {
                format!("* BYE\r\n{tag} OK bye\r\n").into()
            } else {
                format!("{tag} BAD not scripted\r\n").into()
            };
            out.write_all(&reply).unwrap();
        }
    });
    (port, handle)
}

#[test]
fn a_server_lost_mid_run_stops_it_with_nothing_of_the_batch_recorded() {
    let (site, readers) = site_with_sent_issue();
    let (mara, mara_verp) = &readers[0];
    // 101 messages: the first fetch (100) arrives whole and is handed to
    // the command; the server hangs up during the second.
    let (port, server) =
        server_that_hangs_up_at_the_last_body(dsn(mara_verp, mara, "5.1.1", 9), 101);
    let url = format!("imap://{IMAP_USER}@127.0.0.1:{port}/INBOX?tls=none");
    let run = bounces(&site, &["--imap", &url], IMAP_PASSWORD);
    let received = server.join().unwrap();
    run.assert_code(2);
    assert_eq!(
        run.stderr.trim_end(),
        format!("error: IMAP server 127.0.0.1:{port}: the server hung up during UID FETCH (try again later)"),
        "{run}"
    );
    assert!(!run.stdout.contains("suppressed mara"), "{run}");
    assert_eq!(
        suppressed(&site),
        [],
        "the 100 messages read are not recorded"
    );
    assert!(
        !received
            .iter()
            .any(|c| c.to_ascii_uppercase().starts_with("UID STORE")),
        "nothing marked: {received:?}"
    );
}
