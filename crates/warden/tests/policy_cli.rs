//! `warden serve`'s authorisation policies (Cedar) end to end: a policy file decides
//! every request, each decision names its policies in the ledger, a changed file is put in
//! force while serving, a broken one is refused and the previous policies stay, and a
//! server does not start on a policy that does not validate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::http::{stop, Resp};
use common::serve::*;
use common::{code, p, run, text};

const POLICY: &str = r#"
@id("chat-1-only")
permit(principal, action == Warden::Action::"infer", resource)
when { context.in_key_scope && resource.name == "chat-1" };

@id("list")
permit(principal, action == Warden::Action::"list_models", resource)
when { context.in_key_scope };

@id("no-bob")
forbid(principal, action, resource) when { principal.name == "bob" };
"#;

/// Allows chat-2 too.
const WIDER: &str = r#"
@id("chat-any")
permit(principal, action == Warden::Action::"infer", resource)
when { context.in_key_scope && resource.name like "chat-*" };

@id("no-bob")
forbid(principal, action, resource) when { principal.name == "bob" };
"#;

fn until(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn policies_decide_are_recorded_reload_and_refuse_to_start_when_invalid() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "policy = \"inference.cedar\"");
    let policy_file = node.data.join("inference.cedar");

    // A policy that does not validate: the server names the file and line, and does not
    // start.
    std::fs::write(
        &policy_file,
        "permit(principal, action, resource) when { resource.colour == \"red\" };\n",
    )
    .unwrap();
    let out = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[("WARDEN_DATA", p(&node.data))],
    );
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("inference.cedar") && text(&out).contains("colour"),
        "{}",
        text(&out)
    );

    std::fs::write(&policy_file, POLICY).unwrap();
    let (_, alice) = node.key("alice", "chat*", &[]);
    let (_, bob) = node.key("bob", "*", &[]);
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let chat_as = |key: &str, model: &str| -> Resp {
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&format!("Bearer {key}")),
            Some(&chat(model)),
        )
    };
    let refused = |r: &Resp, code: &str| {
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], code, "{}", r.body);
    };

    assert_eq!(chat_as(&alice, "chat-1").status, 200);
    // In the key's scope, but no policy permits it.
    refused(&chat_as(&alice, "chat-2"), "policy_denied");
    // Out of the key's scope: the caller is told so.
    refused(&chat_as(&alice, "other-1"), "model_not_allowed");
    // A forbid wins over a permit.
    refused(&chat_as(&bob, "chat-1"), "policy_denied");
    let models = call(
        &node,
        port,
        "GET",
        "/v1/models",
        Some(&format!("Bearer {alice}")),
        None,
    );
    assert_eq!(models.status, 200, "{}", models.body);
    let ids: Vec<String> = models.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["chat-1", "chat-2"]);

    // A wider policy is put in force while serving.
    std::fs::write(&policy_file, WIDER).unwrap();
    until("the wider policy", Duration::from_secs(15), || {
        chat_as(&alice, "chat-2").status == 200
    });
    refused(&chat_as(&bob, "chat-2"), "policy_denied");
    // A broken file is refused; the wider policy stays.
    std::fs::write(&policy_file, "permit(principal, action, resource) when {").unwrap();
    until("the broken policy's alert", Duration::from_secs(15), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("reloading the policy file ([serve] policy) failed")
    });
    assert_eq!(chat_as(&alice, "chat-2").status, 200);
    stop(server);

    let records = ledger_records(&node);
    let decided = |actor: &str, model: &str, decision: &str, policy: &str| {
        records.iter().any(|r| {
            r["kind"] == "inference.request"
                && r["actor"] == actor
                && r["subject"] == model
                && r["attrs"]["decision"] == decision
                && r["attrs"]["policy"] == policy
        })
    };
    assert!(decided("alice", "chat-1", "allowed", "chat-1-only"));
    assert!(decided("alice", "chat-2", "policy_denied", ""));
    assert!(decided("bob", "chat-1", "policy_denied", "no-bob"));
    assert!(decided("alice", "chat-2", "allowed", "chat-any"));
    let kinds: Vec<&str> = records.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert!(kinds.contains(&"config.policy-reload"), "{kinds:?}");
    assert!(kinds.contains(&"alert.reload-failed"), "{kinds:?}");
}
