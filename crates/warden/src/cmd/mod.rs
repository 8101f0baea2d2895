//! One module per subcommand.

mod admin_routes;
pub mod ledger;
mod posture;
mod quickstart;
mod release;
mod release_show;
mod scan;
mod serve;
mod serve_admin;
mod serve_reload;

// signing
mod digest;
mod keygen;
mod sign;
pub mod signing;
mod verify;

use crate::cli::{Cli, Command};
use crate::exit::Code;

pub fn run(cli: Cli) -> anyhow::Result<Code> {
    let remote = matches!(
        cli.command,
        Command::Approve(_)
            | Command::Reject(_)
            | Command::Revoke(_)
            | Command::Deploy(_)
            | Command::Rollback(_)
            | Command::Shred(_)
            | Command::Releases(_)
            | Command::Show(_)
            | Command::Principal(_)
            | Command::Apikey(_)
            | Command::Lockdown(_)
            | Command::Block(_)
            | Command::Unblock(_)
    );
    if cli.server.is_some() && !remote {
        anyhow::bail!("--server (WARDEN_SERVER) applies to the admin commands only (lockdown, block, unblock, apikey, principal, approve, reject, revoke, deploy, rollback, shred, releases, show); run this one on the server's host");
    }
    match cli.command {
        Command::Init(_)
        | Command::Admit(_)
        | Command::Approve(_)
        | Command::Reject(_)
        | Command::Revoke(_)
        | Command::Deploy(_)
        | Command::Rollback(_)
        | Command::Export(_)
        | Command::Shred(_)
        | Command::Releases(_)
        | Command::Show(_)
        | Command::Principal(_) => release::run(cli),
        Command::Serve(_)
        | Command::Apikey(_)
        | Command::Lockdown(_)
        | Command::Block(_)
        | Command::Unblock(_) => serve::run(cli),
        Command::Quickstart(args) => quickstart::run(
            &release::Ctx {
                data_dir: cli.data_dir,
                config: cli.config,
                token_file: cli.token_file,
                server: None,
                server_ca: None,
            },
            args,
        ),
        Command::Scan(args) => scan::run(args),
        Command::Posture(args) => posture::run(&cli.data_dir, cli.config.as_deref(), args),
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
