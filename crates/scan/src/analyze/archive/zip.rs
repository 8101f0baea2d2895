//! ZIP archives: PyTorch checkpoints (`torch.save` since 1.6, TorchScript), Keras 3
//! `.keras`, NumPy `.npz`, and zips of anything else.
//!
//! Every member any reader would see is scanned by content: those listed by the central
//! directory (Python's `zipfile`, `numpy.load`, PyTorch's miniz) and those only met walking
//! local headers (streaming readers), every copy of a duplicated name, with deflated members
//! inflated inside the file's budget. The archive's structure is judged on its own: names
//! that escape the extraction directory, links, and every disagreement between the views,
//! which exists only to show one reader something other than another.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use flate2::bufread::DeflateDecoder;
use formats::zip::{self, flags, method, Anomaly, Archive, Member, View};
use formats::{Format, ParseError};

use super::inflate::{self, End};
use super::names::{self, display};
use super::{clip, scan_if_recognised};
use crate::context::{Cx, Target};
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

pub static PATH_ESCAPE: Rule = Rule {
    id: "ZIP001",
    name: "zip-path-traversal",
    severity: Severity::High,
    title: "archive member name escapes the extraction directory",
    why: "A name that is absolute, has a drive letter or climbs with `..` makes extractors write outside the model directory (\"zip slip\"): over code, configuration or keys.",
    fix: "Do not extract this archive. Ask the publisher for a clean one; if you must look inside, list it without extracting.",
};

pub static ODD_NAME: Rule = Rule {
    id: "ZIP002",
    name: "zip-odd-member-name",
    severity: Severity::Medium,
    title: "archive member name holds NUL, control characters or backslashes",
    why: "Readers disagree on such names (C readers stop at NUL, Windows reads `\\` as a separator), so one reader's `data.pkl` is another's `data.pkl\\0.txt`; control characters also forge terminal output.",
    fix: "Treat the archive as crafted. Repackage the model from a trusted source.",
};

pub static LINK_MEMBER: Rule = Rule {
    id: "ZIP003",
    name: "zip-link-member",
    severity: Severity::High,
    title: "archive member is a symbolic link or special file",
    why: "Extractors that honour Unix modes (unzip, many libraries) create the link: later writes or reads through it reach files outside the model (keys, shell profiles).",
    fix: "Do not extract with a tool that restores links. Replace links by the files they point to.",
};

pub static NAME_MISMATCH: Rule = Rule {
    id: "ZIP004",
    name: "zip-name-mismatch",
    severity: Severity::High,
    title: "central directory and local header name a member differently",
    why: "Directory readers (Python, PyTorch) and streaming readers then see different files under different names; scanners reading one way are shown something harmless.",
    fix: "Treat the archive as crafted to evade scanning. Obtain the model from its publisher again.",
};

pub static FIELD_MISMATCH: Rule = Rule {
    id: "ZIP005",
    name: "zip-header-mismatch",
    severity: Severity::High,
    title: "archive headers disagree on a member's method, size, flags or checksum",
    why: "When the local header and central directory (or the declared and actual sizes) disagree, readers extract different bytes from the same member, a way to show a scanner one thing and a loader another.",
    fix: "Treat the archive as crafted. Obtain the model from its publisher again.",
};

pub static HIDDEN_MEMBER: Rule = Rule {
    id: "ZIP006",
    name: "zip-hidden-member",
    severity: Severity::High,
    title: "a member is visible to some zip readers and hidden from others",
    why: "A member only the local headers show, only one reading of the central directory shows, or that lies inside another member, is invisible to scanners that read the other way while a loader reading this way opens it.",
    fix: "Treat the archive as crafted to evade scanning. Every copy was scanned; obtain the model from its publisher again.",
};

pub static DUPLICATE_NAME: Rule = Rule {
    id: "ZIP007",
    name: "zip-duplicate-name",
    severity: Severity::High,
    title: "two archive members share a name",
    why: "Readers pick different copies (Python's zipfile the last, miniz's sorted lookup any, extractors the last written), so a scanner can inspect a benign copy while the loader takes a malicious one.",
    fix: "Every copy was scanned; still, treat the archive as crafted and obtain a clean one.",
};

