//! NumPy `.npy` arrays (format versions 1.0, 2.0 and 3.0).
//! Spec: <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>
//!
//! ```text
//! \x93NUMPY            magic
//! major, minor         u8, u8: (1, 0), (2, 0) or (3, 0)
//! header length        u16 LE (1.0) or u32 LE (2.0, 3.0)
//! header               a Python dict literal, latin-1 (1.0, 2.0) or UTF-8 (3.0), e.g.
//!                      {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
//! data                 the array's bytes, or a pickle when the dtype holds objects
//! ```
//!
//! `numpy.load` evaluates the header with `ast.literal_eval`; this reader parses the same
//! literal subset by hand (strings, integers, booleans, None, tuples, lists, dicts) with a
//! depth bound. The dtype (`descr`) may be a type string (`'<f8'`, `'|O'`, `'<U10'`,
//! `'<M8[ns]'`), a `(descr, shape)` sub-array or a list of `(name, descr[, shape])` fields.

use crate::error::{ParseError, Result};
use crate::limits::Limits;
use crate::reader::Reader;

const MAGIC: &[u8] = b"\x93NUMPY";
/// Deepest nesting of the header literal (structured dtypes nest).
const MAX_DEPTH: u32 = 32;

/// A parsed `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Npy<'a> {
    pub version: (u8, u8),
    /// The header text as written (without the length prefix).
    pub header: &'a str,
    pub descr: Descr,
    pub fortran_order: bool,
    pub shape: Vec<u64>,
    /// Offset of the first data byte.
    pub data_offset: u64,
    pub data: &'a [u8],
}

/// A dtype as the header describes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Descr {
    /// A type string such as `<f8`.
    Type(TypeStr),
    /// `(descr, shape)`: a sub-array of `shape` elements of `descr`.
    SubArray(Box<Descr>, Vec<u64>),
    /// A structured dtype: `(name, descr)` or `(name, descr, shape)` fields.
    Fields(Vec<(String, Descr)>),
}

/// One type string and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeStr {
    pub text: String,
    /// Bytes per element.
    pub item_size: u64,
    /// True for Python objects (`O`): the data is a pickle.
    pub object: bool,
}

impl Descr {
    /// Bytes per array element, if it fits in a u64.
    pub fn item_size(&self) -> Option<u64> {
        match self {
            Self::Type(t) => Some(t.item_size),
            Self::SubArray(d, shape) => product(shape)?.checked_mul(d.item_size()?),
            Self::Fields(f) => f
                .iter()
                .try_fold(0u64, |acc, (_, d)| acc.checked_add(d.item_size()?)),
        }
    }

    /// True when any part of the dtype holds Python objects (`dtype.hasobject`).
    pub fn has_object(&self) -> bool {
        match self {
            Self::Type(t) => t.object,
            Self::SubArray(d, _) => d.has_object(),
            Self::Fields(f) => f.iter().any(|(_, d)| d.has_object()),
        }
    }
}

impl Npy<'_> {
    /// Number of elements, if the product of the shape fits in a u64.
    pub fn elements(&self) -> Option<u64> {
        product(&self.shape)
    }

    /// Bytes the data must hold for a dtype without objects.
    pub fn expected_data_len(&self) -> Option<u64> {
        self.elements()?.checked_mul(self.descr.item_size()?)
    }
}

fn product(dims: &[u64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// Reads a `.npy` header and locates its data.
pub fn parse<'a>(data: &'a [u8], limits: &Limits) -> Result<Npy<'a>> {
    let mut r = Reader::new(data);
    if r.take(MAGIC.len(), "npy magic")? != MAGIC {
        return Err(ParseError::malformed(0, "not a .npy file (bad magic)"));
    }
    let major = r.u8("npy major version")?;
    let minor = r.u8("npy minor version")?;
    let len = match (major, minor) {
        (1, 0) => u32::from(r.u16_le("header length")?),
        (2, 0) | (3, 0) => r.u32_le("header length")?,
        _ => {
            return Err(ParseError::unsupported(
                6,
                format!("npy format version {major}.{minor} (numpy reads 1.0, 2.0 and 3.0)"),
            ))
        }
    };
    if u64::from(len) > limits.max_header_bytes {
        return Err(ParseError::limit(
            r.offset(),
            "npy header length",
            u64::from(len),
            limits.max_header_bytes,
        ));
    }
    let header_at = r.offset();
    let raw = r.take_u64(u64::from(len), "npy header")?;
    let header = match major {
        3 => std::str::from_utf8(raw).map_err(|e| {
            ParseError::malformed(header_at, format!("npy header is not UTF-8: {e}"))
        })?,
        // latin-1: numpy writes ASCII; anything else would need a transcoded copy.
        _ if raw.is_ascii() => std::str::from_utf8(raw).unwrap_or_default(),
        _ => {
            return Err(ParseError::unsupported(
                header_at,
                "npy header holds non-ASCII latin-1 text",
            ))
        }
    };
    let lit = Literal::parse(header, header_at)?;
    let (descr, fortran_order, shape) = dict(&lit, header_at)?;
    let data_offset = r.offset();
    Ok(Npy {
        version: (major, minor),
        header,
        descr,
        fortran_order,
        shape,
        data_offset,
        data: r.rest(),
    })
}

