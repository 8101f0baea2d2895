//! Backups: an offline copy of the published ledger that verifies itself, and a restore
//! that refuses to go back in time or to take a fork.
//!
//! A backup is a directory: `BACKUP.json` (what it holds) and `ledger/` (checkpoint, vkey
//! and tiles, as published). It carries no private key.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fsio;
use crate::journal::{self, Base, Frame};
use crate::layout;
use crate::reader::Published;
use crate::tiles::{self, TileId, TILE_WIDTH};
use crate::tree::TreeState;
use crate::verify::{self, Report};

/// The description written next to the copy.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created: String,
    pub origin: String,
    pub size: u64,
    pub root: String,
}

/// Copies the published ledger in `ledger_dir` to the new directory `dest`, verifies the
/// copy, and only then gives it its name. Returns the copy's verification report.
pub fn backup(
    ledger_dir: &Path,
    dest: &Path,
    check_entry: impl Fn(&[u8]) -> std::result::Result<(), String> + Copy + Sync,
) -> Result<Report> {
    if dest.exists() {
        return Err(Error::AlreadyExists(dest.to_path_buf()));
    }
    let mut staging = dest.as_os_str().to_owned();
    staging.push(".partial");
    let staging = PathBuf::from(staging);
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(Error::io(&staging))?;
    }
    // The manifest's time (humantime would panic on one before 1970).
    let now = std::time::SystemTime::now();
    if now < std::time::SystemTime::UNIX_EPOCH {
        return Err(Error::Record(
            "the system clock is set before 1970: set the clock and back up again".into(),
        ));
    }
    // A writer in another process may publish while we copy; a copy that misses a tile
    // it replaced is retried.
    let mut last = None;
    for _ in 0..3 {
        let _ = fs::remove_dir_all(&staging);
        let copy = staging.join("ledger");
        let published = Published::open(ledger_dir, None)?;
        fs::create_dir_all(&copy).map_err(Error::io(&copy))?;
        fs::write(copy.join(layout::VKEY), format!("{}\n", published.vkey()))
            .map_err(Error::io(&copy))?;
        fs::write(copy.join(layout::CHECKPOINT), &published.checkpoint().note)
            .map_err(Error::io(&copy))?;
        copy_tree(&ledger_dir.join("tile"), &copy.join("tile"))?;
        let report = verify::verify(&copy, Some(published.vkey()), None, check_entry)?;
        if report.ok() {
            let cp = published.checkpoint();
            let manifest = Manifest {
                format: 1,
                created: humantime::format_rfc3339_seconds(now).to_string(),
                origin: cp.origin.clone(),
                size: cp.size,
                root: hex::encode(cp.root),
            };
            let text =
                serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Corrupt(e.to_string()))?;
            fsio::write_atomic(&staging.join("BACKUP.json"), &text, true)?;
            sync_tree(&staging)?;
            fs::rename(&staging, dest).map_err(Error::io(dest))?;
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsio::sync_dir(parent)?;
            }
            return Ok(report);
        }
        last = Some(report);
    }
    let _ = fs::remove_dir_all(&staging);
    match last {
        Some(report) => Ok(report),
        None => Err(Error::Corrupt("backup failed".into())),
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if !from.exists() {
        return Ok(());
    }
    fs::create_dir_all(to).map_err(Error::io(to))?;
    for item in fs::read_dir(from).map_err(Error::io(from))? {
        let item = item.map_err(Error::io(from))?;
        let path = item.path();
        let target = to.join(item.file_name());
        let kind = item.file_type().map_err(Error::io(&path))?;
        if kind.is_dir() {
            copy_tree(&path, &target)?;
        } else if kind.is_file() && path.extension().is_none_or(|e| e != "tmp") {
            fs::copy(&path, &target).map_err(Error::io(&path))?;
        }
    }
    Ok(())
}

fn sync_tree(dir: &Path) -> Result<()> {
    for item in fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = item.map_err(Error::io(dir))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(Error::io(&path))?;
        }
    }
    fsio::sync_dir(dir)
}

/// What a restore did.
#[derive(Debug, Serialize)]
pub struct Restored {
    /// Entries the ledger had before (None: there was none).
    pub before: Option<u64>,
    /// Entries it has now.
    pub size: u64,
    /// Where the ledger that was replaced now lies (never deleted).
    pub kept: Option<PathBuf>,
    /// The ledger already held exactly this history; nothing was changed.
    pub up_to_date: bool,
}

