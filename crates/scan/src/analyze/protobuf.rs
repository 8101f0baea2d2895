//! Protobuf files: ONNX models, TensorFlow SavedModels and frozen GraphDefs, and the
//! protobuf files found next to them.
//!
//! Detection only knows that the bytes start like a protobuf message. Which message it is
//! comes from the fields at its top level (an ONNX `ModelProto` has an `ir_version` and a
//! graph; a `SavedModel` has only a schema version and meta graphs ...), and the matching
//! reader confirms. A protobuf that no reader accepts is reported, never passed as clean.
//!
//! TensorFlow graphs run ops, and some ops run Python (`PyFunc`), read and write files
//! (`ReadFile`, `WriteFile`, checkpoint ops), or reach the network (`Rpc`, tf.data service,
//! debug ops with `debug_urls`). Every node of every graph and every function of the
//! library is checked. Checkpoint ops are expected in the saver (TF1 `save/` scope, TF2
//! `__inference__traced_save_*` functions reached from the `SaverDef`), and only there.

use std::collections::{BTreeMap, BTreeSet};

use formats::onnx::wire::TopLevel;
use formats::tfproto::proto::{FunctionDef, MetaGraphDef, NodeDef, SavedMetadata};
use formats::tfproto::{self, ops, GraphDef, SavedModel};
use formats::Format;

use super::onnx;
use crate::context::{Cx, Target};
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

pub static PYTHON_OP: Rule = Rule {
    id: "TF001",
    name: "tf-python-function-op",
    severity: Severity::Critical,
    title: "TensorFlow op that runs Python code",
    why: "PyFunc, PyFuncStateless and EagerPyFunc call arbitrary Python registered under a token when the graph runs.",
    fix: "Do not load the model. Re-export it without tf.py_function / tf.numpy_function.",
};

pub static FILE_WRITE: Rule = Rule {
    id: "TF002",
    name: "tf-file-write-op",
    severity: Severity::Critical,
    title: "TensorFlow op that writes files",
    why: "WriteFile, PrintV2 to a file://, summary writers and dataset savers write wherever the graph says when it runs: dropped scripts, overwritten configuration.",
    fix: "Do not load the model. A serving graph has no reason to write files.",
};

pub static FILE_READ: Rule = Rule {
    id: "TF003",
    name: "tf-file-read-op",
    severity: Severity::Critical,
    title: "TensorFlow op that reads or lists files",
    why: "ReadFile, MatchingFiles, ImmutableConst and file readers pull local files (keys, credentials) into tensors that a model output can leak.",
    fix: "Do not load the model unless the graph reads only its own assets.",
};

pub static NETWORK: Rule = Rule {
    id: "TF004",
    name: "tf-network-op",
    severity: Severity::Critical,
    title: "TensorFlow op that reaches the network",
    why: "RPC ops, tf.data service and BigQuery readers connect to addresses chosen by the model's author when the graph runs.",
    fix: "Do not load the model. A serving graph has no reason to open connections.",
};

pub static CHECKPOINT_OP: Rule = Rule {
    id: "TF005",
    name: "tf-checkpoint-op",
    severity: Severity::Low,
    title: "TensorFlow checkpoint op (save/restore)",
    why: "SaveV2/RestoreV2 read and write checkpoint files at paths given at run time. They belong in the saver; anywhere else they are file access under the model's control.",
    fix: "Nothing to do when they sit in the saver; otherwise do not load the model.",
};

pub static DEBUG_SINK: Rule = Rule {
    id: "TF006",
    name: "tf-debug-sink",
    severity: Severity::Critical,
    title: "TensorFlow debug op that sends tensors to a URL or directory",
    why: "Debug ops with debug_urls (file://, grpc://) or a dump_root stream every tensor they see out of the process.",
    fix: "Do not load the model. Strip debug ops before export.",
};

pub static UNKNOWN_OP: Rule = Rule {
    id: "TF007",
    name: "tf-custom-op",
    severity: Severity::Medium,
    title: "TensorFlow op that is not a core op",
    why: "An op outside TensorFlow's core set needs a kernel from a custom library (tf.load_op_library): native code Warden cannot vouch for.",
    fix: "Find out which library defines the op and vet it, or re-export the model with core ops.",
};

pub static SHADOWED_OP: Rule = Rule {
    id: "TF008",
    name: "tf-function-shadows-op",
    severity: Severity::Medium,
    title: "graph function named like a core op",
    why: "A library function with the name of a core op changes what nodes using that op compute, depending on which the runtime resolves first.",
    fix: "Do not load the model; re-export it from its source.",
};

pub static ASSET_READ: Rule = Rule {
    id: "TF009",
    name: "tf-asset-file-read",
    severity: Severity::Low,
    title: "TensorFlow op that initialises a table from a text file",
    why: "Vocabulary lookups read an asset file named by the graph; normal for text models, but the file name is the model's choice.",
    fix: "Check that the file it reads is an asset shipped with the model.",
};

