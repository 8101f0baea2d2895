//! Moving releases: approve, reject, deploy, roll back, revoke, export, shred. Each checks
//! the actor's role and the lifecycle, appends its ledger record and changes the registry
//! in one transaction.

use std::path::Path;

use anyhow::bail;
use ledger::record::Record;
use ledger::Ledger;
use registry::{
    Approval, Approvals, Live, Policy, Principal, Purpose, Release, ReleaseId, State, Step,
};

use super::integrity::{self, Sink};
use super::{denied, now, Node};

/// What a lifecycle operation did.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub release: String,
    pub from: Option<State>,
    pub state: State,
    pub ledger_index: u64,
    pub message: String,
}

fn load(node: &mut Node, id: &ReleaseId) -> anyhow::Result<Release> {
    node.registry
        .read(|tx| tx.release(id).map_err(anyhow::Error::from))?
        .ok_or_else(|| anyhow::anyhow!("no release {id}: `warden releases` lists them"))
}

fn transition(release: &Release, to: State) -> anyhow::Result<()> {
    release
        .state
        .transition(to)
        .map(|_| ())
        .map_err(|e| denied(format!("{}: {e}", release.id)))
}

/// One state change of one release.
struct Move<'a> {
    id: &'a ReleaseId,
    from: State,
    to: State,
}

/// Makes `mv` inside a transaction, after `rec` is in the ledger.
fn commit_move(
    tx: &registry::store::Tx,
    ledger: &Ledger,
    mv: Move,
    actor: &str,
    rec: Record,
    reasons: &[String],
) -> anyhow::Result<u64> {
    let Move { id, from, to } = mv;
    let index = super::record(
        ledger,
        &rec.subject(&id.to_string())
            .attr("from", from.name())
            .attr("to", to.name()),
    )?;
    if !tx.set_state(id, from, to, reasons)? {
        bail!("{id} changed state while this ran; look at `warden show {id}` and try again");
    }
    tx.record_step(
        id,
        &Step {
            from: Some(from),
            to,
            actor: actor.into(),
            time: now()?,
            ledger_index: Some(index),
            note: reasons.join("; "),
        },
    )?;
    Ok(index)
}

fn policy(node: &Node, purpose: Purpose) -> Policy {
    Policy {
        required: match purpose {
            Purpose::Promote => node.config.approvals.required,
            Purpose::Export => node.config.approvals.export_required,
        },
        role: "approver".into(),
    }
}

/// Records one approval; promotes the release when enough are in.
pub fn approve(
    node: &mut Node,
    actor: &Principal,
    id: &ReleaseId,
    purpose: Purpose,
    accepts_findings: bool,
) -> anyhow::Result<Outcome> {
    let release = load(node, id)?;
    match purpose {
        Purpose::Promote => transition(&release, State::Approved)?,
        Purpose::Export => {
            if !matches!(
                release.state,
                State::Approved | State::Live | State::Retired
            ) {
                return Err(denied(format!(
                    "{id} is {}: only approved, live or retired releases can be exported",
                    release.state
                )));
            }
        }
    }
    let policy = policy(node, purpose);
    let roles: Vec<String> = actor.roles.iter().map(|r| r.name().to_string()).collect();
    let ledger = node.ledger()?;
    let out = node.registry.write(|tx| -> anyhow::Result<Outcome> {
        let mut approvals = Approvals {
            list: tx.approvals(id, purpose)?,
        };
        let approval = Approval {
            approver: actor.name.clone(),
            accepts_findings,
            time: now()?,
        };
        let complete = approvals
            .add(
                &policy,
                &release.admitted_by,
                release.findings as usize,
                &roles,
                approval.clone(),
            )
            .map_err(|e| denied(format!("{id}: {e}")))?;
        let rec = Record::new("release.approval", &actor.name)
            .subject(&id.to_string())
            .digest("manifest", &release.manifest)
            .attr("purpose", purpose.name())
            .attr("accepts_findings", &accepts_findings.to_string())
            .attr(
                "approvals",
                &format!("{}/{}", approvals.list.len(), policy.required),
            );
        let mut index = super::record(&ledger, &rec)?;
        tx.add_approval(id, purpose, &approval)?;
        let mut state = release.state;
        let message = if complete && purpose == Purpose::Promote {
            index = commit_move(
                tx,
                &ledger,
                Move {
                    id,
                    from: release.state,
                    to: State::Approved,
                },
                &actor.name,
                Record::new("release.approved", &actor.name).digest("manifest", &release.manifest),
                &[],
            )?;
            state = State::Approved;
            format!(
                "{id} is approved ({} of {} approvals)",
                approvals.list.len(),
                policy.required
            )
        } else if complete {
            format!(
                "the export of {id} is approved ({} of {})",
                approvals.list.len(),
                policy.required
            )
        } else {
            format!(
                "approval recorded: {} of {} for {} {id}",
                approvals.list.len(),
                policy.required,
                purpose.name()
            )
        };
        Ok(Outcome {
            release: id.to_string(),
            from: Some(release.state),
            state,
            ledger_index: index,
            message,
        })
    });
    ledger.close()?;
    out
}

