//! `pressroom serve` through the real binary on 127.0.0.1, asked by a real
//! HTTP client (ureq), a real headless Chromium (`tests/tools/browser.py`)
//! and raw sockets for the slow and oversized clients; confirmation emails
//! and newsletters go to the scriptable SMTP server
//! (`tests/tools/fault_smtp.py`), and `send` runs as its own process on the
//! same ledger at the same time. Each test compares the ledger (opened
//! read-only) before and after.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use pressroom::address::EmailAddress;
use pressroom::email::token;

use crate::common::{copy_dir, Run, BIN, NOW, REPO};
use crate::mail::{unique_domain, FaultServer};

const SECRET: &str = "serve-hmac-secret-8c41f07a2be9";
const LIST_ID: &str = "dispatch.example.com";

/// The sample site with `[send]`, `[smtp]` (the given SMTP URL) and
/// `[serve]` set, and `n` subscribers `r{i}@DOMAIN` in subscribers.csv.
pub(crate) struct Site {
    dir: tempfile::TempDir,
    domain: String,
}

impl Site {
    pub(crate) fn new(test: &str, n: usize, smtp_url: &str, send: &str, serve: &str) -> Site {
        let dir = tempfile::Builder::new()
            .prefix("prserve-")
            .tempdir()
            .expect("cannot create a temporary folder");
        let repo = Path::new(REPO);
        let mut config = std::fs::read_to_string(repo.join("config.toml")).unwrap();
        config.push_str(&format!(
            "\n[send]\n{send}\n\n[smtp]\nurl = \"{smtp_url}\"\n\n[serve]\nread_timeout_seconds = 2\n{serve}\n"
        ));
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        copy_dir(&repo.join("content"), &dir.path().join("content"));
        let site = Site {
            dir,
            domain: unique_domain(test),
        };
        let mut csv = String::from("email,name\n");
        for i in 0..n {
            csv.push_str(&format!("{},Reader {i}\n", site.addr(i)));
        }
        std::fs::write(site.path("subscribers.csv"), csv).unwrap();
        site
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    pub(crate) fn addr(&self, i: usize) -> String {
        format!("r{i}@{}", self.domain)
    }

    pub(crate) fn ledger(&self) -> PathBuf {
        self.path(".pressroom/state.db")
    }

    fn command(&self, now: Option<&str>, args: &[&str]) -> Command {
        let mut all: Vec<OsString> = vec!["--root".into(), self.root().into()];
        if let Some(now) = now {
            all.extend(["--now".into(), now.into()]);
        }
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
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let output = self
            .command(Some(NOW), args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `subscribers --csv` as (email, state, source) rows.
    fn subscribers(&self) -> Vec<(String, String, String)> {
        let run = self.run(&["subscribers", "--csv"]);
        run.assert_code(0);
        run.stdout
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_owned(), f[2].to_owned(), f[3].to_owned())
            })
            .collect()
    }

    fn state_of(&self, email: &str) -> Option<String> {
        self.subscribers()
            .into_iter()
            .find(|(e, _, _)| e == email)
            .map(|(_, state, _)| state)
    }
}

/// Every row of the tables the server could change, as text.
fn ledger_rows(path: &Path) -> Vec<String> {
    table_rows(
        path,
        &["signups", "suppressions", "deliveries", "issues", "meta"],
    )
}

/// Every row of `tables` in the ledger at `path`, as sorted text (none
/// when there is no ledger yet).
pub(crate) fn table_rows(path: &Path, tables: &[&str]) -> Vec<String> {
    if !path.exists() {
        return Vec::new();
    }
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut line = format!("{table}:");
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    line.push_str(&format!(" {v:?}"));
                }
                Ok(line)
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out.sort();
    out
}

