//! PyTorch's legacy tar checkpoint (before 0.4's pickle format and 1.6's zip format):
//! members `sys_info`, `pickle`, `storages` and `tensors`. `torch.serialization.
//! _legacy_load.legacy_load` reads `storages` and `tensors` as pickles *interleaved with
//! raw bytes*:
//!
//! ```text
//! storages: pickle(num_storages)
//!           num_storages × { pickle((key, location, storage_type)),
//!                            int64 element count, count × element_size raw bytes }
//!           pickle(storage_views)
//! tensors:  pickle(num_tensors)
//!           num_tensors × { pickle((key, storage_id, original_tensor_type)),
//!                           int32 ndim, 4 bytes, ndim × int64 sizes, ndim × int64 strides,
//!                           int64 storage offset }
//! ```
//!
//! Every one of those pickles is unpickled with the full unpickler, so each can run code.
//! This module finds where each pickle starts and ends (by walking opcodes, as
//! `pickletools` does, without interpreting them) so that every one can be scanned.

use crate::error::{ParseError, Result};
use crate::limits::Limits;
use crate::reader::Reader;

/// A pickle inside a legacy member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: u64,
    pub len: u64,
}

/// Where the pickles of a `storages` or `tensors` member are, and where the layout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub pickles: Vec<Span>,
    /// Offset just past the last structure PyTorch reads; bytes after it are never read.
    pub end: u64,
}

/// Splits a legacy `storages` member.
pub fn storages(data: &[u8], limits: &Limits) -> Result<Layout> {
    let mut r = Reader::new(data);
    let mut pickles = Vec::new();
    let (first, count) = pickle(&mut r, limits)?;
    pickles.push(first.span);
    let count = count_of(&first, count, limits)?;
    for _ in 0..count {
        let (args, _) = pickle(&mut r, limits)?;
        let at = args.span.offset;
        pickles.push(args.span);
        let elem = args.element_size.ok_or_else(|| {
            ParseError::unsupported(at, "legacy storage record names no known storage type")
        })?;
        let n = r.i64_le("storage element count")?;
        let n = u64::try_from(n).map_err(|_| {
            ParseError::malformed(r.offset(), format!("negative storage element count {n}"))
        })?;
        let bytes = n
            .checked_mul(elem)
            .ok_or_else(|| ParseError::malformed(r.offset(), "storage byte count overflows"))?;
        r.take_u64(bytes, "storage bytes")?;
    }
    let (views, _) = pickle(&mut r, limits)?;
    pickles.push(views.span);
    Ok(Layout {
        pickles,
        end: r.offset(),
    })
}

/// Splits a legacy `tensors` member.
pub fn tensors(data: &[u8], limits: &Limits) -> Result<Layout> {
    let mut r = Reader::new(data);
    let mut pickles = Vec::new();
    let (first, count) = pickle(&mut r, limits)?;
    pickles.push(first.span);
    let count = count_of(&first, count, limits)?;
    for _ in 0..count {
        let (args, _) = pickle(&mut r, limits)?;
        pickles.push(args.span);
        let ndim = r.i32_le("tensor ndim")?;
        let ndim = u64::try_from(ndim)
            .map_err(|_| ParseError::malformed(r.offset(), format!("negative ndim {ndim}")))?;
        r.skip(4, "ndim padding")?;
        let dims = ndim
            .checked_mul(16)
            .ok_or_else(|| ParseError::malformed(r.offset(), "ndim overflows"))?;
        r.take_u64(dims, "tensor sizes and strides")?;
        r.skip(8, "storage offset")?;
    }
    Ok(Layout {
        pickles,
        end: r.offset(),
    })
}

fn count_of(first: &Walked, count: Option<i64>, limits: &Limits) -> Result<u64> {
    let count = count.ok_or_else(|| {
        ParseError::unsupported(
            first.span.offset,
            "legacy record count is not a plain integer",
        )
    })?;
    let count = u64::try_from(count).map_err(|_| {
        ParseError::malformed(first.span.offset, format!("negative record count {count}"))
    })?;
    if count > limits.max_entries {
        return Err(ParseError::limit(
            first.span.offset,
            "legacy storage or tensor records",
            count,
            limits.max_entries,
        ));
    }
    Ok(count)
}

