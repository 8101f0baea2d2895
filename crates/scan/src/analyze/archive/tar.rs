//! tar archives (POSIX ustar, GNU, PAX), iterated with the `tar` crate over the input in
//! memory. GNU long names and PAX `path`/`size` records are honoured, as Python's
//! `tarfile` honours them. Regular members are scanned as slices of the input.
//!
//! PyTorch's legacy tar checkpoint (`sys_info`, `pickle`, `storages`, `tensors`) is
//! recognised: its `storages` and `tensors` members are runs of pickles between raw tensor
//! bytes, and every one of those pickles is scanned.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use formats::tar::torch_legacy;
use formats::{Format, ParseError};
use tar::EntryType;

use super::names::{self, display};
use super::scan_if_recognised;
use crate::context::{Cx, Target};
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

pub static PATH_ESCAPE: Rule = Rule {
    id: "TAR001",
    name: "tar-path-traversal",
    severity: Severity::High,
    title: "tar member name escapes the extraction directory",
    why: "An absolute name or one that climbs with `..` makes `tar` and `tarfile.extractall` (without the `data` filter) write outside the model directory.",
    fix: "Do not extract this archive. Obtain a clean one from the publisher.",
};

pub static LINK: Rule = Rule {
    id: "TAR002",
    name: "tar-link-member",
    severity: Severity::Medium,
    title: "tar member is a symbolic or hard link",
    why: "Extracted links let later members or the loader read and write through them; a link pointing outside the archive reaches files such as keys or shell profiles.",
    fix: "Replace links by the files they point to. Never extract an archive whose links leave it.",
};

pub static SPECIAL: Rule = Rule {
    id: "TAR003",
    name: "tar-special-member",
    severity: Severity::Medium,
    title: "tar member is a device or FIFO",
    why: "Extracting device nodes or FIFOs gives access to hardware or makes a loader hang; no model needs one.",
    fix: "Remove the special files and repackage the model.",
};

pub static DUPLICATE_NAME: Rule = Rule {
    id: "TAR004",
    name: "tar-duplicate-name",
    severity: Severity::High,
    title: "two tar members share a name",
    why: "`tarfile.getmember` (which `torch.load` uses) returns the last copy and extraction keeps the last one written, while scanners may stop at the first: a benign copy can mask a malicious one.",
    fix: "Every copy was scanned; still, treat the archive as crafted and obtain a clean one.",
};

pub static TRAILING: Rule = Rule {
    id: "TAR005",
    name: "tar-data-after-end",
    severity: Severity::Low,
    title: "data after the end of the tar archive",
    why: "Readers stop at the end-of-archive blocks (unless told to ignore zeros), so data after them is hidden from most tools but read by `tar -i`.",
    fix: "It was scanned when recognisable. Ask the publisher why it is there.",
};

pub static LEGACY_LAYOUT: Rule = Rule {
    id: "TAR006",
    name: "pytorch-legacy-layout-unreadable",
    severity: Severity::Medium,
    title: "a PyTorch legacy checkpoint member could not be followed",
    why: "`torch.load` unpickles every record in `storages` and `tensors`; records Warden could not locate were not inspected.",
    fix: "Convert the checkpoint with a trusted PyTorch in a sandbox (load with weights_only=True, save as safetensors).",
};

pub static ODD_ENTRY: Rule = Rule {
    id: "TAR007",
    name: "tar-unusual-entry",
    severity: Severity::Low,
    title: "tar member of an unusual type or with an odd name",
    why: "Volume labels, multi-volume continuations, sparse files and names with control characters or backslashes are read differently by different tools.",
    fix: "Repackage the model with a standard tool.",
};

/// The legacy checkpoint's members, as `torch.serialization` names them.
const LEGACY: [&str; 4] = ["sys_info", "pickle", "storages", "tensors"];

/// A member kept for the second pass.
struct Kept {
    name: Vec<u8>,
    offset: u64,
    data: Vec<u8>,
    /// Position of its data in the input (None when it had to be read, e.g. sparse).
    slice: Option<(u64, u64)>,
}