pub static KERAS_LAMBDA: Rule = Rule {
    id: "TF010",
    name: "keras-lambda-in-saved-model",
    severity: Severity::High,
    title: "Keras Lambda layer in a SavedModel's Keras metadata",
    why: "tf.keras.models.load_model rebuilds Lambda layers from keras_metadata.pb; a serialized function is Python bytecode that runs on load.",
    fix: "Do not load the model with Keras. Load it with tf.saved_model.load, or re-export it without Lambda layers.",
};

pub static RULES: &[&Rule] = &[
    &PYTHON_OP,
    &FILE_WRITE,
    &FILE_READ,
    &NETWORK,
    &CHECKPOINT_OP,
    &DEBUG_SINK,
    &UNKNOWN_OP,
    &SHADOWED_OP,
    &ASSET_READ,
    &KERAS_LAMBDA,
];

/// Decides which protobuf message the bytes hold and runs its analyzer.
pub fn analyze(cx: &mut Cx<'_>, t: Target<'_>) {
    let top = TopLevel::scan(t.data);
    if formats::onnx::looks_like(&top) {
        match formats::onnx::read(t.data, cx.limits) {
            Ok(model) => onnx::analyze_model(cx, t, &model),
            Err(e) => cx.parse_error("onnx", t.loc, &e),
        }
        return;
    }
    // (name, reader) in order of preference; the first that reads wins, and when none
    // does the first candidate's error is reported.
    let mut first_error = None;
    if tfproto::looks_like_saved_model(&top) {
        match tfproto::read_saved_model(t.data, cx.limits) {
            Ok(m) => return analyze_saved_model(cx, t, &m),
            Err(e) => first_error = first_error.or(Some(("tensorflow SavedModel", e))),
        }
    }
    if tfproto::looks_like_graph_def(&top) {
        match tfproto::read_graph_def(t.data, cx.limits) {
            Ok(g) => return analyze_graph_def(cx, t, &g),
            Err(e) => first_error = first_error.or(Some(("tensorflow GraphDef", e))),
        }
    }
    if tfproto::looks_like_keras_metadata(&top) {
        match tfproto::read_keras_metadata(t.data, cx.limits) {
            Ok(m) => return analyze_keras_metadata(cx, t, &m),
            Err(e) => first_error = first_error.or(Some(("keras metadata", e))),
        }
    }
    if formats::onnx::is_onnx_data(t.data, &top, cx.limits) {
        cx.saw_format("onnx-data");
        return;
    }
    // A fingerprint's hashes fit a tensor's fields too; the sidecar test is stricter.
    if let Some(kind) = tfproto::sidecar(t.data, &top, cx.limits) {
        cx.saw_format(kind.name());
        return;
    }
    if formats::onnx::looks_like_tensor(&top) {
        match formats::onnx::read_tensor(t.data, cx.limits) {
            Ok(tensor) => return onnx::analyze_tensor(cx, t, &tensor),
            Err(e) => first_error = first_error.or(Some(("onnx tensor", e))),
        }
    }
    if let Some((format, e)) = first_error {
        return cx.parse_error(format, t.loc, &e);
    }
    if !top.complete {
        // Not a protobuf at all; plain text often starts with bytes that look like a tag.
        if let Some(format) = text_format(t.data) {
            return cx.scan_as(format, t.data, t.loc, t.depth);
        }
    }
    super::generic::unknown(cx, t);
}

/// `Some(Json | Text)` when the data is UTF-8 text without control characters.
fn text_format(data: &[u8]) -> Option<Format> {
    let head = &data[..data.len().min(64 * 1024)];
    let text = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
    {
        return None;
    }
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\n', '\r', '\t']);
    Some(if trimmed.starts_with(['{', '[']) {
        Format::Json
    } else {
        Format::Text
    })
}

fn analyze_saved_model(cx: &mut Cx<'_>, t: Target<'_>, m: &SavedModel) {
    cx.saw_format("tensorflow-savedmodel");
    let mut out = Pending::default();
    for (i, mg) in m.meta_graphs.iter().enumerate() {
        let tags = mg
            .meta_info_def
            .as_ref()
            .map(|m| m.tags.join(","))
            .unwrap_or_default();
        let scope = format!("meta_graph[{i}] tags={}", short(&tags));
        if let Some(g) = &mg.graph_def {
            graph(&mut out, t.loc, g, Saver::of(mg), &scope);
        }
    }
    out.flush(cx);
    claim_variables(cx, t);
}

/// A SavedModel on disk keeps its weights in `variables/variables.data-*` (raw tensor
/// bytes) and `variables/variables.index` (their table of contents): its raw data.
fn claim_variables(cx: &mut Cx<'_>, t: Target<'_>) {
    let (0, Some(base)) = (t.depth, cx.base_dir) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(base.join("variables")) else {
        return;
    };
    let claims: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "variables.index" || n.starts_with("variables.data-"))
        })
        .collect();
    for path in claims {
        cx.claim_data_file(path);
    }
}

