//! Rendering the real sample site (`content/` in this repository) through
//! the built-in templates, and the helpers the other email tests share.

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, FixedOffset};

use super::*;
use crate::config::Config;
use crate::content::{parse_article, Article};

const SITE: &str = r#"
[site]
title = "The Pressroom Dispatch"
description = "Field notes on independent publishing."
base_url = "https://dispatch.example.com/"
author = "Mara Lindqvist"
timezone = "Europe/Berlin"
permalink = "/{year}/{slug}/"

[feeds]
id_domain = "dispatch.example.com"
"#;

/// A fixed "now" between the sample's last published article and its
/// scheduled one.
pub(crate) fn now() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2027-01-01T00:00:00+00:00").unwrap()
}

pub(crate) fn config_with(email: &str) -> Config {
    Config::parse("config.toml", &format!("{SITE}{email}")).unwrap()
}

/// The sample site with `email` (TOML, `[email]` and below) appended to
/// its configuration.
pub(crate) fn sample_site_with(email: &str) -> Site {
    Site::load(Path::new(env!("CARGO_MANIFEST_DIR")), config_with(email)).unwrap()
}

pub(crate) fn sample_site() -> Site {
    sample_site_with("")
}

fn site_of(articles: &[(&str, &str)], email: &str) -> Site {
    let config = config_with(email);
    let mut parsed: Vec<Article> = articles
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
    parsed.sort_by_key(|a| std::cmp::Reverse(a.publish_date));
    Site {
        config,
        articles: parsed,
    }
}

/// A reader with `name` and template `fields`.
pub(crate) fn reader(email: &str, name: Option<&str>, fields: &[(&str, &str)]) -> Recipient {
    Recipient {
        email: EmailAddress::parse(email).unwrap(),
        name: name.map(str::to_owned),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The default issue of `site`, rendered for the sample reader.
pub(crate) fn render_one(site: &Site) -> RenderedEmail {
    let drafts = plan(
        site,
        now(),
        site.config.email.mode,
        site.config.email.digest_max,
        &HashSet::new(),
    );
    render_draft(site, &drafts[0])
}

fn render_draft(site: &Site, draft: &Draft<'_>) -> RenderedEmail {
    let recipient = sample_recipient();
    let unsubscribe = unsubscribe_url(site, &recipient.email, b"test secret");
    render(site, &Templates::builtin(), draft, &recipient, &unsubscribe).unwrap()
}

fn article_of<'a>(site: &'a Site, slug: &str) -> &'a Article {
    site.articles
        .iter()
        .find(|a| a.slug.as_str() == slug)
        .unwrap_or_else(|| panic!("no article {slug}"))
}

fn single(site: &Site, slug: &str) -> RenderedEmail {
    let draft = Draft::new(site, Mode::PerArticle, vec![article_of(site, slug)]).unwrap();
    render_draft(site, &draft)
}

#[test]
fn digest_of_the_sample_site() {
    let site = sample_site_with("[email]\npostal_address = '1 Quay Street, Bristol'\n");
    let email = render_one(&site);
    let published: Vec<&Article> = site.published(now()).collect();
    assert_eq!(email.articles.len(), published.len().min(10));
    assert_eq!(
        email.subject,
        format!(
            "The Pressroom Dispatch: {} and {} more",
            published[0].title,
            email.articles.len() - 1
        )
    );
    let html = &email.html;
    // Every article's title, in order, and the table of contents.
    let mut at = 0;
    for a in &email.articles {
        let escaped = a
            .title
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let found = html[at..]
            .find(&escaped)
            .unwrap_or_else(|| panic!("{} missing", a.title));
        at += found;
    }
    assert!(html.contains("In this issue"), "{html}");
    // Summaries in a digest by default.
    assert!(html.contains("Read the article"), "{html}");
    assert!(html.contains("1 Quay Street, Bristol"));
    assert!(html.contains(&email.unsubscribe_url.replace('&', "&amp;")));
    // CSS inlined, @media kept.
    assert!(html.contains("style=\""), "{html}");
    assert!(
        html.contains("@media (prefers-color-scheme: dark)"),
        "{html}"
    );
    assert!(html.contains("@media (max-width: 620px)"), "{html}");
    assert!(
        !html.contains(".masthead-link {"),
        "ordinary rules are inlined, not kept"
    );
    // The text part lists the same articles.
    for a in &email.articles {
        assert!(email.text.contains(&a.title), "{}", email.text);
    }
    assert!(email
        .text
        .contains("Unsubscribe: https://dispatch.example.com/unsubscribe?token="));
    assert!(lint(&email).is_empty(), "{:#?}", lint(&email));
}

