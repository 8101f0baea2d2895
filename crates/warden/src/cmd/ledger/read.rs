//! `warden ledger checkpoint | vkey | show | tail | export`.

use std::io::Write;

use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use ledger::export;
use ledger::Published;

use super::Paths;
use crate::cli::ledger::{ExportArgs, ExportFormat, JsonArg, ShowArgs, TailArgs};
use crate::exit::Code;

fn open(paths: &Paths) -> anyhow::Result<Published> {
    paths.settle()?;
    Ok(Published::open(&paths.ledger, None)?)
}

pub fn checkpoint(paths: &Paths, args: JsonArg) -> anyhow::Result<Code> {
    let ledger = open(paths)?;
    let cp = ledger.checkpoint();
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "origin": cp.origin,
            "size": cp.size,
            "root": B64.encode(cp.root),
            "note": String::from_utf8_lossy(&cp.note),
        });
        writeln!(out, "{v}")?;
    } else {
        out.write_all(&cp.note)?;
    }
    Ok(Code::Ok)
}

pub fn vkey(paths: &Paths) -> anyhow::Result<Code> {
    let vkey = ledger::reader::read_vkey(&paths.ledger)?;
    writeln!(std::io::stdout().lock(), "{vkey}")?;
    Ok(Code::Ok)
}

fn print_entry(index: u64, entry: &[u8], json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", export::json_value(index, entry))?;
        return Ok(());
    }
    match ledger::Record::decode(entry) {
        Ok(r) => {
            write!(out, "{index:>8}  {}  {:<24} {}", r.time, r.kind, r.actor)?;
            if let Some(s) = &r.subject {
                write!(out, "  {s}")?;
            }
            for (k, v) in r.attrs.iter().chain(&r.digests) {
                write!(out, "  {k}={v}")?;
            }
            writeln!(out)?;
        }
        Err(_) => writeln!(out, "{index:>8}  (not a record) {}", B64.encode(entry))?,
    }
    Ok(())
}

pub fn show(paths: &Paths, args: ShowArgs) -> anyhow::Result<Code> {
    let ledger = open(paths)?;
    let entry = ledger.entry(args.index)?;
    print_entry(
        args.index,
        &entry,
        args.json.json,
        &mut std::io::stdout().lock(),
    )?;
    Ok(Code::Ok)
}

pub fn tail(paths: &Paths, args: TailArgs) -> anyhow::Result<Code> {
    let ledger = open(paths)?;
    let to = ledger.size();
    let from = to.saturating_sub(args.lines);
    let mut out = std::io::stdout().lock();
    ledger.for_each_entry(from, to, |i, e| {
        print_entry(i, e, args.json.json, &mut out)
            .map_err(|e| ledger::Error::Record(e.to_string()))
    })?;
    Ok(Code::Ok)
}

pub fn export(paths: &Paths, args: ExportArgs) -> anyhow::Result<Code> {
    let ledger = open(paths)?;
    let to = args.to.unwrap_or(u64::MAX).min(ledger.size());
    let syslog = matches!(args.format, ExportFormat::Syslog) && !args.json;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut io_error = None;
    let walk = ledger.for_each_entry(args.from, to, |i, e| {
        let written = if syslog {
            writeln!(out, "{}", export::syslog_line(i, e, host))
        } else {
            writeln!(out, "{}", export::json_value(i, e))
        };
        written.map_err(|e| {
            let message = e.to_string();
            io_error = Some(e);
            ledger::Error::Record(message)
        })
    });
    if let Some(e) = io_error {
        return Err(e.into());
    }
    walk?;
    out.flush()?;
    Ok(Code::Ok)
}
