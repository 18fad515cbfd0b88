//! Articles → Site → every feed file: each RSS and Atom file is
//! well-formed XML (quick-xml, strictly), the JSON Feed is JSON, and no
//! output holds a character outside XML 1.0's `Char` production.
//!
//! Input that starts with `---` is one or more raw article files joined by
//! a line `%%%`; anything else is read with `arbitrary` as a few articles
//! whose fields are written into front matter with serde_yaml.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use chrono::{DateTime, Duration, FixedOffset};
use libfuzzer_sys::fuzz_target;
use pressroom::content::{parse_article, Article, Site};
use pressroom::feed::{build_all, plan, stream, Format, Output};
use pressroom::text::is_xml_char;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde_yaml::{Mapping, Value};

/// One article's fields, as a writer might type them.
#[derive(Debug, Arbitrary)]
struct Fields {
    title: String,
    author: Option<String>,
    subtitle: Option<String>,
    description: Option<String>,
    cta: Option<String>,
    hero_image: Option<String>,
    slug: Option<String>,
    tags: Vec<String>,
    /// Minutes after 2000-01-01T00:00:00Z (about 8,000 years of range).
    minutes: u32,
    updated_minutes: Option<u32>,
    draft: bool,
    extra: Option<(String, String)>,
    body: String,
}

impl Fields {
    fn to_file(&self) -> String {
        let date = |minutes: u32| {
            let base = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").expect("valid date");
            (base + Duration::minutes(i64::from(minutes))).to_rfc3339()
        };
        let mut m = Mapping::new();
        let mut put = |k: &str, v: Value| {
            m.insert(Value::String(k.to_owned()), v);
        };
        put("title", Value::String(self.title.clone()));
        put("publish_date", Value::String(date(self.minutes)));
        if let Some(updated) = self.updated_minutes {
            put("updated_date", Value::String(date(updated)));
        }
        for (key, value) in [
            ("author", &self.author),
            ("subtitle", &self.subtitle),
            ("description", &self.description),
            ("cta", &self.cta),
            ("heroImage", &self.hero_image),
            ("slug", &self.slug),
        ] {
            if let Some(v) = value {
                put(key, Value::String(v.clone()));
            }
        }
        if !self.tags.is_empty() {
            put(
                "tags",
                Value::Sequence(self.tags.iter().cloned().map(Value::String).collect()),
            );
        }
        put("draft", Value::Bool(self.draft));
        if let Some((k, v)) = &self.extra {
            put(k, Value::String(v.clone()));
        }
        let yaml = serde_yaml::to_string(&m).expect("a mapping of strings serializes");
        format!("---\n{yaml}---\n{}", self.body)
    }
}

