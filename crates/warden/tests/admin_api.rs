//! The admin REST API of `warden serve` end to end, over TLS with curl: every change the
//! CLI makes (principals, API keys, blocks, the lockdown, policies) made through
//! `/admin/v1`, taking effect on the inference plane within a second; roles enforced;
//! refusals recorded; bad requests answered with the right status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::http::{stop, Resp};
use common::serve::*;
use serde_json::Value;

const CONFIG: &str = r#"policy = "inference.cedar"

[serve.limits]
failed_auth_burst = 1000
"#;

const POLICY: &str = r#"@id("scope")
permit (principal, action, resource) when { context.in_key_scope };
"#;

struct Admin<'a> {
    node: &'a Node,
    port: u16,
}

impl Admin<'_> {
    fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<&str>) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        call(
            self.node,
            self.port,
            method,
            path,
            auth.as_deref(),
            body.map(str::as_bytes),
        )
    }
}

fn expect(r: &Resp, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

#[test]
fn the_admin_api_makes_every_cli_change_and_refuses_what_it_must() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, CONFIG);
    std::fs::write(node.data.join("inference.cedar"), POLICY).unwrap();
    let admin_token = std::fs::read_to_string(&node.token_file).unwrap();
    let root = Some(admin_token.trim());
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port, admin_port) = start_with_admin(&node, &log);
    assert_ne!(port, admin_port, "the admin API has a listener of its own");
    let admin = Admin {
        node: &node,
        port: admin_port,
    };
    let infer = |key: &str| {
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&format!("Bearer {key}")),
            Some(&chat("chat-1")),
        )
    };

    // Probes need no credential; everything else does.
    assert_eq!(
        expect(&admin.call(None, "GET", "/healthz", None), 200, "healthz")["status"],
        "ok"
    );
    assert_eq!(
        expect(&admin.call(None, "GET", "/readyz", None), 200, "readyz")["ready"],
        true
    );
    let r = admin.call(None, "GET", "/admin/v1/status", None);
    assert_eq!(
        expect(&r, 401, "no token")["error"]["code"],
        "invalid_credential"
    );
    expect(
        &admin.call(Some("wdn_forged"), "GET", "/admin/v1/status", None),
        401,
        "bad token",
    );
    expect(
        &admin.call(None, "GET", "/metrics", None),
        401,
        "metrics without a token",
    );
    expect(
        &admin.call(None, "POST", "/healthz", Some("{}")),
        405,
        "probes are GET only",
    );
    // The inference plane's API keys are not admin credentials.
    let (_, key) = node.key("app", "chat*", &[]);
    expect(
        &admin.call(Some(&key), "GET", "/admin/v1/status", None),
        401,
        "API key",
    );

    let status = expect(
        &admin.call(root, "GET", "/admin/v1/status", None),
        200,
        "status",
    );
    assert_eq!(status["lockdown"], false);
    assert_eq!(status["upstreams"], serde_json::json!(["llm", "triton"]));
    assert_eq!(status["policies"], serde_json::json!(["scope"]));

    // A principal with one role: it may read keys, not throw the kill switch.
    let r = admin.call(
        root,
        "POST",
        "/admin/v1/principals",
        Some(r#"{"name":"eve","roles":["auditor"]}"#),
    );
    let eve_token = expect(&r, 201, "add eve")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let eve = Some(eve_token.as_str());
    let keys = expect(
        &admin.call(eve, "GET", "/admin/v1/keys", None),
        200,
        "auditor lists keys",
    );
    assert_eq!(keys["keys"][0]["principal"], "app");
    assert!(keys["keys"][0].get("hash").is_none(), "{keys}");
    let r = admin.call(eve, "PUT", "/admin/v1/lockdown", Some(r#"{"on":true}"#));
    assert_eq!(
        expect(&r, 403, "auditor locks down")["error"]["code"],
        "role_required"
    );
    let names: Vec<Value> = expect(
        &admin.call(root, "GET", "/admin/v1/principals", None),
        200,
        "principals",
    )["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert!(names.contains(&"eve".into()), "{names:?}");

    // API keys: created (shown once), used, revoked.
    let r = admin.call(
        root,
        "POST",
        "/admin/v1/keys",
        Some(r#"{"principal":"svc","models":["chat*"]}"#),
    );
    let created = expect(&r, 201, "create a key");
    let svc_key = created["key"].as_str().unwrap().to_string();
    let svc_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(infer(&svc_key).status, 200);
    expect(
        &admin.call(root, "DELETE", &format!("/admin/v1/keys/{svc_id}"), None),
        200,
        "revoke",
    );
    within_a_second("a revoked key is refused", 401, || infer(&svc_key));

    // Block and unblock a principal; lockdown on and off. The admin plane stays up.
    assert_eq!(infer(&key).status, 200);
    let r = admin.call(
        root,
        "PUT",
        "/admin/v1/blocked/app",
        Some(r#"{"reason":"abuse"}"#),
    );
    expect(&r, 200, "block");
    within_a_second("a blocked principal is refused", 403, || infer(&key));
    let blocked = expect(
        &admin.call(eve, "GET", "/admin/v1/blocked", None),
        200,
        "blocked",
    );
    assert_eq!(blocked["blocked"], serde_json::json!(["app"]));
    expect(
        &admin.call(root, "DELETE", "/admin/v1/blocked/app", None),
        200,
        "unblock",
    );
    within_a_second("an unblocked principal is served", 200, || infer(&key));
    expect(
        &admin.call(root, "PUT", "/admin/v1/lockdown", Some(r#"{"on":true}"#)),
        200,
        "lockdown on",
    );
    within_a_second("lockdown refuses inference", 503, || infer(&key));
    expect(
        &admin.call(None, "GET", "/readyz", None),
        503,
        "not ready in lockdown",
    );
    let status = expect(
        &admin.call(root, "GET", "/admin/v1/status", None),
        200,
        "status in lockdown",
    );
    assert_eq!(status["lockdown"], true);
    expect(
        &admin.call(root, "PUT", "/admin/v1/lockdown", Some(r#"{"on":false}"#)),
        200,
        "lockdown off",
    );
    within_a_second("lockdown off serves again", 200, || infer(&key));

    // Policies: a bad set is refused whole; a good one is in force at once and kept.
    let r = admin.call(
        root,
        "PUT",
        "/admin/v1/policies",
        Some("permit(principal, action, resource) when {"),
    );
    assert_eq!(
        expect(&r, 400, "bad policy")["error"]["code"],
        "invalid_policies"
    );
    assert_eq!(infer(&key).status, 200, "the old policies still hold");
    let narrower = format!(
        "{POLICY}@id(\"no-chat-1\")\nforbid (principal, action, resource) when {{ resource.name == \"chat-1\" }};\n"
    );
    let r = admin.call(root, "PUT", "/admin/v1/policies", Some(&narrower));
    assert_eq!(
        expect(&r, 200, "new policy")["policies"],
        serde_json::json!(["no-chat-1", "scope"])
    );
    assert_eq!(infer(&key).status, 403, "in force for the next request");
    assert_eq!(
        std::fs::read_to_string(node.data.join("inference.cedar")).unwrap(),
        narrower,
        "written to the policy file, so a restart keeps it"
    );
    expect(
        &admin.call(eve, "PUT", "/admin/v1/policies", Some(POLICY)),
        403,
        "auditor sets policy",
    );

    // Metrics for any principal; releases (none yet) for any principal.
    let m = admin.call(eve, "GET", "/metrics", None);
    assert_eq!(m.status, 200);
    assert!(m.body.contains("warden_requests_total{"), "{}", m.body);
    let r = expect(
        &admin.call(eve, "GET", "/admin/v1/releases", None),
        200,
        "releases",
    );
    assert_eq!(r["releases"], serde_json::json!([]));

    // Bad requests: each its own status and code, nothing changed.
    let bad = [
        (
            "PUT",
            "/admin/v1/lockdown",
            Some(r#"{"on":"yes"}"#),
            400,
            "invalid_body",
        ),
        (
            "PUT",
            "/admin/v1/lockdown",
            Some(r#"{"on":true,"also":1}"#),
            400,
            "invalid_body",
        ),
        ("PUT", "/admin/v1/lockdown", Some("{"), 400, "invalid_body"),
        ("POST", "/admin/v1/status", None, 405, "method_not_allowed"),
        ("GET", "/admin/v2/status", None, 404, "not_found"),
        (
            "GET",
            "/admin/v1/releases/nope@1",
            None,
            404,
            "release_not_found",
        ),
        (
            "POST",
            "/admin/v1/releases/nope@1/deploy",
            None,
            404,
            "release_not_found",
        ),
        (
            "POST",
            "/admin/v1/releases/nope@1/reject",
            Some("{}"),
            400,
            "reason_required",
        ),
        (
            "GET",
            "/admin/v1/releases/no%20such/",
            None,
            404,
            "not_found",
        ),
        (
            "POST",
            "/admin/v1/principals",
            Some(r#"{"name":"eve","roles":["auditor"]}"#),
            403,
            "denied",
        ),
        (
            "POST",
            "/admin/v1/principals",
            Some(r#"{"name":"zed","roles":[]}"#),
            409,
            "not_carried_out",
        ),
    ];
    for (method, path, body, status, code) in bad {
        let r = admin.call(root, method, path, body);
        assert_eq!(
            expect(&r, status, path)["error"]["code"],
            code,
            "{method} {path}"
        );
    }
    let huge = format!("{{\"on\":true,\"pad\":\"{}\"}}", "x".repeat(1 << 20));
    assert_eq!(
        admin
            .call(root, "PUT", "/admin/v1/lockdown", Some(&huge))
            .status,
        413
    );
    let status = expect(
        &admin.call(root, "GET", "/admin/v1/status", None),
        200,
        "after bad input",
    );
    assert_eq!(status["lockdown"], false, "no bad request changed anything");

    stop(server);
    // Changes are recorded with their actor; refusals too; no token reaches the log.
    let records = ledger_records(&node);
    let kinds =
        |kind: &str| -> Vec<&Value> { records.iter().filter(|r| r["kind"] == kind).collect() };
    let refused = kinds("admin.refused");
    assert!(
        refused.iter().any(|r| r["attrs"]["status"] == "401"),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|r| r["attrs"]["status"] == "403" && r["actor"] == "eve"),
        "{refused:?}"
    );
    assert!(!kinds("config.policy-update").is_empty());
    let log_text = std::fs::read_to_string(&log).unwrap();
    for secret in [admin_token.trim(), &eve_token, &svc_key, &key] {
        assert!(
            !log_text.contains(secret),
            "a secret reached the server log"
        );
    }
}

#[test]
fn failed_admin_sign_ins_are_slowed_and_alerted_like_inference_ones() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(
        up,
        "[serve.limits]\nfailed_auth_per_minute = 6\nfailed_auth_burst = 3\n",
    );
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, _, admin_port) = start_with_admin(&node, &log);
    let admin = Admin {
        node: &node,
        port: admin_port,
    };
    for _ in 0..3 {
        expect(
            &admin.call(Some("wdn_guess"), "GET", "/admin/v1/status", None),
            401,
            "a guess",
        );
    }
    let r = admin.call(Some("wdn_guess"), "GET", "/admin/v1/status", None);
    assert_eq!(
        expect(&r, 429, "slowed")["error"]["code"],
        "too_many_failed_attempts"
    );
    assert!(
        r.retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
        "{:?}",
        r.retry_after
    );
    // Even the right token waits: the source is slowed, not the credential.
    let token = std::fs::read_to_string(&node.token_file).unwrap();
    expect(
        &admin.call(Some(token.trim()), "GET", "/admin/v1/status", None),
        429,
        "the right token from a slowed source",
    );
    expect(
        &admin.call(None, "GET", "/healthz", None),
        200,
        "probes still answer",
    );
    stop(server);
    let alerts: Vec<Value> = ledger_records(&node)
        .into_iter()
        .filter(|r| r["kind"] == "alert.auth-failures")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["attrs"]["action"], "slowed");
}

/// The CLI on another host (`--server URL --server-ca FILE`): the same commands, carried
/// out through the admin API, with no data directory of its own.
#[test]
fn the_cli_acts_through_a_remote_admin_api() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "[serve.limits]\nfailed_auth_burst = 1000\n");
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port, admin_port) = start_with_admin(&node, &log);
    let nowhere = node.data.parent().unwrap().join("no-data-here");
    let url = format!("https://localhost:{admin_port}");
    let remote = |args: &[&str]| {
        common::run(
            args,
            &[
                ("WARDEN_DATA", common::p(&nowhere)),
                ("WARDEN_TOKEN_FILE", common::p(&node.token_file)),
                ("WARDEN_SERVER", &url),
                ("WARDEN_SERVER_CA", common::p(&node.cert)),
            ],
        )
    };
    let ok = |args: &[&str]| {
        let out = remote(args);
        assert_eq!(common::code(&out), 0, "{args:?}: {}", common::text(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    };

    let created: Value = serde_json::from_str(&ok(&[
        "apikey",
        "create",
        "--principal",
        "svc",
        "--models",
        "chat*",
        "--json",
    ]))
    .unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let infer = || {
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&format!("Bearer {key}")),
            Some(&chat("chat-1")),
        )
    };
    assert_eq!(infer().status, 200);
    assert!(ok(&["apikey", "list"]).contains("svc"));
    ok(&["lockdown", "on"]);
    assert_eq!(
        infer().status,
        503,
        "the remote lockdown is in force at once"
    );
    let status: Value = serde_json::from_str(&ok(&["lockdown", "status", "--json"])).unwrap();
    assert_eq!(status["lockdown"], true);
    ok(&["lockdown", "off"]);
    ok(&["block", "svc", "--reason", "test"]);
    assert_eq!(infer().status, 403);
    ok(&["unblock", "svc"]);
    assert_eq!(infer().status, 200);
    ok(&["principal", "add", "dave", "--role", "auditor", "--json"]);
    assert!(ok(&["principal", "list"]).contains("dave"));
    assert_eq!(ok(&["releases", "--json"]), "");

    // Refusals: no such release, admission (files on the server's host), a local-only
    // command, a certificate that does not chain to --server-ca, no token.
    let out = remote(&["show", "nope@1"]);
    assert_eq!(common::code(&out), 1);
    assert!(
        common::text(&out).contains("no release nope@1"),
        "{}",
        common::text(&out)
    );
    let out = remote(&["admit", "/tmp", "--name", "m", "--version", "1"]);
    assert_eq!(common::code(&out), 1);
    assert!(
        common::text(&out).contains("--server"),
        "{}",
        common::text(&out)
    );
    let out = remote(&["ledger", "verify"]);
    assert_eq!(common::code(&out), 1);
    assert!(
        common::text(&out).contains("admin commands only"),
        "{}",
        common::text(&out)
    );
    let other_ca = node.data.parent().unwrap().join("other.pem");
    common::self_signed_p256(
        &other_ca,
        &node.data.parent().unwrap().join("other.key"),
        "/CN=localhost",
        &[],
    );
    let out = common::run(
        &["lockdown", "on"],
        &[
            ("WARDEN_TOKEN_FILE", common::p(&node.token_file)),
            ("WARDEN_SERVER", &url),
            ("WARDEN_SERVER_CA", common::p(&other_ca)),
        ],
    );
    assert_eq!(common::code(&out), 1);
    assert!(common::text(&out).contains("TLS"), "{}", common::text(&out));
    let out = common::run(
        &["lockdown", "on"],
        &[
            ("WARDEN_SERVER", &url),
            ("WARDEN_SERVER_CA", common::p(&node.cert)),
        ],
    );
    assert_eq!(common::code(&out), 2, "{}", common::text(&out));
    assert_eq!(infer().status, 200, "no refused command changed anything");
    stop(server);
}
