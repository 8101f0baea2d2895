//! Admin changes, here or in a running `warden serve`. The server holds the ledger for its
//! whole life, so a command that records a change (admission, approvals, deploys, API keys,
//! the lockdown, principals...) hands it to the server over a Unix socket in the data
//! directory (`serve.sock`, mode 0600); the server authenticates the token itself and
//! carries the change out with its ledger, and follows a change of live release at once.
//! When no server answers, the command carries the change out itself: the same code.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use registry::{Purpose, ReleaseId, Role, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{admit, apikeys, lifecycle, principals, Denied, Node};

/// The socket's name in the data directory.
pub const SOCKET: &str = "serve.sock";
/// Largest request or reply line.
pub const MAX_LINE: usize = 64 * 1024;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// A change to carry out. Paths are absolute: the server does not share the caller's
/// working directory.
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
    Block {
        principal: String,
        block: bool,
        reason: String,
    },
    Admit {
        model: PathBuf,
        name: String,
        version: String,
        signature: Option<PathBuf>,
        model_card: Option<PathBuf>,
        threat_model: Option<PathBuf>,
        threads: usize,
    },
    Approve {
        release: String,
        export: bool,
        accept_findings: bool,
    },
    Reject {
        release: String,
        reason: String,
    },
    Revoke {
        release: String,
        reason: String,
    },
    Deploy {
        release: String,
    },
    Rollback {
        model: String,
    },
    Export {
        release: String,
        to: PathBuf,
    },
    Shred {
        release: String,
    },
    PrincipalAdd {
        name: String,
        roles: Vec<Role>,
    },
    PrincipalRotate {
        name: String,
    },
    PrincipalDisable {
        name: String,
        disabled: bool,
    },
}

impl Op {
    /// The roles that may ask for it (empty: any principal; the change checks more).
    pub fn roles(&self) -> &'static [Role] {
        match self {
            Op::Admit { .. } | Op::Deploy { .. } | Op::Rollback { .. } | Op::Export { .. } => {
                &[Role::Operator, Role::Admin]
            }
            Op::Approve { .. } | Op::Reject { .. } => &[Role::Approver],
            Op::Revoke { .. } => &[Role::Admin, Role::Approver],
            Op::PrincipalRotate { .. } => &[],
            Op::ApikeyCreate { .. }
            | Op::ApikeyRevoke { .. }
            | Op::Lockdown { .. }
            | Op::Block { .. }
            | Op::Shred { .. }
            | Op::PrincipalAdd { .. }
            | Op::PrincipalDisable { .. } => &[Role::Admin],
        }
    }

    /// Whether it can change which release of a model is live.
    pub fn changes_live(&self) -> bool {
        matches!(
            self,
            Op::Deploy { .. } | Op::Rollback { .. } | Op::Revoke { .. }
        )
    }
}

/// How a change reports progress on bytes (a bar in the CLI, nothing in the server).
pub struct Progress<'a> {
    pub total: &'a dyn Fn(u64),
    pub advance: &'a (dyn Fn(u64) + Sync),
}

impl Progress<'_> {
    pub fn none() -> Progress<'static> {
        Progress {
            total: &|_| {},
            advance: &|_| {},
        }
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

fn release_id(s: &str) -> anyhow::Result<ReleaseId> {
    ReleaseId::parse(s).map_err(anyhow::Error::msg)
}

fn outcome(o: &lifecycle::Outcome) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(o)?)
}

/// Carries out an authenticated principal's change, recording it in `node.ledger()`.
pub fn execute(
    node: &mut Node,
    actor: &registry::Principal,
    op: &Op,
    progress: &Progress,
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
            let ledger = node.ledger()?;
            let created = apikeys::create(node, &ledger, actor, principal, models, expires);
            ledger.close()?;
            Ok(serde_json::to_value(&created?)?)
        }
        Op::ApikeyRevoke { id } => {
            let ledger = node.ledger()?;
            let index = apikeys::revoke(node, &ledger, actor, id);
            ledger.close()?;
            Ok(serde_json::json!({"id": id, "revoked": true, "ledger_index": index?}))
        }
        Op::Lockdown { on } => {
            let ledger = node.ledger()?;
            let index = apikeys::set_lockdown(node, &ledger, actor, *on);
            ledger.close()?;
            Ok(serde_json::json!({"lockdown": on, "ledger_index": index?}))
        }
        Op::Block {
            principal,
            block,
            reason,
        } => {
            let ledger = node.ledger()?;
            let index = apikeys::set_blocked(node, &ledger, actor, principal, *block, reason);
            ledger.close()?;
            Ok(
                serde_json::json!({"principal": principal, "blocked": block, "ledger_index": index?}),
            )
        }
        Op::Admit {
            model,
            name,
            version,
            signature,
            model_card,
            threat_model,
            threads,
        } => {
            let req = admit::AdmitRequest {
                model: model.clone(),
                id: ReleaseId::new(name, version).map_err(anyhow::Error::msg)?,
                signature: signature.clone(),
                model_card: model_card.clone(),
                threat_model: threat_model.clone(),
                threads: *threads,
            };
            let progress = admit::Progress {
                total: progress.total,
                advance: progress.advance,
            };
            Ok(serde_json::to_value(admit::admit(
                node, actor, &req, progress,
            )?)?)
        }
        Op::Approve {
            release,
            export,
            accept_findings,
        } => {
            let purpose = if *export {
                Purpose::Export
            } else {
                Purpose::Promote
            };
            outcome(&lifecycle::approve(
                node,
                actor,
                &release_id(release)?,
                purpose,
                *accept_findings,
            )?)
        }
        Op::Reject { release, reason } | Op::Revoke { release, reason } => {
            let to = if matches!(op, Op::Reject { .. }) {
                State::Rejected
            } else {
                State::Revoked
            };
            outcome(&lifecycle::reject_or_revoke(
                node,
                actor,
                &release_id(release)?,
                to,
                reason,
            )?)
        }
        Op::Deploy { release } => outcome(&lifecycle::deploy(
            node,
            actor,
            &release_id(release)?,
            progress.advance,
        )?),
        Op::Rollback { model } => {
            outcome(&lifecycle::rollback(node, actor, model, progress.advance)?)
        }
        Op::Export { release, to } => outcome(&lifecycle::export(
            node,
            actor,
            &release_id(release)?,
            to,
            progress.advance,
        )?),
        Op::Shred { release } => outcome(&lifecycle::shred(node, actor, &release_id(release)?)?.0),
        Op::PrincipalAdd { name, roles } => {
            let issued = principals::add(node, actor, name, roles)?;
            Ok(serde_json::json!({"principal": name, "token": issued.token.as_str()}))
        }
        Op::PrincipalRotate { name } => {
            let issued = principals::rotate(node, actor, name)?;
            Ok(serde_json::json!({"principal": name, "token": issued.token.as_str()}))
        }
        Op::PrincipalDisable { name, disabled } => {
            principals::set_disabled(node, actor, name, *disabled)?;
            Ok(serde_json::json!({"principal": name, "disabled": disabled}))
        }
    }
}

/// Authenticates the request's token and carries out its change (the server's side).
/// Returns the change too, when it was understood.
pub fn serve_request(node: &mut Node, line: &str) -> (Reply, Option<Op>) {
    let req: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => {
            return (
                Reply::from_result(Err(anyhow::anyhow!("bad admin request: {e}"))),
                None,
            )
        }
    };
    let result = node
        .authenticate(req.token.as_deref(), req.change.roles())
        .and_then(|actor| execute(node, &actor, &req.change, &Progress::none()));
    (Reply::from_result(result), Some(req.change))
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
