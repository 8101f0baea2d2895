//! Rules that belong to no single format: the scanner's fail-closed answers.

use crate::context::{Cx, Target};
use crate::rules::Rule;
use crate::severity::Severity;

pub static UNKNOWN_FORMAT: Rule = Rule {
    id: "GEN001",
    name: "unknown-format",
    severity: Severity::Medium,
    title: "file format not recognised",
    why: "Warden cannot vouch for bytes it cannot read; a loader may still execute them (a pickle variant, a custom format).",
    fix: "Confirm what produced the file. Convert it to a data-only format (safetensors, ONNX, GGUF) or remove it from the model.",
};

pub static PARSE_ERROR: Rule = Rule {
    id: "GEN002",
    name: "malformed-file",
    severity: Severity::Medium,
    title: "file is malformed or truncated",
    why: "A file that does not parse cannot be shown clean, and loaders often act on what they read before they fail (an unpickler runs calls before it reaches a bad opcode).",
    fix: "Obtain a fresh copy from the publisher and check its signature; do not load this one.",
};

pub static LIMIT_EXCEEDED: Rule = Rule {
    id: "GEN003",
    name: "limit-exceeded",
    severity: Severity::Medium,
    title: "a scan limit was exceeded",
    why: "The file asks for more work or memory than any real model needs (a compression bomb, an absurd count); it was not fully inspected.",
    fix: "Inspect the file's origin. If it is genuine and large, raise the named limit deliberately and scan again.",
};

pub static OPAQUE_COMPRESSION: Rule = Rule {
    id: "GEN004",
    name: "opaque-compression",
    severity: Severity::Medium,
    title: "compressed data Warden cannot open",
    why: "Compressed or encrypted content hides whatever it carries (joblib's xz/bz2 output may hold a pickle).",
    fix: "Decompress it in a quarantine area and scan the result, or ask the publisher for an uncompressed or gzip/zip copy.",
};

pub static NESTING_TOO_DEEP: Rule = Rule {
    id: "GEN005",
    name: "nesting-too-deep",
    severity: Severity::Medium,
    title: "containers nested too deeply",
    why: "Archives within archives beyond any real packaging need are a classic way to exhaust or evade scanners.",
    fix: "Repackage the model flat; scan what is inside.",
};

pub static SPECIAL_FILE: Rule = Rule {
    id: "GEN006",
    name: "special-file",
    severity: Severity::Medium,
    title: "symbolic link or special file in the model",
    why: "A link can point a loader at files outside the model (keys, configuration); a FIFO or device can hang or feed a loader.",
    fix: "Replace links with the files they point to, remove special files, and scan again.",
};

pub static UNREADABLE: Rule = Rule {
    id: "GEN007",
    name: "unreadable-file",
    severity: Severity::Medium,
    title: "file could not be read",
    why: "A file the scanner cannot read was not inspected, but a loader running with other permissions might still load it.",
    fix: "Fix the permissions or the storage error and scan again.",
};

pub static REFERENCED_DATA: Rule = Rule {
    id: "GEN008",
    name: "referenced-raw-data",
    severity: Severity::Info,
    title: "raw tensor data referenced by a model file",
    why: "Formatless bytes are normal here: another file of the model (ONNX external data, TensorFlow variables) declares this file as its tensor storage, and its loader reads it as numbers only.",
    fix: "Nothing to do; keep the file with the model that references it.",
};

pub static RULES: &[&Rule] = &[
    &UNKNOWN_FORMAT,
    &PARSE_ERROR,
    &LIMIT_EXCEEDED,
    &OPAQUE_COMPRESSION,
    &NESTING_TOO_DEEP,
    &SPECIAL_FILE,
    &UNREADABLE,
    &REFERENCED_DATA,
];

pub fn unknown(cx: &mut Cx<'_>, t: Target<'_>) {
    let head: String = t.data.iter().take(8).map(|b| format!("{b:02x}")).collect();
    cx.report(
        &UNKNOWN_FORMAT,
        t.loc.at(0),
        format!("{} bytes, starting {head}", t.data.len()),
    );
}

pub fn opaque_compressed(cx: &mut Cx<'_>, t: Target<'_>, kind: &str) {
    cx.report(
        &OPAQUE_COMPRESSION,
        t.loc.at(0),
        format!("{kind} stream of {} bytes", t.data.len()),
    );
}
