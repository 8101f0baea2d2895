//! `warden ledger verify | proof | consistency | check-proof`.

use std::io::Write;

use anyhow::{bail, Context};
use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use ledger::reader::{check_consistency, check_inclusion};
use ledger::{checkpoint, Hash, Published};
use serde_json::json;

use super::{check_record, read_vkey_file, Paths};
use crate::cli::ledger::{CheckProofArgs, ConsistencyArgs, ProofArgs, VerifyLedgerArgs};
use crate::exit::Code;

pub fn verify(paths: &Paths, args: VerifyLedgerArgs) -> anyhow::Result<Code> {
    // Recovery refuses a ledger whose recent tiles disagree with its journal; verify
    // still checks the published files and reports that too.
    let mut recovery_problem = None;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            match paths.settle() {
                Ok(()) => {}
                Err(e) => match e.downcast::<ledger::Error>() {
                    Ok(ledger::Error::Corrupt(why)) => recovery_problem = Some(why),
                    Ok(other) => return Err(other.into()),
                    Err(other) => return Err(other),
                },
            }
            paths.ledger.clone()
        }
    };
    let vkey = args.vkey.as_deref().map(read_vkey_file).transpose()?;
    let since = match &args.since {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let report = match ledger::verify::verify(&dir, vkey.as_deref(), since.as_deref(), check_record)
    {
        Ok(mut r) => {
            if let Some(why) = recovery_problem {
                let problem = ledger::verify::Problem {
                    place: "journal".into(),
                    what: why,
                };
                r.problems.insert(0, problem);
            }
            r
        }
        // A checkpoint that does not verify is a failed verification, not a usage error.
        Err(e @ (ledger::Error::Checkpoint(_) | ledger::Error::Key(_))) => {
            report_failure(args.json.json, &e.to_string())?;
            return Ok(Code::Denied);
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    if args.json.json {
        writeln!(out, "{}", serde_json::to_value(&report)?)?;
    } else if report.ok() {
        writeln!(
            out,
            "verified: {} entries of {}, root {}{}",
            report.size,
            report.origin,
            B64.encode(report.root),
            report
                .since
                .map(|n| format!(", extending the saved checkpoint of {n}"))
                .unwrap_or_default()
        )?;
    } else {
        writeln!(
            out,
            "NOT VERIFIED: {} of {} entries",
            report.origin, report.size
        )?;
        for p in &report.problems {
            writeln!(out, "  {}: {}", p.place, p.what)?;
        }
        if report.more_problems > 0 {
            writeln!(out, "  ... and {} more", report.more_problems)?;
        }
    }
    Ok(if report.ok() { Code::Ok } else { Code::Denied })
}

fn report_failure(json: bool, why: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let v = json!({"problems": [{"place": "checkpoint", "what": why}]});
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "NOT VERIFIED: {why}")?;
    }
    Ok(())
}

