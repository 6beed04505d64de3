//! Support of the browser tests: the Chromium (CDP, [`cdp`]) and Firefox
//! (WebDriver BiDi, [`bidi`]) drivers, the page steps
//! they share ([`pages`]) and where the screenshots of the main screens go
//! (`docs/screenshots/`, shown in the README).
#![allow(dead_code)]

pub mod bidi;
pub mod cdp;
pub mod pages;

use std::path::PathBuf;

/// `docs/screenshots/<name>`: the screenshots a test run refreshes.
pub fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/screenshots")
        .join(name)
}
