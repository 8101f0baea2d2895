//! Short, Python-like renderings of values and calls for evidence:
//! `posix.system('id')`, `builtins.getattr(<builtins.__import__>, 'system')`.
//! Output is bounded: long strings and containers are cut with `…`, nesting stops at a few
//! levels, and nothing here recurses deeper than [`MAX_DEPTH`].

use std::fmt::Write;

use super::trace::{Call, CallKind, Trace};
use super::value::{Obj, Value};

/// Longest rendering, in bytes (before the closing `…`).
pub const MAX_RENDER: usize = 200;
/// Deepest nesting rendered.
const MAX_DEPTH: u32 = 4;
/// Longest string or bytes literal shown.
const MAX_LITERAL: usize = 80;
/// Most container elements shown.
const MAX_ITEMS: usize = 8;

struct Out {
    s: String,
    limit: usize,
}

impl Out {
    fn full(&self) -> bool {
        self.s.len() >= self.limit
    }

    fn push(&mut self, text: &str) {
        if !self.full() {
            self.s.push_str(text);
        }
    }

    fn finish(mut self) -> String {
        if self.s.len() > self.limit {
            let mut cut = self.limit;
            while !self.s.is_char_boundary(cut) {
                cut = cut.saturating_sub(1);
            }
            self.s.truncate(cut);
            self.s.push('…');
        }
        self.s
    }
}

impl<'a> Trace<'a> {
    /// A value as Python would show it, bounded.
    pub fn render(&self, v: Value<'a>) -> String {
        let mut out = Out {
            s: String::new(),
            limit: MAX_RENDER,
        };
        self.value(&mut out, v, 0);
        out.finish()
    }

    /// A call as `callee(arg, ...)`, bounded.
    pub fn render_call(&self, call: &Call<'a>) -> String {
        let mut out = Out {
            s: String::new(),
            limit: MAX_RENDER,
        };
        self.call(&mut out, call, 0);
        out.finish()
    }

    /// What a call calls: `module.name` for a global, `<result of ...>` otherwise.
    pub fn render_callee(&self, v: Value<'a>) -> String {
        let mut out = Out {
            s: String::new(),
            limit: MAX_RENDER,
        };
        self.callee(&mut out, v, 0);
        out.finish()
    }

    fn callee(&self, out: &mut Out, v: Value<'a>, depth: u32) {
        match self.global_of(v) {
            Some(g) => out.push(&g.path()),
            None => self.value(out, v, depth),
        }
    }

    fn call(&self, out: &mut Out, call: &Call<'a>, depth: u32) {
        let d = depth.saturating_add(1);
        match call.kind {
            CallKind::Method(name) => {
                self.value(out, call.callee, d);
                out.push(".");
                out.push(name);
                out.push("(");
            }
            CallKind::NewObj | CallKind::NewObjEx => {
                self.callee(out, call.callee, d);
                out.push(".__new__(");
                self.callee(out, call.callee, d);
                if !call.args.is_empty() {
                    out.push(", ");
                }
            }
            _ => {
                self.callee(out, call.callee, d);
                out.push("(");
            }
        }
        if call.args_opaque {
            out.push("*");
        }
        self.seq(out, self.args(call), d);
        if let Some(kw) = call.kwargs {
            out.push(", **");
            self.value(out, kw, d);
        }
        out.push(")");
    }

