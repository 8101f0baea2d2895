//! SARIF 2.1.0 (OASIS), as GitHub code scanning and other CI tools ingest it.
//! Spec: <https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::engine::FileReport;
use crate::finding::Finding;
use crate::rules;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Builds the whole SARIF log for one scan.
pub fn log(reports: &[FileReport], tool_version: &str) -> Value {
    let all_rules: Vec<&rules::Rule> = rules::all().collect();
    let rule_index: BTreeMap<&str, usize> = all_rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id, i))
        .collect();

    let artifacts: Vec<Value> = reports
        .iter()
        .map(|r| json!({ "location": artifact_location(&r.path), "length": r.size }))
        .collect();

    let results: Vec<Value> = reports
        .iter()
        .enumerate()
        .flat_map(|(artifact, r)| {
            let rule_index = &rule_index;
            r.findings
                .iter()
                .map(move |f| result(f, artifact, rule_index.get(f.rule.id).copied()))
        })
        .collect();

    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "warden",
                "semanticVersion": tool_version,
                "informationUri": "https://github.com/warden-ai/warden",
                "rules": all_rules.iter().map(|r| rule(r)).collect::<Vec<_>>(),
            }},
            "invocations": [{ "executionSuccessful": true }],
            "artifacts": artifacts,
            "results": results,
        }],
    })
}

fn rule(r: &rules::Rule) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "shortDescription": { "text": r.title },
        "fullDescription": { "text": r.why },
        "help": { "text": r.fix },
        "defaultConfiguration": { "level": r.severity.sarif_level() },
        "properties": {
            "security-severity": r.severity.security_severity(),
            "tags": ["security", "ml-model"],
        },
    })
}

fn result(f: &Finding, artifact: usize, rule_index: Option<usize>) -> Value {
    let loc = &f.location;
    let mut physical = json!({ "artifactLocation": artifact_location(&loc.path) });
    if let Some(obj) = physical
        .get_mut("artifactLocation")
        .and_then(Value::as_object_mut)
    {
        obj.insert("index".into(), artifact.into());
    }
    // A byte region only makes sense in the file itself, not inside an archive member.
    if let (Some(offset), true) = (loc.offset, loc.members.is_empty()) {
        physical["region"] = json!({ "byteOffset": offset, "byteLength": 1 });
    }
    let mut location = json!({ "physicalLocation": physical });
    let mut logical = Vec::new();
    if !loc.members.is_empty() {
        let mut name = loc.artifact();
        if let Some(offset) = loc.offset {
            name.push_str(&format!("@{offset}"));
        }
        logical.push(json!({ "fullyQualifiedName": name, "kind": "resource" }));
    }
    if let Some(obj) = &loc.object {
        logical.push(json!({ "name": obj, "kind": "object" }));
    }
    if !logical.is_empty() {
        location["logicalLocations"] = Value::Array(logical);
    }
    let mut out = json!({
        "ruleId": f.rule.id,
        "level": f.severity.sarif_level(),
        "message": { "text": format!("{}: {}", f.rule.title, f.evidence) },
        "locations": [location],
        "partialFingerprints": { "wardenFinding/v1": fingerprint(f) },
        "properties": {
            "severity": f.severity.as_str(),
            "security-severity": f.severity.security_severity(),
        },
    });
    if let Some(i) = rule_index {
        out["ruleIndex"] = i.into();
    }
    out
}

/// A stable identity for a finding across scans: rule, where, and what.
fn fingerprint(f: &Finding) -> String {
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let text = format!("{}\0{}\0{}", f.rule.id, f.location.artifact(), f.evidence);
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Relative paths stay relative to the scan root (`%SRCROOT%`), absolute ones become
/// `file://` URIs.
fn artifact_location(path: &Path) -> Value {
    let text = path.to_string_lossy().replace('\\', "/");
    if let Some(stripped) = text.strip_prefix('/') {
        json!({ "uri": format!("file:///{}", percent_encode(stripped)) })
    } else {
        let rel = text.strip_prefix("./").unwrap_or(&text);
        json!({ "uri": percent_encode(rel), "uriBaseId": "%SRCROOT%" })
    }
}

/// RFC 3986: keep unreserved characters and `/`, escape every other byte.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_escaped() {
        assert_eq!(
            artifact_location(Path::new("./a b/ü.pt"))["uri"],
            "a%20b/%C3%BC.pt"
        );
        assert_eq!(
            artifact_location(Path::new("/m/x#y"))["uri"],
            "file:///m/x%23y"
        );
    }
}
