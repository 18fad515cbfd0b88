//! The import graph of the library: which top-level module of `src/`
//! names which other one (`crate::x`, `super::x`, `use crate::{x, y}`),
//! read from the source text, and the rule that a module names only
//! modules in layers below its own. Comments, strings and character
//! literals are skipped, so only real paths count.
//!
//! `cargo test --test cli import_graph -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::{files_under, read, REPO};

/// The library's top-level modules, bottom layer first. A module may name
/// only modules in lower layers; a new module has to be placed here. The
/// crate root (`lib.rs`) declares the modules and holds constants only,
/// so naming it (`crate::VERSION`) is allowed from anywhere.
const LAYERS: &[&[&str]] = &[
    &["error_kind"],
    &["address", "cli", "fs", "net", "stamp", "text"],
    &["config"],
    &["bounce", "content"],
    &["email", "feed", "inbox"],
    &["cache", "delivery"],
    &["live", "serve"],
    &["commands"],
];

/// One token of Rust source that paths are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Other(char),
}

/// The tokens of `text`, without comments, strings, characters and
/// lifetimes.
fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if (c == 'r' || c == 'b')
            && !at(i.wrapping_sub(1)).is_alphanumeric()
            && matches!(
                (at(i + 1), at(i + 2)),
                ('"', _) | ('#', '"') | ('#', '#') | ('r', '"') | ('r', '#')
            )
        {
            // r"…", r#"…"#, b"…", br#"…"#.
            i += 1;
            if chars[i] == 'r' {
                i += 1;
            }
            let raw = c == 'r' || chars[i - 1] == 'r';
            let mut hashes = 0;
            while at(i) == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1; // the opening quote
            loop {
                if i >= chars.len() {
                    break;
                }
                if !raw && chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == '"' && (0..hashes).all(|h| at(i + 1 + h) == '#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), else a lifetime.
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Token::PathSep);
            i += 2;
        } else if c == '{' {
            out.push(Token::Open);
            i += 1;
        } else if c == '}' {
            out.push(Token::Close);
            i += 1;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Other(c));
            }
            i += 1;
        }
    }
    out
}

/// The first segments a path continues with at `tokens[i]`: one name, or
/// every branch's first name of a `{a, b::c}` group.
fn first_segments(tokens: &[Token], i: usize) -> Vec<String> {
    match tokens.get(i) {
        Some(Token::Ident(name)) => vec![name.clone()],
        Some(Token::Open) => {
            let mut names = Vec::new();
            let mut depth = 0;
            let mut expect_name = true;
            for token in &tokens[i..] {
                match token {
                    Token::Open => {
                        depth += 1;
                        if depth == 1 {
                            expect_name = true;
                        }
                    }
                    Token::Close => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Token::Other(',') if depth == 1 => expect_name = true,
                    Token::Ident(name) if depth == 1 && expect_name => {
                        names.push(name.clone());
                        expect_name = false;
                    }
                    _ => {}
                }
            }
            names
        }
        _ => Vec::new(),
    }
}

/// The top-level modules that the source of module `module` (its path
/// from the crate root, such as `["email", "config"]`) names.
fn named_modules(module: &[&str], text: &str) -> BTreeSet<String> {
    let tokens = tokens(text);
    let mut named = BTreeSet::new();
    // The module each token is in: the file's, plus inline `mod x { … }`.
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let current: Vec<&str> = module
            .iter()
            .copied()
            .chain(stack.iter().map(|(m, _)| m.as_str()))
            .collect();
        match &tokens[i] {
            Token::Open => depth += 1,
            Token::Close => {
                depth = depth.saturating_sub(1);
                if stack.last().is_some_and(|(_, d)| *d == depth) {
                    stack.pop();
                }
            }
            Token::Ident(word) if word == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Open)) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    stack.push((name.clone(), depth));
                }
            }
            Token::Ident(word)
                if (word == "crate" || word == "super")
                    && tokens.get(i + 1) == Some(&Token::PathSep)
                    && !matches!(tokens.get(i.wrapping_sub(1)), Some(Token::PathSep)) =>
            {
                // Walk `super::super::…` up from the current module.
                let mut at = if word == "crate" {
                    Vec::new()
                } else {
                    current[..current.len().saturating_sub(1)].to_vec()
                };
                let mut j = i + 2;
                while tokens.get(j) == Some(&Token::Ident("super".into()))
                    && tokens.get(j + 1) == Some(&Token::PathSep)
                {
                    at.pop();
                    j += 2;
                }
                let targets = match at.first() {
                    Some(top) => vec![top.to_string()],
                    None => first_segments(&tokens, j),
                };
                for target in targets {
                    if target != module[0] {
                        named.insert(target);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    named
}

/// The module path of a file under `src/`: `email/config.rs` is
/// `["email", "config"]`, `email/mod.rs` is `["email"]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_owned());
    }
    parts
}

