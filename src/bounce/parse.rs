//! Reading one raw message into a [`Report`]: the MIME structure (with
//! `mail-parser`), the machine-readable parts (RFC 3464 delivery status,
//! RFC 5965 feedback report, the returned message), the RFC 3834
//! auto-reply marks, and the order in which they decide the verdict.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::legacy;
use super::{Report, Verdict};
use crate::error_kind::{ErrorKind, HasKind};

/// The longest diagnostic kept, in characters.
pub const DIAGNOSTIC_MAX_CHARS: usize = 500;

/// Bytes that are not a mail message at all. Anything with a header block
/// is read, and when it is not a report it is `Ok` with
/// [`Verdict::NotAReport`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("not a mail message: it is empty")]
    Empty,
    #[error("not a mail message: line 1 is no header field (`Name: value`), it starts {start:?}")]
    NoHeader {
        /// The first bytes of the input, lossily decoded, for the message.
        start: String,
    },
}

/// A message that cannot be read is a problem with the input handed in.
impl HasKind for ReadError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

/// Reads one raw message (as stored in a Maildir file, an mbox entry with
/// or without its `From ` line, or a pipe) into a [`Report`].
///
/// The order: a delivery status notification (`message/delivery-status`)
/// is read first, then an ARF feedback report (`message/feedback-report`),
/// then a legacy "delivery failed" text from a mailer daemon, then the
/// auto-reply marks; anything else is [`Verdict::NotAReport`]. Fails only
/// when the bytes have no header block ([`ReadError`]).
pub fn parse(raw: &[u8]) -> Result<Report, ReadError> {
    let raw = skip_mbox_from_line(raw);
    check_header_block(raw)?;
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| no_header(raw))?;
    Ok(read_message(&message))
}

/// An mbox entry starts with a `From sender date` line that is no header.
fn skip_mbox_from_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match memchr::memchr(b'\n', raw) {
            Some(end) => &raw[end + 1..],
            None => &[],
        }
    } else {
        raw
    }
}

/// The first line must be a header field: a name of printable ASCII
/// without `:`, then `:` (RFC 5322 section 2.2; blanks before the colon
/// are the obsolete syntax, still read).
fn check_header_block(raw: &[u8]) -> Result<(), ReadError> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ReadError::Empty);
    }
    let line_end = memchr::memchr(b'\n', raw).unwrap_or(raw.len());
    let line = &raw[..line_end];
    let name_len = line
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')
        .unwrap_or(line.len());
    let rest = &line[name_len..];
    let colon = rest.iter().position(|&b| b != b' ' && b != b'\t');
    if name_len > 0 && colon.is_some_and(|i| rest[i] == b':') {
        Ok(())
    } else {
        Err(no_header(raw))
    }
}

fn no_header(raw: &[u8]) -> ReadError {
    let start = String::from_utf8_lossy(&raw[..raw.len().min(40)]).into_owned();
    ReadError::NoHeader { start }
}

fn read_message(message: &Message<'_>) -> Report {
    let mut report = Report {
        verdict: Verdict::NotAReport,
        id: message.message_id().and_then(clean_id),
        delivered_to: delivered_to(message),
        recipient: None,
        status: None,
        diagnostic: None,
        original_message_id: returned_message_id(message),
        legacy: false,
    };
    let parts = Parts::of(message);
    if let Some(status) = parts.delivery_status {
        if let Some(recipient) = worst_recipient(status) {
            report.verdict = recipient.verdict;
            report.recipient = recipient.recipient;
            report.status = recipient.status;
            report.diagnostic = recipient.diagnostic;
            return report;
        }
    }
    if let Some(feedback) = parts.feedback {
        read_feedback(feedback, message, &mut report);
        return report;
    }
    if let Some(found) = legacy::read(message) {
        report.verdict = found.verdict;
        report.recipient = found.recipient;
        report.status = found.status;
        report.diagnostic = found.diagnostic;
        report.legacy = true;
        if report.original_message_id.is_none() {
            report.original_message_id = found.original_message_id;
        }
        return report;
    }
    if is_auto_reply(message) {
        report.verdict = Verdict::AutoReply;
    }
    report
}

