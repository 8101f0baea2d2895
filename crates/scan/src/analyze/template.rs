//! Chat templates: Jinja2 source that model loaders render.
//!
//! GGUF files carry `tokenizer.chat_template` (and `tokenizer.chat_template.<name>`),
//! Hugging Face repositories carry `chat_template` in `tokenizer_config.json` or
//! `chat_template.json`, or a `chat_template.jinja` file. transformers renders them in
//! Jinja's `ImmutableSandboxedEnvironment`; llama-cpp-python before 0.2.72 rendered GGUF
//! templates in a plain `jinja2.Environment`, so a template could walk
//! `''.__class__.__mro__[1].__subclasses__()` to `os.popen` (CVE-2024-34359). Even the
//! sandbox has been escaped through `str.format` and the `attr` filter (CVE-2019-10906,
//! CVE-2024-56326, CVE-2025-27516).
//!
//! The check is not a substring grep: real templates say "system" and "os" in ordinary
//! text. A small Jinja lexer (mirroring `jinja2/lexer.py`: `{{ }}`, `{% %}`, `{# #}`,
//! `{% raw %}`, whitespace control, string escapes as Python's `unicode-escape`) cuts the
//! source into text and code; a small expression parser (mirroring `jinja2/parser.py`)
//! walks the code, folds constant strings (`'__cla' ~ 'ss__'`, `'_' * 2`, `|join`,
//! `|reverse`, `'%c' % 95`, `'{}'.format(..)`, `{% set x = '...' %}`) and judges
//! identifiers, attributes, subscripts and calls in context.

use std::collections::{HashMap, HashSet};

use crate::context::Cx;
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

pub static INTERNALS: Rule = Rule {
    id: "TPL001",
    name: "template-python-internals",
    severity: Severity::Critical,
    title: "chat template reaches Python internals",
    why: "A Jinja template that touches dunder attributes (`__class__`, `__globals__`, `__subclasses__` ...), private attributes or os/subprocess/eval can run commands when a loader renders it (CVE-2024-34359 in llama-cpp-python; sandbox escapes CVE-2024-56326, CVE-2025-27516). No chat template needs them.",
    fix: "Do not load this model. Replace the chat template with the publisher's known template, and render templates only in an up-to-date `ImmutableSandboxedEnvironment`.",
};

pub static SUSPICIOUS_GLOBAL: Rule = Rule {
    id: "TPL002",
    name: "template-suspicious-global",
    severity: Severity::High,
    title: "chat template uses a global that SSTI payloads use",
    why: "`lipsum`, `cycler`, `joiner`, `self`, `request`, `config`, os/eval names and `{% include %}`/`{% import %}` have no use in a chat template; they are the stepping stones of server-side template injection payloads.",
    fix: "Compare the template with the publisher's original; remove the model unless the template is explained.",
};

pub static UNPARSEABLE: Rule = Rule {
    id: "TPL003",
    name: "template-unparseable",
    severity: Severity::Medium,
    title: "chat template does not parse",
    why: "Unbalanced delimiters or unknown syntax mean a renderer may read the template differently from this scanner (or refuse it); such a template cannot be vouched for.",
    fix: "Ask the publisher for the original template; a well-formed template renders under `jinja2` without errors.",
};

pub static VERY_LONG: Rule = Rule {
    id: "TPL004",
    name: "template-very-long",
    severity: Severity::Low,
    title: "chat template is unusually long",
    why:
        "Real chat templates are a few KiB; a very long one can hide logic that is hard to review.",
    fix: "Review the template by hand.",
};

pub static OBFUSCATED: Rule = Rule {
    id: "TPL005",
    name: "template-obfuscation",
    severity: Severity::High,
    title: "chat template builds names or strings in obfuscated ways",
    why: "Escape-encoded letters (`\\x5f`), `%c` formatting, dunder fragments joined at run time and attribute names computed at run time (`|attr(x)`) hide SSTI payloads from review; real templates spell their strings plainly.",
    fix: "Do not load this model; replace the chat template with the publisher's original.",
};

pub static TEXT_INTERNALS: Rule = Rule {
    id: "TPL006",
    name: "template-internals-in-text",
    severity: Severity::Medium,
    title: "Python dunder names in template text or comments",
    why: "Outside `{{ }}`/`{% %}` the text is output, not code, but a renderer that tokenizes differently (or a raw/set block used as data) could turn it into code; real chat templates never mention `__globals__` and friends.",
    fix: "Review the template; replace it with the publisher's original.",
};

pub static RULES: &[&Rule] = &[
    &INTERNALS,
    &SUSPICIOUS_GLOBAL,
    &UNPARSEABLE,
    &VERY_LONG,
    &OBFUSCATED,
    &TEXT_INTERNALS,
];

/// Templates longer than this are reported (TPL004). The longest real templates (tool
/// calling, reasoning) are around 20 KiB.
pub const LONG_TEMPLATE: usize = 64 * 1024;
/// Longest template inspected (real ones are a few KiB; the cost is linear).
pub const MAX_INSPECTED: usize = 1 << 20;
/// Most issues reported for one template.
const MAX_ISSUES: usize = 24;
/// Longest constant string folded; dunder names are short.
const FOLD_CAP: usize = 256;
/// Deepest expression nesting parsed.
const MAX_DEPTH: u32 = 32;
/// Longest evidence snippet.
const SNIPPET: usize = 160;

/// One problem found in a template.
#[derive(Debug, Clone)]
pub struct Issue {
    pub rule: &'static Rule,
    pub severity: Severity,
    pub evidence: String,
    /// Byte offset in the template.
    pub pos: usize,
}

/// Inspects a template and reports its issues as findings at `loc`. Templates longer
/// than [`MAX_INSPECTED`] are inspected up to that length and reported as not fully
/// inspected.
pub fn check(cx: &mut Cx<'_>, loc: &Location, source: &str) {
    let mut cut = source.len().min(MAX_INSPECTED);
    while !source.is_char_boundary(cut) {
        cut = cut.saturating_sub(1);
    }
    if cut < source.len() {
        cx.report(
            &crate::analyze::generic::LIMIT_EXCEEDED,
            loc.clone(),
            format!(
                "chat template of {} bytes; only the first {cut} were inspected",
                source.len()
            ),
        );
    }
    let source = source.get(..cut).unwrap_or_default();
    for issue in inspect_once(source) {
        cx.report_at(
            issue.rule,
            issue.severity,
            loc.clone(),
            format!("{} (template byte {})", issue.evidence, issue.pos),
        );
    }
}

/// Templates at most this long are remembered with their issues (see [`inspect_once`]).
const REMEMBERED_TEMPLATE: usize = 256 << 10;
/// Bytes of template text remembered per process at most.
const REMEMBERED_TOTAL: usize = 8 << 20;

/// What [`inspect_once`] remembers: each template's exact text and its issues.
#[derive(Default)]
struct Seen {
    issues: HashMap<String, Vec<Issue>>,
    bytes: usize,
}

/// [`inspect`], computed once per distinct template text in the process. The same chat
/// template ships in `tokenizer_config.json`, `chat_template.jinja` and in every GGUF
/// quantization of a model; `inspect` is a function of the text alone, so the issues
/// found the first time are the issues.
fn inspect_once(source: &str) -> Vec<Issue> {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<Seen>> = std::sync::OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if source.len() > REMEMBERED_TEMPLATE {
        return inspect(source);
    }
    if let Some(issues) = seen.lock().ok().and_then(|s| s.issues.get(source).cloned()) {
        return issues;
    }
    let issues = inspect(source);
    if let Ok(mut s) = seen.lock() {
        if s.bytes.saturating_add(source.len()) <= REMEMBERED_TOTAL
            && !s.issues.contains_key(source)
        {
            s.bytes = s.bytes.saturating_add(source.len());
            s.issues.insert(source.to_string(), issues.clone());
        }
    }
    issues
}

/// Inspects a template; no findings for a benign template.
pub fn inspect(source: &str) -> Vec<Issue> {
    let mut an = An::new(source);
    let segs = lex(source, &mut an);
    an.walk(&segs);
    if source.len() > LONG_TEMPLATE {
        an.issue(
            &VERY_LONG,
            Severity::Low,
            "length".into(),
            format!("template is {} bytes", source.len()),
            0,
        );
    }
    an.issues
}

// ---------------------------------------------------------------------------------------
// Names

/// Dunder names that reach Python internals when used as strings or in text. Any dunder
/// used as an attribute or subscript is reported, listed here or not.
const INTERNAL_DUNDERS: &[&str] = &[
    "class",
    "mro",
    "subclasses",
    "globals",
    "builtins",
    "builtin",
    "init",
    "import",
    "getattribute",
    "getattr",
    "dict",
    "base",
    "bases",
    "code",
    "func",
    "self",
    "module",
    "loader",
    "spec",
    "reduce",
    "reduce_ex",
    "getitem",
    "call",
    "closure",
    "defaults",
    "kwdefaults",
    "new",
    "subclasshook",
    "init_subclass",
    "setattr",
    "delattr",
    "enter",
    "exit",
    "traceback",
    "frame",
    "wrapped",
    "objclass",
    "class_getitem",
    "dir",
    "weakref",
    "name",
    "qualname",
    "func_globals",
    "loader__",
    "spec__",
];

/// Attribute or subscript names that lead to code execution or Python internals.
const DANGEROUS_MEMBERS: &[&str] = &[
    "popen",
    "os",
    "subprocess",
    "sys",
    "builtins",
    "importlib",
    "eval",
    "exec",
    "execfile",
    "import_module",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnv",
    "spawnve",
    "spawnvp",
    "spawnvpe",
    "execl",
    "execle",
    "execlp",
    "execv",
    "execve",
    "execvp",
    "execvpe",
    "fork",
    "forkpty",
    "posix_spawn",
    "load_module",
    "exec_module",
    "func_globals",
    "func_code",
    "f_globals",
    "f_locals",
    "f_back",
    "f_builtins",
    "f_code",
    "gi_frame",
    "gi_code",
    "cr_frame",
    "cr_code",
    "ag_frame",
    "ag_code",
    "tb_frame",
    "tb_next",
    "co_code",
    "mro",
    "modules",
    "posix",
    "pty",
    "socket",
    "marshal",
    "pickle",
    "ctypes",
];

/// Methods whose call runs commands, imports or touches files.
const DANGEROUS_CALLS: &[&str] = &[
    "popen",
    "system",
    "eval",
    "exec",
    "open",
    "import_module",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
    "spawnl",
    "spawnv",
    "spawnlp",
    "spawnvp",
    "execl",
    "execv",
    "execvp",
    "execve",
    "fork",
    "load_module",
    "exec_module",
    "loads",
    "remove",
    "unlink",
    "rmtree",
    "rmdir",
    "Popen",
    "run_path",
    "run_module",
];

/// Free names whose call is code execution or file access.
const DANGEROUS_FUNCTIONS: &[&str] = &[
    "eval",
    "exec",
    "open",
    "compile",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "breakpoint",
    "input",
    "execfile",
    "reload",
    "memoryview",
    "exit",
    "quit",
    "help",
];

/// Free names that only appear in SSTI payloads.
const SUSPICIOUS_GLOBALS: &[&str] = &[
    "lipsum",
    "cycler",
    "joiner",
    "self",
    "request",
    "config",
    "url_for",
    "get_flashed_messages",
];

/// Globals that are Python objects (functions, classes): their string form leaks
/// characters (`(raise_exception|string)[9]` is `_`) and their items are attributes.
const OBJECT_GLOBALS: &[&str] = &[
    "range",
    "dict",
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "raise_exception",
    "strftime_now",
    "loop",
    "self",
    "caller",
    "varargs",
    "kwargs",
];

/// Free names of modules and builtins that a template has no business naming.
const DANGEROUS_NAMES: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "builtins",
    "importlib",
    "posix",
    "popen",
    "eval",
    "exec",
    "open",
    "compile",
    "getattr",
    "setattr",
    "globals",
    "locals",
    "vars",
    "socket",
    "pty",
];

fn is_dunder(s: &str) -> bool {
    s.len() > 4 && s.starts_with("__") && s.ends_with("__")
}

/// `_Class__member`: Python's private-name mangling (`self._TemplateReference__context`).
fn is_mangled(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('_') else {
        return false;
    };
    !rest.starts_with('_')
        && rest
            .find("__")
            .is_some_and(|i| i > 0 && rest.len() > i.saturating_add(2))
}

/// The first internal dunder word in `s` (words split on non-identifier characters).
fn internal_dunder_in(s: &str) -> Option<&str> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|w| {
            is_dunder(w)
                && w.get(2..w.len().saturating_sub(2))
                    .is_some_and(|inner| INTERNAL_DUNDERS.contains(&inner))
        })
}

/// A string that is a dunder fragment: `__cla`, `ss__`, `_`, `__`.
fn is_fragment(s: &str) -> bool {
    !s.is_empty() && s.len() < 40 && (s.starts_with('_') || s.ends_with('_'))
}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    /// A string literal, unescaped.
    Str(String),
    Int(Option<i64>),
    Float,
    Op(&'static str),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

#[derive(Debug)]
enum Seg {
    Text(usize, usize),
    Comment(usize, usize),
    Raw(usize, usize),
    Var(usize, usize, Vec<Token>),
    Block(usize, usize, Vec<Token>),
}

const OPS: &[&str] = &[
    "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
    ">", "<", "=", ".", ":", "|", ",", ";",
];

fn lex(src: &str, an: &mut An<'_>) -> Vec<Seg> {
    let b = src.as_bytes();
    let mut segs = Vec::new();
    let mut pos = 0usize;
    while pos < b.len() {
        let Some(i) = find_open(b, pos) else {
            segs.push(Seg::Text(pos, b.len()));
            break;
        };
        if i > pos {
            segs.push(Seg::Text(pos, i));
        }
        let kind = b.get(i.saturating_add(1)).copied().unwrap_or(0);
        let inner = i.saturating_add(2);
        match kind {
            b'#' => match find(b, inner, b"#}") {
                Some(j) => {
                    segs.push(Seg::Comment(i, j.saturating_add(2)));
                    pos = j.saturating_add(2);
                }
                None => {
                    an.syntax(i, "unclosed comment `{#`");
                    segs.push(Seg::Comment(i, b.len()));
                    pos = b.len();
                }
            },
            b'%' if raw_tag(b, inner, "raw").is_some() => {
                let body = raw_tag(b, inner, "raw").unwrap_or(inner);
                match find_endraw(b, body) {
                    Some((j, after)) => {
                        segs.push(Seg::Raw(body, j));
                        pos = after;
                    }
                    None => {
                        an.syntax(i, "`{% raw %}` without `{% endraw %}`");
                        segs.push(Seg::Raw(body, b.len()));
                        pos = b.len();
                    }
                }
            }
            _ => {
                let end: &[u8] = if kind == b'%' { b"%}" } else { b"}}" };
                let (toks, after, closed) = lex_code(src, inner, end, an);
                if !closed {
                    an.syntax(
                        i,
                        if kind == b'%' {
                            "unclosed `{%` tag"
                        } else {
                            "unclosed `{{` expression"
                        },
                    );
                }
                if kind == b'%' {
                    segs.push(Seg::Block(i, after, toks));
                } else {
                    segs.push(Seg::Var(i, after, toks));
                }
                pos = after;
            }
        }
    }
    segs
}

/// The next `{{`, `{%` or `{#` at or after `from`.
fn find_open(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = b.get(i..)?.iter().position(|&c| c == b'{') {
        let at = i.saturating_add(off);
        if matches!(b.get(at.saturating_add(1)), Some(b'{' | b'%' | b'#')) {
            return Some(at);
        }
        i = at.saturating_add(1);
    }
    None
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| p.saturating_add(from))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i = i.saturating_add(1);
    }
    i
}

