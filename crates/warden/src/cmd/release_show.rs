//! `warden releases` and `warden show`: read-only views of the registry.

use std::io::Write;

use registry::{Purpose, ReleaseId};

use crate::cli::release::{ReleasesArgs, ShowArgs};
use crate::exit::Code;
use crate::node::Node;

pub fn releases(node: &mut Node, a: ReleasesArgs) -> anyhow::Result<Code> {
    if let Some(m) = &a.model {
        ReleaseId::check_model(m).map_err(anyhow::Error::msg)?;
    }
    let (list, live) = node.registry.read(|tx| -> anyhow::Result<_> {
        Ok((tx.releases(a.model.as_deref())?, tx.all_live()?))
    })?;
    let mut out = std::io::stdout().lock();
    for r in &list {
        let is_live = live
            .iter()
            .any(|l| l.model == r.id.name && l.version == r.id.version);
        let lkg = live
            .iter()
            .any(|l| l.model == r.id.name && l.previous.as_deref() == Some(r.id.version.as_str()));
        if a.json.json {
            let mut v = serde_json::to_value(r)?;
            v["live"] = is_live.into();
            v["last_known_good"] = lkg.into();
            writeln!(out, "{v}")?;
        } else {
            writeln!(
                out,
                "{:<40} {:<11} {:<24} findings {:<4} {}{}",
                r.id.to_string(),
                r.state.name(),
                r.admitted_at,
                r.findings,
                r.signer.as_deref().unwrap_or("unsigned"),
                if lkg { "  (last known good)" } else { "" }
            )?;
        }
    }
    if list.is_empty() && !a.json.json {
        eprintln!("no releases yet: admit one with `warden admit MODEL --name N --version V`");
    }
    Ok(Code::Ok)
}

pub fn show(node: &mut Node, a: ShowArgs) -> anyhow::Result<Code> {
    let id = ReleaseId::parse(&a.release).map_err(anyhow::Error::msg)?;
    let found = node.registry.read(|tx| -> anyhow::Result<_> {
        let Some(r) = tx.release(&id)? else {
            return Ok(None);
        };
        Ok(Some((
            r,
            tx.files(&id)?,
            tx.approvals(&id, Purpose::Promote)?,
            tx.approvals(&id, Purpose::Export)?,
            tx.history(&id)?,
            tx.live(&id.name)?,
        )))
    })?;
    let Some((r, files, approvals, exports, history, live)) = found else {
        anyhow::bail!("no release {id}: `warden releases` lists them");
    };
    let mut out = std::io::stdout().lock();
    if a.aibom {
        writeln!(out, "{}", r.aibom)?;
        return Ok(Code::Ok);
    }
    if a.json.json {
        let mut v = serde_json::to_value(&r)?;
        v["files"] = serde_json::to_value(&files)?;
        v["approvals"] = serde_json::to_value(&approvals)?;
        v["export_approvals"] = serde_json::to_value(&exports)?;
        v["history"] = serde_json::to_value(&history)?;
        v["live"] = live
            .as_ref()
            .is_some_and(|l| l.version == id.version)
            .into();
        writeln!(out, "{v}")?;
        return Ok(Code::Ok);
    }
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
    for f in &files {
        writeln!(out, "  {:<48} {:>14} sha256:{}", f.path, f.size, f.sha256)?;
    }
    for (label, list) in [("approvals", &approvals), ("export approvals", &exports)] {
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
    for s in &history {
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
