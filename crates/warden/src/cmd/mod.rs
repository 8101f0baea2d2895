//! One module per subcommand.

mod scan;

use crate::cli::{Cli, Command};
use crate::exit::Code;

pub fn run(cli: Cli) -> anyhow::Result<Code> {
    match cli.command {
        Command::Scan(args) => scan::run(args),
    }
}
