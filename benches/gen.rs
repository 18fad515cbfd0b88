//! Synthetic sites for `benches/build.sh`: N articles in pressroom's
//! article format (front matter like the samples in `content/`, bodies of
//! about 5 KB of varied Markdown), written twice from the same bytes — once
//! as a pressroom site, once as a Hugo site whose files carry the same
//! front matter plus `date:` (Hugo's name for the publish date) — with the
//! configurations of the three benchmark scenarios for each tool.
//!
//! Standalone on purpose (std only, compiled by `rustc` from the harness):
//! it adds no dependency and no target to the crate.
//!
//! Usage: gen N OUT_DIR [--bundles]
//!
//! Writes:
//!   OUT_DIR/pressroom/content/YYYY/post-NNNNNN.md
//!   OUT_DIR/pressroom/config-limit20.toml, config-all.toml, config-tags.toml
//!   OUT_DIR/hugo/content/posts/YYYY/post-NNNNNN.md
//! or, with --bundles, a folder per article (a Hugo "page bundle"):
//! .../YYYY/post-NNNNNN/index.md in place of .../YYYY/post-NNNNNN.md.
//!   OUT_DIR/hugo/hugo-limit20.toml, hugo-all.toml, hugo-tags.toml,
//!   layouts/index.rss.xml, layouts/_default/term.rss.xml
//!
//! The output is a pure function of N and the layout.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::Path;

/// A small deterministic generator (SplitMix64), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const WORDS: &[&str] = &[
    "feed",
    "reader",
    "newsletter",
    "publisher",
    "archive",
    "subscriber",
    "inbox",
    "draft",
    "schedule",
    "template",
    "render",
    "parser",
    "markdown",
    "header",
    "footer",
    "link",
    "image",
    "article",
    "editor",
    "writer",
    "weekly",
    "digest",
    "signal",
    "noise",
    "trust",
    "format",
    "static",
    "binary",
    "server",
    "client",
    "delivery",
    "bounce",
    "domain",
    "record",
    "policy",
    "sender",
    "list",
    "issue",
    "story",
    "column",
    "metric",
    "open",
    "click",
    "quiet",
    "careful",
    "simple",
    "robust",
    "strict",
    "valid",
    "stable",
    "fast",
    "small",
    "plain",
    "clear",
    "honest",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "that",
    "is",
    "for",
    "with",
    "on",
    "as",
    "it",
    "we",
    "our",
    "every",
    "never",
    "always",
    "because",
    "when",
    "while",
    "after",
    "before",
    "which",
    "écriture",
    "naïve",
    "café",
    "Zürich",
    "Ångström",
    "façade",
];

const TAGS: &[&str] = &[
    "rust",
    "feeds",
    "email",
    "deliverability",
    "tooling",
    "design",
    "html",
    "privacy",
    "analytics",
    "writing",
    "editing",
    "growth",
    "community",
    "hosting",
    "performance",
    "security",
    "accessibility",
    "typography",
    "images",
    "search",
    "archives",
    "workflow",
    "automation",
    "testing",
    "standards",
    "json",
    "atom",
    "rss",
    "markdown",
    "yaml",
];

const AUTHORS: &[&str] = &[
    "Mara Lindqvist",
    "Jonas Ferreira",
    "Aiko Tanaka",
    "Samuel Okafor",
    "Lucía Romero",
];

const LANGS: &[&str] = &["rust", "sh", "toml", "python", "yaml"];

/// Between `min` and `min + spread - 1` words.
fn some_words(rng: &mut Rng, min: usize, spread: usize) -> String {
    let n = min + rng.below(spread);
    words(rng, n)
}

fn words(rng: &mut Rng, n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(WORDS));
    }
    out
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A sentence with some inline Markdown: emphasis, code, links.
fn sentence(rng: &mut Rng) -> String {
    let mut s = capitalized(&some_words(rng, 6, 10));
    match rng.below(9) {
        0 => {
            let _ = write!(s, " *{}*", words(rng, 2));
        }
        1 => {
            let _ = write!(s, " **{}**", words(rng, 2));
        }
        2 => {
            let _ = write!(s, " `{}`", rng.pick(WORDS));
        }
        3 => {
            let _ = write!(
                s,
                " [{}](https://www.example.org/{}/{})",
                words(rng, 2),
                rng.pick(TAGS),
                rng.below(1000)
            );
        }
        4 => {
            // Relative links are rewritten against the article's URL.
            let _ = write!(s, " [{}](../{}/)", words(rng, 2), rng.pick(TAGS));
        }
        5 => s.push_str(" & more"),
        _ => {}
    }
    s.push('.');
    s
}

