//! The Sigstore bundle v0.3 (JSON) holding a DSSE envelope, as `model_signing` writes it
//! for key and certificate signing (no transparency log).
//!
//! ```json
//! { "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
//!   "verificationMaterial": { "publicKey": { "hint": "<sha256 of the SPKI PEM, hex>" },
//!                             "tlogEntries": [] },
//!   "dsseEnvelope": { "payload": "<base64 statement>",
//!                     "payloadType": "application/vnd.in-toto+json",
//!                     "signatures": [{ "sig": "<base64 DER ECDSA>", "keyid": "" }] } }
//! ```
//!
//! In certificate mode `verificationMaterial` holds `x509CertificateChain.certificates`
//! (leaf first, each `{ "rawBytes": "<base64 DER>" }`) instead of `publicKey`.
//! DSSE: <https://github.com/secure-systems-lab/dsse/blob/v1.0.0/protocol.md>.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Largest bundle file accepted.
pub const MAX_BUNDLE_BYTES: usize = 256 << 20;
/// Most certificates in a chain.
pub const MAX_CHAIN: usize = 16;

/// Standard alphabet; padding optional on input (protobuf's JSON mapping accepts both).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const B64_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a bundle or its payload cannot be read. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    #[error("{0}")]
    Limit(String),
    #[error("not a Sigstore bundle: {0}")]
    Json(String),
    #[error("`mediaType` is `{0}`, expected `{BUNDLE_MEDIA_TYPE}`")]
    MediaType(String),
    #[error("`dsseEnvelope.payloadType` is `{0}`, expected `{PAYLOAD_TYPE}`")]
    PayloadType(String),
    #[error("`{field}` is not valid base64 ({reason})")]
    Base64 { field: String, reason: String },
    #[error("`dsseEnvelope.signatures` holds {0} signatures; exactly one is expected")]
    SignatureCount(usize),
    #[error(
        "`verificationMaterial` has neither `publicKey` nor `x509CertificateChain`/`certificate`"
    )]
    NoMaterial,
    #[error(
        "`verificationMaterial` has a certificate chain of {0} certificates (limit {MAX_CHAIN})"
    )]
    ChainLength(usize),
    #[error("the signature is not a DER-encoded ECDSA signature for this key's curve")]
    SignatureEncoding,
    #[error("statement: {0}")]
    Statement(String),
    #[error("the payload is inconsistent: the subject digest is {subject} but the resources hash to {computed}")]
    Inconsistent { subject: String, computed: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBundle {
    pub media_type: String,
    pub verification_material: RawMaterial,
    pub dsse_envelope: RawEnvelope,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMaterial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<RawPublicKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<RawChain>,
    /// A single certificate (bundle v0.3 with Fulcio); accepted as a chain of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<RawCert>,
    #[serde(default)]
    pub tlog_entries: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawPublicKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawChain {
    pub certificates: Vec<RawCert>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawCert {
    pub raw_bytes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawEnvelope {
    pub payload: String,
    pub payload_type: String,
    pub signatures: Vec<RawSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawSignature {
    pub sig: String,
    #[serde(default)]
    pub keyid: String,
}

/// Who the bundle says signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// Key mode: the hex SHA-256 of the signer's SPKI PEM, if recorded.
    KeyHint(Option<String>),
    /// Certificate mode: DER certificates, leaf first.
    Chain(Vec<Vec<u8>>),
}

/// A bundle whose structure was checked; its signature was not.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub material: Material,
    /// The statement bytes (DSSE payload).
    pub payload: Vec<u8>,
    /// The DER ECDSA signature over PAE(payload).
    pub signature: Vec<u8>,
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, FormatError> {
    B64.decode(s)
        .or_else(|e| B64_URL.decode(s).map_err(|_| e))
        .map_err(|e| FormatError::Base64 {
            field: field.to_string(),
            reason: e.to_string(),
        })
}

impl Bundle {
    /// Parses a bundle file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Bundle, FormatError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(FormatError::Limit(format!(
                "the bundle is {} bytes, over the limit of {MAX_BUNDLE_BYTES}",
                bytes.len()
            )));
        }
        let raw: RawBundle =
            serde_json::from_slice(bytes).map_err(|e| FormatError::Json(e.to_string()))?;
        if raw.media_type != BUNDLE_MEDIA_TYPE {
            return Err(FormatError::MediaType(raw.media_type));
        }
        let env = raw.dsse_envelope;
        if env.payload_type != PAYLOAD_TYPE {
            return Err(FormatError::PayloadType(env.payload_type));
        }
        let [sig] = env.signatures.as_slice() else {
            return Err(FormatError::SignatureCount(env.signatures.len()));
        };
        let signature = b64("dsseEnvelope.signatures[0].sig", &sig.sig)?;
        let payload = b64("dsseEnvelope.payload", &env.payload)?;
        let vm = raw.verification_material;
        let certs = match (vm.x509_certificate_chain, vm.certificate) {
            (Some(chain), _) => Some(chain.certificates),
            (None, Some(cert)) => Some(vec![cert]),
            (None, None) => None,
        };
        let material = match (certs, vm.public_key) {
            (Some(certs), _) => {
                if certs.is_empty() {
                    return Err(FormatError::NoMaterial);
                }
                if certs.len() > MAX_CHAIN {
                    return Err(FormatError::ChainLength(certs.len()));
                }
                let ders = certs
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        b64(
                            &format!("verificationMaterial.x509CertificateChain.certificates[{i}].rawBytes"),
                            &c.raw_bytes,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Material::Chain(ders)
            }
            (None, Some(pk)) => Material::KeyHint(pk.hint.filter(|h| !h.is_empty())),
            (None, None) => return Err(FormatError::NoMaterial),
        };
        Ok(Bundle {
            material,
            payload,
            signature,
        })
    }

    /// Serialises the bundle as `model_signing` does (camelCase, empty `tlogEntries`).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut vm = RawMaterial::default();
        match &self.material {
            Material::KeyHint(hint) => {
                vm.public_key = Some(RawPublicKey { hint: hint.clone() });
            }
            Material::Chain(ders) => {
                vm.x509_certificate_chain = Some(RawChain {
                    certificates: ders
                        .iter()
                        .map(|d| RawCert {
                            raw_bytes: B64.encode(d),
                        })
                        .collect(),
                });
            }
        }
        let raw = RawBundle {
            media_type: BUNDLE_MEDIA_TYPE.to_string(),
            verification_material: vm,
            dsse_envelope: RawEnvelope {
                payload: B64.encode(&self.payload),
                payload_type: PAYLOAD_TYPE.to_string(),
                signatures: vec![RawSignature {
                    sig: B64.encode(&self.signature),
                    keyid: String::new(),
                }],
            },
        };
        serde_json::to_string_pretty(&raw)
    }
}

