//! Warden's releases: what state each is in, which moves between states are allowed, who
//! may approve them, the principals of the admin plane, the AI-BOM each release carries,
//! and the database that stores it all. The ledger entry each change writes is appended by
//! the callers, inside the change's transaction (see [`store::Registry::write`]).

pub mod aibom;
pub mod approval;
pub mod identity;
pub mod lifecycle;
pub mod release;
pub mod store;

pub use approval::{Approval, ApprovalError, Approvals, Policy};
pub use identity::{ApiKey, Principal, Role};
pub use lifecycle::{State, TransitionError};
pub use release::ReleaseId;
pub use store::{FileRow, Live, Purpose, Registry, Release, Step, StoreError};