/// `pressroom serve --listen 127.0.0.1:0` running; stopped with SIGTERM
/// when dropped.
pub(crate) struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    pub(crate) fn start(site: &Site) -> Server {
        Server::start_with(site, &[])
    }

    /// Starts with more environment variables.
    pub(crate) fn start_with(site: &Site, env: &[(&str, &str)]) -> Server {
        let mut command = site.command(None, &["serve", "--listen", "127.0.0.1:0"]);
        command.envs(env.iter().copied());
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN} serve: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split_once(" on http://") {
                    let addr = rest.1.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(addr);
                }
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!("serve did not start:\n{}", log.lock().unwrap());
        };
        // `HOST:PORT/PREFIX/`: the tests name whole paths.
        let host = addr.split('/').next().unwrap_or_default();
        let base = format!("http://{host}");
        Server { child, base, log }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// What the server answered.
pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(20))
        .build()
}

pub(crate) fn answer(result: Result<ureq::Response, ureq::Error>) -> Answer {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = response.header(&n).unwrap_or("").to_owned();
            (n, v)
        })
        .collect();
    let body = response.into_string().unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

fn get(url: &str) -> Answer {
    answer(agent().get(url).call())
}

fn post_form(url: &str, body: &str) -> Answer {
    answer(
        agent()
            .post(url)
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(body),
    )
}

fn unsubscribe_token(address: &str) -> String {
    token::sign(
        &EmailAddress::parse(address).unwrap(),
        LIST_ID,
        SECRET.as_bytes(),
    )
}

fn confirm_token(address: &str, issued_at: i64) -> String {
    token::sign_confirm(
        &EmailAddress::parse(address).unwrap(),
        LIST_ID,
        issued_at,
        SECRET.as_bytes(),
    )
}

