//! The subscriber list (`subscribers.csv`), read as a stream: a header row
//! with an `email` column (any case), an optional `name`, and any other
//! columns kept as fields for the templates.
//!
//! Rows are parsed one at a time into [`Subscriber`]s whose address is an
//! [`EmailAddress`]. Rows that cannot be used (bad address, undecodable
//! bytes) and duplicates (same address ignoring case; the first row wins)
//! are skipped and recorded as [`RowProblem`]s naming `file:line`, never
//! dropped silently.
//!
//! Memory: the reader keeps one 16-byte digest of each distinct normalized
//! address (plus the line it was first seen on) in a hash map, about 40
//! bytes per subscriber with the table's overhead, so a 1,000,000-row list
//! costs about 40 MB whatever the rows' width. At most
//! [`MAX_KEPT_PROBLEMS`] problems are kept; beyond that only counted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::address::EmailAddress;
use crate::error_kind::{ErrorKind, HasKind};

/// Problems kept in full; later ones are only counted.
pub const MAX_KEPT_PROBLEMS: usize = 10_000;

/// One usable row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub email: EmailAddress,
    /// The `name` column, trimmed; `None` when absent or empty.
    pub name: Option<String>,
    /// Every other column, by its header as written.
    pub fields: BTreeMap<String, String>,
    /// The line the row starts on (the header is line 1).
    pub line: u64,
}

/// A row that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub file: PathBuf,
    pub line: u64,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The row has no usable address; the text says why.
    Invalid(String),
    /// The address already appeared (ignoring case) on `first_line`.
    Duplicate { first_line: u64 },
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: email: ", self.file.display(), self.line)?;
        match &self.kind {
            ProblemKind::Invalid(why) => write!(f, "{why}; row skipped"),
            ProblemKind::Duplicate { first_line } => write!(
                f,
                "same address as line {first_line} (case ignored); row skipped"
            ),
        }
    }
}

/// Why the list cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SubscribersError {
    #[error("{}: no such file; create the subscriber list (a header row `email,name`, then one subscriber a line), or set `subscribers` under [send] to where it is", path.display())]
    Missing { path: PathBuf },
    // The cause is the error's source: `{:#}` prints it once.
    #[error("{}: cannot read the subscriber list", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:1: the header row has no `email` column (found: {found}); the first row must name the columns, e.g. `email,name`", path.display())]
    NoEmailColumn { path: PathBuf, found: String },
    #[error("{}: the file is empty; it needs a header row with an `email` column", path.display())]
    Empty { path: PathBuf },
}

impl HasKind for SubscribersError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Input
    }
}

