//! Front matter: splitting a file into its YAML block and Markdown body, and
//! turning the YAML into typed fields. Every field is checked on its own, so
//! one file reports all of its problems at once, each with its line.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use serde_yaml::Value;

use super::date;
use super::slug::Slug;
use crate::text::single_line;

/// A file cut into its parts. Line numbers are 1-based, in the file.
#[derive(Debug)]
pub struct Split<'a> {
    pub yaml: &'a str,
    pub yaml_line: usize,
    pub body: &'a str,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub line: usize,
    pub key: Option<String>,
    pub message: String,
}

impl FieldError {
    fn new(line: usize, key: Option<&str>, message: impl Into<String>) -> Self {
        FieldError {
            line,
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Cuts a file into front matter and body. A UTF-8 byte order mark and
/// CRLF line endings are accepted.
pub fn split(text: &str) -> Result<Split<'_>, FieldError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if text.trim().is_empty() {
        return Err(FieldError::new(1, None, "the file is empty; an article starts with a `---` line, its front matter, and a closing `---` line"));
    }
    if first.trim_end() != "---" {
        return Err(FieldError::new(
            1,
            None,
            "missing front matter: the file must start with a line `---`, then YAML (title, publish_date, …), then a closing `---` line",
        ));
    }
    let yaml_start = first.len();
    let mut offset = yaml_start;
    for (index, line) in lines.enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            return Ok(Split {
                yaml: &text[yaml_start..offset],
                yaml_line: 2,
                body: &text[offset + line.len()..],
            });
        }
        offset += line.len();
        let _ = index;
    }
    Err(FieldError::new(
        1,
        None,
        "front matter is not closed: add a line `---` after the last front-matter key",
    ))
}

/// The fields of the article format, typed and checked.
#[derive(Debug, Clone)]
pub struct FrontMatter {
    pub title: String,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub read_time: Option<String>,
    pub publish_date: DateTime<FixedOffset>,
    pub created_date: Option<DateTime<FixedOffset>>,
    pub updated_date: Option<DateTime<FixedOffset>>,
    pub hero_image: Option<String>,
    pub cta: Option<String>,
    pub slug: Option<Slug>,
    pub id: Option<String>,
    pub tags: Vec<String>,
    pub draft: bool,
    /// Keys the format does not know: kept (templates may use them), never fatal.
    pub extra: BTreeMap<String, Value>,
}