fn paragraph(rng: &mut Rng) -> String {
    let n = 3 + rng.below(4);
    let sentences: Vec<String> = (0..n).map(|_| sentence(rng)).collect();
    // Wrapped like hand-written Markdown.
    let mut out = String::new();
    let mut width = 0;
    for word in sentences.join(" ").split(' ') {
        if width + word.len() > 76 && width > 0 {
            out.push('\n');
            width = 0;
        } else if width > 0 {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.len();
    }
    out
}

/// About `target` bytes of Markdown: paragraphs, headings, lists, links,
/// images, code blocks, quotes and the odd table.
fn body(rng: &mut Rng, target: usize) -> String {
    let mut out = paragraph(rng);
    out.push_str("\n\n");
    while out.len() < target {
        match rng.below(12) {
            0 => {
                let _ = write!(out, "## {}\n\n", capitalized(&some_words(rng, 3, 3)));
            }
            1 => {
                for _ in 0..3 + rng.below(3) {
                    let _ = writeln!(out, "- {}", capitalized(&some_words(rng, 4, 6)));
                }
                out.push('\n');
            }
            2 => {
                for i in 1..=3 + rng.below(2) {
                    let _ = writeln!(out, "{i}. {}", sentence(rng));
                }
                out.push('\n');
            }
            3 => {
                let n = rng.below(10_000);
                if rng.chance(50) {
                    let _ = write!(
                        out,
                        "![{}](https://images.example.com/bench/{n}.jpg)\n\n",
                        words(rng, 4)
                    );
                } else {
                    let _ = write!(out, "![{}](images/figure-{n}.png)\n\n", words(rng, 4));
                }
            }
            4 => {
                let lang = rng.pick(LANGS);
                let _ = writeln!(out, "```{lang}");
                for i in 0..3 + rng.below(5) {
                    let _ = writeln!(
                        out,
                        "let {}_{i} = \"{}\"; // <{}> & {}",
                        rng.pick(WORDS),
                        rng.pick(WORDS),
                        rng.pick(WORDS),
                        rng.pick(WORDS)
                    );
                }
                out.push_str("```\n\n");
            }
            5 => {
                let _ = write!(out, "> {}\n> {}\n\n", sentence(rng), sentence(rng));
            }
            6 if rng.chance(30) => {
                out.push_str("| metric | before | after |\n| --- | ---: | ---: |\n");
                for _ in 0..3 {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} |",
                        rng.pick(WORDS),
                        rng.below(1000),
                        rng.below(1000)
                    );
                }
                out.push('\n');
            }
            _ => {
                out.push_str(&paragraph(rng));
                out.push_str("\n\n");
            }
        }
    }
    out
}

/// Single-quoted YAML scalar.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

struct Generated {
    year: u32,
    front_matter: String,
    date: String,
    body: String,
}

