//! ECDSA keys on P-256, P-384 and P-521, as `model_signing` uses them.
//!
//! - Private keys: PKCS#8 PEM (`PRIVATE KEY`), encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`,
//!   PBES2) or SEC1 (`EC PRIVATE KEY`). Public keys: SubjectPublicKeyInfo PEM (`PUBLIC KEY`).
//! - Each curve signs with its own hash, as `model_signing`'s `get_ec_key_hash`: P-256 with
//!   SHA-256, P-384 with SHA-384, P-521 with SHA-512. Signatures are DER
//!   (`ECDSA-Sig-Value`), as Python's `cryptography` produces and expects.
//! - The key hint in a bundle is the hex SHA-256 of the public key's SPKI PEM text (64
//!   columns, LF line ends, trailing newline), as `model_signing` 1.1.1 computes it.

use ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, SecretDocument};
use pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, EncryptedPrivateKeyInfo,
    ObjectIdentifier, PrivateKeyInfo, SubjectPublicKeyInfoRef,
};
use rand_core::{OsRng, RngCore};
use sha2::Digest as _;

use crate::error::KeyError;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// PBKDF2-HMAC-SHA256 iterations for passphrase-encrypted keys (OWASP 2023 figure).
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// A NIST curve supported by `model_signing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    fn from_oid(oid: Option<ObjectIdentifier>) -> Result<Curve, KeyError> {
        match oid {
            Some(SECP256R1) => Ok(Curve::P256),
            Some(SECP384R1) => Ok(Curve::P384),
            Some(SECP521R1) => Ok(Curve::P521),
            Some(other) => Err(KeyError::Curve(other.to_string())),
            None => Err(KeyError::Curve("(no named curve)".into())),
        }
    }

    /// The hash ECDSA uses with this curve (`model_signing`'s `get_ec_key_hash`).
    pub fn sha(self) -> Sha {
        match self {
            Curve::P256 => Sha::Sha256,
            Curve::P384 => Sha::Sha384,
            Curve::P521 => Sha::Sha512,
        }
    }
}

/// The SHA-2 hash under an ECDSA signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sha {
    Sha256,
    Sha384,
    Sha512,
}

impl Sha {
    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Sha::Sha256 => sha2::Sha256::digest(msg).to_vec(),
            Sha::Sha384 => sha2::Sha384::digest(msg).to_vec(),
            Sha::Sha512 => sha2::Sha512::digest(msg).to_vec(),
        }
    }
}

/// A private key. Never printed: `Debug` shows only the curve.
pub enum SigningKey {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    P521(p521::SecretKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.curve().name())
    }
}

/// A public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    P256(p256::PublicKey),
    P384(p384::PublicKey),
    P521(p521::PublicKey),
}

