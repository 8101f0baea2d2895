//! `warden serve` end to end: the real binary over TLS (a self-signed certificate made
//! with openssl), real API keys from `warden apikey`, the real ledger and registry, curl as
//! the client. Only the model server is a stand-in (tests/serve/fake_upstream.py, Python's
//! standard library): a real one cannot run here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::stop;
use common::serve::*;
use common::{code, json, p, run, text};
use serde_json::Value;

#[test]
fn serve_authenticates_validates_proxies_records_and_locks_down() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    // This test fails many sign-ins from one address on purpose; their slowing is
    // tested in limits_cli.rs.
    let node = setup(up, "[serve.limits]\nfailed_auth_burst = 1000");
    let (good_id, good) = node.key("app1", "chat*,iris,boom,slow,dribble,stall", &[]);
    let (_, narrow) = node.key("app2", "other*", &[]);
    let (revoked_id, revoked) = node.key("app3", "*", &[]);
    let (_, expiring) = node.key("app4", "*", &["--expires", "1s"]);
    let out = node.warden(&["apikey", "revoke", &revoked_id]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // Only an admin creates keys.
    let out = run(
        &["apikey", "create", "--principal", "x", "--models", "*"],
        &[("WARDEN_DATA", p(&node.data))],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    // An expiry past what RFC 3339 can write (or the clock can hold) is refused, not a crash.
    for far in ["100000years", "500000000years"] {
        let out = node.warden(&[
            "apikey",
            "create",
            "--principal",
            "x",
            "--models",
            "*",
            "--expires",
            far,
        ]);
        assert_eq!(code(&out), 1, "{far}: {}", text(&out));
        assert!(
            text(&out).contains("too far in the future"),
            "{}",
            text(&out)
        );
    }

    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let bearer = |k: &str| format!("Bearer {k}");
    let admin_token = std::fs::read_to_string(&node.token_file).unwrap();

    // The refusal matrix, on an OpenAI and a KServe route.
    let infer = br#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#;
    std::thread::sleep(Duration::from_millis(1100)); // app4's key expires
    for (path, body, model_ok) in [
        ("/v1/chat/completions", chat("chat-1"), true),
        ("/v2/models/iris/infer", infer.to_vec(), true),
    ] {
        for (auth, status, code_want) in [
            (None, 401, "missing_api_key"),
            (Some("Bearer".to_string()), 401, "malformed_api_key"),
            (Some("Bearer nope".to_string()), 401, "malformed_api_key"),
            (Some(format!("Basic {good}")), 401, "malformed_api_key"),
            (
                Some(bearer(
                    "wdn_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                )),
                401,
                "invalid_api_key",
            ),
            (
                Some(bearer(&good[..good.len() - 1])),
                401,
                "malformed_api_key",
            ),
            (Some(bearer(admin_token.trim())), 401, "invalid_api_key"),
            (Some(bearer(&revoked)), 401, "revoked_api_key"),
            (Some(bearer(&expiring)), 401, "expired_api_key"),
            (Some(bearer(&narrow)), 403, "model_not_allowed"),
        ] {
            let r = call(&node, port, "POST", path, auth.as_deref(), Some(&body));
            assert_eq!(r.status, status, "{path} {auth:?}: {}", r.body);
            assert_eq!(r.code(), code_want, "{path}: {}", r.body);
            assert!(model_ok);
        }
    }

    // Bad input.
    let g = bearer(&good);
    for (path, body, status, needle) in [
        ("/v1/chat/completions", b"{".to_vec(), 400, "not valid JSON"),
        (
            "/v1/chat/completions",
            br#"{"model":"chat-1","messages":"hi"}"#.to_vec(),
            400,
            "`messages`",
        ),
        (
            "/v1/chat/completions",
            br#"{"model":"chat-1","messages":[{"role":"user"}]}"#.to_vec(),
            400,
            "messages[0].content",
        ),
        (
            "/v1/chat/completions",
            b"{\"model\":\"chat-1\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"
                .to_vec(),
            400,
            "UTF-8",
        ),
        (
            "/v1/chat/completions",
            chat(&"x".repeat(5000)),
            413,
            "larger than 4096",
        ),
        (
            "/v1/chat/completions",
            chat("chat-unknown"),
            404,
            "not served here",
        ),
        (
            "/v2/models/iris/infer",
            br#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]}"#.to_vec(),
            400,
            "elements",
        ),
        (
            "/v2/models/nothing/infer",
            infer.to_vec(),
            403,
            "may not use",
        ),
    ] {
        let r = call(&node, port, "POST", path, Some(&g), Some(&body));
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert!(r.body.contains(needle), "{path}: {}", r.body);
    }
    let r = call(&node, port, "GET", "/v1/chat/completions", Some(&g), None);
    assert_eq!(r.status, 405, "{}", r.body);
    let r = call(&node, port, "GET", "/v1/nothing", Some(&g), None);
    assert_eq!(r.status, 404, "{}", r.body);

    // Upstream failures say nothing of the upstream.
    let post_chat = |body: &[u8]| {
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&g),
            Some(body),
        )
    };
    let r = post_chat(&chat("boom"));
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        !r.body.contains("internal-detail") && !r.body.contains("Traceback"),
        "{}",
        r.body
    );
    let r = post_chat(&chat("slow"));
    assert_eq!(r.status, 504, "{}", r.body);
    // request_timeout_ms (1500 here) bounds the whole answer: a head after 1 s and the
    // body a second later, each in time alone, is too late together.
    let r = post_chat(&chat("dribble"));
    assert_eq!(r.status, 504, "{}", r.body);

    // What works.
    let r = call(&node, port, "GET", "/v1/models", Some(&g), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let models = r.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["chat-1", "chat-2", "boom", "slow", "dribble", "stall"]
    );
    let r = call(
        &node,
        port,
        "GET",
        "/v1/models",
        Some(&bearer(&narrow)),
        None,
    );
    assert_eq!(r.json()["data"][0]["id"], "other-1");
    let r = post_chat(&chat("chat-1"));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the fake upstream"
    );
    assert_eq!(
        v["x_saw_authorization"], false,
        "the API key must not reach the upstream"
    );
    let stream = br#"{"model":"chat-2","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = post_chat(stream);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.matches("data: ").count(), 7, "{}", r.body);
    assert!(r.body.trim_end().ends_with("data: [DONE]"), "{}", r.body);
    // A stream whose upstream falls silent after its first chunk (for a minute) ends once
    // request_timeout_ms (1500 here) passes without a chunk: what came is passed on, and
    // no [DONE] says the answer is whole.
    let stalled = br#"{"model":"stall","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let t = Instant::now();
    let r = post_chat(stalled);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.matches("data: ").count(), 1, "{}", r.body);
    assert!(!r.body.contains("[DONE]"), "{}", r.body);
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let r = call(
        &node,
        port,
        "POST",
        "/v2/models/iris/infer",
        Some(&g),
        Some(infer),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outputs"][0]["data"].as_array().unwrap().len(), 4);
    for path in [
        "/v2/models/iris",
        "/v2/models/iris/ready",
        "/v2/models/iris/versions/1/ready",
    ] {
        let r = call(&node, port, "GET", path, Some(&g), None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let r = call(&node, port, "GET", "/v2/health/live", None, None);
    assert_eq!(r.status, 200);
    for (path, body) in [
        (
            "/v1/completions",
            br#"{"model":"chat-1","prompt":"x"}"#.to_vec(),
        ),
        (
            "/v1/embeddings",
            br#"{"model":"chat-1","input":"x"}"#.to_vec(),
        ),
    ] {
        let r = call(&node, port, "POST", path, Some(&g), Some(&body));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }

    // A key revoked while the server runs is refused within a second.
    let out = node.warden(&["apikey", "revoke", &good_id]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    within_a_second("still accepted after revocation", 401, || {
        call(&node, port, "GET", "/v1/models", Some(&g), None)
    });

    // Lockdown: every inference request refused within a second, admin plane unaffected.
    let (_, fresh) = node.key("app5", "*", &[]);
    let f = bearer(&fresh);
    assert_eq!(
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&f),
            Some(&chat("chat-1"))
        )
        .status,
        200
    );
    let out = node.warden(&["lockdown", "on"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let r = within_a_second("still serving after lockdown", 503, || {
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&f),
            Some(&chat("chat-1")),
        )
    });
    assert_eq!(r.code(), "lockdown");
    assert_eq!(
        call(
            &node,
            port,
            "POST",
            "/v2/models/iris/infer",
            Some(&f),
            Some(infer)
        )
        .status,
        503
    );
    assert_eq!(
        call(&node, port, "GET", "/v2/health/ready", None, None).status,
        503
    );
    let out = node.warden(&["lockdown", "status"]);
    assert!(text(&out).contains("lockdown is on"), "{}", text(&out));
    let out = node.warden(&["apikey", "list", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = node.warden(&["lockdown", "off"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&f),
            Some(&chat("chat-1"))
        )
        .status,
        200
    );

    // Blocking a principal: its requests are refused within a second, with every one of its
    // keys; another principal is served; unblocking lets it in again.
    let (_, other) = node.key("app6", "*", &[]);
    let o = bearer(&other);
    let out = node.warden(&["block", "app5", "--reason", "exfiltration suspected"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let r = within_a_second("still serving a blocked principal", 403, || {
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&f),
            Some(&chat("chat-1")),
        )
    });
    assert_eq!(r.code(), "principal_blocked");
    let r = call(
        &node,
        port,
        "POST",
        "/v1/chat/completions",
        Some(&o),
        Some(&chat("chat-1")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let out = node.warden(&["block", "app5"]);
    assert_eq!(code(&out), 2, "blocked twice: {}", text(&out));
    let out = node.warden(&["lockdown", "status", "--json"]);
    assert_eq!(json(&out)["blocked"], serde_json::json!(["app5"]));
    let out = node.warden(&["unblock", "app5"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let r = call(
        &node,
        port,
        "POST",
        "/v1/chat/completions",
        Some(&f),
        Some(&chat("chat-1")),
    );
    assert_eq!(r.status, 200, "unblocked: {}", r.body);

    // TLS 1.2 is refused by default.
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_2",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("Cipher is ECDHE")
    );

    stop(server);

    // The ledger holds every request, verifies, and no key appears in it or in the log.
    let out = node.warden(&["ledger", "verify"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let records = ledger_records(&node);
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "inference.request")
        .collect();
    assert!(requests.len() >= 40, "{} request records", requests.len());
    let ok = requests
        .iter()
        .find(|r| {
            r["attrs"]["route"] == "openai.chat"
                && r["attrs"]["status"] == "200"
                && r["subject"] == "chat-1"
        })
        .unwrap();
    assert_eq!(ok["actor"], "app1");
    assert_eq!(ok["attrs"]["key_id"], good_id.as_str());
    assert!(ok["digests"]["request"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    assert!(requests
        .iter()
        .any(|r| r["attrs"]["stream"] == "complete" && r["subject"] == "chat-2"));
    assert!(requests
        .iter()
        .any(|r| r["attrs"]["stream"] == "upstream-stalled" && r["subject"] == "stall"));
    assert!(requests
        .iter()
        .any(|r| r["attrs"]["decision"] == "lockdown"));
    for kind in [
        "admin.apikey-create",
        "admin.apikey-revoke",
        "admin.lockdown",
        "admin.block",
        "admin.unblock",
        "config.serve-start",
        "config.serve-stop",
    ] {
        assert!(records.iter().any(|r| r["kind"] == kind), "no {kind}");
    }
    let stderr = std::fs::read_to_string(&log).unwrap();
    let all_records = serde_json::to_string(&records).unwrap();
    for secret in [&good, &narrow, &revoked, &expiring, &fresh] {
        // `wdn_<16 hex>_<secret>`: the secret is what must never leak.
        let secret_part = &secret[21..];
        assert_eq!(secret_part.len(), 43);
        assert!(
            !stderr.contains(secret_part),
            "a key is in the server's log"
        );
        assert!(!all_records.contains(secret_part), "a key is in the ledger");
    }
    let key_file = node.data.join("keys/digest.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn serve_refuses_to_start_without_tls_material_and_warns_on_plain_http() {
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "");
    std::fs::remove_file(node.data.join("tls/key.pem")).unwrap();
    let out = node.warden(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("openssl req"), "{}", text(&out));

    let node = setup(up, "insecure_plain_http = true");
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let (_, key) = node.key("app", "chat*", &[]);
    let out = Command::new("curl")
        .args([
            "-sS",
            "-H",
            &format!("Authorization: Bearer {key}"),
            &format!("http://127.0.0.1:{port}/v1/models"),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("chat-1"));
    stop(server);
    assert!(std::fs::read_to_string(&log).unwrap().contains("WARNING"));
}

/// Gives the server a certificate rustls accepts as its own trust anchor: openssl's
/// self-signed one is marked as a CA, which rustls refuses to take as a server's (curl
/// takes either).
fn rustls_friendly_certificate(node: &Node) {
    use std::os::unix::fs::OpenOptionsExt;
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(&node.cert, made.cert.pem()).unwrap();
    let key = node.data.join("tls/key.pem");
    std::fs::remove_file(&key).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key)
        .unwrap()
        .write_all(made.signing_key.serialize_pem().as_bytes())
        .unwrap();
}

/// A TLS connection to the server whose socket takes at most a small receive buffer (set
/// before connecting, so the kernel does not grow it), trusting the test's certificate.
fn slow_reader(node: &Node, port: u16) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    tls_to(node, port, Some(16 * 1024))
}

/// A TLS connection to the server, trusting the test's certificate; its socket's receive
/// buffer capped at `recv_buffer` bytes when given.
fn tls_to(
    node: &Node,
    port: u16,
    recv_buffer: Option<usize>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let fd = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    if let Some(size) = recv_buffer {
        rustix::net::sockopt::set_socket_recv_buffer_size(&fd, size).unwrap();
    }
    rustix::net::connect(&fd, &SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    let tcp = TcpStream::from(fd);
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&node.cert).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// One HTTP/1.1 answer read off `tls`: its status, its head in lower case, its body.
fn read_answer(tls: &mut impl Read) -> (u16, String, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(tls.read(&mut byte).unwrap(), 1, "the connection closed");
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap().to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body).unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

/// A request refused before its body is read (a wrong key) leaves its connection usable
/// for the next one, even when the body arrives after the answer was decided: the body is
/// read and dropped, not left for hyper to close the connection on, unannounced. A body
/// too large to drain gets `Connection: close` with the answer instead.
#[test]
fn a_refused_request_keeps_its_connection_for_the_next() {
    if !have("openssl") || !have("python3") {
        eprintln!("skipped: needs openssl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "");
    rustls_friendly_certificate(&node);
    let (_, key) = node.key("app", "chat*", &[]);
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let body = chat("chat-1");
    let head = |auth: &str, len: usize| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {auth}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let mut tls = slow_reader(&node, port);
    // The body a moment after the head: the refusal is decided before it arrives.
    tls.write_all(head("wdn_wrong", body.len()).as_bytes())
        .unwrap();
    tls.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    tls.write_all(&body).unwrap();
    let (status, answer_head, _) = read_answer(&mut tls);
    assert_eq!(status, 401, "{answer_head}");
    assert!(!answer_head.contains("connection: close"), "{answer_head}");
    // The same connection carries the next request, which is served.
    tls.write_all(head(&key, body.len()).as_bytes()).unwrap();
    tls.write_all(&body).unwrap();
    let (status, answer_head, answer) = read_answer(&mut tls);
    assert_eq!(status, 200, "{answer_head}{answer}");

    // A body declared larger than the limit (4096 bytes here) is not waited for: the
    // answer comes at once and closes the connection, saying so.
    for auth in ["wdn_wrong", key.as_str()] {
        let mut tls = slow_reader(&node, port);
        tls.write_all(head(auth, 1 << 20).as_bytes()).unwrap();
        let t = Instant::now();
        let (status, answer_head, _) = read_answer(&mut tls);
        assert!(status == 401 || status == 413, "{answer_head}");
        assert!(answer_head.contains("connection: close"), "{answer_head}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    stop(server);
}

/// `[serve] send_timeout_ms`: a client that asks for a large answer and then reads nothing
/// is cut once the server's writes have made no progress for the timeout, and its
/// connection slot goes to the next client.
#[test]
fn a_client_that_stops_reading_is_cut_after_the_send_timeout_and_frees_its_slot() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    // The stand-in's answer for "big": 16 MiB of content (under the default
    // max_response_bytes, 64 MiB), far more than the kernel buffers between the two ends
    // hold (the client's receive buffer is kept small; the server's send buffer grows to
    // a few MiB).
    const BIG: usize = 16 << 20;
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "send_timeout_ms = 1000\nmax_connections = 1");
    rustls_friendly_certificate(&node);
    let (_, key) = node.key("app1", "big,chat*", &[]);
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);

    let mut stalled = slow_reader(&node, port);
    let body = chat("big");
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stalled.write_all(request.as_bytes()).unwrap();
    stalled.write_all(&body).unwrap();
    stalled.flush().unwrap();
    let sent = Instant::now();

    // The only slot is taken until the server gives up on the stalled client (curl
    // gives up after 20 s): then the next client is served.
    let r = call(
        &node,
        port,
        "POST",
        "/v1/chat/completions",
        Some(&format!("Bearer {key}")),
        Some(&chat("chat-1")),
    );
    assert_eq!(
        r.status,
        200,
        "the slot was not freed: {}\n{}",
        r.body,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "served before the send timeout: max_connections did not hold it back"
    );

    // Reads nothing for 3 s in all, then reads what is left: what the kernels held, then
    // the end, well short of the whole answer.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(sent.elapsed()));
    let mut got = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    let ended = loop {
        match stalled.read(&mut buf) {
            Ok(0) => break "EOF".to_string(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "the server neither sent nor closed for 5 s, after {} bytes",
                    got.len()
                )
            }
            Err(e) => break e.to_string(),
        }
        assert!(
            got.len() < BIG,
            "the whole answer arrived: the connection was not cut"
        );
    };
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got[..got.len().min(200)])
    );
    eprintln!("{} bytes arrived, then: {ended}", got.len());
    stop(server);
}

/// The admin socket answers the server's own user (and root) only: with the modes that
/// keep other users out loosened on purpose, another user's connection is closed
/// unanswered and reported, while the owner's is still answered.
#[test]
fn the_admin_socket_refuses_other_users_even_when_its_modes_let_them_in() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::CommandExt;
    if !have("openssl") || !have("python3") {
        eprintln!("skipped: needs openssl and python3");
        return;
    }
    if rustix::process::getuid().as_raw() != 0 {
        eprintln!("skipped: connecting as another user needs root");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "");
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, _) = start(&node, &log);
    let socket = node.data.join("serve.sock");
    let t = Instant::now();
    while !socket.exists() {
        assert!(t.elapsed() < Duration::from_secs(5), "no admin socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    for (path, mode) in [
        (node.data.parent().unwrap(), 0o755),
        (node.data.as_path(), 0o755),
        (socket.as_path(), 0o666),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    // Another user (nobody) connects and sends a line: no answer, the connection closed
    // (reset, as the line was never read, or a broken pipe when the close came first).
    let other = Command::new("python3")
        .args([
            "-c",
            "import socket, sys\n\
             s = socket.socket(socket.AF_UNIX)\n\
             s.settimeout(10)\n\
             s.connect(sys.argv[1])\n\
             try:\n\
             \x20   s.sendall(b'{}\\n')\n\
             \x20   got = s.recv(4096)\n\
             except (ConnectionResetError, BrokenPipeError):\n\
             \x20   got = b''\n\
             print('closed' if got == b'' else repr(got))",
            p(&socket),
        ])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(other.status.success(), "{}", text(&other));
    assert_eq!(String::from_utf8_lossy(&other.stdout).trim(), "closed");
    log_line(&log, "refused a connection to the admin socket: uid 65534");

    // The owner's line (malformed) is answered: a refusal, as JSON.
    let mut owner = UnixStream::connect(&socket).unwrap();
    owner
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    owner.write_all(b"{}\n").unwrap();
    let mut reply = String::new();
    owner.read_to_string(&mut reply).unwrap();
    let reply: Value = serde_json::from_str(reply.trim()).unwrap();
    assert_eq!(reply["ok"], false, "{reply}");
    stop(server);
}

/// `[serve] event_loops` sets how many threads serve inference connections: that many run
/// (named serve-0, serve-1, …), the start-up line says so, and requests are answered.
#[test]
fn event_loops_sets_the_threads_that_serve() {
    if !have("openssl") || !have("python3") {
        eprintln!("skipped: needs openssl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "event_loops = 3");
    let (_, key) = node.key("app", "chat*", &[]);
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let line = log_line(&log, "event loop(s)");
    assert!(line.contains(", 3 event loop(s),"), "{line}");
    // Answered requests: the loops are running (the start-up line comes just before).
    let auth = format!("Bearer {key}");
    for _ in 0..6 {
        let r = call(&node, port, "GET", "/v1/models", Some(&auth), None);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let loops = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", server.0.id()))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|c| c.trim().to_string())
            .filter(|c| {
                c.strip_prefix("serve-")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect()
    };
    let t = Instant::now();
    while loops().len() < 3 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(loops().len(), 3, "{:?}", loops());
    stop(server);
}

/// Connections are spread over the event loops by how many each holds: when every
/// connection on one loop closes, the next ones all go to that loop, whichever loop
/// accepted them (left alone, new connections land on both: a loop holding more than its
/// share hands a new connection over, TLS handshake and all). The connections handed over
/// are served like the others; the metrics count them per loop, and count them off again
/// when they close.
#[test]
fn connections_are_spread_over_the_event_loops() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "event_loops = 2\nmetrics_listen = \"127.0.0.1:0\"");
    rustls_friendly_certificate(&node);
    let (_, key) = node.key("app", "chat*", &[]);
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    // The open connections of loop 0 and loop 1, from the metrics.
    let open = || -> [u64; 2] {
        let text = get_metrics(&log, "/metrics");
        [0, 1].map(|i| {
            let series = format!("warden_connections_open{{loop=\"{i}\"}} ");
            let line = text.lines().find_map(|l| l.strip_prefix(series.as_str()));
            line.unwrap_or_else(|| panic!("no {series}in:\n{text}"))
                .parse()
                .unwrap()
        })
    };
    let request = format!(
        "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n\r\n"
    );
    let served = |tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>| {
        tls.write_all(request.as_bytes()).unwrap();
        let (status, _, body) = read_answer(tls);
        assert_eq!(status, 200, "{body}");
    };
    // Eight connections, each served before the next, and the loop each one went to.
    let mut on = [Vec::new(), Vec::new()];
    for _ in 0..8 {
        let before = open();
        let mut tls = tls_to(&node, port, None);
        served(&mut tls);
        let after = open();
        let lane = usize::from(after[1] > before[1]);
        assert_eq!(after[lane], before[lane] + 1, "{before:?} then {after:?}");
        on[lane].push(tls);
    }
    assert_eq!(open(), [4, 4], "spread evenly as they came");
    // Closed connections are counted off when the server has seen them close.
    let settles_at = |want: [u64; 2]| {
        let t = Instant::now();
        while open() != want && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(open(), want);
    };
    // Loop 0's all close: the next four all go to loop 0.
    on[0].clear();
    settles_at([0, 4]);
    for _ in 0..4 {
        let mut tls = tls_to(&node, port, None);
        served(&mut tls);
        on[0].push(tls);
    }
    assert_eq!(open(), [4, 4]);
    // Every connection answers again, on whichever loop it was given.
    for tls in on.iter_mut().flatten() {
        served(tls);
    }
    drop(on);
    settles_at([0, 0]);
    stop(server);
}
