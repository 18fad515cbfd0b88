//! Turning a rendered email into a MIME message (lettre): multipart/
//! alternative with the text part first, and the headers mailbox
//! providers look for on bulk mail (`List-Id`, one-click `List-Unsubscribe`
//! per RFC 8058, `Precedence`, `Auto-Submitted`). Every header value is
//! folded onto one line with [`crate::text::single_line`] before lettre
//! encodes it, so CR/LF in a title or name can never start a new header.
//! Message-ID and MIME boundary are derived from the issue and recipient,
//! so the same preview gives the same bytes.

use std::time::SystemTime;

use chrono::{DateTime, FixedOffset};
use lettre::address::Envelope;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use super::{qp, token, verp};
use super::{Recipient, RenderedEmail};
use crate::address::EmailAddress;
use crate::content::Site;
use crate::error_kind::{ErrorKind, HasKind};
use crate::text::single_line;

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("email.from is not set in config.toml; set the address emails are sent from")]
    MissingFrom,
    #[error("`{0}` cannot be used as an email address in a message header")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

impl HasKind for MessageError {
    fn kind(&self) -> ErrorKind {
        match self {
            // The sender or a recipient's address cannot go in a header.
            MessageError::MissingFrom | MessageError::Address(_) => ErrorKind::Input,
            MessageError::Build(_) => ErrorKind::Run,
        }
    }
}

macro_rules! text_header {
    ($(#[$doc:meta])* $name:ident, $header:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The value, folded onto one line.
            pub fn new(value: &str) -> Self {
                $name(single_line(value))
            }
        }

        impl Header for $name {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($header)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($name::new(s))
            }

            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), single_line(&self.0))
            }
        }
    };
}

text_header!(
    /// `List-Id` (RFC 2919).
    ListId,
    "List-Id"
);
text_header!(
    /// `List-Unsubscribe` (RFC 2369).
    ListUnsubscribe,
    "List-Unsubscribe"
);
text_header!(
    /// `List-Unsubscribe-Post` (RFC 8058).
    ListUnsubscribePost,
    "List-Unsubscribe-Post"
);
text_header!(
    /// `Precedence: bulk`.
    Precedence,
    "Precedence"
);
text_header!(
    /// `Auto-Submitted` (RFC 3834).
    AutoSubmitted,
    "Auto-Submitted"
);

/// The one-click unsubscribe link for `recipient` (what `render` should
/// be given as `unsubscribe_url`).
pub fn unsubscribe_url(site: &Site, recipient: &EmailAddress, secret: &[u8]) -> String {
    let email = &site.config.email;
    let base = email.unsubscribe_base(&site.config.site);
    token::unsubscribe_url(&base, recipient, &email.list_id(&site.config.site), secret).into()
}

/// The deterministic `Message-ID` of one issue to one recipient:
/// `<HEX.ISSUE@DOMAIN>`, HEX the [`verp::delivery_digest`] (which the
/// ledger finds the delivery by when a bounce names only its Message-ID).
pub fn message_id(site: &Site, issue_id: &str, recipient: &EmailAddress) -> String {
    let hex = hex::encode(verp::delivery_digest(issue_id, &recipient.normalized()));
    let domain = site.config.id_domain();
    let domain = if domain.is_empty() {
        "localhost".to_owned()
    } else {
        domain
    };
    format!("<{hex}.{}@{domain}>", safe_id_part(issue_id))
}

/// The envelope sender (`Return-Path`) of the delivery of `issue_id` to
/// `recipient`: `local+TAG@domain` of `[bounces] address` (see [`verp`]),
/// or None without one (the envelope sender is then `email.from`).
pub fn return_path(
    site: &Site,
    issue_id: &str,
    recipient: &EmailAddress,
    secret: &[u8],
) -> Result<Option<EmailAddress>, MessageError> {
    let Some(bounces) = &site.config.bounces.address else {
        return Ok(None);
    };
    verp::bounce_address(bounces, issue_id, recipient, secret)
        .map(Some)
        .map_err(MessageError::Address)
}