/// The machine-readable parts of a report, found anywhere in its MIME tree
/// (but not inside the returned message).
struct Parts<'a> {
    delivery_status: Option<&'a [u8]>,
    feedback: Option<&'a [u8]>,
}

impl<'a> Parts<'a> {
    fn of(message: &'a Message<'_>) -> Parts<'a> {
        let mut parts = Parts {
            delivery_status: None,
            feedback: None,
        };
        for part in &message.parts {
            let Some(content_type) = part.content_type() else {
                continue;
            };
            if !content_type.ctype().eq_ignore_ascii_case("message") {
                continue;
            }
            let subtype = content_type.subtype().unwrap_or("");
            if (subtype.eq_ignore_ascii_case("delivery-status")
                || subtype.eq_ignore_ascii_case("global-delivery-status"))
                && parts.delivery_status.is_none()
            {
                parts.delivery_status = Some(part.contents());
            } else if subtype.eq_ignore_ascii_case("feedback-report") && parts.feedback.is_none() {
                parts.feedback = Some(part.contents());
            }
        }
        parts
    }
}

/// One header-style field of a report part: its name as written and its
/// unfolded value.
pub(crate) struct Field<'a> {
    pub name: &'a str,
    pub value: String,
}

/// The groups of fields in a `message/delivery-status` or
/// `message/feedback-report` body: blocks of `Name: value` lines (folded
/// lines continued), separated by blank lines.
pub(crate) fn field_groups(body: &str) -> Vec<Vec<Field<'_>>> {
    let mut groups: Vec<Vec<Field<'_>>> = Vec::new();
    let mut current: Vec<Field<'_>> = Vec::new();
    for line in body.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.is_empty() {
                groups.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = current.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(' ') {
                current.push(Field {
                    name,
                    value: value.trim().to_string(),
                });
            }
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// What one recipient's fields say.
struct Recipient {
    verdict: Verdict,
    recipient: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

/// How bad a verdict is, for choosing among several recipients.
fn severity(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Hard => 3,
        Verdict::Soft => 2,
        _ => 1,
    }
}

/// The most severe recipient of a delivery status body (the first among
/// equals), or `None` when the body names no recipient at all.
fn worst_recipient(body: &[u8]) -> Option<Recipient> {
    let body = String::from_utf8_lossy(body);
    let mut worst: Option<Recipient> = None;
    for fields in recipient_blocks(&body) {
        let Some(found) = read_recipient(&fields) else {
            continue;
        };
        if worst
            .as_ref()
            .is_none_or(|w| severity(found.verdict) > severity(w.verdict))
        {
            worst = Some(found);
        }
    }
    worst
}

/// The per-recipient blocks: each group that holds recipient fields,
/// split again where a second `Final-Recipient` starts without the blank
/// line between (a common slip).
fn recipient_blocks(body: &str) -> Vec<Vec<Field<'_>>> {
    let mut blocks = Vec::new();
    for group in field_groups(body) {
        let mut block: Vec<Field<'_>> = Vec::new();
        for field in group {
            let starts_recipient = field.name.eq_ignore_ascii_case("final-recipient")
                || field.name.eq_ignore_ascii_case("original-recipient");
            if starts_recipient
                && block
                    .iter()
                    .any(|f| f.name.eq_ignore_ascii_case(field.name))
            {
                blocks.push(std::mem::take(&mut block));
            }
            block.push(field);
        }
        blocks.push(block);
    }
    blocks.retain(|block| {
        block.iter().any(|f| {
            ["final-recipient", "original-recipient", "action", "status"]
                .iter()
                .any(|name| f.name.eq_ignore_ascii_case(name))
        })
    });
    blocks
}

fn field<'f>(fields: &'f [Field<'_>], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| f.value.as_str())
        .filter(|v| !v.is_empty())
}

