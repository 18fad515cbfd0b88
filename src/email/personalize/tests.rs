//! Spliced emails against full renders, byte for byte, on the sample site;
//! and every way a template can make splicing wrong, falling back.

use std::collections::{BTreeMap, HashSet};

use chrono::DateTime;
use proptest::prelude::*;

use super::*;
use crate::email::tests::{now, reader, sample_site_with};
use crate::email::{build_message, into_message, plan, render, unsubscribe_url, Mode};

const EMAIL: &str = "[email]\nfrom = 'news@dispatch.example.com'\nfrom_name = 'The Dispatch'\nreply_to = 'mara@dispatch.example.com'\nunsubscribe_mailto = 'leave+list@dispatch.example.com'\npostal_address = '1 Quay St, Bristol'\n";
const SECRET: &[u8] = b"test secret";

/// Readers whose values need every kind of escaping.
fn readers() -> Vec<Recipient> {
    vec![
        reader(
            "ann@example.com",
            Some("Ann & Bob"),
            &[("city", "Köln & <Bonn>"), ("plan", "pro")],
        ),
        reader(
            "o'brien&co@example.org",
            Some("Seán \"Q\" O'Brien"),
            &[("city", "Cork"), ("plan", "free")],
        ),
        reader(
            "x@example.net",
            Some("<script>alert(1)</script>"),
            &[("city", ""), ("plan", "pro")],
        ),
        reader(
            "t@example.com",
            Some("{{ 7*7 }} {% if x %}"),
            &[("city", "a\u{a0}b / c"), ("plan", "free")],
        ),
        reader(
            "zoe@example.com",
            Some("Zoë Ærøskøbing 東京 🙂"),
            &[("city", ""), ("plan", "")],
        ),
        reader(
            "none@example.com",
            None,
            &[("city", "Bergen"), ("plan", "free")],
        ),
        reader(
            "blank@example.com",
            Some("  "),
            &[("city", "Oslo"), ("plan", "")],
        ),
        reader(
            "lines@example.com",
            Some("Two\nLines"),
            &[("city", " padded "), ("plan", "pro")],
        ),
        reader(
            "ctrl@example.com",
            Some("Tab\there"),
            &[("city", "x\u{0}y"), ("plan", "free")],
        ),
        reader(
            "amp@example.com",
            Some("&amp; &lt;b&gt; &#x27;"),
            &[("city", "\"quoted\""), ("plan", "pro")],
        ),
    ]
}

/// Templates that print every recipient value in every place a value can
/// be spliced: text nodes, attributes, the subject, the text part.
fn printing_templates() -> Templates {
    Templates::from_sources(vec![
        (
            "article.html".into(),
            "{% extends \"base.html\" %}{% block content %}\
             <p class=\"hi\" title=\"{{ recipient.name }} ({{ recipient.fields.city }})\">Hi {{ recipient.name }},</p>\
             <p>{{ recipient.fields.city }} · {{ recipient.fields.plan }} · {{ recipient.email }}</p>\
             <a href=\"{{ unsubscribe_url }}&amp;x=1\" data-who=\"{{ recipient.email }}\">{{ unsubscribe_url }}</a>\
             <h1>{{ article.title }}</h1>{% endblock %}"
                .into(),
        ),
        (
            "article.txt".into(),
            "Hi {{ recipient.name }}\n\n{{ recipient.fields.city }}  \n\n\n{{ recipient.fields.plan }}\n{{ article.text }}\n{% include \"footer.txt\" %}".into(),
        ),
        (
            "digest.html".into(),
            "{% extends \"base.html\" %}{% block content %}<p title=\"{{ recipient.name }}\">{{ recipient.name }} in {{ recipient.fields.city }}</p>{% for a in articles %}<h2>{{ a.title }}</h2>{% endfor %}{% endblock %}".into(),
        ),
        (
            "digest.txt".into(),
            "{{ recipient.name }}\n{% for a in articles %}{{ a.title }}\n{% endfor %}{% include \"footer.txt\" %}".into(),
        ),
    ])
    .unwrap()
}

