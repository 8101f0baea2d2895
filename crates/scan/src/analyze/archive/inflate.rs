//! Bounded inflation. Output grows as it is produced (a declared size is never used to
//! allocate), every chunk is charged to the file's budget ([`Cx::charge_inflated`]), and
//! a stream that expands more than `max_compression_ratio` times past a floor is stopped
//! as a bomb.

use std::cell::Cell;
use std::io::{self, Read};

use crate::context::Cx;
use crate::location::Location;
use crate::rules::Rule;
use crate::severity::Severity;

pub static BOMB: Rule = Rule {
    id: "CMP001",
    name: "compression-bomb",
    severity: Severity::Medium,
    title: "compressed data expands beyond any real model's ratio",
    why: "A stream that inflates thousands of times its size exists to exhaust the memory or disk of whatever unpacks it (a scanner, a loader); the rest of it was not inspected.",
    fix: "Do not unpack it. Ask the publisher for the model uncompressed or in a data-only format.",
};

/// Ratios are judged only past this much output: small blocks of zeros (an all-zero tensor
/// in `np.savez_compressed`) compress near deflate's 1032:1 maximum and are harmless;
/// the file's budget bounds the total anyway. 16 MiB keeps a bomb's cost to a few
/// milliseconds of inflation while tolerating zero tensors of millions of elements.
const RATIO_FLOOR: u64 = 16 << 20;
const CHUNK: usize = 64 * 1024;

/// How a stream ended.
#[derive(Debug)]
pub(super) enum End {
    /// The stream ended where it says it does.
    Complete,
    /// The file's inflation budget ran out (already reported).
    Budget,
    /// The ratio limit was hit (already reported).
    Ratio,
    /// The stream is truncated or corrupt.
    Failed(io::Error),
}

/// True when a container's declared sizes alone make a member a bomb: more than the ratio
/// floor of output at more than the ratio limit.
pub(super) fn declares_bomb(cx: &Cx<'_>, declared: u64, compressed: u64) -> bool {
    declared > RATIO_FLOOR && declared / compressed.max(1) > cx.limits.max_compression_ratio
}

/// Reads `reader` to its end into `out`, charging every chunk. `consumed` says how many
/// compressed bytes the reader has taken so far, for the ratio.
pub(super) fn drain<R: Read>(
    cx: &mut Cx<'_>,
    reader: &mut R,
    consumed: impl Fn(&R) -> u64,
    out: &mut Vec<u8>,
    loc: &Location,
) -> End {
    // The chunk buffer is the thread's, kept from one stream to the next: a small stream
    // then costs no 64 KiB allocation and zeroing. `drain` never runs inside itself.
    let mut buf = SCRATCH.take();
    buf.resize(CHUNK, 0);
    let end = drain_with(cx, reader, consumed, out, loc, &mut buf);
    SCRATCH.set(buf);
    end
}

thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

fn drain_with<R: Read>(
    cx: &mut Cx<'_>,
    reader: &mut R,
    consumed: impl Fn(&R) -> u64,
    out: &mut Vec<u8>,
    loc: &Location,
    buf: &mut [u8],
) -> End {
    let start = out.len() as u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => return End::Complete,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return End::Failed(e),
        };
        if !cx.charge_inflated(n as u64, loc) {
            return End::Budget;
        }
        out.extend_from_slice(buf.get(..n).unwrap_or_default());
        let produced = (out.len() as u64).saturating_sub(start);
        let max = cx.limits.max_compression_ratio;
        let compressed = consumed(reader);
        if produced > RATIO_FLOOR && produced / compressed.max(1) > max {
            cx.report(
                &BOMB,
                loc.clone(),
                format!(
                    "{compressed} compressed bytes expanded past {produced} bytes (ratio over {max}:1); inflation stopped"
                ),
            );
            return End::Ratio;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use flate2::write::DeflateEncoder;
    use flate2::Compression;
    use formats::Limits;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn budget_stops_inflation_and_is_reported() {
        let limits = Limits {
            max_inflated_bytes: 100_000,
            ..Limits::default()
        };
        let policy = Policy::default();
        let mut cx = Cx::new(&limits, &policy, None);
        let z = deflate(&vec![0u8; 1 << 20]);
        let mut out = Vec::new();
        let end = drain(
            &mut cx,
            &mut flate2::bufread::DeflateDecoder::new(&z[..]),
            |d| (z.len() - d.get_ref().len()) as u64,
            &mut out,
            &Location::file("x"),
        );
        assert!(matches!(end, End::Budget));
        assert!(out.len() <= 100_000);
        assert_eq!(cx.findings()[0].rule.id, "GEN003");
    }

    #[test]
    fn ratio_stops_a_bomb() {
        let limits = Limits::default();
        let policy = Policy::default();
        let mut cx = Cx::new(&limits, &policy, None);
        let z = deflate(&vec![0u8; 80 << 20]);
        let mut out = Vec::new();
        let end = drain(
            &mut cx,
            &mut flate2::bufread::DeflateDecoder::new(&z[..]),
            |d| (z.len() - d.get_ref().len()) as u64,
            &mut out,
            &Location::file("x"),
        );
        assert!(matches!(end, End::Ratio), "{end:?}");
        assert_eq!(cx.findings()[0].rule.id, "CMP001");
        assert!((out.len() as u64) < (RATIO_FLOOR + 2 * CHUNK as u64));
    }

    #[test]
    fn truncated_stream_fails() {
        let limits = Limits::default();
        let policy = Policy::default();
        let mut cx = Cx::new(&limits, &policy, None);
        let z = deflate(b"hello hello hello world");
        let cut = &z[..z.len() - 3];
        let mut out = Vec::new();
        let end = drain(
            &mut cx,
            &mut flate2::bufread::DeflateDecoder::new(cut),
            |d| (cut.len() - d.get_ref().len()) as u64,
            &mut out,
            &Location::file("x"),
        );
        assert!(matches!(end, End::Failed(_)), "{end:?}");
    }
}
