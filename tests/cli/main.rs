//! The integration tests: one binary that copies a site (the repository's
//! sample site or a fixture under `tests/fixtures/`) into a temporary
//! folder, runs the real `pressroom` binary on it, and checks the output
//! with real consumers (feedparser, newsboat, xmllint) and strict parsers.
//!
//! Every run passes a fixed `--now` ([`common::NOW`]) so what is published
//! never depends on the day the tests run.

mod bounces;
mod bounces_imap;
mod check;
mod commands;
mod common;
mod corpus;
mod delivery;
mod feeds;
mod install;
mod layers;
mod live_preview;
mod mail;
mod preview;
mod readers;
mod rebuild;
mod send;
mod serve;
mod source;
mod structure;
mod urls;
mod webhooks;
