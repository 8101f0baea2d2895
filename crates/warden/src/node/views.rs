//! Read-only views of the registry as JSON: what `--json` prints and what the admin API
//! answers, from one place. No view holds a secret: keys and tokens are stored hashed and
//! their hashes are left out.

use std::time::SystemTime;

use registry::{Purpose, ReleaseId};
use serde_json::Value;

use super::Node;

/// A release in a list: its record, whether it is live, and whether it is its model's
/// last known good release (the one `warden rollback` returns to).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ReleaseRow {
    #[serde(flatten)]
    pub release: registry::Release,
    pub live: bool,
    pub last_known_good: bool,
}

/// Every release (of `model`, if given), oldest first.
pub fn releases(node: &mut Node, model: Option<&str>) -> anyhow::Result<Vec<ReleaseRow>> {
    if let Some(m) = model {
        ReleaseId::check_model(m).map_err(anyhow::Error::msg)?;
    }
    let (list, live) = node
        .registry
        .read(|tx| -> anyhow::Result<_> { Ok((tx.releases(model)?, tx.all_live()?)) })?;
    Ok(list
        .into_iter()
        .map(|r| {
            let is_live = live
                .iter()
                .any(|l| l.model == r.id.name && l.version == r.id.version);
            let lkg = live.iter().any(|l| {
                l.model == r.id.name && l.previous.as_deref() == Some(r.id.version.as_str())
            });
            ReleaseRow {
                release: r,
                live: is_live,
                last_known_good: lkg,
            }
        })
        .collect())
}

/// One release whole: its record, files, approvals and history.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ReleaseDetail {
    #[serde(flatten)]
    pub release: registry::Release,
    pub files: Vec<registry::FileRow>,
    pub approvals: Vec<registry::Approval>,
    pub export_approvals: Vec<registry::Approval>,
    pub history: Vec<registry::Step>,
    pub live: bool,
}

/// One release whole; `None` if there is no such release.
pub fn release(node: &mut Node, id: &ReleaseId) -> anyhow::Result<Option<ReleaseDetail>> {
    node.registry.read(|tx| -> anyhow::Result<_> {
        let Some(release) = tx.release(id)? else {
            return Ok(None);
        };
        Ok(Some(ReleaseDetail {
            release,
            files: tx.files(id)?,
            approvals: tx.approvals(id, Purpose::Promote)?,
            export_approvals: tx.approvals(id, Purpose::Export)?,
            history: tx.history(id)?,
            live: tx.live(&id.name)?.is_some_and(|l| l.version == id.version),
        }))
    })
}

/// Every API key (never the key itself), each with `state`: active, expired or revoked.
pub fn api_keys(node: &mut Node) -> anyhow::Result<Vec<Value>> {
    let keys = node
        .registry
        .read(|tx| tx.api_keys().map_err(anyhow::Error::from))?;
    let now = SystemTime::now();
    keys.iter()
        .map(|k| {
            let expired = k
                .expires
                .as_deref()
                .and_then(|e| humantime::parse_rfc3339(e).ok())
                .is_some_and(|t| t <= now);
            let state = if k.revoked {
                "revoked"
            } else if expired {
                "expired"
            } else {
                "active"
            };
            let mut v = serde_json::to_value(k)?;
            v["state"] = state.into();
            Ok(v)
        })
        .collect()
}

/// Every principal of the admin plane, with its roles (its token hash is never serialised).
pub fn principals(node: &mut Node) -> anyhow::Result<Vec<registry::Principal>> {
    node.registry
        .read(|tx| tx.principals().map_err(anyhow::Error::from))
}

/// The kill switch and the blocked principals.
pub fn switches(node: &mut Node) -> anyhow::Result<Value> {
    Ok(serde_json::json!({
        "lockdown": super::apikeys::lockdown(node)?,
        "blocked": super::apikeys::blocked(node)?,
    }))
}
