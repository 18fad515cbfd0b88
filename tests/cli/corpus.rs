//! The bad-input corpus: one folder per case under `tests/corpus/`, each a
//! small change to the shared good site `tests/corpus/_base/` (config.toml,
//! one article, a subscriber list) and a `case.toml` saying what to run and
//! exactly what must come out.
//!
//! For every case the base site is copied into `OUTER/site` together with
//! a good build's `public/`, a preview's `preview/` and a ledger
//! (`.pressroom/`, made by an `unsubscribe`), the case's own files are laid
//! over it, and each command is run with the real binary. Every run must
//! exit with the expected code and print the expected stderr lines; a run
//! that fails must leave `public/`, `preview/` and `.pressroom/` exactly as
//! they were (bytes and modification times), and no run may write next to
//! the site (in `OUTER`). All failing cases are reported together, by name.
//!
//! `case.toml`:
//!
//! ```toml
//! about = "what the case tries"
//! remove = ["content/good.md"]          # base files to delete first
//! generate = "big-article"              # input made by the test (see `generate`)
//! smtp = true                           # start tests/tools/fault_smtp.py; PRESSROOM_SMTP_URL points at it
//! [[write]]                             # a file written by the test:
//! path = "content/a.md"
//! text = "---\r\n…"                     #   TOML string (escapes: \r \n \uFEFF …)
//! escaped = "caf\\xe9"                  #   or text where \xNN is one raw byte
//! [[symlink]]
//! path = "content/loop"
//! target = ".."
//! [[chmod]]
//! path = "content/a.md"
//! mode = 0o000
//! [[run]]
//! commands = ["check", "build"]         # each run with the same expectations
//! code = 1
//! stderr = ["exact", "lines"]           # the whole stderr, in order
//! stderr_has = ["a line"]               # or: lines that must be present
//! only = "root"                         # "root" / "user": who the run applies to
//! [[run.file]]                          # after the run: a file's contents
//! path = "public/tags/a-b/rss.xml"      #   (`preview/*.eml`: every match, at least one)
//! contains = ["<title>"]
//! lacks = ["<script"]
//! absent = true                         #   or: no such file
//! [run.sent]                            # with smtp: what the server accepted
//! messages = 2
//! contains = ["Hello"]                  #   in every message
//! lacks = ["\nBcc:"]
//! ```
//!
//! In expected text `{root}` is the site's absolute path. Every other file
//! of the case folder (besides case.toml) is copied over the base as is.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::common::{copy_dir, snapshot, snapshot_differences, Run, Snapshot, BIN, NOW, REPO};
use crate::mail::FaultServer;

/// PRESSROOM_SECRET for every run.
const SECRET: &str = "corpus-unsubscribe-secret-4f2a9d";

