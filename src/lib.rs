//! pressroom: Markdown articles in, strictly valid feeds and newsletters out.
//!
//! The library is the core (load a [`content::Site`], render feeds and
//! emails) and the commands that run it; the binary in `main.rs` only
//! parses arguments and maps results to exit codes. Parsing and rendering
//! take values and return values. The disk is read and written by
//! [`commands`] and the adapters they call: [`fs`] (atomic writes),
//! `content::find_articles` and `Site::load` (articles),
//! `email::Templates::load` (templates), [`cache`] (the build cache) and
//! [`delivery`] (ledger, lock, subscriber list), [`inbox`] (bounce
//! mailboxes); the network only by `delivery::smtp` and `inbox::imap`.

pub mod address;
pub mod bounce;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod content;
pub mod delivery;
pub mod email;
pub mod error_kind;
pub mod feed;
pub mod fs;
pub mod inbox;
pub mod live;
pub mod net;
pub mod serve;
pub mod stamp;
pub mod text;

/// The version string feeds name in their generator element.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit this binary was built from (`build.rs`), or "commit unknown".
pub const BUILT_FROM: &str = env!("PRESSROOM_BUILT_FROM");
