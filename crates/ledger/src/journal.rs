//! The journal: the ledger's write-ahead log, and its commit point.
//!
//! An append is acknowledged once its commit frame (entries plus the signed checkpoint that
//! covers them) is in the journal and `fdatasync` has returned. The tiles are published
//! from it afterwards, so one small sequential write and one sync carry a whole group
//! commit. The journal starts with a base frame (the tree's right edge at the last
//! rotation) and is rewritten, small again, once the tiles before it are durable.
//!
//! Frame: `len: u32 LE | crc32: u32 LE | payload (len bytes)`; payload starts with its kind.
//! A frame cut off at the end of the file is a write that was never acknowledged (a crash
//! mid-append) and is dropped; a damaged frame with more data after it is corruption.

use crate::hash::Hash;

/// The largest frame the journal reads (a batch is far smaller; see `Options`).
pub const MAX_FRAME: usize = 64 << 20;
const HEADER: usize = 8;
const KIND_BASE: u8 = 1;
const KIND_COMMIT: u8 = 2;

/// The tree's right edge at the start of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    pub size: u64,
    /// The partial hash tile of each level.
    pub levels: Vec<Vec<Hash>>,
    /// The entries of the partial entry bundle (`size % 256` of them).
    pub entries: Vec<Vec<u8>>,
    pub checkpoint: Vec<u8>,
}

/// One group commit: entries `first..first+entries.len()` and the checkpoint after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub first: u64,
    pub entries: Vec<Vec<u8>>,
    pub checkpoint: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Base(Base),
    Commit(Commit),
}

/// How a journal ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Tail {
    /// Every byte belongs to a whole frame.
    Clean,
    /// The last frame was cut off or never completely written at this offset: drop it.
    Torn(u64),
}

/// The frames of a journal and how it ended.
#[derive(Debug)]
pub struct Parsed {
    pub frames: Vec<(u64, Frame)>,
    pub tail: Tail,
}

