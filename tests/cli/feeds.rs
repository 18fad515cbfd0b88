//! The sample site's feeds as feedparser (Debian's 6.0.x, the reference
//! Python feed parser) reads them, compared field by field with the
//! articles' front matter; and the JSON Feed checked against JSON Feed
//! 1.1's required structure with serde_json (feedparser does not read it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::DateTime;
use serde_json::Value;

use crate::common::{python_with_feedparser, relative, run_tool, TestSite, REPO};
use crate::source::{self, letters, SourceArticle};

/// Runs tests/tools/feeds_to_json.py on `files`; returns each file's parse
/// by its path relative to `public`.
fn feedparser(public: &Path, files: &[PathBuf]) -> BTreeMap<String, Value> {
    let python = python_with_feedparser();
    let script = Path::new(REPO).join("tests/tools/feeds_to_json.py");
    let stdout = run_tool(Command::new(python).arg(script).args(files));
    let parsed: Value = serde_json::from_str(&stdout).expect("feeds_to_json.py prints JSON");
    parsed["feeds"]
        .as_object()
        .expect("a `feeds` object")
        .iter()
        .map(|(path, feed)| (relative(public, Path::new(path)), feed.clone()))
        .collect()
}

fn str_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// Checks one parsed RSS or Atom feed against the articles it must hold,
/// newest first. Returns every mismatch.
fn compare_feed(name: &str, feed: &Value, expected: &[&SourceArticle]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, message: String| {
        if !ok {
            problems.push(format!("{name}: {message}"));
        }
    };
    check(
        feed["bozo"] == Value::Bool(false),
        format!(
            "feedparser says the feed is not well-formed (bozo): {}",
            feed["bozo_exception"]
        ),
    );
    let version = if name.ends_with("rss.xml") {
        "rss20"
    } else {
        "atom10"
    };
    check(
        str_of(feed, "version") == Some(version),
        format!("version is {}, expected {version}", feed["version"]),
    );
    let newest = expected.iter().map(|a| a.updated()).max();
    check(
        feed["feed"]["updated_epoch"].as_i64() == newest.map(|d| d.timestamp()),
        format!(
            "feed updated {} is not the newest entry's time {newest:?}",
            feed["feed"]["updated"]
        ),
    );
    let entries = feed["entries"].as_array().cloned().unwrap_or_default();
    check(
        entries.len() == expected.len(),
        format!(
            "{} entries, expected {} (the published articles)",
            entries.len(),
            expected.len()
        ),
    );
    for (entry, article) in entries.iter().zip(expected) {
        let src = &article.source;
        let mut field = |key: &str, want: Option<&str>| {
            let got = str_of(entry, key);
            check(
                got == want,
                format!("{src}: {key} is {got:?}, expected {want:?}"),
            );
        };
        field("id", Some(&article.id));
        field("title", Some(&article.title));
        // What a reader displays (HTML rendered to text when the feed
        // declares it HTML, as RSS readers treat <description>).
        field("title_text", Some(&article.title));
        field("link", Some(&article.url));
        field("author", Some(&article.author));
        field("summary_text", article.summary());
        check(
            entry["published_epoch"].as_i64() == Some(article.publish_date.timestamp()),
            format!(
                "{src}: published {} is not publish_date {}",
                entry["published"], article.publish_date
            ),
        );
        // The written date keeps the site's local offset (Europe/Berlin).
        let written = str_of(entry, "published").unwrap_or_default();
        let wanted_written = if version == "rss20" {
            article
                .publish_date
                .format("%a, %d %b %Y %H:%M:%S %z")
                .to_string()
        } else {
            article.publish_date.to_rfc3339()
        };
        check(
            written == wanted_written,
            format!("{src}: published is written `{written}`, expected `{wanted_written}`"),
        );
        if version == "atom10" {
            check(
                entry["updated_epoch"].as_i64() == Some(article.updated().timestamp()),
                format!(
                    "{src}: updated {} is not {}",
                    entry["updated"],
                    article.updated()
                ),
            );
        }
        let tags: Vec<&str> = entry["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        check(
            tags == article.tags,
            format!("{src}: tags {tags:?}, expected {:?}", article.tags),
        );
        // Full content: the body's headings in order, and the CTA.
        let content: Vec<&Value> = entry["content"]
            .as_array()
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        check(
            content.len() == 1,
            format!("{src}: {} content elements, expected 1", content.len()),
        );
        let html = content
            .first()
            .and_then(|c| str_of(c, "value"))
            .unwrap_or_default();
        let text = letters(html);
        let mut from = 0;
        for heading in article.headings() {
            match text[from..].find(&letters(heading)) {
                Some(at) => from += at,
                None => check(
                    false,
                    format!("{src}: heading `{heading}` missing (or out of order) in the content"),
                ),
            }
        }
        if let Some(cta) = &article.cta {
            let cta_text = letters(cta.split('[').next().unwrap_or(cta));
            check(
                text.contains(&cta_text),
                format!("{src}: the call to action `{cta}` is not in the content"),
            );
        }
        // The hero image: media:content in RSS, a rel=enclosure link in Atom.
        let images: Vec<&str> = if version == "rss20" {
            entry["media_content"]
                .as_array()
                .map(|m| m.iter().filter_map(|m| str_of(m, "url")).collect())
                .unwrap_or_default()
        } else {
            entry["enclosures"]
                .as_array()
                .map(|m| m.iter().filter_map(|m| str_of(m, "href")).collect())
                .unwrap_or_default()
        };
        let want: Vec<&str> = article.hero_image.iter().map(String::as_str).collect();
        check(
            images == want,
            format!("{src}: hero images {images:?}, expected {want:?}"),
        );
    }
    problems
}

