//! HDF5, as far as legacy Keras `.h5` models need it: the root group's attributes.
//!
//! Spec: <https://docs.hdfgroup.org/hdf5/develop/_f_m_t3.html> (File Format Specification
//! Version 3). Keras 2 writes the model as root attributes: `model_config` and
//! `training_config` (JSON, `json.dumps(...).encode('utf8')`), `keras_version`, `backend`.
//! h5py 2 stored the JSON as a fixed-length string inside the attribute message; h5py 3
//! stores `bytes` as a variable-length string whose characters live in a global heap
//! collection.
//!
//! This reader is deliberately small and honest about its reach:
//!
//! - superblock versions 0-3 (found at 0, 512, 1024, ... for files with a user block);
//! - the root object header, versions 1 and 2, following continuation messages;
//! - attribute messages versions 1-3 with fixed-length and variable-length (global heap)
//!   string values; link messages of the root group (to see external links);
//! - anything else it meets on that path (dense attribute storage in a fractal heap,
//!   shared messages, other datatypes for a string-looking attribute) is listed in
//!   [`RootInfo::unread`] so that the caller can fall back to [`scan_json_objects`].
//!
//! Nothing else of the file (datasets, B-trees, chunks) is read.

use std::collections::HashSet;

use serde_json::Value;

use crate::error::{ParseError, Result};
use crate::limits::Limits;
use crate::reader::Reader;

pub const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Continuation blocks followed before giving up (real files use a handful).
const MAX_CONTINUATIONS: usize = 256;

/// What the root object header holds.
#[derive(Debug, Clone, Default)]
pub struct RootInfo {
    pub superblock_offset: u64,
    pub superblock_version: u8,
    /// Absolute offset of the root object header.
    pub root_header: u64,
    pub attributes: Vec<Attribute>,
    pub links: Vec<Link>,
    /// What was present but not read (reason, offset).
    pub unread: Vec<(String, u64)>,
}

/// A root attribute.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    /// Offset of the attribute message.
    pub offset: u64,
    pub value: AttrValue,
}

#[derive(Debug, Clone)]
pub enum AttrValue {
    /// String elements (fixed-length, padding removed, or variable-length).
    Strings(Vec<Vec<u8>>),
    /// A value of another type: the datatype class number.
    Other(u8),
    /// A string value that could not be read, and why.
    Unreadable(String),
}

/// A link message of the root group.
#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    pub offset: u64,
    pub kind: LinkKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    Hard,
    Soft(String),
    /// `(file, object path)`: the link opens another file.
    External(String, String),
    Other(u8),
}

/// Offset of the superblock: 0, 512, 1024, 2048 ... (the user block sizes HDF5 allows).
pub fn find_superblock(data: &[u8]) -> Option<u64> {
    let mut off = 0u64;
    loop {
        let o = usize::try_from(off).ok()?;
        let end = o.checked_add(SIGNATURE.len())?;
        match data.get(o..end) {
            Some(s) if s == SIGNATURE => return Some(off),
            Some(_) => {}
            None => return None,
        }
        off = if off == 0 { 512 } else { off.checked_mul(2)? };
    }
}

struct File<'a> {
    data: &'a [u8],
    base: u64,
    o: u8,
    l: u8,
    limits: &'a Limits,
}

impl<'a> File<'a> {
    fn addr(&self, r: &mut Reader<'_>, what: &'static str) -> Result<Option<u64>> {
        let v = read_uint(r, self.o, what)?;
        let undefined = match self.o {
            8 => v == u64::MAX,
            n => v == (1u64 << (u32::from(n) * 8)).wrapping_sub(1),
        };
        Ok(if undefined { None } else { Some(v) })
    }

    fn len(&self, r: &mut Reader<'_>, what: &'static str) -> Result<u64> {
        read_uint(r, self.l, what)
    }

    /// A reader at absolute file position `base + addr`.
    fn at(&self, addr: u64, what: &'static str) -> Result<(Reader<'a>, u64)> {
        let abs = self
            .base
            .checked_add(addr)
            .ok_or_else(|| ParseError::malformed(addr, format!("{what} address overflows")))?;
        let start = usize::try_from(abs)
            .ok()
            .filter(|&s| s <= self.data.len())
            .ok_or_else(|| {
                ParseError::malformed(
                    abs,
                    format!(
                        "{what} at {abs} lies beyond the end of the file ({} bytes)",
                        self.data.len()
                    ),
                )
            })?;
        let slice = self.data.get(start..).unwrap_or_default();
        Ok((Reader::new(slice), abs))
    }
}

