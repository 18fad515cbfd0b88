//! The provider webhooks of `pressroom serve`, through the real binary on
//! 127.0.0.1 and a real HTTP client (ureq), fed the payloads Amazon SES,
//! Amazon SNS and Postmark document (`tests/fixtures/webhooks/`). The
//! newsletter goes out first through `send` and the scriptable SMTP server,
//! so the reports name real deliveries; the ledger is read after each
//! request.
//!
//! SNS's side is played by `tests/tools/sns_https.py`, a real HTTPS server
//! on 127.0.0.1 with a certificate from a test CA. The debug binary is
//! pointed at it with the tests-only `PRESSROOM_TEST_SNS_ADDR` and
//! `PRESSROOM_TEST_SNS_CA`; the messages are the documented envelopes,
//! signed with the test signing key (the documented ones carry placeholder
//! signatures).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::common::REPO;
use crate::mail::FaultServer;
use crate::serve::{agent, answer, table_rows, wait_for, Answer, Server, Site};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:pressroom-bounces";
const PASSWORD: &str = "postmark-webhook-password-5f2a";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem";

fn fixtures() -> PathBuf {
    Path::new(REPO).join("tests/fixtures/webhooks")
}

fn fixture(name: &str) -> Value {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The stand-in for `sns.<region>.amazonaws.com`: serves the test signing
/// certificate (and a stranger's) and answers subscription confirmations,
/// remembering every request.
struct FakeSns {
    child: Child,
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl FakeSns {
    fn start() -> FakeSns {
        let certs = fixtures().join("certs");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            certs.join("signing.pem"),
            dir.path().join("SimpleNotificationService-test.pem"),
        )
        .unwrap();
        std::fs::copy(
            certs.join("signing.pem"),
            dir.path().join("SimpleNotificationService-slow.pem"),
        )
        .unwrap();
        std::fs::copy(
            certs.join("stranger.pem"),
            dir.path().join("SimpleNotificationService-stranger.pem"),
        )
        .unwrap();
        let mut child = Command::new("/usr/bin/python3")
            .arg(Path::new(REPO).join("tests/tools/sns_https.py"))
            .arg("--cert")
            .arg(certs.join("server.pem"))
            .arg("--key")
            .arg(certs.join("server.key"))
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start tests/tools/sns_https.py");
        let stdout = child.stdout.take().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let kept = requests.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("PORT ") {
                    let _ = tx.send(port.to_owned());
                } else {
                    kept.lock().unwrap().push(line);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("sns_https.py did not start");
        FakeSns {
            child,
            addr: format!("127.0.0.1:{port}"),
            requests,
            _dir: dir,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PRESSROOM_TEST_SNS_ADDR", self.addr.clone()),
            (
                "PRESSROOM_TEST_SNS_CA",
                fixtures().join("certs/ca.pem").display().to_string(),
            ),
        ]
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeSns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A site whose issue went to `r0..r2`, with `[bounces.ses]` and
/// `[bounces.postmark]` set (when `webhooks`), and `serve` running.
struct Setup {
    smtp: FaultServer,
    site: Site,
    sns: FakeSns,
    server: Server,
}

fn setup(test: &str, webhooks: bool) -> Setup {
    let smtp = FaultServer::start(&[]);
    let site = Site::new(test, 3, &smtp.url(), "per_second = 0", "");
    if webhooks {
        let mut config = std::fs::read_to_string(site.path("config.toml")).unwrap();
        config.push_str(&format!(
            "\n[bounces.ses]\ntopic_arns = [\"{TOPIC}\"]\n\n[bounces.postmark]\nusername = \"postmark\"\n"
        ));
        std::fs::write(site.path("config.toml"), config).unwrap();
    }
    site.run(&["send", "--include-existing"]).assert_code(0);
    let sns = FakeSns::start();
    let mut env: Vec<(&str, String)> = sns.env();
    env.push(("PRESSROOM_POSTMARK_PASSWORD", PASSWORD.to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with(&site, &env);
    Setup {
        smtp,
        site,
        sns,
        server,
    }
}

impl Setup {
    /// The Message-ID of a message `to` received, without `<>`.
    fn message_id(&self, to: &str) -> String {
        let (_, data) = self
            .smtp
            .received()
            .into_iter()
            .find(|(rcpt, _)| rcpt.iter().any(|r| r == to))
            .unwrap_or_else(|| panic!("no message to {to}"));
        let line = data
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
            .expect("a Message-ID header");
        line["message-id:".len()..]
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    }

    fn post_ses(&self, body: &str) -> Answer {
        answer(
            agent()
                .post(&self.server.url("/webhooks/ses"))
                .set("Content-Type", "text/plain; charset=UTF-8")
                .set("x-amz-sns-message-type", "Notification")
                .send_string(body),
        )
    }

    fn post_postmark(&self, credentials: Option<(&str, &str)>, body: &str) -> Answer {
        let mut request = agent()
            .post(&self.server.url("/webhooks/postmark"))
            .set("Content-Type", "application/json");
        if let Some((user, pass)) = credentials {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            request = request.set("Authorization", &format!("Basic {encoded}"));
        }
        answer(request.send_string(body))
    }

    /// The reason `address` is suppressed for, if it is.
    fn suppression(&self, address: &str) -> Option<String> {
        let conn = read_only(&self.site.ledger());
        conn.query_row(
            "SELECT reason FROM suppressions WHERE recipient = ?1",
            [address.to_lowercase()],
            |r| r.get(0),
        )
        .ok()
    }

    /// Every row of the tables a report can change, as text.
    fn rows(&self) -> Vec<String> {
        table_rows(
            &self.site.ledger(),
            &["reports", "suppressions", "deliveries", "signups"],
        )
    }
}

fn read_only(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// The string SNS signs, written from the SNS developer guide
/// ("Verifying the signatures of Amazon SNS messages").
fn string_to_sign(envelope: &Value) -> String {
    let keys: &[&str] = if envelope["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut out = String::new();
    for key in keys {
        if let Some(value) = envelope.get(*key).and_then(Value::as_str) {
            out.push_str(&format!("{key}\n{value}\n"));
        }
    }
    out
}

/// Signs `envelope` as SNS does, with the test signing key.
fn sign(envelope: &mut Value, version: &str) {
    use rsa::pkcs8::DecodePrivateKey;
    let pem = std::fs::read_to_string(fixtures().join("certs/signing.key")).unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    envelope["SignatureVersion"] = version.into();
    let signed = string_to_sign(envelope);
    let signature = if version == "1" {
        use sha1::Digest;
        key.sign(
            rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
            &sha1::Sha1::digest(signed.as_bytes()),
        )
    } else {
        use sha2::Digest;
        key.sign(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(signed.as_bytes()),
        )
    }
    .unwrap();
    envelope["Signature"] = base64::engine::general_purpose::STANDARD
        .encode(signature)
        .into();
}

/// The documented SNS notification carrying `event` (an SES event), from
/// `topic`, with its certificate at `cert_url`, signed.
fn notification(event: &Value, id: &str, topic: &str, cert_url: &str, version: &str) -> Value {
    let mut envelope = fixture("sns-notification.json");
    envelope["MessageId"] = id.into();
    envelope["TopicArn"] = topic.into();
    envelope["Message"] = event.to_string().into();
    envelope["SigningCertURL"] = cert_url.into();
    envelope.as_object_mut().unwrap().remove("Subject");
    sign(&mut envelope, version);
    envelope
}

/// The documented SES bounce (with a DSN), about the message `message_id`
/// sent to `to`.
fn ses_bounce(to: &str, message_id: &str) -> Value {
    let mut event = fixture("ses-bounce.json");
    event["bounce"]["bouncedRecipients"][0]["emailAddress"] = to.into();
    event["mail"]["destination"] = json!([to]);
    event["mail"]["commonHeaders"]["messageId"] = format!("<{message_id}>").into();
    event
}

#[test]
fn ses_bounce_suppresses_the_reader_and_a_repeat_counts_once() {
    let s = setup("ses-bounce", true);
    let reader = s.site.addr(1);
    let event = ses_bounce(&reader, &s.message_id(&reader));
    let body = notification(&event, "sns-bounce-1", TOPIC, CERT_URL, "1").to_string();
    assert_eq!(s.suppression(&reader), None);

    let first = s.post_ses(&body);
    assert_eq!(first.status, 200, "{}\n{}", first.body, s.server.log());
    assert_eq!(s.suppression(&reader).as_deref(), Some("hard_bounce"));
    assert_eq!(
        s.suppression(&s.site.addr(0)),
        None,
        "only the bounced reader"
    );
    let after = s.rows();
    let reports: Vec<&String> = after.iter().filter(|r| r.starts_with("reports:")).collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("\"5.1.1\"") && reports[0].contains("\"ses\""));
    assert!(
        reports[0].contains("\"message-id\""),
        "attributed by the header's Message-ID: {reports:?}"
    );
    wait_for("the certificate's fetch", || {
        s.sns.requests().iter().any(|r| r.ends_with(".pem"))
    });

    // SNS delivers at least once: the same notification again.
    let again = s.post_ses(&body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(s.rows(), after, "counted once");
    let fetches = s
        .sns
        .requests()
        .iter()
        .filter(|r| r.ends_with(".pem"))
        .count();
    assert_eq!(fetches, 1, "the certificate is kept in memory");
    // The log says what each delivery of it did.
    wait_for("the log lines", || {
        let log = s.server.log();
        log.contains(&format!("hard for {reader}"))
            && log.contains("suppressed: hard_bounce")
            && log.contains("already recorded")
    });
}

#[test]
fn ses_complaint_with_signature_version_2_suppresses_and_not_spam_does_not() {
    let s = setup("ses-complaint", true);
    let reader = s.site.addr(2);
    let mut event = fixture("ses-complaint.json");
    event["complaint"]["complainedRecipients"][0]["emailAddress"] = reader.clone().into();
    event["mail"]["commonHeaders"]["messageId"] = s.message_id(&reader).into();
    let mut not_spam = event.clone();
    not_spam["complaint"]["complaintFeedbackType"] = "not-spam".into();

    let before = s.rows();
    let answer = s.post_ses(&notification(&not_spam, "sns-c-0", TOPIC, CERT_URL, "2").to_string());
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(s.rows(), before, "a not-spam report changes nothing");

    let answer = s.post_ses(&notification(&event, "sns-c-1", TOPIC, CERT_URL, "2").to_string());
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, s.server.log());
    assert_eq!(s.suppression(&reader).as_deref(), Some("complained"));

    // A delivery notification is acknowledged and changes nothing.
    let before = s.rows();
    let delivery = fixture("ses-delivery.json");
    let answer = s.post_ses(&notification(&delivery, "sns-d-1", TOPIC, CERT_URL, "1").to_string());
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(s.rows(), before);
}

#[test]
fn ses_refuses_what_sns_did_not_sign_and_certificates_from_elsewhere() {
    let s = setup("ses-refuse", true);
    let reader = s.site.addr(1);
    let event = ses_bounce(&reader, &s.message_id(&reader));
    let before = s.rows();

    // Signed, then changed: another reader named in the message.
    let mut altered = notification(&event, "sns-x-1", TOPIC, CERT_URL, "1");
    let other = ses_bounce(&s.site.addr(0), &s.message_id(&s.site.addr(0)));
    altered["Message"] = other.to_string().into();
    let answer = s.post_ses(&altered.to_string());
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("signature"), "{}", answer.body);

    // A signature that is not even base64.
    let mut garbled = notification(&event, "sns-x-2", TOPIC, CERT_URL, "2");
    garbled["Signature"] = "forged!".into();
    assert_eq!(s.post_ses(&garbled.to_string()).status, 403);

    // Certificates anywhere but an SNS host are never fetched.
    wait_for("the certificate's fetch", || !s.sns.requests().is_empty());
    let fetched = s.sns.requests();
    for url in [
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-test.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://evil.example/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem.txt",
    ] {
        let body = notification(&event, "sns-x-3", TOPIC, url, "1").to_string();
        let answer = s.post_ses(&body);
        assert_eq!(answer.status, 403, "{url}: {}", answer.body);
        assert!(answer.body.contains("SigningCertURL"), "{}", answer.body);
    }
    assert_eq!(s.sns.requests(), fetched, "nothing more fetched");

    // A certificate on an SNS host that is not issued to SNS.
    let stranger = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-stranger.pem";
    let answer = s.post_ses(&notification(&event, "sns-x-4", TOPIC, stranger, "1").to_string());
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("not to Amazon SNS"), "{}", answer.body);

    // A genuine signature from a topic not in bounces.ses.topic_arns.
    let foreign = "arn:aws:sns:us-east-1:999999999999:someone-else";
    let answer = s.post_ses(&notification(&event, "sns-x-5", foreign, CERT_URL, "1").to_string());
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("topic"), "{}", answer.body);

    assert_eq!(s.rows(), before, "nothing changed");
    assert_eq!(s.suppression(&reader), None);
    wait_for("the log line", || {
        s.server.log().contains("SES webhook: refused")
    });
}

#[test]
fn ses_subscription_confirmation_visits_the_subscribe_url() {
    let s = setup("ses-subscribe", true);
    let mut confirmation = fixture("sns-subscription-confirmation.json");
    let subscribe = format!(
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb687f5d51e6e2"
    );
    confirmation["TopicArn"] = TOPIC.into();
    confirmation["SubscribeURL"] = subscribe.clone().into();
    confirmation["SigningCertURL"] = CERT_URL.into();
    let mut elsewhere = confirmation.clone();
    sign(&mut confirmation, "1");

    // A SubscribeURL that is not on an SNS host is never visited.
    elsewhere["SubscribeURL"] =
        "https://evil.example/?Action=ConfirmSubscription&Token=2336412f37fb687f5d51e6e2".into();
    sign(&mut elsewhere, "1");
    let answer = s.post_ses(&elsewhere.to_string());
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(
        !s.sns
            .requests()
            .iter()
            .any(|r| r.contains("ConfirmSubscription")),
        "{:?}",
        s.sns.requests()
    );

    let answer = s.post_ses(&confirmation.to_string());
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, s.server.log());
    let path = subscribe.trim_start_matches("https://sns.us-east-1.amazonaws.com");
    wait_for("the visit to SubscribeURL", || {
        s.sns.requests().contains(&format!("GET {path}"))
    });
    wait_for("the log line", || {
        s.server
            .log()
            .contains(&format!("confirmed the subscription to {TOPIC}"))
    });
}

#[test]
fn postmark_needs_its_credentials_and_counts_a_repeat_once() {
    let s = setup("postmark", true);
    let reader = s.site.addr(0);
    let mut bounce = fixture("postmark-bounce.json");
    bounce["Email"] = reader.clone().into();
    let body = bounce.to_string();
    let before = s.rows();

    for credentials in [
        None,
        Some(("postmark", "wrong-password-of-some-length")),
        Some(("someone", PASSWORD)),
    ] {
        let answer = s.post_postmark(credentials, &body);
        assert_eq!(answer.status, 401, "{credentials:?}: {}", answer.body);
        assert!(
            answer
                .header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic realm=")),
            "{:?}",
            answer.header("www-authenticate")
        );
    }
    assert_eq!(s.rows(), before, "nothing changed");

    let answer = s.post_postmark(Some(("postmark", PASSWORD)), &body);
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, s.server.log());
    assert_eq!(s.suppression(&reader).as_deref(), Some("hard_bounce"));
    let after = s.rows();
    assert_eq!(
        after.iter().filter(|r| r.starts_with("reports:")).count(),
        1
    );
    let again = s.post_postmark(Some(("postmark", PASSWORD)), &body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(s.rows(), after, "counted once");

    let mut complaint = fixture("postmark-spam-complaint.json");
    complaint["Email"] = s.site.addr(2).into();
    let answer = s.post_postmark(Some(("postmark", PASSWORD)), &complaint.to_string());
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        s.suppression(&s.site.addr(2)).as_deref(),
        Some("complained")
    );
    assert_eq!(s.suppression(&s.site.addr(1)), None);
}

#[test]
fn webhook_bodies_may_be_large_but_not_unbounded() {
    let s = setup("webhook-size", true);
    let mut bounce = fixture("postmark-bounce.json");
    bounce["Email"] = s.site.addr(1).into();
    // "Include bounce content" puts the whole bounced message in the body.
    bounce["Content"] = "x".repeat(400 * 1024).into();
    let answer = s.post_postmark(Some(("postmark", PASSWORD)), &bounce.to_string());
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        s.suppression(&s.site.addr(1)).as_deref(),
        Some("hard_bounce")
    );
    // 2 MiB: refused once more than 1 MiB has come. A raw socket sends
    // just past the limit and then reads, so the early answer cannot
    // break the client's write.
    bounce["Content"] = "x".repeat(2 * 1024 * 1024).into();
    bounce["Email"] = s.site.addr(2).into();
    let body = bounce.to_string();
    let host = s.server.url("").trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&host).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("postmark:{PASSWORD}"));
    write!(
        stream,
        "POST /webhooks/postmark HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream
        .write_all(&body.as_bytes()[..1024 * 1024 + 16 * 1024])
        .unwrap();
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(s.suppression(&s.site.addr(2)), None);
    // Forms keep their small limit.
    let form = format!("email=a%40example.com&name={}", "n".repeat(20 * 1024));
    let answer = answer_form(&s.server.url("/subscribe"), &form);
    assert_eq!(answer.status, 413, "{}", answer.body);
}

