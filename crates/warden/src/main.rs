//! `warden`: carry an externally developed ML model through its whole life.
//! This binary only parses arguments, wires the libraries together and prints.

mod cli;
mod cmd;
mod exit;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if exit::is_broken_pipe(&err) {
                exit::Code::Ok
            } else {
                eprintln!("error: {err:#}");
                exit::Code::Error
            }
        }
    };
    code.into()
}