fn subject_config() -> String {
    format!("{EMAIL}subject_digest = \"{{{{ recipient.name }}}}: {{{{ articles[0].title }}}} for {{{{ recipient.fields.city }}}}\"\nsubject_single = \"{{{{ article.title }}}} · {{{{ recipient.name }}}}\"\n")
}

/// Every message the personalizer makes equals the full render's, as
/// bytes on the wire, for the same date. Returns the stats.
fn assert_same(
    site: &Site,
    templates: &Templates,
    draft: &Draft<'_>,
    readers: &[Recipient],
) -> Stats {
    let date = DateTime::parse_from_rfc3339("2025-03-09T09:30:00+01:00").unwrap();
    let mut personalizer = Personalizer::new(site, templates, draft).unwrap();
    // Twice round: the second pass is past the checks.
    for reader in readers.iter().chain(readers) {
        let unsubscribe = unsubscribe_url(site, &reader.email, SECRET);
        let (slow, fast) = match (
            render(site, templates, draft, reader, &unsubscribe),
            personalizer.render(reader, &unsubscribe),
        ) {
            (Ok(slow), Ok(fast)) => (slow, fast),
            // A template error is the same error either way.
            (Err(slow), Err(fast)) => {
                assert_eq!(fast.to_string(), slow.to_string());
                continue;
            }
            (slow, fast) => panic!("{reader:?}: {slow:?} vs {fast:?}"),
        };
        assert_eq!(fast.subject, slow.subject, "{reader:?}");
        assert_eq!(fast.text, slow.text, "{reader:?}");
        assert_eq!(fast.html, slow.html, "{reader:?}");
        if let Some(encoded) = &fast.html_encoded {
            // Spliced from pieces encoded once: the same bytes as
            // encoding the whole part.
            assert!(*encoded == qp::encode(&fast.html), "{reader:?}");
        }
        if let Some(encoded) = &fast.text_encoded {
            assert!(*encoded == qp::encode(&fast.text), "{reader:?}");
        }
        assert_eq!(fast.articles, slow.articles);
        assert_eq!(fast.unsubscribe_url, slow.unsubscribe_url);
        assert_eq!(fast.article_urls, slow.article_urls);
        let slow = build_message(site, &slow, reader, date)
            .unwrap()
            .formatted();
        let borrowed = build_message(site, &fast, reader, date)
            .unwrap()
            .formatted();
        // What a send builds, moving the spliced parts in.
        let fast = into_message(site, fast, reader, date).unwrap();
        // The envelope is given, not derived: it must be what lettre
        // derives from the headers.
        let derived = lettre::address::Envelope::try_from(fast.headers()).unwrap();
        assert_eq!(&derived, fast.envelope(), "{reader:?}");
        let fast = fast.formatted();
        assert!(
            fast == slow,
            "{reader:?}\n{}",
            String::from_utf8_lossy(&fast)
        );
        assert!(borrowed == fast, "{reader:?}");
    }
    personalizer.stats()
}

fn drafts(site: &Site) -> Vec<Draft<'_>> {
    let mut drafts = plan(site, now(), Mode::Digest, 0, &HashSet::new());
    let article = &site.articles[0];
    drafts.push(Draft::new(site, Mode::PerArticle, vec![article]).unwrap());
    drafts
}

#[test]
fn builtin_templates_splice_byte_identical_messages() {
    let site = sample_site_with(EMAIL);
    let templates = Templates::builtin();
    for draft in drafts(&site) {
        let stats = assert_same(&site, &templates, &draft, &readers());
        // Pass one checks every new name and field value against a full
        // render; pass two splices all but the two readers with a control
        // character or a padded value.
        assert_eq!(stats.spliced, 8, "{stats:?}");
    }
}

#[test]
fn values_in_text_attributes_subject_and_text_part_splice_exactly() {
    let site = sample_site_with(&subject_config());
    let templates = printing_templates();
    for draft in drafts(&site) {
        let stats = assert_same(&site, &templates, &draft, &readers());
        // Readers with control characters or padded values are rendered in
        // full on their own; everyone else is spliced on the second pass.
        assert_eq!(stats.spliced, 8, "{stats:?}");
        assert_eq!(stats.full, 12, "{stats:?}");
    }
}

