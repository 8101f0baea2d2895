//! Keras model configs: what `load_model` would import, deserialize or run.
//!
//! Called from the JSON analyzer (`config.json` of a `.keras` archive, `model.json`) and
//! from the HDF5 analyzer (the `model_config` / `training_config` attributes of a legacy
//! `.h5`). Code reaches a Keras config three ways:
//!
//! - `Lambda` layers and `__lambda__` objects carry `marshal`led Python bytecode that
//!   `func_load` turns back into a function (CVE-2024-3660: arbitrary code on load).
//! - Any object's `module` is imported with `importlib.import_module` and its
//!   `class_name` (or, for `class_name: "function"`, its `config`) is looked up in it: the
//!   safe-mode bypasses CVE-2025-1550 (`"module": "os"`, `"builtins"`), CVE-2025-8747
//!   (`keras.utils.get_file`) and CVE-2025-9906 (`enable_unsafe_deserialization`).
//! - Custom objects (`registered_name` `package>Name`) need code the loader supplies.

use formats::keras::{self, KerasObject};
use serde_json::Value;

use crate::analyze::template::clip;
use crate::context::Cx;
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

pub static LAMBDA_BYTECODE: Rule = Rule {
    id: "KERAS001",
    name: "keras-lambda-bytecode",
    severity: Severity::Critical,
    title: "Keras config carries marshalled Python bytecode (Lambda)",
    why: "A Lambda layer or `__lambda__` object stores `marshal.dumps(fn.__code__)`; loading the model turns it back into a function that runs with the loader's rights (CVE-2024-3660). Scanners cannot vouch for bytecode.",
    fix: "Do not load the model with safe_mode=False. Ask the publisher to replace Lambda layers with registered custom layers whose source you can review.",
};

pub static CODE_LAYER: Rule = Rule {
    id: "KERAS002",
    name: "keras-code-layer",
    severity: Severity::High,
    title: "Keras layer that runs code named by the config",
    why: "TFOpLambda calls TensorFlow API functions by name, TorchModuleWrapper unpickles a torch module, Lambda with a named function calls whatever that name resolves to: the config, not reviewed code, decides what runs.",
    fix: "Review the named functions; refuse file, I/O and native-library functions and pickled modules.",
};

pub static FOREIGN_MODULE: Rule = Rule {
    id: "KERAS003",
    name: "keras-foreign-module",
    severity: Severity::High,
    title: "Keras object imported from a module outside Keras",
    why: "Keras imports an object's `module` and looks up its `class_name` or function name in it; a config naming `os`, `subprocess` or `builtins` reaches arbitrary callables even in safe mode on vulnerable versions (CVE-2025-1550), and importing an unknown module runs its top-level code.",
    fix: "Do not load the model. Legitimate models only reference keras, tensorflow and the official Keras packages.",
};

pub static CUSTOM_OBJECT: Rule = Rule {
    id: "KERAS004",
    name: "keras-custom-object",
    severity: Severity::Medium,
    title: "Keras config needs custom code at load time",
    why: "A registered custom object (`package>Name`) or a function defined in the training script cannot be rebuilt from the config alone; whatever code the loader registers under that name will run.",
    fix: "Load only with custom objects from a reviewed source; pin and review that code.",
};

pub static DANGEROUS_KERAS_FUNCTION: Rule = Rule {
    id: "KERAS005",
    name: "keras-dangerous-function",
    severity: Severity::Critical,
    title: "Keras config calls a Keras function that touches files or disables safe mode",
    why: "Functions inside the Keras namespace pass the module allow-list but download or write files (`keras.utils.get_file`, CVE-2025-8747) or switch safe mode off (`enable_unsafe_deserialization`, CVE-2025-9906) during loading.",
    fix: "Do not load the model; upgrade Keras and report the file to the publisher.",
};

pub static RULES: &[&Rule] = &[
    &LAMBDA_BYTECODE,
    &CODE_LAYER,
    &FOREIGN_MODULE,
    &CUSTOM_OBJECT,
    &DANGEROUS_KERAS_FUNCTION,
];

/// Module prefixes whose objects Keras itself (or an official Keras package) provides.
const KERAS_MODULES: &[&str] = &[
    "keras",
    "tensorflow",
    "tf_keras",
    "keras_hub",
    "keras_nlp",
    "keras_cv",
    "keras_rs",
    "tensorflow_text",
];

