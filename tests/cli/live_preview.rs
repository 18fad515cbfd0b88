//! `pressroom preview --serve` through the real binary on 127.0.0.1: a real
//! headless Chromium (`tests/tools/live_browser.py`, driven over the
//! DevTools protocol) keeps the page open while the test edits an
//! article, a template, breaks them and saves an empty file, and reads the
//! page back after each save without navigating; a real HTTP client (ureq)
//! checks the controls; and `--out` is compared byte for byte with what a
//! plain `pressroom preview` writes.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{TestSite, BIN, NOW, PYTHON, REPO};

const ARTICLE: &str = "content/2026/pruning-your-list.md";
const TITLE: &str = "Pruning Your List Without Guilt";

/// `pressroom preview --serve` on a free port, with its stderr kept.
struct LiveServer {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl LiveServer {
    fn start(site: &TestSite, extra: &[&str]) -> LiveServer {
        let mut child = Command::new(BIN)
            .arg("--root")
            .arg(site.root())
            .args([
                "--now",
                NOW,
                "preview",
                "--serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .current_dir(std::env::temp_dir())
            .env_remove("PRESSROOM_LOG")
            .env_remove("PRESSROOM_SECRET")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN} preview --serve: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some((_, rest)) = line.split_once("live preview on ") {
                    let url = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(url);
                }
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok(url) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!("preview --serve did not start:\n{}", log.lock().unwrap());
        };
        LiveServer { child, url, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has `text` in a line after the first `skip`
    /// bytes.
    fn wait_log(&self, skip: usize, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.log()[skip..].contains(text) {
            assert!(
                Instant::now() < deadline,
                "the terminal never said {text:?}; it says:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "preview --serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium kept open by `tests/tools/live_browser.py`.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    fn start() -> Browser {
        crate::common::require_tool("chromium", "chromium");
        let script = Path::new(REPO).join("tests/tools/live_browser.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run live_browser.py: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut browser = Browser {
            child,
            stdin,
            stdout,
        };
        let ready = browser.read();
        assert_eq!(ready["ready"], json!(true), "{ready}");
        browser
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "live_browser.py stopped");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    fn send(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let reply = self.read();
        assert!(reply.get("error").is_none(), "{command}: {reply:#}");
        reply
    }

    fn goto(&mut self, url: &str) {
        self.send(json!({ "goto": url }));
    }

    fn eval(&mut self, js: &str) -> Value {
        self.send(json!({ "eval": js }))["value"].clone()
    }

    /// Waits until `js` is truthy in the page; returns its value.
    fn wait(&mut self, js: &str) -> Value {
        self.send(json!({ "wait": js, "timeout": 20 }))["value"].clone()
    }

    fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JavaScript string literal.
fn js(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// The first line `pressroom preview` prints on stderr for the site as it
/// is now (written to a throw-away folder); it must fail.
fn cli_problem(site: &TestSite) -> String {
    let out = tempfile::tempdir().unwrap();
    let run = site.run(&["preview", "--out", out.path().to_str().unwrap()]);
    run.assert_code(1);
    run.stderr
        .lines()
        .find(|l| !l.starts_with("warning:"))
        .unwrap_or_default()
        .to_owned()
}

/// The browser shows each save without a reload: a new title, a template
/// change, a broken front matter and template (with the `file:line`
/// message the command prints, on the page and the terminal) and their
/// fixes, and an empty file saved halfway; the server runs throughout and
/// writes no file.
#[test]
fn the_open_page_follows_every_save_without_a_reload() {
    let site = TestSite::sample();
    let mut server = LiveServer::start(&site, &[]);
    let mut browser = Browser::start();
    browser.goto(&server.url);
    browser.wait(&format!("document.body.innerText.includes({})", js(TITLE)));
    // A reload would lose this.
    browser.eval("window.stillThisPage = 'yes'");
    browser.wait("document.getElementById('status').textContent.startsWith('live')");

    // A new title.
    let original = site.read(ARTICLE);
    let edited = original.replace(TITLE, "Pruning, Edited While the Page Was Open");
    assert_ne!(edited, original);
    site.write(ARTICLE, &edited);
    browser.wait("document.body.innerText.includes('Pruning, Edited While the Page Was Open')");
    assert!(
        browser
            .eval("document.querySelector('iframe.desktop').srcdoc")
            .as_str()
            .unwrap()
            .contains("Pruning, Edited While the Page Was Open"),
        "the email frame shows the new title too"
    );
    assert!(!browser.text().contains(TITLE));
    assert_eq!(browser.eval("window.stillThisPage"), json!("yes"));

    // A template: the email frames change.
    let digest = std::fs::read_to_string(Path::new(REPO).join("templates/digest.html")).unwrap();
    let changed = digest.replace(">In this issue<", ">Inside this live issue<");
    assert_ne!(changed, digest);
    site.write("templates/digest.html", &changed);
    browser
        .wait("document.querySelector('iframe.desktop').srcdoc.includes('Inside this live issue')");
    let dark = browser.eval("document.querySelector('iframe.dark').srcdoc");
    let dark = dark.as_str().unwrap();
    assert!(dark.contains("Inside this live issue"));
    assert!(
        dark.contains("content=\"dark\""),
        "the dark frame forces dark"
    );
    assert!(!dark.contains("prefers-color-scheme: dark"));

    // A broken front matter: the message the command prints, on the page
    // and on the terminal.
    site.write(ARTICLE, edited.replacen("title: '", "title: ['", 1));
    let problem = cli_problem(&site);
    assert!(
        problem.starts_with("content/2026/pruning-your-list.md:3: invalid YAML"),
        "{problem}"
    );
    browser.wait(&format!(
        "(document.getElementById('problems') || {{innerText: ''}}).innerText.includes({})",
        js(&problem)
    ));
    server.wait_log(0, &problem);
    assert!(
        !browser.text().contains("Pruning, Edited While"),
        "the problem replaces the emails"
    );

    // Fixed: the page recovers by itself.
    site.write(ARTICLE, &edited);
    browser.wait(
        "!document.getElementById('problems') && document.body.innerText.includes('Pruning, Edited While the Page Was Open')",
    );

    // A broken template, then fixed.
    site.write("templates/digest.html", "{% if %}\n");
    let problem = cli_problem(&site);
    assert!(problem.starts_with("templates/digest.html:1:"), "{problem}");
    browser.wait(&format!(
        "(document.getElementById('problems') || {{innerText: ''}}).innerText.includes({})",
        js(&problem)
    ));
    server.wait_log(0, &problem);
    site.write("templates/digest.html", &changed);
    browser.wait("!document.getElementById('problems') && document.querySelector('iframe.desktop').srcdoc.includes('Inside this live issue')");

    // Saved empty halfway through writing: an error, not the end.
    site.write(ARTICLE, "");
    let problem = cli_problem(&site);
    browser.wait(&format!(
        "(document.getElementById('problems') || {{innerText: ''}}).innerText.includes({})",
        js(&problem)
    ));
    assert!(server.running(), "the server stopped after an empty save");
    site.write(ARTICLE, &original);
    browser.wait(&format!(
        "!document.getElementById('problems') && document.body.innerText.includes({})",
        js(TITLE)
    ));

    assert_eq!(browser.eval("window.stillThisPage"), json!("yes"));
    assert!(server.running());
    assert!(
        !site.path("preview").exists(),
        "--serve without --out wrote files"
    );
    let status = server.stop();
    assert!(status.success(), "{status}\n{}", server.log());
}

/// Fetches a page of the live server.
fn get(url: &str) -> String {
    ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_string()
        .unwrap()
}

/// `--out` writes exactly the files `pressroom preview` writes, and
/// writes them again after a save; the page's controls choose the mode,
/// the articles and the reader.
#[test]
fn out_matches_the_command_and_the_controls_choose() {
    let site = TestSite::sample();
    site.write(
        "subscribers.csv",
        "email,name,city\nada@example.com,Ada,Lisbon\nbo@example.com,Bo,Oslo\n",
    );
    let plain = site.run(&["preview", "--out", "plain"]);
    plain.assert_code(0);
    let mut server = LiveServer::start(&site, &["--out", "live"]);
    server.wait_log(0, "rendered 1 email(s)");
    let names = |dir: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(site.path(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("live"), names("plain"));
    assert!(names("live").len() >= 4, "{:?}", names("live"));
    for name in names("plain") {
        assert_eq!(
            std::fs::read(site.path(&format!("live/{name}"))).unwrap(),
            std::fs::read(site.path(&format!("plain/{name}"))).unwrap(),
            "{name} differs between preview --serve --out and preview"
        );
    }

    // A save writes the files again.
    let logged = server.log().len();
    let original = site.read(ARTICLE);
    site.write(ARTICLE, original.replace(TITLE, "Pruning, Written Again"));
    server.wait_log(logged, "rendered 1 email(s)");
    // The slug follows the title, and with it the file's name.
    let html = site.read("live/01-pruning-written-again.html");
    assert!(html.contains("Pruning, Written Again"));
    assert!(site
        .read("live/index.html")
        .contains("Pruning, Written Again"));

    // The controls.
    let page = get(&server.url);
    assert_eq!(page.matches("<section class=\"email\"").count(), 1);
    assert!(page.contains("reader@example.com"));
    assert!(page.contains("<option value=\"ada@example.com\">"));
    let two = "articles=welcome,why-we-built-our-publisher-in-rust";
    let per_article = get(&format!("{}?mode=per-article&{two}", server.url));
    assert_eq!(per_article.matches("<section class=\"email\"").count(), 2);
    let digest = get(&format!("{}?mode=digest&{two}", server.url));
    assert_eq!(digest.matches("<section class=\"email\"").count(), 1);
    assert!(digest.contains("Welcome to The Pressroom Dispatch"));
    let one = get(&format!(
        "{}?mode=per-article&articles=why-we-built-our-publisher-in-rust&to=bo%40example.com",
        server.url
    ));
    assert_eq!(one.matches("<section class=\"email\"").count(), 1);
    assert!(one.contains("Why We Built Our Publisher in Rust"));
    assert!(one.contains("For bo@example.com"));
    let unknown = get(&format!("{}?articles=no-such-article", server.url));
    assert!(unknown.contains("--articles: no article has the slug `no-such-article`"));
    assert!(server.running());
    assert!(server.stop().success());
}
