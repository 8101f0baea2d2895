//! Verification: the bundle, the signer, the statement, then the model on disk.
//!
//! [`verify`] always ends in a [`Verdict`] unless the model could not be read or an option
//! was unusable: a bundle that is malformed, signed by someone else or describing other
//! files is a [`Failure`], which says exactly what differs.

use std::path::Path;
use std::time::SystemTime;

use crate::bundle::{pae, Bundle, FormatError, Material, PAYLOAD_TYPE};
use crate::cert::{self, Anchors, CertError};
use crate::error::Error;
use crate::keys::{PublicKey, SignatureError};
use crate::manifest::{self, Diff, HashOptions, Manifest};
use crate::statement;

/// Whom to trust.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Key mode: the signer's public key.
    Key(PublicKey),
    /// Certificate mode: anchors, and the time at which certificates must be valid.
    Certificates { anchors: Anchors, at: SystemTime },
}

/// Options that widen what is ignored on disk.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Extra paths (relative to the model root) to ignore, e.g. the signature file.
    pub ignore_paths: Vec<String>,
    /// Follow symbolic links even if the signer did not.
    pub allow_symlinks: bool,
    pub hashing: HashOptions,
}

/// The outcome of a verification.
#[derive(Debug)]
pub enum Verdict {
    Verified(Verified),
    Failed(Failure),
}

/// Proof that a model matched a bundle signed by a trusted signer. Only [`verify`] makes
/// one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verified {
    /// The model as hashed now (it equals the signed manifest).
    pub manifest: Manifest,
    /// Who signed: `key <hint>` or the certificate subject.
    pub signer: String,
}

/// Why a model is not verified.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    #[error("malformed signature bundle: {0}")]
    Malformed(#[from] FormatError),
    #[error("wrong signer: the bundle was signed by the key with hint {bundle}, but the given public key's hint is {given}")]
    WrongKey { bundle: String, given: String },
    #[error("bad signature: {0}")]
    BadSignature(SignatureError),
    #[error("untrusted certificate: {0}")]
    Untrusted(#[from] CertError),
    #[error("the trusted public key cannot be encoded: {0}")]
    BadKey(String),
    #[error("the bundle was signed with a bare key, not a certificate: verify it with --key")]
    NotCertificateSigned,
    #[error("the model differs from the signed manifest: {}", describe(.0))]
    Mismatch(Diff),
}

fn describe(d: &Diff) -> String {
    let mut parts = Vec::new();
    let list = |v: &[String]| {
        let mut s = v.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > 10 {
            s.push_str(&format!(" and {} more", v.len() - 10));
        }
        s
    };
    if !d.modified.is_empty() {
        parts.push(format!("modified: {}", list(&d.modified)));
    }
    if !d.added.is_empty() {
        parts.push(format!("added: {}", list(&d.added)));
    }
    if !d.removed.is_empty() {
        parts.push(format!("removed: {}", list(&d.removed)));
    }
    parts.join("; ")
}

/// A statement whose signature and signer checked out; the model is not yet compared.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignedStatement {
    pub statement: statement::Statement,
    /// Who signed: `key <hint>` or the certificate subject.
    pub signer: String,
}

/// Checks the bundle's signature under `trust` and parses the signed statement, without
/// reading the model: for callers that hash the model themselves (admission hashes while
/// it seals) and compare with [`manifest::diff`].
pub fn verify_signature(bundle: &[u8], trust: &Trust) -> Result<SignedStatement, Failure> {
    let bundle = Bundle::parse(bundle)?;
    let message = pae(PAYLOAD_TYPE, &bundle.payload);
    let hint = |key: &PublicKey| key.hint().map_err(|e| Failure::BadKey(e.to_string()));
    let signer = match (&bundle.material, trust) {
        (Material::KeyHint(bundle_hint), Trust::Key(key)) => {
            let given = hint(key)?;
            if let Some(h) = bundle_hint {
                if !h.eq_ignore_ascii_case(&given) {
                    return Err(Failure::WrongKey {
                        bundle: h.clone(),
                        given,
                    });
                }
            }
            key.verify(&message, &bundle.signature)
                .map_err(Failure::BadSignature)?;
            format!("key {given}")
        }
        (Material::Chain(_), Trust::Key(key)) => {
            // The caller trusts this key outright; the certificates add nothing.
            key.verify(&message, &bundle.signature)
                .map_err(Failure::BadSignature)?;
            format!("key {}", hint(key)?)
        }
        (Material::Chain(chain), Trust::Certificates { anchors, at }) => {
            let leaf = cert::verify_chain(chain, anchors, *at)?;
            leaf.key
                .verify(&message, &bundle.signature)
                .map_err(Failure::BadSignature)?;
            leaf.subject
        }
        (Material::KeyHint(_), Trust::Certificates { .. }) => {
            return Err(Failure::NotCertificateSigned)
        }
    };
    // Only now, with the signature checked, is the payload worth reading.
    let statement = statement::parse(&bundle.payload)?;
    Ok(SignedStatement { statement, signer })
}

/// Verifies `model` against the bundle bytes under `trust`.
pub fn verify(
    model: &Path,
    bundle: &[u8],
    trust: &Trust,
    opts: &VerifyOptions,
    total: &dyn Fn(u64),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Verdict, Error> {
    let SignedStatement {
        statement: st,
        signer,
    } = match verify_signature(bundle, trust) {
        Ok(s) => s,
        Err(f) => return Ok(Verdict::Failed(f)),
    };
    let mut ser = st.serialization.clone();
    for p in &opts.ignore_paths {
        if let Some(p) = manifest::normalize_ignore(p) {
            if !ser.ignore_paths.contains(&p) {
                ser.ignore_paths.push(p);
            }
        }
    }
    ser.allow_symlinks |= opts.allow_symlinks;
    let actual = manifest::build(model, &ser, opts.hashing, total, progress)?;
    let diff = manifest::diff(&st.items, &actual.items);
    if !diff.is_empty() {
        return Ok(Verdict::Failed(Failure::Mismatch(diff)));
    }
    Ok(Verdict::Verified(Verified {
        manifest: actual,
        signer,
    }))
}
