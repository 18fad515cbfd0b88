//! Real consumers on the sample site's output: newsboat (a feed reader)
//! fetches the RSS and Atom feeds into its SQLite cache, and xmllint checks
//! every XML file for well-formedness.

use std::path::Path;
use std::process::Command;

use crate::common::{python_with_feedparser, require_tool, run_tool, TestSite, PYTHON};
use crate::source;

/// Runs `newsboat -x reload` on one feed URL with an empty config and a
/// fresh cache under `home`, then returns `(feedurl, title, author, url,
/// guid)` of every cached item, read with Python's sqlite3 module.
///
/// newsboat reads `file://` URLs directly (through libcurl), so no
/// `exec:`/`filter:` URL is needed. One cache per feed, though: newsboat
/// keys cached items by guid alone (`UPDATE rss_item … WHERE guid = ?`), so
/// when the RSS and Atom feeds share a cache their items, which carry the
/// same ids on purpose, end up all filed under whichever feed it reloaded
/// last.
fn newsboat_items(home: &Path, feed: &Path) -> Vec<Vec<String>> {
    let newsboat = require_tool("newsboat", "newsboat");
    python_with_feedparser();
    let urls = home.join("urls");
    let config = home.join("config");
    let cache = home.join("cache.db");
    let url = url::Url::from_file_path(feed).expect("an absolute path");
    std::fs::write(&urls, format!("{url}\n")).expect("write urls");
    std::fs::write(&config, "").expect("write config");
    let mut command = Command::new(newsboat);
    command
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .arg("-u")
        .arg(&urls)
        .arg("-c")
        .arg(&cache)
        .arg("-C")
        .arg(&config)
        .args(["-x", "reload"])
        .stdin(std::process::Stdio::null());
    run_tool(&mut command);
    assert!(
        cache.is_file(),
        "newsboat wrote no cache at {}",
        cache.display()
    );
    let script = "import json, sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1])\n\
        rows = db.execute('select feedurl, title, author, url, guid from rss_item order by pubDate desc').fetchall()\n\
        print(json.dumps([list(r) for r in rows]))\n";
    let stdout = run_tool(Command::new(PYTHON).args(["-c", script]).arg(&cache));
    serde_json::from_str(&stdout).expect("a JSON list of rows")
}

#[test]
fn newsboat_lists_every_published_article_from_rss_and_atom() {
    let site = TestSite::sample();
    site.build();
    let published = source::published(site.root());
    assert!(!published.is_empty());
    let mut problems = Vec::new();
    for file in ["rss.xml", "atom.xml"] {
        let home = tempfile::tempdir().expect("temporary HOME");
        let path = site.path("public").join(file);
        let url = url::Url::from_file_path(&path)
            .expect("absolute")
            .to_string();
        let rows = newsboat_items(home.path(), &path);
        if rows.len() != published.len() {
            problems.push(format!(
                "{file}: newsboat cached {} items, expected {}",
                rows.len(),
                published.len()
            ));
        }
        for article in &published {
            let row = rows.iter().find(|r| r[4] == article.id);
            match row {
                None => problems.push(format!(
                    "{file}: `{}` ({}) is not in newsboat's cache",
                    article.title, article.id
                )),
                Some(row) => {
                    let want = [
                        url.as_str(),
                        &article.title,
                        &article.author,
                        &article.url,
                        &article.id,
                    ];
                    if row.iter().map(String::as_str).ne(want) {
                        problems.push(format!("{file}: cached {row:?}, expected {want:?}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn xmllint_accepts_every_xml_file() {
    let site = TestSite::sample();
    site.build();
    let files = site.public_files(".xml");
    assert!(
        files.len() >= 4,
        "expected the main and tag feeds, found {files:?}"
    );
    assert_xmllint_accepts(&files);
}

/// xmllint --noout on `files`: no error and no warning.
fn assert_xmllint_accepts(files: &[std::path::PathBuf]) {
    let xmllint = require_tool("xmllint", "libxml2-utils");
    let output = Command::new(xmllint)
        .arg("--noout")
        .args(files)
        .output()
        .expect("run xmllint");
    // Warnings go to stderr with exit status 0: accept neither.
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "xmllint --noout: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Characters XML 1.0 forbids (C0 controls but tab and line breaks,
/// U+FFFE, U+FFFF) written into every field an article has — title,
/// description, author, tags, CTA and the Markdown body, raw and as YAML
/// escapes — never reach a feed: xmllint accepts every XML file,
/// feedparser reads them without a well-formedness complaint, and the
/// readable text around them survives.
#[test]
fn characters_xml_forbids_never_reach_a_feed() {
    let site = TestSite::fixture("escaping");
    let bad = "\u{1}\u{8}\u{b}\u{c}\u{1b}\u{1f}\u{fffe}\u{ffff}";
    let article = format!(
        "---\n\
         title: \"Bell\\x07 and \\x01 Title\\uFFFE\"\n\
         description: \"Escape \\x1b[31m red and \\x0c feed\"\n\
         author: \"Null\\x01 Author\"\n\
         publish_date: '2025-06-01 09:00'\n\
         tags: [\"ctrl\\x02tag\"]\n\
         cta: \"Reply\\x08 now\"\n\
         ---\n\n\
         Body raw {bad} controls.\n\n\
         - list {bad} item\n\n\
         ```\ncode {bad} block\n```\n\n\
         [link {bad} text](https://example.org/{bad}path)\n"
    );
    site.write("content/controls.md", article);
    site.build();

    let files = site.public_files(".xml");
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("tags/ctrl")),
        "the control-character tag has its own feeds: {files:?}"
    );
    assert_xmllint_accepts(&files);

    let mut problems = Vec::new();
    for file in files.iter().chain([&site.path("public/feed.json")]) {
        let text = std::fs::read_to_string(file).expect("a UTF-8 feed");
        for c in bad.chars() {
            if text.contains(c) {
                problems.push(format!("{}: holds U+{:04X}", file.display(), c as u32));
            }
        }
        let tag_feed_without_it = file.components().any(|c| c.as_os_str() == "tags")
            && !file.to_string_lossy().contains("ctrl");
        for kept in ["and  Title", "Body raw", "list", "code", "Null Author"] {
            if !tag_feed_without_it
                && !text.contains(kept)
                && !text.contains(&kept.replace("  ", " "))
            {
                problems.push(format!("{}: lost {kept:?}", file.display()));
            }
        }
    }
    let script = Path::new(crate::common::REPO).join("tests/tools/feeds_to_json.py");
    let main = [site.path("public/rss.xml"), site.path("public/atom.xml")];
    let stdout = run_tool(
        Command::new(python_with_feedparser())
            .arg(script)
            .args(&main),
    );
    let parsed: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    for (name, feed) in parsed["feeds"].as_object().expect("feeds") {
        if feed["bozo"] != serde_json::Value::Bool(false) {
            problems.push(format!("{name}: bozo {}", feed["bozo_exception"]));
        }
        let titles: Vec<&str> = feed["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["title"].as_str())
            .collect();
        if !titles
            .iter()
            .any(|t| t.starts_with("Bell") && t.contains("Title"))
        {
            problems.push(format!("{name}: no readable title among {titles:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