/// What walking one pickle's opcodes showed.
#[derive(Debug)]
struct Walked {
    span: Span,
    /// Element size of the storage type a record names (`torch.FloatStorage` → 4).
    element_size: Option<u64>,
}

/// Walks one pickle from the reader's position to its STOP. Returns the last integer
/// pushed (the value of a pickle that is just an integer).
fn pickle(r: &mut Reader<'_>, limits: &Limits) -> Result<(Walked, Option<i64>)> {
    let start = r.offset();
    let mut last_int = None;
    let mut last_text: Option<&[u8]> = None;
    let mut element_size = None;
    let mut ops = 0u64;
    loop {
        ops = ops.saturating_add(1);
        if ops > limits.max_pickle_ops {
            return Err(ParseError::limit(
                r.offset(),
                "pickle opcodes",
                ops,
                limits.max_pickle_ops,
            ));
        }
        let at = r.offset();
        let op = r.u8("pickle opcode")?;
        match op {
            b'.' => break,
            // No argument.
            b'('
            | b'0'
            | b'1'
            | b'2'
            | b'N'
            | b'Q'
            | b'R'
            | b'a'
            | b'b'
            | b'd'
            | b'}'
            | b'e'
            | b'l'
            | b']'
            | b'o'
            | b's'
            | b't'
            | b')'
            | b'u'
            | 0x81
            | 0x85..=0x89
            | 0x8f
            | 0x90..=0x92
            | 0x94
            | 0x97
            | 0x98 => {}
            0x93 => {
                // STACK_GLOBAL: module and name are the last two strings pushed.
                if let Some(size) = last_text.and_then(element_size_of) {
                    element_size = Some(size);
                }
            }
            0x80 | b'h' | b'q' | 0x82 => r.skip(1, "pickle argument")?,
            b'K' => last_int = Some(i64::from(r.u8("BININT1")?)),
            b'M' => {
                let b = r.array::<2>("BININT2")?;
                last_int = Some(i64::from(u16::from_le_bytes(b)));
            }
            b'J' => last_int = Some(i64::from(r.i32_le("BININT")?)),
            0x83 => r.skip(2, "EXT2")?,
            b'j' | b'r' | 0x84 => r.skip(4, "pickle argument")?,
            b'G' | 0x95 => r.skip(8, "pickle argument")?,
            0x8a => {
                let n = r.u8("LONG1 length")?;
                let b = r.take(usize::from(n), "LONG1")?;
                last_int = long_le(b);
            }
            0x8b => {
                let n = r.u32_le("LONG4 length")?;
                r.take_u64(u64::from(n), "LONG4")?;
                last_int = None;
            }
            b'U' | b'C' | 0x8c => {
                let n = r.u8("short string length")?;
                last_text = Some(r.take(usize::from(n), "short string")?);
            }
            b'T' | b'B' | b'X' => {
                let n = r.u32_le("string length")?;
                last_text = Some(r.take_u64(u64::from(n), "string")?);
            }
            0x8d | 0x8e | 0x96 => {
                let n = r.u64_le("string length")?;
                last_text = Some(r.take_u64(n, "string")?);
            }
            b'I' | b'L' => {
                let line = r.line(256, "integer")?;
                last_int = std::str::from_utf8(line)
                    .ok()
                    .and_then(|s| s.trim_end_matches('L').parse().ok());
            }
            b'F' | b'g' | b'p' | b'P' => {
                r.line(64 * 1024, "pickle line argument")?;
            }
            b'S' | b'V' => {
                last_text = Some(r.line(64 * 1024 * 1024, "text string")?);
            }
            b'c' | b'i' => {
                r.line(64 * 1024, "global module")?;
                let name = r.line(64 * 1024, "global name")?;
                if let Some(size) = element_size_of(name) {
                    element_size = Some(size);
                }
            }
            other => {
                return Err(ParseError::malformed(
                    at,
                    format!("unknown pickle opcode {other:#04x} in a legacy record"),
                ))
            }
        }
    }
    let span = Span {
        offset: start,
        len: r.offset().saturating_sub(start),
    };
    Ok((Walked { span, element_size }, last_int))
}

