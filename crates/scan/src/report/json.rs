//! JSON lines: one object per finding, one per file, one summary at the end.
//! The schema is documented in docs/scan-output.md.

use std::io::{self, Write};

use crate::engine::FileReport;
use crate::report::Summary;

/// Writes each file's findings, then its file line.
pub fn write_file(out: &mut impl Write, report: &FileReport) -> io::Result<()> {
    for f in &report.findings {
        serde_json::to_writer(&mut *out, &f.to_json())?;
        out.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut *out, &report.to_json())?;
    out.write_all(b"\n")
}

pub fn write_summary(out: &mut impl Write, summary: &Summary) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &summary.to_json())?;
    out.write_all(b"\n")
}
