//! The state of one file's scan: limits, policy, findings so far, and the budgets shared
//! by everything nested inside the file.

use std::collections::BTreeSet;
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
        self.findings.push(Finding {
            rule,
            severity,
            location: loc,
            evidence: evidence.into(),
        });
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

    pub fn into_parts(self) -> (Vec<Finding>, BTreeSet<&'static str>, Vec<PathBuf>) {
        (self.findings, self.formats, self.claims)
    }
}
