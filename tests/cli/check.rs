//! Bad content (the `broken` fixture): `check` and `build` exit 1, list
//! every problem in every file as `path:line: key: message`, and a failed
//! build leaves the previous good output exactly as it was.

use std::time::Duration;

use crate::common::{snapshot_differences, Run, Snapshot, TestSite};

/// The fixture's broken files and the exact problem lines each must give.
const BROKEN: &[(&str, &[&str])] = &[
    (
        "content/bad-date.md",
        &["content/bad-date.md:4: publish_date: `2025-02-30` is not a date that exists"],
    ),
    (
        "content/unclosed-fence.md",
        &["content/unclosed-fence.md:1: front matter is not closed: add a line `---` after the last front-matter key"],
    ),
    (
        "content/notes/title-list.md",
        &["content/notes/title-list.md:2: title: expected text, found a list"],
    ),
    (
        "content/two-problems.md",
        &[
            "content/two-problems.md:4: draft: expected true or false, found the text `yes`",
            "content/two-problems.md:5: tags: expected a list of tags, found a map",
        ],
    ),
    (
        // Its `slug:` (line 3) repeats the slug of content/cdata-notes.md.
        "content/duplicate-slug.md",
        &["content/duplicate-slug.md:3: slug: `cdata-notes` is also the slug of content/cdata-notes.md; give one of them another `slug:`"],
    ),
];

/// Written by the test rather than committed: Latin-1 bytes on line 6.
const NOT_UTF8_PATH: &str = "content/not-utf8.md";
const NOT_UTF8: &[u8] =
    b"---\ntitle: 'Latin-1 Bytes'\npublish_date: '2025-08-01'\n---\n\nThis caf\xe9 was saved as Latin-1.\n";

/// The good articles of the fixture, which must never be blamed.
const GOOD: &[&str] = &[
    "content/cdata-notes.md",
    "content/welcome.md",
    "content/notes/scheduled.md",
];

fn not_utf8_line() -> String {
    let at = NOT_UTF8
        .iter()
        .position(|&b| b == 0xe9)
        .expect("the bad byte");
    let line = NOT_UTF8[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    format!("{NOT_UTF8_PATH}:{line}: the file is not valid UTF-8 (byte {at}); save it as UTF-8")
}

/// Every problem line the broken site must print, sorted.
fn expected_lines() -> Vec<String> {
    let mut lines: Vec<String> = BROKEN
        .iter()
        .flat_map(|(_, lines)| lines.iter().map(|l| (*l).to_owned()))
        .collect();
    lines.push(not_utf8_line());
    // After the problems, one line counts them.
    let count = lines.len();
    lines.push(format!("error: {count} problems found"));
    lines.sort();
    lines
}

struct BrokenRuns {
    _site: TestSite,
    good_public: Snapshot,
    after_public: Snapshot,
    check: Run,
    build: Run,
}

/// Builds the fixture without its broken files, then adds them (and the
/// non-UTF-8 one) and runs `check` and `build`.
fn broken_runs() -> BrokenRuns {
    let site = TestSite::fixture("broken");
    let held: Vec<(&str, Vec<u8>)> = BROKEN
        .iter()
        .map(|(path, _)| {
            let full = site.path(path);
            let bytes = std::fs::read(&full)
                .unwrap_or_else(|e| panic!("fixture file {path} is missing: {e}"));
            std::fs::remove_file(&full).expect("set the broken file aside");
            (*path, bytes)
        })
        .collect();
    site.run(&["check"]).assert_code(0);
    site.build();
    let good_public = site.snapshot_public();
    assert!(
        good_public.contains_key("rss.xml") && good_public.contains_key("tags/xml/atom.xml"),
        "the good build wrote {:?}",
        good_public.keys().collect::<Vec<_>>()
    );

    for (path, bytes) in &held {
        site.write(path, bytes);
    }
    site.write(NOT_UTF8_PATH, NOT_UTF8);
    // Any rewrite, even of identical bytes, would move a modification time.
    std::thread::sleep(Duration::from_millis(1100));
    let check = site.run(&["check"]);
    let build = site.run(&["build"]);
    let after_public = site.snapshot_public();
    BrokenRuns {
        _site: site,
        good_public,
        after_public,
        check,
        build,
    }
}

#[test]
fn broken_content_fails_check_and_build_and_leaves_public_untouched() {
    let runs = broken_runs();
    runs.check.assert_code(1);
    runs.build.assert_code(1);
    let differences = snapshot_differences(&runs.good_public, &runs.after_public);
    assert!(
        differences.is_empty(),
        "the failed build touched public/:\n{}",
        differences.join("\n")
    );
    for run in [&runs.check, &runs.build] {
        // Lines as printed, with any leading `error: ` set aside; that
        // prefix is pinned by the test below.
        let lines: Vec<&str> = run
            .stderr_lines()
            .into_iter()
            .map(|l| l.strip_prefix("error: ").unwrap_or(l))
            .collect();
        let mut broken: Vec<&str> = BROKEN.iter().map(|(p, _)| *p).collect();
        broken.push(NOT_UTF8_PATH);
        for path in broken {
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("{path}:"))),
                "{path} is not named at the start of a line\n{run}"
            );
        }
        for path in GOOD {
            assert!(
                !lines.iter().any(|l| l.starts_with(path)),
                "the good article {path} was blamed\n{run}"
            );
        }
    }
}

