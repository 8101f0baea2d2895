//! `warden serve`'s limits end to end: request rates per principal and per model, token
//! quotas, concurrency, and the slowing of failed sign-ins, each refused with 429 and a
//! `Retry-After`, and the failed sign-ins alerted on in the ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::http::{stop, Resp};
use common::serve::*;

const LIMITS: &str = r#"
metrics_listen = "127.0.0.1:0"

[serve.limits]
requests_per_minute = 60
burst = 3
tokens_per_minute = 60
token_burst = 40
concurrent_per_principal = 2
failed_auth_per_minute = 6
failed_auth_burst = 3

[serve.limits.principals.batch]
requests_per_minute = 6000
burst = 100
tokens_per_minute = 0

[serve.limits.principals.carol]
requests_per_minute = 6000

[serve.limits.models.chat-2]
requests_per_minute = 60
burst = 2

[serve.limits.models.other-1]
tokens_per_minute = 60
token_burst = 16
"#;

fn refused(r: &Resp, code: &str) {
    assert_eq!(r.status, 429, "{code}: {}", r.body);
    assert_eq!(r.json()["error"]["code"], code, "{}", r.body);
    let wait: u64 = r.retry_after.parse().unwrap_or_else(|_| {
        panic!(
            "{code}: Retry-After {:?} is not whole seconds",
            r.retry_after
        )
    });
    assert!((1..=60).contains(&wait), "{code}: Retry-After {wait}");
}

