//! A KEK in a key file: 32 random bytes, hex-encoded, readable by its owner only.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use zeroize::Zeroizing;

use super::{check_owner, decode_hex, KeyProvider, WrappedKey};
use crate::datakey::{random, DataKey};
use crate::error::{Error, Result};

pub struct FileKek {
    key: LessSafeKey,
    fingerprint: String,
}

impl std::fmt::Debug for FileKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileKek({})", self.fingerprint)
    }
}

impl FileKek {
    /// Creates a new key file (mode 0600); refuses to overwrite one.
    pub fn create(path: &Path) -> Result<FileKek> {
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(random());
        let text = Zeroizing::new(hex::encode(*bytes));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(Error::io(path))?;
        file.write_all(text.as_bytes()).map_err(Error::io(path))?;
        file.sync_all().map_err(Error::io(path))?;
        Self::from_bytes(&bytes)
    }

    /// Loads a key file, refusing one that others can read or write.
    pub fn load(path: &Path) -> Result<FileKek> {
        let meta = std::fs::metadata(path).map_err(Error::io(path))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::Key(format!(
                "{} is accessible to other users (mode {:o}); run chmod 600 on it",
                path.display(),
                meta.permissions().mode() & 0o777
            )));
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(Error::io(path))?);
        let bytes =
            Zeroizing::new(decode_hex::<32>(text.trim()).ok_or_else(|| {
                Error::Key(format!("{} is not a 32-byte hex key", path.display()))
            })?);
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8; 32]) -> Result<FileKek> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map(LessSafeKey::new)
            .map_err(|_| Error::Key("unusable key".into()))?;
        // A fingerprint names the KEK without revealing it.
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"warden vault kek fingerprint\0");
        ctx.update(bytes);
        let fingerprint = hex::encode(&ctx.finish().as_ref()[..8]);
        Ok(FileKek { key, fingerprint })
    }
}

impl KeyProvider for FileKek {
    fn provider(&self) -> &'static str {
        "file"
    }

    fn kek_id(&self) -> String {
        self.fingerprint.clone()
    }

    fn wrap(&self, key: &DataKey, aad: &[u8]) -> Result<WrappedKey> {
        let iv: [u8; 12] = random();
        let mut buf = Zeroizing::new(key.expose().to_vec());
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut *buf)
            .map_err(|_| Error::Key("wrapping failed".into()))?;
        Ok(WrappedKey {
            v: 1,
            provider: self.provider().into(),
            kek: self.kek_id(),
            iv: hex::encode(iv),
            wrapped: hex::encode(&*buf),
        })
    }

    fn unwrap_key(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<DataKey> {
        check_owner(self, wrapped)?;
        let iv = decode_hex::<12>(&wrapped.iv).ok_or(Error::Unwrap)?;
        let mut buf = Zeroizing::new(hex::decode(&wrapped.wrapped).map_err(|_| Error::Unwrap)?);
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut buf)
            .map_err(|_| Error::Unwrap)?;
        let bytes: [u8; 32] = (&*plain).try_into().map_err(|_| Error::Unwrap)?;
        Ok(DataKey::from_bytes(bytes))
    }
}