pub static OVERLAP: Rule = Rule {
    id: "ZIP008",
    name: "zip-overlapping-members",
    severity: Severity::High,
    title: "archive members overlap",
    why: "Members sharing bytes are how overlapping-file zip bombs multiply a small file into terabytes, and how a member hides inside another's data.",
    fix: "Do not extract it. Each distinct member was scanned once within the budget.",
};

pub static EVASIVE_FLAGS: Rule = Rule {
    id: "ZIP009",
    name: "zip-encryption-flags",
    severity: Severity::Medium,
    title: "member flagged as encrypted or patched",
    why: "Python's zipfile refuses such members, so pickle scanners built on it give up, while PyTorch's loader ignores the flag and loads the data (CVE-2025-1945). When the data is readable in clear the flag exists only to evade scanners.",
    fix: "Treat the archive as crafted. Members were scanned as if the flag were absent; obtain a clean copy from the publisher.",
};

pub static ODD_FLAGS: Rule = Rule {
    id: "ZIP010",
    name: "zip-reserved-flags",
    severity: Severity::Low,
    title: "member uses reserved or unusual general-purpose flag bits",
    why: "No ordinary writer sets these bits; readers differ in how they treat them.",
    fix: "Check the tool that produced the archive.",
};

pub static DATA_DESCRIPTOR: Rule = Rule {
    id: "ZIP011",
    name: "zip-data-descriptors",
    severity: Severity::Info,
    title: "members use trailing data descriptors",
    why: "Sizes after the data (as PyTorch's writer produces) are normal, but streaming readers must search for the end of such members; each was checked against the directory.",
    fix: "Nothing to do unless other findings point at this archive.",
};

pub static UNSUPPORTED_METHOD: Rule = Rule {
    id: "ZIP012",
    name: "zip-unsupported-compression",
    severity: Severity::Medium,
    title: "member compressed with a method Warden cannot read",
    why: "Python's zipfile can read bzip2, LZMA and zstd members that Warden cannot inspect, so their content is unknown.",
    fix: "Re-pack the archive stored or deflated and scan it again.",
};

pub static PREFIX: Rule = Rule {
    id: "ZIP013",
    name: "zip-prefix-data",
    severity: Severity::Medium,
    title: "data precedes the zip archive",
    why: "Python's zipfile still opens the archive, but `torch.load` sees a non-zip file and unpickles the prefix; a prefix also makes polyglots that are a pickle to one reader and a zip to another.",
    fix: "Check the prefix (it was scanned). Strip it or obtain the plain archive.",
};

pub static STRAY_BYTES: Rule = Rule {
    id: "ZIP014",
    name: "zip-unaccounted-bytes",
    severity: Severity::Low,
    title: "bytes in the archive that no header accounts for",
    why: "Bytes between members or after the end record are invisible to zip readers, a place to stash a second payload for a custom loader.",
    fix: "They were scanned when recognisable. Ask the publisher why they are there.",
};

pub static STORAGE_HOLDS_FILE: Rule = Rule {
    id: "ZIP015",
    name: "pytorch-storage-holds-file",
    severity: Severity::Medium,
    title: "a PyTorch tensor storage blob holds a recognisable file",
    why: "Storage blobs under `data/` are raw tensor bytes; one that is a pickle, zip or other file is a payload disguised as weights, waiting for a custom loader.",
    fix: "Inspect the nested findings; obtain the model from its publisher again.",
};

pub static LOCAL_WALK: Rule = Rule {
    id: "ZIP016",
    name: "zip-local-headers-unreadable",
    severity: Severity::Low,
    title: "local headers cannot be walked to the end",
    why: "Streaming readers would stop or go astray here; the central directory was used for the scan.",
    fix: "Re-pack the archive with a standard tool.",
};

/// What kind of model a zip holds, from its member names.
struct Layout<'a> {
    /// Folders holding `data.pkl` (or TorchScript's `constants.pkl`): `archive/`.
    torch_prefixes: HashSet<&'a [u8]>,
    keras: bool,
    npz: bool,
}

