//! Tests of JWT verification: keys made here with ring (RSA: a test-only fixture), JWKS
//! files written to a temporary directory, tokens signed by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::jwks::{verify_signature, Alg, Key, Material};
use super::*;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::json;
use std::path::Path;

const NOW: u64 = 1_750_000_000;
const ISS: &str = "https://idp.example.test/realms/ml";
const AUD: &str = "warden-inference";
/// A 2048-bit RSA key made once with `openssl genpkey` for these tests only.
const RSA_PEM: &str = include_str!("../../tests/fixtures/jwt-test-rsa2048.pem");

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

enum TestKey {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl TestKey {
    fn ec(alg: &'static signature::EcdsaSigningAlgorithm) -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        TestKey::Ec(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap())
    }
    fn p256() -> TestKey {
        TestKey::ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
    }
    fn p384() -> TestKey {
        TestKey::ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)
    }
    fn ed() -> TestKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        TestKey::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }
    fn rsa() -> TestKey {
        let body: String = RSA_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        TestKey::Rsa(RsaKeyPair::from_pkcs8(&der).unwrap())
    }

    /// The public JWK, with `kid`.
    fn jwk(&self, kid: &str) -> Value {
        match self {
            TestKey::Ec(k) => {
                let p = k.public_key().as_ref();
                let n = (p.len() - 1) / 2;
                let crv = if n == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "kid": kid, "x": b64(&p[1..=n]), "y": b64(&p[n + 1..])})
            }
            TestKey::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(k.public_key().as_ref())})
            }
            TestKey::Rsa(k) => {
                let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": kid, "n": b64(&c.n), "e": b64(&c.e), "use": "sig"})
            }
        }
    }

    fn sign(&self, alg: &str, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            TestKey::Ec(k) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
            TestKey::Ed(k) => k.sign(msg).as_ref().to_vec(),
            TestKey::Rsa(k) => {
                let enc: &dyn signature::RsaEncoding = match alg {
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(enc, &rng, msg, &mut sig).unwrap();
                sig
            }
        }
    }
}

/// `header.claims.signature`, the header and claims as given, signed with `key`.
fn token_with(header: &Value, claims: &Value, key: &TestKey) -> String {
    let alg = header["alg"].as_str().unwrap_or("");
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key.sign(alg, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

fn token(alg: &str, kid: &str, claims: &Value, key: &TestKey) -> String {
    token_with(&json!({"alg": alg, "kid": kid, "typ": "JWT"}), claims, key)
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "exp": NOW + 600, "iat": NOW - 10,
        "nbf": NOW - 10, "jti": "tok-1", "groups": ["ml-team", "readers"],
        "warden_models": "iris* llama-3",
    })
}

/// `claims()` with `changes` applied (a null value removes the claim).
fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

struct Fx {
    _dir: tempfile::TempDir,
    path: PathBuf,
    p256: TestKey,
    p384: TestKey,
    ed: TestKey,
    rsa: TestKey,
    v: JwtVerifier,
}

fn settings(path: &Path) -> JwtSettings {
    let mut s = JwtSettings::new(
        ISS,
        vec![AUD.into(), "other-audience".into()],
        ["ES256", "ES384", "EdDSA", "RS256", "PS256"]
            .map(String::from)
            .to_vec(),
        path,
    );
    s.models_claim = Some("warden_models".into());
    s
}

fn write_jwks(path: &Path, keys: &[Value]) {
    std::fs::write(path, json!({ "keys": keys }).to_string()).unwrap();
}

