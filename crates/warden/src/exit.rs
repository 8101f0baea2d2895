//! Exit codes, the same for every command (documented in docs/cli.md).

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Success; for `scan`, nothing at or above the gate.
    Ok = 0,
    /// An error: bad arguments, unreadable input, I/O failure.
    Error = 1,
    /// Verification failed or access denied.
    #[allow(dead_code)]
    Denied = 2,
    /// `scan` found something at or above `--fail-on`.
    Findings = 3,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> Self {
        ExitCode::from(code as u8)
    }
}

/// A closed stdout (`warden scan … | head`) is not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
