//! Whether the email templates only ever *print* a reader's values, read
//! conservatively from their source: the proof that lets a shape's
//! output stand for every reader of that shape without running the
//! templates per reader.
//!
//! A template set is print-only when every template reachable from a
//! part's template (through `{% extends %}`, `{% include %}`,
//! `{% import %}` and `{% from %}`, all with literal names):
//! - names `recipient` and `unsubscribe_url` only in tags that are
//!   exactly `{{ recipient.email }}`, `{{ recipient.name }}`,
//!   `{{ recipient.fields.NAME }}` or `{{ unsubscribe_url }}` (no filter,
//!   no test, no other expression), and not inside a macro body;
//! - has nothing that can capture or reshape output or read the whole
//!   context: no `{% filter %}`, `{% call %}`, `{% autoescape %}`, block
//!   `{% set %}`, no `super`, `self`, `caller`, `debug`, `recursive`, no
//!   `{% include %}` inside a macro, no dict literal;
//! - prints values only where the part's escaping is the one the splice
//!   assumes: templates named other than `.html` (for the HTML part) or
//!   `.txt` (for the text part) print no reader value and include
//!   nothing.
//!
//! Anything not understood makes the set value-sensitive, and every
//! reader's templates run as before. Under these rules a template's
//! output for a reader is its output for the shape's tokens with the
//! reader's values, escaped alike, in their place.

use std::collections::HashSet;

/// The context keys that differ from reader to reader (see
/// [`crate::email::context::for_recipient`]).
const READER_KEYS: [&str; 2] = ["recipient", "unsubscribe_url"];

/// Names that reach output or context in ways a print cannot show.
const FORBIDDEN: [&str; 5] = ["super", "self", "caller", "debug", "recursive"];

/// Tags that capture, filter or re-escape what their body writes.
const CAPTURING: [&str; 6] = [
    "filter",
    "endfilter",
    "call",
    "endcall",
    "autoescape",
    "endautoescape",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
    Num,
    Other,
}

/// What one template does with reader values, when it only prints them.
#[derive(Debug, Default)]
struct Scan {
    prints: bool,
    refs: Vec<String>,
}

/// Whether the templates reachable from each `(root, extension)` only
/// print reader values (see the module docs). `source` gives a
/// template's text by name.
pub(super) fn print_only(source: &dyn Fn(&str) -> Option<String>, roots: &[(&str, &str)]) -> bool {
    roots.iter().all(|(root, extension)| {
        let mut seen = HashSet::new();
        let mut todo = vec![(*root).to_owned()];
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(text) = source(&name) else {
                return false;
            };
            let Some(scan) = scan(&text) else {
                return false;
            };
            if !name.ends_with(extension) && (scan.prints || !scan.refs.is_empty()) {
                return false;
            }
            todo.extend(scan.refs);
        }
        true
    })
}

/// One template's prints and references; `None` when it uses a reader
/// value otherwise, or has anything the scan does not understand.
fn scan(text: &str) -> Option<Scan> {
    let bytes = text.as_bytes();
    let mut out = Scan::default();
    let mut macros = 0usize;
    let mut i = 0;
    while let Some(found) = text[i..].find('{') {
        let at = i + found;
        match bytes.get(at + 1) {
            Some(b'#') => {
                let end = text[at + 2..].find("#}")?;
                i = at + 2 + end + 2;
            }
            Some(&open @ (b'{' | b'%')) => {
                let close = if open == b'{' { "}}" } else { "%}" };
                let (tokens, end) = tag(text, at + 2, close)?;
                i = end;
                if tokens.iter().any(|t| {
                    matches!(t, Tok::Punct('{' | '}') | Tok::Other)
                        || matches!(t, Tok::Ident(w) if FORBIDDEN.contains(&w.as_str()))
                }) {
                    return None;
                }
                let reader = tokens
                    .iter()
                    .any(|t| matches!(t, Tok::Ident(w) if READER_KEYS.contains(&w.as_str())));
                if open == b'{' {
                    if reader {
                        if macros > 0 || !is_reader_print(&tokens) {
                            return None;
                        }
                        out.prints = true;
                    }
                    continue;
                }
                if reader {
                    return None;
                }
                let keyword = match tokens.first() {
                    Some(Tok::Ident(w)) => w.as_str(),
                    _ => return None,
                };
                match keyword {
                    "raw" => i = end_of_raw(text, i)?,
                    "macro" => macros += 1,
                    "endmacro" => macros = macros.checked_sub(1)?,
                    "set" if !tokens.contains(&Tok::Punct('=')) => return None,
                    "include" | "extends" => {
                        if keyword == "include" && macros > 0 {
                            return None;
                        }
                        let mut names = 0;
                        for t in &tokens[1..] {
                            match t {
                                // An escape in a name: not worth understanding.
                                Tok::Str(s) if !s.contains('\\') => {
                                    names += 1;
                                    out.refs.push(s.clone());
                                }
                                Tok::Ident(w)
                                    if matches!(
                                        w.as_str(),
                                        "ignore" | "missing" | "with" | "without" | "context"
                                    ) => {}
                                _ => return None,
                            }
                        }
                        if names != 1 {
                            return None;
                        }
                    }
                    "import" | "from" => match tokens.get(1) {
                        Some(Tok::Str(s)) if !s.contains('\\') => out.refs.push(s.clone()),
                        _ => return None,
                    },
                    k if CAPTURING.contains(&k) => return None,
                    _ => {}
                }
            }
            _ => i = at + 1,
        }
    }
    (macros == 0).then_some(out)
}