pub fn analyze_tar(cx: &mut Cx<'_>, t: Target<'_>) {
    let mut archive = tar::Archive::new(Cursor::new(t.data));
    let entries = match archive.entries_with_seek() {
        Ok(e) => e,
        Err(e) => {
            cx.parse_error("tar", t.loc, &ParseError::malformed(0, e.to_string()));
            return;
        }
    };
    let mut members: Vec<Kept> = Vec::new();
    let mut counts: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut end = 0u64;
    let mut complete = true;
    let mut seen = 0u64;

    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                cx.parse_error("tar", t.loc, &ParseError::malformed(end, e.to_string()));
                complete = false;
                break;
            }
        };
        seen = seen.saturating_add(1);
        if seen > cx.limits.max_archive_members {
            let err = ParseError::limit(
                entry.raw_header_position(),
                "tar members",
                seen,
                cx.limits.max_archive_members,
            );
            cx.parse_error("tar", t.loc, &err);
            complete = false;
            break;
        }
        let name = entry.path_bytes().into_owned();
        let header_at = entry.raw_header_position();
        let pos = entry.raw_file_position();
        let size = entry.size();
        end = pos.saturating_add(size.div_ceil(512).saturating_mul(512));
        let kind = entry.header().entry_type();
        let count = counts.entry(name.clone()).or_insert(0);
        *count = count.saturating_add(1);
        let label = if *count > 1 {
            format!("{} (copy {count})", display(&name))
        } else {
            display(&name)
        };
        let loc = t.loc.member(label);

        check_name(cx, &name, &loc);
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                if span(t.data, pos, size).is_none() {
                    let err = ParseError::truncated(
                        header_at,
                        "tar member data",
                        pos.saturating_add(size).saturating_sub(t.data.len() as u64),
                    );
                    cx.parse_error("tar", &loc, &err);
                    complete = false;
                    break;
                }
                members.push(Kept {
                    name,
                    offset: header_at,
                    data: Vec::new(),
                    slice: Some((pos, size)),
                });
            }
            EntryType::GNUSparse => {
                // The data is scattered; reading it expands the holes, within the budget.
                let budget = cx.inflate_budget();
                let mut data = Vec::new();
                let read = (&mut entry)
                    .take(budget.saturating_add(1))
                    .read_to_end(&mut data);
                if let Err(e) = read {
                    cx.parse_error(
                        "tar",
                        &loc,
                        &ParseError::malformed(header_at, e.to_string()),
                    );
                    continue;
                }
                if !cx.charge_inflated(data.len() as u64, &loc) {
                    continue;
                }
                cx.report_at(
                    &ODD_ENTRY,
                    ODD_ENTRY.severity,
                    loc.at(header_at),
                    "GNU sparse file".to_string(),
                );
                members.push(Kept {
                    name,
                    offset: header_at,
                    data,
                    slice: None,
                });
            }
            EntryType::Directory | EntryType::XGlobalHeader => {}
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let hard = kind == EntryType::Link;
                let escapes = if hard {
                    names::path_issues(&target).escapes()
                } else {
                    names::link_escapes(&name, &target)
                };
                let severity = if escapes {
                    Severity::High
                } else {
                    Severity::Medium
                };
                let what = if hard { "hard link" } else { "symbolic link" };
                let how = if escapes { ", outside the archive" } else { "" };
                cx.report_at(
                    &LINK,
                    severity,
                    loc.at(header_at),
                    format!("{what} to `{}`{how}", display(&target)),
                );
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let what = match kind {
                    EntryType::Char => "character device",
                    EntryType::Block => "block device",
                    _ => "FIFO",
                };
                cx.report_at(
                    &SPECIAL,
                    SPECIAL.severity,
                    loc.at(header_at),
                    what.to_string(),
                );
            }
            other => {
                cx.report_at(
                    &ODD_ENTRY,
                    ODD_ENTRY.severity,
                    loc.at(header_at),
                    format!("entry type {:?} ({} bytes)", other.as_byte() as char, size),
                );
                if let Some(bytes) = span(t.data, pos, size) {
                    scan_if_recognised(cx, bytes, &loc, t.depth.saturating_add(1));
                }
            }
        }
    }

    let mut reported = std::collections::HashSet::new();
    for m in &members {
        let copies = counts.get(&m.name).copied().unwrap_or(0);
        if copies > 1 && reported.insert(m.name.clone()) {
            cx.report_at(
                &DUPLICATE_NAME,
                DUPLICATE_NAME.severity,
                t.loc.member(display(&m.name)).at(m.offset),
                format!("{copies} members named `{}`", display(&m.name)),
            );
        }
    }

    let legacy = LEGACY
        .iter()
        .skip(1)
        .all(|n| counts.contains_key(n.as_bytes()));
    if legacy {
        cx.saw_format("pytorch-legacy-tar");
    }

    let mut copies: HashMap<&[u8], u32> = HashMap::new();
    for m in &members {
        let copy = copies.entry(&m.name).or_insert(0);
        *copy = copy.saturating_add(1);
        let label = if *copy > 1 {
            format!("{} (copy {copy})", display(&m.name))
        } else {
            display(&m.name)
        };
        let loc = t.loc.member(label);
        let bytes: &[u8] = match m.slice {
            Some((pos, size)) => span(t.data, pos, size).unwrap_or_default(),
            None => &m.data,
        };
        let depth = t.depth.saturating_add(1);
        match (legacy, m.name.as_slice()) {
            (true, b"pickle") => cx.scan_as(Format::Pickle, bytes, &loc, depth),
            (true, b"storages") => legacy_member(cx, bytes, &loc, depth, true),
            (true, b"tensors") => legacy_member(cx, bytes, &loc, depth, false),
            _ => cx.scan_nested(bytes, &loc, depth),
        }
    }

    if complete {
        trailing(cx, t, end);
    }
}

