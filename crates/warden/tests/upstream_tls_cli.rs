//! `warden serve` in front of an upstream that speaks HTTPS and requires a client
//! certificate (the stand-in model server under Python's `ssl`, the PKI made by openssl):
//! requests pass with the CA and client certificate the upstream's settings name, and an
//! upstream trusted through another CA, or reached without Warden's certificate, gets the
//! caller a 502 while the operator reads why on stderr; a CA file replaced while serving
//! goes in force without a restart. A missing CA file stops the server from starting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::http::stop;
use common::serve::*;
use common::{code, openssl, p, self_signed_p256, text};

/// A CA (`NAME.pem`, `NAME.key`) in `dir`.
fn ca(dir: &Path, name: &str) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    self_signed_p256(
        &cert,
        &key,
        &format!("/CN={name}"),
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A certificate `NAME.pem` and key `NAME.key` signed by the CA `issuer`, with `ext`
/// (an openssl extensions file's lines).
fn leaf(dir: &Path, name: &str, issuer: &str, ext: &str) {
    let (cert, key, csr, extfile) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&extfile, format!("basicConstraints=CA:FALSE\n{ext}\n")).unwrap();
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        p(&key),
        "-out",
        p(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        p(&csr),
        "-CA",
        p(&dir.join(format!("{issuer}.pem"))),
        "-CAkey",
        p(&dir.join(format!("{issuer}.key"))),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        p(&extfile),
        "-out",
        p(&cert),
    ]);
}

#[test]
fn an_https_upstream_with_mutual_tls_is_served_and_a_distrusted_one_is_not() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    let d = pki.path();
    ca(d, "upstream-ca");
    ca(d, "client-ca");
    ca(d, "other-ca");
    leaf(
        d,
        "upstream",
        "upstream-ca",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    );
    leaf(d, "warden", "client-ca", "extendedKeyUsage=clientAuth");
    let (_upstream, port) = fake_upstream_with(&[
        "--tls",
        p(&d.join("upstream.pem")),
        p(&d.join("upstream.key")),
        "--client-ca",
        p(&d.join("client-ca.pem")),
    ]);
    let (ca_pem, cert, key, other) = (
        p(&d.join("upstream-ca.pem")).to_string(),
        p(&d.join("warden.pem")).to_string(),
        p(&d.join("warden.key")).to_string(),
        p(&d.join("other-ca.pem")).to_string(),
    );
    // Three upstreams on the one server: trusted with Warden's certificate, without it,
    // and trusted through the wrong CA.
    let extra = format!(
        r#"
[[serve.upstreams]]
name = "secure"
url = "https://127.0.0.1:{port}"
protocol = "openai"
models = ["secure-chat"]
tls_ca = "{ca_pem}"
tls_client_cert = "{cert}"
tls_client_key = "{key}"

[[serve.upstreams]]
name = "no-client-cert"
url = "https://127.0.0.1:{port}"
protocol = "openai"
models = ["anonymous-chat"]
tls_ca = "{ca_pem}"

[[serve.upstreams]]
name = "wrong-ca"
url = "https://127.0.0.1:{port}"
protocol = "openai"
models = ["distrusted-chat"]
tls_ca = "{other}"
tls_client_cert = "{cert}"
tls_client_key = "{key}"
"#
    );
    let node = setup(port, &extra);
    let (_, api_key) = node.key("app", "*", &[]);
    let bearer = format!("Bearer {api_key}");
    let out = node.warden(&["posture", "--json"]);
    assert!(
        !text(&out).contains("\"serve.upstreams.tls\",\"level\":\"weak\""),
        "{}",
        text(&out)
    );

    let log = node.data.parent().unwrap().join("serve.log");
    let (server, wport) = start(&node, &log);
    let ask = |model: &str| {
        call(
            &node,
            wport,
            "POST",
            "/v1/chat/completions",
            Some(&bearer),
            Some(&chat(model)),
        )
    };
    let ok = ask("secure-chat");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.json()["choices"].is_array(), "{}", ok.body);
    // Twice each: the second failure is not written again (once a minute per upstream).
    for model in [
        "anonymous-chat",
        "distrusted-chat",
        "anonymous-chat",
        "distrusted-chat",
    ] {
        let r = ask(model);
        assert_eq!(r.status, 502, "{model}: {}", r.body);
        assert_eq!(r.code(), "upstream_error", "{}", r.body);
        // Nothing of the TLS failure reaches the caller.
        assert!(!r.body.contains("certificate"), "{}", r.body);
    }
    // The trusted upstream still answers after the failures.
    assert_eq!(ask("secure-chat").status, 200);

    // Rotating a CA file needs no restart: once the file trusts the upstream's CA (the
    // files are read every 5 s), the distrusted upstream answers.
    std::fs::copy(&ca_pem, &other).unwrap();
    let t = std::time::Instant::now();
    while ask("distrusted-chat").status != 200 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(12),
            "no reload"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    stop(server);
    let stderr = std::fs::read_to_string(&log).unwrap();
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cannot reach upstream"))
        .collect();
    assert_eq!(reports.len(), 2, "{stderr}");
    // Each says which upstream, and why.
    assert!(
        reports
            .iter()
            .any(|l| l.contains("\"wrong-ca\"") && l.contains("UnknownIssuer")),
        "{stderr}"
    );
    assert!(
        reports
            .iter()
            .any(|l| l.contains("\"no-client-cert\"") && l.contains("CertificateRequired")),
        "{stderr}"
    );
    let records = ledger_records(&node);
    let upstreams: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "inference.request" && r["attrs"]["status"] == "200")
        .filter_map(|r| r["attrs"]["upstream"].as_str())
        .collect();
    assert_eq!(upstreams, ["secure", "secure", "wrong-ca"], "{records:?}");
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "config.upstream-tls-reload"
                && r["attrs"]["upstream"] == "wrong-ca"),
        "{records:?}"
    );
    assert!(
        stderr.contains("reloaded the CA file or client certificate of upstream \"wrong-ca\""),
        "{stderr}"
    );

    // A CA file that is not there stops the server before it listens, naming the file.
    let config = node.data.join("warden.toml");
    let text_before = std::fs::read_to_string(&config).unwrap();
    let missing = d.join("gone.pem");
    std::fs::write(&config, text_before.replace(&other, p(&missing))).unwrap();
    let out = node.warden(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("gone.pem") && text(&out).contains("wrong-ca"),
        "{}",
        text(&out)
    );
}
