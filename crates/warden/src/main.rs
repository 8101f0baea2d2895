//! `warden`: carry an externally developed ML model through its whole life.
//! This binary only parses arguments, wires the libraries together and prints.

mod cli;
mod cmd;
mod config;
mod exit;
mod files;
mod node;
mod progress;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the gateway makes many small allocations per request, and glibc's malloc spent
/// a sixth of its CPU on them (docs/PERFORMANCE.md, "Gateway"). The sandboxed worker runs
/// this binary too; its seccomp list allows the calls mimalloc makes (runtime's sandbox.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its arenas as it uses them, not whole at once: committing them eagerly
/// held the gateway at 147-152 MiB of RSS with 1,000 connections, against 96-98 MiB this
/// way, with no difference in speed beyond the noise (docs/PERFORMANCE.md, "Gateway").
/// Set before anything else runs, so that every arena after the first follows it.
fn configure_allocator() {
    // `mi_option_arena_eager_commit` in mimalloc.h (4 in both its v2 and v3), which
    // libmimalloc-sys does not name.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: mi_option_set only stores an option's value; it may be called at any time.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

fn main() -> ExitCode {
    configure_allocator();
    // `warden` runs itself as the sandboxed runtime's worker (docs/runtime.md): before
    // anything else, so that no thread exists when the worker locks itself down.
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new(node::served::WORKER_ARG))
    {
        return runtime::worker_main(std::env::args_os().skip(2));
    }
    // Usage errors exit 1 like every other error (clap's default of 2 means "denied" here).
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                exit::Code::Error
            } else {
                exit::Code::Ok
            };
            let _ = err.print();
            return code.into();
        }
    };
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if exit::is_broken_pipe(&err) {
                exit::Code::Ok
            } else if err.downcast_ref::<node::Denied>().is_some() {
                eprintln!("denied: {err:#}");
                exit::Code::Denied
            } else {
                eprintln!("error: {err:#}");
                exit::Code::Error
            }
        }
    };
    code.into()
}