/// Counts line breaks as the CSV parser reads, so rows can be given the
/// line they start on (the parser's own count skips blank lines). Only the
/// breaks inside the parser's read-ahead buffer are held.
struct LineCounter<R> {
    inner: R,
    offset: u64,
    breaks: VecDeque<u64>,
    passed: u64,
    /// The input has run out (a read returned nothing).
    at_eof: bool,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.at_eof |= n == 0 && !buf.is_empty();
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                self.breaks.push_back(self.offset + i as u64);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineCounter<R> {
    /// The 1-based line a record starts on, from the offset just past it
    /// and the line breaks inside its fields. (The parser's own positions
    /// count skipped blank lines into the next record.)
    fn record_line(&mut self, end: u64, breaks_inside: u64) -> u64 {
        let mut ends_with_break = false;
        // A record the parser could only finish at the end of the input
        // (an unclosed quote) has no terminator: a break just before its
        // end is inside a field, already among `breaks_inside`.
        let terminated = !(self.at_eof && end == self.offset);
        while let Some(&b) = self.breaks.front() {
            if b >= end {
                break;
            }
            ends_with_break = terminated && b + 1 == end;
            self.breaks.pop_front();
            self.passed += 1;
        }
        (self.passed + 1).saturating_sub(u64::from(ends_with_break) + breaks_inside)
    }
}

/// A streaming reader over the list; iterate it for [`Subscriber`]s, then
/// look at [`Subscribers::problems`].
pub struct Subscribers<R> {
    path: PathBuf,
    reader: csv::Reader<LineCounter<R>>,
    record: csv::StringRecord,
    email_column: usize,
    name_column: Option<usize>,
    field_columns: Vec<(usize, String)>,
    /// First line of each distinct normalized address, by digest.
    seen: HashMap<[u8; 16], u64>,
    problems: Vec<RowProblem>,
    problems_omitted: u64,
    failed: bool,
}

impl Subscribers<File> {
    /// Opens the list at `path` (relative to the site folder `root`, or
    /// absolute) and reads its header row. Messages name it as they name
    /// articles: relative to the site folder when it is inside it.
    pub fn open(root: &Path, path: &Path) -> Result<Self, SubscribersError> {
        let full = root.join(path);
        let path = &PathBuf::from(crate::content::display_path(root, &full));
        let file = File::open(&full).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => SubscribersError::Missing {
                path: path.to_owned(),
            },
            _ => SubscribersError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
        Subscribers::from_reader(path, file)
    }
}

impl<R: Read> Subscribers<R> {
    /// Reads the header row from `input`; `path` names it in messages.
    pub fn from_reader(path: &Path, input: R) -> Result<Self, SubscribersError> {
        let path = path.to_owned();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(LineCounter {
                inner: input,
                offset: 0,
                breaks: VecDeque::new(),
                passed: 0,
                at_eof: false,
            });
        let mut header = csv::StringRecord::new();
        let has_header = reader
            .read_record(&mut header)
            .map_err(|e| match e.kind() {
                csv::ErrorKind::Io(_) => SubscribersError::Io {
                    path: path.clone(),
                    source: io::Error::other(e.to_string()),
                },
                _ => SubscribersError::NoEmailColumn {
                    path: path.clone(),
                    found: format!("an unreadable header row ({e})"),
                },
            })?;
        if !has_header {
            return Err(SubscribersError::Empty { path });
        }
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = if i == 0 {
                    h.trim_start_matches('\u{feff}')
                } else {
                    h
                };
                h.trim().to_owned()
            })
            .collect();
        let email_column = names
            .iter()
            .position(|h| h.eq_ignore_ascii_case("email"))
            .ok_or_else(|| SubscribersError::NoEmailColumn {
                path: path.clone(),
                found: if names.iter().all(String::is_empty) {
                    "nothing".to_owned()
                } else {
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })?;
        let name_column = names.iter().position(|h| h.eq_ignore_ascii_case("name"));
        let field_columns = names
            .iter()
            .enumerate()
            .filter(|(i, h)| *i != email_column && Some(*i) != name_column && !h.is_empty())
            .map(|(i, h)| (i, h.clone()))
            .collect();
        Ok(Subscribers {
            path,
            reader,
            record: csv::StringRecord::new(),
            email_column,
            name_column,
            field_columns,
            seen: HashMap::new(),
            problems: Vec::new(),
            problems_omitted: 0,
            failed: false,
        })
    }

    /// The columns besides `email` and `name`, as the header names them:
    /// every row has a field of each (empty where the row has no cell).
    pub fn field_names(&self) -> Vec<String> {
        self.field_columns.iter().map(|(_, h)| h.clone()).collect()
    }

    /// Rows skipped so far (at most [`MAX_KEPT_PROBLEMS`]).
    pub fn problems(&self) -> &[RowProblem] {
        &self.problems
    }

    /// The list's path as messages name it.
    pub fn name(&self) -> &Path {
        &self.path
    }

    /// Rows skipped beyond those kept in [`Subscribers::problems`].
    pub fn problems_omitted(&self) -> u64 {
        self.problems_omitted
    }

    /// Reads the whole list into memory (for small lists and tests).
    pub fn read_all(mut self) -> Result<(Vec<Subscriber>, Vec<RowProblem>), SubscribersError> {
        let mut all = Vec::new();
        for s in &mut self {
            all.push(s?);
        }
        Ok((all, self.problems))
    }

    fn problem(&mut self, line: u64, kind: ProblemKind) {
        if self.problems.len() < MAX_KEPT_PROBLEMS {
            self.problems.push(RowProblem {
                file: self.path.clone(),
                line,
                kind,
            });
        } else {
            self.problems_omitted += 1;
        }
    }

