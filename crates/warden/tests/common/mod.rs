//! Running the built `warden` binary and reading what it printed.

#![allow(dead_code)]

pub mod http;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository's root. Read when the test runs (cargo sets the variable), not baked in
/// when it is built: a test binary may be reused from a build in another checkout.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
}

/// `warden ARGS` with Warden's variables cleared, then `env` set.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_warden"));
    c.args(args);
    for var in [
        "WARDEN_DATA",
        "WARDEN_TOKEN",
        "WARDEN_TOKEN_FILE",
        "WARDEN_CONFIG",
    ] {
        c.env_remove(var);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs `warden` with `args`, in a clean environment for Warden's variables.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("run warden")
}

/// Stdout and stderr together, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last line of stdout, as JSON.
pub fn json(out: &Output) -> Value {
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// Every record of the ledger in `data`, oldest first (`warden ledger export`).
pub fn ledger_records(data: &Path) -> Vec<Value> {
    let out = run(&["ledger", "export"], &[("WARDEN_DATA", p(data))]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["record"].clone())
        .collect()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// A minimal valid safetensors file holding `data` as one U8 tensor.
pub fn safetensors(data: &[u8]) -> Vec<u8> {
    let header = format!(
        "{{\"w\":{{\"dtype\":\"U8\",\"shape\":[{}],\"data_offsets\":[0,{}]}}}}",
        data.len(),
        data.len()
    );
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Runs openssl with `args` (output discarded); it must succeed.
pub fn openssl(args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

/// A self-signed P-256 certificate for `subject` (e.g. `/CN=localhost`) with the given
/// `-addext` extensions, valid two days, written to `cert` with its key in `key`.
pub fn self_signed_p256(cert: &Path, key: &Path, subject: &str, extensions: &[&str]) {
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        subject,
    ];
    for ext in extensions {
        args.extend(["-addext", ext]);
    }
    args.extend(["-keyout", p(key), "-out", p(cert)]);
    openssl(&args);
}
