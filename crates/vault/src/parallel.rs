//! Unsealing a file on several cores. Segments are independent (each has its own nonce and
//! tag), so worker threads each read a whole segment with `pread` and authenticate and
//! decrypt it, while this thread writes the plaintext out strictly in order. A fixed pool of
//! buffers bounds the memory: a worker takes a buffer before it takes the next segment, and
//! a buffer comes back only once its segment is written, so at most `BUFFERS` segments are
//! in flight and the segment next in order is always among them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use crate::error::{Error, Result};

/// Buffers per worker thread.
const BUFFERS_PER_THREAD: usize = 4;

/// What the parallel reader needs of an opened sealed file.
pub(crate) trait Segments: Sync {
    fn count(&self) -> u64;
    /// Offset and length (ciphertext and tag) of segment `index` in the sealed file.
    fn span(&self, index: u64) -> (u64, usize);
    /// Authenticates and decrypts a segment in place.
    fn open(&self, index: u64, buf: &mut Vec<u8>) -> Result<()>;
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

/// Decrypts every segment of `file` into `out`, in order, on `threads` threads. Each
/// segment is written only after it authenticated; on error, discard `out`.
pub(crate) fn decrypt_file(
    segments: &dyn Segments,
    file: &File,
    out: &mut dyn Write,
    threads: usize,
) -> Result<()> {
    let count = segments.count();
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
    let (done_tx, done_rx) = mpsc::channel::<(u64, Result<Vec<u8>>)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let (pool, next) = (&pool, &next);
            s.spawn(move || {
                while let Some(mut buf) = pool.take() {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        pool.give(buf);
                        break;
                    }
                    let (offset, len) = segments.span(index);
                    buf.resize(len, 0);
                    let result = file
                        .read_exact_at(&mut buf, offset)
                        .map_err(|_| Error::Tampered { segment: index })
                        .and_then(|()| segments.open(index, &mut buf))
                        .map(|()| buf);
                    if done_tx.send((index, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // Results wait here until all before them are written: the first failure in file
        // order is the one reported.
        let mut pending: BTreeMap<u64, Result<Vec<u8>>> = BTreeMap::new();
        let mut want = 0u64;
        let mut outcome = Ok(());
        'receive: for (index, result) in done_rx.iter() {
            pending.insert(index, result);
            while let Some(result) = pending.remove(&want) {
                let written = result.and_then(|buf| {
                    out.write_all(&buf).map_err(Error::Stream)?;
                    pool.give(buf);
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
        if outcome.is_ok() && want != count {
            outcome = Err(Error::Format("a segment was not decrypted".into()));
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// "Segments" of a plain file, each checked by a predicate instead of a tag.
    struct Plain {
        len: u64,
        seg: u64,
        bad: Option<u64>,
    }

    impl Segments for Plain {
        fn count(&self) -> u64 {
            self.len.div_ceil(self.seg)
        }
        fn span(&self, index: u64) -> (u64, usize) {
            let start = index * self.seg;
            (start, (self.len - start).min(self.seg) as usize)
        }
        fn open(&self, index: u64, _: &mut Vec<u8>) -> Result<()> {
            if Some(index) == self.bad {
                return Err(Error::Tampered { segment: index });
            }
            Ok(())
        }
    }

    #[test]
    fn segments_come_out_in_order_and_errors_stop_the_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..100_003u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        for threads in [1, 2, 5] {
            let mut out = Vec::new();
            let plain = Plain {
                len: data.len() as u64,
                seg: 1000,
                bad: None,
            };
            decrypt_file(&plain, &file, &mut out, threads).unwrap();
            assert_eq!(out, data, "{threads} threads");
            let bad = Plain {
                bad: Some(57),
                ..plain
            };
            let err = decrypt_file(&bad, &file, &mut Vec::new(), threads).unwrap_err();
            assert!(matches!(err, Error::Tampered { segment: 57 }), "{err}");
        }
        // A file shorter than its segments claim: the missing segment is named.
        let short = Plain {
            len: data.len() as u64 + 5000,
            seg: 1000,
            bad: None,
        };
        let err = decrypt_file(&short, &file, &mut Vec::new(), 2).unwrap_err();
        assert!(matches!(err, Error::Tampered { segment: 100 }), "{err}");
    }
}
