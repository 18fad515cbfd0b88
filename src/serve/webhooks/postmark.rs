//! Postmark's bounce and spam-complaint webhooks as [`Report`]s, and the
//! HTTP basic auth that guards them. Pure: bytes in, values out.

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ses::{one_line, Event};
use crate::bounce::{Report, Verdict};

/// What Postmark's bounce `Type` means for a reader, after Postmark's
/// bounce type table (developer docs, "Bounce types").
pub fn verdict(kind: &str) -> Verdict {
    match kind {
        // The address does not exist, is not valid, or Postmark was told
        // never to mail it again.
        "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated" => Verdict::Hard,
        // Failed this time (delayed, mailbox full, DNS, spam filter or ISP
        // block): counted toward `bounces.soft_limit`.
        "Transient" | "SoftBounce" | "DnsError" | "SpamNotification" | "Blocked" => Verdict::Soft,
        // The reader marked the message as spam, or replied asking to be
        // removed: suppressed at once.
        "SpamComplaint" | "Unsubscribe" => Verdict::Complaint,
        // Out of office, "I have a new address", challenge-response filters.
        "AutoResponder" | "AddressChange" | "ChallengeVerification" => Verdict::AutoReply,
        // Nothing the reader did: a subscribe request, an open-relay test, a
        // virus warning, an unclassified reply, or a fault on the sending
        // side (DMARC policy, template, API, inbound errors).
        _ => Verdict::NotAReport,
    }
}

/// Reads a webhook body: a `Bounce` or `SpamComplaint` record becomes a
/// report; other records (deliveries, opens, clicks, subscription
/// changes) are ignored.
pub fn read(body: &[u8]) -> Result<Event, String> {
    let record: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let text = |key: &str| {
        let s = record.get(key)?.as_str()?.trim();
        (!s.is_empty()).then(|| s.to_owned())
    };
    let kind = text("RecordType").ok_or("no RecordType")?;
    let verdict = match kind.as_str() {
        "Bounce" => verdict(&text("Type").ok_or("a Bounce without a Type")?),
        "SpamComplaint" => Verdict::Complaint,
        other => return Ok(Event::Ignored(format!("a Postmark {other} record"))),
    };
    let email = text("Email").ok_or("no Email")?;
    let id = match record.get("ID") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => return Err("no ID".into()),
    };
    let diagnostic = text("Details")
        .and_then(|d| one_line(&d))
        .or_else(|| text("Description").and_then(|d| one_line(&d)));
    Ok(Event::Reports(vec![Report {
        verdict,
        id: Some(format!("postmark/{id}")),
        delivered_to: Vec::new(),
        recipient: Some(email),
        status: diagnostic.as_deref().and_then(status_code),
        diagnostic,
        original_message_id: text("MessageID")
            .map(|m| m.trim_start_matches('<').trim_end_matches('>').to_owned()),
        legacy: false,
    }]))
}