fn fx_with(edit: impl FnOnce(&mut JwtSettings)) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let (p256, p384, ed, rsa) = (
        TestKey::p256(),
        TestKey::p384(),
        TestKey::ed(),
        TestKey::rsa(),
    );
    let mut ps_only = rsa.jwk("rsa-ps");
    ps_only["alg"] = json!("PS256");
    write_jwks(
        &path,
        &[
            p256.jwk("ec1"),
            p384.jwk("ec384"),
            ed.jwk("ed1"),
            rsa.jwk("rsa1"),
            ps_only,
        ],
    );
    let mut s = settings(&path);
    edit(&mut s);
    let v = JwtVerifier::new(s).unwrap();
    Fx {
        _dir: dir,
        path,
        p256,
        p384,
        ed,
        rsa,
        v,
    }
}

fn fx() -> Fx {
    fx_with(|_| {})
}

/// The refusal's code; checks it is a 401 that does not echo the token.
fn refused(v: &JwtVerifier, token: &str) -> &'static str {
    let e = v
        .verify(token, now())
        .expect_err("the token must be refused");
    assert_eq!(e.status, hyper::StatusCode::UNAUTHORIZED);
    for part in token.split('.').filter(|p| p.len() >= 8) {
        assert!(!e.message.contains(part), "{} echoes the token", e.code);
    }
    e.code
}

#[test]
fn a_valid_token_gives_the_identity() {
    let f = fx();
    let id =
        f.v.verify(&token("ES256", "ec1", &claims(), &f.p256), now())
            .unwrap();
    assert_eq!(
        id,
        JwtIdentity {
            principal: "alice".into(),
            issuer: ISS.into(),
            subject: "alice".into(),
            token_id: Some("tok-1".into()),
            models: vec!["iris*".into(), "llama-3".into()],
            groups: vec!["ml-team".into(), "readers".into()],
            expires: UNIX_EPOCH + Duration::from_secs(NOW + 600),
        }
    );
    assert!(looks_like_jwt(&token("ES256", "ec1", &claims(), &f.p256)));
}

#[test]
fn every_pinned_algorithm_verifies_with_its_key() {
    let f = fx();
    for (alg, kid, key) in [
        ("ES384", "ec384", &f.p384),
        ("EdDSA", "ed1", &f.ed),
        ("RS256", "rsa1", &f.rsa),
        ("PS256", "rsa1", &f.rsa),
        ("PS256", "rsa-ps", &f.rsa),
    ] {
        let id = f.v.verify(&token(alg, kid, &claims(), key), now());
        assert_eq!(
            id.map(|i| i.principal),
            Ok("alice".to_string()),
            "{alg} with {kid}"
        );
    }
}

#[test]
fn list_claims_take_strings_or_arrays_and_absent_means_none() {
    let f = fx();
    let v = |c: Value| f.v.verify(&token("ES256", "ec1", &c, &f.p256), now());
    let id = v(claims_with(
        json!({"warden_models": ["a*", "b"], "groups": "x y"}),
    ))
    .unwrap();
    assert_eq!(
        (id.models, id.groups),
        (vec!["a*".into(), "b".into()], vec!["x".into(), "y".into()])
    );
    let id = v(claims_with(
        json!({"warden_models": null, "groups": null, "jti": null}),
    ))
    .unwrap();
    assert!(id.models.is_empty() && id.groups.is_empty() && id.token_id.is_none());
    for bad in [
        json!({"warden_models": 7}),
        json!({"warden_models": ["ok", 1]}),
        json!({"warden_models": "iris bad$pattern"}),
        json!({"groups": {"a": 1}}),
        json!({"groups": ["line\nbreak"]}),
        json!({"groups": vec!["g"; MAX_LIST_ITEMS + 1]}),
        json!({"jti": 5}),
    ] {
        let e = v(claims_with(bad.clone())).unwrap_err();
        assert_eq!(e.code, "invalid_token_claims", "{bad}");
    }
    // Without a models claim configured, a token's models are never read.
    let f = fx_with(|s| s.models_claim = None);
    let id =
        f.v.verify(&token("ES256", "ec1", &claims(), &f.p256), now())
            .unwrap();
    assert!(id.models.is_empty());
}

