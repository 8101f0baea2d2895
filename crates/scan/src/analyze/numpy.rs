//! NumPy `.npy` arrays (alone, or as members of an `.npz` zip).
//!
//! An array of plain numbers is data. An array whose dtype holds Python objects (`|O`, or
//! `O` anywhere in a structured dtype) is stored as a pickle after the header, and
//! `numpy.load(..., allow_pickle=True)` unpickles it: that pickle is scanned like any other.

use formats::numpy::{self, Npy};
use formats::Format;

use super::archive::scan_if_recognised;
use crate::context::{Cx, Target};
use crate::rules::Rule;
use crate::severity::Severity;

pub static OBJECT_ARRAY: Rule = Rule {
    id: "NPY001",
    name: "numpy-object-array",
    severity: Severity::Medium,
    title: "NumPy array of Python objects (stored as a pickle)",
    why: "Loading it requires `allow_pickle=True`, which lets the file run code on load; a payload in an object array bypasses scanners that only look at pickle files. Its pickle was scanned, but no allow-list makes arbitrary objects safe to load.",
    fix: "Convert the array to a numeric or string dtype, or load it only in a sandbox. Never pass allow_pickle=True for files from others.",
};

pub static DATA_LENGTH: Rule = Rule {
    id: "NPY002",
    name: "numpy-data-length-mismatch",
    severity: Severity::Medium,
    title: "NumPy array data does not match its shape and dtype",
    why: "Too few bytes make loaders fail or read past the data; extra bytes after the array are ignored by numpy and can carry a hidden payload.",
    fix: "Obtain the file again from its publisher; check any trailing bytes (they were scanned when recognisable).",
};

pub static ABSURD_SHAPE: Rule = Rule {
    id: "NPY003",
    name: "numpy-absurd-shape",
    severity: Severity::Medium,
    title: "NumPy array shape is absurdly large",
    why: "A shape whose element count overflows or exceeds any real tensor makes loaders allocate huge buffers (memory exhaustion) or miscompute sizes.",
    fix: "Do not load the file; obtain a correct one from the publisher.",
};

pub static RULES: &[&Rule] = &[&OBJECT_ARRAY, &DATA_LENGTH, &ABSURD_SHAPE];

pub fn analyze(cx: &mut Cx<'_>, t: Target<'_>) {
    let npy = match numpy::parse(t.data, cx.limits) {
        Ok(n) => n,
        Err(e) => {
            cx.parse_error("numpy", t.loc, &e);
            return;
        }
    };
    let depth = t.depth.saturating_add(1);
    let dtype = describe(&npy);

    if npy.descr.has_object() {
        cx.report(
            &OBJECT_ARRAY,
            t.loc.at(npy.data_offset),
            format!(
                "dtype {dtype}, shape {:?}: {} bytes of pickle",
                npy.shape,
                npy.data.len()
            ),
        );
        cx.scan_as(
            Format::Pickle,
            npy.data,
            &t.loc.member("<object array pickle>"),
            depth,
        );
        return;
    }

    let elements = npy.elements();
    let max = cx.limits.max_tensor_elements;
    if elements.is_none_or(|n| n > max) {
        let count = elements.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
        cx.report(
            &ABSURD_SHAPE,
            t.loc.at(0),
            format!("shape {:?} holds {count} elements (limit {max})", npy.shape),
        );
        return;
    }
    let Some(expected) = npy.expected_data_len() else {
        cx.report(
            &ABSURD_SHAPE,
            t.loc.at(0),
            format!(
                "shape {:?} of dtype {dtype} needs more than 2^64 bytes",
                npy.shape
            ),
        );
        return;
    };
    let actual = npy.data.len() as u64;
    if actual < expected {
        cx.report(
            &DATA_LENGTH,
            t.loc.at(npy.data_offset),
            format!(
                "shape {:?} of dtype {dtype} needs {expected} bytes, the file holds {actual}",
                npy.shape
            ),
        );
    } else if actual > expected {
        let extra = actual.saturating_sub(expected);
        let at = npy.data_offset.saturating_add(expected);
        cx.report(
            &DATA_LENGTH,
            t.loc.at(at),
            format!("{extra} byte(s) after the {expected} bytes of array data"),
        );
        let tail = npy
            .data
            .get(usize::try_from(expected).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        scan_if_recognised(
            cx,
            tail,
            &t.loc.member(format!("<after array, byte {at}>")),
            depth,
        );
    }
}

/// The dtype as the header wrote it, shortened.
fn describe(npy: &Npy<'_>) -> String {
    let text = npy
        .header
        .split("'descr':")
        .nth(1)
        .and_then(|rest| rest.split("'fortran_order'").next())
        .map(|s| s.trim().trim_end_matches(',').trim())
        .unwrap_or("?");
    let mut s: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::engine::{scan_bytes, ScanOptions};

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        let total = 10 + h.len() + 1;
        h.push_str(&" ".repeat((64 - total % 64) % 64));
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn ids(data: &[u8]) -> Vec<(&'static str, String)> {
        scan_bytes(data, "x.npy", &ScanOptions::default())
            .findings
            .iter()
            .map(|f| (f.rule.id, f.location.members.join("!")))
            .collect()
    }

    #[test]
    fn benign_array_is_clean() {
        let f = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
            &[0; 16],
        );
        assert_eq!(ids(&f), vec![]);
    }

    #[test]
    fn object_array_pickle_is_scanned_as_pickle() {
        let f = npy(
            "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
            b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x85R.",
        );
        let found = ids(&f);
        assert!(found.iter().any(|(id, _)| *id == "NPY001"), "{found:?}");
        // The pickle itself reached the pickle analyzer, which judged its call.
        assert!(
            found
                .iter()
                .any(|(id, m)| *id == "PKL001" && m == "<object array pickle>"),
            "{found:?}"
        );
    }

    #[test]
    fn structured_object_field_counts() {
        let f = npy(
            "{'descr': [('a', '<f8'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }",
            b"\x80\x02N.",
        );
        assert_eq!(ids(&f)[0].0, "NPY001");
    }

    #[test]
    fn length_mismatch_and_trailing_payload() {
        let short = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }",
            &[0; 8],
        );
        assert_eq!(ids(&short), vec![("NPY002", String::new())]);
        let mut data = vec![0u8; 32];
        data.extend_from_slice(b"PK\x03\x04hidden zip");
        let long = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }",
            &data,
        );
        let found = ids(&long);
        assert_eq!(found[0].0, "NPY002");
        assert!(found.len() > 1, "trailing zip was scanned: {found:?}");
    }

    #[test]
    fn absurd_shape() {
        let f = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
            &[],
        );
        assert_eq!(ids(&f), vec![("NPY003", String::new())]);
    }

    #[test]
    fn malformed_header_is_a_parse_error() {
        let f = npy("{'descr': '<f8', 'fortran_order': False}", &[]);
        assert_eq!(ids(&f)[0].0, "GEN002");
    }
}