/// Matches `[-+]? \s* word \s* -? %}` at `i` (just after `{%`); returns the offset after it.
fn raw_tag(b: &[u8], i: usize, word: &str) -> Option<usize> {
    let mut j = i;
    if matches!(b.get(j), Some(b'-' | b'+')) {
        j = j.saturating_add(1);
    }
    j = skip_ws(b, j);
    let w = word.as_bytes();
    if b.get(j..j.saturating_add(w.len()))? != w {
        return None;
    }
    j = j.saturating_add(w.len());
    if b.get(j)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        return None;
    }
    j = skip_ws(b, j);
    if matches!(b.get(j), Some(b'-' | b'+')) {
        j = j.saturating_add(1);
    }
    (b.get(j..j.saturating_add(2))? == b"%}").then_some(j.saturating_add(2))
}

/// Finds `{% endraw %}` from `from`; returns (start of the tag, offset after it).
fn find_endraw(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    loop {
        let j = find(b, i, b"{%")?;
        if let Some(after) = raw_tag(b, j.saturating_add(2), "endraw") {
            return Some((j, after));
        }
        i = j.saturating_add(2);
    }
}

/// Lexes the inside of a `{{ }}` or `{% %}` from `i` until `end` at bracket depth 0.
/// Returns the tokens, the offset after the closing delimiter and whether it was found.
fn lex_code(src: &str, mut i: usize, end: &[u8], an: &mut An<'_>) -> (Vec<Token>, usize, bool) {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut stack: Vec<u8> = Vec::new();
    // `{{-` / `{%+`: whitespace control, not an operator.
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i = i.saturating_add(1);
    }
    loop {
        i = skip_ws(b, i);
        let Some(&c) = b.get(i) else {
            return (toks, b.len(), false);
        };
        if stack.is_empty() {
            let rest = b.get(i..).unwrap_or_default();
            if rest.starts_with(end) {
                return (toks, i.saturating_add(2), true);
            }
            if (c == b'-' || (c == b'+' && end == b"%}"))
                && rest.get(1..).is_some_and(|r| r.starts_with(end))
            {
                return (toks, i.saturating_add(3), true);
            }
        }
        let start = i;
        if c == b'\'' || c == b'"' {
            match lex_string(src, i) {
                Ok((raw_end, value, obfuscated)) => {
                    if obfuscated {
                        let raw = src.get(i..raw_end).unwrap_or_default();
                        an.issue(
                            &OBFUSCATED,
                            Severity::High,
                            format!("escape:{value}"),
                            format!(
                                "escape-encoded characters in string literal {} = {:?}",
                                clip(raw, 80),
                                clip(&value, 80)
                            ),
                            i,
                        );
                    }
                    toks.push(Token {
                        tok: Tok::Str(value),
                        start,
                        end: raw_end,
                    });
                    i = raw_end;
                }
                Err((msg, at)) => {
                    an.syntax(at, msg);
                    // An unterminated string swallows the rest, as in Jinja.
                    return (toks, b.len(), false);
                }
            }
            continue;
        }
        if c.is_ascii_digit() {
            let (tok, e) = lex_number(
                b,
                i,
                toks.last().map(|t: &Token| &t.tok) == Some(&Tok::Op(".")),
            );
            toks.push(Token { tok, start, end: e });
            i = e;
            continue;
        }
        let ch = src.get(i..).and_then(|s| s.chars().next()).unwrap_or('\0');
        if ch == '_' || ch.is_alphabetic() {
            let mut e = i;
            for (off, cc) in src.get(i..).unwrap_or_default().char_indices() {
                if cc == '_' || cc.is_alphanumeric() {
                    e = i.saturating_add(off).saturating_add(cc.len_utf8());
                } else {
                    break;
                }
            }
            let name = src.get(i..e).unwrap_or_default().to_string();
            toks.push(Token {
                tok: Tok::Name(name),
                start,
                end: e,
            });
            i = e;
            continue;
        }
        let rest = b.get(i..).unwrap_or_default();
        if let Some(op) = OPS.iter().find(|op| rest.starts_with(op.as_bytes())) {
            match *op {
                "(" | "[" | "{" => stack.push(c),
                ")" | "]" | "}" => {
                    let want = match c {
                        b')' => b'(',
                        b']' => b'[',
                        _ => b'{',
                    };
                    if stack.pop() != Some(want) {
                        an.syntax(i, "unbalanced brackets");
                        stack.clear();
                    }
                }
                _ => {}
            }
            toks.push(Token {
                tok: Tok::Op(op),
                start,
                end: i.saturating_add(op.len()),
            });
            i = i.saturating_add(op.len());
            continue;
        }
        an.syntax(i, "unexpected character");
        i = i.saturating_add(ch.len_utf8().max(1));
    }
}

fn lex_number(b: &[u8], i: usize, after_dot: bool) -> (Tok, usize) {
    let mut e = i;
    let radix = match (
        b.get(i),
        b.get(i.saturating_add(1)).map(u8::to_ascii_lowercase),
    ) {
        (Some(b'0'), Some(b'x')) => 16,
        (Some(b'0'), Some(b'o')) => 8,
        (Some(b'0'), Some(b'b')) => 2,
        _ => 10,
    };
    if radix != 10 {
        e = e.saturating_add(2);
        while b
            .get(e)
            .is_some_and(|c| c.is_ascii_hexdigit() || *c == b'_')
        {
            e = e.saturating_add(1);
        }
        let digits: String = b
            .get(i.saturating_add(2)..e)
            .unwrap_or_default()
            .iter()
            .filter(|&&c| c != b'_')
            .map(|&c| c as char)
            .collect();
        return (Tok::Int(i64::from_str_radix(&digits, radix).ok()), e);
    }
    while b.get(e).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        e = e.saturating_add(1);
    }
    let int_end = e;
    let mut float = false;
    if !after_dot
        && b.get(e) == Some(&b'.')
        && b.get(e.saturating_add(1)).is_some_and(u8::is_ascii_digit)
    {
        float = true;
        e = e.saturating_add(1);
        while b.get(e).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            e = e.saturating_add(1);
        }
    }
    if !after_dot && matches!(b.get(e), Some(b'e' | b'E')) {
        let mut k = e.saturating_add(1);
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k = k.saturating_add(1);
        }
        if b.get(k).is_some_and(u8::is_ascii_digit) {
            float = true;
            e = k;
            while b.get(e).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
                e = e.saturating_add(1);
            }
        }
    }
    if float {
        return (Tok::Float, e);
    }
    let digits: String = b
        .get(i..int_end)
        .unwrap_or_default()
        .iter()
        .filter(|&&c| c != b'_')
        .map(|&c| c as char)
        .collect();
    (Tok::Int(digits.parse().ok()), e)
}

/// Lexes a quoted string at `i`. Returns (offset after it, unescaped value, whether an
/// escape encoded a printable ASCII character).
fn lex_string(src: &str, i: usize) -> Result<(usize, String, bool), (&'static str, usize)> {
    let b = src.as_bytes();
    let quote = b.get(i).copied().unwrap_or(b'"');
    let mut j = i.saturating_add(1);
    loop {
        match b.get(j) {
            None => return Err(("unterminated string literal", i)),
            Some(b'\\') => j = j.saturating_add(2),
            Some(&c) if c == quote => break,
            Some(_) => j = j.saturating_add(1),
        }
    }
    let raw = src.get(i.saturating_add(1)..j).unwrap_or_default();
    let (value, obfuscated) = unescape(raw).map_err(|m| (m, i))?;
    Ok((j.saturating_add(1), value, obfuscated))
}

/// Python's `unicode-escape` decoding, which Jinja applies to string literals.
fn unescape(raw: &str) -> Result<(String, bool), &'static str> {
    let raw: std::borrow::Cow<'_, str> = if raw.contains('\r') {
        raw.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        raw.into()
    };
    // Nothing to decode: the literal is its value.
    if !raw.contains('\\') {
        return Ok((raw.into_owned(), false));
    }
    let mut out = String::with_capacity(raw.len());
    let mut obf = false;
    let mut it = raw.chars().peekable();
    let printable = |c: char| ('!'..='~').contains(&c);
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else {
            out.push('\\');
            break;
        };
        match e {
            '\n' => {}
            '\\' | '\'' | '"' => out.push(e),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match it.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v.saturating_mul(8).saturating_add(d);
                            it.next();
                        }
                        None => break,
                    }
                }
                let ch = char::from_u32(v).unwrap_or('\u{fffd}');
                obf |= printable(ch);
                out.push(ch);
            }
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = it
                        .next()
                        .and_then(|c| c.to_digit(16))
                        .ok_or("truncated \\x/\\u escape in string literal")?;
                    v = v.saturating_mul(16).saturating_add(d);
                }
                if v > 0x10ffff {
                    return Err("illegal Unicode character in string literal");
                }
                let ch = char::from_u32(v).unwrap_or('\u{fffd}');
                obf |= printable(ch);
                out.push(ch);
            }
            'N' => {
                if it.next() != Some('{') {
                    return Err("malformed \\N character escape");
                }
                let mut name = String::new();
                loop {
                    match it.next() {
                        Some('}') => break,
                        Some(c) if name.len() < 100 => name.push(c),
                        _ => return Err("malformed \\N character escape"),
                    }
                }
                obf = true;
                out.push(named_char(&name.to_ascii_uppercase()).unwrap_or('\u{fffd}'));
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok((out, obf))
}

/// The ASCII characters a `\N{...}` escape could spell in a payload.
fn named_char(name: &str) -> Option<char> {
    let simple = [
        ("LOW LINE", '_'),
        ("FULL STOP", '.'),
        ("SPACE", ' '),
        ("APOSTROPHE", '\''),
        ("QUOTATION MARK", '"'),
        ("LEFT SQUARE BRACKET", '['),
        ("RIGHT SQUARE BRACKET", ']'),
        ("LEFT PARENTHESIS", '('),
        ("RIGHT PARENTHESIS", ')'),
        ("LEFT CURLY BRACKET", '{'),
        ("RIGHT CURLY BRACKET", '}'),
        ("COMMA", ','),
        ("COLON", ':'),
        ("SOLIDUS", '/'),
        ("HYPHEN-MINUS", '-'),
        ("PERCENT SIGN", '%'),
        ("TILDE", '~'),
        ("VERTICAL LINE", '|'),
    ];
    if let Some((_, c)) = simple.iter().find(|(n, _)| *n == name) {
        return Some(*c);
    }
    let letter = |rest: &str| {
        let mut cs = rest.chars();
        match (cs.next(), cs.next()) {
            (Some(c), None) if c.is_ascii_uppercase() => Some(c),
            _ => None,
        }
    };
    if let Some(rest) = name.strip_prefix("LATIN SMALL LETTER ") {
        return letter(rest).map(|c| c.to_ascii_lowercase());
    }
    if let Some(rest) = name.strip_prefix("LATIN CAPITAL LETTER ") {
        return letter(rest);
    }
    let digits = [
        "ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE",
    ];
    let d = name.strip_prefix("DIGIT ")?;
    let i = digits.iter().position(|x| *x == d)?;
    char::from_digit(u32::try_from(i).ok()?, 10)
}

// ---------------------------------------------------------------------------------------
// Analysis

/// A constant value known at parse time.
#[derive(Debug, Clone, PartialEq)]
enum Const {
    Str(String),
    Int(i64),
    List(Vec<Const>),
}

impl Const {
    fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Python's `str()`.
    fn to_text(&self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s.clone()),
            Self::Int(i) => Some(i.to_string()),
            Self::List(_) => None,
        }
    }
}

/// What the parser knows about an expression.
#[derive(Debug, Clone, Default)]
struct Val {
    start: usize,
    end: usize,
    c: Option<Const>,
    /// `c` came from folding, not from one literal.
    folded: bool,
    /// A bare name that is not defined by the template.
    free: Option<String>,
    /// A bare name (defined or not).
    name: Option<String>,
    /// The attribute this expression reads (`x.a`, `x|attr('a')`, `x['a']`).
    attr: Option<String>,
    /// `CONST.method`: the receiver, for folding the call that follows.
    recv: Option<Const>,
    /// Built from dunder fragments.
    frag: bool,
    /// A tuple literal (Python's `%` takes its items as arguments; a list is one argument).
    tuple: bool,
    /// A string assembled at run time (`a ~ b`, `|join`, `|format` of unknown parts).
    built: bool,
    /// `x.method` where `x` is a string built at run time (`.format` on it).
    recv_built: bool,
}

impl Val {
    fn str(&self) -> Option<&str> {
        self.c.as_ref().and_then(Const::as_str)
    }
}

#[derive(Debug)]
struct Capture {
    name: String,
    macro_: bool,
    depth: usize,
    text: String,
    only_text: bool,
}

