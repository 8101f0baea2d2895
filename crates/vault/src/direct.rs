//! Writing a sealed file around the page cache (`O_DIRECT`). A sealed copy is written once
//! and read rarely, so caching it only costs: copying 2 GiB into the page cache and the
//! kernel's writeback of it took about a CPU-second, on the same two cores that hash and
//! encrypt. Bytes gather in block-aligned buffers; a writer thread hands each full buffer
//! to the disk while the next one fills, so encrypting and writing overlap. The last,
//! partial block goes through the page cache (`O_DIRECT` writes whole blocks only), and a
//! filesystem that refuses `O_DIRECT` gets ordinary writes. Durability still comes from
//! the caller's `fsync`; this only changes how the bytes travel.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Alignment of addresses, offsets and lengths for `O_DIRECT` (a page: at least the
/// logical block size of any disk in use).
const BLOCK: usize = 4096;
/// Bytes per buffer handed to the disk (a whole number of blocks).
const BUFFER: usize = 4 << 20;
/// Buffers in all: one filling, the others queued or being written.
const BUFFERS: usize = 3;

/// A buffer whose usable part starts at a block boundary.
struct Aligned {
    raw: Vec<u8>,
    start: usize,
}

impl Aligned {
    fn new() -> Aligned {
        let raw = vec![0u8; BUFFER + BLOCK];
        // Safe arithmetic on the address; an unaligned result would only make the disk
        // refuse O_DIRECT, and the writer then falls back to ordinary writes.
        let start = (BLOCK - raw.as_ptr() as usize % BLOCK) % BLOCK;
        Aligned { raw, start }
    }

    fn bytes(&self) -> &[u8] {
        &self.raw[self.start..self.start + BUFFER]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + BUFFER]
    }
}

/// A buffer to write: `len` bytes at file offset `offset` (a multiple of [`BUFFER`]).
struct Job {
    buf: Aligned,
    len: usize,
    offset: u64,
}

/// Creates a new file and writes it sequentially around the page cache. Call
/// [`DirectWriter::finish`] to write the last bytes and get the file back to sync it;
/// `flush` does nothing, since data leaves only in whole buffers.
pub(crate) struct DirectWriter {
    current: Aligned,
    filled: usize,
    /// File offset where `current` starts.
    offset: u64,
    allocated: usize,
    jobs: Option<SyncSender<Job>>,
    free: Receiver<Aligned>,
    thread: Option<JoinHandle<io::Result<File>>>,
}

impl DirectWriter {
    /// Creates (or truncates) `path`, opened for `O_DIRECT` where the filesystem allows it.
    pub(crate) fn create(path: &Path) -> io::Result<DirectWriter> {
        let open = |flags| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(flags)
                .open(path)
        };
        let (file, direct) = match open(libc::O_DIRECT) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (open(0)?, false),
            Err(e) => return Err(e),
        };
        let (jobs, queued) = mpsc::sync_channel::<Job>(BUFFERS - 1);
        let (give_back, free) = mpsc::channel::<Aligned>();
        let thread = std::thread::Builder::new()
            .name("vault-write".into())
            .spawn(move || write_jobs(file, direct, queued, give_back))?;
        Ok(DirectWriter {
            current: Aligned::new(),
            filled: 0,
            offset: 0,
            allocated: 1,
            jobs: Some(jobs),
            free,
            thread: Some(thread),
        })
    }

    /// The writer thread's outcome, once it has stopped.
    fn join(&mut self) -> io::Result<File> {
        self.jobs = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => Err(io::Error::other("the vault's writer thread failed")),
            None => Err(io::Error::other("the vault's writer already finished")),
        }
    }

    /// Hands the current buffer to the writer thread.
    fn hand_over(&mut self, next: Aligned) -> io::Result<()> {
        let job = Job {
            buf: std::mem::replace(&mut self.current, next),
            len: self.filled,
            offset: self.offset,
        };
        self.offset += self.filled as u64;
        self.filled = 0;
        let sent = match &self.jobs {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped: its error says why.
        self.join()?;
        Err(io::Error::other("the vault's writer stopped early"))
    }

    /// A buffer to fill next: a new one while fewer than [`BUFFERS`] exist, else one the
    /// writer thread has finished with.
    fn next_buffer(&mut self) -> io::Result<Aligned> {
        if let Ok(b) = self.free.try_recv() {
            return Ok(b);
        }
        if self.allocated < BUFFERS {
            self.allocated += 1;
            return Ok(Aligned::new());
        }
        match self.free.recv() {
            Ok(b) => Ok(b),
            Err(_) => {
                self.join()?;
                Err(io::Error::other("the vault's writer stopped early"))
            }
        }
    }

    /// Writes what remains and returns the file (not yet synced).
    pub(crate) fn finish(mut self) -> io::Result<File> {
        if self.filled > 0 {
            // The last buffer: nothing is filled after it, so no replacement is needed
            // beyond an empty placeholder.
            let placeholder = Aligned {
                raw: Vec::new(),
                start: 0,
            };
            self.hand_over(placeholder)?;
        }
        self.join()
    }
}