impl<'a> Layout<'a> {
    fn of(members: &[Member<'a>]) -> Self {
        let mut torch_prefixes = HashSet::new();
        let names: HashSet<&[u8]> = members.iter().map(|m| m.name).collect();
        for &n in &names {
            for file in [&b"data.pkl"[..], b"constants.pkl"] {
                if let Some(prefix) = n.strip_suffix(file) {
                    // `<folder>/data.pkl`: one folder, as PyTorchStreamReader requires.
                    let slashes = prefix.iter().filter(|&&b| b == b'/').count();
                    if slashes == 1 && prefix.len() > 1 && prefix.ends_with(b"/") {
                        torch_prefixes.insert(prefix);
                    }
                }
            }
        }
        Layout {
            torch_prefixes,
            keras: names.contains(&b"config.json"[..]) && names.contains(&b"metadata.json"[..]),
            npz: !names.is_empty() && names.iter().all(|n| n.ends_with(b".npy")),
        }
    }

    /// The `<folder>/` a name sits in, when it is a PyTorch archive folder. Looked up, not
    /// searched: an archive may declare many folders.
    fn torch_rest<'n>(&self, name: &'n [u8]) -> Option<&'n [u8]> {
        let slash = name.iter().position(|&b| b == b'/')?;
        let (prefix, rest) = name.split_at_checked(slash.checked_add(1)?)?;
        self.torch_prefixes.contains(prefix).then_some(rest)
    }

    /// `<prefix>data.pkl` or `<prefix>constants.pkl`: PyTorch unpickles these whatever
    /// their first bytes look like.
    fn is_torch_pickle(&self, name: &[u8]) -> bool {
        self.torch_rest(name)
            .is_some_and(|f| f == b"data.pkl" || f == b"constants.pkl")
    }

    /// `<prefix>data/<n>` (`torch.save`, TorchScript) or `<prefix>constants/<n>`
    /// (TorchScript constants): a raw tensor storage.
    fn is_storage(&self, name: &[u8]) -> bool {
        self.torch_rest(name)
            .and_then(|r| {
                r.strip_prefix(b"data/")
                    .or_else(|| r.strip_prefix(b"constants/"))
            })
            .is_some_and(|k| !k.is_empty() && k.iter().all(u8::is_ascii_digit))
    }
}

/// Flags that make Python's zipfile refuse a member while PyTorch's miniz loads it.
const EVASIVE: u16 =
    flags::ENCRYPTED | flags::PATCHED | flags::STRONG_ENCRYPTION | flags::MASKED_HEADER;

pub fn analyze_zip(cx: &mut Cx<'_>, t: Target<'_>) {
    let archive = zip::read(t.data, cx.limits);
    if let Err(e) = &archive.central {
        cx.parse_error("zip", t.loc, e);
    }
    if let Some(e) = &archive.local.stopped {
        if archive.central.is_ok() && !e.is_limit() {
            cx.report_at(
                &LOCAL_WALK,
                LOCAL_WALK.severity,
                t.loc.at(e.offset),
                e.to_string(),
            );
        } else {
            cx.parse_error("zip local headers", t.loc, e);
        }
    }

    let members = archive.members();
    let layout = Layout::of(&members);
    if !layout.torch_prefixes.is_empty() {
        cx.saw_format("pytorch");
    }
    if layout.keras {
        cx.saw_format("keras");
    }
    if layout.npz {
        cx.saw_format("npz");
    }

    structure(cx, t, &archive);

    let mut copies: HashMap<&[u8], u32> = HashMap::new();
    let mut streamed = 0u64;
    for m in &members {
        let copy = copies.entry(m.name).or_insert(0);
        *copy = copy.saturating_add(1);
        let loc = t.loc.member(label(m, *copy));
        if (m.flags | m.local_flags.unwrap_or(0)) & flags::DATA_DESCRIPTOR != 0 {
            streamed = streamed.saturating_add(1);
        }
        member(cx, t, &layout, m, &loc);
    }
    if streamed > 0 {
        cx.report_at(
            &DATA_DESCRIPTOR,
            DATA_DESCRIPTOR.severity,
            t.loc.clone(),
            format!("{streamed} member(s) give their sizes after their data"),
        );
    }
}

