//! KServe requests to an upstream model whose inputs are declared in
//! `[serve.upstreams.inputs]`: checked against them before anything goes upstream, each
//! mismatch a 400 that names the input; a configuration that declares nonsense refused at
//! start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::http::stop;
use common::serve::*;
use common::{code, text};

const INPUTS: &str = r#"
[serve.upstreams.inputs]
iris = [{ name = "x", datatype = "FP32", shape = [-1, 4] }]
"#;

fn declare(node: &Node, inputs: &str) {
    // Appended after the last [[serve.upstreams]] (the KServe one), so it belongs to it.
    let path = node.data.join("warden.toml");
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str(inputs);
    std::fs::write(path, config).unwrap();
}

#[test]
fn declared_inputs_are_checked_before_the_upstream() {
    if !have("openssl") || !have("curl") || !have("python3") {
        eprintln!("skipped: needs openssl, curl and python3");
        return;
    }
    let (_upstream, up) = fake_upstream();
    let node = setup(up, "");
    declare(&node, INPUTS);
    let (_, key) = node.key("app", "iris", &[]);
    let auth = format!("Bearer {key}");
    let log = node.data.parent().unwrap().join("serve.log");
    let (server, port) = start(&node, &log);
    let infer = |body: &str| {
        call(
            &node,
            port,
            "POST",
            "/v2/models/iris/infer",
            Some(&auth),
            Some(body.as_bytes()),
        )
    };
    let ok = infer(
        r#"{"inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}"#,
    );
    assert_eq!(
        ok.status,
        200,
        "{} {}",
        ok.body,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for (body, needle) in [
        (
            r#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"INT64","data":[1,2,3,4]}]}"#,
            "must be FP32, not INT64",
        ),
        (
            r#"{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#,
            "the model takes [-1, 4]",
        ),
        (
            r#"{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
            "the model takes [-1, 4]",
        ),
        (
            r#"{"inputs":[{"name":"y","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
            "has no input",
        ),
        (
            r#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
            "given twice",
        ),
    ] {
        let r = infer(body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(needle), "{body}: {}", r.body);
    }
    stop(server);
    // Refused requests were decided here: the ledger names them invalid, none upstream.
    let refused = ledger_records(&node)
        .into_iter()
        .filter(|r| r["kind"] == "inference.request" && r["attrs"]["status"] == "400")
        .collect::<Vec<_>>();
    assert_eq!(refused.len(), 5, "{refused:?}");
    assert!(
        refused.iter().all(|r| r["attrs"].get("upstream").is_none()),
        "{refused:?}"
    );

    // Declarations that make no sense stop the server from starting, naming the fault.
    for (bad, needle) in [
        (
            "\n[serve.upstreams.inputs]\niris = [{ name = \"x\", datatype = \"FLOAT\", shape = [1] }]\n",
            "datatype \"FLOAT\"",
        ),
        (
            "\n[serve.upstreams.inputs]\niris = [{ name = \"x\", datatype = \"FP32\", shape = [0, 4] }]\n",
            "each above 0 or -1",
        ),
        (
            "\n[serve.upstreams.inputs]\nnot-listed = [{ name = \"x\", datatype = \"FP32\", shape = [1] }]\n",
            "does not list in models",
        ),
    ] {
        let node = setup(up, "");
        declare(&node, bad);
        let out = node.warden(&["serve", "--listen", "127.0.0.1:0", "--admin-listen", "off"]);
        assert_eq!(code(&out), 1, "{}", text(&out));
        assert!(text(&out).contains(needle), "{}", text(&out));
    }
}
