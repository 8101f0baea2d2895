//! Arguments of `init`, the release lifecycle (`admit`, `approve`, `reject`, `revoke`,
//! `deploy`, `rollback`, `export`, `shred`, `releases`, `show`) and `principal`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::ledger::JsonArg;

/// Which key provider holds the key-encryption key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KekArg {
    /// A key file in the data directory (development; `posture` reports it).
    File,
    /// An HSM through PKCS#11 (PIN from $WARDEN_HSM_PIN).
    Pkcs11,
}

/// Creates a data directory: configuration, key-encryption key, ledger, registry, and the
/// first admin, whose token is printed once.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where the key-encryption key lives.
    #[arg(long, value_enum, default_value = "file")]
    pub kek: KekArg,
    /// The PKCS#11 module (with --kek pkcs11).
    #[arg(long, value_name = "FILE")]
    pub hsm_module: Option<PathBuf>,
    /// The HSM token's label (with --kek pkcs11).
    #[arg(long, value_name = "LABEL")]
    pub hsm_token: Option<String>,
    /// The first admin's name.
    #[arg(long, default_value = "admin")]
    pub admin: String,
    /// The ledger's origin (default `<hostname>/warden-ledger/<random>`).
    #[arg(long)]
    pub origin: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

/// Admits a model: scan, signature against the trust policy, sealing, AI-BOM, record.
/// Exit 0 admitted, 2 rejected or refused (with reasons), 1 error (nothing kept).
#[derive(Debug, Args)]
pub struct AdmitArgs {
    /// The model directory (or single file).
    pub model: PathBuf,
    /// Model name.
    #[arg(long)]
    pub name: String,
    /// Version; `name@version` is immutable once admitted.
    #[arg(long)]
    pub version: String,
    /// The OpenSSF Model Signing bundle.
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
    /// A model card (Markdown with YAML front matter, or JSON) for the AI-BOM.
    #[arg(long, value_name = "FILE")]
    pub model_card: Option<PathBuf>,
    /// A threat model document, referenced (with its hash) from the AI-BOM.
    #[arg(long, value_name = "FILE")]
    pub threat_model: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[command(flatten)]
    pub json: JsonArg,
}

/// A release, `name@version`.
#[derive(Debug, Args)]
pub struct ReleaseArg {
    #[arg(value_name = "NAME@VERSION")]
    pub release: String,
    #[command(flatten)]
    pub json: JsonArg,
}

/// Approves a release (or, with --export, an export of its weights). Needs the approver
/// role; the admitter cannot approve; findings must be accepted explicitly.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[arg(value_name = "NAME@VERSION")]
    pub release: String,
    /// Accept the release's scan findings (required when it has any).
    #[arg(long)]
    pub accept_findings: bool,
    /// Approve an export of the weights instead of promotion.
    #[arg(long)]
    pub export: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

/// Rejects an admitted release, or revokes one (never served again).
#[derive(Debug, Args)]
pub struct ReasonArgs {
    #[arg(value_name = "NAME@VERSION")]
    pub release: String,
    /// Why: recorded with the release and in the ledger.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub json: JsonArg,
}

/// Puts the last known good release of a model back live.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The model name.
    pub model: String,
    #[command(flatten)]
    pub json: JsonArg,
}

/// Decrypts a release's weights into a new directory. Needs a completed two-person export
/// approval, which the export uses up.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(value_name = "NAME@VERSION")]
    pub release: String,
    /// The directory to create.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    #[command(flatten)]
    pub json: JsonArg,
}

/// Lists releases.
#[derive(Debug, Args)]
pub struct ReleasesArgs {
    /// Only this model's releases.
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

/// Shows one release: state, files, approvals, history.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(value_name = "NAME@VERSION")]
    pub release: String,
    /// Print the release's AI-BOM (CycloneDX 1.6 JSON) instead.
    #[arg(long)]
    pub aibom: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct PrincipalArgs {
    #[command(subcommand)]
    pub command: PrincipalCommand,
}

#[derive(Debug, Subcommand)]
pub enum PrincipalCommand {
    /// Add a principal with roles; its token is printed once.
    Add(PrincipalAddArgs),
    /// List principals and their roles.
    List(JsonArg),
    /// Refuse a principal's token from now on.
    Disable(PrincipalNameArgs),
    /// Accept a disabled principal's token again.
    Enable(PrincipalNameArgs),
    /// Issue a new token; the old one stops working at once.
    Rotate(PrincipalNameArgs),
}

#[derive(Debug, Args)]
pub struct PrincipalAddArgs {
    pub name: String,
    /// admin, approver, operator or auditor. Repeatable.
    #[arg(long = "role", value_name = "ROLE", required = true, value_parser = parse_role)]
    pub roles: Vec<registry::Role>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct PrincipalNameArgs {
    pub name: String,
    #[command(flatten)]
    pub json: JsonArg,
}

fn parse_role(s: &str) -> Result<registry::Role, String> {
    registry::Role::parse(s)
        .ok_or_else(|| format!("unknown role {s:?}: admin, approver, operator or auditor"))
}
