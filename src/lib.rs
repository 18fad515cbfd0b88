//! pressroom: Markdown articles in, strictly valid feeds and newsletters out.
//!
//! The library is the pure core (load a [`content::Site`], render feeds);
//! the binary in `main.rs` only parses arguments and maps results to exit
//! codes. Only [`commands`] and [`fs`] touch the disk.

pub mod address;
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
pub mod stamp;
pub mod text;

/// The version string feeds name in their generator element.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
