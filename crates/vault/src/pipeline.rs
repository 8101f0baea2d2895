//! Reading ahead on a second thread: while this thread encrypts or decrypts one segment,
//! a helper reads the next ones (and runs whatever the reader does, such as hashing, on its
//! own core). Unsealing becomes about as fast as whichever is slower, reading or
//! decrypting, instead of their sum.

use std::io::Read;
use std::sync::mpsc;

use crate::error::{Error, Result};

/// Segments in flight between the reader and the worker (4 MiB of 64 KiB segments: enough
/// for the reader to keep hashing while the writer waits for the disk).
const DEPTH: usize = 64;

/// Reads consecutive chunks of the given `sizes` from `input` on a helper thread and hands
/// each, in order, to `work` with its index. A chunk shorter than its size (the input
/// ended) is handed over short: `work` decides what that means. Returns `input`,
/// positioned after the last chunk.
pub(crate) fn read_ahead<R, W>(input: R, sizes: Vec<usize>, mut work: W) -> Result<R>
where
    R: Read + Send,
    W: FnMut(u64, &mut Vec<u8>) -> Result<()>,
{
    let (full_tx, full_rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(DEPTH);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut input = input;
            for size in sizes {
                let mut buf = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(size + 16));
                let read = fill(&mut input, &mut buf, size);
                let short = matches!(read, Ok(n) if n < size);
                if full_tx.send(read.map(|_| buf)).is_err() || short {
                    break; // the worker stopped, or the input ended
                }
            }
            input
        });
        let mut outcome = Ok(());
        for (index, item) in (0u64..).zip(full_rx.iter()) {
            let mut buf = match item {
                Ok(b) => b,
                Err(e) => {
                    outcome = Err(Error::Stream(e));
                    break;
                }
            };
            if let Err(e) = work(index, &mut buf) {
                outcome = Err(e);
                break;
            }
            let _ = empty_tx.send(buf);
        }
        drop(full_rx); // unblocks the reader if the worker stopped early
        let input = reader
            .join()
            .map_err(|_| Error::Format("the read-ahead thread failed".into()))?;
        outcome.map(|()| input)
    })
}

/// Reads up to `size` bytes into `buf` (its length becomes what was read) with as few
/// reads as the input allows: whole chunks straight into the buffer, no intermediate copy.
/// A recycled buffer of the same size is not cleared first.
fn fill(input: &mut impl Read, buf: &mut Vec<u8>, size: usize) -> std::io::Result<usize> {
    buf.resize(size, 0);
    let mut at = 0;
    while at < size {
        match input.read(&mut buf[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(at);
    Ok(at)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chunks_arrive_in_order_and_a_short_input_is_handed_over_short() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut seen = Vec::new();
        let rest = read_ahead(&data[..], vec![30, 30, 30], |i, b| {
            seen.push((i, b.clone()));
            Ok(())
        })
        .unwrap();
        assert_eq!(rest, &data[90..]);
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].1, data[60..90].to_vec());

        let mut lens = Vec::new();
        read_ahead(&data[..], vec![60, 60, 60], |_, b| {
            lens.push(b.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(lens, [60, 40], "stops after the short chunk");

        let err = read_ahead(&data[..], vec![10; 10], |i, _| {
            if i == 3 {
                Err(Error::Format("stop".into()))
            } else {
                Ok(())
            }
        });
        assert!(err.is_err(), "the worker's error ends the pipeline");
    }
}
