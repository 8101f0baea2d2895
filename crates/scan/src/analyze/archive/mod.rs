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

use std::collections::HashMap;

use crate::context::Cx;
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

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

/// Most findings one rule may add for one container; the rest are counted in one last
/// finding. A hostile archive can hold a hundred thousand bad names.
const PER_RULE: u32 = 10;

/// Reports through `cx`, at most [`PER_RULE`] findings per rule.
#[derive(Default)]
struct Capped {
    over: HashMap<&'static str, (u32, &'static Rule, Severity)>,
}

impl Capped {
    fn report(
        &mut self,
        cx: &mut Cx<'_>,
        rule: &'static Rule,
        severity: Severity,
        loc: Location,
        evidence: impl Into<String>,
    ) {
        let slot = self.over.entry(rule.id).or_insert((0, rule, severity));
        slot.0 = slot.0.saturating_add(1);
        slot.2 = slot.2.max(severity);
        if slot.0 <= PER_RULE {
            cx.report_at(rule, severity, loc, evidence);
        }
    }

    /// One finding per rule that was cut short.
    fn finish(self, cx: &mut Cx<'_>, loc: &Location) {
        let mut over: Vec<_> = self.over.into_values().filter(|s| s.0 > PER_RULE).collect();
        over.sort_by_key(|s| s.1.id);
        for (n, rule, severity) in over {
            let more = n.saturating_sub(PER_RULE);
            cx.report_at(
                rule,
                severity,
                loc.clone(),
                format!("{more} more finding(s) of this kind were not listed"),
            );
        }
    }
}

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
