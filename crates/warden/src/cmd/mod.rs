//! One module per subcommand.

mod ledger;
mod scan;

// signing
mod digest;
mod keygen;
mod sign;
mod signing;
mod verify;

use crate::cli::{Cli, Command};
use crate::exit::Code;

pub fn run(cli: Cli) -> anyhow::Result<Code> {
    match cli.command {
        Command::Scan(args) => scan::run(args),
        // signing
        Command::Keygen(args) => keygen::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Digest(args) => digest::run(args),
        // ledger
        Command::Ledger(args) => ledger::run(&cli.data_dir, args),
        Command::Backup(args) => ledger::run_backup(&cli.data_dir, args),
        Command::Restore(args) => ledger::run_restore(&cli.data_dir, args),
    }
}