/// The three keys numpy requires, and no others.
fn dict(lit: &Literal, at: u64) -> Result<(Descr, bool, Vec<u64>)> {
    let Literal::Dict(items) = lit else {
        return Err(ParseError::malformed(at, "npy header is not a dict"));
    };
    let get = |key: &str| {
        let mut found = items
            .iter()
            .filter(|(k, _)| matches!(k, Literal::Str(s) if s == key));
        match (found.next(), found.next()) {
            (Some((_, v)), None) => Ok(v),
            (None, _) => Err(ParseError::malformed(
                at,
                format!("npy header lacks '{key}'"),
            )),
            (Some(_), Some(_)) => Err(ParseError::malformed(
                at,
                format!("npy header repeats '{key}'"),
            )),
        }
    };
    if items.len() != 3 {
        return Err(ParseError::malformed(
            at,
            format!(
                "npy header has {} keys, numpy requires exactly descr, fortran_order and shape",
                items.len()
            ),
        ));
    }
    let descr = descr(get("descr")?, at, 0)?;
    let fortran_order = match get("fortran_order")? {
        Literal::Bool(b) => *b,
        _ => {
            return Err(ParseError::malformed(
                at,
                "npy 'fortran_order' is not a bool",
            ))
        }
    };
    let shape = match get("shape")? {
        Literal::Tuple(dims) => dims
            .iter()
            .map(|d| dim(d, at))
            .collect::<Result<Vec<_>>>()?,
        _ => return Err(ParseError::malformed(at, "npy 'shape' is not a tuple")),
    };
    Ok((descr, fortran_order, shape))
}

fn dim(d: &Literal, at: u64) -> Result<u64> {
    match d {
        Literal::Int(i) => u64::try_from(*i).map_err(|_| {
            ParseError::malformed(at, format!("npy dimension {i} is negative or too large"))
        }),
        _ => Err(ParseError::malformed(at, "npy dimension is not an integer")),
    }
}

/// `numpy.lib.format.descr_to_dtype`.
fn descr(lit: &Literal, at: u64, depth: u32) -> Result<Descr> {
    if depth > MAX_DEPTH {
        return Err(ParseError::limit(
            at,
            "npy dtype nesting",
            u64::from(depth),
            u64::from(MAX_DEPTH),
        ));
    }
    let next = depth.saturating_add(1);
    match lit {
        Literal::Str(s) => type_string(s, at),
        Literal::Tuple(parts) => match parts.as_slice() {
            [inner, shape] => Ok(Descr::SubArray(
                Box::new(descr(inner, at, next)?),
                sub_shape(shape, at)?,
            )),
            _ => Err(ParseError::malformed(
                at,
                "npy sub-array dtype is not (descr, shape)",
            )),
        },
        Literal::List(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                let Literal::Tuple(parts) = f else {
                    return Err(ParseError::malformed(
                        at,
                        "npy structured dtype field is not a tuple",
                    ));
                };
                let (name, d) = match parts.as_slice() {
                    [name, d] => (name, descr(d, at, next)?),
                    [name, d, shape] => (
                        name,
                        Descr::SubArray(Box::new(descr(d, at, next)?), sub_shape(shape, at)?),
                    ),
                    _ => {
                        return Err(ParseError::malformed(
                            at,
                            "npy structured dtype field has the wrong arity",
                        ))
                    }
                };
                let name = match name {
                    Literal::Str(s) => s.clone(),
                    Literal::Tuple(t) => match t.as_slice() {
                        [Literal::Str(_) | Literal::None, Literal::Str(n)] => n.clone(),
                        _ => {
                            return Err(ParseError::malformed(
                                at,
                                "npy field title is not (title, name)",
                            ))
                        }
                    },
                    _ => return Err(ParseError::malformed(at, "npy field name is not a string")),
                };
                out.push((name, d));
            }
            Ok(Descr::Fields(out))
        }
        _ => Err(ParseError::malformed(
            at,
            "npy 'descr' is not a string, tuple or list",
        )),
    }
}

