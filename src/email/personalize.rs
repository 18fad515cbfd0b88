//! Rendering one issue for many readers, fast and byte for byte the same
//! as [`super::render`] for each of them.
//!
//! Templates, CSS inlining and the articles' HTML-to-text conversion cost
//! milliseconds; a reader's values (address, name, fields, unsubscribe
//! link) change a few words. So a [`Personalizer`] renders the issue once
//! per recipient *shape* (which of the name and fields are empty, and the
//! field names) with placeholder tokens where the values go, keeps the
//! output as literal text with holes, and fills each reader's values in,
//! escaped as the slow path would have written them: raw in the subject
//! (folded afterwards, as the slow path does) and in the text part (tidied
//! once, with the tokens in it: a value that can be spliced has no line
//! break and no outer whitespace, so tidying treats it as its token), and
//! in the HTML as the CSS inliner serializes a text node or a
//! double-quoted attribute value. Both parts are also kept
//! quoted-printable encoded, so a reader's message encodes only the lines
//! their values sit on.
//!
//! That is exact only while the templates merely *print* the values. A
//! shape falls back to rendering every reader in full when:
//! - two probe renders with differently built tokens (different length,
//!   case, first and last characters) do not give the same output with
//!   the same holes: a filter (`|upper`, `|length`, `|truncate`, `[0]`,
//!   `|wrap` of a concatenation…) or a test looked at the value;
//! - a token lands anywhere in the HTML but a text node or a
//!   double-quoted attribute other than `style` (a `<style>` block, a
//!   comment, a CSS declaration the inliner rewrites);
//! - a probe render fails (e.g. `|int` on a field);
//! - a reader rendered both ways differs. Readers are checked so while
//!   their name or a field holds a value not seen before (the first
//!   [`CHECKS_PER_SLOT`] distinct values of each): the guard for what
//!   probing cannot see, such as `{% if recipient.fields.plan == "pro" %}`.
//!
//! What this cannot catch: a template that treats a value specially only
//! for a value first seen after that budget (a literal comparison with a
//! rare name). Checked values are full renders, so their output is always
//! right.
//!
//! Emptiness is part of the shape, so `{% if recipient.name %}` is
//! rendered once per answer. A reader whose values hold control
//! characters or start or end with whitespace (which the HTML parser or
//! the text tidying could treat differently from a token) is rendered in
//! full on their own.

use std::collections::{HashMap, HashSet};

use super::{
    assemble, finish_subject, finish_text, inline_css, qp, render_raw, render_with, Articles,
    Draft, EmailAddress, Recipient, RenderError, RenderedEmail, Templates,
};
use crate::content::Site;
use crate::text::single_line;

/// How a value is written where it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// As is (subject, text part).
    Raw,
    /// An HTML text node: `&`, `<`, `>`, U+00A0.
    Text,
    /// A double-quoted HTML attribute value: `&`, `"`, U+00A0.
    Attr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Slot(usize, Escape),
}

/// Rendered output with holes for a reader's values.
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
    if escape == Escape::Raw {
        out.push_str(value);
        return;
    }
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

/// The two probe token sets. Tokens are letters and digits (nothing any
/// escaping changes), and the sets differ in length, case, and first and
/// last characters, so that any filter or test on a value tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    A,
    B,
}

