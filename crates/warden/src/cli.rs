//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use scan::Severity;

pub mod ledger;
pub mod release;
pub mod serve;

/// Warden carries an externally developed ML model through its whole life on premises:
/// admit, seal, approve, serve, watch, respond.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success, 1 error, 2 denied or not verified, 3 scan findings at or above --fail-on."
)]
pub struct Cli {
    /// Directory holding this node's state: ledger, keys, vault.
    #[arg(
        long,
        global = true,
        env = "WARDEN_DATA",
        default_value = "warden-data"
    )]
    pub data_dir: PathBuf,

    /// The configuration file (default: `warden.toml` in the data directory).
    #[arg(long, global = true, env = "WARDEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// A file holding this principal's token (or set WARDEN_TOKEN). Tokens are never
    /// taken on the command line, where other users could read them.
    #[arg(long, global = true, env = "WARDEN_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Carry admin commands (lockdown, block, apikey, principal, approve, deploy, ...)
    /// out through the admin API of a running `warden serve` at this URL (e.g.
    /// https://warden.internal:8444) instead of the local data directory.
    #[arg(long, global = true, env = "WARDEN_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// The CA certificate (PEM) that --server's certificate must chain to (for a
    /// self-signed server, its own certificate).
    #[arg(long, global = true, env = "WARDEN_SERVER_CA", value_name = "FILE")]
    pub server_ca: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect model files for malicious code and malformed data before anything loads them.
    Scan(ScanArgs),

    // --- signing (crates/sign): keygen, sign, verify, digest ---
    /// Create an ECDSA key pair for signing models (PKCS#8 PEM).
    Keygen(KeygenArgs),
    /// Sign a model: write an OpenSSF Model Signing bundle (Sigstore bundle v0.3, DSSE, in-toto).
    Sign(SignArgs),
    /// Verify a model against a signature bundle (exit 0 verified, 2 not verified, 1 error).
    Verify(VerifyArgs),
    /// Print a model's root digest (what a release record stores).
    Digest(DigestArgs),

    // --- ledger (crates/ledger) ---
    /// The tamper-evident ledger of everything Warden does.
    Ledger(ledger::LedgerArgs),
    /// Write a self-verifying offline copy of the ledger.
    Backup(ledger::BackupArgs),
    /// Restore the ledger from a backup; refuses older or forked copies.
    Restore(ledger::RestoreArgs),

    // --- releases (crates/registry, crates/vault) ---
    /// Create a data directory: configuration, keys, ledger, registry, first admin.
    Init(release::InitArgs),
    /// Admit a model: scan, verify its signature, seal it, write its AI-BOM, record it.
    Admit(release::AdmitArgs),
    /// Approve a release, or an export of its weights (two-person rule).
    Approve(release::ApproveArgs),
    /// Reject an admitted release.
    Reject(release::ReasonArgs),
    /// Revoke a release: never served again.
    Revoke(release::ReasonArgs),
    /// Make an approved release live (integrity checked first); the previous one is kept.
    Deploy(release::ReleaseArg),
    /// Put a model's last known good release back live.
    Rollback(release::RollbackArgs),
    /// Decrypt a release's weights to a directory (needs two export approvals).
    Export(release::ExportArgs),
    /// Destroy a release's data keys: its sealed weights can never be opened again.
    Shred(release::ReleaseArg),
    /// List releases and which are live.
    Releases(release::ReleasesArgs),
    /// Show a release: state, files, approvals, history, AI-BOM.
    Show(release::ShowArgs),
    /// Manage the principals of the admin plane.
    Principal(release::PrincipalArgs),
    /// Report every setting weaker than the secure default (exit 2 if any).
    Posture(ledger::JsonArg),

    /// Set up a demo node here and serve the demo model over HTTPS: admit, seal, approve
    /// (DEMO MODE), deploy, serve. Needs nothing external.
    Quickstart(QuickstartArgs),

    // --- serving (crates/gateway) ---
    /// Run the inference gateway (OpenAI-compatible and KServe v2 APIs over TLS).
    Serve(serve::ServeArgs),
    /// Manage the API keys of the inference plane.
    Apikey(serve::ApikeyArgs),
    /// The kill switch: refuse all inference traffic.
    Lockdown(serve::LockdownArgs),
    /// Refuse a principal's inference requests and cut its open streams (within a second).
    Block(serve::BlockArgs),
    /// Let a blocked principal make inference requests again.
    Unblock(serve::BlockArgs),
}

