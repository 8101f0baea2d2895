//! Local file headers, central directory headers, extra fields and data descriptors
//! (APPNOTE 4.3.7, 4.3.9, 4.3.12, 4.5).

use crate::error::{ParseError, Result};
use crate::reader::Reader;

use super::{at, CENTRAL_SIG, DESCRIPTOR_SIG, LOCAL_SIG};

/// Fixed part of a central directory header.
pub const CENTRAL_LEN: usize = 46;

/// General purpose bit flags (APPNOTE 4.4.4).
pub mod flags {
    /// Bit 0: the file is encrypted.
    pub const ENCRYPTED: u16 = 1 << 0;
    /// Bits 1-2: compression options (normal for deflate, implode, LZMA).
    pub const COMPRESSION_OPTIONS: u16 = 0b110;
    /// Bit 3: CRC and sizes are zero in the local header and follow the data in a data
    /// descriptor.
    pub const DATA_DESCRIPTOR: u16 = 1 << 3;
    /// Bit 4: enhanced deflating (reserved).
    pub const ENHANCED_DEFLATE: u16 = 1 << 4;
    /// Bit 5: compressed patched data.
    pub const PATCHED: u16 = 1 << 5;
    /// Bit 6: strong encryption.
    pub const STRONG_ENCRYPTION: u16 = 1 << 6;
    /// Bit 11: names and comments are UTF-8.
    pub const UTF8: u16 = 1 << 11;
    /// Bit 13: local header values are masked (central directory encryption).
    pub const MASKED_HEADER: u16 = 1 << 13;
    /// Bits every ordinary writer may set.
    pub const ORDINARY: u16 = COMPRESSION_OPTIONS | DATA_DESCRIPTOR | UTF8;
}

/// Compression methods (APPNOTE 4.4.5).
pub mod method {
    pub const STORED: u16 = 0;
    pub const DEFLATED: u16 = 8;
    pub const DEFLATE64: u16 = 9;
    pub const BZIP2: u16 = 12;
    pub const LZMA: u16 = 14;
    pub const ZSTD: u16 = 93;
    pub const XZ: u16 = 95;
    pub const AES: u16 = 99;

    /// A readable name for a method id.
    pub fn name(m: u16) -> &'static str {
        match m {
            STORED => "stored",
            1 => "shrunk",
            2..=5 => "reduced",
            6 => "imploded",
            DEFLATED => "deflated",
            DEFLATE64 => "deflate64",
            BZIP2 => "bzip2",
            LZMA => "lzma",
            ZSTD => "zstd",
            XZ => "xz",
            AES => "aes-encrypted",
            _ => "unknown",
        }
    }
}

const ZIP64_EXTRA: u16 = 0x0001;
const U32_MAX: u64 = 0xffff_ffff;

/// A local file header and what follows it up to the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalHeader<'a> {
    /// Offset of the header's signature in the input.
    pub offset: u64,
    pub version_needed: u16,
    pub flags: u16,
    pub method: u16,
    pub crc32: u32,
    /// Sizes as the header gives them, after the ZIP64 extra field. Zero when
    /// [`flags::DATA_DESCRIPTOR`] is set and the writer streamed the data.
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// True when the header carries a ZIP64 extra field (descriptor sizes are then 8 bytes).
    pub zip64: bool,
    pub name: &'a [u8],
    pub extra: &'a [u8],
    /// Offset of the first data byte.
    pub data_offset: u64,
}