struct An<'s> {
    src: &'s str,
    issues: Vec<Issue>,
    seen: HashSet<(&'static str, String)>,
    syntax_reported: usize,
    defined: HashSet<String>,
    consts: HashMap<String, Const>,
    macros: HashMap<String, String>,
    /// Names bound once so far; a second binding makes a name unknown for good, so that a
    /// branch not taken cannot hide the value a name really has.
    bound: HashSet<String>,
    poisoned: HashSet<String>,
    /// Names and `ns.attr` paths holding dunder fragments or run-time-built strings.
    frag_names: HashSet<String>,
    built_names: HashSet<String>,
    /// Names bound to Python objects such as `raise_exception` (`{% set r = range %}`).
    object_aliases: HashSet<String>,
    blocks: Vec<(String, usize)>,
    capture: Option<Capture>,
    /// Span of the code segment being parsed, for evidence.
    seg: (usize, usize),
}

type PResult<T> = Result<T, (usize, &'static str)>;
/// Positional and keyword arguments of a call.
type Args = (Vec<Val>, Vec<(String, Val)>);

impl<'s> An<'s> {
    fn new(src: &'s str) -> Self {
        let defined = [
            "loop",
            "namespace",
            "range",
            "dict",
            "raise_exception",
            "strftime_now",
            "true",
            "false",
            "none",
            "True",
            "False",
            "None",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Self {
            src,
            issues: Vec::new(),
            seen: HashSet::new(),
            syntax_reported: 0,
            defined,
            consts: HashMap::new(),
            macros: HashMap::new(),
            bound: HashSet::new(),
            poisoned: HashSet::new(),
            frag_names: HashSet::new(),
            built_names: HashSet::new(),
            object_aliases: HashSet::new(),
            blocks: Vec::new(),
            capture: None,
            seg: (0, 0),
        }
    }

    fn snippet(&self, pos: usize) -> String {
        let (s, e) = self.seg;
        let (s, e) = if e > s && pos >= s && pos <= e {
            (s, e)
        } else {
            (pos, pos.saturating_add(SNIPPET).min(self.src.len()))
        };
        let (ws, we) = if e.saturating_sub(s) <= SNIPPET {
            (s, e)
        } else {
            let ws = pos.saturating_sub(60).max(s);
            (ws, ws.saturating_add(SNIPPET).min(e))
        };
        let text = slice_chars(self.src, ws, we);
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!(
            "{}{}{}",
            if ws > s { "…" } else { "" },
            text.trim(),
            if we < e { "…" } else { "" }
        )
    }

    fn issue(&mut self, rule: &'static Rule, sev: Severity, key: String, what: String, pos: usize) {
        if self.issues.len() >= MAX_ISSUES || !self.seen.insert((rule.id, key)) {
            return;
        }
        let snippet = self.snippet(pos);
        let evidence = if snippet.is_empty() || rule.id == VERY_LONG.id {
            what
        } else {
            format!("{what} in `{snippet}`")
        };
        self.issues.push(Issue {
            rule,
            severity: sev,
            evidence,
            pos,
        });
    }

    fn syntax(&mut self, pos: usize, msg: &str) {
        // One finding is enough to fail the gate; the first three say where.
        self.syntax_reported = self.syntax_reported.saturating_add(1);
        if self.syntax_reported <= 3 {
            self.issue(
                &UNPARSEABLE,
                Severity::Medium,
                format!("{msg}@{pos}"),
                msg.to_string(),
                pos,
            );
        }
    }

    fn critical(&mut self, key: &str, what: String, pos: usize) {
        self.issue(&INTERNALS, Severity::Critical, key.to_string(), what, pos);
    }

    // --- segments -------------------------------------------------------------------

    fn walk(&mut self, segs: &[Seg]) {
        for seg in segs {
            match seg {
                Seg::Text(s, e) => {
                    self.seg = (*s, *e);
                    self.text_backstop(*s, *e, "template text");
                    if let Some(cap) = self.capture.as_mut() {
                        if cap.depth == self.blocks.len() && cap.text.len() < FOLD_CAP * 4 {
                            cap.text.push_str(self.src.get(*s..*e).unwrap_or_default());
                        }
                    }
                }
                Seg::Comment(s, e) => {
                    self.seg = (*s, *e);
                    self.text_backstop(*s, *e, "comment");
                }
                Seg::Raw(s, e) => {
                    self.seg = (*s, *e);
                    self.text_backstop(*s, *e, "raw block");
                    self.taint_capture();
                }
                Seg::Var(s, e, toks) => {
                    self.seg = (*s, *e);
                    self.token_floor(toks);
                    self.taint_capture();
                    let mut p = P {
                        an: self,
                        toks,
                        i: 0,
                        depth: 0,
                    };
                    p.rest(*s);
                }
                Seg::Block(s, e, toks) => {
                    self.seg = (*s, *e);
                    self.token_floor(toks);
                    self.statement(*s, toks);
                }
            }
        }
        if let Some((name, at)) = self.blocks.last().cloned() {
            self.seg = (at, at.saturating_add(SNIPPET).min(self.src.len()));
            self.syntax(
                at,
                if name == "set" {
                    "`{% set %}` block never closed"
                } else {
                    "block tag never closed"
                },
            );
        }
    }

    fn taint_capture(&mut self) {
        let depth = self.blocks.len();
        if let Some(cap) = self.capture.as_mut() {
            if cap.depth <= depth {
                cap.only_text = false;
            }
        }
    }

    /// Dunder names outside code: not executed, but never in a real template.
    fn text_backstop(&mut self, s: usize, e: usize, what: &str) {
        let text = self.src.get(s..e).unwrap_or_default();
        if let Some(d) = internal_dunder_in(text) {
            let off = text.find(d).unwrap_or(0);
            let d = d.to_string();
            self.issue(
                &TEXT_INTERNALS,
                Severity::Medium,
                d.clone(),
                format!("`{d}` in {what}"),
                s.saturating_add(off),
            );
        }
    }

    /// Checks every token of a code segment on its own, whatever the parser makes of it.
    fn token_floor(&mut self, toks: &[Token]) {
        for (k, t) in toks.iter().enumerate() {
            let after_dot =
                k > 0 && toks.get(k.wrapping_sub(1)).map(|t| &t.tok) == Some(&Tok::Op("."));
            match &t.tok {
                Tok::Name(n) if !after_dot && (is_dunder(n) || is_mangled(n)) => {
                    self.critical(n, format!("Python internal name `{n}`"), t.start);
                }
                Tok::Str(s) => {
                    if let Some(d) = internal_dunder_in(s) {
                        let d = d.to_string();
                        self.critical(&d, format!("string {:?} names `{d}`", clip(s, 60)), t.start);
                    }
                }
                _ => {}
            }
        }
    }

    // --- statements -----------------------------------------------------------------

    fn statement(&mut self, at: usize, toks: &[Token]) {
        let Some(Tok::Name(kw)) = toks.first().map(|t| &t.tok) else {
            self.syntax(at, "tag does not start with a name");
            let mut p = P {
                an: self,
                toks,
                i: 0,
                depth: 0,
            };
            p.rest(at);
            return;
        };
        let kw = kw.clone();
        let rest = toks.get(1..).unwrap_or_default();
        // Anything but the closing tag of a captured body makes it more than text.
        let closes_capture = self.capture.as_ref().is_some_and(|c| {
            c.depth == self.blocks.len() && kw == if c.macro_ { "endmacro" } else { "endset" }
        });
        if !closes_capture {
            self.taint_capture();
        }
        match kw.as_str() {
            "for" => {
                let split = rest.iter().position(|t| t.tok == Tok::Name("in".into()));
                let (targets, iter) = match split {
                    Some(k) => (
                        rest.get(..k).unwrap_or_default(),
                        rest.get(k.saturating_add(1)..).unwrap_or_default(),
                    ),
                    None => {
                        self.syntax(at, "`for` without `in`");
                        (rest, &[][..])
                    }
                };
                let vals = self.parse(at, iter);
                self.define_targets(at, targets);
                // `{% for u in ['_'] %}`: the loop variable carries what the list holds.
                if let (Some(Const::List(items)), [t]) =
                    (vals.first().and_then(|v| v.c.as_ref()), targets)
                {
                    if let Tok::Name(n) = &t.tok {
                        if items.iter().any(|i| i.as_str().is_some_and(is_fragment)) {
                            self.frag_names.insert(n.clone());
                        }
                        if let Some(first) = items.first() {
                            if items.iter().all(|i| i == first) && !self.poisoned.contains(n) {
                                self.consts.insert(n.clone(), first.clone());
                            }
                        }
                    }
                }
                self.push("for", at);
            }
            "if" => {
                self.parse(at, rest);
                self.push("if", at);
            }
            "elif" | "else" => {
                let ok = match self.blocks.last() {
                    Some((b, _)) => b == "if" || (kw == "else" && b == "for"),
                    None => false,
                };
                if !ok {
                    self.syntax(at, "`elif`/`else` outside `if`/`for`");
                }
                self.parse(at, rest);
            }
            "set" => {
                let eq = depth0_position(rest, |t| t.tok == Tok::Op("="));
                match eq {
                    Some(k) => {
                        let targets = rest.get(..k).unwrap_or_default();
                        let value = rest.get(k.saturating_add(1)..).unwrap_or_default();
                        let vals = self.parse(at, value);
                        match (targets, vals.as_slice()) {
                            ([t], [v]) if matches!(t.tok, Tok::Name(_)) => {
                                if let Tok::Name(n) = &t.tok {
                                    self.bind(n, v.c.clone());
                                    self.taint(n, v);
                                }
                            }
                            ([a, dot, b], [v])
                                if matches!(
                                    (&a.tok, &dot.tok, &b.tok),
                                    (Tok::Name(_), Tok::Op("."), Tok::Name(_))
                                ) =>
                            {
                                // `{% set ns.attr = value %}`: tracked by path.
                                if let (Tok::Name(a), Tok::Name(b)) = (&a.tok, &b.tok) {
                                    let path = format!("{a}.{b}");
                                    self.bind_path(&path, v.c.clone());
                                    self.taint(&path, v);
                                }
                            }
                            _ => self.define_targets(at, targets),
                        }
                    }
                    None => {
                        // `{% set name %}...{% endset %}`: the body is the value.
                        let name = match rest.first().map(|t| &t.tok) {
                            Some(Tok::Name(n)) => n.clone(),
                            _ => String::new(),
                        };
                        if !name.is_empty() {
                            self.bind(&name, None);
                        }
                        // `{% set x | filter %}`: the filters apply to the body.
                        if rest.len() > 1 {
                            let mut p = P {
                                an: self,
                                toks: rest,
                                i: 1,
                                depth: 0,
                            };
                            let recv = Val {
                                start: at,
                                end: at,
                                ..Val::default()
                            };
                            if !(p.eat_op("|") && p.filter_chain(recv, true).is_ok()) {
                                p.an.syntax(at, "malformed `{% set %}` block");
                            }
                            p.rest(at);
                        }
                        self.push("set", at);
                        self.capture = Some(Capture {
                            name,
                            macro_: false,
                            depth: self.blocks.len(),
                            text: String::new(),
                            only_text: true,
                        });
                    }
                }
            }
            "macro" => {
                let name = match rest.first().map(|t| &t.tok) {
                    Some(Tok::Name(n)) => n.clone(),
                    _ => {
                        self.syntax(at, "`macro` without a name");
                        String::new()
                    }
                };
                if !name.is_empty() && !self.bound.insert(format!("macro {name}")) {
                    self.poisoned.insert(format!("macro {name}"));
                    self.macros.remove(&name);
                }
                self.defined.insert(name.clone());
                // Parameters: names right after `(` or `,` at paren depth 1.
                let mut depth = 0i32;
                let mut prev: Option<&Tok> = None;
                for t in rest {
                    match &t.tok {
                        Tok::Op("(") | Tok::Op("[") | Tok::Op("{") => {
                            depth = depth.saturating_add(1)
                        }
                        Tok::Op(")") | Tok::Op("]") | Tok::Op("}") => {
                            depth = depth.saturating_sub(1)
                        }
                        Tok::Name(n)
                            if depth == 1
                                && matches!(prev, Some(Tok::Op("(")) | Some(Tok::Op(","))) =>
                        {
                            self.bind(n, None);
                        }
                        _ => {}
                    }
                    prev = Some(&t.tok);
                }
                self.parse(at, rest);
                self.push("macro", at);
                self.capture = Some(Capture {
                    name,
                    macro_: true,
                    depth: self.blocks.len(),
                    text: String::new(),
                    only_text: true,
                });
            }
            "call" => {
                // `{% call(args) macro(...) %}`: the leading parameter list defines names.
                if rest.first().map(|t| &t.tok) == Some(&Tok::Op("(")) {
                    for t in rest {
                        if let Tok::Name(n) = &t.tok {
                            self.bind(n, None);
                        }
                        if t.tok == Tok::Op(")") {
                            break;
                        }
                    }
                }
                self.parse(at, rest);
                self.push("call", at);
            }
            "filter" => {
                let mut p = P {
                    an: self,
                    toks: rest,
                    i: 0,
                    depth: 0,
                };
                let recv = Val {
                    start: at,
                    end: at,
                    ..Val::default()
                };
                if p.filter_chain(recv, true).is_err() {
                    p.an.syntax(at, "malformed `{% filter %}`");
                }
                p.rest(at);
                self.push("filter", at);
            }
            "with" => {
                for w in rest.windows(2) {
                    if let (Tok::Name(n), Tok::Op("=")) = (&w[0].tok, &w[1].tok) {
                        self.bind(n, None);
                    }
                }
                self.parse(at, rest);
                self.push("with", at);
            }
            "block" => {
                self.define_targets(at, rest.get(..1).unwrap_or_default());
                self.push("block", at);
            }
            "autoescape" => {
                self.parse(at, rest);
                self.push("autoescape", at);
            }
            "generation" => self.push("generation", at),
            "trans" => {
                self.parse(at, rest);
                self.push("trans", at);
            }
            "pluralize" => {
                self.parse(at, rest);
            }
            "include" | "import" | "extends" | "from" => {
                self.issue(
                    &SUSPICIOUS_GLOBAL,
                    Severity::High,
                    format!("tag:{kw}"),
                    format!("`{{% {kw} %}}` loads another template"),
                    at,
                );
                // Names bound by `import x as y` / `from x import a, b`.
                let mut bind = false;
                for t in rest {
                    match &t.tok {
                        Tok::Name(n) if n == "as" || n == "import" => bind = true,
                        Tok::Name(n) if bind && n != "with" && n != "without" && n != "context" => {
                            self.bind(n, None);
                        }
                        _ => {}
                    }
                }
                let upto = rest
                    .iter()
                    .position(|t| matches!(&t.tok, Tok::Name(n) if n == "as" || n == "import"))
                    .unwrap_or(rest.len());
                self.parse(at, rest.get(..upto).unwrap_or_default());
            }
            "break" | "continue" => {
                if !self.blocks.iter().any(|(b, _)| b == "for") {
                    self.syntax(at, "`break`/`continue` outside a loop");
                }
            }
            "do" | "print" => {
                self.parse(at, rest);
            }
            "raw" | "endraw" => self.syntax(at, "malformed `{% raw %}`"),
            other => {
                if let Some(open) = other.strip_prefix("end") {
                    match self.blocks.last() {
                        Some((b, _)) if b == open => {
                            self.blocks.pop();
                            self.finish_capture();
                        }
                        _ => self.syntax(at, "end tag without its opening tag"),
                    }
                    if !(rest.is_empty() || open == "macro" || open == "block") {
                        self.syntax(at, "end tag with arguments");
                    }
                } else {
                    self.syntax(at, "unknown tag");
                    self.parse(at, rest);
                }
            }
        }
    }

    fn push(&mut self, name: &str, at: usize) {
        self.blocks.push((name.to_string(), at));
    }

    /// At an end tag: a captured `{% set %}` / `{% macro %}` body of plain text becomes a
    /// known constant (`{% set k %}__class__{% endset %}{{ x[k] }}`).
    fn finish_capture(&mut self) {
        let done = self
            .capture
            .as_ref()
            .is_some_and(|c| c.depth > self.blocks.len());
        if !done {
            return;
        }
        if let Some(cap) = self.capture.take() {
            if cap.only_text && !cap.name.is_empty() {
                let value = cap.text.trim().to_string();
                if let Some(d) = internal_dunder_in(&value) {
                    let d = d.to_string();
                    self.critical(
                        &d,
                        format!("`{}` is bound to {:?}", cap.name, clip(&value, 60)),
                        self.seg.0,
                    );
                }
                if cap.macro_ {
                    if !self.poisoned.contains(&format!("macro {}", cap.name)) {
                        self.macros.insert(cap.name, value);
                    }
                } else if !self.poisoned.contains(&cap.name) {
                    self.consts.insert(cap.name, Const::Str(value));
                }
            }
        }
    }

    fn define_targets(&mut self, at: usize, targets: &[Token]) {
        let simple = targets.iter().all(|t| {
            matches!(
                t.tok,
                Tok::Name(_) | Tok::Op(",") | Tok::Op("(") | Tok::Op(")")
            )
        });
        if simple {
            for t in targets {
                if let Tok::Name(n) = &t.tok {
                    self.bind(n, None);
                }
            }
        } else {
            // `ns.attr`, `x[0]` targets are expressions.
            self.parse(at, targets);
        }
    }

    /// Binds `name`; it keeps a constant value only while it is bound exactly once.
    fn bind(&mut self, name: &str, value: Option<Const>) {
        self.defined.insert(name.to_string());
        if !self.bound.insert(name.to_string()) {
            self.poisoned.insert(name.to_string());
        }
        match value {
            Some(c) if !self.poisoned.contains(name) => {
                self.consts.insert(name.to_string(), c);
            }
            _ => {
                self.consts.remove(name);
            }
        }
    }

    /// `ns.attr` targets: constant while assigned once, like names.
    fn bind_path(&mut self, path: &str, value: Option<Const>) {
        if !self.bound.insert(path.to_string()) {
            self.poisoned.insert(path.to_string());
        }
        match value {
            Some(c) if !self.poisoned.contains(path) => {
                self.consts.insert(path.to_string(), c);
            }
            _ => {
                self.consts.remove(path);
            }
        }
    }

    /// Remembers that `key` (a name or `ns.attr`) holds fragments or a built string, or
    /// is an alias of a Python object.
    fn taint(&mut self, key: &str, v: &Val) {
        if v.frag {
            self.frag_names.insert(key.to_string());
        }
        if v.built {
            self.built_names.insert(key.to_string());
        }
        if v.free.is_none() && v.attr.is_none() && v.c.is_none() {
            if let Some(n) = &v.name {
                if OBJECT_GLOBALS.contains(&n.as_str()) || self.object_aliases.contains(n) {
                    self.object_aliases.insert(key.to_string());
                }
            }
        }
    }

    fn is_object(&self, v: &Val) -> bool {
        v.attr.is_none()
            && v.c.is_none()
            && v.name.as_ref().is_some_and(|n| {
                OBJECT_GLOBALS.contains(&n.as_str()) || self.object_aliases.contains(n)
            })
    }

    fn parse(&mut self, at: usize, toks: &[Token]) -> Vec<Val> {
        let mut p = P {
            an: self,
            toks,
            i: 0,
            depth: 0,
        };
        p.rest(at)
    }
}

/// Position of the first token matching `f` outside brackets.
fn depth0_position(toks: &[Token], f: impl Fn(&Token) -> bool) -> Option<usize> {
    let mut depth = 0i32;
    for (k, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::Op("(") | Tok::Op("[") | Tok::Op("{") => depth = depth.saturating_add(1),
            Tok::Op(")") | Tok::Op("]") | Tok::Op("}") => depth = depth.saturating_sub(1),
            _ if depth == 0 && f(t) => return Some(k),
            _ => {}
        }
    }
    None
}

/// Keywords that separate expressions inside tags (`for x in y recursive`, `import a as b`).
const SEPARATOR_NAMES: &[&str] = &[
    "in",
    "as",
    "recursive",
    "if",
    "else",
    "import",
    "with",
    "without",
    "context",
    "ignore",
    "missing",
    "only",
    "scoped",
    "required",
];

/// The expression parser, over one code segment's tokens.
struct P<'t, 'a, 's> {
    an: &'a mut An<'s>,
    toks: &'t [Token],
    i: usize,
    depth: u32,
}