#[test]
fn per_article_email_has_everything_a_reader_expects() {
    let site = sample_site_with("[email]\nmode = 'per-article'\n");
    let email = single(&site, "deliverability-without-the-dark-arts");
    let article = article_of(&site, "deliverability-without-the-dark-arts");
    let html = &email.html;
    assert_eq!(email.subject, "Deliverability Without the Dark Arts");
    // Preheader from the description, padded.
    let pre = html.find("class=\"preheader\"").unwrap();
    let pre_text = &html[pre..pre + 1500];
    assert!(pre_text.contains("The three DNS records"), "{pre_text}");
    assert!(pre_text.contains('\u{200c}'), "{pre_text}");
    assert!(
        pre_text.contains("display:none") || pre_text.contains("display: none"),
        "{pre_text}"
    );
    // Title, subtitle, byline.
    assert!(html.contains("SPF, DKIM and DMARC explained"));
    assert!(
        html.contains("Mara Lindqvist · 7 mins · 9 March 2025"),
        "{html}"
    );
    // Full article by default.
    assert!(html.contains("Sender Policy Framework"), "{html}");
    // The CTA's link becomes the button.
    assert!(html.contains("class=\"button\""), "{html}");
    let button = &html[html.find("class=\"button\"").unwrap() - 200..];
    assert!(
        button.contains("https://dispatch.example.com/checklist/"),
        "{button}"
    );
    assert!(button.contains("Download the deliverability checklist"));
    // Text part: title underlined, CTA text and link, unsubscribe.
    let text = &email.text;
    assert!(
        text.starts_with("Deliverability Without the Dark Arts\n====="),
        "{text}"
    );
    assert!(text.contains("Want the checklist?"), "{text}");
    assert!(
        text.contains(
            "Download the deliverability checklist: https://dispatch.example.com/checklist/"
        ),
        "{text}"
    );
    assert!(text.contains(article.url.as_str()), "{text}");
    assert!(
        text.lines()
            .all(|l| l.chars().count() <= 76 || l.contains("https://") || l.starts_with("    ")),
        "{text}"
    );
    // Code is kept on one line, indented.
    assert!(
        text.contains("\n    dispatch.example.com.  IN TXT"),
        "{text}"
    );
    assert!(!text.contains("<p>"), "{text}");
    assert!(lint(&email).is_empty(), "{:#?}", lint(&email));
}

#[test]
fn hero_image_has_width_and_alt() {
    let site = sample_site();
    let email = single(&site, "welcome");
    let html = &email.html;
    let img = html
        .find("https://images.example.com/dispatch/welcome-press.jpg")
        .unwrap();
    let tag = &html[html[..img].rfind('<').unwrap()..];
    let tag = &tag[..tag.find('>').unwrap()];
    assert!(tag.contains("width=\"600\""), "{tag}");
    assert!(
        tag.contains("alt=\"Welcome to The Pressroom Dispatch\""),
        "{tag}"
    );
    assert!(
        tag.contains("max-width:100%") || tag.contains("max-width: 100%"),
        "{tag}"
    );
}

#[test]
fn cta_without_link_gets_a_read_the_article_button() {
    let site = sample_site();
    let email = single(&site, "welcome");
    let article = article_of(&site, "welcome");
    let html = &email.html;
    let button = html.find("class=\"button\"").unwrap();
    let around = &html[button - 300..];
    let around = &around[..around.find("</a>").unwrap() + 4];
    assert!(around.contains(article.url.as_str()), "{around}");
    assert!(around.ends_with(">Read the article</a>"), "{around}");
    assert!(html.contains("Know someone who runs a small publication?"));
    // The text part says where to go once, not twice.
    let text = &email.text;
    assert!(
        text.contains("Know someone who runs a small publication?"),
        "{text}"
    );
    assert_eq!(
        text.matches(&format!(": {}", article.url)).count(),
        1,
        "{text}"
    );
}

