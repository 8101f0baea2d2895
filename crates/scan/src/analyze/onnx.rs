//! ONNX models: which operators run, and which files the model makes a runtime open.
//!
//! ONNX itself runs no code, but a model can (1) name operators from custom domains, which
//! a runtime only executes after loading a native custom-op library, (2) point tensors at
//! external data files with any path, which a loader opens relative to the model directory
//! (CVE-2024-27318, CVE-2024-5187: path traversal through `location`), and (3) declare
//! shapes that make a runtime allocate absurd amounts. Every graph is walked: the main
//! graph, training graphs, model-local functions and the subgraphs of `If`, `Loop` and
//! `Scan` held in node attributes.
//! Spec: <https://github.com/onnx/onnx/blob/main/docs/IR.md>,
//! <https://github.com/onnx/onnx/blob/main/docs/ExternalData.md>.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use formats::onnx::ops;
use formats::onnx::proto::{
    dimension, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, SparseTensorProto,
    TensorProto, TypeProto, ValueInfoProto, DATA_LOCATION_EXTERNAL,
};

use super::protobuf::{short, Pending};
use crate::context::{Cx, Target};
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

pub static EXTERNAL_ABSOLUTE: Rule = Rule {
    id: "ONNX001",
    name: "onnx-external-data-absolute-path",
    severity: Severity::High,
    title: "external tensor data at an absolute path",
    why: "A loader reads the named file into a tensor: /etc/passwd, SSH keys or tokens end up in the model's weights or outputs (CVE-2024-27318).",
    fix: "Do not load the model. External data must be a relative path inside the model directory; re-export it with onnx.save(..., save_as_external_data=True).",
};

pub static EXTERNAL_ESCAPES: Rule = Rule {
    id: "ONNX002",
    name: "onnx-external-data-escapes-directory",
    severity: Severity::High,
    title: "external tensor data outside the model directory",
    why: "A `..` component or a symbolic link makes the loader read a file outside the model directory into a tensor (CVE-2024-5187, CVE-2024-27318).",
    fix: "Do not load the model. Replace links with real files inside the model directory and remove `..` from locations.",
};

pub static EXTERNAL_SPECIAL: Rule = Rule {
    id: "ONNX003",
    name: "onnx-external-data-special-file",
    severity: Severity::High,
    title: "external tensor data is not a regular file",
    why: "A FIFO, device or directory as tensor data can hang the loader or feed it from a device (/dev/zero, /dev/urandom, a socket).",
    fix: "Do not load the model. External data must be regular files.",
};

pub static EXTERNAL_MISSING: Rule = Rule {
    id: "ONNX004",
    name: "onnx-external-data-missing",
    severity: Severity::Medium,
    title: "external tensor data file is missing",
    why: "The model cannot be checked completely, and the loader will look for the file wherever the model ends up, where someone else may have put it.",
    fix: "Ship the external data files with the model, next to it, and scan again.",
};

pub static EXTERNAL_MALFORMED: Rule = Rule {
    id: "ONNX005",
    name: "onnx-external-data-malformed",
    severity: Severity::Medium,
    title: "external data entry is malformed or out of range",
    why: "A missing location, a bad offset or length, or a range past the end of the file: loaders disagree on what such a tensor holds.",
    fix: "Re-export the model's external data with the onnx library.",
};

pub static CUSTOM_DOMAIN: Rule = Rule {
    id: "ONNX006",
    name: "onnx-custom-operator",
    severity: Severity::High,
    title: "operator from a custom domain",
    why: "An operator outside the ONNX domains runs only after the runtime loads a native custom-op library: code that no allow-list covers.",
    fix: "Find out which library implements the domain and vet it, or re-export the model with standard operators.",
};

pub static VENDOR_DOMAIN: Rule = Rule {
    id: "ONNX007",
    name: "onnx-vendor-operator",
    severity: Severity::Info,
    title: "operator from a well-known vendor domain",
    why: "Contrib operators (com.microsoft, onnxruntime-extensions, PyTorch ATen fallback) run code shipped with the runtime or its extensions, not with the model.",
    fix: "Nothing to do if the runtime and its extensions come from a trusted source.",
};

pub static ABSURD_SHAPE: Rule = Rule {
    id: "ONNX008",
    name: "onnx-absurd-shape",
    severity: Severity::Medium,
    title: "negative or absurd tensor dimensions",
    why: "Dimensions that are negative or multiply past any real tensor make runtimes allocate terabytes or overflow size computations.",
    fix: "Do not load the model; re-export it from its source.",
};