impl P<'_, '_, '_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn peek2(&self) -> Option<&Tok> {
        self.toks.get(self.i.saturating_add(1)).map(|t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.toks
            .get(self.i)
            .or_else(|| self.toks.last())
            .map(|t| t.start)
            .unwrap_or(self.an.seg.0)
    }

    fn prev_end(&self) -> usize {
        self.toks
            .get(self.i.wrapping_sub(1))
            .map(|t| t.end)
            .unwrap_or(self.an.seg.0)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn is_name(&self, n: &str) -> bool {
        matches!(self.peek(), Some(Tok::Name(x)) if x == n)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        let yes = self.is_op(op);
        if yes {
            self.i = self.i.saturating_add(1);
        }
        yes
    }

    fn eat_name(&mut self, n: &str) -> bool {
        let yes = self.is_name(n);
        if yes {
            self.i = self.i.saturating_add(1);
        }
        yes
    }

    fn expect_op(&mut self, op: &'static str) -> PResult<()> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err((self.pos(), "unexpected token"))
        }
    }

    /// Parses everything left as a sequence of expressions, recovering from errors so
    /// that every token is looked at.
    fn rest(&mut self, at: usize) -> Vec<Val> {
        let mut vals = Vec::new();
        while self.i < self.toks.len() {
            let is_sep = match self.peek() {
                Some(Tok::Op(o)) => matches!(*o, "," | "=" | ":" | ";"),
                Some(Tok::Name(n)) => SEPARATOR_NAMES.contains(&n.as_str()),
                _ => false,
            };
            if is_sep {
                self.i = self.i.saturating_add(1);
                continue;
            }
            let before = self.i;
            self.depth = 0;
            match self.expr() {
                Ok(v) => vals.push(v),
                Err((pos, msg)) => {
                    self.an.syntax(pos.max(at), msg);
                    if self.i == before {
                        self.i = self.i.saturating_add(1);
                    }
                }
            }
        }
        vals
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth = self.depth.saturating_add(1);
        if self.depth > MAX_DEPTH {
            return Err((self.pos(), "expression nested too deeply"));
        }
        Ok(())
    }

    fn expr(&mut self) -> PResult<Val> {
        self.enter()?;
        let r = self.condexpr();
        self.depth = self.depth.saturating_sub(1);
        r
    }

    fn span(&self, start: usize) -> Val {
        Val {
            start,
            end: self.prev_end(),
            ..Val::default()
        }
    }

    fn condexpr(&mut self) -> PResult<Val> {
        let mut v = self.or()?;
        while self.eat_name("if") {
            self.or()?;
            if self.eat_name("else") {
                self.expr()?;
            }
            v = self.span(v.start);
        }
        Ok(v)
    }

    fn or(&mut self) -> PResult<Val> {
        let mut v = self.and()?;
        while self.eat_name("or") {
            self.and()?;
            v = self.span(v.start);
        }
        Ok(v)
    }

    fn and(&mut self) -> PResult<Val> {
        let mut v = self.not()?;
        while self.eat_name("and") {
            self.not()?;
            v = self.span(v.start);
        }
        Ok(v)
    }

    fn not(&mut self) -> PResult<Val> {
        if self.is_name("not") {
            let start = self.pos();
            self.i = self.i.saturating_add(1);
            self.enter()?;
            self.not()?;
            self.depth = self.depth.saturating_sub(1);
            return Ok(self.span(start));
        }
        self.compare()
    }

    fn compare(&mut self) -> PResult<Val> {
        let mut v = self.math1()?;
        loop {
            let cmp = matches!(
                self.peek(),
                Some(Tok::Op("==" | "!=" | ">" | ">=" | "<" | "<="))
            ) || self.is_name("in");
            if cmp {
                self.i = self.i.saturating_add(1);
            } else if self.is_name("not") && matches!(self.peek2(), Some(Tok::Name(n)) if n == "in")
            {
                self.i = self.i.saturating_add(2);
            } else {
                break;
            }
            self.math1()?;
            v = self.span(v.start);
        }
        Ok(v)
    }

    fn math1(&mut self) -> PResult<Val> {
        let mut v = self.concat()?;
        loop {
            let op = if self.eat_op("+") {
                "+"
            } else if self.eat_op("-") {
                "-"
            } else {
                break;
            };
            let r = self.concat()?;
            v = self.binary(op, v, r);
        }
        Ok(v)
    }

    fn concat(&mut self) -> PResult<Val> {
        let mut v = self.math2()?;
        while self.eat_op("~") {
            let r = self.math2()?;
            v = self.binary("~", v, r);
        }
        Ok(v)
    }

    fn math2(&mut self) -> PResult<Val> {
        let mut v = self.pow()?;
        while let Some(Tok::Op(op @ ("*" | "/" | "//" | "%"))) = self.peek() {
            let op = *op;
            self.i = self.i.saturating_add(1);
            let r = self.pow()?;
            v = self.binary(op, v, r);
        }
        Ok(v)
    }

    fn pow(&mut self) -> PResult<Val> {
        let mut v = self.unary()?;
        while self.eat_op("**") {
            let r = self.unary()?;
            v = self.binary("**", v, r);
        }
        Ok(v)
    }

    fn unary(&mut self) -> PResult<Val> {
        if self.is_op("-") || self.is_op("+") {
            let neg = self.is_op("-");
            let start = self.pos();
            self.i = self.i.saturating_add(1);
            self.enter()?;
            let inner = self.unary()?;
            self.depth = self.depth.saturating_sub(1);
            let mut v = self.span(start);
            if let Some(Const::Int(n)) = inner.c {
                v.c = if neg {
                    n.checked_neg().map(Const::Int)
                } else {
                    Some(Const::Int(n))
                };
            }
            return Ok(v);
        }
        let v = self.primary()?;
        if let Some(n) = v.free.clone() {
            let called = self.is_op("(");
            if !(called && DANGEROUS_FUNCTIONS.contains(&n.as_str())) {
                self.free_name(&n, v.start);
            }
        }
        self.postfix(v)
    }

    fn free_name(&mut self, n: &str, pos: usize) {
        if SUSPICIOUS_GLOBALS.contains(&n) {
            self.an.issue(
                &SUSPICIOUS_GLOBAL,
                Severity::High,
                n.to_string(),
                format!("Jinja/Flask global `{n}` (a stepping stone to Python globals)"),
                pos,
            );
        } else if DANGEROUS_NAMES.contains(&n) {
            self.an.issue(
                &SUSPICIOUS_GLOBAL,
                Severity::High,
                n.to_string(),
                format!("reference to `{n}`"),
                pos,
            );
        }
    }

    fn primary(&mut self) -> PResult<Val> {
        let Some(t) = self.toks.get(self.i) else {
            return Err((self.pos(), "expression expected"));
        };
        let start = t.start;
        match &t.tok {
            Tok::Name(n) => {
                let n = n.clone();
                if matches!(
                    n.as_str(),
                    "and" | "or" | "not" | "in" | "is" | "if" | "else"
                ) {
                    return Err((start, "unexpected keyword"));
                }
                self.i = self.i.saturating_add(1);
                let mut v = self.span(start);
                if matches!(
                    n.as_str(),
                    "true" | "false" | "none" | "True" | "False" | "None"
                ) {
                    return Ok(v);
                }
                v.c = self.an.consts.get(&n).cloned();
                v.folded = v.c.is_some();
                if let Some(Const::Str(s)) = &v.c {
                    v.frag = is_fragment(s);
                }
                v.frag |= self.an.frag_names.contains(&n);
                v.built = self.an.built_names.contains(&n);
                if !self.an.defined.contains(&n) {
                    v.free = Some(n.clone());
                }
                v.name = Some(n);
                Ok(v)
            }
            Tok::Str(_) => {
                let mut s = String::new();
                let mut count = 0usize;
                while let Some(Tok::Str(part)) = self.peek() {
                    if s.len() < FOLD_CAP * 4 {
                        s.push_str(part);
                    }
                    count = count.saturating_add(1);
                    self.i = self.i.saturating_add(1);
                }
                let mut v = self.span(start);
                v.frag = is_fragment(&s);
                v.c = Some(Const::Str(s));
                v.folded = count > 1;
                self.note_folded(&v);
                Ok(v)
            }
            Tok::Int(n) => {
                let n = *n;
                self.i = self.i.saturating_add(1);
                let mut v = self.span(start);
                v.c = n.map(Const::Int);
                Ok(v)
            }
            Tok::Float => {
                self.i = self.i.saturating_add(1);
                Ok(self.span(start))
            }
            Tok::Op("(") => {
                self.i = self.i.saturating_add(1);
                if self.eat_op(")") {
                    let mut v = self.span(start);
                    v.c = Some(Const::List(Vec::new()));
                    v.tuple = true;
                    return Ok(v);
                }
                let first = self.expr()?;
                if self.is_op(",") {
                    let mut items = vec![first];
                    while self.eat_op(",") {
                        if self.is_op(")") {
                            break;
                        }
                        items.push(self.expr()?);
                    }
                    self.expect_op(")")?;
                    let mut v = self.span(start);
                    v.c = const_list(&items);
                    v.tuple = true;
                    return Ok(v);
                }
                self.expect_op(")")?;
                let mut v = first;
                v.start = start;
                v.end = self.prev_end();
                v.free = None;
                Ok(v)
            }
            Tok::Op("[") => {
                self.i = self.i.saturating_add(1);
                let mut items = Vec::new();
                while !self.is_op("]") {
                    items.push(self.expr()?);
                    if !self.eat_op(",") {
                        break;
                    }
                }
                self.expect_op("]")?;
                let mut v = self.span(start);
                v.c = const_list(&items);
                Ok(v)
            }
            Tok::Op("{") => {
                self.i = self.i.saturating_add(1);
                while !self.is_op("}") {
                    self.expr()?;
                    self.expect_op(":")?;
                    self.expr()?;
                    if !self.eat_op(",") {
                        break;
                    }
                }
                self.expect_op("}")?;
                Ok(self.span(start))
            }
            _ => Err((start, "unexpected token")),
        }
    }

    /// `.name`, `[key]`, `(args)`, `|filter`, `is test`, in any order. Jinja allows only
    /// some orders; accepting more means nothing is skipped.
    fn postfix(&mut self, mut v: Val) -> PResult<Val> {
        loop {
            match self.peek() {
                Some(Tok::Op(".")) => {
                    self.i = self.i.saturating_add(1);
                    let t = self.toks.get(self.i).cloned();
                    match t.map(|t| (t.tok, t.start)) {
                        Some((Tok::Name(n), at)) => {
                            self.i = self.i.saturating_add(1);
                            self.check_member(&n, "attribute", at);
                            let path = v.name.as_ref().map(|b| format!("{b}.{n}"));
                            let recv_built = v.built && v.c.is_none();
                            let recv = v.c.take();
                            v = Val {
                                attr: Some(n),
                                recv,
                                recv_built,
                                ..self.span(v.start)
                            };
                            if let Some(path) = path {
                                if let Some(c) = self.an.consts.get(&path) {
                                    v.c = Some(c.clone());
                                    v.folded = true;
                                }
                                v.frag = self.an.frag_names.contains(&path);
                                v.built = self.an.built_names.contains(&path);
                            }
                        }
                        Some((Tok::Int(k), _)) => {
                            self.i = self.i.saturating_add(1);
                            let recv = v.c.take();
                            v = self.span(v.start);
                            if let (Some(c), Some(k)) = (recv, k) {
                                v.c = index(&c, k);
                            }
                        }
                        _ => return Err((self.pos(), "attribute name expected after `.`")),
                    }
                }
                Some(Tok::Op("[")) => {
                    self.i = self.i.saturating_add(1);
                    v = self.subscript(v)?;
                }
                Some(Tok::Op("(")) => {
                    self.i = self.i.saturating_add(1);
                    v = self.call(v)?;
                }
                Some(Tok::Op("|")) => {
                    self.i = self.i.saturating_add(1);
                    v = self.filter(v)?;
                }
                Some(Tok::Name(n)) if n == "is" => {
                    self.i = self.i.saturating_add(1);
                    self.eat_name("not");
                    self.dotted_name()?;
                    if self.is_op("(") {
                        self.i = self.i.saturating_add(1);
                        self.args()?;
                    } else if self.test_arg_follows() {
                        self.enter()?;
                        let a = self.primary()?;
                        self.postfix(a)?;
                        self.depth = self.depth.saturating_sub(1);
                    }
                    v = self.span(v.start);
                }
                _ => return Ok(v),
            }
        }
    }

    fn test_arg_follows(&self) -> bool {
        match self.peek() {
            Some(Tok::Name(n)) => !matches!(
                n.as_str(),
                "else" | "or" | "and" | "if" | "in" | "is" | "not"
            ),
            Some(Tok::Str(_) | Tok::Int(_) | Tok::Float) => true,
            Some(Tok::Op(o)) => matches!(*o, "(" | "[" | "{"),
            None => false,
        }
    }

    fn dotted_name(&mut self) -> PResult<String> {
        let mut name = match self.peek() {
            Some(Tok::Name(n)) => n.clone(),
            _ => return Err((self.pos(), "name expected")),
        };
        self.i = self.i.saturating_add(1);
        while self.is_op(".") && matches!(self.peek2(), Some(Tok::Name(_))) {
            if let Some(Tok::Name(n)) = self.peek2() {
                name.push('.');
                name.push_str(n);
            }
            self.i = self.i.saturating_add(2);
        }
        Ok(name)
    }

    fn subscript(&mut self, v: Val) -> PResult<Val> {
        let key_at = self.pos();
        let mut parts: Vec<Option<Val>> = Vec::new();
        let mut slice = false;
        let mut cur: Option<Val> = None;
        let mut ncolon = 0;
        loop {
            if self.eat_op("]") {
                parts.push(cur.take());
                break;
            }
            if self.eat_op(":") {
                slice = true;
                ncolon += 1;
                parts.push(cur.take());
                continue;
            }
            if self.eat_op(",") {
                parts.push(cur.take());
                slice = true; // a tuple index: not foldable
                ncolon = 9;
                continue;
            }
            if cur.is_some() {
                return Err((self.pos(), "`]` expected"));
            }
            cur = Some(self.expr()?);
        }
        let mut out = self.span(v.start);
        if !slice {
            let key = parts.into_iter().next().flatten();
            let Some(key) = key else {
                return Err((key_at, "empty subscript"));
            };
            match &key.c {
                Some(Const::Str(s)) => {
                    let s = s.clone();
                    self.check_member(&s, "subscript", key_at);
                    if key.folded {
                        self.note_folded(&key);
                    }
                    out.attr = Some(s);
                }
                Some(Const::Int(k)) => {
                    if let Some(c) = &v.c {
                        out.c = index(c, *k);
                    }
                }
                _ => {
                    if key.frag || key.built {
                        self.an.issue(
                            &OBFUSCATED,
                            Severity::High,
                            "runtime-key".into(),
                            if key.frag {
                                "subscript key assembled at run time from dunder fragments".into()
                            } else {
                                "subscript key assembled at run time".into()
                            },
                            key_at,
                        );
                    }
                    // `''[k]`, `()[k]`, `range[k]`: Jinja's getitem falls back to
                    // getattr, so a computed key on a bare object is attribute access.
                    let empty_literal = matches!(&v.c, Some(Const::Str(s)) if s.is_empty())
                        || matches!(&v.c, Some(Const::List(l)) if l.is_empty());
                    if empty_literal || self.an.is_object(&v) {
                        self.an.issue(
                            &OBFUSCATED,
                            Severity::High,
                            "object-key".into(),
                            "computed subscript on a literal or a Python object (attribute access)"
                                .into(),
                            key_at,
                        );
                    }
                }
            }
        } else if ncolon <= 2 {
            let int = |p: &Option<Val>| -> Result<Option<i64>, ()> {
                match p {
                    None => Ok(None),
                    Some(Val {
                        c: Some(Const::Int(n)),
                        ..
                    }) => Ok(Some(*n)),
                    Some(_) => Err(()),
                }
            };
            let get = |k: usize| parts.get(k).cloned().flatten();
            if let (Some(c), Ok(a), Ok(b), Ok(st)) =
                (&v.c, int(&get(0)), int(&get(1)), int(&get(2)))
            {
                out.c = slice_const(c, a, b, st);
                out.folded = true;
                self.note_folded(&out);
            }
        }
        Ok(out)
    }

    /// Parses call arguments after `(`: positional values and keyword names.
    fn args(&mut self) -> PResult<Args> {
        let mut pos = Vec::new();
        let mut kw = Vec::new();
        while !self.is_op(")") {
            if self.eat_op("**") || self.eat_op("*") {
                pos.push(self.expr()?);
            } else if matches!(self.peek(), Some(Tok::Name(_)))
                && matches!(self.peek2(), Some(Tok::Op("=")))
            {
                let name = match self.peek() {
                    Some(Tok::Name(n)) => n.clone(),
                    _ => String::new(),
                };
                self.i = self.i.saturating_add(2);
                let v = self.expr()?;
                kw.push((name, v));
            } else {
                pos.push(self.expr()?);
            }
            if !self.eat_op(",") {
                break;
            }
        }
        self.expect_op(")")?;
        Ok((pos, kw))
    }

    fn call(&mut self, callee: Val) -> PResult<Val> {
        let at = callee.start;
        let (args, kwargs) = self.args()?;
        let mut out = self.span(callee.start);
        out.frag = args.iter().any(|a| a.frag) || kwargs.iter().any(|(_, a)| a.frag);
        if let Some(n) = &callee.free {
            if DANGEROUS_FUNCTIONS.contains(&n.as_str()) {
                self.an
                    .critical(&format!("call:{n}"), format!("call of `{n}(...)`"), at);
            }
        }
        if let Some(m) = callee.name.as_ref().and_then(|n| self.an.macros.get(n)) {
            out.c = Some(Const::Str(m.clone()));
            out.frag = is_fragment(m);
            out.folded = true;
        }
        if let Some(a) = &callee.attr {
            if DANGEROUS_CALLS.contains(&a.as_str()) {
                self.an
                    .critical(&format!("call:{a}"), format!("call of `.{a}(...)`"), at);
            }
            if let Some(recv) = &callee.recv {
                out.c = fold_method(recv, a, &args, &kwargs);
                if a == "format" || a == "format_map" {
                    self.format_fields(recv, at);
                }
                if out.c.is_some() {
                    out.folded = true;
                    self.note_folded(&out);
                }
            }
            if (a == "format" || a == "format_map") && callee.recv_built {
                // `('{0.' ~ k ~ '}').format(x)`: fields that cannot be read statically.
                self.an.issue(
                    &OBFUSCATED,
                    Severity::High,
                    "dynamic-format".into(),
                    "`str.format` on a format string assembled at run time".into(),
                    at,
                );
            }
            if a == "format_map" {
                self.an.issue(
                    &INTERNALS,
                    Severity::High,
                    "format_map".into(),
                    "`str.format_map` call (sandbox escape primitive)".into(),
                    at,
                );
            }
        }
        Ok(out)
    }

    /// `'{0.__class__}'.format(x)`: replacement fields that walk attributes.
    fn format_fields(&mut self, recv: &Const, at: usize) {
        let Some(s) = recv.as_str() else { return };
        for field in format_field_names(s) {
            if field.contains('.') || field.contains('[') {
                self.an.issue(
                    &INTERNALS,
                    Severity::High,
                    format!("fmt:{field}"),
                    format!("format string field `{{{field}}}` walks attributes (str.format sandbox escape)"),
                    at,
                );
            }
        }
    }

    fn filter(&mut self, recv: Val) -> PResult<Val> {
        let at = self.pos();
        let name = self.dotted_name()?;
        let (args, kwargs) = if self.eat_op("(") {
            self.args()?
        } else {
            (Vec::new(), Vec::new())
        };
        let mut out = self.span(recv.start);
        self.apply_filter(&recv, &name, &args, &kwargs, at, &mut out);
        Ok(out)
    }

    /// `{% filter a|b(x) %}`: a chain of filters with an implicit receiver.
    fn filter_chain(&mut self, recv: Val, first: bool) -> PResult<Val> {
        let mut v = recv;
        let mut need = first;
        while need || self.eat_op("|") {
            need = false;
            v = self.filter(v)?;
        }
        Ok(v)
    }

    fn apply_filter(
        &mut self,
        recv: &Val,
        name: &str,
        args: &[Val],
        kwargs: &[(String, Val)],
        at: usize,
        out: &mut Val,
    ) {
        let arg0 = args.first();
        match name {
            "attr" => {
                match arg0.and_then(Val::str) {
                    Some(a) => {
                        let a = a.to_string();
                        if let Some(v) = arg0 {
                            if v.folded {
                                self.note_folded(v);
                            }
                        }
                        self.check_member(&a, "|attr", at);
                        if a == "format" || a == "format_map" {
                            self.an.critical(
                            "attr-format",
                            format!("`|attr('{a}')` (sandbox escape, CVE-2024-56326 / CVE-2025-27516)"),
                            at,
                        );
                        }
                        out.attr = Some(a);
                        out.recv = recv.c.clone();
                    }
                    None => {
                        self.an.issue(
                            &OBFUSCATED,
                            Severity::High,
                            "dynamic-attr".into(),
                            "`|attr(...)` with an attribute name computed at run time".into(),
                            at,
                        );
                    }
                }
            }
            "map" | "select" | "reject" => {
                // map('attr', 'x') applies the attr filter to each item.
                if let Some(f) = arg0 {
                    match f.str() {
                        Some("attr") => match args.get(1).and_then(Val::str) {
                            Some(a) => {
                                let a = a.to_string();
                                self.check_member(&a, "|map('attr')", at);
                            }
                            None => self.an.issue(
                                &OBFUSCATED,
                                Severity::High,
                                "dynamic-attr".into(),
                                "`|map('attr', ...)` with a computed attribute name".into(),
                                at,
                            ),
                        },
                        Some(_) => {}
                        None if name == "map" => self.an.issue(
                            &OBFUSCATED,
                            Severity::High,
                            "dynamic-filter".into(),
                            "`|map(...)` with a filter name computed at run time".into(),
                            at,
                        ),
                        None => {}
                    }
                }
                self.attribute_kwargs(kwargs, at);
            }
            "selectattr" | "rejectattr" | "groupby" => {
                if let Some(a) = arg0.and_then(Val::str) {
                    let a = a.to_string();
                    for part in a.split('.') {
                        self.check_member(part, "attribute filter", at);
                    }
                }
                self.attribute_kwargs(kwargs, at);
            }
            "sort" | "unique" | "min" | "max" | "sum" | "dictsort" => {
                self.attribute_kwargs(kwargs, at)
            }
            "format" => {
                if let Some(fmt) = recv.str() {
                    if fmt.contains("%c") {
                        self.an.issue(
                            &OBFUSCATED,
                            Severity::High,
                            "percent-c".into(),
                            "`%c` formatting builds characters from numbers".into(),
                            at,
                        );
                    }
                    let items: Option<Vec<Const>> = args.iter().map(|a| a.c.clone()).collect();
                    if let Some(items) = items {
                        out.c = percent_format(fmt, &items).map(Const::Str);
                    }
                }
            }
            _ if kwargs.is_empty() => {
                out.c = recv.c.as_ref().and_then(|c| fold_filter(c, name, args));
            }
            _ => {}
        }
        out.frag = recv.frag || args.iter().any(|a| a.frag);
        if matches!(name, "join" | "format" | "replace")
            || (recv.built && matches!(name, "lower" | "upper" | "reverse" | "string" | "trim"))
        {
            out.built = true;
        }
        if self.an.is_object(recv)
            && matches!(
                name,
                "string"
                    | "pprint"
                    | "e"
                    | "escape"
                    | "safe"
                    | "list"
                    | "join"
                    | "format"
                    | "trim"
                    | "lower"
                    | "upper"
                    | "first"
                    | "last"
                    | "reverse"
                    | "center"
                    | "urlencode"
            )
        {
            self.stringified(at);
        }
        if out.c.is_some() {
            out.folded = true;
            self.note_folded(out);
        }
    }

    fn attribute_kwargs(&mut self, kwargs: &[(String, Val)], at: usize) {
        for (k, v) in kwargs {
            if k == "attribute" {
                match v.str() {
                    Some(a) => {
                        let a = a.to_string();
                        for part in a.split('.') {
                            self.check_member(part, "attribute=", at);
                        }
                    }
                    None => self.an.issue(
                        &OBFUSCATED,
                        Severity::High,
                        "dynamic-attr".into(),
                        "`attribute=` computed at run time".into(),
                        at,
                    ),
                }
            }
        }
    }

    fn binary(&mut self, op: &str, a: Val, b: Val) -> Val {
        let mut v = Val {
            start: a.start,
            end: b.end.max(self.prev_end()),
            ..Val::default()
        };
        v.frag = a.frag || b.frag;
        if matches!(op, "~" | "+") && (self.an.is_object(&a) || self.an.is_object(&b)) {
            self.stringified(a.start);
        }
        let has_str = |x: &Val| matches!(x.c, Some(Const::Str(_))) || x.built;
        v.built = op == "~" || (op == "+" && (has_str(&a) || has_str(&b)));
        v.c = match (op, &a.c, &b.c) {
            ("~", Some(x), Some(y)) => match (x.to_text(), y.to_text()) {
                (Some(x), Some(y)) => cap(x + &y),
                _ => None,
            },
            ("+", Some(Const::Str(x)), Some(Const::Str(y))) => cap(format!("{x}{y}")),
            ("+", Some(Const::Int(x)), Some(Const::Int(y))) => x.checked_add(*y).map(Const::Int),
            ("+", Some(Const::List(x)), Some(Const::List(y))) => (x.len().saturating_add(y.len())
                <= FOLD_CAP)
                .then(|| Const::List(x.iter().chain(y).cloned().collect())),
            ("-", Some(Const::Int(x)), Some(Const::Int(y))) => x.checked_sub(*y).map(Const::Int),
            ("*", Some(Const::Str(s)), Some(Const::Int(n)))
            | ("*", Some(Const::Int(n)), Some(Const::Str(s))) => repeat(s, *n),
            ("*", Some(Const::Int(x)), Some(Const::Int(y))) => x.checked_mul(*y).map(Const::Int),
            ("//", Some(Const::Int(x)), Some(Const::Int(y))) => py_floordiv(*x, *y).map(Const::Int),
            ("**", Some(Const::Int(x)), Some(Const::Int(y))) => u32::try_from(*y)
                .ok()
                .and_then(|e| x.checked_pow(e))
                .map(Const::Int),
            ("%", Some(Const::Str(f)), Some(arg)) => {
                if f.contains("%c") {
                    self.an.issue(
                        &OBFUSCATED,
                        Severity::High,
                        "percent-c".into(),
                        "`%c` formatting builds characters from numbers".into(),
                        a.start,
                    );
                }
                let items = match arg {
                    Const::List(items) if b.tuple => items.clone(),
                    Const::List(_) => return v,
                    other => vec![other.clone()],
                };
                percent_format(f, &items).map(Const::Str)
            }
            ("%", Some(Const::Int(x)), Some(Const::Int(y))) => py_floordiv(*x, *y)
                .and_then(|q| q.checked_mul(*y))
                .and_then(|m| x.checked_sub(m))
                .map(Const::Int),
            _ => None,
        };
        if v.c.is_some() {
            v.folded = true;
            self.note_folded(&v);
        }
        v
    }

    /// `raise_exception|string`, `range ~ ''`: the string form of a Python object, whose
    /// characters (`<function raise_exception at ...>`) spell names without literals.
    fn stringified(&mut self, at: usize) {
        self.an.issue(
            &OBFUSCATED,
            Severity::High,
            "stringified-object".into(),
            "string form of a Python object (a source of characters for building names)".into(),
            at,
        );
    }

    /// A folded constant that spells a dunder is as bad as the dunder itself.
    fn note_folded(&mut self, v: &Val) {
        if !v.folded {
            return;
        }
        if let Some(Const::Str(s)) = &v.c {
            if let Some(d) = internal_dunder_in(s) {
                let d = d.to_string();
                let src = slice_chars(self.an.src, v.start, v.end);
                self.an.critical(
                    &d,
                    format!("`{}` builds {:?}", clip(src.trim(), 100), clip(s, 60)),
                    v.start,
                );
            }
        }
    }

    /// An attribute or subscript name.
    fn check_member(&mut self, name: &str, how: &str, at: usize) {
        let shown = match how {
            "attribute" => format!(".{name}"),
            "subscript" => format!("[{name:?}]"),
            _ => format!("{how}({name:?})"),
        };
        if is_dunder(name) || is_mangled(name) {
            self.an
                .critical(name, format!("`{shown}` reaches Python internals"), at);
        } else if name.starts_with('_') {
            self.an.issue(
                &INTERNALS,
                Severity::High,
                name.to_string(),
                format!("private attribute `{shown}`"),
                at,
            );
        } else if DANGEROUS_MEMBERS.contains(&name) {
            self.an.critical(name, format!("`{shown}`"), at);
        }
    }
}

