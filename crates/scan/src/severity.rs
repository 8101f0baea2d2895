//! How bad a finding is, and how each level maps onto SARIF and GitHub code scanning.

use std::fmt;
use std::str::FromStr;

/// Ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing, no risk on its own.
    Info,
    /// Unusual; review when convenient.
    Low,
    /// Warden cannot vouch for the file (unknown format, parse failure, limit) or it uses a
    /// feature that can be abused. Fails the default gate.
    Medium,
    /// Code would run that is not on the allow-list, or data escapes its container.
    High,
    /// Code known to execute commands, read or write files, or reach the network.
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Self::Info,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// SARIF `level`.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Self::Info | Self::Low => "note",
            Self::Medium => "warning",
            Self::High | Self::Critical => "error",
        }
    }

    /// GitHub code scanning's `security-severity` score (0.1-10).
    pub fn security_severity(self) -> &'static str {
        match self {
            Self::Info => "0.1",
            Self::Low => "3.0",
            Self::Medium => "5.5",
            Self::High => "8.0",
            Self::Critical => "9.5",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity `{s}`: expected info, low, medium, high or critical")
            })
    }
}

impl serde::Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
