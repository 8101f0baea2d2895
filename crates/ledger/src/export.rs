//! Exporting entries for people and SIEMs: JSON lines, and RFC 5424 syslog lines.

use base64::{engine::general_purpose::STANDARD as B64, Engine as _};

use crate::hash::leaf_hash;
use crate::record::Record;

/// The structured-data ID of Warden's syslog parameters. 32473 is the private enterprise
/// number RFC 5612 reserves for documentation; replace it with a registered one where a
/// SIEM requires that.
pub const SD_ID: &str = "warden@32473";

/// One entry as a JSON object: index, leaf hash and the record (or, for an entry that is
/// not a record, its bytes in base64).
pub fn json_value(index: u64, entry: &[u8]) -> serde_json::Value {
    let mut v = serde_json::json!({
        "index": index,
        "leaf_hash": B64.encode(leaf_hash(entry)),
    });
    match Record::decode(entry) {
        Ok(record) => v["record"] = serde_json::to_value(record).unwrap_or_default(),
        Err(_) => v["entry_base64"] = B64.encode(entry).into(),
    }
    v
}

/// One entry as an RFC 5424 syslog line (facility 13, log audit; warning for alerts,
/// informational otherwise). The message is the record's canonical JSON.
pub fn syslog_line(index: u64, entry: &[u8], hostname: &str) -> String {
    let leaf = B64.encode(leaf_hash(entry));
    let Ok(record) = Record::decode(entry) else {
        return format!(
            "<{}>1 - {} warden - - [{SD_ID} index=\"{index}\" leaf=\"{leaf}\"] {}",
            13 * 8 + 4,
            header_field(hostname, 255),
            B64.encode(entry)
        );
    };
    let severity = if record.kind.starts_with("alert.") {
        4
    } else {
        6
    };
    let mut sd = format!(
        "[{SD_ID} index=\"{index}\" leaf=\"{leaf}\" actor=\"{}\"",
        sd_escape(&record.actor)
    );
    if let Some(subject) = &record.subject {
        sd.push_str(&format!(" subject=\"{}\"", sd_escape(subject)));
    }
    sd.push(']');
    format!(
        "<{}>1 {} {} warden - {} {sd} {}",
        13 * 8 + severity,
        record.time,
        header_field(hostname, 255),
        header_field(&record.kind, 32),
        String::from_utf8_lossy(entry)
    )
}

/// Header fields are printable US-ASCII without spaces, bounded, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

/// PARAM-VALUE escaping: `"`, `\` and `]` get a backslash.
fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_follow_rfc5424() {
        let mut r = Record::new("alert.extraction", "svc \"x\"").subject("iris@1]");
        r.time = "2026-11-22T08:00:00.000Z".into();
        let entry = r.encode().unwrap();
        let line = syslog_line(7, &entry, "node 1");
        assert!(line.starts_with("<108>1 2026-11-22T08:00:00.000Z node1 warden - alert.extraction [warden@32473 index=\"7\" leaf=\""), "{line}");
        assert!(
            line.contains(r#"actor="svc \"x\"" subject="iris@1\]"]"#),
            "{line}"
        );
        assert!(line.ends_with(&String::from_utf8(entry).unwrap()));
        let info = syslog_line(0, &Record::new("admin.login", "a").encode().unwrap(), "");
        assert!(info.starts_with("<110>1 ") && info.contains(" - warden - admin.login "));
    }

    #[test]
    fn json_lines_carry_the_record_or_the_raw_entry() {
        let entry = Record::new("admin.login", "a").encode().unwrap();
        assert_eq!(json_value(3, &entry)["record"]["actor"], "a");
        assert!(json_value(3, b"raw").get("entry_base64").is_some());
    }
}
