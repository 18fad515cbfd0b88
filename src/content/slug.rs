//! URL slugs: safe as one path segment, so an article or tag can never
//! write outside the output folder.

use std::fmt;

/// A non-empty path segment of ASCII letters, digits, `-`, `_` and inner
/// dots. Constructing one is the only way to get one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    /// Accepts a slug the writer typed, or says what is wrong with it.
    pub fn parse(value: &str) -> Result<Slug, String> {
        let ok = !value.is_empty()
            && value.len() <= 200
            && !value.starts_with('.')
            && !value.ends_with('.')
            && !value.contains("..")
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Slug(value.to_owned()))
        } else {
            Err(format!(
                "`{value}` is not a valid slug: use letters, digits, `-` and `_` (one path segment)"
            ))
        }
    }

    /// Derives a slug from free text (a title or a tag): transliterated to
    /// ASCII, lower case, words joined by `-`. None when nothing is left.
    pub fn from_text(text: &str) -> Option<Slug> {
        let s = slug::slugify(text);
        let s: String = s.chars().take(80).collect();
        let s = s.trim_end_matches('-').to_owned();
        (!s.is_empty()).then_some(Slug(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_lowercase_ascii_words() {
        assert_eq!(
            Slug::from_text("Rust at the Edge: What We Learned")
                .unwrap()
                .as_str(),
            "rust-at-the-edge-what-we-learned"
        );
        assert_eq!(
            Slug::from_text("Crème brûlée & Ünïcode").unwrap().as_str(),
            "creme-brulee-unicode"
        );
        assert_eq!(Slug::from_text("🦀").unwrap().as_str(), "crab");
        assert_eq!(Slug::from_text("!?…"), None);
    }

    #[test]
    fn slugs_that_leave_the_folder_are_refused() {
        for bad in [
            "../../etc",
            "a/b",
            "/etc/passwd",
            "..",
            ".hidden",
            "",
            "a b",
            "a\\b",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            Slug::parse("v1.2-notes_x").unwrap().as_str(),
            "v1.2-notes_x"
        );
    }
}
