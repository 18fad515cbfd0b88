//! Amazon SES events (the `Message` of an SNS notification) as
//! [`Report`]s: one per bounced or complaining recipient. Reads both the
//! notification format (`notificationType`) and event publishing
//! (`eventType`). Pure: a string in, values out.

use serde_json::Value;

use crate::bounce::{Report, Verdict};

/// What one SES event asks of pressroom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bounces or complaints, one report per recipient.
    Reports(Vec<Report>),
    /// Nothing to record (a delivery, a `not-spam` feedback, an event
    /// pressroom does not act on); says what it was.
    Ignored(String),
}

/// Reads an SES event. `notification_id` is the SNS `MessageId`: with the
/// recipient it makes each report's id, so a notification SNS delivers
/// twice is counted once.
pub fn read(message: &str, notification_id: &str) -> Result<Event, String> {
    let event: Value =
        serde_json::from_str(message).map_err(|e| format!("the SES event is not JSON: {e}"))?;
    let kind = text(&event, &["notificationType"])
        .or_else(|| text(&event, &["eventType"]))
        .ok_or("the SES event has neither notificationType nor eventType")?;
    let mail = event.get("mail").unwrap_or(&Value::Null);
    let report = |verdict, recipient: &str, status, diagnostic| Report {
        verdict,
        id: Some(format!("ses/{notification_id}/{recipient}")),
        // The envelope sender SES used: `bounces+TAG@…` when pressroom
        // sent with a VERP address.
        delivered_to: text(mail, &["source"]).into_iter().collect(),
        recipient: Some(recipient.to_owned()),
        status,
        diagnostic,
        original_message_id: original_message_id(mail),
        legacy: false,
    };
    match kind.as_str() {
        "Bounce" => {
            let bounce = event
                .get("bounce")
                .ok_or("a Bounce without a bounce object")?;
            let verdict = match text(bounce, &["bounceType"]).as_deref() {
                Some("Permanent") => Verdict::Hard,
                Some("Transient" | "Undetermined") => Verdict::Soft,
                other => return Err(format!("unknown bounceType {other:?}")),
            };
            let reports = recipients(bounce, "bouncedRecipients")
                .filter_map(|r| {
                    let address = text(r, &["emailAddress"])?;
                    Some(report(
                        verdict,
                        &address,
                        text(r, &["status"]),
                        text(r, &["diagnosticCode"]).and_then(|d| one_line(&d)),
                    ))
                })
                .collect();
            Ok(Event::Reports(reports))
        }
        "Complaint" => {
            let complaint = event
                .get("complaint")
                .ok_or("a Complaint without a complaint object")?;
            let feedback = text(complaint, &["complaintFeedbackType"]);
            if feedback.as_deref() == Some("not-spam") {
                return Ok(Event::Ignored("a not-spam feedback report".into()));
            }
            let reports = recipients(complaint, "complainedRecipients")
                .filter_map(|r| {
                    let address = text(r, &["emailAddress"])?;
                    Some(report(Verdict::Complaint, &address, None, feedback.clone()))
                })
                .collect();
            Ok(Event::Reports(reports))
        }
        "Delivery" => Ok(Event::Ignored("a delivery".into())),
        other => Ok(Event::Ignored(format!("an SES {other:?} event"))),
    }
}

