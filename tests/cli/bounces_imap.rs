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

use crate::common::{run_tool, PYTHON, REPO};

/// The certificate `.ci/imap-server` made for the test server.
pub const IMAP_CERT: &str = "/etc/pressroom-imap/imap.crt";
pub const IMAP_USER: &str = "bounces%40localhost";
pub const IMAP_PASSWORD: &str = "imap-test-password";
const SETUP_HINT: &str = "run `bash .ci/imap-server` as root (it installs and starts Dovecot)";

pub fn require_dovecot() {
    for port in [10993, 10143] {
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
