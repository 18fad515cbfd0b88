//! Small text helpers shared by every output: what XML 1.0 allows, and
//! single-line values that can never start a new line in a header.

/// True for characters XML 1.0's `Char` production allows.
/// (Rust strings cannot hold surrogates, so only controls and two
/// non-characters remain to exclude.)
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Removes every character XML 1.0 forbids.
pub fn xml_safe(s: &str) -> String {
    if s.chars().all(is_xml_char) {
        return s.to_owned();
    }
    s.chars().filter(|&c| is_xml_char(c)).collect()
}

/// A value meant for one line (titles, names, subjects): characters XML
/// forbids removed, and every run of line breaks, tabs and other whitespace
/// folded into one space, trimmed at both ends. Such a value cannot start a
/// new header line or break a feed.
pub fn single_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars().filter(|&c| is_xml_char(c)) {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_controls_are_removed_and_the_rest_kept() {
        assert_eq!(xml_safe("a\u{0}b\u{1F}c\td\u{FFFE}é🦀"), "abc\td\u{e9}🦀");
    }

    #[test]
    fn line_breaks_fold_into_one_space() {
        assert_eq!(
            single_line("  Hello\r\nBcc: x@example.com \t "),
            "Hello Bcc: x@example.com"
        );
        assert_eq!(single_line("\u{7}"), "");
        assert_eq!(single_line("a\u{0085}b\u{2028}c"), "a b c");
    }
}
