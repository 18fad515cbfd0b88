//! Rendering one issue for many readers, fast and byte for byte the same
//! as [`super::render`] for each of them.
//!
//! Running the templates is cheap; inlining the CSS, tidying the text
//! part and quoted-printable encoding are not. So a [`Personalizer`]
//! renders the issue once per recipient *shape* (which of the name and
//! fields are empty, and the field names) with placeholder tokens where
//! the values go, and keeps both what the templates wrote and the
//! finished parts (CSS inlined, text tidied, both encoded) as literal
//! text with holes.
//!
//! Then, for every reader, the templates run with the reader's own
//! values, and their output is compared with the shape's template output
//! with those values in the holes (escaped as the templates escape
//! them). Only when the two are the same, byte for byte, is the email
//! filled in from the shape's finished parts; otherwise that reader's own
//! output is finished in full. So whatever a template does with a value
//! (compares it, branches or loops on it, filters it) is decided for each
//! reader by the reader's own render, never by a sample of readers.
//!
//! Filling in the finished parts is right when the steps after the
//! templates treat a value as they treat its token. A shape is rendered
//! in full for every reader unless each token lands where that holds:
//! - in the templates' HTML: in text (not in a comment, a `<style>`,
//!   `<script>` or other raw-text element, a CDATA section, nor right
//!   after a `&` and letters that could make it part of a character
//!   reference), or in a quoted attribute value that CSS inlining cannot
//!   see: not `class`, `id`, `style`, `lang`, `dir`, `rel`,
//!   `data-css-inline`, `xmlns` or any attribute a selector of the
//!   stylesheet names, not on `<link>` or `<base>`, and none at all when
//!   the page links a stylesheet or the stylesheet uses escapes;
//! - in the inlined HTML: in a text node or a double-quoted attribute
//!   other than `style`, where the value is escaped as the inliner's
//!   serializer escapes it (`&`, `<`, `>` and U+00A0 in text; `&`, `"`
//!   and U+00A0 in attributes).
//!
//! The subject is folded from the reader's own template output. The text
//! part is tidied once, with the tokens in it: a value that can be filled
//! in has no line break, no control character and no outer whitespace,
//! so tidying treats it as its token. Both parts are also kept
//! quoted-printable encoded, so a reader's message encodes only the lines
//! their values sit on.
//!
//! A reader whose values hold control characters or start or end with
//! whitespace (which the HTML parser or the text tidying could treat
//! differently from a token) is rendered in full. Emptiness is part of
//! the shape, so `{% if recipient.name %}` is rendered once per answer.
//!
//! When the templates provably only print the values (see
//! [`print_only`]), a template's output for a reader *is* the shape's
//! output with the reader's values in the holes, so the templates do not
//! run per reader: only the subject does. The holes are then checked
//! once per shape against a second render with other tokens, so text
//! that merely looks like a token cannot be taken for a hole.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use super::{
    assemble, finish, finish_subject, finish_text, inline_css, qp, Articles, Draft, EmailAddress,
    Recipient, RenderError, RenderedEmail, Renderer, Templates,
};
use crate::content::Site;
use crate::text::single_line;

mod print_only;

/// How a value is written where it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// As is (subject, text part).
    Raw,
    /// As an HTML template's autoescaping writes it (minijinja's
    /// [`minijinja::HtmlEscape`]).
    Template,
    /// An HTML text node, as the CSS inliner serializes it: `&`, `<`,
    /// `>`, U+00A0.
    Text,
    /// A double-quoted HTML attribute value, likewise: `&`, `"`, U+00A0.
    Attr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Slot(usize, Escape),
}

/// Text with holes for a reader's values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holes(Vec<Seg>);