/// The full message for one recipient, dated `date`. Its
/// List-Unsubscribe link is the one `email` was rendered with, its
/// envelope sender `email.return_path` (else `email.from`).
pub fn build_message(
    site: &Site,
    email: &RenderedEmail,
    recipient: &Recipient,
    date: DateTime<FixedOffset>,
) -> Result<Message, MessageError> {
    let html = match &email.html_encoded {
        Some(encoded) => encoded.clone(),
        None => qp::encode(&email.html),
    };
    let text = match &email.text_encoded {
        Some(encoded) => encoded.clone(),
        None => qp::encode(&email.text),
    };
    build(site, email, html, text, recipient, date)
}

/// [`build_message`] for an email that is not needed afterwards (a send):
/// the parts the [`super::Personalizer`] encoded go into the message
/// without a copy.
pub fn into_message(
    site: &Site,
    mut email: RenderedEmail,
    recipient: &Recipient,
    date: DateTime<FixedOffset>,
) -> Result<Message, MessageError> {
    let html = email
        .html_encoded
        .take()
        .unwrap_or_else(|| qp::encode(&email.html));
    let text = email
        .text_encoded
        .take()
        .unwrap_or_else(|| qp::encode(&email.text));
    build(site, &email, html, text, recipient, date)
}

/// The message, with both parts already quoted-printable encoded.
fn build(
    site: &Site,
    email: &RenderedEmail,
    html: Vec<u8>,
    text: Vec<u8>,
    recipient: &Recipient,
    date: DateTime<FixedOffset>,
) -> Result<Message, MessageError> {
    let config = &site.config.email;
    let site_config = &site.config.site;
    let from_address = config.from.as_ref().ok_or(MessageError::MissingFrom)?;
    let from = Mailbox::new(
        Some(config.from_name(site_config)).filter(|n| !n.is_empty()),
        lettre_address(from_address)?,
    );
    let to = Mailbox::new(
        recipient
            .name
            .as_deref()
            .map(single_line)
            .filter(|n| !n.is_empty()),
        lettre_address(&recipient.email)?,
    );
    // The VERP address when bounces come back to pressroom; else what
    // lettre would derive from the From and To headers (no Sender, Cc or
    // Bcc here), given rather than parsed back out of them.
    let envelope_from = match &email.return_path {
        Some(address) => lettre_address(address)?,
        None => from.email.clone(),
    };
    let envelope = Envelope::new(Some(envelope_from), vec![to.email.clone()])?;
    let list_id = config.list_id(site_config);
    let one_click = &email.unsubscribe_url;
    let mut unsubscribe = Vec::new();
    if let Some(mailto) = &config.unsubscribe_mailto {
        unsubscribe.push(format!(
            "<mailto:{}?subject=unsubscribe>",
            mailto_escape(mailto.as_str())
        ));
    }
    unsubscribe.push(format!("<{one_click}>"));

    let id = message_id(site, &email.issue_id, &recipient.email);
    let boundary = {
        let digest = Sha256::digest(id.as_bytes());
        let hex = hex::encode(&digest[..12]);
        format!("=_pressroom_{hex}")
    };

    let mut builder = Message::builder()
        .envelope(envelope)
        .from(from)
        .to(to)
        .subject(single_line(&email.subject))
        .date(SystemTime::from(date))
        .message_id(Some(id))
        .header(ListId::new(&list_phrase(&site_config.title, &list_id)))
        .header(ListUnsubscribe::new(&unsubscribe.join(", ")))
        .header(ListUnsubscribePost::new("List-Unsubscribe=One-Click"))
        .header(Precedence::new("bulk"))
        .header(AutoSubmitted::new("auto-generated"));
    if let Some(reply_to) = &config.reply_to {
        builder = builder.reply_to(Mailbox::new(None, lettre_address(reply_to)?));
    }
    // Both parts quoted-printable with our encoder (see `qp`), encoded
    // whole or spliced from pieces by the Personalizer.
    let part = |content_type: ContentType, encoded: Vec<u8>| {
        SinglePart::builder()
            .header(content_type)
            .header(ContentTransferEncoding::QuotedPrintable)
            .body(Body::dangerous_pre_encoded(
                encoded,
                ContentTransferEncoding::QuotedPrintable,
            ))
    };
    let body = MultiPart::alternative()
        .boundary(boundary)
        .singlepart(part(ContentType::TEXT_PLAIN, text))
        .singlepart(part(ContentType::TEXT_HTML, html));
    Ok(builder.multipart(body)?)
}