/// One recipient's verdict: `Action` and `Status` (or the codes in
/// `Diagnostic-Code` when `Status` is missing or not a status code).
fn read_recipient(fields: &[Field<'_>]) -> Option<Recipient> {
    let recipient = field(fields, "final-recipient")
        .or_else(|| field(fields, "original-recipient"))
        .and_then(address_of_typed);
    let action = field(fields, "action").map(|a| a.to_ascii_lowercase());
    let diagnostic = field(fields, "diagnostic-code").map(|d| diagnostic_text(strip_type(d)));
    let status = field(fields, "status")
        .and_then(|s| find_status(s, b"245"))
        .or_else(|| {
            diagnostic
                .as_deref()
                .and_then(|d| find_status(d, b"245").or_else(|| find_reply_code(d)))
        });
    let class = status.as_deref().and_then(|s| s.bytes().next());
    let action_word = action
        .as_deref()
        .map(|a| a.split_whitespace().next().unwrap_or(""));
    let verdict = match (action_word, class) {
        (Some("delivered" | "relayed" | "expanded"), _) => Verdict::NotAReport,
        (Some("delayed"), _) => Verdict::Soft,
        (_, Some(b'5')) => Verdict::Hard,
        (_, Some(b'4')) => Verdict::Soft,
        (_, Some(b'2')) => Verdict::NotAReport,
        (Some("failed"), _) => Verdict::Hard,
        _ if recipient.is_some() => Verdict::Hard,
        _ => return None,
    };
    Some(Recipient {
        verdict,
        recipient,
        status,
        diagnostic,
    })
}

/// The ARF fields: a complaint unless the type is `not-spam`.
fn read_feedback(body: &[u8], message: &Message<'_>, report: &mut Report) {
    let body = String::from_utf8_lossy(body);
    let groups = field_groups(&body);
    let fields: Vec<&Field<'_>> = groups.iter().flatten().collect();
    let get = |name: &str| {
        fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
            .filter(|v| !v.is_empty())
    };
    let feedback_type = get("feedback-type").map(|t| t.to_ascii_lowercase());
    report.verdict = match feedback_type.as_deref() {
        Some("not-spam") => Verdict::NotAReport,
        _ => Verdict::Complaint,
    };
    report.recipient = get("original-rcpt-to")
        .and_then(address_of_typed)
        .or_else(|| returned_to(message));
    report.diagnostic = feedback_type.map(|t| diagnostic_text(&t));
}

/// The `To` address of the returned message (or returned headers).
fn returned_to(message: &Message<'_>) -> Option<String> {
    let mut found = None;
    each_returned(message, |returned| {
        if found.is_none() {
            found = returned
                .to()
                .and_then(|to| to.first())
                .and_then(|a| a.address.as_deref())
                .and_then(address_in);
        }
    });
    found
}

/// The Message-ID of the returned message (or returned headers).
fn returned_message_id(message: &Message<'_>) -> Option<String> {
    let mut found = None;
    each_returned(message, |returned| {
        if found.is_none() {
            found = returned.message_id().and_then(clean_id);
        }
    });
    found
}

/// Calls `f` with each returned message: `message/rfc822` (or
/// `message/global`) parts, and `text/rfc822-headers` (or
/// `message/global-headers`) parts read as a header block.
fn each_returned(message: &Message<'_>, mut f: impl FnMut(&Message<'_>)) {
    for part in message.parts.iter().skip(1) {
        match &part.body {
            PartType::Message(returned) => f(returned),
            _ => {
                let Some(content_type) = part.content_type() else {
                    continue;
                };
                let subtype = content_type.subtype().unwrap_or("");
                let is_headers = subtype.eq_ignore_ascii_case("rfc822-headers")
                    || subtype.eq_ignore_ascii_case("global-headers");
                if is_headers {
                    if let Some(headers) = MessageParser::default().parse_headers(part.contents()) {
                        f(&headers);
                    }
                }
            }
        }
    }
}

/// `Delivered-To`, `X-Original-To`, `Envelope-To`, `X-Envelope-To`, then
/// the `To` addresses, as plain addresses, each once.
fn delivered_to(message: &Message<'_>) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |address: String| {
        if !found.iter().any(|f| f.eq_ignore_ascii_case(&address)) {
            found.push(address);
        }
    };
    for name in [
        "delivered-to",
        "x-original-to",
        "envelope-to",
        "x-envelope-to",
    ] {
        for value in raw_headers(message, name) {
            for item in value.split(',') {
                if let Some(address) = address_in(item) {
                    add(address);
                }
            }
        }
    }
    if let Some(to) = message.to() {
        for addr in to.iter() {
            if let Some(address) = addr.address.as_deref().and_then(address_in) {
                add(address);
            }
        }
    }
    found
}

