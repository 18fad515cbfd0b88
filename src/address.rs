//! Email addresses as a type: once an [`EmailAddress`] exists it is a plain
//! `local@domain` with nothing in it that could break a header (no CR/LF,
//! no spaces, no controls, no display name). Config, subscriber lists and
//! the unsubscribe flow all parse into it, so sending never re-checks.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error_kind::{ErrorKind, HasKind};

/// A valid `local@domain` address, as written (case kept). Compare with
/// [`EmailAddress::normalized`] when case should not matter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// Why a string is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not an email address: {reason}")]
pub struct AddressError {
    /// The input, with line breaks and controls made visible.
    pub value: String,
    pub reason: &'static str,
}

impl HasKind for AddressError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

/// Characters RFC 5322 allows in an unquoted local part (`atext`), besides
/// letters and digits.
const ATEXT_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";

impl EmailAddress {
    /// Accepts `local@domain` or says what is wrong with it. Quoted local
    /// parts, comments and display names are refused: a subscriber list
    /// holds bare addresses.
    pub fn parse(value: &str) -> Result<EmailAddress, AddressError> {
        let fail = |reason| AddressError {
            value: value.escape_debug().to_string(),
            reason,
        };
        if value.is_empty() {
            return Err(fail("it is empty"));
        }
        if value.chars().any(|c| c.is_control()) {
            return Err(fail("it contains a line break or control character"));
        }
        if value.chars().any(char::is_whitespace) {
            return Err(fail("it contains a space"));
        }
        if value.len() > 254 {
            return Err(fail("it is longer than 254 bytes"));
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return Err(fail("it has no `@`"));
        };
        if local.contains('@') {
            return Err(fail("it has more than one `@`"));
        }
        if local.is_empty() {
            return Err(fail("nothing before the `@`"));
        }
        if local.len() > 64 {
            return Err(fail("the part before the `@` is longer than 64 bytes"));
        }
        let local_ok = local
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || ATEXT_SPECIALS.contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return Err(fail(
                "the part before the `@` has characters an address cannot have",
            ));
        }
        if domain.is_empty() {
            return Err(fail("nothing after the `@`"));
        }
        let domain_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !domain_ok {
            return Err(fail("the domain is not a host name"));
        }
        if !domain.contains('.') && !domain.eq_ignore_ascii_case("localhost") {
            return Err(fail(
                "the domain has no `.` (a typo such as `gmail` for `gmail.com`?)",
            ));
        }
        // Messages and envelopes are built with lettre: what is accepted
        // here must be an address to lettre too, so nothing `check`
        // passes fails when the message is built.
        if value.parse::<lettre::Address>().is_err() {
            return Err(fail("the mail library cannot address a message to it"));
        }
        // Tokens, the ledger and duplicate checks use the lower-case form,
        // so it must be an address too (`İ` lower-cases to `i` and a
        // combining dot, which no address may hold).
        let lower = value.to_lowercase();
        if lower != value && EmailAddress::parse(&lower).is_err() {
            return Err(fail("its lower-case form is not an address"));
        }
        Ok(EmailAddress(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// Lower-cased form: the key for tokens, ledgers and suppression lists.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = AddressError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(address: EmailAddress) -> String {
        address.0
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted() {
        for ok in [
            "reader@example.com",
            "Mara.Lindqvist+news@dispatch.example.com",
            "o'brien@example.co.uk",
            "postmaster@localhost",
            "jürgen@bücher.de",
        ] {
            let a = EmailAddress::parse(ok).unwrap();
            assert_eq!(a.as_str(), ok);
        }
        let a = EmailAddress::parse("Reader@Example.COM").unwrap();
        assert_eq!(a.normalized(), "reader@example.com");
        assert_eq!(a.local_part(), "Reader");
        assert_eq!(a.domain(), "Example.COM");
    }

    /// Regression test for a bug the `unsubscribe_token` fuzz target
    /// found: `İ@a.com` was accepted, but its lower-case form (the one a
    /// token carries) is not an address, so its unsubscribe link never
    /// verified.
    #[test]
    fn an_address_whose_lower_case_is_not_one_is_refused() {
        let err = EmailAddress::parse("İ@a.com").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`İ@a.com` is not an email address: its lower-case form is not an address"
        );
        let a = EmailAddress::parse("ÉMILE@Bücher.DE").unwrap();
        assert_eq!(
            EmailAddress::parse(&a.normalized()).unwrap().as_str(),
            "émile@bücher.de"
        );
    }

    #[test]
    fn broken_addresses_say_why() {
        let cases = [
            ("", "it is empty"),
            ("a@example.com\r\nBcc: x@example.com", "line break"),
            ("a b@example.com", "space"),
            (" a@example.com", "space"),
            ("example.com", "no `@`"),
            ("a@b@example.com", "more than one `@`"),
            ("@example.com", "nothing before"),
            ("a@", "nothing after"),
            ("a..b@example.com", "characters"),
            (".a@example.com", "characters"),
            ("a<b>@example.com", "characters"),
            ("a@exa_mple.com", "host name"),
            ("a@-example.com", "host name"),
            ("a@example..com", "host name"),
            ("a@gmail", "no `.`"),
        ];
        for (input, reason) in cases {
            let err = EmailAddress::parse(input).unwrap_err();
            assert!(err.to_string().contains(reason), "{input:?}: {err}");
        }
        let err = EmailAddress::parse("a@x.com\nBcc: y").unwrap_err();
        assert!(err.to_string().contains("a@x.com\\nBcc: y"), "{err}");
    }

    /// Addresses near the edges of what RFC 5321/5322, IDNA and lettre
    /// allow.
    const TRICKY: &[&str] = &[
        "a@b.co",
        "jürgen@bücher.de",
        "δοκιμή@παράδειγμα.δοκιμή",
        "我買@屋企.香港",
        "a@xn--bcher-kva.de",
        "a@xn--.com",
        "a@ex.123",
        "a@1.2.3.4",
        "a@[127.0.0.1]",
        "a@ex。com",
        "a@ex.co\u{301}m",
        "a\u{301}@ex.com",
        "a\u{200b}@ex.com",
        "a@ex.com\u{feff}",
        "\"quoted\"@ex.com",
        "a(comment)@ex.com",
        "a@ex.c-",
        "a@-ex.com",
        "a@ex-.com",
        "ß@straße.de",
        "ǅ@ǅ.com",
        "a@ﬀ.de",
        "a@Ⅸ.de",
        "İ@a.com",
        "a/b=c?d^e`f{g|h}i~j@ex.com",
    ];

    /// Whether lettre accepts `value` and builds a message to it.
    fn lettre_accepts(value: &str) -> bool {
        let Ok(address) = value.parse::<lettre::Address>() else {
            return false;
        };
        let to = lettre::message::Mailbox::new(Some("Reader".into()), address);
        lettre::Message::builder()
            .from("news@example.com".parse().expect("a valid sender"))
            .to(to)
            .subject("s")
            .body("b".to_owned())
            .is_ok()
    }

    #[test]
    fn every_tricky_address_accepted_is_one_lettre_sends_to() {
        let mut accepted = 0;
        for value in TRICKY {
            if let Ok(address) = EmailAddress::parse(value) {
                accepted += 1;
                assert!(
                    lettre_accepts(value),
                    "{value:?} passes check but lettre refuses it"
                );
                assert!(
                    lettre_accepts(&address.normalized()),
                    "{value:?}: lettre refuses its lower-case form"
                );
            }
        }
        assert!(accepted >= 10, "only {accepted} tricky addresses accepted");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// Whatever EmailAddress accepts, lettre accepts and builds a
            /// message to, in the form written and in lower case.
            #[test]
            fn an_accepted_address_is_one_lettre_sends_to(
                local in "[\\p{Alphabetic}\\p{N}\\p{M}.!#$%&'*+/=?^_`{|}~\"()\\[\\]<>@, \\u{200b}-]{1,12}",
                domain in "[\\p{Alphabetic}\\p{N}\\p{M}._\\[\\]\\u{3002}-]{1,12}",
                tld in "[a-zA-Z\\p{Alphabetic}0-9-]{1,6}",
            ) {
                let value = format!("{local}@{domain}.{tld}");
                if let Ok(address) = EmailAddress::parse(&value) {
                    prop_assert!(lettre_accepts(&value), "{:?} passes but lettre refuses it", value);
                    prop_assert!(lettre_accepts(&address.normalized()));
                }
            }
        }
    }

    #[test]
    fn deserializing_parses() {
        #[derive(Deserialize)]
        struct T {
            a: EmailAddress,
        }
        let t: T = toml::from_str("a = 'news@example.com'").unwrap();
        assert_eq!(t.a.as_str(), "news@example.com");
        let err = toml::from_str::<T>("a = 'news'").err().unwrap().to_string();
        assert!(err.contains("`news` is not an email address"), "{err}");
    }
}