/// Restores `backup_dir` over `ledger_dir`. Refused ([`Error::Refused`]) when the backup
/// does not verify under the trusted key, holds fewer entries than the ledger, or
/// disagrees with the ledger's history (a fork). `vkey` pins the key; by default the
/// current ledger's, or, when there is none, the backup's own.
pub fn restore(
    backup_dir: &Path,
    ledger_dir: &Path,
    vkey: Option<&str>,
    check_entry: impl Fn(&[u8]) -> std::result::Result<(), String> + Sync,
) -> Result<Restored> {
    let copy = backup_dir.join("ledger");
    if !copy.join(layout::CHECKPOINT).exists() {
        return Err(Error::Refused(format!(
            "{} is not a Warden backup (no ledger/checkpoint)",
            backup_dir.display()
        )));
    }
    let exists =
        ledger_dir.join(layout::JOURNAL).exists() || ledger_dir.join(layout::CHECKPOINT).exists();
    let _lock = if exists {
        Some(lock(ledger_dir)?)
    } else {
        None
    };
    let current = if exists {
        let current = Published::open(ledger_dir, vkey).map_err(|e| {
            Error::Refused(format!(
                "the current ledger does not verify ({e}); move {} aside and restore into an empty place",
                ledger_dir.display()
            ))
        })?;
        Some(current)
    } else {
        None
    };
    let trusted = match (vkey, &current) {
        (Some(v), _) => v.trim().to_string(),
        (None, Some(cur)) => cur.vkey().to_string(),
        (None, None) => crate::reader::read_vkey(&copy)?,
    };
    let report = verify::verify(&copy, Some(&trusted), None, check_entry)
        .map_err(|e| Error::Refused(format!("the backup does not verify: {e}")))?;
    if let Some(p) = report.problems.first() {
        return Err(Error::Refused(format!(
            "the backup does not verify: {}: {}",
            p.place, p.what
        )));
    }
    let backup = Published::open(&copy, Some(&trusted))?;
    if let Some(cur) = &current {
        if cur.size() > backup.size() {
            return Err(Error::Refused(format!(
                "the backup holds {} entries but the ledger {}: restoring it would erase {} acknowledged entries",
                backup.size(),
                cur.size(),
                cur.size() - backup.size()
            )));
        }
        let (root_then, _) = backup.consistency_proof(cur.size())?;
        if root_then != cur.checkpoint().root {
            return Err(Error::Refused(format!(
                "the backup's first {} entries differ from the ledger's: it is a fork of this ledger, not a copy",
                cur.size()
            )));
        }
        if cur.size() == backup.size() {
            return Ok(Restored {
                before: Some(cur.size()),
                size: cur.size(),
                kept: None,
                up_to_date: true,
            });
        }
    }

    let mut staging = ledger_dir.as_os_str().to_owned();
    staging.push(".restoring");
    let staging = PathBuf::from(staging);
    let _ = fs::remove_dir_all(&staging);
    copy_tree(&copy.join("tile"), &staging.join("tile"))?;
    fsio::write_atomic(
        &staging.join(layout::VKEY),
        format!("{trusted}\n").as_bytes(),
        true,
    )?;
    fsio::write_atomic(
        &staging.join(layout::CHECKPOINT),
        &backup.checkpoint().note,
        true,
    )?;
    let base = base_frame(&backup)?;
    fsio::write_atomic(
        &staging.join(layout::JOURNAL),
        &journal::encode(&Frame::Base(base)),
        true,
    )?;
    sync_tree(&staging)?;
    let kept = if let Some(cur) = &current {
        let mut aside = ledger_dir.as_os_str().to_owned();
        aside.push(format!(
            ".before-restore-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        ));
        let aside = PathBuf::from(aside);
        drop(_lock);
        fs::rename(cur.dir(), &aside).map_err(Error::io(&aside))?;
        Some(aside)
    } else {
        None
    };
    fs::rename(&staging, ledger_dir).map_err(Error::io(ledger_dir))?;
    if let Some(parent) = ledger_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsio::sync_dir(parent)?;
    }
    Ok(Restored {
        before: current.as_ref().map(Published::size),
        size: backup.size(),
        kept,
        up_to_date: false,
    })
}

fn lock(dir: &Path) -> Result<fs::File> {
    let path = dir.join(layout::LOCK);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io(&path))?;
    if file.try_lock().is_err() {
        return Err(Error::Locked(dir.to_path_buf()));
    }
    Ok(file)
}

/// The journal base frame of a published ledger: its right edge, read from its partial
/// tiles and checked against its checkpoint.
fn base_frame(ledger: &Published) -> Result<Base> {
    let size = ledger.size();
    let mut levels = Vec::new();
    let mut count = size;
    let mut level = 0u8;
    while count > 0 {
        let width = count % TILE_WIDTH;
        if width == 0 {
            levels.push(Vec::new());
        } else {
            let id = TileId::for_hash(level, count - 1, count);
            levels.push(tiles::decode_hashes(&ledger.read_tile(&id)?).map_err(Error::Corrupt)?);
        }
        count /= TILE_WIDTH;
        level += 1;
    }
    let entries = if size.is_multiple_of(TILE_WIDTH) {
        Vec::new()
    } else {
        ledger.read_bundle(size - 1)?.1
    };
    let state = TreeState::from_parts(size, levels.clone())
        .ok_or_else(|| Error::Corrupt("the backup's partial tiles do not fit its size".into()))?;
    if state.root() != ledger.checkpoint().root {
        return Err(Error::Corrupt(
            "the backup's partial tiles do not give its root".into(),
        ));
    }
    Ok(Base {
        size,
        levels,
        entries,
        checkpoint: ledger.checkpoint().note.clone(),
    })
}
