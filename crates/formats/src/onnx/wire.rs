//! The Protocol Buffers wire format, walked without allocating, before prost decodes.
//! Spec: <https://protobuf.dev/programming-guides/encoding/>
//!
//! > A protocol buffer message is a series of key-value pairs. [...] The "tag" of a record
//! > is encoded as a varint formed from the field number and the wire type via the formula
//! > `(field_number << 3) | wire_type`. [...] LEN records carry a varint length followed by
//! > that many bytes.
//!
//! prost decodes hostile bytes safely (it bounds recursion at 100 and checks lengths), but
//! it allocates for every declared field it meets: a message of two bytes on the wire
//! becomes a struct of a few hundred bytes on the heap. [`check`] walks the same bytes first
//! against a [`Schema`] that mirrors the prost structs, and counts what prost would allocate
//! against [`Limits`], so a file costs memory in proportion to the limits, not to how many
//! empty messages it can pack. Fields the schema does not declare (big `raw_data` blobs
//! among them) are stepped over without being read, just as prost skips them. The walker
//! is shared by the ONNX and TensorFlow readers; it lives here so that `lib.rs` stays as
//! it is.

use crate::error::{ParseError, Result};
use crate::limits::Limits;

/// Deepest message nesting accepted; below prost's own recursion limit of 100, so that
/// the walker, not prost, refuses a deep file and says where.
pub const MAX_DEPTH: u32 = 64;

/// The value of one field as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl Value<'_> {
    /// The wire type number (0, 1, 2 or 5).
    pub fn wire_type(&self) -> u8 {
        match self {
            Self::Varint(_) => 0,
            Self::Fixed64(_) => 1,
            Self::Len(_) => 2,
            Self::Fixed32(_) => 5,
        }
    }
}

/// One field: its number, its value and the offset of its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub offset: u64,
}

/// The fields of one message, in wire order. Yields at most one error, then stops.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data` in the whole input, for error messages.
    base: u64,
    failed: bool,
    /// Number and wire type of the last tag read, even if its value then failed.
    last_tag: Option<(u32, u8)>,
}

impl<'a> Fields<'a> {
    pub fn new(data: &'a [u8], base: u64) -> Self {
        Self {
            data,
            pos: 0,
            base,
            failed: false,
            last_tag: None,
        }
    }

    /// Number and wire type of the last tag read, even when its value was cut short.
    pub fn last_tag(&self) -> Option<(u32, u8)> {
        self.last_tag
    }

    fn offset(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10u32 {
            let Some(&byte) = self.data.get(self.pos) else {
                return Err(ParseError::truncated(self.offset(), what, 1));
            };
            self.pos = self.pos.saturating_add(1);
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a 64-bit value.
            if i == 9 && byte > 1 {
                return Err(ParseError::malformed(
                    self.offset().saturating_sub(1),
                    format!("{what}: varint longer than 64 bits"),
                ));
            }
            value |= bits.checked_shl(i.saturating_mul(7)).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ParseError::malformed(
            self.offset(),
            format!("{what}: varint longer than 10 bytes"),
        ))
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let short =
            || ParseError::truncated(self.offset(), what, n.saturating_sub(rest.len() as u64));
        let n = usize::try_from(n).map_err(|_| short())?;
        let (head, _) = rest.split_at_checked(n).ok_or_else(short)?;
        self.pos = self.pos.saturating_add(n);
        Ok(head)
    }

    fn next_field(&mut self) -> Result<Field<'a>> {
        let offset = self.offset();
        let key = self.varint("protobuf field tag")?;
        let number = u32::try_from(key >> 3).unwrap_or(u32::MAX);
        if number == 0 || number > 0x1fff_ffff {
            return Err(ParseError::malformed(
                offset,
                format!("protobuf field number {} is out of range", key >> 3),
            ));
        }
        self.last_tag = Some((number, (key & 7) as u8));
        let value = match key & 7 {
            0 => Value::Varint(self.varint("protobuf varint")?),
            1 => {
                let b = self.take(8, "protobuf fixed64")?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let len = self.varint("protobuf length")?;
                Value::Len(self.take(len, "protobuf length-delimited field")?)
            }
            5 => {
                let b = self.take(4, "protobuf fixed32")?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                Value::Fixed32(u32::from_le_bytes(a))
            }
            3 | 4 => {
                return Err(ParseError::unsupported(
                    offset,
                    format!("protobuf group (field {number}); no model format uses them"),
                ))
            }
            w => {
                return Err(ParseError::malformed(
                    offset,
                    format!("protobuf wire type {w} (field {number}) does not exist"),
                ))
            }
        };
        Ok(Field {
            number,
            value,
            offset,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let field = self.next_field();
        self.failed = field.is_err();
        Some(field)
    }
}

/// What a declared field holds, as far as memory is concerned.
#[derive(Debug)]
pub enum Kind {
    /// A nested message (or a map entry), walked with its own schema.
    Message(&'static Schema),
    /// A `string`: must be UTF-8, costs one string.
    Str,
    /// A `bytes` field that prost copies: costs one string.
    Bytes,
    /// A repeated integer, packed or not: costs one scalar per value.
    RepeatedInt,
}

/// The fields of a message that its prost struct declares and that cost memory. Singular
/// scalars are left out: prost overwrites them in place.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub fields: &'static [(u32, Kind)],
}

impl Schema {
    fn kind(&self, number: u32) -> Option<&Kind> {
        self.fields
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, k)| k)
    }
}

