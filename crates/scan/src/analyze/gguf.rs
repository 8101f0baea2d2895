//! GGUF: the header's tensor table must describe data inside the file, and the chat
//! templates in its metadata must be plain chat templates.
//!
//! GGUF carries no code, but its loaders trust the header: heap overflows in llama.cpp's
//! `gguf_init_from_file` came from lying sizes and offsets (TALOS-2024-1912..1916), and
//! llama-cpp-python rendered `tokenizer.chat_template` with an unsandboxed Jinja2
//! (CVE-2024-34359). Only the header is read; the tensor data of a multi-GB model is never
//! touched.

use std::collections::HashMap;

use formats::gguf::{self, ArrayItems, Kv, SizeError, Value};
use formats::Format;

use crate::analyze::template;
use crate::context::{Cx, Target};
use crate::rules::Rule;
use crate::severity::Severity;

pub static TENSOR_OUT_OF_BOUNDS: Rule = Rule {
    id: "GGUF001",
    name: "gguf-tensor-out-of-bounds",
    severity: Severity::High,
    title: "GGUF tensor data lies outside the file",
    why: "A tensor whose offset and size reach past the end of the file makes a loader read or map memory it does not own; lying GGUF headers caused heap overflows in llama.cpp.",
    fix: "Do not load the file; obtain an intact copy from the publisher.",
};

pub static TENSOR_OVERLAP: Rule = Rule {
    id: "GGUF002",
    name: "gguf-tensor-overlap",
    severity: Severity::Medium,
    title: "GGUF tensors overlap",
    why: "Two tensors sharing bytes is never produced by a GGUF writer; it is a sign of a crafted header (and llama.cpp refuses such files).",
    fix: "Obtain a fresh copy from the publisher.",
};

pub static TENSOR_MISALIGNED: Rule = Rule {
    id: "GGUF003",
    name: "gguf-tensor-misaligned",
    severity: Severity::Medium,
    title: "GGUF tensor offset is not aligned",
    why: "Tensor offsets must be multiples of `general.alignment`; a misaligned offset is a malformed or crafted header.",
    fix: "Obtain a fresh copy from the publisher.",
};

pub static UNKNOWN_TYPE: Rule = Rule {
    id: "GGUF004",
    name: "gguf-unknown-tensor-type",
    severity: Severity::Medium,
    title: "GGUF tensor has an unknown ggml type",
    why: "Without the type's block size the tensor's extent cannot be checked; loaders disagree on unknown types.",
    fix: "Check which tool wrote the file; re-convert it with a current llama.cpp.",
};

pub static BAD_SHAPE: Rule = Rule {
    id: "GGUF005",
    name: "gguf-bad-tensor-shape",
    severity: Severity::Medium,
    title: "GGUF tensor shape is invalid",
    why: "An element count that overflows, exceeds any real model, or is not a whole number of quantization blocks makes size arithmetic in loaders go wrong.",
    fix: "Obtain a fresh copy from the publisher.",
};

pub static DUPLICATE_KEY: Rule = Rule {
    id: "GGUF006",
    name: "gguf-duplicate-key",
    severity: Severity::Medium,
    title: "GGUF metadata key appears more than once",
    why: "Loaders disagree on which copy wins (the first, the last, or an error), so a reviewer and a loader can see different values, e.g. two chat templates.",
    fix: "Obtain a fresh copy; a GGUF writer never repeats a key.",
};

pub static DUPLICATE_TENSOR: Rule = Rule {
    id: "GGUF007",
    name: "gguf-duplicate-tensor",
    severity: Severity::Medium,
    title: "GGUF tensor name appears more than once",
    why: "Duplicate tensor names let different loaders pick different weights.",
    fix: "Obtain a fresh copy from the publisher.",
};

