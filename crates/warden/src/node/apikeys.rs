//! API keys of the inference plane and the lockdown switch: created, revoked and set by an
//! admin, each change recorded in the ledger inside the registry transaction. These take a
//! ledger already open, because `warden serve` holds the ledger while it runs and carries
//! them out for the command line (see `remote`).

use std::time::SystemTime;

use anyhow::bail;
use ledger::record::Record;
use ledger::Ledger;
use registry::identity;
use registry::{ApiKey, Principal};
use serde::Serialize;
use zeroize::Zeroizing;

use super::{denied, now, Node};

/// A new key: shown once.
#[derive(Serialize)]
pub struct Created {
    pub id: String,
    #[serde(serialize_with = "reveal")]
    pub key: Zeroizing<String>,
    pub principal: String,
    pub models: Vec<String>,
    pub expires: Option<String>,
    pub ledger_index: u64,
}

fn reveal<S: serde::Serializer>(k: &Zeroizing<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// A model-name pattern of a key: the characters of model names and `*`.
fn check_pattern(p: &str) -> anyhow::Result<()> {
    let ok = !p.is_empty()
        && p.len() <= 128
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/*".contains(&b));
    if !ok {
        bail!("model pattern {p:?} must be 1-128 letters, digits, '.', '_', '-', ':', '/' or '*'");
    }
    Ok(())
}

/// Creates an API key for `principal`, scoped to `models` (patterns), expiring at
/// `expires` if given.
pub fn create(
    node: &mut Node,
    ledger: &Ledger,
    actor: &Principal,
    principal: &str,
    models: &[String],
    expires: Option<SystemTime>,
) -> anyhow::Result<Created> {
    identity::check_name(principal).map_err(anyhow::Error::msg)?;
    if models.is_empty() {
        bail!("give the models the key may use: --models 'PATTERN' (e.g. 'iris*', or '*' for all)");
    }
    for m in models {
        check_pattern(m)?;
    }
    let expires = match expires {
        Some(t) if t <= SystemTime::now() => bail!("the expiry is in the past"),
        Some(t) => Some(humantime::format_rfc3339_millis(t).to_string()),
        None => None,
    };
    let issued = identity::issue().map_err(anyhow::Error::msg)?;
    let key = ApiKey {
        id: issued.token_id.clone(),
        principal: principal.to_string(),
        hash: issued.token_hash,
        models: models.to_vec(),
        created: now()?,
        expires: expires.clone(),
        revoked: false,
    };
    let index = node.registry.write(|tx| -> anyhow::Result<u64> {
        if tx.api_key(&key.id)?.is_some() || tx.principal_by_token_id(&key.id)?.is_some() {
            bail!("a key with this id exists already; try again");
        }
        let mut r = Record::new("admin.apikey-create", &actor.name)
            .subject(&key.id)
            .attr("principal", principal)
            .attr("models", &models.join(","));
        if let Some(e) = &expires {
            r = r.attr("expires", e);
        }
        let index = super::record(ledger, &r)?;
        tx.add_api_key(&key)?;
        Ok(index)
    })?;
    Ok(Created {
        id: key.id,
        key: issued.token,
        principal: key.principal,
        models: key.models,
        expires,
        ledger_index: index,
    })
}

/// Revokes a key: refused by `warden serve` from its next registry poll (within 250 ms).
pub fn revoke(
    node: &mut Node,
    ledger: &Ledger,
    actor: &Principal,
    id: &str,
) -> anyhow::Result<u64> {
    node.registry.write(|tx| -> anyhow::Result<u64> {
        match tx.api_key(id)? {
            None => bail!("no API key {id}: `warden apikey list` shows them"),
            Some(k) if k.revoked => return Err(denied(format!("API key {id} is revoked already"))),
            Some(_) => {}
        }
        let index = super::record(
            ledger,
            &Record::new("admin.apikey-revoke", &actor.name).subject(id),
        )?;
        tx.revoke_api_key(id)?;
        Ok(index)
    })
}

/// Turns the lockdown on or off: while on, `warden serve` refuses all inference.
pub fn set_lockdown(
    node: &mut Node,
    ledger: &Ledger,
    actor: &Principal,
    on: bool,
) -> anyhow::Result<u64> {
    let value = if on { "on" } else { "off" };
    node.registry.write(|tx| -> anyhow::Result<u64> {
        let index = super::record(
            ledger,
            &Record::new("admin.lockdown", &actor.name)
                .subject(gateway::control::LOCKDOWN)
                .attr("state", value),
        )?;
        tx.set_setting(gateway::control::LOCKDOWN, value, &actor.name, &now()?)?;
        Ok(index)
    })
}

/// The principals blocked from the inference plane.
pub fn blocked(node: &mut Node) -> anyhow::Result<Vec<String>> {
    let v = node.registry.read(|tx| {
        tx.setting(gateway::control::BLOCKED)
            .map_err(anyhow::Error::from)
    })?;
    gateway::control::parse_blocked(v.as_deref()).map_err(anyhow::Error::msg)
}

/// Blocks a principal from the inference plane (`warden serve` refuses its requests and
/// cuts its open streams within one poll), or lets it in again.
pub fn set_blocked(
    node: &mut Node,
    ledger: &Ledger,
    actor: &Principal,
    principal: &str,
    block: bool,
    reason: &str,
) -> anyhow::Result<u64> {
    identity::check_name(principal).map_err(anyhow::Error::msg)?;
    node.registry.write(|tx| -> anyhow::Result<u64> {
        let current = tx.setting(gateway::control::BLOCKED)?;
        let mut list =
            gateway::control::parse_blocked(current.as_deref()).map_err(anyhow::Error::msg)?;
        let present = list.iter().any(|p| p == principal);
        match (block, present) {
            (true, true) => return Err(denied(format!("{principal} is blocked already"))),
            (false, false) => return Err(denied(format!("{principal} is not blocked"))),
            (true, false) => list.push(principal.to_string()),
            (false, true) => list.retain(|p| p != principal),
        }
        list.sort();
        let mut rec = Record::new(
            if block {
                "admin.block"
            } else {
                "admin.unblock"
            },
            &actor.name,
        )
        .subject(principal);
        if !reason.is_empty() {
            rec = rec.attr("reason", &super::admit::truncate(reason, 500));
        }
        let index = super::record(ledger, &rec)?;
        let value = serde_json::to_string(&list)?;
        tx.set_setting(gateway::control::BLOCKED, &value, &actor.name, &now()?)?;
        Ok(index)
    })
}

/// Whether the lockdown is on.
pub fn lockdown(node: &mut Node) -> anyhow::Result<bool> {
    let v = node.registry.read(|tx| {
        tx.setting(gateway::control::LOCKDOWN)
            .map_err(anyhow::Error::from)
    })?;
    Ok(v.as_deref() == Some("on"))
}