#[test]
fn article_text_is_data_not_template_code() {
    let site = site_of(
        &[(
            "x.md",
            "---\ntitle: '{{ 7*7 }} <b>bold</b> & co'\nsubtitle: '{% raw %}'\ndescription: '{{ site.title }}'\npublish_date: '2025-03-09'\ncta: 'Say {{ 1+1 }} [now](https://example.com/?a=1&b=2)'\n---\nBody {{ 7*7 }} {% if true %}x{% endif %}\n\n<script>alert(1)</script>\n",
        )],
        "[email]\ncontent = 'full'\n",
    );
    let email = render_one(&site);
    let html = &email.html;
    assert!(
        html.contains("{{ 7*7 }} &lt;b&gt;bold&lt;/b&gt; &amp; co"),
        "{html}"
    );
    assert!(!html.contains("49 &lt;b"), "{html}");
    assert!(
        html.contains("Body {{ 7*7 }} {% if true %}x{% endif %}"),
        "{html}"
    );
    assert!(html.contains("{% raw %}"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<b>bold"), "{html}");
    assert!(
        email.subject.contains("{{ 7*7 }} <b>bold</b> & co"),
        "{}",
        email.subject
    );
    assert!(
        email.text.contains("{{ 7*7 }} <b>bold</b> & co"),
        "{}",
        email.text
    );
    assert!(email.text.contains("Say {{ 1+1 }} now"), "{}", email.text);
}

#[test]
fn summary_and_full_content_follow_the_config() {
    let site = sample_site_with("[email]\ncontent = 'summary'\nmode = 'per-article'\n");
    let email = single(&site, "deliverability-without-the-dark-arts");
    assert!(!email.html.contains("Sender Policy Framework"));
    assert!(email.html.contains("The three DNS records"));
    let site = sample_site_with("[email]\ncontent = 'full'\n");
    let email = render_one(&site);
    assert!(email.html.contains("Read it on the web"), "{}", email.html);
}

#[test]
fn utm_parameters_on_site_links_only() {
    let site =
        sample_site_with("[email]\nmode = 'per-article'\n[email.utm]\ncampaign = 'spring'\n");
    let email = single(&site, "deliverability-without-the-dark-arts");
    let html = &email.html;
    assert!(
        html.contains("https://dispatch.example.com/checklist/?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=spring"),
        "{html}"
    );
    assert!(!email.unsubscribe_url.contains("utm_"));
    assert!(!html.contains("unsubscribe?token=") || !html.contains("unsubscribe?token=utm"));
    let unsubscribe_links: Vec<&str> = html
        .match_indices("/unsubscribe?")
        .map(|(i, _)| &html[i..i + 80])
        .collect();
    assert!(
        unsubscribe_links.iter().all(|l| !l.contains("utm_")),
        "{unsubscribe_links:?}"
    );
    assert!(email.text.contains("utm_campaign=spring"), "{}", email.text);
    // Links elsewhere keep their URL.
    let why = single(&site, "why-we-built-our-publisher-in-rust");
    assert!(
        why.html.contains("href=\"https://www.rust-lang.org/\""),
        "{}",
        why.html
    );
}

#[test]
fn recipient_fields_reach_templates() {
    let site = sample_site_with("[email]\nsubject_single = 'For {{ recipient.fields.city }}: {{ article.title }}'\nmode = 'per-article'\n");
    let mut recipient = sample_recipient();
    recipient.fields.insert("city".into(), "Bristol".into());
    let draft = plan_preview(&site, now(), Mode::PerArticle, 10, &HashSet::new());
    let email = render(
        &site,
        &Templates::builtin(),
        &draft[0],
        &recipient,
        "https://x.example/u",
    )
    .unwrap();
    assert!(
        email.subject.starts_with("For Bristol: "),
        "{}",
        email.subject
    );
}

#[test]
fn template_errors_name_the_file() {
    let site = sample_site();
    let templates = Templates::from_sources(vec![(
        "digest.txt".into(),
        "ok\n{{ articles[0].title.nothing.deeper }}".into(),
    )])
    .unwrap();
    let drafts = plan(&site, now(), Mode::Digest, 10, &HashSet::new());
    let err = render(
        &site,
        &templates,
        &drafts[0],
        &sample_recipient(),
        "https://x.example/u",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("templates/digest.txt:2: "), "{err}");
}

#[test]
fn rendering_is_deterministic() {
    let site = sample_site();
    let a = render_one(&site);
    let b = render_one(&site);
    assert_eq!(a.html, b.html);
    assert_eq!(a.text, b.text);
    assert_eq!(a.subject, b.subject);
}

#[test]
fn write_samples_for_inspection() {
    // Handy while working on the templates:
    // PRESSROOM_EMAIL_SAMPLES=/tmp/x cargo test --lib write_samples
    let Some(dir) = std::env::var_os("PRESSROOM_EMAIL_SAMPLES") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let site = sample_site_with("[email]\nfrom = 'news@dispatch.example.com'\npostal_address = 'Pressroom Ltd, 1 Quay Street, Bristol BS1 4DJ'\nunsubscribe_mailto = 'unsubscribe@dispatch.example.com'\n");
    let digest = render_one(&site);
    let single = single(&site, "deliverability-without-the-dark-arts");
    for (name, email) in [("digest", &digest), ("article", &single)] {
        std::fs::write(dir.join(format!("{name}.html")), &email.html).unwrap();
        std::fs::write(dir.join(format!("{name}.txt")), &email.text).unwrap();
        let message = build_message(&site, email, &sample_recipient(), now()).unwrap();
        std::fs::write(dir.join(format!("{name}.eml")), message.formatted()).unwrap();
    }
}
