//! Errors: what could not be done (I/O, keys, arguments). A signature that does not verify
//! is not an error but a [`Failure`](crate::verify::Failure) inside a
//! [`Verdict`](crate::verify::Verdict).

use std::path::PathBuf;

/// Something went wrong before a verdict could be reached, or while signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory of the model could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A symbolic link inside the model, refused by default (as `model_signing` does).
    #[error("{}: is a symbolic link; links are refused unless allowed (--allow-symlinks), as model_signing does", path.display())]
    Symlink { path: PathBuf },
    /// Neither a regular file nor a directory: a socket, a device, a pipe or a broken link.
    #[error("{}: is neither a regular file nor a directory (socket, device, pipe or broken link)", path.display())]
    SpecialFile { path: PathBuf },
    /// A path of the model is not valid UTF-8, so it cannot be named in a manifest.
    #[error("{}: the path is not valid UTF-8 and cannot be named in a manifest", path.display())]
    NonUtf8Path { path: PathBuf },
    /// A file changed size while it was being hashed.
    #[error("{}: the file changed while it was being hashed", path.display())]
    Changed { path: PathBuf },
    /// The options cannot be honoured (e.g. a shard size of 0).
    #[error("{0}")]
    Options(String),
    /// A key file could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The trust anchors for certificate verification could not be read.
    #[error("trust anchors: {0}")]
    Anchors(String),
    /// Serialising the bundle failed (should not happen).
    #[error("writing the bundle: {0}")]
    Json(#[from] serde_json::Error),
}

/// A key file is unusable: wrong format, wrong curve, wrong passphrase.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("not a PEM file: {0}")]
    Pem(String),
    #[error("PEM label `{0}` is not a key this command takes (expected {1})")]
    Label(String, &'static str),
    #[error("the key is not an elliptic-curve key (algorithm {0}); only ECDSA P-256, P-384 and P-521 are supported")]
    NotEc(String),
    #[error("unsupported elliptic curve {0}; only P-256, P-384 and P-521 are supported")]
    Curve(String),
    #[error("the private key is encrypted; give its passphrase")]
    NeedPassphrase,
    #[error("cannot decrypt the private key: wrong passphrase or unsupported encryption ({0})")]
    Decrypt(String),
    #[error("malformed key: {0}")]
    Malformed(String),
    #[error("signing failed: {0}")]
    Sign(String),
}
