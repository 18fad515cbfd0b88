//! Feed unit tests on small in-memory sites; the integration tests hand the
//! real files to real feed readers.

use std::path::Path;

use chrono::DateTime;

use super::*;
use crate::config::Config;
use crate::content::parse_article;

const CONFIG: &str = "[site]\ntitle = 'Dispatch'\ndescription = 'Notes'\nbase_url = 'https://example.com/'\nauthor = 'Mara'\ntimezone = 'Europe/Berlin'\nlogo = '/logo.png'\n";

pub(crate) fn site(files: &[(&str, &str)]) -> Site {
    site_with(CONFIG, files)
}

pub(crate) fn site_with(config: &str, files: &[(&str, &str)]) -> Site {
    let config = Config::parse("config.toml", config).unwrap();
    let mut articles: Vec<Article> = files
        .iter()
        .map(|(path, text)| {
            parse_article(
                &config,
                &format!("content/{path}"),
                Path::new(path),
                text.as_bytes(),
            )
            .unwrap()
        })
        .collect();
    articles.sort_by_key(|a| std::cmp::Reverse(a.publish_date));
    Site { config, articles }
}

fn now() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap()
}

fn file<'a>(outputs: &'a [Output], path: &str) -> &'a str {
    let output = outputs
        .iter()
        .find(|o| o.path == Path::new(path))
        .unwrap_or_else(|| panic!("no {path}"));
    std::str::from_utf8(&output.bytes).unwrap()
}

/// Parses XML strictly and returns the text of every element named `name`.
pub(crate) fn texts(xml: &str, name: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed: {e}\n{xml}"))
        {
            Event::Start(e) if e.name().as_ref() == name.as_bytes() => {
                current = Some(String::new())
            }
            Event::Text(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(&t.unescape().unwrap());
                }
            }
            Event::CData(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(std::str::from_utf8(&t).unwrap());
                }
            }
            Event::End(e) if e.name().as_ref() == name.as_bytes() => out.extend(current.take()),
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

const POST: &str = "---\ntitle: 'Tags & <Templates> ]]> end'\ndescription: 'Short & sweet'\npublish_date: '2025-03-09 10:00'\nupdated_date: '2025-04-01'\nheroImage: 'https://img.example.com/a.png'\ncta: 'Reply [here](/reply/)'\ntags: [rust, 'Email Tips']\n---\nSee [the archive](../archive/) and ![x](img/x.png)\n\nCode: `]]>`\n";

#[test]
fn all_three_feeds_and_tag_feeds_are_written() {
    let site = site(&[
        ("a.md", POST),
        (
            "b.md",
            "---\ntitle: 'B'\npublish_date: '2025-01-01'\n---\nb",
        ),
    ]);
    let outputs = build_all(&site, now()).unwrap();
    let paths: Vec<_> = outputs
        .iter()
        .map(|o| o.path.display().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "rss.xml",
            "atom.xml",
            "feed.json",
            "tags/email-tips/rss.xml",
            "tags/email-tips/atom.xml",
            "tags/email-tips/feed.json",
            "tags/rust/rss.xml",
            "tags/rust/atom.xml",
            "tags/rust/feed.json",
        ]
    );
    let tag_rss = file(&outputs, "tags/rust/rss.xml");
    assert_eq!(
        texts(tag_rss, "title").len(),
        3,
        "channel, image and one item: {tag_rss}"
    );
    assert!(
        tag_rss.contains("https://example.com/tags/rust/rss.xml"),
        "{tag_rss}"
    );
}

/// An article with neither `description` nor `subtitle` had full content
/// and no summary: the W3C validator warns "Ensure description precedes
/// content:encoded". Its first paragraph stands in, as in emails.
#[test]
fn an_article_without_a_summary_gets_its_first_paragraph_as_one() {
    const BARE: &str = "---\ntitle: 'Bare'\npublish_date: '2025-03-09'\n---\n## Opening\n\nFirst *lines* & <b>more</b>\nof it.\n\nSecond paragraph.\n";
    const SUBTITLED: &str =
        "---\ntitle: 'Subtitled'\nsubtitle: 'The subtitle'\npublish_date: '2025-03-08'\n---\nBody text.\n";
    let wanted = "First lines & more of it.";
    for config in [
        CONFIG.to_owned(),
        format!("{CONFIG}[feeds]\nfull_content = false\n"),
    ] {
        let site = site_with(&config, &[("bare.md", BARE), ("subtitled.md", SUBTITLED)]);
        let outputs = build_all(&site, now()).unwrap();
        let full = site.config.feeds.full_content;

        let rss = file(&outputs, "rss.xml");
        // The channel's description first, then one per item, in order;
        // an item's description is HTML, so its text is escaped once more.
        assert_eq!(
            texts(rss, "description"),
            ["Notes", "First lines &amp; more of it.", "The subtitle"],
            "{rss}"
        );
        if full {
            let item = &rss[rss.find("<item>").unwrap()..];
            let description = item.find("<description>").unwrap();
            let content = item.find("<content:encoded>").unwrap();
            assert!(description < content, "{item}");
        } else {
            assert!(!rss.contains("<content:encoded>"), "{rss}");
        }

        let atom = file(&outputs, "atom.xml");
        assert_eq!(texts(atom, "summary"), [wanted, "The subtitle"], "{atom}");

        let json: serde_json::Value = serde_json::from_str(file(&outputs, "feed.json")).unwrap();
        let items = json["items"].as_array().unwrap();
        assert_eq!(items[0]["summary"], wanted);
        assert_eq!(items[1]["summary"], "The subtitle");
        if full {
            assert!(items[0].get("content_text").is_none(), "{json}");
        } else {
            assert_eq!(items[0]["content_text"], wanted);
        }
    }
}

