//! Warden's vault: artifacts sealed at rest.
//!
//! Every artifact is encrypted with its own random data key in the streaming format of
//! [`format`] (documented in docs/vault-format.md). Data keys are stored only wrapped by a
//! key-encryption key from a [`provider::KeyProvider`]: a key file, or an HSM through
//! PKCS#11. Destroying an artifact's wrapped keys destroys the artifact (crypto-shredding).

pub mod datakey;
mod direct;
pub mod error;
pub mod format;
mod parallel;
mod pipeline;
pub mod provider;

pub use datakey::DataKey;
pub use error::{Error, Result};
pub use format::{Context, Header};
pub use provider::{KeyProvider, WrappedKey};
pub mod store;
pub use store::Vault;
