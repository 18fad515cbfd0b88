//! Arbitrary bytes as an article file: parsing never panics, and an
//! article that parses holds what the rest of pressroom relies on.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pressroom::content::{parse_article, Slug};
use pressroom::text::{is_xml_char, single_line};

fn is_single_line(s: &str) -> bool {
    !s.is_empty() && single_line(s) == s
}

fuzz_target!(|data: &[u8]| {
    let config = pressroom_fuzz::config();
    let Ok(article) = parse_article(config, "content/fuzz.md", Path::new("fuzz.md"), data) else {
        return;
    };
    assert!(is_single_line(&article.title), "title {:?}", article.title);
    assert!(is_single_line(&article.author), "author {:?}", article.author);
    for value in [&article.subtitle, &article.description, &article.hero_image]
        .into_iter()
        .flatten()
    {
        assert!(is_single_line(value), "one-line field {value:?}");
    }
    assert!(
        Slug::parse(article.slug.as_str()).is_ok(),
        "slug {:?}",
        article.slug
    );
    assert!(!article.id.is_empty(), "empty id");
    assert!(
        !article.id.contains(char::is_whitespace),
        "id {:?}",
        article.id
    );
    for tag in &article.tags {
        assert!(is_single_line(tag), "tag {tag:?}");
    }
    for (_, slug) in article.tag_slugs() {
        assert!(Slug::parse(slug.as_str()).is_ok(), "tag slug {slug:?}");
    }
    let body = article.markdown().expect("a parsed article holds its body");
    assert!(body.chars().all(is_xml_char), "body keeps a char XML forbids");
    if let Some(cta) = &article.cta {
        assert!(cta.chars().all(is_xml_char), "cta {cta:?}");
    }
    assert!(article.url.as_str().starts_with(config.site.base_url.as_str()));
});