#[test]
fn the_principal_must_be_a_principal_name() {
    let f = fx_with(|s| s.principal_claim = "preferred_username".into());
    let v = |c: Value| f.v.verify(&token("ES256", "ec1", &c, &f.p256), now());
    let id = v(claims_with(
        json!({"preferred_username": "bob@corp.example"}),
    ))
    .unwrap();
    assert_eq!(
        (id.principal.as_str(), id.subject.as_str()),
        ("bob@corp.example", "alice")
    );
    for bad in [
        json!("bob smith"),
        json!("-bob"),
        json!(""),
        json!(42),
        json!("b".repeat(65)),
        Value::Null,
    ] {
        let e = v(claims_with(json!({"preferred_username": bad}))).unwrap_err();
        assert_eq!(e.code, "invalid_token_claims", "{bad}");
    }
    let e = v(claims_with(
        json!({"preferred_username": "bob", "sub": null}),
    ))
    .unwrap_err();
    assert_eq!(e.code, "invalid_token_claims");
}

#[test]
fn unsigned_and_hmac_tokens_are_refused() {
    let f = fx();
    let input = |alg: &str, kid: &str| {
        format!(
            "{}.{}",
            b64(json!({"alg": alg, "kid": kid}).to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        )
    };
    for alg in ["none", "None", "NONE", "nOnE"] {
        let t = format!("{}.", input(alg, "ec1"));
        assert!(looks_like_jwt(&t));
        assert_eq!(refused(&f.v, &t), "token_algorithm_not_allowed", "{alg}");
        assert_eq!(
            refused(&f.v, &format!("{t}AAAA")),
            "token_algorithm_not_allowed"
        );
    }
    // Algorithm confusion: HMAC keyed with what is public (the JWK, the RSA modulus,
    // the EC point) must not pass for the key's owner.
    let rsa_jwk = f.rsa.jwk("rsa1");
    let secrets: Vec<Vec<u8>> = vec![
        rsa_jwk.to_string().into_bytes(),
        URL_SAFE_NO_PAD
            .decode(rsa_jwk["n"].as_str().unwrap())
            .unwrap(),
        match &f.p256 {
            TestKey::Ec(k) => k.public_key().as_ref().to_vec(),
            _ => unreachable!(),
        },
    ];
    for (alg, hmac_alg) in [
        ("HS256", ring::hmac::HMAC_SHA256),
        ("HS384", ring::hmac::HMAC_SHA384),
        ("HS512", ring::hmac::HMAC_SHA512),
    ] {
        for kid in ["rsa1", "ec1"] {
            for secret in &secrets {
                let msg = input(alg, kid);
                let tag = ring::hmac::sign(&ring::hmac::Key::new(hmac_alg, secret), msg.as_bytes());
                let t = format!("{msg}.{}", b64(tag.as_ref()));
                assert_eq!(
                    refused(&f.v, &t),
                    "token_algorithm_not_allowed",
                    "{alg} {kid}"
                );
            }
        }
    }
}

#[test]
fn the_algorithm_must_fit_the_key() {
    let f = fx();
    for (alg, kid, key) in [
        ("ES256", "ed1", &f.ed),     // EdDSA key
        ("ES384", "ec1", &f.p384),   // P-256 key named, P-384 signature
        ("ES256", "ec384", &f.p256), // P-384 key named
        ("EdDSA", "ec1", &f.ed),
        ("RS256", "ec1", &f.rsa),
        ("ES256", "rsa1", &f.p256),
        ("RS256", "rsa-ps", &f.rsa), // the key's own alg is PS256
        ("RS512", "rsa1", &f.rsa),   // fits the key but is not pinned
    ] {
        assert_eq!(
            refused(&f.v, &token(alg, kid, &claims(), key)),
            "token_algorithm_not_allowed",
            "{alg} {kid}"
        );
    }
}

#[test]
fn the_key_comes_only_from_the_jwks_by_kid() {
    let f = fx();
    assert_eq!(
        refused(&f.v, &token("ES256", "nope", &claims(), &f.p256)),
        "unknown_token_key"
    );
    for header in [
        json!({"alg": "ES256"}),
        json!({"alg": "ES256", "kid": 1}),
        json!({"alg": "ES256", "kid": null}),
    ] {
        assert_eq!(
            refused(&f.v, &token_with(&header, &claims(), &f.p256)),
            "malformed_token",
            "{header}"
        );
    }
    // An attacker's key carried in the token (jwk), or pointed to (jku, x5u), is not used.
    let evil = TestKey::p256();
    let embedded = json!({
        "alg": "ES256", "kid": "ec1", "jwk": evil.jwk("ec1"),
        "jku": "https://evil.example.test/jwks", "x5u": "https://evil.example.test/cert",
    });
    assert_eq!(
        refused(&f.v, &token_with(&embedded, &claims(), &evil)),
        "invalid_token_signature"
    );
    let mut other_kid = embedded.clone();
    other_kid["kid"] = json!("evil");
    assert_eq!(
        refused(&f.v, &token_with(&other_kid, &claims(), &evil)),
        "unknown_token_key"
    );
    // Another trusted key's signature under ec1's kid does not verify either.
    let impostor = TestKey::p256();
    assert_eq!(
        refused(&f.v, &token("ES256", "ec1", &claims(), &impostor)),
        "invalid_token_signature"
    );
}

#[test]
fn tampered_claims_or_signatures_are_refused() {
    let f = fx();
    let t = token("ES256", "ec1", &claims(), &f.p256);
    let parts: Vec<&str> = t.split('.').collect();
    let forged = b64(claims_with(json!({"sub": "root"})).to_string().as_bytes());
    assert_eq!(
        refused(&f.v, &format!("{}.{forged}.{}", parts[0], parts[2])),
        "invalid_token_signature"
    );
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 0x01;
    assert_eq!(
        refused(&f.v, &format!("{}.{}.{}", parts[0], parts[1], b64(&sig))),
        "invalid_token_signature"
    );
    sig.truncate(40);
    assert_eq!(
        refused(&f.v, &format!("{}.{}.{}", parts[0], parts[1], b64(&sig))),
        "invalid_token_signature"
    );
    assert_eq!(
        refused(&f.v, &format!("{}.{}.", parts[0], parts[1])),
        "invalid_token_signature"
    );
    // A valid signature from one token does not carry over to another.
    let other = token("ES256", "ec1", &claims_with(json!({"sub": "bob"})), &f.p256);
    let other_sig = other.rsplit('.').next().unwrap();
    assert_eq!(
        refused(&f.v, &format!("{}.{}.{other_sig}", parts[0], parts[1])),
        "invalid_token_signature"
    );
}

#[test]
fn expiry_and_validity_honour_the_leeway() {
    let f = fx();
    let v = |c: Value| {
        f.v.verify(&token("ES256", "ec1", &c, &f.p256), now())
            .map(|_| ())
            .map_err(|e| e.code)
    };
    // Leeway 30 s: expired 29 s ago passes, 30 s or 31 s ago does not.
    assert_eq!(v(claims_with(json!({"exp": NOW - 29}))), Ok(()));
    assert_eq!(
        v(claims_with(json!({"exp": NOW - 30}))),
        Err("expired_token")
    );
    assert_eq!(
        v(claims_with(json!({"exp": NOW - 31}))),
        Err("expired_token")
    );
    assert_eq!(v(claims_with(json!({"exp": (NOW as f64) - 29.5}))), Ok(()));
    assert_eq!(v(claims_with(json!({"nbf": NOW + 30}))), Ok(()));
    assert_eq!(
        v(claims_with(json!({"nbf": NOW + 31}))),
        Err("token_not_yet_valid")
    );
    assert_eq!(v(claims_with(json!({"iat": NOW + 30}))), Ok(()));
    assert_eq!(
        v(claims_with(json!({"iat": NOW + 31}))),
        Err("token_not_yet_valid")
    );
    for bad in [
        json!({"exp": null}),
        json!({"exp": "tomorrow"}),
        json!({"exp": -5}),
        json!({"exp": 1e300}),
        json!({"nbf": "now"}),
        json!({"iat": [1]}),
    ] {
        assert_eq!(
            v(claims_with(bad.clone())),
            Err("invalid_token_claims"),
            "{bad}"
        );
    }
    let f = fx_with(|s| s.leeway = Duration::ZERO);
    let v = |c: Value| {
        f.v.verify(&token("ES256", "ec1", &c, &f.p256), now())
            .map(|_| ())
            .map_err(|e| e.code)
    };
    assert_eq!(v(claims_with(json!({"exp": NOW + 1}))), Ok(()));
    assert_eq!(v(claims_with(json!({"exp": NOW}))), Err("expired_token"));
}

#[test]
fn lifetime_is_bounded_when_configured() {
    let f = fx_with(|s| s.max_lifetime = Some(Duration::from_secs(3600)));
    let v = |c: Value| {
        f.v.verify(&token("ES256", "ec1", &c, &f.p256), now())
            .map(|_| ())
            .map_err(|e| e.code)
    };
    assert_eq!(
        v(claims_with(json!({"iat": NOW - 100, "exp": NOW + 3500}))),
        Ok(())
    );
    assert_eq!(
        v(claims_with(json!({"iat": NOW - 100, "exp": NOW + 3501}))),
        Err("token_lifetime_too_long")
    );
    assert_eq!(
        v(claims_with(json!({"iat": null}))),
        Err("invalid_token_claims")
    );
}

#[test]
fn issuer_and_audience_must_be_ours() {
    let f = fx();
    let v = |c: Value| {
        f.v.verify(&token("ES256", "ec1", &c, &f.p256), now())
            .map(|_| ())
            .map_err(|e| e.code)
    };
    for iss in [
        json!(null),
        json!(format!("{ISS}/")),
        json!("https://idp.example.test"),
        json!([ISS]),
        json!(ISS.to_uppercase()),
    ] {
        assert_eq!(
            v(claims_with(json!({ "iss": iss }))),
            Err("wrong_token_issuer"),
            "{iss}"
        );
    }
    assert_eq!(v(claims_with(json!({"aud": "other-audience"}))), Ok(()));
    assert_eq!(v(claims_with(json!({"aud": ["account", AUD]}))), Ok(()));
    for aud in [
        json!(null),
        json!("account"),
        json!(["account"]),
        json!([]),
        json!(["account", AUD, 3]),
        json!(5),
    ] {
        assert_eq!(
            v(claims_with(json!({ "aud": aud }))),
            Err("wrong_token_audience"),
            "{aud}"
        );
    }
}

#[test]
fn malformed_and_oversized_tokens_are_refused() {
    let f = fx();
    let good = token("ES256", "ec1", &claims(), &f.p256);
    let (h, rest) = good.split_once('.').unwrap();
    let obj = |v: &Value| b64(v.to_string().as_bytes());
    for bad in [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{good}.x"),
        format!(".{rest}"),
        good.replacen('.', "..", 1),
        format!("{h}+.{rest}"),
        format!("{h}=.{rest}"),
        format!("{}.{rest}", b64(b"not json")),
        format!("{}.{rest}", obj(&json!(["alg", "ES256"]))),
        format!("{}.{rest}", obj(&json!({"kid": "ec1"}))),
        format!(
            "{}.{rest}",
            obj(&json!({"alg": "ES256", "kid": "ec1", "crit": ["b64"], "b64": false}))
        ),
    ] {
        assert_eq!(refused(&f.v, &bad), "malformed_token", "{bad}");
    }
    let big = claims_with(json!({"pad": "x".repeat(MAX_TOKEN_BYTES)}));
    let t = token("ES256", "ec1", &big, &f.p256);
    assert_eq!(refused(&f.v, &t), "token_too_large");
    // Claims that are not an object, or too deep, are refused after the signature.
    let deep = claims_with(
        json!({"deep": serde_json::from_str::<Value>(&format!("{}{}", "[".repeat(20), "]".repeat(20))).unwrap()}),
    );
    assert_eq!(
        refused(&f.v, &token("ES256", "ec1", &deep, &f.p256)),
        "invalid_token_claims"
    );
    assert_eq!(
        refused(&f.v, &token("ES256", "ec1", &json!([1, 2]), &f.p256)),
        "invalid_token_claims"
    );
}

#[test]
fn api_keys_never_look_like_jwts() {
    let f = fx();
    let t = token("EdDSA", "ed1", &claims(), &f.ed);
    assert!(looks_like_jwt(&t));
    for s in [
        "wdn_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        format!("wdn_{t}"),
        "wdn_a.b.c".into(),
        "abc".into(),
        "a.b".into(),
        "a..c".into(),
        ".b.c".into(),
        "a.b.c.d".into(),
        "a.b=.c".into(),
        "a b.c.d".into(),
        String::new(),
    ] {
        assert!(!looks_like_jwt(&s), "{s}");
    }
}

#[test]
fn reload_rotates_keys_and_keeps_them_on_error() {
    let f = fx();
    let old = token("ES256", "ec1", &claims(), &f.p256);
    assert!(!f.v.reload().unwrap(), "nothing changed");
    // The same keys written differently are not a change.
    let same: Vec<Value> = ["ec1", "ec384", "ed1", "rsa1"]
        .iter()
        .zip([&f.p256, &f.p384, &f.ed, &f.rsa])
        .map(|(kid, k)| k.jwk(kid))
        .chain([{
            let mut j = f.rsa.jwk("rsa-ps");
            j["alg"] = json!("PS256");
            j
        }])
        .collect();
    std::fs::write(
        &f.path,
        serde_json::to_string_pretty(&json!({"keys": same})).unwrap(),
    )
    .unwrap();
    assert!(!f.v.reload().unwrap());

    let next = TestKey::p256();
    write_jwks(&f.path, &[next.jwk("ec2")]);
    assert!(f.v.reload().unwrap());
    assert_eq!(f.v.key_ids(), vec!["ec2".to_string()]);
    assert_eq!(refused(&f.v, &old), "unknown_token_key");
    let new = token("ES256", "ec2", &claims(), &next);
    assert!(f.v.verify(&new, now()).is_ok());

    // A broken file, or one with a private key, leaves the keys as they were.
    for broken in [
        "{not json".to_string(),
        json!({"keys": []}).to_string(),
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "x", "x": "AA", "y": "AA", "d": "AA"}]}).to_string(),
    ] {
        std::fs::write(&f.path, &broken).unwrap();
        assert!(f.v.reload().is_err(), "{broken}");
        assert!(f.v.verify(&new, now()).is_ok());
        assert_eq!(refused(&f.v, &old), "unknown_token_key");
    }
    std::fs::remove_file(&f.path).unwrap();
    assert!(f.v.reload().is_err());
    assert!(f.v.verify(&new, now()).is_ok());
}