/// Module → the top-level modules it names, for every library file
/// (`main.rs` is the binary, above everything).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(REPO).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files_under(&src) {
        let relative = path.strip_prefix(&src).expect("under src/");
        if path.extension().and_then(|e| e.to_str()) != Some("rs")
            || relative == Path::new("main.rs")
            || relative == Path::new("lib.rs")
        {
            continue;
        }
        let module = module_path(relative);
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        let named = named_modules(&module, &read(&path));
        graph.entry(module[0].to_owned()).or_default().extend(named);
    }
    graph
}

/// The layer of each module.
fn layer_of() -> BTreeMap<&'static str, usize> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(layer, names)| names.iter().map(move |name| (*name, layer)))
        .collect()
}

/// Every edge that goes sideways or up, and every module not placed in
/// [`LAYERS`], as messages.
fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let layers = layer_of();
    let mut problems = Vec::new();
    for (module, named) in graph {
        let Some(&from) = layers.get(module.as_str()) else {
            problems.push(format!("src/{module}: not placed in LAYERS"));
            continue;
        };
        for target in named {
            match layers.get(target.as_str()) {
                // A name of the crate root (`crate::VERSION`).
                None if !graph.contains_key(target) => {}
                None => problems.push(format!("src/{target}: not placed in LAYERS")),
                Some(&to) if to >= from => problems.push(format!(
                    "{module} (layer {from}) imports {target} (layer {to}): a module imports only downward"
                )),
                Some(_) => {}
            }
        }
    }
    problems
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next) {
                if let Some(cycle) = visit(graph, next, path, done) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(graph, node, &mut Vec::new(), &mut done))
}

#[test]
fn import_graph_has_no_upward_edges_and_no_cycles() {
    let graph = import_graph();
    let layers = layer_of();
    let mut listing = String::new();
    for (module, named) in &graph {
        let named: Vec<&str> = named.iter().map(String::as_str).collect();
        listing.push_str(&format!(
            "{module} (layer {}) -> {}\n",
            layers
                .get(module.as_str())
                .map_or("?".to_owned(), |l| l.to_string()),
            if named.is_empty() {
                "(nothing)".to_owned()
            } else {
                named.join(", ")
            }
        ));
    }
    println!("{listing}");
    for name in layers.keys() {
        assert!(
            graph.contains_key(*name),
            "LAYERS names `{name}`, which is not a module under src/"
        );
    }
    let problems = violations(&graph);
    assert!(problems.is_empty(), "{}\n\n{listing}", problems.join("\n"));
    assert_eq!(cycle(&graph), None, "{listing}");
}

#[test]
fn the_import_reader_sees_every_form_of_path_and_nothing_else() {
    let text = r##"
//! [`crate::commands`] in a doc comment is not an import.
use std::fmt;
use crate::{config::Config, content::{Site, Article}};
use super::address::EmailAddress;
fn f() -> &'static str {
    let _ = crate::feed::plan;
    let _ = "crate::cache in a string";
    let _ = r#"crate::delivery in a raw string"#;
    let _ = 'c';
    /* crate::stamp in a block comment */
    "x"
}
#[cfg(test)]
mod tests {
    use super::*;
    use super::super::super::text::single_line;
}
"##;
    let named = named_modules(&["email", "config"], text);
    let named: Vec<&str> = named.iter().map(String::as_str).collect();
    // `super::address` from email::config is email::address: inside email.
    assert_eq!(named, ["config", "content", "feed", "text"]);

    // From a top-level file, `super::x` is the top-level module x.
    let named = named_modules(&["cache"], "use super::content::Found;\n");
    assert!(named.contains("content"), "{named:?}");
}

#[test]
fn the_layer_check_catches_an_upward_edge_and_a_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _) in layer_of() {
        graph.insert(module.to_owned(), BTreeSet::new());
    }
    graph
        .get_mut("config")
        .expect("config")
        .insert("email".into());
    graph
        .get_mut("email")
        .expect("email")
        .insert("config".into());
    let problems = violations(&graph).join("\n");
    assert!(
        problems.contains("config (layer 2) imports email (layer 4)"),
        "{problems}"
    );
    assert!(cycle(&graph).is_some());
    graph.insert("newmodule".into(), BTreeSet::new());
    assert!(violations(&graph)
        .join("\n")
        .contains("src/newmodule: not placed in LAYERS"));
}
