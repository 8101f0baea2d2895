//! HTTPS with curl against a running `warden serve`, and stopping it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::p;

/// A child process killed when dropped (a test that fails leaves nothing running).
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `warden ARGS` (with `env`) with stdout piped and stderr to `log`; returns it and
/// its first line of output (`listening on URL`, or quickstart's JSON).
pub fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> (Kill, String) {
    let mut child = super::command(args, env)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        !line.is_empty(),
        "warden {args:?} printed nothing: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    (Kill(child), line)
}

/// The port of `https://HOST:PORT` at the end of a line.
pub fn port_of(line: &str) -> u16 {
    line.trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// Stops the server as an operator would (SIGTERM) and checks it exited cleanly.
pub fn stop(mut server: Kill) {
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "warden serve exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "warden serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub struct Resp {
    pub status: u16,
    pub body: String,
    /// The `Retry-After` header ("" when absent).
    pub retry_after: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .or(self.json()["code"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

/// One request with curl, verifying the server's certificate.
pub fn call(
    cert: &Path,
    scratch: &Path,
    port: u16,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&[u8]>,
) -> Resp {
    // One file per call: calls may run at once.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body_file = scratch.join(format!("body-{n}.bin"));
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "--max-time",
        "20",
        "--cacert",
        p(cert),
        "-X",
        method,
        "-w",
        "\n%header{retry-after}\n%{http_code}",
    ]);
    c.arg(format!("https://localhost:{port}{path}"));
    if let Some(a) = auth {
        c.args(["-H", &format!("Authorization: {a}")]);
    }
    if let Some(b) = body {
        std::fs::write(&body_file, b).unwrap();
        c.args(["-H", "Content-Type: application/json", "--data-binary"]);
        c.arg(format!("@{}", p(&body_file)));
    }
    let out = c.output().unwrap();
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    let (rest, status) = all.rsplit_once('\n').unwrap_or(("", &all));
    let (body, retry_after) = rest.rsplit_once('\n').unwrap_or(("", rest));
    Resp {
        status: status.trim().parse().unwrap_or(0),
        body: body.to_string(),
        retry_after: retry_after.trim().to_string(),
    }
}
