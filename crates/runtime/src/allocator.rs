//! Settings of mimalloc, the allocator of `warden` and of the worker (which is `warden` run
//! again, or `warden-runtime-worker` in this crate's tests).

/// `mi_option_arena_eager_commit` in mimalloc.h (v2, the version libmimalloc-sys builds by
/// default), which libmimalloc-sys does not name.
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
