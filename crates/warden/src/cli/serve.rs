//! Arguments of `serve`, `apikey` and `lockdown`.

use clap::{Args, Subcommand, ValueEnum};

use super::ledger::JsonArg;

/// Runs the inference gateway: TLS, API keys, validation, routing to the upstreams in
/// `[serve]`, a ledger record of every request. Stops on SIGINT or SIGTERM.
#[derive(Debug, Args)]
#[command(after_help = "Routes, status codes and configuration: docs/serve.md.")]
pub struct ServeArgs {
    /// Listen here instead of `[serve] listen` (e.g. 127.0.0.1:0 for any free port; the
    /// address bound is printed on stdout).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// The admin API listens here instead of `[serve] admin_listen` (`off` for none;
    /// 127.0.0.1:0 for any free port; the address bound is printed on stdout).
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin_listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApikeyArgs {
    #[command(subcommand)]
    pub command: ApikeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create an API key for the inference plane; it is printed once.
    Create(ApikeyCreateArgs),
    /// List API keys (never the keys themselves).
    List(JsonArg),
    /// Revoke an API key: refused from now on (within 250 ms by a running server).
    Revoke(ApikeyIdArgs),
}

#[derive(Debug, Args)]
pub struct ApikeyCreateArgs {
    /// Who uses the key: the name recorded with each of its requests.
    #[arg(long)]
    pub principal: String,
    /// Model names the key may use, with `*` (e.g. 'iris*'). Repeatable or comma-separated.
    #[arg(long, value_name = "PATTERN", required = true, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Expire the key after this long (e.g. 30d, 12h).
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<humantime::Duration>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct ApikeyIdArgs {
    /// The key's id (the 16 hex digits after `wdn_`).
    pub id: String,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Refuse all inference (503) within a second; the admin commands keep working.
    On,
    /// Serve inference again.
    Off,
    /// Print whether the lockdown is on.
    Status,
}

/// The kill switch: refuses all inference traffic while on. Persisted across restarts.
#[derive(Debug, Args)]
pub struct LockdownArgs {
    #[arg(value_enum)]
    pub switch: Switch,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `warden block` and `warden unblock`.
#[derive(Debug, Args)]
pub struct BlockArgs {
    /// The principal named by its API keys (`warden apikey list`).
    pub principal: String,
    /// Why (recorded in the ledger).
    #[arg(long, default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub json: JsonArg,
}