impl Holes {
    fn fill(&self, values: &[String]) -> String {
        let len: usize = self
            .0
            .iter()
            .map(|s| match s {
                Seg::Lit(l) => l.len(),
                Seg::Slot(i, _) => values[*i].len() + 16,
            })
            .sum();
        let mut out = String::with_capacity(len);
        for seg in &self.0 {
            match seg {
                Seg::Lit(l) => out.push_str(l),
                Seg::Slot(i, escape) => write_escaped(&mut out, &values[*i], *escape),
            }
        }
        out
    }

    /// Whether `text` is exactly [`Holes::fill`] of `values` (`scratch`
    /// holds an escaped value at a time).
    fn matches(&self, text: &str, values: &[String], scratch: &mut String) -> bool {
        let mut rest = text;
        for seg in &self.0 {
            let piece = match seg {
                Seg::Lit(l) => l.as_str(),
                Seg::Slot(i, Escape::Raw) => values[*i].as_str(),
                Seg::Slot(i, escape) => {
                    scratch.clear();
                    write_escaped(scratch, &values[*i], *escape);
                    scratch.as_str()
                }
            };
            match rest.strip_prefix(piece) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

/// A part's holes (HTML or text), quoted-printable encoded as far as the
/// values allow: every run of whole lines between two values is encoded
/// once. What is left per reader is the lines a value sits on, encoded
/// from their start, so the result is byte for byte [`qp::encode`] of the
/// filled part (the encoder starts afresh after every line break).
#[derive(Debug, Clone, PartialEq, Eq)]
struct EncodedHoles(Vec<QpSeg>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum QpSeg {
    /// Whole lines, encoded; always after a `Raw` ending with a line break.
    Encoded(Vec<u8>),
    /// Text on a line that holds a value, encoded with it.
    Raw(String),
    Slot(usize, Escape),
}

impl EncodedHoles {
    fn new(holes: &Holes) -> EncodedHoles {
        let mut segs = Vec::new();
        for seg in &holes.0 {
            match seg {
                Seg::Slot(slot, escape) => segs.push(QpSeg::Slot(*slot, *escape)),
                Seg::Lit(lit) => match (lit.find('\n'), lit.rfind('\n')) {
                    (Some(first), Some(last)) => {
                        segs.push(QpSeg::Raw(lit[..=first].to_owned()));
                        if last > first {
                            segs.push(QpSeg::Encoded(qp::encode(&lit[first + 1..=last])));
                        }
                        if last + 1 < lit.len() {
                            segs.push(QpSeg::Raw(lit[last + 1..].to_owned()));
                        }
                    }
                    _ => segs.push(QpSeg::Raw(lit.clone())),
                },
            }
        }
        EncodedHoles(segs)
    }

    fn fill(&self, values: &[String]) -> Vec<u8> {
        let len: usize = self
            .0
            .iter()
            .map(|s| match s {
                QpSeg::Encoded(e) => e.len(),
                QpSeg::Raw(r) => r.len() + r.len() / 8,
                QpSeg::Slot(i, _) => 3 * values[*i].len() + 16,
            })
            .sum();
        let mut out = Vec::with_capacity(len);
        // Lines holding values, from a line start, not yet encoded.
        let mut lines = String::new();
        for seg in &self.0 {
            match seg {
                QpSeg::Raw(raw) => lines.push_str(raw),
                QpSeg::Slot(slot, escape) => write_escaped(&mut lines, &values[*slot], *escape),
                QpSeg::Encoded(encoded) => {
                    qp::encode_into(&lines, &mut out, false);
                    lines.clear();
                    out.extend_from_slice(encoded);
                }
            }
        }
        qp::encode_into(&lines, &mut out, false);
        out
    }
}

fn write_escaped(out: &mut String, value: &str, escape: Escape) {
    match escape {
        Escape::Raw => out.push_str(value),
        Escape::Template => {
            // Writing to a String cannot fail.
            let _ = write!(out, "{}", minijinja::HtmlEscape(value));
        }
        Escape::Text | Escape::Attr => {
            for c in value.chars() {
                match (c, escape) {
                    ('&', _) => out.push_str("&amp;"),
                    ('\u{a0}', _) => out.push_str("&nbsp;"),
                    ('<', Escape::Text) => out.push_str("&lt;"),
                    ('>', Escape::Text) => out.push_str("&gt;"),
                    ('"', Escape::Attr) => out.push_str("&quot;"),
                    _ => out.push(c),
                }
            }
        }
    }
}

/// Which of a reader's values are there: the name, and each field by name.
/// The address and the unsubscribe link always are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shape {
    name: bool,
    fields: Vec<(String, bool)>,
}

/// Slot numbers: the address, the unsubscribe link, the name, then the
/// fields in name order.
const EMAIL: usize = 0;
const UNSUBSCRIBE: usize = 1;
const NAME: usize = 2;
const FIELDS: usize = 3;

impl Shape {
    fn of(recipient: &Recipient) -> Shape {
        Shape {
            name: recipient
                .name
                .as_deref()
                .is_some_and(|n| !single_line(n).is_empty()),
            fields: recipient
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), !v.is_empty()))
                .collect(),
        }
    }
}