fn lettre_address(address: &EmailAddress) -> Result<Address, MessageError> {
    address
        .as_str()
        .parse::<Address>()
        .map_err(|_| MessageError::Address(address.to_string()))
}

/// `"Site Title" <list.id>`: the title as a quoted string when it is ASCII,
/// else as words lettre encodes (RFC 2047), specials removed.
fn list_phrase(title: &str, list_id: &str) -> String {
    let title = single_line(title);
    let phrase = if title.is_ascii() {
        let escaped = title.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        title
            .chars()
            .filter(|c| !"()<>[]:;@\\,.\"".contains(*c))
            .collect::<String>()
    };
    if phrase.trim_matches('"').trim().is_empty() {
        format!("<{list_id}>")
    } else {
        format!("{phrase} <{list_id}>")
    }
}

/// What a `mailto:` address keeps as it is: unreserved characters, `@`
/// and `+`.
const MAILTO_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@')
    .remove(b'+');

/// An address inside a `mailto:` URI: everything but unreserved
/// characters, `@` and `+` percent-encoded.
fn mailto_escape(address: &str) -> String {
    utf8_percent_encode(address, MAILTO_KEEPS).to_string()
}

/// Issue ids are ours (`YYYY-MM-DD-hex`), but keep the Message-ID valid
/// whatever they hold.
fn safe_id_part(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::tests::{now, render_one, sample_site_with};
    use crate::email::{sample_recipient, Recipient};

    mod encoders {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Message-ids and List-Unsubscribe headers must not change:
            /// the crates' encoders give the bytes the hand-written ones
            /// gave.
            #[test]
            fn hex_and_mailto_are_encoded_as_before(
                bytes in proptest::collection::vec(any::<u8>(), 0..40),
                address in "(\\PC|[\u{0}-\u{1f} %&?=#+@])*",
            ) {
                let before: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                prop_assert_eq!(hex::encode(&bytes), before);
                let mut before = String::new();
                for byte in address.bytes() {
                    if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@' | b'+') {
                        before.push(byte as char);
                    } else {
                        before.push_str(&format!("%{byte:02X}"));
                    }
                }
                prop_assert_eq!(mailto_escape(&address), before);
            }
        }
    }

    const EMAIL: &str = "[email]\nfrom = 'news@dispatch.example.com'\nfrom_name = 'The Dispatch'\nreply_to = 'mara@dispatch.example.com'\nunsubscribe_mailto = 'leave+list@dispatch.example.com'\npostal_address = '1 Quay St, Bristol'\n";

    fn formatted(message: &Message) -> String {
        String::from_utf8(message.formatted()).unwrap()
    }

    /// The header block, unfolded.
    fn headers(raw: &str) -> Vec<String> {
        let head = raw.split("\r\n\r\n").next().unwrap();
        let mut out: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.push_str(line);
                }
            } else {
                out.push(line.to_owned());
            }
        }
        out
    }

    #[test]
    fn headers_of_a_newsletter() {
        let site = sample_site_with(EMAIL);
        let email = render_one(&site);
        let recipient = sample_recipient();
        let date = DateTime::parse_from_rfc3339("2025-03-09T09:30:00+01:00").unwrap();
        let message = build_message(&site, &email, &recipient, date).unwrap();
        let raw = formatted(&message);
        let headers = headers(&raw);
        let find = |name: &str| {
            headers
                .iter()
                .find(|h| h.starts_with(&format!("{name}: ")))
                .cloned()
                .unwrap_or_else(|| panic!("no {name} in {raw}"))
        };
        assert_eq!(
            find("From"),
            "From: \"The Dispatch\" <news@dispatch.example.com>"
        );
        assert_eq!(find("Reply-To"), "Reply-To: mara@dispatch.example.com");
        assert_eq!(find("To"), "To: \"Sample Reader\" <reader@example.com>");
        assert_eq!(find("Date"), "Date: Sun, 09 Mar 2025 08:30:00 +0000");
        assert_eq!(
            find("List-Id"),
            "List-Id: \"The Pressroom Dispatch\" <dispatch.example.com>"
        );
        let unsubscribe = find("List-Unsubscribe");
        assert!(
            unsubscribe.starts_with("List-Unsubscribe: <mailto:leave+list@dispatch.example.com?subject=unsubscribe>, <https://dispatch.example.com/unsubscribe?token="),
            "{unsubscribe}"
        );
        let token = unsubscribe
            .split("token=")
            .nth(1)
            .unwrap()
            .trim_end_matches('>');
        assert_eq!(
            // render_one renders with the secret `test secret`.
            token::verify_token(token, "dispatch.example.com", b"test secret").unwrap(),
            recipient.email
        );
        assert_eq!(
            find("List-Unsubscribe-Post"),
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
        );
        assert_eq!(find("Precedence"), "Precedence: bulk");
        assert_eq!(find("Auto-Submitted"), "Auto-Submitted: auto-generated");
        let id = find("Message-ID");
        assert!(id.ends_with("@dispatch.example.com>"), "{id}");
        assert!(find("Content-Type").contains("multipart/alternative"));
        let text_at = raw.find("Content-Type: text/plain").unwrap();
        let html_at = raw.find("Content-Type: text/html").unwrap();
        assert!(text_at < html_at, "text part first");

        // Deterministic: same inputs, same bytes.
        let again = build_message(&site, &email, &recipient, date).unwrap();
        assert_eq!(formatted(&again), raw);
        // Another recipient, another Message-ID.
        let other = Recipient {
            email: EmailAddress::parse("other@example.com").unwrap(),
            name: None,
            fields: Default::default(),
        };
        let other = formatted(&build_message(&site, &email, &other, date).unwrap());
        assert!(!other.contains(&id), "{other}");
        assert!(other.contains("\r\nTo: other@example.com\r\n"), "{other}");
    }

    #[test]
    fn no_header_injection_through_subject_or_names() {
        let site = sample_site_with(
            &format!("{EMAIL}from_name = \"Evil\\r\\nBcc: y@example.com\"\n")
                .replace("from_name = 'The Dispatch'\n", ""),
        );
        let mut email = render_one(&site);
        email.subject = "Hi\r\nBcc: x@example.com".into();
        let recipient = Recipient {
            email: EmailAddress::parse("reader@example.com").unwrap(),
            name: Some("Reader\nCc: z@example.com".into()),
            fields: Default::default(),
        };
        let message = build_message(&site, &email, &recipient, now()).unwrap();
        let raw = formatted(&message);
        for header in headers(&raw) {
            let lower = header.to_ascii_lowercase();
            assert!(!lower.starts_with("bcc:"), "{header}\n{raw}");
            assert!(!lower.starts_with("cc:"), "{header}\n{raw}");
        }
        assert!(raw.contains("Subject: Hi Bcc: x@example.com\r\n"), "{raw}");
        assert_eq!(message.envelope().to().len(), 1);
        // The envelope is given, not derived: it must be what lettre
        // derives from the headers.
        let derived = Envelope::try_from(message.headers()).unwrap();
        assert_eq!(&derived, message.envelope());
    }

    #[test]
    fn missing_from_is_an_error() {
        let site = sample_site_with("");
        let email = render_one(&site);
        let err = build_message(&site, &email, &sample_recipient(), now()).unwrap_err();
        assert!(matches!(err, MessageError::MissingFrom), "{err}");
    }

    #[test]
    fn list_phrase_and_mailto() {
        assert_eq!(list_phrase("A \"B\"", "l.x"), "\"A \\\"B\\\"\" <l.x>");
        assert_eq!(list_phrase("Café: news", "l.x"), "Café news <l.x>");
        assert_eq!(list_phrase("", "l.x"), "<l.x>");
        assert_eq!(mailto_escape("a&b?c@x.org"), "a%26b%3Fc@x.org");
    }
}