/// The raw (undecoded, unfolded as written) values of every top-level
/// header named `name`.
pub(crate) fn raw_headers<'m>(
    message: &'m Message<'_>,
    name: &'m str,
) -> impl Iterator<Item = &'m str> + 'm {
    let raw = message.raw_message();
    message
        .root_part()
        .headers
        .iter()
        .filter(move |h| h.name().eq_ignore_ascii_case(name))
        .filter_map(move |h| {
            let (start, end) = (h.offset_start() as usize, h.offset_end() as usize);
            raw.get(start..end)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .map(str::trim)
        })
}

/// True when the message carries an RFC 3834 auto-reply mark, or the
/// subject of a vacation or out-of-office notice.
fn is_auto_reply(message: &Message<'_>) -> bool {
    let marked = raw_headers(message, "auto-submitted").any(|value| {
        let word = value.split([';', ' ', '\t', '(']).next().unwrap_or("");
        !word.is_empty() && !word.eq_ignore_ascii_case("no")
    }) || raw_headers(message, "x-autoreply").next().is_some()
        || raw_headers(message, "x-autorespond").next().is_some()
        || raw_headers(message, "precedence").any(|v| v.eq_ignore_ascii_case("auto_reply"));
    if marked {
        return true;
    }
    let subject = message.subject().unwrap_or("").to_ascii_lowercase();
    let vacation_subject = [
        "automatic reply",
        "auto-reply",
        "autoreply",
        "auto reply",
        "out of office",
        "out of the office",
        "vacation",
        "abwesenheit",
        "absence",
    ]
    .iter()
    .any(|s| subject.contains(s));
    vacation_subject
        && (raw_headers(message, "x-auto-response-suppress")
            .next()
            .is_some()
            || subject.starts_with("automatic reply:")
            || subject.starts_with("out of office"))
}

/// A Message-ID without its `<>` and blanks; `None` when nothing is left.
pub(crate) fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

/// The value of a typed field (`rfc822; a@b.example`) without its type.
fn strip_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.trim().contains(char::is_whitespace) && kind.len() <= 24 => {
            rest.trim()
        }
        _ => value.trim(),
    }
}

/// The address in a recipient field, without its type and `<>`.
fn address_of_typed(value: &str) -> Option<String> {
    address_in(strip_type(value))
}

/// The plain address in a header item: what is inside `<>` when there is
/// one, else the trimmed text; `None` when no `@` address is there.
pub(crate) fn address_in(text: &str) -> Option<String> {
    let text = text.trim();
    let inner = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    };
    let inner = inner.trim().trim_matches(|c| c == '"' || c == '\'');
    let at = inner.rfind('@')?;
    let ok = at > 0 && at + 1 < inner.len() && !inner.contains(char::is_whitespace);
    ok.then(|| inner.to_string())
}

/// Text on one line (runs of blanks and line breaks become one space), at
/// most [`DIAGNOSTIC_MAX_CHARS`] characters.
pub(crate) fn diagnostic_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(DIAGNOSTIC_MAX_CHARS * 2));
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > 0 {
            if chars + 1 >= DIAGNOSTIC_MAX_CHARS {
                break;
            }
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars == DIAGNOSTIC_MAX_CHARS {
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

/// The first enhanced status code (RFC 3463, `c.sss.ddd`) in `text` whose
/// class is one of `classes`, not part of a longer dotted number.
pub(crate) fn find_status(text: &str, classes: &[u8]) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let boundary_before =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.');
        if classes.contains(&c) && boundary_before && bytes.get(i + 1) == Some(&b'.') {
            if let Some(len) = status_tail(&bytes[i + 2..]) {
                let end = i + 2 + len;
                let dotted_on = bytes.get(end) == Some(&b'.')
                    && bytes.get(end + 1).is_some_and(u8::is_ascii_digit);
                let glued = bytes.get(end).is_some_and(|b| b.is_ascii_alphanumeric());
                if !dotted_on && !glued {
                    return Some(text[i..end].to_string());
                }
            }
        }
        i += 1;
    }
    None
}