fn analyze_graph_def(cx: &mut Cx<'_>, t: Target<'_>, g: &GraphDef) {
    cx.saw_format("tensorflow-graphdef");
    let mut out = Pending::default();
    graph(&mut out, t.loc, g, Saver::default(), "graph");
    out.flush(cx);
}

/// Where the saver lives in a graph.
#[derive(Debug, Default)]
struct Saver {
    /// Nodes the `SaverDef` names (without `:0` or `^`).
    roots: BTreeSet<String>,
    /// Name scopes of those nodes (`save/`, `save_1/`).
    scopes: BTreeSet<String>,
}

impl Saver {
    fn of(mg: &MetaGraphDef) -> Self {
        let mut s = Self::default();
        if let Some(def) = &mg.saver_def {
            for name in [
                &def.filename_tensor_name,
                &def.save_tensor_name,
                &def.restore_op_name,
            ] {
                let node = node_name(name);
                if node.is_empty() {
                    continue;
                }
                if let Some((scope, _)) = node.rsplit_once('/') {
                    s.scopes.insert(format!("{scope}/"));
                }
                s.roots.insert(node.to_string());
            }
        }
        s
    }

    fn contains(&self, node: &str) -> bool {
        self.roots.contains(node)
            || self.scopes.iter().any(|s| node.starts_with(s.as_str()))
            || default_saver_scope(node)
    }
}

/// TF1's `tf.train.Saver` puts its nodes under `save/` (`save_1/` ... for more savers).
fn default_saver_scope(node: &str) -> bool {
    let Some((first, _)) = node.split_once('/') else {
        return false;
    };
    first == "save"
        || first
            .strip_prefix("save_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// TF2 saves through functions named `__inference__traced_save_<n>` and
/// `__inference__traced_restore_<n>`.
fn saver_function_name(name: &str) -> bool {
    name.contains("_traced_save_") || name.contains("_traced_restore_")
}

/// A tensor or control input name's node: `^a/b:1` is `a/b`.
fn node_name(input: &str) -> &str {
    let s = input.strip_prefix('^').unwrap_or(input);
    match s.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => s,
    }
}

/// Whether a node runs when the model serves, or only when it saves or restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Inference,
    Saver,
}

fn graph(out: &mut Pending, loc: &Location, g: &GraphDef, saver: Saver, scope: &str) {
    // Every definition under each name: a duplicate must not hide the body it replaces.
    let mut functions: Functions<'_> = BTreeMap::new();
    for f in g.library.iter().flat_map(|l| &l.function) {
        functions.entry(f.name()).or_default().push(f);
    }

    // Functions reached from inference nodes and from saver nodes.
    let mut from_inference = Vec::new();
    let mut from_saver = Vec::new();
    for n in &g.node {
        let calls = calls(n, &functions);
        if saver.contains(&n.name) {
            from_saver.extend(calls);
        } else {
            from_inference.extend(calls);
        }
    }
    let inference = closure(from_inference, &functions);
    let saving = closure(from_saver, &functions);
    let role_of = |name: &str| {
        if inference.contains(name) {
            Role::Inference
        } else if saving.contains(name) || saver_function_name(name) {
            Role::Saver
        } else {
            // Not called from the graph: a SavedModel's object graph may still call it.
            Role::Inference
        }
    };

    for n in &g.node {
        let role = if saver.contains(&n.name) {
            Role::Saver
        } else {
            Role::Inference
        };
        let label = format!("{scope} / node {}", short(&n.name));
        check_node(out, loc, n, role, &functions, &label);
    }
    for (name, defs) in &functions {
        let label = format!("{scope} / function {}", short(name));
        if ops::is_core(name) {
            out.push(
                &SHADOWED_OP,
                loc.object(label.clone()),
                format!("function `{}` has the name of a core op", short(name)),
            );
        }
        if defs.len() > 1 {
            out.push(
                &SHADOWED_OP,
                loc.object(label.clone()),
                format!("function `{}` is defined {} times", short(name), defs.len()),
            );
        }
        let role = role_of(name);
        for n in defs.iter().flat_map(|f| &f.node_def) {
            let label = format!("{label} / node {}", short(&n.name));
            check_node(out, loc, n, role, &functions, &label);
        }
    }
}

/// Functions a node calls: through function-valued attributes (`f`, `then_branch`, `body`
/// ...) or by using a function's name as its op.
/// A graph's library: every definition under each function name.
type Functions<'a> = BTreeMap<&'a str, Vec<&'a FunctionDef>>;

fn calls<'a>(n: &'a NodeDef, functions: &Functions<'_>) -> Vec<&'a str> {
    let mut out: Vec<&str> = n.attr.values().flat_map(|v| v.functions()).collect();
    if functions.contains_key(n.op.as_str()) {
        out.push(n.op.as_str());
    }
    out
}

/// Every function reachable from `start` through function bodies.
fn closure<'a>(start: Vec<&'a str>, functions: &Functions<'a>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo = start;
    while let Some(name) = todo.pop() {
        if !seen.insert(name) {
            continue;
        }
        for f in functions.get(name).into_iter().flatten() {
            for n in &f.node_def {
                todo.extend(calls(n, functions));
            }
        }
    }
    seen
}

