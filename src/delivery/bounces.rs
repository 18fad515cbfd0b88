//! Applying bounce and complaint reports to the ledger: which delivery a
//! [`Report`] is about, and what it does to the reader. Every source of
//! reports (a Maildir, an mbox, a message on stdin, IMAP, provider
//! webhooks in `serve`) ends here, through [`apply`].
//!
//! Attribution, first match wins:
//! 1. the VERP tag in `report.delivered_to` (`bounces+TAG@…`), when its
//!    HMAC is genuine and the ledger has the delivery;
//! 2. `report.original_message_id`, when it is a Message-ID pressroom
//!    made (`email::message_id`) for a delivery the ledger has;
//! 3. `report.recipient`, only for a machine-readable report (not
//!    `legacy`) naming an address the server accepted a message for (the
//!    latest such issue).
//!
//! A report that matches nothing pressroom sent changes nothing. Hard:
//! suppressed at once (`hard_bounce`, with the status and diagnostic);
//! Soft: counted, suppressed (`soft_bounce`) once `bounces.soft_limit` of
//! them fall within `bounces.soft_days`; Complaint: suppressed
//! (`complained`); AutoReply and NotAReport: counted, nothing else. The
//! same report twice (same [`report_key`]) counts once.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::ledger::{
    IssueId, Ledger, LedgerError, Recorded, ReportEffect, ReportRow, SuppressionReason,
};
use crate::bounce::{Report, Verdict};
use crate::config::bounces::BounceConfig;
use crate::email::verp;

/// How a report was matched to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// The signed VERP tag of the address it came back to.
    VerpTag,
    /// The Message-ID of the message that bounced.
    MessageId,
    /// The recipient a machine-readable report names.
    Recipient,
}

impl Attribution {
    /// As stored and shown: `verp`, `message-id`, `recipient`.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::VerpTag => "verp",
            Attribution::MessageId => "message-id",
            Attribution::Recipient => "recipient",
        }
    }
}

/// The delivery a report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The normalized address.
    pub recipient: String,
    pub issue: IssueId,
    pub by: Attribution,
}

/// What one report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An auto-reply or no report at all: counted, nothing else. An
    /// attributed auto-reply is kept with its issue (`target`).
    Ignored { target: Option<Target> },
    /// It matches nothing pressroom sent: nothing changed.
    Unattributed,
    /// The same report was applied before: nothing changed.
    Duplicate { target: Target },
    /// Kept against its delivery.
    Recorded {
        target: Target,
        /// The reason, when this report suppressed the reader (who was
        /// not suppressed before).
        suppressed: Option<SuppressionReason>,
        /// For a soft bounce: how many count towards `soft_limit` now.
        soft_count: Option<u64>,
    },
}

/// The result of [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub verdict: Verdict,
    pub outcome: Outcome,
}

impl Applied {
    /// The reader this report suppressed, with the reason, if it did.
    pub fn suppressed(&self) -> Option<(&str, SuppressionReason)> {
        match &self.outcome {
            Outcome::Recorded {
                target,
                suppressed: Some(reason),
                ..
            } => Some((target.recipient.as_str(), *reason)),
            _ => None,
        }
    }
}

/// The key that makes the same report count once: its own id
/// (`id:…`) when it has one, else the SHA-256 of its raw bytes
/// (`sha256:…`).
pub fn report_key(report: &Report, raw: &[u8]) -> String {
    match report
        .id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        Some(id) => format!("id:{id}"),
        None => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
    }
}

