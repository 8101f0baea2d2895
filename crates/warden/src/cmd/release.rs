//! `warden init`, the release lifecycle commands and `warden principal`: parse, open the
//! node, act as the presented principal, print.

use std::io::Write;
use std::path::PathBuf;

use registry::{Purpose, ReleaseId, Role, State};
use zeroize::Zeroizing;

use crate::cli::release::*;
use crate::cli::{Cli, Command};
use crate::config::Provider;
use crate::exit::Code;
use crate::node::{admit, init, lifecycle, principals, Node};
use crate::progress::ByteProgress;

/// The global options every command here needs.
pub struct Ctx {
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
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

    pub fn act(&self, roles: &[Role]) -> anyhow::Result<(Node, registry::Principal)> {
        let mut node = self.node()?;
        let token = self.token()?;
        let who = node.authenticate(token.as_deref().map(|t| t.as_str()), roles)?;
        Ok((node, who))
    }
}

fn release_id(s: &str) -> anyhow::Result<ReleaseId> {
    ReleaseId::parse(s).map_err(anyhow::Error::msg)
}

fn print_outcome(o: &lifecycle::Outcome, json: bool) -> anyhow::Result<Code> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(o)?)?;
    } else {
        writeln!(out, "{} (ledger entry {})", o.message, o.ledger_index)?;
    }
    Ok(Code::Ok)
}

pub fn run(cli: Cli) -> anyhow::Result<Code> {
    let ctx = Ctx {
        data_dir: cli.data_dir,
        config: cli.config,
        token_file: cli.token_file,
    };
    match cli.command {
        Command::Init(a) => run_init(&ctx, a),
        Command::Admit(a) => run_admit(&ctx, a),
        Command::Approve(a) => {
            let (mut node, who) = ctx.act(&[Role::Approver])?;
            let purpose = if a.export {
                Purpose::Export
            } else {
                Purpose::Promote
            };
            let o = lifecycle::approve(
                &mut node,
                &who,
                &release_id(&a.release)?,
                purpose,
                a.accept_findings,
            )?;
            print_outcome(&o, a.json.json)
        }
        Command::Reject(a) => {
            let (mut node, who) = ctx.act(&[Role::Approver])?;
            let o = lifecycle::reject_or_revoke(
                &mut node,
                &who,
                &release_id(&a.release)?,
                State::Rejected,
                &a.reason,
            )?;
            print_outcome(&o, a.json.json)
        }
        Command::Revoke(a) => {
            let (mut node, who) = ctx.act(&[Role::Admin, Role::Approver])?;
            let o = lifecycle::reject_or_revoke(
                &mut node,
                &who,
                &release_id(&a.release)?,
                State::Revoked,
                &a.reason,
            )?;
            print_outcome(&o, a.json.json)
        }
        Command::Deploy(a) => {
            let (mut node, who) = ctx.act(&[Role::Operator, Role::Admin])?;
            let p = ByteProgress::new(!a.json.json);
            let o = lifecycle::deploy(&mut node, &who, &release_id(&a.release)?, &|n| p.inc(n))?;
            p.finish();
            print_outcome(&o, a.json.json)
        }
        Command::Rollback(a) => {
            let (mut node, who) = ctx.act(&[Role::Operator, Role::Admin])?;
            let p = ByteProgress::new(!a.json.json);
            let o = lifecycle::rollback(&mut node, &who, &a.model, &|n| p.inc(n))?;
            p.finish();
            print_outcome(&o, a.json.json)
        }
        Command::Export(a) => {
            let (mut node, who) = ctx.act(&[Role::Operator, Role::Admin])?;
            let p = ByteProgress::new(!a.json.json);
            let o = lifecycle::export(&mut node, &who, &release_id(&a.release)?, &a.to, &|n| {
                p.inc(n)
            })?;
            p.finish();
            print_outcome(&o, a.json.json)
        }
        Command::Shred(a) => {
            let (mut node, who) = ctx.act(&[Role::Admin])?;
            let (o, _) = lifecycle::shred(&mut node, &who, &release_id(&a.release)?)?;
            print_outcome(&o, a.json.json)
        }
        Command::Releases(a) => super::release_show::releases(&mut ctx.node()?, a),
        Command::Show(a) => super::release_show::show(&mut ctx.node()?, a),
        Command::Principal(a) => run_principal(&ctx, a),
        _ => anyhow::bail!("internal: not a release command"),
    }
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
    let id = ReleaseId::new(&a.name, &a.version).map_err(anyhow::Error::msg)?;
    let (mut node, who) = ctx.act(&[Role::Operator, Role::Admin])?;
    let req = admit::AdmitRequest {
        model: a.model,
        id,
        signature: a.signature,
        model_card: a.model_card,
        threat_model: a.threat_model,
        threads: a.threads,
    };
    let p = ByteProgress::new(!a.json.json);
    let result = admit::admit(
        &mut node,
        &who,
        &req,
        admit::Progress {
            total: &|t| p.set_total(t),
            advance: &|n| p.inc(n),
        },
    )?;
    p.finish();
    let mut out = std::io::stdout().lock();
    if a.json.json {
        writeln!(out, "{}", serde_json::to_string(&result)?)?;
    } else if result.state == State::Admitted {
        writeln!(
            out,
            "{} admitted: {} files, {} bytes sealed; manifest {}; signer {}; {} scan findings (ledger entry {})",
            result.release,
            result.files,
            result.bytes,
            result.manifest,
            result.signer.as_deref().unwrap_or("none (unsigned, allowed by policy)"),
            result.findings,
            result.ledger_index
        )?;
        writeln!(
            out,
            "next: two approvers run `warden approve {}`{}",
            result.release,
            if result.findings > 0 {
                " --accept-findings (after reading `warden show` )"
            } else {
                ""
            }
        )?;
    } else {
        writeln!(
            out,
            "{} rejected (ledger entry {}):",
            result.release, result.ledger_index
        )?;
        for r in &result.reasons {
            writeln!(out, "  - {r}")?;
        }
    }
    Ok(if result.state == State::Admitted {
        Code::Ok
    } else {
        Code::Denied
    })
}

