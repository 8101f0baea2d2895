//! The training load of scripts/build-production (scripts/pgo-train.py) against `warden
//! serve`: every kind of request in its mix gets the status it expects, so the profile the
//! production build is optimised with is one of a working gateway; and a server that
//! answers otherwise fails the load, naming what it got.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::http::stop;
use common::serve::*;
use common::{p, repo_root};

/// The limits scripts/build-production trains with: never reached, still checked.
const TRAINING_LIMITS: &str = r#"
[serve.limits]
requests_per_minute = 1000000000
burst = 1000000
tokens_per_minute = 1000000000000
token_burst = 1000000000
failed_auth_per_minute = 1000000000
failed_auth_burst = 1000000
"#;

fn train(port: u16, key_file: &Path, requests: &str) -> std::process::Output {
    Command::new("python3")
        .arg(repo_root().join("scripts/pgo-train.py"))
        .args([&port.to_string(), p(key_file), requests])
        .output()
        .expect("python3")
}

#[test]
fn the_training_mix_gets_the_answers_it_expects() {
    let (_upstream, up) = fake_upstream();
    let node = setup(up, TRAINING_LIMITS);
    let (_, key) = node.key("train", "chat-1,iris", &[]);
    let key_file = node.data.parent().unwrap().join("train.key");
    std::fs::write(&key_file, &key).unwrap();
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);

    let out = train(port, &key_file, "400");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop(server);
    // Every request was served and recorded, refusals included.
    let records = ledger_records(&node);
    let statuses = |status: &str| {
        records
            .iter()
            .filter(|r| r["kind"] == "inference.request" && r["attrs"]["status"] == status)
            .count()
    };
    assert!(statuses("200") > 300, "{} records", records.len());
    for refused in ["400", "401", "403"] {
        assert!(statuses(refused) > 0, "no {refused} in the training load");
    }
}

#[test]
fn a_server_that_refuses_the_load_fails_the_training() {
    let (_upstream, up) = fake_upstream();
    // The default limits: the load soon meets 429s.
    let node = setup(up, "");
    let (_, key) = node.key("train", "chat-1,iris", &[]);
    let key_file = node.data.parent().unwrap().join("train.key");
    std::fs::write(&key_file, &key).unwrap();
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);

    let out = train(port, &key_file, "400");
    stop(server);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("training load failed") && err.contains("429"),
        "{err}"
    );
}