/// Parses the YAML block. `yaml_line` is the file line the block starts on.
pub fn parse(yaml: &str, yaml_line: usize, tz: Tz) -> Result<FrontMatter, Vec<FieldError>> {
    let entries: Vec<(Value, Value)> = if yaml.trim().is_empty() {
        Vec::new()
    } else if let Some(entries) = simple_mapping(yaml) {
        entries
            .into_iter()
            .map(|(key, value)| (Value::String(key), value))
            .collect()
    } else {
        let value: Value = serde_yaml::from_str(yaml).map_err(|e| {
            let line = e.location().map(|l| l.line()).unwrap_or(1) + yaml_line - 1;
            vec![FieldError::new(
                line,
                None,
                format!(
                    "invalid YAML: {}",
                    strip_location(&e.to_string(), yaml_line - 1)
                ),
            )]
        })?;
        match value {
            Value::Mapping(m) => m.into_iter().collect(),
            Value::Null => Vec::new(),
            _ => {
                return Err(vec![FieldError::new(
                    yaml_line,
                    None,
                    "front matter must be `key: value` lines",
                )])
            }
        }
    };

    let mut fields = Fields {
        yaml,
        yaml_line,
        tz,
        errors: Vec::new(),
        seen: Vec::new(),
    };
    let mut extra = BTreeMap::new();
    let mut raw: BTreeMap<String, Value> = BTreeMap::new();
    for (key, value) in entries {
        match key {
            Value::String(k) => {
                raw.insert(k, value);
            }
            other => {
                let k = serde_yaml::to_string(&other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                fields.errors.push(FieldError::new(
                    fields.line_of(&k),
                    Some(&k),
                    "keys must be text",
                ));
            }
        }
    }

    let title = fields.text(&mut raw, "title", true);
    let subtitle = fields.text(&mut raw, "subtitle", true);
    let description = fields.text(&mut raw, "description", true);
    let author = fields.author(&mut raw);
    let read_time = fields.text(&mut raw, "read_time", true);
    let publish_date = fields.date(&mut raw, "publish_date");
    let created_date = fields.date(&mut raw, "created_date");
    let updated_date = fields.date(&mut raw, "updated_date");
    let hero_image = fields.text(&mut raw, "heroImage", true);
    let cta = fields.text(&mut raw, "cta", false);
    let slug = fields.slug(&mut raw);
    let id = fields.id(&mut raw);
    let tags = fields.tags(&mut raw);
    let draft = fields.flag(&mut raw, "draft");
    for (key, value) in raw {
        extra.insert(key, value);
    }

    if title.is_none() && !fields.seen.iter().any(|k| k == "title") {
        fields.errors.push(FieldError::new(
            fields.line_of("title"),
            Some("title"),
            "missing; every article needs a title",
        ));
    }
    if publish_date.is_none() && !fields.seen.iter().any(|k| k == "publish_date") {
        fields.errors.push(FieldError::new(
            fields.line_of("publish_date"),
            Some("publish_date"),
            format!("missing; every article needs one ({})", date::FORMS),
        ));
    }
    if !fields.errors.is_empty() {
        fields.errors.sort_by_key(|e| e.line);
        return Err(fields.errors);
    }
    Ok(FrontMatter {
        title: title.expect("checked above"),
        subtitle,
        description,
        author,
        read_time,
        publish_date: publish_date.expect("checked above"),
        created_date,
        updated_date,
        hero_image,
        cta,
        slug,
        id,
        tags,
        draft: draft.unwrap_or(false),
        extra,
    })
}

/// The YAML block read without the general YAML parser, when every line
/// is one of the forms front matter is usually written in: `key: 'single
/// quoted'`, `key: "double quoted"` (no escapes), `key: plain words`,
/// `key: true`, `key: [a, 'b']`, or blank. The result is exactly the
/// mapping serde_yaml gives for such a block, in order (a property test holds the two
/// together); anything else — other scalars, comments, nesting, several
/// lines per value, characters YAML treats specially — returns None and
/// goes to serde_yaml, which also words every error.
///
/// Why: a build reads the front matter of every article, and serde_yaml
/// sets up a whole parser for each (what it saves: README, Performance).
fn simple_mapping(yaml: &str) -> Option<Vec<(String, Value)>> {
    let mut entries: Vec<(String, Value)> = Vec::new();
    for line in yaml.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.bytes().all(|b| b == b' ') {
            continue;
        }
        if !line.chars().all(yaml_printable) {
            return None;
        }
        let key_len = line
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))?;
        let (key, rest) = line.split_at(key_len);
        // A key must stay text: `true:` or `null:` is left to serde_yaml,
        // and so is a key too long for YAML (a simple key ends within
        // 1024 characters of its start).
        if key.len() > MAX_SIMPLE_KEY
            || !key.starts_with(|c: char| c.is_ascii_alphabetic())
            || !matches!(plain_word(key)?, Value::String(_))
        {
            return None;
        }
        let value = rest.strip_prefix(": ")?.trim_matches(' ');
        let value = match value.as_bytes().first()? {
            b'[' => {
                let (items, rest) = flow_sequence(&value[1..])?;
                if !rest.is_empty() {
                    return None;
                }
                Value::Sequence(items)
            }
            _ => {
                let (scalar, rest) = scalar(value, false)?;
                if !rest.is_empty() {
                    return None;
                }
                scalar
            }
        };
        if entries.iter().any(|(k, _)| k == key) {
            return None;
        }
        entries.push((key.to_owned(), value));
    }
    Some(entries)
}

/// The longest key [`simple_mapping`] reads; YAML allows a simple key
/// 1024 characters (all of these are ASCII).
const MAX_SIMPLE_KEY: usize = 1024;

/// Characters that YAML reads as themselves inside a line (no line
/// separators, no controls, no byte order mark).
fn yaml_printable(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{A0}'..='\u{2027}' | '\u{202A}'..='\u{D7FF}' | '\u{E000}'..='\u{FEFE}' | '\u{FF00}'..='\u{FFFD}' | '\u{10000}'..)
}

