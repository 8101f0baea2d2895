//! The issuer's keys: reading a JWKS file (RFC 7517) into public keys, each pinned to the
//! algorithms it may verify, and the one call into `jsonwebtoken` that checks a signature.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::{text_ok, MAX_JWKS_BYTES, MAX_JWKS_KEYS};

/// The signing algorithms this gateway can verify. No HMAC, no `none`: by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Alg {
    Es256,
    Es384,
    EdDsa,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
}

const RSA_ALGS: [Alg; 6] = [
    Alg::Rs256,
    Alg::Rs384,
    Alg::Rs512,
    Alg::Ps256,
    Alg::Ps384,
    Alg::Ps512,
];

impl Alg {
    pub(super) const ALL: [Alg; 9] = [
        Alg::Es256,
        Alg::Es384,
        Alg::EdDsa,
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
        }
    }

    /// Exact, case-sensitive (RFC 7518 names).
    pub(super) fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == s)
    }

    fn library(self) -> Algorithm {
        match self {
            Alg::Es256 => Algorithm::ES256,
            Alg::Es384 => Algorithm::ES384,
            Alg::EdDsa => Algorithm::EdDSA,
            Alg::Rs256 => Algorithm::RS256,
            Alg::Rs384 => Algorithm::RS384,
            Alg::Rs512 => Algorithm::RS512,
            Alg::Ps256 => Algorithm::PS256,
            Alg::Ps384 => Algorithm::PS384,
            Alg::Ps512 => Algorithm::PS512,
        }
    }
}

pub(super) fn names(algs: &[Alg]) -> String {
    algs.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

/// A public key's bytes, as ring takes them (leading zeros of RSA numbers stripped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Material {
    /// Uncompressed point, 0x04 || x || y.
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl Material {
    /// The algorithms a key of this kind can verify.
    pub(super) fn fits(&self) -> &'static [Alg] {
        match self {
            Material::P256(_) => &[Alg::Es256],
            Material::P384(_) => &[Alg::Es384],
            Material::Ed25519(_) => &[Alg::EdDsa],
            Material::Rsa { .. } => &RSA_ALGS,
        }
    }

    pub(super) fn decoding_key(&self) -> DecodingKey {
        match self {
            // The library takes the raw point / raw Ed25519 key through its `_der`
            // constructors (the bytes ring's `UnparsedPublicKey` expects).
            Material::P256(point) | Material::P384(point) => DecodingKey::from_ec_der(point),
            Material::Ed25519(x) => DecodingKey::from_ed_der(x),
            Material::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
        }
    }
}

pub(super) struct Key {
    pub(super) material: Material,
    /// The pinned algorithms this key may verify: a subset of `material.fits()`.
    pub(super) algs: Vec<Alg>,
    pub(super) decoding: DecodingKey,
}

pub(super) struct KeySet {
    /// SHA-256 of the file these keys came from.
    pub(super) digest: [u8; 32],
    pub(super) keys: HashMap<String, Key>,
}

pub(super) fn same_keys(a: &HashMap<String, Key>, b: &HashMap<String, Key>) -> bool {
    a.len() == b.len()
        && a.iter().all(|(kid, k)| {
            b.get(kid)
                .is_some_and(|o| o.material == k.material && o.algs == k.algs)
        })
}

/// `jsonwebtoken::crypto::verify` panics when handed an algorithm of another family than
/// the key's; this refuses that case before calling it (it cannot arise: `key.algs` is a
/// subset of what the material fits, and there is no HMAC `Alg`).
pub(super) fn verify_signature(key: &Key, alg: Alg, input: &[u8], signature_b64: &str) -> bool {
    if !key.material.fits().contains(&alg) {
        return false;
    }
    matches!(
        jsonwebtoken::crypto::verify(signature_b64, input, &key.decoding, alg.library()),
        Ok(true)
    )
}

pub(super) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

pub(super) fn read_jwks(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = File::open(path)
        .with_context(|| format!("cannot open the JWKS file {}", path.display()))?;
    // Not a FIFO or device: a read must end.
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        bail!("JWKS file {} is not a regular file", path.display());
    }
    let mut bytes = Vec::new();
    file.take(MAX_JWKS_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the JWKS file {}", path.display()))?;
    if bytes.len() as u64 > MAX_JWKS_BYTES {
        bail!(
            "JWKS file {} is larger than 256 KiB; it should hold only the issuer's public signing keys",
            path.display()
        );
    }
    Ok(bytes)
}

pub(super) fn load(path: &Path, algs: &[Alg]) -> anyhow::Result<KeySet> {
    let bytes = read_jwks(path)?;
    let keys = parse_jwks(&bytes, algs).with_context(|| format!("JWKS file {}", path.display()))?;
    Ok(KeySet {
        digest: sha256(&bytes),
        keys,
    })
}

/// JWK members that hold private or secret key material (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

