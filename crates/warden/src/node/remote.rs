//! Admin changes while `warden serve` runs. The server holds the ledger for its whole life,
//! so a command that must record a change (a new or revoked API key, the lockdown) hands it
//! to the server over a Unix socket in the data directory (`serve.sock`, mode 0600); the
//! server authenticates the token itself and carries the change out with its ledger. When
//! no server answers, the command does it itself.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ledger::Ledger;
use registry::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{apikeys, Denied, Node};

/// The socket's name in the data directory.
pub const SOCKET: &str = "serve.sock";
/// Largest request or reply line.
pub const MAX_LINE: usize = 64 * 1024;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// A change to carry out.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Op {
    ApikeyCreate {
        principal: String,
        models: Vec<String>,
        /// RFC 3339.
        expires: Option<String>,
    },
    ApikeyRevoke {
        id: String,
    },
    Lockdown {
        on: bool,
    },
}

impl Op {
    /// The roles that may ask for it.
    pub fn roles(&self) -> &'static [Role] {
        &[Role::Admin]
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub token: Option<String>,
    pub change: Op,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default)]
    pub denied: bool,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub result: Value,
}

impl Reply {
    pub fn into_result(self) -> anyhow::Result<Value> {
        if self.ok {
            Ok(self.result)
        } else if self.denied {
            Err(super::denied(self.error))
        } else {
            Err(anyhow::anyhow!("{}", self.error))
        }
    }

    pub fn from_result(r: anyhow::Result<Value>) -> Reply {
        match r {
            Ok(result) => Reply {
                ok: true,
                denied: false,
                error: String::new(),
                result,
            },
            Err(e) => Reply {
                ok: false,
                denied: e.downcast_ref::<Denied>().is_some(),
                error: format!("{e:#}"),
                result: Value::Null,
            },
        }
    }
}

/// Carries out an authenticated principal's change with an open ledger.
pub fn execute(
    node: &mut Node,
    ledger: &Ledger,
    actor: &registry::Principal,
    op: &Op,
) -> anyhow::Result<Value> {
    match op {
        Op::ApikeyCreate {
            principal,
            models,
            expires,
        } => {
            let expires = expires
                .as_deref()
                .map(humantime::parse_rfc3339)
                .transpose()
                .map_err(|e| anyhow::anyhow!("expiry: {e}"))?;
            let created = apikeys::create(node, ledger, actor, principal, models, expires)?;
            Ok(serde_json::to_value(&created)?)
        }
        Op::ApikeyRevoke { id } => {
            let index = apikeys::revoke(node, ledger, actor, id)?;
            Ok(serde_json::json!({"id": id, "revoked": true, "ledger_index": index}))
        }
        Op::Lockdown { on } => {
            let index = apikeys::set_lockdown(node, ledger, actor, *on)?;
            Ok(serde_json::json!({"lockdown": on, "ledger_index": index}))
        }
    }
}

/// Authenticates the request's token and carries out its change (the server's side).
pub fn serve_request(node: &mut Node, ledger: &Ledger, line: &str) -> Reply {
    let result = (|| -> anyhow::Result<Value> {
        let req: Request =
            serde_json::from_str(line).map_err(|e| anyhow::anyhow!("bad admin request: {e}"))?;
        let actor = node.authenticate(req.token.as_deref(), req.change.roles())?;
        execute(node, ledger, &actor, &req.change)
    })();
    Reply::from_result(result)
}

/// Sends a change to a running server; `None` when none answers on the socket.
pub fn call(data_dir: &Path, token: Option<&str>, op: &Op) -> anyhow::Result<Option<Reply>> {
    let path = socket_path(data_dir);
    let Ok(mut stream) = UnixStream::connect(&path) else {
        return Ok(None);
    };
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let req = Request {
        token: token.map(str::to_string),
        change: op.clone(),
    };
    let mut line = zeroize::Zeroizing::new(serde_json::to_string(&req)?);
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(std::io::Read::take(stream, MAX_LINE as u64)).read_line(&mut reply)?;
    let reply: Reply = serde_json::from_str(&reply).map_err(|e| {
        anyhow::anyhow!(
            "the running `warden serve` gave no valid answer on {}: {e}",
            path.display()
        )
    })?;
    Ok(Some(reply))
}
