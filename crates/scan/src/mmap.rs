//! The one `unsafe` call of the scanner: mapping a file read-only.

use std::fs::File;

/// Maps `file` read-only.
///
/// Safety argument: the map is private and read-only, and Warden never writes through it.
/// If another process truncates the file while it is mapped, touching the lost pages raises
/// SIGBUS; scan files in a quarantine directory that nothing else writes to (see
/// docs/scanning.md).
#[allow(unsafe_code)]
pub fn map(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: see above; the mapping is read-only and outlives no borrow of its bytes.
    unsafe { memmap2::MmapOptions::new().map(file) }
}