fn assert_no_problems(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn feedparser_reads_the_sample_rss_and_atom_feeds_as_written() {
    let site = TestSite::sample();
    site.build();
    let all = source::articles(site.root());
    let published = source::published(site.root());
    // Sanity of the sample itself: a draft and a scheduled article exist
    // and stay out, which is what makes the count meaningful.
    assert!(all.iter().any(|a| a.draft), "the sample lost its draft");
    assert!(
        all.iter()
            .any(|a| !a.draft && !a.is_published(source::now())),
        "the sample lost its scheduled article"
    );
    assert_eq!(
        published.len(),
        8,
        "published articles in the sample at NOW"
    );

    let files = [site.path("public/rss.xml"), site.path("public/atom.xml")];
    let parsed = feedparser(&site.public(), &files);
    let expected: Vec<&SourceArticle> = published.iter().collect();
    let config = source::config(site.root());
    let mut problems = Vec::new();
    for (name, feed) in &parsed {
        problems.extend(compare_feed(name, feed, &expected));
        let title = str_of(&feed["feed"], "title");
        if title != Some(config.title.as_str()) {
            problems.push(format!("{name}: feed title {title:?}"));
        }
        let link = str_of(&feed["feed"], "link");
        if link != Some(config.base_url.as_str()) {
            problems.push(format!("{name}: feed link {link:?}"));
        }
    }
    assert_eq!(parsed.len(), 2, "{:?}", parsed.keys());
    assert_no_problems(problems);
}

#[test]
fn special_characters_and_fallbacks_survive_feedparser_exactly() {
    let site = TestSite::sample();
    site.build();
    let files = [site.path("public/rss.xml"), site.path("public/atom.xml")];
    let parsed = feedparser(&site.public(), &files);
    for (name, feed) in &parsed {
        let entries = feed["entries"].as_array().expect("entries");
        let by_id = |id: &str| {
            entries
                .iter()
                .find(|e| str_of(e, "id") == Some(id))
                .unwrap_or_else(|| panic!("{name}: no entry {id}"))
        };
        // `&` and a literal `<br>` in the title are text, not markup.
        let breaks = by_id("tag:dispatch.example.com,2025-06-21:2025/feeds-that-break");
        assert_eq!(
            str_of(breaks, "title"),
            Some("Tags & Templates: Why <br> Breaks Your Feed"),
            "{name}"
        );
        assert_eq!(str_of(breaks, "title_type"), Some("text/plain"), "{name}");
        // `]]>` in a code sample survives CDATA (RSS) and escaping (Atom).
        let html = str_of(&breaks["content"][0], "value").unwrap_or_default();
        assert!(
            html.contains("<code>]]&gt;</code>"),
            "{name}: `]]>` did not survive:\n{html}"
        );
        assert!(
            html.contains("<code>]]]]&gt;&lt;![CDATA[&gt;</code>"),
            "{name}: the split CDATA example did not survive:\n{html}"
        );
        // No author in the front matter: the site's author.
        let pruning = by_id("tag:dispatch.example.com,2026-11-17:2026/pruning-your-list");
        assert_eq!(str_of(pruning, "author"), Some("Mara Lindqvist"), "{name}");
        // A front-matter `id` is used as is.
        by_id("tag:dispatch.example.com,2025-01-14:welcome");
    }
    // The Atom entry of an updated article carries updated_date.
    let atom = &parsed["atom.xml"];
    let welcome = atom["entries"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|e| str_of(e, "id") == Some("tag:dispatch.example.com,2025-01-14:welcome"))
        })
        .expect("welcome in atom.xml");
    assert_eq!(
        str_of(welcome, "updated"),
        Some("2025-02-03T10:15:00+01:00")
    );
    assert_eq!(
        str_of(welcome, "published"),
        Some("2025-01-14T00:00:00+01:00")
    );
}

