//! safetensors: an 8-byte little-endian header length, a JSON header, then tensor data.
//! Spec: <https://github.com/huggingface/safetensors#format>
//!
//! > - 8 bytes: `N`, an unsigned little-endian 64-bit integer, containing the size of the header
//! > - N bytes: a JSON UTF-8 string representing the header.
//! >   - The header data MUST begin with a `{` character (0x7B).
//! >   - The header data MAY be trailing padded with whitespace (0x20).
//! >   - The header is a dict like `{"TENSOR_NAME": {"dtype": "F16", "shape": [1, 16, 256],
//! >     "data_offsets": [BEGIN, END]}, ...}`; `data_offsets` are relative to the beginning of
//! >     the byte buffer, END is one past the last byte.
//! >   - A special key `__metadata__` is allowed to contain free form string-to-string map.
//! > - Rest of the file: byte-buffer.
//! >
//! > Duplicate keys are disallowed. [...] The byte buffer needs to be entirely indexed, and
//! > cannot contain holes. This prevents the creation of polyglot files.
//!
//! [`read`] looks at the header only: it never touches the byte buffer, so a memory-mapped
//! 10 GiB file costs its header. It keeps every key it sees, duplicates included (serde's
//! own maps keep the last one silently), and leaves judging offsets, sizes and dtypes to the
//! analyzer.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{ParseError, Result};
use crate::limits::Limits;
use crate::reader::Reader;

/// The name of the one key that is not a tensor.
pub const METADATA_KEY: &str = "__metadata__";

/// Cheap check: eight bytes of length below 2^48 (its top two bytes are zero, which no
/// text has), then a JSON object opening (`{` followed by a string, whitespace or `}`).
/// Whether the length fits the file is left to [`read`], so that a file whose header
/// length lies is still reported as a safetensors file with a bad header.
pub fn looks_like(data: &[u8]) -> bool {
    data.get(6..8) == Some(&[0, 0])
        && data.get(8) == Some(&b'{')
        && matches!(
            data.get(9),
            Some(b'"' | b'}' | b' ' | b'\n' | b'\r' | b'\t')
        )
}

/// Element types named by the spec and the reference implementation (`Dtype` in
/// `safetensors/src/tensor.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum Dtype {
    BOOL,
    F4,
    F6_E2M3,
    F6_E3M2,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    F8_E4M3FNUZ,
    F8_E5M2FNUZ,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    C64,
    F64,
    I64,
    U64,
}

impl Dtype {
    const ALL: [(Dtype, &'static str, u64); 22] = [
        (Self::BOOL, "BOOL", 8),
        (Self::F4, "F4", 4),
        (Self::F6_E2M3, "F6_E2M3", 6),
        (Self::F6_E3M2, "F6_E3M2", 6),
        (Self::U8, "U8", 8),
        (Self::I8, "I8", 8),
        (Self::F8_E5M2, "F8_E5M2", 8),
        (Self::F8_E4M3, "F8_E4M3", 8),
        (Self::F8_E8M0, "F8_E8M0", 8),
        (Self::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8),
        (Self::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8),
        (Self::I16, "I16", 16),
        (Self::U16, "U16", 16),
        (Self::F16, "F16", 16),
        (Self::BF16, "BF16", 16),
        (Self::I32, "I32", 32),
        (Self::U32, "U32", 32),
        (Self::F32, "F32", 32),
        (Self::C64, "C64", 64),
        (Self::F64, "F64", 64),
        (Self::I64, "I64", 64),
        (Self::U64, "U64", 64),
    ];

    /// The dtype spelled `name` in a header, if the spec knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(d, _, _)| *d)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(d, _, _)| *d == self)
            .map_or("?", |(_, n, _)| n)
    }

    /// Size of one element in bits (sub-byte types pack several elements per byte).
    pub fn bits(self) -> u64 {
        Self::ALL
            .iter()
            .find(|(d, _, _)| *d == self)
            .map_or(8, |(_, _, b)| *b)
    }
}

