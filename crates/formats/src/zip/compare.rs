//! Where the views of an archive disagree. Each disagreement lets a member, a name or some
//! bytes exist for one reader and not for another, which is how archives hide payloads
//! from scanners that read them one way while loaders read them the other.

use std::collections::{HashMap, HashSet};

use crate::error::ParseError;

use super::header::{self, flags};
use super::{Archive, Central};

/// Which reader sees a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Python's `zipfile` (and `numpy.load`): the central directory, shifted by any prefix.
    Central,
    /// miniz (PyTorch): the central directory at its stored offset, by count.
    Miniz,
    /// Streaming readers: local headers walked from the front.
    Local,
}

impl View {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Central => "the central directory (Python zipfile, numpy)",
            Self::Miniz => "the central directory at its stored offset (PyTorch/miniz)",
            Self::Local => "the local headers (streaming readers)",
        }
    }
}

/// A structural fact about an archive that a careful reader should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anomaly<'a> {
    /// The central directory names a member one way, its local header another.
    NameMismatch {
        offset: u64,
        central: &'a [u8],
        local: &'a [u8],
    },
    /// The central directory and the local header (or its data descriptor) disagree on a
    /// field: `method`, `encrypted flag`, `compressed size`, `uncompressed size`, `crc-32`.
    FieldMismatch {
        offset: u64,
        name: &'a [u8],
        field: &'static str,
        central: u64,
        local: u64,
    },
    /// A member only one view lists.
    Hidden {
        offset: u64,
        name: &'a [u8],
        only_in: View,
    },
    /// The end record declares one number of entries, the directory's size holds another:
    /// Python reads by size, miniz by count.
    CountMismatch { declared: u64, found: u64 },
    /// Two or more members share a name (`case_only`: they differ only in ASCII case, which
    /// miniz's default lookup ignores).
    Duplicate {
        name: &'a [u8],
        copies: u64,
        case_only: bool,
    },
    /// A member's bytes overlap another member's (or the central directory's).
    Overlap {
        offset: u64,
        name: &'a [u8],
        other_offset: u64,
        other: &'a [u8],
    },
    /// Bytes before the archive.
    Prefix { len: u64 },
    /// Bytes inside the archive that no header accounts for.
    Gap { offset: u64, len: u64 },
    /// Bytes after the end record and its comment.
    Trailing { offset: u64, len: u64 },
    /// A member record that points at nothing readable.
    BadMember { name: &'a [u8], error: ParseError },
}

const CD_NAME: &[u8] = b"<central directory>";

pub(super) fn anomalies<'a>(a: &Archive<'a>) -> Vec<Anomaly<'a>> {
    let mut out = Vec::new();
    let walk_by_offset: HashMap<u64, usize> = a
        .local
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.header.offset, i))
        .collect();

    let Ok(central) = &a.central else {
        // Without a directory there is nothing to compare; a miniz view alone still
        // reveals members.
        if let Some(Ok(m)) = &a.miniz {
            hidden(&mut out, m, &HashSet::new(), super::View::Miniz);
        }
        return out;
    };

    if let Ok(end) = &a.end {
        let found = central.entries.len() as u64;
        if found != end.entries {
            out.push(Anomaly::CountMismatch {
                declared: end.entries,
                found,
            });
        }
    }

    for e in &central.entries {
        let name = e.header.name;
        let local = match &e.local {
            Ok(l) => l,
            Err(err) => {
                out.push(Anomaly::BadMember {
                    name,
                    error: err.clone(),
                });
                continue;
            }
        };
        if let Err(err) = &e.data {
            out.push(Anomaly::BadMember {
                name,
                error: err.clone(),
            });
        }
        if local.name != name {
            out.push(Anomaly::NameMismatch {
                offset: e.header_offset,
                central: name,
                local: local.name,
            });
        }
        let mut field = |field: &'static str, c: u64, l: u64| {
            if c != l {
                out.push(Anomaly::FieldMismatch {
                    offset: e.header_offset,
                    name,
                    field,
                    central: c,
                    local: l,
                });
            }
        };
        field(
            "method",
            u64::from(e.header.method),
            u64::from(local.method),
        );
        field(
            "encrypted flag",
            u64::from(e.header.flags & flags::ENCRYPTED),
            u64::from(local.flags & flags::ENCRYPTED),
        );
        let walked = walk_by_offset
            .get(&e.header_offset)
            .and_then(|&i| a.local.entries.get(i));
        match walked {
            Some(w) => {
                field(
                    "compressed size",
                    e.header.compressed_size,
                    w.compressed_size(),
                );
                field(
                    "uncompressed size",
                    e.header.uncompressed_size,
                    w.uncompressed_size(),
                );
                field("crc-32", u64::from(e.header.crc32), u64::from(w.crc32()));
            }
            None if local.flags & flags::DATA_DESCRIPTOR == 0 => {
                field(
                    "compressed size",
                    e.header.compressed_size,
                    local.compressed_size,
                );
                field(
                    "uncompressed size",
                    e.header.uncompressed_size,
                    local.uncompressed_size,
                );
                field("crc-32", u64::from(e.header.crc32), u64::from(local.crc32));
            }
            None => {}
        }
    }

    duplicates(&mut out, central);
    overlaps(&mut out, central);

    // Members one view has and the other lacks.
    let central_offsets: HashSet<u64> = central.entries.iter().map(|e| e.header_offset).collect();
    if a.local.stopped.is_none() {
        for e in &central.entries {
            if e.local.is_ok() && !walk_by_offset.contains_key(&e.header_offset) {
                out.push(Anomaly::Hidden {
                    offset: e.header_offset,
                    name: e.header.name,
                    only_in: View::Central,
                });
            }
        }
    }
    let mut listed = central_offsets;
    if let Some(Ok(m)) = &a.miniz {
        hidden(&mut out, m, &listed, View::Miniz);
        listed.extend(m.entries.iter().map(|e| e.header_offset));
    }
    for e in &a.local.entries {
        if !listed.contains(&e.header.offset) {
            out.push(Anomaly::Hidden {
                offset: e.header.offset,
                name: e.header.name,
                only_in: View::Local,
            });
        }
    }

    coverage(&mut out, a, central);
    out
}