/// Applies one report: attributes it (VERP tag, then Message-ID, then
/// recipient) and records it with its effect in one transaction (a
/// savepoint when the caller has a group commit open, see
/// [`Ledger::begin_group`]). `key` is [`report_key`]; `source` names
/// where the report came from (`maildir`, `mbox`, `stdin`, `imap`,
/// `ses`, `postmark`); `secret` is `PRESSROOM_SECRET` (None: VERP tags
/// are not trusted, and attribution falls back to the others).
pub fn apply(
    ledger: &mut Ledger,
    report: &Report,
    key: &str,
    source: &str,
    settings: &BounceConfig,
    secret: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<Applied, LedgerError> {
    let applied = |outcome| Applied {
        verdict: report.verdict,
        outcome,
    };
    let (verdict, effect) = match report.verdict {
        Verdict::NotAReport => return Ok(applied(Outcome::Ignored { target: None })),
        Verdict::Hard => (
            "hard",
            ReportEffect::Suppress(SuppressionReason::HardBounce),
        ),
        Verdict::Complaint => (
            "complaint",
            ReportEffect::Suppress(SuppressionReason::Complained),
        ),
        Verdict::Soft => (
            "soft",
            ReportEffect::CountSoft {
                limit: settings.soft_limit.max(1),
                since: now - Duration::days(i64::from(settings.soft_days)),
            },
        ),
        Verdict::AutoReply => ("auto-reply", ReportEffect::Nothing),
    };
    let Some(target) = attribute(ledger, report, secret)? else {
        return Ok(applied(match report.verdict {
            Verdict::AutoReply => Outcome::Ignored { target: None },
            _ => Outcome::Unattributed,
        }));
    };
    let row = ReportRow {
        key,
        recipient: &target.recipient,
        issue: &target.issue,
        verdict,
        status: report.status.as_deref(),
        diagnostic: report.diagnostic.as_deref(),
        source,
        attributed_by: target.by.as_str(),
    };
    let recorded = ledger.record_report(&row, effect, now)?;
    Ok(applied(match (recorded, report.verdict) {
        (Recorded::Duplicate, _) => Outcome::Duplicate { target },
        (Recorded::Kept { .. }, Verdict::AutoReply) => Outcome::Ignored {
            target: Some(target),
        },
        (
            Recorded::Kept {
                suppressed,
                soft_count,
            },
            _,
        ) => Outcome::Recorded {
            target,
            suppressed,
            soft_count,
        },
    }))
}

/// The delivery `report` is about, if pressroom made it.
pub fn attribute(
    ledger: &Ledger,
    report: &Report,
    secret: Option<&[u8]>,
) -> Result<Option<Target>, LedgerError> {
    if let Some(secret) = secret {
        for address in &report.delivered_to {
            let Some(key) = verp::tag_of(address).and_then(|tag| verp::verify_tag(tag, secret))
            else {
                continue;
            };
            if let Some((issue, recipient)) = ledger.delivery_by_key(&key)? {
                return Ok(Some(Target {
                    recipient,
                    issue,
                    by: Attribution::VerpTag,
                }));
            }
        }
    }
    if let Some(digest) = report
        .original_message_id
        .as_deref()
        .and_then(message_id_digest)
    {
        let mut key = [0u8; verp::KEY_LEN];
        key.copy_from_slice(&digest[..verp::KEY_LEN]);
        if let Some((issue, recipient)) = ledger.delivery_by_key(&key)? {
            // The whole digest must match: the key is only its start.
            if verp::delivery_digest(issue.as_str(), &recipient) == digest {
                return Ok(Some(Target {
                    recipient,
                    issue,
                    by: Attribution::MessageId,
                }));
            }
        }
    }
    if !report.legacy {
        if let Some(recipient) = report.recipient.as_deref().and_then(normalized) {
            if let Some(issue) = ledger.last_sent_to(&recipient)? {
                return Ok(Some(Target {
                    recipient,
                    issue,
                    by: Attribution::Recipient,
                }));
            }
        }
    }
    Ok(None)
}

/// The delivery digest a Message-ID pressroom made starts with
/// (`HEX32.ISSUE@DOMAIN`, with or without `<>`).
fn message_id_digest(id: &str) -> Option<[u8; 16]> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let hex_part = id.get(..32)?;
    if id.as_bytes().get(32) != Some(&b'.') {
        return None;
    }
    let mut digest = [0u8; 16];
    hex::decode_to_slice(hex_part.to_ascii_lowercase(), &mut digest).ok()?;
    Some(digest)
}

