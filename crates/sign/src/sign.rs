//! Signing: hash the model, write the statement, sign its DSSE encoding, wrap it in a bundle.

use std::path::Path;

use crate::bundle::{pae, Bundle, Material, PAYLOAD_TYPE};
use crate::error::{Error, KeyError};
use crate::keys::{PublicKey, SigningKey};
use crate::manifest::{self, HashOptions, Manifest, Serialization};
use crate::statement;

/// What to sign and how.
#[derive(Debug, Clone)]
pub struct SignOptions {
    pub serialization: Serialization,
    pub hashing: HashOptions,
    /// Certificate mode: the signing certificate and its intermediates (DER, leaf first).
    /// `None` signs in key mode (the bundle carries the key hint).
    pub chain: Option<Vec<Vec<u8>>>,
}

/// A signed model: the manifest that was signed and the bundle to write.
#[derive(Debug, Clone)]
pub struct Signed {
    pub manifest: Manifest,
    pub bundle_json: String,
}

/// Hashes `model` and signs it with `key`. `total` and `progress` report bytes to hash and
/// bytes hashed.
pub fn sign(
    model: &Path,
    key: &SigningKey,
    opts: &SignOptions,
    total: &dyn Fn(u64),
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Signed, Error> {
    let material = match &opts.chain {
        None => Material::KeyHint(Some(key.public_key().hint()?)),
        Some(chain) => {
            let leaf = chain
                .first()
                .ok_or_else(|| Error::Options("the certificate chain is empty".into()))?;
            let cert_key = leaf_key(leaf)?;
            if cert_key != key.public_key() {
                return Err(Error::Options(
                    "the signing certificate's public key is not the public half of the private key"
                        .into(),
                ));
            }
            Material::Chain(chain.clone())
        }
    };
    let manifest = manifest::build(model, &opts.serialization, opts.hashing, total, progress)?;
    let payload = statement::to_payload(&manifest)?;
    let signature = key.sign(&pae(PAYLOAD_TYPE, &payload))?;
    let bundle = Bundle {
        material,
        payload,
        signature,
    };
    Ok(Signed {
        manifest,
        bundle_json: bundle.to_json()?,
    })
}

fn leaf_key(der: &[u8]) -> Result<PublicKey, Error> {
    use pkcs8::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| Error::Options(format!("the signing certificate is not valid X.509: {e}")))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| Error::Key(KeyError::Malformed(e.to_string())))?;
    Ok(PublicKey::from_spki_der(&spki)?)
}
