//! The IMAP bounce mailbox as a [`Mailbox`]: `inbox::imap` does the
//! protocol; this names each message by its UID, hands messages out one
//! at a time, and keeps the first failure of the connection so the
//! command stops the run (exit 2) instead of reading on.

use super::mailbox::{Mailbox, Message, Unreadable};
use crate::inbox::imap::{self, ImapError};

/// An open IMAP mailbox.
pub struct Imap {
    inner: imap::Mailbox,
    /// The connection failed: nothing more is read or marked.
    failure: Option<ImapError>,
}

impl Imap {
    pub fn new(inner: imap::Mailbox) -> Imap {
        Imap {
            inner,
            failure: None,
        }
    }
}

impl Drop for Imap {
    /// Says goodbye to the server (not to one that failed: it may hang);
    /// a failure here loses nothing.
    fn drop(&mut self) {
        if self.failure.is_none() {
            self.inner.logout();
        }
    }
}

/// How a message is named: `UID 17`.
fn name(uid: u32) -> String {
    format!("UID {uid}")
}

impl Mailbox for Imap {
    fn source(&self) -> &'static str {
        "imap"
    }

    fn next_message(&mut self) -> Option<Result<Message, Unreadable>> {
        if self.failure.is_some() {
            return None;
        }
        match self.inner.next_message() {
            Ok(Some((uid, raw))) => Some(Ok(Message {
                name: name(uid),
                raw,
            })),
            Ok(None) => None,
            Err(e) => {
                self.failure = Some(e);
                None
            }
        }
    }

    fn mark_processed(&mut self, names: &[String]) -> Vec<Unreadable> {
        let uids: Vec<u32> = names
            .iter()
            .filter_map(|n| n.strip_prefix("UID ")?.parse().ok())
            .collect();
        let result = match &self.failure {
            Some(e) => Err(e.to_string()),
            None => self.inner.finish(&uids).map_err(|e| {
                let why = e.to_string();
                self.failure = Some(e);
                why
            }),
        };
        match result {
            Ok(()) => Vec::new(),
            Err(why) => names
                .iter()
                .map(|name| Unreadable {
                    name: name.clone(),
                    why: format!("not marked processed: {why}"),
                })
                .collect(),
        }
    }

    fn failure(&mut self) -> Option<String> {
        self.failure.as_ref().map(ToString::to_string)
    }
}