/// The folders a failed run must not touch.
const GUARDED: [&str; 3] = ["public", "preview", ".pressroom"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    generate: Option<String>,
    #[serde(default)]
    smtp: bool,
    #[serde(default)]
    write: Vec<WriteFile>,
    #[serde(default)]
    symlink: Vec<Link>,
    #[serde(default)]
    chmod: Vec<Chmod>,
    run: Vec<RunSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteFile {
    path: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    escaped: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Link {
    path: String,
    target: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Chmod {
    path: String,
    mode: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSpec {
    commands: Vec<String>,
    code: i32,
    #[serde(default)]
    stderr: Option<Vec<String>>,
    #[serde(default)]
    stderr_has: Vec<String>,
    #[serde(default)]
    stderr_lacks: Vec<String>,
    #[serde(default)]
    only: Option<String>,
    #[serde(default)]
    file: Vec<FileCheck>,
    #[serde(default)]
    sent: Option<SentCheck>,
}

/// What the SMTP server accepted by the end of a run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SentCheck {
    messages: usize,
    #[serde(default)]
    contains: Vec<String>,
    #[serde(default)]
    lacks: Vec<String>,
    /// Each in at least one message.
    #[serde(default)]
    some_contain: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCheck {
    path: String,
    #[serde(default)]
    contains: Vec<String>,
    #[serde(default)]
    lacks: Vec<String>,
    #[serde(default)]
    absent: bool,
}

fn corpus_dir() -> PathBuf {
    Path::new(REPO).join("tests/corpus")
}

/// The base site with a good build, a preview and a ledger, made once.
fn seeded_base() -> &'static Path {
    static BASE: OnceLock<tempfile::TempDir> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("pressroom-corpus-base-")
            .tempdir()
            .expect("cannot create a temporary folder");
        copy_dir(&corpus_dir().join("_base"), dir.path());
        for args in [
            &["build"][..],
            &["preview"],
            &["unsubscribe", "gone@corpus.example.org"],
        ] {
            let run = run_in(dir.path(), args, None);
            assert_eq!(run.code, 0, "seeding the corpus base failed\n{run}");
        }
        for folder in GUARDED {
            assert!(
                dir.path().join(folder).is_dir(),
                "seeding did not make {folder}/"
            );
        }
        dir
    })
    .path()
}

fn run_in(root: &Path, args: &[&str], smtp_url: Option<&str>) -> Run {
    let mut all: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--now".into(),
        NOW.into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let mut command = Command::new(BIN);
    command
        .args(&all)
        .current_dir(std::env::temp_dir())
        .env_remove("PRESSROOM_LOG")
        .env_remove("PRESSROOM_SMTP_URL")
        .env_remove("PRESSROOM_SMTP_PASSWORD")
        .env("PRESSROOM_SECRET", SECRET)
        .env("NO_COLOR", "1");
    if let Some(url) = smtp_url {
        command.env("PRESSROOM_SMTP_URL", url);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    Run {
        args: all,
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `\xNN` becomes the byte 0xNN; everything else is kept as UTF-8.
fn unescape_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).expect("two hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits after \\x"));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn write_file(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("cannot create a folder");
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Inputs too big to commit, made by the test.
fn generate(name: &str, site: &Path) {
    match name {
        // 50 MB of real paragraphs: over the article size limit.
        "big-article" => {
            let path = site.join("content/big.md");
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path).expect("cannot create the big article"),
            );
            file.write_all(
                b"---\ntitle: 'A Fifty Megabyte Article'\npublish_date: '2026-03-02'\n---\n\n",
            )
            .unwrap();
            let paragraph =
                "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(16) + "\n\n";
            for _ in 0..(50 * 1024 * 1024 / paragraph.len() + 1) {
                file.write_all(paragraph.as_bytes()).unwrap();
            }
            file.flush().unwrap();
        }
        // 1,000,000 rows: every 100,000th a bad address, every 250,000th
        // a repeat (in another case) of row 2.
        "million-subscribers" => {
            let path = site.join("subscribers.csv");
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path).expect("cannot create the subscriber list"),
            );
            writeln!(file, "email,name").unwrap();
            for i in 1..=1_000_000u32 {
                if i % 100_000 == 0 {
                    writeln!(file, "not-an-address-{i},Bad {i}").unwrap();
                } else if i % 250_000 == 0 {
                    writeln!(file, "R1@Corpus.Example.org,Again").unwrap();
                } else {
                    writeln!(file, "r{i}@corpus.example.org,Reader {i}").unwrap();
                }
            }
            file.flush().unwrap();
        }
        other => panic!("unknown generator `{other}`"),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

extern "C" {
    fn geteuid() -> u32;
}

fn guarded(site: &Path) -> BTreeMap<&'static str, Snapshot> {
    GUARDED
        .iter()
        .map(|folder| (*folder, snapshot(&site.join(folder))))
        .collect()
}

/// Everything in `outer` besides the site itself.
fn beside_site(outer: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(outer)
        .expect("cannot list the outer folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "site")
        .collect();
    names.sort();
    names
}

/// The files a check's `path` names: one path, or `dir/*.ext` (every
/// match).
fn matching(site: &Path, pattern: &str) -> Vec<PathBuf> {
    match pattern.rsplit_once("/*") {
        Some((dir, suffix)) => {
            let mut found: Vec<PathBuf> = std::fs::read_dir(site.join(dir))
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.to_string_lossy().ends_with(suffix))
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            found
        }
        None => {
            let path = site.join(pattern);
            if path.exists() {
                vec![path]
            } else {
                Vec::new()
            }
        }
    }
}