/// The text part is tidied once, with tokens in it, and encoded once:
/// values where tidying and quoted-printable encoding do something (the
/// end of a padded line, a line of its own between runs of blank lines,
/// the start of a line after a `.`, a line long enough to need soft
/// breaks, non-ASCII) give the bytes a per-recipient render and encoding
/// would, and those readers are spliced, not rendered in full.
#[test]
fn a_spliced_text_part_is_what_a_per_recipient_render_gives() {
    let site = sample_site_with(EMAIL);
    let article = &site.articles[0];
    let draft = Draft::new(&site, Mode::PerArticle, vec![article]).unwrap();
    let long = "word ".repeat(30);
    let templates = Templates::from_sources(vec![(
        "article.txt".into(),
        format!(
            "\n\n   \nHi {{{{ recipient.name }}}}   \n\n\n\n{{{{ recipient.fields.city }}}}\n\t\n.{{{{ recipient.name }}}}\n\
             {long}{{{{ recipient.name }}}}{long}= {{{{ recipient.fields.city }}}}\n\
             {{{{ unsubscribe_url }}}} \n\n\n"
        ),
    )])
    .unwrap();
    let readers: Vec<Recipient> = [
        ("a@example.com", "Ann", "Köln"),
        ("b@example.com", "Bob = Builder", "Cork"),
        ("c@example.com", "Zoë 東京 🙂", "a\u{a0}b"),
        ("d@example.com", "Dot.", ".Oslo"),
        ("e@example.com", &"x".repeat(90), "y"),
        ("f@example.com", "F", "Bergen"),
    ]
    .iter()
    .map(|(email, name, city)| reader(email, Some(name), &[("city", city)]))
    .collect();
    let stats = assert_same(&site, &templates, &draft, &readers);
    // Every reader is checked against a full render on the first pass
    // (new values), then spliced on the second.
    assert_eq!(stats.spliced, readers.len() as u64, "{stats:?}");
    let mut personalizer = Personalizer::new(&site, &templates, &draft).unwrap();
    // The first pass checks each reader against a full render; the
    // second splices them all.
    for r in readers.iter() {
        let unsubscribe = unsubscribe_url(&site, &r.email, SECRET);
        personalizer.render(r, &unsubscribe).unwrap();
    }
    for r in readers.iter() {
        let unsubscribe = unsubscribe_url(&site, &r.email, SECRET);
        let email = personalizer.render(r, &unsubscribe).unwrap();
        let encoded = email
            .text_encoded
            .expect("the text part is spliced encoded");
        let slow = render(&site, &templates, &draft, r, &unsubscribe).unwrap();
        assert_eq!(email.text, slow.text);
        assert!(encoded == qp::encode(&slow.text), "{r:?}");
    }
}

/// A template that does more than print a value falls back, and the
/// result is still exactly the full render.
#[test]
fn templates_that_inspect_values_fall_back() {
    let cases = [
        ("upper", "<p>{{ recipient.name|upper }}</p>"),
        ("length", "<p>{{ recipient.name|length }}</p>"),
        ("first letter", "<p>{{ recipient.name[0] }}</p>"),
        ("truncate", "<p>{{ recipient.fields.city|truncate(12) }}</p>"),
        ("wrap of a concatenation", "<p>{{ ('Dear ' ~ recipient.name ~ ', ' ~ article.title)|wrap(30) }}</p>"),
        ("title", "<p>{{ recipient.email|title }}</p>"),
        ("replace", "<p>{{ unsubscribe_url|replace('/', ' / ') }}</p>"),
        ("comparison", "{% if recipient.fields.plan == 'pro' %}<p>PRO</p>{% endif %}"),
        ("truthiness", "{% if recipient.fields.city %}<p>from somewhere</p>{% endif %}{% if recipient.name %}<p>named</p>{% endif %}"),
        ("style block", "<style>@media (max-width: 1px) { .x { content: '{{ recipient.name }}' } }</style>"),
        ("style attribute", "<p style=\"color: {{ recipient.fields.city }}\">x</p>"),
        ("comment", "<!-- {{ recipient.name }} -->"),
        ("safe", "<p>{{ recipient.name|safe }}</p>"),
    ];
    let site = sample_site_with(EMAIL);
    let article = &site.articles[0];
    let draft = Draft::new(&site, Mode::PerArticle, vec![article]).unwrap();
    for (what, body) in cases {
        let templates = Templates::from_sources(vec![(
            "article.html".into(),
            format!("{{% extends \"base.html\" %}}{{% block content %}}{body}{{% endblock %}}"),
        )])
        .unwrap();
        let stats = assert_same(&site, &templates, &draft, &readers());
        // Spliceable as far as values go, with every value non-empty:
        let named: Vec<Recipient> = readers()
            .into_iter()
            .filter(|r| {
                r.name.as_deref().is_some_and(spliceable)
                    && r.fields.values().all(|v| spliceable(v) && !v.is_empty())
            })
            .collect();
        assert_eq!(named.len(), 4);
        let named_stats = assert_same(&site, &templates, &draft, &named);
        match what {
            // Emptiness is part of the shape: nothing to fall back from.
            "truthiness" => assert!(named_stats.spliced > 0, "{what}"),
            _ => assert_eq!(named_stats.spliced, 0, "{what}: {named_stats:?}"),
        }
        assert!(stats.full > 0);
    }
}