fn const_list(items: &[Val]) -> Option<Const> {
    if items.len() > FOLD_CAP {
        return None;
    }
    items
        .iter()
        .map(|v| match &v.c {
            Some(c @ (Const::Str(_) | Const::Int(_))) => Some(c.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .map(Const::List)
}

/// Python's `//` (rounds towards negative infinity).
fn py_floordiv(x: i64, y: i64) -> Option<i64> {
    let q = x.checked_div(y)?;
    let r = x.checked_rem(y)?;
    if r != 0 && ((r < 0) != (y < 0)) {
        q.checked_sub(1)
    } else {
        Some(q)
    }
}

fn cap(s: String) -> Option<Const> {
    (s.len() <= FOLD_CAP).then_some(Const::Str(s))
}

fn repeat(s: &str, n: i64) -> Option<Const> {
    let n = usize::try_from(n.max(0)).ok()?;
    if s.len().checked_mul(n)? > FOLD_CAP {
        return None;
    }
    Some(Const::Str(s.repeat(n)))
}

fn index(c: &Const, k: i64) -> Option<Const> {
    match c {
        Const::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let i = norm_index(k, chars.len())?;
            chars.get(i).map(|ch| Const::Str(ch.to_string()))
        }
        Const::List(items) => {
            let i = norm_index(k, items.len())?;
            items.get(i).cloned()
        }
        Const::Int(_) => None,
    }
}

fn norm_index(k: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if k < 0 { k.checked_add(len)? } else { k };
    (0..len)
        .contains(&i)
        .then(|| usize::try_from(i).ok())
        .flatten()
}

/// Python slicing of a string or list.
fn slice_const(c: &Const, a: Option<i64>, b: Option<i64>, step: Option<i64>) -> Option<Const> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return None;
    }
    let pick = |len: usize| -> Option<Vec<usize>> {
        let n = i64::try_from(len).ok()?;
        let clamp = |x: i64, lo: i64, hi: i64| x.max(lo).min(hi);
        let fix = |x: Option<i64>, dflt: i64, lo: i64, hi: i64| match x {
            None => dflt,
            Some(v) if v < 0 => clamp(v.saturating_add(n), lo, hi),
            Some(v) => clamp(v, lo, hi),
        };
        let mut out = Vec::new();
        if step > 0 {
            let (mut i, e) = (fix(a, 0, 0, n), fix(b, n, 0, n));
            while i < e {
                out.push(usize::try_from(i).ok()?);
                i = i.checked_add(step)?;
            }
        } else {
            let (mut i, e) = (
                fix(a, n.saturating_sub(1), -1, n.saturating_sub(1)),
                fix(b, -1, -1, n.saturating_sub(1)),
            );
            while i > e {
                out.push(usize::try_from(i).ok()?);
                i = i.checked_add(step)?;
            }
        }
        Some(out)
    };
    match c {
        Const::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let idx = pick(chars.len())?;
            Some(Const::Str(
                idx.iter().filter_map(|&i| chars.get(i)).collect(),
            ))
        }
        Const::List(items) => {
            let idx = pick(items.len())?;
            Some(Const::List(
                idx.iter().filter_map(|&i| items.get(i).cloned()).collect(),
            ))
        }
        Const::Int(_) => None,
    }
}

