//! ZIP archives, read both ways: through the central directory (as Python's `zipfile`,
//! `numpy.load` and PyTorch's miniz do) and by walking local headers (as streaming readers
//! do), so that no member can hide from one reader and load through the other.
//! Spec: PKWARE APPNOTE.TXT 6.3.10, <https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT>
//!
//! ```text
//! [prefix data]                       bytes before the archive (a stub, a polyglot)
//! [local file header 1][data 1][data descriptor 1]
//! ...
//! [local file header n][data n][data descriptor n]
//! [central directory header 1] ... [central directory header n]
//! [zip64 end of central directory record][zip64 end of central directory locator]
//! [end of central directory record][comment]
//! ```
//!
//! [`read`] never fails as a whole: it returns what each view found and, where a view could
//! not be read, why. Members are slices of the input; nothing is inflated or copied here,
//! and no declared size or count is trusted for allocation.

mod central;
mod compare;
mod eocd;
mod header;
mod local;

pub use central::{Central, CentralEntry, Walk};
pub use compare::{Anomaly, View};
pub use eocd::EndRecord;
pub use header::{flags, method, CentralHeader, Descriptor, LocalHeader};
pub use local::{LocalEntry, LocalWalk};

use std::collections::{HashMap, HashSet};

use crate::error::{ParseError, Result};
use crate::limits::Limits;

pub(crate) const LOCAL_SIG: &[u8; 4] = b"PK\x03\x04";
pub(crate) const CENTRAL_SIG: &[u8; 4] = b"PK\x01\x02";
pub(crate) const DESCRIPTOR_SIG: &[u8; 4] = b"PK\x07\x08";
pub(crate) const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
pub(crate) const ZIP64_EOCD_SIG: &[u8; 4] = b"PK\x06\x06";
pub(crate) const ZIP64_LOCATOR_SIG: &[u8; 4] = b"PK\x06\x07";

/// True when an end-of-central-directory record sits within the last 64 KiB + 22 bytes.
pub fn has_end_of_central_directory(data: &[u8]) -> bool {
    let start = data.len().saturating_sub(65_535 + 22);
    // Only presence matters: the forward search is the vectorised one.
    data.get(start..)
        .is_some_and(|tail| memchr::memmem::find(tail, EOCD_SIG).is_some())
}

/// Everything the readers of a ZIP archive would see in it.
#[derive(Debug, Clone)]
pub struct Archive<'a> {
    pub data: &'a [u8],
    /// The end of central directory record.
    pub end: Result<EndRecord>,
    /// The central directory as Python's `zipfile` reads it.
    pub central: Result<Central<'a>>,
    /// The central directory as miniz (PyTorch) reads it, when it is read from another
    /// place than Python's (prepended data shifted the archive) or Python's failed.
    pub miniz: Option<Result<Central<'a>>>,
    /// The local headers met walking from the front.
    pub local: LocalWalk<'a>,
    /// Where the views disagree, and other structural oddities.
    pub anomalies: Vec<Anomaly<'a>>,
}

/// One member's bytes as some reader would extract them. Members found by several views
/// at the same place are listed once; duplicates by name are listed every time.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    /// The first view that lists the member.
    pub view: View,
    /// The name its directory record gives (or its local header, for local-only members).
    pub name: &'a [u8],
    /// The name in its local header, when different from `name`.
    pub local_name: Option<&'a [u8]>,
    /// Offset of its local header.
    pub header_offset: u64,
    pub method: u16,
    /// General purpose flags of the directory record (of the local header, for
    /// local-only members).
    pub flags: u16,
    /// General purpose flags of the local header, when it could be read.
    pub local_flags: Option<u16>,
    /// Uncompressed size as declared (not trusted: inflate with a budget).
    pub declared_size: u64,
    /// Unix `st_mode` when the directory records one.
    pub unix_mode: Option<u32>,
    /// The stored (possibly compressed) bytes, or why they cannot be located.
    pub data: Result<&'a [u8]>,
}

