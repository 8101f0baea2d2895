//! The central directory, read the two ways real loaders read it.
//!
//! - Python's `zipfile` (`_RealGetContents`), which `numpy.load` uses: the directory is
//!   assumed to end right before the end records, so bytes prepended to the archive shift
//!   every stored offset by the same amount ("concat"); records are read until the
//!   directory's declared *size* is used up, and the declared entry count is ignored.
//! - miniz, inside PyTorch's `PyTorchStreamReader`: the directory is at its stored offset
//!   and holds exactly the declared *count* of records.
//!
//! Both agree on an ordinary archive. When they do not, a member can exist for one reader
//! and not the other; callers compare the two.

use crate::error::{ParseError, Result};
use crate::limits::Limits;
use crate::reader::Reader;

use super::eocd::{EndRecord, LOCATOR_LEN, ZIP64_EOCD_LEN};
use super::header::{self, CentralHeader, LocalHeader, CENTRAL_LEN};
use super::slice;

/// How a directory was walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Until the declared size is used up (Python `zipfile`).
    BySize,
    /// Exactly the declared number of records (miniz / PyTorch).
    ByCount,
}

/// A central directory and the members it points at.
#[derive(Debug, Clone)]
pub struct Central<'a> {
    /// Offset where the directory was read.
    pub start: u64,
    /// Added to every stored offset: the number of bytes prepended to the archive
    /// (negative when the stored offsets point past where the directory really is).
    pub shift: i64,
    pub walk: Walk,
    pub entries: Vec<CentralEntry<'a>>,
}

/// One central directory record, resolved to its local header and data.
#[derive(Debug, Clone)]
pub struct CentralEntry<'a> {
    pub header: CentralHeader<'a>,
    /// Offset of the local header after the shift.
    pub header_offset: u64,
    /// The local header the record points at.
    pub local: Result<LocalHeader<'a>>,
    /// The member's stored bytes: `compressed_size` bytes after the local header, the
    /// sizes Python and miniz both take from the central record.
    pub data: Result<&'a [u8]>,
}

impl<'a> CentralEntry<'a> {
    /// Offset just past the member's data (or its local header, if that is all there is).
    pub fn data_end(&self) -> Option<u64> {
        let local = self.local.as_ref().ok()?;
        local.data_offset.checked_add(self.header.compressed_size)
    }
}

/// Reads the directory as Python's `zipfile` does.
pub fn read_python<'a>(data: &'a [u8], end: &EndRecord, limits: &Limits) -> Result<Central<'a>> {
    let records_before = if end.zip64.is_some() {
        (ZIP64_EOCD_LEN + LOCATOR_LEN) as u64
    } else {
        0
    };
    let start = end
        .offset
        .checked_sub(end.cd_size)
        .and_then(|s| s.checked_sub(records_before))
        .ok_or_else(|| {
            ParseError::malformed(
                end.offset,
                format!(
                    "central directory size {} is larger than the {} bytes before the end record",
                    end.cd_size, end.offset
                ),
            )
        })?;
    let shift = i128::from(start).saturating_sub(i128::from(end.cd_offset));
    let shift = i64::try_from(shift)
        .map_err(|_| ParseError::malformed(end.offset, "central directory offset out of range"))?;
    check_count(end, limits)?;
    let region = slice(data, start, end.cd_size, "central directory")?;
    let mut r = Reader::new(region);
    let mut entries = Vec::with_capacity(capacity(end, limits));
    while !r.is_empty() {
        if entries.len() as u64 >= limits.max_archive_members {
            return Err(ParseError::limit(
                start.saturating_add(r.offset()),
                "zip central directory entries",
                (entries.len() as u64).saturating_add(1),
                limits.max_archive_members,
            ));
        }
        let h = header::read_central(&mut r, start)?;
        entries.push(resolve(data, h, shift));
    }
    Ok(Central {
        start,
        shift,
        walk: Walk::BySize,
        entries,
    })
}

/// Reads the directory as miniz does: at its stored offset, by count.
pub fn read_miniz<'a>(data: &'a [u8], end: &EndRecord, limits: &Limits) -> Result<Central<'a>> {
    check_count(end, limits)?;
    let region = slice(data, end.cd_offset, end.cd_size, "central directory")?;
    let mut r = Reader::new(region);
    let mut entries = Vec::with_capacity(capacity(end, limits));
    for _ in 0..end.entries {
        let h = header::read_central(&mut r, end.cd_offset)?;
        entries.push(resolve(data, h, 0));
    }
    Ok(Central {
        start: end.cd_offset,
        shift: 0,
        walk: Walk::ByCount,
        entries,
    })
}

fn check_count(end: &EndRecord, limits: &Limits) -> Result<()> {
    if end.entries > limits.max_archive_members {
        return Err(ParseError::limit(
            end.offset,
            "zip central directory entries",
            end.entries,
            limits.max_archive_members,
        ));
    }
    Ok(())
}

/// Never trust a declared count for allocation: every record takes 46 bytes at least.
fn capacity(end: &EndRecord, limits: &Limits) -> usize {
    let by_size = end.cd_size.checked_div(CENTRAL_LEN as u64).unwrap_or(0);
    usize::try_from(end.entries.min(by_size).min(limits.max_archive_members)).unwrap_or(0)
}

fn resolve<'a>(data: &'a [u8], h: CentralHeader<'a>, shift: i64) -> CentralEntry<'a> {
    let shifted = i128::from(h.stored_header_offset).saturating_add(i128::from(shift));
    let header_offset = u64::try_from(shifted).unwrap_or(u64::MAX);
    let local = if shifted < 0 {
        Err(ParseError::malformed(
            h.record_offset,
            format!("local header offset {shifted} is before the start of the input"),
        ))
    } else {
        header::read_local(data, header_offset)
    };
    let member_data = match &local {
        Ok(l) => slice(data, l.data_offset, h.compressed_size, "member data"),
        Err(e) => Err(e.clone()),
    };
    CentralEntry {
        header: h,
        header_offset,
        local,
        data: member_data,
    }
}
