//! GGUF, the single-file model format of llama.cpp / ggml.
//!
//! Spec: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>. A file is
//!
//! ```text
//! magic "GGUF" | version u32 | tensor_count u64 | metadata_kv_count u64
//! metadata_kv[metadata_kv_count]: key gguf_string, value_type u32, value
//! tensor_info[tensor_count]: name gguf_string, n_dimensions u32, dimensions u64[n],
//!                            type u32 (ggml_type), offset u64 (relative to the data section)
//! padding to `general.alignment` (default 32) | tensor data
//! ```
//!
//! `gguf_string` is `len u64 | bytes` (no NUL). Version 1 used `u32` for the two counts, for
//! string and array lengths and for dimensions. Files written on big-endian hosts store
//! every number big-endian; they are recognised the way llama.cpp does, by a version whose
//! low 16 bits are zero.
//!
//! Only the header is read: a multi-GB model costs its metadata. Tensor data is located
//! (offset and size) but never touched.

use crate::error::{ParseError, Result};
use crate::limits::Limits;
use crate::reader::Reader;

pub const MAGIC: &[u8; 4] = b"GGUF";
/// `GGUF_DEFAULT_ALIGNMENT` in ggml.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;
/// Arrays of arrays deeper than this are refused (real files use none at all).
pub const MAX_ARRAY_DEPTH: u32 = 8;

/// A parsed GGUF header.
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    pub version: u32,
    pub big_endian: bool,
    pub metadata: Vec<Kv<'a>>,
    pub tensors: Vec<TensorInfo<'a>>,
    /// The alignment in force: `general.alignment` when it is a valid `u32` power of two,
    /// else 32.
    pub alignment: u64,
    /// Why `general.alignment` was not used, when it is present but invalid.
    pub alignment_problem: Option<String>,
    /// Offset of the first byte after the tensor infos.
    pub header_end: u64,
    /// Offset of the data section: `header_end` rounded up to `alignment`.
    pub data_start: u64,
    /// Length of the whole input.
    pub file_len: u64,
}

/// One metadata key-value pair.
#[derive(Debug, Clone)]
pub struct Kv<'a> {
    /// Offset of the key's length field.
    pub offset: u64,
    pub key: &'a [u8],
    pub value: Value<'a>,
}

impl Kv<'_> {
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key).into_owned()
    }
}

/// `gguf_metadata_value_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    /// Size in bytes of a scalar of this type; `None` for strings and arrays.
    pub fn scalar_size(self) -> Option<usize> {
        match self {
            Self::U8 | Self::I8 | Self::Bool => Some(1),
            Self::U16 | Self::I16 => Some(2),
            Self::U32 | Self::I32 | Self::F32 => Some(4),
            Self::U64 | Self::I64 | Self::F64 => Some(8),
            Self::String | Self::Array => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U32 => "uint32",
            Self::I32 => "int32",
            Self::F32 => "float32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "uint64",
            Self::I64 => "int64",
            Self::F64 => "float64",
        }
    }
}

