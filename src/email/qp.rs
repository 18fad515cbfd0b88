//! Quoted-printable (RFC 2045 §6.7) for the two parts of every email,
//! written so that pieces encoded separately can be joined.
//!
//! lettre's encoder works on a whole part at a time and costs about as
//! much CPU per message as everything else in a send. Here a piece of
//! text encodes on its own, starting at column 0, and (when asked) ends
//! with a soft line break `=\r\n`, which decoders drop. So the fixed
//! parts of an issue are encoded once, and a recipient's message is
//! those bytes with only the recipient's values encoded in between; it
//! decodes to exactly the text a whole-part encoding would.
//!
//! The output is plain 7-bit ASCII in lines of at most 76 characters;
//! line breaks become CRLF; `=`, control characters, non-ASCII bytes and
//! whitespace before a line break are escaped. A `.` that would start a
//! line is escaped too (`=2E`), so the body never needs SMTP
//! dot-stuffing and cannot end the DATA early.

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The longest encoded line, without its CRLF (RFC 2045: 76), keeping one
/// column for the `=` of a soft break.
const MAX: usize = 75;

/// Bytes written as they are (anywhere but where a rule below escapes them).
#[inline]
fn plain(b: u8) -> bool {
    (33..=126).contains(&b) && b != b'='
}

/// Whether `text[i..]` starts with a line break (`\n` or `\r\n`).
#[inline]
fn break_at(text: &[u8], i: usize) -> bool {
    match text.get(i) {
        Some(b'\n') => true,
        Some(b'\r') => text.get(i + 1) == Some(&b'\n'),
        _ => false,
    }
}

/// Appends `text` encoded, starting at column 0. With `soft_end`, a
/// piece that does not end with a line break ends with a soft one, so
/// that the next piece starts at column 0 too.
pub fn encode_into(text: &str, out: &mut Vec<u8>, soft_end: bool) {
    let text = text.as_bytes();
    out.reserve(text.len() + text.len() / 32 + 8);
    let mut col = 0usize;
    let mut i = 0;
    let n = text.len();
    // Starts a new line when `len` more columns would not fit.
    let fit = |out: &mut Vec<u8>, col: &mut usize, len: usize| {
        if *col + len > MAX {
            out.extend_from_slice(b"=\r\n");
            *col = 0;
        }
    };
    let escape = |out: &mut Vec<u8>, col: &mut usize, b: u8| {
        out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        *col += 3;
    };
    while i < n {
        let b = text[i];
        if b == b'\n' {
            out.extend_from_slice(b"\r\n");
            col = 0;
            i += 1;
        } else if b == b'\r' && text.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            col = 0;
            i += 2;
        } else if plain(b) {
            // A run of plain bytes, copied a line's room at a time.
            let mut end = i + 1;
            while end < n && plain(text[end]) {
                end += 1;
            }
            while i < end {
                if col == MAX {
                    out.extend_from_slice(b"=\r\n");
                    col = 0;
                }
                if col == 0 && text[i] == b'.' {
                    escape(out, &mut col, b'.');
                    i += 1;
                    continue;
                }
                let take = (MAX - col).min(end - i);
                out.extend_from_slice(&text[i..i + take]);
                col += take;
                i += take;
            }
        } else if (b == b' ' || b == b'\t') && i + 1 < n && !break_at(text, i + 1) {
            fit(out, &mut col, 1);
            out.push(b);
            col += 1;
            i += 1;
        } else {
            fit(out, &mut col, 3);
            escape(out, &mut col, b);
            i += 1;
        }
    }
    if soft_end && col > 0 {
        out.extend_from_slice(b"=\r\n");
    }
}

/// `text` encoded as one whole part.
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(text, &mut out, false);
    out
}