pub(super) fn parse_jwks(bytes: &[u8], allowed: &[Alg]) -> anyhow::Result<HashMap<String, Key>> {
    let doc: Value = serde_json::from_slice(bytes).context("it is not valid JSON")?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("it must be a JWKS: a JSON object with a \"keys\" array"))?;
    if keys.is_empty() {
        bail!("its \"keys\" array is empty; put the issuer's public signing keys in it");
    }
    if keys.len() > MAX_JWKS_KEYS {
        bail!("it holds {} keys, more than {MAX_JWKS_KEYS}; keep only the issuer's current signing keys", keys.len());
    }
    let mut objects = Vec::with_capacity(keys.len());
    // Private material anywhere refuses the whole file, before anything else is said of it.
    for (i, k) in keys.iter().enumerate() {
        let obj = k
            .as_object()
            .ok_or_else(|| anyhow!("key #{} is not a JSON object", i + 1))?;
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            bail!(
                "key #{} holds private or secret key material (\"{m}\"): the gateway needs only the issuer's public keys. Publish the public JWKS (no \"d\", \"p\", \"q\", \"dp\", \"dq\", \"qi\", \"oth\" or \"k\"), and treat this key as exposed",
                i + 1
            );
        }
        objects.push(obj);
    }
    let mut out = HashMap::new();
    for (i, obj) in objects.into_iter().enumerate() {
        let kid = obj.get("kid").and_then(Value::as_str).ok_or_else(|| {
            anyhow!(
                "key #{} has no \"kid\": every key needs one, as tokens name their key by it",
                i + 1
            )
        })?;
        if !text_ok(kid) {
            bail!(
                "key #{}: its \"kid\" must be 1-256 characters without control characters",
                i + 1
            );
        }
        let key = parse_key(obj, allowed).with_context(|| format!("key {kid:?}"))?;
        if out.insert(kid.to_string(), key).is_some() {
            bail!("two keys have the kid {kid:?}; key ids must be unique");
        }
    }
    Ok(out)
}

fn component(obj: &Map<String, Value>, name: &str) -> anyhow::Result<Vec<u8>> {
    let s = obj
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("it has no \"{name}\""))?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| anyhow!("its \"{name}\" is not unpadded base64url"))
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

fn parse_key(obj: &Map<String, Value>, allowed: &[Alg]) -> anyhow::Result<Key> {
    if obj.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        bail!("its \"use\" is not \"sig\"; only signing keys belong in this file");
    }
    if let Some(ops) = obj.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !verify {
            bail!("its \"key_ops\" do not include \"verify\"");
        }
    }
    let kty = obj
        .get("kty")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("it has no key type (\"kty\")"))?;
    let crv = obj.get("crv").and_then(Value::as_str);
    let material = match (kty, crv) {
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let (x, y) = (component(obj, "x")?, component(obj, "y")?);
            let len = if crv == "P-256" { 32 } else { 48 };
            if x.len() != len || y.len() != len {
                bail!("its \"x\" and \"y\" must be {len} bytes each for {crv}");
            }
            let point = [&[0x04u8][..], &x, &y].concat();
            if crv == "P-256" {
                Material::P256(point)
            } else {
                Material::P384(point)
            }
        }
        ("OKP", Some("Ed25519")) => {
            let x = component(obj, "x")?;
            if x.len() != 32 {
                bail!("its \"x\" must be 32 bytes for Ed25519");
            }
            Material::Ed25519(x)
        }
        ("RSA", _) => {
            let (n, e) = (
                strip_zeros(&component(obj, "n")?),
                strip_zeros(&component(obj, "e")?),
            );
            let bits = n
                .first()
                .map_or(0, |&b| n.len() * 8 - b.leading_zeros() as usize);
            if !(2048..=8192).contains(&bits) {
                bail!("its modulus has {bits} bits; RSA keys must have 2048 to 8192");
            }
            let e_ok = e.len() <= 4 && e.last().is_some_and(|b| b & 1 == 1) && e != [1];
            if !e_ok {
                bail!("its public exponent must be odd, at least 3 and below 2^32 (usually 65537, \"AQAB\")");
            }
            Material::Rsa { n, e }
        }
        ("EC" | "OKP", _) => bail!("its curve is not supported; use P-256, P-384 or Ed25519"),
        ("oct", _) => {
            bail!("symmetric keys (kty \"oct\") are refused; use the issuer's public keys")
        }
        _ => bail!("its key type is not supported; use EC, RSA or OKP"),
    };
    let mut algs = material.fits().to_vec();
    if let Some(a) = obj.get("alg") {
        let a = a
            .as_str()
            .and_then(Alg::parse)
            .filter(|a| algs.contains(a))
            .ok_or_else(|| {
                anyhow!("its \"alg\" is not a signing algorithm for a key of type {kty}")
            })?;
        algs = vec![a];
    }
    algs.retain(|a| allowed.contains(a));
    if algs.is_empty() {
        bail!(
            "it fits none of the allowed algorithms ({}); allow its algorithm or remove the key",
            names(allowed)
        );
    }
    Ok(Key {
        decoding: material.decoding_key(),
        material,
        algs,
    })
}
