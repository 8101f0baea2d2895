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
/// this binary too; its seccomp list allows the calls mimalloc makes (runtime's sandbox.rs),
/// and `runtime::allocator` holds mimalloc's settings.
#[global_allocator]
static ALLOCATOR: runtime::allocator::Mimalloc = runtime::allocator::Mimalloc;

fn main() -> ExitCode {
    runtime::allocator::configure();
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