/// Encodes a frame.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut payload = Vec::new();
    match frame {
        Frame::Base(base) => {
            payload.push(KIND_BASE);
            payload.extend_from_slice(&base.size.to_le_bytes());
            put_len(&mut payload, base.levels.len());
            for level in &base.levels {
                put_len(&mut payload, level.len());
                for hash in level {
                    payload.extend_from_slice(hash);
                }
            }
            put_entries(&mut payload, &base.entries);
            put_bytes(&mut payload, &base.checkpoint);
        }
        Frame::Commit(commit) => return encode_commit(commit),
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Encodes a commit frame, the payload in place after room for its header.
pub fn encode_commit(commit: &Commit) -> Vec<u8> {
    let payload_len = 1
        + 8
        + 4
        + commit.entries.iter().map(|e| 4 + e.len()).sum::<usize>()
        + 4
        + commit.checkpoint.len();
    let mut out = Vec::with_capacity(HEADER + payload_len);
    out.extend_from_slice(&[0; HEADER]);
    out.push(KIND_COMMIT);
    out.extend_from_slice(&commit.first.to_le_bytes());
    put_entries(&mut out, &commit.entries);
    put_bytes(&mut out, &commit.checkpoint);
    let payload = &out[HEADER..];
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(payload).to_le_bytes();
    out[..4].copy_from_slice(&len);
    out[4..HEADER].copy_from_slice(&crc);
    out
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_entries(out: &mut Vec<u8>, entries: &[Vec<u8>]) {
    put_len(out, entries.len());
    for entry in entries {
        put_bytes(out, entry);
    }
}

/// Reads every frame. `Err` names the offset of a damaged frame that is not the last one.
pub fn parse(data: &[u8]) -> Result<Parsed, String> {
    let mut frames = Vec::new();
    let mut offset = 0usize;
    while offset < data.len() {
        let rest = &data[offset..];
        let torn = Ok(Parsed {
            frames: Vec::new(),
            tail: Tail::Torn(offset as u64),
        });
        let Some((header, body)) = rest.split_first_chunk::<HEADER>() else {
            return torn.map(|p| Parsed { frames, ..p });
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let is_last = body.len() <= len;
        if body.len() < len {
            // A frame that runs past the end of the file is a write cut short.
            return torn.map(|p| Parsed { frames, ..p });
        }
        if len > MAX_FRAME {
            return Err(format!(
                "frame at offset {offset} has an impossible length {len}"
            ));
        }
        let payload = &body[..len];
        if crc32fast::hash(payload) != crc || len == 0 {
            // A write that never completed: the last frame, or one followed by no whole
            // frame (only the zeros the writer reserves ahead, or the rest of the same
            // unfinished write).
            if is_last || !whole_frame_after(data, offset) {
                return torn.map(|p| Parsed { frames, ..p });
            }
            return Err(format!(
                "frame at offset {offset} fails its checksum and is followed by more frames"
            ));
        }
        let frame = decode(payload).map_err(|e| format!("frame at offset {offset}: {e}"))?;
        frames.push((offset as u64, frame));
        offset += HEADER + len;
    }
    Ok(Parsed {
        frames,
        tail: Tail::Clean,
    })
}

/// Whether a whole frame (a plausible length, a commit or base kind and a matching
/// checksum) starts anywhere after `offset`.
fn whole_frame_after(data: &[u8], offset: usize) -> bool {
    let mut at = offset + 1;
    while let Some(rest) = data.get(at..) {
        let Some((header, body)) = rest.split_first_chunk::<HEADER>() else {
            return false;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > 0 && len <= MAX_FRAME && len <= body.len() {
            let payload = &body[..len];
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if matches!(payload[0], KIND_BASE | KIND_COMMIT) && crc32fast::hash(payload) == crc {
                return true;
            }
        }
        at += 1;
    }
    false
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("payload is cut short".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn count(&mut self, at_most: usize) -> Result<usize, String> {
        let n = self.u32()?;
        // Every counted item takes at least one byte: a count beyond that is damage, and
        // checking it keeps allocations bounded by the frame.
        if n > at_most || n > self.0.len() {
            return Err(format!("count {n} is impossible here"));
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()?;
        Ok(self.take(n)?.to_vec())
    }
    fn entries(&mut self) -> Result<Vec<Vec<u8>>, String> {
        let n = self.count(usize::MAX)?;
        (0..n).map(|_| self.bytes()).collect()
    }
}

fn decode(payload: &[u8]) -> Result<Frame, String> {
    let mut c = Cursor(payload);
    let frame = match c.u8()? {
        KIND_BASE => {
            let size = c.u64()?;
            let levels = c.count(8)?;
            let mut rows = Vec::with_capacity(levels);
            for _ in 0..levels {
                let n = c.count(255)?;
                let mut row = Vec::with_capacity(n);
                for _ in 0..n {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(c.take(32)?);
                    row.push(h);
                }
                rows.push(row);
            }
            let entries = c.entries()?;
            let checkpoint = c.bytes()?;
            Frame::Base(Base {
                size,
                levels: rows,
                entries,
                checkpoint,
            })
        }
        KIND_COMMIT => {
            let first = c.u64()?;
            let entries = c.entries()?;
            let checkpoint = c.bytes()?;
            Frame::Commit(Commit {
                first,
                entries,
                checkpoint,
            })
        }
        other => return Err(format!("unknown frame kind {other}")),
    };
    if !c.0.is_empty() {
        return Err(format!("{} stray bytes after the frame", c.0.len()));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let base = Frame::Base(Base {
            size: 1,
            levels: vec![vec![[1; 32]]],
            entries: vec![b"e0".to_vec()],
            checkpoint: b"cp1".to_vec(),
        });
        let commit = Frame::Commit(Commit {
            first: 1,
            entries: vec![b"e1".to_vec(), b"e2".to_vec()],
            checkpoint: b"cp3".to_vec(),
        });
        [encode(&base), encode(&commit)].concat()
    }

    #[test]
    fn frames_round_trip() {
        let parsed = parse(&sample()).unwrap();
        assert_eq!(parsed.tail, Tail::Clean);
        assert_eq!(parsed.frames.len(), 2);
        assert!(
            matches!(&parsed.frames[1].1, Frame::Commit(c) if c.first == 1 && c.entries.len() == 2)
        );
    }

    #[test]
    fn every_cut_is_a_torn_tail_never_an_error() {
        let data = sample();
        let first_len = parse(&data).unwrap().frames[1].0 as usize;
        for cut in 0..data.len() {
            let parsed = parse(&data[..cut]).unwrap();
            let whole = if cut >= first_len { 1 } else { 0 };
            assert_eq!(parsed.frames.len(), whole, "cut at {cut}");
            if cut != 0 && cut != first_len {
                assert!(matches!(parsed.tail, Tail::Torn(_)), "cut at {cut}");
            }
        }
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let mut data = sample();
        let end = data.len() as u64;
        data.extend_from_slice(&[0; 4096]);
        assert_eq!(parse(&data).unwrap().tail, Tail::Torn(end));
    }

    #[test]
    fn a_torn_frame_in_the_reserved_zeros_is_torn() {
        // The writer reserves zeros ahead and writes frames into them: a crash can leave
        // part of a frame (any of its pages) followed by zeros, or zeros followed by a
        // later page of it.
        let data = sample();
        let end = data.len();
        let first_len = parse(&data).unwrap().frames[1].0 as usize;
        let mut reserved = data.clone();
        reserved.extend_from_slice(&[0; 4096]);
        for hole in [
            first_len..first_len + 4,
            first_len + 9..end,
            first_len + 12..end - 1,
        ] {
            let mut torn = reserved.clone();
            torn[hole].fill(0);
            let parsed = parse(&torn).unwrap();
            assert_eq!(parsed.frames.len(), 1);
            assert_eq!(parsed.tail, Tail::Torn(first_len as u64));
        }
        let mut junk_after_zeros = reserved;
        junk_after_zeros.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5]);
        assert_eq!(
            parse(&junk_after_zeros).unwrap().tail,
            Tail::Torn(end as u64)
        );
    }

    #[test]
    fn a_damaged_frame_followed_by_a_whole_frame_is_an_error_even_after_zeros() {
        let data = sample();
        let first_len = parse(&data).unwrap().frames[1].0 as usize;
        let second = data[first_len..].to_vec();
        let mut damaged = data.clone();
        damaged[first_len + HEADER + 2] ^= 1;
        damaged.extend_from_slice(&[0; 100]);
        damaged.extend_from_slice(&second);
        assert!(parse(&damaged)
            .unwrap_err()
            .contains(&format!("offset {first_len}")));
    }

    #[test]
    fn damage_before_the_last_frame_is_an_error() {
        let mut data = sample();
        data[HEADER + 3] ^= 0x40; // inside the base frame's payload
        assert!(parse(&data).unwrap_err().contains("offset 0"));
    }

    #[test]
    fn damage_in_the_last_frame_is_a_torn_write() {
        let mut data = sample();
        let last = data.len() - 1;
        data[last] ^= 1;
        let parsed = parse(&data).unwrap();
        assert_eq!(parsed.frames.len(), 1);
        assert!(matches!(parsed.tail, Tail::Torn(_)));
    }
}
