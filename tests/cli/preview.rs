//! `pressroom preview` through the real binary: the `.eml` files it writes
//! are parsed with Python's own MIME parser (`tests/tools/eml_check.py`,
//! stdlib `email` with `policy.default`), unsubscribe tokens are verified
//! with Python's `hmac`, the HTML part is read with lol_html, the sample
//! digest is snapshotted (insta) and scored by SpamAssassin, and fixtures
//! try to inject headers, markup and template code through front matter.
//!
//! Every run passes [`NOW`] and a fixed `PRESSROOM_SECRET`, so the output
//! is the same bytes every time.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lol_html::{element, rewrite_str, text, RewriteStrSettings};
use serde::Deserialize;
use url::Url;

use crate::common::{
    files_under, read, require_tool, run_tool, Run, TestSite, BIN, NOW, PYTHON, REPO,
};
use crate::source::{self, SourceArticle};

/// The secret every preview signs unsubscribe tokens with.
const SECRET: &str = "pressroom-test-secret-0123456789";

/// The recipient a preview renders for when `--to` is not given.
const SAMPLE_TO: &str = "reader@example.com";
const SAMPLE_NAME: &str = "Sample Reader";

/// The `Date` every preview carries: [`NOW`] as RFC 5322.
const DATE: &str = "Sun, 29 Nov 2026 12:00:00 +0000";

/// The headers every newsletter must carry exactly once.
const REQUIRED: &[&str] = &[
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Precedence",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
];

// ---------------------------------------------------------------------------
// Running the binary and reading what it wrote

/// Runs `pressroom --root SITE --now NOW ARGS…` with `PRESSROOM_SECRET` set.
fn run(site: &TestSite, args: &[&str]) -> Run {
    let output = Command::new(BIN)
        .arg("--root")
        .arg(site.root())
        .args(["--now", NOW])
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("PRESSROOM_LOG")
        .env("NO_COLOR", "1")
        .env("PRESSROOM_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    let mut all = vec![
        "--root".to_owned(),
        site.root().display().to_string(),
        "--now".to_owned(),
        NOW.to_owned(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    Run {
        args: all,
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// One email the preview wrote: its files and the parsed `.eml`.
#[derive(Debug)]
struct Email {
    /// `NN-slug`.
    stem: String,
    html: String,
    txt: String,
    eml_bytes: Vec<u8>,
    eml: Eml,
}

impl Email {
    /// The slug part of the stem.
    fn slug(&self) -> &str {
        self.stem.split_once('-').map_or("", |(_, slug)| slug)
    }
}

/// What one preview run produced.
struct Preview {
    run: Run,
    dir: PathBuf,
    emails: Vec<Email>,
}

impl Preview {
    fn index(&self) -> String {
        read(&self.dir.join("index.html"))
    }
}

/// Runs `preview --out OUT ARGS…`, insists that it exits with `code`,
/// prints the index path and wrote `.html`, `.txt` and `.eml` for each
/// email, and parses every `.eml`.
fn preview_with_code(site: &TestSite, out: &str, args: &[&str], code: i32) -> Preview {
    let mut all = vec!["preview", "--out", out];
    all.extend_from_slice(args);
    let run = run(site, &all);
    run.assert_code(code);
    let dir = site.path(out);
    assert_eq!(
        run.stdout.trim(),
        dir.join("index.html").display().to_string(),
        "preview prints the index path\n{run}"
    );
    let files = files_under(&dir);
    let stems: BTreeSet<String> = files
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_suffix(".eml")
                .map(str::to_owned)
        })
        .collect();
    let mut expected: BTreeSet<String> = ["index.html".to_owned()].into();
    for stem in &stems {
        for ext in ["html", "txt", "eml"] {
            expected.insert(format!("{stem}.{ext}"));
        }
    }
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, expected, "files in {}\n{run}", dir.display());
    let paths: Vec<PathBuf> = stems.iter().map(|s| dir.join(format!("{s}.eml"))).collect();
    let mut parsed = parse_emls(&paths);
    let emails = stems
        .iter()
        .zip(&paths)
        .map(|(stem, path)| Email {
            stem: stem.clone(),
            html: read(&dir.join(format!("{stem}.html"))),
            txt: read(&dir.join(format!("{stem}.txt"))),
            eml_bytes: std::fs::read(path).expect("read the .eml"),
            eml: parsed
                .remove(&path.display().to_string())
                .unwrap_or_else(|| panic!("eml_check.py did not parse {}", path.display())),
        })
        .collect();
    Preview { run, dir, emails }
}

fn preview(site: &TestSite, out: &str, args: &[&str]) -> Preview {
    preview_with_code(site, out, args, 0)
}

// ---------------------------------------------------------------------------
// The parsed message (tests/tools/eml_check.py)

#[derive(Debug, Deserialize)]
struct Parsed {
    messages: BTreeMap<String, Eml>,
}

#[derive(Debug, Clone, Deserialize)]
struct Eml {
    headers: BTreeMap<String, Vec<String>>,
    header_names: Vec<String>,
    addresses: BTreeMap<String, Vec<Address>>,
    content_type: String,
    is_multipart: bool,
    defects: Vec<String>,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Address {
    display_name: String,
    addr_spec: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Part {
    content_type: String,
    charset: Option<String>,
    content: String,
    defects: Vec<String>,
    /// HTML parts: the text a reader sees.
    text: Option<String>,
    /// HTML parts: every `<a href>`.
    links: Option<Vec<Link>>,
}

#[derive(Debug, Clone, Deserialize)]
struct Link {
    href: String,
    text: String,
}

impl Eml {
    /// Every value of a header (name compared without case).
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter().map(String::as_str))
            .collect()
    }

    /// The value of a header that must be there exactly once.
    fn one(&self, name: &str) -> &str {
        let values = self.all(name);
        assert_eq!(values.len(), 1, "{name}: {values:?}\n{:#?}", self.headers);
        values[0]
    }

    fn text_part(&self) -> &Part {
        &self.parts[0]
    }

    fn html_part(&self) -> &Part {
        &self.parts[1]
    }

    /// The `<…>` URLs of `List-Unsubscribe`, in order.
    fn unsubscribe_urls(&self) -> Vec<String> {
        let value = self.one("List-Unsubscribe");
        value
            .split(',')
            .map(|u| {
                let u = u.trim();
                assert!(
                    u.starts_with('<') && u.ends_with('>'),
                    "List-Unsubscribe entries are <URL>: {value}"
                );
                u[1..u.len() - 1].to_owned()
            })
            .collect()
    }

    /// The token of the https unsubscribe URL in `List-Unsubscribe`.
    fn token(&self) -> String {
        let urls = self.unsubscribe_urls();
        let https = urls
            .iter()
            .find(|u| u.starts_with("https:"))
            .unwrap_or_else(|| panic!("no https URL in List-Unsubscribe: {urls:?}"));
        token_of(https).unwrap_or_else(|| panic!("no token in {https}"))
    }
}

/// Parses `.eml` files with Python's `email` package.
fn parse_emls(paths: &[PathBuf]) -> BTreeMap<String, Eml> {
    if paths.is_empty() {
        return BTreeMap::new();
    }
    let python = require_tool(PYTHON, "python3");
    let script = Path::new(REPO).join("tests/tools/eml_check.py");
    let stdout = run_tool(Command::new(python).arg(script).args(paths));
    let parsed: Parsed =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("eml_check.py JSON: {e}"));
    parsed.messages
}