fn read_uint(r: &mut Reader<'_>, size: u8, what: &'static str) -> Result<u64> {
    let b = r.take(usize::from(size), what)?;
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate().take(8) {
        v |= u64::from(x) << (i.saturating_mul(8) as u32);
    }
    Ok(v)
}

/// Reads the superblock and the root group's attributes and links.
pub fn read_root(data: &[u8], limits: &Limits) -> Result<RootInfo> {
    let sb = find_superblock(data)
        .ok_or_else(|| ParseError::malformed(0, "no HDF5 superblock signature"))?;
    let sb_us = usize::try_from(sb).map_err(|_| ParseError::malformed(sb, "superblock offset"))?;
    let mut r = Reader::new(data.get(sb_us..).unwrap_or_default());
    r.skip(8, "superblock signature")?;
    let version = r.u8("superblock version")?;
    let (o, l);
    let root_addr;
    match version {
        0 | 1 => {
            r.skip(4, "superblock versions")?; // free-space, root symtab, reserved, shared header
            o = r.u8("size of offsets")?;
            l = r.u8("size of lengths")?;
            check_sizes(sb, o, l)?;
            r.skip(1 + 2 + 2 + 4, "superblock B-tree constants and flags")?;
            if version == 1 {
                r.skip(4, "indexed storage K")?;
            }
            let f = File {
                data,
                base: sb,
                o,
                l,
                limits,
            };
            let _base = f.addr(&mut r, "base address")?;
            f.addr(&mut r, "free-space address")?;
            f.addr(&mut r, "end of file address")?;
            f.addr(&mut r, "driver information address")?;
            // Root group symbol table entry.
            f.addr(&mut r, "root link name offset")?;
            root_addr = f.addr(&mut r, "root object header address")?;
        }
        2 | 3 => {
            o = r.u8("size of offsets")?;
            l = r.u8("size of lengths")?;
            check_sizes(sb, o, l)?;
            r.skip(1, "file consistency flags")?;
            let f = File {
                data,
                base: sb,
                o,
                l,
                limits,
            };
            f.addr(&mut r, "base address")?;
            f.addr(&mut r, "superblock extension address")?;
            f.addr(&mut r, "end of file address")?;
            root_addr = f.addr(&mut r, "root object header address")?;
        }
        v => {
            return Err(ParseError::unsupported(
                sb.saturating_add(8),
                format!("HDF5 superblock version {v}"),
            ))
        }
    }
    let root_addr = root_addr
        .ok_or_else(|| ParseError::malformed(sb, "root object header address is undefined"))?;
    let f = File {
        data,
        base: sb,
        o,
        l,
        limits,
    };
    let mut info = RootInfo {
        superblock_offset: sb,
        superblock_version: version,
        root_header: sb.saturating_add(root_addr),
        ..RootInfo::default()
    };
    read_object_header(&f, root_addr, &mut info)?;
    Ok(info)
}

fn check_sizes(at: u64, o: u8, l: u8) -> Result<()> {
    for (what, v) in [("size of offsets", o), ("size of lengths", l)] {
        if ![2u8, 4, 8].contains(&v) {
            return Err(ParseError::unsupported(
                at,
                format!("{what} {v} (supported: 2, 4, 8)"),
            ));
        }
    }
    Ok(())
}

/// A block of header messages still to read: (absolute offset, bytes, header version).
struct Chunk<'a> {
    r: Reader<'a>,
    abs: u64,
    v2: bool,
    creation_order: bool,
    /// Bytes at the end that are not messages (the checksum of an OCHK block).
    tail: usize,
}

