//! `warden scan`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use formats::Limits;
use scan::engine::{self, ScanOptions};
use scan::report::{self, Summary};

use crate::cli::ScanArgs;
use crate::exit::Code;
use crate::progress;

pub fn run(args: ScanArgs) -> anyhow::Result<Code> {
    if args.list_rules {
        return list_rules(args.json);
    }
    if args.list_limits {
        return list_limits(args.json);
    }
    let mut limits = Limits::default();
    for (name, value) in &args.limit {
        limits
            .set(name, *value)
            .map_err(anyhow::Error::msg)
            .context("invalid --limit")?;
    }
    let opts = ScanOptions {
        limits,
        policy: scan::Policy {
            allow_globals: args.allow_global.iter().cloned().collect(),
        },
        threads: args.threads,
    };
    let start = Instant::now();
    let inputs = engine::collect(&args.paths)
        .context("nothing was scanned; check the path and its permissions")?;

    let sarif_to_stdout = args.sarif.as_deref() == Some(Path::new("-"));
    let bar = progress::bar(
        inputs.len() as u64,
        !(args.json || args.quiet || sarif_to_stdout),
        "files",
    );
    let reports = engine::scan_paths(&inputs, &opts, |r| {
        bar.set_message(r.path.display().to_string());
        bar.inc(1);
    });
    bar.finish_and_clear();
    let summary = Summary::new(&reports, args.fail_on, start.elapsed());

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.json {
        for r in &reports {
            report::json::write_file(&mut out, r)?;
        }
        report::json::write_summary(&mut out, &summary)?;
    } else if !args.quiet && !sarif_to_stdout {
        for r in &reports {
            report::text::write_file(&mut out, r, args.verbose)?;
        }
        report::text::write_summary(&mut out, &summary)?;
    }
    if let Some(path) = &args.sarif {
        let log = report::sarif::log(&reports, env!("CARGO_PKG_VERSION"));
        if sarif_to_stdout {
            serde_json::to_writer_pretty(&mut out, &log)?;
            writeln!(out)?;
        } else {
            write_atomically(path, &log)
                .with_context(|| format!("writing SARIF to {}", path.display()))?;
        }
    }
    out.flush()?;
    Ok(if summary.passed() {
        Code::Ok
    } else {
        Code::Findings
    })
}

/// Writes to a temporary file beside `path` and renames it, so a reader never sees half a
/// report.
fn write_atomically(path: &Path, log: &serde_json::Value) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().context("the SARIF path names no file")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        serde_json::to_writer_pretty(&mut w, log)?;
        w.write_all(b"\n")?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        anyhow::Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn list_rules(json: bool) -> anyhow::Result<Code> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for r in scan::rules::all() {
        if json {
            let v = serde_json::json!({
                "type": "rule", "rule": r.id, "name": r.name, "severity": r.severity,
                "title": r.title, "why": r.why, "fix": r.fix,
            });
            serde_json::to_writer(&mut out, &v)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:<7} {:<9} {:<34} {}",
                r.id, r.severity, r.name, r.title
            )?;
        }
    }
    out.flush()?;
    Ok(Code::Ok)
}

fn list_limits(json: bool) -> anyhow::Result<Code> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let defaults = Limits::default();
    for name in Limits::NAMES {
        let value = defaults.get(name).unwrap_or_default();
        if json {
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({"type": "limit", "name": name, "default": value}),
            )?;
            writeln!(out)?;
        } else {
            writeln!(out, "{name:<24} {value}")?;
        }
    }
    out.flush()?;
    Ok(Code::Ok)
}
