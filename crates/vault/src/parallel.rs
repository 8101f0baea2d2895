//! Unsealing a file on several cores. Segments are independent (each has its own nonce and
//! tag), so worker threads each read a group of consecutive segments with one `pread` and
//! authenticate and decrypt them in place, while this thread writes the plaintext out
//! strictly in order. A fixed pool of buffers bounds the memory: a worker takes a buffer
//! before it takes the next group, and a buffer comes back only once its group is written,
//! so at most `BUFFERS_PER_THREAD × threads` groups are in flight and the group next in
//! order is always among them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use crate::error::{Error, Result};

/// Buffers per worker thread.
const BUFFERS_PER_THREAD: usize = 3;
/// Bytes read per `pread` (rounded to whole segments, at least one).
const GROUP_BYTES: u64 = 1 << 20;

/// What the parallel reader needs of an opened sealed file: segments of `stride` bytes
/// (ciphertext and tag) from `start`, the last one possibly shorter.
pub(crate) trait Segments: Sync {
    fn count(&self) -> u64;
    fn stride(&self) -> u64;
    fn start(&self) -> u64;
    /// Length of segment `index` (ciphertext and tag).
    fn segment_len(&self, index: u64) -> usize;
    /// Authenticates and decrypts a segment in place; returns its plaintext length.
    fn open(&self, index: u64, buf: &mut [u8]) -> Result<usize>;
}

/// A group read and decrypted: its buffer and where each segment's plaintext lies in it.
struct Group {
    buf: Vec<u8>,
    plain: Vec<(usize, usize)>,
}

struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
    ready: Condvar,
    stop: AtomicBool,
}

impl Pool {
    /// A free buffer, or `None` once the work is stopping.
    fn take(&self) -> Option<Vec<u8>> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            if let Some(b) = free.pop() {
                return Some(b);
            }
            free = self.ready.wait(free).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give(&self, buf: Vec<u8>) {
        self.free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(buf);
        self.ready.notify_one();
    }

    fn halt(&self) {
        self.stop.store(true, Ordering::Release);
        let _guard = self.free.lock().unwrap_or_else(|p| p.into_inner());
        self.ready.notify_all();
    }
}

/// Reads and decrypts group `g` (segments `g * per ..`) into `buf`.
fn group(
    segments: &dyn Segments,
    file: &File,
    g: u64,
    per: u64,
    mut buf: Vec<u8>,
) -> Result<Group> {
    let first = g * per;
    let last = (first + per).min(segments.count());
    let offset = segments.start() + first * segments.stride();
    let len: usize = (first..last).map(|i| segments.segment_len(i)).sum();
    buf.resize(len, 0);
    if let Err(e) = file.read_exact_at(&mut buf, offset) {
        // Name the first segment the file does not hold whole.
        let have = file.metadata().map(|m| m.len()).unwrap_or(0);
        let cut = (first..last).find(|&i| {
            segments.start() + i * segments.stride() + segments.segment_len(i) as u64 > have
        });
        return match cut {
            Some(segment) => Err(Error::Tampered { segment }),
            None => Err(Error::Stream(e)),
        };
    }
    let mut plain = Vec::with_capacity((last - first) as usize);
    let mut at = 0;
    for i in first..last {
        let n = segments.segment_len(i);
        let p = segments.open(i, &mut buf[at..at + n])?;
        plain.push((at, p));
        at += n;
    }
    Ok(Group { buf, plain })
}

/// Decrypts every segment of `file` into `out`, in order, on `threads` threads. Each
/// segment is written only after it authenticated; on error, discard `out`.
pub(crate) fn decrypt_file(
    segments: &dyn Segments,
    file: &File,
    out: &mut dyn Write,
    threads: usize,
) -> Result<()> {
    let per = (GROUP_BYTES / segments.stride().max(1)).max(1);
    let groups = segments.count().div_ceil(per);
    let threads = threads.clamp(1, 16);
    let pool = Pool {
        free: Mutex::new(
            (0..threads * BUFFERS_PER_THREAD)
                .map(|_| Vec::new())
                .collect(),
        ),
        ready: Condvar::new(),
        stop: AtomicBool::new(false),
    };
    let next = AtomicU64::new(0);
    let (done_tx, done_rx) = mpsc::channel::<(u64, Result<Group>)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let (pool, next) = (&pool, &next);
            s.spawn(move || {
                while let Some(buf) = pool.take() {
                    let g = next.fetch_add(1, Ordering::Relaxed);
                    if g >= groups {
                        pool.give(buf);
                        break;
                    }
                    if done_tx
                        .send((g, group(segments, file, g, per, buf)))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Results wait here until all before them are written: the first failure in file
        // order is the one reported.
        let mut pending: BTreeMap<u64, Result<Group>> = BTreeMap::new();
        let mut want = 0u64;
        let mut outcome = Ok(());
        'receive: for (g, result) in done_rx.iter() {
            pending.insert(g, result);
            while let Some(result) = pending.remove(&want) {
                let written = result.and_then(|group| {
                    for &(at, n) in &group.plain {
                        out.write_all(&group.buf[at..at + n])
                            .map_err(Error::Stream)?;
                    }
                    pool.give(group.buf);
                    Ok(())
                });
                if let Err(e) = written {
                    outcome = Err(e);
                    break 'receive;
                }
                want += 1;
            }
        }
        pool.halt();
        drop(done_rx);
        if outcome.is_ok() && want != groups {
            outcome = Err(Error::Format("a segment was not decrypted".into()));
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// "Segments" of a plain file with no tags, each checked by a predicate instead.
    struct Plain {
        len: u64,
        seg: u64,
        bad: Option<u64>,
    }

    impl Segments for Plain {
        fn count(&self) -> u64 {
            self.len.div_ceil(self.seg)
        }
        fn stride(&self) -> u64 {
            self.seg
        }
        fn start(&self) -> u64 {
            0
        }
        fn segment_len(&self, index: u64) -> usize {
            (self.len - index * self.seg).min(self.seg) as usize
        }
        fn open(&self, index: u64, buf: &mut [u8]) -> Result<usize> {
            if Some(index) == self.bad {
                return Err(Error::Tampered { segment: index });
            }
            Ok(buf.len())
        }
    }

    #[test]
    fn segments_come_out_in_order_and_errors_stop_the_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_003u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        for (threads, seg) in [(1, 1000), (2, 70_000), (5, 1 << 21)] {
            let mut out = Vec::new();
            let plain = Plain {
                len: data.len() as u64,
                seg,
                bad: None,
            };
            decrypt_file(&plain, &file, &mut out, threads).unwrap();
            assert_eq!(out, data, "{threads} threads, segments of {seg}");
            let bad = Plain {
                bad: Some(1),
                ..plain
            };
            let err = decrypt_file(&bad, &file, &mut Vec::new(), threads).unwrap_err();
            assert!(matches!(err, Error::Tampered { segment: 1 }), "{err}");
        }
        // A file shorter than its segments claim: the first missing segment is named.
        let short = Plain {
            len: data.len() as u64 + 5000,
            seg: 1000,
            bad: None,
        };
        let err = decrypt_file(&short, &file, &mut Vec::new(), 2).unwrap_err();
        assert!(matches!(err, Error::Tampered { segment: 3000 }), "{err}");
    }
}