fn read_object_header(f: &File<'_>, addr: u64, info: &mut RootInfo) -> Result<()> {
    let (mut r, abs) = f.at(addr, "root object header")?;
    let mut chunks: Vec<Chunk<'_>> = Vec::new();
    if r.rest().starts_with(b"OHDR") {
        r.skip(4, "OHDR")?;
        let version = r.u8("object header version")?;
        if version != 2 {
            return Err(ParseError::unsupported(
                abs.saturating_add(4),
                format!("object header version {version}"),
            ));
        }
        let flags = r.u8("object header flags")?;
        if flags & 0x20 != 0 {
            r.skip(16, "object header times")?;
        }
        if flags & 0x10 != 0 {
            r.skip(4, "attribute phase change values")?;
        }
        let size = read_uint(&mut r, 1u8 << (flags & 3), "size of chunk 0")?;
        let at = abs.saturating_add(r.offset());
        let body = r.take_u64(size, "object header chunk 0")?;
        // Chunk 0's checksum follows its `size` bytes.
        chunks.push(Chunk {
            r: Reader::new(body),
            abs: at,
            v2: true,
            creation_order: flags & 0x04 != 0,
            tail: 0,
        });
    } else {
        let version = r.u8("object header version")?;
        if version != 1 {
            return Err(ParseError::unsupported(
                abs,
                format!("object header version {version}"),
            ));
        }
        r.skip(1, "reserved")?;
        let _nmsgs = r.u16_le("number of header messages")?;
        r.skip(4, "object reference count")?;
        let size = r.u32_le("object header size")?;
        r.skip(4, "header padding")?;
        let at = abs.saturating_add(r.offset());
        let body = r.take_u64(u64::from(size), "object header messages")?;
        chunks.push(Chunk {
            r: Reader::new(body),
            abs: at,
            v2: false,
            creation_order: false,
            tail: 0,
        });
    }
    let creation_order = chunks.first().is_some_and(|c| c.creation_order);
    let mut seen: HashSet<u64> = HashSet::new();
    let mut messages = 0u64;
    let mut k = 0usize;
    while let Some(chunk) = chunks.get_mut(k) {
        k = k.saturating_add(1);
        let mut conts: Vec<(u64, u64)> = Vec::new();
        read_messages(f, chunk, info, &mut conts, &mut messages)?;
        for (off, len) in conts {
            if !seen.insert(off) {
                return Err(ParseError::malformed(
                    off,
                    "object header continuation loops",
                ));
            }
            if seen.len() > MAX_CONTINUATIONS {
                return Err(ParseError::limit(
                    off,
                    "object header continuations",
                    seen.len() as u64,
                    MAX_CONTINUATIONS as u64,
                ));
            }
            let (mut r, abs) = f.at(off, "object header continuation")?;
            let body = r.take_u64(len, "object header continuation block")?;
            let v2 = chunks.first().is_some_and(|c| c.v2);
            let mut cr = Reader::new(body);
            if v2 && cr.take(4, "OCHK signature")? != b"OCHK" {
                return Err(ParseError::malformed(
                    abs,
                    "continuation block without OCHK signature",
                ));
            }
            chunks.push(Chunk {
                r: cr,
                abs: abs.saturating_add(if v2 { 4 } else { 0 }),
                v2,
                creation_order,
                tail: if v2 { 4 } else { 0 },
            });
        }
    }
    Ok(())
}

