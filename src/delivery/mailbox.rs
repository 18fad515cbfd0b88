//! Mailboxes that bounce and complaint reports are read from: a Maildir,
//! an mbox file, or one message on stdin (an MTA's pipe). Each is a
//! [`Mailbox`]: it yields messages one at a time (memory stays flat
//! however many there are), names each one for messages about it, and
//! marks messages processed once the ledger has committed what they said.
//!
//! A Maildir marks a message processed the way mail clients mark one
//! read: it moves from `new/` to `cur/` with the `S` (seen) flag, or gains
//! the flag in `cur/` (`NAME:2,S`), one `rename` each, so a message is
//! never copied, rewritten or lost; messages already flagged `S` are
//! skipped. An mbox file and stdin are never written: reading them again
//! finds the same reports, which the ledger counts once.

use std::fs::{self, File, ReadDir};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One message read from a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// How messages about it name it: a Maildir's `new/FILE`, an mbox's
    /// `FILE:LINE`, `stdin`.
    pub name: String,
    pub raw: Vec<u8>,
}

/// A message that could not be read (or marked), named, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub name: String,
    pub why: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.why)
    }
}

/// A source of raw messages.
pub trait Mailbox {
    /// Where reports from it come from, as the ledger records it
    /// (`maildir`, `mbox`, `stdin`, `imap`).
    fn source(&self) -> &'static str;

    /// The next message not processed yet, or one that cannot be read
    /// (it stays where it is); None when there are no more.
    fn next_message(&mut self) -> Option<Result<Message, Unreadable>>;

    /// Marks the messages with these names processed, so the next run
    /// skips them. Called only after the ledger committed their reports;
    /// returns those that could not be marked (they are read again next
    /// time, and count once).
    fn mark_processed(&mut self, names: &[String]) -> Vec<Unreadable>;
}

/// A Maildir (`cur/`, `new/`, `tmp/`): `cur/` is read first, then
/// `new/`, each as the directory lists it, without collecting the names.
pub struct Maildir {
    root: PathBuf,
    /// `cur` then `new`, the folder being listed, and its listing.
    pending: Vec<&'static str>,
    listing: Option<(&'static str, ReadDir)>,
}

impl Maildir {
    /// Opens the Maildir at `root`; it must have `cur/` and `new/`.
    pub fn open(root: &Path) -> io::Result<Maildir> {
        for sub in ["cur", "new"] {
            let dir = root.join(sub);
            if !dir.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "{}: no such folder; a Maildir has cur/, new/ and tmp/",
                        dir.display()
                    ),
                ));
            }
        }
        Ok(Maildir {
            root: root.to_owned(),
            pending: vec!["new", "cur"],
            listing: None,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// The flags of a Maildir file name (`UNIQUE:2,FLAGS`), if it has any.
fn flags(file: &str) -> Option<&str> {
    file.rsplit_once(":2,").map(|(_, flags)| flags)
}

/// The name a processed message gets in `cur/`: its flags with `S`
/// added (flags stay in ASCII order, as the Maildir spec asks).
fn seen_name(file: &str) -> String {
    match file.rsplit_once(":2,") {
        Some((unique, flags)) => {
            let mut all: Vec<char> = flags.chars().filter(|c| *c != 'S').collect();
            all.push('S');
            all.sort_unstable();
            format!("{unique}:2,{}", all.into_iter().collect::<String>())
        }
        None => format!("{file}:2,S"),
    }
}

impl Mailbox for Maildir {
    fn source(&self) -> &'static str {
        "maildir"
    }

    fn next_message(&mut self) -> Option<Result<Message, Unreadable>> {
        loop {
            if self.listing.is_none() {
                let sub = self.pending.pop()?;
                match fs::read_dir(self.root.join(sub)) {
                    Ok(listing) => self.listing = Some((sub, listing)),
                    Err(e) => {
                        return Some(Err(Unreadable {
                            name: format!("{sub}/"),
                            why: format!("cannot list the folder: {e}"),
                        }))
                    }
                }
            }
            let (sub, listing) = self.listing.as_mut()?;
            let sub = *sub;
            let Some(entry) = listing.next() else {
                self.listing = None;
                continue;
            };
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.listing = None;
                    return Some(Err(Unreadable {
                        name: format!("{sub}/"),
                        why: format!("cannot list the folder: {e}"),
                    }));
                }
            };
            let file = entry.file_name();
            let Some(file) = file.to_str() else {
                return Some(Err(Unreadable {
                    name: format!("{sub}/{}", file.to_string_lossy()),
                    why: "the file name is not UTF-8; move it out of the Maildir".into(),
                }));
            };
            if file.starts_with('.') || flags(file).is_some_and(|f| f.contains('S')) {
                continue;
            }
            let name = format!("{sub}/{file}");
            match fs::read(entry.path()) {
                Ok(raw) => return Some(Ok(Message { name, raw })),
                // Taken meanwhile (another run, a mail client): not ours.
                // A link to nothing is still there, and named.
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && fs::symlink_metadata(entry.path()).is_err() =>
                {
                    continue
                }
                // A folder, or anything else that is not a message file.
                Err(e) if e.kind() == io::ErrorKind::IsADirectory => continue,
                Err(e) => {
                    return Some(Err(Unreadable {
                        name,
                        why: format!("cannot read: {e}"),
                    }))
                }
            }
        }
    }

    fn mark_processed(&mut self, names: &[String]) -> Vec<Unreadable> {
        let mut problems = Vec::new();
        for name in names {
            let Some((_, file)) = name.split_once('/') else {
                continue;
            };
            let to = self.root.join("cur").join(seen_name(file));
            match fs::rename(self.path(name), &to) {
                Ok(()) => {}
                // Moved meanwhile by another run: it was processed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => problems.push(Unreadable {
                    name: name.clone(),
                    why: format!("cannot mark it processed (rename to cur/): {e}"),
                }),
            }
        }
        problems
    }
}

