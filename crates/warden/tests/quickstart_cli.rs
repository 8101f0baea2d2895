//! `warden quickstart` end to end, as the README runs it: from an empty directory to the
//! demo model served over TLS from a sandboxed worker, answers compared with the model's
//! golden outputs; a worker killed under it and restarted; then one sealed byte flipped,
//! the server restarted, the load refused and the integrity alert in the ledger. Real
//! binary, real TLS (the certificate quickstart made), curl as the client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{self, stop, Kill, Resp};
use common::{code, ledger_records, p, run, text};
use serde_json::{json, Value};

fn spawn(args: &[&str], log: &Path) -> (Kill, String) {
    http::spawn(args, &[], log)
}

fn port_of(url: &str) -> u16 {
    http::port_of(url)
}

struct Golden {
    rows: usize,
    input: Vec<f64>,
    output: Vec<f64>,
    classes: Vec<String>,
}

fn golden() -> Golden {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_root().join("examples/models/iris/golden.json"))
            .unwrap(),
    )
    .unwrap();
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    Golden {
        rows: v["inputs"]["shape"][0].as_u64().unwrap() as usize,
        input: floats(&v["inputs"]["data"]),
        output: floats(&v["outputs"]["data"]),
        classes: v["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect(),
    }
}

fn infer_body(g: &Golden) -> Vec<u8> {
    json!({"id": "golden", "inputs": [{"name": "input", "shape": [g.rows, 4], "datatype": "FP32", "data": g.input}]})
        .to_string()
        .into_bytes()
}

/// The answer is the golden label of every row, and its score rounded to two decimals.
fn assert_golden(resp: &Resp, g: &Golden) {
    assert_eq!(resp.status, 200, "{}", resp.body);
    let v = resp.json();
    assert_eq!(v["id"], "golden");
    assert_eq!(v["model_version"], "1.0");
    let labels = &v["outputs"][0];
    let scores = &v["outputs"][1];
    assert_eq!(labels["name"], "label");
    assert_eq!(scores["name"], "score");
    assert_eq!(
        v["outputs"].as_array().unwrap().len(),
        2,
        "nothing more: {v}"
    );
    for row in 0..g.rows {
        let probs = &g.output[row * 3..row * 3 + 3];
        let (best, max) =
            probs
                .iter()
                .enumerate()
                .fold((0, f64::MIN), |a, (i, &x)| if x > a.1 { (i, x) } else { a });
        assert_eq!(labels["data"][row], g.classes[best], "row {row}: {v}");
        let score = scores["data"][row].as_f64().unwrap();
        assert!(
            (score - max).abs() <= 0.005 + 1e-5,
            "row {row}: {score} vs {max}"
        );
        assert!(
            ((score * 100.0).round() - score * 100.0).abs() < 1e-6,
            "rounded: {score}"
        );
    }
}

fn records_of<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

