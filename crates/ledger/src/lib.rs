//! Warden's ledger: an append-only, tamper-evident record of everything Warden does.
//!
//! A Merkle tree log as in RFC 6962/9162, stored in the C2SP tlog-tiles layout, with
//! C2SP tlog-checkpoint checkpoints in signed notes (Ed25519), so that Go's
//! `golang.org/x/mod/sumdb/{note,tlog}` and tlog-witness witnesses can check it. Appends are
//! group-committed to a journal and durable before they are acknowledged; a crash at any
//! instant leaves a ledger that reopens, verifies and holds every acknowledged entry.
//!
//! The ledger stores opaque entries; [`record`] defines the envelope Warden writes.

pub mod checkpoint;
pub mod draft;
pub mod error;
mod fsio;
pub mod hash;
pub mod journal;
pub mod layout;
pub mod record;
pub mod tiles;
pub mod tree;
mod writer;

pub use checkpoint::{generate_key, LogKey, SignedCheckpoint};
pub use draft::Draft;
pub use error::{Error, Result};
pub use hash::Hash;
pub use record::Record;
pub use writer::{Ledger, Options, Receipt};
pub mod reader;
pub use reader::Published;
pub mod backup;
pub mod export;
pub mod verify;