/// An mbox file (mboxo or mboxrd: `From ` lines start messages, `>From `
/// in a body loses one `>`), read a message at a time.
pub struct Mbox {
    display: String,
    reader: BufReader<File>,
    /// The `From ` line that starts the next message, already read.
    next_from: Option<u64>,
    line: u64,
    done: bool,
}

impl Mbox {
    pub fn open(path: &Path) -> io::Result<Mbox> {
        let file = File::open(path)?;
        Ok(Mbox {
            display: path.display().to_string(),
            reader: BufReader::with_capacity(1 << 16, file),
            next_from: None,
            line: 0,
            done: false,
        })
    }
}

impl Mailbox for Mbox {
    fn source(&self) -> &'static str {
        "mbox"
    }

    fn next_message(&mut self) -> Option<Result<Message, Unreadable>> {
        if self.done {
            return None;
        }
        let mut raw = Vec::new();
        let mut start = self.next_from.take();
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = match self.reader.read_until(b'\n', &mut line) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(Unreadable {
                        name: format!("{}:{}", self.display, self.line + 1),
                        why: format!("cannot read: {e}"),
                    }));
                }
            };
            if read == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            if line.starts_with(b"From ") {
                if start.is_some() {
                    self.next_from = Some(self.line);
                    break;
                }
                start = Some(self.line);
                continue;
            }
            if start.is_none() {
                // Text before the first `From ` line is no message.
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                start = Some(self.line);
            }
            // mboxrd: `>From `, `>>From `… lose one `>`.
            let unquoted = match line.iter().position(|&b| b != b'>') {
                Some(n) if n > 0 && line[n..].starts_with(b"From ") => &line[1..],
                _ => &line[..],
            };
            raw.extend_from_slice(unquoted);
        }
        let start = start?;
        // The blank line that separates messages is not part of one.
        if raw.ends_with(b"\r\n\r\n") {
            raw.truncate(raw.len() - 2);
        } else if raw.ends_with(b"\n\n") {
            raw.truncate(raw.len() - 1);
        }
        Some(Ok(Message {
            name: format!("{}:{start}", self.display),
            raw,
        }))
    }

    fn mark_processed(&mut self, _names: &[String]) -> Vec<Unreadable> {
        Vec::new()
    }
}

/// One message on stdin (`bounces -`, for an MTA's pipe).
pub struct Stdin {
    read: bool,
}

