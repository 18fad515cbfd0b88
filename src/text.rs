//! Small text helpers shared by every output: what XML 1.0 allows, and
//! single-line values that can never start a new line in a header.

/// True for characters XML 1.0's `Char` production allows.
/// (Rust strings cannot hold surrogates, so only controls and two
/// non-characters remain to exclude.)
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// True when [`single_line`] would return `s` unchanged, judged by its
/// bytes: no ASCII control, no lead byte of a character that XML forbids
/// or Rust calls whitespace or control outside ASCII (0xC2: U+0080–U+00BF,
/// 0xE1: U+1680, 0xE2/0xE3: U+2000–U+3000, 0xEF: U+FFFE and U+FFFF), and
/// spaces only single and inside. Most titles and names pass.
fn is_single_line(s: &str) -> bool {
    let bytes = s.as_bytes();
    let odd = |b: u8| b < 0x20 || matches!(b, 0x7F | 0xC2 | 0xE1 | 0xE2 | 0xE3 | 0xEF);
    !bytes.iter().any(|&b| odd(b)) && !s.starts_with(' ') && !s.ends_with(' ') && !s.contains("  ")
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
    if is_single_line(s) {
        return s.to_owned();
    }
    fold_single_line(s)
}

/// [`single_line`] of an owned string: the string itself when there is
/// nothing to fold (no copy).
pub fn into_single_line(s: String) -> String {
    if is_single_line(&s) {
        s
    } else {
        fold_single_line(&s)
    }
}

/// [`single_line`] a character at a time.
fn fold_single_line(s: &str) -> String {
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

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

            /// The byte check that skips the fold never skips a change.
            #[test]
            fn the_shortcut_changes_nothing_the_fold_would(s in "([ a-zé🦀.]|\\PC|\\s|[\u{0}-\u{1f}\u{7f}-\u{a0}\u{1680}\u{2000}-\u{3000}\u{fffe}\u{ffff}])*") {
                prop_assert_eq!(single_line(&s), fold_single_line(&s));
                prop_assert_eq!(into_single_line(s.clone()), fold_single_line(&s));
                if is_single_line(&s) {
                    prop_assert_eq!(fold_single_line(&s), s);
                }
            }
        }
    }
}