/// Reads every view of a ZIP archive.
pub fn read<'a>(data: &'a [u8], limits: &Limits) -> Archive<'a> {
    let end = eocd::find(data);
    let central = match &end {
        Ok(e) => central::read_python(data, e, limits),
        Err(err) => Err(err.clone()),
    };
    let miniz = match (&end, &central) {
        (Ok(e), Ok(c)) if c.shift != 0 => Some(central::read_miniz(data, e, limits)),
        (Ok(e), Err(err)) if !err.is_limit() => Some(central::read_miniz(data, e, limits)),
        _ => None,
    };

    let mut hints: HashMap<u64, u64> = HashMap::new();
    for c in [
        central.as_ref().ok(),
        miniz.as_ref().and_then(|m| m.as_ref().ok()),
    ]
    .into_iter()
    .flatten()
    {
        for e in &c.entries {
            hints
                .entry(e.header_offset)
                .or_insert(e.header.compressed_size);
        }
    }
    let start = walk_start(data, &central);
    let local = local::walk(data, start, &|off| hints.get(&off).copied(), limits);

    let mut archive = Archive {
        data,
        end,
        central,
        miniz,
        local,
        anomalies: Vec::new(),
    };
    archive.anomalies = compare::anomalies(&archive);
    archive
}

/// Streaming readers start at offset 0. When the archive has a prefix, start where the
/// directory says the first member is, or at the first local header signature.
fn walk_start(data: &[u8], central: &Result<Central<'_>>) -> u64 {
    if data.starts_with(LOCAL_SIG) {
        return 0;
    }
    let first = central.as_ref().ok().and_then(|c| {
        c.entries
            .iter()
            .filter(|e| e.local.is_ok())
            .map(|e| e.header_offset)
            .min()
    });
    first
        .or_else(|| {
            data.windows(4)
                .position(|w| w == LOCAL_SIG)
                .map(|p| p as u64)
        })
        .unwrap_or(0)
}

impl<'a> Archive<'a> {
    /// Every distinct member any view lists: Python's directory first, then miniz's, then
    /// members only the local walk meets.
    pub fn members(&self) -> Vec<Member<'a>> {
        let mut seen: HashSet<(u64, u64, u16)> = HashSet::new();
        let mut out = Vec::new();
        let views = [
            (View::Central, self.central.as_ref().ok()),
            (
                View::Miniz,
                self.miniz.as_ref().and_then(|m| m.as_ref().ok()),
            ),
        ];
        for (view, c) in views {
            for e in c.iter().flat_map(|c| &c.entries) {
                let key = (e.header_offset, e.header.compressed_size, e.header.method);
                if !seen.insert(key) {
                    continue;
                }
                let local_name = e
                    .local
                    .as_ref()
                    .ok()
                    .map(|l| l.name)
                    .filter(|&n| n != e.header.name);
                out.push(Member {
                    view,
                    name: e.header.name,
                    local_name,
                    header_offset: e.header_offset,
                    method: e.header.method,
                    flags: e.header.flags,
                    local_flags: e.local.as_ref().ok().map(|l| l.flags),
                    declared_size: e.header.uncompressed_size,
                    unix_mode: e.header.unix_mode(),
                    data: e.data.clone(),
                });
            }
        }
        for e in &self.local.entries {
            let key = (e.header.offset, e.compressed_size(), e.header.method);
            if !seen.insert(key) {
                continue;
            }
            out.push(Member {
                view: View::Local,
                name: e.header.name,
                local_name: None,
                header_offset: e.header.offset,
                method: e.header.method,
                flags: e.header.flags,
                local_flags: Some(e.header.flags),
                declared_size: e.uncompressed_size(),
                unix_mode: None,
                data: Ok(e.data),
            });
        }
        out
    }
}

/// The input from `pos` on (empty past the end).
pub(crate) fn at(data: &[u8], pos: usize) -> &[u8] {
    data.get(pos..).unwrap_or_default()
}

/// `len` bytes at `offset`, or a truncation error naming `what`.
pub(crate) fn slice<'a>(
    data: &'a [u8],
    offset: u64,
    len: u64,
    what: &'static str,
) -> Result<&'a [u8]> {
    let end = offset.checked_add(len);
    let range = usize::try_from(offset)
        .ok()
        .zip(end.and_then(|e| usize::try_from(e).ok()));
    match range.and_then(|(s, e)| data.get(s..e)) {
        Some(s) => Ok(s),
        None => Err(ParseError::truncated(
            offset.min(data.len() as u64),
            what,
            end.unwrap_or(u64::MAX).saturating_sub(data.len() as u64),
        )),
    }
}

#[cfg(test)]
mod tests;