fn sub_shape(lit: &Literal, at: u64) -> Result<Vec<u64>> {
    match lit {
        Literal::Int(_) => Ok(vec![dim(lit, at)?]),
        Literal::Tuple(dims) => dims.iter().map(|d| dim(d, at)).collect(),
        _ => Err(ParseError::malformed(
            at,
            "npy sub-array shape is not an int or tuple",
        )),
    }
}

/// A dtype string as `numpy.dtype(str)` reads the forms `.npy` files use.
fn type_string(s: &str, at: u64) -> Result<Descr> {
    let unsupported = || ParseError::unsupported(at, format!("npy dtype '{}'", clip(s)));
    let t = s.trim();
    // "f8,i4" is a structured dtype with fields f0, f1 ...
    if t.contains(',') {
        let fields = t
            .split(',')
            .enumerate()
            .map(|(i, part)| Ok((format!("f{i}"), type_string(part, at)?)))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Descr::Fields(fields));
    }
    // "(2,3)f8" would have hit the comma split; "(3)f8" is a sub-array.
    if let Some(rest) = t.strip_prefix('(') {
        let (dims, inner) = rest.split_once(')').ok_or_else(unsupported)?;
        let dims = dims
            .split(',')
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.trim().parse::<u64>().map_err(|_| unsupported()))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Descr::SubArray(Box::new(type_string(inner, at)?), dims));
    }
    let body = t.trim_start_matches(['<', '>', '|', '=', '!']);
    let (item_size, object) = simple_type(body).ok_or_else(unsupported)?;
    Ok(Descr::Type(TypeStr {
        text: s.to_string(),
        item_size,
        object,
    }))
}

/// Item size and objectness of a byte-order-free type string.
fn simple_type(t: &str) -> Option<(u64, bool)> {
    let named = match t {
        "O" | "O8" | "object" | "object_" => return Some((8, true)),
        "?" | "bool" | "bool_" | "b" | "B" | "int8" | "uint8" => 1,
        "h" | "H" | "e" | "int16" | "uint16" | "float16" => 2,
        "i" | "I" | "f" | "int32" | "uint32" | "float32" => 4,
        "l" | "L" | "q" | "Q" | "d" | "F" | "int64" | "uint64" | "float64" | "complex64" => 8,
        "g" | "D" | "complex128" | "longdouble" => 16,
        "G" | "clongdouble" => 32,
        "S" | "a" | "U" | "V" => 0,
        _ => 0xffff_ffff,
    };
    if named != 0xffff_ffff {
        return Some((named, false));
    }
    let mut chars = t.chars();
    let kind = chars.next()?;
    let rest = chars.as_str();
    // Datetimes: M8 / m8 with an optional unit.
    if matches!(kind, 'M' | 'm') {
        let unit_ok = rest == "8" || (rest.starts_with("8[") && rest.ends_with(']'));
        return unit_ok.then_some((8, false));
    }
    let n: u64 = rest.parse().ok()?;
    let size = match kind {
        'b' if n == 1 => 1,
        'i' | 'u' if matches!(n, 1 | 2 | 4 | 8) => n,
        'f' if matches!(n, 2 | 4 | 8 | 12 | 16) => n,
        'c' if matches!(n, 8 | 16 | 24 | 32) => n,
        'S' | 'a' | 'V' => n,
        'U' => n.checked_mul(4)?,
        _ => return None,
    };
    Some((size, false))
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

/// The subset of Python literals `ast.literal_eval` accepts that npy headers use.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    base: u64,
}

impl Literal {
    fn parse(text: &str, base: u64) -> Result<Literal> {
        let mut lx = Lexer {
            s: text.as_bytes(),
            pos: 0,
            base,
        };
        let v = lx.value(0)?;
        lx.ws();
        if lx.pos < lx.s.len() {
            return Err(lx.err("trailing characters after the header literal"));
        }
        Ok(v)
    }
}