/// Rejects an admitted release (or revokes one further along) with a reason.
pub fn reject_or_revoke(
    node: &mut Node,
    actor: &Principal,
    id: &ReleaseId,
    to: State,
    reason: &str,
) -> anyhow::Result<Outcome> {
    if reason.trim().is_empty() {
        bail!("give a reason (--reason TEXT): it is recorded with the release");
    }
    let release = load(node, id)?;
    transition(&release, to)?;
    let ledger = node.ledger()?;
    let kind = if to == State::Rejected {
        "release.rejected"
    } else {
        "release.revoked"
    };
    let reasons = vec![super::admit::truncate(reason, 900)];
    let out = node.registry.write(|tx| -> anyhow::Result<Outcome> {
        let rec = Record::new(kind, &actor.name)
            .digest("manifest", &release.manifest)
            .attr("reason", &reasons[0]);
        let index = commit_move(
            tx,
            &ledger,
            Move {
                id,
                from: release.state,
                to,
            },
            &actor.name,
            rec,
            &reasons,
        )?;
        let mut message = format!("{id} is {to}");
        if release.state == State::Live {
            tx.clear_live(&id.name)?;
            message.push_str(&format!("; {} has no live release now", id.name));
        }
        Ok(Outcome {
            release: id.to_string(),
            from: Some(release.state),
            state: to,
            ledger_index: index,
            message,
        })
    });
    ledger.close()?;
    out
}