/// Modules that give command, file, network, import or interpreter access.
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "__builtin__",
    "sys",
    "importlib",
    "runpy",
    "shutil",
    "socket",
    "pty",
    "pickle",
    "_pickle",
    "cPickle",
    "marshal",
    "dill",
    "cloudpickle",
    "joblib",
    "ctypes",
    "code",
    "codeop",
    "commands",
    "multiprocessing",
    "webbrowser",
    "http",
    "urllib",
    "urllib2",
    "urllib3",
    "requests",
    "httpx",
    "ftplib",
    "smtplib",
    "telnetlib",
    "asyncio",
    "tempfile",
    "pathlib",
    "io",
    "_io",
    "fileinput",
    "glob",
    "shelve",
    "operator",
    "functools",
    "types",
    "inspect",
    "timeit",
    "pdb",
    "bdb",
    "trace",
    "profile",
    "cProfile",
    "doctest",
    "pydoc",
    "antigravity",
    "_posixsubprocess",
    "threading",
    "_thread",
    "signal",
    "platform",
    "zipimport",
    "pkgutil",
    "site",
    "zipfile",
    "tarfile",
    "numpy.lib",
    "torch",
];

/// Python builtins that execute code, import, read files or reach interpreter state.
const DANGEROUS_BUILTINS: &[&str] = &[
    "eval",
    "exec",
    "compile",
    "open",
    "__import__",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "breakpoint",
    "input",
    "exit",
    "quit",
    "help",
    "__build_class__",
    "memoryview",
    "print",
];

/// Every other Python builtin: not Keras, so looked up in `builtins` itself.
const PYTHON_BUILTINS: &[&str] = &[
    "abs",
    "aiter",
    "all",
    "anext",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "complex",
    "copyright",
    "credits",
    "dict",
    "dir",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "hasattr",
    "hash",
    "hex",
    "id",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "license",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "oct",
    "ord",
    "pow",
    "property",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "zip",
];

/// Keras-namespace functions abused during loading.
const DANGEROUS_KERAS_FUNCTIONS: &[&str] = &[
    "get_file",
    "enable_unsafe_deserialization",
    "load_model",
    "load_weights",
    "save_model",
    "save_weights",
    "model_from_json",
    "model_from_yaml",
    "set_floatx",
    "rmtree",
    "copy",
    "makedirs",
    "remove",
    "File",
    "extract_archive",
];

/// TensorFlow API functions a TFOpLambda may name that touch files, native code or Python.
const TF_CRITICAL: &[&str] = &[
    "io.write_file",
    "io.read_file",
    "io.gfile",
    "gfile.",
    "write_file",
    "read_file",
    "load_op_library",
    "load_library",
    "py_function",
    "numpy_function",
    "py_func",
    "raw_ops.",
    "io.matching_files",
    "data.experimental.save",
    "saved_model.",
];
const TF_SUSPICIOUS: &[&str] = &[
    "print",
    "summary.",
    "train.",
    "distribute.",
    "config.",
    "sysconfig",
    "compat.v1.io",
    "io.",
    "data.",
    "keras.",
    "load",
    "save",
];

