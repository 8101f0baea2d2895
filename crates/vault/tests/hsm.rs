//! The PKCS#11 key provider against a real token: SoftHSM2, initialised here in a
//! temporary directory. `scripts/test` installs SoftHSM2 and sets WARDEN_REQUIRE_HSM=1, so
//! there a missing SoftHSM2 fails the test; elsewhere the test says it was skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

#[path = "../../../tests/support/softhsm.rs"]
mod softhsm;

use vault::provider::pkcs11::{Pkcs11Config, Pkcs11Kek};
use vault::{Context, DataKey, Error, KeyProvider, Vault};

#[test]
fn the_kek_stays_in_the_token_and_wraps_data_keys() {
    let Some(token) = softhsm::token("warden-test") else {
        return;
    };
    let (module, conf, dir) = (token.module.clone(), token.conf.clone(), &token.dir);
    // Only this test in this binary touches the environment.
    std::env::set_var("SOFTHSM2_CONF", &conf);

    let config = Pkcs11Config {
        module,
        token: "warden-test".into(),
        key_label: "warden-kek".into(),
    };
    // A wrong PIN (checked before any login: PKCS#11 login state is per process).
    let wrong_pin = Pkcs11Kek::create(&config, "0000").unwrap_err().to_string();
    assert!(wrong_pin.contains("PIN"), "{wrong_pin}");
    let kek = Pkcs11Kek::create(&config, "1234").unwrap();
    assert!(
        !kek.is_extractable().unwrap(),
        "the KEK must be sensitive and non-extractable"
    );
    assert!(
        Pkcs11Kek::create(&config, "1234").is_err(),
        "a second key with the same label"
    );

    let key = DataKey::generate();
    let wrapped = kek.wrap(&key, b"iris@1.0 model.onnx").unwrap();
    assert_eq!(wrapped.provider, "pkcs11");
    let back = kek.unwrap_key(&wrapped, b"iris@1.0 model.onnx").unwrap();
    // The unwrapped key works on what the original sealed.
    let ctx = Context {
        release: "iris@1.0".into(),
        file: "f".into(),
        manifest: "m".into(),
    };
    let mut sealed = Vec::new();
    vault::format::seal(&b"weights"[..], 7, &mut sealed, &key, &ctx).unwrap();
    let mut input = std::io::Cursor::new(&sealed);
    let opened = vault::format::Opened::new(&mut input, &back, &ctx).unwrap();
    let mut out = Vec::new();
    opened.decrypt_to(input, &mut out).unwrap();
    assert_eq!(out, b"weights");
    assert!(matches!(
        kek.unwrap_key(&wrapped, b"another artifact"),
        Err(Error::Unwrap)
    ));

    // Reopening by label, and a missing label.
    let reopened = Pkcs11Kek::open(&config, "1234").unwrap();
    assert!(reopened
        .unwrap_key(&wrapped, b"iris@1.0 model.onnx")
        .is_ok());
    let missing = Pkcs11Config {
        key_label: "nope".into(),
        ..config.clone()
    };
    assert!(Pkcs11Kek::open(&missing, "1234")
        .unwrap_err()
        .to_string()
        .contains("no key labelled"));

    // A whole vault on the HSM key, and shredding.
    let src = dir.path().join("model.onnx");
    std::fs::write(&src, vec![7u8; 150_000]).unwrap();
    let vault = Vault::new(&dir.path().join("vault"), Box::new(reopened));
    let ctx = Context {
        release: "iris@1.0".into(),
        file: "model.onnx".into(),
        manifest: "sha256:ab".into(),
    };
    vault.seal_file(&ctx, &src).unwrap();
    let mut out = Vec::new();
    vault.decrypt_to(&ctx, &mut out).unwrap();
    assert_eq!(out, vec![7u8; 150_000]);
    vault.shred("iris@1.0", &[]).unwrap();
    assert!(vault.blob_path(&ctx).exists());
    assert!(matches!(
        vault.decrypt_to(&ctx, Vec::new()),
        Err(Error::NoKey(_))
    ));
}