/// A tensor's `dtype` string: one the spec knows, or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtypeName {
    Known(Dtype),
    Unknown(String),
}

impl fmt::Display for DtypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known(d) => f.write_str(d.name()),
            Self::Unknown(s) => write!(f, "{s:?}"),
        }
    }
}

/// One tensor entry of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: DtypeName,
    pub shape: Vec<u64>,
    /// `data_offsets[0]`, relative to the start of the byte buffer.
    pub begin: u64,
    /// `data_offsets[1]`, one past the last byte.
    pub end: u64,
    /// Keys that appear more than once inside this entry (`"dtype"` twice ...).
    pub duplicate_fields: Vec<String>,
    /// Keys other than `dtype`, `shape` and `data_offsets` (ignored by the reference loader).
    pub extra_fields: Vec<String>,
}

/// Why a tensor's byte size cannot be computed from its shape and dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeError {
    /// The dtype is not one the spec knows.
    UnknownDtype,
    /// The product of the dimensions (or of elements and bits) does not fit in 64 bits.
    Overflow,
    /// A sub-byte dtype whose elements do not end on a byte boundary.
    Misaligned,
}

impl TensorEntry {
    /// Product of the dimensions (1 for a scalar), or `None` on overflow.
    pub fn element_count(&self) -> Option<u64> {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// Bytes the shape and dtype call for: what `end - begin` must equal.
    pub fn expected_bytes(&self) -> std::result::Result<u64, SizeError> {
        let DtypeName::Known(dtype) = &self.dtype else {
            return Err(SizeError::UnknownDtype);
        };
        let bits = self
            .element_count()
            .and_then(|n| n.checked_mul(dtype.bits()))
            .ok_or(SizeError::Overflow)?;
        if bits % 8 != 0 {
            return Err(SizeError::Misaligned);
        }
        Ok(bits / 8)
    }
}

/// A value of `__metadata__`: the spec allows strings only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaValue {
    Str(String),
    /// Any other JSON value; the string names its kind (`number`, `object` ...).
    NotString(&'static str),
}

/// The `__metadata__` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    /// An object, its entries in file order (duplicates kept).
    Map(Vec<(String, MetaValue)>),
    /// Not an object at all; the string names the JSON kind.
    NotObject(&'static str),
}

/// What a safetensors header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `N`, the declared length of the JSON header.
    pub header_len: u64,
    /// File offset of the byte buffer: `8 + N`.
    pub data_start: u64,
    /// Length of the byte buffer: everything after the header.
    pub buffer_len: u64,
    /// Tensor entries in file order.
    pub tensors: Vec<TensorEntry>,
    pub metadata: Option<Metadata>,
    /// Top-level keys seen more than once (tensor names or `__metadata__`), in file order.
    pub duplicate_keys: Vec<String>,
}

