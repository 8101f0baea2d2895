//! Arguments of `warden ledger …`, `warden backup` and `warden restore`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// The tamper-evident ledger: verify it, prove entries, export it.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 success, 1 error, 2 verification failed.\nThe ledger is documented in docs/ledger.md."
)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Create the ledger and its Ed25519 signing key; print the verifier key.
    Init(InitArgs),
    /// Append a record (or many, from JSON lines) and wait until it is durable.
    Append(AppendArgs),
    /// Check every entry and tile against the signed checkpoint (exit 2 if anything differs).
    Verify(VerifyLedgerArgs),
    /// Print the latest signed checkpoint (save it to check consistency later).
    Checkpoint(JsonArg),
    /// Print the verifier key, all anyone needs to check the ledger.
    Vkey,
    /// Print an inclusion proof for one entry.
    Proof(ProofArgs),
    /// Print a consistency proof from a saved checkpoint to the latest.
    Consistency(ConsistencyArgs),
    /// Check a proof printed by `proof` or `consistency`, offline.
    CheckProof(CheckProofArgs),
    /// Print one entry.
    Show(ShowArgs),
    /// Print the last entries.
    Tail(TailArgs),
    /// Export entries as JSON lines or RFC 5424 syslog lines, for a SIEM.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The log's origin (and key name), e.g. `ledger.example.org/warden`. Default:
    /// `<hostname>/warden-ledger/<random>`.
    #[arg(long)]
    pub origin: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["kind", "from_jsonl"]))]
pub struct AppendArgs {
    /// Record kind, `<family>.<action>` (families: admin, release, inference, alert, config, ledger).
    #[arg(long, requires = "actor")]
    pub kind: Option<String>,
    /// Who did it.
    #[arg(long)]
    pub actor: Option<String>,
    /// What it concerns.
    #[arg(long)]
    pub subject: Option<String>,
    /// An attribute `KEY=VALUE`. Repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub attr: Vec<(String, String)>,
    /// A digest `NAME=sha256:HEX`. Repeatable.
    #[arg(long, value_name = "NAME=DIGEST", value_parser = parse_pair)]
    pub digest: Vec<(String, String)>,
    /// Append one record per line of FILE (`-` for stdin):
    /// `{"kind":…,"actor":…,"subject":…,"attrs":{…},"digests":{…}}`.
    #[arg(long, value_name = "FILE")]
    pub from_jsonl: Option<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct VerifyLedgerArgs {
    /// A checkpoint saved earlier: the ledger must still contain exactly that history.
    #[arg(long, value_name = "CHECKPOINT")]
    pub since: Option<PathBuf>,
    /// The verifier key to trust (a file holding it), instead of the one stored with the
    /// ledger; pin it when the host itself is not trusted.
    #[arg(long, value_name = "FILE")]
    pub vkey: Option<PathBuf>,
    /// Verify this ledger directory (a copy, a backup) instead of the data directory's.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct ProofArgs {
    /// The entry's index.
    #[arg(long)]
    pub index: u64,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct ConsistencyArgs {
    /// A checkpoint saved earlier (from `warden ledger checkpoint`).
    #[arg(long, value_name = "CHECKPOINT")]
    pub from: PathBuf,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct CheckProofArgs {
    /// A proof in the JSON form `proof --json` or `consistency --json` prints.
    pub proof: PathBuf,
    /// The verifier key to trust (a file holding it).
    #[arg(long, value_name = "FILE")]
    pub vkey: PathBuf,
    /// For an inclusion proof: the entry itself (a file), to check it is the one proved.
    #[arg(long, value_name = "FILE")]
    pub entry: Option<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The entry's index.
    pub index: u64,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// How many entries.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub lines: u64,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per entry.
    Json,
    /// RFC 5424 syslog lines.
    Syslog,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// First entry to export.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Stop before this entry (default: all).
    #[arg(long)]
    pub to: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: ExportFormat,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 success, 1 error, 2 the copy does not verify.")]
pub struct BackupArgs {
    /// Directory to create with the copy (must not exist).
    pub dest: PathBuf,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 restored (or already up to date), 1 error, 2 refused: the backup does not verify, is older than the ledger, or is a fork of it."
)]
pub struct RestoreArgs {
    /// A directory made by `warden backup`.
    pub src: PathBuf,
    /// The verifier key to trust (a file holding it); by default the current ledger's, or
    /// the backup's own when there is no ledger.
    #[arg(long, value_name = "FILE")]
    pub vkey: Option<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    if k.is_empty() {
        return Err(format!("empty key in {s:?}"));
    }
    Ok((k.to_string(), v.to_string()))
}
