//! safetensors: the header must describe the byte buffer exactly.
//!
//! The format cannot run code, so what matters is that every loader sees the same tensors:
//! offsets inside the buffer, no two tensors sharing bytes, sizes that match shapes, one
//! entry per name, and no bytes that nobody reads (the spec forbids holes "to prevent the
//! creation of polyglot files"). Only the header is read; the data pages of a mapped file
//! are never touched, except unreferenced regions, which are scanned as nested data.

use formats::safetensors::{self, Header, MetaValue, Metadata, SizeError, TensorEntry};

use super::protobuf::{short, Pending};
use crate::context::{Cx, Target};
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

pub static OUT_OF_BOUNDS: Rule = Rule {
    id: "ST001",
    name: "safetensors-offsets-out-of-bounds",
    severity: Severity::High,
    title: "tensor offsets point outside the byte buffer",
    why: "A loader that trusts the offsets reads past the data (into the header or beyond the file); loaders disagree on what such a tensor holds.",
    fix: "Do not load the file. Re-export the weights with the safetensors library from a trusted copy.",
};

pub static OVERLAP: Rule = Rule {
    id: "ST002",
    name: "safetensors-overlapping-tensors",
    severity: Severity::High,
    title: "two tensors share bytes",
    why: "Overlapping tensors let one write alias another and are refused by the reference loader; only a hand-made file has them.",
    fix: "Do not load the file. Re-export the weights with the safetensors library.",
};

pub static SIZE_MISMATCH: Rule = Rule {
    id: "ST003",
    name: "safetensors-size-mismatch",
    severity: Severity::High,
    title: "tensor byte range does not match its shape and dtype",
    why: "A lying size makes loaders read too much or too little; an absurd shape (overflowing 64 bits) is a crafted header.",
    fix: "Do not load the file. Re-export the weights with the safetensors library.",
};

pub static DUPLICATE: Rule = Rule {
    id: "ST004",
    name: "safetensors-duplicate-key",
    severity: Severity::High,
    title: "a tensor name or field appears twice in the header",
    why: "The spec forbids duplicate keys; parsers keep the first or the last, so two loaders see different weights (a parser differential).",
    fix: "Do not load the file. Re-export the weights with the safetensors library.",
};

pub static UNREFERENCED: Rule = Rule {
    id: "ST005",
    name: "safetensors-unreferenced-bytes",
    severity: Severity::Medium,
    title: "bytes in the buffer that no tensor covers",
    why: "The spec requires the buffer to be fully indexed so that a file cannot be a polyglot; bytes nobody reads can carry a payload for another loader.",
    fix: "Re-export the weights with the safetensors library, which writes no holes or trailing data.",
};

pub static UNKNOWN_DTYPE: Rule = Rule {
    id: "ST006",
    name: "safetensors-unknown-dtype",
    severity: Severity::Medium,
    title: "tensor dtype is not in the safetensors spec",
    why: "Warden cannot check the size of a tensor whose element type it does not know, and standard loaders refuse it.",
    fix: "Confirm which tool wrote the file; convert the tensor to a standard dtype.",
};

pub static BAD_METADATA: Rule = Rule {
    id: "ST007",
    name: "safetensors-metadata-not-strings",
    severity: Severity::Low,
    title: "__metadata__ is not a string-to-string map",
    why: "The spec allows only strings in __metadata__; the reference loader refuses anything else, so the file was not written by it.",
    fix: "Rewrite the metadata as strings.",
};

pub static RULES: &[&Rule] = &[
    &OUT_OF_BOUNDS,
    &OVERLAP,
    &SIZE_MISMATCH,
    &DUPLICATE,
    &UNREFERENCED,
    &UNKNOWN_DTYPE,
    &BAD_METADATA,
];

/// Unreferenced regions at least this long are scanned as nested data (a pickle payload
/// needs a few dozen bytes).
const MIN_NESTED_SCAN: u64 = 16;

/// Unreferenced regions up to this size are skipped when they hold only zero bytes.
const ZERO_CHECK_MAX: usize = 1 << 20;