/// A metadata value. Strings and numeric arrays borrow the input.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// Any integer type, widened.
    Int(ValueType, i128),
    Float(ValueType, f64),
    Bool(bool),
    String(&'a [u8]),
    Array(Array<'a>),
}

impl<'a> Value<'a> {
    pub fn value_type(&self) -> ValueType {
        match self {
            Self::Int(t, _) | Self::Float(t, _) => *t,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(_) => ValueType::Array,
        }
    }

    pub fn as_str(&self) -> Option<&'a [u8]> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// An array value.
#[derive(Debug, Clone)]
pub struct Array<'a> {
    pub elem_type: ValueType,
    pub len: u64,
    pub items: ArrayItems<'a>,
}

#[derive(Debug, Clone)]
pub enum ArrayItems<'a> {
    /// Raw little- or big-endian scalars, `len * scalar_size` bytes.
    Scalars(&'a [u8]),
    Strings(Vec<&'a [u8]>),
    Arrays(Vec<Array<'a>>),
}

/// One tensor's header entry.
#[derive(Debug, Clone)]
pub struct TensorInfo<'a> {
    /// Offset of the entry (its name's length field).
    pub info_offset: u64,
    pub name: &'a [u8],
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Offset relative to the data section, as stored.
    pub offset: u64,
}

impl TensorInfo<'_> {
    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(self.name).into_owned()
    }

    /// Number of elements, or `None` on overflow.
    pub fn elements(&self) -> Option<u64> {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// Size of the tensor's data in bytes: `elements / block_size * type_size`.
    pub fn byte_size(&self) -> std::result::Result<u64, SizeError> {
        let ty = ggml_type(self.ggml_type).ok_or(SizeError::UnknownType(self.ggml_type))?;
        let elements = self.elements().ok_or(SizeError::Overflow)?;
        // ggml requires the row length (ne[0]) to be a whole number of blocks.
        let ne0 = self.dims.first().copied().unwrap_or(1);
        if ne0.checked_rem(ty.block_size) != Some(0) {
            return Err(SizeError::PartialBlock {
                ne0,
                block: ty.block_size,
            });
        }
        elements
            .checked_div(ty.block_size)
            .and_then(|blocks| blocks.checked_mul(ty.type_size))
            .ok_or(SizeError::Overflow)
    }
}

/// Why a tensor's size could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeError {
    UnknownType(u32),
    Overflow,
    PartialBlock { ne0: u64, block: u64 },
}

/// Block geometry of a ggml tensor type (`ggml_type_traits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    pub id: u32,
    pub name: &'static str,
    /// Elements per block.
    pub block_size: u64,
    /// Bytes per block.
    pub type_size: u64,
    /// Removed from ggml (current llama.cpp refuses it), size still known.
    pub removed: bool,
}

const fn t(id: u32, name: &'static str, block_size: u64, type_size: u64) -> GgmlType {
    GgmlType {
        id,
        name,
        block_size,
        type_size,
        removed: false,
    }
}

const fn gone(id: u32, name: &'static str, block_size: u64, type_size: u64) -> GgmlType {
    GgmlType {
        id,
        name,
        block_size,
        type_size,
        removed: true,
    }
}

/// `enum ggml_type` with the block sizes of `ggml-common.h` (QK_K = 256).
static GGML_TYPES: &[GgmlType] = &[
    t(0, "F32", 1, 4),
    t(1, "F16", 1, 2),
    t(2, "Q4_0", 32, 18),
    t(3, "Q4_1", 32, 20),
    t(6, "Q5_0", 32, 22),
    t(7, "Q5_1", 32, 24),
    t(8, "Q8_0", 32, 34),
    t(9, "Q8_1", 32, 36),
    t(10, "Q2_K", 256, 84),
    t(11, "Q3_K", 256, 110),
    t(12, "Q4_K", 256, 144),
    t(13, "Q5_K", 256, 176),
    t(14, "Q6_K", 256, 210),
    t(15, "Q8_K", 256, 292),
    t(16, "IQ2_XXS", 256, 66),
    t(17, "IQ2_XS", 256, 74),
    t(18, "IQ3_XXS", 256, 98),
    t(19, "IQ1_S", 256, 50),
    t(20, "IQ4_NL", 32, 18),
    t(21, "IQ3_S", 256, 110),
    t(22, "IQ2_S", 256, 82),
    t(23, "IQ4_XS", 256, 136),
    t(24, "I8", 1, 1),
    t(25, "I16", 1, 2),
    t(26, "I32", 1, 4),
    t(27, "I64", 1, 8),
    t(28, "F64", 1, 8),
    t(29, "IQ1_M", 256, 56),
    t(30, "BF16", 1, 2),
    gone(31, "Q4_0_4_4", 32, 18),
    gone(32, "Q4_0_4_8", 32, 18),
    gone(33, "Q4_0_8_8", 32, 18),
    t(34, "TQ1_0", 256, 54),
    t(35, "TQ2_0", 256, 66),
    gone(36, "IQ4_NL_4_4", 32, 18),
    gone(37, "IQ4_NL_4_8", 32, 18),
    gone(38, "IQ4_NL_8_8", 32, 18),
    t(39, "MXFP4", 32, 17),
];

