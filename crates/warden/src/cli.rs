//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use scan::Severity;

/// Warden carries an externally developed ML model through its whole life on premises:
/// admit, seal, approve, serve, watch, respond.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success, 1 error, 2 denied or not verified, 3 scan findings at or above --fail-on."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect model files for malicious code and malformed data before anything loads them.
    Scan(ScanArgs),
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