pub fn analyze(cx: &mut Cx<'_>, t: Target<'_>) {
    let header = match safetensors::read(t.data, cx.limits) {
        Ok(h) => h,
        Err(e) => return cx.parse_error("safetensors", t.loc, &e),
    };
    let mut out = Pending::default();
    check_metadata(&mut out, &header, t.loc);
    for name in &header.duplicate_keys {
        out.push(
            &DUPLICATE,
            t.loc.at(8).object(tensor_label(name)),
            format!("key `{}` appears more than once", short(name)),
        );
    }
    for tensor in &header.tensors {
        check_tensor(&mut out, &header, tensor, t.loc);
    }
    let gaps = check_layout(&mut out, &header, t.loc);
    out.flush(cx);

    for (begin, end) in gaps {
        if end.saturating_sub(begin) < MIN_NESTED_SCAN {
            continue;
        }
        let start = header.data_start.saturating_add(begin);
        let stop = header.data_start.saturating_add(end);
        let (Ok(start), Ok(stop)) = (usize::try_from(start), usize::try_from(stop)) else {
            continue;
        };
        if let Some(bytes) = t.data.get(start..stop) {
            // Zero padding carries nothing; checking costs at most a megabyte.
            if bytes.len() <= ZERO_CHECK_MAX && bytes.iter().all(|&b| b == 0) {
                continue;
            }
            let name = format!("<unreferenced bytes {start}..{stop}>");
            cx.scan_nested(bytes, &t.loc.member(name), t.depth.saturating_add(1));
        }
    }
}

fn check_metadata(out: &mut Pending, header: &Header, loc: &Location) {
    match &header.metadata {
        None => {}
        Some(Metadata::NotObject(kind)) => out.push(
            &BAD_METADATA,
            loc.at(8).object("__metadata__"),
            format!("__metadata__ is a JSON {kind}"),
        ),
        Some(Metadata::Map(entries)) => {
            for (key, value) in entries {
                if let MetaValue::NotString(kind) = value {
                    out.push(
                        &BAD_METADATA,
                        loc.at(8).object("__metadata__"),
                        format!("__metadata__[`{}`] is a JSON {kind}", short(key)),
                    );
                }
            }
        }
    }
}

fn check_tensor(out: &mut Pending, header: &Header, tensor: &TensorEntry, loc: &Location) {
    let at = loc
        .at(header.data_start.saturating_add(tensor.begin))
        .object(tensor_label(&tensor.name));
    for field in &tensor.duplicate_fields {
        out.push(
            &DUPLICATE,
            loc.at(8).object(tensor_label(&tensor.name)),
            format!("field `{field}` appears more than once"),
        );
    }
    if tensor.begin > tensor.end || tensor.end > header.buffer_len {
        out.push(
            &OUT_OF_BOUNDS,
            at.clone(),
            format!(
                "data_offsets [{}, {}] with a byte buffer of {} bytes",
                tensor.begin, tensor.end, header.buffer_len
            ),
        );
    }
    let shape = format!("{:?} {}", tensor.shape, tensor.dtype);
    match tensor.expected_bytes() {
        Ok(n) if tensor.end >= tensor.begin && tensor.end - tensor.begin != n => out.push(
            &SIZE_MISMATCH,
            at,
            format!(
                "{shape} needs {n} bytes, data_offsets [{}, {}] hold {}",
                tensor.begin,
                tensor.end,
                tensor.end - tensor.begin
            ),
        ),
        Ok(_) => {}
        Err(SizeError::UnknownDtype) => {
            out.push(&UNKNOWN_DTYPE, at, format!("dtype {}", tensor.dtype));
        }
        Err(SizeError::Overflow) => out.push(
            &SIZE_MISMATCH,
            at,
            format!("{shape}: the element count overflows 64 bits"),
        ),
        Err(SizeError::Misaligned) => out.push(
            &SIZE_MISMATCH,
            at,
            format!("{shape}: the elements do not end on a byte boundary"),
        ),
    }
}