/// The geometry of ggml type `id`, if known.
pub fn ggml_type(id: u32) -> Option<&'static GgmlType> {
    GGML_TYPES.iter().find(|t| t.id == id)
}

/// True when `data` starts with the GGUF magic.
pub fn looks_like(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

/// Endian-aware cursor.
struct Cur<'a> {
    r: Reader<'a>,
    be: bool,
    v1: bool,
}

impl<'a> Cur<'a> {
    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.r.array::<4>(what)?;
        Ok(if self.be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&mut self, what: &'static str) -> Result<u64> {
        let b = self.r.array::<8>(what)?;
        Ok(if self.be {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A count or length: u32 in version 1, u64 after.
    fn len(&mut self, what: &'static str) -> Result<u64> {
        if self.v1 {
            self.u32(what).map(u64::from)
        } else {
            self.u64(what)
        }
    }

    fn len_size(&self) -> u64 {
        if self.v1 {
            4
        } else {
            8
        }
    }

    fn string(&mut self, limits: &Limits, what: &'static str) -> Result<&'a [u8]> {
        let at = self.r.offset();
        let n = self.len(what)?;
        if n > limits.max_string_bytes {
            return Err(ParseError::limit(
                at,
                "GGUF string length",
                n,
                limits.max_string_bytes,
            ));
        }
        self.r.take_u64(n, what)
    }

    /// Checks `count` items of at least `min_size` bytes each against the limit and against
    /// what is left of the input, before anything is allocated for them.
    fn check_count(
        &self,
        at: u64,
        count: u64,
        min_size: u64,
        limits: &Limits,
        limit: &'static str,
    ) -> Result<usize> {
        if count > limits.max_entries {
            return Err(ParseError::limit(at, limit, count, limits.max_entries));
        }
        let need = count.saturating_mul(min_size);
        let have = self.r.remaining() as u64;
        if need > have {
            return Err(ParseError::truncated(
                self.r.offset(),
                limit,
                need.saturating_sub(have),
            ));
        }
        usize::try_from(count).map_err(|_| ParseError::limit(at, limit, count, limits.max_entries))
    }
}

/// Parses the GGUF header of `data`.
pub fn parse<'a>(data: &'a [u8], limits: &Limits) -> Result<Gguf<'a>> {
    parse_partial(data, limits).map_err(|p| p.error)
}

/// What was read of a header that failed to parse: the error and the metadata entries
/// read before it (a chat template can still be judged when the tensor table is broken).
#[derive(Debug)]
pub struct Partial<'a> {
    pub error: ParseError,
    pub metadata: Vec<Kv<'a>>,
}

/// Like [`parse`], keeping the metadata read before an error.
pub fn parse_partial<'a>(
    data: &'a [u8],
    limits: &Limits,
) -> std::result::Result<Gguf<'a>, Box<Partial<'a>>> {
    let mut metadata = Vec::new();
    match parse_into(data, limits, &mut metadata) {
        Ok(mut g) => {
            g.metadata = metadata;
            let (alignment, problem) = alignment_of(&g.metadata);
            g.alignment = alignment;
            g.alignment_problem = problem;
            g.data_start = g
                .header_end
                .checked_next_multiple_of(alignment)
                .unwrap_or(u64::MAX);
            Ok(g)
        }
        Err(error) => Err(Box::new(Partial { error, metadata })),
    }
}

