//! The end of central directory record and its ZIP64 companions (APPNOTE 4.3.14-4.3.16).
//!
//! ```text
//! end of central dir signature    4 bytes  (0x06054b50)
//! number of this disk             2 bytes
//! disk where central dir starts   2 bytes
//! number of central dir entries on this disk  2 bytes
//! total number of central dir entries         2 bytes
//! size of central directory       4 bytes
//! offset of start of central dir  4 bytes
//! .ZIP file comment length        2 bytes
//! ```
//!
//! The record is found the way Python's `zipfile._EndRecData` and miniz (PyTorch) find it:
//! the last signature in the final 64 KiB + 22 bytes that leaves room for a whole record.

use crate::error::{ParseError, Result};
use crate::reader::Reader;

use super::{at, EOCD_SIG, ZIP64_EOCD_SIG, ZIP64_LOCATOR_SIG};

/// Fixed size of the end of central directory record.
pub const EOCD_LEN: usize = 22;
/// Fixed size of the ZIP64 end of central directory locator.
pub const LOCATOR_LEN: usize = 20;
/// Size of a ZIP64 end of central directory record without its extensible data sector,
/// the size Python's `zipfile` assumes.
pub const ZIP64_EOCD_LEN: usize = 56;
/// Longest archive comment (its length is a u16).
const MAX_COMMENT: usize = 0xffff;

/// What the end records say about the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRecord {
    /// Offset of the end of central directory signature.
    pub offset: u64,
    /// Offset just past the record and its comment (or the end of input, if the comment
    /// runs past it).
    pub end: u64,
    /// Total number of central directory entries (from the ZIP64 record when present).
    pub entries: u64,
    /// Size of the central directory in bytes.
    pub cd_size: u64,
    /// Offset of the central directory as stored (before any prefix shift).
    pub cd_offset: u64,
    /// Offset of the ZIP64 end of central directory record, when there is one.
    pub zip64: Option<u64>,
    /// Bytes between the end record and the end of the input that the comment does not
    /// account for.
    pub trailing: u64,
}

/// Finds and reads the end of central directory record (and ZIP64 record, if any).
pub fn find(data: &[u8]) -> Result<EndRecord> {
    let pos = locate(data).ok_or_else(|| {
        ParseError::malformed(
            data.len() as u64,
            "no end of central directory record in the last 64 KiB",
        )
    })?;
    let mut r = Reader::new(at(data, pos));
    r.skip(4, "end of central directory signature")?;
    let disk = r.u16_le("number of this disk")?;
    let cd_disk = r.u16_le("disk where central directory starts")?;
    let _entries_here = r.u16_le("entries on this disk")?;
    let entries = r.u16_le("total entries")?;
    let cd_size = r.u32_le("central directory size")?;
    let cd_offset = r.u32_le("central directory offset")?;
    let comment_len = r.u16_le("comment length")?;

    let record_end = (pos as u64).saturating_add(EOCD_LEN as u64);
    // Python slices the comment without checking its length; so do we.
    let end = record_end
        .saturating_add(u64::from(comment_len))
        .min(data.len() as u64);
    let mut rec = EndRecord {
        offset: pos as u64,
        end,
        entries: u64::from(entries),
        cd_size: u64::from(cd_size),
        cd_offset: u64::from(cd_offset),
        zip64: None,
        trailing: (data.len() as u64).saturating_sub(end),
    };

    if let Some(z64) = zip64(data, pos)? {
        rec.entries = z64.entries;
        rec.cd_size = z64.cd_size;
        rec.cd_offset = z64.cd_offset;
        rec.zip64 = Some(z64.offset);
    } else if disk != 0 || cd_disk != 0 {
        // Python ignores these fields for plain archives; miniz refuses them. A split
        // archive's other parts are not here, so we cannot vouch for it either way.
        return Err(ParseError::unsupported(
            pos as u64,
            format!("multi-disk zip (disk {disk}, central directory on disk {cd_disk})"),
        ));
    }
    Ok(rec)
}

/// The offset of the last EOCD signature with room for a whole record after it.
fn locate(data: &[u8]) -> Option<usize> {
    let last = data.len().checked_sub(EOCD_LEN)?;
    let start = last.saturating_sub(MAX_COMMENT);
    let window = data.get(start..last.checked_add(4)?)?;
    let i = window.windows(4).rposition(|w| w == EOCD_SIG)?;
    start.checked_add(i)
}

struct Zip64 {
    offset: u64,
    entries: u64,
    cd_size: u64,
    cd_offset: u64,
}

/// Reads the ZIP64 locator just before the EOCD and the record it points to.
fn zip64(data: &[u8], eocd: usize) -> Result<Option<Zip64>> {
    let Some(loc_pos) = eocd.checked_sub(LOCATOR_LEN) else {
        return Ok(None);
    };
    if data.get(loc_pos..loc_pos.saturating_add(4)) != Some(ZIP64_LOCATOR_SIG.as_slice()) {
        return Ok(None);
    }
    let mut r = Reader::new(at(data, loc_pos));
    r.skip(4, "zip64 locator signature")?;
    let disk = r.u32_le("zip64 locator disk")?;
    let stored = r.u64_le("zip64 end record offset")?;
    let disks = r.u32_le("zip64 total disks")?;
    if disk != 0 || disks > 1 {
        return Err(ParseError::unsupported(
            loc_pos as u64,
            format!("multi-disk zip64 archive ({disks} disks)"),
        ));
    }
    // Python reads the record right before the locator; miniz follows the stored offset.
    // Take the first that holds a record.
    let has_sig = |p: usize| data.get(p..p.saturating_add(4)) == Some(ZIP64_EOCD_SIG.as_slice());
    let pos = match loc_pos.checked_sub(ZIP64_EOCD_LEN) {
        Some(p) if has_sig(p) => p,
        _ => match usize::try_from(stored) {
            Ok(p) if has_sig(p) => p,
            _ => {
                return Err(ParseError::malformed(
                    loc_pos as u64,
                    format!(
                        "zip64 locator points at offset {stored}, which holds no zip64 end record"
                    ),
                ))
            }
        },
    };
    let mut r = Reader::new(at(data, pos));
    r.skip(4, "zip64 end record signature")?;
    let _size = r.u64_le("zip64 end record size")?;
    let _made_by = r.u16_le("zip64 version made by")?;
    let _needed = r.u16_le("zip64 version needed")?;
    let this_disk = r.u32_le("zip64 number of this disk")?;
    let cd_disk = r.u32_le("zip64 central directory disk")?;
    let _entries_here = r.u64_le("zip64 entries on this disk")?;
    let entries = r.u64_le("zip64 total entries")?;
    let cd_size = r.u64_le("zip64 central directory size")?;
    let cd_offset = r.u64_le("zip64 central directory offset")?;
    if this_disk != 0 || cd_disk != 0 {
        return Err(ParseError::unsupported(
            pos as u64,
            format!(
                "multi-disk zip64 archive (disk {this_disk}, central directory on disk {cd_disk})"
            ),
        ));
    }
    Ok(Some(Zip64 {
        offset: pos as u64,
        entries,
        cd_size,
        cd_offset,
    }))
}
