//! Principals of the admin plane: added, disabled and given new tokens by an admin, each
//! change in the ledger.

use anyhow::bail;
use ledger::record::Record;
use registry::identity::{self, Issued};
use registry::{Principal, Role};

use super::{denied, now, Node};

/// Adds a principal with `roles`; returns its token (shown once).
pub fn add(
    node: &mut Node,
    actor: &Principal,
    name: &str,
    roles: &[Role],
) -> anyhow::Result<Issued> {
    identity::check_name(name).map_err(anyhow::Error::msg)?;
    if roles.is_empty() {
        bail!("give at least one --role (admin, approver, operator, auditor)");
    }
    let issued = identity::issue().map_err(anyhow::Error::msg)?;
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    let principal = Principal {
        name: name.into(),
        roles: roles.clone(),
        created: now()?,
        disabled: false,
        token_id: issued.token_id.clone(),
        token_hash: issued.token_hash,
    };
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    let ledger = node.ledger()?;
    let out = node.registry.write(|tx| -> anyhow::Result<()> {
        if tx.principal(name)?.is_some() {
            return Err(denied(format!("a principal named {name} exists")));
        }
        super::record(
            &ledger,
            &Record::new("admin.principal-add", &actor.name)
                .subject(name)
                .attr("roles", &names.join(",")),
        )?;
        tx.add_principal(&principal)?;
        Ok(())
    });
    ledger.close()?;
    out.map(|()| issued)
}

/// Disables or re-enables a principal. The last enabled admin cannot be disabled.
pub fn set_disabled(
    node: &mut Node,
    actor: &Principal,
    name: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    let ledger = node.ledger()?;
    let out = node.registry.write(|tx| -> anyhow::Result<()> {
        let Some(p) = tx.principal(name)? else {
            bail!("no principal named {name}: `warden principal list` shows them");
        };
        if disabled && p.has(Role::Admin) && !p.disabled && tx.count_admins()? <= 1 {
            return Err(denied(format!(
                "{name} is the last enabled admin; add another admin first"
            )));
        }
        let kind = if disabled {
            "admin.principal-disable"
        } else {
            "admin.principal-enable"
        };
        super::record(&ledger, &Record::new(kind, &actor.name).subject(name))?;
        tx.set_disabled(name, disabled)?;
        Ok(())
    });
    ledger.close()?;
    out
}

/// Gives a principal a new token; the old one stops working at once.
pub fn rotate(node: &mut Node, actor: &Principal, name: &str) -> anyhow::Result<Issued> {
    if actor.name != name && !actor.has(Role::Admin) {
        return Err(denied("only an admin can rotate another principal's token"));
    }
    let issued = identity::issue().map_err(anyhow::Error::msg)?;
    let ledger = node.ledger()?;
    let out = node.registry.write(|tx| -> anyhow::Result<()> {
        if tx.principal(name)?.is_none() {
            bail!("no principal named {name}");
        }
        super::record(
            &ledger,
            &Record::new("admin.principal-rotate", &actor.name).subject(name),
        )?;
        tx.set_token(name, &issued.token_id, &issued.token_hash)?;
        Ok(())
    });
    ledger.close()?;
    out.map(|()| issued)
}