fn parse_into<'a>(data: &'a [u8], limits: &Limits, metadata: &mut Vec<Kv<'a>>) -> Result<Gguf<'a>> {
    let mut r = Reader::new(data);
    let magic = r.array::<4>("GGUF magic")?;
    if &magic != MAGIC {
        return Err(ParseError::malformed(0, "not a GGUF file (bad magic)"));
    }
    let raw_version = r.u32_le("GGUF version")?;
    // llama.cpp: a version with zero low bits was written with the other byte order.
    let (version, big_endian) = if raw_version & 0xffff == 0 && raw_version != 0 {
        (raw_version.swap_bytes(), true)
    } else {
        (raw_version, false)
    };
    if !(1..=3).contains(&version) {
        return Err(ParseError::unsupported(
            4,
            format!("GGUF version {version} (known: 1, 2, 3)"),
        ));
    }
    let mut c = Cur {
        r,
        be: big_endian,
        v1: version == 1,
    };
    let at = c.r.offset();
    let tensor_count = c.len("tensor count")?;
    let kv_at = c.r.offset();
    let kv_count = c.len("metadata kv count")?;
    // Smallest possible entries: key (len only) + type + 1-byte value; name (len only) +
    // n_dims + type + offset.
    let ls = c.len_size();
    let kv_n = c.check_count(
        kv_at,
        kv_count,
        ls.saturating_add(5),
        limits,
        "GGUF metadata entry count",
    )?;
    let tensor_min = ls.saturating_add(16);
    if tensor_count > limits.max_entries {
        return Err(ParseError::limit(
            at,
            "GGUF tensor count",
            tensor_count,
            limits.max_entries,
        ));
    }

    metadata.reserve(kv_n);
    for _ in 0..kv_n {
        let offset = c.r.offset();
        let key = c.string(limits, "metadata key")?;
        let ty_at = c.r.offset();
        let ty_raw = c.u32("metadata value type")?;
        let ty = ValueType::from_u32(ty_raw).ok_or_else(|| {
            ParseError::malformed(
                ty_at,
                format!(
                    "metadata `{}` has unknown value type {ty_raw}",
                    String::from_utf8_lossy(key)
                ),
            )
        })?;
        let value = read_value(&mut c, ty, limits, 0)?;
        metadata.push(Kv { offset, key, value });
    }

    let tensor_n = c.check_count(at, tensor_count, tensor_min, limits, "GGUF tensor count")?;
    let mut tensors = Vec::with_capacity(tensor_n);
    for _ in 0..tensor_n {
        let info_offset = c.r.offset();
        let name = c.string(limits, "tensor name")?;
        let nd_at = c.r.offset();
        let n_dims = c.u32("tensor n_dimensions")?;
        if n_dims > MAX_DIMS {
            return Err(ParseError::malformed(
                nd_at,
                format!(
                    "tensor `{}` has {n_dims} dimensions (at most {MAX_DIMS})",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.len("tensor dimension")?);
        }
        let ggml_type = c.u32("tensor type")?;
        let offset = c.u64("tensor offset")?;
        tensors.push(TensorInfo {
            info_offset,
            name,
            dims,
            ggml_type,
            offset,
        });
    }
    let header_end = c.r.offset();
    // Alignment and data start are filled in by `parse_partial`.
    Ok(Gguf {
        version,
        big_endian,
        metadata: Vec::new(),
        tensors,
        alignment: DEFAULT_ALIGNMENT,
        alignment_problem: None,
        header_end,
        data_start: header_end,
        file_len: data.len() as u64,
    })
}

/// `general.alignment`: a `u32` power of two (llama.cpp refuses anything else).
fn alignment_of(metadata: &[Kv<'_>]) -> (u64, Option<String>) {
    let Some(kv) = metadata.iter().find(|kv| kv.key == b"general.alignment") else {
        return (DEFAULT_ALIGNMENT, None);
    };
    match kv.value {
        Value::Int(ValueType::U32, v) => match u64::try_from(v) {
            Ok(a) if a.is_power_of_two() => (a, None),
            _ => (
                DEFAULT_ALIGNMENT,
                Some(format!("general.alignment = {v} is not a power of two")),
            ),
        },
        ref other => (
            DEFAULT_ALIGNMENT,
            Some(format!(
                "general.alignment has type {} (must be uint32)",
                other.value_type().name()
            )),
        ),
    }
}

fn read_value<'a>(
    c: &mut Cur<'a>,
    ty: ValueType,
    limits: &Limits,
    depth: u32,
) -> Result<Value<'a>> {
    let at = c.r.offset();
    Ok(match ty {
        ValueType::U8 => Value::Int(ty, c.r.u8("uint8 value")?.into()),
        ValueType::I8 => Value::Int(ty, i8::from_ne_bytes([c.r.u8("int8 value")?]).into()),
        ValueType::U16 => {
            let b = c.r.array::<2>("uint16 value")?;
            let v = if c.be {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            };
            Value::Int(ty, v.into())
        }
        ValueType::I16 => {
            let b = c.r.array::<2>("int16 value")?;
            let v = if c.be {
                i16::from_be_bytes(b)
            } else {
                i16::from_le_bytes(b)
            };
            Value::Int(ty, v.into())
        }
        ValueType::U32 => Value::Int(ty, c.u32("uint32 value")?.into()),
        ValueType::I32 => Value::Int(
            ty,
            i32::from_ne_bytes(c.u32("int32 value")?.to_ne_bytes()).into(),
        ),
        ValueType::F32 => Value::Float(ty, f32::from_bits(c.u32("float32 value")?).into()),
        ValueType::Bool => {
            let b = c.r.u8("bool value")?;
            if b > 1 {
                return Err(ParseError::malformed(
                    at,
                    format!("bool value {b} (must be 0 or 1)"),
                ));
            }
            Value::Bool(b == 1)
        }
        ValueType::String => Value::String(c.string(limits, "string value")?),
        ValueType::U64 => Value::Int(ty, c.u64("uint64 value")?.into()),
        ValueType::I64 => Value::Int(
            ty,
            i64::from_ne_bytes(c.u64("int64 value")?.to_ne_bytes()).into(),
        ),
        ValueType::F64 => Value::Float(ty, f64::from_bits(c.u64("float64 value")?)),
        ValueType::Array => Value::Array(read_array(c, limits, depth)?),
    })
}

fn read_array<'a>(c: &mut Cur<'a>, limits: &Limits, depth: u32) -> Result<Array<'a>> {
    let at = c.r.offset();
    if depth >= MAX_ARRAY_DEPTH {
        return Err(ParseError::limit(
            at,
            "GGUF array nesting depth",
            u64::from(depth).saturating_add(1),
            u64::from(MAX_ARRAY_DEPTH),
        ));
    }
    let ty_raw = c.u32("array element type")?;
    let elem_type = ValueType::from_u32(ty_raw).ok_or_else(|| {
        ParseError::malformed(at, format!("array of unknown value type {ty_raw}"))
    })?;
    let len_at = c.r.offset();
    let len = c.len("array length")?;
    let items = match elem_type.scalar_size() {
        Some(size) => {
            let n = c.check_count(len_at, len, size as u64, limits, "GGUF array length")?;
            let bytes = n.checked_mul(size).ok_or_else(|| {
                ParseError::limit(len_at, "GGUF array length", len, limits.max_entries)
            })?;
            let raw = c.r.take(bytes, "array data")?;
            if elem_type == ValueType::Bool {
                if let Some(i) = raw.iter().position(|&b| b > 1) {
                    return Err(ParseError::malformed(
                        c.r.offset()
                            .saturating_sub(bytes as u64)
                            .saturating_add(i as u64),
                        "bool array element is not 0 or 1",
                    ));
                }
            }
            ArrayItems::Scalars(raw)
        }
        None if elem_type == ValueType::String => {
            let n = c.check_count(len_at, len, c.len_size(), limits, "GGUF array length")?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(c.string(limits, "array string")?);
            }
            ArrayItems::Strings(v)
        }
        None => {
            // type + length of each nested array
            let n = c.check_count(
                len_at,
                len,
                c.len_size().saturating_add(4),
                limits,
                "GGUF array length",
            )?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_array(c, limits, depth.saturating_add(1))?);
            }
            ArrayItems::Arrays(v)
        }
    };
    Ok(Array {
        elem_type,
        len,
        items,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::manual_is_multiple_of)]
