//! The release lifecycle as operators run it: init, principals, admit (signed, unsigned,
//! malicious, tampered), the two-person rule, deploy, rollback, integrity on load, export,
//! shred, and two processes at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{code, json, p, text};
use serde_json::Value;

/// A data directory with principals, a publisher key trusted for every model, and models.
struct Site {
    // Declared first: unmounted before the temporary directory is removed.
    _unmount: Option<Unmount>,
    dir: tempfile::TempDir,
    admin: String,
    alice: String, // operator
    bob: String,   // approver
    carol: String, // approver
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

impl Site {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, token: &str, args: &[&str]) -> Output {
        let data = self.data();
        let mut all = vec!["--data-dir", p(&data)];
        all.extend_from_slice(args);
        common::run(&all, &[("WARDEN_TOKEN", token)])
    }

    fn ok(&self, token: &str, args: &[&str]) -> Output {
        let out = self.run(token, args);
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out));
        out
    }

    fn denied(&self, token: &str, args: &[&str], needle: &str) {
        let out = self.run(token, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(needle),
            "{args:?}: want {needle:?} in {}",
            text(&out)
        );
    }

    fn add(&self, name: &str, role: &str) -> String {
        let out = self.ok(
            &self.admin,
            &["principal", "add", name, "--role", role, "--json"],
        );
        json(&out)["token"].as_str().unwrap().to_string()
    }

    fn new() -> Site {
        Site::create(None).unwrap()
    }

    /// A site whose data directory is a tmpfs of `size` (root only; `None` elsewhere).
    fn on_tmpfs(size: &str) -> Option<Site> {
        Site::create(Some(size))
    }

    fn create(tmpfs: Option<&str>) -> Option<Site> {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut unmount = None;
        if let Some(size) = tmpfs {
            std::fs::create_dir_all(&data).unwrap();
            let mounted = std::process::Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(&data)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !mounted {
                return None;
            }
            unmount = Some(Unmount(data.clone()));
        }
        let out = common::run(&["--data-dir", p(&data), "init", "--json"], &[]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let admin = json(&out)["token"].as_str().unwrap().to_string();
        let mut s = Site {
            _unmount: unmount,
            dir,
            admin,
            alice: String::new(),
            bob: String::new(),
            carol: String::new(),
        };
        s.alice = s.add("alice", "operator");
        s.bob = s.add("bob", "approver");
        s.carol = s.add("carol", "approver");
        let key = s.path("publisher.pem");
        let out = common::run(&["keygen", "--out", p(&key), "--json"], &[]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        std::fs::copy(s.path("publisher.pem.pub"), data.join("publisher.pub")).unwrap();
        let mut config = std::fs::read_to_string(data.join("warden.toml")).unwrap();
        config.push_str(
            "\n[[trust.signers]]\nname = \"publisher\"\nkey = \"publisher.pub\"\nmodels = [\"iris*\"]\n",
        );
        std::fs::write(data.join("warden.toml"), config).unwrap();
        Some(s)
    }

    /// Writes a model directory with `seed` in its weights and signs it.
    fn model(&self, name: &str, seed: u8) -> (PathBuf, PathBuf) {
        let m = self.path(name);
        std::fs::create_dir_all(m.join("sub")).unwrap();
        let weights: Vec<u8> = (0..300_000u32)
            .map(|i| (i as u8).wrapping_mul(seed))
            .collect();
        std::fs::write(m.join("model.safetensors"), common::safetensors(&weights)).unwrap();
        std::fs::write(m.join("sub/config.json"), format!("{{\"seed\":{seed}}}")).unwrap();
        let sig = self.path(&format!("{name}.sig"));
        self.sign(&m, "publisher.pem", &sig);
        (m, sig)
    }

    /// Signs `model` with the key `key` (a file of the site) into `sig`.
    fn sign(&self, model: &Path, key: &str, sig: &Path) {
        let out = common::run(
            &[
                "sign",
                p(model),
                "--key",
                p(&self.path(key)),
                "--signature",
                p(sig),
            ],
            &[],
        );
        assert_eq!(code(&out), 0, "{}", text(&out));
    }

    fn admit(&self, model: &Path, sig: Option<&Path>, version: &str) -> Output {
        let mut args = vec![
            "admit",
            p(model),
            "--name",
            "iris",
            "--version",
            version,
            "--json",
        ];
        if let Some(s) = sig {
            args.extend(["--signature", p(s)]);
        }
        self.run(&self.alice, &args)
    }

    fn show(&self, release: &str) -> Value {
        json(&self.ok(&self.alice, &["show", release, "--json"]))
    }

    fn ledger_kinds(&self) -> Vec<String> {
        let out = self.ok("", &["ledger", "tail", "-n", "1000", "--json"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["record"]["kind"].as_str().unwrap_or_default().to_string()
            })
            .collect()
    }
}

#[test]
fn the_whole_life_of_a_release() {
    let s = Site::new();
    let (m1, sig1) = s.model("m1", 3);
    let out = s.admit(&m1, Some(&sig1), "1.0");
    assert_eq!(code(&out), 0, "{}", text(&out));
    let a = json(&out);
    assert_eq!(a["state"], "admitted");
    assert!(
        a["signer"].as_str().unwrap().starts_with("publisher (key "),
        "{a}"
    );
    assert_eq!(a["files"], 2);

    // Immutable: the same version again is refused.
    s.denied(
        &s.alice,
        &[
            "admit",
            p(&m1),
            "--name",
            "iris",
            "--version",
            "1.0",
            "--signature",
            p(&sig1),
        ],
        "immutable",
    );

    // Two-person rule.
    s.denied(
        &s.alice,
        &["approve", "iris@1.0"],
        "needs the role approver",
    );
    s.denied(&s.alice, &["deploy", "iris@1.0"], "cannot become live");
    s.ok(&s.bob, &["approve", "iris@1.0"]);
    s.denied(&s.bob, &["approve", "iris@1.0"], "already approved");
    assert_eq!(s.show("iris@1.0")["state"], "admitted");
    s.ok(&s.carol, &["approve", "iris@1.0"]);
    assert_eq!(s.show("iris@1.0")["state"], "approved");
    s.ok(&s.alice, &["deploy", "iris@1.0"]);
    assert_eq!(s.show("iris@1.0")["state"], "live");

    // A second release replaces it; the first is kept as last known good.
    let (m2, sig2) = s.model("m2", 5);
    assert_eq!(code(&s.admit(&m2, Some(&sig2), "2.0")), 0);
    s.ok(&s.bob, &["approve", "iris@2.0"]);
    s.ok(&s.carol, &["approve", "iris@2.0"]);
    s.ok(&s.alice, &["deploy", "iris@2.0"]);
    assert_eq!(s.show("iris@1.0")["state"], "retired");
    let out = s.ok(&s.alice, &["releases", "--json"]);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|r| r["id"]["version"] == "1.0" && r["last_known_good"] == true),
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .any(|r| r["id"]["version"] == "2.0" && r["live"] == true));

    // Roll back.
    let out = s.ok(&s.alice, &["rollback", "iris"]);
    assert!(
        text(&out).contains("iris@1.0 is live again"),
        "{}",
        text(&out)
    );
    assert_eq!(s.show("iris@2.0")["state"], "retired");
    assert_eq!(s.show("iris@1.0")["state"], "live");
    s.denied(&s.alice, &["rollback", "iris"], "no last known good");

    // Export needs two export approvals, not from the exporter, and uses them up.
    let dest = s.path("exported");
    s.denied(
        &s.alice,
        &["export", "iris@1.0", "--to", p(&dest)],
        "needs 2 export approvals",
    );
    s.ok(&s.bob, &["approve", "iris@1.0", "--export"]);
    s.ok(&s.carol, &["approve", "iris@1.0", "--export"]);
    s.ok(&s.alice, &["export", "iris@1.0", "--to", p(&dest)]);
    for f in ["model.safetensors", "sub/config.json"] {
        assert_eq!(
            std::fs::read(dest.join(f)).unwrap(),
            std::fs::read(m1.join(f)).unwrap(),
            "{f}"
        );
    }
    s.denied(
        &s.alice,
        &["export", "iris@1.0", "--to", p(&s.path("again"))],
        "it has 0",
    );
    assert!(!s.path("again").exists());

    // The wrong key-encryption key: nothing opens, and the operator is told why.
    let kek = s.data().join("keys/kek.key");
    let saved = std::fs::read(&kek).unwrap();
    std::fs::write(&kek, "11".repeat(32)).unwrap();
    let out = s.run(&s.alice, &["deploy", "iris@2.0"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("not by this file key"),
        "{}",
        text(&out)
    );
    std::fs::write(&kek, saved).unwrap();

    // Tamper with one sealed segment of 2.0: its deploy is refused and an alert recorded.
    let blobs = s.data().join("vault/blobs/iris@2.0");
    let blob = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    s.denied(
        &s.alice,
        &["deploy", "iris@2.0"],
        "integrity check failed for iris@2.0 file model.safetensors",
    );
    assert_eq!(s.show("iris@2.0")["state"], "retired");
    assert_eq!(s.show("iris@1.0")["state"], "live");

    // Shred the retired 2.0: keys gone, ciphertext left, state final.
    s.denied(&s.alice, &["shred", "iris@2.0"], "needs the role admin");
    s.denied(&s.admin, &["shred", "iris@1.0"], "cannot become shredded");
    let out = s.ok(&s.admin, &["shred", "iris@2.0", "--json"]);
    assert_eq!(json(&out)["state"], "shredded");
    assert!(!s.data().join("vault/keys/iris@2.0").exists());
    assert!(blob.exists());
    s.denied(&s.alice, &["deploy", "iris@2.0"], "cannot change state");

    let kinds = s.ledger_kinds();
    for k in [
        "admin.init",
        "admin.principal-add",
        "release.admitted",
        "release.approval",
        "release.approved",
        "release.deployed",
        "release.retired",
        "release.rolled-back",
        "release.exported",
        "alert.integrity",
        "release.shredded",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    let out = s.run("", &["ledger", "verify"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // The file KEK is the one setting here weaker than the secure default.
    let out = s.run("", &["posture", "--json"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let weak: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["level"] == "weak")
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(weak, ["vault.provider"], "{}", text(&out));
    let states: Vec<String> = s.show("iris@2.0")["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states,
        ["admitted", "approved", "live", "retired", "shredded"]
    );
}

#[test]
fn admission_refusals_and_rejections() {
    let s = Site::new();
    let (m, sig) = s.model("m", 7);

    // Unsigned, and no policy allowing it: refused, nothing recorded.
    let out = s.admit(&m, None, "1");
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("must be signed"), "{}", text(&out));
    // A model name no signer may sign.
    let out = s.run(
        &s.alice,
        &[
            "admit",
            p(&m),
            "--name",
            "other",
            "--version",
            "1",
            "--signature",
            p(&sig),
        ],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("no trusted signer may sign"),
        "{}",
        text(&out)
    );

    // Modified after signing: rejected, with the file named, nothing sealed.
    std::fs::write(m.join("sub/config.json"), b"{\"seed\":8}").unwrap();
    let out = s.admit(&m, Some(&sig), "2");
    assert_eq!(code(&out), 2, "{}", text(&out));
    let a = json(&out);
    assert_eq!(a["state"], "rejected");
    assert!(
        a["reasons"][0]
            .as_str()
            .unwrap()
            .contains("modified: sub/config.json"),
        "{a}"
    );
    assert!(!s.data().join("vault/blobs/iris@2").exists());
    s.denied(&s.bob, &["approve", "iris@2"], "cannot become approved");

    // Signed by someone else.
    let (m3, _) = s.model("m3", 9);
    let out = common::run(&["keygen", "--out", p(&s.path("rogue.pem"))], &[]);
    assert_eq!(code(&out), 0);
    let rogue_sig = s.path("rogue.sig");
    s.sign(&m3, "rogue.pem", &rogue_sig);
    let out = s.admit(&m3, Some(&rogue_sig), "3");
    assert_eq!(json(&out)["state"], "rejected", "{}", text(&out));
    assert!(text(&out).contains("wrong signer"), "{}", text(&out));

    // Malicious pickle in a signed model: rejected by the scan.
    let (m4, _) = s.model("m4", 11);
    std::fs::write(
        m4.join("evil.pkl"),
        b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.",
    )
    .unwrap();
    let sig4 = s.path("m4b.sig");
    s.sign(&m4, "publisher.pem", &sig4);
    let out = s.admit(&m4, Some(&sig4), "4");
    assert_eq!(code(&out), 2, "{}", text(&out));
    let a = json(&out);
    assert_eq!(a["state"], "rejected");
    assert!(a["reasons"].to_string().contains("evil.pkl"), "{a}");

    // A FIFO in the model: an error, nothing recorded, nothing left in the vault.
    let (m5, sig5) = s.model("m5", 13);
    let fifo = m5.join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = s.admit(&m5, Some(&sig5), "5");
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("pipe"), "{}", text(&out));
    let out = s.run(&s.alice, &["show", "iris@5"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(!s.data().join("vault/blobs/iris@5").exists());

    // Credentials.
    s.denied(
        "",
        &["admit", p(&m), "--name", "iris", "--version", "9"],
        "set WARDEN_TOKEN",
    );
    s.denied(
        "wdn_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &["approve", "iris@2"],
        "not valid",
    );
    s.denied("hunter2", &["approve", "iris@2"], "not a Warden token");
    s.ok(&s.admin, &["principal", "disable", "bob"]);
    s.denied(&s.bob, &["approve", "iris@2"], "bob is disabled");
    let new_bob = json(&s.ok(&s.admin, &["principal", "rotate", "bob", "--json"]))["token"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&s.admin, &["principal", "enable", "bob"]);
    s.denied(&s.bob, &["approve", "iris@2"], "not valid");
    s.denied(&new_bob, &["approve", "iris@2"], "cannot become approved");
    s.denied(
        &s.admin,
        &["principal", "disable", "admin"],
        "last enabled admin",
    );

    let out = s.run("", &["ledger", "verify"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

#[test]
fn findings_below_the_gate_must_be_accepted_by_each_approver() {
    let s = Site::new();
    let (m, _) = s.model("m", 3);
    // A pickle that names an unknown global without calling it: a medium finding, below
    // the `high` gate.
    std::fs::write(
        m.join("extra.pkl"),
        b"\x80\x04\x8c\x08mymodule\x94\x8c\x07Unknown\x94\x93\x94.",
    )
    .unwrap();
    let sig = s.path("mf.sig");
    s.sign(&m, "publisher.pem", &sig);
    let out = s.admit(&m, Some(&sig), "1");
    let a = json(&out);
    assert_eq!(a["findings"], 1, "{a}");
    assert_eq!(a["max_severity"], "medium", "{a}");
    assert_eq!(a["state"], "admitted", "{a}");
    s.denied(
        &s.bob,
        &["approve", "iris@1"],
        "must accept them explicitly",
    );
    s.ok(&s.bob, &["approve", "iris@1", "--accept-findings"]);
    s.denied(
        &s.carol,
        &["approve", "iris@1"],
        "must accept them explicitly",
    );
    s.ok(&s.carol, &["approve", "iris@1", "--accept-findings"]);
    assert_eq!(s.show("iris@1")["state"], "approved");

    // The AI-BOM records the files, the signer and the scan.
    let out = s.ok(&s.alice, &["show", "iris@1", "--aibom"]);
    let bom: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(
        bom["metadata"]["component"]["type"],
        "machine-learning-model"
    );
    let text = bom.to_string();
    for needle in [
        "extra.pkl",
        "model.safetensors",
        "publisher (key",
        "warden:scan:findings",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from the AI-BOM: {text}"
        );
    }
}

#[test]
fn two_processes_at_once_corrupt_nothing() {
    let s = Site::new();
    let mut models = Vec::new();
    for i in 0..4u8 {
        models.push(s.model(&format!("c{i}"), 20 + i));
    }
    let data = s.data();
    let children: Vec<_> = models
        .iter()
        .enumerate()
        .map(|(i, (m, sig))| {
            std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
                .args([
                    "--data-dir",
                    p(&data),
                    "admit",
                    p(m),
                    "--name",
                    "iris",
                    "--version",
                    &format!("{i}"),
                    "--signature",
                    p(sig),
                    "--json",
                ])
                .env("WARDEN_TOKEN", &s.alice)
                .env_remove("WARDEN_TOKEN_FILE")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // And the same release twice at once: exactly one wins.
    let twice: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
                .args([
                    "--data-dir",
                    p(&data),
                    "admit",
                    p(&models[0].0),
                    "--name",
                    "iris",
                    "--version",
                    "same",
                    "--signature",
                    p(&models[0].1),
                    "--json",
                ])
                .env("WARDEN_TOKEN", &s.alice)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let codes: Vec<i32> = twice
        .into_iter()
        .map(|c| code(&c.wait_with_output().unwrap()))
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{codes:?}");
    assert_eq!(s.show("iris@same")["state"], "admitted");
    let out = s.ok(&s.alice, &["releases", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
    // Concurrent approvals by two approvers of one release.
    let approvals: Vec<_> = [&s.bob, &s.carol]
        .into_iter()
        .map(|token| {
            std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
                .args(["--data-dir", p(&data), "approve", "iris@0"])
                .env("WARDEN_TOKEN", token)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in approvals {
        let out = c.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    assert_eq!(s.show("iris@0")["state"], "approved");
    let out = s.run("", &["ledger", "verify"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

/// A disk that fills during admission: an error, no release, nothing left in the vault,
/// a ledger that verifies, and room again for the next admission.
#[test]
fn a_full_disk_during_admission_keeps_nothing() {
    let Some(s) = Site::on_tmpfs("3m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    // The model lives outside the small disk; only its sealed copy goes there.
    let m = s.path("big");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("model.safetensors"),
        common::safetensors(&vec![1u8; 4 << 20]),
    )
    .unwrap();
    let sig = s.path("big.sig");
    s.sign(&m, "publisher.pem", &sig);
    let out = s.admit(&m, Some(&sig), "1");
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("No space left"), "{}", text(&out));
    assert_eq!(code(&s.run(&s.alice, &["show", "iris@1"])), 1);
    assert!(!s.data().join("vault/blobs/iris@1").exists());
    assert!(!s.data().join("vault/keys/iris@1").exists());
    let out = s.run("", &["ledger", "verify"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let (small, small_sig) = s.model("small", 3);
    let out = s.admit(&small, Some(&small_sig), "2");
    assert_eq!(code(&out), 0, "{}", text(&out));
}