/// The error `JwtVerifier::new` gives for a JWKS holding `keys`.
fn jwks_error(keys: Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, keys.to_string()).unwrap();
    let e = JwtVerifier::new(settings(&path))
        .err()
        .expect("the JWKS must be refused");
    format!("{e:#}")
}

#[test]
fn a_jwks_with_private_or_unfit_keys_is_refused() {
    let ec = TestKey::p256().jwk("ec1");
    let with = |k: &Value, extra: Value| {
        let mut k = k.clone();
        for (n, v) in extra.as_object().unwrap() {
            if v.is_null() {
                k.as_object_mut().unwrap().remove(n);
            } else {
                k[n] = v.clone();
            }
        }
        k
    };
    let secret = b64(&[7u8; 32]);
    for (keys, want) in [
        (
            json!({"keys": [ec, with(&ec, json!({"kid": "ec2", "d": secret}))]}),
            "private or secret key material (\"d\")",
        ),
        (
            json!({"keys": [with(&TestKey::rsa().jwk("r"), json!({"p": secret, "q": secret}))]}),
            "private or secret key material (\"p\")",
        ),
        (
            json!({"keys": [{"kty": "oct", "kid": "h", "k": secret}]}),
            "(\"k\")",
        ),
        (
            json!({"keys": [{"kty": "oct", "kid": "h"}]}),
            "symmetric keys",
        ),
        (
            json!({"keys": [with(&ec, json!({"kid": null}))]}),
            "has no \"kid\"",
        ),
        (json!({"keys": [ec, ec]}), "must be unique"),
        (json!({"keys": []}), "empty"),
        (json!({"nokeys": 1}), "\"keys\" array"),
        (
            json!({"keys": vec![ec.clone(); MAX_JWKS_KEYS + 1]}),
            "more than 64",
        ),
        (
            json!({"keys": [with(&ec, json!({"crv": "P-521"}))]}),
            "curve is not supported",
        ),
        (
            json!({"keys": [with(&ec, json!({"x": "AAAA"}))]}),
            "32 bytes",
        ),
        (
            json!({"keys": [with(&ec, json!({"x": "not base64!"}))]}),
            "base64url",
        ),
        (
            json!({"keys": [with(&ec, json!({"use": "enc"}))]}),
            "only signing keys",
        ),
        (
            json!({"keys": [with(&ec, json!({"key_ops": ["encrypt"]}))]}),
            "key_ops",
        ),
        (
            json!({"keys": [with(&ec, json!({"alg": "RS256"}))]}),
            "\"alg\" is not a signing algorithm",
        ),
        (
            json!({"keys": [with(&ec, json!({"alg": "HS256"}))]}),
            "\"alg\" is not a signing algorithm",
        ),
        (
            json!({"keys": [with(&TestKey::rsa().jwk("r"), json!({"n": b64(&[0xc1; 128])}))]}),
            "1024 bits",
        ),
        (
            json!({"keys": [with(&TestKey::rsa().jwk("r"), json!({"e": "AAAC"}))]}),
            "exponent",
        ),
        (
            json!({"keys": [{"kty": "XYZ", "kid": "z"}]}),
            "key type is not supported",
        ),
    ] {
        let e = jwks_error(keys);
        assert!(e.contains(want), "{e:?} lacks {want:?}");
        assert!(!e.contains(&secret), "the error echoes key material: {e}");
    }
    // A key that fits no pinned algorithm.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    write_jwks(&path, &[TestKey::rsa().jwk("r")]);
    let mut s = settings(&path);
    s.algorithms = vec!["ES256".into()];
    let e = format!("{:#}", JwtVerifier::new(s).err().unwrap());
    assert!(
        e.contains("fits none of the allowed algorithms (ES256)"),
        "{e}"
    );
}