/// `warden quickstart`.
#[derive(Debug, Args)]
#[command(
    after_help = "Creates --data-dir (default ./warden-data; it must not exist or be empty), then serves until Ctrl-C.\nExit codes: 0 stopped cleanly, 1 error, 2 denied (e.g. the demo model failed its integrity check)."
)]
pub struct QuickstartArgs {
    /// Listen here (default 127.0.0.1:8443; 127.0.0.1:0 for any free port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// The admin API listens here (default 127.0.0.1:8444; `off` for none; 127.0.0.1:0
    /// for any free port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin_listen: Option<String>,
    #[command(flatten)]
    pub json: ledger::JsonArg,
}

/// Scans files, directories (recursively) and archives. The format of every file is
/// detected by its content; names and extensions are ignored.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 nothing at or above --fail-on, 3 findings at or above it, 1 error.\nOutput formats are documented in docs/scan-output.md."
)]
pub struct ScanArgs {
    /// Files or directories to scan.
    #[arg(required_unless_present_any = ["list_rules", "list_limits"])]
    pub paths: Vec<PathBuf>,

    /// Print JSON lines on stdout: one object per finding, per file, and a summary.
    #[arg(long)]
    pub json: bool,

    /// Also write a SARIF 2.1.0 report to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,

    /// Exit with 3 when any finding is at or above this severity.
    #[arg(long, value_name = "SEVERITY", default_value = "medium", value_parser = parse_severity)]
    pub fail_on: Severity,

    /// Treat this pickle global (`module.name`) as safe. Repeatable. Globals on the
    /// built-in deny-list stay findings.
    #[arg(long, value_name = "MODULE.NAME")]
    pub allow_global: Vec<String>,

    /// Change a scan limit, e.g. `--limit max_inflated_bytes=8589934592`. Repeatable.
    /// `warden scan --list-limits` shows every limit and its default.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_limit)]
    pub limit: Vec<(String, u64)>,

    /// List every scan limit with its default value and exit.
    #[arg(long)]
    pub list_limits: bool,

    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,

    /// Print clean files and each finding's explanation.
    #[arg(short, long)]
    pub verbose: bool,

    /// Print nothing but errors; the exit code tells the result.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// List every rule Warden checks and exit.
    #[arg(long)]
    pub list_rules: bool,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

fn parse_limit(s: &str) -> Result<(String, u64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or("expected NAME=VALUE, e.g. max_inflated_bytes=8589934592")?;
    let value = value
        .trim()
        .replace('_', "")
        .parse::<u64>()
        .map_err(|e| format!("limit value `{value}`: {e}"))?;
    Ok((name.trim().to_string(), value))
}

// --- signing (crates/sign): keygen, sign, verify, digest ---

/// Elliptic curve of a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CurveArg {
    P256,
    P384,
    P521,
}

/// Hash of every file or shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashArg {
    Sha256,
    Blake3,
}

