//! VERP bounce addresses: the envelope sender (`Return-Path`) of every
//! message is `local+TAG@domain` of `[bounces] address`, where the tag
//! names one delivery (an issue to a reader) and is HMAC-signed with
//! `PRESSROOM_SECRET` and the purpose "bounce", so a bounce that comes
//! back to it says for certain whom it is about, and nobody can make one
//! up to suppress someone else.
//!
//! The tag is lower-case base32 (RFC 4648 alphabet, no padding; some
//! MTAs lower-case local parts) of 20 bytes: the first 12 bytes of the
//! delivery's digest (SHA-256 of the issue id, a zero byte and the
//! normalized address, also the first half of the Message-ID, see
//! [`delivery_digest`]) and an 8-byte MAC over them. That is 32
//! characters whatever the issue id's length, so the local part stays
//! within 64 characters for a bounce local part of up to 31. The ledger
//! keeps the 12-byte key of every delivery in an indexed column, so a
//! tag is found with one lookup.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::address::EmailAddress;

type HmacSha256 = Hmac<Sha256>;

/// Tells bounce tags apart from any other use of the same secret.
const PURPOSE: &[u8] = b"pressroom-bounce-v1";

/// Bytes of the delivery digest a tag carries (and the ledger indexes).
pub const KEY_LEN: usize = 12;
/// Bytes of the MAC a tag carries.
const MAC_LEN: usize = 8;
/// Characters of a tag.
pub const TAG_LEN: usize = ((KEY_LEN + MAC_LEN) * 8).div_ceil(5);
/// The longest local part RFC 5321 allows.
pub const MAX_LOCAL_PART: usize = 64;

/// The digest of one delivery: SHA-256 over the issue id, a zero byte
/// and the normalized (lower-case) address, first 16 bytes. Its hex form
/// opens the delivery's Message-ID; its first [`KEY_LEN`] bytes are the
/// ledger's key for the delivery.
pub fn delivery_digest(issue_id: &str, normalized: &str) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(issue_id.as_bytes())
        .chain_update([0])
        .chain_update(normalized.as_bytes())
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The ledger key of one delivery: the first [`KEY_LEN`] bytes of its
/// [`delivery_digest`].
pub fn delivery_key(issue_id: &str, normalized: &str) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&delivery_digest(issue_id, normalized)[..KEY_LEN]);
    key
}

fn mac(key: &[u8], secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(&(PURPOSE.len() as u64).to_be_bytes());
    mac.update(PURPOSE);
    mac.update(&(key.len() as u64).to_be_bytes());
    mac.update(key);
    mac
}

/// The signed tag of the delivery of `issue_id` to `recipient`.
pub fn tag(issue_id: &str, recipient: &EmailAddress, secret: &[u8]) -> String {
    let key = delivery_key(issue_id, &recipient.normalized());
    let signature = mac(&key, secret).finalize().into_bytes();
    let mut bytes = [0u8; KEY_LEN + MAC_LEN];
    bytes[..KEY_LEN].copy_from_slice(&key);
    bytes[KEY_LEN..].copy_from_slice(&signature[..MAC_LEN]);
    base32(&bytes)
}

/// The delivery key a tag carries, when the tag is genuine (made with
/// this secret, unaltered). Case does not matter. The MAC is compared in
/// constant time.
pub fn verify_tag(tag: &str, secret: &[u8]) -> Option<[u8; KEY_LEN]> {
    if tag.len() != TAG_LEN {
        return None;
    }
    let bytes = unbase32(tag)?;
    if bytes.len() != KEY_LEN + MAC_LEN {
        return None;
    }
    let (key, signature) = bytes.split_at(KEY_LEN);
    mac(key, secret).verify_truncated_left(signature).ok()?;
    let mut out = [0u8; KEY_LEN];
    out.copy_from_slice(key);
    Some(out)
}

/// `local+TAG@domain` for the delivery of `issue_id` to `recipient`.
pub fn bounce_address(
    bounces: &EmailAddress,
    issue_id: &str,
    recipient: &EmailAddress,
    secret: &[u8],
) -> Result<EmailAddress, String> {
    let address = format!(
        "{}+{}@{}",
        bounces.local_part(),
        tag(issue_id, recipient, secret),
        bounces.domain()
    );
    EmailAddress::parse(&address).map_err(|e| e.to_string())
}

/// Why `[bounces] address` cannot carry a tag, if it cannot.
pub fn address_problem(bounces: &EmailAddress) -> Option<String> {
    let local = bounces.local_part();
    if local.contains('+') {
        return Some(format!(
            "`{bounces}` has a `+` in its local part; `+` starts the tag (bounces+TAG@…), so use an address without one"
        ));
    }
    let length = local.len() + 1 + TAG_LEN;
    if length > MAX_LOCAL_PART {
        return Some(format!(
            "`{bounces}`: the local part with its tag would be {length} characters, more than the {MAX_LOCAL_PART} mail servers accept; use a local part of at most {} characters",
            MAX_LOCAL_PART - 1 - TAG_LEN
        ));
    }
    None
}

