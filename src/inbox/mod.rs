//! Mailboxes that bounces and complaints are read from: the raw messages
//! and a way to mark each one processed once what it says is recorded.
//! An I/O adapter: it reads mail, it does not decide what a message
//! means (that is `bounce`) nor record it (that is the command's ledger).

pub mod imap;