fn fold_filter(c: &Const, name: &str, args: &[Val]) -> Option<Const> {
    let arg = |k: usize| args.get(k).and_then(|a| a.c.clone());
    match (name, c) {
        ("join", Const::List(items)) => {
            let sep = match arg(0) {
                Some(Const::Str(s)) => s,
                None => String::new(),
                _ => return None,
            };
            let parts: Option<Vec<String>> = items.iter().map(Const::to_text).collect();
            cap(parts?.join(&sep))
        }
        ("join", Const::Str(s)) => {
            let sep = match arg(0) {
                Some(Const::Str(x)) => x,
                None => String::new(),
                _ => return None,
            };
            let v: Vec<String> = s.chars().map(String::from).collect();
            cap(v.join(&sep))
        }
        ("reverse", Const::Str(s)) => Some(Const::Str(s.chars().rev().collect())),
        ("reverse", Const::List(items)) => Some(Const::List(items.iter().rev().cloned().collect())),
        ("list", Const::Str(s)) => Some(Const::List(
            s.chars().map(|c| Const::Str(c.to_string())).collect(),
        )),
        ("list", Const::List(items)) => Some(Const::List(items.clone())),
        ("first", _) => index(c, 0),
        ("last", _) => index(c, -1),
        ("lower", Const::Str(s)) => Some(Const::Str(s.to_lowercase())),
        ("upper", Const::Str(s)) => Some(Const::Str(s.to_uppercase())),
        ("trim", Const::Str(s)) => match arg(0) {
            None => Some(Const::Str(py_strip(s, None))),
            Some(Const::Str(chars)) => Some(Const::Str(py_strip(s, Some(&chars)))),
            _ => None,
        },
        ("string" | "safe" | "default" | "d", Const::Str(s)) => Some(Const::Str(s.clone())),
        ("e" | "escape", Const::Str(s)) if !s.contains(['&', '<', '>', '\'', '"']) => {
            Some(Const::Str(s.clone()))
        }
        ("string", Const::Int(i)) => Some(Const::Str(i.to_string())),
        ("replace", Const::Str(s)) if args.len() == 2 => match (arg(0), arg(1)) {
            (Some(Const::Str(a)), Some(Const::Str(b))) if !a.is_empty() => cap(s.replace(&a, &b)),
            _ => None,
        },
        ("int", Const::Str(s)) => s.trim().parse().ok().map(Const::Int),
        ("int", Const::Int(i)) => Some(Const::Int(*i)),
        _ => None,
    }
}

/// Python `str.strip([chars])`.
fn py_strip(s: &str, chars: Option<&str>) -> String {
    py_strip_side(&py_strip_side(s, chars, true), chars, false)
}

fn py_strip_side(s: &str, chars: Option<&str>, left: bool) -> String {
    let pred = |c: char| match chars {
        None => c.is_whitespace(),
        Some(set) => set.contains(c),
    };
    if left {
        s.trim_start_matches(pred).to_string()
    } else {
        s.trim_end_matches(pred).to_string()
    }
}

fn fold_method(
    recv: &Const,
    method: &str,
    args: &[Val],
    kwargs: &[(String, Val)],
) -> Option<Const> {
    let s = recv.as_str();
    let arg = |k: usize| args.get(k).and_then(|a| a.c.clone());
    match method {
        "format" => {
            let items: Option<Vec<Const>> = args.iter().map(|a| a.c.clone()).collect();
            let named: Option<Vec<(String, Const)>> = kwargs
                .iter()
                .map(|(k, v)| v.c.clone().map(|c| (k.clone(), c)))
                .collect();
            brace_format(s?, &items?, &named?).and_then(cap)
        }
        "join" => match arg(0)? {
            Const::List(items) => {
                let parts: Option<Vec<String>> = items.iter().map(Const::to_text).collect();
                cap(parts?.join(s?))
            }
            Const::Str(x) => cap(x.chars().map(String::from).collect::<Vec<_>>().join(s?)),
            Const::Int(_) => None,
        },
        "lower" => Some(Const::Str(s?.to_lowercase())),
        "upper" => Some(Const::Str(s?.to_uppercase())),
        "strip" | "lstrip" | "rstrip" if args.len() <= 1 => {
            let chars = match arg(0) {
                None => None,
                Some(Const::Str(c)) => Some(c),
                _ => return None,
            };
            let s = s?;
            let out = match method {
                "strip" => py_strip(s, chars.as_deref()),
                "lstrip" => py_strip_side(s, chars.as_deref(), true),
                _ => py_strip_side(s, chars.as_deref(), false),
            };
            Some(Const::Str(out))
        }
        "replace" if args.len() == 2 => match (arg(0), arg(1)) {
            (Some(Const::Str(a)), Some(Const::Str(b))) if !a.is_empty() => cap(s?.replace(&a, &b)),
            _ => None,
        },
        _ => None,
    }
}