impl Lexer<'_> {
    fn err(&self, msg: &str) -> ParseError {
        ParseError::malformed(
            self.base.saturating_add(self.pos as u64),
            format!("npy header: {msg}"),
        )
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos = self.pos.saturating_add(1);
        Some(c)
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.bump();
        }
    }

    fn value(&mut self, depth: u32) -> Result<Literal> {
        if depth > MAX_DEPTH {
            return Err(ParseError::limit(
                self.base.saturating_add(self.pos as u64),
                "npy header nesting",
                u64::from(depth),
                u64::from(MAX_DEPTH),
            ));
        }
        self.ws();
        let next = depth.saturating_add(1);
        match self.peek() {
            Some(b'{') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.bump();
                        return Ok(Literal::Dict(items));
                    }
                    let k = self.value(next)?;
                    self.ws();
                    if self.bump() != Some(b':') {
                        return Err(self.err("expected ':' in dict"));
                    }
                    let v = self.value(next)?;
                    items.push((k, v));
                    if !self.separator(b'}')? {
                        return Ok(Literal::Dict(items));
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                self.bump();
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                let mut trailing_comma = false;
                loop {
                    self.ws();
                    if self.peek() == Some(close) {
                        self.bump();
                        break;
                    }
                    items.push(self.value(next)?);
                    trailing_comma = true;
                    if !self.separator(close)? {
                        trailing_comma = false;
                        break;
                    }
                }
                if open == b'(' {
                    // `(x)` is x, `(x,)` a 1-tuple.
                    if items.len() == 1 && !trailing_comma {
                        return items.pop().ok_or_else(|| self.err("empty parentheses"));
                    }
                    Ok(Literal::Tuple(items))
                } else {
                    Ok(Literal::List(items))
                }
            }
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'u' | b'U')
                if matches!(self.s.get(self.pos.saturating_add(1)), Some(b'\'' | b'"')) =>
            {
                self.bump();
                let q = self.peek().unwrap_or(b'\'');
                self.string(q)
            }
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.bump();
                }
                match self.s.get(start..self.pos) {
                    Some(b"True") => Ok(Literal::Bool(true)),
                    Some(b"False") => Ok(Literal::Bool(false)),
                    Some(b"None") => Ok(Literal::None),
                    _ => Err(self.err("unknown name (only True, False and None are literals)")),
                }
            }
            _ => Err(self.err("expected a literal")),
        }
    }

    /// After an item: `,` (true, more may follow) or the closing bracket (false).
    fn separator(&mut self, close: u8) -> Result<bool> {
        self.ws();
        match self.bump() {
            Some(b',') => Ok(true),
            Some(c) if c == close => Ok(false),
            _ => Err(self.err("expected ',' or a closing bracket")),
        }
    }

    fn int(&mut self) -> Result<Literal> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.bump();
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let text = std::str::from_utf8(self.s.get(start..self.pos).unwrap_or_default())
            .unwrap_or_default();
        // Python 2 wrote longs with an `L` suffix (numpy's `_filter_header` drops it).
        if matches!(self.peek(), Some(b'L' | b'l')) {
            self.bump();
        }
        if self
            .peek()
            .is_some_and(|c| c == b'.' || c == b'e' || c == b'E' || c == b'j')
        {
            return Err(self.err("only integers are expected in an npy header"));
        }
        text.parse::<i128>()
            .map(Literal::Int)
            .map_err(|_| self.err("integer out of range"))
    }

    fn string(&mut self, quote: u8) -> Result<Literal> {
        self.bump();
        let mut out = String::new();
        loop {
            let c = self.bump().ok_or_else(|| self.err("unterminated string"))?;
            match c {
                c if c == quote => return Ok(Literal::Str(out)),
                b'\\' => {
                    let e = self.bump().ok_or_else(|| self.err("unterminated escape"))?;
                    let ch = match e {
                        b'\\' => '\\',
                        b'\'' => '\'',
                        b'"' => '"',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'0' => '\0',
                        b'x' => self.hex(2)?,
                        b'u' => self.hex(4)?,
                        b'U' => self.hex(8)?,
                        _ => return Err(self.err("unsupported string escape")),
                    };
                    out.push(ch);
                }
                b'\n' => return Err(self.err("newline inside a string")),
                _ => {
                    // Multi-byte UTF-8 (version 3.0): copy the whole character.
                    let start = self.pos.saturating_sub(1);
                    let len = match c {
                        0xf0..=0xff => 4,
                        0xe0..=0xef => 3,
                        0xc0..=0xdf => 2,
                        _ => 1,
                    };
                    let end = start.saturating_add(len);
                    let ch = self
                        .s
                        .get(start..end)
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .ok_or_else(|| self.err("invalid UTF-8 in string"))?;
                    out.push_str(ch);
                    self.pos = end;
                }
            }
        }
    }

    fn hex(&mut self, n: usize) -> Result<char> {
        let start = self.pos;
        let end = start.saturating_add(n);
        let digits = self
            .s
            .get(start..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| self.err("truncated escape"))?;
        self.pos = end;
        u32::from_str_radix(digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.err("bad escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        let total = 10 + h.len() + 1;
        h.push_str(&" ".repeat((64 - total % 64) % 64));
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn simple_array() {
        let f = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
            &[0; 96],
        );
        let a = parse(&f, &Limits::default()).unwrap();
        assert_eq!(a.shape, vec![3, 4]);
        assert_eq!(a.descr.item_size(), Some(8));
        assert_eq!(a.expected_data_len(), Some(96));
        assert_eq!(a.data.len(), 96);
        assert_eq!(a.data_offset % 64, 0);
        assert!(!a.descr.has_object());
    }

    #[test]
    fn scalars_and_one_tuples() {
        let f = npy(
            "{'descr': '|u1', 'fortran_order': False, 'shape': (), }",
            &[7],
        );
        assert_eq!(parse(&f, &Limits::default()).unwrap().elements(), Some(1));
        let f = npy(
            "{'descr': '<i4', 'fortran_order': True, 'shape': (5,), }",
            &[0; 20],
        );
        let a = parse(&f, &Limits::default()).unwrap();
        assert_eq!(a.shape, vec![5]);
        assert!(a.fortran_order);
    }

    #[test]
    fn structured_dtypes() {
        let f = npy(
            "{'descr': [('x', '<f8'), ('y', '<i4', (2,)), ('z', [('a', '|O'), ('b', '<U3')]), (('t', 'n'), '|S2')], 'fortran_order': False, 'shape': (2,), }",
            &[],
        );
        let a = parse(&f, &Limits::default()).unwrap();
        assert!(a.descr.has_object());
        assert_eq!(a.descr.item_size(), Some(8 + 8 + 8 + 12 + 2));
        let f = npy(
            "{'descr': 'f8,O', 'fortran_order': False, 'shape': (1,), }",
            &[],
        );
        assert!(parse(&f, &Limits::default()).unwrap().descr.has_object());
    }

    #[test]
    fn object_dtype() {
        for d in ["|O", "O", "object", "<O8"] {
            let f = npy(
                &format!("{{'descr': '{d}', 'fortran_order': False, 'shape': (1,), }}"),
                b"\x80\x02.",
            );
            assert!(
                parse(&f, &Limits::default()).unwrap().descr.has_object(),
                "{d}"
            );
        }
    }

    #[test]
    fn datetimes_strings_and_names() {
        for (d, size) in [
            ("<M8[ns]", 8),
            ("<U10", 40),
            ("|S5", 5),
            ("|V16", 16),
            ("|b1", 1),
            ("<c16", 16),
            ("float32", 4),
        ] {
            let f = npy(
                &format!("{{'descr': '{d}', 'fortran_order': False, 'shape': (1,), }}"),
                &[],
            );
            assert_eq!(
                parse(&f, &Limits::default()).unwrap().descr.item_size(),
                Some(size),
                "{d}"
            );
        }
    }

    #[test]
    fn bad_headers_are_errors() {
        let lim = Limits::default();
        for h in [
            "{'descr': '<f8', 'shape': (3,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
            "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': [3], }",
            "{'descr': '<q9', 'fortran_order': False, 'shape': (3,), }",
            "{'descr': __import__('os'), 'fortran_order': False, 'shape': (3,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), ",
        ] {
            assert!(parse(&npy(h, &[]), &lim).is_err(), "{h}");
        }
        let deep = format!(
            "{{'descr': {}'<f8'{}, 'fortran_order': False, 'shape': (), }}",
            "[('a', ".repeat(100),
            ")]".repeat(100)
        );
        assert!(parse(&npy(&deep, &[]), &lim).is_err());
    }

    #[test]
    fn truncation_and_mutation_never_panic() {
        let f = npy(
            "{'descr': [('x', '<f8'), ('y', '|O')], 'fortran_order': False, 'shape': (2, 3), }",
            &[1; 10],
        );
        for cut in 0..f.len() {
            let _ = parse(&f[..cut], &Limits::default());
        }
        for g in crate::mutate::mutations(&f, 0x2545_f491_4f6c_dd1d, 20_000) {
            let _ = parse(&g, &Limits::default());
        }
    }
}