/// One scalar at the start of `text`: quoted, or plain words (letters,
/// digits, spaces, `_ . / -`, starting with a letter). In a flow sequence
/// (`in_flow`) a plain scalar ends at `,` or `]`. Returns the value and
/// what follows it.
fn scalar(text: &str, in_flow: bool) -> Option<(Value, &str)> {
    match text.as_bytes().first()? {
        b'\'' => {
            let mut out = String::new();
            let mut rest = &text[1..];
            loop {
                let end = rest.find('\'')?;
                out.push_str(&rest[..end]);
                rest = &rest[end + 1..];
                match rest.strip_prefix('\'') {
                    Some(after) => {
                        out.push('\'');
                        rest = after;
                    }
                    None => return Some((Value::String(out), rest)),
                }
            }
        }
        b'"' => {
            let end = text[1..].find('"')? + 1;
            let inner = &text[1..end];
            if inner.contains('\\') {
                return None;
            }
            Some((Value::String(inner.to_owned()), &text[end + 1..]))
        }
        c if c.is_ascii_alphabetic() => {
            let end = if in_flow {
                text.find([',', ']']).unwrap_or(text.len())
            } else {
                text.len()
            };
            let word = text[..end].trim_end_matches(' ');
            let plain = word.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'.' | b'/' | b'-')
            });
            if !plain {
                return None;
            }
            Some((plain_word(word)?, &text[end..]))
        }
        _ => None,
    }
}

/// A plain scalar that starts with a letter, as serde_yaml resolves it:
/// `true`/`false` (three spellings each) are booleans, the `null` words
/// are left to serde_yaml, everything else is text (no number starts with
/// a letter, and `inf`/`nan` are not finite, so serde_yaml keeps them as
/// text too).
fn plain_word(word: &str) -> Option<Value> {
    match word {
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        "null" | "Null" | "NULL" => None,
        _ => Some(Value::String(word.to_owned())),
    }
}

/// The items of a one-line flow sequence whose `[` has been read, and what
/// follows its `]`.
fn flow_sequence(mut text: &str) -> Option<(Vec<Value>, &str)> {
    let mut items = Vec::new();
    text = text.trim_start_matches(' ');
    if let Some(rest) = text.strip_prefix(']') {
        return Some((items, rest));
    }
    loop {
        let (item, rest) = scalar(text, true)?;
        items.push(item);
        let rest = rest.trim_start_matches(' ');
        if let Some(rest) = rest.strip_prefix(']') {
            return Some((items, rest));
        }
        text = rest.strip_prefix(',')?.trim_start_matches(' ');
        if text.starts_with([']', ',']) {
            return None;
        }
    }
}

/// The file line where the top-level `key:` of a YAML block starting at
/// `yaml_line` is written, or `yaml_line` when it is not there.
pub fn key_line(yaml: &str, yaml_line: usize, key: &str) -> usize {
    yaml.lines()
        .position(|line| {
            let line = line.strip_prefix(['"', '\'']).unwrap_or(line);
            line.strip_prefix(key)
                .map(|rest| {
                    let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
                    rest.trim_start().starts_with(':')
                })
                .unwrap_or(false)
        })
        .map(|i| i + yaml_line)
        .unwrap_or(yaml_line)
}

/// serde_yaml ends its messages with " at line L column C"; we give the
/// line ourselves. A second location inside the message (where a quoted
/// scalar started, say) counts lines from the start of the YAML block;
/// `offset` (the block's first file line minus one) makes it a file line.
fn strip_location(message: &str, offset: usize) -> String {
    let message = match message.find(" at line ") {
        Some(start) => {
            let rest = &message[start + " at line ".len()..];
            let tail = rest.find(',').map(|i| &rest[i..]).unwrap_or("");
            format!("{}{}", &message[..start], tail)
        }
        None => message.to_owned(),
    };
    match message.find(" at line ") {
        Some(start) => {
            let after = start + " at line ".len();
            let digits = message[after..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(message.len(), |i| after + i);
            match message[after..digits].parse::<usize>() {
                Ok(line) => format!(
                    "{}{}{}",
                    &message[..after],
                    line + offset,
                    &message[digits..]
                ),
                Err(_) => message,
            }
        }
        None => message,
    }
}

struct Fields<'a> {
    yaml: &'a str,
    yaml_line: usize,
    tz: Tz,
    errors: Vec<FieldError>,
    /// Keys that were present (even if invalid), so "missing" is not
    /// reported on top of "wrong type".
    seen: Vec<String>,
}