fn answer_form(url: &str, body: &str) -> Answer {
    answer(
        agent()
            .post(url)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(body),
    )
}

#[test]
fn webhook_routes_exist_only_when_configured() {
    let s = setup("webhook-off", false);
    for path in ["/webhooks/ses", "/webhooks/postmark"] {
        let answer = answer(agent().post(&s.server.url(path)).send_string("{}"));
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
}

/// A ledger that cannot record answers 500, so the provider sends the
/// notification again; the retry, once the ledger works, is recorded.
/// (The disk cannot be filled on cue: a trigger makes SQLite fail the
/// insert as a full disk would.)
#[test]
fn a_ledger_failure_answers_500_and_the_retry_is_recorded() {
    let s = setup("webhook-ledger-failure", true);
    let reader = s.site.addr(1);
    let event = ses_bounce(&reader, &s.message_id(&reader));
    let body = notification(&event, "sns-fail-1", TOPIC, CERT_URL, "2").to_string();
    let ledger = rusqlite::Connection::open(s.site.ledger()).unwrap();
    ledger
        .execute_batch(
            "CREATE TRIGGER full_disk BEFORE INSERT ON reports
             BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
        )
        .unwrap();
    let before = s.rows();
    let answer = s.post_ses(&body);
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(s.rows(), before, "nothing half-recorded");
    wait_for("the log line", || {
        s.server.log().contains("database or disk is full")
    });

    ledger.execute_batch("DROP TRIGGER full_disk").unwrap();
    let answer = s.post_ses(&body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(s.suppression(&reader).as_deref(), Some("hard_bounce"));
}

/// An SNS that does not send the certificate in time gets 503, which SNS
/// retries (it takes a 4xx, a 408 too, as final), and nothing changes.
#[test]
fn a_certificate_that_does_not_come_in_time_answers_503() {
    let s = setup("webhook-slow-sns", true);
    let reader = s.site.addr(1);
    let event = ses_bounce(&reader, &s.message_id(&reader));
    let slow = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-slow.pem";
    let before = s.rows();
    let answer = s.post_ses(&notification(&event, "sns-slow-1", TOPIC, slow, "1").to_string());
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(s.rows(), before);
    wait_for("the log line", || {
        s.server
            .log()
            .contains("cannot fetch the signing certificate")
    });
}