fn malformed(e: impl std::fmt::Display) -> KeyError {
    KeyError::Malformed(e.to_string())
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(curve: Curve) -> SigningKey {
        match curve {
            Curve::P256 => SigningKey::P256(p256::SecretKey::random(&mut OsRng)),
            Curve::P384 => SigningKey::P384(p384::SecretKey::random(&mut OsRng)),
            Curve::P521 => SigningKey::P521(p521::SecretKey::random(&mut OsRng)),
        }
    }

    pub fn curve(&self) -> Curve {
        match self {
            SigningKey::P256(_) => Curve::P256,
            SigningKey::P384(_) => Curve::P384,
            SigningKey::P521(_) => Curve::P521,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            SigningKey::P256(k) => PublicKey::P256(k.public_key()),
            SigningKey::P384(k) => PublicKey::P384(k.public_key()),
            SigningKey::P521(k) => PublicKey::P521(k.public_key()),
        }
    }

    /// PKCS#8 PEM; with a passphrase, encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA256,
    /// AES-256-CBC), which OpenSSL and Python's `cryptography` read.
    pub fn to_pkcs8_pem(
        &self,
        passphrase: Option<&[u8]>,
    ) -> Result<pkcs8::der::zeroize::Zeroizing<String>, KeyError> {
        let doc = match self {
            SigningKey::P256(k) => k.to_pkcs8_der(),
            SigningKey::P384(k) => k.to_pkcs8_der(),
            SigningKey::P521(k) => k.to_pkcs8_der(),
        }
        .map_err(malformed)?;
        let Some(pass) = passphrase else {
            return doc.to_pem("PRIVATE KEY", LineEnding::LF).map_err(malformed);
        };
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut iv);
        let params =
            pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
                .map_err(malformed)?;
        let pki = PrivateKeyInfo::try_from(doc.as_bytes()).map_err(malformed)?;
        let enc = pki.encrypt_with_params(params, pass).map_err(malformed)?;
        enc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map_err(malformed)
    }

    /// Reads a private key PEM. An encrypted key needs `passphrase`.
    pub fn from_pem(pem: &str, passphrase: Option<&[u8]>) -> Result<SigningKey, KeyError> {
        let (label, doc) =
            SecretDocument::from_pem(pem).map_err(|e| KeyError::Pem(e.to_string()))?;
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(doc.as_bytes()),
            "ENCRYPTED PRIVATE KEY" => {
                let pass = passphrase.ok_or(KeyError::NeedPassphrase)?;
                let enc = EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(malformed)?;
                let dec = enc
                    .decrypt(pass)
                    .map_err(|e| KeyError::Decrypt(e.to_string()))?;
                Self::from_pkcs8_der(dec.as_bytes())
            }
            "EC PRIVATE KEY" => {
                let k = sec1::EcPrivateKey::from_der(doc.as_bytes()).map_err(malformed)?;
                let curve = Curve::from_oid(k.parameters.and_then(|p| p.named_curve()))?;
                Ok(match curve {
                    Curve::P256 => SigningKey::P256(
                        p256::SecretKey::from_sec1_der(doc.as_bytes()).map_err(malformed)?,
                    ),
                    Curve::P384 => SigningKey::P384(
                        p384::SecretKey::from_sec1_der(doc.as_bytes()).map_err(malformed)?,
                    ),
                    Curve::P521 => SigningKey::P521(
                        p521::SecretKey::from_sec1_der(doc.as_bytes()).map_err(malformed)?,
                    ),
                })
            }
            "PUBLIC KEY" => Err(KeyError::Label(
                label.into(),
                "a private key (PRIVATE KEY, ENCRYPTED PRIVATE KEY or EC PRIVATE KEY); this is the public half",
            )),
            other => Err(KeyError::Label(
                other.into(),
                "PRIVATE KEY, ENCRYPTED PRIVATE KEY or EC PRIVATE KEY",
            )),
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let pki = PrivateKeyInfo::try_from(der).map_err(malformed)?;
        if pki.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(KeyError::NotEc(pki.algorithm.oid.to_string()));
        }
        let curve = Curve::from_oid(pki.algorithm.parameters_oid().ok())?;
        Ok(match curve {
            Curve::P256 => {
                SigningKey::P256(p256::SecretKey::from_pkcs8_der(der).map_err(malformed)?)
            }
            Curve::P384 => {
                SigningKey::P384(p384::SecretKey::from_pkcs8_der(der).map_err(malformed)?)
            }
            Curve::P521 => {
                SigningKey::P521(p521::SecretKey::from_pkcs8_der(der).map_err(malformed)?)
            }
        })
    }

    /// Signs `msg` (hashed with the curve's hash); returns a DER signature.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let h = self.curve().sha().digest(msg);
        let sign_err = |e: ecdsa::Error| KeyError::Sign(e.to_string());
        Ok(match self {
            SigningKey::P256(k) => {
                let s: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(k)
                    .sign_prehash(&h)
                    .map_err(sign_err)?;
                s.to_der().as_bytes().to_vec()
            }
            SigningKey::P384(k) => {
                let s: p384::ecdsa::Signature = p384::ecdsa::SigningKey::from(k)
                    .sign_prehash(&h)
                    .map_err(sign_err)?;
                s.to_der().as_bytes().to_vec()
            }
            SigningKey::P521(k) => {
                let sk = p521::ecdsa::SigningKey::from_bytes(&k.to_bytes()).map_err(sign_err)?;
                let s: p521::ecdsa::Signature = sk.sign_prehash(&h).map_err(sign_err)?;
                s.to_der().as_bytes().to_vec()
            }
        })
    }
}

impl PublicKey {
    pub fn curve(&self) -> Curve {
        match self {
            PublicKey::P256(_) => Curve::P256,
            PublicKey::P384(_) => Curve::P384,
            PublicKey::P521(_) => Curve::P521,
        }
    }