/// Python `%` formatting with `%s %r %c %d %i %x %o %%` and literal arguments.
fn percent_format(fmt: &str, args: &[Const]) -> Option<String> {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut next = args.iter();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // flags, width, precision
        while it.peek().is_some_and(|c| "-+ #0123456789.".contains(*c)) {
            it.next();
        }
        let conv = it.next()?;
        if conv == '%' {
            out.push('%');
            continue;
        }
        let a = next.next()?;
        match (conv, a) {
            ('s', _) => out.push_str(&a.to_text()?),
            ('r' | 'a', Const::Str(s)) => out.push_str(&format!("'{s}'")),
            ('r' | 'a', Const::Int(i)) => out.push_str(&i.to_string()),
            ('c', Const::Int(i)) => out.push(char::from_u32(u32::try_from(*i).ok()?)?),
            ('c', Const::Str(s)) if s.chars().count() == 1 => out.push_str(s),
            ('d' | 'i' | 'u', Const::Int(i)) => out.push_str(&i.to_string()),
            ('x', Const::Int(i)) => out.push_str(&format!("{i:x}")),
            ('X', Const::Int(i)) => out.push_str(&format!("{i:X}")),
            ('o', Const::Int(i)) => out.push_str(&format!("{i:o}")),
            _ => return None,
        }
        if out.len() > FOLD_CAP {
            return None;
        }
    }
    if next.next().is_some() {
        return None;
    }
    Some(out)
}

/// The field names of a `str.format` string (`{0.__class__}` → `0.__class__`).
fn format_field_names(fmt: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = fmt.chars().peekable();
    while let Some(c) = it.next() {
        if c == '{' {
            if it.peek() == Some(&'{') {
                it.next();
                continue;
            }
            let mut field = String::new();
            for c in it.by_ref() {
                if c == '}' || c == '!' || c == ':' {
                    break;
                }
                field.push(c);
            }
            out.push(field);
        }
    }
    out
}

/// Python `str.format` with plain `{}`, `{0}` and `{name}` fields and literal arguments.
fn brace_format(fmt: &str, args: &[Const], named: &[(String, Const)]) -> Option<String> {
    let mut out = String::new();
    let mut auto = 0usize;
    let mut it = fmt.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '{' if it.peek() == Some(&'{') => {
                it.next();
                out.push('{');
            }
            '}' if it.peek() == Some(&'}') => {
                it.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                loop {
                    match it.next()? {
                        '}' => break,
                        c => field.push(c),
                    }
                }
                let v = if field.is_empty() {
                    let v = args.get(auto)?;
                    auto = auto.saturating_add(1);
                    v
                } else if let Ok(k) = field.parse::<usize>() {
                    args.get(k)?
                } else if field.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    &named.iter().find(|(k, _)| *k == field)?.1
                } else {
                    return None;
                };
                out.push_str(&v.to_text()?);
            }
            c => out.push(c),
        }
        if out.len() > FOLD_CAP {
            return None;
        }
    }
    Some(out)
}

