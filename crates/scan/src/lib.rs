//! Rules over parsed model formats.
//!
//! `scan` walks files, directories and archives, detects each byte string's format by its
//! content, hands it to the reader in `formats`, and turns what the reader saw into
//! [`Finding`]s: a rule, a severity, a location down to the archive member and byte offset,
//! and the evidence. Reports are written as text, JSON lines or SARIF 2.1.0.
//!
//! The scanner fails closed: a file it cannot parse, that breaks a limit, or whose format it
//! does not know gets a finding of its own and is never reported clean.
#![deny(unsafe_code)]

pub mod analyze;
pub mod context;
pub mod engine;
pub mod finding;
pub mod location;
mod mmap;
pub mod policy;
pub mod report;
pub mod rules;
pub mod severity;

pub use context::{Cx, Target};
pub use engine::{scan_bytes, scan_file, scan_paths, FileReport, ScanOptions};
pub use finding::Finding;
pub use location::Location;
pub use policy::Policy;
pub use rules::Rule;
pub use severity::Severity;