fn article(i: usize) -> Generated {
    let mut rng = Rng(0x5EED_0000 ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    // Spread over 2015–2025; about 1% scheduled far in the future.
    let future = rng.chance(1);
    let year = if future {
        2099
    } else {
        2015 + rng.below(11) as u32
    };
    let (month, day) = (1 + rng.below(12), 1 + rng.below(28));
    let (hour, minute) = (rng.below(24), rng.below(60));
    let date = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:00+01:00");
    let mut title = capitalized(&some_words(&mut rng, 3, 5));
    if rng.chance(10) {
        title.push_str(" & Friends");
    }
    if rng.chance(10) {
        title.push_str(": what's next");
    }
    let _ = write!(title, " {i}");
    let mut fm = String::new();
    let _ = writeln!(fm, "title: {}", quoted(&title));
    if rng.chance(70) {
        let _ = writeln!(
            fm,
            "subtitle: {}",
            quoted(&capitalized(&words(&mut rng, 6)))
        );
    }
    if rng.chance(90) {
        let _ = writeln!(fm, "description: {}", quoted(&sentence(&mut rng)));
    }
    if rng.chance(80) {
        let _ = writeln!(fm, "author: {}", quoted(rng.pick(AUTHORS)));
    }
    if rng.chance(50) {
        let _ = writeln!(fm, "read_time: '{} mins'", 2 + rng.below(8));
    }
    let _ = writeln!(fm, "publish_date: '{date}'");
    if rng.chance(50) {
        let _ = writeln!(fm, "created_date: '{year:04}-{month:02}-01'");
    }
    if rng.chance(75) {
        let _ = writeln!(
            fm,
            "heroImage: 'https://images.example.com/bench/hero-{}.jpg'",
            rng.below(5000)
        );
    }
    if rng.chance(75) {
        let _ = writeln!(
            fm,
            "cta: 'Enjoyed this? [Subscribe](https://bench.example.com/subscribe/) or reply and tell us what to cover next.'"
        );
    }
    let tags: Vec<&str> = (0..1 + rng.below(3)).map(|_| rng.pick(TAGS)).collect();
    let _ = writeln!(fm, "tags: [{}]", tags.join(", "));
    let target = 4500 + rng.below(1000);
    Generated {
        year,
        front_matter: fm,
        date,
        body: body(&mut rng, target),
    }
}

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    let mut file = fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn pressroom_config(limit: usize, tag_feeds: bool) -> String {
    let why = if tag_feeds {
        "# Hugo's side builds the RSS feed of every tag too."
    } else {
        "# Hugo's side builds one feed with taxonomies disabled: compare like with like."
    };
    format!(
        r#"# Generated by benches/gen.rs.
[site]
title = "Bench Dispatch"
description = "A synthetic site for the build benchmark."
base_url = "https://bench.example.com/"
author = "Bench Author"
language = "en"
timezone = "Europe/Berlin"
logo = "/logo.png"
permalink = "/{{year}}/{{slug}}/"

[feeds]
limit = {limit}
full_content = true
append_cta = true
{why}
tag_feeds = {tag_feeds}
"#
    )
}

fn hugo_config(limit: usize, tags: bool) -> String {
    // Hugo: RSS of the home page only (and of each tag's page, with
    // `tags`); every regular page is listed (so the feeds hold it) and has
    // a permalink, but no HTML page is written.
    let limit = if limit == 0 { -1 } else { limit as i64 };
    let (disabled, taxonomies, term) = if tags {
        (
            r#""taxonomy", "section", "sitemap", "robotsTXT", "404""#,
            // Tag pages (terms) without the list of tags (the taxonomy),
            // which Hugo would otherwise log as a legacy setting.
            "ignoreErrors = [\"error-disable-taxonomy\"]\n\n[taxonomies]\ntag = \"tags\"\n",
            "term = [\"RSS\"]\n",
        )
    } else {
        (
            r#""taxonomy", "term", "section", "sitemap", "robotsTXT", "404""#,
            "",
            "",
        )
    };
    format!(
        r#"# Generated by benches/gen.rs.
baseURL = "https://bench.example.com/"
title = "Bench Dispatch"
languageCode = "en"
disableKinds = [{disabled}]
enableRobotsTXT = false
{taxonomies}
[outputs]
home = ["RSS"]
page = []
{term}
[[cascade]]
[cascade._build]
render = "link"
list = "always"
[cascade._target]
kind = "page"

[services.rss]
limit = {limit}
"#
    )
}

const HUGO_RSS: &str = r#"{{- $pages := .Site.RegularPages -}}
{{- $limit := .Site.Config.Services.RSS.Limit -}}
{{- if ge $limit 1 }}{{ $pages = $pages | first $limit }}{{ end -}}
{{- printf "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>" | safeHTML }}
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>{{ .Site.Title }}</title>
    <link>{{ .Permalink }}</link>
    <description>{{ .Site.Title }}</description>
    <language>{{ .Site.LanguageCode }}</language>
    {{- if not .Date.IsZero }}
    <lastBuildDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</lastBuildDate>
    {{- end }}
    {{- range $pages }}
    <item>
      <title>{{ .Title }}</title>
      <link>{{ .Permalink }}</link>
      <pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</pubDate>
      <guid>{{ .Permalink }}</guid>
      <description>{{ .Content | html }}</description>
    </item>
    {{- end }}
  </channel>
</rss>
"#;

/// A tag's feed: the home feed's template over the tag's pages.
fn hugo_term_rss() -> String {
    HUGO_RSS.replacen(".Site.RegularPages", ".Pages", 1)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bundles = match args.get(3).map(String::as_str) {
        None => false,
        Some("--bundles") => true,
        Some(other) => {
            eprintln!("unknown argument: {other}");
            std::process::exit(2);
        }
    };
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: gen N OUT_DIR [--bundles]");
        std::process::exit(2);
    }
    let n: usize = args[1].parse().unwrap_or_else(|_| {
        eprintln!("N must be a number, not {}", args[1]);
        std::process::exit(2);
    });
    let out = Path::new(&args[2]);
    let pressroom = out.join("pressroom");
    let hugo = out.join("hugo");
    let mut bytes = 0usize;
    for i in 0..n {
        let a = article(i);
        let name = if bundles {
            format!("{:04}/post-{i:06}/index.md", a.year)
        } else {
            format!("{:04}/post-{i:06}.md", a.year)
        };
        let text = format!("---\n{}---\n\n{}", a.front_matter, a.body);
        bytes += text.len();
        write(&pressroom.join("content").join(&name), &text);
        let text = format!(
            "---\n{}date: '{}'\n---\n\n{}",
            a.front_matter, a.date, a.body
        );
        write(&hugo.join("content/posts").join(&name), &text);
    }
    write(
        &pressroom.join("config-limit20.toml"),
        &pressroom_config(20, false),
    );
    write(
        &pressroom.join("config-all.toml"),
        &pressroom_config(0, false),
    );
    write(
        &pressroom.join("config-tags.toml"),
        &pressroom_config(0, true),
    );
    write(&hugo.join("hugo-limit20.toml"), &hugo_config(20, false));
    write(&hugo.join("hugo-all.toml"), &hugo_config(0, false));
    write(&hugo.join("hugo-tags.toml"), &hugo_config(0, true));
    write(&hugo.join("layouts/index.rss.xml"), HUGO_RSS);
    write(
        &hugo.join("layouts/_default/term.rss.xml"),
        &hugo_term_rss(),
    );
    eprintln!(
        "generated {n} articles ({} KB on average) in {}",
        bytes / n.max(1) / 1024,
        out.display()
    );
}