/// What a walk found and what prost will allocate for it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub messages: u64,
    pub strings: u64,
    pub scalars: u64,
    /// Deepest nesting met (the top message is depth 0).
    pub depth: u32,
}

/// Walks `data` as a `schema` message, checking the wire format, UTF-8 in string fields,
/// string lengths, nesting depth, and the number of messages, strings and repeated scalars
/// (each at most `limits.max_entries`).
pub fn check(data: &[u8], schema: &'static Schema, limits: &Limits) -> Result<Tally> {
    let mut tally = Tally::default();
    walk(data, 0, schema, 0, limits, &mut tally)?;
    Ok(tally)
}

fn charge(
    counter: &mut u64,
    n: u64,
    what: &'static str,
    offset: u64,
    limits: &Limits,
) -> Result<()> {
    *counter = counter.saturating_add(n);
    if *counter > limits.max_entries {
        return Err(ParseError::limit(
            offset,
            what,
            *counter,
            limits.max_entries,
        ));
    }
    Ok(())
}

fn walk(
    data: &[u8],
    base: u64,
    schema: &'static Schema,
    depth: u32,
    limits: &Limits,
    tally: &mut Tally,
) -> Result<()> {
    tally.depth = tally.depth.max(depth);
    for field in Fields::new(data, base) {
        let field = field?;
        let Some(kind) = schema.kind(field.number) else {
            continue; // not declared: prost skips it without copying
        };
        let mismatch = || {
            ParseError::malformed(
                field.offset,
                format!(
                    "{}.{} has wire type {}, which does not fit its declared type",
                    schema.name,
                    field.number,
                    field.value.wire_type()
                ),
            )
        };
        match (kind, field.value) {
            (Kind::Message(inner), Value::Len(bytes)) => {
                charge(
                    &mut tally.messages,
                    1,
                    "protobuf messages",
                    field.offset,
                    limits,
                )?;
                let next = depth.saturating_add(1);
                if next > MAX_DEPTH {
                    return Err(ParseError::limit(
                        field.offset,
                        "protobuf message nesting",
                        u64::from(next),
                        u64::from(MAX_DEPTH),
                    ));
                }
                let inner_base = payload_offset(data, bytes, base).unwrap_or(field.offset);
                walk(bytes, inner_base, inner, next, limits, tally)?;
            }
            (Kind::Str | Kind::Bytes, Value::Len(bytes)) => {
                charge(
                    &mut tally.strings,
                    1,
                    "protobuf strings",
                    field.offset,
                    limits,
                )?;
                if bytes.len() as u64 > limits.max_string_bytes {
                    return Err(ParseError::limit(
                        field.offset,
                        "protobuf string length",
                        bytes.len() as u64,
                        limits.max_string_bytes,
                    ));
                }
                if matches!(kind, Kind::Str) && std::str::from_utf8(bytes).is_err() {
                    return Err(ParseError::malformed(
                        field.offset,
                        format!("{}.{} is not valid UTF-8", schema.name, field.number),
                    ));
                }
            }
            (Kind::RepeatedInt, Value::Varint(_)) => {
                charge(
                    &mut tally.scalars,
                    1,
                    "protobuf repeated integers",
                    field.offset,
                    limits,
                )?;
            }
            (Kind::RepeatedInt, Value::Len(bytes)) => {
                // Packed: every value takes at least one byte.
                charge(
                    &mut tally.scalars,
                    bytes.len() as u64,
                    "protobuf repeated integers",
                    field.offset,
                    limits,
                )?;
                if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                    return Err(ParseError::malformed(
                        field.offset,
                        format!(
                            "{}.{}: packed varints end mid-value",
                            schema.name, field.number
                        ),
                    ));
                }
            }
            _ => return Err(mismatch()),
        }
    }
    Ok(())
}

/// Offset of `inner` (a sub-slice of `outer`) in the whole input.
fn payload_offset(outer: &[u8], inner: &[u8], base: u64) -> Option<u64> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    Some(base.saturating_add(start as u64))
}

/// The distinct (field number, wire type) pairs at the top level of a message, for telling
/// protobuf formats apart, and whether the whole top level parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopLevel {
    pub fields: Vec<(u32, u8)>,
    /// True when every top-level field parsed up to the end of the input.
    pub complete: bool,
}