#[test]
fn feedparser_reads_every_tag_feed() {
    let site = TestSite::sample();
    site.build();
    let published = source::published(site.root());
    let mut by_tag: BTreeMap<String, Vec<&SourceArticle>> = BTreeMap::new();
    for article in &published {
        for tag in &article.tags {
            by_tag.entry(slug::slugify(tag)).or_default().push(article);
        }
    }
    let files: Vec<PathBuf> = site
        .public_files(".xml")
        .into_iter()
        .filter(|p| p.starts_with(site.path("public/tags")))
        .collect();
    let found: BTreeSet<String> = files
        .iter()
        .map(|p| relative(&site.path("public/tags"), p.parent().expect("tag folder")))
        .collect();
    let wanted: BTreeSet<String> = by_tag.keys().cloned().collect();
    assert_eq!(
        found, wanted,
        "tag folders under public/tags/ vs tags of published articles"
    );
    // A tag only the draft or the 2030 article carries has no feed.
    assert!(
        !found.contains("future"),
        "the scheduled article's tag leaked"
    );

    let parsed = feedparser(&site.public(), &files);
    assert_eq!(parsed.len(), wanted.len() * 2);
    let mut problems = Vec::new();
    for (name, feed) in &parsed {
        let tag = name.split('/').nth(1).expect("tags/<tag>/file");
        problems.extend(compare_feed(name, feed, &by_tag[tag]));
    }
    assert_no_problems(problems);
}

/// RFC 3339 date-time, as JSON Feed 1.1 requires.
fn is_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok())
}

fn is_absolute_url(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
}

