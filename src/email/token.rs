//! Signed tokens: an HMAC-SHA256 signature over a purpose string, the list
//! id and the lower-cased address, so a link can only act for the reader it
//! was sent to, and only in the way it was made for (an unsubscribe token
//! cannot confirm a signup, nor the reverse). The secret comes from
//! `PRESSROOM_SECRET`, read by the command layer; these functions take it
//! as bytes. Every comparison is constant-time.
//!
//! An unsubscribe token is `base64url(address) "." base64url(mac)`; a
//! confirmation token also carries the Unix time it was made, which the
//! MAC covers, so it expires: `base64url(address) "." seconds "."
//! base64url(mac)`. Both are unpadded and safe in a URL query without
//! further escaping.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::Url;

use crate::address::EmailAddress;

type HmacSha256 = Hmac<Sha256>;

/// Tells unsubscribe tokens apart from any other use of the same secret.
const PURPOSE: &[u8] = b"pressroom-unsubscribe-v1";
/// Tells signup confirmation tokens apart.
const CONFIRM_PURPOSE: &[u8] = b"pressroom-confirm-v1";

fn mac(list_id: &str, address: &str, secret: &[u8]) -> HmacSha256 {
    mac_of(&[PURPOSE, list_id.as_bytes(), address.as_bytes()], secret)
}

/// The MAC over `parts`, each prefixed with its length so no two lists of
/// parts give the same input.
fn mac_of(parts: &[&[u8]], secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

fn confirm_mac(list_id: &str, address: &str, issued_at: i64, secret: &[u8]) -> HmacSha256 {
    let issued = issued_at.to_string();
    mac_of(
        &[
            CONFIRM_PURPOSE,
            list_id.as_bytes(),
            address.as_bytes(),
            issued.as_bytes(),
        ],
        secret,
    )
}

/// The token of a signup confirmation link for `address`, made at
/// `issued_at` (Unix seconds).
pub fn sign_confirm(
    address: &EmailAddress,
    list_id: &str,
    issued_at: i64,
    secret: &[u8],
) -> String {
    let normalized = address.normalized();
    let tag = confirm_mac(list_id, &normalized, issued_at, secret)
        .finalize()
        .into_bytes();
    format!(
        "{}.{issued_at}.{}",
        URL_SAFE_NO_PAD.encode(normalized.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Why a confirmation token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmTokenError {
    /// Malformed, altered, made for another purpose, list or secret.
    Invalid,
    /// Genuine, but older than the time a link stays valid.
    Expired,
}

/// The address a confirmation token was made for and when, if it is
/// genuine and at most `max_age_seconds` old at `now` (Unix seconds). A
/// token from the future (beyond a minute of clock skew) is invalid.
pub fn verify_confirm(
    token: &str,
    list_id: &str,
    secret: &[u8],
    now: i64,
    max_age_seconds: i64,
) -> Result<(EmailAddress, i64), ConfirmTokenError> {
    let invalid = ConfirmTokenError::Invalid;
    let mut parts = token.trim().split('.');
    let (Some(address), Some(issued), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid);
    };
    if issued.is_empty() || !issued.bytes().all(|b| b.is_ascii_digit()) || issued.len() > 12 {
        return Err(invalid);
    }
    let issued_at: i64 = issued.parse().map_err(|_| invalid)?;
    let address = URL_SAFE_NO_PAD.decode(address).map_err(|_| invalid)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid)?;
    let address = String::from_utf8(address).map_err(|_| invalid)?;
    confirm_mac(list_id, &address, issued_at, secret)
        .verify_slice(&tag)
        .map_err(|_| invalid)?;
    let address = EmailAddress::parse(&address).map_err(|_| invalid)?;
    if issued_at > now + 60 {
        return Err(invalid);
    }
    if now - issued_at > max_age_seconds {
        return Err(ConfirmTokenError::Expired);
    }
    Ok((address, issued_at))
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
    fn confirm_tokens_expire_and_never_pass_for_unsubscribe_tokens() {
        let secret = b"s3cret";
        let token = sign_confirm(&reader(), "l.x", 1_000, secret);
        assert_eq!(
            verify_confirm(&token, "l.x", secret, 1_000 + 3600, 7200)
                .map(|(a, t)| (a.normalized(), t)),
            Ok(("reader@example.com".to_owned(), 1_000))
        );
        assert_eq!(
            verify_confirm(&token, "l.x", secret, 1_000 + 7201, 7200),
            Err(ConfirmTokenError::Expired)
        );
        // Moving the time forward breaks the MAC.
        let moved = token.replace(".1000.", ".9000.");
        assert_eq!(
            verify_confirm(&moved, "l.x", secret, 9_000, 7200),
            Err(ConfirmTokenError::Invalid)
        );
        assert_eq!(
            verify_confirm(&token, "other", secret, 1_000, 7200),
            Err(ConfirmTokenError::Invalid)
        );
        assert_eq!(
            verify_confirm(&token, "l.x", b"other", 1_000, 7200),
            Err(ConfirmTokenError::Invalid)
        );
        // Cross-purpose: neither kind of token passes for the other, even
        // reshaped to the other's form.
        let unsubscribe = sign(&reader(), "l.x", secret);
        assert_eq!(verify_token(&token, "l.x", secret), None);
        assert_eq!(
            verify_confirm(&unsubscribe, "l.x", secret, 1_000, 7200),
            Err(ConfirmTokenError::Invalid)
        );
        let (address, tag) = unsubscribe.split_once('.').unwrap();
        let reshaped = format!("{address}.1000.{tag}");
        assert_eq!(
            verify_confirm(&reshaped, "l.x", secret, 1_000, 7200),
            Err(ConfirmTokenError::Invalid)
        );
        let (address, rest) = token.split_once('.').unwrap();
        let (_, tag) = rest.split_once('.').unwrap();
        assert_eq!(
            verify_token(&format!("{address}.{tag}"), "l.x", secret),
            None
        );
        for junk in [
            "",
            "..",
            "a.1.b",
            "a.-1.b",
            "a.1.b.c",
            "a.99999999999999999.b",
        ] {
            assert_eq!(
                verify_confirm(junk, "l.x", secret, 1_000, 7200),
                Err(ConfirmTokenError::Invalid)
            );
        }
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
