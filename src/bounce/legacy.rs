//! Legacy bounces: the plain-text "delivery failed" messages (qmail's
//! "failure notice", old Exim and Sendmail texts, Exchange's
//! "Undeliverable:") that carry no RFC 3464 part. The verdict, recipient,
//! status and diagnostic are read from the words, so such a report counts
//! only when its VERP tag or original Message-ID attributes it.

use mail_parser::Message;

use super::parse::{
    address_in, clean_id, diagnostic_text, find_reply_code, find_status, raw_headers,
};
use super::Verdict;

/// What a legacy text says.
pub(super) struct Found {
    pub verdict: Verdict,
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub original_message_id: Option<String>,
}

/// Senders that only ever write delivery reports (local parts).
const DAEMONS: &[&str] = &[
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "mail-daemon",
    "postmaster",
    "mdaemon",
    "mail.daemon",
];

/// Display names of the same.
const DAEMON_NAMES: &[&str] = &[
    "mail delivery system",
    "mail delivery subsystem",
    "mail delivery service",
    "microsoft outlook",
    "mail administrator",
];

/// Subjects (lower case, contained) of failure reports.
const FAILURE_SUBJECTS: &[&str] = &[
    "failure notice",
    "undelivered mail",
    "undeliverable",
    "mail delivery failed",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "delivery status notification",
    "returned mail",
    "returned to sender",
    "mail could not be delivered",
    "could not be delivered",
    "non-delivery",
    "nondeliverable",
    "non remis",
    "unzustellbar",
    "delivery notification",
    "mail system error",
    "message not delivered",
    "not delivered",
];

/// Subjects (lower case, contained) of delay warnings.
const DELAY_SUBJECTS: &[&str] = &[
    "delayed",
    "(delay)",
    "delivery delay",
    "warning: message",
    "warning: could not send",
    "still being retried",
    "delivery status notification (delay)",
];

/// Subjects (lower case, contained) of success notices.
const SUCCESS_SUBJECTS: &[&str] = &[
    "(success)",
    "successful mail delivery",
    "delivered:",
    "relayed:",
    "delivery report: delivered",
];

/// Words (lower case) of a report that the server still tries.
const DELAY_WORDS: &[&str] = &[
    "will keep trying",
    "will keep on trying",
    "will continue trying",
    "will continue to try",
    "will be retried",
    "will retry",
    "will try again",
    "still trying",
    "not yet been delivered",
    "has been delayed",
    "is delayed",
    "was delayed",
    "delivery is delayed",
    "delivery has been delayed",
    "delivery attempts will continue",
];

/// Words (lower case) of a permanent failure written without a code.
const PERMANENT_WORDS: &[&str] = &[
    "permanent error",
    "permanent fatal error",
    "permanently",
    "i'm not going to try again",
    "user unknown",
    "unknown user",
    "no such user",
    "no such recipient",
    "does not exist",
    "doesn't exist",
    "no mailbox",
    "mailbox unavailable",
    "mailbox not found",
    "invalid recipient",
    "recipient rejected",
    "address rejected",
    "could not be delivered",
    "couldn't be delivered",
    "delivery has failed",
    "delivery failed",
    "wasn't delivered",
    "was not delivered",
    "undeliverable",
    "giving up",
];

/// Lines (lower case, contained) where the copy of the original message
/// starts: the report's own words end there.
const COPY_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message follows",
    "unsent message follows",
    "original message headers",
    "header of the original message",
    "headers of the original message",
    "----- original message -----",
    "-----original message-----",
    "message headers follow",
    "copy of the original message",
];

