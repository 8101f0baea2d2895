//! HDF5 (legacy Keras `.h5`): the model config in the root attributes goes through the
//! Keras checks; links out of the file are reported.
//!
//! The reader walks the superblock and the root object header (see `formats::hdf5`). When
//! the file uses structures it does not read, or a config attribute cannot be decoded,
//! the analyzer falls back to a bounded byte scan for Keras JSON and says so (HDF001).
//! HDF5 data itself carries no code: only the Keras config does.

use formats::hdf5::{self, AttrValue, LinkKind};
use formats::keras;

use crate::analyze::keras as keras_rules;
use crate::analyze::template::clip;
use crate::context::{Cx, Target};
use crate::rules::Rule;
use crate::severity::Severity;

pub static FALLBACK_SCAN: Rule = Rule {
    id: "HDF001",
    name: "hdf5-fallback-scan",
    severity: Severity::Info,
    title: "HDF5 structure beyond the parser; configs found by byte scan",
    why: "The file uses HDF5 features this scanner does not parse (dense attribute storage, shared messages, a damaged header); Keras configs were looked for in the raw bytes instead.",
    fix: "Nothing to do unless other findings appear; re-save the model with a current Keras to get a `.keras` archive.",
};

pub static EXTERNAL_LINK: Rule = Rule {
    id: "HDF002",
    name: "hdf5-external-link",
    severity: Severity::Medium,
    title: "HDF5 file links to another file",
    why: "An external link makes h5py open a file named by the model (any path on the loading machine) when the linked object is read.",
    fix: "Remove the link (copy the data into the file) or obtain a self-contained file.",
};

pub static CONFIG_UNREADABLE: Rule = Rule {
    id: "HDF003",
    name: "hdf5-config-unreadable",
    severity: Severity::Medium,
    title: "Keras model config in HDF5 could not be read",
    why: "The model config decides which layers and code Keras builds; if it cannot be read it cannot be vouched for (it may hold a Lambda layer).",
    fix: "Re-save the model with a current Keras (`.keras`) or load it only in an isolated environment.",
};

pub static RULES: &[&Rule] = &[&FALLBACK_SCAN, &EXTERNAL_LINK, &CONFIG_UNREADABLE];

/// Root attributes that hold Keras JSON.
const CONFIG_ATTRS: &[&str] = &["model_config", "training_config"];
/// Starts the byte scan tries at most.
const MAX_TRIES: usize = 1000;

pub fn analyze(cx: &mut Cx<'_>, t: Target<'_>) {
    let info = match hdf5::read_root(t.data, cx.limits) {
        Ok(info) => info,
        Err(e) => {
            cx.parse_error("hdf5", t.loc, &e);
            fallback(cx, &t, "the root group could not be parsed", false);
            return;
        }
    };

    for link in &info.links {
        if let LinkKind::External(file, path) = &link.kind {
            cx.report(
                &EXTERNAL_LINK,
                t.loc
                    .at(link.offset)
                    .object(format!("link {}", clip(&link.name, 80))),
                format!(
                    "`{}` -> {}:{}",
                    clip(&link.name, 80),
                    clip(file, 120),
                    clip(path, 80)
                ),
            );
        }
    }

    let mut found = false;
    let mut unreadable: Vec<String> = Vec::new();
    for attr in &info.attributes {
        if !CONFIG_ATTRS.contains(&attr.name.as_str()) {
            continue;
        }
        let loc = t
            .loc
            .at(attr.offset)
            .object(format!("attribute {}", attr.name));
        match &attr.value {
            AttrValue::Strings(values) => {
                for v in values {
                    match keras::load_json(v, cx.limits) {
                        Ok(json) => {
                            found = true;
                            keras_rules::check(cx, &loc, &json, t.depth);
                        }
                        Err(e) => cx.parse_error("hdf5 attribute JSON", &loc, &e),
                    }
                }
            }
            AttrValue::Other(class) => cx.report(
                &CONFIG_UNREADABLE,
                loc,
                format!(
                    "`{}` has HDF5 datatype class {class}, not a string",
                    attr.name
                ),
            ),
            AttrValue::Unreadable(why) => unreadable.push(format!("`{}`: {why}", attr.name)),
        }
    }
    let mut reasons: Vec<String> = unreadable;
    reasons.extend(
        info.unread
            .iter()
            .map(|(why, off)| format!("{why} at byte {off}")),
    );
    if !reasons.is_empty() {
        fallback(cx, &t, &reasons.join("; "), found);
    }
}