const PYTHON_OPS: &[&str] = &["PyFunc", "PyFuncStateless", "EagerPyFunc"];

/// Ops that write files (their path is an input or attribute chosen by the graph).
const WRITE_OPS: &[&str] = &[
    "WriteFile",
    "DatasetToTFRecord",
    "ExperimentalDatasetToTFRecord",
    "SaveDataset",
    "SaveDatasetV2",
    "SnapshotDataset",
    "SnapshotDatasetV2",
    "CreateSummaryFileWriter",
    "CreateSummaryDbWriter",
    "WriteSummary",
    "WriteScalarSummary",
    "WriteHistogramSummary",
    "WriteImageSummary",
    "WriteAudioSummary",
    "WriteGraphSummary",
    "WriteRawProtoSummary",
    "ImportEvent",
];

/// Ops that read or list files: (op, severity). Explicit file access is critical; readers
/// and datasets that take file names from their input are high.
const READ_OPS: &[(&str, Severity)] = &[
    ("ReadFile", Severity::Critical),
    ("MatchingFiles", Severity::Critical),
    ("ImmutableConst", Severity::Critical),
    ("MatchingFilesDataset", Severity::High),
    ("ExperimentalMatchingFilesDataset", Severity::High),
    ("WholeFileReader", Severity::High),
    ("WholeFileReaderV2", Severity::High),
    ("TextLineReader", Severity::High),
    ("TextLineReaderV2", Severity::High),
    ("TFRecordReader", Severity::High),
    ("TFRecordReaderV2", Severity::High),
    ("FixedLengthRecordReader", Severity::High),
    ("FixedLengthRecordReaderV2", Severity::High),
    ("LMDBReader", Severity::High),
    ("TFRecordDataset", Severity::High),
    ("TFRecordDatasetV2", Severity::High),
    ("TextLineDataset", Severity::High),
    ("FixedLengthRecordDataset", Severity::High),
    ("FixedLengthRecordDatasetV2", Severity::High),
    ("CSVDataset", Severity::High),
    ("CSVDatasetV2", Severity::High),
    ("ExperimentalCSVDataset", Severity::High),
    ("SqlDataset", Severity::High),
    ("ExperimentalSqlDataset", Severity::High),
    ("LMDBDataset", Severity::High),
    ("ExperimentalLMDBDataset", Severity::High),
    ("LoadDataset", Severity::High),
    ("SnapshotDatasetReader", Severity::High),
    ("SnapshotNestedDatasetReader", Severity::High),
    ("SnapshotChunkDataset", Severity::High),
    ("ListSnapshotChunksDataset", Severity::High),
    ("RecordInput", Severity::High),
    ("LoadAndRemapMatrix", Severity::High),
    ("GenerateVocabRemapping", Severity::High),
];

/// Ops that open network connections.
const NETWORK_OPS: &[&str] = &[
    "Rpc",
    "TryRpc",
    "RpcClient",
    "RpcCall",
    "RpcServer",
    "RpcServerStart",
    "RpcServerRegister",
    "RpcCheckStatus",
    "RpcGetValue",
    "DeleteRpcFutureResource",
    "DataServiceDataset",
    "DataServiceDatasetV2",
    "DataServiceDatasetV3",
    "DataServiceDatasetV4",
    "RegisterDataset",
    "RegisterDatasetV2",
    "BigQueryReader",
    "GenerateBigQueryReaderPartitions",
    "RemoteFusedGraphExecute",
];

/// Checkpoint ops: expected in the saver only.
const CHECKPOINT_OPS: &[&str] = &[
    "Save",
    "SaveV2",
    "SaveSlices",
    "Restore",
    "RestoreV2",
    "RestoreSlice",
    "MergeV2Checkpoints",
];

const DEBUG_OPS: &[&str] = &[
    "DebugIdentity",
    "DebugIdentityV2",
    "DebugIdentityV3",
    "DebugNanCount",
    "DebugNumericSummary",
    "DebugNumericSummaryV2",
];