pub static SHADOWED_OP: Rule = Rule {
    id: "ONNX009",
    name: "onnx-function-shadows-operator",
    severity: Severity::Medium,
    title: "model-local function redefines an operator",
    why: "A function with the domain and name of a standard operator (or defined twice) silently replaces what the graph computes in runtimes that prefer local functions.",
    fix: "Rename the function into a custom domain, or re-export the model.",
};

pub static DEEP_SUBGRAPHS: Rule = Rule {
    id: "ONNX010",
    name: "onnx-deeply-nested-subgraphs",
    severity: Severity::Medium,
    title: "subgraphs nested deeper than any real model",
    why: "Recursion through If/Loop/Scan bodies exhausts stacks in checkers and runtimes.",
    fix: "Do not load the model; re-export it from its source.",
};

pub static PYTHON_OP: Rule = Rule {
    id: "ONNX011",
    name: "onnx-python-operator",
    severity: Severity::High,
    title: "operator that calls into Python",
    why: "PyOp/PythonOp operators make the runtime import a Python module and call a function named by the model's attributes.",
    fix: "Do not load the model unless the Python code it names is yours and vetted.",
};

pub static UNKNOWN_STANDARD_OP: Rule = Rule {
    id: "ONNX012",
    name: "onnx-unknown-standard-operator",
    severity: Severity::Low,
    title: "operator not defined in its standard domain",
    why: "The operator is not in the ONNX specification Warden knows (a newer opset, or a typo); runtimes refuse the model.",
    fix: "Check the model's opset and producer.",
};

pub static RULES: &[&Rule] = &[
    &EXTERNAL_ABSOLUTE,
    &EXTERNAL_ESCAPES,
    &EXTERNAL_SPECIAL,
    &EXTERNAL_MISSING,
    &EXTERNAL_MALFORMED,
    &CUSTOM_DOMAIN,
    &VENDOR_DOMAIN,
    &ABSURD_SHAPE,
    &SHADOWED_OP,
    &DEEP_SUBGRAPHS,
    &PYTHON_OP,
    &UNKNOWN_STANDARD_OP,
];

/// Deepest nesting of subgraphs (a Loop in an If is depth 2) before it is reported.
pub const MAX_SUBGRAPH_DEPTH: u32 = 16;

/// Contrib domains shipped with onnxruntime or well-known extensions, and how much to
/// worry about their operators.
const VENDOR_DOMAINS: &[(&str, Severity)] = &[
    ("com.microsoft", Severity::Info),
    ("com.microsoft.nchwc", Severity::Info),
    ("com.microsoft.experimental", Severity::Info),
    ("com.microsoft.dml", Severity::Info),
    ("com.ms.internal.nhwc", Severity::Info),
    ("ai.onnx.contrib", Severity::Low),
    ("com.microsoft.extensions", Severity::Low),
    ("org.pytorch.aten", Severity::Low),
];

/// Operators that call Python functions named by their attributes (onnxruntime's
/// language-interop `PyOp`, ORTModule's `PythonOp`).
const PYTHON_OPS: &[&str] = &["PyOp", "PythonOp", "PythonOpGrad", "PyFunc"];

/// Python modules whose functions run commands or touch files.
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "__builtin__",
    "sys",
    "shutil",
    "socket",
    "importlib",
    "runpy",
    "pty",
    "commands",
    "webbrowser",
    "ctypes",
];

/// Analyzes a decoded ONNX model.
pub fn analyze_model(cx: &mut Cx<'_>, t: Target<'_>, model: &ModelProto) {
    cx.saw_format("onnx");
    let functions = model
        .functions
        .iter()
        .map(|f| (f.domain.clone(), f.name.clone()))
        .collect();
    let mut w = Walker::new(cx, t, functions);
    if let Some(g) = &model.graph {
        w.graph(g, 0, "graph");
    }
    for (i, ti) in model.training_info.iter().enumerate() {
        for g in [&ti.initialization, &ti.algorithm].into_iter().flatten() {
            w.graph(g, 0, &format!("training_info[{i}]"));
        }
    }
    let mut seen = BTreeSet::new();
    for f in &model.functions {
        let label = format!("function {}:{}", f.domain, short(&f.name));
        if !seen.insert((f.domain.as_str(), f.name.as_str())) {
            w.out.push(
                &SHADOWED_OP,
                t.loc.object(label.clone()),
                format!("function {}:{} is defined twice", f.domain, short(&f.name)),
            );
        } else if ops::is_standard(&f.domain, &f.name) {
            w.out.push(
                &SHADOWED_OP,
                t.loc.object(label.clone()),
                format!(
                    "function {} redefines the standard operator {} of domain `{}`",
                    short(&f.name),
                    short(&f.name),
                    f.domain
                ),
            );
        }
        for v in &f.value_info {
            w.value_info(v, &label);
        }
        for a in &f.attribute_proto {
            w.attribute(a, 0, &label);
        }
        for n in &f.node {
            w.node(n, 0, &label);
        }
    }
    w.finish(cx);
}

