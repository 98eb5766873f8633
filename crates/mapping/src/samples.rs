//! The vendors' own samples (`../shared/fixtures` beside the repository, or `HANDOFF_FIXTURES`):
//! not ours to commit, so tests find them here. Without them a test says `skipped:` out loud,
//! and under CI (`CI` set) it fails instead, naming what is missing.

use std::path::{Path, PathBuf};

/// The samples folder, or `None` (after a visible `skipped:` line) when it is absent outside CI.
///
/// # Panics
/// When the folder is absent and `CI` is set: a CI run never passes without the vendors' samples.
pub fn dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HANDOFF_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"));
    if dir.is_dir() {
        return Some(dir);
    }
    let missing = format!("the vendors' samples are missing: no folder {}", dir.display());
    assert!(std::env::var_os("CI").is_none(), "{missing} (CI is set, so this fails instead of skipping)");
    eprintln!("skipped: {missing}; the tests on the vendors' own samples did not run");
    None
}

/// One sample's bytes, by its path inside the samples folder (`shopify/rest_2026-07_order_get.json`).
///
/// # Panics
/// As [`dir`], and when the folder exists but the sample does not.
pub fn read(relative: &str) -> Option<Vec<u8>> {
    let path = dir()?.join(relative);
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("vendor sample {}: {e}", path.display())))
}