impl Write for DirectWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.filled == BUFFER {
            let next = self.next_buffer()?;
            self.hand_over(next)?;
        }
        let n = (BUFFER - self.filled).min(data.len());
        self.current.bytes_mut()[self.filled..self.filled + n].copy_from_slice(&data[..n]);
        self.filled += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for DirectWriter {
    /// Abandoned (an error elsewhere): stop the thread before the caller removes the file.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

/// Turns `O_DIRECT` off for the rest of the file.
fn stop_direct(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` keeps open, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The writer thread: writes each job at its offset, whole blocks directly and a partial
/// tail (only ever in the last job) through the page cache.
fn write_jobs(
    file: File,
    mut direct: bool,
    jobs: Receiver<Job>,
    give_back: mpsc::Sender<Aligned>,
) -> io::Result<File> {
    for job in jobs {
        let data = &job.buf.bytes()[..job.len];
        let whole = if direct { job.len / BLOCK * BLOCK } else { 0 };
        if whole > 0 {
            match file.write_all_at(&data[..whole], job.offset) {
                Ok(()) => {}
                // This filesystem or buffer will not take O_DIRECT: write as usual.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    stop_direct(&file)?;
                    direct = false;
                    file.write_all_at(&data[..whole], job.offset)?;
                }
                Err(e) => return Err(e),
            }
        }
        if whole < job.len {
            if direct {
                stop_direct(&file)?;
                direct = false;
            }
            file.write_all_at(&data[whole..], job.offset + whole as u64)?;
        }
        let _ = give_back.send(job.buf);
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn writes_every_byte_in_order_whatever_the_sizes() {
        let dir = tempfile::tempdir().unwrap();
        // Empty, under a block, a block and a bit, several buffers and a partial tail.
        for len in [0, 100, BLOCK + 7, 3 * BUFFER + 12_345, 2 * BUFFER] {
            let path = dir.path().join(format!("f{len}"));
            let data = pattern(len);
            let mut w = DirectWriter::create(&path).unwrap();
            // Odd write sizes, as the sealer's segments and tags arrive.
            for chunk in data.chunks(65_552) {
                w.write_all(chunk).unwrap();
            }
            w.finish().unwrap().sync_all().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data, "{len} bytes");
        }
    }

    #[test]
    fn a_buffer_that_will_not_align_falls_back_to_ordinary_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = pattern(BUFFER + 5000);
        let mut w = DirectWriter::create(&path).unwrap();
        // Misalign the first buffer on purpose: the disk refuses it, the writer carries on.
        w.current.start = (w.current.start + 1) % BLOCK;
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn a_write_error_is_reported_not_lost() {
        // /dev/full takes the open and refuses every write with ENOSPC.
        let mut w = match DirectWriter::create(Path::new("/dev/full")) {
            Ok(w) => w,
            Err(_) => return, // not on this system
        };
        let data = pattern(BUFFER * 4);
        let err = w
            .write_all(&data)
            .and_then(|()| w.finish().map(|_| ()))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    }
}