#[test]
fn a_comparison_with_a_literal_is_caught_by_checking_new_values() {
    let site = sample_site_with(EMAIL);
    let article = &site.articles[0];
    let draft = Draft::new(&site, Mode::PerArticle, vec![article]).unwrap();
    let templates = Templates::from_sources(vec![(
        "article.txt".into(),
        "{% if recipient.fields.plan == 'pro' %}PRO {% endif %}{{ recipient.name }}".into(),
    )])
    .unwrap();
    // The first reader is on the free plan: splicing looks right until a
    // pro reader comes along.
    let mut readers: Vec<Recipient> = (0..5)
        .map(|i| reader(&format!("f{i}@example.com"), Some("F"), &[("plan", "free")]))
        .collect();
    readers.push(reader("p@example.com", Some("P"), &[("plan", "pro")]));
    readers.push(reader("q@example.com", Some("Q"), &[("plan", "pro")]));
    let stats = assert_same(&site, &templates, &draft, &readers);
    assert!(stats.spliced > 0, "{stats:?}");
    let unsubscribe = unsubscribe_url(&site, &readers[5].email, SECRET);
    let mut personalizer = Personalizer::new(&site, &templates, &draft).unwrap();
    for r in &readers {
        personalizer.render(r, &unsubscribe).unwrap();
    }
    assert!(personalizer
        .render(&readers[6], &unsubscribe)
        .unwrap()
        .text
        .starts_with("PRO Q"));
}

#[test]
fn html_contexts() {
    let html = "<p title=\"T\" style=\"S\">X</p><!-- C --><style>Y</style><a href='Q'>Z</a>";
    let at = |c: &str| html.find(c).unwrap();
    assert_eq!(html_escapes(html, &[at("T")]), Some(vec![Escape::Attr]));
    assert_eq!(
        html_escapes(html, &[at("X"), at("Z")]),
        Some(vec![Escape::Text, Escape::Text])
    );
    for other in ["S", "C", "Y", "Q"] {
        assert_eq!(html_escapes(html, &[at(other)]), None, "{other}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any name and field values, spliced or not, give the full render.
    #[test]
    fn any_values_give_the_full_render(
        names in proptest::collection::vec(proptest::option::of("[ -~\u{a0}é東🙂&<>\"']{0,12}"), 1..4),
        cities in proptest::collection::vec("[ -~\u{a0}é&<>\"']{0,10}", 1..4),
    ) {
        let site = sample_site_with(&subject_config());
        let templates = printing_templates();
        let readers: Vec<Recipient> = names
            .iter()
            .zip(cities.iter().cycle())
            .enumerate()
            .map(|(i, (name, city))| Recipient {
                email: EmailAddress::parse(&format!("r{i}@example.com")).unwrap(),
                name: name.clone(),
                fields: BTreeMap::from([("city".to_owned(), city.clone()), ("plan".to_owned(), "pro".to_owned())]),
            })
            .collect();
        let drafts = drafts(&site);
        assert_same(&site, &templates, &drafts[1], &readers);
    }
}
