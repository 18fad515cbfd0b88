//! Unsubscribe tokens: an HMAC-SHA256 signature over the list id and the
//! lower-cased address, so a link can only unsubscribe the reader it was
//! sent to. The secret comes from `PRESSROOM_SECRET`, read by the command
//! layer; these functions take it as bytes.
//!
//! A token is `base64url(address) "." base64url(mac)`, unpadded, safe in a
//! URL query without further escaping.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::Url;

use crate::address::EmailAddress;

type HmacSha256 = Hmac<Sha256>;

/// Tells tokens apart from any other use of the same secret.
const PURPOSE: &[u8] = b"pressroom-unsubscribe-v1";

fn mac(list_id: &str, address: &str, secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    for part in [PURPOSE, list_id.as_bytes(), address.as_bytes()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// The token that unsubscribes `address` from the list `list_id`.
pub fn sign(address: &EmailAddress, list_id: &str, secret: &[u8]) -> String {
    let normalized = address.normalized();
    let tag = mac(list_id, &normalized, secret).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(normalized.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The address a token was made for, or None when it is malformed, was
/// signed for another list or with another secret, or was altered.
/// The comparison is constant-time.
pub fn verify_token(token: &str, list_id: &str, secret: &[u8]) -> Option<EmailAddress> {
    let (address, tag) = token.trim().split_once('.')?;
    let address = URL_SAFE_NO_PAD.decode(address).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let address = String::from_utf8(address).ok()?;
    mac(list_id, &address, secret).verify_slice(&tag).ok()?;
    EmailAddress::parse(&address).ok()
}

/// `base` with `token=…` added to its query.
pub fn unsubscribe_url(base: &Url, address: &EmailAddress, list_id: &str, secret: &[u8]) -> Url {
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("token", &sign(address, list_id, secret));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> EmailAddress {
        EmailAddress::parse("Reader@Example.com").unwrap()
    }

    #[test]
    fn round_trip() {
        let token = sign(&reader(), "list.example.com", b"s3cret");
        let back = verify_token(&token, "list.example.com", b"s3cret").unwrap();
        assert_eq!(back.as_str(), "reader@example.com");
        assert!(token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    }

    #[test]
    fn case_does_not_change_the_token() {
        let lower = EmailAddress::parse("reader@example.com").unwrap();
        assert_eq!(sign(&reader(), "l.x", b"k"), sign(&lower, "l.x", b"k"));
    }

    #[test]
    fn tampered_token_is_rejected() {
        let token = sign(&reader(), "list.example.com", b"s3cret");
        let (_, tag) = token.split_once('.').unwrap();
        let other = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("victim@example.com"));
        assert_eq!(verify_token(&other, "list.example.com", b"s3cret"), None);

        let mut bytes = token.into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(verify_token(&flipped, "list.example.com", b"s3cret"), None);

        for junk in ["", ".", "abc", "a.b.c", "!!!.???"] {
            assert_eq!(verify_token(junk, "list.example.com", b"s3cret"), None);
        }
    }

    #[test]
    fn wrong_secret_or_list_is_rejected() {
        let token = sign(&reader(), "list.example.com", b"s3cret");
        assert_eq!(verify_token(&token, "list.example.com", b"other"), None);
        assert_eq!(verify_token(&token, "other.example.com", b"s3cret"), None);
    }

    #[test]
    fn url_keeps_its_query() {
        let base = Url::parse("https://example.com/unsubscribe?lang=en").unwrap();
        let url = unsubscribe_url(&base, &reader(), "l.x", b"k");
        assert!(
            url.as_str()
                .starts_with("https://example.com/unsubscribe?lang=en&token="),
            "{url}"
        );
    }
}
