//! Building again: identical bytes, untouched files, and ids that survive a
//! change of title (and so of slug and URL).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::common::{snapshot_differences, TestSite};
use crate::structure::parse;

const ATOM: Option<&str> = Some("http://www.w3.org/2005/Atom");

#[test]
fn a_second_build_changes_no_byte_and_rewrites_no_file() {
    let site = TestSite::sample();
    site.build();
    let first = site.snapshot_public();
    assert!(first.len() >= 3, "{:?}", first.keys().collect::<Vec<_>>());
    // Long enough for any rewrite to show in the modification time even
    // on a file system with coarse timestamps.
    std::thread::sleep(Duration::from_millis(1100));
    site.build();
    let second = site.snapshot_public();
    let differences = snapshot_differences(&first, &second);
    assert!(
        differences.is_empty(),
        "the second build changed public/:\n{}",
        differences.join("\n")
    );
}

#[test]
fn a_build_with_nothing_changed_stops_early_and_a_change_is_seen() {
    let site = TestSite::sample();
    // The build cache relies only on files and folders older than two
    // seconds (status change times cannot be set back, so: wait).
    std::thread::sleep(Duration::from_millis(2100));
    site.build();
    let first = site.snapshot_public();
    let noop = site.build();
    assert!(
        noop.stderr.contains("nothing changed since the last build"),
        "{}",
        noop.stderr
    );
    let differences = snapshot_differences(&first, &site.snapshot_public());
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // An article edited in place, with its size and modification time
    // put back as they were: still seen.
    let path = site.path("content/why-rust.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let changed = text.replacen("Why We Built", "How We Built", 1);
    assert_eq!(changed.len(), text.len());
    std::fs::write(&path, &changed).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let rebuild = site.build();
    assert!(
        !rebuild.stderr.contains("nothing changed"),
        "{}",
        rebuild.stderr
    );
    assert!(
        site.read("public/rss.xml").contains("How We Built"),
        "the feed shows the change"
    );
}

#[test]
fn a_no_op_over_a_folder_per_article_needs_few_open_files() {
    let site = TestSite::sample();
    for i in 0..1500 {
        site.write(
            &format!("content/bundles/{i:04}/index.md"),
            format!("---\ntitle: 'Bundle {i}'\npublish_date: '2025-02-01'\n---\nBody {i}\n"),
        );
    }
    std::thread::sleep(Duration::from_millis(2100));
    site.build().assert_code(0);
    // Far fewer descriptors than folders: a check that held every folder
    // open would run out, and fall back to a full build.
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" build")
        .arg(crate::common::BIN)
        .current_dir(site.root())
        .env_remove("PRESSROOM_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("nothing changed since the last build"),
        "{stderr}"
    );
}

/// `url -> id` of one article, as each feed format states them.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    rss: (String, String),
    atom: (String, String),
    json: (String, String),
}

/// Finds the entry whose title is `title` in each main feed.
fn seen(site: &TestSite, title: &str) -> Seen {
    let rss = parse("rss.xml", &site.read("public/rss.xml"));
    let item = rss
        .first(None, "channel")
        .expect("channel")
        .all(None, "item")
        .find(|i| i.first(None, "title").is_some_and(|t| t.text == title))
        .unwrap_or_else(|| panic!("rss.xml: no item titled {title}"));
    let text =
        |el: Option<&crate::structure::Element>| el.map(|e| e.text.clone()).unwrap_or_default();
    let rss = (
        text(item.first(None, "link")),
        text(item.first(None, "guid")),
    );

    let atom = parse("atom.xml", &site.read("public/atom.xml"));
    let entry = atom
        .all(ATOM, "entry")
        .find(|e| e.first(ATOM, "title").is_some_and(|t| t.text == title))
        .unwrap_or_else(|| panic!("atom.xml: no entry titled {title}"));
    let link = entry
        .all(ATOM, "link")
        .find(|l| l.attr("rel") == Some("alternate"))
        .and_then(|l| l.attr("href"))
        .unwrap_or_default()
        .to_owned();
    let atom = (link, text(entry.first(ATOM, "id")));

    let json: Value = serde_json::from_str(&site.read("public/feed.json")).expect("JSON");
    let item = json["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["title"] == title))
        .unwrap_or_else(|| panic!("feed.json: no item titled {title}"));
    let field = |k: &str| item[k].as_str().unwrap_or_default().to_owned();
    let json = (field("url"), field("id"));
    Seen { rss, atom, json }
}

#[test]
fn renaming_an_article_changes_its_url_but_never_its_id() {
    let site = TestSite::sample();
    let file = "content/2025/json-feed.md";
    let old_title = "JSON Feed Is Worth Five Minutes of Your Time";
    let new_title = "JSON Feed Deserves Five Minutes";
    site.build();
    let before = seen(&site, old_title);
    // The three formats agree with each other before the change.
    assert_eq!(before.rss, before.atom);
    assert_eq!(before.rss, before.json);

    let text = site.read(file);
    let changed = text.replacen(
        &format!("title: '{old_title}'"),
        &format!("title: '{new_title}'"),
        1,
    );
    assert_ne!(
        text, changed,
        "{file} no longer has the expected title line"
    );
    site.write(file, changed);
    site.build();
    let after = seen(&site, new_title);

    let urls: BTreeMap<&str, (&str, &str)> = [
        ("rss", (&before.rss.0, &after.rss.0)),
        ("atom", (&before.atom.0, &after.atom.0)),
        ("json", (&before.json.0, &after.json.0)),
    ]
    .into_iter()
    .map(|(k, (a, b))| (k, (a.as_str(), b.as_str())))
    .collect();
    for (format, (old, new)) in &urls {
        assert_ne!(old, new, "{format}: the URL should follow the new title");
        assert!(
            new.ends_with("/json-feed-deserves-five-minutes/"),
            "{format}: new URL {new}"
        );
    }
    for (format, old, new) in [
        ("rss guid", &before.rss.1, &after.rss.1),
        ("atom id", &before.atom.1, &after.atom.1),
        ("json id", &before.json.1, &after.json.1),
    ] {
        assert!(!old.is_empty(), "{format}: no id");
        assert_eq!(old, new, "{format} changed with the title");
    }
}
