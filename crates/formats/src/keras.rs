//! Keras model configurations: the JSON that `keras.models.load_model` turns into objects.
//!
//! Two generations of the format exist:
//!
//! - Keras 2 / tf.keras (`model.to_json()`, the `model_config` attribute of legacy `.h5`
//!   files): `{"class_name": "Sequential", "config": {"name": ..., "layers": [{"class_name":
//!   "Dense", "config": {...}}, ...]}, "keras_version": ..., "backend": ...}`. A `Lambda`
//!   layer stores its function as `marshal.dumps(fn.__code__)` in base64 under
//!   `config.function` when `config.function_type` is `"lambda"`.
//! - Keras 3 `.keras` archives (`config.json`): every object is
//!   `{"module": ..., "class_name": ..., "config": ..., "registered_name": ...}` (see
//!   `keras/src/saving/serialization_lib.py`), nested anywhere: layers, initializers, the
//!   `build_config` and `compile_config` (losses and metrics as serialized functions,
//!   `{"class_name": "function", "config": "<name>", "module": ...}`), and lambdas as
//!   `{"class_name": "__lambda__", "config": {"value": [code, defaults, closure]}}` or
//!   `{"code": ...}`.
//!
//! This module loads such JSON the way Python's `json` module does (accepting `NaN`,
//! `Infinity`, huge exponents and lone surrogates, which serde_json refuses: a file that
//! Python loads must not escape inspection because Rust could not parse it) and lists the
//! objects and the embedded bytecode. Judging them is the scanner's job.

use serde_json::{Map, Value};

use crate::error::{ParseError, Result};
use crate::limits::Limits;

/// Loads JSON as Python's `json.loads` would accept it.
pub fn load_json(data: &[u8], limits: &Limits) -> Result<Value> {
    if data.len() as u64 > limits.max_header_bytes {
        return Err(ParseError::limit(
            0,
            "JSON size",
            data.len() as u64,
            limits.max_header_bytes,
        ));
    }
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let scan = scan_json(data);
    if scan.max_depth > limits.max_json_depth {
        return Err(ParseError::limit(
            scan.deepest_at,
            "JSON nesting depth",
            u64::from(scan.max_depth),
            u64::from(limits.max_json_depth),
        ));
    }
    let first = serde_json::from_slice::<Value>(data);
    match first {
        Ok(v) => Ok(v),
        Err(e) if scan.pythonisms => {
            let cleaned = sanitize(data);
            serde_json::from_slice::<Value>(&cleaned).map_err(|_| json_error(data, &e))
        }
        Err(e) => Err(json_error(data, &e)),
    }
}

/// Whether [`load_json`] would accept the nesting depth of `data` (it refuses deeper JSON
/// before parsing it).
pub fn json_depth_within_limit(data: &[u8], limits: &Limits) -> bool {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    scan_json(data).max_depth <= limits.max_json_depth
}

fn json_error(data: &[u8], e: &serde_json::Error) -> ParseError {
    // serde_json reports line and column; turn them into a byte offset.
    let mut line = 1usize;
    let mut offset = 0usize;
    for (i, &b) in data.iter().enumerate() {
        if line == e.line() {
            offset = i.saturating_add(e.column().saturating_sub(1));
            break;
        }
        if b == b'\n' {
            line = line.saturating_add(1);
        }
    }
    let msg = e.to_string();
    if msg.starts_with("recursion limit exceeded") {
        return ParseError::limit(offset as u64, "JSON nesting depth", 128, 128);
    }
    ParseError::malformed(offset as u64, format!("invalid JSON: {msg}"))
}

struct Scan {
    max_depth: u32,
    deepest_at: u64,
    /// Something serde_json refuses but Python accepts may be present.
    pythonisms: bool,
}