/// The values of one reader, by slot (empty where the shape has none).
fn values_of(recipient: &Recipient, unsubscribe_url: &str) -> Vec<String> {
    let mut values = Vec::with_capacity(FIELDS + recipient.fields.len());
    values.push(recipient.email.as_str().to_owned());
    values.push(unsubscribe_url.to_owned());
    values.push(
        recipient
            .name
            .as_deref()
            .map(single_line)
            .unwrap_or_default(),
    );
    values.extend(recipient.fields.values().cloned());
    values
}

/// Whether a value can stand in for a token: parsers and the text tidying
/// treat control characters and outer whitespace specially.
fn spliceable(value: &str) -> bool {
    !value.chars().any(char::is_control)
        && !value.starts_with(char::is_whitespace)
        && !value.ends_with(char::is_whitespace)
}

/// The placeholder tokens start so; the rest is the slot number and `jW`
/// (the address's adds a domain). Letters, digits, `@` and `.`: nothing
/// any escaping changes.
const TOKEN_PREFIX: &str = "pRsQ";

fn token(slot: usize) -> String {
    match slot {
        EMAIL => format!("{TOKEN_PREFIX}{slot}jW@xprsq.invalid"),
        _ => format!("{TOKEN_PREFIX}{slot}jW"),
    }
}

/// Other stand-ins, to check a shape's holes against (none holds a
/// [`TOKEN_PREFIX`]).
fn other_token(slot: usize) -> String {
    match slot {
        EMAIL => format!("zQxV{slot}kM@yqzv.invalid"),
        _ => format!("zQxV{slot}kM"),
    }
}

/// A reader of `shape` whose values are the tokens, and the token
/// unsubscribe link.
fn token_reader(shape: &Shape) -> Option<(Recipient, String)> {
    reader_of(shape, token)
}

/// A reader of `shape` whose values are `token` of their slots, and the
/// unsubscribe link likewise.
fn reader_of(shape: &Shape, token: fn(usize) -> String) -> Option<(Recipient, String)> {
    let email = EmailAddress::parse(&token(EMAIL)).ok()?;
    let fields = shape
        .fields
        .iter()
        .enumerate()
        .map(|(i, (k, present))| {
            let v = if *present {
                token(FIELDS + i)
            } else {
                String::new()
            };
            (k.clone(), v)
        })
        .collect();
    let recipient = Recipient {
        email,
        name: shape.name.then(|| token(NAME)),
        fields,
    };
    Some((recipient, token(UNSUBSCRIBE)))
}

