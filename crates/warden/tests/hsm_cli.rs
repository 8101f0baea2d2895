//! The release lifecycle with the key-encryption key in an HSM: SoftHSM2 through PKCS#11,
//! configured by `warden init --kek pkcs11`. `scripts/test` installs SoftHSM2 and sets
//! WARDEN_REQUIRE_HSM=1, so there a missing SoftHSM2 fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../../tests/support/softhsm.rs"]
mod softhsm;

use common::{code, json, p, text};

#[test]
fn an_unsigned_demo_model_through_the_hsm() {
    let Some(token) = softhsm::token("warden-cli") else {
        return;
    };
    let (module, conf, dir) = (&token.module, &token.conf, &token.dir);

    let data = dir.path().join("data");
    let conf_s = conf.to_str().unwrap().to_string();
    let run = |token: &str, pin: &str, args: &[&str]| {
        let mut all = vec!["--data-dir", p(&data)];
        all.extend_from_slice(args);
        let mut env = vec![("SOFTHSM2_CONF", conf_s.as_str()), ("WARDEN_TOKEN", token)];
        if !pin.is_empty() {
            env.push(("WARDEN_HSM_PIN", pin));
        }
        common::run(&all, &env)
    };
    let out = run(
        "",
        "1234",
        &[
            "init",
            "--kek",
            "pkcs11",
            "--hsm-module",
            p(module),
            "--hsm-token",
            "warden-cli",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let admin = json(&out)["token"].as_str().unwrap().to_string();
    let config = std::fs::read_to_string(data.join("warden.toml")).unwrap();
    assert!(config.contains("provider = \"pkcs11\""), "{config}");
    std::fs::write(
        data.join("warden.toml"),
        format!("{config}\n[trust]\nunsigned_models = [\"demo-*\"]\n"),
    )
    .unwrap();
    let mut tokens = Vec::new();
    for (name, role) in [("op", "operator"), ("ap1", "approver"), ("ap2", "approver")] {
        let out = run(
            &admin,
            "1234",
            &["principal", "add", name, "--role", role, "--json"],
        );
        assert_eq!(code(&out), 0, "{}", text(&out));
        tokens.push(json(&out)["token"].as_str().unwrap().to_string());
    }
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(
        model.join("model.safetensors"),
        common::safetensors(&[7u8; 4096]),
    )
    .unwrap();

    // A token that is not there: a clear error naming it.
    let good = std::fs::read_to_string(data.join("warden.toml")).unwrap();
    std::fs::write(
        data.join("warden.toml"),
        good.replace("token = \"warden-cli\"", "token = \"no-such-token\""),
    )
    .unwrap();
    let out = run(
        &tokens[0],
        "1234",
        &["admit", p(&model), "--name", "demo-tiny", "--version", "0"],
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("no-such-token"), "{}", text(&out));
    std::fs::write(data.join("warden.toml"), good).unwrap();

    // Wrong PIN and no PIN: clear errors, nothing recorded or sealed.
    let admit = [
        "admit",
        p(&model),
        "--name",
        "demo-tiny",
        "--version",
        "1",
        "--json",
    ];
    let out = run(&tokens[0], "9999", &admit);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("PIN"), "{}", text(&out));
    assert!(
        !text(&out).contains("9999"),
        "the PIN must never be echoed: {}",
        text(&out)
    );
    let out = run(&tokens[0], "", &admit);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("WARDEN_HSM_PIN"), "{}", text(&out));
    assert!(!data.join("vault/blobs/demo-tiny@1").exists());

    let out = run(&tokens[0], "1234", &admit);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(json(&out)["signer"], serde_json::Value::Null);
    for t in &tokens[1..] {
        let out = run(t, "1234", &["approve", "demo-tiny@1"]);
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let out = run(&tokens[0], "1234", &["deploy", "demo-tiny@1", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(json(&out)["state"], "live");
    // The wrapped keys name the HSM key, and the KEK file provider was never used.
    assert!(!data.join("keys/kek.key").exists());
    let keys = std::fs::read_dir(data.join("vault/keys/demo-tiny@1")).unwrap();
    for k in keys {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(k.unwrap().path()).unwrap()).unwrap();
        assert_eq!(v["provider"], "pkcs11");
    }
}