/// Looks for Keras JSON in the raw bytes; `have_config` when a config was already read
/// from the attributes.
///
/// A config found only by the byte scan is checked, but it cannot be confirmed to be the
/// one Keras will load (a benign decoy may sit in raw data while the real attribute is in
/// a structure this reader skips), so a Keras-looking file whose config was not read
/// structurally is also reported as not vouched for (HDF003).
fn fallback(cx: &mut Cx<'_>, t: &Target<'_>, why: &str, have_config: bool) {
    let objects = hdf5::scan_json_objects(t.data, cx.limits, MAX_TRIES);
    let configs: Vec<_> = objects
        .iter()
        .filter(|(_, v)| keras::looks_like_config(v))
        .collect();
    cx.report(
        &FALLBACK_SCAN,
        t.loc.clone(),
        format!(
            "{}; byte scan found {} Keras config(s)",
            clip(why, 200),
            configs.len()
        ),
    );
    for (off, v) in &configs {
        keras_rules::check(
            cx,
            &t.loc.at(*off).object("config found by byte scan"),
            v,
            t.depth,
        );
    }
    let keras_like = !configs.is_empty()
        || CONFIG_ATTRS
            .iter()
            .chain(&["keras_version"])
            .any(|name| contains(t.data, name.as_bytes()));
    if !have_config && keras_like {
        cx.report(
            &CONFIG_UNREADABLE,
            t.loc.clone(),
            format!(
                "the model config attribute could not be read from the HDF5 structure ({}); {} config(s) found by byte scan cannot be confirmed as the one Keras loads",
                clip(why, 160),
                configs.len()
            ),
        );
    }
}