/// Makes `id` the live release of its model (checking its integrity first); the release it
/// replaces is retired and kept as the last known good.
pub fn deploy(
    node: &mut Node,
    actor: &Principal,
    id: &ReleaseId,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Outcome> {
    let release = load(node, id)?;
    transition(&release, State::Live)?;
    let ledger = node.ledger()?;
    let result = (|| {
        integrity::open_stored(
            node,
            &ledger,
            &actor.name,
            &release,
            Sink::Discard,
            progress,
        )?;
        switch_live(
            node,
            &ledger,
            actor,
            &release,
            "release.deployed",
            Replaced::LastKnownGood,
        )
    })();
    ledger.close()?;
    result
}

/// How the release being replaced is remembered.
#[derive(PartialEq, Eq)]
enum Replaced {
    /// As the model's last known good (deploy).
    LastKnownGood,
    /// Not at all: it is what was rolled back from (rollback).
    Forgotten,
}

fn switch_live(
    node: &mut Node,
    ledger: &Ledger,
    actor: &Principal,
    release: &Release,
    kind: &str,
    replaced: Replaced,
) -> anyhow::Result<Outcome> {
    let id = &release.id;
    node.registry.write(|tx| -> anyhow::Result<Outcome> {
        let current = tx.live(&id.name)?;
        let mut rec = Record::new(kind, &actor.name).digest("manifest", &release.manifest);
        let mut previous = None;
        if let Some(cur) = &current {
            let cur_id = ReleaseId::new(&cur.model, &cur.version).map_err(anyhow::Error::msg)?;
            rec = rec.attr("previous", &cur_id.to_string());
            let retired = super::record(
                ledger,
                &Record::new("release.retired", &actor.name)
                    .subject(&cur_id.to_string())
                    .attr("from", State::Live.name())
                    .attr("to", State::Retired.name())
                    .attr("replaced_by", &id.to_string()),
            )?;
            if !tx.set_state(&cur_id, State::Live, State::Retired, &[])? {
                bail!("{cur_id} changed state while this ran; try again");
            }
            tx.record_step(
                &cur_id,
                &Step {
                    from: Some(State::Live),
                    to: State::Retired,
                    actor: actor.name.clone(),
                    time: now()?,
                    ledger_index: Some(retired),
                    note: format!("replaced by {id}"),
                },
            )?;
            if replaced == Replaced::LastKnownGood {
                previous = Some(cur.version.clone());
            }
        }
        let index = commit_move(
            tx,
            ledger,
            Move {
                id,
                from: release.state,
                to: State::Live,
            },
            &actor.name,
            rec,
            &[],
        )?;
        tx.set_live(&Live {
            model: id.name.clone(),
            version: id.version.clone(),
            previous: previous.clone(),
            since: now()?,
        })?;
        Ok(Outcome {
            release: id.to_string(),
            from: Some(release.state),
            state: State::Live,
            ledger_index: index,
            message: match previous {
                Some(p) => format!(
                    "{id} is live; {}@{p} is retired and kept as last known good",
                    id.name
                ),
                None => format!("{id} is live"),
            },
        })
    })
}

/// Puts the last known good release of `model` back live.
pub fn rollback(
    node: &mut Node,
    actor: &Principal,
    model: &str,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Outcome> {
    ReleaseId::check_model(model).map_err(anyhow::Error::msg)?;
    let live = node
        .registry
        .read(|tx| tx.live(model).map_err(anyhow::Error::from))?
        .ok_or_else(|| denied(format!("{model} has no live release to roll back from")))?;
    let Some(previous) = live.previous else {
        return Err(denied(format!(
            "{model}@{} has no last known good release to roll back to",
            live.version
        )));
    };
    let target = ReleaseId::new(model, &previous).map_err(anyhow::Error::msg)?;
    let release = load(node, &target)?;
    if release.state != State::Retired {
        return Err(denied(format!(
            "the last known good release {target} is {} now, not retired: deploy another release instead",
            release.state
        )));
    }
    let ledger = node.ledger()?;
    let result = (|| {
        integrity::open_stored(
            node,
            &ledger,
            &actor.name,
            &release,
            Sink::Discard,
            progress,
        )?;
        let mut out = switch_live(
            node,
            &ledger,
            actor,
            &release,
            "release.rolled-back",
            Replaced::Forgotten,
        )?;
        out.message = format!(
            "rolled back: {target} is live again; {model}@{} is retired",
            live.version
        );
        Ok(out)
    })();
    ledger.close()?;
    result
}

/// Decrypts a release into a new directory, with a completed two-person export approval
/// (consumed by the export).
pub fn export(
    node: &mut Node,
    actor: &Principal,
    id: &ReleaseId,
    dest: &Path,
    progress: &dyn Fn(u64),
) -> anyhow::Result<Outcome> {
    let release = load(node, id)?;
    let policy = policy(node, Purpose::Export);
    let approvals = node.registry.read(|tx| {
        tx.approvals(id, Purpose::Export)
            .map_err(anyhow::Error::from)
    })?;
    if approvals.iter().any(|a| a.approver == actor.name) {
        return Err(denied(format!(
            "{} approved this export and cannot also perform it (two-person rule)",
            actor.name
        )));
    }
    if !(Approvals {
        list: approvals.clone(),
    })
    .complete(&policy)
    {
        return Err(denied(format!(
            "exporting {id} needs {} export approvals from distinct approvers (`warden approve {id} --export`); it has {}",
            policy.required,
            approvals.len()
        )));
    }
    let ledger = node.ledger()?;
    let result = (|| {
        let checked = integrity::open_stored(
            node,
            &ledger,
            &actor.name,
            &release,
            Sink::Dir(dest),
            progress,
        )?;
        let approvers: Vec<&str> = approvals.iter().map(|a| a.approver.as_str()).collect();
        node.registry.write(|tx| -> anyhow::Result<Outcome> {
            let index = super::record(
                &ledger,
                &Record::new("release.exported", &actor.name)
                    .subject(&id.to_string())
                    .digest("manifest", &release.manifest)
                    .attr(
                        "destination",
                        &super::admit::truncate(&dest.display().to_string(), 900),
                    )
                    .attr("approvers", &approvers.join(","))
                    .attr("bytes", &checked.bytes.to_string()),
            )?;
            tx.clear_approvals(id, Purpose::Export)?;
            Ok(Outcome {
                release: id.to_string(),
                from: None,
                state: release.state,
                ledger_index: index,
                message: format!(
                    "exported {id} ({} files, {} bytes) to {}; the export approvals are used up",
                    checked.files,
                    checked.bytes,
                    dest.display()
                ),
            })
        })
    })();
    if result.is_err() && dest.exists() {
        // The directory was renamed into place but the record failed: take it back.
        let _ = std::fs::remove_dir_all(dest);
    }
    ledger.close()?;
    result
}

/// Crypto-shreds a release: its wrapped data keys (and backup copies) are destroyed.
pub fn shred(
    node: &mut Node,
    actor: &Principal,
    id: &ReleaseId,
) -> anyhow::Result<(Outcome, vault::store::Shredded)> {
    let release = load(node, id)?;
    transition(&release, State::Shredded)?;
    let vault = node.vault()?;
    let backups: Vec<std::path::PathBuf> = node
        .config
        .vault
        .backup_key_dirs
        .iter()
        .map(|d| node.path(d))
        .collect();
    let ledger = node.ledger()?;
    let out = node.registry.write(|tx| -> anyhow::Result<(Outcome, vault::store::Shredded)> {
        let shredded = vault.shred(&id.to_string(), &backups)?;
        let rec = Record::new("release.shredded", &actor.name)
            .digest("manifest", &release.manifest)
            .attr("keys_destroyed", &shredded.keys_destroyed.to_string())
            .attr("blobs_left", &shredded.blobs_left.to_string());
        let index = commit_move(
                tx,
                &ledger,
                Move { id, from: release.state, to: State::Shredded }, &actor.name, rec, &[])?;
        Ok((
            Outcome {
                release: id.to_string(),
                from: Some(release.state),
                state: State::Shredded,
                ledger_index: index,
                message: format!(
                    "{id} is shredded: {} data keys destroyed; its {} sealed files can no longer be opened",
                    shredded.keys_destroyed, shredded.blobs_left
                ),
            },
            shredded,
        ))
    });
    ledger.close()?;
    out
}