/// The member's name in locations: copies of a duplicated name and members only one view
/// lists are told apart.
fn label(m: &Member<'_>, copy: u32) -> String {
    let mut s = display(m.name);
    if copy > 1 {
        s.push_str(&format!(" (copy {copy})"));
    }
    match m.view {
        View::Central => {}
        View::Miniz => s.push_str(" [central directory at stored offset]"),
        View::Local => s.push_str(" [local header only]"),
    }
    s
}

/// Findings about the archive's structure: where its views disagree.
fn structure(cx: &mut Cx<'_>, t: Target<'_>, a: &Archive<'_>) {
    let depth = t.depth.saturating_add(1);
    for an in &a.anomalies {
        match an {
            Anomaly::NameMismatch {
                offset,
                central,
                local,
            } => cx.report_at(&NAME_MISMATCH,
                NAME_MISMATCH.severity,
                t.loc.at(*offset),
                format!(
                    "central directory `{}`, local header `{}`",
                    display(central),
                    display(local)
                ),
            ),
            Anomaly::FieldMismatch {
                offset,
                name,
                field,
                central,
                local,
            } => {
                let severity = match *field {
                    "uncompressed size" | "crc-32" => Severity::Medium,
                    _ => Severity::High,
                };
                cx.report_at(&FIELD_MISMATCH,
                    severity,
                    t.loc.member(display(name)).at(*offset),
                    format!("{field}: central directory {central}, local header {local}"),
                );
            }
            Anomaly::Hidden {
                offset,
                name,
                only_in,
            } => cx.report_at(&HIDDEN_MEMBER,
                HIDDEN_MEMBER.severity,
                t.loc.at(*offset),
                format!("`{}` is listed only by {}", display(name), only_in.describe()),
            ),
            Anomaly::CountMismatch { declared, found } => cx.report_at(&HIDDEN_MEMBER,
                HIDDEN_MEMBER.severity,
                t.loc.clone(),
                format!(
                    "end record declares {declared} entries, the directory holds {found}: Python reads {found}, PyTorch reads {declared}"
                ),
            ),
            Anomaly::Duplicate {
                name,
                copies,
                case_only,
            } => {
                let (severity, how) = if *case_only {
                    (Severity::Medium, " (differing only in case)")
                } else {
                    (Severity::High, "")
                };
                cx.report_at(&DUPLICATE_NAME,
                    severity,
                    t.loc.member(display(name)),
                    format!("{copies} members named `{}`{how}", display(name)),
                );
            }
            Anomaly::Overlap {
                offset,
                name,
                other_offset,
                other,
            } => cx.report_at(&OVERLAP,
                OVERLAP.severity,
                t.loc.at(*offset),
                format!(
                    "`{}` at byte {offset} overlaps `{}` at byte {other_offset}",
                    display(name),
                    display(other)
                ),
            ),
            Anomaly::Prefix { len } => {
                cx.report_at(&PREFIX,
                    PREFIX.severity,
                    t.loc.at(0),
                    format!("{len} byte(s) before the first member"),
                );
                if let Some(bytes) = span(t.data, 0, *len) {
                    cx.scan_nested(bytes, &t.loc.member("<prefix>"), depth);
                }
            }
            Anomaly::Gap { offset, len } | Anomaly::Trailing { offset, len } => {
                let what = if matches!(an, Anomaly::Gap { .. }) {
                    "between members"
                } else {
                    "after the end of the archive"
                };
                cx.report_at(&STRAY_BYTES,
                    STRAY_BYTES.severity,
                    t.loc.at(*offset),
                    format!("{len} byte(s) {what}"),
                );
                if let Some(bytes) = span(t.data, *offset, *len) {
                    scan_if_recognised(cx, bytes, &t.loc.member(format!("<bytes at {offset}>")), depth);
                }
            }
            Anomaly::BadMember { name, error } => {
                cx.parse_error("zip member", &t.loc.member(display(name)), error);
            }
            _ => {}
        }
    }
}