/// A quoted-printable body made readable (soft breaks and `=3D`).
fn unquote(data: &str) -> String {
    data.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The confirmation link in the message to `to`, as a path.
fn confirmation_path(server: &FaultServer, to: &str) -> Option<String> {
    let messages: Vec<String> = server
        .received()
        .into_iter()
        .filter(|(rcpt, _)| rcpt.iter().any(|r| r == &to.to_lowercase()))
        .map(|(_, data)| unquote(&data))
        .collect();
    let data = messages.last()?;
    let start = data.find("https://dispatch.example.com/confirm?token=")?;
    let link: String = data[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/:.?=&_-".contains(*c))
        .collect();
    Some(
        link.trim_start_matches("https://dispatch.example.com")
            .to_owned(),
    )
}

pub(crate) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The exact request Gmail and Yahoo send (RFC 8058 §3.2), built from the
/// `List-Unsubscribe` header of the `.eml` that `preview` wrote: one POST
/// unsubscribes at once, with no redirect and no cookie, and repeating it
/// changes nothing. The next send leaves the reader out.
#[test]
fn one_click_post_from_a_previewed_eml_unsubscribes_at_once() {
    let smtp = FaultServer::start(&[]);
    let site = Site::new("oneclick", 3, &smtp.url(), "per_second = 0", "");
    let reader = site.addr(1);
    let out = site.path("preview-out");
    site.run(&["preview", "--to", &reader, "--out", out.to_str().unwrap()])
        .assert_code(0);
    let eml = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "eml"))
        .expect("preview wrote an .eml");
    let eml = std::fs::read_to_string(eml).unwrap();
    let head = eml
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header in\n{head}"))
            .to_owned()
    };
    assert_eq!(
        header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    let https = header("List-Unsubscribe")
        .split(',')
        .map(|p| {
            p.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .find(|u| u.starts_with("https://"))
        .expect("an https URL in List-Unsubscribe");
    let url = url::Url::parse(&https).unwrap();
    let path = format!("{}?{}", url.path(), url.query().unwrap());

    let mut server = Server::start(&site);
    let before = ledger_rows(&site.ledger());
    let answer = post_form(&server.url(&path), "List-Unsubscribe=One-Click");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("location"), None);
    assert_eq!(answer.header("set-cookie"), None);
    assert_eq!(answer.header("access-control-allow-origin"), None);
    assert!(
        answer.body.contains("You are unsubscribed"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains(&reader), "{}", answer.body);
    let after = ledger_rows(&site.ledger());
    assert_ne!(before, after);
    let suppression: Vec<&String> = after
        .iter()
        .filter(|r| r.starts_with("suppressions:"))
        .collect();
    assert_eq!(suppression.len(), 1, "{after:?}");
    assert!(
        suppression[0].contains(&format!("Text(\"{reader}\") Text(\"unsubscribed\")"))
            && suppression[0].contains("Text(\"one-click\")"),
        "{suppression:?}"
    );
    // Repeated: the same page, the first record kept.
    let again = post_form(&server.url(&path), "List-Unsubscribe=One-Click");
    assert_eq!(again.status, 200);
    assert_eq!(again.body, answer.body);
    assert_eq!(ledger_rows(&site.ledger()), after);
    assert_eq!(site.state_of(&reader).as_deref(), Some("unsubscribed"));
    // The token never reaches the log.
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .into_owned();
    assert!(!server.log().contains(&token), "{}", server.log());
    assert!(!server.log().contains(SECRET));
    assert!(server.terminate().success(), "{}", server.log());

    site.run(&["send", "--include-existing"]).assert_code(0);
    let counts = smtp.counts();
    assert_eq!(counts.get(&reader.to_lowercase()), None, "{counts:?}");
    assert_eq!(counts.get(&site.addr(0)).copied(), Some(1), "{counts:?}");
    assert_eq!(counts.get(&site.addr(2)).copied(), Some(1), "{counts:?}");
}

/// Link scanners open every link: a GET (and HEAD) to every route, with
/// genuine tokens, changes nothing. Forged, altered, expired and
/// cross-purpose tokens get a 4xx page and change nothing either.
#[test]
fn gets_and_bad_tokens_change_nothing() {
    let smtp = FaultServer::start(&[]);
    let site = Site::new("scanners", 2, &smtp.url(), "", "");
    let reader = site.addr(0);
    let mut server = Server::start(&site);
    // Something in the ledger to compare: one pending signup.
    let answer = post_form(
        &server.url("/subscribe"),
        &format!("email={reader}&name=Ann"),
    );
    assert_eq!(answer.status, 200);
    let before = ledger_rows(&site.ledger());
    assert!(
        before.iter().any(|r| r.starts_with("signups:")),
        "{before:?}"
    );

    let now = chrono::Utc::now().timestamp();
    let unsubscribe = unsubscribe_token(&reader);
    let confirm = confirm_token(&reader, now);
    for path in [
        format!("/unsubscribe?token={unsubscribe}"),
        format!("/confirm?token={confirm}"),
        "/subscribe".to_owned(),
        "/healthz".to_owned(),
        "/unsubscribe".to_owned(),
        "/confirm".to_owned(),
        "/nowhere".to_owned(),
    ] {
        let answer = get(&server.url(&path));
        assert!(
            answer.status == 200 || answer.status == 400 || answer.status == 404,
            "{path}: {}",
            answer.status
        );
        let head = self::answer(agent().head(&server.url(&path)).call());
        assert_eq!(head.status, answer.status, "HEAD {path}");
    }
    let page = get(&server.url(&format!("/unsubscribe?token={unsubscribe}")));
    assert!(page.body.contains(&reader) && page.body.contains("dispatch.example.com"));
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let page = get(&server.url(&format!("/confirm?token={confirm}")));
    assert!(page.body.contains("Confirm"), "{}", page.body);
    assert_eq!(
        ledger_rows(&site.ledger()),
        before,
        "a GET changed the ledger"
    );

    // A token signed for someone else, with another secret.
    let forged = token::sign(
        &EmailAddress::parse(&reader).unwrap(),
        LIST_ID,
        b"not-the-secret-at-all",
    );
    // The victim's address with the reader's signature.
    let (_, tag) = unsubscribe.split_once('.').unwrap();
    let victim = format!(
        "{}.{tag}",
        base64_url(format!("victim@{}", site.domain).as_bytes())
    );
    let mut altered = unsubscribe.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let expired = confirm_token(&reader, now - 49 * 3600);
    let cases = [
        ("/unsubscribe", forged.as_str(), 400),
        ("/unsubscribe", victim.as_str(), 400),
        ("/unsubscribe", altered.as_str(), 400),
        ("/unsubscribe", confirm.as_str(), 400),
        ("/unsubscribe", "", 400),
        ("/confirm", unsubscribe.as_str(), 400),
        ("/confirm", expired.as_str(), 410),
        ("/confirm", "garbage", 400),
    ];
    for (route, token, status) in cases {
        for answer in [
            post_form(
                &server.url(&format!("{route}?token={token}")),
                "List-Unsubscribe=One-Click",
            ),
            get(&server.url(&format!("{route}?token={token}"))),
        ] {
            assert_eq!(answer.status, status, "{route} {token}: {}", answer.body);
            assert!(
                answer.body.contains("<title>"),
                "a page, not a bare error: {}",
                answer.body
            );
            assert!(!answer.body.contains("unsubscribed"), "{}", answer.body);
        }
    }
    let missing = post_form(&server.url("/unsubscribe"), "List-Unsubscribe=One-Click");
    assert_eq!(missing.status, 400);
    assert_eq!(
        ledger_rows(&site.ledger()),
        before,
        "a refused token changed the ledger"
    );
    assert!(!server.log().contains(&unsubscribe) && !server.log().contains(&confirm));
    assert!(server.terminate().success());
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The signup page answers the same whatever the address's state, so it
/// cannot be used to probe the list; bots filling the hidden field get
/// that page too and nothing else; clients and addresses are limited.
/// Confirming a signup after an unsubscribe needs a link made after it.
#[test]
fn signups_reveal_nothing_and_are_limited() {
    let smtp = FaultServer::start(&[]);
    let site = Site::new(
        "signups",
        1,
        &smtp.url(),
        "",
        "signups_per_client_per_hour = 7\nsignups_per_address_per_hour = 4",
    );
    let mut server = Server::start(&site);
    let csv_reader = site.addr(0);
    let new = format!("new@{}", site.domain);
    let bot = format!("bot@{}", site.domain);

    let first = post_form(&server.url("/subscribe"), &format!("email={new}&name=N"));
    assert_eq!(first.status, 200);
    wait_for("the confirmation email", || {
        confirmation_path(&smtp, &new).is_some()
    });
    let link = confirmation_path(&smtp, &new).unwrap();
    assert_eq!(site.state_of(&new).as_deref(), Some("pending"));
    // Pending, and a CSV reader (active): the same page.
    let pending = post_form(&server.url("/subscribe"), &format!("email={new}"));
    let active = post_form(&server.url("/subscribe"), &format!("email={csv_reader}"));
    assert_eq!(pending.body, first.body);
    assert_eq!(active.body, first.body);
    // The honeypot: the same page, no row, no email.
    let trapped = post_form(
        &server.url("/subscribe"),
        &format!("email={bot}&website=http://spam"),
    );
    assert_eq!(trapped.body, first.body);

    // Confirm with the button.
    let confirmed = post_form(&server.url(&link), "");
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(site.state_of(&new).as_deref(), Some("active"));
    let active_signup = post_form(&server.url("/subscribe"), &format!("email={new}"));
    assert_eq!(active_signup.body, first.body);
    // Leave; the old link cannot bring the reader back.
    let unsubscribe = unsubscribe_token(&new);
    assert_eq!(
        post_form(
            &server.url(&format!("/unsubscribe?token={unsubscribe}")),
            ""
        )
        .status,
        200
    );
    let stale = post_form(&server.url(&link), "");
    assert_eq!(stale.status, 410, "{}", stale.body);
    assert_eq!(site.state_of(&new).as_deref(), Some("unsubscribed"));
    let suppressed = post_form(&server.url("/subscribe"), &format!("email={new}"));
    assert_eq!(suppressed.body, first.body);

    // Every request so far came from one client: 6 signups of its 7.
    let seventh = post_form(
        &server.url("/subscribe"),
        &format!("email=x@{}", site.domain),
    );
    assert_eq!(seventh.status, 200);
    let eighth = post_form(
        &server.url("/subscribe"),
        &format!("email=y@{}", site.domain),
    );
    assert_eq!(eighth.status, 429, "{}", eighth.body);

    std::thread::sleep(Duration::from_millis(300));
    assert!(server.terminate().success(), "{}", server.log());
    let mails = |to: &str| {
        smtp.received()
            .iter()
            .filter(|(rcpt, _)| rcpt.iter().any(|r| r == to))
            .count()
    };
    // new: the first request, the pending repeat and the request after
    // unsubscribing; none while it was an active signup.
    assert_eq!(mails(&new), 3, "{:?}", smtp.counts());
    // The server does not read subscribers.csv: a CSV reader who signs up
    // is asked to confirm like anyone new (and told nothing else).
    assert_eq!(mails(&csv_reader), 1);
    assert_eq!(mails(&bot), 0, "the honeypot sends nothing");
    assert_eq!(site.state_of(&bot), None, "the honeypot records nothing");
    assert_eq!(site.state_of(&format!("y@{}", site.domain)), None);
}

/// A reader signs up in a real browser (headless Chromium typing into the
/// form and clicking), gets the confirmation email from the SMTP server,
/// opens its link in the browser and presses Confirm; the next `send`
/// mails that reader, and `subscribers export` lists them.
#[test]
fn a_browser_signup_is_confirmed_and_mailed_by_the_next_send() {
    let smtp = FaultServer::start(&[]);
    let site = Site::new("browser", 2, &smtp.url(), "per_second = 0", "");
    let mut server = Server::start(&site);
    let reader = format!("Browser.Reader@{}", site.domain);

    let result = browser(&[
        serde_json::json!({"goto": server.url("/subscribe")}),
        serde_json::json!({"type": ["#email", reader]}),
        serde_json::json!({"type": ["#name", "Bea Browser"]}),
        serde_json::json!({"click": "button[type=submit]"}),
        serde_json::json!({"wait_text": "Check your inbox"}),
    ]);
    assert!(result.contains("Check your inbox"), "{result}");
    wait_for("the confirmation email", || {
        confirmation_path(&smtp, &reader).is_some()
    });
    let link = confirmation_path(&smtp, &reader).unwrap();
    assert_eq!(site.state_of(&reader).as_deref(), Some("pending"));
    let result = browser(&[
        serde_json::json!({"goto": server.url(&link)}),
        serde_json::json!({"wait_text": "Start sending"}),
        serde_json::json!({"click": "button[type=submit]"}),
        serde_json::json!({"wait_text": "You are subscribed"}),
    ]);
    assert!(result.contains(&reader.to_lowercase()), "{result}");
    let rows = site.subscribers();
    assert!(
        rows.contains(&(reader.clone(), "active".to_owned(), "signup".to_owned())),
        "{rows:?}"
    );
    let export = site.run(&["subscribers", "export"]);
    export.assert_code(0);
    assert!(
        export
            .stdout
            .starts_with("email,name,source,subscribed_at\n"),
        "{}",
        export.stdout
    );
    assert!(
        export
            .stdout
            .contains(&format!("{reader},Bea Browser,signup,")),
        "{}",
        export.stdout
    );
    assert!(server.terminate().success());

    // The evidence of consent: the client that confirmed, and when.
    let conn = rusqlite::Connection::open_with_flags(
        site.ledger(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (client, confirmed_at): (String, i64) = conn
        .query_row(
            "SELECT confirm_client, confirmed_at FROM signups",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(client, "127.0.0.1");
    assert!((chrono::Utc::now().timestamp() - confirmed_at).abs() < 120);
    drop(conn);

    let before = smtp.received().len();
    site.run(&["send", "--include-existing"]).assert_code(0);
    let newsletters: Vec<(Vec<String>, String)> = smtp.received().split_off(before);
    let to_reader: Vec<&String> = newsletters
        .iter()
        .filter(|(rcpt, _)| rcpt.contains(&reader.to_lowercase()))
        .map(|(_, data)| data)
        .collect();
    assert_eq!(to_reader.len(), 1, "{:?}", smtp.counts());
    assert!(
        to_reader[0].contains("To: \"Bea Browser\" <Browser.Reader@"),
        "{}",
        &to_reader[0][..600]
    );
    assert!(to_reader[0].contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert_eq!(newsletters.len(), 3, "two CSV readers and the signup");
}

/// Runs `tests/tools/browser.py` with these steps; returns what it printed.
fn browser(steps: &[serde_json::Value]) -> String {
    crate::common::require_tool("chromium", "chromium");
    let script = Path::new(REPO).join("tests/tools/browser.py");
    crate::common::run_tool(
        Command::new("/usr/bin/python3")
            .arg(script)
            .arg(serde_json::Value::Array(steps.to_vec()).to_string()),
    )
}

/// A long send runs (paced at 20 messages a second) while readers further
/// down its list unsubscribe through the server, each answered before the
/// send reaches them: none of them gets the newsletter, everyone else
/// gets it once, and both processes write the same ledger throughout.
#[test]
fn unsubscribes_during_a_send_stop_those_readers() {
    let smtp = FaultServer::start(&[]);
    let n = 80;
    let site = Site::new("during", n, &smtp.url(), "per_second = 20", "");
    let mut server = Server::start(&site);
    let mut order: Vec<String> = (0..n).map(|i| site.addr(i)).collect();
    order.sort();
    let mut send = site
        .command(Some(NOW), &["send", "--include-existing"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut unsubscribed: Vec<String> = Vec::new();
    let mut reached_first: Vec<String> = Vec::new();
    // The pace allows a first burst of 20 messages: start after it.
    let mut next = 25;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if send.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "send did not finish");
        let received = smtp.received();
        // Where the send is: past the last reader it reached (the readers
        // it skipped as unsubscribed count too).
        let at = received
            .last()
            .and_then(|(rcpt, _)| order.iter().position(|r| *r == rcpt[0]))
            .map_or(0, |i| i + 1);
        // Ten places ahead (half a second at its pace), unsubscribe two
        // readers, every five messages.
        if received.len() >= next && at + 12 < n {
            for reader in &order[at + 10..at + 12] {
                if unsubscribed.contains(reader) || reached_first.contains(reader) {
                    continue;
                }
                let token = unsubscribe_token(reader);
                let answer = post_form(
                    &server.url(&format!("/unsubscribe?token={token}")),
                    "List-Unsubscribe=One-Click",
                );
                assert_eq!(answer.status, 200);
                // On a machine slow enough for the send to overtake the
                // request, the reader had its message before leaving:
                // that one counts as reached, not as stopped.
                if smtp.counts().contains_key(reader) {
                    reached_first.push(reader.clone());
                } else {
                    unsubscribed.push(reader.clone());
                }
            }
            next = received.len() + 5;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut stderr = String::new();
    send.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(send.wait().unwrap().success(), "{stderr}");
    assert!(
        unsubscribed.len() >= 10,
        "only {} unsubscribed during the send",
        unsubscribed.len()
    );
    let counts = smtp.counts();
    for reader in &order {
        let expected = if unsubscribed.contains(reader) {
            None
        } else {
            Some(1)
        };
        assert_eq!(counts.get(reader).copied(), expected, "{reader}");
    }
    // The ledger says why.
    let rows = ledger_rows(&site.ledger());
    for reader in &unsubscribed {
        assert!(
            rows.iter().any(|r| r.starts_with("deliveries:")
                && r.contains(&format!("Text(\"{reader}\")"))
                && r.contains("failed")
                && r.contains("not sent: address suppressed (unsubscribed)")),
            "{reader}: {rows:?}"
        );
    }
    assert!(server.terminate().success());
}

/// Raw sockets: a client that sends its request head too slowly, or sends
/// nothing, is cut off after the read timeout; an oversized head or body
/// is refused; a request in flight when SIGTERM arrives is finished and
/// recorded, and the server then exits 0.
#[test]
fn slow_oversized_and_interrupted_clients() {
    let smtp = FaultServer::start(&[]);
    let site = Site::new("sockets", 2, &smtp.url(), "", "");
    let mut server = Server::start(&site);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let connect = || {
        let s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let closed_within = |mut s: TcpStream| {
        let start = Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (start.elapsed(), String::from_utf8_lossy(&buf).into_owned())
    };
    // Idle, and a head trickling in: both cut off (read timeout 2 s).
    let idle = connect();
    let mut slow = connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (waited, _) = closed_within(idle);
    assert!(
        waited < Duration::from_secs(8),
        "idle connection held {waited:?}"
    );
    let (waited, _) = closed_within(slow);
    assert!(waited < Duration::from_secs(8), "slow head held {waited:?}");

    // A body that never comes: 408 after the read timeout.
    let mut stalled = connect();
    stalled
        .write_all(b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=")
        .unwrap();
    let (_, reply) = closed_within(stalled);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");

    // Oversized head and body.
    let mut big = connect();
    let huge = "a".repeat(40 * 1024);
    let _ = big
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n").as_bytes());
    let (_, reply) = closed_within(big);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{reply}"
    );
    let body = format!("email={}", "b".repeat(20 * 1024));
    let answer = post_form(&server.url("/subscribe"), &body);
    assert_eq!(answer.status, 413);

    // SIGTERM while a one-click request is half sent: it is finished.
    let reader = site.addr(1);
    let token = unsubscribe_token(&reader);
    let mut inflight = connect();
    let body = "List-Unsubscribe=One-Click";
    inflight
        .write_all(format!("POST /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    signal(&server.child, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "serve exited with a request in flight"
    );
    // New connections are no longer accepted.
    assert!(
        TcpStream::connect(&addr).is_err(),
        "still accepting after SIGTERM"
    );
    inflight.write_all(body.as_bytes()).unwrap();
    let (_, reply) = closed_within(inflight);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
    assert_eq!(site.state_of(&reader).as_deref(), Some("unsubscribed"));
}

/// `subscribers` names every state and source, and `export` writes only
/// the active audience: a CSV reader the server rejected (bounced), one
/// who left with `pressroom unsubscribe`, one still active, and a signup
/// not yet confirmed.
#[test]
fn subscribers_lists_every_state_and_exports_the_audience() {
    let site_domain = unique_domain("states");
    let bounced = format!("r0@{site_domain}");
    let smtp = FaultServer::start(&["--reject", &bounced]);
    let site = Site {
        domain: site_domain,
        ..Site::new("states", 0, &smtp.url(), "per_second = 0", "")
    };
    let csv = format!(
        "email,name\n{},Bo\n{},Cy\n{},Di\n",
        site.addr(0),
        site.addr(1),
        site.addr(2)
    );
    std::fs::write(site.path("subscribers.csv"), csv).unwrap();
    site.run(&["send", "--include-existing"]).assert_code(0);
    site.run(&["unsubscribe", &site.addr(1)]).assert_code(0);
    let mut server = Server::start(&site);
    let pending = format!("new@{}", site.domain);
    assert_eq!(
        post_form(&server.url("/subscribe"), &format!("email={pending}")).status,
        200
    );
    assert!(server.terminate().success());

    let mut rows = site.subscribers();
    rows.sort();
    let expected = |email: &str, state: &str, source: &str| {
        (email.to_owned(), state.to_owned(), source.to_owned())
    };
    assert_eq!(
        rows,
        [
            expected(&pending, "pending", "signup"),
            expected(&site.addr(0), "bounced", "csv"),
            expected(&site.addr(1), "unsubscribed", "csv"),
            expected(&site.addr(2), "active", "csv"),
        ]
    );
    let table = site.run(&["subscribers"]);
    table.assert_code(0);
    assert!(
        table
            .stdout
            .ends_with("4 address(es): 1 active, 1 bounced, 1 pending, 1 unsubscribed\n"),
        "{}",
        table.stdout
    );
    let export = site.run(&["subscribers", "export"]);
    export.assert_code(0);
    assert_eq!(
        export.stdout,
        format!(
            "email,name,source,subscribed_at\n{},Di,csv,\n",
            site.addr(2)
        )
    );
    // The ledger knows how the unsubscribe came.
    let rows = ledger_rows(&site.ledger());
    assert!(
        rows.iter().any(|r| r.contains(&format!(
            "Text(\"{}\") Text(\"unsubscribed\")",
            site.addr(1)
        )) && r.contains("Text(\"command\")")),
        "{rows:?}"
    );
}

/// With `path_prefix = "/newsletter/"` and the unsubscribe URL under it,
/// every route lives under the prefix, nothing answers outside it, and
/// the confirmation link starts with the folder of `unsubscribe_url`.
#[test]
fn routes_live_under_the_path_prefix() {
    let smtp = FaultServer::start(&[]);
    let site = Site::new(
        "prefix",
        1,
        &smtp.url(),
        "",
        "path_prefix = \"/newsletter/\"\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    let config = std::fs::read_to_string(site.path("config.toml"))
        .unwrap()
        .replace(
            "unsubscribe_url = \"https://dispatch.example.com/unsubscribe\"",
            "unsubscribe_url = \"https://dispatch.example.com/newsletter/unsubscribe\"",
        );
    std::fs::write(site.path("config.toml"), config).unwrap();
    let mut server = Server::start(&site);
    assert_eq!(get(&server.url("/newsletter/healthz")).status, 200);
    assert_eq!(get(&server.url("/newsletter/subscribe")).status, 200);
    assert_eq!(get(&server.url("/subscribe")).status, 404);
    assert_eq!(
        post_form(&server.url("/unsubscribe?token=x"), "").status,
        404
    );

    let reader = format!("joiner@{}", site.domain);
    // Behind a trusted proxy, the client is the address it forwarded.
    let answer = answer(
        agent()
            .post(&server.url("/newsletter/subscribe"))
            .set("X-Forwarded-For", "203.0.113.50")
            .send_form(&[("email", reader.as_str())]),
    );
    assert_eq!(answer.status, 200);
    wait_for("the confirmation email", || {
        smtp.received()
            .iter()
            .any(|(rcpt, _)| rcpt.contains(&reader))
    });
    let data = unquote(&smtp.received()[0].1);
    let start = data
        .find("https://dispatch.example.com/newsletter/confirm?token=")
        .unwrap_or_else(|| panic!("no link under the prefix in\n{data}"));
    let link: String = data[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/:.?=&_-".contains(*c))
        .collect();
    let path = link.trim_start_matches("https://dispatch.example.com");
    assert_eq!(post_form(&server.url(path), "").status, 200);
    let unsubscribe = unsubscribe_token(&reader);
    let answer = post_form(
        &server.url(&format!("/newsletter/unsubscribe?token={unsubscribe}")),
        "List-Unsubscribe=One-Click",
    );
    assert_eq!(answer.status, 200);
    assert!(server.terminate().success());
    let rows = ledger_rows(&site.ledger());
    assert!(
        rows.iter()
            .any(|r| r.starts_with("signups:") && r.contains("Text(\"203.0.113.50\")")),
        "{rows:?}"
    );
}