/// The length of `sss.ddd` (1 to 3 digits each) at the start of `bytes`.
fn status_tail(bytes: &[u8]) -> Option<usize> {
    let first = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=3).contains(&first) || bytes.get(first) != Some(&b'.') {
        return None;
    }
    let second = bytes[first + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    (1..=3).contains(&second).then_some(first + 1 + second)
}

/// A 4xx or 5xx SMTP reply code at the start of `text` (after blanks), as
/// in `550 no such user` or `550-...`.
pub(crate) fn find_reply_code(text: &str) -> Option<String> {
    let text = text.trim_start();
    let bytes = text.as_bytes();
    let is_code = bytes.len() >= 3
        && matches!(bytes[0], b'4' | b'5')
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit()
        && bytes
            .get(3)
            .is_none_or(|b| matches!(b, b' ' | b'-' | b'\t'));
    is_code.then(|| text[..3].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_found_alone_not_inside_addresses_or_versions() {
        assert_eq!(
            find_status("smtp; 550 5.1.1 <a@b> unknown", b"45").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(find_status("host 10.5.1.1 said", b"45"), None);
        assert_eq!(find_status("version 4.2.1.7", b"45"), None);
        assert_eq!(find_status("(4.4.7)", b"45").as_deref(), Some("4.4.7"));
        assert_eq!(find_status("ends 5.7.1.", b"45").as_deref(), Some("5.7.1"));
        assert_eq!(find_status("2.0.0 ok", b"45"), None);
    }

    #[test]
    fn reply_codes_are_read_only_at_the_start() {
        assert_eq!(find_reply_code(" 550 no such user").as_deref(), Some("550"));
        assert_eq!(find_reply_code("550-5.1.1 x").as_deref(), Some("550"));
        assert_eq!(find_reply_code("5500 bytes"), None);
        assert_eq!(find_reply_code("250 ok"), None);
    }

    #[test]
    fn diagnostics_are_one_line_and_cut_at_the_limit() {
        assert_eq!(
            diagnostic_text("  550 5.1.1\r\n   user   unknown "),
            "550 5.1.1 user unknown"
        );
        let long = "é".repeat(600);
        assert_eq!(diagnostic_text(&long).chars().count(), DIAGNOSTIC_MAX_CHARS);
        let words = "abcd ".repeat(200);
        let cut = diagnostic_text(&words);
        assert_eq!(cut.chars().count(), 499, "no blank kept at the end");
        assert!(cut.ends_with("abcd"));
    }

    #[test]
    fn addresses_lose_their_type_and_brackets() {
        assert_eq!(
            address_of_typed("rfc822; <a@b.example>").as_deref(),
            Some("a@b.example")
        );
        assert_eq!(
            address_of_typed("RFC822;a@b.example").as_deref(),
            Some("a@b.example")
        );
        assert_eq!(
            address_in("Jo <j@x.example>").as_deref(),
            Some("j@x.example")
        );
        assert_eq!(address_in("no address here"), None);
        assert_eq!(clean_id(" <abc@d> ").as_deref(), Some("abc@d"));
        assert_eq!(clean_id("<>"), None);
    }

    #[test]
    fn bytes_without_a_header_block_are_no_message() {
        assert_eq!(parse(b""), Err(ReadError::Empty));
        assert_eq!(parse(b" \r\n\n"), Err(ReadError::Empty));
        assert!(matches!(
            parse(b"\x00\x01\xff garbage\n"),
            Err(ReadError::NoHeader { .. })
        ));
        assert!(matches!(
            parse(b"\nSubject: x\n\nbody"),
            Err(ReadError::NoHeader { .. })
        ));
        let error = parse(b"hello world\n").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Input);
        assert!(error.to_string().contains("\"hello world\\n\""), "{error}");
        assert!(parse(b"Subject: hi\n\nhello").is_ok());
        assert!(parse(b"From a@b Sat Jan  1 00:00:00 2000\nSubject: hi\n\nhello").is_ok());
    }
}