/// Runs one case; returns what went wrong (empty when it passed).
fn run_case(name: &str, folder: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(folder.join("case.toml"))
        .unwrap_or_else(|e| panic!("{name}: cannot read case.toml: {e}"));
    let case: Case = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: bad case.toml: {e}"));
    assert!(!case.about.is_empty(), "{name}: say what the case is about");
    let outer = tempfile::Builder::new()
        .prefix("pressroom-corpus-")
        .tempdir()
        .expect("cannot create a temporary folder");
    let site = outer.path().join("site");
    copy_dir(seeded_base(), &site);
    for relative in &case.remove {
        std::fs::remove_file(site.join(relative))
            .unwrap_or_else(|e| panic!("{name}: cannot remove {relative}: {e}"));
    }
    for entry in walkdir::WalkDir::new(folder).min_depth(1) {
        let entry = entry.expect("cannot walk the case folder");
        let relative = entry.path().strip_prefix(folder).expect("inside");
        if entry.file_type().is_file() && relative != Path::new("case.toml") {
            let bytes = std::fs::read(entry.path()).expect("cannot read a case file");
            write_file(&site.join(relative), &bytes);
        }
    }
    for w in &case.write {
        let bytes = match (&w.text, &w.escaped) {
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(escaped)) => unescape_bytes(escaped),
            _ => panic!("{name}: [[write]] {} needs one of text or escaped", w.path),
        };
        write_file(&site.join(&w.path), &bytes);
    }
    for link in &case.symlink {
        let path = site.join(&link.path);
        std::fs::create_dir_all(path.parent().expect("a parent")).unwrap();
        std::os::unix::fs::symlink(&link.target, &path)
            .unwrap_or_else(|e| panic!("{name}: cannot link {}: {e}", link.path));
    }
    if let Some(generator) = &case.generate {
        generate(generator, &site);
    }
    for c in &case.chmod {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(site.join(&c.path), std::fs::Permissions::from_mode(c.mode))
            .unwrap_or_else(|e| panic!("{name}: cannot chmod {}: {e}", c.path));
    }
    let server = case.smtp.then(|| FaultServer::start(&[]));
    let smtp_url = server.as_ref().map(FaultServer::url);

    let root_text = site.display().to_string();
    let fill = |s: &String| s.replace("{root}", &root_text);
    let mut failures = Vec::new();
    let root = is_root();
    for spec in &case.run {
        match spec.only.as_deref() {
            None => {}
            Some("root") if root => {}
            Some("user") if !root => {}
            Some("root" | "user") => continue,
            Some(other) => panic!("{name}: only = {other:?}: use \"root\" or \"user\""),
        }
        for command in &spec.commands {
            let args: Vec<&str> = command.split_whitespace().collect();
            let before = guarded(&site);
            let run = run_in(&site, &args, smtp_url.as_deref());
            let mut wrong = Vec::new();
            if run.code != spec.code {
                wrong.push(format!("exit status {} (expected {})", run.code, spec.code));
            }
            let lines: Vec<&str> = run.stderr.lines().collect();
            if let Some(expected) = &spec.stderr {
                let expected: Vec<String> = expected.iter().map(fill).collect();
                if lines != expected {
                    wrong.push(format!(
                        "stderr differs\n  expected:\n    {}\n  got:\n    {}",
                        expected.join("\n    "),
                        lines.join("\n    ")
                    ));
                }
            }
            for line in spec.stderr_has.iter().map(fill) {
                if !lines.contains(&line.as_str()) {
                    wrong.push(format!("stderr lacks the line {line:?}"));
                }
            }
            for text in spec.stderr_lacks.iter().map(fill) {
                if run.stderr.contains(&text) {
                    wrong.push(format!("stderr contains {text:?}"));
                }
            }
            if run.code != 0 {
                let after = guarded(&site);
                for (folder, old) in &before {
                    for difference in snapshot_differences(old, &after[folder]) {
                        wrong.push(format!("the failed run changed {folder}/{difference}"));
                    }
                }
            }
            let beside = beside_site(outer.path());
            if !beside.is_empty() {
                wrong.push(format!("written outside the site: {beside:?}"));
            }
            for check in &spec.file {
                let found = matching(&site, &check.path);
                if check.absent {
                    if !found.is_empty() {
                        wrong.push(format!("{} exists", check.path));
                    }
                    continue;
                }
                if found.is_empty() {
                    wrong.push(format!("{}: no such file", check.path));
                }
                for path in found {
                    let shown = crate::common::relative(&site, &path);
                    let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default())
                        .into_owned();
                    for needle in check.contains.iter().map(fill) {
                        if !text.contains(&needle) {
                            wrong.push(format!("{shown} lacks {needle:?}"));
                        }
                    }
                    for needle in check.lacks.iter().map(fill) {
                        if text.contains(&needle) {
                            wrong.push(format!("{shown} contains {needle:?}"));
                        }
                    }
                }
            }
            if let Some(check) = &spec.sent {
                let received = server
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: [run.sent] needs smtp = true"))
                    .received();
                if received.len() != check.messages {
                    wrong.push(format!(
                        "the server accepted {} message(s), expected {}",
                        received.len(),
                        check.messages
                    ));
                }
                for needle in check.some_contain.iter().map(fill) {
                    if !received.iter().any(|(_, data)| data.contains(&needle)) {
                        wrong.push(format!("no message contains {needle:?}"));
                    }
                }
                for (to, data) in &received {
                    for needle in check.contains.iter().map(fill) {
                        if !data.contains(&needle) {
                            wrong.push(format!("the message to {to:?} lacks {needle:?}"));
                        }
                    }
                    for needle in check.lacks.iter().map(fill) {
                        if data.contains(&needle) {
                            wrong.push(format!("the message to {to:?} contains {needle:?}"));
                        }
                    }
                }
            }
            if let Some(server) = &server {
                if !wrong.is_empty() {
                    wrong.push(format!(
                        "the SMTP server accepted {} message(s)",
                        server.received().len()
                    ));
                }
            }
            if !wrong.is_empty() {
                failures.push(format!("`{command}`: {}\n{run}", wrong.join("\n")));
            }
        }
    }
    // Restore permissions so the temporary folder can be removed.
    for c in &case.chmod {
        use std::os::unix::fs::PermissionsExt;
        let _ =
            std::fs::set_permissions(site.join(&c.path), std::fs::Permissions::from_mode(0o644));
    }
    failures
}

/// Every case folder's name, sorted (`_base` is not a case).
fn case_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus is missing")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("case.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_corpus_case_gives_its_message_and_exit_code_and_changes_nothing_when_it_fails() {
    let names = case_names();
    assert!(names.len() >= 40, "only {} corpus cases", names.len());
    seeded_base();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(name) = names.get(i) else { break };
                let problems = run_case(name, &corpus_dir().join(name));
                if !problems.is_empty() {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("=== {name}\n{}", problems.join("\n---\n")));
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
}