/// Every structural problem of one JSON Feed 1.1 document.
fn json_feed_problems(name: &str, feed: &Value, expected: &[&SourceArticle]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, message: String| {
        if !ok {
            problems.push(format!("{name}: {message}"));
        }
    };
    check(
        feed["version"] == "https://jsonfeed.org/version/1.1",
        format!("version is {}", feed["version"]),
    );
    check(
        feed["title"].as_str().is_some_and(|t| !t.is_empty()),
        "title missing".into(),
    );
    for key in ["home_page_url", "feed_url", "icon", "favicon"] {
        if !feed[key].is_null() {
            check(
                is_absolute_url(&feed[key]),
                format!("{key} {} is not absolute", feed[key]),
            );
        }
    }
    check(
        feed["feed_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(name.trim_start_matches("public/"))),
        format!("feed_url {} does not point at this file", feed["feed_url"]),
    );
    let items = feed["items"].as_array();
    check(items.is_some(), "items is not an array".into());
    let items = items.cloned().unwrap_or_default();
    check(
        items.len() == expected.len(),
        format!("{} items, expected {}", items.len(), expected.len()),
    );
    let mut ids = BTreeSet::new();
    for (item, article) in items.iter().zip(expected) {
        let src = &article.source;
        check(
            item["id"].as_str() == Some(&article.id),
            format!("{src}: id {}", item["id"]),
        );
        check(
            ids.insert(item["id"].to_string()),
            format!("{src}: duplicate id {}", item["id"]),
        );
        check(
            item["url"].as_str() == Some(&article.url),
            format!("{src}: url {}", item["url"]),
        );
        check(
            item["title"].as_str() == Some(&article.title),
            format!("{src}: title {}", item["title"]),
        );
        check(
            item["content_html"].is_string() || item["content_text"].is_string(),
            format!("{src}: neither content_html nor content_text"),
        );
        check(
            is_rfc3339(&item["date_published"]),
            format!("{src}: date_published {}", item["date_published"]),
        );
        check(
            item["date_published"]
                .as_str()
                .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                == Some(article.publish_date),
            format!(
                "{src}: date_published {} is not publish_date",
                item["date_published"]
            ),
        );
        if !item["date_modified"].is_null() {
            check(
                is_rfc3339(&item["date_modified"]),
                format!("{src}: date_modified {}", item["date_modified"]),
            );
        }
        check(
            item["authors"][0]["name"].as_str() == Some(&article.author),
            format!("{src}: authors {}", item["authors"]),
        );
        if let Some(image) = &article.hero_image {
            check(
                item["image"].as_str() == Some(image),
                format!("{src}: image {}", item["image"]),
            );
        }
        for key in ["url", "external_url", "image", "banner_image"] {
            if !item[key].is_null() {
                check(
                    is_absolute_url(&item[key]),
                    format!("{src}: {key} {} is not absolute", item[key]),
                );
            }
        }
        let tags: Vec<&str> = item["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        check(tags == article.tags, format!("{src}: tags {tags:?}"));
    }
    problems
}

#[test]
fn json_feeds_have_json_feed_1_1_structure() {
    let site = TestSite::sample();
    site.build();
    let published = source::published(site.root());
    let mut problems = Vec::new();
    let files = site.public_files("feed.json");
    assert!(files.len() > 1, "no tag JSON feeds: {files:?}");
    for path in files {
        let name = relative(site.root(), &path);
        let feed: Value = serde_json::from_str(&crate::common::read(&path))
            .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let expected: Vec<&SourceArticle> = match name.strip_prefix("public/tags/") {
            Some(rest) => {
                let tag = rest.split('/').next().expect("tag folder");
                published
                    .iter()
                    .filter(|a| a.tags.iter().any(|t| slug::slugify(t) == tag))
                    .collect()
            }
            None => published.iter().collect(),
        };
        problems.extend(json_feed_problems(&name, &feed, &expected));
    }
    assert_no_problems(problems);
}

/// Regression: RSS readers treat `<description>` as HTML, so a plain-text
/// summary must be HTML-escaped before it goes in; otherwise `<b>` turns
/// bold, `&amp;` typed by the writer shows as `&`, and `<br>` in the
/// sample's `feeds-that-break` description becomes a line break.
#[test]
fn text_that_looks_like_markup_reaches_readers_as_written() {
    let site = TestSite::fixture("escaping");
    site.build();
    let article = source::published(site.root())
        .into_iter()
        .next()
        .expect("the fixture's article");
    let config = source::config(site.root());
    let site_description = "Text that looks like markup: <b>, &amp; and ]]>.";
    assert!(site.read("config.toml").contains(site_description));
    // `Name <address>` keeps the name only.
    let author = "Zoë Ångström";

    let files = [site.path("public/rss.xml"), site.path("public/atom.xml")];
    let parsed = feedparser(&site.public(), &files);
    let mut problems = Vec::new();
    for (name, feed) in &parsed {
        let mut check = |what: &str, got: Option<&str>, want: &str| {
            if got != Some(want) {
                problems.push(format!("{name}: {what} shows {got:?}, expected {want:?}"));
            }
        };
        let entry = &feed["entries"][0];
        check(
            "the feed title",
            str_of(&feed["feed"], "title_text"),
            &config.title,
        );
        check(
            "the feed description",
            str_of(&feed["feed"], "subtitle_text"),
            site_description,
        );
        check("the title", str_of(entry, "title_text"), &article.title);
        check(
            "the summary",
            str_of(entry, "summary_text"),
            article.summary().expect("a description"),
        );
        check("the author", str_of(entry, "author"), author);
        if feed["bozo"] != Value::Bool(false) {
            problems.push(format!("{name}: bozo {}", feed["bozo_exception"]));
        }
    }
    let json: Value =
        serde_json::from_str(&site.read("public/feed.json")).expect("feed.json is JSON");
    for (what, got, want) in [
        ("feed title", &json["title"], config.title.as_str()),
        ("feed description", &json["description"], site_description),
        ("title", &json["items"][0]["title"], article.title.as_str()),
        (
            "summary",
            &json["items"][0]["summary"],
            article.summary().unwrap_or_default(),
        ),
        ("author", &json["items"][0]["authors"][0]["name"], author),
    ] {
        if got.as_str() != Some(want) {
            problems.push(format!("feed.json: {what} is {got}, expected {want:?}"));
        }
    }
    assert_no_problems(problems);
}
