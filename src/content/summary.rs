//! The summary of an article whose front matter has none (no
//! `description`, no `subtitle`): its first paragraph as plain text,
//! shortened at a word boundary. Emails use it as the preheader and
//! feeds as the RSS `description`, Atom `summary` and JSON `summary`.

/// Longest generated summary, in characters.
pub const SUMMARY_CHARS: usize = 300;

/// The first paragraph of a Markdown body as plain text, shortened at a
/// word boundary.
pub fn first_paragraph(markdown: &str) -> String {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut text = String::new();
    let mut inside = false;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Paragraph) => inside = true,
            Event::End(TagEnd::Paragraph) if inside && !text.trim().is_empty() => break,
            Event::End(TagEnd::Paragraph) => inside = false,
            Event::Text(t) | Event::Code(t) if inside => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if inside => text.push(' '),
            _ => {}
        }
    }
    let text = crate::text::single_line(&text);
    if text.chars().count() <= SUMMARY_CHARS {
        return text;
    }
    let cut: String = text.chars().take(SUMMARY_CHARS).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!(
        "{}…",
        cut.trim_end_matches(|c: char| c.is_ascii_punctuation())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_paragraph_is_plain_and_short() {
        assert_eq!(
            first_paragraph("# Heading\n\nSome *emphasis* and `code`\nhere.\n\nSecond."),
            "Some emphasis and code here."
        );
        let long = "word ".repeat(100);
        let summary = first_paragraph(&long);
        assert!(summary.ends_with("word…"), "{summary}");
        assert!(summary.chars().count() <= SUMMARY_CHARS + 1);
    }
}