/// The legacy reading of `message`, or `None` when neither its sender nor
/// its subject is that of a delivery report.
pub(super) fn read(message: &Message<'_>) -> Option<Found> {
    let subject = message.subject().unwrap_or("").to_lowercase();
    let failure_subject = FAILURE_SUBJECTS.iter().any(|s| subject.contains(s));
    let delay_subject = DELAY_SUBJECTS.iter().any(|s| subject.contains(s));
    let success_subject = SUCCESS_SUBJECTS.iter().any(|s| subject.contains(s));
    if !(from_daemon(message) || failure_subject || delay_subject || success_subject) {
        return None;
    }
    let mut found = Found {
        verdict: Verdict::NotAReport,
        recipient: None,
        status: None,
        diagnostic: None,
        original_message_id: None,
    };
    let text = body_text(message);
    found.original_message_id = quoted_message_id(&text);
    if success_subject && !failure_subject && !delay_subject {
        return Some(found);
    }
    let words = own_words(&text);
    let lower = words.to_lowercase();

    let enhanced = first_line_with(words, |line| find_status(line, b"5"))
        .or_else(|| first_line_with(words, |line| find_status(line, b"4")));
    let reply = first_line_with(words, |line| reply_code_in(line, b'5'))
        .or_else(|| first_line_with(words, |line| reply_code_in(line, b'4')));
    let coded = enhanced.or(reply);
    let delay = delay_subject || DELAY_WORDS.iter().any(|w| lower.contains(w));
    let permanent_line = PERMANENT_WORDS
        .iter()
        .find_map(|w| line_containing(words, &lower, w));

    found.verdict = if delay {
        Verdict::Soft
    } else if let Some((code, _)) = &coded {
        if code.starts_with('5') {
            Verdict::Hard
        } else {
            Verdict::Soft
        }
    } else if permanent_line.is_some() || failure_subject {
        Verdict::Hard
    } else {
        return Some(found);
    };
    let (status, line) = match coded {
        Some((code, line)) => (Some(code), Some(line)),
        None => (None, permanent_line),
    };
    found.status = status;
    found.diagnostic = line.map(diagnostic_text).filter(|d| !d.is_empty());
    found.recipient = recipient(message, words);
    Some(found)
}

/// True when the sender is a mailer daemon or postmaster.
fn from_daemon(message: &Message<'_>) -> bool {
    let Some(from) = message.from() else {
        return false;
    };
    from.iter().any(|addr| {
        let local_daemon = addr
            .address
            .as_deref()
            .and_then(|a| a.rsplit_once('@').map(|(local, _)| local).or(Some(a)))
            .is_some_and(|local| DAEMONS.iter().any(|d| local.eq_ignore_ascii_case(d)));
        let named_daemon = addr.name.as_deref().is_some_and(|name| {
            let name = name.to_lowercase();
            DAEMON_NAMES.iter().any(|d| name.contains(d))
        });
        local_daemon || named_daemon
    })
}

/// All text bodies of the message itself (HTML ones as text), joined.
fn body_text(message: &Message<'_>) -> String {
    let mut text = String::new();
    for i in 0..message.text_body_count().max(1) {
        if let Some(part) = message.body_text(i) {
            text.push_str(&part);
            text.push('\n');
        }
    }
    text
}

/// The report's own words: the text up to the copy of the original
/// message (a marker line, or the first quoted `Received:` header).
fn own_words(text: &str) -> &str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let lower = line.trim().to_lowercase();
        let copy_starts = COPY_MARKERS.iter().any(|m| lower.contains(m))
            || lower.starts_with("received: from")
            || lower.starts_with("return-path:");
        if copy_starts && offset > 0 {
            return &text[..offset];
        }
        offset += line.len();
    }
    text
}

/// The first line of `text` for which `find` finds a code, with the code.
fn first_line_with(text: &str, find: impl Fn(&str) -> Option<String>) -> Option<(String, &str)> {
    text.lines()
        .find_map(|line| find(line).map(|code| (code, line)))
}

/// A reply code of class `class` at the start of `line` or after a `: `
/// (`host mx.example said: 550 ...`).
fn reply_code_in(line: &str, class: u8) -> Option<String> {
    let trimmed = line.trim_start().trim_start_matches("<<<");
    std::iter::once(trimmed)
        .chain(line.match_indices(": ").map(|(i, _)| &line[i + 2..]))
        .filter_map(find_reply_code)
        .find(|code| code.as_bytes()[0] == class)
}

/// The line of `text` holding `word`, found in its lower-case copy.
fn line_containing<'t>(text: &'t str, lower: &str, word: &str) -> Option<&'t str> {
    let at = lower.find(word)?;
    // Lower-casing can change byte lengths; find the line by counting
    // line breaks before the match instead of by offset.
    let line_number = lower[..at].matches('\n').count();
    text.lines().nth(line_number)
}

