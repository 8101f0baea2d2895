//! `warden keygen|sign|verify|digest` as a user runs them: exit codes, JSON, bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{json, p, text};
use serde_json::Value;

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("run warden")
}

/// A model, a key pair and a good bundle.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("model");
        std::fs::create_dir_all(m.join("sub")).unwrap();
        std::fs::write(m.join("weights.bin"), vec![1u8; 50_000]).unwrap();
        std::fs::write(m.join("sub/config.json"), b"{}").unwrap();
        let s = Setup { dir };
        let out = warden(&["keygen", "--out", p(&s.key()), "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let out = warden(&[
            "sign",
            p(&s.model()),
            "--key",
            p(&s.key()),
            "--signature",
            p(&s.sig()),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        s
    }
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
    fn model(&self) -> std::path::PathBuf {
        self.path("model")
    }
    fn key(&self) -> std::path::PathBuf {
        self.path("k.pem")
    }
    fn public(&self) -> std::path::PathBuf {
        self.path("k.pem.pub")
    }
    fn sig(&self) -> std::path::PathBuf {
        self.path("model.sig")
    }
    fn verify_with(&self, sig: &Path) -> Output {
        warden(&[
            "verify",
            p(&self.model()),
            "--signature",
            p(sig),
            "--key",
            p(&self.public()),
            "--json",
        ])
    }
}

#[test]
fn keygen_sign_verify_digest() {
    let s = Setup::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.key()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = s.verify_with(&s.sig());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["verified"], true);
    let root = v["root_digest"].as_str().unwrap().to_string();
    let out = warden(&["digest", p(&s.model()), "--json"]);
    assert_eq!(json(&out)["root_digest"], root.as_str());
    // Refuses to overwrite a key.
    let out = warden(&["keygen", "--out", p(&s.key())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--force"));
}

#[test]
fn tampering_exits_2_and_names_files() {
    let s = Setup::new();
    std::fs::write(s.model().join("weights.bin"), vec![2u8; 50_000]).unwrap();
    std::fs::write(s.model().join("new.py"), b"import os").unwrap();
    std::fs::remove_file(s.model().join("sub/config.json")).unwrap();
    let out = s.verify_with(&s.sig());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["reason"], "files_differ");
    assert_eq!(v["modified"], serde_json::json!(["weights.bin"]));
    assert_eq!(v["added"], serde_json::json!(["new.py"]));
    assert_eq!(v["removed"], serde_json::json!(["sub/config.json"]));
    let out = warden(&[
        "verify",
        p(&s.model()),
        "--signature",
        p(&s.sig()),
        "--key",
        p(&s.public()),
    ]);
    let t = text(&out);
    assert!(
        t.contains("NOT VERIFIED") && t.contains("modified  weights.bin"),
        "{t}"
    );
}

#[test]
fn malformed_bundles_exit_2_with_the_field_named() {
    let s = Setup::new();
    let good = std::fs::read_to_string(s.sig()).unwrap();
    let mut v: Value = serde_json::from_str(&good).unwrap();
    let sig0 = v["dsseEnvelope"]["signatures"][0].clone();
    let mut two = v.clone();
    two["dsseEnvelope"]["signatures"] = serde_json::json!([sig0, sig0]);
    let mut nomat = v.clone();
    nomat["verificationMaterial"] = serde_json::json!({});
    v["dsseEnvelope"]["payload"] = serde_json::json!("!!!not base64");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad json",
            "{\"mediaType\": ".into(),
            "not a Sigstore bundle",
        ),
        ("empty file", String::new(), "not a Sigstore bundle"),
        (
            "media type",
            good.replace("bundle.v0.3+json", "bundle.v0.1+json"),
            "mediaType",
        ),
        (
            "payload type",
            good.replace("application/vnd.in-toto+json", "text/plain"),
            "payloadType",
        ),
        (
            "missing field",
            good.replace("\"dsseEnvelope\"", "\"envelope\""),
            "dsseEnvelope",
        ),
        ("bad base64", v.to_string(), "dsseEnvelope.payload"),
        ("two signatures", two.to_string(), "exactly one"),
        ("no material", nomat.to_string(), "neither"),
    ];
    for (name, body, needle) in cases {
        let f = s.path(&format!("bad-{}.sig", name.replace(' ', "-")));
        std::fs::write(&f, body).unwrap();
        let out = s.verify_with(&f);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let j = json(&out);
        assert_eq!(j["reason"], "malformed_bundle", "{name}");
        assert!(
            j["message"].as_str().unwrap().contains(needle),
            "{name}: {j}"
        );
        assert!(!text(&out).contains("panicked"));
    }
}

