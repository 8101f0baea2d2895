//! The human report: findings grouped by file, worst first, then a summary line.

use std::io::{self, Write};

use crate::engine::FileReport;
use crate::report::Summary;
use crate::severity::Severity;

/// Writes one file's findings. Clean files print nothing unless `verbose`.
pub fn write_file(out: &mut impl Write, report: &FileReport, verbose: bool) -> io::Result<()> {
    if report.findings.is_empty() {
        if verbose {
            writeln!(
                out,
                "ok       {} [{}]",
                report.path.display(),
                report.formats.join(", ")
            )?;
        }
        return Ok(());
    }
    for f in &report.findings {
        writeln!(
            out,
            "{:<8} {} {}: {}",
            label(f.severity),
            f.rule.id,
            f.location,
            f.rule.title
        )?;
        writeln!(out, "         evidence: {}", f.evidence)?;
        if verbose || f.severity >= Severity::High {
            writeln!(out, "         why: {}", f.rule.why)?;
            writeln!(out, "         fix: {}", f.rule.fix)?;
        }
    }
    Ok(())
}

pub fn write_summary(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .zip(s.by_severity.iter().rev())
        .filter(|(_, n)| **n > 0)
        .map(|(sev, n)| format!("{n} {sev}"))
        .collect();
    let verdict = if s.passed() {
        format!("PASS (nothing at or above {})", s.fail_on)
    } else {
        format!("FAIL ({} finding(s) at or above {})", s.failing, s.fail_on)
    };
    writeln!(
        out,
        "{} file(s), {} finding(s){}{} in {:.2}s: {verdict}",
        s.files,
        s.findings,
        if counts.is_empty() { "" } else { ": " },
        counts.join(", "),
        s.elapsed.as_secs_f64(),
    )
}

fn label(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFO",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}