fn check_node(
    out: &mut Pending,
    loc: &Location,
    n: &NodeDef,
    role: Role,
    functions: &Functions<'_>,
    label: &str,
) {
    let op = n.op.as_str();
    let at = || loc.object(label.to_string());
    let attr = |key: &str| -> Vec<String> {
        n.attr
            .get(key)
            .map(|v| {
                v.strings()
                    .into_iter()
                    .map(|s| short(&String::from_utf8_lossy(s)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let evidence = |extra: &str| {
        let mut e = format!("op {} (node `{}`)", short(op), short(&n.name));
        if !extra.is_empty() {
            e.push_str(": ");
            e.push_str(extra);
        }
        e
    };

    if PYTHON_OPS.contains(&op) {
        let token = attr("token").join(",");
        out.push(&PYTHON_OP, at(), evidence(&format!("token={token}")));
    } else if WRITE_OPS.contains(&op) {
        out.push(&FILE_WRITE, at(), evidence(""));
    } else if op == "PrintV2" {
        let stream = attr("output_stream").join("");
        if stream.starts_with("file://") {
            out.push(
                &FILE_WRITE,
                at(),
                evidence(&format!("output_stream={stream}")),
            );
        }
    } else if let Some((_, sev)) = READ_OPS.iter().find(|(o, _)| *o == op) {
        let detail = attr("memory_region_name").join("");
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("memory_region_name={detail}")
        };
        out.push_at(&FILE_READ, *sev, at(), evidence(&detail));
    } else if NETWORK_OPS.contains(&op) {
        out.push(&NETWORK, at(), evidence(""));
    } else if CHECKPOINT_OPS.contains(&op) {
        match role {
            Role::Saver => out.push(&CHECKPOINT_OP, at(), evidence("in the saver")),
            Role::Inference => out.push_at(
                &CHECKPOINT_OP,
                Severity::High,
                at(),
                evidence("outside the saver, in the serving graph"),
            ),
        }
    } else if DEBUG_OPS.contains(&op) {
        let urls: Vec<String> = attr("debug_urls")
            .into_iter()
            .chain(attr("dump_root"))
            .collect();
        if urls.iter().any(|u| !u.is_empty()) {
            out.push(&DEBUG_SINK, at(), evidence(&urls.join(",")));
        } else {
            out.push_at(&DEBUG_SINK, Severity::Low, at(), evidence("no destination"));
        }
    } else if op.starts_with("InitializeTableFromTextFile") {
        out.push(&ASSET_READ, at(), evidence(""));
    } else if op == "DecodeProtoV2" || op == "EncodeProto" {
        let source = attr("descriptor_source").join("");
        if !source.is_empty() && source != "local://" && !source.starts_with("bytes://") {
            out.push_at(
                &FILE_READ,
                Severity::High,
                at(),
                evidence(&format!("descriptor_source={source}")),
            );
        }
    } else if !ops::is_core(op) && !functions.contains_key(op) {
        // Grappler's fused ops (`_FusedMatMul` ...) are internal kernels, not custom code.
        let sev = if op.starts_with('_') {
            Severity::Low
        } else {
            UNKNOWN_OP.severity
        };
        out.push_at(&UNKNOWN_OP, sev, at(), evidence("not a TensorFlow core op"));
    }
}

fn analyze_keras_metadata(cx: &mut Cx<'_>, t: Target<'_>, m: &SavedMetadata) {
    cx.saw_format("keras-metadata");
    let mut out = Pending::default();
    for node in &m.nodes {
        let Ok(config) = serde_json::from_str::<serde_json::Value>(&node.metadata) else {
            out.push_at(
                &KERAS_LAMBDA,
                Severity::Medium,
                t.loc
                    .object(format!("keras object {}", short(&node.node_path))),
                "metadata is not valid JSON; its layers cannot be checked".to_string(),
            );
            continue;
        };
        let mut lambdas = Vec::new();
        find_lambdas(&config, &mut lambdas, 0);
        for (name, function, bytecode) in lambdas {
            let sev = if bytecode {
                Severity::Critical
            } else {
                KERAS_LAMBDA.severity
            };
            out.push_at(
                &KERAS_LAMBDA,
                sev,
                t.loc
                    .object(format!("keras object {}", short(&node.node_path))),
                format!(
                    "Lambda layer `{}` function {}",
                    short(&name),
                    short(&function)
                ),
            );
        }
    }
    out.flush(cx);
}

/// Finds `{"class_name": "Lambda", "config": {"name": ..., "function": ...}}` anywhere in a
/// Keras config: (layer name, function as JSON, whether it is serialized bytecode).
fn find_lambdas(v: &serde_json::Value, out: &mut Vec<(String, String, bool)>, depth: u32) {
    use serde_json::Value;
    if depth > 256 {
        return;
    }
    match v {
        Value::Object(map) => {
            if map.get("class_name").and_then(Value::as_str) == Some("Lambda") {
                let config = map.get("config");
                let name = config
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                let function = config.and_then(|c| c.get("function"));
                let function_type = config
                    .and_then(|c| c.get("function_type"))
                    .and_then(Value::as_str);
                // Keras writes bytecode as [code, defaults, closure] with function_type
                // "lambda", or {"class_name": "__lambda__", "config": {"code": ...}}.
                let bytecode = function_type == Some("lambda")
                    || function.is_some_and(|f| {
                        f.is_array()
                            || f.get("class_name").and_then(Value::as_str) == Some("__lambda__")
                    });
                let shown = function.map_or_else(|| "?".to_string(), |f| f.to_string());
                out.push((name, shown, bytecode));
            }
            for child in map.values() {
                find_lambdas(child, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for child in items {
                find_lambdas(child, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Shortens `s` to about 200 bytes (on a character boundary) for evidence.
pub(crate) fn short(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Findings gathered by a walker that cannot hold the scan context, handed to it at the
/// end. (The context caps findings per rule.) Shared by the graph and tensor analyzers.
#[derive(Default)]
pub(crate) struct Pending {
    findings: Vec<(&'static Rule, Severity, Location, String)>,
    /// Findings past the cap: counted, not kept.
    extra: Vec<(&'static Rule, Severity, Location, usize)>,
}

impl Pending {
    pub(crate) fn push(&mut self, rule: &'static Rule, loc: Location, evidence: String) {
        self.push_at(rule, rule.severity, loc, evidence);
    }

    pub(crate) fn push_at(
        &mut self,
        rule: &'static Rule,
        severity: Severity,
        loc: Location,
        evidence: String,
    ) {
        let same = |rid: &str, sev: Severity, l: &Location| {
            rid == rule.id && sev == severity && l.members == loc.members
        };
        let kept = self
            .findings
            .iter()
            .filter(|f| same(f.0.id, f.1, &f.2))
            .count();
        if kept < crate::context::MAX_PER_RULE {
            self.findings.push((rule, severity, loc, evidence));
        } else if let Some(e) = self.extra.iter_mut().find(|e| same(e.0.id, e.1, &e.2)) {
            e.3 = e.3.saturating_add(1);
        } else {
            self.extra.push((rule, severity, loc, 1));
        }
    }

    pub(crate) fn flush(self, cx: &mut Cx<'_>) {
        for (rule, severity, loc, evidence) in self.findings {
            cx.report_at(rule, severity, loc, evidence);
        }
        for (rule, severity, loc, n) in self.extra {
            cx.tally(rule, severity, &loc, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use formats::onnx::Message;
    use formats::tfproto::proto::*;

    use crate::engine::{scan_bytes, ScanOptions};
    use crate::finding::Finding;
    use crate::severity::Severity;

    fn node(name: &str, op: &str) -> NodeDef {
        NodeDef {
            name: name.into(),
            op: op.into(),
            ..Default::default()
        }
    }

    fn with_attr(mut n: NodeDef, key: &str, value: attr_value::Value) -> NodeDef {
        n.attr.insert(key.into(), AttrValue { value: Some(value) });
        n
    }

    fn call(name: &str, function: &str) -> NodeDef {
        with_attr(
            node(name, "StatefulPartitionedCall"),
            "f",
            attr_value::Value::Func(NameAttrList {
                name: function.into(),
                attr: BTreeMap::new(),
            }),
        )
    }

    fn function(name: &str, nodes: Vec<NodeDef>) -> FunctionDef {
        FunctionDef {
            signature: Some(OpDef { name: name.into() }),
            node_def: nodes,
        }
    }

    fn saved_model(nodes: Vec<NodeDef>, functions: Vec<FunctionDef>, saver: SaverDef) -> Vec<u8> {
        SavedModel {
            saved_model_schema_version: 1,
            meta_graphs: vec![MetaGraphDef {
                meta_info_def: Some(MetaInfoDef {
                    tags: vec!["serve".into()],
                    ..Default::default()
                }),
                graph_def: Some(GraphDef {
                    node: nodes,
                    library: Some(FunctionDefLibrary {
                        function: functions,
                    }),
                }),
                saver_def: Some(saver),
            }],
        }
        .encode_to_vec()
    }

    /// A TF1-style serving graph with its saver under `save/`.
    fn tf1_benign() -> Vec<u8> {
        saved_model(
            vec![
                node("x", "Placeholder"),
                node("W", "VariableV2"),
                node("MatMul", "MatMul"),
                node("y", "Identity"),
                node("save/Const", "Const"),
                node("save/SaveV2", "SaveV2"),
                node("save/RestoreV2", "RestoreV2"),
                node("save/MergeV2Checkpoints", "MergeV2Checkpoints"),
                node("save/restore_all", "NoOp"),
            ],
            vec![],
            SaverDef {
                filename_tensor_name: "save/Const:0".into(),
                save_tensor_name: "save/Identity:0".into(),
                restore_op_name: "save/restore_all".into(),
            },
        )
    }

    /// A TF2-style SavedModel: the saver calls `__inference__traced_save_*` functions.
    fn tf2_benign() -> Vec<u8> {
        saved_model(
            vec![
                node("serving_default_x", "Placeholder"),
                call(
                    "StatefulPartitionedCall",
                    "__inference_signature_wrapper_10",
                ),
                node("saver_filename", "Placeholder"),
                call("StatefulPartitionedCall_1", "__inference__traced_save_20"),
                call(
                    "StatefulPartitionedCall_2",
                    "__inference__traced_restore_30",
                ),
            ],
            vec![
                function(
                    "__inference_signature_wrapper_10",
                    vec![call("StatefulPartitionedCall", "__inference_serve_5")],
                ),
                function(
                    "__inference_serve_5",
                    vec![node("MatMul", "MatMul"), node("Relu", "Relu")],
                ),
                function(
                    "__inference__traced_save_20",
                    vec![
                        node("StringJoin", "StringJoin"),
                        node("ShardedFilename", "ShardedFilename"),
                        node("SaveV2", "SaveV2"),
                        node("MergeV2Checkpoints", "MergeV2Checkpoints"),
                    ],
                ),
                function(
                    "__inference__traced_restore_30",
                    vec![node("RestoreV2", "RestoreV2")],
                ),
            ],
            SaverDef {
                filename_tensor_name: "saver_filename:0".into(),
                save_tensor_name: "StatefulPartitionedCall_1:0".into(),
                restore_op_name: "StatefulPartitionedCall_2".into(),
            },
        )
    }

    fn scan(data: &[u8]) -> Vec<Finding> {
        scan_bytes(data, "saved_model.pb", &ScanOptions::default()).findings
    }

    fn at_least(f: &[Finding], sev: Severity) -> Vec<&Finding> {
        f.iter().filter(|f| f.severity >= sev).collect()
    }

    #[test]
    fn benign_saved_models_only_note_the_saver() {
        for data in [tf1_benign(), tf2_benign()] {
            let report = scan_bytes(&data, "saved_model.pb", &ScanOptions::default());
            assert!(report.formats.contains(&"tensorflow-savedmodel"));
            let f = report.findings;
            assert!(at_least(&f, Severity::Medium).is_empty(), "{f:?}");
            assert!(f.iter().all(|f| f.rule.id == "TF005"), "{f:?}");
            assert!(f.len() >= 3);
        }
    }

    #[test]
    fn file_and_python_ops_are_critical() {
        let data = saved_model(
            vec![
                node("x", "Placeholder"),
                node("read", "ReadFile"),
                node("write", "WriteFile"),
                with_attr(
                    node("py", "PyFunc"),
                    "token",
                    attr_value::Value::S(b"pyfunc_0".to_vec()),
                ),
                call("serve", "__inference_serve_1"),
            ],
            vec![function(
                "__inference_serve_1",
                vec![node("SaveV2", "SaveV2"), node("ls", "MatchingFiles")],
            )],
            SaverDef::default(),
        );
        let f = scan(&data);
        let ids = |sev: Severity| {
            let mut v: Vec<_> = f
                .iter()
                .filter(|f| f.severity == sev)
                .map(|f| f.rule.id)
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(
            ids(Severity::Critical),
            vec!["TF001", "TF002", "TF003", "TF003"]
        );
        // SaveV2 in a function the serving graph calls is not the saver.
        assert_eq!(ids(Severity::High), vec!["TF005"]);
        let py = f.iter().find(|f| f.rule.id == "TF001").unwrap();
        assert!(py.evidence.contains("token=pyfunc_0"), "{}", py.evidence);
        assert!(py.location.object.as_deref().unwrap().contains("node py"));
    }

    #[test]
    fn checkpoint_ops_outside_the_saver_scope() {
        let data = saved_model(
            vec![
                node("save/SaveV2", "SaveV2"),
                node("sneaky/RestoreV2", "RestoreV2"),
            ],
            vec![],
            SaverDef::default(),
        );
        let f = scan(&data);
        let tf005: Vec<_> = f.iter().filter(|f| f.rule.id == "TF005").collect();
        assert_eq!(tf005.len(), 2);
        assert!(tf005
            .iter()
            .any(|f| f.severity == Severity::High && f.evidence.contains("sneaky/RestoreV2")));
        assert!(tf005.iter().any(|f| f.severity == Severity::Low));
    }

    #[test]
    fn debug_print_network_and_custom_ops() {
        let urls = attr_value::Value::List(ListValue {
            s: vec![b"grpc://203.0.113.7:6064".to_vec()],
            func: vec![],
        });
        let data = GraphDef {
            node: vec![
                with_attr(node("dbg", "DebugIdentity"), "debug_urls", urls),
                with_attr(
                    node("print", "PrintV2"),
                    "output_stream",
                    attr_value::Value::S(b"file:///tmp/x".to_vec()),
                ),
                with_attr(
                    node("quiet", "PrintV2"),
                    "output_stream",
                    attr_value::Value::S(b"stderr".to_vec()),
                ),
                node("rpc", "RpcCall"),
                node("custom", "MyCustomKernel"),
                node("fused", "_FusedMatMul"),
                node("vocab", "InitializeTableFromTextFileV2"),
                node("mm", "ImmutableConst"),
            ],
            library: None,
        }
        .encode_to_vec();
        let report = scan_bytes(&data, "frozen.pb", &ScanOptions::default());
        assert!(report.formats.contains(&"tensorflow-graphdef"));
        let by = |id: &str| -> Vec<(Severity, String)> {
            report
                .findings
                .iter()
                .filter(|f| f.rule.id == id)
                .map(|f| (f.severity, f.evidence.clone()))
                .collect()
        };
        assert_eq!(by("TF006").len(), 1);
        assert!(by("TF006")[0].1.contains("grpc://203.0.113.7"));
        assert_eq!(by("TF002").len(), 1);
        assert_eq!(by("TF004").len(), 1);
        assert_eq!(
            by("TF007"),
            vec![
                (
                    Severity::Medium,
                    "op MyCustomKernel (node `custom`): not a TensorFlow core op".into()
                ),
                (
                    Severity::Low,
                    "op _FusedMatMul (node `fused`): not a TensorFlow core op".into()
                )
            ]
        );
        assert_eq!(by("TF009").len(), 1);
        assert_eq!(by("TF003")[0].0, Severity::Critical);
    }

    #[test]
    fn functions_named_like_core_ops() {
        let data = GraphDef {
            node: vec![node("r", "Relu")],
            library: Some(FunctionDefLibrary {
                function: vec![function("Relu", vec![node("w", "WriteFile")])],
            }),
        }
        .encode_to_vec();
        let f = scan(&data);
        assert!(f.iter().any(|f| f.rule.id == "TF008"));
        assert!(f.iter().any(|f| f.rule.id == "TF002"));
    }

    #[test]
    fn duplicate_functions_do_not_hide_a_body() {
        let data = GraphDef {
            node: vec![call("c", "f")],
            library: Some(FunctionDefLibrary {
                function: vec![
                    function("f", vec![node("py", "PyFunc")]),
                    function("f", vec![node("mm", "MatMul")]),
                ],
            }),
        }
        .encode_to_vec();
        let f = scan(&data);
        assert!(f.iter().any(|f| f.rule.id == "TF001"), "{f:?}");
        assert!(f
            .iter()
            .any(|f| f.rule.id == "TF008" && f.evidence.contains("defined 2 times")));
    }

    #[test]
    fn keras_lambda_metadata() {
        let lambda = r#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"name": "lambda", "function": ["4wEAAAAAAAAA", null, null], "function_type": "lambda"}}]}}"#;
        let data = SavedMetadata {
            nodes: vec![
                SavedObject {
                    node_id: 0,
                    node_path: "root".into(),
                    identifier: "_tf_keras_sequential".into(),
                    metadata: lambda.into(),
                },
                SavedObject {
                    node_id: 1,
                    node_path: "root.layer-0".into(),
                    identifier: "_tf_keras_layer".into(),
                    metadata: r#"{"class_name": "Dense"}"#.into(),
                },
            ],
        }
        .encode_to_vec();
        let report = scan_bytes(&data, "keras_metadata.pb", &ScanOptions::default());
        assert!(report.formats.contains(&"keras-metadata"));
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert_eq!(report.findings[0].rule.id, "TF010");
        assert_eq!(report.findings[0].severity, Severity::Critical);
    }

    #[test]
    fn unrecognised_and_broken_protobufs_are_not_clean() {
        // A valid protobuf that is none of the known messages.
        let other = [0x08, 0x01, 0x10, 0x02, 0x9a, 0x01, 0x01, b'x'];
        let f = scan(&other);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule.id, "GEN001");
        // A truncated SavedModel.
        let data = tf1_benign();
        let f = scan(&data[..data.len() - 3]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule.id, "GEN002");
        assert!(f[0].evidence.starts_with("tensorflow"), "{}", f[0].evidence);
        // A truncated ONNX model.
        let onnx = [0x08, 0x09, 0x3a, 0x10, 0x0a];
        let f = scan(&onnx);
        assert_eq!(f[0].rule.id, "GEN002");
        assert!(f[0].evidence.starts_with("onnx"), "{}", f[0].evidence);
    }

    #[test]
    fn text_that_looks_like_a_tag_goes_to_the_text_analyzer() {
        let report = scan_bytes(
            b"Bert tokenizer notes\nline two\n",
            "notes",
            &ScanOptions::default(),
        );
        assert!(report.formats.contains(&"text"), "{:?}", report.formats);
    }

    #[test]
    fn sidecars_are_recognised() {
        let fp = [
            0x08, 0x01, 0x10, 0x02, 0x18, 0x03, 0x20, 0x04, 0x28, 0x05, 0x32, 0x02, 0x08, 0x01,
        ];
        let report = scan_bytes(&fp, "fingerprint.pb", &ScanOptions::default());
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert!(report.formats.contains(&"tf-fingerprint"));
    }

    #[test]
    fn mutated_saved_models_never_panic() {
        let base = tf2_benign();
        let opts = ScanOptions::default();
        for data in formats::mutate::mutations(&base, 0xdead_beef_cafe_f00d, 5_000) {
            let report = scan_bytes(&data, "m.pb", &opts);
            // Whatever the bytes became, they are never silently clean unless they still
            // read as a graph.
            if report.findings.is_empty() {
                assert!(
                    report.formats.iter().any(|f| f.starts_with("tensorflow")
                        || *f == "onnx"
                        || *f == "tf-fingerprint"
                        || *f == "sentencepiece"
                        || *f == "keras-metadata"
                        || *f == "safetensors"),
                    "{:?}",
                    report.formats
                );
            }
        }
    }
}
