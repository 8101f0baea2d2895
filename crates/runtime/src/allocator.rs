//! mimalloc, the allocator of `warden` and of the worker (which is `warden` run again, or
//! `warden-runtime-worker` in this crate's tests), and its settings.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment of every block `mi_malloc` returns: blocks are whole machine words.
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator (`#[global_allocator]`). The `mimalloc` crate asks for
/// every block through `mi_malloc_aligned`, whose checks, and whose over-allocation for
/// blocks above 1 KiB that are not a power of two, took a seventh of the gateway's
/// allocation time; nearly every Rust allocation needs no more than word alignment,
/// which plain `mi_malloc` gives. Larger alignments still go through the aligned calls.
pub struct Mimalloc;

// SAFETY: each call forwards to the mimalloc function with the same contract (a block of
// at least `size` bytes aligned to `align`, or null), choosing the unaligned one only when
// its blocks' word alignment is enough; every block, however allocated, is freed and
// resized by mimalloc, which knows each block's size.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= WORD {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= WORD {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (GlobalAlloc's contract).
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (GlobalAlloc's contract).
        unsafe {
            if layout.align() <= WORD {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

/// `mi_option_arena_eager_commit` in mimalloc.h (the same index in the v2 and v3 that
/// libmimalloc-sys builds), which libmimalloc-sys does not name.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Called first thing in `main`: mimalloc commits the arenas it reserves from then on as
/// it uses them, not whole. Eager commit held the gateway at 147–152 MiB of RSS with 1,000
/// connections, against 96–98 MiB this way (docs/PERFORMANCE.md, "Gateway").
pub fn configure() {
    // SAFETY: mi_option_set only stores an option's value; it may be called at any time.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

/// The environment the worker starts with (nothing else of the parent's passes). The
/// worker's memory limit is `RLIMIT_AS`, which counts reserved address space, and
/// mimalloc reserves 1 GiB arenas by default, the first before `main` runs: one reserved
/// before the worker locks itself down would let it use up to 1 GiB whatever its limit.
/// Arenas of 32 MiB keep the limit within 32 MiB of what it says
/// (`tests/failures.rs`). The environment is read when mimalloc starts, before `main`.
pub const WORKER_ENV: &[(&str, &str)] = &[
    ("MIMALLOC_ARENA_RESERVE", "32MiB"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every block is aligned as asked, holds what was written across a resize, and a
    /// zeroed one is zero, for alignments on both paths and sizes across mimalloc's bins.
    #[test]
    fn blocks_are_aligned_sized_and_kept_across_resizes() {
        let a = Mimalloc;
        for align in [1, 2, 4, 8, 16, 64, 128, 4096] {
            for size in [1, 7, 8, 9, 24, 100, 1000, 1025, 3000, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; every block is freed with its layout below.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    for i in 0..size {
                        *p.add(i) = (i % 251) as u8;
                    }
                    let q = a.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "resized: size {size} align {align}");
                    for i in 0..size {
                        assert_eq!(*q.add(i), (i % 251) as u8);
                    }
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }

    /// mimalloc's memory is never advised into transparent huge pages (`hg` in the
    /// mapping's VmFlags): one touched byte would make 2 MiB resident.
    #[test]
    fn no_block_lies_in_memory_advised_for_huge_pages() {
        let a = Mimalloc;
        for size in [64, 5000, 300_000, 4 << 20] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: a non-zero size; freed with its layout below.
            let p = unsafe { a.alloc(layout) };
            assert!(!p.is_null());
            let flags = vm_flags_of(p as usize);
            // SAFETY: allocated above with this layout.
            unsafe { a.dealloc(p, layout) };
            assert!(
                !flags.split_whitespace().any(|f| f == "hg"),
                "a block of {size} bytes lies in a mapping advised for huge pages: {flags}"
            );
        }
    }

    /// The VmFlags line of the mapping in /proc/self/smaps that holds `addr`.
    fn vm_flags_of(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some(flags) = line.strip_prefix("VmFlags:") {
                if inside {
                    return flags.trim().to_string();
                }
            } else if let Some((lo, hi)) = mapping_range(line) {
                inside = (lo..hi).contains(&addr);
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    /// The address range of an smaps header line (`lo-hi perms ...`), or None for the
    /// lines of fields under it.
    fn mapping_range(line: &str) -> Option<(usize, usize)> {
        let (lo, hi) = line.split_once(' ')?.0.split_once('-')?;
        Some((
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        ))
    }
}