/// Reads the local header at `offset`.
pub fn read_local(data: &[u8], offset: u64) -> Result<LocalHeader<'_>> {
    let start = usize::try_from(offset)
        .ok()
        .filter(|&s| s <= data.len())
        .ok_or_else(|| {
            ParseError::malformed(
                offset,
                format!(
                    "local header offset {offset} is past the end of the input ({} bytes)",
                    data.len()
                ),
            )
        })?;
    let mut r = Reader::new(at(data, start));
    let fail = |e: ParseError| ParseError {
        offset: e.offset.saturating_add(offset),
        kind: e.kind,
    };
    let sig = r.array::<4>("local header signature").map_err(fail)?;
    if &sig != LOCAL_SIG {
        return Err(ParseError::malformed(
            offset,
            format!("no local header signature at offset {offset}"),
        ));
    }
    let version_needed = r.u16_le("version needed").map_err(fail)?;
    let flags = r.u16_le("general purpose flags").map_err(fail)?;
    let method = r.u16_le("compression method").map_err(fail)?;
    let _time = r.u16_le("modification time").map_err(fail)?;
    let _date = r.u16_le("modification date").map_err(fail)?;
    let crc32 = r.u32_le("crc-32").map_err(fail)?;
    let csize = r.u32_le("compressed size").map_err(fail)?;
    let usize_ = r.u32_le("uncompressed size").map_err(fail)?;
    let name_len = r.u16_le("file name length").map_err(fail)?;
    let extra_len = r.u16_le("extra field length").map_err(fail)?;
    let name = r.take(usize::from(name_len), "file name").map_err(fail)?;
    let extra = r
        .take(usize::from(extra_len), "extra field")
        .map_err(fail)?;
    let data_offset = offset.saturating_add(r.offset());

    let mut sizes = Zip64Fields {
        uncompressed: u64::from(usize_),
        compressed: u64::from(csize),
        header_offset: 0,
    };
    let zip64 = find_extra(extra, ZIP64_EXTRA, data_offset).map_err(fail_extra(offset))?;
    if let Some(z) = zip64 {
        sizes.apply(z, false, offset)?;
    }
    Ok(LocalHeader {
        offset,
        version_needed,
        flags,
        method,
        crc32,
        compressed_size: sizes.compressed,
        uncompressed_size: sizes.uncompressed,
        zip64: zip64.is_some(),
        name,
        extra,
        data_offset,
    })
}

fn fail_extra(offset: u64) -> impl Fn(ParseError) -> ParseError {
    move |e| ParseError {
        offset: e.offset.max(offset),
        kind: e.kind,
    }
}

/// A central directory header (APPNOTE 4.3.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralHeader<'a> {
    /// Offset of the record's signature in the input.
    pub record_offset: u64,
    pub version_made_by: u16,
    pub version_needed: u16,
    pub flags: u16,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub name: &'a [u8],
    pub extra: &'a [u8],
    pub comment: &'a [u8],
    pub internal_attrs: u16,
    pub external_attrs: u32,
    /// Offset of the local header as stored, after the ZIP64 extra field, before any
    /// prefix shift.
    pub stored_header_offset: u64,
}

impl CentralHeader<'_> {
    /// The Unix mode (`st_mode`) when the entry was made on Unix (APPNOTE 4.4.2: host 3),
    /// where the high 16 bits of the external attributes hold it.
    pub fn unix_mode(&self) -> Option<u32> {
        (self.version_made_by >> 8 == 3).then_some(self.external_attrs >> 16)
    }

    /// Bytes this record takes in the central directory.
    pub fn record_len(&self) -> u64 {
        (CENTRAL_LEN as u64)
            .saturating_add(self.name.len() as u64)
            .saturating_add(self.extra.len() as u64)
            .saturating_add(self.comment.len() as u64)
    }
}