pub static TRAILING_DATA: Rule = Rule {
    id: "GGUF008",
    name: "gguf-trailing-data",
    severity: Severity::Medium,
    title: "data after the last GGUF tensor",
    why: "Bytes that no tensor accounts for can carry a second file (a polyglot zip or pickle) for another loader.",
    fix: "Strip the trailing bytes or obtain a clean copy.",
};

pub static BAD_ALIGNMENT: Rule = Rule {
    id: "GGUF009",
    name: "gguf-bad-alignment",
    severity: Severity::Medium,
    title: "`general.alignment` is invalid",
    why: "The alignment must be a uint32 power of two; llama.cpp aborts on anything else and other readers place the data section differently.",
    fix: "Obtain a fresh copy from the publisher.",
};

pub static TEMPLATE_TYPE: Rule = Rule {
    id: "GGUF010",
    name: "gguf-template-not-string",
    severity: Severity::Low,
    title: "chat template metadata is not a string",
    why: "`tokenizer.chat_template*` keys hold Jinja source; another type is unusual.",
    fix: "Check the file's origin.",
};

pub static RULES: &[&Rule] = &[
    &TENSOR_OUT_OF_BOUNDS,
    &TENSOR_OVERLAP,
    &TENSOR_MISALIGNED,
    &UNKNOWN_TYPE,
    &BAD_SHAPE,
    &DUPLICATE_KEY,
    &DUPLICATE_TENSOR,
    &TRAILING_DATA,
    &BAD_ALIGNMENT,
    &TEMPLATE_TYPE,
];

/// Trailing bytes inspected for content.
const TRAILING_PROBE: usize = 1 << 20;

pub fn analyze(cx: &mut Cx<'_>, t: Target<'_>) {
    let g = match gguf::parse_partial(t.data, cx.limits) {
        Ok(g) => g,
        Err(partial) => {
            cx.parse_error("gguf", t.loc, &partial.error);
            metadata_checks(cx, &t, &partial.metadata);
            return;
        }
    };
    metadata_checks(cx, &t, &g.metadata);
    if let Some(problem) = &g.alignment_problem {
        cx.report(
            &BAD_ALIGNMENT,
            t.loc.object("metadata general.alignment"),
            problem.clone(),
        );
    }
    tensor_checks(cx, &t, &g);
}

