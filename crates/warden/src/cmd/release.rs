//! `warden init`, the release lifecycle commands and `warden principal`: parse, open the
//! node, act as the presented principal, print.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gateway::admin_listener::Method;
use registry::{ReleaseId, Role, State};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::cli::release::*;
use crate::cli::{Cli, Command};
use crate::config::Provider;
use crate::exit::Code;
use crate::node::remote::{self, Op};
use crate::node::{init, Node};
use crate::progress::ByteProgress;

/// The global options every command here needs.
pub struct Ctx {
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    /// `--server`: a running server's admin API to act through.
    pub server: Option<String>,
    pub server_ca: Option<PathBuf>,
}

impl Ctx {
    pub fn node(&self) -> anyhow::Result<Node> {
        Node::open(&self.data_dir, self.config.as_deref())
    }

    /// The presented token: `--token-file`/`WARDEN_TOKEN_FILE`, else `WARDEN_TOKEN`.
    pub fn token(&self) -> anyhow::Result<Option<Zeroizing<String>>> {
        if let Some(path) = &self.token_file {
            let text = Zeroizing::new(super::signing::read_small(path, "token file")?);
            return Ok(Some(Zeroizing::new(
                text.lines().next().unwrap_or_default().trim().to_string(),
            )));
        }
        Ok(std::env::var("WARDEN_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(Zeroizing::new))
    }

    /// With `--server`: one admin API request as this principal; its JSON answer, or the
    /// refusal as an error (401 and 403 as denials, exit 2).
    pub fn remote(
        &self,
        method: gateway::admin_listener::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Option<Value>> {
        let Some(url) = &self.server else {
            return Ok(None);
        };
        let ca = match &self.server_ca {
            Some(p) => Some(super::signing::read_small(p, "--server-ca")?),
            None => None,
        };
        let client = gateway::https_client::HttpsClient::new(
            "--server",
            url,
            ca.as_deref().map(str::as_bytes),
        )?;
        let token = self.token()?;
        let body = body.map(|b| b.to_string().into_bytes());
        let (status, answer) =
            client.call(token.as_deref().map(|t| t.as_str()), method, path, body)?;
        let v: Value = serde_json::from_slice(&answer).map_err(|_| {
            anyhow::anyhow!("{url} answered HTTP {status} without JSON: is it a Warden admin API?")
        })?;
        if status.is_success() {
            return Ok(Some(v));
        }
        let message = v["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_string();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(crate::node::denied(message));
        }
        anyhow::bail!("the server refused (HTTP {status}): {message}")
    }

    /// Carries out a change: through a server's admin API with `--server`; else through
    /// the running `warden serve` if there is one (it holds the ledger), else here, with a
    /// progress bar when `bar`.
    pub fn carry_out(&self, op: &Op, bar: bool) -> anyhow::Result<Value> {
        if self.server.is_some() {
            let (method, path, body) = super::admin_routes::request_for(op)?;
            return self
                .remote(method, &path, Some(&body))?
                .ok_or_else(|| anyhow::anyhow!("internal: no server"));
        }
        let (mut node, who) = self.act(op.roles())?;
        let token = self.token()?;
        if let Some(reply) = remote::call(&self.data_dir, token.as_deref().map(|t| t.as_str()), op)?
        {
            return reply.into_result();
        }
        let p = ByteProgress::new(bar);
        let result = remote::execute(
            &mut node,
            &who,
            op,
            &remote::Progress {
                total: &|t| p.set_total(t),
                advance: &|n| p.inc(n),
            },
        );
        p.finish();
        result
    }

    pub fn act(&self, roles: &[Role]) -> anyhow::Result<(Node, registry::Principal)> {
        let mut node = self.node()?;
        let token = self.token()?;
        let who = node.authenticate(token.as_deref().map(|t| t.as_str()), roles)?;
        Ok((node, who))
    }
}

fn print_outcome(o: &Value, json: bool) -> anyhow::Result<Code> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{o}")?;
    } else {
        writeln!(
            out,
            "{} (ledger entry {})",
            o["message"].as_str().unwrap_or_default(),
            o["ledger_index"]
        )?;
    }
    Ok(Code::Ok)
}

/// An absolute path: the change may be carried out by the server, elsewhere.
fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

pub fn run(cli: Cli) -> anyhow::Result<Code> {
    let ctx = Ctx {
        data_dir: cli.data_dir,
        config: cli.config,
        token_file: cli.token_file,
        server: cli.server,
        server_ca: cli.server_ca,
    };
    let (op, json) = match cli.command {
        Command::Init(a) => return run_init(&ctx, a),
        Command::Admit(a) => return run_admit(&ctx, a),
        Command::Releases(a) => return super::release_show::releases(&ctx, a),
        Command::Show(a) => return super::release_show::show(&ctx, a),
        Command::Principal(a) => return run_principal(&ctx, a),
        Command::Approve(a) => (
            Op::Approve {
                release: a.release,
                export: a.export,
                accept_findings: a.accept_findings,
            },
            a.json.json,
        ),
        Command::Reject(a) => (
            Op::Reject {
                release: a.release,
                reason: a.reason,
            },
            a.json.json,
        ),
        Command::Revoke(a) => (
            Op::Revoke {
                release: a.release,
                reason: a.reason,
            },
            a.json.json,
        ),
        Command::Deploy(a) => (Op::Deploy { release: a.release }, a.json.json),
        Command::Rollback(a) => (Op::Rollback { model: a.model }, a.json.json),
        Command::Export(a) => (
            Op::Export {
                release: a.release,
                to: absolute(&a.to)?,
            },
            a.json.json,
        ),
        Command::Shred(a) => (Op::Shred { release: a.release }, a.json.json),
        _ => anyhow::bail!("internal: not a release command"),
    };
    let v = ctx.carry_out(&op, !json)?;
    print_outcome(&v, json)
}

fn run_init(ctx: &Ctx, a: InitArgs) -> anyhow::Result<Code> {
    let opts = init::InitOptions {
        provider: match a.kek {
            KekArg::File => Provider::File,
            KekArg::Pkcs11 => Provider::Pkcs11,
        },
        hsm_module: a.hsm_module,
        hsm_token: a.hsm_token,
        admin: a.admin,
        origin: a.origin,
    };
    let done = init::init(&ctx.data_dir, &opts)?;
    let mut out = std::io::stdout().lock();
    if a.json.json {
        let v = serde_json::json!({
            "type": "init",
            "data_dir": ctx.data_dir.display().to_string(),
            "config": done.config.display().to_string(),
            "admin": done.admin,
            "token": done.token.as_str(),
            "vkey": done.vkey,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "{}", done.token.as_str())?;
        eprintln!(
            "initialised {}.\nThe line above is the token of admin {:?}: it is shown only this once. Keep it in a file readable only by you and pass it with --token-file FILE (or WARDEN_TOKEN).\nLedger verifier key (keep a copy off this host): {}\nConfiguration: {}",
            ctx.data_dir.display(),
            done.admin,
            done.vkey,
            done.config.display()
        );
    }
    Ok(Code::Ok)
}

fn run_admit(ctx: &Ctx, a: AdmitArgs) -> anyhow::Result<Code> {
    ReleaseId::new(&a.name, &a.version).map_err(anyhow::Error::msg)?;
    let optional = |p: &Option<PathBuf>| p.as_deref().map(absolute).transpose();
    let op = Op::Admit {
        model: absolute(&a.model)?,
        name: a.name,
        version: a.version,
        signature: optional(&a.signature)?,
        model_card: optional(&a.model_card)?,
        threat_model: optional(&a.threat_model)?,
        threads: a.threads,
    };
    let r = ctx.carry_out(&op, !a.json.json)?;
    let admitted = r["state"] == State::Admitted.name();
    let mut out = std::io::stdout().lock();
    let field = |k: &str| r[k].as_str().unwrap_or_default().to_string();
    if a.json.json {
        writeln!(out, "{r}")?;
    } else if admitted {
        writeln!(
            out,
            "{} admitted: {} files, {} bytes sealed; manifest {}; signer {}; {} scan findings (ledger entry {})",
            field("release"),
            r["files"],
            r["bytes"],
            field("manifest"),
            r["signer"].as_str().unwrap_or("none (unsigned, allowed by policy)"),
            r["findings"],
            r["ledger_index"]
        )?;
        writeln!(
            out,
            "next: two approvers run `warden approve {}`{}",
            field("release"),
            if r["findings"].as_u64().unwrap_or(0) > 0 {
                " --accept-findings (after reading `warden show` )"
            } else {
                ""
            }
        )?;
    } else {
        writeln!(
            out,
            "{} rejected (ledger entry {}):",
            field("release"),
            r["ledger_index"]
        )?;
        for reason in r["reasons"].as_array().into_iter().flatten() {
            writeln!(out, "  - {}", reason.as_str().unwrap_or_default())?;
        }
    }
    Ok(if admitted { Code::Ok } else { Code::Denied })
}

fn run_principal(ctx: &Ctx, a: PrincipalArgs) -> anyhow::Result<Code> {
    let mut out = std::io::stdout().lock();
    match a.command {
        PrincipalCommand::Add(p) => {
            let op = Op::PrincipalAdd {
                name: p.name.clone(),
                roles: p.roles.clone(),
            };
            let v = ctx.carry_out(&op, false)?;
            let token = Zeroizing::new(v["token"].as_str().unwrap_or_default().to_string());
            print_token(&mut out, &p.name, &token, p.json.json)?;
        }
        PrincipalCommand::Rotate(p) => {
            let v = ctx.carry_out(
                &Op::PrincipalRotate {
                    name: p.name.clone(),
                },
                false,
            )?;
            let token = Zeroizing::new(v["token"].as_str().unwrap_or_default().to_string());
            print_token(&mut out, &p.name, &token, p.json.json)?;
        }
        command @ (PrincipalCommand::Disable(_) | PrincipalCommand::Enable(_)) => {
            let (disabled, p) = match command {
                PrincipalCommand::Disable(p) => (true, p),
                PrincipalCommand::Enable(p) => (false, p),
                _ => anyhow::bail!("internal: not disable or enable"),
            };
            let op = Op::PrincipalDisable {
                name: p.name.clone(),
                disabled,
            };
            ctx.carry_out(&op, false)?;
            writeln!(
                out,
                "{} is {}",
                p.name,
                if disabled { "disabled" } else { "enabled" }
            )?;
        }
        PrincipalCommand::List(j) => {
            let path = "/admin/v1/principals";
            let list: Vec<Value> = match ctx.remote(Method::GET, path, None)? {
                Some(v) => serde_json::from_value(v["principals"].clone())?,
                None => crate::node::views::principals(&mut ctx.node()?)?
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<_, _>>()?,
            };
            for p in &list {
                if j.json {
                    writeln!(out, "{p}")?;
                } else {
                    let roles: Vec<&str> = p["roles"]
                        .as_array()
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{:<24} {:<32} {}{}",
                        p["name"].as_str().unwrap_or_default(),
                        roles.join(","),
                        p["created"].as_str().unwrap_or_default(),
                        if p["disabled"] == true {
                            "  disabled"
                        } else {
                            ""
                        }
                    )?;
                }
            }
        }
    }
    Ok(Code::Ok)
}

fn print_token(out: &mut impl Write, name: &str, token: &str, json: bool) -> anyhow::Result<()> {
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"principal": name, "token": token})
        )?;
    } else {
        writeln!(out, "{token}")?;
        eprintln!("the line above is {name}'s token: it is shown only this once");
    }
    Ok(())
}