fn span(data: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let s = usize::try_from(offset).ok()?;
    let e = usize::try_from(offset.checked_add(len)?).ok()?;
    data.get(s..e)
}

/// Judges one member's header and scans its bytes.
fn member(cx: &mut Cx<'_>, t: Target<'_>, layout: &Layout<'_>, m: &Member<'_>, loc: &Location) {
    for n in std::iter::once(m.name).chain(m.local_name) {
        let issues = names::path_issues(n);
        if issues.escapes() {
            cx.report_at(
                &PATH_ESCAPE,
                PATH_ESCAPE.severity,
                loc.clone(),
                format!("`{}`: {}", display(n), issues.describe()),
            );
        } else if issues.nul || issues.control || issues.backslash {
            let severity = if issues.nul {
                Severity::High
            } else if issues.control {
                Severity::Medium
            } else {
                Severity::Low
            };
            cx.report_at(
                &ODD_NAME,
                severity,
                loc.clone(),
                format!("`{}`: {}", display(n), issues.describe()),
            );
        }
    }

    let all_flags = m.flags | m.local_flags.unwrap_or(0);
    let odd = all_flags & !(flags::ORDINARY | EVASIVE);
    if odd != 0 {
        cx.report_at(
            &ODD_FLAGS,
            ODD_FLAGS.severity,
            loc.clone(),
            format!("general purpose flags {all_flags:#06x} (unusual bits {odd:#06x})"),
        );
    }

    let Ok(stored) = m.data else {
        return; // Reported with the archive's structure.
    };

    const S_IFMT: u32 = 0o170000;
    let file_type = m.unix_mode.map(|mode| mode & S_IFMT).unwrap_or(0);
    match file_type {
        0o120000 => {
            let target = String::from_utf8_lossy(stored.get(..4096).unwrap_or(stored));
            let escapes = names::link_escapes(m.name, stored);
            let how = if escapes { ", outside the archive" } else { "" };
            cx.report_at(
                &LINK_MEMBER,
                Severity::High,
                loc.clone(),
                clip(&format!("symbolic link to `{target}`{how}")),
            );
            return;
        }
        0o020000 | 0o060000 | 0o010000 | 0o140000 => {
            let kind = match file_type {
                0o020000 => "character device",
                0o060000 => "block device",
                0o010000 => "FIFO",
                _ => "socket",
            };
            cx.report_at(
                &LINK_MEMBER,
                Severity::Medium,
                loc.clone(),
                kind.to_string(),
            );
            return;
        }
        _ => {}
    }

    let Some((bytes, complete)) = contents(cx, m, stored, loc) else {
        return;
    };
    let depth = t.depth.saturating_add(1);
    if !complete {
        // Cut short (already reported): a recognisable start is still worth a look, a
        // run of zeros from a bomb is not.
        scan_if_recognised(cx, &bytes, loc, depth);
        return;
    }

    if all_flags & EVASIVE != 0 {
        let recognised = !matches!(formats::detect(&bytes), Format::Unknown);
        let (severity, how) = if recognised && !bytes.is_empty() {
            (Severity::High, "; the data is readable in clear")
        } else {
            (Severity::Medium, "")
        };
        cx.report_at(
            &EVASIVE_FLAGS,
            severity,
            loc.clone(),
            format!("general purpose flags {all_flags:#06x}{how}"),
        );
    }

    if m.name.ends_with(b"/") && bytes.is_empty() {
        return; // A directory entry.
    }
    if m.name.starts_with(b"__MACOSX/") && bytes.starts_with(b"\x00\x05\x16\x07") {
        return; // Finder's AppleDouble metadata: no loader reads it.
    }
    if layout.is_storage(m.name) {
        // Raw tensor bytes: judged only if they are disguised files.
        if let Some(kind) = embedded_format(&bytes) {
            cx.report_at(
                &STORAGE_HOLDS_FILE,
                STORAGE_HOLDS_FILE.severity,
                loc.clone(),
                format!("`{}` starts like a {kind}", display(m.name)),
            );
            cx.scan_nested(&bytes, loc, depth);
        }
        return;
    }
    if layout.is_torch_pickle(m.name) {
        cx.scan_as(Format::Pickle, &bytes, loc, depth);
        return;
    }
    cx.scan_nested(&bytes, loc, depth);
}

