//! Certificate (PKI) mode: the bundle carries the signing certificate and its
//! intermediates; the verifier brings trust anchors.
//!
//! A chain is accepted when, at the verification time:
//! - every certificate on the path is within its validity period;
//! - each certificate's issuer name matches the next one's subject and its ECDSA signature
//!   (SHA-256/384/512 over P-256/384/521) verifies with the next one's key;
//! - every issuer is a CA (basicConstraints `cA`), with `keyCertSign` when it lists key
//!   usages, and the path length stays within any `pathLenConstraint`;
//! - the path ends at a certificate from the trust anchors;
//! - the leaf allows `digitalSignature` key usage or the code-signing extended key usage
//!   (what `model_signing` requires);
//! - no certificate carries a critical extension we do not understand.
//!
//! `model_signing` checks validity at the leaf's `notBefore`; we check at the time given by
//! the caller (now, by default), which refuses expired certificates.

use std::time::SystemTime;

use pkcs8::der::{Decode, Encode};
use pkcs8::ObjectIdentifier;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::Certificate;

use crate::keys::{PublicKey, Sha};

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Extensions we either check or that cannot loosen the checks above.
const UNDERSTOOD: [ObjectIdentifier; 6] = [
    ObjectIdentifier::new_unwrap("2.5.29.15"), // key usage
    ObjectIdentifier::new_unwrap("2.5.29.37"), // extended key usage
    ObjectIdentifier::new_unwrap("2.5.29.19"), // basic constraints
    ObjectIdentifier::new_unwrap("2.5.29.17"), // subject alternative name
    ObjectIdentifier::new_unwrap("2.5.29.14"), // subject key identifier
    ObjectIdentifier::new_unwrap("2.5.29.35"), // authority key identifier
];
/// Longest path searched, leaf included.
const MAX_DEPTH: usize = 8;

/// Why a certificate chain is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    #[error("certificate {index} of the bundle is not valid DER X.509: {reason}")]
    Parse { index: usize, reason: String },
    #[error("certificate `{subject}` expired at {not_after}")]
    Expired { subject: String, not_after: String },
    #[error("certificate `{subject}` is not valid before {not_before}")]
    NotYetValid { subject: String, not_before: String },
    #[error("no trusted issuer for `{subject}` (issuer `{issuer}`): the chain does not lead to a given trust anchor")]
    Untrusted { subject: String, issuer: String },
    #[error("certificate `{subject}` may not issue certificates (not a CA, or no keyCertSign, or path length exceeded)")]
    NotCa { subject: String },
    #[error("the signing certificate `{subject}` allows neither the digitalSignature key usage nor the code-signing extended key usage")]
    LeafUsage { subject: String },
    #[error("certificate `{subject}` has a critical extension {oid} that is not understood")]
    CriticalExtension { subject: String, oid: String },
    #[error("certificate `{subject}`: {reason}")]
    Unsupported { subject: String, reason: String },
    #[error("the chain is longer than {MAX_DEPTH} certificates")]
    TooDeep,
}

/// Trust anchors (roots, and optionally intermediates) read from PEM.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    certs: Vec<Certificate>,
}

impl Anchors {
    /// Every `CERTIFICATE` block of a PEM file.
    pub fn from_pem(pem: &[u8]) -> Result<Anchors, String> {
        let certs = Certificate::load_pem_chain(pem).map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err("no CERTIFICATE in the file".into());
        }
        Ok(Anchors { certs })
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    pub fn extend(&mut self, other: Anchors) {
        self.certs.extend(other.certs);
    }
}

/// The leaf's subject and key, after the chain was checked.
#[derive(Debug, Clone)]
pub struct TrustedLeaf {
    pub subject: String,
    pub key: PublicKey,
}

fn subject(c: &Certificate) -> String {
    c.tbs_certificate.subject.to_string()
}

fn unsupported(c: &Certificate, reason: impl Into<String>) -> CertError {
    CertError::Unsupported {
        subject: subject(c),
        reason: reason.into(),
    }
}

fn key_of(c: &Certificate) -> Result<PublicKey, CertError> {
    let der = c
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| unsupported(c, e.to_string()))?;
    PublicKey::from_spki_der(&der).map_err(|e| unsupported(c, e.to_string()))
}

fn check_time(c: &Certificate, now: SystemTime) -> Result<(), CertError> {
    let v = &c.tbs_certificate.validity;
    if now < v.not_before.to_system_time() {
        return Err(CertError::NotYetValid {
            subject: subject(c),
            not_before: v.not_before.to_string(),
        });
    }
    if now > v.not_after.to_system_time() {
        return Err(CertError::Expired {
            subject: subject(c),
            not_after: v.not_after.to_string(),
        });
    }
    Ok(())
}