/// Sorts the tensors' byte ranges and reports overlaps, holes and trailing bytes. Returns the
/// unreferenced regions (relative to the buffer).
fn check_layout(out: &mut Pending, header: &Header, loc: &Location) -> Vec<(u64, u64)> {
    // Out-of-bounds tensors (already reported) still cover what lies inside the buffer.
    let len = header.buffer_len;
    let mut ranges: Vec<(u64, u64, &str)> = header
        .tensors
        .iter()
        .filter(|t| t.begin <= t.end)
        .map(|t| (t.begin.min(len), t.end.min(len), t.name.as_str()))
        .collect();
    ranges.sort_unstable();
    let mut gaps = Vec::new();
    // End of the bytes covered so far, and the tensor that reaches furthest.
    let mut covered = 0u64;
    let mut furthest = "";
    for (begin, end, name) in ranges {
        if begin == end {
            continue; // an empty tensor holds no bytes
        }
        if begin < covered {
            out.push(
                &OVERLAP,
                loc.at(header.data_start.saturating_add(begin))
                    .object(tensor_label(name)),
                format!(
                    "bytes {begin}..{} are also part of tensor `{}`",
                    end.min(covered),
                    short(furthest)
                ),
            );
        } else if begin > covered {
            gaps.push((covered, begin));
        }
        if end > covered {
            covered = end;
            furthest = name;
        }
    }
    for &(begin, end) in &gaps {
        out.push(
            &UNREFERENCED,
            loc.at(header.data_start.saturating_add(begin)),
            format!(
                "{} bytes at {begin}..{end} of the buffer belong to no tensor",
                end - begin
            ),
        );
    }
    if covered < header.buffer_len {
        out.push(
            &UNREFERENCED,
            loc.at(header.data_start.saturating_add(covered)),
            format!(
                "{} trailing bytes after the last tensor (buffer ends at {covered} of {})",
                header.buffer_len - covered,
                header.buffer_len
            ),
        );
        gaps.push((covered, header.buffer_len));
    }
    gaps
}

fn tensor_label(name: &str) -> String {
    format!("tensor {}", short(name))
}

#[cfg(test)]
mod tests {
    use crate::engine::{scan_bytes, ScanOptions};
    use crate::finding::Finding;

    fn file(header: &str, buffer: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(buffer);
        out
    }

    fn scan(data: &[u8]) -> Vec<Finding> {
        scan_bytes(data, "t.safetensors", &ScanOptions::default()).findings
    }

