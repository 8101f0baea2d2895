//! Warden's releases: what state each is in, which moves between states are allowed, and
//! who may approve them. Storage, and the ledger entry each transition writes, are wired
//! by the callers; this crate holds the rules so that every caller applies the same ones.
//! It also writes a release's AI-BOM (CycloneDX 1.6 ML-BOM), in [`aibom`].

pub mod aibom;
pub mod approval;
pub mod lifecycle;

pub use approval::{Approval, ApprovalError, Approvals, Policy};
pub use lifecycle::{State, TransitionError};