fn recipients<'a>(object: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    object
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The string at `path`, trimmed, when there is a non-empty one.
fn text(value: &Value, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    let s = at.as_str()?.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The sent message's own `Message-ID` header (not SES's `mail.messageId`,
/// which SES gives every message it accepts), without `<>`.
fn original_message_id(mail: &Value) -> Option<String> {
    let header = text(mail, &["commonHeaders", "messageId"]).or_else(|| {
        mail.get("headers")?.as_array()?.iter().find_map(|h| {
            let name = h.get("name")?.as_str()?;
            name.eq_ignore_ascii_case("Message-ID")
                .then(|| text(h, &["value"]))
                .flatten()
        })
    })?;
    let id = header.trim().trim_start_matches('<').trim_end_matches('>');
    (!id.is_empty()).then(|| id.to_owned())
}

/// A provider's words on one line, at most 500 characters.
pub(super) fn one_line(s: &str) -> Option<String> {
    let line = crate::text::single_line(s);
    let line = line.trim();
    (!line.is_empty()).then(|| line.chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/webhooks/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn reports(name: &str) -> Vec<Report> {
        match read(&fixture(name), "sns-1").unwrap() {
            Event::Reports(reports) => reports,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn documented_bounce_with_a_dsn() {
        assert_eq!(
            reports("ses-bounce.json"),
            [Report {
                verdict: Verdict::Hard,
                id: Some("ses/sns-1/jane@example.com".into()),
                delivered_to: vec!["john@example.com".into()],
                recipient: Some("jane@example.com".into()),
                status: Some("5.1.1".into()),
                diagnostic: Some("smtp; 550 5.1.1 <jane@example.com>... User".into()),
                // The header's, not SES's 00000138111222aa-… id.
                original_message_id: Some("custom-message-ID".into()),
                legacy: false,
            }]
        );
    }

    #[test]
    fn documented_bounce_without_a_dsn_names_each_recipient() {
        let reports = reports("ses-bounce-no-dsn.json");
        let recipients: Vec<_> = reports.iter().map(|r| r.recipient.clone()).collect();
        assert_eq!(
            recipients,
            [
                Some("jane@example.com".to_owned()),
                Some("richard@example.com".to_owned())
            ]
        );
        assert!(reports
            .iter()
            .all(|r| r.verdict == Verdict::Hard && r.status.is_none()));
        assert_ne!(reports[0].id, reports[1].id);
    }

    #[test]
    fn bounce_types_map_to_verdicts() {
        let base = fixture("ses-bounce.json");
        for (kind, verdict) in [
            ("Permanent", Verdict::Hard),
            ("Transient", Verdict::Soft),
            ("Undetermined", Verdict::Soft),
        ] {
            let message = base.replace("\"Permanent\"", &format!("\"{kind}\""));
            let Event::Reports(reports) = read(&message, "x").unwrap() else {
                panic!("{kind}")
            };
            assert_eq!(reports[0].verdict, verdict, "{kind}");
        }
        let message = base.replace("\"Permanent\"", "\"Sideways\"");
        assert_eq!(
            read(&message, "x"),
            Err("unknown bounceType Some(\"Sideways\")".into())
        );
    }

    #[test]
    fn documented_complaints_are_complaints_unless_not_spam() {
        let with = reports("ses-complaint.json");
        assert_eq!(with.len(), 1);
        assert_eq!(with[0].verdict, Verdict::Complaint);
        assert_eq!(with[0].recipient.as_deref(), Some("richard@example.com"));
        assert_eq!(with[0].diagnostic.as_deref(), Some("abuse"));
        assert_eq!(
            with[0].original_message_id.as_deref(),
            Some("custom-message-ID")
        );
        let without = reports("ses-complaint-no-feedback.json");
        assert_eq!(without[0].verdict, Verdict::Complaint);
        assert_eq!(without[0].diagnostic, None);

        let not_spam = fixture("ses-complaint.json").replace("\"abuse\"", "\"not-spam\"");
        assert_eq!(
            read(&not_spam, "x"),
            Ok(Event::Ignored("a not-spam feedback report".into()))
        );
    }

    #[test]
    fn deliveries_and_other_events_are_ignored() {
        assert_eq!(
            read(&fixture("ses-delivery.json"), "x"),
            Ok(Event::Ignored("a delivery".into()))
        );
        let published = fixture("ses-delivery.json")
            .replace("\"notificationType\"", "\"eventType\"")
            .replace("\"Delivery\"", "\"Open\"");
        assert_eq!(
            read(&published, "x"),
            Ok(Event::Ignored("an SES \"Open\" event".into()))
        );
    }

    #[test]
    fn event_publishing_names_the_type_event_type() {
        let published = fixture("ses-bounce.json").replace("\"notificationType\"", "\"eventType\"");
        let Event::Reports(reports) = read(&published, "x").unwrap() else {
            panic!()
        };
        assert_eq!(reports[0].verdict, Verdict::Hard);
    }

    #[test]
    fn message_id_falls_back_to_the_headers_and_loses_its_brackets() {
        let mut event: Value = serde_json::from_str(&fixture("ses-bounce.json")).unwrap();
        let mail = event["mail"].as_object_mut().unwrap();
        mail.remove("commonHeaders");
        mail["headers"][2]["value"] = "<1.2@dispatch.example.com>".into();
        let Event::Reports(reports) = read(&event.to_string(), "x").unwrap() else {
            panic!()
        };
        assert_eq!(
            reports[0].original_message_id.as_deref(),
            Some("1.2@dispatch.example.com")
        );
        event["mail"].as_object_mut().unwrap().remove("headers");
        let Event::Reports(reports) = read(&event.to_string(), "x").unwrap() else {
            panic!()
        };
        assert_eq!(reports[0].original_message_id, None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read("not json", "x").is_err());
        assert!(read("{}", "x").is_err());
        assert!(read(r#"{"notificationType":"Bounce"}"#, "x").is_err());
        assert_eq!(
            read(
                r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"status":"5.1.1"}, 7]}}"#,
                "x"
            ),
            Ok(Event::Reports(vec![]))
        );
    }
}
