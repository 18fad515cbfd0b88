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
        // Both passes splice all but the two readers with a control
        // character or a padded value.
        assert_eq!(stats.spliced, 16, "{stats:?}");
        assert_eq!(stats.full, 4, "{stats:?}");
    }
}

#[test]
fn values_in_text_attributes_subject_and_text_part_splice_exactly() {
    let site = sample_site_with(&subject_config());
    let templates = printing_templates();
    for draft in drafts(&site) {
        let stats = assert_same(&site, &templates, &draft, &readers());
        // Readers with control characters or padded values are rendered in
        // full on their own; everyone else is spliced, on both passes.
        assert_eq!(stats.spliced, 16, "{stats:?}");
        assert_eq!(stats.full, 4, "{stats:?}");
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
    // Every reader is spliced, on both passes.
    assert_eq!(stats.spliced, 2 * readers.len() as u64, "{stats:?}");
    let mut personalizer = Personalizer::new(&site, &templates, &draft).unwrap();
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

/// A template that does more than print a value: each reader whose
/// template output is not the shape's with their values in it is
/// rendered in full, and the result is always exactly the full render.
#[test]
fn templates_that_inspect_values_fall_back_per_reader() {
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
        assert!(stats.full > 0, "{what}: {stats:?}");
        let named_stats = assert_same(&site, &templates, &draft, &named_readers());
        match what {
            // Emptiness is part of the shape: every reader's output is the
            // shape's.
            "truthiness" => assert_eq!(named_stats.full, 0, "{what}: {named_stats:?}"),
            _ => assert!(named_stats.full > 0, "{what}: {named_stats:?}"),
        }
    }
}

/// Readers whose values are all spliceable and non-empty.
fn named_readers() -> Vec<Recipient> {
    let named: Vec<Recipient> = readers()
        .into_iter()
        .filter(|r| {
            r.name.as_deref().is_some_and(spliceable)
                && r.fields.values().all(|v| spliceable(v) && !v.is_empty())
        })
        .collect();
    assert_eq!(named.len(), 4);
    named
}

/// A value where HTML parsing or CSS inlining could treat it differently
/// from a placeholder: the whole shape is rendered in full, exactly.
#[test]
fn values_where_parsing_or_inlining_looks_are_never_spliced() {
    let cases = [
        ("style block", "<style>@media (max-width: 1px) { .x { content: '{{ recipient.name }}' } }</style>"),
        ("style attribute", "<p style=\"color: {{ recipient.fields.city }}\">x</p>"),
        ("comment", "<!-- {{ recipient.name }} -->"),
        ("class", "<p class=\"plan-{{ recipient.fields.plan }}\">x</p>"),
        ("id", "<p id=\"{{ recipient.fields.plan }}\">x</p>"),
        ("unquoted attribute", "<p title={{ recipient.name }}>x</p>"),
        ("attribute a selector names", "<style>p[title=\"pro\"] { color: red }</style><p title=\"{{ recipient.fields.plan }}\">x</p>"),
        ("after an ampersand", "<p>&{{ recipient.fields.plan }}</p>"),
        ("after a reference's start", "<p title=\"&am{{ recipient.fields.plan }}\">x</p>"),
        ("tag name", "<{{ recipient.fields.plan }}>x</{{ recipient.fields.plan }}>"),
        ("CDATA", "<svg><![CDATA[{{ recipient.name }}]]></svg>"),
        ("script", "<script type=\"text/plain\">{{ recipient.name }}</script>"),
        ("linked stylesheet", "<link rel=\"stylesheet\" href=\"/x.css\"><p title=\"{{ recipient.name }}\">x</p>"),
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
        // Readers without the value (an empty field, no name) may splice.
        assert_same(&site, &templates, &draft, &readers());
        let named_stats = assert_same(&site, &templates, &draft, &named_readers());
        assert_eq!(named_stats.spliced, 0, "{what}: {named_stats:?}");
    }
}

/// Regression test: a literal comparison with a value that no early
/// reader has (`plan == 'pro'` first true for reader 300) used to be
/// trusted once the first values of each field had been checked, and
/// mailed the pro readers the free text. Each reader's own template
/// output now decides.
#[test]
fn a_comparison_with_a_literal_is_decided_for_every_reader() {
    let site = sample_site_with(EMAIL);
    let article = &site.articles[0];
    let draft = Draft::new(&site, Mode::PerArticle, vec![article]).unwrap();
    let templates = Templates::from_sources(vec![
        (
            "article.txt".into(),
            "{% if recipient.fields.plan == 'pro' %}PRO {% endif %}{{ recipient.name }}".into(),
        ),
        (
            "article.html".into(),
            "{% extends \"base.html\" %}{% block content %}<p class=\"{% if recipient.fields.plan == 'pro' %}pro{% endif %}\">{{ recipient.name }}</p>{% endblock %}".into(),
        ),
    ])
    .unwrap();
    let mut readers: Vec<Recipient> = (0..300)
        .map(|i| {
            let plan = ["free", "trial", "team"][i % 3];
            reader(
                &format!("f{i}@example.com"),
                Some(&format!("F{i}")),
                &[("plan", plan)],
            )
        })
        .collect();
    readers.push(reader("p@example.com", Some("P"), &[("plan", "pro")]));
    readers.push(reader("q@example.com", Some("Q"), &[("plan", "pro")]));
    let stats = assert_same(&site, &templates, &draft, &readers);
    // Twice round: the 300 others spliced, the two pro readers in full.
    assert_eq!(stats.spliced, 600, "{stats:?}");
    assert_eq!(stats.full, 4, "{stats:?}");
    let mut personalizer = Personalizer::new(&site, &templates, &draft).unwrap();
    for r in &readers {
        let unsubscribe = unsubscribe_url(&site, &r.email, SECRET);
        let email = personalizer.render(r, &unsubscribe).unwrap();
        let pro = r.fields.get("plan").is_some_and(|p| p == "pro");
        assert_eq!(email.text.starts_with("PRO "), pro, "{r:?}");
    }
}

#[test]
fn template_contexts() {
    let ok = |html: &str, token: &str| {
        let at: Vec<usize> = html.match_indices(token).map(|(i, _)| i).collect();
        assert!(!at.is_empty(), "{html}");
        template_positions_ok(html, &at)
    };
    for html in [
        "<p>TOK</p>",
        "<p title=\"TOK\" data-x='TOK'>TOK</p>",
        "<title>TOK</title><textarea>TOK</textarea>",
        "<style>.a { color: red }</style><a href=\"https://x/?u=TOK\">TOK &amp; TOK</a>",
        "<p>a < TOK</p><!-- c --><p>TOK</p><script>x</script>TOK",
        "<p>&amp;TOK</p>",
    ] {
        assert!(ok(html, "TOK"), "{html}");
    }
    for html in [
        "<p class=\"TOK\">x</p>",
        "<p ID='TOK'>x</p>",
        "<p title=TOK>x</p>",
        "<p title = \"TOK\">x</p>",
        "<p>&TOK</p>",
        "<p>&#TOK</p>",
        "<p TOK>x</p>",
        "<TOK>",
        "</TOK>",
        "<!-- TOK -->",
        "<![CDATA[TOK]]>",
        "<!DOCTYPE TOK>",
        "<?x TOK>",
        "<style>TOK</style>",
        "<STYLE>p{}</STYLE><script>TOK</script>",
        "<style>[title] {}</style><p title=\"TOK\">",
        "<style>a\\[x] {}</style><p title=\"TOK\">",
        "<link rel=stylesheet href=x><p title=\"TOK\">",
        "<base href=\"TOK\">",
        "<p data-css-inline=\"TOK\">",
        "<p lang=\"TOK\" >",
    ] {
        assert!(!ok(html, "TOK"), "{html}");
    }
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

/// Pieces of the generated templates: printing, comparing, branching,
/// filtering and looping over a reader's values, in every HTML context.
const FRAGMENTS: [&str; 26] = [
    "{{ recipient.name }}",
    "{{ recipient.email }}",
    "{{ recipient.fields.plan }}",
    "{{ recipient.fields.city }}",
    "<a href=\"{{ unsubscribe_url }}\">leave</a>",
    "{% if recipient.fields.plan == \"vip\" %}VIP{% else %}standard{% endif %}",
    "{% if recipient.fields.plan in [\"gold\", \"vip\"] %}<b>gold</b>{% endif %}",
    "{% if recipient.name|length > 12 %}long{% endif %}",
    "{{ recipient.name|upper }}",
    "{{ recipient.fields.city|truncate(9) }}",
    "{% for c in recipient.fields.plan %}[{{ c }}]{% endfor %}",
    "{% for k, v in recipient.fields|items %}{{ k }}={{ v }};{% endfor %}",
    "{{ recipient.name[:3] }}",
    "{% if \"o\" in recipient.email %}o-reader{% endif %}",
    "{{ recipient.fields.city|replace(\"a\", \"4\") }}",
    "<p title=\"{{ recipient.name }}\">t</p>",
    "<p class=\"{{ recipient.fields.plan }}\">c</p>",
    "<p title={{ recipient.fields.plan }}>u</p>",
    "&{{ recipient.fields.plan }}",
    "{{ recipient.name|default(\"friend\") }}",
    "{% if recipient.fields.city %}{{ recipient.fields.city }}{% else %}nowhere{% endif %}",
    "{{ (recipient.name ~ \" \" ~ recipient.fields.city)|wordcount }}",
    "{% if recipient.email is endingwith(\"vip.example\") %}insider{% endif %}",
    "{{ recipient.name|wrap(20) }}",
    "{% if recipient.fields.plan == \"vip\" %}<p data-plan=\"vip\">{% else %}<p>{% endif %}{{ recipient.name }}</p>",
    "{{ recipient.name|safe }}",
];

/// `n` readers from `seed`. Values that the fragments treat specially
/// (the `vip` plan, `amp;` after a `&`, a long name, a `vip.example`
/// address) first appear after reader 1,200, one at a time, among more
/// distinct everyday values than any sample of the first readers would
/// hold.
fn generated_readers(seed: u64, n: usize) -> Vec<Recipient> {
    const NAMES: [&str; 12] = [
        "Ann",
        "Bob Lee",
        "Zoë Ærø",
        "O'Brien & Co",
        "<b>Bo</b>",
        "Ann  Marie",
        " Padded",
        "Tab\there",
        "",
        "東京 🙂",
        "x\u{a0}y",
        "Dee/Dum",
    ];
    const RARE_NAMES: [&str; 3] = ["A rather long name indeed", "amp;", "#38;"];
    const PLANS: [&str; 12] = [
        "free", "pro", "", "gold", "team", "trial", "edu", "basic", "plus", "max", "solo", "duo",
    ];
    const RARE_PLANS: [&str; 3] = ["vip", "amp;", "pro\"x"];
    const CITIES: [&str; 12] = [
        "Köln",
        "Oslo",
        "",
        "Paris & Nice",
        "a<b",
        "São Paulo",
        "Lima",
        "Rome",
        "Bern",
        "Kyiv",
        "Nuuk",
        "Riga",
    ];
    let mut state = seed | 1;
    let mut pick = |len: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % len
    };
    (0..n)
        .map(|i| {
            // 0: nothing rare; 1: the name; 2: the plan; 3: the address.
            let rare = if i > 1200 && pick(3) == 0 {
                1 + pick(3)
            } else {
                0
            };
            let name = if rare == 1 {
                RARE_NAMES[pick(RARE_NAMES.len())]
            } else {
                NAMES[pick(NAMES.len())]
            };
            let plan = if rare == 2 {
                RARE_PLANS[pick(RARE_PLANS.len())]
            } else {
                PLANS[pick(PLANS.len())]
            };
            let email = if rare == 3 {
                format!("r{i}@vip.example")
            } else {
                format!("r{i}@example.com")
            };
            reader(
                &email,
                (!name.is_empty()).then_some(name),
                &[("city", CITIES[pick(CITIES.len())]), ("plan", plan)],
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Differential test: templates built from [`FRAGMENTS`] (in the
    /// subject, the HTML part and the text part), and every reader of a
    /// list of 2,000, spliced or not, give exactly the full render.
    #[test]
    fn any_template_gives_the_full_render_for_every_reader(
        html in proptest::collection::vec(0..FRAGMENTS.len(), 1..7),
        text in proptest::collection::vec(0..FRAGMENTS.len(), 1..5),
        subject in 0..FRAGMENTS.len(),
        seed in any::<u64>(),
    ) {
        let subject = FRAGMENTS[subject].replace('\'', "\\'");
        let site = sample_site_with(&format!("{EMAIL}subject_single = '{{{{ article.title }}}}: {subject}'\n"));
        let html: Vec<&str> = html.iter().map(|&i| FRAGMENTS[i]).collect();
        let text: Vec<&str> = text.iter().map(|&i| FRAGMENTS[i]).collect();
        let templates = Templates::from_sources(vec![
            (
                "article.html".into(),
                format!(
                    "<!DOCTYPE html><html><head><style>p {{ margin: 0 }} .vip {{ color: red }} \
                     .gold {{ font-weight: bold }} p[data-plan] {{ border: 1px solid }}</style></head>\
                     <body><h1>{{{{ article.title }}}}</h1><div>{}</div></body></html>",
                    html.join("</div>\n<div>")
                ),
            ),
            ("article.txt".into(), format!("{}\n\n{{{{ article.title }}}}\n", text.join("\n"))),
        ])
        .unwrap();
        let article = &site.articles[0];
        let draft = Draft::new(&site, Mode::PerArticle, vec![article]).unwrap();
        let mut personalizer = Personalizer::new(&site, &templates, &draft).unwrap();
        for r in generated_readers(seed, 2000) {
            let unsubscribe = unsubscribe_url(&site, &r.email, SECRET);
            let full = render(&site, &templates, &draft, &r, &unsubscribe);
            let fast = personalizer.render(&r, &unsubscribe);
            let (full, fast) = match (full, fast) {
                (Ok(full), Ok(fast)) => (full, fast),
                (Err(full), Err(fast)) => {
                    prop_assert_eq!(fast.to_string(), full.to_string());
                    continue;
                }
                (full, fast) => panic!("{r:?}: {full:?} vs {fast:?}"),
            };
            prop_assert_eq!(&fast.subject, &full.subject, "{:?}", r);
            prop_assert_eq!(&fast.text, &full.text, "{:?}", r);
            prop_assert_eq!(&fast.html, &full.html, "{:?}", r);
            if let Some(encoded) = &fast.html_encoded {
                prop_assert!(*encoded == qp::encode(&fast.html), "{:?}", r);
            }
            if let Some(encoded) = &fast.text_encoded {
                prop_assert!(*encoded == qp::encode(&fast.text), "{:?}", r);
            }
        }
    }
}

/// The [`FRAGMENTS`] that only print values, where a value can be
/// spliced.
const PRINTING: [usize; 6] = [0, 1, 2, 3, 4, 15];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Differential test of the unrendered path: templates that only
    /// print values (from the [`FRAGMENTS`] that do) are not run per
    /// reader, and every reader of a list of 2,000 still gets exactly the
    /// full render.
    #[test]
    fn print_only_templates_skip_the_render_and_give_the_full_render(
        html in proptest::collection::vec(0..PRINTING.len(), 1..7),
        text in proptest::collection::vec(0..PRINTING.len(), 1..5),
        subject in 0..FRAGMENTS.len(),
        seed in any::<u64>(),
    ) {
        let subject = FRAGMENTS[subject].replace('\'', "\\'");
        let site = sample_site_with(&format!("{EMAIL}subject_single = '{{{{ article.title }}}}: {subject}'\n"));
        let html: Vec<&str> = html.iter().map(|&i| FRAGMENTS[PRINTING[i]]).collect();
        let text: Vec<&str> = text.iter().map(|&i| FRAGMENTS[PRINTING[i]]).collect();
        let templates = Templates::from_sources(vec![
            (
                "article.html".into(),
                format!(
                    "<!DOCTYPE html><html><head><style>p {{ margin: 0 }}</style></head>\
                     <body><h1>{{{{ article.title }}}}</h1><div>{}</div>\
                     {{% include \"footer.html\" %}}</body></html>",
                    html.join("</div>\n<div>")
                ),
            ),
            ("footer.html".into(), "<p>{{ recipient.email }}: <a href=\"{{ unsubscribe_url }}\">leave</a></p>".into()),
            ("article.txt".into(), format!("{}\n\n{{{{ article.title }}}}\n", text.join("\n"))),
        ])
        .unwrap();
        let article = &site.articles[0];
        let draft = Draft::new(&site, Mode::PerArticle, vec![article]).unwrap();
        let readers = generated_readers(seed, 2000);
        let stats = assert_same(&site, &templates, &draft, &readers);
        // Some subject fragments use a filter the templates lack: then
        // every render is the same error and nothing is spliced.
        let renders = readers.iter().take(50).any(|r| {
            render(&site, &templates, &draft, r, &unsubscribe_url(&site, &r.email, SECRET)).is_ok()
        });
        // Only readers with values a parser treats specially (control
        // characters, outer whitespace) are rendered in full.
        prop_assert!(!renders || stats.unrendered > 0, "{:?}", stats);
        prop_assert_eq!(stats.unrendered, stats.spliced, "{:?}", stats);
    }
}

#[test]
fn templates_that_inspect_values_are_rendered_per_reader() {
    let site = sample_site_with(EMAIL);
    for fragment in [5, 8, 12, 19, 20, 25] {
        let templates = Templates::from_sources(vec![
            (
                "article.html".into(),
                format!("<p>{}</p>", FRAGMENTS[fragment]),
            ),
            ("article.txt".into(), "{{ article.title }}\n".into()),
        ])
        .unwrap();
        let article = &site.articles[0];
        let draft = Draft::new(&site, Mode::PerArticle, vec![article]).unwrap();
        let stats = assert_same(&site, &templates, &draft, &generated_readers(7, 300));
        assert_eq!(stats.unrendered, 0, "{}: {stats:?}", FRAGMENTS[fragment]);
        assert!(stats.spliced + stats.full > 0, "{stats:?}");
    }
}

#[test]
fn builtin_templates_are_not_run_per_reader() {
    let site = sample_site_with(EMAIL);
    let templates = Templates::builtin();
    for draft in drafts(&site) {
        let stats = assert_same(&site, &templates, &draft, &readers());
        assert_eq!(stats.unrendered, stats.spliced, "{stats:?}");
        assert!(stats.unrendered > 0, "{stats:?}");
    }
}

/// Article text that looks like a token is not taken for a hole: the
/// second stand-in render catches it and every reader is rendered.
#[test]
fn text_like_a_token_is_not_a_hole() {
    let site = sample_site_with(EMAIL);
    let templates = Templates::from_sources(vec![
        (
            "article.html".into(),
            "<p>{{ recipient.name }} pRsQ2jW {{ article.title }}</p>".into(),
        ),
        ("article.txt".into(), "{{ recipient.name }}\n".into()),
    ])
    .unwrap();
    let article = &site.articles[0];
    let draft = Draft::new(&site, Mode::PerArticle, vec![article]).unwrap();
    let stats = assert_same(&site, &templates, &draft, &generated_readers(3, 300));
    assert_eq!(stats.unrendered, 0, "{stats:?}");
}