/// Analyzes a lone `TensorProto` file (ONNX test data): its dimensions and external data.
pub fn analyze_tensor(cx: &mut Cx<'_>, t: Target<'_>, tensor: &TensorProto) {
    cx.saw_format("onnx-tensor");
    let mut w = Walker::new(cx, t, BTreeSet::new());
    w.tensor(tensor, "tensor file", "tensor");
    w.finish(cx);
}

struct Walker<'a> {
    loc: &'a Location,
    base_dir: Option<PathBuf>,
    functions: BTreeSet<(String, String)>,
    max_elements: u64,
    out: Pending,
    /// Findings already made for a location string: (rule, severity, evidence) or None.
    external: HashMap<String, Option<ExternalProblem>>,
    deep_reported: bool,
    /// External data files that passed the checks: the model's raw tensor storage.
    claims: Vec<PathBuf>,
}

#[derive(Clone)]
struct ExternalProblem {
    rule: &'static Rule,
    evidence: String,
}

impl<'a> Walker<'a> {
    fn new(cx: &Cx<'_>, t: Target<'a>, functions: BTreeSet<(String, String)>) -> Self {
        Walker {
            loc: t.loc,
            // External files are only looked up for a model on disk, not inside an archive.
            base_dir: if t.depth == 0 {
                cx.base_dir.map(Path::to_path_buf)
            } else {
                None
            },
            functions,
            max_elements: cx.limits.max_tensor_elements,
            out: Pending::default(),
            external: HashMap::new(),
            deep_reported: false,
            claims: Vec::new(),
        }
    }

    /// Hands the findings and the claimed data files to the scan context.
    fn finish(self, cx: &mut Cx<'_>) {
        self.out.flush(cx);
        for path in self.claims {
            cx.claim_data_file(path);
        }
    }

