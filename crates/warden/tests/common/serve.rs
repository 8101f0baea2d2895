//! `warden serve` under test: a data directory with a TLS certificate made by openssl and
//! upstreams pointing at the stand-in model server (tests/serve/fake_upstream.py), the
//! server started on a free port, and curl as the client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{self, Kill, Resp};
use super::{code, json, p, run, text};

pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(tool)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

pub struct Node {
    pub _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub token_file: PathBuf,
    pub cert: PathBuf,
}

impl Node {
    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("WARDEN_DATA", p(&self.data)),
            ("WARDEN_TOKEN_FILE", p(&self.token_file)),
        ]
    }

    pub fn warden(&self, args: &[&str]) -> std::process::Output {
        run(args, &self.env())
    }

    pub fn key(&self, principal: &str, models: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec![
            "apikey",
            "create",
            "--principal",
            principal,
            "--models",
            models,
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = self.warden(&args);
        assert_eq!(code(&out), 0, "{}", text(&out));
        let v = json(&out);
        (
            v["id"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        )
    }
}

pub fn setup(upstream_port: u16, extra_config: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run(&["init", "--json"], &[("WARDEN_DATA", p(&data))]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, json(&out)["token"].as_str().unwrap()).unwrap();
    std::fs::create_dir_all(data.join("tls")).unwrap();
    let cert = data.join("tls/cert.pem");
    super::self_signed_p256(
        &cert,
        &data.join("tls/key.pem"),
        "/CN=localhost",
        &["subjectAltName=DNS:localhost,IP:127.0.0.1"],
    );
    let mut config = std::fs::read_to_string(data.join("warden.toml")).unwrap();
    config.push_str(&format!(
        r#"
[serve]
max_body_bytes = 4096
request_timeout_ms = 1500
{extra_config}

[[serve.upstreams]]
name = "llm"
url = "http://127.0.0.1:{upstream_port}"
protocol = "openai"
models = ["chat-1", "chat-2", "other-1", "boom", "slow", "dribble", "stall", "big"]

[[serve.upstreams]]
name = "triton"
url = "http://127.0.0.1:{upstream_port}/"
protocol = "kserve"
models = ["iris"]
"#
    ));
    std::fs::write(data.join("warden.toml"), config).unwrap();
    Node {
        _dir: dir,
        data,
        token_file,
        cert,
    }
}

pub fn fake_upstream() -> (Kill, u16) {
    fake_upstream_with(&[])
}

/// The stand-in model server with arguments (`--tls CERT KEY [--client-ca CA]`).
pub fn fake_upstream_with(args: &[&str]) -> (Kill, u16) {
    let script = super::repo_root().join("tests/serve/fake_upstream.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Kill(child), line.trim().parse().unwrap())
}

/// Starts `warden serve`; returns it and its port. Stderr goes to `log`.
pub fn start(node: &Node, log: &Path) -> (Kill, u16) {
    let (server, line) = http::spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[("WARDEN_DATA", p(&node.data))],
        log,
    );
    (server, http::port_of(&line))
}

/// One request with curl, verifying the server's certificate.
pub fn call(
    node: &Node,
    port: u16,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&[u8]>,
) -> Resp {
    let scratch = node.data.parent().unwrap();
    http::call(&node.cert, scratch, port, method, path, auth, body)
}

/// The first line of the server's log at `log` that contains `needle`, waiting for it up
/// to 5 s (the log so far is shown if it never comes).
pub fn log_line(log: &Path, needle: &str) -> String {
    let t = Instant::now();
    loop {
        let logged = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = logged.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no line with {needle:?} in the log:\n{logged}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Repeats `request` until it answers `status`, which must happen within a second (what
/// a change to keys, the lockdown or blocks promises); returns that answer.
pub fn within_a_second(what: &str, status: u16, request: impl Fn() -> Resp) -> Resp {
    let t = Instant::now();
    loop {
        let r = request();
        if r.status == status {
            return r;
        }
        assert!(t.elapsed() < Duration::from_secs(1), "{what}: {}", r.body);
    }
}

pub fn chat(model: &str) -> Vec<u8> {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hello"}}]}}"#)
        .into_bytes()
}

pub fn ledger_records(node: &Node) -> Vec<Value> {
    super::ledger_records(&node.data)
}

/// Starts `warden serve` with its admin API on a free port too; returns it, the inference
/// port and the admin port (the second line the server prints).
pub fn start_with_admin(node: &Node, log: &Path) -> (Kill, u16, u16) {
    let mut child = super::command(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[("WARDEN_DATA", p(&node.data))],
    )
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(log).unwrap())
    .spawn()
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let server = Kill(child);
    assert!(
        second.starts_with("admin API on "),
        "{first}{second}{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let admin = second.trim().trim_end_matches("/admin/v1");
    (server, http::port_of(&first), http::port_of(admin))
}

/// `GET path` on the metrics listener (its address is in the server's log): the metrics
/// text for `/metrics`, else `"<status> <body>"`.
pub fn get_metrics(log: &Path, path: &str) -> String {
    let text = std::fs::read_to_string(log).unwrap();
    let addr = text
        .split("metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no metrics address in the log: {text}"));
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = all.rsplit_once('\n').unwrap();
    if path == "/metrics" {
        assert_eq!(status, "200", "{body}");
        return body.to_string();
    }
    format!("{status} {body}")
}
