//! The one error type of every reader: where in the input, and what was wrong.

use std::fmt;

/// A reader refused its input. `offset` is the byte offset (within the slice the reader was
/// given) where the problem was found; `kind` says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseError {
    pub offset: u64,
    pub kind: ParseErrorKind,
}

/// What was wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input ended before a complete structure was read. `needed` is how many more bytes
    /// the structure required.
    Truncated { what: &'static str, needed: u64 },
    /// A value broke a rule of the format (a bad magic number, an unknown tag, a field that
    /// contradicts another).
    Malformed(String),
    /// A size, count or depth exceeded one of the reader's [`crate::Limits`]. The file may be
    /// valid, but reading it would cost more than allowed.
    LimitExceeded {
        limit: &'static str,
        value: u64,
        max: u64,
    },
    /// The structure is valid but uses a feature this reader does not understand, so it
    /// cannot vouch for what the file contains.
    Unsupported(String),
}

impl ParseError {
    pub fn truncated(offset: u64, what: &'static str, needed: u64) -> Self {
        Self {
            offset,
            kind: ParseErrorKind::Truncated { what, needed },
        }
    }

    pub fn malformed(offset: u64, msg: impl Into<String>) -> Self {
        Self {
            offset,
            kind: ParseErrorKind::Malformed(msg.into()),
        }
    }

    pub fn limit(offset: u64, limit: &'static str, value: u64, max: u64) -> Self {
        Self {
            offset,
            kind: ParseErrorKind::LimitExceeded { limit, value, max },
        }
    }

    pub fn unsupported(offset: u64, msg: impl Into<String>) -> Self {
        Self {
            offset,
            kind: ParseErrorKind::Unsupported(msg.into()),
        }
    }

    /// True when the input was refused for cost, not for being malformed.
    pub fn is_limit(&self) -> bool {
        matches!(self.kind, ParseErrorKind::LimitExceeded { .. })
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what, needed } => {
                write!(f, "truncated {what}: {needed} more byte(s) needed")
            }
            Self::Malformed(msg) => f.write_str(msg),
            Self::LimitExceeded { limit, value, max } => {
                write!(f, "{limit} is {value}, over the limit of {max}")
            }
            Self::Unsupported(msg) => write!(f, "unsupported: {msg}"),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for ParseError {}

pub type Result<T> = std::result::Result<T, ParseError>;