    fn graph(&mut self, g: &GraphProto, depth: u32, scope: &str) {
        if depth > MAX_SUBGRAPH_DEPTH && !self.deep_reported {
            self.deep_reported = true;
            self.out.push(
                &DEEP_SUBGRAPHS,
                self.loc.object(scope.to_string()),
                format!(
                    "subgraph `{}` at depth {depth} (limit {MAX_SUBGRAPH_DEPTH})",
                    short(&g.name)
                ),
            );
        }
        let scope = if g.name.is_empty() {
            scope.to_string()
        } else {
            nest(scope, &format!(" {}", short(&g.name)))
        };
        for t in &g.initializer {
            self.tensor(t, &scope, "initializer");
        }
        for s in &g.sparse_initializer {
            self.sparse(s, &scope);
        }
        for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
            self.value_info(v, &scope);
        }
        for n in &g.node {
            self.node(n, depth, &scope);
        }
    }

    fn node(&mut self, n: &NodeProto, depth: u32, scope: &str) {
        let label = nest(
            scope,
            &format!(
                " / node {} ({}{}{})",
                short(&n.name),
                short(&n.domain),
                if n.domain.is_empty() { "" } else { ":" },
                short(&n.op_type)
            ),
        );
        self.operator(n, &label);
        for a in &n.attribute {
            self.attribute(a, depth, &label);
        }
    }

    fn operator(&mut self, n: &NodeProto, label: &str) {
        let loc = self.loc;
        let at = || loc.object(label.to_string());
        if PYTHON_OPS.contains(&n.op_type.as_str()) {
            let strings: Vec<String> = n
                .attribute
                .iter()
                .filter(|a| !a.s.is_empty())
                .map(|a| format!("{}={}", a.name, short(&String::from_utf8_lossy(&a.s))))
                .collect();
            let dangerous = n.attribute.iter().any(|a| {
                let v = String::from_utf8_lossy(&a.s);
                let module = v.split('.').next().unwrap_or_default();
                DANGEROUS_MODULES.contains(&module)
            });
            let sev = if dangerous {
                Severity::Critical
            } else {
                PYTHON_OP.severity
            };
            self.out.push_at(
                &PYTHON_OP,
                sev,
                at(),
                format!(
                    "{} op {} [{}]",
                    short(&n.domain),
                    short(&n.op_type),
                    strings.join(", ")
                ),
            );
        }
        let key = (n.domain.clone(), n.op_type.clone());
        if self.functions.contains(&key) {
            return; // a call of a model-local function, whose body is walked on its own
        }
        if ops::is_standard_domain(&n.domain) {
            if !ops::is_standard(&n.domain, &n.op_type) {
                self.out.push(
                    &UNKNOWN_STANDARD_OP,
                    at(),
                    format!("op `{}` in domain `{}`", short(&n.op_type), n.domain),
                );
            }
            return;
        }
        match VENDOR_DOMAINS.iter().find(|(d, _)| *d == n.domain) {
            Some((_, sev)) => self.out.push_at(
                &VENDOR_DOMAIN,
                *sev,
                at(),
                format!("{}:{}", short(&n.domain), short(&n.op_type)),
            ),
            None => self.out.push(
                &CUSTOM_DOMAIN,
                at(),
                format!(
                    "op {}:{} needs a custom-op library",
                    short(&n.domain),
                    short(&n.op_type)
                ),
            ),
        }
    }

    fn attribute(&mut self, a: &AttributeProto, depth: u32, label: &str) {
        let holds_more = a.t.is_some()
            || a.sparse_tensor.is_some()
            || a.g.is_some()
            || !a.tensors.is_empty()
            || !a.sparse_tensors.is_empty()
            || !a.graphs.is_empty();
        if !holds_more {
            return;
        }
        let scope = nest(label, &format!(" attr {}", short(&a.name)));
        for t in a.t.iter().chain(&a.tensors) {
            self.tensor(t, &scope, "attribute tensor");
        }
        for s in a.sparse_tensor.iter().chain(&a.sparse_tensors) {
            self.sparse(s, &scope);
        }
        for g in a.g.iter().chain(&a.graphs) {
            self.graph(g, depth.saturating_add(1), &scope);
        }
    }

    fn sparse(&mut self, s: &SparseTensorProto, scope: &str) {
        for t in s.values.iter().chain(&s.indices) {
            self.tensor(t, scope, "sparse tensor");
        }
        self.dims(
            &s.dims,
            &|| scope.to_string(),
            "sparse tensor",
            Severity::Medium,
        );
    }

    fn tensor(&mut self, t: &TensorProto, scope: &str, kind: &str) {
        let label = || nest(scope, &format!(" / {kind} {}", short(&t.name)));
        self.dims(&t.dims, &label, "tensor", Severity::Medium);
        if t.data_location == DATA_LOCATION_EXTERNAL || !t.external_data.is_empty() {
            self.external(t, &label());
        }
    }

    fn value_info(&mut self, v: &ValueInfoProto, scope: &str) {
        let label = || nest(scope, &format!(" / value {}", short(&v.name)));
        if let Some(ty) = &v.r#type {
            let mut shapes = Vec::new();
            collect_shapes(ty, &mut shapes, 0);
            for dims in shapes {
                // Exporters have written -1 for an unknown dimension: odd, not hostile.
                self.dims(&dims, &label, "declared shape", Severity::Low);
            }
        }
    }

    /// Reports negative dimensions (at `negative`) and element counts past the limit.
    fn dims(&mut self, dims: &[i64], label: &dyn Fn() -> String, what: &str, negative: Severity) {
        let shown = || format!("{:?}", &dims[..dims.len().min(16)]);
        if let Some(d) = dims.iter().find(|d| **d < 0) {
            let shown = shown();
            self.out.push_at(
                &ABSURD_SHAPE,
                negative,
                self.loc.object(label()),
                format!("{what} {shown} has the negative dimension {d}"),
            );
            return;
        }
        let product = dims
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(d.unsigned_abs()));
        match product {
            Some(n) if n <= self.max_elements => {}
            Some(n) => self.out.push(
                &ABSURD_SHAPE,
                self.loc.object(label()),
                format!(
                    "{what} {} has {n} elements (limit {})",
                    shown(),
                    self.max_elements
                ),
            ),
            None => self.out.push(
                &ABSURD_SHAPE,
                self.loc.object(label()),
                format!("{what} {}: the element count overflows 64 bits", shown()),
            ),
        }
    }

    fn external(&mut self, t: &TensorProto, label: &str) {
        let at = self.loc.object(label.to_string());
        let Some(location) = t.external("location") else {
            self.out.push(
                &EXTERNAL_MALFORMED,
                at,
                format!(
                    "tensor {} has external data without a location",
                    short(&t.name)
                ),
            );
            return;
        };
        let problem = match self.external.get(location) {
            Some(p) => p.clone(),
            None => {
                let p = self.check_location(location);
                self.external.insert(location.to_string(), p.clone());
                p
            }
        };
        if let Some(p) = problem {
            self.out.push(p.rule, at, p.evidence);
            return;
        }
        // The file is fine; check this tensor's range in it.
        let mut range = [0u64; 2];
        for (slot, key) in range.iter_mut().zip(["offset", "length"]) {
            if let Some(v) = t.external(key) {
                match v.trim().parse::<u64>() {
                    Ok(n) => *slot = n,
                    Err(_) => {
                        return self.out.push(
                            &EXTERNAL_MALFORMED,
                            at,
                            format!("external data {key} `{}` is not a number", short(v)),
                        )
                    }
                }
            }
        }
        let Some(base) = &self.base_dir else { return };
        let Ok(meta) = fs::metadata(base.join(location)) else {
            return;
        };
        self.claims.push(base.join(location));
        let [offset, length] = range;
        let end = offset.checked_add(length);
        if end.is_none_or(|e| e > meta.len()) || offset > meta.len() {
            self.out.push(
                &EXTERNAL_MALFORMED,
                at,
                format!(
                    "external data `{}` offset {offset} length {length} runs past its {} bytes",
                    short(location),
                    meta.len()
                ),
            );
        }
    }

    /// Judges an external data location, lexically and (for a model on disk) on the file
    /// system. `None` when it is a regular file inside the model directory.
    fn check_location(&self, location: &str) -> Option<ExternalProblem> {
        let quoted = format!("location `{}`", short(location));
        let problem = |rule: &'static Rule, why: &str| {
            Some(ExternalProblem {
                rule,
                evidence: format!("{quoted} {why}"),
            })
        };
        if location.is_empty() {
            return problem(&EXTERNAL_MALFORMED, "is empty");
        }
        if location.contains('\0') {
            return problem(&EXTERNAL_ESCAPES, "contains a NUL byte");
        }
        let bytes = location.as_bytes();
        let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
        if location.starts_with('/') || location.starts_with('\\') || drive {
            return problem(&EXTERNAL_ABSOLUTE, "is absolute");
        }
        if location.split(['/', '\\']).any(|c| c == "..") {
            return problem(&EXTERNAL_ESCAPES, "climbs out with `..`");
        }
        let base = self.base_dir.as_ref()?;
        let path = base.join(location);
        // Lexically the path stays inside; links may still lead out.
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return problem(&EXTERNAL_MISSING, "does not exist next to the model");
            }
            Err(e) => return problem(&EXTERNAL_MISSING, &format!("cannot be read: {e}")),
            Ok(_) => {}
        }
        let (Ok(real_base), Ok(real)) = (fs::canonicalize(base), fs::canonicalize(&path)) else {
            return problem(&EXTERNAL_MISSING, "is a dangling symbolic link");
        };
        if !real.starts_with(&real_base) {
            return problem(
                &EXTERNAL_ESCAPES,
                &format!("resolves through a link to {}", real.display()),
            );
        }
        match fs::metadata(&real) {
            Ok(m) if m.is_file() => None,
            Ok(m) => problem(
                &EXTERNAL_SPECIAL,
                &format!("is a {}", crate::engine::special_kind(&m.file_type())),
            ),
            Err(e) => problem(&EXTERNAL_MISSING, &format!("cannot be read: {e}")),
        }
    }
}

