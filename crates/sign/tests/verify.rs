//! Verification end to end through the library: verdicts for good, tampered and crafted
//! bundles (payloads signed by a real key but saying odd things).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::SystemTime;

use sign::bundle::{pae, Bundle, Material, PAYLOAD_TYPE};
use sign::cert::Anchors;
use sign::manifest::{HashOptions, Method, Serialization, GIT_PATHS};
use sign::{
    Curve, Failure, FormatError, HashAlgorithm, SignOptions, SigningKey, Trust, Verdict,
    VerifyOptions,
};

fn model() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("sub")).unwrap();
    std::fs::write(d.path().join("w.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::write(d.path().join("sub/c.json"), b"{}").unwrap();
    d
}

fn ser(method: Method) -> Serialization {
    Serialization {
        method,
        hash: HashAlgorithm::Sha256,
        allow_symlinks: false,
        ignore_paths: GIT_PATHS.iter().map(|s| s.to_string()).collect(),
    }
}

fn sign_model(dir: &Path, key: &SigningKey, method: Method) -> String {
    let opts = SignOptions {
        serialization: ser(method),
        hashing: HashOptions::default(),
        chain: None,
    };
    sign::sign(dir, key, &opts, &|_| {}, &|_| {})
        .unwrap()
        .bundle_json
}

fn verdict(dir: &Path, bundle: &[u8], trust: &Trust) -> Verdict {
    sign::verify(
        dir,
        bundle,
        trust,
        &VerifyOptions::default(),
        &|_| {},
        &|_| {},
    )
    .unwrap()
}

/// A bundle over an arbitrary payload, correctly signed by `key`.
fn signed_payload(key: &SigningKey, payload: &[u8]) -> String {
    Bundle {
        material: Material::KeyHint(Some(key.public_key().hint().unwrap())),
        payload: payload.to_vec(),
        signature: key.sign(&pae(PAYLOAD_TYPE, payload)).unwrap(),
    }
    .to_json()
    .unwrap()
}

#[test]
fn sign_then_verify_every_curve_and_method() {
    let d = model();
    for curve in [Curve::P256, Curve::P384, Curve::P521] {
        for method in [Method::Files, Method::Shards(4096)] {
            let key = SigningKey::generate(curve);
            let b = sign_model(d.path(), &key, method);
            match verdict(d.path(), b.as_bytes(), &Trust::Key(key.public_key())) {
                Verdict::Verified(v) => assert!(v.signer.starts_with("key ")),
                Verdict::Failed(f) => panic!("{curve:?} {method:?}: {f}"),
            }
        }
    }
}

#[test]
fn tampering_is_named() {
    let d = model();
    let key = SigningKey::generate(Curve::P256);
    let b = sign_model(d.path(), &key, Method::Shards(1000));
    std::fs::write(d.path().join("w.bin"), vec![8u8; 100_000]).unwrap();
    std::fs::write(d.path().join("extra"), b"x").unwrap();
    std::fs::remove_file(d.path().join("sub/c.json")).unwrap();
    match verdict(d.path(), b.as_bytes(), &Trust::Key(key.public_key())) {
        Verdict::Failed(Failure::Mismatch(diff)) => {
            assert_eq!(diff.modified, ["w.bin"]);
            assert_eq!(diff.added, ["extra"]);
            assert_eq!(diff.removed, ["sub/c.json"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_key_and_edited_payload() {
    let d = model();
    let key = SigningKey::generate(Curve::P384);
    let b = sign_model(d.path(), &key, Method::Files);
    let other = SigningKey::generate(Curve::P384).public_key();
    assert!(matches!(
        verdict(d.path(), b.as_bytes(), &Trust::Key(other.clone())),
        Verdict::Failed(Failure::WrongKey { .. })
    ));
    // Without a hint the signature itself fails.
    let mut parsed: serde_json::Value = serde_json::from_str(&b).unwrap();
    parsed["verificationMaterial"]["publicKey"] = serde_json::json!({});
    let nohint = parsed.to_string();
    assert!(matches!(
        verdict(d.path(), nohint.as_bytes(), &Trust::Key(other)),
        Verdict::Failed(Failure::BadSignature(_))
    ));
    let parsed = Bundle::parse(b.as_bytes()).unwrap();
    let mut payload = parsed.payload.clone();
    let i = payload.iter().position(|&c| c == b'w').unwrap();
    payload[i] = b'v';
    let edited = Bundle { payload, ..parsed }.to_json().unwrap();
    assert!(matches!(
        verdict(d.path(), edited.as_bytes(), &Trust::Key(key.public_key())),
        Verdict::Failed(Failure::BadSignature(_))
    ));
}

#[test]
fn signed_but_odd_payloads_are_malformed_not_panics() {
    let d = model();
    let key = SigningKey::generate(Curve::P256);
    let good = Bundle::parse(sign_model(d.path(), &key, Method::Files).as_bytes()).unwrap();
    let text = String::from_utf8(good.payload).unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "\"hash_type\": \"sha256\"",
            "\"hash_type\": \"md5\"",
            "hash_type",
        ),
        ("\"method\": \"files\"", "\"method\": \"tensors\"", "method"),
        ("\"_type\"", "\"_typ\"", "_type"),
        (
            "model_signing/signature/v1.0",
            "model_signing/Digests/v0.1",
            "not supported",
        ),
        ("\"resources\"", "\"resourcez\"", "resources"),
    ];
    for (from, to, needle) in cases {
        assert!(text.contains(from), "{from}");
        let b = signed_payload(&key, text.replacen(from, to, 1).as_bytes());
        match verdict(d.path(), b.as_bytes(), &Trust::Key(key.public_key())) {
            Verdict::Failed(Failure::Malformed(e)) => {
                assert!(e.to_string().contains(needle), "{e}")
            }
            other => panic!("{from}: {other:?}"),
        }
    }
    for junk in [&b"not json"[..], b"{}", b"[]", b"\xff\xfe"] {
        let b = signed_payload(&key, junk);
        assert!(matches!(
            verdict(d.path(), b.as_bytes(), &Trust::Key(key.public_key())),
            Verdict::Failed(Failure::Malformed(FormatError::Statement(_)))
        ));
    }
}

#[test]
fn key_bundle_in_certificate_mode_is_refused() {
    let d = model();
    let key = SigningKey::generate(Curve::P256);
    let b = sign_model(d.path(), &key, Method::Files);
    let trust = Trust::Certificates {
        anchors: Anchors::default(),
        at: SystemTime::now(),
    };
    assert!(matches!(
        verdict(d.path(), b.as_bytes(), &trust),
        Verdict::Failed(Failure::NotCertificateSigned)
    ));
}