/// The ledger's form of an address a report names (`rfc822;` already
/// removed by the parser; angle brackets and case dropped here).
fn normalized(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    crate::address::EmailAddress::parse(address)
        .ok()
        .map(|a| a.normalized())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::EmailAddress;
    use crate::delivery::ledger::{IssueKind, NewIssue};
    use crate::email::verp::bounce_address;
    use chrono::TimeZone;
    use std::convert::Infallible;

    const SECRET: &[u8] = b"bounce secret for tests";

    fn t(days: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0).unwrap() + Duration::days(days)
    }

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    /// A ledger with issue `id` sent to every reader in `readers`.
    fn sent(ledger: &mut Ledger, id: &str, readers: &[&str], at: DateTime<Utc>) -> IssueId {
        let id = IssueId::parse(id).unwrap();
        ledger
            .create_issue(
                &NewIssue {
                    id: &id,
                    kind: IssueKind::Article,
                    article_ids: &[id.to_string()],
                    subject: "Hello",
                    content: b"",
                },
                readers.iter().map(|r| Ok::<_, Infallible>(addr(r))),
                at,
            )
            .unwrap();
        for r in readers {
            ledger
                .mark_sent(&id, &addr(r).normalized(), "250 ok", at)
                .unwrap();
        }
        id
    }

    fn report(verdict: Verdict) -> Report {
        Report {
            verdict,
            id: None,
            delivered_to: Vec::new(),
            recipient: None,
            status: Some("5.1.1".into()),
            diagnostic: Some("smtp; 550 5.1.1 user unknown".into()),
            original_message_id: None,
            legacy: false,
        }
    }

    fn verp(issue: &str, reader: &str) -> String {
        let bounces = addr("bounces@dispatch.example.com");
        bounce_address(&bounces, issue, &addr(reader), SECRET)
            .unwrap()
            .to_string()
    }

    fn settings() -> BounceConfig {
        BounceConfig::default()
    }

    fn run(ledger: &mut Ledger, report: &Report, key: &str, now: DateTime<Utc>) -> Applied {
        apply(ledger, report, key, "test", &settings(), Some(SECRET), now).unwrap()
    }

    #[test]
    fn a_hard_bounce_by_verp_tag_suppresses_its_reader_with_status_and_diagnostic() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        sent(&mut ledger, "i1", &["A@example.com", "b@example.com"], t(0));
        let mut r = report(Verdict::Hard);
        r.delivered_to = vec![verp("i1", "a@example.com")];
        // The recipient field names someone else: the tag wins.
        r.recipient = Some("b@example.com".into());
        let applied = run(&mut ledger, &r, "k1", t(1));
        assert_eq!(
            applied.suppressed(),
            Some(("a@example.com", SuppressionReason::HardBounce))
        );
        let Outcome::Recorded { target, .. } = &applied.outcome else {
            panic!("{applied:?}")
        };
        assert_eq!(target.by, Attribution::VerpTag);
        assert_eq!(target.issue.as_str(), "i1");
        let s = ledger.suppressions().unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].recipient, "a@example.com");
        assert_eq!(s[0].reason, "hard_bounce");
        assert_eq!(s[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(s[0].reply.as_deref(), Some("smtp; 550 5.1.1 user unknown"));
        assert_eq!(s[0].issue.as_deref(), Some("i1"));
        assert_eq!(s[0].how.as_deref(), Some("test"));
        let counts = ledger
            .report_counts(&IssueId::parse("i1").unwrap())
            .unwrap();
        assert_eq!(counts.hard, 1);
    }

    #[test]
    fn a_forged_or_altered_tag_attributes_nothing() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        sent(&mut ledger, "i1", &["a@example.com"], t(0));
        let genuine = verp("i1", "a@example.com");
        // The same key signed with another secret, and one changed letter.
        let other_secret = bounce_address(
            &addr("bounces@dispatch.example.com"),
            "i1",
            &addr("a@example.com"),
            b"someone else's secret",
        )
        .unwrap()
        .to_string();
        let at = genuine.find('@').unwrap();
        let mut altered = genuine.clone().into_bytes();
        altered[at - 1] = if altered[at - 1] == b'a' { b'b' } else { b'a' };
        let altered = String::from_utf8(altered).unwrap();
        for forged in [other_secret, altered] {
            let mut r = report(Verdict::Hard);
            r.delivered_to = vec![forged.clone()];
            let applied = run(&mut ledger, &r, &forged, t(1));
            assert_eq!(applied.outcome, Outcome::Unattributed, "{forged}");
        }
        // Without the secret, even a genuine tag is not trusted.
        let mut r = report(Verdict::Hard);
        r.delivered_to = vec![genuine];
        let applied = apply(&mut ledger, &r, "k", "test", &settings(), None, t(1)).unwrap();
        assert_eq!(applied.outcome, Outcome::Unattributed);
        assert!(ledger.suppressions().unwrap().is_empty());
    }

    #[test]
    fn attribution_falls_back_from_tag_to_message_id_to_recipient() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        sent(&mut ledger, "i1", &["a@example.com", "b@example.com"], t(0));
        sent(&mut ledger, "i2", &["b@example.com", "c@example.com"], t(1));
        let site_mid = |issue: &str, reader: &str| {
            format!(
                "<{}.{issue}@dispatch.example.com>",
                hex::encode(verp::delivery_digest(issue, reader))
            )
        };
        // An unknown tag (another ledger's) but a known Message-ID.
        let mut r = report(Verdict::Complaint);
        r.delivered_to = vec![verp("other-issue", "a@example.com")];
        r.original_message_id = Some(site_mid("i1", "b@example.com"));
        r.recipient = Some("c@example.com".into());
        let applied = run(&mut ledger, &r, "k1", t(2));
        let Outcome::Recorded {
            target, suppressed, ..
        } = &applied.outcome
        else {
            panic!("{applied:?}")
        };
        assert_eq!(
            (target.by, target.recipient.as_str(), target.issue.as_str()),
            (Attribution::MessageId, "b@example.com", "i1")
        );
        assert_eq!(*suppressed, Some(SuppressionReason::Complained));

        // A Message-ID whose key matches but whose rest does not.
        let mut mid = site_mid("i1", "a@example.com");
        mid.replace_range(30..32, "00");
        let mut r = report(Verdict::Hard);
        r.original_message_id = Some(mid);
        r.recipient = Some("<C@Example.com>".into());
        let applied = run(&mut ledger, &r, "k2", t(2));
        let Outcome::Recorded { target, .. } = &applied.outcome else {
            panic!("{applied:?}")
        };
        // The recipient: the latest issue sent to them.
        assert_eq!(
            (target.by, target.recipient.as_str(), target.issue.as_str()),
            (Attribution::Recipient, "c@example.com", "i2")
        );

        // A legacy text names a recipient only: not enough.
        let mut r = report(Verdict::Hard);
        r.recipient = Some("a@example.com".into());
        r.legacy = true;
        assert_eq!(
            run(&mut ledger, &r, "k3", t(2)).outcome,
            Outcome::Unattributed
        );
        // A report about an address pressroom never mailed changes nothing.
        let mut r = report(Verdict::Hard);
        r.recipient = Some("stranger@example.com".into());
        assert_eq!(
            run(&mut ledger, &r, "k4", t(2)).outcome,
            Outcome::Unattributed
        );
        let suppressed: Vec<String> = ledger
            .suppressions()
            .unwrap()
            .into_iter()
            .map(|s| format!("{} {}", s.recipient, s.reason))
            .collect();
        assert_eq!(
            suppressed,
            ["b@example.com complained", "c@example.com hard_bounce"]
        );
    }

    #[test]
    fn the_same_report_twice_counts_once() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        sent(&mut ledger, "i1", &["a@example.com"], t(0));
        let mut r = report(Verdict::Soft);
        r.delivered_to = vec![verp("i1", "a@example.com")];
        r.id = Some("dsn-1@mx.example.net".into());
        let raw = b"the raw bytes";
        let key = report_key(&r, raw);
        assert_eq!(key, "id:dsn-1@mx.example.net");
        let first = run(&mut ledger, &r, &key, t(1));
        assert!(matches!(
            first.outcome,
            Outcome::Recorded {
                soft_count: Some(1),
                ..
            }
        ));
        let again = run(&mut ledger, &r, &key, t(1));
        assert!(
            matches!(again.outcome, Outcome::Duplicate { .. }),
            "{again:?}"
        );
        // Without an id the raw bytes decide.
        r.id = None;
        assert_eq!(report_key(&r, raw), report_key(&r, raw));
        assert_ne!(report_key(&r, raw), report_key(&r, b"other bytes"));
        assert!(report_key(&r, raw).starts_with("sha256:"));
        assert_eq!(
            ledger
                .report_counts(&IssueId::parse("i1").unwrap())
                .unwrap()
                .soft,
            1
        );
    }

    #[test]
    fn soft_bounces_suppress_at_the_limit_within_the_window_only() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        sent(&mut ledger, "i1", &["a@example.com", "b@example.com"], t(0));
        let soft = |reader: &str| {
            let mut r = report(Verdict::Soft);
            r.status = Some("4.2.2".into());
            r.delivered_to = vec![verp("i1", reader)];
            r
        };
        // a: three within 30 days (default soft_limit 3, soft_days 30).
        for (n, day) in [(1, 1), (2, 10), (3, 20)] {
            let applied = run(
                &mut ledger,
                &soft("a@example.com"),
                &format!("a{n}"),
                t(day),
            );
            let Outcome::Recorded {
                suppressed,
                soft_count,
                ..
            } = applied.outcome
            else {
                panic!()
            };
            assert_eq!(soft_count, Some(n));
            assert_eq!(
                suppressed,
                (n == 3).then_some(SuppressionReason::SoftBounce)
            );
        }
        // b: three, but spread over more than 30 days: never two within
        // the window plus the third.
        for (n, day) in [(1u64, 1i64), (2, 40), (3, 80)] {
            let applied = run(
                &mut ledger,
                &soft("b@example.com"),
                &format!("b{n}"),
                t(day),
            );
            let Outcome::Recorded {
                suppressed,
                soft_count,
                ..
            } = applied.outcome
            else {
                panic!()
            };
            assert_eq!(soft_count, Some(1), "bounce {n}");
            assert_eq!(suppressed, None);
        }
        let reasons: Vec<_> = ledger
            .suppressions()
            .unwrap()
            .into_iter()
            .map(|s| (s.recipient, s.reason))
            .collect();
        assert_eq!(reasons, [("a@example.com".into(), "soft_bounce".into())]);
    }

    #[test]
    fn auto_replies_and_non_reports_change_nothing() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        sent(&mut ledger, "i1", &["a@example.com"], t(0));
        let mut r = report(Verdict::AutoReply);
        r.delivered_to = vec![verp("i1", "a@example.com")];
        let applied = run(&mut ledger, &r, "k1", t(1));
        assert!(matches!(
            applied.outcome,
            Outcome::Ignored { target: Some(_) }
        ));
        let mut r = report(Verdict::NotAReport);
        r.delivered_to = vec![verp("i1", "a@example.com")];
        assert_eq!(
            run(&mut ledger, &r, "k2", t(1)).outcome,
            Outcome::Ignored { target: None }
        );
        assert!(ledger.suppressions().unwrap().is_empty());
        let counts = ledger
            .report_counts(&IssueId::parse("i1").unwrap())
            .unwrap();
        assert_eq!((counts.auto_reply, counts.hard), (1, 0));
    }

    #[test]
    fn reactivation_lifts_bounces_not_unsubscribes_and_restarts_the_soft_count() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        sent(&mut ledger, "i1", &["a@example.com", "u@example.com"], t(0));
        let mut r = report(Verdict::Hard);
        r.delivered_to = vec![verp("i1", "a@example.com")];
        run(&mut ledger, &r, "k1", t(1));
        let a = addr("A@example.com");
        assert_eq!(
            ledger.reactivate(&a, "command", t(2)).unwrap(),
            crate::delivery::ledger::Reactivation::Lifted {
                reason: SuppressionReason::HardBounce
            }
        );
        assert_eq!(ledger.suppression(&a).unwrap(), None);
        assert_eq!(
            ledger.reactivate(&a, "command", t(2)).unwrap(),
            crate::delivery::ledger::Reactivation::NotSuppressed
        );
        let u = addr("u@example.com");
        ledger.unsubscribe(&u, "one-click", t(1)).unwrap();
        assert_eq!(
            ledger.reactivate(&u, "command", t(2)).unwrap(),
            crate::delivery::ledger::Reactivation::Unsubscribed
        );
        assert!(ledger.suppression(&u).unwrap().is_some());

        // Three soft bounces suppress; after a reactivation the next one
        // counts 1, not 4.
        for (n, day) in [(1, 3), (2, 4), (3, 5)] {
            let mut r = report(Verdict::Soft);
            r.delivered_to = vec![verp("i1", "a@example.com")];
            run(&mut ledger, &r, &format!("s{n}"), t(day));
        }
        assert_eq!(
            ledger.suppression(&a).unwrap(),
            Some(SuppressionReason::SoftBounce)
        );
        ledger.reactivate(&a, "command", t(6)).unwrap();
        let mut r = report(Verdict::Soft);
        r.delivered_to = vec![verp("i1", "a@example.com")];
        let applied = run(&mut ledger, &r, "s4", t(7));
        assert!(
            matches!(
                applied.outcome,
                Outcome::Recorded {
                    soft_count: Some(1),
                    suppressed: None,
                    ..
                }
            ),
            "{applied:?}"
        );
    }

    #[test]
    fn message_ids_pressroom_did_not_make_are_ignored() {
        assert_eq!(message_id_digest("<abc@example.com>"), None);
        assert_eq!(message_id_digest(&format!("<{}@x>", "0".repeat(32))), None);
        assert_eq!(
            message_id_digest(&format!("<{}.i@x>", "g".repeat(32))),
            None
        );
        assert_eq!(
            message_id_digest(&format!("{}.i@x", "0A".repeat(16))),
            Some([10u8; 16])
        );
    }
}