    fn seq(&self, out: &mut Out, items: &[Value<'a>], depth: u32) {
        for (i, item) in items.iter().enumerate() {
            if out.full() {
                return;
            }
            if i > 0 {
                out.push(", ");
            }
            if i >= MAX_ITEMS {
                out.push("…");
                return;
            }
            self.value(out, *item, depth);
        }
    }

    fn value(&self, out: &mut Out, v: Value<'a>, depth: u32) {
        if out.full() {
            return;
        }
        match v {
            Value::None => out.push("None"),
            Value::Bool(true) => out.push("True"),
            Value::Bool(false) => out.push("False"),
            Value::Int(i) => out.push(&i.to_string()),
            Value::Long(bytes) => out.push(&render_long(bytes)),
            Value::LongText(t) => out.push(&String::from_utf8_lossy(t)),
            Value::Float(f) => out.push(&format!("{f:?}")),
            Value::Str(s) => out.push(&str_literal(s)),
            Value::Bytes(b) => out.push(&bytes_literal(b)),
            Value::Obj(id) => {
                let Some(obj) = self.heap.get(id) else {
                    out.push("<?>");
                    return;
                };
                self.object(out, obj, depth);
            }
        }
    }

    fn object(&self, out: &mut Out, obj: &Obj<'a>, depth: u32) {
        let d = depth.saturating_add(1);
        let deep = depth >= MAX_DEPTH;
        match obj {
            Obj::Tuple(items) => {
                let items = self.heap.items(*items);
                out.push("(");
                if deep && !items.is_empty() {
                    out.push("…");
                } else {
                    self.seq(out, items, d);
                }
                if items.len() == 1 {
                    out.push(",");
                }
                out.push(")");
            }
            Obj::List(items) => {
                out.push("[");
                if deep && !items.is_empty() {
                    out.push("…");
                } else {
                    self.seq(out, items, d);
                }
                out.push("]");
            }
            Obj::Set(_) | Obj::FrozenSet(_) => {
                let items = self.heap.elements(obj).unwrap_or_default();
                let frozen = matches!(obj, Obj::FrozenSet(_));
                out.push(if frozen { "frozenset({" } else { "{" });
                if deep && !items.is_empty() {
                    out.push("…");
                } else {
                    self.seq(out, items, d);
                }
                out.push(if frozen { "})" } else { "}" });
            }
            Obj::Dict(pairs) => {
                out.push("{");
                if deep && !pairs.is_empty() {
                    out.push("…");
                } else {
                    for (i, (k, v)) in pairs.iter().enumerate() {
                        if out.full() {
                            break;
                        }
                        if i > 0 {
                            out.push(", ");
                        }
                        if i >= MAX_ITEMS {
                            out.push("…");
                            break;
                        }
                        self.value(out, *k, d);
                        out.push(": ");
                        self.value(out, *v, d);
                    }
                }
                out.push("}");
            }
            Obj::Text(t) => out.push(&str_literal(t)),
            Obj::ByteArray(b) => {
                out.push("bytearray(");
                out.push(&bytes_literal(b));
                out.push(")");
            }
            Obj::Global(i) => match self.globals.get(*i) {
                Some(g) => {
                    out.push("<");
                    out.push(&g.path());
                    out.push(">");
                }
                None => out.push("<global ?>"),
            },
            Obj::Instance(i) => match self.calls.get(*i) {
                Some(call) => {
                    out.push("<result of ");
                    if deep {
                        out.push("…");
                    } else {
                        match call.kind {
                            CallKind::Method(name) => {
                                self.value(out, call.callee, d);
                                out.push(".");
                                out.push(name);
                            }
                            _ => self.callee(out, call.callee, d),
                        }
                        out.push("(...)");
                    }
                    out.push(">");
                }
                None => out.push("<result of ?>"),
            },
            Obj::Persistent(i) => {
                out.push("<persistent_load(");
                match self.persistent_ids.get(*i) {
                    Some(p) if !deep => self.value(out, p.pid, d),
                    _ => out.push("…"),
                }
                out.push(")>");
            }
            Obj::Extension(i) => match self.extensions.get(*i) {
                Some(e) => out.push(&format!("<extension code {}>", e.code)),
                None => out.push("<extension ?>"),
            },
            Obj::Buffer => out.push("<out-of-band buffer>"),
            Obj::JoblibArray(i) => match self.joblib_arrays.get(*i) {
                Some(a) => out.push(&format!("<joblib array {} {:?}>", a.dtype, a.shape)),
                None => out.push("<joblib array ?>"),
            },
        }
    }
}

/// A little-endian two's-complement integer as decimal when it fits in 128 bits.
pub fn render_long(bytes: &[u8]) -> String {
    match decode_long(bytes) {
        Some(v) => v.to_string(),
        None => format!("<int of {} bytes>", bytes.len()),
    }
}

/// `LONG1`/`LONG4` payload to a number, when it fits in `i128`.
pub fn decode_long(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() {
        return Some(0);
    }
    if bytes.len() > 16 {
        return None;
    }
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let mut buf = if negative { [0xffu8; 16] } else { [0u8; 16] };
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    Some(i128::from_le_bytes(buf))
}

/// A Python `str` literal for UTF-8 bytes, cut at [`MAX_LITERAL`] characters.
pub fn str_literal(bytes: &[u8]) -> String {
    let mut s = String::from("'");
    let text = String::from_utf8_lossy(bytes);
    for (n, c) in text.chars().enumerate() {
        if n >= MAX_LITERAL {
            s.push('…');
            break;
        }
        match c {
            '\'' => s.push_str("\\'"),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(s, "\\x{:02x}", u32::from(c));
            }
            c => s.push(c),
        }
    }
    s.push('\'');
    s
}

/// A Python `bytes` literal, cut at [`MAX_LITERAL`] bytes.
pub fn bytes_literal(bytes: &[u8]) -> String {
    let mut s = String::from("b'");
    for (n, &b) in bytes.iter().enumerate() {
        if n >= MAX_LITERAL {
            s.push('…');
            break;
        }
        match b {
            b'\'' => s.push_str("\\'"),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('\'');
    s
}

/// A name from the stream, shown so that newlines and control characters are visible.
pub fn name_literal(bytes: &[u8]) -> String {
    // The usual name: printable ASCII, copied as it is.
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return text.to_owned();
        }
    }
    let text = String::from_utf8_lossy(bytes);
    if text.chars().all(|c| !c.is_control()) {
        return text.into_owned();
    }
    let mut s = String::new();
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(s, "\\x{:02x}", u32::from(c));
        } else {
            s.push(c);
        }
    }
    s
}