/// Reads one central directory header from `r`, whose offset 0 is input offset `base`.
pub fn read_central<'a>(r: &mut Reader<'a>, base: u64) -> Result<CentralHeader<'a>> {
    let record_offset = base.saturating_add(r.offset());
    let fail = |e: ParseError| ParseError {
        offset: e.offset.saturating_add(base),
        kind: e.kind,
    };
    let sig = r.array::<4>("central header signature").map_err(fail)?;
    if &sig != CENTRAL_SIG {
        return Err(ParseError::malformed(
            record_offset,
            format!("no central directory header signature at offset {record_offset}"),
        ));
    }
    let version_made_by = r.u16_le("version made by").map_err(fail)?;
    let version_needed = r.u16_le("version needed").map_err(fail)?;
    let flags = r.u16_le("general purpose flags").map_err(fail)?;
    let method = r.u16_le("compression method").map_err(fail)?;
    let _time = r.u16_le("modification time").map_err(fail)?;
    let _date = r.u16_le("modification date").map_err(fail)?;
    let crc32 = r.u32_le("crc-32").map_err(fail)?;
    let csize = r.u32_le("compressed size").map_err(fail)?;
    let usize_ = r.u32_le("uncompressed size").map_err(fail)?;
    let name_len = r.u16_le("file name length").map_err(fail)?;
    let extra_len = r.u16_le("extra field length").map_err(fail)?;
    let comment_len = r.u16_le("file comment length").map_err(fail)?;
    let disk = r.u16_le("disk number start").map_err(fail)?;
    let internal_attrs = r.u16_le("internal attributes").map_err(fail)?;
    let external_attrs = r.u32_le("external attributes").map_err(fail)?;
    let header_offset = r.u32_le("local header offset").map_err(fail)?;
    let name = r.take(usize::from(name_len), "file name").map_err(fail)?;
    let extra = r
        .take(usize::from(extra_len), "extra field")
        .map_err(fail)?;
    let comment = r
        .take(usize::from(comment_len), "file comment")
        .map_err(fail)?;

    let mut fields = Zip64Fields {
        uncompressed: u64::from(usize_),
        compressed: u64::from(csize),
        header_offset: u64::from(header_offset),
    };
    let extra_base = record_offset
        .saturating_add(CENTRAL_LEN as u64)
        .saturating_add(u64::from(name_len));
    if let Some(z) = find_extra(extra, ZIP64_EXTRA, extra_base)? {
        fields.apply(z, true, record_offset)?;
    }
    if disk != 0 && disk != 0xffff {
        return Err(ParseError::unsupported(
            record_offset,
            format!("entry starts on disk {disk} of a multi-disk archive"),
        ));
    }
    Ok(CentralHeader {
        record_offset,
        version_made_by,
        version_needed,
        flags,
        method,
        crc32,
        compressed_size: fields.compressed,
        uncompressed_size: fields.uncompressed,
        name,
        extra,
        comment,
        internal_attrs,
        external_attrs,
        stored_header_offset: fields.header_offset,
    })
}

struct Zip64Fields {
    uncompressed: u64,
    compressed: u64,
    header_offset: u64,
}

impl Zip64Fields {
    /// Replaces the 32-bit fields that are 0xFFFFFFFF by the ZIP64 extra field's values,
    /// in the fixed order of APPNOTE 4.5.3 (as Python's `ZipInfo._decodeExtra` does).
    fn apply(&mut self, z: &[u8], central: bool, offset: u64) -> Result<()> {
        let mut r = Reader::new(z);
        let missing = |field: &str| {
            ParseError::malformed(
                offset,
                format!("zip64 extra field lacks the {field} its header defers to it"),
            )
        };
        if self.uncompressed == U32_MAX {
            self.uncompressed = r
                .u64_le("zip64 uncompressed size")
                .map_err(|_| missing("uncompressed size"))?;
        }
        if self.compressed == U32_MAX {
            self.compressed = r
                .u64_le("zip64 compressed size")
                .map_err(|_| missing("compressed size"))?;
        }
        if central && self.header_offset == U32_MAX {
            self.header_offset = r
                .u64_le("zip64 header offset")
                .map_err(|_| missing("local header offset"))?;
        }
        Ok(())
    }
}