    /// Reads a `PUBLIC KEY` (SPKI) PEM.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let (label, doc) =
            pkcs8::der::Document::from_pem(pem).map_err(|e| KeyError::Pem(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::Label(
                label.into(),
                "PUBLIC KEY (SubjectPublicKeyInfo)",
            ));
        }
        Self::from_spki_der(doc.as_bytes())
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let spki = SubjectPublicKeyInfoRef::try_from(der).map_err(malformed)?;
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(KeyError::NotEc(spki.algorithm.oid.to_string()));
        }
        let curve = Curve::from_oid(spki.algorithm.parameters_oid().ok())?;
        Ok(match curve {
            Curve::P256 => {
                PublicKey::P256(p256::PublicKey::from_public_key_der(der).map_err(malformed)?)
            }
            Curve::P384 => {
                PublicKey::P384(p384::PublicKey::from_public_key_der(der).map_err(malformed)?)
            }
            Curve::P521 => {
                PublicKey::P521(p521::PublicKey::from_public_key_der(der).map_err(malformed)?)
            }
        })
    }

    /// SPKI PEM (uncompressed point, 64 columns, LF).
    pub fn to_pem(&self) -> Result<String, KeyError> {
        match self {
            PublicKey::P256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::P384(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::P521(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(malformed)
    }

    /// `model_signing`'s key hint: hex SHA-256 of [`PublicKey::to_pem`].
    pub fn hint(&self) -> Result<String, KeyError> {
        Ok(hex::encode(sha2::Sha256::digest(self.to_pem()?.as_bytes())))
    }

    /// Checks a DER signature over `msg` made with the curve's hash.
    pub fn verify(&self, msg: &[u8], der_sig: &[u8]) -> Result<(), SignatureError> {
        self.verify_with_hash(msg, der_sig, self.curve().sha())
    }

    /// Checks a DER signature over `msg` hashed with `sha` (certificates name their own).
    pub(crate) fn verify_with_hash(
        &self,
        msg: &[u8],
        der_sig: &[u8],
        sha: Sha,
    ) -> Result<(), SignatureError> {
        let h = sha.digest(msg);
        match self {
            PublicKey::P256(k) => {
                let sig = p256::ecdsa::Signature::from_der(der_sig)
                    .map_err(|_| SignatureError::Encoding)?;
                p256::ecdsa::VerifyingKey::from(k)
                    .verify_prehash(&h, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            PublicKey::P384(k) => {
                let sig = p384::ecdsa::Signature::from_der(der_sig)
                    .map_err(|_| SignatureError::Encoding)?;
                p384::ecdsa::VerifyingKey::from(k)
                    .verify_prehash(&h, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            PublicKey::P521(k) => {
                let sig = p521::ecdsa::Signature::from_der(der_sig)
                    .map_err(|_| SignatureError::Encoding)?;
                p521::ecdsa::VerifyingKey::from_affine(*k.as_affine())
                    .map_err(|_| SignatureError::Invalid)?
                    .verify_prehash(&h, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature is not a DER ECDSA signature for this curve")]
    Encoding,
    #[error("the signature does not match the payload and key")]
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_all_curves_and_pem_round_trip() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let k = SigningKey::generate(curve);
            let pem = k.to_pkcs8_pem(None).unwrap();
            let k2 = SigningKey::from_pem(&pem, None).unwrap();
            let sig = k2.sign(b"msg").unwrap();
            let pk = PublicKey::from_pem(&k.public_key().to_pem().unwrap()).unwrap();
            assert_eq!(pk.curve(), curve);
            pk.verify(b"msg", &sig).unwrap();
            assert_eq!(pk.verify(b"msh", &sig), Err(SignatureError::Invalid));
            assert_eq!(
                pk.verify(b"msg", b"\x30\x00"),
                Err(SignatureError::Encoding)
            );
            let other = SigningKey::generate(curve).public_key();
            assert!(other.verify(b"msg", &sig).is_err());
        }
    }

    #[test]
    fn encrypted_keys_need_the_right_passphrase() {
        let k = SigningKey::generate(Curve::P256);
        let pem = k.to_pkcs8_pem(Some(b"correct horse")).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(matches!(
            SigningKey::from_pem(&pem, None),
            Err(KeyError::NeedPassphrase)
        ));
        assert!(matches!(
            SigningKey::from_pem(&pem, Some(b"wrong")),
            Err(KeyError::Decrypt(_))
        ));
        let k2 = SigningKey::from_pem(&pem, Some(b"correct horse")).unwrap();
        assert_eq!(k2.public_key(), k.public_key());
    }

    #[test]
    fn wrong_kinds_of_key_are_named() {
        let k = SigningKey::generate(Curve::P384);
        let pubpem = k.public_key().to_pem().unwrap();
        let e = SigningKey::from_pem(&pubpem, None).unwrap_err().to_string();
        assert!(e.contains("public half"), "{e}");
        let privpem = k.to_pkcs8_pem(None).unwrap();
        let e = PublicKey::from_pem(&privpem).unwrap_err().to_string();
        assert!(e.contains("PUBLIC KEY"), "{e}");
        assert!(matches!(
            PublicKey::from_pem("garbage"),
            Err(KeyError::Pem(_))
        ));
        // An Ed25519 public key (RFC 8410 example).
        let ed = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        assert!(matches!(PublicKey::from_pem(ed), Err(KeyError::NotEc(_))));
    }
}
