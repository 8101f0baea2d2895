//! gzip (RFC 1952) and zlib (RFC 1950) streams: `torch.save` into `gzip.open`, joblib's
//! `compress=` output, `.tar.gz` bundles. They are inflated within the file's budget and
//! what comes out is scanned like any other file.
//!
//! Both may hold several members (streams) back to back; Python's `gzip` reads them all and
//! skips zero padding after the last, joblib's zlib reader moves on to the next stream.
//! Readers that stop after the first would miss the rest, so all are read.

use flate2::bufread::{GzDecoder, ZlibDecoder};
use formats::ParseError;

use super::inflate::{self, End};
use super::{names, scan_if_recognised};
use crate::context::{Cx, Target};
use crate::rules::Rule;
use crate::severity::Severity;

pub static TRAILING: Rule = Rule {
    id: "CMP002",
    name: "data-after-compressed-stream",
    severity: Severity::Low,
    title: "bytes follow the end of a compressed stream",
    why: "Decompressors stop at the stream's end, so bytes after it are invisible to them but can be read by a loader that seeks there; they are a place to hide a second payload.",
    fix: "Check what the trailing bytes are (the finding scans them when recognisable); strip them or ask the publisher why they are there.",
};

#[derive(Clone, Copy)]
enum Kind {
    Gzip,
    Zlib,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zlib => "zlib",
        }
    }

    fn starts_stream(self, data: &[u8]) -> bool {
        match self {
            Self::Gzip => data.starts_with(b"\x1f\x8b"),
            Self::Zlib => match data {
                [cmf, flg, ..] => {
                    cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
                }
                _ => false,
            },
        }
    }
}

/// Compressed bytes a decoder over a slice has taken: the slice shrinks as it reads.
fn consumed<D>(total: u64) -> impl Fn(&D) -> u64
where
    D: Inner,
{
    move |d: &D| total.saturating_sub(d.remaining() as u64)
}

trait Inner {
    fn remaining(&self) -> usize;
}

impl Inner for GzDecoder<&[u8]> {
    fn remaining(&self) -> usize {
        self.get_ref().len()
    }
}

impl Inner for ZlibDecoder<&[u8]> {
    fn remaining(&self) -> usize {
        self.get_ref().len()
    }
}

pub fn analyze_gzip(cx: &mut Cx<'_>, t: Target<'_>) {
    analyze(cx, t, Kind::Gzip);
}

pub fn analyze_zlib(cx: &mut Cx<'_>, t: Target<'_>) {
    analyze(cx, t, Kind::Zlib);
}

fn analyze(cx: &mut Cx<'_>, t: Target<'_>, kind: Kind) {
    let total = t.data.len() as u64;
    let mut rest: &[u8] = t.data;
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    let mut streams = 0u64;
    let mut trailing = None;
    let mut complete;
    loop {
        let (end, remaining) = match kind {
            Kind::Gzip => {
                let mut d = GzDecoder::new(rest);
                let end = inflate::drain(cx, &mut d, consumed(total), &mut out, t.loc);
                if name.is_none() {
                    name = d
                        .header()
                        .and_then(|h| h.filename())
                        .filter(|n| !n.is_empty())
                        .map(names::display);
                }
                (end, d.into_inner())
            }
            Kind::Zlib => {
                let mut d = ZlibDecoder::new(rest);
                let end = inflate::drain(cx, &mut d, consumed(total), &mut out, t.loc);
                (end, d.into_inner())
            }
        };
        streams = streams.saturating_add(1);
        let offset = total.saturating_sub(remaining.len() as u64);
        match end {
            End::Complete => complete = true,
            End::Budget | End::Ratio => {
                complete = false;
                break;
            }
            End::Failed(e) => {
                complete = false;
                let err = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    ParseError::truncated(offset, "compressed stream", 1)
                } else {
                    ParseError::malformed(offset, format!("corrupt {} stream: {e}", kind.name()))
                };
                cx.parse_error(kind.name(), t.loc, &err);
                break;
            }
        }
        // Python's gzip skips zero padding after the last member.
        let skipped = remaining.iter().take_while(|&&b| b == 0).count();
        rest = remaining.get(skipped..).unwrap_or_default();
        if rest.is_empty() {
            break;
        }
        if !kind.starts_stream(rest) || streams >= cx.limits.max_archive_members {
            trailing = Some((total.saturating_sub(rest.len() as u64), rest));
            break;
        }
    }

    let member = name.unwrap_or_else(|| format!("<{}-decompressed>", kind.name()));
    let loc = t.loc.member(member);
    if complete {
        cx.scan_nested(&out, &loc, t.depth.saturating_add(1));
    } else {
        // Cut short (already reported): scan a recognisable start, not a bomb's zeros.
        scan_if_recognised(cx, &out, &loc, t.depth.saturating_add(1));
    }

    if let Some((offset, bytes)) = trailing {
        cx.report(
            &TRAILING,
            t.loc.at(offset),
            format!(
                "{} byte(s) after the end of the {} data",
                bytes.len(),
                kind.name()
            ),
        );
        let loc = t.loc.member(format!("<after {} stream>", kind.name()));
        scan_if_recognised(cx, bytes, &loc, t.depth.saturating_add(1));
    }
}