    fn ids(f: &[Finding]) -> Vec<&'static str> {
        let mut v: Vec<_> = f.iter().map(|f| f.rule.id).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn benign_file_is_clean() {
        let hdr = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[12,12]}}"#;
        let report = scan_bytes(&file(hdr, &[0; 12]), "t", &ScanOptions::default());
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(report.formats, vec!["safetensors"]);
    }

    #[test]
    fn offsets_out_of_bounds() {
        let hdr = r#"{"a":{"dtype":"U8","shape":[100],"data_offsets":[0,100]}}"#;
        let f = scan(&file(hdr, &[0; 10]));
        assert_eq!(ids(&f), vec!["ST001"]);
        assert!(f[0].evidence.contains("[0, 100]"), "{}", f[0].evidence);
        let hdr = r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[5,2]}}"#;
        assert!(ids(&scan(&file(hdr, &[0; 5]))).contains(&"ST001"));
    }

    #[test]
    fn overlapping_tensors() {
        let hdr = r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#;
        let f = scan(&file(hdr, &[0; 8]));
        assert_eq!(ids(&f), vec!["ST002"]);
        assert_eq!(f[0].location.object.as_deref(), Some("tensor b"));
        assert!(f[0].evidence.contains("tensor `a`"), "{}", f[0].evidence);
    }

    #[test]
    fn size_mismatch_and_absurd_shapes() {
        let hdr = r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
        let f = scan(&file(hdr, &[0; 8]));
        assert_eq!(ids(&f), vec!["ST003"]);
        assert!(
            f[0].evidence.contains("needs 12 bytes"),
            "{}",
            f[0].evidence
        );
        let hdr = r#"{"a":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,0]}}"#;
        let f = scan(&file(hdr, &[]));
        assert_eq!(ids(&f), vec!["ST003"]);
        assert!(f[0].evidence.contains("overflows"));
    }

    #[test]
    fn duplicate_names_and_fields() {
        let hdr = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#;
        let f = scan(&file(hdr, &[0; 8]));
        assert!(ids(&f).contains(&"ST004"));
        assert!(f.iter().any(|f| f.evidence.contains("key `a`")));
        let hdr = r#"{"a":{"dtype":"U8","dtype":"F32","shape":[4],"data_offsets":[0,4]}}"#;
        let f = scan(&file(hdr, &[0; 4]));
        assert!(f
            .iter()
            .any(|f| f.rule.id == "ST004" && f.evidence.contains("dtype")));
    }

    #[test]
    fn holes_and_trailing_payload_are_reported_and_scanned() {
        let hdr = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}"#;
        let mut buf = vec![0u8; 12];
        buf.extend_from_slice(
            b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
        );
        let report = scan_bytes(&file(hdr, &buf), "t", &ScanOptions::default());
        let st005: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.rule.id == "ST005")
            .collect();
        assert_eq!(st005.len(), 2, "{:?}", report.findings);
        assert!(st005.iter().any(|f| f.evidence.contains("4..8")));
        assert!(st005.iter().any(|f| f.evidence.contains("trailing")));
        // The trailing bytes were handed to the pickle analyzer.
        assert!(report.formats.contains(&"pickle"), "{:?}", report.formats);
        assert!(report.findings.iter().any(|f| f
            .location
            .members
            .iter()
            .any(|m| m.contains("unreferenced"))));
    }

    #[test]
    fn unknown_dtype_and_bad_metadata() {
        let hdr =
            r#"{"__metadata__":{"n":1},"a":{"dtype":"Q4_K","shape":[4],"data_offsets":[0,4]}}"#;
        let f = scan(&file(hdr, &[0; 4]));
        assert_eq!(ids(&f), vec!["ST006", "ST007"]);
        let st007 = f.iter().find(|f| f.rule.id == "ST007").unwrap();
        assert_eq!(st007.severity, crate::Severity::Low);
    }

    #[test]
    fn unparsable_headers_are_not_clean() {
        let mut lying = (1u64 << 40).to_le_bytes().to_vec();
        lying.extend_from_slice(b"{\"a\":{}}");
        assert_eq!(ids(&scan(&lying)), vec!["GEN003"]);
        let mut short = 500u64.to_le_bytes().to_vec();
        short.extend_from_slice(b"{\"a\":{}}");
        assert_eq!(ids(&scan(&short)), vec!["GEN002"]);
        assert_eq!(ids(&scan(&file(r#"{"a":7}"#, &[]))), vec!["GEN002"]);
    }

    #[test]
    fn every_truncation_is_reported() {
        let hdr = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}"#;
        let data = file(hdr, &[1; 12]);
        assert!(scan(&data).is_empty());
        // Below 8 bytes there is no header length: such a stub is text or unknown bytes.
        for cut in 8..data.len() {
            let f = scan(&data[..cut]);
            assert!(
                f.iter().any(|f| f.severity >= crate::Severity::Medium),
                "cut at {cut}: {f:?}"
            );
        }
    }

    #[test]
    fn many_bad_entries_are_capped() {
        let mut hdr = String::from("{");
        for i in 0..100 {
            hdr.push_str(&format!(
                r#""t{i}":{{"dtype":"U8","shape":[1],"data_offsets":[0,9999]}},"#
            ));
        }
        hdr.pop();
        hdr.push('}');
        let f = scan(&file(&hdr, &[0; 1]));
        let st001: Vec<_> = f.iter().filter(|f| f.rule.id == "ST001").collect();
        assert_eq!(st001.len(), crate::context::MAX_PER_RULE + 1);
        assert!(st001.last().unwrap().evidence.contains("84 more"));
    }
}