fn b64_list(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

pub fn proof(paths: &Paths, args: ProofArgs) -> anyhow::Result<Code> {
    paths.settle()?;
    let ledger = Published::open(&paths.ledger, None)?;
    let (leaf, proof) = ledger.inclusion_proof(args.index)?;
    let cp = ledger.checkpoint();
    let mut out = std::io::stdout().lock();
    if args.json.json {
        let v = json!({
            "index": args.index,
            "tree_size": cp.size,
            "leaf_hash": B64.encode(leaf),
            "proof": b64_list(&proof),
            "checkpoint": String::from_utf8_lossy(&cp.note),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "entry {} in the tree of {}: leaf {}",
            args.index,
            cp.size,
            B64.encode(leaf)
        )?;
        for h in &proof {
            writeln!(out, "  {}", B64.encode(h))?;
        }
    }
    Ok(Code::Ok)
}

pub fn consistency(paths: &Paths, args: ConsistencyArgs) -> anyhow::Result<Code> {
    paths.settle()?;
    let ledger = Published::open(&paths.ledger, None)?;
    let note =
        std::fs::read(&args.from).with_context(|| format!("reading {}", args.from.display()))?;
    let old = checkpoint::verify(&note, ledger.vkey())
        .with_context(|| format!("{} is not a checkpoint of this ledger", args.from.display()))?;
    let (root_then, proof) = ledger.consistency_proof(old.size)?;
    let cp = ledger.checkpoint();
    if root_then != old.root {
        println!("NOT CONSISTENT: the ledger's first {} entries no longer give the saved root: history was rewritten", old.size);
        return Ok(Code::Denied);
    }
    check_consistency(&proof, cp.size, &cp.root, old.size, &old.root)?;
    let mut out = std::io::stdout().lock();
    if args.json.json {
        let v = json!({
            "old_size": old.size,
            "old_root": B64.encode(old.root),
            "new_size": cp.size,
            "new_root": B64.encode(cp.root),
            "proof": b64_list(&proof),
            "checkpoint": String::from_utf8_lossy(&cp.note),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "the tree of {} extends the saved tree of {}",
            cp.size, old.size
        )?;
        for h in &proof {
            writeln!(out, "  {}", B64.encode(h))?;
        }
    }
    Ok(Code::Ok)
}

fn hash_field(v: &serde_json::Value, key: &str) -> anyhow::Result<Hash> {
    let s = v[key]
        .as_str()
        .with_context(|| format!("proof lacks {key:?}"))?;
    let bytes = B64
        .decode(s)
        .with_context(|| format!("{key:?} is not base64"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{key:?} is not a 32-byte hash"))
}

fn proof_field(v: &serde_json::Value) -> anyhow::Result<Vec<Hash>> {
    let list = v["proof"].as_array().context("proof lacks \"proof\"")?;
    if list.len() > 128 {
        bail!("a proof of {} hashes is impossibly long", list.len());
    }
    list.iter()
        .map(|h| {
            let bytes = B64.decode(h.as_str().context("proof hashes are strings")?)?;
            bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("a proof hash is not 32 bytes"))
        })
        .collect()
}

/// Checks a proof file offline: its checkpoint against the trusted key, then the proof
/// against the checkpoint.
pub fn check_proof(args: CheckProofArgs) -> anyhow::Result<Code> {
    let vkey = read_vkey_file(&args.vkey)?;
    let text =
        std::fs::read(&args.proof).with_context(|| format!("reading {}", args.proof.display()))?;
    if text.len() > 1 << 20 {
        bail!("{} is too large to be a proof", args.proof.display());
    }
    let v: serde_json::Value = serde_json::from_slice(&text).context("the proof is not JSON")?;
    let note = v["checkpoint"]
        .as_str()
        .context("proof lacks \"checkpoint\"")?;
    let outcome = checkpoint::verify(note.as_bytes(), &vkey).and_then(|cp| {
        if v.get("index").is_some() {
            let index = v["index"]
                .as_u64()
                .ok_or_else(|| ledger::Error::Proof("bad index".into()))?;
            let leaf =
                hash_field(&v, "leaf_hash").map_err(|e| ledger::Error::Proof(e.to_string()))?;
            if let Some(path) = &args.entry {
                let entry = std::fs::read(path).map_err(ledger::Error::io(path))?;
                if ledger::hash::leaf_hash(&entry) != leaf {
                    return Err(ledger::Error::Proof(format!(
                        "{} is not the proved entry",
                        path.display()
                    )));
                }
            }
            let proof = proof_field(&v).map_err(|e| ledger::Error::Proof(e.to_string()))?;
            check_inclusion(&proof, cp.size, &cp.root, index, &leaf)?;
            Ok(format!(
                "entry {index} is in the signed tree of {}",
                cp.size
            ))
        } else {
            let old_size = v["old_size"]
                .as_u64()
                .ok_or_else(|| ledger::Error::Proof("bad old_size".into()))?;
            let old_root =
                hash_field(&v, "old_root").map_err(|e| ledger::Error::Proof(e.to_string()))?;
            let proof = proof_field(&v).map_err(|e| ledger::Error::Proof(e.to_string()))?;
            check_consistency(&proof, cp.size, &cp.root, old_size, &old_root)?;
            Ok(format!(
                "the signed tree of {} extends the tree of {old_size}",
                cp.size
            ))
        }
    });
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(what) => {
            if args.json.json {
                writeln!(out, "{}", json!({"verified": true, "what": what}))?;
            } else {
                writeln!(out, "verified: {what}")?;
            }
            Ok(Code::Ok)
        }
        Err(e) => {
            if args.json.json {
                writeln!(out, "{}", json!({"verified": false, "why": e.to_string()}))?;
            } else {
                writeln!(out, "NOT VERIFIED: {e}")?;
            }
            Ok(Code::Denied)
        }
    }
}