pub(crate) mod tests {
    use super::*;

    /// A tiny GGUF writer for tests (little-endian, version 2/3, or 1 with u32 lengths).
    pub struct W {
        pub buf: Vec<u8>,
        pub v1: bool,
    }

    impl W {
        pub fn new(version: u32, tensors: u64, kvs: u64) -> Self {
            let mut w = W {
                buf: b"GGUF".to_vec(),
                v1: version == 1,
            };
            w.u32(version);
            w.len(tensors);
            w.len(kvs);
            w
        }
        pub fn u32(&mut self, v: u32) {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        pub fn u64(&mut self, v: u64) {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        pub fn len(&mut self, v: u64) {
            if self.v1 {
                self.u32(v as u32)
            } else {
                self.u64(v)
            }
        }
        pub fn str(&mut self, s: &[u8]) {
            self.len(s.len() as u64);
            self.buf.extend_from_slice(s);
        }
        pub fn kv_str(&mut self, k: &str, v: &str) {
            self.str(k.as_bytes());
            self.u32(8);
            self.str(v.as_bytes());
        }
        pub fn kv_u32(&mut self, k: &str, v: u32) {
            self.str(k.as_bytes());
            self.u32(4);
            self.u32(v);
        }
        pub fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, off: u64) {
            self.str(name.as_bytes());
            self.u32(dims.len() as u32);
            for &d in dims {
                self.len(d);
            }
            self.u32(ty);
            self.u64(off);
        }
        /// Pads to `align` and appends `data_len` bytes of tensor data.
        pub fn data(mut self, align: usize, data_len: usize) -> Vec<u8> {
            while self.buf.len() % align != 0 {
                self.buf.push(0);
            }
            self.buf.resize(self.buf.len() + data_len, 0x3f);
            self.buf
        }
    }

