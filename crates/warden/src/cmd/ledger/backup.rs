//! `warden backup` and `warden restore`.

use std::io::Write;
use std::path::Path;

use base64::{engine::general_purpose::STANDARD as B64, Engine as _};

use super::{check_record, read_vkey_file, Paths};
use crate::cli::ledger::{BackupArgs, RestoreArgs};
use crate::exit::Code;

pub fn run_backup(data_dir: &Path, args: BackupArgs) -> anyhow::Result<Code> {
    let paths = Paths::new(data_dir);
    paths.settle()?;
    let report = ledger::backup::backup(&paths.ledger, &args.dest, check_record)?;
    let mut out = std::io::stdout().lock();
    if args.json.json {
        let mut v = serde_json::to_value(&report)?;
        v["backup"] = args.dest.display().to_string().into();
        writeln!(out, "{v}")?;
    } else if report.ok() {
        writeln!(
            out,
            "backed up {} entries (root {}) to {}; the copy verifies",
            report.size,
            B64.encode(report.root),
            args.dest.display()
        )?;
    } else {
        writeln!(out, "NOT BACKED UP: the copy does not verify")?;
        for p in &report.problems {
            writeln!(out, "  {}: {}", p.place, p.what)?;
        }
    }
    Ok(if report.ok() { Code::Ok } else { Code::Denied })
}

pub fn run_restore(data_dir: &Path, args: RestoreArgs) -> anyhow::Result<Code> {
    let paths = Paths::new(data_dir);
    if paths.ledger.join(ledger::layout::JOURNAL).exists() {
        paths.settle()?;
    }
    let vkey = args.vkey.as_deref().map(read_vkey_file).transpose()?;
    let mut out = std::io::stdout().lock();
    match ledger::backup::restore(&args.src, &paths.ledger, vkey.as_deref(), check_record) {
        Ok(done) => {
            if args.json.json {
                writeln!(out, "{}", serde_json::to_value(&done)?)?;
            } else if done.up_to_date {
                writeln!(
                    out,
                    "nothing to do: the ledger already holds these {} entries",
                    done.size
                )?;
            } else {
                writeln!(
                    out,
                    "restored {} entries into {}",
                    done.size,
                    paths.ledger.display()
                )?;
                if let Some(kept) = &done.kept {
                    writeln!(out, "the previous ledger is kept in {}", kept.display())?;
                }
            }
            Ok(Code::Ok)
        }
        Err(ledger::Error::Refused(why)) => {
            if args.json.json {
                writeln!(out, "{}", serde_json::json!({"refused": why}))?;
            } else {
                writeln!(out, "REFUSED: {why}")?;
            }
            Ok(Code::Denied)
        }
        Err(e) => Err(e.into()),
    }
}