/// Reads the header of a safetensors file. Only the first `8 + N` bytes are read; the
/// length of `data` is used to size the byte buffer.
pub fn read(data: &[u8], limits: &Limits) -> Result<Header> {
    let mut r = Reader::new(data);
    let header_len = r.u64_le("safetensors header length")?;
    if header_len > limits.max_header_bytes {
        return Err(ParseError::limit(
            0,
            "safetensors header length",
            header_len,
            limits.max_header_bytes,
        ));
    }
    let json = r.take_u64(header_len, "safetensors JSON header")?;
    if json.first() != Some(&b'{') {
        return Err(ParseError::malformed(
            8,
            "safetensors header must begin with `{`",
        ));
    }
    let text = std::str::from_utf8(json).map_err(|e| {
        ParseError::malformed(
            8u64.saturating_add(e.valid_up_to() as u64),
            "safetensors header is not valid UTF-8",
        )
    })?;
    let top = parse_object(text, limits)?;

    let data_start = r.offset();
    let mut header = Header {
        header_len,
        data_start,
        buffer_len: r.remaining() as u64,
        tensors: Vec::new(),
        metadata: None,
        duplicate_keys: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for (key, value) in top {
        if !seen.insert(key.clone()) {
            header.duplicate_keys.push(key.clone());
        }
        if key == METADATA_KEY {
            header.metadata = Some(metadata(value));
        } else {
            header.tensors.push(tensor(key, value)?);
        }
    }
    Ok(header)
}

fn metadata(value: Node) -> Metadata {
    match value {
        Node::Object(entries) => Metadata::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => MetaValue::Str(s),
                        other => MetaValue::NotString(kind(&other)),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Node::Other(v) => Metadata::NotObject(kind(&v)),
    }
}

fn tensor(name: String, value: Node) -> Result<TensorEntry> {
    let bad = |what: &str| {
        ParseError::malformed(
            8,
            format!("safetensors tensor `{}`: {what}", truncate(&name, 200)),
        )
    };
    let Node::Object(fields) = value else {
        return Err(bad("entry is not an object"));
    };
    let mut dtype = None;
    let mut shape = None;
    let mut offsets = None;
    let mut duplicate_fields = Vec::new();
    let mut extra_fields = Vec::new();
    for (key, v) in fields {
        let slot_taken = match key.as_str() {
            "dtype" => dtype.replace(v).is_some(),
            "shape" => shape.replace(v).is_some(),
            "data_offsets" => offsets.replace(v).is_some(),
            _ => {
                extra_fields.push(key);
                continue;
            }
        };
        if slot_taken {
            duplicate_fields.push(key);
        }
    }
    let dtype = match dtype {
        Some(Value::String(s)) => match Dtype::from_name(&s) {
            Some(d) => DtypeName::Known(d),
            None => DtypeName::Unknown(s),
        },
        Some(_) => return Err(bad("`dtype` is not a string")),
        None => return Err(bad("`dtype` is missing")),
    };
    let shape = match shape {
        Some(Value::Array(dims)) => dims
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| bad("`shape` holds something other than non-negative integers"))?,
        Some(_) => return Err(bad("`shape` is not an array")),
        None => return Err(bad("`shape` is missing")),
    };
    let (begin, end) = match offsets {
        Some(Value::Array(pair)) => match pair.as_slice() {
            [b, e] => match (b.as_u64(), e.as_u64()) {
                (Some(b), Some(e)) => (b, e),
                _ => return Err(bad("`data_offsets` are not non-negative integers")),
            },
            _ => return Err(bad("`data_offsets` is not a pair")),
        },
        Some(_) => return Err(bad("`data_offsets` is not an array")),
        None => return Err(bad("`data_offsets` is missing")),
    };
    Ok(TensorEntry {
        name,
        dtype,
        shape,
        begin,
        end,
        duplicate_fields,
        extra_fields,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses the header text into its top-level entries, in order, duplicates kept.
fn parse_object(text: &str, limits: &Limits) -> Result<Vec<(String, Node)>> {
    let over = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let top = de
        .deserialize_map(TopVisitor {
            max_entries: limits.max_entries,
            over: &over,
        })
        .and_then(|top| de.end().map(|()| top));
    top.map_err(|e| {
        let offset = json_offset(text, &e);
        match over.get() {
            Some(count) => ParseError::limit(
                offset,
                "safetensors header entries",
                count,
                limits.max_entries,
            ),
            None => {
                ParseError::malformed(offset, format!("safetensors header is not valid JSON: {e}"))
            }
        }
    })
}

/// Turns serde_json's line/column into a file offset.
fn json_offset(text: &str, e: &serde_json::Error) -> u64 {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(e.line().saturating_sub(1))
        .map(str::len)
        .sum();
    8u64.saturating_add(line_start as u64)
        .saturating_add(e.column().saturating_sub(1) as u64)
}

/// Shortens `s` to at most `max` bytes (on a character boundary) for messages.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    format!("{}...", s.get(..end).unwrap_or_default())
}

/// A top-level value: an object whose keys are kept in order with duplicates, or any other
/// JSON value.
#[derive(Debug)]
enum Node {
    Object(Vec<(String, Value)>),
    Other(Value),
}

struct TopVisitor<'a> {
    max_entries: u64,
    /// Set to the entry count when it passes `max_entries`.
    over: &'a Cell<Option<u64>>,
}

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = Vec<(String, Node)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let count = (out.len() as u64).saturating_add(1);
            if count > self.max_entries {
                self.over.set(Some(count));
                return Err(de::Error::custom("too many header entries"));
            }
            let value = map.next_value::<Node>()?;
            out.push((key, value));
        }
        Ok(out)
    }
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            out.push((key, map.next_value::<Value>()?));
        }
        Ok(Node::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            out.push(v);
        }
        Ok(Node::Other(Value::Array(out)))
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Node, E> {
        Ok(Node::Other(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Node, E> {
        Ok(Node::Other(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Node, E> {
        Ok(Node::Other(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Node, E> {
        Ok(Node::Other(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Node, E> {
        Ok(Node::Other(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Node, E> {
        Ok(Node::Other(Value::String(v)))
    }

    fn visit_unit<E>(self) -> std::result::Result<Node, E> {
        Ok(Node::Other(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file: length, header, then `buffer_len` zero bytes.
    fn file(header: &str, buffer_len: usize) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.resize(out.len() + buffer_len, 0);
        out
    }

    const GOOD: &str = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F4","shape":[3,2],"data_offsets":[16,19]}}  "#;

    #[test]
    fn reads_a_good_header() {
        let data = file(GOOD, 19);
        assert!(looks_like(&data));
        let h = read(&data, &Limits::default()).unwrap();
        assert_eq!(h.header_len, GOOD.len() as u64);
        assert_eq!(h.data_start, 8 + GOOD.len() as u64);
        assert_eq!(h.buffer_len, 19);
        assert_eq!(h.tensors.len(), 2);
        assert_eq!(h.tensors[0].name, "a");
        assert_eq!(h.tensors[0].expected_bytes(), Ok(16));
        assert_eq!(h.tensors[1].dtype, DtypeName::Known(Dtype::F4));
        assert_eq!(h.tensors[1].expected_bytes(), Ok(3));
        assert_eq!(
            h.metadata,
            Some(Metadata::Map(vec![(
                "format".into(),
                MetaValue::Str("pt".into())
            )]))
        );
        assert!(h.duplicate_keys.is_empty());
    }

    #[test]
    fn minified_json_is_not_safetensors() {
        assert!(!looks_like(br#"{"arch":{"layers":4}}"#));
        assert!(!looks_like(b"12345678{\"a\":1}"));
        assert!(looks_like(&file("{}", 0)));
    }

    #[test]
    fn keeps_duplicate_names_and_fields() {
        let hdr = r#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2],"data_offsets":[0,2],"extra":1}}"#;
        let h = read(&file(hdr, 2), &Limits::default()).unwrap();
        assert_eq!(h.duplicate_keys, vec!["w".to_string()]);
        assert_eq!(h.tensors.len(), 2);
        assert_eq!(
            h.tensors[1].duplicate_fields,
            vec!["data_offsets".to_string()]
        );
        assert_eq!(h.tensors[1].extra_fields, vec!["extra".to_string()]);
        // The last value wins, as in serde.
        assert_eq!((h.tensors[1].begin, h.tensors[1].end), (0, 2));
    }

    #[test]
    fn sizes_overflow_and_misalign() {
        let hdr = r#"{"big":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]},"odd":{"dtype":"F4","shape":[3],"data_offsets":[0,0]},"new":{"dtype":"F128","shape":[],"data_offsets":[0,0]}}"#;
        let h = read(&file(hdr, 0), &Limits::default()).unwrap();
        assert_eq!(h.tensors[0].expected_bytes(), Err(SizeError::Overflow));
        assert_eq!(h.tensors[1].expected_bytes(), Err(SizeError::Misaligned));
        assert_eq!(h.tensors[2].dtype, DtypeName::Unknown("F128".into()));
        assert_eq!(h.tensors[2].expected_bytes(), Err(SizeError::UnknownDtype));
    }

    #[test]
    fn metadata_kinds() {
        let h = read(
            &file(r#"{"__metadata__":{"a":1,"b":"x"}}"#, 0),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            h.metadata,
            Some(Metadata::Map(vec![
                ("a".into(), MetaValue::NotString("number")),
                ("b".into(), MetaValue::Str("x".into()))
            ]))
        );
        let h = read(&file(r#"{"__metadata__":[1]}"#, 0), &Limits::default()).unwrap();
        assert_eq!(h.metadata, Some(Metadata::NotObject("array")));
    }

    #[test]
    fn refuses_bad_headers() {
        let limits = Limits::default();
        // Too large for the limit, whatever the file holds.
        let mut huge = (1u64 << 47).to_le_bytes().to_vec();
        huge.extend_from_slice(b"{\"a\":1}");
        assert!(looks_like(&huge));
        let err = read(&huge, &limits).unwrap_err();
        assert!(err.is_limit(), "{err}");
        // Longer than the file.
        let mut short = 1000u64.to_le_bytes().to_vec();
        short.extend_from_slice(b"{\"a\":1}");
        assert!(matches!(
            read(&short, &limits).unwrap_err().kind,
            crate::ParseErrorKind::Truncated { .. }
        ));
        for bad in [
            r#"{"a":1}"#,
            r#"{"a":{"dtype":1,"shape":[],"data_offsets":[0,0]}}"#,
            r#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#,
            r#"{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}}"#,
            r#"{"a":{"dtype":"U8","shape":[],"data_offsets":[0]}}"#,
            r#"{"a":{"dtype":"U8","shape":[]}}"#,
            r#"{"a":{"dtype":"U8","shape":[],"data_offsets":[0,0]}"#,
            r#"{"a":{"dtype":"U8","shape":[],"data_offsets":[0,0]}} x"#,
            r#" {}"#,
            r#"[]"#,
        ] {
            let err = read(&file(bad, 0), &limits).unwrap_err();
            assert!(
                matches!(err.kind, crate::ParseErrorKind::Malformed(_)),
                "{bad}: {err}"
            );
        }
        let mut not_utf8 = file("{\"\u{e9}\":1}", 0);
        not_utf8[10] = 0xff;
        assert!(read(&not_utf8, &limits).is_err());
    }

    #[test]
    fn entry_count_is_limited() {
        let limits = Limits {
            max_entries: 3,
            ..Limits::default()
        };
        let hdr = r#"{"__metadata__":{},"a":{},"b":{},"c":{}}"#;
        let err = read(&file(hdr, 0), &limits).unwrap_err();
        assert!(err.is_limit(), "{err}");
    }

    #[test]
    fn error_offsets_point_into_the_header() {
        let err = read(&file("{\"a\":\n  nope}", 0), &Limits::default()).unwrap_err();
        // serde_json reports the column it stopped at, on the second line.
        assert!((8 + 6..8 + 13).contains(&err.offset), "{err}");
    }

    #[test]
    fn truncation_at_every_offset_is_an_error_not_a_panic() {
        let data = file(GOOD, 19);
        let hlen = 8 + GOOD.len();
        for cut in 0..data.len() {
            let r = read(&data[..cut], &Limits::default());
            if cut < hlen {
                assert!(r.is_err(), "cut at {cut}");
            } else {
                assert_eq!(r.unwrap().buffer_len, (cut - hlen) as u64);
            }
        }
    }

    #[test]
    fn deep_json_is_refused_without_overflowing_the_stack() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(read(&file(&deep, 0), &Limits::default()).is_err());
    }

    #[test]
    fn mutated_headers_never_panic() {
        let base = file(GOOD, 19);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut data = base.clone();
            let pos = (state % data.len() as u64) as usize;
            data[pos] = (state >> 32) as u8;
            if state % 7 == 1 {
                data.truncate((state >> 40) as usize % data.len());
            }
            let _ = read(&data, &Limits::default());
        }
    }
}