/// `text` split at the tokens of slots below `slots`, every hole marked
/// `escape`, and the tokens' offsets in `text`.
fn holes(text: &str, slots: usize, escape: Escape) -> (Vec<Seg>, Vec<usize>) {
    let tokens: Vec<String> = (0..slots).map(token).collect();
    let mut segs = Vec::new();
    let mut at = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    while let Some(found) = text[i..].find(TOKEN_PREFIX) {
        let pos = i + found;
        let hit = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| text[pos..].starts_with(t.as_str()))
            .max_by_key(|(_, t)| t.len());
        match hit {
            Some((slot, token)) => {
                if lit_start < pos {
                    segs.push(Seg::Lit(text[lit_start..pos].to_owned()));
                }
                segs.push(Seg::Slot(slot, escape));
                at.push(pos);
                i = pos + token.len();
                lit_start = i;
            }
            None => i = pos + TOKEN_PREFIX.len(),
        }
    }
    if lit_start < text.len() {
        segs.push(Seg::Lit(text[lit_start..].to_owned()));
    }
    (segs, at)
}

/// Elements whose text the HTML parser does not decode and the serializer
/// does not escape.
const RAW_TEXT: [&str; 8] = [
    "style",
    "script",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "plaintext",
    "noscript",
];

/// Attributes whose value the CSS inliner reads (selectors, its own
/// switches) or that decide how the page is parsed or styled.
const INLINER_ATTRIBUTES: [&str; 8] = [
    "class",
    "id",
    "style",
    "lang",
    "dir",
    "rel",
    "data-css-inline",
    "xmlns",
];

