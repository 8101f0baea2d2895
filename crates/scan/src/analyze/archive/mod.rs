//! Containers: ZIP (PyTorch checkpoints, Keras `.keras`, NumPy `.npz`), tar (PyTorch's
//! legacy format, model bundles), gzip and zlib streams (joblib `compress=`).
//!
//! A container is judged twice: for its own structure (names that escape the extraction
//! directory, links, members hidden from one reader, compression bombs) and for every
//! member's bytes, which are handed back to the scanner whatever their names say.

mod compressed;
mod inflate;
mod names;
mod tar;
mod zip;

use crate::context::Cx;
use crate::location::Location;
use crate::rules::Rule;

pub use compressed::{analyze_gzip, analyze_zlib};
pub use tar::analyze_tar;
pub use zip::analyze_zip;

/// Every rule of the container analyzers.
pub static RULES: &[&Rule] = &[
    &zip::PATH_ESCAPE,
    &zip::ODD_NAME,
    &zip::LINK_MEMBER,
    &zip::NAME_MISMATCH,
    &zip::FIELD_MISMATCH,
    &zip::HIDDEN_MEMBER,
    &zip::DUPLICATE_NAME,
    &zip::OVERLAP,
    &zip::EVASIVE_FLAGS,
    &zip::ODD_FLAGS,
    &zip::DATA_DESCRIPTOR,
    &zip::UNSUPPORTED_METHOD,
    &zip::PREFIX,
    &zip::STRAY_BYTES,
    &zip::STORAGE_HOLDS_FILE,
    &zip::LOCAL_WALK,
    &tar::PATH_ESCAPE,
    &tar::LINK,
    &tar::SPECIAL,
    &tar::DUPLICATE_NAME,
    &tar::TRAILING,
    &tar::LEGACY_LAYOUT,
    &tar::ODD_ENTRY,
    &inflate::BOMB,
    &compressed::TRAILING,
];

/// Scans bytes nobody is meant to load (gaps, trailing data) only when they hold
/// something recognisable; otherwise the finding that pointed at them is enough.
pub(crate) fn scan_if_recognised(cx: &mut Cx<'_>, data: &[u8], loc: &Location, depth: u32) {
    if !matches!(formats::detect(data), formats::Format::Unknown) && !data.iter().all(|&b| b == 0) {
        cx.scan_nested(data, loc, depth);
    }
}

/// Shortens evidence to about 200 characters.
fn clip(s: &str) -> String {
    const MAX: usize = 200;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