    fn next_row(&mut self) -> Option<Result<Subscriber, SubscribersError>> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    if let csv::ErrorKind::Io(_) = e.kind() {
                        self.failed = true;
                        return Some(Err(SubscribersError::Io {
                            path: self.path.clone(),
                            source: io::Error::other(e.to_string()),
                        }));
                    }
                    let end = self.reader.position().byte();
                    let line = self.reader.get_mut().record_line(end, 0).max(1);
                    self.problem(
                        line,
                        ProblemKind::Invalid(format!("the row cannot be read ({e})")),
                    );
                    continue;
                }
            }
            let end = self.reader.position().byte();
            let inside = self
                .record
                .iter()
                .map(|f| f.bytes().filter(|b| *b == b'\n').count() as u64)
                .sum();
            let line = self.reader.get_mut().record_line(end, inside).max(1);
            // A blank line is not a subscriber and not worth a complaint.
            if self.record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let raw = self.record.get(self.email_column).unwrap_or("").trim();
            let email = match EmailAddress::parse(raw) {
                Ok(email) => email,
                Err(e) => {
                    let why = if raw.is_empty() {
                        "no address in the `email` column".to_owned()
                    } else {
                        e.to_string()
                    };
                    self.problem(line, ProblemKind::Invalid(why));
                    continue;
                }
            };
            let digest = address_digest(&email);
            if let Some(&first_line) = self.seen.get(&digest) {
                self.problem(line, ProblemKind::Duplicate { first_line });
                continue;
            }
            self.seen.insert(digest, line);
            let name = self
                .name_column
                .and_then(|i| self.record.get(i))
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
            let fields = self
                .field_columns
                .iter()
                .map(|(i, h)| (h.clone(), self.record.get(*i).unwrap_or("").to_owned()))
                .collect();
            return Some(Ok(Subscriber {
                email,
                name,
                fields,
                line,
            }));
        }
    }
}

impl<R: Read> Iterator for Subscribers<R> {
    type Item = Result<Subscriber, SubscribersError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        self.next_row()
    }
}