/// Finds the extra field block with `id` (APPNOTE 4.5.1: a sequence of id, size, data).
/// A block running past the end of the field is malformed (Python's `zipfile` refuses it);
/// one to three stray trailing bytes are ignored, as Python does.
pub fn find_extra(extra: &[u8], id: u16, base: u64) -> Result<Option<&[u8]>> {
    let mut r = Reader::new(extra);
    let mut found = None;
    while r.remaining() >= 4 {
        let at_ = base.saturating_add(r.offset());
        let tag = r.u16_le("extra field id")?;
        let len = r.u16_le("extra field size")?;
        let body = r.take(usize::from(len), "extra field data").map_err(|_| {
            ParseError::malformed(
                at_,
                format!(
                    "extra field {tag:#06x} of {len} bytes runs past the end of the extra area"
                ),
            )
        })?;
        if tag == id && found.is_none() {
            found = Some(body);
        }
    }
    Ok(found)
}

/// A data descriptor after a member's data (APPNOTE 4.3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Bytes it takes (12, 16, 20 or 24).
    pub len: u64,
}

/// Reads a data descriptor at `offset` that must describe `csize` compressed bytes.
/// The signature is optional and the sizes are 4 or 8 bytes; the variant whose
/// compressed size matches wins.
pub fn descriptor_at(data: &[u8], offset: u64, csize: u64) -> Option<Descriptor> {
    let start = usize::try_from(offset).ok()?;
    let bytes = data.get(start..)?;
    let (body, sig_len) = match bytes.strip_prefix(DESCRIPTOR_SIG.as_slice()) {
        Some(rest) => (rest, 4u64),
        None => (bytes, 0),
    };
    let mut r = Reader::new(body);
    let crc32 = r.u32_le("descriptor crc").ok()?;
    let rest = r.rest();
    let u32_at = |i: usize| -> Option<u64> {
        let b = rest.get(i..i.checked_add(4)?)?;
        Some(u64::from(u32::from_le_bytes(b.try_into().ok()?)))
    };
    let u64_at = |i: usize| -> Option<u64> {
        let b = rest.get(i..i.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    if u32_at(0) == Some(csize) {
        if let Some(u) = u32_at(4) {
            return Some(Descriptor {
                crc32,
                compressed_size: csize,
                uncompressed_size: u,
                len: sig_len.saturating_add(12),
            });
        }
    }
    if u64_at(0) == Some(csize) {
        if let Some(u) = u64_at(8) {
            return Some(Descriptor {
                crc32,
                compressed_size: csize,
                uncompressed_size: u,
                len: sig_len.saturating_add(20),
            });
        }
    }
    None
}

/// Finds where a member whose size is only given by a trailing data descriptor ends, as a
/// streaming reader must: the first descriptor after `data_offset` whose compressed size
/// equals its distance from `data_offset`. Returns the data length and the descriptor.
/// Linear in the bytes searched.
pub fn search_descriptor(data: &[u8], data_offset: u64) -> Option<(u64, Descriptor)> {
    let start = usize::try_from(data_offset).ok()?;
    let tail = data.get(start..)?;
    // Candidates: a descriptor signature, or (unsigned descriptors) the next header
    // signature with a descriptor of 12 or 20 bytes right before it.
    for (i, w) in tail.windows(4).enumerate() {
        if w.first() != Some(&b'P') || w.get(1) != Some(&b'K') {
            continue;
        }
        if w == DESCRIPTOR_SIG {
            let len = i as u64;
            if let Some(d) = descriptor_at(data, data_offset.saturating_add(len), len) {
                return Some((len, d));
            }
        } else if w == LOCAL_SIG || w == CENTRAL_SIG {
            for back in [12usize, 20] {
                let Some(len) = i.checked_sub(back) else {
                    continue;
                };
                let len = len as u64;
                if let Some(d) = descriptor_at(data, data_offset.saturating_add(len), len) {
                    if d.len == back as u64 {
                        return Some((len, d));
                    }
                }
            }
        }
    }
    None
}