#[test]
fn every_problem_is_one_exact_path_line_key_message_line() {
    let runs = broken_runs();
    let expected = expected_lines();
    for run in [&runs.check, &runs.build] {
        let printed = run.stderr_lines();
        assert!(
            printed.last().is_some_and(|l| l.starts_with("error: ")),
            "the count comes last\n{run}"
        );
        let mut got: Vec<String> = printed.into_iter().map(str::to_owned).collect();
        got.sort();
        let missing: Vec<&String> = expected.iter().filter(|l| !got.contains(l)).collect();
        let unexpected: Vec<&String> = got.iter().filter(|l| !expected.contains(l)).collect();
        assert!(
            missing.is_empty() && unexpected.is_empty(),
            "stderr of `{}` should be exactly the problem lines\nmissing:\n  {}\nunexpected:\n  {}\n\n{run}",
            run.args.join(" "),
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  "),
            unexpected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  "),
        );
    }
}

// ---------------------------------------------------------------------------
// Send settings

/// `pressroom --root SITE --now NOW ARGS…` with a secret and no SMTP
/// settings from the environment.
fn run_with_secret(site: &TestSite, args: &[&str]) -> crate::common::Run {
    let output = std::process::Command::new(crate::common::BIN)
        .arg("--root")
        .arg(site.root())
        .args(["--now", crate::common::NOW])
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("PRESSROOM_LOG")
        .env_remove("PRESSROOM_SMTP_URL")
        .env_remove("PRESSROOM_SMTP_PASSWORD")
        .env("NO_COLOR", "1")
        .env("PRESSROOM_SECRET", "check-test-secret-7d41c2")
        .output()
        .expect("the binary runs");
    crate::common::Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the real `openssl` with `args` in the site's folder.
fn openssl(site: &TestSite, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(site.root())
        .output()
        .expect("the openssl binary (Debian package openssl) runs");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The sample site with a subscriber list and `smtp` as its `[smtp]`
/// section.
fn sending_site(smtp: &str) -> TestSite {
    let site = TestSite::sample();
    let mut config = site.read("config.toml");
    config.push_str(&format!(
        "\n[send]\nsubscribers = \"subscribers.csv\"\n\n[smtp]\n{smtp}\n"
    ));
    site.write("config.toml", config);
    site.write("subscribers.csv", "email\nann@example.org\n");
    site
}

/// The 1-based line of `config.toml` that starts with `start`.
fn config_line(site: &TestSite, start: &str) -> usize {
    site.read("config.toml")
        .lines()
        .position(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line `{start}`"))
        + 1
}

/// OpenSSL 3's `openssl genrsa` writes PKCS#8 (`BEGIN PRIVATE KEY`);
/// `send` refused it ("for rsa use a PKCS#1 PEM") after `check` had passed
/// the site. Both accept it now, and ed25519 keys from `genpkey`.
#[test]
fn dkim_keys_from_openssl_pass_check_and_send() {
    for (algorithm, generate) in [
        ("rsa", &["genrsa", "-out", "dkim.pem", "2048"][..]),
        (
            "ed25519",
            &["genpkey", "-algorithm", "ed25519", "-out", "dkim.pem"][..],
        ),
    ] {
        let site = sending_site(&format!(
            "url = \"smtp://localhost:25\"\n[smtp.dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nprivate_key = \"dkim.pem\"\nalgorithm = \"{algorithm}\""
        ));
        openssl(&site, generate);
        assert!(site
            .read("dkim.pem")
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        let check = run_with_secret(&site, &["check"]);
        check.assert_code(0);
        // A fresh ledger: the back catalogue is recorded, nothing is
        // mailed, so no server is needed; the key is loaded first.
        let send = run_with_secret(&site, &["send"]);
        send.assert_code(0);
        assert!(
            send.stderr.contains("recorded as already sent"),
            "{algorithm}: {send}"
        );
    }
}

/// `check` loads every send setting it can without connecting and names
/// the config line of each problem, all at once.
#[test]
fn check_reports_send_settings_with_their_config_lines() {
    let site = sending_site(
        "url = \"http://mail.example.org\"\n[smtp.dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nprivate_key = \"dkim.pem\"",
    );
    site.write(
        "dkim.pem",
        "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n",
    );
    let check = run_with_secret(&site, &["check"]);
    check.assert_code(1);
    let root = site.root().display().to_string();
    let url_line = config_line(&site, "url = \"http:");
    let key_line = config_line(&site, "private_key =");
    let lines = check.stderr_lines();
    assert!(
        lines.contains(&format!("config.toml:{url_line}: smtp.url: smtp url `http://mail.example.org/`: scheme `http` is not smtp or smtps").as_str()),
        "{check}"
    );
    let key_problem = format!(
        "config.toml:{key_line}: smtp.dkim.private_key: {root}/dkim.pem: not a usable DKIM rsa private key ("
    );
    assert!(lines.iter().any(|l| l.starts_with(&key_problem)), "{check}");
    assert!(lines.contains(&"error: 2 problems found"), "{check}");

    // TLS with a CA file that is not there; an ed25519 key set as rsa.
    let site = sending_site(
        "url = \"smtps://mail.example.org\"\nca_file = \"relay-ca.pem\"\n[smtp.dkim]\ndomain = \"example.org\"\nselector = \"s1\"\nprivate_key = \"dkim.pem\"",
    );
    openssl(
        &site,
        &["genpkey", "-algorithm", "ed25519", "-out", "dkim.pem"],
    );
    let check = run_with_secret(&site, &["check"]);
    check.assert_code(1);
    let root = site.root().display().to_string();
    let ca_line = config_line(&site, "ca_file =");
    let key_line = config_line(&site, "private_key =");
    let lines = check.stderr_lines();
    let ca_problem = format!(
        "config.toml:{ca_line}: smtp.ca_file: {root}/relay-ca.pem: cannot read the CA file: "
    );
    assert!(lines.iter().any(|l| l.starts_with(&ca_problem)), "{check}");
    let key_problem = format!(
        "config.toml:{key_line}: smtp.dkim.private_key: {root}/dkim.pem: not a usable DKIM rsa private key (this is an ed25519 key; set algorithm = \"ed25519\" in [smtp.dkim])"
    );
    assert!(lines.iter().any(|l| l.starts_with(&key_problem)), "{check}");
}
