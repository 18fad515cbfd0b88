//! The subscriber list during a run, kept on disk rather than in memory:
//! the rows are streamed into a private temporary SQLite database (opened
//! with an empty file name, deleted when the run ends; SQLite keeps only a
//! small page cache of it in memory), keyed by normalized address. A send
//! looks each due delivery's reader up by key, and an issue's deliveries
//! are created from it page by page, so memory stays flat however long the
//! list is.

use std::collections::{BTreeMap, VecDeque};

use rusqlite::{params, Connection, OptionalExtension};

use crate::address::EmailAddress;
use crate::email::Recipient;
use crate::error_kind::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("subscriber list (temporary store): {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("subscriber list (temporary store) holds something unreadable: {0}")]
    Corrupt(String),
}

impl HasKind for RosterError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Run
    }
}

/// Rows read per page when iterating.
const PAGE: usize = 1000;

pub struct Roster {
    conn: Connection,
    len: u64,
}

impl std::fmt::Debug for Roster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roster").field("len", &self.len).finish()
    }
}

impl Roster {
    /// Stores `rows` (whose addresses are distinct once normalized, as
    /// [`super::subscribers::Subscribers`] gives them; a repeated address
    /// replaces the earlier row). The first error from `rows` stops it.
    pub fn build<E>(rows: impl IntoIterator<Item = Result<Recipient, E>>) -> Result<Roster, E>
    where
        E: From<RosterError>,
    {
        let conn = Connection::open("").map_err(RosterError::from)?;
        conn.execute_batch(
            "PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             CREATE TABLE recipients (
                 recipient TEXT PRIMARY KEY,
                 address TEXT NOT NULL,
                 name TEXT,
                 fields TEXT
             ) WITHOUT ROWID;
             BEGIN;",
        )
        .map_err(RosterError::from)?;
        {
            let mut insert = conn
                .prepare(
                    "INSERT INTO recipients (recipient, address, name, fields) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (recipient) DO UPDATE SET
                         address = excluded.address, name = excluded.name, fields = excluded.fields",
                )
                .map_err(RosterError::from)?;
            for row in rows {
                let r = row?;
                let fields = if r.fields.is_empty() {
                    None
                } else {
                    Some(
                        serde_json::to_string(&r.fields)
                            .map_err(|e| RosterError::Corrupt(e.to_string()))?,
                    )
                };
                insert
                    .execute(params![
                        r.email.normalized(),
                        r.email.as_str(),
                        r.name,
                        fields
                    ])
                    .map_err(RosterError::from)?;
            }
        }
        conn.execute_batch("COMMIT").map_err(RosterError::from)?;
        let len = conn
            .query_row("SELECT COUNT(*) FROM recipients", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(RosterError::from)? as u64;
        Ok(Roster { conn, len })
    }

    /// How many distinct readers.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The reader with this normalized address.
    pub fn get(&self, normalized: &str) -> Result<Option<Recipient>, RosterError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT address, name, fields FROM recipients WHERE recipient = ?1")?;
        let row = stmt
            .query_row(params![normalized], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .optional()?;
        row.map(|(address, name, fields)| recipient(&address, name, fields.as_deref()))
            .transpose()
    }

    /// Every reader, by normalized address, read a page at a time.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            roster: self,
            after: String::new(),
            page: VecDeque::new(),
            done: false,
        }
    }

    fn page(&self, after: &str) -> Result<Vec<(String, Recipient)>, RosterError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT recipient, address, name, fields FROM recipients
             WHERE recipient > ?1 ORDER BY recipient LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, PAGE as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = Vec::with_capacity(PAGE);
        for row in rows {
            let (key, address, name, fields) = row?;
            out.push((key, recipient(&address, name, fields.as_deref())?));
        }
        Ok(out)
    }
}

fn recipient(
    address: &str,
    name: Option<String>,
    fields: Option<&str>,
) -> Result<Recipient, RosterError> {
    let email = EmailAddress::parse(address).map_err(|e| RosterError::Corrupt(e.to_string()))?;
    let fields: BTreeMap<String, String> = match fields {
        Some(json) => {
            serde_json::from_str(json).map_err(|e| RosterError::Corrupt(e.to_string()))?
        }
        None => BTreeMap::new(),
    };
    Ok(Recipient {
        email,
        name,
        fields,
    })
}

/// See [`Roster::iter`].
pub struct Iter<'a> {
    roster: &'a Roster,
    after: String,
    page: VecDeque<Recipient>,
    done: bool,
}

impl Iterator for Iter<'_> {
    type Item = Result<Recipient, RosterError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            match self.roster.page(&self.after) {
                Ok(page) => {
                    self.done = page.len() < PAGE;
                    if let Some((key, _)) = page.last() {
                        self.after = key.clone();
                    }
                    self.page = page.into_iter().map(|(_, r)| r).collect();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.page.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::tests::reader;

    #[test]
    fn stores_looks_up_and_pages_through_readers() {
        let mut rows: Vec<Recipient> = (0..2500)
            .map(|i| {
                reader(
                    &format!("Reader{i:05}@Example.com"),
                    (i % 3 != 0).then_some("Ann \"Quote\" Lee"),
                    if i % 2 == 0 {
                        &[("city", "Zürich"), ("plan", "")]
                    } else {
                        &[]
                    },
                )
            })
            .collect();
        rows.push(reader("reader00001@example.com", Some("Replaced"), &[]));
        let roster = Roster::build(rows.iter().cloned().map(Ok::<_, RosterError>)).expect("build");
        assert_eq!(roster.len(), 2500);
        assert_eq!(
            roster.get("reader00002@example.com").unwrap(),
            Some(rows[2].clone())
        );
        assert_eq!(
            roster
                .get("reader00001@example.com")
                .unwrap()
                .unwrap()
                .name
                .as_deref(),
            Some("Replaced")
        );
        assert_eq!(roster.get("Reader00002@Example.com").unwrap(), None);
        assert_eq!(roster.get("nobody@example.com").unwrap(), None);
        let all: Vec<Recipient> = roster.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 2500);
        assert_eq!(all[3], rows[3]);
        assert!(all
            .windows(2)
            .all(|w| w[0].email.normalized() < w[1].email.normalized()));

        let empty = Roster::build(std::iter::empty::<Result<Recipient, RosterError>>()).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.iter().count(), 0);
    }

    #[test]
    fn a_row_error_stops_the_build() {
        #[derive(Debug)]
        struct Bad;
        impl From<RosterError> for Bad {
            fn from(_: RosterError) -> Bad {
                Bad
            }
        }
        let rows = vec![Ok(reader("a@example.com", None, &[])), Err(Bad)];
        assert!(Roster::build(rows).is_err());
    }
}