/// The `token` query parameter of a URL.
fn token_of(url: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

// ---------------------------------------------------------------------------
// What the site's own files say

/// The `[site]` and `[email]` values the headers come from, read with toml.
struct EmailSource {
    site_title: String,
    from: String,
    from_name: String,
    reply_to: String,
    list_id: String,
    unsubscribe_mailto: String,
    unsubscribe_url: String,
}

fn email_source(root: &Path) -> EmailSource {
    let doc: toml::Table = toml::from_str(&read(&root.join("config.toml"))).expect("config.toml");
    let get = |table: &str, key: &str| {
        doc[table]
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("config.toml has no {table}.{key}"))
            .to_owned()
    };
    EmailSource {
        site_title: get("site", "title"),
        from: get("email", "from"),
        from_name: get("email", "from_name"),
        reply_to: get("email", "reply_to"),
        list_id: get("email", "list_id"),
        unsubscribe_mailto: get("email", "unsubscribe_mailto"),
        unsubscribe_url: get("email", "unsubscribe_url"),
    }
}

/// The slug of an article: the last segment of its URL.
fn slug_of(article: &SourceArticle) -> String {
    let url = Url::parse(&article.url).expect("article URLs are absolute");
    url.path_segments()
        .and_then(|mut s| s.rfind(|s| !s.is_empty()))
        .unwrap_or_default()
        .to_owned()
}

// ---------------------------------------------------------------------------
// Text helpers

/// Whitespace runs folded to one space, typographic quotes made straight
/// (the CTA is rendered with smart punctuation: `we'll` becomes `we’ll`).
fn normalize(text: &str) -> String {
    text.replace(['\u{2018}', '\u{2019}'], "'")
        .replace(['\u{201C}', '\u{201D}'], "\"")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text part without the `> ` quote markers the digest puts in front
/// of each CTA line, normalized.
fn unquoted_text(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.strip_prefix("> ").or(l.strip_prefix('>')).unwrap_or(l))
        .collect();
    normalize(&lines.join("\n"))
}