fn check_critical(c: &Certificate) -> Result<(), CertError> {
    for e in c.tbs_certificate.extensions.as_deref().unwrap_or(&[]) {
        if e.critical && !UNDERSTOOD.contains(&e.extn_id) {
            return Err(CertError::CriticalExtension {
                subject: subject(c),
                oid: e.extn_id.to_string(),
            });
        }
    }
    Ok(())
}

fn ext<'a, T>(c: &'a Certificate) -> Result<Option<T>, CertError>
where
    T: Decode<'a> + pkcs8::der::oid::AssociatedOid,
{
    c.tbs_certificate
        .get::<T>()
        .map(|o| o.map(|(_, v)| v))
        .map_err(|e| unsupported(c, format!("extension {}: {e}", T::OID)))
}

/// Can `ca` issue a certificate that has `below` CA certificates under it?
fn may_issue(ca: &Certificate, below: usize) -> Result<bool, CertError> {
    let Some(bc) = ext::<BasicConstraints>(ca)? else {
        return Ok(false);
    };
    if !bc.ca {
        return Ok(false);
    }
    if bc
        .path_len_constraint
        .is_some_and(|n| usize::from(n) < below)
    {
        return Ok(false);
    }
    Ok(ext::<KeyUsage>(ca)?.is_none_or(|ku| ku.key_cert_sign()))
}

/// Did `issuer` sign `c`?
fn signed_by(c: &Certificate, issuer: &Certificate) -> Result<bool, CertError> {
    let sha = match c.signature_algorithm.oid {
        ECDSA_SHA256 => Sha::Sha256,
        ECDSA_SHA384 => Sha::Sha384,
        ECDSA_SHA512 => Sha::Sha512,
        other => {
            return Err(unsupported(
                c,
                format!(
                    "signature algorithm {other} (only ECDSA with SHA-256/384/512 is supported)"
                ),
            ))
        }
    };
    let key = key_of(issuer)?;
    let tbs = c
        .tbs_certificate
        .to_der()
        .map_err(|e| unsupported(c, e.to_string()))?;
    let Some(sig) = c.signature.as_bytes() else {
        return Ok(false);
    };
    Ok(key.verify_with_hash(&tbs, sig, sha).is_ok())
}

/// Checks a bundle's chain (DER, leaf first) against the anchors at time `now`.
pub fn verify_chain(
    chain: &[Vec<u8>],
    anchors: &Anchors,
    now: SystemTime,
) -> Result<TrustedLeaf, CertError> {
    let certs = chain
        .iter()
        .enumerate()
        .map(|(index, der)| {
            Certificate::from_der(der).map_err(|e| CertError::Parse {
                index,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some((leaf, intermediates)) = certs.split_first() else {
        return Err(CertError::Parse {
            index: 0,
            reason: "the chain is empty".into(),
        });
    };
    check_time(leaf, now)?;
    check_critical(leaf)?;
    let ku_ok = ext::<KeyUsage>(leaf)?.is_some_and(|ku| ku.digital_signature());
    let eku_ok = ext::<ExtendedKeyUsage>(leaf)?.is_some_and(|eku| eku.0.contains(&CODE_SIGNING));
    if !ku_ok && !eku_ok {
        return Err(CertError::LeafUsage {
            subject: subject(leaf),
        });
    }
    let key = key_of(leaf)?;
    let trusted = TrustedLeaf {
        subject: subject(leaf),
        key,
    };
    if anchors.certs.iter().any(|a| a == leaf) {
        return Ok(trusted); // the leaf itself is pinned
    }

    let mut current = leaf;
    for depth in 0..MAX_DEPTH {
        let issuer_name = &current.tbs_certificate.issuer;
        let candidates = anchors
            .certs
            .iter()
            .map(|c| (c, true))
            .chain(intermediates.iter().map(|c| (c, false)))
            .filter(|(c, _)| &c.tbs_certificate.subject == issuer_name);
        let mut next = None;
        for (cand, is_anchor) in candidates {
            if !signed_by(current, cand)? {
                continue;
            }
            if !may_issue(cand, depth)? {
                return Err(CertError::NotCa {
                    subject: subject(cand),
                });
            }
            check_time(cand, now)?;
            check_critical(cand)?;
            if is_anchor {
                return Ok(trusted);
            }
            next = Some(cand);
            break;
        }
        match next {
            Some(n) if n != current => current = n,
            _ => {
                return Err(CertError::Untrusted {
                    subject: subject(current),
                    issuer: issuer_name.to_string(),
                })
            }
        }
    }
    Err(CertError::TooDeep)
}

/// The DER of every `CERTIFICATE` in a PEM text (for putting a chain in a bundle).
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let certs = Certificate::load_pem_chain(pem.as_bytes()).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no CERTIFICATE in the file".into());
    }
    certs
        .iter()
        .map(|c| c.to_der().map_err(|e| e.to_string()))
        .collect()
}