/// Judges every object of a Keras config found at `loc`.
pub fn check(cx: &mut Cx<'_>, loc: &Location, root: &Value, depth: u32) {
    let objects = keras::objects(root, cx.limits);
    let mut out: Vec<(&'static Rule, Severity, Location, String)> = Vec::new();
    let mut nested: Vec<(Vec<u8>, Location)> = Vec::new();
    for obj in &objects {
        let label = clip(&obj.label(), 160);
        let oloc = match &loc.object {
            Some(outer) => loc.object(format!("{outer}: {label}")),
            None => loc.object(label),
        };
        judge(obj, &mut |rule, sev, evidence| {
            out.push((rule, sev, oloc.clone(), evidence));
        });
        if obj.class_name == "__bytes__" {
            if let Some(s) = obj
                .config
                .and_then(|c| c.get("value"))
                .and_then(Value::as_str)
            {
                let bytes = latin1_or_utf8(s);
                let kind = formats::detect(&bytes);
                if !matches!(
                    kind,
                    formats::Format::Text | formats::Format::Json | formats::Format::Unknown
                ) {
                    nested.push((bytes, loc.member(format!("<bytes at {}>", obj.path))));
                }
            }
        }
    }
    for (rule, sev, l, evidence) in out {
        cx.report_at(rule, sev, l, evidence);
    }
    for (bytes, l) in nested {
        cx.scan_nested(&bytes, &l, depth.saturating_add(1));
    }
}

/// Keras 3 stores bytes as `bytes.decode("utf-8")`; older versions used latin-1. Code
/// points below 256 map back byte for byte either way; others are UTF-8.
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| u32::from(c) < 256) {
        s.chars()
            .filter_map(|c| u8::try_from(u32::from(c)).ok())
            .collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn module_matches(module: &str, list: &[&str]) -> bool {
    list.iter().any(|m| {
        module == *m
            || module
                .strip_prefix(m)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

fn judge(obj: &KerasObject<'_>, report: &mut dyn FnMut(&'static Rule, Severity, String)) {
    // 1. Bytecode.
    for code in keras::bytecode(obj) {
        let detail = match &code.bytes {
            Some(b) => {
                let head: String = b
                    .iter()
                    .take(8)
                    .map(|x| format!("{x:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                let names = keras::marshal_strings(b, 12);
                let names = if names.is_empty() {
                    String::new()
                } else {
                    format!(", strings: {}", clip(&names.join(", "), 160))
                };
                format!("{} bytes of marshalled code ({head} ...){names}", b.len())
            }
            None => format!(
                "{} characters that are not valid base64",
                code.encoded.len()
            ),
        };
        let module = obj
            .config
            .and_then(|c| c.get("module"))
            .and_then(Value::as_str)
            .map(|m| format!(", globals of module `{m}`"))
            .unwrap_or_default();
        report(
            &LAMBDA_BYTECODE,
            Severity::Critical,
            format!("{} `{}`: {detail}{module}", obj.class_name, code.field),
        );
    }

    // 2. Layers whose config names code.
    if let Some((module, name)) = keras::lambda_function(obj) {
        let full = match &module {
            Some(m) => format!("{m}.{name}"),
            None => name.clone(),
        };
        match module.as_deref() {
            Some(m) if module_matches(m, DANGEROUS_MODULES) => report(
                &FOREIGN_MODULE,
                Severity::Critical,
                format!("Lambda calls `{full}`"),
            ),
            None | Some("__main__") => report(
                &CUSTOM_OBJECT,
                Severity::Medium,
                format!("Lambda calls `{name}`, a function the loader must supply"),
            ),
            Some(m) if module_matches(m, KERAS_MODULES) => {}
            Some(_) => report(
                &CODE_LAYER,
                Severity::High,
                format!("Lambda calls `{full}`"),
            ),
        }
    }
    match obj.class_name {
        "TFOpLambda" | "SlicingOpLambda" => {
            let f = obj
                .config
                .and_then(|c| c.get("function"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let f_norm = f.trim_start_matches("tf.");
            if TF_CRITICAL.iter().any(|p| f_norm.contains(p)) {
                report(
                    &CODE_LAYER,
                    Severity::Critical,
                    format!("{} calls `tf.{f_norm}`", obj.class_name),
                );
            } else if TF_SUSPICIOUS
                .iter()
                .any(|p| f_norm.starts_with(p) || f_norm.contains(&format!(".{p}")))
            {
                report(
                    &CODE_LAYER,
                    Severity::High,
                    format!("{} calls `tf.{f_norm}`", obj.class_name),
                );
            }
        }
        "TorchModuleWrapper" => report(
            &CODE_LAYER,
            Severity::Critical,
            "TorchModuleWrapper: the config holds a torch.save()d module that is unpickled on load"
                .into(),
        ),
        "JaxLayer" | "FlaxLayer" => report(
            &CODE_LAYER,
            Severity::High,
            format!("{}: calls functions named by the config", obj.class_name),
        ),
        "KerasLayer" => {
            let handle = obj
                .config
                .and_then(|c| c.get("handle"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            report(
                &CODE_LAYER,
                Severity::High,
                format!(
                    "TF Hub KerasLayer loads `{}` at load time",
                    clip(handle, 120)
                ),
            );
        }
        _ => {}
    }

    // 3. The module an object is imported from.
    let fn_name = if obj.class_name == "function" {
        obj.config.and_then(Value::as_str)
    } else {
        None
    };
    let target = fn_name.unwrap_or(obj.class_name);
    if let Some(module) = obj.module {
        if module == "builtins" || module == "__builtin__" {
            if DANGEROUS_BUILTINS.contains(&target) {
                report(
                    &FOREIGN_MODULE,
                    Severity::Critical,
                    format!("`builtins.{target}`"),
                );
            } else if PYTHON_BUILTINS.contains(&target) || fn_name.is_none() {
                report(
                    &FOREIGN_MODULE,
                    Severity::High,
                    format!("`builtins.{target}`"),
                );
            }
            // Otherwise a Keras built-in looked up by name (`"relu"`, `"mse"`).
        } else if module == "__main__" {
            // Defined in the training script: judged by its registered name below.
        } else if module_matches(module, DANGEROUS_MODULES) {
            report(
                &FOREIGN_MODULE,
                Severity::Critical,
                format!("`{module}.{target}`"),
            );
        } else if !module_matches(module, KERAS_MODULES) {
            report(
                &FOREIGN_MODULE,
                Severity::High,
                format!(
                    "`{}.{}` (module outside Keras)",
                    clip(module, 100),
                    clip(target, 80)
                ),
            );
        }
    }

    // 4. Keras functions abused during loading (also reachable by bare class name).
    if DANGEROUS_KERAS_FUNCTIONS.contains(&target)
        && (obj.module.is_none_or(|m| module_matches(m, KERAS_MODULES)))
        && (fn_name.is_some() || obj.module.is_some())
    {
        report(
            &DANGEROUS_KERAS_FUNCTION,
            Severity::Critical,
            format!("`{}.{target}`", obj.module.unwrap_or("?")),
        );
    }

    // 5. Custom objects.
    if let Some(reg) = obj.registered_name {
        let official = ["keras_hub>", "keras_nlp>", "keras_cv>", "keras_rs>"]
            .iter()
            .any(|p| reg.starts_with(p));
        if reg.contains('>') && !official {
            report(
                &CUSTOM_OBJECT,
                Severity::Medium,
                format!(
                    "custom object `{}` (module `{}`)",
                    clip(reg, 100),
                    clip(obj.module.unwrap_or("none"), 100)
                ),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use formats::Limits;

    fn run(json: &str) -> Vec<(&'static str, Severity, String)> {
        let limits = Limits::default();
        let policy = Policy::default();
        let mut cx = Cx::new(&limits, &policy, None);
        let v: Value = serde_json::from_str(json).unwrap();
        check(&mut cx, &Location::file("config.json"), &v, 0);
        cx.into_parts()
            .0
            .iter()
            .map(|f| (f.rule.id, f.severity, f.evidence.clone()))
            .collect()
    }

    /// A Keras 3 `config.json` as `model.save("m.keras")` writes it.
    pub(crate) const KERAS3_BENIGN: &str = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "layers": [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 4], "dtype": "float32", "sparse": false, "name": "input_layer"}, "registered_name": null}, {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "units": 2, "activation": "relu", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null, "kernel_constraint": null, "bias_constraint": null}, "registered_name": null, "build_config": {"input_shape": [null, 4]}}], "build_input_shape": [null, 4]}, "registered_name": null, "build_config": {"input_shape": [null, 4]}, "compile_config": {"optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {"name": "adam", "learning_rate": 0.0010000000474974513, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": false}, "registered_name": null}, "loss": {"module": "keras.losses", "class_name": "MeanSquaredError", "config": {"name": "mean_squared_error", "reduction": "sum_over_batch_size"}, "registered_name": null}, "loss_weights": null, "metrics": [{"module": "builtins", "class_name": "function", "config": "mae", "registered_name": "function"}], "weighted_metrics": null, "run_eagerly": false, "steps_per_execution": 1, "jit_compile": false}}"#;

    #[test]
    fn benign_configs_are_clean() {
        assert!(run(KERAS3_BENIGN).is_empty(), "{:#?}", run(KERAS3_BENIGN));
        let k2 = r#"{"class_name": "Functional", "config": {"name": "model", "layers": [{"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4], "dtype": "float32", "name": "input_1"}, "name": "input_1", "inbound_nodes": []}, {"class_name": "TFOpLambda", "config": {"name": "tf.math.add", "trainable": true, "dtype": "float32", "function": "math.add"}, "name": "tf.math.add", "inbound_nodes": [["input_1", 0, 0, {"y": 1.0, "name": null}]]}, {"class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "relu"}, "name": "dense", "inbound_nodes": [[["tf.math.add", 0, 0, {}]]]}], "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}, "keras_version": "2.13.1", "backend": "tensorflow"}"#;
        assert!(run(k2).is_empty(), "{:#?}", run(k2));
        let hub = r#"{"module": "keras_hub.src.models.gemma.gemma_backbone", "class_name": "GemmaBackbone", "config": {"name": "gemma_backbone"}, "registered_name": "keras_hub>GemmaBackbone"}"#;
        assert!(run(hub).is_empty());
    }

    #[test]
    fn lambda_bytecode_is_critical_with_names() {
        // marshal.dumps of a code object naming os.system, base64 with newlines (Keras 2).
        let code = "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMMAAAAdABqAWQBgwFTACkCTtoCaWQp\nAtoCb3PaBnN5c3RlbSkB2gF4qQByBAAAAPoAPGxhbWJkYT4=\n";
        let k2 = format!(
            r#"{{"class_name": "Sequential", "config": {{"layers": [{{"class_name": "Lambda", "config": {{"name": "lambda", "function": ["{}", null, null], "function_type": "lambda", "module": "__main__", "output_shape": null, "output_shape_type": "raw", "arguments": {{}}}}}}]}}}}"#,
            code.replace('\n', "\\n")
        );
        let f = run(&k2);
        let l = f.iter().find(|x| x.0 == "KERAS001").unwrap();
        assert_eq!(l.1, Severity::Critical);
        assert!(l.2.contains("marshalled code (e3 01"), "{}", l.2);
        assert!(l.2.contains("os, system"), "{}", l.2);
        let k3 = r#"{"module": "keras.layers", "class_name": "Lambda", "config": {"name": "l", "function": {"class_name": "__lambda__", "config": {"value": ["4wEAAAAA", null, null]}}}, "registered_name": null}"#;
        assert!(run(k3).iter().any(|x| x.0 == "KERAS001"));
    }

    #[test]
    fn foreign_modules() {
        let os = r#"{"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "activation": {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}}}"#;
        let f = run(os);
        let x = f.iter().find(|x| x.0 == "KERAS003").unwrap();
        assert_eq!(x.1, Severity::Critical);
        assert!(x.2.contains("os.system"), "{}", x.2);
        let exec = r#"{"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function"}"#;
        assert_eq!(run(exec)[0].1, Severity::Critical);
        let unknown = r#"{"module": "mypackage.layers", "class_name": "X", "config": {}}"#;
        assert_eq!(
            run(unknown)[0],
            (
                "KERAS003",
                Severity::High,
                "`mypackage.layers.X` (module outside Keras)".into()
            )
        );
        let sub = r#"{"module": "subprocess.Popen", "class_name": "x", "config": {}}"#;
        assert_eq!(run(sub)[0].1, Severity::Critical);
        // `kerasx` is not `keras`
        let fake = r#"{"module": "kerasx.layers", "class_name": "Dense", "config": {}}"#;
        assert_eq!(run(fake)[0].0, "KERAS003");
    }

    #[test]
    fn keras_internal_gadgets() {
        let get_file = r#"{"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "get_file"}"#;
        assert!(run(get_file)
            .iter()
            .any(|x| x.0 == "KERAS005" && x.1 == Severity::Critical));
        let unsafe_ = r#"{"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization", "registered_name": null}"#;
        assert!(run(unsafe_).iter().any(|x| x.0 == "KERAS005"));
    }

    #[test]
    fn code_layers_and_custom_objects() {
        let tf_write =
            r#"{"class_name": "TFOpLambda", "config": {"name": "w", "function": "io.write_file"}}"#;
        assert_eq!(run(tf_write)[0].1, Severity::Critical);
        let torch = r#"{"module": "keras.layers", "class_name": "TorchModuleWrapper", "config": {"module": {"class_name": "__bytes__", "config": {"value": "PK\u0003\u0004"}}}}"#;
        assert!(run(torch)
            .iter()
            .any(|x| x.0 == "KERAS002" && x.1 == Severity::Critical));
        let custom = r#"{"module": "__main__", "class_name": "MyLayer", "config": {}, "registered_name": "MyPackage>MyLayer"}"#;
        assert_eq!(run(custom)[0].0, "KERAS004");
        let named = r#"{"class_name": "Lambda", "config": {"function": "system", "function_type": "function", "module": "os"}}"#;
        assert_eq!(run(named)[0].1, Severity::Critical);
    }

    #[test]
    fn many_lambdas_are_summarised() {
        let layer = r#"{"class_name": "Lambda", "config": {"function": ["4wE=", null, null], "function_type": "lambda"}}"#;
        let json = format!(
            r#"{{"class_name": "Sequential", "config": {{"layers": [{}]}}}}"#,
            vec![layer; 50].join(",")
        );
        let f = run(&json);
        assert_eq!(
            f.iter().filter(|x| x.0 == "KERAS001").count(),
            crate::context::MAX_PER_RULE + 1
        );
        let more = format!("{} more", 50 - crate::context::MAX_PER_RULE);
        assert!(f.iter().any(|x| x.0 == "KERAS001" && x.2.contains(&more)));
    }
}
