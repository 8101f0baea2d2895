//! Key providers: where the key-encryption key (KEK) lives. Data keys are wrapped by the
//! KEK and stored wrapped; the KEK itself never leaves its provider.
//!
//! - [`file::FileKek`]: a 32-byte key file (mode 0600), for development and small sites.
//! - [`pkcs11::Pkcs11Kek`]: an AES key created non-extractable inside an HSM token.

pub mod file;
pub mod pkcs11;

use serde::{Deserialize, Serialize};

use crate::datakey::DataKey;
use crate::error::{Error, Result};

/// A data key encrypted under a KEK (AES-256-GCM, with the artifact's identity as
/// associated data, so a wrapped key cannot be moved to another artifact).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKey {
    pub v: u32,
    /// `file` or `pkcs11`.
    pub provider: String,
    /// Which KEK: a key file's fingerprint, or the HSM key's label.
    pub kek: String,
    /// AES-GCM IV, hex.
    pub iv: String,
    /// Ciphertext and tag, hex.
    pub wrapped: String,
}

/// Something that wraps and unwraps data keys.
pub trait KeyProvider: Send + Sync {
    /// `file` or `pkcs11`.
    fn provider(&self) -> &'static str;
    /// Identifies the KEK in wrapped keys.
    fn kek_id(&self) -> String;
    /// Encrypts a data key; `aad` names the artifact it belongs to.
    fn wrap(&self, key: &DataKey, aad: &[u8]) -> Result<WrappedKey>;
    /// Decrypts a data key; fails unless the KEK and `aad` are the ones it was wrapped with.
    fn unwrap_key(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<DataKey>;
}

pub(crate) fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// Refuses a wrapped key that names another provider or KEK, with both named.
pub(crate) fn check_owner(provider: &dyn KeyProvider, wrapped: &WrappedKey) -> Result<()> {
    if wrapped.provider == provider.provider() && wrapped.kek == provider.kek_id() {
        return Ok(());
    }
    Err(Error::Key(format!(
        "the data key is wrapped by {} key {}, not by this {} key {}",
        wrapped.provider,
        wrapped.kek,
        provider.provider(),
        provider.kek_id()
    )))
}