/// Whether every token at `positions` (ascending) of the templates' HTML
/// sits where the HTML parser and the CSS inliner treat any value as they
/// treat the token: in text, or in a quoted attribute value no selector
/// or inliner switch looks at (see the module docs). Byte-wise: every
/// byte that changes the state is ASCII.
fn template_positions_ok(html: &str, positions: &[usize]) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Text,
        /// `<!-- … -->`.
        Comment,
        /// `<![CDATA[ … ]]>`.
        Cdata,
        /// `<!…>`, `<?…>`, `</…>` not starting with a letter.
        Bogus,
        /// Inside a tag, outside attribute values.
        Tag,
        /// An attribute value; quote 0 when unquoted.
        Value {
            quote: u8,
        },
        /// The text of a raw-text element (`<style>`, `<script>`, …).
        RawText,
        /// The text of `<title>` or `<textarea>`: decoded, not parsed.
        Rcdata,
    }
    let bytes = html.as_bytes();
    let mut next = positions.iter().copied().peekable();
    let mut state = State::Text;
    let mut element = String::new();
    let mut closing = false;
    let mut attr = String::new();
    // (element, attribute) of each token in an attribute value.
    let mut in_attributes: Vec<(String, String)> = Vec::new();
    let mut sheets = String::new();
    let mut text_start = 0;
    let mut links = false;
    let mut i = 0;
    while i < bytes.len() {
        while let Some(&at) = next.peek() {
            if at > i {
                break;
            }
            next.next();
            // A token the scan stepped over is inside a tag name or markup.
            if at < i {
                return false;
            }
            match state {
                State::Text
                | State::Rcdata
                | State::Value {
                    quote: b'"' | b'\'',
                } if !after_reference_start(bytes, i) => {
                    if let State::Value { .. } = state {
                        in_attributes.push((element.clone(), attr.clone()));
                    }
                }
                _ => return false,
            }
        }
        let b = bytes[i];
        let rest = &bytes[i..];
        match state {
            State::Text if b == b'<' => {
                let after = &rest[1..];
                if after.starts_with(b"!--") {
                    state = State::Comment;
                    i += 4;
                    continue;
                }
                if after.starts_with(b"![CDATA[") {
                    state = State::Cdata;
                    i += 9;
                    continue;
                }
                closing = after.first() == Some(&b'/');
                let name_start = 1 + usize::from(closing);
                match rest.get(name_start) {
                    Some(c) if c.is_ascii_alphabetic() => {
                        let name: String = rest[name_start..]
                            .iter()
                            .take_while(|c| !c.is_ascii_whitespace() && **c != b'/' && **c != b'>')
                            .map(|c| char::from(c.to_ascii_lowercase()))
                            .collect();
                        i += name_start + name.len();
                        links |= !closing && name == "link";
                        element = name;
                        attr.clear();
                        state = State::Tag;
                        continue;
                    }
                    _ if closing || matches!(after.first(), Some(b'!' | b'?')) => {
                        state = State::Bogus;
                        i += 2;
                        continue;
                    }
                    _ => {}
                }
            }
            State::Text => {}
            State::Comment => {
                if rest.starts_with(b"-->") {
                    state = State::Text;
                    i += 3;
                    continue;
                }
            }
            State::Cdata => {
                if rest.starts_with(b"]]>") {
                    state = State::Text;
                    i += 3;
                    continue;
                }
            }
            State::Bogus => {
                if b == b'>' {
                    state = State::Text;
                }
            }
            State::Tag => match b {
                b'>' => {
                    state = if closing {
                        State::Text
                    } else if RAW_TEXT.contains(&element.as_str()) {
                        State::RawText
                    } else if element == "title" || element == "textarea" {
                        State::Rcdata
                    } else {
                        State::Text
                    };
                    text_start = i + 1;
                }
                b'=' => {
                    let mut j = i + 1;
                    while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
                        j += 1;
                    }
                    match bytes.get(j) {
                        Some(&quote @ (b'"' | b'\'')) => {
                            state = State::Value { quote };
                            i = j + 1;
                        }
                        _ => {
                            state = State::Value { quote: 0 };
                            i = j;
                        }
                    }
                    continue;
                }
                b'/' => attr.clear(),
                _ if b.is_ascii_whitespace() => attr.clear(),
                _ => attr.push(char::from(b.to_ascii_lowercase())),
            },
            State::Value { quote: 0 } => {
                if b.is_ascii_whitespace() || b == b'>' {
                    attr.clear();
                    state = State::Tag;
                    continue;
                }
            }
            State::Value { quote } => {
                if b == quote {
                    attr.clear();
                    state = State::Tag;
                }
            }
            State::RawText | State::Rcdata => {
                let ends = rest.starts_with(b"</")
                    && rest[2..]
                        .get(..element.len())
                        .is_some_and(|n| n.eq_ignore_ascii_case(element.as_bytes()))
                    && rest
                        .get(2 + element.len())
                        .is_none_or(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>');
                if ends {
                    if element == "style" {
                        sheets.push_str(&html[text_start..i]);
                        sheets.push('\n');
                    }
                    state = State::Text;
                    continue;
                }
            }
        }
        i += 1;
    }
    if next.peek().is_some() {
        return false;
    }
    if in_attributes.is_empty() {
        return true;
    }
    if links {
        return false;
    }
    let Some(selected) = selector_attributes(&sheets) else {
        return false;
    };
    in_attributes.iter().all(|(element, attr)| {
        !attr.is_empty()
            && element != "link"
            && element != "base"
            && !INLINER_ATTRIBUTES.contains(&attr.as_str())
            && !attr.starts_with("xmlns:")
            && !attr.starts_with("xml:")
            && !selected.contains(attr)
    })
}

/// Whether the text before offset `at` ends with `&` and letters, digits
/// or `#`: a value there could complete a character reference.
fn after_reference_start(bytes: &[u8], at: usize) -> bool {
    let mut j = at;
    while j > 0 && (bytes[j - 1].is_ascii_alphanumeric() || bytes[j - 1] == b'#') {
        j -= 1;
    }
    j > 0 && bytes[j - 1] == b'&'
}

/// The attribute names the selectors of `css` test (`[name…]`),
/// lowercased; `None` when that cannot be told (CSS escapes, a wildcard).
fn selector_attributes(css: &str) -> Option<BTreeSet<String>> {
    if css.contains('\\') {
        return None;
    }
    let mut names = BTreeSet::new();
    for (at, _) in css.match_indices('[') {
        let name: String = css[at + 1..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '|' | '*'))
            .collect();
        let name = name.rsplit('|').next().unwrap_or_default().to_lowercase();
        if name.is_empty() || name.contains('*') {
            return None;
        }
        names.insert(name);
    }
    Some(names)
}

