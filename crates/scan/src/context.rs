//! The state of one file's scan: limits, policy, findings so far, and the budgets shared
//! by everything nested inside the file.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use formats::{Format, Limits, ParseError};

use crate::analyze::{self, generic};
use crate::finding::Finding;
use crate::location::Location;
use crate::policy::Policy;
use crate::rules::Rule;
use crate::severity::Severity;

/// One byte string to scan: a whole file, or a member inside one.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub data: &'a [u8],
    pub loc: &'a Location,
    /// How many containers this data sits inside (0 for a file on disk).
    pub depth: u32,
}

/// Findings kept per rule, severity and archive member; the rest are counted in one
/// closing finding, so that a hostile file with a million bad entries stays readable and
/// cheap.
pub const MAX_PER_RULE: usize = 16;

/// What findings are capped by: rule id, severity, archive member chain.
type CapKey = (&'static str, Severity, Vec<String>);

/// Scan context for one file on disk.
#[derive(Debug)]
pub struct Cx<'p> {
    pub limits: &'p Limits,
    pub policy: &'p Policy,
    /// The directory the on-disk file sits in, for formats that reference siblings
    /// (ONNX external data). `None` when scanning bytes that are not a file.
    pub base_dir: Option<&'p Path>,
    findings: Vec<Finding>,
    formats: BTreeSet<&'static str>,
    inflated: u64,
    claims: Vec<PathBuf>,
    /// Findings per (rule, severity, member chain), and the first location of each.
    counts: HashMap<CapKey, (usize, &'static Rule, Location)>,
}

impl<'p> Cx<'p> {
    pub fn new(limits: &'p Limits, policy: &'p Policy, base_dir: Option<&'p Path>) -> Self {
        Self {
            limits,
            policy,
            base_dir,
            findings: Vec::new(),
            formats: BTreeSet::new(),
            inflated: 0,
            claims: Vec::new(),
            counts: HashMap::new(),
        }
    }

    /// Records a finding at the rule's own severity.
    pub fn report(&mut self, rule: &'static Rule, loc: Location, evidence: impl Into<String>) {
        self.report_at(rule, rule.severity, loc, evidence);
    }

    /// Records a finding at a severity chosen from the evidence.
    pub fn report_at(
        &mut self,
        rule: &'static Rule,
        severity: Severity,
        loc: Location,
        evidence: impl Into<String>,
    ) {
        let key = (rule.id, severity, loc.members.clone());
        let slot = self
            .counts
            .entry(key)
            .or_insert_with(|| (0, rule, loc.clone()));
        slot.0 = slot.0.saturating_add(1);
        if slot.0 <= MAX_PER_RULE {
            self.findings.push(Finding {
                rule,
                severity,
                location: loc,
                evidence: evidence.into(),
            });
        }
    }

    /// Counts `n` more findings like `rule` at `loc` that the caller did not build (it
    /// already holds [`MAX_PER_RULE`] of them); they show in the closing summary.
    pub fn tally(&mut self, rule: &'static Rule, severity: Severity, loc: &Location, n: usize) {
        let key = (rule.id, severity, loc.members.clone());
        let slot = self
            .counts
            .entry(key)
            .or_insert_with(|| (0, rule, loc.clone()));
        slot.0 = slot.0.saturating_add(n);
    }

    /// Records that a reader refused its input: a limit finding or a parse-error finding.
    /// Either way the data is not reported clean.
    pub fn parse_error(&mut self, format: &str, loc: &Location, err: &ParseError) {
        let rule = if err.is_limit() {
            &generic::LIMIT_EXCEEDED
        } else {
            &generic::PARSE_ERROR
        };
        self.report(rule, loc.at(err.offset), format!("{format}: {err}"));
    }

    /// Notes a format seen in this file (for the file's report line).
    pub fn saw_format(&mut self, name: &'static str) {
        self.formats.insert(name);
    }

    /// Charges `n` inflated bytes against the file's budget. Returns false (and records a
    /// finding) when the budget is spent; the caller must then stop inflating.
    pub fn charge_inflated(&mut self, n: u64, loc: &Location) -> bool {
        self.inflated = self.inflated.saturating_add(n);
        if self.inflated > self.limits.max_inflated_bytes {
            let max = self.limits.max_inflated_bytes;
            self.report(
                &generic::LIMIT_EXCEEDED,
                loc.clone(),
                format!("decompressed bytes in this file exceed the limit of {max}"),
            );
            return false;
        }
        true
    }

    /// Bytes the file may still inflate.
    pub fn inflate_budget(&self) -> u64 {
        self.limits.max_inflated_bytes.saturating_sub(self.inflated)
    }

    /// Detects the format of a nested byte string (an archive member, a decompressed stream,
    /// a pickle inside an array) and scans it, unless nesting is already too deep.
    pub fn scan_nested(&mut self, data: &[u8], loc: &Location, depth: u32) {
        if depth > self.limits.max_nesting_depth {
            let max = self.limits.max_nesting_depth;
            self.report(
                &generic::NESTING_TOO_DEEP,
                loc.clone(),
                format!("nesting depth {depth} exceeds {max}"),
            );
            return;
        }
        analyze::dispatch(self, Target { data, loc, depth });
    }

    /// Scans `data` as the given format, skipping detection (for members whose container
    /// says what they are, e.g. a NumPy object array's pickle).
    pub fn scan_as(&mut self, format: Format, data: &[u8], loc: &Location, depth: u32) {
        analyze::dispatch_as(self, format, Target { data, loc, depth });
    }

    /// Declares that this file references `path` on disk as raw data (ONNX external data,
    /// TensorFlow variables). Raw tensor bytes have no format; when the scan of `path`
    /// found nothing but "unknown format", that verdict is replaced by a note naming this
    /// file. Anything else found in `path` (a pickle, an archive) is still reported.
    pub fn claim_data_file(&mut self, path: PathBuf) {
        self.claims.push(path);
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    pub fn into_parts(mut self) -> (Vec<Finding>, BTreeSet<&'static str>, Vec<PathBuf>) {
        let mut over: Vec<_> = self
            .counts
            .into_iter()
            .filter(|(_, (n, _, _))| *n > MAX_PER_RULE)
            .collect();
        over.sort_by(|a, b| a.0.cmp(&b.0));
        for ((_, severity, _), (n, rule, first)) in over {
            let more = n.saturating_sub(MAX_PER_RULE);
            self.findings.push(Finding {
                rule,
                severity,
                location: Location {
                    offset: None,
                    object: None,
                    ..first
                },
                evidence: format!("... and {more} more like the above (not listed)"),
            });
        }
        (self.findings, self.formats, self.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::generic::UNKNOWN_FORMAT;

    #[test]
    fn findings_are_capped_per_rule_and_member_and_the_rest_counted() {
        let (limits, policy) = (Limits::default(), Policy::default());
        let mut cx = Cx::new(&limits, &policy, None);
        let file = Location::file("m.zip");
        for i in 0..40 {
            cx.report(&UNKNOWN_FORMAT, file.member("a").at(i), "x");
        }
        cx.tally(
            &UNKNOWN_FORMAT,
            UNKNOWN_FORMAT.severity,
            &file.member("a"),
            10,
        );
        // Another member has its own allowance.
        cx.report(&UNKNOWN_FORMAT, file.member("b"), "y");
        let (findings, _, _) = cx.into_parts();
        let in_a: Vec<_> = findings
            .iter()
            .filter(|f| f.location.members == ["a"])
            .collect();
        assert_eq!(in_a.len(), MAX_PER_RULE + 1);
        let summary = in_a.last().unwrap();
        assert_eq!(
            summary.evidence,
            format!(
                "... and {} more like the above (not listed)",
                50 - MAX_PER_RULE
            )
        );
        assert_eq!(summary.location.offset, None);
        assert_eq!(
            findings
                .iter()
                .filter(|f| f.location.members == ["b"])
                .count(),
            1
        );
    }
}
