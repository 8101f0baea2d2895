//! A finding: one rule that fired, where, and the evidence.

use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static Rule,
    /// Usually the rule's severity; an analyzer may raise or lower it on evidence
    /// (an unknown global is high, a known command-runner is critical).
    pub severity: Severity,
    pub location: Location,
    /// What was seen, quoted from the file where possible, e.g. `posix.system('id')`.
    pub evidence: String,
}

impl Finding {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "finding",
            "rule": self.rule.id,
            "name": self.rule.name,
            "severity": self.severity,
            "path": self.location.path.display().to_string(),
            "members": self.location.members,
            "offset": self.location.offset,
            "object": self.location.object,
            "evidence": self.evidence,
            "title": self.rule.title,
            "why": self.rule.why,
            "fix": self.rule.fix,
        })
    }
}