/// DSSE v1 pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Bundle and payload parsing for `cargo fuzz` (`fuzz/fuzz_targets/sign_bundle.rs`):
/// must return, never panic.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    if let Ok(b) = Bundle::parse(data) {
        let _ = crate::statement::parse(&b.payload);
        let _ = b.to_json();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        Bundle {
            material: Material::KeyHint(Some("ab".into())),
            payload: b"{}".to_vec(),
            signature: vec![0x30, 0x00],
        }
        .to_json()
        .unwrap()
    }

    #[test]
    fn pae_matches_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn round_trip_and_bad_inputs() {
        let good = sample();
        let b = Bundle::parse(good.as_bytes()).unwrap();
        assert_eq!(b.payload, b"{}");
        assert_eq!(b.material, Material::KeyHint(Some("ab".into())));
        let cases: &[(&str, &str, &str)] = &[
            ("\"mediaType\"", "\"mediaTyp\"", "missing field `mediaType`"),
            ("bundle.v0.3", "bundle.v0.1", "mediaType"),
            ("vnd.in-toto+json", "json", "payloadType"),
            ("\"e30=\"", "\"e3@=\"", "dsseEnvelope.payload"),
            ("\"publicKey\"", "\"publicKez\"", "neither"),
        ];
        for (from, to, needle) in cases {
            let bad = good.replacen(from, to, 1);
            let e = Bundle::parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(needle), "{from}: {e}");
        }
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let sigs = v["dsseEnvelope"]["signatures"].as_array().unwrap().clone();
        v["dsseEnvelope"]["signatures"] = serde_json::json!([sigs[0], sigs[0]]);
        let e = Bundle::parse(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e, FormatError::SignatureCount(2));
        v["dsseEnvelope"]["signatures"] = serde_json::json!([]);
        let e = Bundle::parse(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e, FormatError::SignatureCount(0));
        assert!(Bundle::parse(b"not json").is_err());
        assert!(Bundle::parse(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[").is_err());
    }

    #[test]
    fn mutations_never_panic() {
        let good = sample().into_bytes();
        let mut x = 0x2545F4914F6CDD1Du64;
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % b.len();
                b[i] = (x >> 32) as u8;
            }
            fuzz_parse(&b);
        }
    }
}