fn read_messages(
    f: &File<'_>,
    c: &mut Chunk<'_>,
    info: &mut RootInfo,
    conts: &mut Vec<(u64, u64)>,
    count: &mut u64,
) -> Result<()> {
    loop {
        // v2 chunks end with a 4-byte checksum; a gap smaller than a message header is
        // padding.
        let tail = c.tail;
        let header = if c.v2 {
            if c.creation_order {
                6
            } else {
                4
            }
        } else {
            8
        };
        if c.r.remaining() < tail.saturating_add(header) {
            return Ok(());
        }
        let msg_at = c.abs.saturating_add(c.r.offset());
        let (ty, size, flags) = if c.v2 {
            let ty = u16::from(c.r.u8("message type")?);
            let size = c.r.u16_le("message size")?;
            let flags = c.r.u8("message flags")?;
            if c.creation_order {
                c.r.skip(2, "creation order")?;
            }
            (ty, size, flags)
        } else {
            let ty = c.r.u16_le("message type")?;
            let size = c.r.u16_le("message size")?;
            let flags = c.r.u8("message flags")?;
            c.r.skip(3, "reserved")?;
            (ty, size, flags)
        };
        let body = c.r.take(usize::from(size), "message data")?;
        *count = count.saturating_add(1);
        if *count > f.limits.max_entries {
            return Err(ParseError::limit(
                msg_at,
                "object header messages",
                *count,
                f.limits.max_entries,
            ));
        }
        if flags & 0x02 != 0 && matches!(ty, 0x0c | 0x06) {
            info.unread
                .push(("shared attribute or link message".into(), msg_at));
            continue;
        }
        let data_at = msg_at.saturating_add(header as u64);
        match ty {
            0x10 => {
                let mut r = Reader::new(body);
                let off = f.addr(&mut r, "continuation offset")?.ok_or_else(|| {
                    ParseError::malformed(data_at, "continuation to an undefined address")
                })?;
                let len = f.len(&mut r, "continuation length")?;
                conts.push((off, len));
            }
            0x0c => match read_attribute(f, body, data_at) {
                Ok(a) => info.attributes.push(a),
                Err(e) => info
                    .unread
                    .push((format!("attribute message: {}", e.kind), data_at)),
            },
            0x15 => {
                // Attribute Info: dense storage when the fractal heap address is defined.
                let mut r = Reader::new(body);
                r.skip(1, "attribute info version")?;
                let fl = r.u8("attribute info flags")?;
                if fl & 1 != 0 {
                    r.skip(2, "max creation index")?;
                }
                if f.addr(&mut r, "attribute fractal heap")?.is_some() {
                    info.unread
                        .push(("dense attribute storage (fractal heap)".into(), data_at));
                }
            }
            0x06 => match read_link(f, body, data_at) {
                Ok(l) => info.links.push(l),
                Err(e) => info
                    .unread
                    .push((format!("link message: {}", e.kind), data_at)),
            },
            _ => {}
        }
    }
}

fn read_attribute(f: &File<'_>, body: &[u8], at: u64) -> Result<Attribute> {
    let mut r = Reader::new(body);
    let version = r.u8("attribute version")?;
    let flags = r.u8("attribute flags")?;
    let name_len = r.u16_le("attribute name size")?;
    let dt_len = r.u16_le("attribute datatype size")?;
    let ds_len = r.u16_le("attribute dataspace size")?;
    if version == 3 {
        r.skip(1, "attribute name encoding")?;
    }
    let pad = |n: u16| -> usize {
        let n = usize::from(n);
        if version == 1 {
            n.next_multiple_of(8)
        } else {
            n
        }
    };
    let name = r.take(pad(name_len), "attribute name")?;
    let name = name.get(..usize::from(name_len)).unwrap_or(name);
    let name = String::from_utf8_lossy(name.split(|&b| b == 0).next().unwrap_or(name)).into_owned();
    if !(1..=3).contains(&version) {
        return Err(ParseError::unsupported(
            at,
            format!("attribute `{name}` message version {version}"),
        ));
    }
    let dt = r.take(pad(dt_len), "attribute datatype")?;
    let ds = r.take(pad(ds_len), "attribute dataspace")?;
    if version >= 2 && flags & 0x03 != 0 {
        return Ok(Attribute {
            name,
            offset: at,
            value: AttrValue::Unreadable("shared datatype or dataspace".into()),
        });
    }
    let value = match attribute_value(f, dt, ds, r.rest()) {
        Ok(v) => v,
        Err(e) => AttrValue::Unreadable(e.kind.to_string()),
    };
    Ok(Attribute {
        name,
        offset: at,
        value,
    })
}

fn attribute_value(f: &File<'_>, dt: &[u8], ds: &[u8], data: &[u8]) -> Result<AttrValue> {
    let mut t = Reader::new(dt);
    let class_version = t.u8("datatype class")?;
    let class = class_version & 0x0f;
    let bits = t.array::<3>("datatype bit field")?;
    let size = t.u32_le("datatype size")?;
    let n = dataspace_elements(f, ds)?;
    if n > f.limits.max_entries {
        return Err(ParseError::limit(
            0,
            "attribute elements",
            n,
            f.limits.max_entries,
        ));
    }
    let n = usize::try_from(n)
        .map_err(|_| ParseError::limit(0, "attribute elements", n, f.limits.max_entries))?;
    let mut r = Reader::new(data);
    match class {
        3 => {
            // Fixed-length string; padding type in bits 0-3.
            let pad_type = bits[0] & 0x0f;
            let mut out = Vec::new();
            for _ in 0..n {
                let s = r.take_u64(u64::from(size), "fixed-length string")?;
                let s = match pad_type {
                    2 => trim_end(s, b' '),
                    _ => s.split(|&b| b == 0).next().unwrap_or(s),
                };
                out.push(s.to_vec());
            }
            Ok(AttrValue::Strings(out))
        }
        9 if bits[0] & 0x0f == 1 => {
            let mut out = Vec::new();
            for _ in 0..n {
                let len = r.u32_le("variable-length string length")?;
                let heap = f.addr(&mut r, "global heap collection address")?;
                let index = r.u32_le("global heap object index")?;
                match heap {
                    None if len == 0 => out.push(Vec::new()),
                    None => {
                        return Err(ParseError::malformed(
                            0,
                            "variable-length string in an undefined heap",
                        ))
                    }
                    Some(addr) => out.push(global_heap_object(f, addr, index, len)?),
                }
            }
            Ok(AttrValue::Strings(out))
        }
        other => Ok(AttrValue::Other(other)),
    }
}