#[test]
fn an_oversized_or_missing_jwks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let pad = "x".repeat(MAX_JWKS_BYTES as usize);
    std::fs::write(
        &path,
        json!({"keys": [TestKey::p256().jwk("a")], "pad": pad}).to_string(),
    )
    .unwrap();
    let e = format!("{:#}", JwtVerifier::new(settings(&path)).err().unwrap());
    assert!(e.contains("larger than 256 KiB"), "{e}");
    let e = format!(
        "{:#}",
        JwtVerifier::new(settings(&dir.path().join("absent.json")))
            .err()
            .unwrap()
    );
    assert!(e.contains("cannot open the JWKS file"), "{e}");
    let e = format!(
        "{:#}",
        JwtVerifier::new(settings(dir.path())).err().unwrap()
    );
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn settings_refuse_hmac_none_and_nonsense() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    write_jwks(&path, &[TestKey::p256().jwk("a")]);
    type Edit = fn(&mut JwtSettings);
    let cases: [(Edit, &str); 10] = [
        (|s| s.algorithms = vec!["HS256".into()], "HMAC"),
        (
            |s| s.algorithms = vec!["ES256".into(), "hs512".into()],
            "HMAC",
        ),
        (|s| s.algorithms = vec!["none".into()], "\"none\""),
        (|s| s.algorithms = vec!["ES512".into()], "not supported"),
        (|s| s.algorithms = vec!["es256".into()], "not supported"),
        (|s| s.algorithms.clear(), "`algorithms` is empty"),
        (|s| s.audiences = vec![String::new()], "`audiences`"),
        (|s| s.issuer.clear(), "`issuer` is empty"),
        (
            |s| s.leeway = Duration::from_secs(301),
            "more than 5 minutes",
        ),
        (|s| s.max_lifetime = Some(Duration::ZERO), "`max_lifetime`"),
    ];
    for (edit, want) in cases {
        let mut s = settings(&path);
        edit(&mut s);
        let e = format!("{:#}", JwtVerifier::new(s).err().expect("must be refused"));
        assert!(e.contains(want), "{e:?} lacks {want:?}");
    }
    let mut s = settings(&path);
    s.algorithms = vec!["ES256".into()];
    assert!(JwtVerifier::new(s).is_ok());
}

