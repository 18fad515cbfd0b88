//! Unsubscribe tokens: an arbitrary string never makes `verify_token`
//! panic; a token signed for a valid address verifies to that address
//! (lower-cased), and only for the same list and secret; changing any one
//! character of it makes it fail.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pressroom::address::EmailAddress;
use pressroom::email::token::{sign, verify_token};

/// Characters for the local part (with a few non-ASCII letters an
/// address may hold) and for domain labels.
const LOCAL: &[&str] = &[
    "a", "b", "z", "A", "Z", "0", "9", ".", "+", "-", "_", "'", "!", "é", "É", "ß", "Ω", "İ", "K",
];
const DOMAIN: &[&str] = &["a", "b", "x", "Q", "0", "-", ".", "é", "Ö"];
/// What a changed character becomes: the token alphabet and a few others.
const REPLACEMENTS: &str = "ABCZabcz0189-_.=+/ %\u{e9}";

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    raw_token: &'a str,
    list_id: &'a str,
    secret: &'a [u8],
    local: Vec<u8>,
    domain: Vec<u8>,
    other_list: &'a str,
    replacement: u8,
}

fn pick(alphabet: &[&str], indices: &[u8]) -> String {
    indices
        .iter()
        .map(|&i| alphabet[usize::from(i) % alphabet.len()])
        .collect()
}

fuzz_target!(|input: Input| {
    // Whatever comes in a URL: no panic, and a valid address if anything.
    let _ = verify_token(input.raw_token, input.list_id, input.secret);

    let text = format!(
        "{}@{}.com",
        pick(LOCAL, &input.local),
        pick(DOMAIN, &input.domain)
    );
    let Ok(address) = EmailAddress::parse(&text) else {
        return;
    };
    let token = sign(&address, input.list_id, input.secret);
    let back = verify_token(&token, input.list_id, input.secret);
    assert_eq!(
        back.as_ref().map(EmailAddress::as_str),
        Some(address.normalized().as_str()),
        "{address} signed as {token} did not verify"
    );
    if input.other_list != input.list_id {
        assert!(verify_token(&token, input.other_list, input.secret).is_none());
    }
    let replacements: Vec<char> = REPLACEMENTS.chars().collect();
    let with = replacements[usize::from(input.replacement) % replacements.len()];
    let chars: Vec<char> = token.chars().collect();
    for i in 0..chars.len() {
        if chars[i] == with {
            continue;
        }
        let mut changed = chars.clone();
        changed[i] = with;
        let changed: String = changed.into_iter().collect();
        assert!(
            verify_token(&changed, input.list_id, input.secret).is_none(),
            "{changed} (position {i} of {token} changed) still verifies"
        );
    }
});
