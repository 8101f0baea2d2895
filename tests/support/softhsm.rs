//! A SoftHSM2 token for tests, initialised in a temporary directory: shared by the tests of
//! the vault and of the `warden` binary (included with `#[path]`). `scripts/test` installs
//! SoftHSM2 and sets WARDEN_REQUIRE_HSM=1, so there a missing SoftHSM2 fails the test;
//! elsewhere the test says it was skipped.

use std::path::PathBuf;
use std::process::Command;

const MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

/// The user PIN of the token.
pub const PIN: &str = "1234";

/// An initialised token: its PKCS#11 module and the SoftHSM2 configuration naming it.
pub struct Token {
    pub module: PathBuf,
    pub conf: PathBuf,
    pub dir: tempfile::TempDir,
}

fn module() -> Option<PathBuf> {
    if let Ok(m) = std::env::var("WARDEN_PKCS11_MODULE") {
        return Some(m.into());
    }
    MODULES.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A new token labelled `label`, or `None` (skipped) where SoftHSM2 is not installed and
/// not required.
pub fn token(label: &str) -> Option<Token> {
    let Some(module) = module() else {
        assert!(
            std::env::var("WARDEN_REQUIRE_HSM").is_err(),
            "SoftHSM2 is required but not installed"
        );
        eprintln!("skipped: SoftHSM2 is not installed (apt-get install softhsm2)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            "5678",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    Some(Token { module, conf, dir })
}