/// The HTML context at each of `positions` (ascending) of serialized
/// `html`, as an escape; `None` when one is somewhere a value cannot be
/// spliced.
fn html_escapes(html: &str, positions: &[usize]) -> Option<Vec<Escape>> {
    // Byte-wise: every byte that changes the state is ASCII.
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Text,
        Comment,
        /// Inside a tag, outside values; `raw` when it opens an element
        /// whose text is not escaped.
        Tag {
            raw: bool,
        },
        Value {
            quote: u8,
            style: bool,
            raw: bool,
        },
        Raw,
    }
    let bytes = html.as_bytes();
    let mut out = Vec::with_capacity(positions.len());
    let mut next = positions.iter().peekable();
    let mut state = State::Text;
    let mut attr = String::new();
    let mut raw_name = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if next.peek() == Some(&&i) {
            next.next();
            out.push(match state {
                State::Text => Escape::Text,
                State::Value {
                    quote: b'"',
                    style: false,
                    ..
                } => Escape::Attr,
                _ => return None,
            });
        }
        let b = bytes[i];
        match state {
            State::Text => {
                if bytes[i..].starts_with(b"<!--") {
                    state = State::Comment;
                    i += 4;
                    continue;
                }
                if b == b'<' {
                    let rest = &bytes[i + 1..];
                    let closing = rest.starts_with(b"/");
                    let name: String = rest
                        .iter()
                        .skip(usize::from(closing))
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .map(|c| char::from(c.to_ascii_lowercase()))
                        .collect();
                    let raw = !closing && RAW_TEXT.contains(&name.as_str());
                    if raw {
                        raw_name = name;
                    }
                    attr.clear();
                    state = State::Tag { raw };
                }
            }
            State::Comment => {
                if bytes[i..].starts_with(b"-->") {
                    state = State::Text;
                    i += 3;
                    continue;
                }
            }
            State::Tag { raw } => match b {
                b'>' => state = if raw { State::Raw } else { State::Text },
                b'=' => {
                    let quote = bytes.get(i + 1).copied().unwrap_or(0);
                    if quote != b'"' && quote != b'\'' {
                        // An unquoted value: nothing of ours may be in it.
                        state = State::Value {
                            quote: b' ',
                            style: true,
                            raw,
                        };
                    } else {
                        state = State::Value {
                            quote,
                            style: attr.eq_ignore_ascii_case("style"),
                            raw,
                        };
                        i += 1;
                    }
                }
                b' ' | b'\t' | b'\n' | b'\r' | b'/' => attr.clear(),
                _ => attr.push(b as char),
            },
            State::Value { quote, raw, .. } => {
                let end = if quote == b' ' {
                    b.is_ascii_whitespace() || b == b'>'
                } else {
                    b == quote
                };
                if end {
                    attr.clear();
                    state = State::Tag { raw };
                    if quote == b' ' {
                        continue;
                    }
                }
            }
            State::Raw => {
                let rest = &bytes[i..];
                if rest.starts_with(b"</")
                    && rest[2..]
                        .get(..raw_name.len())
                        .is_some_and(|n| n.eq_ignore_ascii_case(raw_name.as_bytes()))
                {
                    state = State::Text;
                    continue;
                }
            }
        }
        i += 1;
    }
    (out.len() == positions.len()).then_some(out)
}

/// One shape's output with holes.
#[derive(Debug)]
struct Prepared {
    /// What the HTML template writes, holes escaped as it escapes them.
    template_html: Holes,
    /// What the text template writes.
    template_text: Holes,
    /// The HTML part, CSS inlined.
    html: Holes,
    /// `html`, quoted-printable encoded once where it can be.
    html_encoded: EncodedHoles,
    /// The text part, already tidied (see [`finish_text`]): tidying
    /// treats a value as it treats its token, since a spliceable value
    /// has no line break and no outer whitespace.
    text: Holes,
    /// `text`, quoted-printable encoded once where it can be.
    text_encoded: EncodedHoles,
    /// The templates only print values and the holes held for a second
    /// set of values: a reader's output need not be rendered to compare.
    unrendered: bool,
}