fn trim_end(s: &[u8], c: u8) -> &[u8] {
    let end = s
        .iter()
        .rposition(|&b| b != c)
        .map_or(0, |p| p.saturating_add(1));
    s.get(..end).unwrap_or(s)
}

fn dataspace_elements(f: &File<'_>, ds: &[u8]) -> Result<u64> {
    let mut r = Reader::new(ds);
    let version = r.u8("dataspace version")?;
    let rank = r.u8("dataspace rank")?;
    let _flags = r.u8("dataspace flags")?;
    match version {
        1 => r.skip(5, "dataspace reserved")?,
        2 => match r.u8("dataspace type")? {
            0 => return Ok(1),
            2 => return Ok(0),
            _ => {}
        },
        v => return Err(ParseError::unsupported(0, format!("dataspace version {v}"))),
    }
    let mut n = 1u64;
    for _ in 0..rank {
        let d = f.len(&mut r, "dataspace dimension")?;
        n = n.checked_mul(d).ok_or_else(|| {
            ParseError::limit(0, "attribute elements", u64::MAX, f.limits.max_entries)
        })?;
    }
    Ok(n)
}

/// Object `index` of the global heap collection at `addr`, `len` bytes of it.
fn global_heap_object(f: &File<'_>, addr: u64, index: u32, len: u32) -> Result<Vec<u8>> {
    let (mut r, abs) = f.at(addr, "global heap collection")?;
    if r.take(4, "GCOL signature")? != b"GCOL" {
        return Err(ParseError::malformed(
            abs,
            "global heap collection without GCOL signature",
        ));
    }
    r.skip(4, "global heap version")?;
    let size = f.len(&mut r, "global heap collection size")?;
    // The collection size includes its own 8 + L byte header.
    let body_len = size.saturating_sub(8u64.saturating_add(u64::from(f.l)));
    let body = r.take_u64(body_len, "global heap collection")?;
    let mut r = Reader::new(body);
    let header = 8usize.saturating_add(usize::from(f.l));
    while r.remaining() >= header {
        let idx = r.u16_le("heap object index")?;
        r.skip(6, "heap object reference count")?;
        let obj_size = f.len(&mut r, "heap object size")?;
        if idx == 0 {
            break; // free space: the rest of the collection
        }
        let padded = obj_size
            .checked_next_multiple_of(8)
            .ok_or_else(|| ParseError::malformed(abs, "heap object size overflows"))?;
        if u32::from(idx) == index {
            if u64::from(len) > obj_size {
                return Err(ParseError::malformed(
                    abs,
                    format!("string of {len} bytes in a heap object of {obj_size}"),
                ));
            }
            return Ok(r.take(len as usize, "heap object data")?.to_vec());
        }
        r.take_u64(padded, "heap object data")?;
    }
    Err(ParseError::malformed(
        abs,
        format!("global heap object {index} not found"),
    ))
}

