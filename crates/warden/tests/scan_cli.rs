//! `warden scan` as a user runs it: exit codes, JSON lines, SARIF, odd files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("run warden")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn findings(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["type"] == "finding").collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn help_documents_exit_codes() {
    let out = warden(&["scan", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--fail-on") && text.contains("Exit codes"),
        "{text}"
    );
}

#[test]
fn usage_error_exits_1() {
    let out = warden(&["scan", "--fail-on", "severe", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown severity"));
}

#[test]
fn missing_path_is_an_error_naming_it() {
    let out = warden(&["scan", "/nonexistent/model.pt"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model.pt"), "{err}");
}

#[test]
fn empty_directory_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = warden(&["scan", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "summary");
    assert_eq!(lines[0]["files"], 0);
    assert_eq!(lines[0]["passed"], true);
}

#[test]
fn unknown_binary_fails_closed_and_gate_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    // Named like a safe format; the content is not one. The name must not matter.
    let path = write(
        dir.path(),
        "model.safetensors",
        &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 0xff],
    );
    let out = warden(&["scan", "--json", &path]);
    assert_eq!(out.status.code(), Some(3));
    let lines = json_lines(&out);
    let f = findings(&lines);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["rule"], "GEN001");
    assert_eq!(f[0]["severity"], "medium");
    assert!(f[0]["evidence"].as_str().unwrap().contains("deadbeef"));

    let out = warden(&["scan", "--quiet", "--fail-on", "high", &path]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn text_report_names_rule_location_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "blob", &[0x00, 0x13, 0x37, 0x00, 0xfe]);
    let out = warden(&["scan", &path]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MEDIUM   GEN001"), "{text}");
    assert!(
        text.contains("FAIL (1 finding(s) at or above medium)"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn fifo_is_reported_not_opened_and_symlink_is_reported_and_followed() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let target = write(dir.path(), "real.bin", &[0x00, 0x01, 0x02, 0x03, 0xfe]);
    std::os::unix::fs::symlink(&target, dir.path().join("link.bin")).unwrap();

    let out = warden(&["scan", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let lines = json_lines(&out);
    let f = findings(&lines);
    let special: Vec<_> = f.iter().filter(|f| f["rule"] == "GEN006").collect();
    assert_eq!(special.len(), 2, "{f:?}");
    assert!(special
        .iter()
        .any(|f| f["evidence"].as_str().unwrap().contains("FIFO")));
    assert!(special
        .iter()
        .any(|f| f["evidence"].as_str().unwrap().contains("symbolic link")));
    // The link's target content was scanned under the link's name, and the file itself too.
    let unknown: Vec<_> = f.iter().filter(|f| f["rule"] == "GEN001").collect();
    assert_eq!(unknown.len(), 2, "{f:?}");
}

#[test]
fn sarif_file_holds_every_finding_and_all_rules() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.bin", &[0x00, 0x01, 0x02, 0x03, 0xfe]);
    write(dir.path(), "b.bin", &[0x00, 0x05, 0x02, 0x03, 0xfe]);
    write(dir.path(), "README.md", b"# A model\n");
    let sarif = dir.path().join("out.sarif");
    let out = warden(&[
        "scan",
        "--quiet",
        "--sarif",
        sarif.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let log: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        assert_eq!(r["level"], "warning");
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(
            uri.starts_with("file:///") && uri.ends_with(".bin"),
            "{uri}"
        );
    }
    // No temporary file is left beside the report.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn list_rules_json_has_unique_ids() {
    let out = warden(&["scan", "--list-rules", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    let mut ids: Vec<_> = lines
        .iter()
        .map(|l| l["rule"].as_str().unwrap().to_string())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    assert!(ids.contains(&"GEN001".to_string()));
}

#[test]
fn limits_can_be_listed_and_changed_and_bad_ones_are_refused() {
    let out = warden(&["scan", "--list-limits", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    assert!(lines
        .iter()
        .any(|l| l["name"] == "max_inflated_bytes" && l["default"].as_u64() == Some(4 << 30)));

    let dir = tempfile::tempdir().unwrap();
    let out = warden(&[
        "scan",
        "--limit",
        "max_nesting_depth=2",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));

    let out = warden(&[
        "scan",
        "--limit",
        "max_bogus=2",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown limit `max_bogus`"));
    let out = warden(&[
        "scan",
        "--limit",
        "max_nesting_depth",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn every_rule_is_documented() {
    let doc_path = common::repo_root().join("docs/scanning.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let out = warden(&["scan", "--list-rules", "--json"]);
    let missing: Vec<String> = json_lines(&out)
        .iter()
        .map(|l| l["rule"].as_str().unwrap().to_string())
        .filter(|id| !doc.contains(&format!("| {id} |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/scanning.md lacks {missing:?}; regenerate the tables with scripts/rules-table.py"
    );
}