#[test]
fn a_mismatched_algorithm_never_reaches_the_library() {
    // jsonwebtoken panics on an algorithm of another family than the key's.
    let keys = [
        Material::P256(vec![4; 65]),
        Material::P384(vec![4; 97]),
        Material::Ed25519(vec![1; 32]),
        Material::Rsa {
            n: vec![0xc1; 256],
            e: vec![1, 0, 1],
        },
    ];
    for material in keys {
        let key = Key {
            decoding: material.decoding_key(),
            algs: Alg::ALL.to_vec(),
            material,
        };
        for alg in Alg::ALL {
            assert!(!verify_signature(&key, alg, b"a.b", "AAAA"));
        }
    }
}

#[test]
fn mutated_tokens_never_verify_or_panic() {
    let f = fx();
    let mut seeds = Vec::new();
    for (alg, kid, key) in [
        ("ES256", "ec1", &f.p256),
        ("EdDSA", "ed1", &f.ed),
        ("RS256", "rsa1", &f.rsa),
    ] {
        let t = token(alg, kid, &claims(), key);
        assert!(f.v.verify(&t, now()).is_ok());
        seeds.push(t.into_bytes());
    }
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut tried = 0;
    for seed in &seeds {
        let mut mutants: Vec<Vec<u8>> = Vec::new();
        for i in 0..seed.len() {
            for bit in [0x01, 0x20] {
                let mut m = seed.clone();
                m[i] ^= bit;
                mutants.push(m);
            }
            mutants.push(seed[..i].to_vec());
        }
        for _ in 0..500 {
            let mut m = seed.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % m.len();
                match next() % 4 {
                    0 => m[i] = b"._-=+/A0\0\xff"[(next() % 10) as usize],
                    1 => {
                        m.remove(i);
                    }
                    2 => m.insert(i, (next() & 0xff) as u8),
                    _ => m.truncate(i),
                }
                if m.is_empty() {
                    break;
                }
            }
            mutants.push(m);
        }
        for m in mutants {
            if &m == seed {
                continue;
            }
            tried += 1;
            let Ok(s) = std::str::from_utf8(&m) else {
                continue;
            };
            if let Ok(id) = f.v.verify(s, now()) {
                panic!("a mutated token verified: {id:?}");
            }
            let _ = looks_like_jwt(s);
        }
    }
    assert!(tried > 3000, "{tried}");
}