fn check_name(cx: &mut Cx<'_>, name: &[u8], loc: &Location) {
    let issues = names::path_issues(name);
    if issues.escapes() {
        cx.report_at(
            &PATH_ESCAPE,
            PATH_ESCAPE.severity,
            loc.clone(),
            format!("`{}`: {}", display(name), issues.describe()),
        );
    } else if issues.control || issues.backslash || issues.nul {
        let severity = if issues.control || issues.nul {
            Severity::Medium
        } else {
            Severity::Low
        };
        cx.report_at(
            &ODD_ENTRY,
            severity,
            loc.clone(),
            format!("`{}`: {}", display(name), issues.describe()),
        );
    }
}

/// Scans every pickle of a legacy `storages` or `tensors` member; if the layout cannot be
/// followed, scans the member as one pickle (its first record) and says so.
fn legacy_member(cx: &mut Cx<'_>, data: &[u8], loc: &Location, depth: u32, storages: bool) {
    let layout = if storages {
        torch_legacy::storages(data, cx.limits)
    } else {
        torch_legacy::tensors(data, cx.limits)
    };
    match layout {
        Ok(layout) => {
            for (i, p) in layout.pickles.iter().enumerate() {
                let bytes = span(data, p.offset, p.len).unwrap_or_default();
                let ploc = loc.member(format!("<record {i} at byte {}>", p.offset));
                cx.scan_as(Format::Pickle, bytes, &ploc, depth);
            }
            let rest = data.get(usize::try_from(layout.end).unwrap_or(usize::MAX)..);
            if let Some(rest) = rest.filter(|r| !r.is_empty()) {
                let rloc = loc.member(format!("<after byte {}>", layout.end));
                scan_if_recognised(cx, rest, &rloc, depth);
            }
        }
        Err(e) => {
            cx.report(&LEGACY_LAYOUT, loc.at(e.offset), e.to_string());
            cx.scan_as(Format::Pickle, data, loc, depth);
        }
    }
}

/// Reports (and scans, when recognisable) non-zero bytes after the last member.
fn trailing(cx: &mut Cx<'_>, t: Target<'_>, end: u64) {
    let Some(rest) = usize::try_from(end).ok().and_then(|e| t.data.get(e..)) else {
        return;
    };
    let Some(first) = rest.iter().position(|&b| b != 0) else {
        return;
    };
    // From the start of the block holding the first non-zero byte.
    let block = first.saturating_sub(first % 512);
    let offset = end.saturating_add(block as u64);
    let bytes = rest.get(block..).unwrap_or_default();
    cx.report_at(
        &TRAILING,
        TRAILING.severity,
        t.loc.at(offset),
        format!("{} byte(s) after the end-of-archive blocks", bytes.len()),
    );
    let loc = t
        .loc
        .member(format!("<after end of archive, byte {offset}>"));
    scan_if_recognised(cx, bytes, &loc, t.depth.saturating_add(1));
}

fn span(data: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let s = usize::try_from(offset).ok()?;
    let e = usize::try_from(offset.checked_add(len)?).ok()?;
    data.get(s..e)
}