/// A CTA as written in front matter, as plain text: every `[label](url)`
/// becomes `label`. Returns the text and the link URLs.
fn cta_plain(markdown: &str) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut urls = Vec::new();
    let mut rest = markdown;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find("](").and_then(|close| {
            let target = &after[close + 2..];
            target
                .find(')')
                .map(|end| (&after[..close], &target[..end], &target[end + 1..]))
        });
        match link {
            Some((label, url, tail)) => {
                text.push_str(&rest[..open]);
                text.push_str(label);
                urls.push(url.to_owned());
                rest = tail;
            }
            None => {
                text.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    text.push_str(rest);
    (normalize(&text), urls)
}

/// A URL without its `utm_*` query parameters (and without an empty query).
fn without_utm(url: &str) -> Option<Url> {
    let mut url = Url::parse(url).ok()?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("utm_"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Some(url)
}

/// Every http(s) URL written out in a plain-text part.
fn text_urls(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter_map(|word| {
            let at = word.find("http://").or_else(|| word.find("https://"))?;
            Some(
                word[at..]
                    .trim_end_matches(['>', ')', ']', ',', '.', ';'])
                    .to_owned(),
            )
        })
        .collect()
}

/// Decodes the character references HTML serializers write.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                "middot" => Some('·'),
                "rarr" => Some('→'),
                "zwnj" => Some('\u{200c}'),
                _ => name
                    .strip_prefix("#x")
                    .or(name.strip_prefix("#X"))
                    .map(|h| u32::from_str_radix(h, 16).ok())
                    .unwrap_or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every URL-valued attribute in an HTML document, read with lol_html:
/// `(element, attribute, decoded value)`; `srcset` gives one entry per
/// candidate.
fn html_urls(html: &str) -> Vec<(String, String, String)> {
    const URL_ATTRIBUTES: &[&str] = &[
        "href",
        "src",
        "srcset",
        "background",
        "poster",
        "action",
        "cite",
        "data",
    ];
    let found = RefCell::new(Vec::new());
    let settings = RewriteStrSettings {
        element_content_handlers: vec![element!("*", |el| {
            let tag = el.tag_name();
            for attr in el.attributes() {
                let name = attr.name();
                if !URL_ATTRIBUTES.contains(&name.as_str()) {
                    continue;
                }
                let value = decode_entities(&attr.value());
                if name == "srcset" {
                    for candidate in value.split(',') {
                        if let Some(url) = candidate.split_whitespace().next() {
                            found
                                .borrow_mut()
                                .push((tag.clone(), name.clone(), url.to_owned()));
                        }
                    }
                } else {
                    found.borrow_mut().push((tag.clone(), name, value));
                }
            }
            Ok(())
        })],
        ..RewriteStrSettings::new()
    };
    rewrite_str(html, settings).expect("lol_html reads the HTML part");
    found.into_inner()
}

// ---------------------------------------------------------------------------
// Shared assertions

/// Structure and every header of one newsletter.
fn assert_newsletter(email: &Email, config: &EmailSource, subject: &str, to: &Address) {
    let eml = &email.eml;
    let shown = format!("{}.eml", email.stem);
    assert!(eml.defects.is_empty(), "{shown}: {:?}", eml.defects);
    assert!(eml.is_multipart, "{shown}: not multipart");
    assert_eq!(eml.content_type, "multipart/alternative", "{shown}");
    let kinds: Vec<(&str, Option<&str>)> = eml
        .parts
        .iter()
        .map(|p| (p.content_type.as_str(), p.charset.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [("text/plain", Some("utf-8")), ("text/html", Some("utf-8"))],
        "{shown}: exactly two parts, text first"
    );
    for part in &eml.parts {
        assert!(part.defects.is_empty(), "{shown}: {:?}", part.defects);
    }
    // The .txt and .html files are the parts, byte for byte.
    assert_eq!(eml.text_part().content, email.txt, "{shown}: .txt differs");
    assert_eq!(
        eml.html_part().content,
        email.html,
        "{shown}: .html differs"
    );

    // Every header once, and no header twice.
    for name in REQUIRED {
        eml.one(name);
    }
    let mut seen = BTreeSet::new();
    for name in &eml.header_names {
        assert!(
            seen.insert(name.to_ascii_lowercase()),
            "{shown}: header {name} appears twice: {:?}",
            eml.header_names
        );
    }

    assert_eq!(
        eml.addresses["From"],
        [Address {
            display_name: config.from_name.clone(),
            addr_spec: config.from.clone(),
        }],
        "{shown}: From"
    );
    assert_eq!(
        eml.one("From"),
        format!("{} <{}>", config.from_name, config.from)
    );
    assert_eq!(eml.addresses["To"], std::slice::from_ref(to), "{shown}: To");
    assert_eq!(
        eml.addresses["Reply-To"],
        [Address {
            display_name: String::new(),
            addr_spec: config.reply_to.clone(),
        }],
        "{shown}: Reply-To"
    );
    assert_eq!(eml.one("Subject"), subject, "{shown}: Subject");
    assert_eq!(eml.one("Date"), DATE, "{shown}: Date");
    let id = eml.one("Message-ID");
    assert!(
        id.starts_with('<') && id.ends_with('>') && id.matches('@').count() == 1,
        "{shown}: Message-ID {id}"
    );
    assert_eq!(
        eml.one("List-Id"),
        format!("\"{}\" <{}>", config.site_title, config.list_id),
        "{shown}: List-Id"
    );
    let urls = eml.unsubscribe_urls();
    assert_eq!(urls.len(), 2, "{shown}: List-Unsubscribe {urls:?}");
    assert_eq!(
        urls[0],
        format!("mailto:{}?subject=unsubscribe", config.unsubscribe_mailto),
        "{shown}"
    );
    let https = Url::parse(&urls[1]).expect("the https unsubscribe URL parses");
    assert_eq!(https.scheme(), "https", "{shown}");
    assert_eq!(
        format!("{}", without_token(&https)),
        config.unsubscribe_url,
        "{shown}: unsubscribe base"
    );
    assert!(!eml.token().is_empty(), "{shown}");
    assert_eq!(
        eml.one("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(eml.one("Precedence"), "bulk");
    assert_eq!(eml.one("Auto-Submitted"), "auto-generated");
    assert_eq!(eml.one("MIME-Version"), "1.0");
}

fn without_token(url: &Url) -> Url {
    let mut url = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url
}

fn sample_to() -> Address {
    Address {
        display_name: SAMPLE_NAME.into(),
        addr_spec: SAMPLE_TO.into(),
    }
}

/// The sample digest (one email with every published article) and the
/// per-article emails (one per published article), checked for which
/// articles they hold. With no ledger yet every article counts as
/// pending only with `--include-existing`, as for `send`.
fn sample_previews(site: &TestSite) -> (Email, Vec<(Email, SourceArticle)>) {
    let published = source::published(site.root());
    assert!(published.len() >= 3, "the sample site has articles");
    let mut digest = preview(site, "digest", &["--mode", "digest", "--include-existing"]).emails;
    assert_eq!(digest.len(), 1, "one digest");
    let digest = digest.remove(0);
    assert_eq!(
        digest.stem,
        format!("01-{}", slug_of(&published[0])),
        "the digest is named after its newest article"
    );
    let per_article = preview(
        site,
        "per-article",
        &["--mode", "per-article", "--include-existing"],
    )
    .emails;
    assert_eq!(
        per_article.len(),
        published.len(),
        "one email per published article: {:?}",
        per_article.iter().map(|e| &e.stem).collect::<Vec<_>>()
    );
    let mut pairs = Vec::new();
    // Oldest first, numbered from 01.
    for (n, (email, article)) in per_article
        .into_iter()
        .zip(published.iter().rev())
        .enumerate()
    {
        assert_eq!(email.stem, format!("{:02}-{}", n + 1, slug_of(article)));
        pairs.push((email, article.clone()));
    }
    (digest, pairs)
}

// ---------------------------------------------------------------------------
// 1. Structure and headers

#[test]
fn sample_digest_is_multipart_alternative_with_every_header_once() {
    let site = TestSite::sample();
    let config = email_source(site.root());
    let published = source::published(site.root());
    let preview = preview(&site, "preview", &[]);
    assert_eq!(preview.emails.len(), 1, "the sample site mails a digest");
    let email = &preview.emails[0];
    let subject = format!(
        "{}: {} and {} more",
        config.site_title,
        published[0].title,
        published.len() - 1
    );
    assert_newsletter(email, &config, &subject, &sample_to());
    // Every published article is in the digest, newest first.
    let text = &email.eml.text_part().content;
    let mut at = 0;
    for article in &published {
        let found = text[at..]
            .find(&format!("\n{}\n", article.title))
            .unwrap_or_else(|| panic!("digest text lacks (or misorders) {}", article.title));
        at += found + 1;
    }
    // The default output folder is preview/ under the root.
    let default = run(&site, &["preview"]);
    default.assert_code(0);
    assert_eq!(
        default.stdout.trim(),
        site.path("preview/index.html").display().to_string()
    );
}

#[test]
fn per_article_emails_are_multipart_alternative_with_every_header_once() {
    let site = TestSite::sample();
    let config = email_source(site.root());
    let (_, emails) = sample_previews(&site);
    for (email, article) in &emails {
        assert_newsletter(email, &config, &article.title, &sample_to());
        assert!(
            email.txt.starts_with(&format!("{}\n", article.title)),
            "{}: the text part starts with the title",
            email.stem
        );
    }
    let ids: BTreeSet<&str> = emails
        .iter()
        .map(|(e, _)| e.eml.one("Message-ID"))
        .collect();
    assert_eq!(
        ids.len(),
        emails.len(),
        "every email has its own Message-ID"
    );
}

#[test]
fn message_id_is_deterministic_and_differs_per_recipient() {
    let site = TestSite::sample();
    let config = email_source(site.root());
    let first = preview(&site, "first", &[]);
    let second = preview(&site, "second", &[]);
    let (a, b) = (&first.emails[0], &second.emails[0]);
    assert_eq!(a.eml.one("Message-ID"), b.eml.one("Message-ID"));
    assert_eq!(a.eml_bytes, b.eml_bytes, "two previews give the same .eml");

    let other = preview(&site, "other", &["--to", "Other.Reader@Example.org"]);
    let c = &other.emails[0];
    assert_newsletter(
        c,
        &config,
        a.eml.one("Subject"),
        &Address {
            display_name: String::new(),
            addr_spec: "Other.Reader@Example.org".into(),
        },
    );
    assert_ne!(
        a.eml.one("Message-ID"),
        c.eml.one("Message-ID"),
        "another recipient, another Message-ID"
    );
    assert_ne!(a.eml.token(), c.eml.token());
    // The same domain part: only the recipient changed.
    assert_eq!(
        a.eml.one("Message-ID").rsplit_once('@').map(|(_, d)| d),
        c.eml.one("Message-ID").rsplit_once('@').map(|(_, d)| d)
    );
    assert!(
        c.txt.contains("Other.Reader@Example.org subscribed"),
        "{}",
        c.txt
    );
}

// ---------------------------------------------------------------------------
// 2. The unsubscribe token

/// Verifies tokens with Python's hmac/hashlib/base64, independently of
/// src/email/token.rs: `base64url(address) "." base64url(HMAC-SHA256)`,
/// unpadded, over `len(part) as u64 BE || part` for the purpose string,
/// the list id and the lower-cased address. Prints one JSON object per
/// token: the address it names, and whether the MAC verifies.
const VERIFY_TOKEN: &str = r#"
import base64, hashlib, hmac, json, os, struct, sys

def b64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

secret = os.environ["PRESSROOM_SECRET"].encode()
list_id = sys.argv[1].encode()
out = []
for token in sys.argv[2:]:
    try:
        address, tag = token.split(".")
        address, tag = b64(address), b64(tag)
        mac = hmac.new(secret, digestmod=hashlib.sha256)
        for part in (b"pressroom-unsubscribe-v1", list_id, address):
            mac.update(struct.pack(">Q", len(part)) + part)
        ok = hmac.compare_digest(mac.digest(), tag)
        out.append({"address": address.decode(), "valid": ok})
    except Exception as e:
        out.append({"address": None, "valid": False, "error": str(e)})
print(json.dumps(out))
"#;

#[derive(Debug, Deserialize)]
struct Verified {
    address: Option<String>,
    valid: bool,
}

fn verify_tokens(list_id: &str, tokens: &[String]) -> Vec<Verified> {
    let python = require_tool(PYTHON, "python3");
    let stdout = run_tool(
        Command::new(python)
            .env("PRESSROOM_SECRET", SECRET)
            .args(["-c", VERIFY_TOKEN, list_id])
            .args(tokens),
    );
    serde_json::from_str(&stdout).expect("a JSON list")
}

/// `token` with one byte of its MAC changed (decoded, flipped, re-encoded,
/// so the change cannot hide in base64 padding bits).
fn tamper_mac(token: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let (address, tag) = token.split_once('.').expect("address.tag");
    let mut tag = URL_SAFE_NO_PAD.decode(tag).expect("base64url tag");
    tag[7] ^= 0x01;
    format!("{address}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// `token` naming another address under the same MAC.
fn tamper_address(token: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let (address, tag) = token.split_once('.').expect("address.tag");
    let mut address = URL_SAFE_NO_PAD.decode(address).expect("base64url address");
    address[0] ^= 0x01;
    format!("{}.{tag}", URL_SAFE_NO_PAD.encode(address))
}

#[test]
fn unsubscribe_token_verifies_with_the_secret_and_is_the_visible_link() {
    let site = TestSite::sample();
    let config = email_source(site.root());
    let digest = preview(&site, "preview", &[]);
    let other = preview(&site, "other", &["--to", "Someone@Example.net"]);
    let mut checked = 0;
    for (email, address) in [
        (&digest.emails[0], SAMPLE_TO),
        (&other.emails[0], "someone@example.net"),
    ] {
        let token = email.eml.token();
        let tokens = [token.clone(), tamper_mac(&token), tamper_address(&token)];
        let verified = verify_tokens(&config.list_id, &tokens);
        assert_eq!(
            verified[0].address.as_deref(),
            Some(address),
            "{verified:?}"
        );
        assert!(verified[0].valid, "the token verifies: {token}");
        assert!(
            !verified[1].valid,
            "a changed MAC byte fails: {}",
            tokens[1]
        );
        assert!(!verified[2].valid, "a changed address fails: {}", tokens[2]);
        // Signed for this list only.
        let wrong_list = verify_tokens("other.example.com", &tokens[..1]);
        assert!(!wrong_list[0].valid, "{wrong_list:?}");

        // The visible unsubscribe link in the HTML part carries the token.
        let links = email.eml.html_part().links.as_ref().expect("links");
        let unsubscribe: Vec<&Link> = links
            .iter()
            .filter(|l| l.href.starts_with(&config.unsubscribe_url))
            .collect();
        assert_eq!(unsubscribe.len(), 1, "{unsubscribe:?}");
        assert_eq!(normalize(&unsubscribe[0].text), "Unsubscribe");
        assert_eq!(token_of(&unsubscribe[0].href).as_deref(), Some(&*token));
        assert_eq!(
            unsubscribe[0].href,
            email.eml.unsubscribe_urls()[1],
            "the HTML link is the header's URL"
        );
        // And the text part shows the same URL, whole.
        let text = &email.eml.text_part().content;
        let shown: Vec<String> = text_urls(text)
            .into_iter()
            .filter(|u| u.starts_with(&config.unsubscribe_url))
            .collect();
        assert_eq!(shown, [email.eml.unsubscribe_urls()[1].clone()], "{text}");
        assert!(
            text.contains(&format!("Unsubscribe: {}", shown[0])),
            "{text}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
}

// ---------------------------------------------------------------------------
// 3. The CTA in both parts

fn assert_ctas(email: &Email, articles: &[&SourceArticle]) -> usize {
    let text = unquoted_text(&email.eml.text_part().content);
    let html_text = normalize(email.eml.html_part().text.as_deref().expect("html text"));
    let hrefs: Vec<Url> = email
        .eml
        .html_part()
        .links
        .as_ref()
        .expect("links")
        .iter()
        .filter_map(|l| without_utm(&l.href))
        .collect();
    let text_links: Vec<Url> = text_urls(&email.eml.text_part().content)
        .iter()
        .filter_map(|u| without_utm(u))
        .collect();
    let mut checked = 0;
    for article in articles {
        let Some(cta) = &article.cta else { continue };
        let (plain, urls) = cta_plain(cta);
        assert!(
            text.contains(&plain),
            "{}: the text part lacks the CTA of {}: {plain:?}\n{}",
            email.stem,
            article.source,
            email.txt
        );
        assert!(
            html_text.contains(&plain),
            "{}: the HTML part lacks the CTA of {}: {plain:?}\n{html_text}",
            email.stem,
            article.source
        );
        for url in urls {
            let want = without_utm(&url).unwrap_or_else(|| panic!("CTA URL {url}"));
            assert!(
                hrefs.contains(&want),
                "{}: no HTML link to the CTA URL {want} of {}",
                email.stem,
                article.source
            );
            assert!(
                text_links.contains(&want),
                "{}: the text part does not show the CTA URL {want} of {}\n{}",
                email.stem,
                article.source,
                email.txt
            );
        }
        checked += 1;
    }
    checked
}

#[test]
fn every_cta_is_in_both_parts_of_every_email_that_carries_its_article() {
    let site = TestSite::sample();
    let published = source::published(site.root());
    let with_cta = published.iter().filter(|a| a.cta.is_some()).count();
    assert!(with_cta >= 3, "the sample has CTAs to check");
    assert!(
        published
            .iter()
            .any(|a| a.cta.as_deref().is_some_and(|c| c.contains("]("))),
        "the sample has a CTA with a link"
    );
    let (digest, per_article) = sample_previews(&site);
    let all: Vec<&SourceArticle> = published.iter().collect();
    assert_eq!(assert_ctas(&digest, &all), with_cta);
    let mut checked = 0;
    for (email, article) in &per_article {
        checked += assert_ctas(email, &[article]);
    }
    assert_eq!(checked, with_cta);
}

// ---------------------------------------------------------------------------
// 4. Absolute URLs and https images

fn assert_absolute_urls(email: &Email) -> usize {
    let urls = html_urls(&email.eml.html_part().content);
    let mut problems = Vec::new();
    for (tag, attr, value) in &urls {
        match Url::parse(value.trim()) {
            Err(e) => problems.push(format!("<{tag} {attr}=\"{value}\">: not absolute ({e})")),
            Ok(url) => {
                if !matches!(url.scheme(), "https" | "http" | "mailto") {
                    problems.push(format!(
                        "<{tag} {attr}=\"{value}\">: scheme {}",
                        url.scheme()
                    ));
                }
                if tag == "img" && url.scheme() != "https" {
                    problems.push(format!("<img {attr}=\"{value}\">: not https"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        email.stem,
        problems.join("\n")
    );
    urls.len()
}

#[test]
fn every_url_in_the_html_part_is_absolute_and_images_are_https() {
    let site = TestSite::sample();
    let (digest, per_article) = sample_previews(&site);
    assert!(assert_absolute_urls(&digest) > 10);
    for (email, _) in &per_article {
        assert!(assert_absolute_urls(email) > 3, "{}", email.stem);
    }
    // The article built to have relative links and a srcset is checked.
    let relative = per_article
        .iter()
        .find(|(_, a)| a.source == "content/guides/relative-links.md")
        .expect("the sample's relative-links article");
    let urls = html_urls(&relative.0.eml.html_part().content);
    assert!(
        urls.iter().any(|(_, attr, _)| attr == "srcset"),
        "the relative-links article keeps its srcset: {urls:?}"
    );
}

// ---------------------------------------------------------------------------
// 5. index.html

/// The rows of the preview index: `(href, decoded text)` of each link.
fn index_rows(index: &str) -> Vec<Vec<(String, String)>> {
    let rows: RefCell<Vec<Vec<(String, String)>>> = RefCell::new(Vec::new());
    let settings = RewriteStrSettings {
        element_content_handlers: vec![
            element!("tbody tr", |_| {
                rows.borrow_mut().push(Vec::new());
                Ok(())
            }),
            element!("tbody tr a[href]", |el| {
                let href = decode_entities(&el.get_attribute("href").unwrap_or_default());
                if let Some(row) = rows.borrow_mut().last_mut() {
                    row.push((href, String::new()));
                }
                Ok(())
            }),
            text!("tbody tr a[href]", |t| {
                if let Some(link) = rows.borrow_mut().last_mut().and_then(|r| r.last_mut()) {
                    link.1.push_str(t.as_str());
                }
                Ok(())
            }),
        ],
        ..RewriteStrSettings::new()
    };
    rewrite_str(index, settings).expect("lol_html reads index.html");
    rows.into_inner()
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|(href, text)| (href, decode_entities(&text)))
                .collect()
        })
        .collect()
}

fn assert_index(preview: &Preview) {
    let index = preview.index();
    let rows = index_rows(&index);
    assert_eq!(
        rows.len(),
        preview.emails.len(),
        "one row per email\n{index}"
    );
    for (row, email) in rows.iter().zip(&preview.emails) {
        let subject = email.eml.one("Subject");
        let stem = &email.stem;
        assert!(
            row.contains(&(format!("{stem}.html"), subject.to_owned())),
            "{stem}: the row links the subject to the HTML: {row:?}"
        );
        for (ext, label) in [("html", "html"), ("txt", "text"), ("eml", "eml")] {
            let href = format!("{stem}.{ext}");
            assert!(
                row.contains(&(href.clone(), label.to_owned())),
                "{stem}: no `{label}` link to {href}: {row:?}"
            );
            assert!(preview.dir.join(&href).is_file(), "{href} exists");
        }
        for (href, _) in row {
            assert!(
                preview.dir.join(href).is_file(),
                "the index links to {href}, which does not exist"
            );
        }
    }
}

#[test]
fn index_lists_every_email_with_its_subject_and_links_to_its_files() {
    let site = TestSite::sample();
    assert_index(&preview(&site, "digest", &[]));
    let per_article = preview(
        &site,
        "per-article",
        &["--mode", "per-article", "--include-existing"],
    );
    assert!(per_article.emails.len() > 1);
    assert_index(&per_article);
    let chosen = preview(
        &site,
        "chosen",
        &[
            "--mode",
            "per-article",
            "--articles",
            "welcome,why-we-built-our-publisher-in-rust",
        ],
    );
    let slugs: BTreeSet<&str> = chosen.emails.iter().map(|e| e.slug()).collect();
    assert_eq!(
        slugs,
        ["welcome", "why-we-built-our-publisher-in-rust"].into(),
        "--articles previews exactly those"
    );
    assert_index(&chosen);
}

// ---------------------------------------------------------------------------
// 6. Injection through front matter and --to

/// Runs the injection fixture in both modes.
fn injection_previews(site: &TestSite) -> Vec<Email> {
    let digest = preview(site, "digest", &["--mode", "digest", "--include-existing"]);
    assert_eq!(digest.emails.len(), 1);
    let per_article = preview(
        site,
        "per-article",
        &["--mode", "per-article", "--include-existing"],
    );
    assert_eq!(per_article.emails.len(), 3);
    digest
        .emails
        .into_iter()
        .chain(per_article.emails)
        .collect()
}

#[test]
fn cr_lf_in_a_title_or_author_never_starts_a_header() {
    let site = TestSite::fixture("injection");
    let emails = injection_previews(&site);
    let mut saw_title = 0;
    for email in &emails {
        let eml = &email.eml;
        let names: Vec<String> = eml
            .header_names
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        for bad in ["bcc", "cc", "x-injected"] {
            assert!(
                !names.iter().any(|n| n == bad),
                "{}: header {bad} was injected: {:?}",
                email.stem,
                eml.header_names
            );
        }
        eml.one("Subject");
        assert_eq!(eml.addresses["To"], [sample_to()], "{}", email.stem);
        assert!(eml.defects.is_empty(), "{}: {:?}", email.stem, eml.defects);
        let raw = String::from_utf8_lossy(&email.eml_bytes);
        let head = raw.split("\r\n\r\n").next().unwrap_or_default();
        assert!(
            !head.contains("\r\nBcc:") && !head.contains("\r\nX-Injected:"),
            "{}: raw header block:\n{head}",
            email.stem
        );
        let subject = eml.one("Subject");
        if subject.contains("Hello") {
            assert!(
                subject.contains("Hello Bcc: victim@example.com"),
                "{}: the title is folded onto one line: {subject:?}",
                email.stem
            );
            saw_title += 1;
        }
        // The author is shown on one line too, never as a header.
        if email.txt.contains("Eve") {
            assert!(email.txt.contains("Eve X-Injected: yes"), "{}", email.txt);
        }
    }
    assert_eq!(saw_title, 2, "the digest and the article carry the title");
    for email in &emails {
        assert_eq!(email.eml.one("Subject").lines().count(), 1);
    }
}

/// C0 controls and noncharacters in the title, author and body reach no
/// email: Python's parser finds no defect, no header holds a control
/// character, and the parts keep the readable text.
#[test]
fn control_characters_reach_no_email() {
    let site = TestSite::fixture("injection");
    site.write(
        "content/controls.md",
        "---\ntitle: \"Bell\\x07 and \\x1b[31m Title\\uFFFE\"\nauthor: \"Null\\x01 Author\"\npublish_date: '2025-06-01 09:00'\ncta: \"Reply\\x08 now\"\n---\n\nQuokka \u{1}\u{b}\u{c}\u{1b}\u{fffe} raw.\n",
    );
    let emails = preview(
        &site,
        "controls",
        &["--mode", "per-article", "--include-existing"],
    )
    .emails;
    let controls = |text: &str| -> Vec<u32> {
        text.chars()
            .filter(|&c| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}')
            .map(|c| c as u32)
            .collect()
    };
    let mut saw = 0;
    for email in &emails {
        assert!(
            email.eml.defects.is_empty(),
            "{}: {:?}",
            email.stem,
            email.eml.defects
        );
        for (name, values) in &email.eml.headers {
            for value in values {
                assert!(
                    controls(value).is_empty(),
                    "{}: {name}: {value:?}",
                    email.stem
                );
            }
        }
        for (part, text) in [("html", &email.html), ("txt", &email.txt)] {
            assert!(
                controls(text).is_empty(),
                "{}.{part}: {:?}",
                email.stem,
                controls(text)
            );
        }
        if email.txt.contains("Quokka") {
            saw += 1;
            assert!(email.eml.one("Subject").contains("Title"), "{}", email.stem);
            assert!(email.txt.contains("Null Author"), "{}", email.txt);
        }
    }
    assert_eq!(saw, 1, "the controls article has its own email");
}

#[test]
fn markup_in_a_title_is_escaped_in_the_html_part() {
    let site = TestSite::fixture("injection");
    let emails = injection_previews(&site);
    let mut saw = 0;
    for email in &emails {
        let html = &email.eml.html_part().content;
        assert!(
            !html.to_ascii_lowercase().contains("<script"),
            "{}: <script in the HTML part",
            email.stem
        );
        let text = email.eml.html_part().text.as_deref().expect("html text");
        if text.contains("Breaking News") {
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt; Breaking News"),
                "{}: the title is escaped",
                email.stem
            );
            assert!(
                normalize(text).contains("<script>alert(1)</script> Breaking News"),
                "{}: and reads as written",
                email.stem
            );
            // Plain text shows it as written.
            assert!(email
                .txt
                .contains("<script>alert(1)</script> Breaking News"));
            saw += 1;
        }
    }
    assert_eq!(saw, 2, "the digest and the article carry the title");
    // The index escapes it too.
    let index = read(&site.path("per-article/index.html"));
    assert!(!index.contains("<script"), "{index}");
}

#[test]
fn template_syntax_in_a_body_stays_literal() {
    let site = TestSite::fixture("injection");
    let emails = injection_previews(&site);
    let mut saw = 0;
    for email in &emails {
        let text = normalize(&email.eml.text_part().content);
        let html = normalize(email.eml.html_part().text.as_deref().expect("html text"));
        if !text.contains("Seven times seven") {
            continue;
        }
        for (part, content) in [("text", &text), ("html", &html)] {
            assert!(
                content.contains("Seven times seven is {{ 7*7 }} and never anything else."),
                "{} {part}: {content}",
                email.stem
            );
            assert!(
                content.contains("A conditional {% if true %}x{% endif %} stays as written."),
                "{} {part}: {content}",
                email.stem
            );
            assert!(
                !content.contains("is 49") && !content.contains("conditional x stays"),
                "{} {part}: the body was evaluated as a template",
                email.stem
            );
        }
        saw += 1;
    }
    assert_eq!(saw, 2, "the digest and the article carry the body");
}

#[test]
fn to_with_a_line_break_is_refused() {
    let site = TestSite::fixture("injection");
    let run = run(
        &site,
        &["preview", "--to", "a@example.com\r\nBcc: b@example.com"],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains("--to: ") && run.stderr.contains("line break"),
        "{run}"
    );
    assert!(
        !site.path("preview").exists(),
        "nothing is written for a refused --to"
    );
}

// ---------------------------------------------------------------------------
// 7. Snapshots of the sample digest

#[test]
fn sample_digest_html_and_text_snapshots() {
    let site = TestSite::sample();
    let first = preview(&site, "first", &[]);
    let second = preview(&site, "second", &[]);
    for (a, b) in first.emails.iter().zip(&second.emails) {
        assert_eq!(a.html, b.html, "two runs, the same HTML");
        assert_eq!(a.txt, b.txt, "two runs, the same text");
        assert_eq!(a.eml_bytes, b.eml_bytes, "two runs, the same .eml");
    }
    let email = &first.emails[0];
    insta::assert_snapshot!("sample_digest_html", email.html);
    insta::assert_snapshot!("sample_digest_text", email.txt);
}

#[test]
fn text_part_is_wrapped_at_76_columns() {
    let site = TestSite::sample();
    let (digest, per_article) = sample_previews(&site);
    let mut problems = Vec::new();
    for email in std::iter::once(&digest).chain(per_article.iter().map(|(e, _)| e)) {
        for (n, line) in email.txt.lines().enumerate() {
            let long = line.chars().count() > 76;
            // Links are never broken, and code keeps its lines.
            if long && !line.contains("://") && !line.starts_with("    ") {
                problems.push(format!("{}.txt:{}: {line}", email.stem, n + 1));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Regression test for a bug: html2text wraps the numbered link
/// references of the article text at 76 columns, so a long URL (every site
/// link once utm_* is added) is cut in two and cannot be clicked. Every
/// `[n]: URL` must be a whole URL that the HTML part links to.
#[test]
fn text_part_shows_every_link_whole() {
    let site = TestSite::sample();
    let (_, per_article) = sample_previews(&site);
    let mut problems = Vec::new();
    let mut checked = 0;
    for (email, _) in &per_article {
        let hrefs: BTreeSet<&str> = email
            .eml
            .html_part()
            .links
            .as_ref()
            .expect("links")
            .iter()
            .map(|l| l.href.as_str())
            .collect();
        for (n, line) in email.txt.lines().enumerate() {
            let Some((_, url)) = line
                .strip_prefix('[')
                .and_then(|l| l.split_once("]: "))
                .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
            else {
                continue;
            };
            checked += 1;
            if !hrefs.contains(url) {
                problems.push(format!(
                    "{}.txt:{}: `{url}` is not a link of the HTML part (cut off?)",
                    email.stem,
                    n + 1
                ));
            }
        }
    }
    assert!(checked > 5, "the sample's articles have links");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// 8. SpamAssassin

/// One rule SpamAssassin fired.
#[derive(Debug)]
struct Rule {
    points: f64,
    name: String,
    description: String,
}

/// The score and the rules of `spamassassin -t`'s report.
fn spam_report(output: &str) -> (f64, Vec<Rule>) {
    let at = output
        .find("Content analysis details:")
        .unwrap_or_else(|| panic!("no report in spamassassin's output:\n{output}"));
    let report = &output[at..];
    let first = report.lines().next().unwrap_or_default();
    let score: f64 = first
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score from {first:?}"));
    let mut rules: Vec<Rule> = Vec::new();
    let mut in_table = false;
    for line in report.lines().skip(1) {
        if line.starts_with("----") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if line.trim().is_empty() {
            break;
        }
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        match first.parse::<f64>() {
            Ok(points) => rules.push(Rule {
                points,
                name: words.next().unwrap_or_default().to_owned(),
                description: words.collect::<Vec<_>>().join(" "),
            }),
            Err(_) => {
                if let Some(rule) = rules.last_mut() {
                    rule.description.push(' ');
                    rule.description.push_str(line.trim());
                }
            }
        }
    }
    (score, rules)
}

#[test]
fn spamassassin_scores_the_sample_digest_below_2() {
    let spamassassin = require_tool("spamassassin", "spamassassin");
    let site = TestSite::sample();
    let preview = preview(&site, "preview", &[]);
    let eml = preview.dir.join(format!("{}.eml", preview.emails[0].stem));
    let home = tempfile::tempdir().expect("a HOME for spamassassin's user_prefs");
    let input = std::fs::File::open(&eml).expect("open the .eml");
    let output = Command::new(spamassassin)
        .args(["-L", "-t"])
        .env("HOME", home.path())
        .stdin(input)
        .output()
        .expect("run spamassassin");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "spamassassin failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let (score, rules) = spam_report(&stdout);
    let listed: Vec<String> = rules
        .iter()
        .map(|r| format!("{:>5.1} {:<24} {}", r.points, r.name, r.description))
        .collect();
    println!(
        "SpamAssassin score of the sample digest: {score}\n{}",
        listed.join("\n")
    );
    let sum: f64 = rules.iter().map(|r| r.points).sum();
    assert!(
        (sum - score).abs() < 0.15,
        "the rules add up to the score ({sum} vs {score})"
    );
    assert!(
        score < 2.0,
        "SpamAssassin scores the sample digest {score} (must stay below 2.0); rules:\n{}",
        listed.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 9. Lint

#[test]
fn lint_findings_name_the_email_and_the_article_in_preview_and_check() {
    let site = TestSite::fixture("email-lint");
    // Warnings only: the preview is written and the run succeeds.
    let preview = preview(&site, "preview", &["--include-existing"]);
    assert_eq!(preview.emails.len(), 2, "per-article mode");
    let images = preview
        .emails
        .iter()
        .find(|e| e.slug() == "pictures-worth-a-warning")
        .expect("the images email");
    let clean = preview
        .emails
        .iter()
        .find(|e| e.slug() == "clean-words")
        .expect("the clean email");
    let images_subject = images.eml.one("Subject").to_owned();
    let clean_subject = clean.eml.one("Subject").to_owned();
    assert!(images_subject.chars().count() > 78, "{images_subject}");
    let article = "article \"Pictures Worth a Warning\" (content/images.md)";
    let expected = [
        format!(
            "email \"{images_subject}\", {article}: warning: image `https://images.lint.example.org/chart.png` has no alt text"
        ),
        format!(
            "email \"{images_subject}\", {article}: warning: image `http://legacy.lint.example.org/server-room.jpg` is served over http:"
        ),
        format!(
            "email \"{images_subject}\": warning: the subject is {} characters long",
            images_subject.chars().count()
        ),
        format!(
            "email \"{clean_subject}\": warning: the subject is {} characters long",
            clean_subject.chars().count()
        ),
    ];
    let check = run(&site, &["check"]);
    check.assert_code(0);
    for (name, run) in [("preview", &preview.run), ("check", &check)] {
        for want in &expected {
            assert!(
                run.stderr_lines().iter().any(|l| l.contains(want.as_str())),
                "{name} does not report `{want}`\n{run}"
            );
        }
        let findings = run
            .stderr_lines()
            .iter()
            .filter(|l| l.contains("email \""))
            .count();
        assert_eq!(
            findings,
            expected.len(),
            "{name}: exactly these findings\n{run}"
        );
    }

    // index.html lists them in the email's row, naming the article.
    let index = preview.index();
    let rows: Vec<&str> = index.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 2, "{index}");
    let row = rows
        .iter()
        .map(|r| decode_entities(r))
        .find(|r| r.contains(&format!(">{images_subject}</a>")))
        .expect("the images email's row");
    for want in [
        "warning: image `https://images.lint.example.org/chart.png` has no alt text",
        "warning: image `http://legacy.lint.example.org/server-room.jpg` is served over http:",
        "\"Pictures Worth a Warning\" (content/images.md)",
        &format!(
            "warning: the subject is {} characters long",
            images_subject.chars().count()
        ),
    ] {
        assert!(row.contains(want), "index row lacks `{want}`:\n{row}");
    }
}

#[test]
fn lint_errors_fail_preview_and_check() {
    let site = TestSite::fixture("email-lint");
    // A template without an unsubscribe link and with a relative link.
    site.write(
        "templates/article.html",
        "<!DOCTYPE html><html><body><h1>{{ article.title }}</h1>\
         <p><a href=\"/about/\">About us</a></p></body></html>\n",
    );
    let preview = preview_with_code(&site, "preview", &["--include-existing"], 1);
    assert_eq!(
        preview.emails.len(),
        2,
        "the files are written all the same"
    );
    let check = run(&site, &["check"]);
    check.assert_code(1);
    for (name, run) in [("preview", &preview.run), ("check", &check)] {
        for want in [
            "error: the HTML part has no unsubscribe link",
            "error: a href `/about/` is relative",
        ] {
            let count = run
                .stderr_lines()
                .iter()
                .filter(|l| l.contains(want))
                .count();
            assert_eq!(count, 2, "{name}: `{want}` once per email\n{run}");
        }
    }
}

// ---------------------------------------------------------------------------
// What is pending, from the ledger

/// `pressroom --root SITE --now NOW ARGS…` for a site that sends to `smtp`.
fn run_at(site: &TestSite, now: &str, args: &[&str]) -> Run {
    let output = Command::new(BIN)
        .arg("--root")
        .arg(site.root())
        .args(["--now", now])
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("PRESSROOM_LOG")
        .env_remove("PRESSROOM_SMTP_URL")
        .env_remove("PRESSROOM_SMTP_PASSWORD")
        .env("NO_COLOR", "1")
        .env("PRESSROOM_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    let mut all = vec!["--now".to_owned(), now.to_owned()];
    all.extend(args.iter().map(|a| a.to_string()));
    Run {
        args: all,
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The HTML part of each email a preview wrote to `out`, in order.
fn previewed_html(site: &TestSite, out: &str) -> Vec<String> {
    let mut parts: Vec<PathBuf> = files_under(&site.path(out))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .filter(|p| !p.ends_with("index.html"))
        .collect();
    parts.sort();
    parts.iter().map(|p| read(p)).collect()
}

/// `preview` said it renders "the issue a send would mail next" but never
/// read the ledger: after a send it showed the articles just mailed. It
/// now picks what is pending as `send` does, from the ledger opened
/// read-only, and a missing ledger is the fresh state a first send starts
/// from (the back catalogue counts as sent).
#[test]
fn preview_shows_what_the_next_send_would_mail_and_never_writes_the_ledger() {
    const LATER: &str = "2030-02-01T00:00:00Z";
    let server = crate::mail::FaultServer::start(&[]);
    let site = TestSite::sample();
    let mut config = site.read("config.toml");
    config.push_str(&format!(
        "\n[send]\nsubscribers = \"subscribers.csv\"\nper_second = 0\n\n[smtp]\nurl = \"{}\"\n",
        server.url()
    ));
    site.write("config.toml", config);
    site.write(
        "subscribers.csv",
        "email,name\nann@example.org,Ann\nbob@example.org,Bob\n",
    );
    let new_title = "The Newsletter in 2030";
    // Every file of the ledger's folder (the database, and any WAL file
    // SQLite might add next to it) with its bytes.
    let ledger = || -> Vec<(PathBuf, Vec<u8>)> {
        files_under(&site.path(".pressroom"))
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect()
    };

    // No ledger: a first send mails nothing, and the preview says so.
    let fresh = run_at(&site, LATER, &["preview", "--out", "p1"]);
    fresh.assert_code(0);
    assert!(fresh.stderr.contains("nothing new to send"), "{fresh}");
    assert!(
        read(&site.path("p1/index.html")).contains("nothing new is pending"),
        "{fresh}"
    );
    assert!(
        !site.path(".pressroom").exists(),
        "preview created the ledger"
    );

    // A first send at NOW records the back catalogue.
    run_at(&site, NOW, &["send"]).assert_code(0);
    assert!(server.received().is_empty());
    let before = ledger();
    assert!(
        before.iter().any(|(p, _)| p.ends_with("state.db")),
        "send wrote the ledger"
    );

    // Later, one article has come due: that is the next issue, alone.
    let next = run_at(&site, LATER, &["preview", "--out", "p2"]);
    next.assert_code(0);
    assert!(!next.stderr.contains("nothing new"), "{next}");
    let emails = previewed_html(&site, "p2");
    assert_eq!(emails.len(), 1, "{next}");
    assert!(emails[0].contains(new_title), "{}", emails[0]);
    for other in [
        "Welcome to The Pressroom Dispatch",
        "Why We Built Our Publisher in Rust",
    ] {
        assert!(
            !emails[0].contains(other),
            "the preview holds `{other}`, mailed already"
        );
    }
    assert!(ledger() == before, "preview changed the ledger");

    // The send mails exactly that; then nothing is new, and the preview
    // shows the newest article again, saying so.
    run_at(&site, LATER, &["send"]).assert_code(0);
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|(_, data)| data.contains(new_title)));
    let before = ledger();
    let after = run_at(&site, LATER, &["preview", "--out", "p3"]);
    after.assert_code(0);
    assert!(after.stderr.contains("nothing new to send"), "{after}");
    assert!(
        read(&site.path("p3/index.html")).contains("nothing new is pending"),
        "{after}"
    );
    assert!(ledger() == before, "preview changed the ledger");
}
