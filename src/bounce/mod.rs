//! Bounce and complaint reports: what one raw message from the mail system
//! says about a reader. It reads delivery status notifications (RFC 3464),
//! abuse reports (ARF, RFC 5965), auto-replies (RFC 3834) and the legacy
//! plain-text "delivery failed" messages older servers still write, and
//! returns a [`Report`]. Pure: bytes in, a value out; no input panics.
//!
//! Which reader and which issue a report is about (the VERP tag, the
//! original Message-ID, the recipient) is decided by `delivery::bounces`;
//! provider webhooks (`serve`) build the same [`Report`] from JSON.

/// What a report says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A permanent failure (status 5.x.x): the reader is suppressed at once.
    Hard,
    /// A temporary failure (status 4.x.x, or a "delayed" report): counted;
    /// suppresses after `bounces.soft_limit` within `bounces.soft_days`.
    Soft,
    /// A spam complaint (an ARF report, a provider's complaint): the
    /// reader is suppressed at once.
    Complaint,
    /// An auto-reply (RFC 3834, a vacation notice): ignored, counted.
    AutoReply,
    /// Mail that is no report at all: ignored, counted.
    NotAReport,
}

impl Verdict {
    /// The verdict as shown and stored: `hard`, `soft`, `complaint`,
    /// `auto-reply`, `not-a-report`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Hard => "hard",
            Verdict::Soft => "soft",
            Verdict::Complaint => "complaint",
            Verdict::AutoReply => "auto-reply",
            Verdict::NotAReport => "not-a-report",
        }
    }
}

/// Everything pressroom uses from one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub verdict: Verdict,
    /// The report's own id (its Message-ID without `<>`, or a provider's
    /// notification id), when it has one: the same report seen twice has
    /// the same id.
    pub id: Option<String>,
    /// The addresses the report was delivered to, where a VERP tag shows
    /// (`bounces+TAG@example.com`): `Delivered-To`, `X-Original-To`,
    /// `Envelope-To`, `X-Envelope-To`, then `To`, in this order.
    pub delivered_to: Vec<String>,
    /// The reader's address as the report names it: `Final-Recipient`,
    /// else `Original-Recipient`, else ARF's `Original-Rcpt-To`, else the
    /// address a legacy text names (without the `rfc822;` type).
    pub recipient: Option<String>,
    /// The status code (RFC 3463), e.g. `5.1.1`; for a legacy bounce
    /// without one, the SMTP reply code, e.g. `550`.
    pub status: Option<String>,
    /// The receiving server's own words (`Diagnostic-Code`, a provider's
    /// diagnostic, or the legacy text's line), on one line, at most 500
    /// characters.
    pub diagnostic: Option<String>,
    /// The Message-ID (without `<>`) of the message that bounced or was
    /// reported, from the returned headers or the provider's payload.
    pub original_message_id: Option<String>,
    /// True when the verdict comes from free text rather than a
    /// machine-readable report: such a report counts only when the VERP
    /// tag or the original Message-ID attributes it.
    pub legacy: bool,
}

mod legacy;
mod parse;

pub use parse::{parse, ReadError, DIAGNOSTIC_MAX_CHARS};

#[cfg(test)]
mod tests;
