//! OpenSSF Model Signing (OMS) for Warden: manifests of file digests, in-toto statements in
//! DSSE envelopes inside Sigstore bundles, ECDSA keys and X.509 certificates, verification.
//!
//! Specification: <https://github.com/ossf/model-signing-spec> (v1.0); reference
//! implementation: `model_signing` 1.1.1 (<https://github.com/sigstore/model-transparency>).
//! Bundles written here verify with `model_signing verify key|certificate`, and bundles it
//! writes verify here. Where the tool deviates from the written spec we follow the tool;
//! each case is documented where it is handled and in `docs/signing.md`.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod cert;
pub mod error;
pub mod hash;
pub mod keys;
pub mod manifest;
pub mod sign;
pub mod statement;
pub mod verify;

pub use bundle::{Bundle, FormatError};
pub use error::{Error, KeyError};
pub use hash::HashAlgorithm;
pub use keys::{Curve, PublicKey, SigningKey};
pub use manifest::{Diff, HashOptions, Manifest, Method, Serialization};
pub use pkcs8::der::zeroize;
pub use sign::{sign, SignOptions, Signed};
pub use verify::{
    verify, verify_signature, Failure, SignedStatement, Trust, Verdict, Verified, VerifyOptions,
};