/// Decodes quoted-printable (soft breaks dropped, `=XX` unescaped) — for
/// tests of the encoder and of the messages built with it.
#[cfg(test)]
pub fn decode(encoded: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        if encoded[i] == b'=' {
            if encoded[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            let (Some(h), Some(l)) = (hex(encoded[i + 1]), hex(encoded[i + 2])) else {
                panic!("bad escape at {i} in {}", String::from_utf8_lossy(encoded));
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(encoded[i]);
            i += 1;
        }
    }
    out
}

/// `text` with every lone `\n` made `\r\n`: what a decoded part holds.
#[cfg(test)]
pub fn crlf(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut prev = 0u8;
    for &b in text.as_bytes() {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rules every encoded piece keeps.
    fn check_lines(encoded: &[u8]) {
        let text = std::str::from_utf8(encoded).expect("ASCII");
        assert!(
            encoded
                .iter()
                .all(|&b| (32..=126).contains(&b) || b == b'\r' || b == b'\n' || b == b'\t'),
            "{text:?}"
        );
        for line in text.split("\r\n") {
            assert!(!line.contains(['\r', '\n']), "bare CR or LF in {text:?}");
            assert!(line.len() <= 76, "{} > 76: {line:?}", line.len());
            assert!(!line.starts_with('.'), "line starts with a dot: {line:?}");
            assert!(
                !line.ends_with([' ', '\t']),
                "trailing whitespace: {line:?}"
            );
        }
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encode("a=b\n"), b"a=3Db\r\n");
        assert_eq!(encode("end \nx\t\r\n"), b"end=20\r\nx=09\r\n");
        assert_eq!(encode(".\n..x"), b"=2E\r\n=2E.x");
        assert_eq!(encode("café"), b"caf=C3=A9");
        assert_eq!(encode("a\rb"), b"a=0Db");
        let long = "x".repeat(200);
        let encoded = encode(&long);
        check_lines(&encoded);
        assert_eq!(decode(&encoded), long.as_bytes());
        let mut piece = Vec::new();
        encode_into("ab", &mut piece, true);
        assert_eq!(piece, b"ab=\r\n");
        piece.clear();
        encode_into("ab\n", &mut piece, true);
        assert_eq!(piece, b"ab\r\n");
    }

    fn texty() -> impl Strategy<Value = String> {
        // Heavy on what the rules are about: dots, spaces, tabs, breaks,
        // `=`, non-ASCII, long runs.
        proptest::collection::vec(
            prop_oneof![
                Just(".".to_owned()),
                Just(" ".to_owned()),
                Just("\t".to_owned()),
                Just("\n".to_owned()),
                Just("\r\n".to_owned()),
                Just("\r".to_owned()),
                Just("=".to_owned()),
                Just("é".to_owned()),
                Just("💌".to_owned()),
                "[a-z<>/\"&;:]{1,90}",
                any::<char>().prop_map(String::from),
            ],
            0..60,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn decodes_to_the_text(text in texty()) {
            let encoded = encode(&text);
            check_lines(&encoded);
            prop_assert_eq!(decode(&encoded), crlf(&text));
        }

        /// Pieces encoded apart and joined decode to the joined text, as
        /// long as no CRLF is split between two pieces (the callers'
        /// pieces meet at recipient values, which hold no line breaks).
        #[test]
        fn pieces_join(pieces in proptest::collection::vec(texty(), 1..6)) {
            let pieces: Vec<String> = pieces
                .into_iter()
                .map(|p| p.trim_end_matches('\r').to_owned())
                .collect();
            let mut encoded = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                encode_into(piece, &mut encoded, i + 1 < pieces.len());
            }
            check_lines(&encoded);
            prop_assert_eq!(decode(&encoded), crlf(&pieces.concat()));
        }

        /// lettre's own encoding of the same text decodes to the same bytes.
        #[test]
        fn same_text_as_lettres_encoding(text in texty()) {
            let lettre = lettre::message::Body::new_with_encoding(
                text.clone(),
                lettre::message::header::ContentTransferEncoding::QuotedPrintable,
            )
            .map_err(|_| TestCaseError::fail("lettre refused"))?;
            prop_assert_eq!(decode(lettre.as_ref()), decode(&encode(&text)));
        }
    }
}
