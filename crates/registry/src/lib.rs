//! Warden's releases: what state each is in, which moves between states are allowed, and
//! who may approve them. Storage, and the ledger entry each transition writes, are wired
//! by the callers; this crate holds the rules so that every caller applies the same ones.

pub mod approval;
pub mod lifecycle;

pub use approval::{Approval, ApprovalError, Approvals, Policy};
pub use lifecycle::{State, TransitionError};
