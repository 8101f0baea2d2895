//! `warden ledger …`, `warden backup` and `warden restore` as an operator runs them:
//! exit codes, JSON, tampering, and backups that must not roll the ledger back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{code, json, text};
use serde_json::Value;

fn warden(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("run warden")
}

/// A data directory with a ledger of `n` records.
fn ledger_of(n: usize) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let out = warden(
        data.path(),
        &[
            "ledger",
            "init",
            "--origin",
            "test.example/warden",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    append_lines(data.path(), 0, n);
    data
}

fn append_lines(data: &Path, from: usize, n: usize) {
    let lines: String = (from..from + n)
        .map(|i| {
            format!("{{\"kind\":\"admin.test\",\"actor\":\"op\",\"attrs\":{{\"i\":\"{i}\"}}}}\n")
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(data)
        .args(["ledger", "append", "--from-jsonl", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
}

#[test]
fn init_append_verify_and_prove() {
    let data = ledger_of(300);
    let key = data.path().join("keys/ledger.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let secret = std::fs::read_to_string(&key).unwrap();

    let out = warden(
        data.path(),
        &[
            "ledger",
            "append",
            "--kind",
            "release.admitted",
            "--actor",
            "alice",
            "--subject",
            "iris@1.0",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(json(&out)["index"], 300);

    let out = warden(data.path(), &["ledger", "verify", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(json(&out)["size"], 301);
    assert_eq!(json(&out)["problems"], serde_json::json!([]));

    // An inclusion proof checks offline against the verifier key alone.
    let dir = tempfile::tempdir().unwrap();
    let vkey = dir.path().join("vkey");
    std::fs::write(&vkey, warden(data.path(), &["ledger", "vkey"]).stdout).unwrap();
    let out = warden(
        data.path(),
        &["ledger", "proof", "--index", "300", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let proof = dir.path().join("proof.json");
    std::fs::write(&proof, &out.stdout).unwrap();
    let out = warden(
        data.path(),
        &[
            "ledger",
            "check-proof",
            proof.to_str().unwrap(),
            "--vkey",
            vkey.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    // The same proof for another index fails.
    let mut bent: Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    bent["index"] = 299.into();
    std::fs::write(&proof, bent.to_string()).unwrap();
    let out = warden(
        data.path(),
        &[
            "ledger",
            "check-proof",
            proof.to_str().unwrap(),
            "--vkey",
            vkey.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));

    // Nothing printed or stored in the ledger's public files carries the private key.
    for out in [
        warden(data.path(), &["ledger", "checkpoint"]),
        warden(data.path(), &["ledger", "export"]),
    ] {
        assert!(!text(&out).contains(secret.trim()));
    }
    let show = warden(data.path(), &["ledger", "show", "300", "--json"]);
    assert_eq!(json(&show)["record"]["subject"], "iris@1.0");
}

#[test]
fn consistency_from_a_saved_checkpoint() {
    let data = ledger_of(10);
    let saved = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        saved.path(),
        warden(data.path(), &["ledger", "checkpoint"]).stdout,
    )
    .unwrap();
    append_lines(data.path(), 10, 500);
    let out = warden(
        data.path(),
        &[
            "ledger",
            "consistency",
            "--from",
            saved.path().to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let v = json(&out);
    assert_eq!(
        (v["old_size"].as_u64(), v["new_size"].as_u64()),
        (Some(10), Some(510))
    );
    let out = warden(
        data.path(),
        &[
            "ledger",
            "verify",
            "--since",
            saved.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("extending the saved checkpoint of 10"));
}

#[test]
fn tampering_exits_2_and_names_the_place() {
    let data = ledger_of(300);
    let tile = data.path().join("ledger/tile/entries/000");
    let mut bytes = std::fs::read(&tile).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&tile, bytes).unwrap();
    let out = warden(data.path(), &["ledger", "verify"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("NOT VERIFIED"));
    assert!(text(&out).contains("entry "), "{}", text(&out));
    // Reading a tampered entry is refused, not shown.
    let out = warden(data.path(), &["ledger", "export"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
}

#[test]
fn export_speaks_syslog() {
    let data = ledger_of(3);
    let out = warden(data.path(), &["ledger", "export", "--format", "syslog"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        // <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG
        let fields: Vec<&str> = line.splitn(7, ' ').collect();
        assert_eq!(fields[0], "<110>1");
        assert!(fields[1].ends_with('Z') && fields[1].contains('T'));
        assert_eq!(
            (fields[3], fields[4], fields[5]),
            ("warden", "-", "admin.test")
        );
        assert!(fields[6].starts_with(&format!("[warden@32473 index=\"{i}\"")));
    }
}

#[test]
fn backup_and_restore_refuse_to_go_back_or_take_a_fork() {
    let data = ledger_of(100);
    let scratch = tempfile::tempdir().unwrap();
    let backup = scratch.path().join("backup");
    let out = warden(data.path(), &["backup", backup.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(backup.join("BACKUP.json").exists());
    assert!(
        !backup.join("ledger/journal").exists()
            && !std::fs::read_dir(&backup)
                .unwrap()
                .any(|e| e.unwrap().file_name() == "keys")
    );

    // Same history: nothing to do.
    let out = warden(data.path(), &["restore", backup.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("nothing to do"));

    // The ledger moved on: the older backup is refused.
    append_lines(data.path(), 100, 20);
    let out = warden(data.path(), &["restore", backup.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("would erase 20"), "{}", text(&out));

    // A newer backup restores over the older state, and the ledger keeps working.
    let newer = scratch.path().join("newer");
    assert_eq!(
        code(&warden(data.path(), &["backup", newer.to_str().unwrap()])),
        0
    );
    let lost = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(lost.path().join("keys")).unwrap();
    std::fs::copy(
        data.path().join("keys/ledger.key"),
        lost.path().join("keys/ledger.key"),
    )
    .unwrap();
    let out = warden(lost.path(), &["restore", newer.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = warden(
        lost.path(),
        &[
            "ledger",
            "append",
            "--kind",
            "admin.restored",
            "--actor",
            "op",
            "--json",
        ],
    );
    assert_eq!(json(&out)["index"], 120, "{}", text(&out));
    assert_eq!(code(&warden(lost.path(), &["ledger", "verify"])), 0);

    // A fork: same key, different history of the same length or longer.
    let fork = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(fork.path().join("keys")).unwrap();
    std::fs::copy(
        data.path().join("keys/ledger.key"),
        fork.path().join("keys/ledger.key"),
    )
    .unwrap();
    let vkey = String::from_utf8(warden(data.path(), &["ledger", "vkey"]).stdout).unwrap();
    let fork_ledger = fork.path().join("ledger");
    std::fs::create_dir_all(&fork_ledger).unwrap();
    // Build the forked log through restore of the first backup, then diverge.
    assert_eq!(
        code(&warden(fork.path(), &["restore", backup.to_str().unwrap()])),
        0
    );
    append_lines(fork.path(), 5000, 50);
    assert_eq!(
        String::from_utf8(warden(fork.path(), &["ledger", "vkey"]).stdout).unwrap(),
        vkey
    );
    let forked_backup = scratch.path().join("forked");
    assert_eq!(
        code(&warden(
            fork.path(),
            &["backup", forked_backup.to_str().unwrap()]
        )),
        0
    );
    let out = warden(data.path(), &["restore", forked_backup.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("fork"), "{}", text(&out));

    // A tampered backup is refused before anything is touched.
    let bad = scratch.path().join("bad");
    assert_eq!(
        code(&warden(data.path(), &["backup", bad.to_str().unwrap()])),
        0
    );
    let tile = bad.join("ledger/tile/0/000.p/120");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&tile, bytes).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = warden(empty.path(), &["restore", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(!empty.path().join("ledger").exists());
}

#[test]
fn bad_input_gets_clear_errors() {
    let data = tempfile::tempdir().unwrap();
    let out = warden(data.path(), &["ledger", "verify"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("warden ledger init"), "{}", text(&out));
    let data = ledger_of(1);
    let out = warden(data.path(), &["ledger", "init"]);
    assert_eq!(code(&out), 1);
    let out = warden(
        data.path(),
        &["ledger", "append", "--kind", "nofamily", "--actor", "a"],
    );
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("<family>.<action>"), "{}", text(&out));
    let out = warden(data.path(), &["ledger", "show", "5"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("has 1 entries"), "{}", text(&out));
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), "{not json").unwrap();
    let out = warden(
        data.path(),
        &[
            "ledger",
            "append",
            "--from-jsonl",
            garbage.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("line 1"), "{}", text(&out));
    let out = warden(
        data.path(),
        &[
            "ledger",
            "consistency",
            "--from",
            garbage.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 1);
    let out = warden(
        data.path(),
        &[
            "ledger",
            "check-proof",
            garbage.path().to_str().unwrap(),
            "--vkey",
            garbage.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 1);
}