fn metadata_checks(cx: &mut Cx<'_>, t: &Target<'_>, metadata: &[Kv<'_>]) {
    let mut seen: HashMap<&[u8], (u64, usize)> = HashMap::new();
    for kv in metadata {
        let e = seen.entry(kv.key).or_insert((kv.offset, 0));
        e.1 = e.1.saturating_add(1);
    }
    let mut dups: Vec<_> = seen.into_iter().filter(|(_, (_, n))| *n > 1).collect();
    dups.sort_by_key(|(_, (off, _))| *off);
    for (key, (off, n)) in dups {
        let key = String::from_utf8_lossy(key);
        cx.report(
            &DUPLICATE_KEY,
            t.loc.at(off).object(format!("metadata {key}")),
            format!("key `{}` appears {n} times", template::clip(&key, 120)),
        );
    }

    for kv in metadata {
        let key = kv.key_str();
        if key != "tokenizer.chat_template" && !key.starts_with("tokenizer.chat_template.") {
            continue;
        }
        let loc = t.loc.at(kv.offset).object(format!("metadata {key}"));
        match &kv.value {
            Value::String(s) => template::check(cx, &loc, &String::from_utf8_lossy(s)),
            Value::Array(a) => match &a.items {
                ArrayItems::Strings(items) => {
                    for s in items {
                        template::check(cx, &loc, &String::from_utf8_lossy(s));
                    }
                }
                _ => cx.report(
                    &TEMPLATE_TYPE,
                    loc,
                    format!("array of {}", a.elem_type.name()),
                ),
            },
            other => cx.report(&TEMPLATE_TYPE, loc, other.value_type().name().to_string()),
        }
    }
}

fn tensor_checks(cx: &mut Cx<'_>, t: &Target<'_>, g: &gguf::Gguf<'_>) {
    let mut names: HashMap<&[u8], usize> = HashMap::new();
    // (start, end, index) of tensors whose extent is known.
    let mut extents: Vec<(u64, u64, usize)> = Vec::with_capacity(g.tensors.len());
    for (i, ti) in g.tensors.iter().enumerate() {
        let name = template::clip(&ti.name_str(), 120);
        let loc = t.loc.at(ti.info_offset).object(format!("tensor {name}"));
        let n = names.entry(ti.name).or_insert(0);
        *n = n.saturating_add(1);
        if *n == 2 {
            cx.report(
                &DUPLICATE_TENSOR,
                loc.clone(),
                format!("tensor `{name}` is declared more than once"),
            );
        }
        let type_name = gguf::ggml_type(ti.ggml_type)
            .map(|ty| ty.name)
            .unwrap_or("?");
        if let Some(e) = ti.elements() {
            if e > cx.limits.max_tensor_elements {
                cx.report(
                    &BAD_SHAPE,
                    loc.clone(),
                    format!(
                        "{e} elements (limit {}), dims {:?}",
                        cx.limits.max_tensor_elements, ti.dims
                    ),
                );
                continue;
            }
        }
        let size = match ti.byte_size() {
            Ok(size) => size,
            Err(SizeError::UnknownType(ty)) => {
                cx.report(&UNKNOWN_TYPE, loc, format!("ggml type {ty}"));
                continue;
            }
            Err(SizeError::Overflow) => {
                cx.report(
                    &BAD_SHAPE,
                    loc,
                    format!("element count of dims {:?} overflows", ti.dims),
                );
                continue;
            }
            Err(SizeError::PartialBlock { ne0, block }) => {
                cx.report(&BAD_SHAPE,
                    loc,
                    format!("row of {ne0} elements is not a multiple of the {type_name} block size {block}"),
                );
                continue;
            }
        };
        if ti.offset % g.alignment != 0 {
            cx.report(
                &TENSOR_MISALIGNED,
                loc.clone(),
                format!("offset {} is not a multiple of {}", ti.offset, g.alignment),
            );
        }
        let start = g.data_start.checked_add(ti.offset);
        let end = start.and_then(|s| s.checked_add(size));
        match (start, end) {
            (Some(start), Some(end)) if end <= g.file_len => extents.push((start, end, i)),
            _ => cx.report(&TENSOR_OUT_OF_BOUNDS,
                loc,
                format!(
                    "{type_name} {:?}: {size} bytes at data offset {} (absolute {}), file is {} bytes",
                    ti.dims,
                    ti.offset,
                    start.map_or_else(|| "overflow".to_string(), |s| s.to_string()),
                    g.file_len
                ),
            ),
        }
    }

    extents.sort_unstable();
    let mut prev: Option<(u64, usize)> = None;
    for &(start, end, i) in &extents {
        if let Some((prev_end, j)) = prev {
            if start < prev_end {
                let a = g.tensors.get(j).map(|t| t.name_str()).unwrap_or_default();
                let b = g.tensors.get(i).map(|t| t.name_str()).unwrap_or_default();
                let loc = t.loc.object(format!("tensor {}", template::clip(&b, 120)));
                cx.report(
                    &TENSOR_OVERLAP,
                    loc,
                    format!(
                        "`{}` overlaps `{}` ({} bytes shared)",
                        template::clip(&b, 80),
                        template::clip(&a, 80),
                        prev_end.min(end).saturating_sub(start)
                    ),
                );
            }
        }
        if prev.is_none_or(|(e, _)| end > e) {
            prev = Some((end, i));
        }
    }

    trailing(cx, t, g, prev.map(|(e, _)| e));
}

/// Bytes after the (padded) end of the last tensor.
fn trailing(cx: &mut Cx<'_>, t: &Target<'_>, g: &gguf::Gguf<'_>, last_end: Option<u64>) {
    let end = match last_end {
        Some(e) => e.checked_next_multiple_of(g.alignment).unwrap_or(e),
        None if g.tensors.is_empty() => g.data_start.min(g.file_len).max(g.header_end),
        // Tensors exist but none could be placed: already reported.
        None => return,
    };
    let Some(tail) = usize::try_from(end).ok().and_then(|e| t.data.get(e..)) else {
        return;
    };
    let probe = tail.get(..tail.len().min(TRAILING_PROBE)).unwrap_or(tail);
    if tail.is_empty() || (probe.iter().all(|&b| b == 0) && tail.len() <= TRAILING_PROBE) {
        return;
    }
    let head: String = tail.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let kind = formats::detect(probe);
    cx.report(
        &TRAILING_DATA,
        t.loc.at(end),
        format!(
            "{} bytes after the tensor data, starting {head} (looks like {})",
            tail.len(),
            kind.name()
        ),
    );
    if !matches!(kind, Format::Unknown | Format::Text) {
        cx.scan_nested(
            tail,
            &t.loc.member(format!("<data after byte {end}>")),
            t.depth.saturating_add(1),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{scan_bytes, ScanOptions};

    pub(crate) struct W {
        buf: Vec<u8>,
    }

    impl W {
        pub(crate) fn new(tensors: u64, kvs: u64) -> Self {
            let mut w = W {
                buf: b"GGUF".to_vec(),
            };
            w.u32(3);
            w.u64(tensors);
            w.u64(kvs);
            w
        }
        fn u32(&mut self, v: u32) {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        fn u64(&mut self, v: u64) {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        fn str(&mut self, s: &[u8]) {
            self.u64(s.len() as u64);
            self.buf.extend_from_slice(s);
        }
        pub(crate) fn kv_str(&mut self, k: &str, v: &str) -> &mut Self {
            self.str(k.as_bytes());
            self.u32(8);
            self.str(v.as_bytes());
            self
        }
        fn kv_u32(&mut self, k: &str, v: u32) -> &mut Self {
            self.str(k.as_bytes());
            self.u32(4);
            self.u32(v);
            self
        }
        fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, off: u64) -> &mut Self {
            self.str(name.as_bytes());
            self.u32(dims.len() as u32);
            for &d in dims {
                self.u64(d);
            }
            self.u32(ty);
            self.u64(off);
            self
        }
        fn finish(&mut self, data_len: usize) -> Vec<u8> {
            while !self.buf.len().is_multiple_of(32) {
                self.buf.push(0);
            }
            let mut b = self.buf.clone();
            b.resize(b.len() + data_len, 0x11);
            b
        }
    }

    fn rules(data: &[u8]) -> Vec<(&'static str, Severity, String)> {
        let r = scan_bytes(data, "m.gguf", &ScanOptions::default());
        r.findings
            .iter()
            .map(|f| (f.rule.id, f.severity, f.evidence.clone()))
            .collect()
    }

    fn benign() -> Vec<u8> {
        let mut w = W::new(2, 3);
        w.kv_str("general.architecture", "llama")
            .kv_u32("general.alignment", 32)
            .kv_str("tokenizer.chat_template", template_tests::LLAMA3)
            .tensor("token_embd.weight", &[8, 2], 0, 0)
            .tensor("output.weight", &[32, 1], 8, 64);
        w.finish(64 + 34 + 30)
    }

    mod template_tests {
        pub(super) const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
    }

    #[test]
    fn benign_file_is_clean() {
        let f = rules(&benign());
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn malicious_template_is_critical() {
        let mut w = W::new(0, 1);
        w.kv_str(
            "tokenizer.chat_template",
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        );
        let f = rules(&w.finish(0));
        assert!(
            f.iter()
                .any(|(id, s, _)| *id == "TPL001" && *s == Severity::Critical),
            "{f:#?}"
        );
        let mut w = W::new(0, 2);
        w.kv_str("tokenizer.chat_template", "{{ messages }}")
            .kv_str(
                "tokenizer.chat_template.tool_use",
                "{{ lipsum.__globals__['os'].popen('id').read() }}",
            );
        let f = rules(&w.finish(0));
        assert!(f.iter().any(|(id, _, _)| *id == "TPL001"), "{f:#?}");
        assert!(f.iter().any(|(id, _, _)| *id == "TPL002"), "{f:#?}");
    }

    #[test]
    fn template_is_checked_even_when_the_tensor_table_is_broken() {
        let mut w = W::new(1, 1);
        w.kv_str(
            "tokenizer.chat_template",
            "{{ cycler.__init__.__globals__.os.popen('id') }}",
        );
        w.tensor("t", &[1, 1, 1, 1, 1], 0, 0);
        let f = rules(&w.finish(0));
        assert!(f.iter().any(|(id, _, _)| *id == "GEN002"), "{f:#?}");
        assert!(f.iter().any(|(id, _, _)| *id == "TPL001"), "{f:#?}");
    }

    #[test]
    fn hostile_tensor_tables() {
        let mut w = W::new(6, 2);
        w.kv_str("a", "1")
            .kv_str("a", "2")
            .tensor("far", &[4], 0, 1 << 40)
            .tensor("odd", &[4], 0, 3)
            .tensor("x", &[8], 0, 0)
            .tensor("x", &[8], 0, 0)
            .tensor("what", &[4], 77, 0)
            .tensor("half", &[30], 2, 0);
        let f = rules(&w.finish(64));
        let ids: Vec<_> = f.iter().map(|x| x.0).collect();
        for id in [
            "GGUF001", "GGUF002", "GGUF003", "GGUF004", "GGUF005", "GGUF006", "GGUF007",
        ] {
            assert!(ids.contains(&id), "{id} missing: {f:#?}");
        }
        let oob = f.iter().find(|x| x.0 == "GGUF001").unwrap();
        assert_eq!(oob.1, Severity::High);
        assert!(oob.2.contains("1099511627776"), "{}", oob.2);
    }

    #[test]
    fn overflowing_offsets_and_shapes() {
        let mut w = W::new(2, 0);
        w.tensor("o", &[4], 0, u64::MAX - 8)
            .tensor("big", &[u64::MAX, u64::MAX], 0, 0);
        let f = rules(&w.finish(16));
        assert!(f.iter().any(|x| x.0 == "GGUF001"), "{f:#?}");
        assert!(f.iter().any(|x| x.0 == "GGUF005"), "{f:#?}");
    }

    #[test]
    fn bad_alignment_and_trailing_data() {
        let mut w = W::new(0, 1);
        w.kv_u32("general.alignment", 0);
        let f = rules(&w.finish(0));
        assert!(f.iter().any(|x| x.0 == "GGUF009"), "{f:#?}");

        let mut data = benign();
        data.extend_from_slice(b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        let f = rules(&data);
        let t = f.iter().find(|x| x.0 == "GGUF008").unwrap();
        assert!(t.2.contains("zip"), "{}", t.2);
    }

    #[test]
    fn many_bad_tensors_are_summarised() {
        let mut w = W::new(100, 0);
        for i in 0..100 {
            w.tensor(&format!("t{i}"), &[4], 99, 0);
        }
        let f = rules(&w.finish(0));
        let n = f.iter().filter(|x| x.0 == "GGUF004").count();
        assert_eq!(n, crate::context::MAX_PER_RULE + 1, "{f:#?}");
        let more = format!("{} more", 100 - crate::context::MAX_PER_RULE);
        assert!(f.iter().any(|x| x.2.contains(&more)));
    }

    #[test]
    fn truncated_file_is_a_parse_error() {
        let data = benign();
        for cut in [5, 12, 30, 100, 200] {
            let f = rules(&data[..cut]);
            assert!(
                f.iter().any(|x| x.0 == "GEN002" || x.0 == "GEN003"),
                "{cut}: {f:#?}"
            );
        }
    }
}
