//! Support of the browser tests: the CDP driver ([`cdp`]) and where the
//! screenshots of the main screens go (`docs/screenshots/`, shown in the
//! README).
#![allow(dead_code)]

pub mod cdp;

use std::path::PathBuf;

/// `docs/screenshots/<name>`: the screenshots a test run refreshes.
pub fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/screenshots")
        .join(name)
}
