//! Walking local headers from the front of the archive, as streaming readers do
//! (`unzip -` from a pipe, `stream-unzip`, Java's `ZipInputStream`, many scanners): each
//! local header, its data, an optional data descriptor, then the next header, until
//! something else (normally the central directory) begins.

use crate::error::{ParseError, Result};
use crate::limits::Limits;

use super::header::{self, flags, Descriptor, LocalHeader};
use super::{slice, LOCAL_SIG};

/// A member as a streaming reader meets it.
#[derive(Debug, Clone)]
pub struct LocalEntry<'a> {
    pub header: LocalHeader<'a>,
    /// The member's stored bytes.
    pub data: &'a [u8],
    /// The data descriptor after the data, when bit 3 of the flags asked for one.
    pub descriptor: Option<Descriptor>,
    /// Offset just past the data and descriptor.
    pub end: u64,
}

impl LocalEntry<'_> {
    /// CRC-32 and sizes as a streaming reader ends up with them: from the descriptor when
    /// there is one, else from the header.
    pub fn crc32(&self) -> u32 {
        self.descriptor.map_or(self.header.crc32, |d| d.crc32)
    }
    pub fn compressed_size(&self) -> u64 {
        self.data.len() as u64
    }
    pub fn uncompressed_size(&self) -> u64 {
        self.descriptor
            .map_or(self.header.uncompressed_size, |d| d.uncompressed_size)
    }
}

/// The local headers met walking from `start`.
#[derive(Debug, Clone)]
pub struct LocalWalk<'a> {
    pub start: u64,
    pub entries: Vec<LocalEntry<'a>>,
    /// Where the walk stopped: the first offset that does not begin a local header.
    pub end: u64,
    /// Why the walk stopped early, when it did (a truncated member, a member whose end
    /// could not be found, the member limit).
    pub stopped: Option<ParseError>,
}

/// Walks local headers from `start`. `hint` gives the central directory's compressed size
/// for a header offset, used first to find the end of streamed members.
pub fn walk<'a>(
    data: &'a [u8],
    start: u64,
    hint: &dyn Fn(u64) -> Option<u64>,
    limits: &Limits,
) -> LocalWalk<'a> {
    let mut out = LocalWalk {
        start,
        entries: Vec::new(),
        end: start,
        stopped: None,
    };
    let mut pos = start;
    while let Ok(p) = usize::try_from(pos) {
        if data.get(p..p.saturating_add(4)) != Some(LOCAL_SIG.as_slice()) {
            break;
        }
        if out.entries.len() as u64 >= limits.max_archive_members {
            out.stopped = Some(ParseError::limit(
                pos,
                "zip local headers",
                (out.entries.len() as u64).saturating_add(1),
                limits.max_archive_members,
            ));
            break;
        }
        match entry(data, pos, hint) {
            Ok(e) => {
                pos = e.end;
                out.entries.push(e);
            }
            Err(err) => {
                out.stopped = Some(err);
                break;
            }
        }
    }
    out.end = pos;
    out
}

fn entry<'a>(
    data: &'a [u8],
    pos: u64,
    hint: &dyn Fn(u64) -> Option<u64>,
) -> Result<LocalEntry<'a>> {
    let h = header::read_local(data, pos)?;
    let (len, descriptor) = if h.flags & flags::DATA_DESCRIPTOR != 0 {
        streamed_len(data, &h, hint(pos))?
    } else {
        (h.compressed_size, None)
    };
    let member = slice(data, h.data_offset, len, "member data")?;
    let end = h
        .data_offset
        .saturating_add(len)
        .saturating_add(descriptor.map_or(0, |d| d.len));
    Ok(LocalEntry {
        header: h,
        data: member,
        descriptor,
        end,
    })
}

/// The data length of a member with a data descriptor: the header's size or the central
/// directory's, if a matching descriptor follows that many bytes; else the first matching
/// descriptor found by searching; else the header's size, if it gives one.
fn streamed_len(
    data: &[u8],
    h: &LocalHeader<'_>,
    central: Option<u64>,
) -> Result<(u64, Option<Descriptor>)> {
    let known = [Some(h.compressed_size).filter(|&c| c != 0), central];
    for c in known.into_iter().flatten() {
        if let Some(d) = header::descriptor_at(data, h.data_offset.saturating_add(c), c) {
            return Ok((c, Some(d)));
        }
    }
    if let Some((len, d)) = header::search_descriptor(data, h.data_offset) {
        return Ok((len, Some(d)));
    }
    if h.compressed_size != 0 {
        return Ok((h.compressed_size, None));
    }
    Err(ParseError::malformed(
        h.offset,
        "member announces a data descriptor, but none follows its data",
    ))
}