#[test]
fn limits_refuse_with_429_and_retry_after_and_failed_sign_ins_are_slowed_and_alerted() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, LIMITS);
    let (_, alice) = node.key("alice", "chat*,slow", &[]);
    let (_, bob) = node.key("bob", "chat*", &[]);
    let (_, batch) = node.key("batch", "*", &[]);
    let (carol_id, carol) = node.key("carol", "chat*", &[]);
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let chat_as = |key: &str, model: &str| {
        call(
            &node,
            port,
            "POST",
            "/v1/chat/completions",
            Some(&format!("Bearer {key}")),
            Some(&chat(model)),
        )
    };

    // A principal's burst passes, the next is refused; another principal is not.
    for _ in 0..3 {
        assert_eq!(chat_as(&alice, "chat-1").status, 200);
    }
    refused(&chat_as(&alice, "chat-1"), "rate_limited");
    assert_eq!(chat_as(&bob, "chat-1").status, 200);
    // An override gives "batch" more than the default.
    for _ in 0..5 {
        assert_eq!(chat_as(&batch, "chat-1").status, 200);
    }

    // A model's rate counts all principals together.
    assert_eq!(chat_as(&batch, "chat-2").status, 200);
    assert_eq!(chat_as(&bob, "chat-2").status, 200);
    refused(&chat_as(&batch, "chat-2"), "model_rate_limited");

    // Tokens: the fake upstream reports 8 per answer; a burst of 40 lets six answers in
    // (the sixth goes into debt), then refuses until the debt is paid. ("batch" has no
    // token quota, and carol a higher request rate.)
    for _ in 0..6 {
        assert_eq!(chat_as(&carol, "chat-1").status, 200);
    }
    refused(&chat_as(&carol, "chat-1"), "token_quota_exceeded");
    // A model's token quota counts every principal's answers, even a principal without a
    // quota of its own: 16 tokens let three answers of 8 in (the third into debt).
    for _ in 0..3 {
        assert_eq!(chat_as(&batch, "other-1").status, 200);
    }
    refused(&chat_as(&batch, "other-1"), "model_token_quota_exceeded");
    assert_eq!(
        chat_as(&batch, "chat-1").status,
        200,
        "other models are not held"
    );

    // Concurrency: three slow requests at once (each lasts the 1.5 s request timeout):
    // two are let in, the third is refused at once.
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let (node_cert, scratch) = (node.cert.clone(), node.data.parent().unwrap().to_owned());
            let key = batch.clone();
            std::thread::spawn(move || {
                common::http::call(
                    &node_cert,
                    &scratch,
                    port,
                    "POST",
                    "/v1/chat/completions",
                    Some(&format!("Bearer {key}")),
                    Some(&chat("slow")),
                )
            })
        })
        .collect();
    let mut answers: Vec<Resp> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    answers.sort_by_key(|r| r.status);
    assert_eq!(
        answers.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 504, 504],
        "two in flight (timed out upstream), one refused"
    );
    refused(&answers[0], "too_many_concurrent_requests");
    assert_eq!(chat_as(&batch, "chat-1").status, 200);

    // Failed sign-ins: the third from this address crosses the threshold; after it, even
    // a good key from here is refused before it is checked.
    let wrong_secret = format!("wdn_{carol_id}_{}", "0".repeat(43));
    for _ in 0..3 {
        assert_eq!(chat_as(&wrong_secret, "chat-1").status, 401);
    }
    refused(&chat_as(&bob, "chat-1"), "too_many_failed_attempts");

    // The metrics listener counts each refusal by route, status and decision.
    let metrics = get_metrics(&log, "/metrics");
    for series in [
        r#"route="openai.chat",status="429",decision="rate_limited""#,
        r#"route="openai.chat",status="429",decision="too_many_failed_attempts""#,
        r#"route="openai.chat",status="200",decision="allowed""#,
    ] {
        assert!(metrics.contains(series), "no {series} in:\n{metrics}");
    }
    assert!(
        metrics.contains("warden_requests_in_flight 0\n"),
        "{metrics}"
    );
    assert!(get_metrics(&log, "/readyz").starts_with("200 "));
    assert!(get_metrics(&log, "/nothing").starts_with("404 "));
    stop(server);
    let records = ledger_records(&node);
    let alerts: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "alert.auth-failures")
        .collect();
    assert_eq!(
        alerts.len(),
        2,
        "one for the source, one for the principal: {alerts:?}"
    );
    assert!(alerts
        .iter()
        .any(|a| a["attrs"]["source"] == "127.0.0.1" && a["attrs"]["action"] == "slowed"));
    assert!(alerts
        .iter()
        .any(|a| a["subject"] == "carol" && a["attrs"]["action"] == "alerted"));
    let decisions: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "inference.request")
        .filter_map(|r| r["attrs"]["decision"].as_str())
        .collect();
    for code in [
        "rate_limited",
        "model_rate_limited",
        "token_quota_exceeded",
        "too_many_concurrent_requests",
        "too_many_failed_attempts",
    ] {
        assert!(decisions.contains(&code), "no record of {code}");
    }
    assert_no_secret(&log, &[&alice, &bob, &batch, &carol]);
}

fn assert_no_secret(log: &Path, secrets: &[&str]) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for s in secrets {
        assert!(!text.contains(s), "a key appears in the server's log");
    }
}

/// `[serve] max_connections`: at the limit no connection is accepted (idle or slow
/// clients cannot pile up); one closing lets the next in.
#[test]
fn connections_beyond_max_connections_wait_to_be_accepted() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "max_connections = 2");
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let live = || call(&node, port, "GET", "/v2/health/live", None, None).status;
    assert_eq!(live(), 200);
    // Two clients that connect and say nothing hold both places.
    let idle: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let waiting = std::thread::spawn({
        let (cert, scratch) = (node.cert.clone(), node.data.parent().unwrap().to_owned());
        move || {
            let t = std::time::Instant::now();
            let r = common::http::call(&cert, &scratch, port, "GET", "/v2/health/live", None, None);
            (r.status, t.elapsed())
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(idle);
    let (status, waited) = waiting.join().unwrap();
    assert_eq!(status, 200, "served once a place was free");
    assert!(
        waited >= std::time::Duration::from_millis(1400),
        "it waited for a place ({waited:?})"
    );
    stop(server);
}