fn contains(data: &[u8], needle: &[u8]) -> bool {
    data.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{scan_bytes, ScanOptions};

    const SIG: &[u8] = b"\x89HDF\r\n\x1a\n";

    fn pad8(v: &mut Vec<u8>) {
        while !v.len().is_multiple_of(8) {
            v.push(0);
        }
    }

    /// Superblock v0 + v1 root object header with the given messages (type, body).
    fn h5(messages: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(SIG);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 8, 8, 0, 4, 0, 16, 0, 0, 0, 0, 0]);
        for v in [0u64, u64::MAX, 0, u64::MAX, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        let root_at = f.len() + 32;
        f.extend_from_slice(&(root_at as u64).to_le_bytes());
        f.extend_from_slice(&[0; 24]);
        let mut msgs = Vec::new();
        for (ty, body) in messages {
            let mut body = body.clone();
            pad8(&mut body);
            msgs.extend_from_slice(&ty.to_le_bytes());
            msgs.extend_from_slice(&(body.len() as u16).to_le_bytes());
            msgs.extend_from_slice(&[0; 4]);
            msgs.extend_from_slice(&body);
        }
        f.extend_from_slice(&[1, 0, messages.len() as u8, 0, 1, 0, 0, 0]);
        f.extend_from_slice(&(msgs.len() as u32).to_le_bytes());
        f.extend_from_slice(&[0; 4]);
        f.extend_from_slice(&msgs);
        f
    }

    fn fixed_attr(name: &str, value: &[u8]) -> (u16, Vec<u8>) {
        let mut a = vec![1, 0];
        a.extend_from_slice(&((name.len() + 1) as u16).to_le_bytes());
        a.extend_from_slice(&8u16.to_le_bytes());
        a.extend_from_slice(&8u16.to_le_bytes());
        a.extend_from_slice(name.as_bytes());
        a.push(0);
        pad8(&mut a);
        a.extend_from_slice(&[0x13, 0, 0, 0]);
        a.extend_from_slice(&(value.len() as u32).to_le_bytes());
        a.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        a.extend_from_slice(value);
        (0x0c, a)
    }

    fn ids(data: &[u8]) -> Vec<(&'static str, Severity, String)> {
        scan_bytes(data, "model.h5", &ScanOptions::default())
            .findings
            .iter()
            .map(|f| (f.rule.id, f.severity, f.evidence.clone()))
            .collect()
    }

    const LAMBDA: &str = r#"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "Lambda", "config": {"name": "lambda", "function": ["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMMAAAAdABqAWQBgwFTACkCTtoCaWQp\nAtoCb3PaBnN5c3RlbSkB2gF4qQByBAAAAPoAPGxhbWJkYT4=\n", null, null], "function_type": "lambda", "module": "__main__"}}]}}"#;

    #[test]
    fn benign_and_malicious_configs() {
        let benign = h5(&[
            fixed_attr("backend", b"tensorflow"),
            fixed_attr("model_config", br#"{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "Dense", "config": {"name": "d", "units": 2}}]}}"#),
        ]);
        let f = ids(&benign);
        assert!(f.is_empty(), "{f:#?}");
        let evil = h5(&[fixed_attr("model_config", LAMBDA.as_bytes())]);
        let f = ids(&evil);
        assert!(
            f.iter()
                .any(|x| x.0 == "KERAS001" && x.1 == Severity::Critical),
            "{f:#?}"
        );
        let r = scan_bytes(&evil, "model.h5", &ScanOptions::default());
        assert!(r.findings[0]
            .location
            .object
            .as_deref()
            .unwrap()
            .contains("attribute model_config"));
    }

    #[test]
    fn damaged_header_falls_back_to_byte_scan() {
        let mut evil = h5(&[fixed_attr("model_config", LAMBDA.as_bytes())]);
        // Break the root object header version.
        let root_at = 96;
        evil[root_at] = 7;
        let f = ids(&evil);
        assert!(f.iter().any(|x| x.0 == "GEN002"), "{f:#?}");
        assert!(
            f.iter()
                .any(|x| x.0 == "HDF001" && x.2.contains("1 Keras config")),
            "{f:#?}"
        );
        assert!(f.iter().any(|x| x.0 == "KERAS001"), "{f:#?}");
        assert!(f.iter().any(|x| x.0 == "HDF003"), "{f:#?}");
    }

    #[test]
    fn dense_attributes_without_config_are_medium() {
        let mut ainfo = vec![0u8, 0];
        ainfo.extend_from_slice(&1234u64.to_le_bytes());
        ainfo.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut file = h5(&[(0x15, ainfo.clone())]);
        file.extend_from_slice(b"FRHP....model_config....");
        let f = ids(&file);
        assert!(f.iter().any(|x| x.0 == "HDF001"), "{f:#?}");
        assert!(
            f.iter().any(|x| x.0 == "HDF003" && x.1 == Severity::Medium),
            "{f:#?}"
        );
        // Not a Keras file: nothing to vouch for beyond the note.
        let f = ids(&h5(&[(0x15, ainfo)]));
        assert_eq!(
            f.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec!["HDF001"],
            "{f:#?}"
        );
    }

    #[test]
    fn external_links_are_reported() {
        let mut link = vec![1u8, 0x08, 64, 3];
        link.extend_from_slice(b"ext");
        let target = b"\0/etc/passwd\0/x\0";
        link.extend_from_slice(&(target.len() as u16).to_le_bytes());
        link.extend_from_slice(target);
        let f = ids(&h5(&[(0x06, link)]));
        let l = f.iter().find(|x| x.0 == "HDF002").unwrap();
        assert!(l.2.contains("/etc/passwd"), "{}", l.2);
    }

    #[test]
    fn plain_hdf5_is_clean() {
        assert!(ids(&h5(&[fixed_attr("title", b"weights")])).is_empty());
    }
}