/// One pass over the text: nesting depth outside strings, and whether Python-only syntax
/// (`NaN`, `Infinity`, `\ud800`) appears.
fn scan_json(data: &[u8]) -> Scan {
    let mut depth = 0u32;
    let mut s = Scan {
        max_depth: 0,
        deepest_at: 0,
        pythonisms: false,
    };
    let mut i = 0usize;
    while let Some(&b) = data.get(i) {
        match b {
            b'"' => {
                // Inside a string only escapes and the closing quote matter: jump to them.
                let mut j = i.saturating_add(1);
                loop {
                    let rest = data.get(j..).unwrap_or_default();
                    let Some(k) = memchr::memchr2(b'"', b'\\', rest) else {
                        return s;
                    };
                    j = j.saturating_add(k);
                    if rest.get(k) == Some(&b'"') {
                        break;
                    }
                    // A backslash: `\uD...` is a surrogate escape Python accepts alone.
                    if data.get(j.saturating_add(1)) == Some(&b'u')
                        && matches!(data.get(j.saturating_add(2)), Some(b'd' | b'D'))
                        && data.len() >= j.saturating_add(6)
                    {
                        s.pythonisms = true;
                    }
                    j = j.saturating_add(2);
                }
                i = j;
            }
            b'{' | b'[' => {
                depth = depth.saturating_add(1);
                if depth > s.max_depth {
                    s.max_depth = depth;
                    s.deepest_at = i as u64;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'N' | b'I' | b'e' | b'E' => s.pythonisms = true,
            _ => {}
        }
        i = i.saturating_add(1);
    }
    s
}

/// Rewrites Python-only JSON into JSON serde_json accepts: `NaN`/`Infinity`/`-Infinity`
/// and out-of-range numbers become `null`, lone surrogate escapes become U+FFFD.
fn sanitize(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0usize;
    while let Some(&b) = data.get(i) {
        if b == b'"' {
            let end = string_end(data, i);
            let body = data.get(i..end).unwrap_or_default();
            out.extend_from_slice(&fix_surrogates(body));
            i = end;
            continue;
        }
        let rest = data.get(i..).unwrap_or_default();
        if let Some(word) = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .into_iter()
            .find(|w| rest.starts_with(w))
        {
            out.extend_from_slice(b"null");
            i = i.saturating_add(word.len());
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let len = rest
                .iter()
                .position(|c| {
                    !(c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
                })
                .unwrap_or(rest.len());
            let tok = rest.get(..len).unwrap_or_default();
            let finite = std::str::from_utf8(tok)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(f64::is_finite);
            if finite {
                out.extend_from_slice(tok);
            } else {
                out.extend_from_slice(b"null");
            }
            i = i.saturating_add(len.max(1));
            continue;
        }
        out.push(b);
        i = i.saturating_add(1);
    }
    out
}

/// Offset just past the string starting at `i` (a `"`), or the end of the input.
fn string_end(data: &[u8], i: usize) -> usize {
    let mut j = i.saturating_add(1);
    while let Some(&c) = data.get(j) {
        match c {
            b'\\' => j = j.saturating_add(2),
            b'"' => return j.saturating_add(1),
            _ => j = j.saturating_add(1),
        }
    }
    data.len()
}

fn fix_surrogates(body: &[u8]) -> Vec<u8> {
    let hex4 = |s: &[u8]| -> Option<u16> {
        let t = std::str::from_utf8(s).ok()?;
        u16::from_str_radix(t, 16).ok()
    };
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0usize;
    while let Some(&c) = body.get(i) {
        if c == b'\\' && body.get(i.saturating_add(1)) == Some(&b'u') {
            let at = i.saturating_add(2);
            if let Some(u) = body.get(at..at.saturating_add(4)).and_then(hex4) {
                let next = body
                    .get(at.saturating_add(4)..at.saturating_add(6))
                    .filter(|p| *p == b"\\u")
                    .and_then(|_| body.get(at.saturating_add(6)..at.saturating_add(10)))
                    .and_then(hex4);
                let high = (0xd800..0xdc00).contains(&u);
                let low = (0xdc00..0xe000).contains(&u);
                if high && next.is_some_and(|n| (0xdc00..0xe000).contains(&n)) {
                    // A valid pair: copy both escapes.
                    out.extend_from_slice(body.get(i..at.saturating_add(10)).unwrap_or_default());
                    i = at.saturating_add(10);
                    continue;
                }
                if high || low {
                    out.extend_from_slice(b"\\ufffd");
                    i = at.saturating_add(4);
                    continue;
                }
            }
            out.extend_from_slice(body.get(i..i.saturating_add(2)).unwrap_or_default());
            i = i.saturating_add(2);
            continue;
        }
        if c == b'\\' {
            out.extend_from_slice(body.get(i..i.saturating_add(2)).unwrap_or_default());
            i = i.saturating_add(2);
            continue;
        }
        out.push(c);
        i = i.saturating_add(1);
    }
    out
}

/// True when `root` is a Keras model or object config: an object with a string
/// `class_name` and a `config` or `module`.
pub fn looks_like_config(root: &Value) -> bool {
    root.as_object().is_some_and(|o| {
        o.get("class_name").is_some_and(Value::is_string)
            && (o.contains_key("config") || o.contains_key("module"))
    })
}

/// One serialized Keras object: any JSON object with a string `class_name`.
#[derive(Debug, Clone)]
pub struct KerasObject<'v> {
    /// Where it sits, e.g. `config.layers[2].config.function`.
    pub path: String,
    pub class_name: &'v str,
    pub module: Option<&'v str>,
    pub registered_name: Option<&'v str>,
    /// `config.name`, the layer or object name.
    pub name: Option<&'v str>,
    pub config: Option<&'v Value>,
    pub object: &'v Map<String, Value>,
}

impl KerasObject<'_> {
    /// A short label: `Lambda 'lambda_1' (config.layers[2])`.
    pub fn label(&self) -> String {
        match self.name {
            Some(n) => format!("{} '{}' ({})", self.class_name, n, self.path),
            None => format!("{} ({})", self.class_name, self.path),
        }
    }

    fn config_str(&self, key: &str) -> Option<&str> {
        self.config?.get(key)?.as_str()
    }
}

/// Every object in `root`, in document order. At most `limits.max_entries`.
pub fn objects<'v>(root: &'v Value, limits: &Limits) -> Vec<KerasObject<'v>> {
    let mut out = Vec::new();
    let mut stack: Vec<(&'v Value, String)> = vec![(root, String::new())];
    let max = usize::try_from(limits.max_entries).unwrap_or(usize::MAX);
    while let Some((v, path)) = stack.pop() {
        if out.len() >= max {
            break;
        }
        match v {
            Value::Object(o) => {
                if let Some(class_name) = o.get("class_name").and_then(Value::as_str) {
                    let config = o.get("config");
                    out.push(KerasObject {
                        path: if path.is_empty() {
                            "(root)".into()
                        } else {
                            path.clone()
                        },
                        class_name,
                        module: o.get("module").and_then(Value::as_str),
                        registered_name: o.get("registered_name").and_then(Value::as_str),
                        name: config.and_then(|c| c.get("name")).and_then(Value::as_str),
                        config,
                        object: o,
                    });
                }
                // Push in reverse so that the walk visits keys in document order.
                for (k, child) in o.iter().rev() {
                    if child.is_object() || child.is_array() {
                        let p = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        stack.push((child, p));
                    }
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate().rev() {
                    if child.is_object() || child.is_array() {
                        stack.push((child, format!("{path}[{i}]")));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Marshalled Python bytecode embedded in a Lambda layer or a `__lambda__` object.
#[derive(Debug, Clone)]
pub struct Bytecode<'v> {
    /// The config field that holds it (`function`, `output_shape`, `code`, `value`).
    pub field: &'static str,
    /// The base64 text as stored.
    pub encoded: &'v str,
    /// The decoded bytes, when the text is valid base64.
    pub bytes: Option<Vec<u8>>,
}

/// The bytecode an object carries: Keras 2 `Lambda` (`function` / `output_shape` with a
/// `*_type` of `"lambda"`) and Keras 3 `__lambda__` objects.
pub fn bytecode<'v>(obj: &KerasObject<'v>) -> Vec<Bytecode<'v>> {
    let mut out = Vec::new();
    let Some(config) = obj.config else {
        return out;
    };
    let mut push = |field: &'static str, v: Option<&'v Value>| {
        let text = match v {
            Some(Value::String(s)) => Some(s.as_str()),
            // (code, defaults, closure) as a JSON list
            Some(Value::Array(a)) => a.first().and_then(Value::as_str),
            _ => None,
        };
        if let Some(encoded) = text {
            out.push(Bytecode {
                field,
                encoded,
                bytes: decode_base64(encoded),
            });
        }
    };
    if obj.class_name == "__lambda__" {
        push("code", config.get("code"));
        push("value", config.get("value"));
        return out;
    }
    for (field, type_key) in [
        ("function", "function_type"),
        ("output_shape", "output_shape_type"),
        ("mask", "mask_type"),
    ] {
        let ty = obj.config_str(type_key);
        let lambda = ty == Some("lambda")
            // Old Keras 2 configs: `function` as [code, defaults, closure] with no type.
            || (ty.is_none() && field == "function" && obj.class_name == "Lambda"
                && config.get(field).is_some_and(Value::is_array));
        if lambda {
            push(field, config.get(field));
        }
    }
    out
}

/// A named function a Lambda layer refers to (Keras 2 `function_type: "function"`):
/// `(module, name)`.
pub fn lambda_function(obj: &KerasObject<'_>) -> Option<(Option<String>, String)> {
    if obj.config_str("function_type") != Some("function") {
        return None;
    }
    let config = obj.config?;
    let name = match config.get("function")? {
        Value::String(s) => s.clone(),
        // a nested serialized function object
        Value::Object(o) => o.get("config")?.as_str()?.to_string(),
        _ => return None,
    };
    let module = obj.config_str("module").map(str::to_string);
    Some((module, name))
}

/// Standard or URL-safe base64, ignoring whitespace; padding optional.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::{alphabet, Engine};
    // Python's decoder (what Keras uses) skips line breaks and accepts missing padding.
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(&compact)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(&compact))
        .ok()
}

/// Identifier-like strings in marshalled bytecode (names, constants): a heuristic view
/// of what the code touches, e.g. `["os", "system", "<lambda>"]`.
pub fn marshal_strings(code: &[u8], max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0usize;
    while let Some(&b) = code.get(i) {
        if out.len() >= max {
            break;
        }
        // TYPE_SHORT_ASCII(_INTERNED) 'z'/'Z' with a 1-byte length, TYPE_ASCII(_INTERNED)
        // 'a'/'A' and TYPE_UNICODE 'u' with a 4-byte length; FLAG_REF is 0x80.
        let ty = b & 0x7f;
        let (len, start) = match ty {
            b'z' | b'Z' => (
                code.get(i.saturating_add(1)).map(|&n| usize::from(n)),
                i.saturating_add(2),
            ),
            b'a' | b'A' | b'u' => {
                let l = code
                    .get(i.saturating_add(1)..i.saturating_add(5))
                    .and_then(|s| <[u8; 4]>::try_from(s).ok())
                    .map(u32::from_le_bytes)
                    .and_then(|n| usize::try_from(n).ok());
                (l, i.saturating_add(5))
            }
            _ => (None, i),
        };
        if let Some(len) = len.filter(|&l| (2..=80).contains(&l)) {
            if let Some(s) = code.get(start..start.saturating_add(len)) {
                let ok = s.iter().all(|c| c.is_ascii_graphic() || *c == b' ');
                if ok {
                    let s = String::from_utf8_lossy(s).into_owned();
                    if !out.contains(&s) {
                        out.push(s);
                    }
                    i = start.saturating_add(len);
                    continue;
                }
            }
        }
        i = i.saturating_add(1);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `scan_json` as first written, byte by byte: the reference for the faster one.
    fn scan_json_bytewise(data: &[u8]) -> (u32, u64, bool) {
        let (mut depth, mut max, mut at, mut py) = (0u32, 0u32, 0u64, false);
        let (mut in_str, mut esc) = (false, false);
        for (i, &b) in data.iter().enumerate() {
            if in_str {
                if esc {
                    esc = false;
                    if b == b'u' {
                        let hex = data.get(i + 1..i + 5);
                        if hex.is_some_and(|h| matches!(h.first(), Some(b'd' | b'D'))) {
                            py = true;
                        }
                    }
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > max {
                        max = depth;
                        at = i as u64;
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                b'N' | b'I' | b'e' | b'E' => py = true,
                _ => {}
            }
        }
        (max, at, py)
    }

    #[test]
    fn scan_json_skips_strings_like_the_bytewise_scan() {
        let seeds: [&[u8]; 4] = [
            br#"{"a": [1, {"b": "x\"y{["}], "c": "\ud800", "d": NaN, "e": [[[]]]}"#,
            br#"["\\", "\"", "{", "\uD83D\uDE00", 1e5, Infinity]"#,
            br#"{"k": "unterminated \"#,
            br#"[{"x": "\u00e9"}, {"y": [true, false, null]}]"#,
        ];
        for (n, seed) in seeds.iter().enumerate() {
            for cut in 0..=seed.len() {
                let d = &seed[..cut];
                let s = scan_json(d);
                assert_eq!(
                    (s.max_depth, s.deepest_at, s.pythonisms),
                    scan_json_bytewise(d)
                );
            }
            for d in crate::mutate::mutations(seed, 0xa11 + n as u64, 2000) {
                let s = scan_json(&d);
                assert_eq!(
                    (s.max_depth, s.deepest_at, s.pythonisms),
                    scan_json_bytewise(&d),
                    "{}",
                    String::from_utf8_lossy(&d)
                );
            }
        }
    }

    #[test]
    fn python_json_is_accepted() {
        let v = load_json(br#"{"a": NaN, "b": -Infinity, "c": [Infinity, 1e400, 2.5], "d": "x\ud800y", "e": "\ud83d\ude00"}"#, &Limits::default()).unwrap();
        assert!(v["a"].is_null() && v["b"].is_null());
        assert!(v["c"][0].is_null() && v["c"][1].is_null());
        assert_eq!(v["c"][2], 2.5);
        assert_eq!(v["d"], "x\u{fffd}y");
        assert_eq!(v["e"], "\u{1f600}");
        // strings that merely contain the words are untouched
        let v = load_json(br#"{"NaN": "Infinity is NaN"}"#, &Limits::default()).unwrap();
        assert_eq!(v["NaN"], "Infinity is NaN");
    }

    #[test]
    fn bad_json_is_an_error() {
        for bad in [
            &b"{"[..],
            b"{\"a\": }",
            b"[1, 2",
            b"{} {}",
            b"\"unterminated",
        ] {
            assert!(
                load_json(bad, &Limits::default()).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(load_json(deep.as_bytes(), &Limits::default())
            .unwrap_err()
            .is_limit());
        let limits = Limits {
            max_header_bytes: 4,
            ..Limits::default()
        };
        assert!(load_json(b"[1, 2, 3]", &limits).unwrap_err().is_limit());
    }

    #[test]
    fn objects_are_found_everywhere() {
        let v: Value = serde_json::from_str(
            r#"{"class_name": "Sequential", "config": {"name": "s", "layers": [
                {"class_name": "Dense", "config": {"name": "d", "kernel_initializer": {"class_name": "GlorotUniform", "config": {}}}},
                {"class_name": "Lambda", "config": {"name": "l", "function": ["4wEAAAAA", null, null], "function_type": "lambda", "module": "__main__"}}
            ]}}"#,
        )
        .unwrap();
        let objs = objects(&v, &Limits::default());
        let names: Vec<_> = objs.iter().map(|o| o.class_name).collect();
        assert_eq!(
            names,
            vec!["Sequential", "Dense", "GlorotUniform", "Lambda"]
        );
        assert_eq!(objs[3].path, "config.layers[1]");
        assert_eq!(objs[3].name, Some("l"));
        let code = bytecode(&objs[3]);
        assert_eq!(code.len(), 1);
        assert_eq!(code[0].field, "function");
        assert_eq!(
            code[0].bytes.as_deref(),
            Some(&[0xe3, 0x01, 0, 0, 0, 0][..])
        );
        assert!(looks_like_config(&v));
    }

    #[test]
    fn keras3_lambda_and_function_objects() {
        let v: Value = serde_json::from_str(
            r#"{"module": "keras.layers", "class_name": "Lambda", "config": {"name": "l",
                "function": {"class_name": "__lambda__", "config": {"code": "YWJj", "defaults": null, "closure": null}}}}"#,
        )
        .unwrap();
        let objs = objects(&v, &Limits::default());
        assert_eq!(objs.len(), 2);
        let code = bytecode(&objs[1]);
        assert_eq!(code[0].field, "code");
        assert_eq!(code[0].bytes.as_deref(), Some(&b"abc"[..]));
        let v: Value = serde_json::from_str(
            r#"{"class_name": "Lambda", "config": {"function": "system", "function_type": "function", "module": "os"}}"#,
        )
        .unwrap();
        let objs = objects(&v, &Limits::default());
        assert_eq!(
            lambda_function(&objs[0]),
            Some((Some("os".into()), "system".into()))
        );
    }

    #[test]
    fn base64_and_marshal_strings() {
        assert_eq!(decode_base64("aGVsbG8=\n").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert!(decode_base64("a*b").is_none());
        let code = b"\xe3\x00\x00\xda\x02os\xda\x06system\x29\x02\xfa\x08<lambda>";
        assert_eq!(marshal_strings(code, 10), vec!["os", "system", "<lambda>"]);
    }

    #[test]
    fn walking_is_bounded() {
        let mut s = String::from("[");
        for _ in 0..10_000 {
            s.push_str(r#"{"class_name": "X", "config": {}},"#);
        }
        s.push_str("1]");
        let v: Value = serde_json::from_str(&s).unwrap();
        let limits = Limits {
            max_entries: 100,
            ..Limits::default()
        };
        assert_eq!(objects(&v, &limits).len(), 100);
    }
}
