//! The authorisation matrix of `warden serve`: every inference endpoint against every way
//! a caller can be wrong (no credential, malformed, wrong key, expired, revoked, wrong
//! scope, wrong role, blocked, lockdown), each expecting its own refusal, and a rightful
//! caller expecting an answer. The identity provider of the JWTs is played by the test
//! (an Ed25519 key made here; a real one cannot run here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

use common::http::stop;
use common::serve::*;

/// Only the `ml-users` group may run models; everyone in scope may list and read metadata.
const POLICY: &str = r#"
@id("ml-users-infer")
permit(principal, action == Warden::Action::"infer", resource)
when { context.in_key_scope && (principal.credential != "jwt" || principal.groups.contains("ml-users")) };

@id("read")
permit(principal, action in [Warden::Action::"metadata", Warden::Action::"list_models"], resource)
when { context.in_key_scope };
"#;

struct Idp {
    key: Ed25519KeyPair,
}

impl Idp {
    fn new() -> Idp {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        Idp {
            key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        }
    }

    fn jwks(&self) -> String {
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA", "use": "sig",
            "x": B64.encode(self.key.public_key().as_ref())}]})
        .to_string()
    }

    fn token(&self, sub: &str, groups: &[&str]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = B64.encode(json!({"alg": "EdDSA", "kid": "k1", "typ": "JWT"}).to_string());
        let claims = B64.encode(
            json!({"iss": "https://idp.example", "aud": "warden", "sub": sub, "iat": now,
                "exp": now + 600, "warden_models": "chat* iris", "groups": groups})
            .to_string(),
        );
        let signed = format!("{header}.{claims}");
        let sig = B64.encode(self.key.sign(signed.as_bytes()).as_ref());
        format!("{signed}.{sig}")
    }
}

/// One endpoint: method, path, body.
struct Endpoint {
    method: &'static str,
    path: &'static str,
    body: Option<Vec<u8>>,
}