/// The member's uncompressed bytes (a slice of the input when stored, inflated within the
/// budget when deflated) and whether they are complete.
fn contents<'d>(
    cx: &mut Cx<'_>,
    m: &Member<'_>,
    stored: &'d [u8],
    loc: &Location,
) -> Option<(Cow<'d, [u8]>, bool)> {
    let (bytes, complete) = match m.method {
        method::STORED => (Cow::Borrowed(stored), true),
        method::DEFLATED if inflate::declares_bomb(cx, m.declared_size, stored.len() as u64) => {
            // The member says it is a bomb: report it without paying for the inflation.
            // Stopping after the floor would not have inspected the rest either.
            let (size, packed) = (m.declared_size, stored.len());
            cx.report(
                &inflate::BOMB,
                loc.clone(),
                format!("{packed} compressed bytes declare {size} bytes; not inflated"),
            );
            return None;
        }
        method::DEFLATED => {
            let mut out = Vec::new();
            let end = inflate::drain(
                cx,
                &mut DeflateDecoder::new(stored),
                |d: &DeflateDecoder<&[u8]>| (stored.len().saturating_sub(d.get_ref().len())) as u64,
                &mut out,
                loc,
            );
            let complete = match end {
                End::Complete => true,
                End::Budget | End::Ratio => false,
                End::Failed(e) => {
                    let err =
                        ParseError::malformed(0, format!("deflated data does not inflate: {e}"));
                    cx.parse_error("zip member", loc, &err);
                    false
                }
            };
            (Cow::Owned(out), complete)
        }
        other => {
            cx.report_at(
                &UNSUPPORTED_METHOD,
                UNSUPPORTED_METHOD.severity,
                loc.clone(),
                format!("compression method {other} ({})", method::name(other)),
            );
            return None;
        }
    };
    if complete && bytes.len() as u64 != m.declared_size {
        cx.report_at(
            &FIELD_MISMATCH,
            Severity::Medium,
            loc.clone(),
            format!(
                "declared uncompressed size {}, actual {}",
                m.declared_size,
                bytes.len()
            ),
        );
    }
    Some((bytes, complete))
}

/// A file format with an unmistakable signature at the start of `d`. Random tensor bytes
/// must not match: a pickle needs its protocol byte, a valid first opcode and a final STOP.
fn embedded_format(d: &[u8]) -> Option<&'static str> {
    const MAGICS: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "zip archive"),
        (b"\x1f\x8b\x08", "gzip stream"),
        (b"\x93NUMPY", "NumPy array"),
        (b"GGUF", "GGUF file"),
        (b"\x89HDF\r\n\x1a\n", "HDF5 file"),
    ];
    if let Some((_, name)) = MAGICS.iter().find(|(m, _)| d.starts_with(m)) {
        return Some(name);
    }
    if let [0x80, proto, op, .., b'.'] = d {
        if (2..=5).contains(proto) && is_pickle_opcode(*op) {
            return Some("pickle");
        }
    }
    if d.get(257..262) == Some(b"ustar") && formats::tar::header_checksum_ok(d) {
        return Some("tar archive");
    }
    None
}

fn is_pickle_opcode(b: u8) -> bool {
    matches!(b, 0x80..=0x98) || b"(.0125FIJKLMNPQRSTUVXabcd}eghijl]opqrst)uGBC".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_bytes_are_not_mistaken_for_files() {
        assert_eq!(embedded_format(&[0x80, 0x02, 0x00, 0x00, 0x80, 0x3f]), None);
        assert_eq!(embedded_format(b"\x80\x02}q\x00."), Some("pickle"));
        assert_eq!(embedded_format(b"\x80\x04\x95\x10\x00."), Some("pickle"));
        assert_eq!(embedded_format(b"PK\x03\x04...."), Some("zip archive"));
        assert_eq!(embedded_format(&[0u8; 1024]), None);
    }
}