    fn sample() -> Vec<u8> {
        let mut w = W::new(3, 2, 3);
        w.kv_str("general.architecture", "llama");
        w.kv_u32("general.alignment", 32);
        // tokenizer.ggml.tokens: array of strings
        w.str(b"tokenizer.ggml.tokens");
        w.u32(9);
        w.u32(8);
        w.u64(2);
        w.str(b"<s>");
        w.str(b"</s>");
        w.tensor("a", &[4], 0, 0);
        w.tensor("b", &[32, 2], 8, 32);
        w.data(32, 32 + 68)
    }

    #[test]
    fn parses_a_small_file() {
        let data = sample();
        let g = parse(&data, &Limits::default()).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(g.metadata.len(), 3);
        assert_eq!(g.metadata[0].key, b"general.architecture");
        assert_eq!(g.metadata[0].value.as_str(), Some(&b"llama"[..]));
        match &g.metadata[2].value {
            Value::Array(a) => match &a.items {
                ArrayItems::Strings(s) => assert_eq!(s, &vec![&b"<s>"[..], &b"</s>"[..]]),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert_eq!(g.tensors.len(), 2);
        assert_eq!(g.tensors[1].dims, vec![32, 2]);
        assert_eq!(g.tensors[0].byte_size(), Ok(16));
        assert_eq!(g.tensors[1].byte_size(), Ok(68));
        assert_eq!(g.data_start % 32, 0);
        assert!(g.data_start >= g.header_end);
        assert_eq!(g.alignment, 32);
    }

    #[test]
    fn version_1_uses_u32_lengths() {
        let mut w = W::new(1, 1, 1);
        w.kv_str("tokenizer.chat_template", "{{ x }}");
        w.tensor("t", &[8], 1, 0);
        let data = w.data(32, 16);
        let g = parse(&data, &Limits::default()).unwrap();
        assert_eq!(g.version, 1);
        assert_eq!(g.metadata[0].value.as_str(), Some(&b"{{ x }}"[..]));
        assert_eq!(g.tensors[0].dims, vec![8]);
    }

    #[test]
    fn big_endian_files_are_read() {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&0u64.to_be_bytes());
        b.extend_from_slice(&1u64.to_be_bytes());
        b.extend_from_slice(&3u64.to_be_bytes());
        b.extend_from_slice(b"k.x");
        b.extend_from_slice(&4u32.to_be_bytes());
        b.extend_from_slice(&7u32.to_be_bytes());
        let g = parse(&b, &Limits::default()).unwrap();
        assert!(g.big_endian);
        assert!(matches!(g.metadata[0].value, Value::Int(ValueType::U32, 7)));
    }

    #[test]
    fn huge_counts_are_refused_before_allocation() {
        let w = W::new(3, 0, u64::MAX);
        let e = parse(&w.buf, &Limits::default()).unwrap_err();
        assert!(e.is_limit(), "{e}");
        // Within the limit but larger than the input: truncated, not allocated.
        let w = W::new(3, 0, 900_000);
        let e = parse(&w.buf, &Limits::default()).unwrap_err();
        assert!(
            matches!(e.kind, crate::ParseErrorKind::Truncated { .. }),
            "{e}"
        );
        let w = W::new(3, u64::MAX / 2, 0);
        assert!(parse(&w.buf, &Limits::default()).unwrap_err().is_limit());
    }

    #[test]
    fn huge_string_and_array_lengths_are_refused() {
        let mut w = W::new(3, 0, 1);
        w.str(b"k");
        w.u32(8);
        w.u64(u64::MAX);
        let e = parse(&w.buf, &Limits::default()).unwrap_err();
        assert!(e.is_limit());
        let mut w = W::new(3, 0, 1);
        w.str(b"k");
        w.u32(9);
        w.u32(8);
        w.u64(500_000);
        let e = parse(&w.buf, &Limits::default()).unwrap_err();
        assert!(
            matches!(e.kind, crate::ParseErrorKind::Truncated { .. }),
            "{e}"
        );
    }

    #[test]
    fn nested_arrays_are_bounded() {
        let mut w = W::new(3, 0, 1);
        w.str(b"k");
        w.u32(9);
        for _ in 0..20 {
            w.u32(9);
            w.u64(1);
        }
        w.u32(0);
        w.u64(0);
        let e = parse(&w.buf, &Limits::default()).unwrap_err();
        assert!(e.is_limit(), "{e}");
    }

    #[test]
    fn too_many_dims_and_bad_types() {
        let mut w = W::new(3, 1, 0);
        w.tensor("t", &[1, 1, 1, 1, 1], 0, 0);
        let e = parse(&w.buf, &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("5 dimensions"), "{e}");
        let mut w = W::new(3, 0, 1);
        w.str(b"k");
        w.u32(13);
        w.u32(0);
        assert!(parse(&w.buf, &Limits::default())
            .unwrap_err()
            .to_string()
            .contains("unknown value type 13"));
        assert!(parse(b"GGUF\x07\x00\x00\x00", &Limits::default()).is_err());
        assert!(parse(b"GGML\x03\x00\x00\x00", &Limits::default()).is_err());
    }

    #[test]
    fn sizes_and_alignment() {
        let ti = |dims: Vec<u64>, ty| TensorInfo {
            info_offset: 0,
            name: b"x",
            dims,
            ggml_type: ty,
            offset: 0,
        };
        assert_eq!(ti(vec![256, 4], 12).byte_size(), Ok(4 * 144));
        assert_eq!(
            ti(vec![30], 2).byte_size(),
            Err(SizeError::PartialBlock { ne0: 30, block: 32 })
        );
        assert_eq!(ti(vec![1], 4).byte_size(), Err(SizeError::UnknownType(4)));
        assert_eq!(
            ti(vec![u64::MAX, 4], 0).byte_size(),
            Err(SizeError::Overflow)
        );
        let mut w = W::new(3, 0, 1);
        w.kv_u32("general.alignment", 24);
        let g = parse(&w.buf, &Limits::default()).unwrap();
        assert_eq!(g.alignment, 32);
        assert!(g.alignment_problem.is_some());
    }

    #[test]
    fn partial_parse_keeps_metadata() {
        let mut w = W::new(3, 1, 1);
        w.kv_str("tokenizer.chat_template", "{{ x }}");
        w.tensor("t", &[1, 1, 1, 1, 1, 1], 0, 0);
        let p = parse_partial(&w.buf, &Limits::default()).unwrap_err();
        assert_eq!(p.metadata.len(), 1);
        assert!(p.error.to_string().contains("6 dimensions"));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let data = sample();
        let g = parse(&data, &Limits::default()).unwrap();
        for n in 0..g.header_end as usize {
            assert!(parse(&data[..n], &Limits::default()).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn mutations_never_panic() {
        let base = sample();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut d = base.clone();
            let n = (seed % 4 + 1) as usize;
            for k in 0..n {
                let pos = ((seed >> (k * 8)) as usize) % d.len();
                d[pos] = (seed >> (k * 5 + 3)) as u8;
            }
            let _ = parse(&d, &Limits::default());
        }
    }
}
