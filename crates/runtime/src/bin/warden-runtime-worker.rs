//! The sandboxed inference worker, as a program of its own, for this crate's tests and
//! benchmarks; `warden` runs the same code as a hidden subcommand of itself. It has
//! `warden`'s allocator, so that the sandbox tests hold the worker as `warden` runs it.

#[global_allocator]
static ALLOCATOR: runtime::allocator::Mimalloc = runtime::allocator::Mimalloc;

fn main() -> std::process::ExitCode {
    runtime::allocator::configure();
    runtime::worker_main(std::env::args_os().skip(1))
}
