//! `warden releases` and `warden show`: read-only views of the registry.

use std::io::Write;

use registry::ReleaseId;

use crate::cli::release::{ReleasesArgs, ShowArgs};
use crate::exit::Code;
use gateway::admin_listener::Method;

use super::release::Ctx;
use crate::node::views;

pub fn releases(ctx: &Ctx, a: ReleasesArgs) -> anyhow::Result<Code> {
    let list: Vec<views::ReleaseRow> = if ctx.server.is_some() {
        let path = super::admin_routes::releases_path(a.model.as_deref())?;
        let v = ctx.remote(Method::GET, &path, None)?.unwrap_or_default();
        serde_json::from_value(v["releases"].clone())?
    } else {
        views::releases(&mut ctx.node()?, a.model.as_deref())?
    };
    let mut out = std::io::stdout().lock();
    for row in &list {
        let r = &row.release;
        if a.json.json {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        } else {
            writeln!(
                out,
                "{:<40} {:<11} {:<24} findings {:<4} {}{}",
                r.id.to_string(),
                r.state.name(),
                r.admitted_at,
                r.findings,
                r.signer.as_deref().unwrap_or("unsigned"),
                if row.last_known_good {
                    "  (last known good)"
                } else {
                    ""
                }
            )?;
        }
    }
    if list.is_empty() && !a.json.json {
        eprintln!("no releases yet: admit one with `warden admit MODEL --name N --version V`");
    }
    Ok(Code::Ok)
}

pub fn show(ctx: &Ctx, a: ShowArgs) -> anyhow::Result<Code> {
    let id = ReleaseId::parse(&a.release).map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    if a.aibom {
        let path = format!("/admin/v1/releases/{id}/aibom");
        if let Some(v) = ctx.remote(Method::GET, &path, None)? {
            writeln!(out, "{v}")?;
            return Ok(Code::Ok);
        }
    }
    let path = format!("/admin/v1/releases/{id}");
    let found = match ctx.remote(Method::GET, &path, None)? {
        Some(v) => Some(serde_json::from_value::<views::ReleaseDetail>(v)?),
        None => views::release(&mut ctx.node()?, &id)?,
    };
    let Some(d) = found else {
        anyhow::bail!("no release {id}: `warden releases` lists them");
    };
    if a.aibom {
        writeln!(out, "{}", d.release.aibom)?;
        return Ok(Code::Ok);
    }
    if a.json.json {
        writeln!(out, "{}", serde_json::to_string(&d)?)?;
        return Ok(Code::Ok);
    }
    let (r, files, approvals, exports, history) = (
        &d.release,
        &d.files,
        &d.approvals,
        &d.export_approvals,
        &d.history,
    );
    writeln!(out, "release      {id}")?;
    writeln!(out, "state        {}", r.state)?;
    writeln!(out, "manifest     {}", r.manifest)?;
    writeln!(
        out,
        "signer       {}",
        r.signer.as_deref().unwrap_or("unsigned")
    )?;
    writeln!(out, "admitted     {} by {}", r.admitted_at, r.admitted_by)?;
    writeln!(
        out,
        "scan         {} findings{}",
        r.findings,
        r.max_severity
            .as_deref()
            .map(|s| format!(", worst {s}"))
            .unwrap_or_default()
    )?;
    for reason in &r.reasons {
        writeln!(out, "reason       {reason}")?;
    }
    writeln!(out, "files")?;
    for f in files {
        writeln!(out, "  {:<48} {:>14} sha256:{}", f.path, f.size, f.sha256)?;
    }
    for (label, list) in [("approvals", approvals), ("export approvals", exports)] {
        if !list.is_empty() {
            writeln!(out, "{label}")?;
            for ap in list.iter() {
                writeln!(
                    out,
                    "  {} at {}{}",
                    ap.approver,
                    ap.time,
                    if ap.accepts_findings {
                        " (accepts findings)"
                    } else {
                        ""
                    }
                )?;
            }
        }
    }
    writeln!(out, "history")?;
    for s in history {
        writeln!(
            out,
            "  {} {} -> {} by {}{}{}",
            s.time,
            s.from.map(|f| f.name()).unwrap_or("-"),
            s.to,
            s.actor,
            s.ledger_index
                .map(|i| format!(" (ledger {i})"))
                .unwrap_or_default(),
            if s.note.is_empty() {
                String::new()
            } else {
                format!(": {}", s.note)
            }
        )?;
    }
    Ok(Code::Ok)
}