impl Set {
    fn prefix(self) -> &'static str {
        match self {
            Set::A => "pRsQ",
            Set::B => "XkwM",
        }
    }

    fn token(self, slot: usize) -> String {
        let base = match self {
            Set::A => format!("pRsQ{slot}jW"),
            Set::B => format!("XkwM{slot}tVbnZ3rLqDyHcG8uFaEoPsImKwJxNhQe5WdTgRyUkiOlBvzc"),
        };
        match slot {
            EMAIL => format!("{base}@x{}.invalid", self.prefix().to_lowercase()),
            _ => base,
        }
    }

    /// A reader of `shape` whose values are this set's tokens.
    fn recipient(self, shape: &Shape) -> Option<(Recipient, String)> {
        let email = EmailAddress::parse(&self.token(EMAIL)).ok()?;
        let fields = shape
            .fields
            .iter()
            .enumerate()
            .map(|(i, (k, present))| {
                let v = if *present {
                    self.token(FIELDS + i)
                } else {
                    String::new()
                };
                (k.clone(), v)
            })
            .collect();
        let recipient = Recipient {
            email,
            name: shape.name.then(|| self.token(NAME)),
            fields,
        };
        Some((recipient, self.token(UNSUBSCRIBE)))
    }

    /// `text` split at this set's tokens (slots below `slots`).
    fn holes(self, text: &str, slots: usize) -> (Vec<Seg>, Vec<usize>) {
        let tokens: Vec<String> = (0..slots).map(|s| self.token(s)).collect();
        let prefix = self.prefix();
        let mut segs = Vec::new();
        let mut at = Vec::new();
        let mut lit_start = 0;
        let mut i = 0;
        while let Some(found) = text[i..].find(prefix) {
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
                    segs.push(Seg::Slot(slot, Escape::Raw));
                    at.push(pos);
                    i = pos + token.len();
                    lit_start = i;
                }
                None => i = pos + prefix.len(),
            }
        }
        if lit_start < text.len() {
            segs.push(Seg::Lit(text[lit_start..].to_owned()));
        }
        (segs, at)
    }
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
    const RAW: [&str; 8] = [
        "style",
        "script",
        "xmp",
        "iframe",
        "noembed",
        "noframes",
        "plaintext",
        "noscript",
    ];
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
                    let raw = !closing && RAW.contains(&name.as_str());
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

/// A probe render: subject, HTML and text split at the tokens (with the
/// tokens' offsets), and the inlined HTML.
type Probe = ([(Vec<Seg>, Vec<usize>); 3], String);

/// One shape's output with holes.
#[derive(Debug)]
struct Prepared {
    subject: Holes,
    html: Holes,
    /// `html`, quoted-printable encoded once where it can be.
    html_encoded: EncodedHoles,
    /// The text part, already tidied (see [`finish_text`]): tidying
    /// treats a value as it treats its token, since a spliceable value
    /// has no line break and no outer whitespace.
    text: Holes,
    /// `text`, quoted-printable encoded once where it can be.
    text_encoded: EncodedHoles,
    /// Per slot, the values already checked against a full render.
    checked: Vec<HashSet<String>>,
    /// Whether any reader of the shape was checked.
    checked_once: bool,
}

/// How many distinct values of one name or field are checked against a
/// full render before spliced output is trusted for the rest.
const CHECKS_PER_SLOT: usize = 8;

impl Prepared {
    /// Whether `values` bring a name or field value not yet checked (while
    /// the slot has budget left), noting them as checked.
    fn needs_check(&mut self, values: &[String]) -> bool {
        let mut new = false;
        for (slot, value) in values.iter().enumerate().skip(NAME) {
            let checked = &mut self.checked[slot];
            if !value.is_empty() && checked.len() < CHECKS_PER_SLOT && !checked.contains(value) {
                checked.insert(value.clone());
                new = true;
            }
        }
        let first = !self.checked_once;
        self.checked_once = true;
        new || first
    }
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
    /// Rendered in full (a shape that needs it, or a reader's values).
    pub full: u64,
    /// Distinct recipient shapes seen.
    pub shapes: usize,
}

/// Renders one draft for many recipients; see the module docs.
pub struct Personalizer<'a> {
    site: &'a Site,
    templates: &'a Templates,
    draft: &'a Draft<'a>,
    articles: Articles,
    plans: HashMap<Shape, Plan>,
    stats: Stats,
}

