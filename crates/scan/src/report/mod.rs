//! Report writers: human text, JSON lines, SARIF 2.1.0.

pub mod json;
pub mod sarif;
pub mod summary;
pub mod text;

pub use summary::Summary;
