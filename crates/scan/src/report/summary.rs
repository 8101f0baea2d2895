//! Totals over a whole scan, and the gate decision.

use std::time::Duration;

use crate::engine::FileReport;
use crate::severity::Severity;

#[derive(Debug, Clone)]
pub struct Summary {
    pub files: usize,
    pub bytes: u64,
    pub findings: usize,
    /// Count of findings per severity, in [`Severity::ALL`] order.
    pub by_severity: [usize; 5],
    /// Findings at or above the gate.
    pub failing: usize,
    pub fail_on: Severity,
    pub elapsed: Duration,
}

impl Summary {
    pub fn new(reports: &[FileReport], fail_on: Severity, elapsed: Duration) -> Self {
        let mut by_severity = [0usize; 5];
        let mut failing = 0;
        for f in reports.iter().flat_map(|r| &r.findings) {
            if let Some(slot) = Severity::ALL
                .iter()
                .position(|s| *s == f.severity)
                .and_then(|i| by_severity.get_mut(i))
            {
                *slot += 1;
            }
            if f.severity >= fail_on {
                failing += 1;
            }
        }
        Self {
            files: reports.len(),
            bytes: reports.iter().map(|r| r.size).sum(),
            findings: by_severity.iter().sum(),
            by_severity,
            failing,
            fail_on,
            elapsed,
        }
    }

    pub fn passed(&self) -> bool {
        self.failing == 0
    }

    pub fn to_json(&self) -> serde_json::Value {
        let by: serde_json::Map<String, serde_json::Value> = Severity::ALL
            .iter()
            .zip(self.by_severity)
            .map(|(s, n)| (s.as_str().to_string(), n.into()))
            .collect();
        serde_json::json!({
            "type": "summary",
            "files": self.files,
            "bytes": self.bytes,
            "findings": self.findings,
            "by_severity": by,
            "fail_on": self.fail_on,
            "failing": self.failing,
            "passed": self.passed(),
            "elapsed_ms": self.elapsed.as_secs_f64() * 1e3,
        })
    }
}