/// The failed recipient: Exim's `X-Failed-Recipients` header, a
/// `Final-Recipient`/`Original-Recipient` line, an address in `<>` at the
/// start of a line (qmail, Postfix, Sendmail), else the first address in
/// the text that is not the report's own sender or receiver.
fn recipient(message: &Message<'_>, words: &str) -> Option<String> {
    if let Some(address) = raw_headers(message, "x-failed-recipients")
        .flat_map(|v| v.split(','))
        .find_map(address_in)
    {
        return Some(address);
    }
    for line in words.lines() {
        let trimmed = line.trim();
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("final-recipient:") || lower.starts_with("original-recipient:") {
            let value = &trimmed[trimmed.find(':').map_or(0, |i| i + 1)..];
            let value = value.split_once(';').map_or(value, |(_, v)| v);
            if let Some(address) = address_in(value) {
                return Some(address);
            }
        }
    }
    for line in words.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix('<') {
            if let Some(end) = rest.find('>') {
                if let Some(address) = address_in(&rest[..end]) {
                    if !is_own(message, &address) {
                        return Some(address);
                    }
                }
            }
        }
    }
    for line in words.lines() {
        let lower = line.trim_start().to_ascii_lowercase();
        let header_like = [
            "from:",
            "message-id:",
            "return-path:",
            "sender:",
            "reply-to:",
            "received:",
            "references:",
            "in-reply-to:",
            "by ",
            "id ",
            "reporting-mta:",
            "remote-mta:",
        ]
        .iter()
        .any(|p| lower.starts_with(p));
        if header_like {
            continue;
        }
        for address in addresses_in(line) {
            if !is_own(message, &address) {
                return Some(address);
            }
        }
    }
    None
}

/// True for an address the report itself comes from or goes to, or a
/// daemon's address.
fn is_own(message: &Message<'_>, address: &str) -> bool {
    let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
    if DAEMONS.iter().any(|d| local.eq_ignore_ascii_case(d)) {
        return true;
    }
    let same = |a: &mail_parser::Address<'_>| {
        a.iter().any(|addr| {
            addr.address
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(address))
        })
    };
    message.from().is_some_and(same) || message.to().is_some_and(same)
}

/// The `local@domain` addresses written in `line`.
fn addresses_in(line: &str) -> impl Iterator<Item = String> + '_ {
    let is_local = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c);
    let is_domain = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    line.match_indices('@').filter_map(move |(at, _)| {
        let start = line[..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| is_local(c))
            .last()
            .map(|(i, _)| i)?;
        let end = at
            + 1
            + line[at + 1..]
                .char_indices()
                .take_while(|&(_, c)| is_domain(c))
                .last()
                .map(|(i, c)| i + c.len_utf8())?;
        let local = line[start..at].trim_start_matches(['.', '\'']);
        let domain = line[at + 1..end].trim_end_matches(['.', '-']);
        (!local.is_empty() && domain.contains('.')).then(|| format!("{local}@{domain}"))
    })
}

/// The Message-ID of a quoted original message: the first
/// `Message-ID:` line of the text (its value may be on the next line).
fn quoted_message_id(text: &str) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let Some(name) = trimmed.get(..11) else {
            continue;
        };
        if name.eq_ignore_ascii_case("message-id:") {
            let value = trimmed[11..].trim();
            let value = if value.is_empty() {
                lines.next().unwrap_or("").trim()
            } else {
                value
            };
            if let Some(id) = clean_id(value) {
                return Some(id);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_cut_out_of_running_text() {
        let found: Vec<String> = addresses_in("to 'jo.x@ex.example' and <a+b@c.d>.").collect();
        assert_eq!(found, ["jo.x@ex.example", "a+b@c.d"]);
        assert_eq!(addresses_in("no @ here, x@localhost").count(), 0);
    }

    #[test]
    fn own_words_end_where_the_copy_starts() {
        let text = "Sorry.\n--- Below this line is a copy of the message.\n\nReceived: x\n";
        assert_eq!(own_words(text), "Sorry.\n");
        assert_eq!(own_words("a\nReceived: from x\n"), "a\n");
    }

    #[test]
    fn reply_codes_after_said() {
        assert_eq!(
            reply_code_in("host mx said: 550 no", b'5').as_deref(),
            Some("550")
        );
        assert_eq!(reply_code_in("<<< 451 later", b'4').as_deref(), Some("451"));
        assert_eq!(reply_code_in("size: 4500", b'4'), None);
    }
}