/// 128 bits of SHA-256 of the normalized address: collisions are
/// astronomically unlikely even for millions of rows.
fn address_digest(email: &EmailAddress) -> [u8; 16] {
    let hash = Sha256::digest(email.normalized().as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Subscriber>, Vec<RowProblem>) {
        Subscribers::from_reader(Path::new("subscribers.csv"), text.as_bytes())
            .unwrap()
            .read_all()
            .unwrap()
    }

    /// Regression test for a bug the `subscribers_csv` fuzz target found:
    /// when the last row's quote was never closed and the file ended with
    /// a line break, that break was counted both inside the field and as
    /// the row's end, so the row got a line number before its own (one
    /// less than the row above it, after a row ended by a lone CR).
    #[test]
    fn an_unclosed_quote_at_the_end_does_not_count_its_break_twice() {
        let (subs, _) = read("email\nl@e.co\nt@e.com,\"\n");
        let lines: Vec<(&str, u64)> = subs.iter().map(|s| (s.email.as_str(), s.line)).collect();
        assert_eq!(lines, [("l@e.co", 2), ("t@e.com", 3)]);
        let (subs, _) = read("email\nl@e.co\rt@e.com,\"\n");
        let lines: Vec<(&str, u64)> = subs.iter().map(|s| (s.email.as_str(), s.line)).collect();
        assert_eq!(lines, [("l@e.co", 2), ("t@e.com", 2)]);
    }

    #[test]
    fn reads_columns_by_header_in_any_case() {
        let (subs, problems) = read(
            "\u{feff}Name,EMAIL,plan\nMara,mara@example.com,pro\n,ben@example.com,\n\"Lee, Jo\",jo@example.com,free\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(subs.len(), 3);
        assert_eq!(subs[0].email.as_str(), "mara@example.com");
        assert_eq!(subs[0].name.as_deref(), Some("Mara"));
        assert_eq!(subs[0].fields.get("plan").map(String::as_str), Some("pro"));
        assert_eq!(subs[0].line, 2);
        assert_eq!(subs[1].name, None);
        assert_eq!(subs[2].name.as_deref(), Some("Lee, Jo"));
        assert_eq!(subs[2].line, 4);
    }

    #[test]
    fn invalid_rows_and_duplicates_are_reported_with_their_line() {
        let (subs, problems) = read(
            "email,name\na@example.com,A\nnot-an-address,B\n\nA@EXAMPLE.com,dup\n,empty\n\"x@example.com\r\nBcc: y@example.com\",evil\nc@example.com\n",
        );
        let emails: Vec<_> = subs.iter().map(|s| s.email.as_str()).collect();
        assert_eq!(emails, ["a@example.com", "c@example.com"]);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 4, "{text:#?}");
        assert!(
            text[0]
                .starts_with("subscribers.csv:3: email: `not-an-address` is not an email address"),
            "{}",
            text[0]
        );
        assert_eq!(
            text[1],
            "subscribers.csv:5: email: same address as line 2 (case ignored); row skipped"
        );
        assert!(
            text[2].starts_with("subscribers.csv:6: email: no address"),
            "{}",
            text[2]
        );
        assert!(
            text[3].starts_with("subscribers.csv:7: email:"),
            "{}",
            text[3]
        );
        assert!(text[3].contains("line break"), "{}", text[3]);
        assert_eq!(subs[1].line, 9);
    }

    #[test]
    fn a_list_without_an_email_column_names_the_file() {
        let err = Subscribers::from_reader(
            Path::new("subs.csv"),
            "name,mail\nA,a@example.com\n".as_bytes(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.starts_with(
                "subs.csv:1: the header row has no `email` column (found: `name`, `mail`)"
            ),
            "{err}"
        );
        let err = Subscribers::from_reader(Path::new("subs.csv"), "".as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("subs.csv: the file is empty"), "{err}");
        let err = Subscribers::open(Path::new("/site"), Path::new("/nonexistent/subs.csv"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("/nonexistent/subs.csv: no such file; create the subscriber list"),
            "{err}"
        );
        // Other I/O trouble names the file; the cause is the source, shown
        // once by `{:#}`.
        let dir = tempfile::tempdir().unwrap();
        let err = Subscribers::open(dir.path(), Path::new("")).err().unwrap();
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert!(
            shown.contains("cannot read the subscriber list: "),
            "{shown}"
        );
        let cause = shown.split("subscriber list: ").nth(1).unwrap();
        assert_eq!(shown.matches(cause).count(), 1, "{shown}");
    }

    #[test]
    fn undecodable_bytes_skip_only_their_row() {
        let mut bytes = b"email,name\na@example.com,A\nb@example.com,".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\nc@example.com,C\n");
        let (subs, problems) = Subscribers::from_reader(Path::new("s.csv"), &bytes[..])
            .unwrap()
            .read_all()
            .unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 3);
        assert!(
            problems[0].to_string().contains("cannot be read"),
            "{}",
            problems[0]
        );
    }

    /// A million rows stream through with only the digest table held.
    #[test]
    fn a_million_rows_stream() {
        struct Gen {
            n: u64,
            buf: Vec<u8>,
            pos: usize,
        }
        impl Read for Gen {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.pos == self.buf.len() {
                    if self.n == 1_000_000 {
                        return Ok(0);
                    }
                    self.buf.clear();
                    self.pos = 0;
                    if self.n == 0 {
                        self.buf.extend_from_slice(b"email,name\n");
                    }
                    for _ in 0..1000 {
                        self.n += 1;
                        let line = format!("reader{}@example.com,Reader {}\n", self.n, self.n);
                        self.buf.extend_from_slice(line.as_bytes());
                    }
                }
                let k = out.len().min(self.buf.len() - self.pos);
                out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
                self.pos += k;
                Ok(k)
            }
        }
        let gen = Gen {
            n: 0,
            buf: Vec::new(),
            pos: 0,
        };
        let mut subs = Subscribers::from_reader(Path::new("big.csv"), gen).unwrap();
        let mut count = 0u64;
        for s in &mut subs {
            s.unwrap();
            count += 1;
        }
        assert_eq!(count, 1_000_000);
        assert!(subs.problems().is_empty());
    }
}