fn run_principal(ctx: &Ctx, a: PrincipalArgs) -> anyhow::Result<Code> {
    let mut out = std::io::stdout().lock();
    match a.command {
        PrincipalCommand::Add(p) => {
            let (mut node, who) = ctx.act(&[Role::Admin])?;
            let issued = principals::add(&mut node, &who, &p.name, &p.roles)?;
            print_token(&mut out, &p.name, &issued.token, p.json.json)?;
        }
        PrincipalCommand::Rotate(p) => {
            let (mut node, who) = ctx.act(&[])?;
            let issued = principals::rotate(&mut node, &who, &p.name)?;
            print_token(&mut out, &p.name, &issued.token, p.json.json)?;
        }
        PrincipalCommand::Disable(p) => {
            let (mut node, who) = ctx.act(&[Role::Admin])?;
            principals::set_disabled(&mut node, &who, &p.name, true)?;
            writeln!(out, "{} is disabled", p.name)?;
        }
        PrincipalCommand::Enable(p) => {
            let (mut node, who) = ctx.act(&[Role::Admin])?;
            principals::set_disabled(&mut node, &who, &p.name, false)?;
            writeln!(out, "{} is enabled", p.name)?;
        }
        PrincipalCommand::List(j) => {
            let mut node = ctx.node()?;
            let list = node
                .registry
                .read(|tx| tx.principals().map_err(anyhow::Error::from))?;
            if j.json {
                for p in &list {
                    writeln!(out, "{}", serde_json::to_string(p)?)?;
                }
            } else {
                for p in &list {
                    let roles: Vec<&str> = p.roles.iter().map(|r| r.name()).collect();
                    writeln!(
                        out,
                        "{:<24} {:<32} {}{}",
                        p.name,
                        roles.join(","),
                        p.created,
                        if p.disabled { "  disabled" } else { "" }
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