/// A little-endian two's-complement integer of at most 8 bytes.
fn long_le(b: &[u8]) -> Option<i64> {
    if b.len() > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    if b.last().is_some_and(|&x| x & 0x80 != 0) {
        buf = [0xff; 8];
    }
    buf.get_mut(..b.len())?.copy_from_slice(b);
    Some(i64::from_le_bytes(buf))
}

/// Bytes per element of a legacy storage class, as `torch.storage.
/// _get_dtype_from_pickle_storage_type` maps it.
fn element_size_of(name: &[u8]) -> Option<u64> {
    Some(match name {
        b"DoubleStorage" | b"LongStorage" | b"ComplexFloatStorage" => 8,
        b"FloatStorage" | b"IntStorage" | b"QInt32Storage" => 4,
        b"HalfStorage" | b"BFloat16Storage" | b"ShortStorage" => 2,
        b"CharStorage" | b"ByteStorage" | b"BoolStorage" | b"QUInt8Storage" | b"QInt8Storage"
        | b"QUInt4x2Storage" | b"QUInt2x4Storage" | b"UntypedStorage" => 1,
        b"ComplexDoubleStorage" => 16,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pickle.dumps(n, protocol=2)` for small n.
    fn int_pickle(n: u8) -> Vec<u8> {
        vec![0x80, 2, b'K', n, b'.']
    }

    /// `(key, 'cpu', torch.FloatStorage)` as protocol 2 writes it.
    fn storage_args(key: &str) -> Vec<u8> {
        let mut p = vec![0x80, 2, b'X'];
        p.extend_from_slice(&(key.len() as u32).to_le_bytes());
        p.extend_from_slice(key.as_bytes());
        p.extend_from_slice(b"X\x03\x00\x00\x00cpu");
        p.extend_from_slice(b"ctorch\nFloatStorage\n");
        p.extend_from_slice(b"\x87.");
        p
    }

    #[test]
    fn storages_are_split_into_every_pickle() {
        let mut d = int_pickle(2);
        for key in ["1", "2"] {
            d.extend(storage_args(key));
            d.extend_from_slice(&3i64.to_le_bytes());
            d.extend_from_slice(&[0x2e; 12]); // raw floats that look like STOP bytes
        }
        let views = b"\x80\x02]q\x00.";
        d.extend_from_slice(views);
        let layout = storages(&d, &Limits::default()).unwrap();
        assert_eq!(layout.pickles.len(), 4);
        assert_eq!(layout.end, d.len() as u64);
        let last = layout.pickles[3];
        assert_eq!(last.len, views.len() as u64);
    }

    #[test]
    fn tensors_are_split() {
        let mut d = int_pickle(1);
        d.extend(storage_args("7"));
        d.extend_from_slice(&2i32.to_le_bytes());
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&[0; 40]);
        let layout = tensors(&d, &Limits::default()).unwrap();
        assert_eq!(layout.pickles.len(), 2);
        assert_eq!(layout.end, d.len() as u64);
    }

    #[test]
    fn hostile_inputs_are_errors() {
        // Absurd count.
        let mut d = vec![0x80, 2, b'J'];
        d.extend_from_slice(&i32::MAX.to_le_bytes());
        d.push(b'.');
        assert!(storages(&d, &Limits::default()).unwrap_err().is_limit());
        // Unknown storage type.
        let mut d = int_pickle(1);
        d.extend_from_slice(b"\x80\x02cos\nsystem\n.");
        assert!(storages(&d, &Limits::default()).is_err());
        // Truncation at every offset.
        let mut full = int_pickle(1);
        full.extend(storage_args("1"));
        full.extend_from_slice(&1i64.to_le_bytes());
        full.extend_from_slice(&[0; 4]);
        full.extend_from_slice(b"\x80\x02].");
        assert!(storages(&full, &Limits::default()).is_ok());
        for cut in 0..full.len() {
            assert!(storages(&full[..cut], &Limits::default()).is_err(), "{cut}");
        }
    }
}
