//! The sandboxed inference worker, as a program of its own. `warden` will run the same code
//! as a hidden subcommand of itself; until then the parent (`runtime::Worker`) starts this.

fn main() -> std::process::ExitCode {
    runtime::worker_main(std::env::args_os().skip(1))
}