#[test]
fn bad_keys_and_files_exit_1() {
    let s = Setup::new();
    // The private key where a public key is expected, and the other way round.
    let out = warden(&[
        "verify",
        p(&s.model()),
        "--signature",
        p(&s.sig()),
        "--key",
        p(&s.key()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("PUBLIC KEY"), "{}", text(&out));
    let out = warden(&[
        "sign",
        p(&s.model()),
        "--key",
        p(&s.public()),
        "--signature",
        p(&s.path("x.sig")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("public half"), "{}", text(&out));
    // An Ed25519 key (RFC 8410 example).
    let ed = s.path("ed.pub");
    std::fs::write(&ed, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n").unwrap();
    let out = warden(&[
        "verify",
        p(&s.model()),
        "--signature",
        p(&s.sig()),
        "--key",
        p(&ed),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("not an elliptic-curve key"),
        "{}",
        text(&out)
    );
    // Missing signature file, missing model.
    let out = warden(&[
        "verify",
        p(&s.model()),
        "--signature",
        p(&s.path("nope.sig")),
        "--key",
        p(&s.public()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = warden(&[
        "sign",
        p(&s.path("nope")),
        "--key",
        p(&s.key()),
        "--signature",
        p(&s.path("y.sig")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // Encrypted key with the wrong passphrase.
    let enc = s.path("enc.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "keygen",
            "--out",
            p(&enc),
            "--passphrase-env",
            "WARDEN_T_PASS",
        ])
        .env("WARDEN_T_PASS", "right")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "sign",
            p(&s.model()),
            "--key",
            p(&enc),
            "--signature",
            p(&s.path("z.sig")),
            "--passphrase-env",
            "WARDEN_T_PASS",
        ])
        .env("WARDEN_T_PASS", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("wrong passphrase"), "{}", text(&out));
    assert!(
        !text(&out).contains("right"),
        "the passphrase must never be printed"
    );
}

#[cfg(unix)]
#[test]
fn symlinks_refused_unless_allowed_and_recorded() {
    let s = Setup::new();
    std::os::unix::fs::symlink("weights.bin", s.model().join("link.bin")).unwrap();
    let sig = s.path("l.sig");
    let out = warden(&[
        "sign",
        p(&s.model()),
        "--key",
        p(&s.key()),
        "--signature",
        p(&sig),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    let out = warden(&[
        "sign",
        p(&s.model()),
        "--key",
        p(&s.key()),
        "--signature",
        p(&sig),
        "--allow-symlinks",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The bundle records allow_symlinks, so verify follows the link without being told.
    let out = s.verify_with(&sig);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn ignore_paths_are_recorded_and_applied() {
    let s = Setup::new();
    std::fs::write(s.model().join("README.md"), b"notes").unwrap();
    let sig = s.model().join("model.sig");
    let readme = s.model().join("README.md");
    let out = warden(&[
        "sign",
        p(&s.model()),
        "--key",
        p(&s.key()),
        "--signature",
        p(&sig),
        "--ignore-paths",
        p(&readme),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ignored = json(&out)["ignore_paths"].clone();
    assert!(
        ignored.as_array().unwrap().iter().any(|x| x == "README.md"),
        "{ignored}"
    );
    assert!(
        ignored.as_array().unwrap().iter().any(|x| x == "model.sig"),
        "{ignored}"
    );
    std::fs::write(&readme, b"edited notes").unwrap();
    let out = s.verify_with(&sig);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn blake3_with_shards_is_refused() {
    let s = Setup::new();
    let out = warden(&[
        "sign",
        p(&s.model()),
        "--key",
        p(&s.key()),
        "--hash",
        "blake3",
        "--shard-size",
        "1000",
        "--signature",
        p(&s.path("b.sig")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("BLAKE3"), "{}", text(&out));
}
