//! Writing a large sealed file at the disk's pace. Left alone, the kernel gathers gigabytes
//! of dirty pages and the final `fsync` then waits for all of them while nothing else
//! runs. This writer asks for writeback of each window as soon as it is written
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), and waits for the window
//! before the previous one to reach the disk, so the disk works while the file is still
//! being encrypted and hashed, at most two windows are dirty, and the final `fsync` finds
//! little left to do. Durability still comes from that `fsync`: this only changes when the
//! writing happens.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;

/// Bytes per writeback window.
const WINDOW: u64 = 8 << 20;

pub(crate) struct Writeback {
    file: File,
    written: u64,
    /// Where the window not yet handed to writeback starts.
    started: u64,
}

impl Writeback {
    pub(crate) fn new(file: File) -> Writeback {
        Writeback {
            file,
            written: 0,
            started: 0,
        }
    }

    pub(crate) fn into_inner(self) -> File {
        self.file
    }

    fn range(&self, offset: u64, len: u64, flags: libc::c_uint) {
        let (Ok(offset), Ok(len)) = (
            libc::off64_t::try_from(offset),
            libc::off64_t::try_from(len),
        ) else {
            return;
        };
        // SAFETY: sync_file_range only reads its integer arguments; the descriptor is open
        // for as long as `self.file` lives. Its result is advice: a failure (an old kernel,
        // a filesystem without it) leaves the final fsync to do all the work, as before.
        unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), offset, len, flags);
        }
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WINDOW {
            let len = self.written - self.started;
            self.range(self.started, len, libc::SYNC_FILE_RANGE_WRITE);
            // The window before this one: wait until it is on the disk.
            if self.started >= WINDOW {
                self.range(
                    self.started - WINDOW,
                    WINDOW,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                );
            }
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
