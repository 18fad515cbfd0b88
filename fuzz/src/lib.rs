//! Shared set-up for the fuzz targets: the fixed site configuration every
//! content and feed target parses articles against.

use std::sync::OnceLock;

use pressroom::config::Config;

/// A configuration that turns every feed feature on (tag feeds, full
/// content with CTAs, hub, icon, logo, rights) in a zone with daylight
/// saving, so parsed articles reach as much rendering code as possible.
const CONFIG: &str = r#"
[site]
title = "Fuzz & <Friends>"
description = "Articles \"about\" feeds"
base_url = "https://fuzz.example.com/blog/"
author = "Fuzz Author"
language = "en"
timezone = "Europe/Berlin"
copyright = "© 2025 Fuzz"
icon = "/favicon.png"
logo = "/logo.png"
permalink = "/{year}/{month}/{slug}/"

[feeds]
limit = 20
full_content = true
append_cta = true
tag_feeds = true
hub = "https://hub.example.com/"
id_domain = "fuzz.example.com"
"#;

/// The fixed configuration, parsed once.
pub fn config() -> &'static Config {
    static CONFIG_CELL: OnceLock<Config> = OnceLock::new();
    CONFIG_CELL.get_or_init(|| match Config::parse("fuzz.toml", CONFIG) {
        Ok(config) => config,
        Err(e) => panic!("the fuzz configuration must parse: {e}"),
    })
}