impl Stdin {
    pub fn new() -> Stdin {
        Stdin { read: false }
    }
}

impl Default for Stdin {
    fn default() -> Self {
        Stdin::new()
    }
}

impl Mailbox for Stdin {
    fn source(&self) -> &'static str {
        "stdin"
    }

    fn next_message(&mut self) -> Option<Result<Message, Unreadable>> {
        if std::mem::replace(&mut self.read, true) {
            return None;
        }
        let mut raw = Vec::new();
        Some(match io::stdin().lock().read_to_end(&mut raw) {
            Ok(_) => Ok(Message {
                name: "stdin".into(),
                raw,
            }),
            Err(e) => Err(Unreadable {
                name: "stdin".into(),
                why: format!("cannot read: {e}"),
            }),
        })
    }

    fn mark_processed(&mut self, _names: &[String]) -> Vec<Unreadable> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(mailbox: &mut dyn Mailbox) -> Vec<Result<Message, Unreadable>> {
        std::iter::from_fn(|| mailbox.next_message()).collect()
    }

    #[test]
    fn seen_names_keep_flags_in_order() {
        assert_eq!(seen_name("123.abc"), "123.abc:2,S");
        assert_eq!(seen_name("123.abc:2,"), "123.abc:2,S");
        assert_eq!(seen_name("123.abc:2,FT"), "123.abc:2,FST");
        assert_eq!(seen_name("123.abc:2,S"), "123.abc:2,S");
    }

    #[test]
    fn a_maildir_is_read_once_and_marked_by_rename() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        fs::write(dir.path().join("new/1.a"), b"one").unwrap();
        fs::write(dir.path().join("cur/2.b:2,F"), b"two").unwrap();
        fs::write(dir.path().join("cur/3.c:2,S"), b"done before").unwrap();
        fs::write(dir.path().join("tmp/4.d"), b"being delivered").unwrap();
        fs::write(dir.path().join("new/.hidden"), b"x").unwrap();
        let mut maildir = Maildir::open(dir.path()).unwrap();
        let mut got: Vec<Message> = all(&mut maildir).into_iter().map(Result::unwrap).collect();
        got.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            got.iter()
                .map(|m| (m.name.as_str(), m.raw.as_slice()))
                .collect::<Vec<_>>(),
            [("cur/2.b:2,F", &b"two"[..]), ("new/1.a", &b"one"[..])]
        );
        let names: Vec<String> = got.into_iter().map(|m| m.name).collect();
        assert!(maildir.mark_processed(&names).is_empty());
        assert_eq!(fs::read(dir.path().join("cur/1.a:2,S")).unwrap(), b"one");
        assert_eq!(fs::read(dir.path().join("cur/2.b:2,FS")).unwrap(), b"two");
        assert!(fs::read_dir(dir.path().join("new")).unwrap().all(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')));
        let mut again = Maildir::open(dir.path()).unwrap();
        assert!(all(&mut again).is_empty());
        assert!(Maildir::open(&dir.path().join("cur")).is_err());
    }

    #[test]
    fn an_mbox_is_split_at_from_lines_and_unquoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bounces.mbox");
        fs::write(
            &path,
            "From MAILER-DAEMON Sat Jan  3 01:05:34 1996\nSubject: one\n\nbody\n>From here\n>>From there\n\n\
             From MAILER-DAEMON Sat Jan  3 01:05:35 1996\nSubject: two\n\nFrom-less body\n",
        )
        .unwrap();
        let mut mbox = Mbox::open(&path).unwrap();
        let got: Vec<Message> = all(&mut mbox).into_iter().map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            String::from_utf8_lossy(&got[0].raw),
            "Subject: one\n\nbody\nFrom here\n>From there\n"
        );
        assert!(got[0].name.ends_with("bounces.mbox:1"), "{}", got[0].name);
        assert_eq!(
            String::from_utf8_lossy(&got[1].raw),
            "Subject: two\n\nFrom-less body\n"
        );
        assert!(got[1].name.ends_with("bounces.mbox:8"), "{}", got[1].name);
        let empty = dir.path().join("empty.mbox");
        fs::write(&empty, "").unwrap();
        assert!(all(&mut Mbox::open(&empty).unwrap()).is_empty());
    }
}
