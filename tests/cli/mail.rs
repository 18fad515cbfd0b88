//! Helpers shared by the tests that talk to real mail servers
//! (`delivery.rs` through the library, `send.rs` through the binary):
//! Postfix's catch-all Maildir counted per recipient by `Delivered-To:`,
//! Postfix's queue, and the scriptable fault server
//! `tests/tools/fault_smtp.py` (aiosmtpd). Without the servers these
//! helpers fail and say how to start them; they never skip.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;

pub const SETUP_HINT: &str =
    "run `.ci/mail-servers` as root to install and start the test mail servers";
pub const MAILDIR: &str = "/var/mail/vhosts/catchall";
pub const POSTFIX_CERT: &str = "/etc/postfix/pressroom-test.crt";
/// The SASL user and password `.ci/mail-servers` creates for port 2587.
pub const POSTFIX_USER: &str = "pressroom@localhost";
pub const POSTFIX_PASSWORD: &str = "pressroom-test";
const POSTQUEUE: &str = "/usr/sbin/postqueue";

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn require_postfix() {
    for port in [2525, 2587] {
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            panic!("Postfix is not listening on 127.0.0.1:{port}: {SETUP_HINT}");
        }
    }
}

/// A domain no other test (or earlier run) uses, so Maildir counts are ours.
pub fn unique_domain(test: &str) -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{test}-{}-{nanos}.example.com", std::process::id())
}

// ---------- Postfix's Maildir ----------

fn maildir_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(dir) = std::fs::read_dir(Path::new(MAILDIR).join(sub)) {
            out.extend(dir.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    out
}

fn delivered_to(path: &Path) -> Option<String> {
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let head = String::from_utf8_lossy(&head[..n]);
    head.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Delivered-To: "))
        .map(|v| v.trim().to_lowercase())
}

/// Copies per recipient at `domain` in Postfix's Maildir, with the files.
pub fn maildir_counts(domain: &str) -> (HashMap<String, usize>, Vec<PathBuf>) {
    let suffix = format!("@{domain}");
    let mut counts = HashMap::new();
    let mut files = Vec::new();
    for path in maildir_files() {
        if let Some(to) = delivered_to(&path).filter(|t| t.ends_with(&suffix)) {
            *counts.entry(to).or_insert(0) += 1;
            files.push(path);
        }
    }
    (counts, files)
}

/// Removes every copy delivered to `domain`.
pub fn remove_maildir(domain: &str) {
    for f in maildir_counts(domain).1 {
        let _ = std::fs::remove_file(f);
    }
}

/// Removes the domain's copies when dropped, whether the test passed or not.
pub struct MaildirCleanup(pub String);

impl Drop for MaildirCleanup {
    fn drop(&mut self) {
        remove_maildir(&self.0);
    }
}

/// Waits until Postfix has delivered at least `expected` messages for
/// `domain` (then a little longer, so late duplicates would show).
pub fn wait_for_maildir(domain: &str, expected: usize) -> (HashMap<String, usize>, Vec<PathBuf>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (counts, _) = maildir_counts(domain);
        let total: usize = counts.values().sum();
        if total >= expected {
            std::thread::sleep(Duration::from_secs(2));
            return maildir_counts(domain);
        }
        if Instant::now() > deadline {
            panic!(
                "Postfix delivered {total} of {expected} messages for {domain} in 120 s; see /var/log/postfix.log"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Messages for `domain` still in Postfix's queues (`postqueue -j`: one
/// JSON object per queued message).
pub fn queued_for(domain: &str) -> usize {
    let out = Command::new(POSTQUEUE)
        .arg("-j")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {POSTQUEUE}: {e}; {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "postqueue -j failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let suffix = format!("@{domain}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("postqueue -j printed {l:?}: {e}"));
            v["recipients"].as_array().is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["address"]
                        .as_str()
                        .is_some_and(|a| a.to_lowercase().ends_with(&suffix))
                })
            })
        })
        .count()
}

/// Waits until Postfix holds nothing for `domain` in its queues and the
/// domain's Maildir count has stopped changing (at least `min` copies),
/// then returns the copies per recipient. Panics after `timeout`.
pub fn settle_maildir(domain: &str, min: usize, timeout: Duration) -> HashMap<String, usize> {
    let deadline = Instant::now() + timeout;
    let mut last: Option<usize> = None;
    loop {
        let queued = queued_for(domain);
        let (counts, _) = maildir_counts(domain);
        let total: usize = counts.values().sum();
        if queued == 0 && total >= min && last == Some(total) {
            return counts;
        }
        if Instant::now() > deadline {
            panic!(
                "Postfix did not settle for {domain} within {timeout:?}: {queued} queued, {total} delivered (expected at least {min}); see /var/log/postfix.log"
            );
        }
        last = (queued == 0).then_some(total);
        std::thread::sleep(Duration::from_millis(150));
    }
}

// ---------- the fault server ----------

pub struct FaultServer {
    child: Child,
    pub port: u16,
    record: PathBuf,
    rcpt_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl FaultServer {
    pub fn start(args: &[&str]) -> FaultServer {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("received.jsonl");
        let rcpt_log = dir.path().join("rcpt.log");
        let script = manifest_dir().join("tests/tools/fault_smtp.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .arg("--record")
            .arg(&record)
            .arg("--rcpt-log")
            .arg(&rcpt_log)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {SETUP_HINT}", script.display()));
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("fault_smtp.py did not start (said {line:?}); is python3-aiosmtpd installed? {SETUP_HINT}")
            });
        FaultServer {
            child,
            port,
            record,
            rcpt_log,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Accepted messages: (recipients, data).
    pub fn received(&self) -> Vec<(Vec<String>, String)> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let rcpt = v["rcpt_tos"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_lowercase())
                    .collect();
                (rcpt, v["data"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    /// Accepted copies per recipient.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (rcpt, _) in self.received() {
            for r in rcpt {
                *counts.entry(r).or_insert(0) += 1;
            }
        }
        counts
    }

    /// How often each address was offered in RCPT TO, whatever the answer.
    pub fn rcpt_attempts(&self) -> HashMap<String, usize> {
        let text = std::fs::read_to_string(&self.rcpt_log).unwrap_or_default();
        let mut counts = HashMap::new();
        for l in text.lines() {
            *counts.entry(l.trim().to_owned()).or_insert(0) += 1;
        }
        counts
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