/// `scope` followed by `part`, keeping only the end of a scope that has grown past
/// [`MAX_SCOPE`] bytes (deep subgraphs), so that labels cost little per node.
fn nest(scope: &str, part: &str) -> String {
    if scope.len() <= MAX_SCOPE {
        return format!("{scope}{part}");
    }
    let mut start = scope.len() - MAX_SCOPE / 2;
    while !scope.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}{part}", &scope[start..])
}

/// Longest scope kept whole in a label.
const MAX_SCOPE: usize = 600;

/// The shapes (dimension values only; symbolic dimensions are skipped) of the tensor types
/// in `ty`, nested sequence, optional and map types included.
fn collect_shapes(ty: &TypeProto, out: &mut Vec<Vec<i64>>, depth: u32) {
    // The wire walker bounds nesting already; this keeps the recursion obviously finite.
    if depth > 64 {
        return;
    }
    match &ty.value {
        Some(type_proto::Value::TensorType(t) | type_proto::Value::SparseTensorType(t)) => {
            let dims = t
                .shape
                .iter()
                .flat_map(|s| &s.dim)
                .filter_map(|d| match d.value {
                    Some(dimension::Value::DimValue(v)) => Some(v),
                    _ => None,
                })
                .collect();
            out.push(dims);
        }
        Some(type_proto::Value::SequenceType(e) | type_proto::Value::OptionalType(e)) => {
            if let Some(inner) = &e.elem_type {
                collect_shapes(inner, out, depth + 1);
            }
        }
        Some(type_proto::Value::MapType(m)) => {
            if let Some(inner) = &m.value_type {
                collect_shapes(inner, out, depth + 1);
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use formats::onnx::proto::*;
    use formats::onnx::Message;

    use crate::engine::{scan_bytes, scan_file, ScanOptions};
    use crate::finding::Finding;
    use crate::severity::Severity;

    fn node(op: &str, domain: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            name: format!("{op}_0"),
            op_type: op.into(),
            domain: domain.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: 1,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| Dimension {
                                value: Some(if d == 0 {
                                    dimension::Value::DimParam("N".into())
                                } else {
                                    dimension::Value::DimValue(d)
                                }),
                            })
                            .collect(),
                    }),
                })),
            }),
        }
    }

    fn tensor(name: &str, dims: &[i64]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: 1,
            ..Default::default()
        }
    }

    fn external(name: &str, location: &str) -> TensorProto {
        TensorProto {
            data_location: DATA_LOCATION_EXTERNAL,
            external_data: vec![StringStringEntryProto {
                key: "location".into(),
                value: location.into(),
            }],
            ..tensor(name, &[4])
        }
    }

    /// A small classifier: softmax(x @ W + b).
    fn classifier() -> ModelProto {
        ModelProto {
            ir_version: 9,
            producer_name: "warden-test".into(),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 21,
            }],
            graph: Some(GraphProto {
                name: "classifier".into(),
                node: vec![
                    node("MatMul", "", &["x", "W"], "h"),
                    node("Add", "", &["h", "b"], "z"),
                    node("Softmax", "", &["z"], "y"),
                ],
                initializer: vec![tensor("W", &[4, 3]), tensor("b", &[3])],
                input: vec![value("x", &[0, 4])],
                output: vec![value("y", &[0, 3])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn with_graph(f: impl FnOnce(&mut GraphProto)) -> ModelProto {
        let mut m = classifier();
        f(m.graph.as_mut().unwrap());
        m
    }

    fn scan(m: &ModelProto) -> Vec<Finding> {
        let report = scan_bytes(&m.encode_to_vec(), "m.onnx", &ScanOptions::default());
        assert!(report.formats.contains(&"onnx"), "{:?}", report.formats);
        report.findings
    }

    fn only(f: &[Finding], id: &str) -> Vec<(Severity, String)> {
        f.iter()
            .filter(|f| f.rule.id == id)
            .map(|f| (f.severity, f.evidence.clone()))
            .collect()
    }

    #[test]
    fn benign_classifier_is_clean() {
        let f = scan(&classifier());
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn custom_and_vendor_domains() {
        let m = with_graph(|g| {
            g.node.push(node("Backdoor", "evil.ops", &["y"], "y2"));
            g.node
                .push(node("FusedMatMul", "com.microsoft", &["y"], "y3"));
            g.node
                .push(node("Tokenize", "ai.onnx.contrib", &["y"], "y4"));
            g.node.push(node("Frobnicate", "", &["y"], "y5"));
        });
        let f = scan(&m);
        assert_eq!(
            only(&f, "ONNX006"),
            vec![(
                Severity::High,
                "op evil.ops:Backdoor needs a custom-op library".to_string()
            )]
        );
        let vendor = only(&f, "ONNX007");
        assert!(vendor.contains(&(Severity::Info, "com.microsoft:FusedMatMul".into())));
        assert!(vendor.contains(&(Severity::Low, "ai.onnx.contrib:Tokenize".into())));
        assert_eq!(only(&f, "ONNX012").len(), 1);
    }

    #[test]
    fn local_functions_are_calls_and_may_not_shadow() {
        let mut m = with_graph(|g| g.node.push(node("MyGelu", "local", &["y"], "y2")));
        m.functions.push(FunctionProto {
            name: "MyGelu".into(),
            domain: "local".into(),
            node: vec![node("Mul", "", &["x", "x"], "y")],
            ..Default::default()
        });
        assert!(scan(&m).is_empty());
        m.functions.push(FunctionProto {
            name: "Relu".into(),
            domain: String::new(),
            node: vec![node("Exfil", "evil.ops", &["x"], "y")],
            ..Default::default()
        });
        let f = scan(&m);
        assert_eq!(only(&f, "ONNX009").len(), 1);
        // The function body is walked too.
        assert_eq!(only(&f, "ONNX006").len(), 1);
    }

    #[test]
    fn subgraphs_are_walked_and_depth_is_reported() {
        let mut body = GraphProto {
            name: "inner".into(),
            node: vec![node("Backdoor", "evil.ops", &["x"], "y")],
            initializer: vec![external("leak", "/etc/shadow")],
            ..Default::default()
        };
        for i in 0..17 {
            body = GraphProto {
                name: format!("level{i}"),
                node: vec![NodeProto {
                    attribute: vec![AttributeProto {
                        name: "then_branch".into(),
                        g: Some(body),
                        ..Default::default()
                    }],
                    ..node("If", "", &["c"], "o")
                }],
                ..Default::default()
            };
        }
        let m = with_graph(|g| g.node.push(node("Identity", "", &["y"], "y2")));
        let m = ModelProto {
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    attribute: vec![AttributeProto {
                        name: "body".into(),
                        graphs: vec![body],
                        ..Default::default()
                    }],
                    ..node("Loop", "", &[], "o")
                }],
                ..m.graph.unwrap()
            }),
            ..m
        };
        let f = scan(&m);
        assert_eq!(only(&f, "ONNX006").len(), 1, "{f:?}");
        assert_eq!(only(&f, "ONNX001").len(), 1);
        assert_eq!(only(&f, "ONNX010").len(), 1);
    }

    #[test]
    fn python_ops() {
        let m = with_graph(|g| {
            g.node.push(NodeProto {
                attribute: vec![
                    AttributeProto {
                        name: "module".into(),
                        s: b"os".to_vec(),
                        ..Default::default()
                    },
                    AttributeProto {
                        name: "compute".into(),
                        s: b"system".to_vec(),
                        ..Default::default()
                    },
                ],
                ..node("PyOp", "com.microsoft", &["y"], "y2")
            })
        });
        let f = scan(&m);
        let py = only(&f, "ONNX011");
        assert_eq!(py.len(), 1);
        assert_eq!(py[0].0, Severity::Critical);
        assert!(py[0].1.contains("module=os"), "{}", py[0].1);
    }

    #[test]
    fn absurd_dimensions() {
        let m = with_graph(|g| {
            g.initializer.push(tensor("huge", &[1 << 40, 1 << 40]));
            g.initializer.push(tensor("big", &[1 << 30, 1 << 20]));
            g.initializer.push(tensor("neg", &[-5, 2]));
            g.value_info.push(value("dyn", &[-1, 3]));
        });
        let f = scan(&m);
        let shapes = only(&f, "ONNX008");
        assert_eq!(shapes.len(), 4, "{shapes:?}");
        assert!(shapes.iter().any(|s| s.1.contains("overflows")));
        assert!(shapes
            .iter()
            .any(|s| s.1.contains("1125899906842624 elements")));
        assert!(shapes.contains(&(
            Severity::Medium,
            "tensor [-5, 2] has the negative dimension -5".into()
        )));
        assert!(shapes.contains(&(
            Severity::Low,
            "declared shape [-1, 3] has the negative dimension -1".into()
        )));
    }

    #[test]
    fn external_locations_lexically() {
        let m = with_graph(|g| {
            g.initializer.push(external("a", "/etc/passwd"));
            g.initializer.push(external("b", "../../etc/passwd"));
            g.initializer.push(external("c", "sub\\..\\..\\x"));
            g.initializer.push(external("d", "C:/Windows/win.ini"));
            g.initializer.push(TensorProto {
                data_location: DATA_LOCATION_EXTERNAL,
                ..tensor("e", &[1])
            });
            g.initializer.push(external("f", "weights.bin"));
        });
        let f = scan(&m);
        assert_eq!(only(&f, "ONNX001").len(), 2);
        assert_eq!(only(&f, "ONNX002").len(), 2);
        assert_eq!(only(&f, "ONNX005").len(), 1);
        // In memory there is no directory to look in: a plain relative name passes.
        assert!(only(&f, "ONNX004").is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn external_files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("weights.bin"), [0u8; 64]).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.join("link.bin")).unwrap();
        std::os::unix::fs::symlink("weights.bin", d.join("inside.bin")).unwrap();
        std::fs::create_dir(d.join("adir")).unwrap();
        let fifo = d.join("pipe.bin");
        let made_fifo = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        let ranged = |name: &str, offset: &str, length: &str| TensorProto {
            external_data: vec![
                StringStringEntryProto {
                    key: "location".into(),
                    value: "weights.bin".into(),
                },
                StringStringEntryProto {
                    key: "offset".into(),
                    value: offset.into(),
                },
                StringStringEntryProto {
                    key: "length".into(),
                    value: length.into(),
                },
            ],
            ..external(name, "weights.bin")
        };
        let m = with_graph(|g| {
            g.initializer.push(ranged("ok", "0", "16"));
            g.initializer.push(ranged("ok2", "16", "48"));
            g.initializer.push(external("inside", "inside.bin"));
            g.initializer.push(external("link", "link.bin"));
            g.initializer.push(external("gone", "missing.bin"));
            g.initializer.push(external("dir", "adir"));
            g.initializer.push(ranged("past", "60", "16"));
            g.initializer.push(ranged("nan", "x", "16"));
            g.initializer.push(external("pipe", "pipe.bin"));
        });
        let path = d.join("model.onnx");
        std::fs::write(&path, m.encode_to_vec()).unwrap();
        let f = scan_file(&path, &ScanOptions::default()).findings;
        let escapes = only(&f, "ONNX002");
        assert_eq!(escapes.len(), 1, "{f:?}");
        assert!(escapes[0].1.contains("/etc/hostname") || escapes[0].1.contains("/etc/"));
        assert_eq!(only(&f, "ONNX004").len(), 1);
        assert_eq!(only(&f, "ONNX005").len(), 2, "{f:?}");
        let special = only(&f, "ONNX003");
        assert_eq!(special.len(), 1 + usize::from(made_fifo), "{special:?}");
        assert!(special.iter().any(|s| s.1.contains("directory")));
        if made_fifo {
            assert!(special.iter().any(|s| s.1.contains("FIFO")));
        }
    }

    #[test]
    fn deep_and_wide_graph_with_long_names_stays_cheap() {
        let long = "n".repeat(300);
        let mut body = GraphProto {
            name: long.clone(),
            node: (0..30_000)
                .map(|i| NodeProto {
                    name: format!("{long}{i}"),
                    ..node("Relu", "", &["x"], "y")
                })
                .collect(),
            ..Default::default()
        };
        for _ in 0..20 {
            body = GraphProto {
                name: long.clone(),
                node: vec![NodeProto {
                    name: long.clone(),
                    attribute: vec![AttributeProto {
                        name: long.clone(),
                        g: Some(body),
                        ..Default::default()
                    }],
                    ..node("If", "", &["c"], "o")
                }],
                ..Default::default()
            };
        }
        let m = ModelProto {
            ir_version: 9,
            graph: Some(body),
            ..Default::default()
        };
        let bytes = m.encode_to_vec();
        let start = std::time::Instant::now();
        let f = scan_bytes(&bytes, "m.onnx", &ScanOptions::default()).findings;
        assert_eq!(only(&f, "ONNX010").len(), 1);
        assert!(f
            .iter()
            .all(|f| f.location.object.as_ref().unwrap().len() < 2000));
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    }

    #[test]
    fn lone_tensor_files_are_checked() {
        let mut t = external("leak", "../secret");
        t.dims = vec![4];
        let report = scan_bytes(&t.encode_to_vec(), "input_0.pb", &ScanOptions::default());
        assert!(
            report.formats.contains(&"onnx-tensor"),
            "{:?}",
            report.formats
        );
        assert_eq!(only(&report.findings, "ONNX002").len(), 1);
        let clean = scan_bytes(
            &tensor("x", &[1, 3]).encode_to_vec(),
            "input_0.pb",
            &ScanOptions::default(),
        );
        assert!(clean.findings.is_empty(), "{:?}", clean.findings);
    }

    #[test]
    fn truncated_and_mutated_models_never_panic() {
        let data =
            with_graph(|g| g.node.push(node("Backdoor", "evil.ops", &["y"], "z"))).encode_to_vec();
        let opts = ScanOptions::default();
        for cut in 0..data.len() {
            let _ = scan_bytes(&data[..cut], "m.onnx", &opts);
        }
        for d in formats::mutate::mutations(&data, 0x853c_49e6_748f_ea9b, 3_000) {
            let report = scan_bytes(&d, "m.onnx", &opts);
            // A flipped byte either leaves a model that reads as ONNX (and is judged as
            // such) or is reported; it is never silently clean.
            assert!(
                report.formats.contains(&"onnx") || !report.findings.is_empty(),
                "{:?}",
                report.formats
            );
        }
    }

    #[test]
    fn many_bad_nodes_are_capped() {
        let m = with_graph(|g| {
            for i in 0..1000 {
                g.node.push(node("X", &format!("evil{i}"), &["y"], "z"));
            }
        });
        let f = scan(&m);
        let custom = only(&f, "ONNX006");
        assert_eq!(custom.len(), 17);
        assert!(custom.last().unwrap().1.contains("984 more"));
    }
}