#[derive(Debug)]
enum Plan {
    Splice(Prepared),
    /// Render every reader of this shape in full.
    Full,
}

/// How many emails each way, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Filled in from a shape's shared rendering.
    pub spliced: u64,
    /// Of those, filled in without running the HTML and text templates
    /// for the reader (they only print values; see [`print_only`]).
    pub unrendered: u64,
    /// Rendered in full (a shape that needs it, a reader's values, or a
    /// reader the templates treat differently).
    pub full: u64,
    /// Distinct recipient shapes seen.
    pub shapes: usize,
}

/// Renders one draft for many recipients; see the module docs.
pub struct Personalizer<'a> {
    draft: &'a Draft<'a>,
    articles: Articles,
    renderer: Renderer<'a>,
    plans: HashMap<Shape, Plan>,
    /// The templates only print reader values (see [`print_only`]).
    print_only: bool,
    stats: Stats,
    /// An escaped value, while comparing.
    scratch: String,
}

impl<'a> Personalizer<'a> {
    /// Prepares the draft's articles (HTML, plain text) once.
    pub fn new(
        site: &'a Site,
        templates: &'a Templates,
        draft: &'a Draft<'a>,
    ) -> Result<Personalizer<'a>, RenderError> {
        let articles = Articles::new(site, draft)?;
        let renderer = Renderer::new(site, templates, draft, &articles);
        let source = |name: &str| templates.source(name);
        let print_only = print_only::print_only(
            &source,
            &[(renderer.html, ".html"), (renderer.text, ".txt")],
        );
        Ok(Personalizer {
            draft,
            renderer,
            articles,
            plans: HashMap::new(),
            print_only,
            stats: Stats::default(),
            scratch: String::new(),
        })
    }

    pub fn stats(&self) -> Stats {
        Stats {
            shapes: self.plans.len(),
            ..self.stats
        }
    }

    /// The email for `recipient`: the same as
    /// `render(site, templates, draft, recipient, unsubscribe_url)`.
    pub fn render(
        &mut self,
        recipient: &Recipient,
        unsubscribe_url: &str,
    ) -> Result<RenderedEmail, RenderError> {
        let values = values_of(recipient, unsubscribe_url);
        if !values.iter().all(|v| v.is_empty() || spliceable(v)) {
            return self.full(recipient, unsubscribe_url);
        }
        let shape = Shape::of(recipient);
        if !self.plans.contains_key(&shape) {
            let plan = self.prepare(&shape);
            self.plans.insert(shape.clone(), plan);
        }
        let Some(Plan::Splice(prepared)) = self.plans.get(&shape) else {
            return self.full(recipient, unsubscribe_url);
        };
        if prepared.unrendered {
            // Only the subject runs per reader; the parts are the shape's.
            let Ok(raw_subject) = self.subject(recipient, unsubscribe_url) else {
                return self.full(recipient, unsubscribe_url);
            };
            self.stats.spliced += 1;
            self.stats.unrendered += 1;
            let subject = finish_subject(&raw_subject, self.draft);
            return Ok(self.splice(prepared, &values, subject, unsubscribe_url));
        }
        let raw = self.renderer.render_raw(recipient, unsubscribe_url)?;
        if prepared
            .template_html
            .matches(&raw.html, &values, &mut self.scratch)
            && prepared
                .template_text
                .matches(&raw.text, &values, &mut self.scratch)
        {
            self.stats.spliced += 1;
            let subject = finish_subject(&raw.subject, self.draft);
            return Ok(self.splice(prepared, &values, subject, unsubscribe_url));
        }
        // The templates wrote something else for this reader: finish what
        // they wrote.
        self.stats.full += 1;
        finish(self.draft, &self.articles, &raw, unsubscribe_url)
    }

    /// What the subject template writes for this reader.
    fn subject(&self, recipient: &Recipient, unsubscribe_url: &str) -> Result<String, String> {
        let r = &self.renderer;
        let ctx = super::context::for_recipient(&r.issue, recipient, unsubscribe_url, None);
        match &r.subject {
            Some(template) => Templates::render_compiled(r.subject_key, template, &ctx),
            None => r
                .templates
                .render_str(r.subject_key, r.subject_source, &ctx),
        }
    }

    fn full(
        &mut self,
        recipient: &Recipient,
        unsubscribe_url: &str,
    ) -> Result<RenderedEmail, RenderError> {
        self.stats.full += 1;
        let raw = self.renderer.render_raw(recipient, unsubscribe_url)?;
        finish(self.draft, &self.articles, &raw, unsubscribe_url)
    }

    fn splice(
        &self,
        prepared: &Prepared,
        values: &[String],
        subject: String,
        unsubscribe_url: &str,
    ) -> RenderedEmail {
        let mut email = assemble(
            self.draft,
            &self.articles,
            subject,
            prepared.html.fill(values),
            prepared.text.fill(values),
            unsubscribe_url,
        );
        email.html_encoded = Some(prepared.html_encoded.fill(values));
        email.text_encoded = Some(prepared.text_encoded.fill(values));
        email
    }

    /// Renders `shape` with tokens for its values and keeps the output
    /// with holes, or says it must be rendered in full.
    fn prepare(&self, shape: &Shape) -> Plan {
        let slots = FIELDS + shape.fields.len();
        let Some((recipient, unsubscribe)) = token_reader(shape) else {
            return Plan::Full;
        };
        let Ok(raw) = self.renderer.render_raw(&recipient, &unsubscribe) else {
            return Plan::Full;
        };
        let (template_html, at) = holes(&raw.html, slots, Escape::Template);
        if !template_positions_ok(&raw.html, &at) {
            return Plan::Full;
        }
        let Ok(inlined) = inline_css(&raw.html) else {
            return Plan::Full;
        };
        // The HTML holes take the escaping of where they landed.
        let (mut html, at) = holes(&inlined, slots, Escape::Raw);
        let Some(escapes) = html_escapes(&inlined, &at) else {
            return Plan::Full;
        };
        let mut escapes = escapes.into_iter();
        for seg in &mut html {
            if let Seg::Slot(_, escape) = seg {
                *escape = escapes.next().unwrap_or(Escape::Raw);
            }
        }
        let (template_text, _) = holes(&raw.text, slots, Escape::Raw);
        let (text, _) = holes(&finish_text(&raw.text), slots, Escape::Raw);
        let html = Holes(html);
        let text = Holes(text);
        let template_html = Holes(template_html);
        let template_text = Holes(template_text);
        let unrendered = self.print_only && self.holes_hold(shape, &template_html, &template_text);
        Plan::Splice(Prepared {
            template_html,
            template_text,
            unrendered,
            html_encoded: EncodedHoles::new(&html),
            html,
            text_encoded: EncodedHoles::new(&text),
            text,
        })
    }

    /// Whether the templates' output for a reader of `shape` with other
    /// stand-in values is the holes filled with them: no literal text was
    /// taken for a token.
    fn holes_hold(&self, shape: &Shape, html: &Holes, text: &Holes) -> bool {
        let Some((recipient, unsubscribe)) = reader_of(shape, other_token) else {
            return false;
        };
        let Ok(raw) = self.renderer.render_raw(&recipient, &unsubscribe) else {
            return false;
        };
        let values = values_of(&recipient, &unsubscribe);
        let mut scratch = String::new();
        html.matches(&raw.html, &values, &mut scratch)
            && text.matches(&raw.text, &values, &mut scratch)
    }
}

#[cfg(test)]
mod tests;