fn read_link(f: &File<'_>, body: &[u8], at: u64) -> Result<Link> {
    let mut r = Reader::new(body);
    let version = r.u8("link version")?;
    if version != 1 {
        return Err(ParseError::unsupported(
            at,
            format!("link message version {version}"),
        ));
    }
    let flags = r.u8("link flags")?;
    let kind = if flags & 0x08 != 0 {
        r.u8("link type")?
    } else {
        0
    };
    if flags & 0x04 != 0 {
        r.skip(8, "link creation order")?;
    }
    if flags & 0x10 != 0 {
        r.skip(1, "link name charset")?;
    }
    let name_len = read_uint(&mut r, 1u8 << (flags & 3), "link name length")?;
    let name = String::from_utf8_lossy(r.take_u64(name_len, "link name")?).into_owned();
    let kind = match kind {
        0 => {
            f.addr(&mut r, "hard link address")?;
            LinkKind::Hard
        }
        1 => {
            let n = r.u16_le("soft link length")?;
            LinkKind::Soft(
                String::from_utf8_lossy(r.take(usize::from(n), "soft link")?).into_owned(),
            )
        }
        64 => {
            let n = r.u16_le("external link length")?;
            let v = r.take(usize::from(n), "external link")?;
            let mut parts = v.get(1..).unwrap_or_default().split(|&b| b == 0);
            let file = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            LinkKind::External(file, path)
        }
        k => LinkKind::Other(k),
    };
    Ok(Link {
        name,
        offset: at,
        kind,
    })
}

