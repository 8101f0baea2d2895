//! Pickle analyzer: runs each pickle in the data on the emulated unpickler
//! ([`formats::pickle`]) and judges what it would do when loaded.
//!
//! Every global the stream imports is judged by its full dotted path: on the deny-list
//! (command execution, code evaluation, files, network, more pickles) it is critical; off
//! the allow-list it is high when the unpickler would run it and medium when it is only
//! referenced; on the allow-list it passes only if used the way the list permits (a class
//! may be instantiated for `BUILD`, not called). Operators extend the allow-list with
//! `--allow-global module.name`; the deny-list always wins.

mod allowlist;
mod judge;
pub mod policy;

#[cfg(test)]
mod tests;

use formats::pickle::{parse_stream, Stream, Value};

use crate::context::{Cx, Target};
use crate::rules::Rule;
use crate::severity::Severity;

pub static DANGEROUS_CALLABLE: Rule = Rule {
    id: "PKL001",
    name: "pickle-dangerous-callable",
    severity: Severity::Critical,
    title: "pickle imports a dangerous callable",
    why: "Loading this pickle imports (and usually calls) a function that runs commands, evaluates code, loads further pickles, or reaches files or the network: loading it runs the attacker's code.",
    fix: "Do not load this file. Obtain the model from a trusted publisher in a data-only format (safetensors, ONNX, GGUF) and report the file to its host.",
};

pub static UNLISTED_CALL: Rule = Rule {
    id: "PKL002",
    name: "pickle-unlisted-call",
    severity: Severity::High,
    title: "pickle runs code that is not on the allow-list",
    why: "The unpickler would call, instantiate or modify a global (or a value computed at load time) that Warden does not know to be safe; any importable function can run arbitrary code.",
    fix: "Check the named global. If it is a genuine class of a library you trust, allow it with `--allow-global module.name`; otherwise do not load the file.",
};

pub static UNLISTED_GLOBAL: Rule = Rule {
    id: "PKL003",
    name: "pickle-unlisted-global",
    severity: Severity::Medium,
    title: "pickle references a global that is not on the allow-list",
    why: "Importing a module runs its top-level code, and a referenced object may be called later by whoever uses the loaded data.",
    fix: "Check the named global; allow it with `--allow-global module.name` if it is genuine, otherwise do not load the file.",
};

pub static EXTENSION_CODE: Rule = Rule {
    id: "PKL004",
    name: "pickle-extension-code",
    severity: Severity::Medium,
    title: "pickle uses the copyreg extension registry",
    why: "EXT1/EXT2/EXT4 name a global by a number resolved through a process-wide registry at load time, so the file does not say what it imports.",
    fix: "Re-save the data without extension codes (standard pickling never emits them) or convert to a data-only format.",
};

pub static PERSISTENT_ID: Rule = Rule {
    id: "PKL005",
    name: "pickle-persistent-id",
    severity: Severity::Low,
    title: "pickle uses a persistent id of an unusual shape",
    why: "Persistent ids are resolved by the loader's own code (PyTorch's storages); an id of another shape means a loader Warden does not know decides what it becomes.",
    fix: "Confirm which program wrote and loads this file.",
};

pub static NESTED_PICKLE: Rule = Rule {
    id: "PKL006",
    name: "pickle-nested-pickle",
    severity: Severity::Medium,
    title: "pickle carries another pickle or archive inside its data",
    why: "A pickle or zip hidden in bytes passed to a call is unpickled by that call or by later code; scanners that look only at the outer stream miss it. Its contents are scanned and reported too.",
    fix: "Review the findings of the nested data; do not load the file if any of them is medium or above.",
};

pub static TRAILING_DATA: Rule = Rule {
    id: "PKL007",
    name: "pickle-trailing-data",
    severity: Severity::Info,
    title: "data after the last pickle",
    why: "Bytes after the final STOP are not read by pickle.load; PyTorch's legacy format keeps tensor storage there, but anything else there was put by some other tool.",
    fix: "Nothing, if the file is a legacy PyTorch checkpoint; otherwise find out what wrote the extra bytes.",
};

pub static ANOMALY: Rule = Rule {
    id: "PKL008",
    name: "pickle-anomaly",
    severity: Severity::Low,
    title: "pickle stream is irregular",
    why: "Frames that lie about their length, out-of-band buffers and similar oddities are never written by Python's pickler; different unpicklers may read such streams differently.",
    fix: "Re-save the data with a standard pickler, or convert it to a data-only format.",
};

pub static RULES: &[&Rule] = &[
    &DANGEROUS_CALLABLE,
    &UNLISTED_CALL,
    &UNLISTED_GLOBAL,
    &EXTENSION_CODE,
    &PERSISTENT_ID,
    &NESTED_PICKLE,
    &TRAILING_DATA,
    &ANOMALY,
];

/// PyTorch's legacy (pre-1.6, non-zip) `torch.save` opens with this number, pickled.
const TORCH_LEGACY_MAGIC: i128 = 0x1950_a86a_20f9_469c_fc6c;

pub fn analyze(cx: &mut Cx<'_>, t: Target<'_>) {
    let stream = parse_stream(t.data, cx.limits);
    let judgement = judge::judge(&stream, &cx.policy.allow_globals, t.data.len());
    for v in judgement.verdicts {
        let mut loc = t.loc.at(v.offset);
        if let Some(object) = v.object {
            loc = loc.object(object);
        }
        cx.report_at(v.rule, v.severity, loc, v.evidence);
    }
    for blob in judgement.blobs {
        cx.report(
            &NESTED_PICKLE,
            t.loc.at(blob.offset),
            format!(
                "{} bytes passed to {} hold a pickle or zip (scanned as a nested member)",
                blob.data.len(),
                blob.receiver
            ),
        );
        let member = t.loc.member(format!(
            "bytes passed to {} @ byte {}",
            blob.receiver, blob.offset
        ));
        cx.scan_nested(&blob.data, &member, t.depth.saturating_add(1));
    }
    for trace in &stream.pickles {
        if let Some(err) = &trace.error {
            cx.parse_error("pickle", t.loc, err);
        }
    }
    if let Some(err) = &stream.error {
        cx.parse_error("pickle", t.loc, err);
    }
    if let Some(trailing) = stream.trailing {
        cx.report(
            &TRAILING_DATA,
            t.loc.at(trailing.offset),
            format!(
                "{} bytes after the last pickle ({} pickle(s) read)",
                trailing.len,
                stream.pickles.len()
            ),
        );
    }
    note_formats(cx, &stream);
}

fn note_formats(cx: &mut Cx<'_>, stream: &Stream<'_>) {
    let legacy_torch = stream.pickles.first().is_some_and(|p| match p.result {
        Some(Value::Long(bytes)) => {
            formats::pickle::render::decode_long(bytes) == Some(TORCH_LEGACY_MAGIC)
        }
        _ => false,
    });
    if legacy_torch {
        cx.saw_format("pytorch-legacy");
    }
    if stream.traces().any(|t| !t.joblib_arrays.is_empty()) {
        cx.saw_format("joblib");
    }
}