/// The tag in `address` (`local+TAG@domain`), if it has one: the text
/// after the last `+` of the local part.
pub fn tag_of(address: &str) -> Option<&str> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _domain) = address.rsplit_once('@')?;
    let (_, tag) = local.rsplit_once('+')?;
    Some(tag)
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Lower-case base32 without padding.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The bytes of lower- or upper-case base32 without padding; None for
/// any other character or leftover bits that are not zero.
fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = match c.to_ascii_lowercase() {
            c @ b'a'..=b'z' => c - b'a',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    (buffer == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"bounce test secret";

    fn reader() -> EmailAddress {
        EmailAddress::parse("Reader@Example.com").unwrap()
    }

    #[test]
    fn base32_round_trips() {
        for n in 0..25 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = base32(&bytes);
            assert!(text.bytes().all(|c| ALPHABET.contains(&c)));
            assert_eq!(unbase32(&text).unwrap(), bytes);
            assert_eq!(unbase32(&text.to_uppercase()).unwrap(), bytes);
        }
        // RFC 4648's test vector, lower-cased and unpadded.
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        assert_eq!(unbase32("mzxw6yt1"), None);
    }

    #[test]
    fn a_tag_names_its_delivery_and_fits_any_issue_id() {
        let long_id = "x".repeat(200);
        for id in ["2026-11-29-a1b2", long_id.as_str()] {
            let tag = tag(id, &reader(), SECRET);
            assert_eq!(tag.len(), TAG_LEN);
            assert_eq!(TAG_LEN, 32);
            assert!(tag
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
            assert_eq!(
                verify_tag(&tag, SECRET),
                Some(delivery_key(id, "reader@example.com"))
            );
            // An MTA that lower- or upper-cases the local part.
            assert!(verify_tag(&tag.to_uppercase(), SECRET).is_some());
        }
        let bounces = EmailAddress::parse("bounces@dispatch.example.com").unwrap();
        let address = bounce_address(&bounces, &long_id, &reader(), SECRET).unwrap();
        assert!(address.local_part().len() <= MAX_LOCAL_PART);
        assert_eq!(
            tag_of(address.as_str()),
            Some(tag(&long_id, &reader(), SECRET).as_str())
        );
        // Case of the reader's address does not change the tag.
        let lower = EmailAddress::parse("reader@example.com").unwrap();
        assert_eq!(tag("i", &lower, SECRET), tag("i", &reader(), SECRET));
    }

    #[test]
    fn forged_or_altered_tags_are_refused() {
        let genuine = tag("2026-11-29-a1b2", &reader(), SECRET);
        assert_eq!(verify_tag(&genuine, b"another secret"), None);
        // Every single-character change.
        for i in 0..genuine.len() {
            let mut bytes = genuine.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(verify_tag(&altered, SECRET), None, "{altered}");
        }
        // Another reader's key with this reader's MAC.
        let other = tag(
            "2026-11-29-a1b2",
            &EmailAddress::parse("victim@example.com").unwrap(),
            SECRET,
        );
        let spliced = format!("{}{}", &other[..19], &genuine[19..]);
        assert_eq!(verify_tag(&spliced, SECRET), None);
        // A key computed by anyone who knows the issue id, without the MAC.
        let mut unsigned = delivery_key("2026-11-29-a1b2", "victim@example.com").to_vec();
        unsigned.extend([0u8; MAC_LEN]);
        assert_eq!(verify_tag(&base32(&unsigned), SECRET), None);
        for junk in ["", "abc", &"a".repeat(TAG_LEN - 1), &"!".repeat(TAG_LEN)] {
            assert_eq!(verify_tag(junk, SECRET), None, "{junk}");
        }
    }

    #[test]
    fn tags_are_found_in_addresses() {
        assert_eq!(tag_of("bounces+abc@example.com"), Some("abc"));
        assert_eq!(tag_of("<bounces+abc@example.com>"), Some("abc"));
        assert_eq!(tag_of("bounces@example.com"), None);
        assert_eq!(tag_of("nonsense"), None);
    }

    #[test]
    fn bounce_addresses_that_cannot_carry_a_tag_are_named() {
        let ok = EmailAddress::parse(&format!("{}@example.com", "b".repeat(31))).unwrap();
        assert_eq!(address_problem(&ok), None);
        let long = EmailAddress::parse(&format!("{}@example.com", "b".repeat(32))).unwrap();
        let problem = address_problem(&long).unwrap();
        assert!(problem.contains("at most 31 characters"), "{problem}");
        let plus = EmailAddress::parse("bounces+x@example.com").unwrap();
        assert!(address_problem(&plus).unwrap().contains("`+`"));
    }
}