fn hidden<'a>(out: &mut Vec<Anomaly<'a>>, c: &Central<'a>, listed: &HashSet<u64>, view: View) {
    for e in &c.entries {
        if !listed.contains(&e.header_offset) {
            out.push(Anomaly::Hidden {
                offset: e.header_offset,
                name: e.header.name,
                only_in: view,
            });
        }
    }
}

fn duplicates<'a>(out: &mut Vec<Anomaly<'a>>, c: &Central<'a>) {
    let mut exact: HashMap<&[u8], u64> = HashMap::new();
    let mut folded: HashMap<Vec<u8>, (&[u8], u64)> = HashMap::new();
    for e in &c.entries {
        let n = exact.entry(e.header.name).or_insert(0);
        *n = n.saturating_add(1);
        let f = folded
            .entry(e.header.name.to_ascii_lowercase())
            .or_insert((e.header.name, 0));
        f.1 = f.1.saturating_add(1);
    }
    let mut reported: HashSet<Vec<u8>> = HashSet::new();
    // In directory order, so reports are stable.
    for e in &c.entries {
        let name = e.header.name;
        let copies = exact.get(name).copied().unwrap_or(0);
        let folded_copies = folded.get(&name.to_ascii_lowercase()).map_or(0, |f| f.1);
        if !reported.insert(name.to_ascii_lowercase()) {
            continue;
        }
        if copies > 1 {
            out.push(Anomaly::Duplicate {
                name,
                copies,
                case_only: false,
            });
        } else if folded_copies > 1 {
            out.push(Anomaly::Duplicate {
                name,
                copies: folded_copies,
                case_only: true,
            });
        }
    }
}

/// Members whose bytes (local header through data) overlap an earlier member's or the
/// central directory. Sorted by start; each member is compared with the furthest-reaching
/// one before it, so this is O(n log n).
fn overlaps<'a>(out: &mut Vec<Anomaly<'a>>, c: &Central<'a>) {
    let mut spans: Vec<(u64, u64, &'a [u8])> = c
        .entries
        .iter()
        .filter_map(|e| Some((e.header_offset, e.data_end()?, e.header.name)))
        .collect();
    spans.sort_unstable_by_key(|s| (s.0, s.1));
    let mut reach: Option<(u64, u64, &'a [u8])> = None;
    for &(start, end, name) in &spans {
        if let Some((r_start, r_end, r_name)) = reach {
            if start < r_end {
                out.push(Anomaly::Overlap {
                    offset: start,
                    name,
                    other_offset: r_start,
                    other: r_name,
                });
            }
        }
        if reach.is_none_or(|r| end > r.1) {
            reach = Some((start, end, name));
        }
        if start < c.start && end > c.start {
            out.push(Anomaly::Overlap {
                offset: start,
                name,
                other_offset: c.start,
                other: CD_NAME,
            });
        }
    }
}

/// Bytes no structure accounts for: a prefix, gaps between members, trailing data.
fn coverage(out: &mut Vec<Anomaly<'_>>, a: &Archive<'_>, central: &Central<'_>) {
    let Ok(end) = &a.end else { return };
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for e in &a.local.entries {
        spans.push((e.header.offset, e.end));
    }
    for e in &central.entries {
        let Some(data_end) = e.data_end() else {
            continue;
        };
        let mut stop = data_end;
        if e.header.flags & flags::DATA_DESCRIPTOR != 0 {
            if let Some(d) = header::descriptor_at(a.data, data_end, e.header.compressed_size) {
                stop = stop.saturating_add(d.len);
            }
        }
        spans.push((e.header_offset, stop));
    }
    let cd_end = central.start.saturating_add(end.cd_size);
    spans.push((central.start, cd_end));
    if let Some(z) = end.zip64 {
        spans.push((z, end.offset));
    }
    spans.push((end.offset, end.end));
    spans.sort_unstable();

    let len = a.data.len() as u64;
    let mut pos = 0u64;
    for (s, e) in spans {
        if s > pos {
            out.push(if pos == 0 {
                Anomaly::Prefix { len: s }
            } else {
                Anomaly::Gap {
                    offset: pos,
                    len: s.saturating_sub(pos),
                }
            });
        }
        pos = pos.max(e);
    }
    if pos < len {
        out.push(Anomaly::Trailing {
            offset: pos,
            len: len.saturating_sub(pos),
        });
    }
}