impl<'a> Personalizer<'a> {
    /// Prepares the draft's articles (HTML, plain text) once.
    pub fn new(
        site: &'a Site,
        templates: &'a Templates,
        draft: &'a Draft<'a>,
    ) -> Result<Personalizer<'a>, RenderError> {
        Ok(Personalizer {
            site,
            templates,
            draft,
            articles: Articles::new(site, draft)?,
            plans: HashMap::new(),
            stats: Stats::default(),
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
        let Some(Plan::Splice(prepared)) = self.plans.get_mut(&shape) else {
            return self.full(recipient, unsubscribe_url);
        };
        let check = prepared.needs_check(&values);
        let Some(Plan::Splice(prepared)) = self.plans.get(&shape) else {
            return self.full(recipient, unsubscribe_url);
        };
        let email = self.splice(prepared, &values, unsubscribe_url);
        if !check {
            self.stats.spliced += 1;
            return Ok(email);
        }
        let full = self.full(recipient, unsubscribe_url)?;
        if (&full.subject, &full.html, &full.text) != (&email.subject, &email.html, &email.text) {
            tracing::debug!(
                "the templates use a recipient value in a way placeholders cannot follow; rendering this kind of recipient in full"
            );
            self.plans.insert(shape, Plan::Full);
        }
        Ok(full)
    }

    fn full(
        &mut self,
        recipient: &Recipient,
        unsubscribe_url: &str,
    ) -> Result<RenderedEmail, RenderError> {
        self.stats.full += 1;
        render_with(
            self.site,
            self.templates,
            self.draft,
            &self.articles,
            recipient,
            unsubscribe_url,
        )
    }

    fn splice(
        &self,
        prepared: &Prepared,
        values: &[String],
        unsubscribe_url: &str,
    ) -> RenderedEmail {
        let mut email = assemble(
            self.draft,
            &self.articles,
            finish_subject(&prepared.subject.fill(values), self.draft),
            prepared.html.fill(values),
            prepared.text.fill(values),
            unsubscribe_url,
        );
        email.html_encoded = Some(prepared.html_encoded.fill(values));
        email.text_encoded = Some(prepared.text_encoded.fill(values));
        email
    }

    /// Renders `shape` with both token sets and keeps the output with
    /// holes, or says it must be rendered in full.
    fn prepare(&self, shape: &Shape) -> Plan {
        let slots = FIELDS + shape.fields.len();
        let probe = |set: Set| -> Option<Probe> {
            let (recipient, unsubscribe) = set.recipient(shape)?;
            let raw = render_raw(
                self.site,
                self.templates,
                self.draft,
                &self.articles,
                &recipient,
                &unsubscribe,
            )
            .ok()?;
            let html = inline_css(&raw.html).ok()?;
            let parts = [
                set.holes(&raw.subject, slots),
                set.holes(&html, slots),
                set.holes(&finish_text(&raw.text), slots),
            ];
            Some((parts, html))
        };
        let (Some((a, html_a)), Some((b, _))) = (probe(Set::A), probe(Set::B)) else {
            return Plan::Full;
        };
        let [subject, mut html, text] = a;
        // The HTML holes take the escaping of where they landed.
        let Some(escapes) = html_escapes(&html_a, &html.1) else {
            return Plan::Full;
        };
        let mut escapes = escapes.into_iter();
        for seg in &mut html.0 {
            if let Seg::Slot(_, escape) = seg {
                *escape = escapes.next().unwrap_or(Escape::Raw);
            }
        }
        let same = |x: &[Seg], y: &[Seg]| {
            x.len() == y.len()
                && x.iter().zip(y).all(|pair| match pair {
                    (Seg::Lit(p), Seg::Lit(q)) => p == q,
                    (Seg::Slot(p, _), Seg::Slot(q, _)) => p == q,
                    _ => false,
                })
        };
        if !(same(&subject.0, &b[0].0) && same(&html.0, &b[1].0) && same(&text.0, &b[2].0)) {
            return Plan::Full;
        }
        let html = Holes(html.0);
        let text = Holes(text.0);
        Plan::Splice(Prepared {
            subject: Holes(subject.0),
            html_encoded: EncodedHoles::new(&html),
            html,
            text_encoded: EncodedHoles::new(&text),
            text,
            checked: vec![HashSet::new(); slots],
            checked_once: false,
        })
    }
}

#[cfg(test)]
mod tests;