/// Where a passphrase comes from: never from the command line itself.
#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Read the key passphrase from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "passphrase_file")]
    pub passphrase_env: Option<String>,

    /// Read the key passphrase from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// Creates an ECDSA key pair. The private key is written with mode 0600.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Curve of the key.
    #[arg(long, value_enum, default_value = "p256")]
    pub curve: CurveArg,

    /// Private key file (PKCS#8 PEM).
    #[arg(long, short, value_name = "FILE", default_value = "warden-key.pem")]
    pub out: PathBuf,

    /// Public key file (SPKI PEM); default: the private key's name with `.pub`.
    #[arg(long, value_name = "FILE")]
    pub pub_out: Option<PathBuf>,

    /// Encrypt the private key, asking for a passphrase on the terminal.
    #[arg(long)]
    pub encrypt: bool,

    #[command(flatten)]
    pub passphrase: PassphraseArgs,

    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,

    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// How the model is read: the same rules as `model_signing`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Paths to leave out (relative to the current directory, as model_signing takes
    /// them; only paths inside the model count). Repeatable.
    #[arg(long, value_name = "PATH")]
    pub ignore_paths: Vec<PathBuf>,

    /// Include .git, .gitattributes, .github and .gitignore (ignored by default).
    #[arg(long)]
    pub no_ignore_git_paths: bool,

    /// Follow symbolic links to files (refused by default).
    #[arg(long)]
    pub allow_symlinks: bool,

    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Writes an OMS bundle for MODEL. The default (whole files, SHA-256) is what
/// `model_signing verify key` checks.
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 signed, 1 error. Format: docs/signing.md.")]
pub struct SignArgs {
    /// The model directory (or a single file).
    pub model: PathBuf,

    /// Private key (PKCS#8, encrypted PKCS#8 or SEC1 PEM; P-256, P-384 or P-521).
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,

    /// Where to write the bundle; ignored when hashing if it lies inside the model.
    #[arg(long, value_name = "FILE", default_value = "model.sig")]
    pub signature: PathBuf,

    /// Hash of each file or shard.
    #[arg(long, value_enum, default_value = "sha256")]
    pub hash: HashArg,

    /// Cut files into shards of N bytes (method `shards`), hashed in parallel.
    #[arg(long, value_name = "N")]
    pub shard_size: Option<u64>,

    /// Certificate mode: the signing certificate (PEM) matching --key.
    #[arg(long, value_name = "CERT.pem")]
    pub signing_cert: Option<PathBuf>,

    /// Certificate mode: intermediate certificates to put in the bundle (PEM). Repeatable.
    #[arg(long, value_name = "CHAIN.pem", requires = "signing_cert")]
    pub cert_chain: Vec<PathBuf>,

    #[command(flatten)]
    pub model_args: ModelArgs,

    #[command(flatten)]
    pub passphrase: PassphraseArgs,

    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Checks MODEL against a bundle: the signer (a public key, or a certificate chaining to
/// a trust anchor), then every file. On failure it names the files modified, added or
/// removed, or what is wrong with the signature or signer.
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 verified, 2 not verified, 1 error. Format: docs/signing.md.")]
pub struct VerifyArgs {
    /// The model directory (or a single file).
    pub model: PathBuf,

    /// The bundle to check.
    #[arg(long, value_name = "FILE")]
    pub signature: PathBuf,

    /// Key mode: the signer's public key (SPKI PEM).
    #[arg(
        long,
        value_name = "PUB.pem",
        required_unless_present = "cert_chain",
        conflicts_with = "cert_chain"
    )]
    pub key: Option<PathBuf>,

    /// Certificate mode: trust anchors (PEM, one or more certificates). Repeatable.
    #[arg(long, value_name = "CHAIN.pem")]
    pub cert_chain: Vec<PathBuf>,

    /// Paths to leave out besides those the bundle records (relative to the current
    /// directory). Repeatable.
    #[arg(long, value_name = "PATH")]
    pub ignore_paths: Vec<PathBuf>,

    /// Follow symbolic links to files even if the signer did not.
    #[arg(long)]
    pub allow_symlinks: bool,

    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,

    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// Print nothing; the exit code tells the result.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Prints the root digest of MODEL: SHA-256 over the sorted per-file digests, the
/// subject digest a signature over the same settings carries.
#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The model directory (or a single file).
    pub model: PathBuf,

    /// Hash of each file or shard.
    #[arg(long, value_enum, default_value = "sha256")]
    pub hash: HashArg,

    /// Cut files into shards of N bytes.
    #[arg(long, value_name = "N")]
    pub shard_size: Option<u64>,

    #[command(flatten)]
    pub model_args: ModelArgs,

    /// Also list every resource and its digest.
    #[arg(short, long)]
    pub verbose: bool,

    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}