impl Fields<'_> {
    /// The file line where `key:` starts, or the first front-matter line.
    fn line_of(&self, key: &str) -> usize {
        key_line(self.yaml, self.yaml_line, key)
    }

    fn error(&mut self, key: &str, message: impl Into<String>) {
        let line = self.line_of(key);
        self.errors.push(FieldError::new(line, Some(key), message));
    }

    fn take(&mut self, raw: &mut BTreeMap<String, Value>, key: &str) -> Option<Value> {
        let value = raw.remove(key)?;
        // `key:` with no value (or only a `# comment`) counts as missing.
        if value.is_null() {
            return None;
        }
        self.seen.push(key.to_owned());
        Some(value)
    }

    /// A text field. Numbers are taken as text (`title: 1984`); lists,
    /// maps and booleans are an error. `one_line` folds line breaks.
    fn text(
        &mut self,
        raw: &mut BTreeMap<String, Value>,
        key: &str,
        one_line: bool,
    ) -> Option<String> {
        let value = self.take(raw, key)?;
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            other => {
                self.error(key, format!("expected text, found {}", kind(&other)));
                return None;
            }
        };
        let text = if one_line {
            crate::text::into_single_line(text)
        } else {
            crate::text::xml_safe(text.trim())
        };
        if text.is_empty() {
            if key == "title" {
                self.error(key, "must not be empty");
            }
            return None;
        }
        Some(text)
    }

    fn author(&mut self, raw: &mut BTreeMap<String, Value>) -> Option<String> {
        let author = self.text(raw, "author", true)?;
        // "Jane Doe <jane@example.com>" keeps the name: feeds must not put
        // an address where a name belongs.
        let name = match author.find('<') {
            Some(i) if author.ends_with('>') => author[..i].trim().to_owned(),
            _ => author.clone(),
        };
        if name.is_empty() || name.contains('@') {
            self.error(
                "author",
                format!("`{author}` looks like an e-mail address; give the author's name"),
            );
            return None;
        }
        Some(name)
    }

    fn date(
        &mut self,
        raw: &mut BTreeMap<String, Value>,
        key: &str,
    ) -> Option<DateTime<FixedOffset>> {
        let value = self.take(raw, key)?;
        match value {
            Value::String(s) => match date::parse(&s, self.tz) {
                Ok(dt) => Some(dt),
                Err(message) => {
                    self.error(key, message);
                    None
                }
            },
            other => {
                self.error(
                    key,
                    format!(
                        "expected a date as text ({}), found {}",
                        date::FORMS,
                        kind(&other)
                    ),
                );
                None
            }
        }
    }

    fn slug(&mut self, raw: &mut BTreeMap<String, Value>) -> Option<Slug> {
        let text = self.text(raw, "slug", true)?;
        match Slug::parse(&text) {
            Ok(slug) => Some(slug),
            Err(message) => {
                self.error("slug", message);
                None
            }
        }
    }

    fn id(&mut self, raw: &mut BTreeMap<String, Value>) -> Option<String> {
        let text = self.text(raw, "id", true)?;
        match url::Url::parse(&text) {
            Ok(_) if !text.contains(char::is_whitespace) => Some(text),
            _ => {
                self.error(
                    "id",
                    format!("`{text}` is not an absolute URI; use for example tag:example.com,2025-01-01:my-post"),
                );
                None
            }
        }
    }

    fn tags(&mut self, raw: &mut BTreeMap<String, Value>) -> Vec<String> {
        let Some(value) = self.take(raw, "tags") else {
            return Vec::new();
        };
        let items: Vec<Value> = match value {
            Value::Sequence(items) => items,
            Value::String(s) => s.split(',').map(|t| Value::String(t.to_owned())).collect(),
            other => {
                self.error(
                    "tags",
                    format!("expected a list of tags, found {}", kind(&other)),
                );
                return Vec::new();
            }
        };
        let mut tags: Vec<String> = Vec::new();
        for item in items {
            let tag = match item {
                Value::String(s) => single_line(&s),
                Value::Number(n) => n.to_string(),
                other => {
                    self.error(
                        "tags",
                        format!("each tag must be text, found {}", kind(&other)),
                    );
                    continue;
                }
            };
            if tag.is_empty() {
                continue;
            }
            if Slug::from_text(&tag).is_none() {
                self.error(
                    "tags",
                    format!("tag `{tag}` has no letters or digits to name its folder"),
                );
                continue;
            }
            if !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
                tags.push(tag);
            }
        }
        tags
    }

    fn flag(&mut self, raw: &mut BTreeMap<String, Value>, key: &str) -> Option<bool> {
        match self.take(raw, key)? {
            Value::Bool(b) => Some(b),
            other => {
                self.error(
                    key,
                    format!("expected true or false, found {}", kind(&other)),
                );
                None
            }
        }
    }
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the text `{s}`"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a map".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression test for a bug the `front_matter` fuzz target found:
    /// `title:` or `publish_date:` with no value (or one starting with
    /// `#`, which YAML reads as a comment) panicked with "checked above".
    #[test]
    fn empty_title_or_date_is_missing_not_a_panic() {
        for yaml in [
            "title:\npublish_date:\n",
            "title: #Tags & Templates\npublish_date: ~\n",
        ] {
            let errors = parse(yaml, 2, chrono_tz::UTC).unwrap_err();
            let found: Vec<(usize, Option<&str>, &str)> = errors
                .iter()
                .map(|e| (e.line, e.key.as_deref(), e.message.as_str()))
                .collect();
            assert_eq!(
                found,
                [
                    (2, Some("title"), "missing; every article needs a title"),
                    (
                        3,
                        Some("publish_date"),
                        "missing; every article needs one (YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or RFC 3339)"
                    ),
                ],
                "{yaml}"
            );
        }
    }

    /// Regression test for a bug: serde_yaml's inner location ("while
    /// scanning a quoted scalar at line 1") counted from the YAML block,
    /// one line above the file line it names, so the message pointed at
    /// the fence.
    #[test]
    fn inner_yaml_locations_are_file_lines() {
        let errors = parse(
            "title: 'unclosed\npublish_date: 2025-01-01\n",
            2,
            chrono_tz::UTC,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .message
                .contains("while scanning a quoted scalar at line 2 column 8"),
            "{errors:?}"
        );
    }
    use chrono_tz::UTC;

    fn parse_file(text: &str) -> Result<FrontMatter, Vec<FieldError>> {
        let split = split(text).map_err(|e| vec![e])?;
        parse(split.yaml, split.yaml_line, UTC)
    }

    #[test]
    fn full_front_matter_parses() {
        let fm = parse_file(
            "---\ntitle: 'Rust at the Edge: What We Learned'\nsubtitle: 'Three lessons'\ndescription: 'Summary.'\nauthor: 'Jane Doe'\nread_time: '6 mins'\npublish_date: '2025-03-09'\ncreated_date: '2025-03-01'\nheroImage: 'https://images.example.com/edge.jpg'\ncta: 'Reply [here](https://x.example/)'\ntags: [rust, edge]\ndraft: false\nmood: sunny\n---\nBody\n",
        )
        .unwrap();
        assert_eq!(fm.title, "Rust at the Edge: What We Learned");
        assert_eq!(fm.read_time.as_deref(), Some("6 mins"));
        assert_eq!(
            fm.hero_image.as_deref(),
            Some("https://images.example.com/edge.jpg")
        );
        assert_eq!(fm.tags, ["rust", "edge"]);
        assert!(fm.extra.contains_key("mood"), "unknown keys are kept");
    }

    #[test]
    fn bom_and_crlf_work() {
        let split =
            split("\u{feff}---\r\ntitle: 'T'\r\npublish_date: '2025-01-02'\r\n---\r\nHello\r\n")
                .unwrap();
        assert_eq!(split.body, "Hello\r\n");
        let fm = parse(split.yaml, split.yaml_line, UTC).unwrap();
        assert_eq!(fm.title, "T");
    }

    #[test]
    fn every_wrong_field_is_reported_with_its_line() {
        let errors = parse_file(
            "---\ntitle: [a, b]\nauthor: 'Mara'\npublish_date: 20250309\ndraft: 'no'\n---\n",
        )
        .unwrap_err();
        let got: Vec<String> = errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}: {}",
                    e.line,
                    e.key.as_deref().unwrap_or("-"),
                    e.message
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "2: title: expected text, found a list",
                "4: publish_date: expected a date as text (YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or RFC 3339), found the number 20250309",
                "5: draft: expected true or false, found the text `no`",
            ]
        );
    }

    #[test]
    fn missing_required_keys_are_named() {
        let errors = parse_file("---\nsubtitle: 'x'\n---\n").unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key.clone().unwrap()).collect();
        assert_eq!(keys, ["title", "publish_date"]);
    }

    #[test]
    fn broken_yaml_gives_the_file_line() {
        let errors = parse_file(
            "---\ntitle: 'ok'\npublish_date: '2025-01-01'\ndescription: 'unclosed\n---\nbody",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.starts_with("invalid YAML"),
            "{:?}",
            errors[0]
        );
        assert!(errors[0].line >= 4, "{:?}", errors[0]);
    }

    #[test]
    fn fences_are_required() {
        assert!(split("title: x\n")
            .unwrap_err()
            .message
            .starts_with("missing front matter"));
        assert!(split("---\ntitle: x\n")
            .unwrap_err()
            .message
            .starts_with("front matter is not closed"));
        assert!(split("")
            .unwrap_err()
            .message
            .starts_with("the file is empty"));
    }

    #[test]
    fn an_address_is_not_a_name() {
        let fm = parse_file("---\ntitle: T\npublish_date: '2025-01-01'\nauthor: 'Jane Doe <jane@example.com>'\n---\n").unwrap();
        assert_eq!(fm.author.as_deref(), Some("Jane Doe"));
        let errors = parse_file(
            "---\ntitle: T\npublish_date: '2025-01-01'\nauthor: jane@example.com\n---\n",
        )
        .unwrap_err();
        assert_eq!(errors[0].key.as_deref(), Some("author"));
    }

    #[test]
    fn header_injection_in_a_title_is_folded() {
        let fm = parse_file(
            "---\ntitle: \"Hi\\r\\nBcc: x@example.com\"\npublish_date: '2025-01-01'\n---\n",
        )
        .unwrap();
        assert_eq!(fm.title, "Hi Bcc: x@example.com");
    }

    fn as_value(entries: Vec<(String, Value)>) -> Value {
        Value::Mapping(
            entries
                .into_iter()
                .map(|(k, v)| (Value::String(k), v))
                .collect(),
        )
    }

    #[test]
    fn simple_front_matter_skips_the_yaml_parser_with_the_same_result() {
        let yaml = "title: 'It''s \"fine\"'\r\nsubtitle: \"Double: quoted\"\n\nread_time: about six mins\ndraft: false\ntags: [rust, 'edge cases', tooling]\nempty: []\n";
        let fast = simple_mapping(yaml).expect("simple");
        let slow: Value = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(as_value(fast), slow);
    }

    /// The sample articles are read by the shortcut, as serde_yaml reads
    /// them.
    #[test]
    fn the_sample_articles_take_the_shortcut_with_the_same_result() {
        let content = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("content");
        let mut read = 0;
        for entry in walkdir::WalkDir::new(content) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "md") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let yaml = split(&text).unwrap().yaml;
            let fast = simple_mapping(yaml).unwrap_or_else(|| panic!("{:?}", entry.path()));
            let slow: Value = serde_yaml::from_str(yaml).unwrap();
            assert_eq!(as_value(fast), slow, "{:?}", entry.path());
            read += 1;
        }
        assert!(read >= 5, "only {read} sample articles");
    }

    /// Regression test: the shortcut read a key of 1,030 letters, which
    /// YAML rejects ("mapping values are not allowed in this context").
    #[test]
    fn a_key_too_long_for_yaml_goes_to_the_yaml_parser() {
        let longest = format!("{}: x\n", "k".repeat(MAX_SIMPLE_KEY));
        let fast = simple_mapping(&longest).expect("simple");
        assert_eq!(
            as_value(fast),
            serde_yaml::from_str::<Value>(&longest).unwrap()
        );
        let too_long = format!("{}: x\n", "k".repeat(MAX_SIMPLE_KEY + 1));
        assert!(serde_yaml::from_str::<Value>(&too_long).is_err());
        assert!(simple_mapping(&too_long).is_none());
        let err = parse(&too_long, 2, chrono_tz::UTC).unwrap_err();
        assert!(err[0].message.starts_with("invalid YAML"), "{err:?}");
    }

    #[test]
    fn anything_unusual_goes_to_the_yaml_parser() {
        for yaml in [
            "title: x # comment\n",
            "n: 12\n",
            "v: null\n",
            "true: x\n",
            "a: 'x'\na: 'y'\n",
            "title: >\n  folded\n",
            "tags:\n  - a\n",
            "t: \"esc\\n\"\n",
            "t: 'tab\there'\n",
            "t: &anchor x\n",
            "t: [a, b,]\n",
            "t: 'unclosed\n",
            "t: x: y\n",
            "t: {a: b}\n",
            "# only a comment\n",
        ] {
            assert!(simple_mapping(yaml).is_none(), "{yaml:?}");
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Text that may or may not be valid inside a scalar.
        fn junk() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("'".to_owned()),
                Just("''".to_owned()),
                Just("\"".to_owned()),
                Just("[".to_owned()),
                Just("]".to_owned()),
                Just(", ".to_owned()),
                Just(",".to_owned()),
                Just(" ".to_owned()),
                Just(": ".to_owned()),
                Just(" #".to_owned()),
                Just("true".to_owned()),
                Just("Null".to_owned()),
                Just("\\".to_owned()),
                "[a-zA-Z0-9._/-]{1,6}",
                "[a-z]{1,3} [a-z]{1,3}",
                "[\u{0}-\u{1F}\u{7F}-\u{A0}\u{2028}\u{FEFF}\u{FFFE}é🦀-]{1,2}",
            ];
            proptest::collection::vec(piece, 0..6).prop_map(|p| p.concat())
        }

        /// A scalar that is often, not always, one of the simple forms.
        fn item() -> impl Strategy<Value = String> {
            prop_oneof![
                junk(),
                junk().prop_map(|i| format!("'{i}'")),
                junk().prop_map(|i| format!("\"{i}\"")),
                "[a-zA-Z][a-zA-Z0-9 ._/-]{0,10}",
                Just("true".to_owned()),
                Just("FALSE".to_owned()),
                Just("null".to_owned()),
                Just("inf".to_owned()),
                Just("nan".to_owned()),
                Just("e5".to_owned()),
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            let suffix = prop_oneof![
                4 => Just(""),
                1 => Just(" "),
                1 => Just(" # c"),
                1 => Just("x"),
                1 => Just("'"),
            ];
            let list =
                proptest::collection::vec(item(), 0..4).prop_map(|v| format!("[{}]", v.join(", ")));
            (prop_oneof![3 => item(), 1 => list], suffix).prop_map(|(v, s)| format!("{v}{s}"))
        }

        fn block() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                Just("title"),
                Just("tags"),
                Just("draft"),
                Just("heroImage"),
                Just("x-y_z"),
                Just("true"),
                Just(""),
                Just(" title"),
            ];
            let line = (
                key,
                prop_oneof![Just(": "), Just(":"), Just(":  ")],
                value(),
            )
                .prop_map(|(k, sep, v)| format!("{k}{sep}{v}"));
            proptest::collection::vec(line, 1..4).prop_map(|lines| lines.join("\n"))
        }

        /// A value as writers put them in front matter, the usual forms
        /// and the unusual ones: quotes with their escapes, block scalars,
        /// dates, numbers, null and boolean spellings, unicode, tabs,
        /// comments, anchors, tags, sequences.
        fn realistic_value() -> impl Strategy<Value = String> {
            let text =
                "[a-zA-Z0-9 ,.:;!?#&*@%/()-]{0,12}|[éü🦀\u{A0}\u{2028}\u{85}\t'\"\\\\a-z ]{1,6}";
            prop_oneof![
                4 => text.prop_map(|t| format!("'{}'", t.replace('\'', "''"))),
                2 => text.prop_map(|t| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))),
                3 => "[a-zA-Z][a-zA-Z0-9 ._/-]{0,14}",
                1 => text,
                1 => proptest::sample::select(vec![
                    "2025-03-09", "'2025-03-09'", "2025-03-09 10:00",
                    "2025-03-09T10:15:00+01:00", "6", "'6'", "1.5",
                    "0x1F", "-3", "+7", "1e3", "~", "null",
                    "Null", "NULL", "yes", "no", "on", "off",
                    "y", "n", "True", "false", "TRUE", ".inf",
                    "-.Inf", ".nan", "inf", "nan", "Infinity",
                    "\"esc \\u00e9 \\n \\t \\\" done\"", "'a \\n b'",
                    "café", "naïve text", "x # comment", "'x' # comment",
                    "x\t# tab comment", "&anchor 'x'", "*anchor",
                    "!!str 5", "!!int '5'", "|\n  line one\n  line two",
                    ">\n  folded\n  text\n", "|-\n  keep\n\n  going",
                    ">+\n  more\n", "'multi\n  line'", "plain\n  continued",
                    "[rust, 'edge cases', tooling]", "[]", "[ a , b ]",
                    "[a, b,]", "[a, [b]]", "{a: b}", "\n  - a\n  - 'b'",
                    "'trailing'   ", "a  b", "a: b", "-a", "- a",
                    "?x", "%x", "@x", "`x`", "'x''y'", "\"\"",
                    "''",
                ]).prop_map(str::to_owned),
            ]
        }

        /// A front matter block like the samples in `content/`, often with
        /// something unusual in it.
        fn realistic_block() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                8 => proptest::sample::select(vec![
                    "title", "subtitle", "description", "author",
                    "read_time", "publish_date", "created_date",
                    "updated_date", "heroImage", "cta", "slug",
                    "id", "tags", "draft", "custom-key_2",
                ]).prop_map(str::to_owned),
                1 => proptest::sample::select(vec![
                    "yes", "null", "~", "True", "5", "'q'",
                    "\"dq\"", "é", "a b", "? k", "- title",
                    "  title", "\ttitle", "# title",
                ]).prop_map(str::to_owned),
                1 => "[a-z]{1030,1040}",
            ];
            let separator = prop_oneof![8 => Just(": "), 1 => Just(":"), 1 => Just(":  "), 1 => Just(":\t"), 1 => Just(" : ")];
            let line =
                (key, separator, realistic_value()).prop_map(|(k, s, v)| format!("{k}{s}{v}"));
            let extra = prop_oneof![
                12 => Just(""), 1 => Just("\n"), 1 => Just("\n# a comment"), 1 => Just("\n   "),
                1 => Just("\n\t"), 1 => Just("\r"), 1 => Just("\n---"),
            ];
            let ending = prop_oneof![Just("\n"), Just("\r\n")];
            (proptest::collection::vec((line, extra), 1..8), ending).prop_map(|(lines, ending)| {
                let mut block = String::new();
                for (line, extra) in lines {
                    block.push_str(&line);
                    block.push_str(extra);
                    block.push_str(ending);
                }
                block
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

            /// The differential test of the shortcut: whatever it reads,
            /// serde_yaml reads the same way.
            #[test]
            fn the_shortcut_agrees_with_serde_yaml_on_realistic_front_matter(yaml in realistic_block()) {
                if let Some(fast) = simple_mapping(&yaml) {
                    let slow: Result<Value, _> = serde_yaml::from_str(&yaml);
                    prop_assert!(slow.is_ok(), "{yaml:?}: serde_yaml fails: {slow:?}");
                    prop_assert_eq!(super::as_value(fast), slow.unwrap(), "{:?}", yaml);
                }
            }

            #[test]
            fn the_shortcut_agrees_with_serde_yaml(yaml in block()) {
                if let Some(fast) = simple_mapping(&yaml) {
                    let slow: Result<Value, _> = serde_yaml::from_str(&yaml);
                    prop_assert!(slow.is_ok(), "{yaml:?}: serde_yaml fails: {slow:?}");
                    prop_assert_eq!(super::as_value(fast), slow.unwrap(), "{:?}", yaml);
                }
            }
        }
    }
}
