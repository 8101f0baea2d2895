//! Vault errors. None carries key material.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("I/O: {0}")]
    Stream(#[from] std::io::Error),
    #[error("sealed file: {0}")]
    Format(String),
    #[error("sealed file fails authentication at segment {segment}: it was altered, truncated, reordered or spliced from another file")]
    Tampered { segment: u64 },
    #[error("sealed for {found}, not for {expected}")]
    WrongContext { expected: String, found: String },
    #[error("key: {0}")]
    Key(String),
    #[error("the data key cannot be unwrapped: wrong key-encryption key, or the wrapped key was altered or belongs to another artifact")]
    Unwrap,
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    #[error("no data key for {0}: it was shredded, or never sealed here")]
    NoKey(String),
}

impl Error {
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