fn slice_chars(s: &str, start: usize, end: usize) -> &str {
    let mut a = start.min(s.len());
    while a > 0 && !s.is_char_boundary(a) {
        a = a.saturating_sub(1);
    }
    let mut b = end.min(s.len()).max(a);
    while b < s.len() && !s.is_char_boundary(b) {
        b = b.saturating_add(1);
    }
    s.get(a..b).unwrap_or_default()
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub fn clip(s: &str, n: usize) -> String {
    // At most `n` bytes is at most `n` characters.
    if s.len() <= n {
        return s.to_string();
    }
    match s.char_indices().nth(n) {
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut.saturating_add('…'.len_utf8()));
            out.push_str(s.get(..cut).unwrap_or_default());
            out.push('…');
            out
        }
        None => s.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// Real chat templates, as published with popular models.
    pub(crate) const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    pub(crate) const LLAMA31_TOOLS: &str = r##"{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"##;

    pub(crate) const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    pub(crate) const QWEN3: &str = r##"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"##;

    pub(crate) const MISTRAL: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

    pub(crate) const MISTRAL_V3_TOOLS: &str = r##"{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"##;

    pub(crate) const GEMMA: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

    pub(crate) const GEMMA3: &str = r##"{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"##;

    pub(crate) const PHI3: &str = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

    pub(crate) const ZEPHYR: &str = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

    pub(crate) const DEEPSEEK_R1: &str = "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' in message %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls'] %}{%- if not ns.is_first %}{%- if message['content'] is none %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}{%- endif %}{%- set ns.is_first = true -%}{%- else %}{{'\\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}{%- endif %}{%- endfor %}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' not in message %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}";

    pub(crate) const HERMES_TOOLS: &str = r##"{%- macro json_to_python_type(json_spec) %}
{%- set basic_type_map = {
    "string": "str",
    "number": "float",
    "integer": "int",
    "boolean": "bool"
} %}

{%- if basic_type_map[json_spec.type] is defined %}
    {{- basic_type_map[json_spec.type] }}
{%- elif json_spec.type == "array" %}
    {{- "list[" +  json_to_python_type(json_spec|items) + "]"}}
{%- elif json_spec.type == "object" %}
    {%- if json_spec.additionalProperties is defined %}
        {{- "dict[str, " + json_to_python_type(json_spec.additionalProperties) + ']'}}
    {%- else %}
        {{- "dict" }}
    {%- endif %}
{%- elif json_spec.type is iterable %}
    {{- "Union[" }}
    {%- for t in json_spec.type %}
      {{- json_to_python_type({"type": t}) }}
      {%- if not loop.last %}
        {{- "," }}
    {%- endif %}
    {%- endfor %}
    {{- "]" }}
{%- else %}
    {{- "Any" }}
{%- endif %}
{%- endmacro %}

{{- bos_token }}
{{- '<|im_start|>system\n' }}
{{- "You are a function calling AI model. You are provided with function signatures within <tools></tools> XML tags. " }}
{{- "<tools>\n" }}
{%- for tool in tools %}
    {%- if tool.function is defined %}
        {%- set tool = tool.function %}
    {%- endif %}
    {{- '{"type": "function", "function": ' }}
    {{- '{"name": "' + tool.name + '", ' }}
    {{- '"description": "' + tool.name + '(' }}
    {%- for param_name, param_fields in tool.parameters.properties|items %}
        {{- param_name + ": " + json_to_python_type(param_fields) }}
        {%- if not loop.last %}
            {{- ", " }}
        {%- endif %}
    {%- endfor %}
    {{- ")" }}
    {%- if tool.return is defined %}
        {{- " -> " + json_to_python_type(tool.return) }}
    {%- endif %}
    {{- " - " + tool.description + "\n\n" }}
    {{- '"parameters": ' }}
    {{- tool.parameters|tojson }}
    {{- "}" }}
{%- endfor %}
{{- " </tools>" }}
{{- 'Use the following pydantic model json schema for each tool call you will make: {"properties": {"name": {"title": "Name", "type": "string"}, "arguments": {"title": "Arguments", "type": "object"}}, "required": ["name", "arguments"], "title": "FunctionCall", "type": "object"}\n' }}
{%- for message in messages %}
    {%- if message.role == "user" or message.role == "system" or (message.role == "assistant" and message.tool_calls is not defined) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
    {%- for tool_call in message.tool_calls %}
       {{- '\n<tool_call>\n' }}
           {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '{' }}
            {{- '"name": "' }}
            {{- tool_call.name }}
            {{- '"' }}
            {{- ', '}}
            {%- if tool_call.arguments is defined %}
                {{- '"arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments|tojson }}
                {%- endif %}
            {%- endif %}
             {{- '}' }}
            {{- '\n</tool_call>' }}
    {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.previtem and loop.previtem.role != "tool" %}
            {{- '<|im_start|>tool\n' }}
        {%- endif %}
        {{- '<tool_response>\n' }}
        {{- message.content }}
        {%- if not loop.last %}
            {{- '\n</tool_response>\n' }}
        {%- else %}
            {{- '\n</tool_response>' }}
        {%- endif %}
        {%- if not loop.last and loop.nextitem.role != "tool" %}
            {{- '<|im_end|>' }}
        {%- elif loop.last %}
            {{- '<|im_end|>' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"##;

    /// In the style of gpt-oss (harmony): typed-signature macros with defaults, `|items`,
    /// `.items` as a key, namespaces, `strftime_now`.
    pub(crate) const HARMONY_STYLE: &str = r##"{%- macro render_typescript_type(param_spec, required_params, is_nullable=false) -%}
    {%- if param_spec.type == "array" -%}
        {%- if param_spec['items'] -%}
            {%- if param_spec['items']['type'] == "string" -%}
                {{- "string[]" }}
            {%- else -%}
                {{- render_typescript_type(param_spec['items'], required_params) + "[]" }}
            {%- endif -%}
        {%- else -%}
            {{- "any[]" }}
        {%- endif -%}
    {%- elif param_spec.type is defined and param_spec.type is iterable and param_spec.type is not string and param_spec.type is not mapping -%}
        {%- for t in param_spec.type -%}
            {{- render_typescript_type({"type": t}, required_params) }}
            {%- if not loop.last %}{{- " | " }}{%- endif -%}
        {%- endfor -%}
    {%- elif param_spec.enum is defined -%}
        {{- param_spec.enum | map("tojson") | join(" | ") }}
    {%- elif param_spec.type == "object" and param_spec.properties is defined -%}
        {{- "{\n" }}
        {%- for prop_name, prop_spec in param_spec.properties.items() -%}
            {{- prop_name + ("?" if prop_name not in (param_spec.required or []) else "") + ": " }}
            {{- render_typescript_type(prop_spec, param_spec.required or []) }}
            {%- if not loop.last -%}{{- ",\n" }}{%- endif -%}
        {%- endfor -%}
        {{- "}" }}
    {%- else -%}
        {{- param_spec.type | default("any") }}
    {%- endif -%}
{%- endmacro -%}
{%- set ns = namespace(found_first=false, last_user_idx=-1) -%}
{%- for m in messages -%}
    {%- if m.role == "user" -%}{%- set ns.last_user_idx = loop.index0 -%}{%- endif -%}
{%- endfor -%}
{{- "<|start|>system<|message|>Knowledge cutoff: 2024-06\nCurrent date: " + strftime_now("%Y-%m-%d") + "\n\nReasoning: " + (reasoning_effort | default("medium")) + "<|end|>" }}
{%- if tools -%}
    {{- "<|start|>developer<|message|># Tools\n\nnamespace functions {\n\n" }}
    {%- for tool in tools -%}
        {%- set tool = tool.function if tool.function is defined else tool -%}
        {{- "// " + tool.description + "\ntype " + tool.name + " = (_: " }}
        {{- render_typescript_type(tool.parameters, tool.parameters.required or []) }}
        {{- ") => any;\n\n" }}
    {%- endfor -%}
    {{- "} // namespace functions<|end|>" }}
{%- endif -%}
{%- for message in messages -%}
    {%- if message.role == "assistant" and message.tool_calls is defined and message.tool_calls -%}
        {%- set tc = message.tool_calls[0].function if message.tool_calls[0].function is defined else message.tool_calls[0] -%}
        {{- "<|start|>assistant to=functions." + tc.name + "<|channel|>commentary json<|message|>" + (tc.arguments if tc.arguments is string else tc.arguments | tojson) + "<|call|>" }}
    {%- elif message.role == "tool" -%}
        {{- "<|start|>functions." + (message.name or "tool") + " to=assistant<|channel|>commentary<|message|>" + message.content + "<|end|>" }}
    {%- elif message.role == "assistant" and loop.index0 > ns.last_user_idx and message.thinking is defined -%}
        {{- "<|start|>assistant<|channel|>analysis<|message|>" + message.thinking + "<|end|>" }}
        {{- "<|start|>assistant<|channel|>final<|message|>" + message.content + "<|end|>" }}
    {%- else -%}
        {{- "<|start|>" + message.role + "<|message|>" + (message.content if message.content is string else message.content | map(attribute="text") | join("")) + "<|end|>" }}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}
"##;

    /// Multimodal content lists and a `{% generation %}` block (transformers assistant
    /// masks).
    pub(crate) const MULTIMODAL_STYLE: &str = r##"{%- for message in messages %}
{{- '<|' + message['role'] | capitalize + '|>' }}
{%- if message['content'] is string %}{{ message['content'] | trim }}
{%- else %}
  {%- for content in message['content'] | selectattr('type', 'in', ['image', 'text']) %}
    {%- if content['type'] == 'image' %}{{ '<|image|>' }}
    {%- else %}{{ content['text'] | replace('
', '
') }}{% endif %}
  {%- endfor %}
{%- endif %}
{%- if message['role'] == 'assistant' %}{% generation %}{{ eos_token }}{% endgeneration %}{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|Assistant|>' }}{% endif %}"##;

    /// Odd but valid syntax: raw blocks, generation tags, call blocks, filters blocks,
    /// tests with arguments, dict literals, string `}}` inside expressions.
    pub(crate) const SYNTAX_TOUR: &str = r##"{% raw %}{{ not code }}{% endraw %}
{%- macro render(m, sep='\n') -%}{{ m['content'] ~ sep }}{%- endmacro -%}
{% for message in messages if message.role != 'x' recursive %}
{% generation %}{{ render(message) }}{% endgeneration %}
{% if loop.index is divisibleby 2 and loop.cycle('a', 'b') is sameas 'a' %}{{ loop.previtem }}{% endif %}
{% if message.content is not none and message.content is not string %}{% continue %}{% endif %}
{% endfor %}
{% macro box() %}[{{ caller('x') }}]{% endmacro %}{% call(item) box() %}{{ item }}{% endcall %}
{% filter upper %}shout{% endfilter %}
{% set block_var %}some text{% endset %}{{ block_var }}{% set shout | upper | replace('A', 'a') %}hi{% endset %}{{ shout }}
{{ {'a': {'b': 1}} }}{{ "}}" ~ '{{' }}{{ [1, 2][0] + (3 * 4) // 2 ** 2 - -1 }}
{% with x = 1, y = 2 %}{{ x + y }}{% endwith %}
{{ messages | map(attribute='role') | join(', ') }}{{ 0x1f + 1_000 + 1.5e3 }}
{{ 'a' if true else 'b' }}{{ "%s: %d"|format('n', 3) }}{{ messages|length is odd }}
"##;

    fn ids(issues: &[Issue]) -> Vec<&'static str> {
        let mut v: Vec<_> = issues.iter().map(|i| i.rule.id).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn assert_clean(name: &str, src: &str) {
        let issues = inspect(src);
        assert!(issues.is_empty(), "{name}: {issues:#?}");
    }

    fn assert_has(src: &str, id: &str, sev: Severity) -> Vec<Issue> {
        let issues = inspect(src);
        assert!(
            issues.iter().any(|i| i.rule.id == id && i.severity == sev),
            "expected {id} at {sev} for {src:?}, got {issues:#?}"
        );
        issues
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip("ééé", 3), "ééé");
        assert_eq!(clip("éééé", 3), "ééé…");
        assert_eq!(clip("", 0), "");
        assert_eq!(clip("a", 0), "…");
    }

    #[test]
    fn a_template_seen_again_has_the_same_issues() {
        let src = "{{ cycler.__init__.__globals__.os.popen('id').read() }} {{ x";
        let first = inspect_once(src);
        let again = inspect_once(src);
        let fresh = inspect(src);
        assert!(!first.is_empty());
        for issues in [&again, &fresh] {
            assert_eq!(issues.len(), first.len());
            for (a, b) in first.iter().zip(issues.iter()) {
                assert_eq!(
                    (a.rule.id, a.severity, &a.evidence, a.pos),
                    (b.rule.id, b.severity, &b.evidence, b.pos)
                );
            }
        }
    }

    #[test]
    fn real_templates_are_clean() {
        for (name, t) in [
            ("llama3", LLAMA3),
            ("llama3.1-tools", LLAMA31_TOOLS),
            ("chatml", CHATML),
            ("qwen3", QWEN3),
            ("mistral", MISTRAL),
            ("mistral-v3-tools", MISTRAL_V3_TOOLS),
            ("gemma", GEMMA),
            ("gemma3", GEMMA3),
            ("phi3", PHI3),
            ("zephyr", ZEPHYR),
            ("deepseek-r1", DEEPSEEK_R1),
            ("hermes-tools", HERMES_TOOLS),
            ("harmony-style", HARMONY_STYLE),
            ("multimodal-style", MULTIMODAL_STYLE),
            ("syntax-tour", SYNTAX_TOUR),
        ] {
            assert_clean(name, t);
        }
    }

    #[test]
    fn classic_ssti_is_critical() {
        for src in [
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "{{ x . __class__ }}",
            "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id').read() }}",
            "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
            "{{ lipsum.__globals__['os'].popen('id').read() }}",
            "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
            "{{ joiner.__init__.__globals__ }}",
            "{{ x['__class__'] }}",
            "{{ dict(__class__=1)|list|first }}",
            "{{ messages|map(attribute='__class__')|list }}",
            "{{ '{0.__class__.__init__.__globals__}'.format(messages) }}",
            // CVE-2024-34359 proof of concept (llama-cpp-python)
            "{% for x in ().__class__.__base__.__subclasses__() %}{% if \"warning\" in x.__name__ %}{{x()._module.__builtins__['__import__']('os').popen(\"touch /tmp/retr0reg\")}}{%endif%}{% endfor %}",
        ] {
            assert_has(src, "TPL001", Severity::Critical);
        }
    }

    #[test]
    fn concatenation_and_escapes_are_folded() {
        for src in [
            "{{ ''|attr('__cla' ~ 'ss__') }}",
            "{{ ''|attr('__cla' + 'ss__') }}",
            "{{ ''|attr('__cla' 'ss__') }}",
            "{{ x['__glo' ~ 'bals__'] }}",
            "{{ (lipsum|attr('_'*2 ~ 'globals' ~ '_'*2))['o' ~ 's'] }}",
            "{{ ''|attr(['_','_','class','_','_']|join) }}",
            "{{ ''|attr(('_','_','class','_','_')|join('')) }}",
            "{{ ''|attr('__ssalc__'|reverse) }}",
            "{{ ''|attr('__ssalc__'[::-1]) }}",
            "{{ ''|attr('__CLASS__'|lower) }}",
            "{{ ''|attr('%c%cclass%c%c'|format(95,95,95,95)) }}",
            "{{ ''|attr('%c%cclass%c%c' % (95,95,95,95)) }}",
            "{{ ''|attr('{}{}class{}{}'.format('_','_','_','_')) }}",
            "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
            "{{ ''|attr(\"\\u005f\\u005fclass\\u005f\\u005f\") }}",
            "{{ ''|attr(\"\\U0000005f\\U0000005fclass\\U0000005f\\U0000005f\") }}",
            "{{ ''|attr('\\137\\137class\\137\\137') }}",
            "{{ ''|attr('\\N{LOW LINE}\\N{LOW LINE}class\\N{low line}\\N{LOW LINE}') }}",
            "{% set a = '__cla' %}{% set b = 'ss__' %}{{ ''|attr(a ~ b) }}",
            "{% set k %}__globals__{% endset %}{{ lipsum[k] }}",
            "{% macro u() %}_{% endmacro %}{{ ''[u()~u()~'class'~u()~u()] }}",
            "{{ x['_''_cl''ass_''_'] }}",
            "{{ x|attr('po' ~ 'pen') }}",
            "{{ ''|attr('x__class__x'[1:-1]) }}",
            "{{ ''|attr('x__class__x'.strip('x')) }}",
            "{{ ''|attr('x__class__x'|trim('x')) }}",
        ] {
            let issues = assert_has(src, "TPL001", Severity::Critical);
            assert!(
                issues.iter().any(|i| i.evidence.contains("class")
                    || i.evidence.contains("globals")
                    || i.evidence.contains("popen")
                    || i.evidence.contains("os")),
                "{src}: {issues:#?}"
            );
        }
    }

    /// A value the scanner cannot be sure of must never pass as a harmless constant.
    #[test]
    fn uncertain_constants_stay_unknown() {
        for src in [
            // the branch not taken keeps '__cla'
            "{% set x = '__cla' %}{% if false %}{% set x = 'zzz' %}{% endif %}{{ ''|attr(x ~ 'ss__') }}",
            // a macro parameter shadows the outer constant
            "{% set x = 'abc' %}{% macro m(x) %}{{ ''|attr(x ~ 'ss__') }}{% endmacro %}{{ m('__cla') }}",
            // loop variables are not constants
            "{% for x in ['__cla'] %}{{ ''|attr(x ~ 'ss__') }}{% endfor %}",
            // a list is one argument to %, not an argument tuple
            "{{ ''|attr('%s' % ['a']) }}",
            // replace with a count, strip with characters, escape that changes the text
            "{{ ''|attr('a'|replace('a', 'b', 1) ~ x) }}",
            "{{ ''|attr('<a>'|e ~ x) }}",
        ] {
            let issues = inspect(src);
            assert!(
                issues.iter().any(|i| i.severity >= Severity::High),
                "{src}: {issues:#?}"
            );
        }
        // Python semantics of // and % on negative numbers.
        assert_eq!(py_floordiv(-7, 2), Some(-4));
        assert_eq!(py_floordiv(7, -2), Some(-4));
        assert_eq!(py_floordiv(7, 0), None);
        assert_has(
            "{{ ''|attr('%c%c' % (-95 // -1, 95) ~ 'class__') }}",
            "TPL001",
            Severity::Critical,
        );
    }

    /// Names assembled from pieces that only exist at run time: loop variables, namespace
    /// attributes, macro arguments, characters of `|string`ed objects.
    #[test]
    fn run_time_names_are_high_or_worse() {
        for src in [
            "{% for k in ['_'] %}{{ ''[k~k~'class'~k~k] }}{% endfor %}",
            "{% set ns = namespace(a='') %}{% for p in ['__cl','ass__'] %}{% set ns.a = ns.a ~ p %}{% endfor %}{{ x[ns.a] }}",
            "{% set ns = namespace(a='__cl') %}{% set ns.a = ns.a ~ 'ass__' %}{{ x[ns.a] }}",
            "{% macro u(a, b) %}{{ a }}{{ b }}{% endmacro %}{{ x[u('__cl', 'ass__')] }}",
            "{% set u = (raise_exception|string)[9] %}{% set c = (range|string)[1:6] %}{{ x[u~u~c~u~u] }}",
            "{% set r = raise_exception %}{% set u = (r|string)[9] %}{{ u }}",
            "{{ ''[k] }}",
            "{{ ()[k] }}",
            "{{ range[k] }}",
            "{% set k = a ~ b %}{{ messages[k] }}",
        ] {
            let issues = inspect(src);
            assert!(
                issues.iter().any(|i| i.severity >= Severity::High),
                "{src}: {issues:#?}"
            );
        }
        assert_has(
            "{% for k in ['_'] %}{{ ''[k~k~'class'~k~k] }}{% endfor %}",
            "TPL001",
            Severity::Critical,
        );
        assert_has(
            "{% set ns = namespace(a='__cl') %}{% set ns.b = 'ass__' %}{{ x[ns.a ~ ns.b] }}",
            "TPL005",
            Severity::High,
        );
        assert_has(
            "{% set ns = namespace() %}{% set ns.a = '__cl' %}{{ ''|attr(ns.a ~ 'ass__') }}",
            "TPL001",
            Severity::Critical,
        );
        assert_has(
            "{{ ('{0.' ~ k ~ '}').format(x) }}",
            "TPL005",
            Severity::High,
        );
    }

    #[test]
    fn escapes_are_reported_as_obfuscation() {
        let issues = assert_has(
            "{{ x|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
            "TPL005",
            Severity::High,
        );
        assert!(
            issues.iter().any(|i| i.evidence.contains("\\x5f")),
            "{issues:#?}"
        );
        assert_has(
            "{{ ''|attr('%c%cclass%c%c'|format(95,95,95,95)) }}",
            "TPL005",
            Severity::High,
        );
        // Plain escapes such as \n are normal.
        assert_clean("newlines", "{{ 'a\\n\\t\\'b\\\\' }}");
    }

    #[test]
    fn dynamic_names_are_high() {
        assert_has("{{ x|attr(request.args.a) }}", "TPL005", Severity::High);
        assert_has("{{ x|attr(name) }}", "TPL005", Severity::High);
        assert_has("{{ x['__' ~ name ~ '__'] }}", "TPL005", Severity::High);
        assert_has("{{ request.application }}", "TPL002", Severity::High);
        assert_has("{{ config.items() }}", "TPL002", Severity::High);
        assert_has("{{ lipsum }}", "TPL002", Severity::High);
        assert_has("{% include 'other.html' %}", "TPL002", Severity::High);
        assert_has("{% import 'm.j2' as m %}", "TPL002", Severity::High);
        assert_has("{{ os }}", "TPL002", Severity::High);
        assert_has("{{ eval('1') }}", "TPL001", Severity::Critical);
        assert_has(
            "{{ open('/etc/passwd').read() }}",
            "TPL001",
            Severity::Critical,
        );
        assert_has("{{ x.system('id') }}", "TPL001", Severity::Critical);
        assert_has(
            "{{ ''|attr('format')('{0.x}') }}",
            "TPL001",
            Severity::Critical,
        );
        assert_has("{{ x._private }}", "TPL001", Severity::High);
    }

    #[test]
    fn names_defined_by_the_template_are_not_globals() {
        assert_clean("set config", "{% set config = {'a': 1} %}{{ config.a }}");
        assert_clean(
            "loop var",
            "{% for request in messages %}{{ request.role }}{% endfor %}",
        );
        assert_clean(
            "macro param",
            "{% macro f(self) %}{{ self }}{% endmacro %}{{ f(1) }}",
        );
        // Ordinary words in text and strings are not code.
        assert_clean(
            "text",
            "system: use os.system and eval() and __init carefully... {{ 'os' }} {{ message['role'] == 'system' }}",
        );
        assert_clean("media marker", "{{ '<__media__>' }}{{ '__' }}{{ '_' }}");
    }

    #[test]
    fn unbalanced_templates_are_medium() {
        for src in [
            "{% if x %}hello",
            "{{ x ",
            "{% for m in messages %}{% endif %}",
            "{# never closed",
            "{% raw %}never closed",
            "{{ 'unterminated }}",
            "{{ x ) }}",
            "{% endfor %}",
            "{% frobnicate %}",
            "{{ x $ y }}",
        ] {
            assert_has(src, "TPL003", Severity::Medium);
        }
    }

    #[test]
    fn dunders_in_text_and_comments_are_medium() {
        assert_has("{# {{ x.__globals__ }} #}hello", "TPL006", Severity::Medium);
        assert_has(
            "{% raw %}{{ x.__class__ }}{% endraw %}",
            "TPL006",
            Severity::Medium,
        );
        assert_has("plain __subclasses__ text", "TPL006", Severity::Medium);
    }

    #[test]
    fn very_long_templates_are_low() {
        let long = CHATML.repeat(LONG_TEMPLATE / CHATML.len() + 2);
        let issues = inspect(&long);
        assert_eq!(ids(&issues), vec!["TPL004"], "{issues:#?}");
        assert_eq!(issues[0].severity, Severity::Low);
    }

    #[test]
    fn evidence_quotes_the_template() {
        let issues = inspect("hello {{ ''.__class__ }} world");
        let i = issues.iter().find(|i| i.rule.id == "TPL001").unwrap();
        assert!(i.evidence.contains("{{ ''.__class__ }}"), "{}", i.evidence);
        assert_eq!(i.pos, 12);
    }

    #[test]
    fn hostile_inputs_do_not_panic_or_hang() {
        let deep = format!("{{{{ {}x{} }}}}", "(".repeat(5000), ")".repeat(5000));
        assert_has(&deep, "TPL003", Severity::Medium);
        let chain = format!("{{{{ {} }}}}", vec!["'a'"; 100_000].join(" ~ "));
        let _ = inspect(&chain);
        let many = "{{ x ~ '_' * 1000000000 }}".repeat(10);
        let _ = inspect(&many);
        let unicode = "{{ 'é' ~ ''.__clàss__ ~ '\u{10ffff}' }}{% é %}{{ x.ñ }}";
        let _ = inspect(unicode);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet: Vec<char> = "{}%#-+'\"\\x5f_ab.|()[]~,:=ñ\n ".chars().collect();
        for _ in 0..3000 {
            let mut s = String::new();
            for _ in 0..40 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = inspect(&s);
        }
        for t in [LLAMA31_TOOLS, QWEN3, HERMES_TOOLS] {
            for cut in (0..t.len()).step_by(7) {
                if t.is_char_boundary(cut) {
                    let _ = inspect(&t[..cut]);
                }
            }
        }
    }
}