/// Bounded fallback: JSON objects in the raw bytes that begin like Keras configs
/// (`{"class_name"`, `{"module"`), parsed with serde_json's streaming deserializer.
/// Looks at the first and last `max_header_bytes` of the file, tries at most `max_tries`
/// starts, and returns `(offset, value)` of each complete object (inner objects of one
/// already found are skipped).
pub fn scan_json_objects(data: &[u8], limits: &Limits, max_tries: usize) -> Vec<(u64, Value)> {
    const STARTS: [&[u8]; 2] = [b"{\"class_name\"", b"{\"module\""];
    let window = usize::try_from(limits.max_header_bytes).unwrap_or(usize::MAX);
    let mut ranges = vec![(0usize, data.len().min(window))];
    let tail_start = data.len().saturating_sub(window);
    if tail_start > window {
        ranges.push((tail_start, data.len()));
    }
    let mut out = Vec::new();
    let mut tries = 0usize;
    for (lo, hi) in ranges {
        let mut i = lo;
        while i < hi && tries < max_tries {
            let Some(rest) = data.get(i..hi) else { break };
            let Some(p) = rest.iter().position(|&b| b == b'{') else {
                break;
            };
            let at = i.saturating_add(p);
            let slice = data.get(at..hi).unwrap_or_default();
            if !STARTS.iter().any(|s| slice.starts_with(s)) {
                i = at.saturating_add(1);
                continue;
            }
            tries = tries.saturating_add(1);
            let mut stream = serde_json::Deserializer::from_slice(slice).into_iter::<Value>();
            match stream.next() {
                Some(Ok(v)) => {
                    out.push((at as u64, v));
                    i = at.saturating_add(stream.byte_offset().max(1));
                }
                _ => i = at.saturating_add(1),
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// A minimal HDF5 file: superblock v0 and a v1 root object header holding the given
    /// attribute messages (type 0x0c), optionally through a continuation block.
    pub(crate) fn h5_v0(attrs: &[Vec<u8>], via_continuation: bool) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(SIGNATURE);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 8, 8, 0]);
        f.extend_from_slice(&[4, 0, 16, 0, 0, 0, 0, 0]);
        for v in [0u64, u64::MAX, 0, u64::MAX, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        let root_at = f.len() + 8 + 4 + 4 + 16;
        f.extend_from_slice(&(root_at as u64).to_le_bytes());
        f.extend_from_slice(&[0; 24]);
        assert_eq!(f.len(), root_at);
        let mut msgs = Vec::new();
        for a in attrs {
            msgs.extend_from_slice(&0x0cu16.to_le_bytes());
            msgs.extend_from_slice(&(a.len() as u16).to_le_bytes());
            msgs.extend_from_slice(&[0; 4]);
            msgs.extend_from_slice(a);
        }
        if via_continuation {
            let cont_at = root_at + 16 + 24;
            let mut c = Vec::new();
            c.extend_from_slice(&0x10u16.to_le_bytes());
            c.extend_from_slice(&16u16.to_le_bytes());
            c.extend_from_slice(&[0; 4]);
            c.extend_from_slice(&(cont_at as u64).to_le_bytes());
            c.extend_from_slice(&(msgs.len() as u64).to_le_bytes());
            f.extend_from_slice(&[1, 0, 1, 0, 1, 0, 0, 0]);
            f.extend_from_slice(&(c.len() as u32).to_le_bytes());
            f.extend_from_slice(&[0; 4]);
            f.extend_from_slice(&c);
            f.extend_from_slice(&msgs);
        } else {
            f.extend_from_slice(&[1, 0, attrs.len() as u8, 0, 1, 0, 0, 0]);
            f.extend_from_slice(&(msgs.len() as u32).to_le_bytes());
            f.extend_from_slice(&[0; 4]);
            f.extend_from_slice(&msgs);
        }
        f
    }

    fn pad8(v: &mut Vec<u8>) {
        while !v.len().is_multiple_of(8) {
            v.push(0);
        }
    }

    /// A v1 attribute message with a scalar fixed-length string.
    pub(crate) fn fixed_attr(name: &str, value: &[u8]) -> Vec<u8> {
        let mut a = vec![1, 0];
        a.extend_from_slice(&((name.len() + 1) as u16).to_le_bytes());
        a.extend_from_slice(&8u16.to_le_bytes());
        a.extend_from_slice(&8u16.to_le_bytes());
        a.extend_from_slice(name.as_bytes());
        a.push(0);
        pad8(&mut a);
        a.extend_from_slice(&[0x13, 0, 0, 0]); // string, null-terminated, ascii
        a.extend_from_slice(&(value.len() as u32).to_le_bytes());
        a.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]); // dataspace v1 rank 0
        a.extend_from_slice(value);
        pad8(&mut a);
        a
    }

    #[test]
    fn reads_fixed_length_attributes() {
        let file = h5_v0(
            &[
                fixed_attr("model_config", br#"{"class_name": "Sequential"}"#),
                fixed_attr("backend", b"tensorflow"),
            ],
            false,
        );
        let info = read_root(&file, &Limits::default()).unwrap();
        assert_eq!(info.attributes.len(), 2);
        assert_eq!(info.attributes[0].name, "model_config");
        match &info.attributes[0].value {
            AttrValue::Strings(s) => assert_eq!(s[0], br#"{"class_name": "Sequential"}"#),
            other => panic!("{other:?}"),
        }
        assert!(info.unread.is_empty());
        let file = h5_v0(&[fixed_attr("model_config", b"{}")], true);
        let info = read_root(&file, &Limits::default()).unwrap();
        assert_eq!(info.attributes[0].name, "model_config");
    }

    #[test]
    fn user_block_and_truncation() {
        let mut file = vec![0u8; 512];
        let inner = h5_v0(&[fixed_attr("a", b"x")], false);
        file.extend_from_slice(&inner);
        assert_eq!(find_superblock(&file), Some(512));
        let info = read_root(&file, &Limits::default()).unwrap();
        assert_eq!(info.attributes[0].name, "a");
        for cut in 0..inner.len() {
            let _ = read_root(&inner[..cut], &Limits::default());
        }
        assert!(read_root(&inner[..100], &Limits::default()).is_err());
    }

    #[test]
    fn continuation_loops_are_refused() {
        let mut file = h5_v0(&[], true);
        // Point the continuation at the root header's own message block.
        let root_at = 96usize;
        let cont_field = root_at + 16 + 8;
        file[cont_field..cont_field + 8].copy_from_slice(&((root_at + 16) as u64).to_le_bytes());
        file[cont_field + 8..cont_field + 16].copy_from_slice(&24u64.to_le_bytes());
        let e = read_root(&file, &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("loops"), "{e}");
    }

    #[test]
    fn json_fallback_finds_configs() {
        let mut data = b"\x89HDF\r\n\x1a\n garbage {\"x\": 1} {\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"Lambda\"}]}} more {\"class_name\": broken".to_vec();
        data.extend_from_slice(&[0xff; 16]);
        let found = scan_json_objects(&data, &Limits::default(), 100);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1["class_name"], "Sequential");
    }

    #[test]
    fn mutations_never_panic() {
        let base = h5_v0(
            &[
                fixed_attr("model_config", br#"{"class_name": "Sequential"}"#),
                fixed_attr("b", b"y"),
            ],
            true,
        );
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut d = base.clone();
            for k in 0..3 {
                let pos = ((seed >> (k * 9)) as usize) % d.len();
                d[pos] = (seed >> (k * 7 + 5)) as u8;
            }
            let _ = read_root(&d, &Limits::default());
        }
    }
}