/// The ledger once it holds a record of each of `kinds`: a running server's records reach
/// readers when its writer publishes them, moments after they are durable.
fn records_with(data: &Path, kinds: &[&str]) -> Vec<Value> {
    let mut records = Vec::new();
    wait_for(&format!("{kinds:?} in the ledger"), || {
        records = ledger_records(data);
        kinds.iter().all(|k| !records_of(&records, k).is_empty())
    });
    records
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn quickstart_serves_the_demo_model_then_refuses_it_once_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let log = dir.path().join("quickstart.log");
    let (server, line) = spawn(
        &[
            "quickstart",
            "--data-dir",
            p(&data),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--json",
        ],
        &log,
    );
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(ready["demo_mode"], true);
    let port = port_of(ready["url"].as_str().unwrap());
    let cert = PathBuf::from(ready["ca_cert"].as_str().unwrap());
    let key = format!("Bearer {}", ready["api_key"].as_str().unwrap());
    let call = |method: &str, path: &str, auth: Option<&str>, body: Option<&[u8]>| {
        http::call(&cert, dir.path(), port, method, path, auth, body)
    };
    let g = golden();

    // The golden inputs in one batch, over TLS with the printed key.
    assert_golden(
        &call(
            "POST",
            "/v2/models/iris/infer",
            Some(&key),
            Some(&infer_body(&g)),
        ),
        &g,
    );
    // Each row alone, all at once: requests crossing into the worker together (batched)
    // each get their own answer.
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..g.rows)
            .map(|row| {
                let (g, call, key) = (&g, &call, &key);
                s.spawn(move || {
                    let body = json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                        "data": g.input[row * 4..row * 4 + 4]}]});
                    let r = call("POST", "/v2/models/iris/infer", Some(key.as_str()), Some(body.to_string().as_bytes()));
                    assert_eq!(r.status, 200, "{}", r.body);
                    let probs = &g.output[row * 3..row * 3 + 3];
                    let best = (0..3).fold(0, |b, i| if probs[i] > probs[b] { i } else { b });
                    assert_eq!(r.json()["outputs"][0]["data"][0], g.classes[best], "row {row}");
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let meta = call("GET", "/v2/models/iris", Some(&key), None);
    assert_eq!(meta.status, 200, "{}", meta.body);
    assert_eq!(
        meta.json()["inputs"],
        json!([{"name": "input", "datatype": "FP32", "shape": [-1, 4]}])
    );
    assert_eq!(meta.json()["versions"], json!(["1.0"]));

    // Refusals: no key, the admin's token (admin plane only), a wrong shape, another
    // version, an unknown model.
    assert_eq!(
        call("POST", "/v2/models/iris/infer", None, Some(&infer_body(&g))).status,
        401
    );
    let admin = format!("Bearer {}", ready["admin_token"].as_str().unwrap());
    // The admin token works on the admin API's own listener, where the release is live.
    let admin_port = port_of(ready["admin_url"].as_str().unwrap());
    assert_ne!(admin_port, port);
    let r = http::call(
        &cert,
        dir.path(),
        admin_port,
        "GET",
        "/admin/v1/releases/iris@1.0",
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["live"], true, "{}", r.body);
    assert_eq!(
        call(
            "POST",
            "/v2/models/iris/infer",
            Some(&admin),
            Some(&infer_body(&g))
        )
        .status,
        401
    );
    let bad = br#"{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#;
    let r = call("POST", "/v2/models/iris/infer", Some(&key), Some(bad));
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "invalid_request"),
        "{}",
        r.body
    );
    assert!(r.body.contains("[-1, 4]"), "{}", r.body);
    let r = call("GET", "/v2/models/iris/versions/2.0", Some(&key), None);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = call("GET", "/v2/models/other/ready", Some(&key), None);
    assert_eq!(r.status, 403, "the key is scoped to iris: {}", r.body);

    // The worker is in the ledger with every sandbox layer enforced.
    let records = records_with(&data, &["runtime.worker-start", "inference.request"]);
    let start = records_of(&records, "runtime.worker-start");
    assert_eq!(start.len(), 1, "{records:?}");
    assert_eq!(start[0]["subject"], "iris@1.0");
    let sandbox = start[0]["attrs"]["sandbox"].as_str().unwrap();
    assert_eq!(sandbox.matches("=enforced").count(), 5, "{sandbox}");
    assert!(records_of(&records, "inference.request")
        .iter()
        .any(|r| r["attrs"]["upstream"] == "runtime:iris@1.0" && r["attrs"]["status"] == "200"));
    assert_eq!(
        records_of(&records, "config.quickstart")[0]["attrs"]["mode"],
        "demo"
    );

    // A worker killed under the server: that request fails cleanly, the failure is
    // recorded, a new worker starts after the back-off and answers.
    let pid = start[0]["attrs"]["pid"].as_str().unwrap();
    assert!(Command::new("kill")
        .args(["-KILL", pid])
        .status()
        .unwrap()
        .success());
    let r = call(
        "POST",
        "/v2/models/iris/infer",
        Some(&key),
        Some(&infer_body(&g)),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (502, "model_error"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("SIGKILL") && !r.body.contains("signal"),
        "{}",
        r.body
    );
    wait_for("a new worker", || {
        call(
            "POST",
            "/v2/models/iris/infer",
            Some(&key),
            Some(&infer_body(&g)),
        )
        .status
            == 200
    });
    assert_golden(
        &call(
            "POST",
            "/v2/models/iris/infer",
            Some(&key),
            Some(&infer_body(&g)),
        ),
        &g,
    );
    let records = records_with(&data, &["alert.worker-failure", "runtime.worker-restart"]);
    let failure = records_of(&records, "alert.worker-failure");
    assert_eq!(failure.len(), 1, "{records:?}");
    assert_eq!(failure[0]["attrs"]["kind"], "crash");
    assert_eq!(records_of(&records, "runtime.worker-restart").len(), 1);
    stop(server);

    // Quickstart does not overwrite a node.
    let again = run(
        &[
            "quickstart",
            "--data-dir",
            p(&data),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(code(&again), 1, "{}", text(&again));
    assert!(text(&again).contains("not empty"), "{}", text(&again));

    // One flipped bit in the sealed model: the restarted server refuses to load it.
    let blobs = data.join("vault/blobs/iris@1.0");
    let blob = std::fs::read_dir(&blobs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();
    let log2 = dir.path().join("serve.log");
    let (server, line) = spawn(
        &[
            "serve",
            "--data-dir",
            p(&data),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &log2,
    );
    let port = port_of(&line);
    let call = |method: &str, path: &str, body: Option<&[u8]>| {
        http::call(&cert, dir.path(), port, method, path, Some(&key), body)
    };
    let r = call("POST", "/v2/models/iris/infer", Some(&infer_body(&g)));
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "model_unavailable"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("integrity"),
        "nothing internal reaches the caller: {}",
        r.body
    );
    assert_eq!(call("GET", "/v2/models/iris/ready", None).status, 503);
    let records = records_with(&data, &["alert.integrity"]);
    let alert = records_of(&records, "alert.integrity");
    assert_eq!(alert.len(), 1, "{records:?}");
    assert_eq!(alert[0]["subject"], "iris@1.0");
    assert_eq!(alert[0]["attrs"]["file"], "model.onnx");
    assert_eq!(
        records_of(&records, "runtime.worker-start").len(),
        1,
        "no new worker"
    );
    let log_text = std::fs::read_to_string(&log2).unwrap();
    assert!(log_text.contains("integrity check failed"), "{log_text}");
    stop(server);

    let verify = run(&["ledger", "verify"], &[("WARDEN_DATA", p(&data))]);
    assert_eq!(code(&verify), 0, "{}", text(&verify));
}

#[test]
fn quickstart_refuses_a_separate_config_and_a_bad_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    for (name, extra, needle) in [
        ("a", ["--config", "/etc/x.toml"], "--config"),
        ("b", ["--listen", "nowhere"], "listen"),
    ] {
        let data = dir.path().join(name);
        let mut args = vec!["quickstart", "--data-dir", p(&data)];
        args.extend(extra);
        let out = run(&args, &[]);
        assert_eq!(code(&out), 1, "{}", text(&out));
        assert!(text(&out).contains(needle), "{}", text(&out));
        assert!(!data.exists(), "nothing written before the refusal");
    }
}

/// Admission, approvals, deploy, rollback and revocation while the server runs: each goes
/// through the server (it holds the ledger), and the runtime follows the live release.
#[test]
fn lifecycle_commands_while_serving_switch_the_served_release() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let (server, line) = spawn(
        &[
            "quickstart",
            "--data-dir",
            p(&data),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--json",
        ],
        &dir.path().join("quickstart.log"),
    );
    let ready: Value = serde_json::from_str(&line).unwrap();
    let port = port_of(ready["url"].as_str().unwrap());
    let cert = PathBuf::from(ready["ca_cert"].as_str().unwrap());
    let key = format!("Bearer {}", ready["api_key"].as_str().unwrap());
    let call = |method: &str, path: &str, body: Option<&[u8]>| {
        http::call(&cert, dir.path(), port, method, path, Some(&key), body)
    };
    let token_file = |name: &str, token: &str| {
        let f = dir.path().join(format!("{name}.token"));
        std::fs::write(&f, token).unwrap();
        f
    };
    let admin = token_file("admin", ready["admin_token"].as_str().unwrap());
    let as_ = |who: &Path, args: &[&str]| {
        let out = run(
            args,
            &[("WARDEN_DATA", p(&data)), ("WARDEN_TOKEN_FILE", p(who))],
        );
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out));
        out
    };
    let mut approvers = Vec::new();
    for name in ["alice", "bob"] {
        let out = as_(
            &admin,
            &["principal", "add", name, "--role", "approver", "--json"],
        );
        let v: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        approvers.push(token_file(name, v["token"].as_str().unwrap()));
    }
    let model = data.join("demo/iris");
    let sig = data.join("demo/iris.sig");
    as_(
        &admin,
        &[
            "admit",
            p(&model),
            "--name",
            "iris",
            "--version",
            "2.0",
            "--signature",
            p(&sig),
        ],
    );
    for a in &approvers {
        as_(a, &["approve", "iris@2.0"]);
    }
    let version = |r: Resp| -> String {
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["versions"][0].as_str().unwrap().to_string()
    };
    assert_eq!(version(call("GET", "/v2/models/iris", None)), "1.0");
    as_(&admin, &["deploy", "iris@2.0"]);
    assert_eq!(version(call("GET", "/v2/models/iris", None)), "2.0");
    let body = br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[6.3,3.3,6.0,2.5]}]}"#;
    let r = call("POST", "/v2/models/iris/versions/2.0/infer", Some(body));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["outputs"][0]["data"], json!(["virginica"]));
    assert_eq!(
        call("GET", "/v2/models/iris/versions/1.0", None).status,
        404
    );

    as_(&admin, &["rollback", "iris"]);
    assert_eq!(version(call("GET", "/v2/models/iris", None)), "1.0");

    as_(
        &admin,
        &[
            "revoke",
            "iris@1.0",
            "--reason",
            "withdrawn by its publisher",
        ],
    );
    let r = call("GET", "/v2/models/iris/ready", None);
    assert_eq!(r.status, 404, "no live release, no model: {}", r.body);

    let records = records_with(&data, &["release.revoked"]);
    let starts: Vec<&str> = records_of(&records, "runtime.worker-start")
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    assert_eq!(starts, ["iris@1.0", "iris@2.0", "iris@1.0"]);
    stop(server);
    let verify = run(&["ledger", "verify"], &[("WARDEN_DATA", p(&data))]);
    assert_eq!(code(&verify), 0, "{}", text(&verify));
}