impl TopLevel {
    /// Scans the top level (without descending into fields).
    pub fn scan(data: &[u8]) -> Self {
        let mut out = Self {
            fields: Vec::new(),
            complete: true,
        };
        let mut fields = Fields::new(data, 0);
        while let Some(field) = fields.next() {
            if field.is_err() {
                out.complete = false;
            }
            // A field cut short still says which field it was.
            if let Some(key) = fields.last_tag() {
                if !out.fields.contains(&key) {
                    out.fields.push(key);
                }
            }
        }
        out
    }

    pub fn has(&self, number: u32, wire_type: u8) -> bool {
        self.fields.contains(&(number, wire_type))
    }

    /// True when every field seen is one of `allowed`.
    pub fn only(&self, allowed: &[(u32, u8)]) -> bool {
        self.fields.iter().all(|f| allowed.contains(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static LEAF: Schema = Schema {
        name: "Leaf",
        fields: &[(1, Kind::Str), (2, Kind::RepeatedInt)],
    };
    static TREE: Schema = Schema {
        name: "Tree",
        fields: &[(1, Kind::Message(&TREE)), (2, Kind::Message(&LEAF))],
    };

    fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = varint(u64::from(number) << 3 | 2);
        out.extend(varint(payload.len() as u64));
        out.extend_from_slice(payload);
        out
    }

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_varint(v, &mut out);
        out
    }

    #[test]
    fn fields_and_offsets() {
        let mut data = vec![0x08, 0x96, 0x01]; // field 1 varint 150
        data.extend(len_field(2, b"hi"));
        data.extend([0x1d, 1, 0, 0, 0]); // field 3 fixed32
        let fields: Vec<_> = Fields::new(&data, 0).collect::<Result<_>>().unwrap();
        assert_eq!(fields[0].value, Value::Varint(150));
        assert_eq!(fields[1].value, Value::Len(b"hi"));
        assert_eq!(fields[1].offset, 3);
        assert_eq!(fields[2].value, Value::Fixed32(1));
    }

    #[test]
    fn bad_wire_data_is_an_error() {
        for bad in [
            &[0x00][..],         // field 0
            &[0x0b],             // group
            &[0x0e],             // wire type 6
            &[0x12, 0x05, b'a'], // length past the end
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ], // 11-byte varint
            &[0x08, 0x80],       // unterminated varint
            &[
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // length 2^64-1
        ] {
            assert!(
                Fields::new(bad, 0).any(|f| f.is_err()),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn check_counts_and_limits() {
        let leaf = {
            let mut l = len_field(1, b"name");
            l.extend([0x10, 0x01, 0x10, 0x02]); // two unpacked ints
            l.extend(len_field(2, &[1, 2, 3])); // three packed ints
            l
        };
        let tree = [len_field(2, &leaf), len_field(2, &leaf)].concat();
        let tally = check(&tree, &TREE, &Limits::default()).unwrap();
        assert_eq!(tally.messages, 2);
        assert_eq!(tally.strings, 2);
        assert_eq!(tally.scalars, 10);
        let tight = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        assert!(check(&tree, &TREE, &tight).unwrap_err().is_limit());
    }

    #[test]
    fn check_refuses_bad_utf8_and_wire_type_mismatch() {
        let bad_utf8 = len_field(2, &len_field(1, &[0xff]));
        let err = check(&bad_utf8, &TREE, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
        assert_eq!(err.offset, 2);
        let mismatch = [0x10, 0x01]; // Tree.2 as a varint
        assert!(check(&mismatch, &TREE, &Limits::default()).is_err());
    }

    #[test]
    fn deep_nesting_is_limited() {
        let mut data = Vec::new();
        for _ in 0..(MAX_DEPTH + 5) {
            data = len_field(1, &data);
        }
        let err = check(&data, &TREE, &Limits::default()).unwrap_err();
        assert!(err.is_limit(), "{err}");
        let mut ok = Vec::new();
        for _ in 0..MAX_DEPTH {
            ok = len_field(1, &ok);
        }
        assert_eq!(
            check(&ok, &TREE, &Limits::default()).unwrap().depth,
            MAX_DEPTH
        );
    }

    #[test]
    fn undeclared_fields_are_skipped_not_counted() {
        let mut data = len_field(9, &vec![0u8; 100_000]);
        data.extend([0x18, 0x01]);
        let tally = check(&data, &TREE, &Limits::default()).unwrap();
        assert_eq!(tally, Tally::default());
    }

    #[test]
    fn top_level_scan() {
        let mut data = vec![0x08, 0x07];
        data.extend(len_field(7, b"graph"));
        data.extend(len_field(7, b"again"));
        let top = TopLevel::scan(&data);
        assert_eq!(top.fields, vec![(1, 0), (7, 2)]);
        assert!(top.complete);
        assert!(top.only(&[(1, 0), (7, 2), (8, 2)]));
        data.push(0x12);
        assert!(!TopLevel::scan(&data).complete);
    }
}