#[test]
fn rss_follows_the_validator_rules() {
    let site = site(&[("a.md", POST)]);
    let rss = file(&build_all(&site, now()).unwrap(), "rss.xml").to_owned();
    assert_eq!(texts(&rss, "title")[2], "Tags & <Templates> ]]> end");
    let description = rss.find("<description><![CDATA[Short").unwrap();
    let content = rss.find("<content:encoded>").unwrap();
    assert!(
        description < content,
        "description comes before content:encoded"
    );
    assert!(rss.contains(r#"<atom:link rel="self" type="application/rss+xml" href="https://example.com/rss.xml"/>"#) || rss.contains(r#"href="https://example.com/rss.xml""#), "{rss}");
    assert!(rss.contains("<dc:creator>Mara</dc:creator>"), "{rss}");
    assert!(
        !rss.contains("<author>"),
        "a bare name never goes in <author>"
    );
    assert!(
        rss.contains("<pubDate>Sun, 09 Mar 2025 10:00:00 +0100</pubDate>"),
        "{rss}"
    );
    assert!(
        rss.contains(r#"<guid isPermaLink="false">tag:example.com,2025-03-09:a</guid>"#),
        "{rss}"
    );
    assert!(
        rss.contains(r#"<media:content "#) && rss.contains("xmlns:media="),
        "{rss}"
    );
    assert_eq!(texts(&rss, "link")[1], "https://example.com/");
    let content = &texts(&rss, "content:encoded")[0];
    assert!(
        content.contains(r#"href="https://example.com/a/../archive/""#)
            || content.contains(r#"href="https://example.com/archive/""#),
        "{content}"
    );
    assert!(
        content.contains(r#"src="https://example.com/tags-templates-end/img/x.png""#),
        "{content}"
    );
    assert!(
        content.contains(r#"<a href="https://example.com/reply/">here</a>"#),
        "CTA appended: {content}"
    );
    assert!(content.contains("<code>]]&gt;</code>"), "{content}");
}

#[test]
fn atom_has_what_rfc_4287_requires() {
    let site = site(&[("a.md", POST)]);
    let atom = file(&build_all(&site, now()).unwrap(), "atom.xml").to_owned();
    assert_eq!(
        texts(&atom, "id"),
        ["https://example.com/", "tag:example.com,2025-03-09:a"]
    );
    assert_eq!(
        texts(&atom, "updated"),
        ["2025-04-01T00:00:00+02:00", "2025-04-01T00:00:00+02:00"]
    );
    assert!(
        atom.contains(
            r#"<content type="html" xml:base="https://example.com/tags-templates-end/">"#
        ) || atom.contains(r#"type="html""#),
        "{atom}"
    );
    assert!(atom.contains(r#"rel="self""#), "{atom}");
    assert!(atom.contains(r#"rel="enclosure""#), "{atom}");
    assert_eq!(texts(&atom, "name"), ["Mara", "Mara"]);
}

#[test]
fn json_feed_is_version_1_1() {
    let site = site(&[("a.md", POST)]);
    let json: serde_json::Value =
        serde_json::from_str(file(&build_all(&site, now()).unwrap(), "feed.json")).unwrap();
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(json["feed_url"], "https://example.com/feed.json");
    let item = &json["items"][0];
    assert_eq!(item["id"], "tag:example.com,2025-03-09:a");
    assert_eq!(item["image"], "https://img.example.com/a.png");
    assert_eq!(item["summary"], "Short & sweet");
    assert_eq!(item["date_published"], "2025-03-09T10:00:00+01:00");
    assert_eq!(item["tags"][1], "Email Tips");
}

#[test]
fn drafts_future_articles_and_the_limit_are_respected() {
    let config = format!("{CONFIG}[feeds]\nlimit = 2\ntag_feeds = false\n");
    let site = site_with(
        &config,
        &[
            ("a.md", "---\ntitle: 'A'\npublish_date: '2025-01-01'\n---\n"),
            ("b.md", "---\ntitle: 'B'\npublish_date: '2025-01-02'\n---\n"),
            ("c.md", "---\ntitle: 'C'\npublish_date: '2025-01-03'\n---\n"),
            (
                "d.md",
                "---\ntitle: 'Draft'\npublish_date: '2025-01-04'\ndraft: true\n---\n",
            ),
            (
                "e.md",
                "---\ntitle: 'Later'\npublish_date: '2030-01-01'\n---\n",
            ),
        ],
    );
    let outputs = build_all(&site, now()).unwrap();
    assert_eq!(outputs.len(), 3);
    assert_eq!(
        texts(file(&outputs, "rss.xml"), "title"),
        ["Dispatch", "Dispatch", "C", "B"]
    );
    let later = DateTime::parse_from_rfc3339("2030-06-01T00:00:00Z").unwrap();
    assert_eq!(
        texts(file(&build_all(&site, later).unwrap(), "atom.xml"), "title"),
        ["Dispatch", "Later", "C"]
    );
}

#[test]
fn building_twice_gives_the_same_bytes() {
    let site = site(&[("a.md", POST)]);
    assert_eq!(
        build_all(&site, now()).unwrap(),
        build_all(&site, now()).unwrap()
    );
    let empty = site_with(CONFIG, &[]);
    let atom = file(&build_all(&empty, now()).unwrap(), "atom.xml").to_owned();
    assert!(
        atom.contains("<updated>1970-01-01T00:00:00+00:00</updated>"),
        "{atom}"
    );
}

/// Every feed file of [`plan`], written by [`stream`] into memory, in
/// groups of `group` feeds (as a build opens a bounded number of files).
pub(crate) fn streamed_in_groups(
    site: &Site,
    now: DateTime<FixedOffset>,
    group: usize,
) -> Vec<Output> {
    let mut outputs = Vec::new();
    for feeds in plan(site, now).chunks(group) {
        let mut sinks: Vec<Vec<(Format, Vec<u8>)>> = feeds
            .iter()
            .map(|feed| feed.files.iter().map(|(f, _)| (*f, Vec::new())).collect())
            .collect();
        stream(site, feeds, &mut sinks).unwrap();
        for (feed, sinks) in feeds.iter().zip(sinks) {
            for ((_, path), (_, bytes)) in feed.files.iter().zip(sinks) {
                outputs.push(Output {
                    path: path.clone(),
                    bytes,
                });
            }
        }
    }
    outputs
}

/// Every feed file of [`plan`], all streamed in one pass.
pub(crate) fn streamed(site: &Site, now: DateTime<FixedOffset>) -> Vec<Output> {
    streamed_in_groups(site, now, usize::MAX)
}

/// Streamed all in one pass, one feed at a time, or two at a time: the
/// bytes the in-memory renderer gives.
fn assert_streamed_as_rendered(site: &Site) {
    let rendered = build_all(site, now()).unwrap();
    for group in [usize::MAX, 1, 2] {
        let streamed = streamed_in_groups(site, now(), group);
        assert_eq!(
            rendered.iter().map(|o| &o.path).collect::<Vec<_>>(),
            streamed.iter().map(|o| &o.path).collect::<Vec<_>>()
        );
        for (r, s) in rendered.iter().zip(&streamed) {
            assert!(
                r.bytes == s.bytes,
                "{} differs (groups of {group}):\n--- rendered\n{}\n--- streamed\n{}",
                r.path.display(),
                String::from_utf8_lossy(&r.bytes),
                String::from_utf8_lossy(&s.bytes)
            );
        }
    }
}

/// A varied article `n`: every other one with a hero image, tags from a
/// small set, some with `]]>`, `&` and control characters in the text.
fn varied(n: usize) -> String {
    let hero = if n.is_multiple_of(2) {
        format!("heroImage: 'https://img.example.com/{n}.jpg'\n")
    } else {
        String::new()
    };
    let tags = ["[rust]", "[rust, 'Email Tips']", "[]", "['Email Tips']"][n % 4];
    format!(
        "---\ntitle: 'Post {n} & <more>'\ndescription: 'About {n} ]]>'\npublish_date: '2025-{:02}-{:02} 10:00'\n{hero}cta: 'Reply [here](/r/{n})'\ntags: {tags}\n---\nBody {n} with [a link](../x/) and `]]>` & \u{1}.\n",
        1 + n % 12,
        1 + n % 28,
    )
}

#[test]
fn streaming_writes_the_bytes_rendering_gives() {
    let empty = site_with(CONFIG, &[]);
    assert_streamed_as_rendered(&empty);
    assert_streamed_as_rendered(&site(&[("a.md", POST)]));

    let names: Vec<String> = (0..300).map(|n| format!("p{n}.md")).collect();
    let texts: Vec<String> = (0..300).map(varied).collect();
    let files: Vec<(&str, &str)> = names
        .iter()
        .zip(&texts)
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    for extra in [
        // Every item, across several batches.
        "[feeds]\nlimit = 0\n",
        "[feeds]\nlimit = 3\n",
        "[feeds]\nlimit = 0\nfull_content = false\ntag_feeds = false\n",
        "[feeds]\nlimit = 0\nappend_cta = false\nhub = 'https://hub.example.com/'\n",
        "[feeds]\njson = ''\nrss = 'feeds/all.rss'\n",
    ] {
        let config = format!("{CONFIG}copyright = 'Me & co'\n{extra}");
        assert_streamed_as_rendered(&site_with(&config, &files));
        assert_streamed_as_rendered(&site_with(&config, &files[..1]));
    }
}

mod properties {
    //! Arbitrary titles, authors and bodies (XML metacharacters, `]]>`,
    //! quotes, control characters, emoji, right-to-left text) always give
    //! well-formed feeds whose parsed titles and authors equal the source
    //! minus what XML forbids.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::text::single_line;

    fn nasty_text(max: usize) -> impl Strategy<Value = String> {
        let alphabet = prop_oneof![
            4 => any::<char>(),
            2 => prop::sample::select(vec!['&', '<', '>', ']', '"', '\'', ' ', '\n', '\r', '\t', '#', '*', '`', '{', '}']),
            1 => prop::sample::select(vec!['\u{0}', '\u{1B}', '\u{7F}', '\u{85}', '\u{FFFE}', '\u{202E}', '\u{200F}', 'ש', 'ل', '🦀', '\u{FEFF}']),
            1 => Just(']'),
        ];
        prop::collection::vec(alphabet, 1..max).prop_map(|chars| chars.into_iter().collect())
    }

    fn article_text(title: &str, author: &str, body: &str) -> String {
        let mut fm = BTreeMap::new();
        fm.insert("title", title);
        fm.insert("author", author);
        fm.insert("description", title);
        fm.insert("publish_date", "2025-03-09 10:00");
        let yaml = serde_yaml::to_string(&fm).unwrap();
        format!("---\n{yaml}---\n{body}")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn feeds_stay_well_formed_and_keep_the_text(
            title in nasty_text(40),
            author in nasty_text(20),
            body in nasty_text(200),
        ) {
            let expected_title = single_line(&title);
            let expected_author = single_line(&author);
            prop_assume!(!expected_title.is_empty() && !expected_author.is_empty());
            // Addresses and "Name <addr>" forms are refused or trimmed by design.
            let looks_like_address = expected_author.contains('@')
                || (expected_author.contains('<') && expected_author.ends_with('>'));
            prop_assume!(!looks_like_address);
            prop_assume!(Slug::from_text(&expected_title).is_some());

            let site = site(&[("p.md", &article_text(&title, &author, &body))]);
            let outputs = build_all(&site, now()).unwrap();
            prop_assert_eq!(&streamed(&site, now()), &outputs);
            let rss = file(&outputs, "rss.xml");
            let atom = file(&outputs, "atom.xml");
            // `texts` panics on anything that is not well-formed XML.
            prop_assert_eq!(&texts(rss, "title")[2], &expected_title);
            prop_assert_eq!(&texts(rss, "dc:creator")[0], &expected_author);
            prop_assert_eq!(texts(rss, "content:encoded").len(), 1);
            prop_assert_eq!(&texts(atom, "title")[1], &expected_title);
            prop_assert_eq!(&texts(atom, "name")[1], &expected_author);
            prop_assert_eq!(texts(atom, "content").len(), 1);
            let json: serde_json::Value = serde_json::from_str(file(&outputs, "feed.json")).unwrap();
            prop_assert_eq!(json["items"][0]["title"].as_str().unwrap(), expected_title.as_str());
            for output in &outputs {
                let text = std::str::from_utf8(&output.bytes).unwrap();
                prop_assert!(text.chars().all(crate::text::is_xml_char), "{} holds a forbidden character", output.path.display());
            }
        }
    }
}

#[test]
fn tags_with_one_slug_make_one_feed_holding_the_article_once() {
    let post =
        "---\ntitle: 'Plus'\npublish_date: '2025-01-01'\ntags: ['C++', 'c', 'Rust']\n---\nBody\n";
    let site = site(&[("a.md", post)]);
    let outputs = build_all(&site, now()).unwrap();
    let c = file(&outputs, "tags/c/rss.xml");
    assert_eq!(
        texts(c, "title"),
        ["Dispatch · C++", "Dispatch · C++", "Plus"]
    );
    assert_eq!(
        texts(file(&outputs, "tags/rust/atom.xml"), "title").len(),
        2
    );
    assert_streamed_as_rendered(&site);
}