fn files(data: &[u8]) -> Vec<Vec<u8>> {
    if data.starts_with(b"---") {
        let mut files = Vec::new();
        let mut rest = data;
        while let Some(at) = find(rest, b"\n%%%\n") {
            files.push(rest[..at + 1].to_vec());
            rest = &rest[at + 5..];
        }
        files.push(rest.to_vec());
        files.truncate(6);
        return files;
    }
    let mut u = Unstructured::new(data);
    let Ok(articles) = <Vec<Fields>>::arbitrary(&mut u) else {
        return Vec::new();
    };
    articles
        .iter()
        .take(6)
        .map(|f| f.to_file().into_bytes())
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Well-formed XML 1.0 as quick-xml reads it with every check on: one
/// root element, matching end tags, valid attributes and entity
/// references, nothing but whitespace outside the root.
fn check_xml(name: &str, bytes: &[u8]) {
    let mut reader = Reader::from_reader(bytes);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.allow_unmatched_ends = false;
    config.trim_text(false);
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut buf = Vec::new();
    loop {
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => panic!(
                "{name}: not well-formed at {}: {e}\n{}",
                reader.buffer_position(),
                String::from_utf8_lossy(bytes)
            ),
        };
        match event {
            Event::Start(e) | Event::Empty(e) if depth == 0 && roots > 0 => {
                panic!("{name}: a second root element {:?}", e.name())
            }
            Event::Start(e) => {
                check_attributes(name, &e);
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Event::Empty(e) => {
                check_attributes(name, &e);
                if depth == 0 {
                    roots += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .unwrap_or_else(|e| panic!("{name}: bad text {t:?}: {e}"));
                assert!(
                    depth > 0 || text.trim().is_empty(),
                    "{name}: text outside the root: {text:?}"
                );
            }
            Event::CData(_) | Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            Event::DocType(_) => panic!("{name}: a DOCTYPE"),
            Event::Eof => break,
        }
        buf.clear();
    }
    assert_eq!(depth, 0, "{name}: unclosed elements");
    assert_eq!(roots, 1, "{name}: no root element");
}

fn check_attributes(name: &str, e: &quick_xml::events::BytesStart) {
    for attr in e.attributes().with_checks(true) {
        let attr = attr.unwrap_or_else(|err| panic!("{name}: bad attribute: {err}"));
        attr.unescape_value()
            .unwrap_or_else(|err| panic!("{name}: bad attribute value {attr:?}: {err}"));
    }
}

fuzz_target!(|data: &[u8]| {
    let config = pressroom_fuzz::config();
    let mut articles: Vec<Article> = Vec::new();
    let (mut ids, mut slugs) = (HashSet::new(), HashSet::new());
    for (i, bytes) in files(data).iter().enumerate() {
        let relative = format!("post-{i}.md");
        let source = format!("content/{relative}");
        let Ok(article) = parse_article(config, &source, Path::new(&relative), bytes) else {
            continue;
        };
        // Site::load refuses duplicate ids and URLs; so does this.
        if ids.insert(article.id.clone()) && slugs.insert(article.url.clone()) {
            articles.push(article);
        }
    }
    if articles.is_empty() {
        return;
    }
    articles.sort_by(|a, b| {
        b.publish_date
            .cmp(&a.publish_date)
            .then_with(|| a.source.cmp(&b.source))
    });
    let site = Site {
        config: config.clone(),
        articles,
    };
    let now: DateTime<FixedOffset> =
        DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").expect("valid date");
    // The build streams each feed a batch of items at a time; the
    // in-memory renderer is the reference it must match byte for byte.
    let rendered = build_all(&site, now).expect("bodies are in memory");
    let feeds = plan(&site, now);
    let mut sinks: Vec<Vec<(Format, Vec<u8>)>> = feeds
        .iter()
        .map(|feed| feed.files.iter().map(|(f, _)| (*f, Vec::new())).collect())
        .collect();
    stream(&site, &feeds, &mut sinks).expect("bodies are in memory");
    let mut streamed = Vec::new();
    for (feed, sinks) in feeds.iter().zip(sinks) {
        for ((_, path), (_, bytes)) in feed.files.iter().zip(sinks) {
            streamed.push(Output {
                path: path.clone(),
                bytes,
            });
        }
    }
    assert_eq!(rendered.len(), streamed.len());
    for (r, s) in rendered.iter().zip(&streamed) {
        assert_eq!(r.path, s.path);
        if r.bytes != s.bytes {
            panic!(
                "{}: streamed differs from rendered\n--- rendered\n{}\n--- streamed\n{}",
                r.path.display(),
                String::from_utf8_lossy(&r.bytes),
                String::from_utf8_lossy(&s.bytes)
            );
        }
    }
    for output in streamed {
        let name = output.path.display().to_string();
        let text = std::str::from_utf8(&output.bytes)
            .unwrap_or_else(|e| panic!("{name}: not UTF-8: {e}"));
        if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
            panic!("{name}: holds {c:?}, which XML 1.0 forbids");
        }
        if name.ends_with(".json") {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
                panic!("{name}: not JSON: {e}\n{text}");
            }
        } else {
            check_xml(&name, &output.bytes);
        }
    }
});