/// The first enhanced status code (RFC 3463, `5.1.1`) in a diagnostic.
fn status_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// Whether an `Authorization` header carries these basic-auth
/// credentials. Both halves are compared in constant time, as SHA-256
/// digests so that their lengths do not show either.
pub fn authorized(header: Option<&str>, username: &str, password: &str) -> bool {
    let Some(encoded) = header.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
    }) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
    let same = |a: &[u8], b: &[u8]| Sha256::digest(a).ct_eq(&Sha256::digest(b));
    bool::from(same(user, username.as_bytes()) & same(pass, password.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/webhooks/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn documented_bounce_webhook() {
        assert_eq!(
            read(&fixture("postmark-bounce.json")),
            Ok(Event::Reports(vec![Report {
                verdict: Verdict::Hard,
                id: Some("postmark/4323372036854775807".into()),
                delivered_to: vec![],
                recipient: Some("john@example.com".into()),
                status: None,
                diagnostic: Some("Test bounce details".into()),
                original_message_id: Some("883953f4-6105-42a2-a16a-77a8eac79483".into()),
                legacy: false,
            }]))
        );
    }

    #[test]
    fn documented_spam_complaint_webhook() {
        let Ok(Event::Reports(reports)) = read(&fixture("postmark-spam-complaint.json")) else {
            panic!()
        };
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].verdict, Verdict::Complaint);
        assert_eq!(reports[0].id.as_deref(), Some("postmark/42"));
        assert_eq!(reports[0].recipient.as_deref(), Some("john@example.com"));
    }

    #[test]
    fn bounce_types_follow_postmarks_table() {
        let table = [
            ("HardBounce", Verdict::Hard),
            ("Transient", Verdict::Soft),
            ("Unsubscribe", Verdict::Complaint),
            ("Subscribe", Verdict::NotAReport),
            ("AutoResponder", Verdict::AutoReply),
            ("AddressChange", Verdict::AutoReply),
            ("DnsError", Verdict::Soft),
            ("SpamNotification", Verdict::Soft),
            ("OpenRelayTest", Verdict::NotAReport),
            ("Unknown", Verdict::NotAReport),
            ("SoftBounce", Verdict::Soft),
            ("VirusNotification", Verdict::NotAReport),
            ("ChallengeVerification", Verdict::AutoReply),
            ("BadEmailAddress", Verdict::Hard),
            ("SpamComplaint", Verdict::Complaint),
            ("ManuallyDeactivated", Verdict::Hard),
            ("Unconfirmed", Verdict::NotAReport),
            ("Blocked", Verdict::Soft),
            ("SMTPApiError", Verdict::NotAReport),
            ("InboundError", Verdict::NotAReport),
            ("DMARCPolicy", Verdict::NotAReport),
            ("TemplateRenderingFailed", Verdict::NotAReport),
            ("SomethingNew", Verdict::NotAReport),
        ];
        let body = String::from_utf8(fixture("postmark-bounce.json")).unwrap();
        for (kind, want) in table {
            assert_eq!(verdict(kind), want, "{kind}");
            let changed = body.replace("\"HardBounce\"", &format!("\"{kind}\""));
            let Ok(Event::Reports(reports)) = read(changed.as_bytes()) else {
                panic!("{kind}")
            };
            assert_eq!(reports[0].verdict, want, "{kind} through the webhook");
        }
    }

    #[test]
    fn the_status_code_comes_from_the_details() {
        let body = String::from_utf8(fixture("postmark-bounce.json"))
            .unwrap()
            .replace(
                "Test bounce details",
                "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            );
        let Ok(Event::Reports(reports)) = read(body.as_bytes()) else {
            panic!()
        };
        assert_eq!(reports[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(
            status_code("version 1.2.3.4 then 4.2.2"),
            Some("4.2.2".into())
        );
        assert_eq!(status_code("550 mailbox unavailable"), None);
    }

    #[test]
    fn other_records_are_ignored_and_garbage_is_an_error() {
        assert_eq!(
            read(br#"{"RecordType":"Delivery","Recipient":"a@example.com"}"#),
            Ok(Event::Ignored("a Postmark Delivery record".into()))
        );
        assert!(read(b"nope").is_err());
        assert!(read(br#"{"RecordType":"Bounce","Type":"HardBounce","ID":1}"#).is_err());
        assert!(read(br#"{"RecordType":"Bounce","Email":"a@example.com","ID":1}"#).is_err());
        assert!(
            read(br#"{"RecordType":"Bounce","Type":"HardBounce","Email":"a@example.com"}"#)
                .is_err()
        );
    }

    #[test]
    fn basic_auth_needs_both_halves() {
        let header = |user: &str, pass: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            )
        };
        assert!(authorized(
            Some(&header("postmark", "s3cret:x")),
            "postmark",
            "s3cret:x"
        ));
        assert!(authorized(
            Some(&header("postmark", "s3cret:x").replace("Basic", "basic")),
            "postmark",
            "s3cret:x"
        ));
        assert!(!authorized(
            Some(&header("postmark", "wrong")),
            "postmark",
            "s3cret:x"
        ));
        assert!(!authorized(
            Some(&header("other", "s3cret:x")),
            "postmark",
            "s3cret:x"
        ));
        assert!(!authorized(
            Some(&header("postmark", "")),
            "postmark",
            "s3cret:x"
        ));
        assert!(!authorized(Some("Bearer abc"), "postmark", "s3cret:x"));
        assert!(!authorized(Some("Basic !!!"), "postmark", "s3cret:x"));
        assert!(!authorized(None, "postmark", "s3cret:x"));
    }
}