/// The inference endpoints: the OpenAI ones for `chat-1`, the KServe ones for `iris` (both
/// served by the stand-in upstream).
fn endpoints() -> Vec<Endpoint> {
    let kserve = br#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#;
    let e = |method, path, body: Option<&[u8]>| Endpoint {
        method,
        path,
        body: body.map(<[u8]>::to_vec),
    };
    vec![
        e("GET", "/v1/models", None),
        e("POST", "/v1/chat/completions", Some(&chat("chat-1"))),
        e(
            "POST",
            "/v1/completions",
            Some(br#"{"model":"chat-1","prompt":"hi"}"#),
        ),
        e(
            "POST",
            "/v1/embeddings",
            Some(br#"{"model":"chat-1","input":"hi"}"#),
        ),
        e("POST", "/v2/models/iris/infer", Some(kserve)),
        e("GET", "/v2/models/iris", None),
        e("GET", "/v2/models/iris/ready", None),
    ]
}

/// `s` with one character in its last third changed.
fn altered(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let i = chars.len() * 2 / 3;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

fn error_code(r: &common::http::Resp) -> String {
    let v = r.json();
    v["error"]["code"]
        .as_str()
        .or(v["code"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn every_endpoint_refuses_every_wrong_caller_and_answers_the_right_one() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let idp = Idp::new();
    let (_upstream, up) = fake_upstream();
    let node = setup(
        up,
        "policy = \"inference.cedar\"\n\
         [serve.limits]\nfailed_auth_burst = 100000\nrequests_per_minute = 0\n\
         [serve.jwt]\nissuer = \"https://idp.example\"\naudiences = [\"warden\"]\n\
         jwks = \"jwks.json\"\nmodels_claim = \"warden_models\"\n",
    );
    std::fs::write(node.data.join("inference.cedar"), POLICY).unwrap();
    std::fs::write(node.data.join("jwks.json"), idp.jwks()).unwrap();
    let (_, good) = node.key("app", "chat*,iris", &[]);
    let (_, narrow) = node.key("narrow", "other*", &[]);
    let (revoked_id, revoked) = node.key("gone", "*", &[]);
    let (_, expiring) = node.key("late", "*", &["--expires", "1s"]);
    let (_, blocked) = node.key("mallory", "*", &[]);
    assert_eq!(
        common::code(&node.warden(&["apikey", "revoke", &revoked_id])),
        0
    );
    let wrong = altered(&good);
    let unknown = format!("wdn_{}_{}", "0".repeat(16), "A".repeat(43));
    let user = idp.token("carol", &["ml-users"]);
    let outsider = idp.token("dave", &["sales"]);
    std::thread::sleep(std::time::Duration::from_millis(1100)); // "late" expires

    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let out = node.warden(&["block", "mallory", "--reason", "test"]);
    assert_eq!(common::code(&out), 0, "{}", common::text(&out));

    let bearer = |k: &str| Some(format!("Bearer {k}"));
    // (who, Authorization, expected status for model endpoints, code, for /v1/models)
    let cases: Vec<(&str, Option<String>, u16, &str, u16)> = vec![
        ("no credential", None, 401, "missing_api_key", 401),
        (
            "malformed",
            Some("Basic YWxhZGRpbjpvcGVu".into()),
            401,
            "malformed_api_key",
            401,
        ),
        (
            "malformed token",
            bearer("not-a-key"),
            401,
            "malformed_api_key",
            401,
        ),
        ("unknown key", bearer(&unknown), 401, "invalid_api_key", 401),
        ("wrong secret", bearer(&wrong), 401, "invalid_api_key", 401),
        ("expired", bearer(&expiring), 401, "expired_api_key", 401),
        ("revoked", bearer(&revoked), 401, "revoked_api_key", 401),
        (
            "forged token",
            bearer(&altered(&user)),
            401,
            "invalid_token_signature",
            401,
        ),
        (
            "wrong scope",
            bearer(&narrow),
            403,
            "model_not_allowed",
            200,
        ),
        ("blocked", bearer(&blocked), 403, "principal_blocked", 403),
    ];
    for e in endpoints() {
        for (who, auth, status, code, list_status) in &cases {
            let r = call(
                &node,
                port,
                e.method,
                e.path,
                auth.as_deref(),
                e.body.as_deref(),
            );
            let want = if e.path == "/v1/models" {
                *list_status
            } else {
                *status
            };
            assert_eq!(
                r.status, want,
                "{who} on {} {}: {}",
                e.method, e.path, r.body
            );
            if want != 200 {
                assert_eq!(error_code(&r), *code, "{who} on {}: {}", e.path, r.body);
            } else {
                // Listing with the wrong scope answers only the models in scope.
                assert!(!r.body.contains("chat-1"), "{who}: {}", r.body);
            }
        }
        // The right callers: an API key, and a JWT of the ml-users group.
        for (who, key) in [("api key", &good), ("jwt", &user)] {
            let r = call(
                &node,
                port,
                e.method,
                e.path,
                bearer(key).as_deref(),
                e.body.as_deref(),
            );
            assert_eq!(
                r.status, 200,
                "{who} on {} {}: {}",
                e.method, e.path, r.body
            );
        }
        // The wrong role: a JWT outside ml-users may read metadata but not run a model.
        let r = call(
            &node,
            port,
            e.method,
            e.path,
            bearer(&outsider).as_deref(),
            e.body.as_deref(),
        );
        let infer = e.method == "POST";
        let want = if infer { 403 } else { 200 };
        assert_eq!(r.status, want, "wrong role on {}: {}", e.path, r.body);
        if infer {
            assert_eq!(
                error_code(&r),
                "policy_denied",
                "wrong role on {}: {}",
                e.path,
                r.body
            );
        }
    }

    // Lockdown: every endpoint, even for the right caller.
    let out = node.warden(&["lockdown", "on"]);
    assert_eq!(common::code(&out), 0, "{}", common::text(&out));
    for e in endpoints() {
        let r = within_a_second("lockdown", 503, || {
            call(
                &node,
                port,
                e.method,
                e.path,
                bearer(&good).as_deref(),
                e.body.as_deref(),
            )
        });
        assert_eq!(error_code(&r), "lockdown", "{}: {}", e.path, r.body);
    }
    stop(server);
}

/// The identity provider's JWKS by URL (`jwks_url`): fetched at start, fetched again every
/// `jwks_refresh_seconds`, so a rotated key is followed without a restart; a server whose
/// JWKS cannot be fetched does not start. The provider's web server is Python's
/// `http.server` on loopback.
#[test]
fn jwt_keys_come_from_the_providers_url_and_follow_its_rotation() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (first, second) = (Idp::new(), Idp::new());
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("jwks.json"), first.jwks()).unwrap();
    let mut web = std::process::Command::new("python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(site.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(web.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let web_port: u16 = line
        .split("port ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let _web = common::http::Kill(web);

    let (_upstream, up) = fake_upstream();
    let jwt = |url: &str| {
        format!(
            "[serve.jwt]\nissuer = \"https://idp.example\"\naudiences = [\"warden\"]\n\
             jwks_url = \"{url}\"\njwks_refresh_seconds = 1\nmodels_claim = \"warden_models\"\n"
        )
    };
    let node = setup(up, &jwt(&format!("http://127.0.0.1:{web_port}/jwks.json")));
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let chat_as = |token: &str| {
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&format!("Bearer {token}")),
            Some(&chat("chat-1")),
        )
        .status
    };
    assert_eq!(chat_as(&first.token("carol", &[])), 200);
    assert_eq!(chat_as(&second.token("carol", &[])), 401);

    // The provider rotates its key: followed within a refresh and a reload tick.
    std::fs::write(site.path().join("jwks.json"), second.jwks()).unwrap();
    let t = std::time::Instant::now();
    while chat_as(&second.token("carol", &[])) != 200 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(15),
            "the new key was not fetched: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(
        chat_as(&first.token("carol", &[])),
        401,
        "the old key is gone"
    );
    stop(server);
    assert!(ledger_records(&node)
        .iter()
        .any(|r| r["kind"] == "config.jwks-reload"));

    // Nothing at the URL, or a file and a URL both: the server does not start.
    for (extra, needle) in [
        (jwt("http://127.0.0.1:9/jwks.json"), "jwks_url"),
        (
            format!(
                "{}jwks = \"jwks.json\"\n",
                jwt("http://127.0.0.1:9/jwks.json")
            ),
            "not both",
        ),
        (jwt("http://203.0.113.7/jwks.json"), "loopback"),
    ] {
        let node = setup(up, &extra);
        let out = node.warden(&["serve", "--listen", "127.0.0.1:0", "--admin-listen", "off"]);
        assert_eq!(common::code(&out), 1, "{}", common::text(&out));
        assert!(
            common::text(&out).contains(needle),
            "{needle}: {}",
            common::text(&out)
        );
    }
}
