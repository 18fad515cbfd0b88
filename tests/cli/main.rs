//! Integration tests: see the modules.

mod delivery;