/// Whether a `{{ … }}` tag's tokens are exactly one reader value.
fn is_reader_print(tokens: &[Tok]) -> bool {
    let ident = |t: &Tok, want: Option<&str>| match t {
        Tok::Ident(w) => want.is_none_or(|want| w == want),
        _ => false,
    };
    let dot = |t: &Tok| *t == Tok::Punct('.');
    match tokens {
        [a] => ident(a, Some("unsubscribe_url")),
        [r, d, v] => {
            ident(r, Some("recipient"))
                && dot(d)
                && (ident(v, Some("email")) || ident(v, Some("name")))
        }
        [r, d1, f, d2, k] => {
            ident(r, Some("recipient"))
                && dot(d1)
                && ident(f, Some("fields"))
                && dot(d2)
                && ident(k, None)
        }
        _ => false,
    }
}

/// The tokens of the tag whose code starts at `start`, up to `close`
/// (whitespace-control marks dropped), and the offset after the tag.
fn tag(text: &str, start: usize, close: &str) -> Option<(Vec<Tok>, usize)> {
    let mut chars = text[start..].char_indices().peekable();
    let mut tokens = Vec::new();
    if let Some((_, '-' | '+')) = chars.peek() {
        chars.next();
    }
    while let Some((off, c)) = chars.next() {
        let at = start + off;
        if text[at..].starts_with(close) {
            if matches!(tokens.last(), Some(Tok::Punct('-' | '+'))) {
                tokens.pop();
            }
            return Some((tokens, at + close.len()));
        }
        match c {
            c if c.is_whitespace() => {}
            '"' | '\'' => {
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        (_, q) if q == c => break,
                        (_, '\\') => {
                            s.push('\\');
                            s.push(chars.next()?.1);
                        }
                        (_, other) => s.push(other),
                    }
                }
                tokens.push(Tok::Str(s));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut w = String::from(c);
                while let Some((_, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || *n == '_' {
                        w.push(*n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Tok::Ident(w));
            }
            c if c.is_ascii_digit() => {
                while chars.peek().is_some_and(|(_, n)| n.is_ascii_alphanumeric()) {
                    chars.next();
                }
                tokens.push(Tok::Num);
            }
            c if c.is_ascii_punctuation() => tokens.push(Tok::Punct(c)),
            _ => tokens.push(Tok::Other),
        }
    }
    None
}

/// The offset after the `{% endraw %}` closing a raw block whose opening
/// tag ends at `from`.
fn end_of_raw(text: &str, from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(found) = text[i..].find("{%") {
        let at = i + found;
        let (tokens, end) = tag(text, at + 2, "%}")?;
        if tokens == [Tok::Ident("endraw".into())] {
            return Some(end);
        }
        i = at + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(templates: &[(&str, &str)], roots: &[(&str, &str)]) -> bool {
        let source = |name: &str| {
            templates
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| (*s).to_owned())
        };
        print_only(&source, roots)
    }

    fn one(html: &str) -> bool {
        classify(&[("a.html", html)], &[("a.html", ".html")])
    }

    #[test]
    fn plain_prints_are_print_only() {
        assert!(one("Hi {{ recipient.name }}, {{recipient.email}}"));
        assert!(one(
            "{{- recipient.fields.plan -}} <a href=\"{{ unsubscribe_url }}\">x</a>"
        ));
        assert!(one(
            "{{ article.title|upper }} {% if site.x == 1 %}{{ recipient.name }}{% endif %}"
        ));
        assert!(one(
            "{% for a in articles %}{{ recipient.name }}{{ a.title }}{% endfor %}"
        ));
        assert!(one("{# {% set r = recipient %} #}{{ recipient.name }}"));
        assert!(one("{% raw %}{{ recipient.name|upper }} {{ \"{% endraw %}"));
        assert!(one("{% set x = 1 %}{{ x }}"));
        assert!(one("no values at all"));
    }

    #[test]
    fn any_other_use_is_value_sensitive() {
        for template in [
            "{% set r = recipient %}{{ r.name }}",
            "{{ recipient.name|upper }}",
            "{{ recipient.name|e }}",
            "{{ recipient.name|safe }}",
            "{% if recipient.fields.plan == \"vip\" %}v{% endif %}",
            "{% if recipient.name %}n{% endif %}",
            "{{ recipient }}",
            "{{ recipient.fields }}",
            "{{ recipient[\"na\" ~ \"me\"] }}",
            "{{ recipient.fields[\"plan\"] }}",
            "{{ recipient.name ~ \"!\" }}",
            "{{ recipient.email is endingwith(\"x\") }}",
            "{% for c in recipient.name %}{{ c }}{% endfor %}",
            "{% macro m(r) %}{{ r.name }}{% endmacro %}{{ m(recipient) }}",
            "{% macro m() %}{{ recipient.name }}{% endmacro %}{{ m()|upper }}",
            "{% macro m() %}{% include \"f.html\" %}{% endmacro %}{{ m() }}",
            "{{ debug() }}",
            "{% filter upper %}{{ recipient.name }}{% endfilter %}",
            "{% set x %}{{ recipient.name }}{% endset %}{{ x|length }}",
            "{% block b %}{{ recipient.name }}{% endblock %}{{ self.b()|upper }}",
            "{% autoescape false %}{{ recipient.name }}{% endautoescape %}",
            "{% with r = recipient %}{{ r.name }}{% endwith %}",
            "{{ {\"a\": {\"b\": 1}} ~ recipient.name }}",
            "{% include name %}",
            "{% include [\"a.html\", \"b.html\"] %}",
            "{{ recipient.name }",
            "{# unterminated",
            "{% raw %}{{ recipient.name }}",
        ] {
            assert!(!one(template), "{template}");
        }
    }

    #[test]
    fn reachable_templates_are_read_too() {
        let footer = ("footer.html", "{{ recipient.name|upper }}");
        assert!(!classify(
            &[("a.html", "{% include \"footer.html\" %}"), footer],
            &[("a.html", ".html")]
        ));
        assert!(!classify(
            &[("a.html", "{% extends \"footer.html\" %}"), footer],
            &[("a.html", ".html")]
        ));
        assert!(!classify(
            &[("a.html", "{% from \"footer.html\" import m %}"), footer],
            &[("a.html", ".html")]
        ));
        // A template that is not there cannot be read.
        assert!(!classify(
            &[("a.html", "{% include \"gone.html\" %}")],
            &[("a.html", ".html")]
        ));
        // A text template printing into the HTML part could be escaped
        // otherwise.
        assert!(!classify(
            &[
                ("a.html", "{% include \"f.txt\" %}"),
                ("f.txt", "{{ recipient.name }}")
            ],
            &[("a.html", ".html")]
        ));
        assert!(classify(
            &[
                (
                    "a.html",
                    "{% extends \"b.html\" %}{% block c %}x{% endblock %}"
                ),
                (
                    "b.html",
                    "{% block c %}{% endblock %}{% include \"s.css\" %}{{ unsubscribe_url }}"
                ),
                ("s.css", "p { color: red }"),
                ("a.txt", "{% include \"f.txt\" %}"),
                ("f.txt", "{{ recipient.email }}"),
            ],
            &[("a.html", ".html"), ("a.txt", ".txt")]
        ));
    }

    #[test]
    fn the_builtin_templates_are_print_only() {
        let templates = crate::email::Templates::builtin();
        let source = |name: &str| templates.source(name);
        for roots in [
            [("digest.html", ".html"), ("digest.txt", ".txt")],
            [("article.html", ".html"), ("article.txt", ".txt")],
        ] {
            for (name, _) in roots {
                let text = templates.source(name).unwrap();
                assert!(scan(&text).is_some(), "{name}");
            }
            assert!(print_only(&source, &roots), "{roots:?}");
        }
    }
}
