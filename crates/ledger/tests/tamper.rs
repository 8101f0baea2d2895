//! The tamper matrix: any change to a stored tile, entry or checkpoint is detected, and
//! the report points at the place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use ledger::tiles::{push_entry, split_bundle};
use ledger::verify::{verify, Report};
use ledger::{Ledger, Published};

/// 600 entries: full tiles 000 and 001, partial tiles at levels 0 and 1.
fn fixture() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let skey = ledger_with(dir.path(), 600);
    (dir, skey)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for item in fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            fs::copy(item.path(), target).unwrap();
        }
    }
}

fn files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    for item in fs::read_dir(dir.join(rel)).unwrap() {
        let item = item.unwrap();
        let rel = rel.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            files(dir, &rel, out);
        } else {
            out.push(rel);
        }
    }
}

fn verify_dir(dir: &Path) -> Result<Report, ledger::Error> {
    verify(dir, None, None, check_record)
}

/// The report must fail and name the damaged file, or an entry stored in it.
fn assert_points_at(outcome: Result<Report, ledger::Error>, rel: &Path, what: &str) {
    let rel = rel.to_string_lossy().to_string();
    let report = match outcome {
        Err(e) => {
            assert!(
                rel == "checkpoint" || rel == "vkey",
                "{what}: {rel}: error {e}"
            );
            return;
        }
        Ok(r) => r,
    };
    assert!(!report.ok(), "{what} in {rel} went unnoticed");
    let entries_of = |p: &str| -> Option<std::ops::Range<u64>> {
        let n: u64 = p
            .strip_prefix("tile/entries/")?
            .split('.')
            .next()?
            .parse()
            .ok()?;
        Some(n * 256..n * 256 + 256)
    };
    // An altered entry shows up as `entry N` (not a record) or as the leaf hash of
    // `entry N:` differing in the level-0 hash tile.
    let named = report.problems.iter().any(|p| {
        p.place == rel
            || p.what.contains(&rel)
            || entries_of(&rel).is_some_and(|mut range| {
                range.any(|n| {
                    p.place == format!("entry {n}") || p.what.contains(&format!("entry {n}:"))
                })
            })
    });
    assert!(
        named,
        "{what} in {rel}: report does not point at it: {:?}",
        report.problems
    );
}

#[test]
fn every_flipped_byte_truncation_and_removal_is_found() {
    let (dir, _) = fixture();
    assert!(verify_dir(dir.path()).unwrap().ok());
    let mut all = Vec::new();
    files(dir.path(), Path::new("tile"), &mut all);
    all.push(PathBuf::from("checkpoint"));
    assert!(all.len() >= 8, "{all:?}");
    let scratch = tempfile::tempdir().unwrap();
    for (n, rel) in all.iter().enumerate() {
        let len = fs::metadata(dir.path().join(rel)).unwrap().len() as usize;
        let mut positions = vec![0, 1, len / 2, len - 1];
        positions.dedup();
        for (k, pos) in positions.into_iter().enumerate() {
            let copy = scratch.path().join(format!("flip-{n}-{k}"));
            copy_dir(dir.path(), &copy);
            let mut data = fs::read(copy.join(rel)).unwrap();
            data[pos] ^= 0x01;
            fs::write(copy.join(rel), &data).unwrap();
            assert_points_at(verify_dir(&copy), rel, &format!("a flipped byte at {pos}"));
        }
        let copy = scratch.path().join(format!("cut-{n}"));
        copy_dir(dir.path(), &copy);
        let data = fs::read(copy.join(rel)).unwrap();
        fs::write(copy.join(rel), &data[..data.len() - 1]).unwrap();
        assert_points_at(verify_dir(&copy), rel, "a truncation");
        let copy = scratch.path().join(format!("gone-{n}"));
        copy_dir(dir.path(), &copy);
        fs::remove_file(copy.join(rel)).unwrap();
        assert_points_at(verify_dir(&copy), rel, "a removal");
    }
}

#[test]
fn reordered_entries_are_found_by_index() {
    let (dir, _) = fixture();
    let path = dir.path().join("tile/entries/001");
    let data = fs::read(&path).unwrap();
    let mut entries: Vec<Vec<u8>> = split_bundle(&data)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    entries.swap(10, 11);
    let mut bundle = Vec::new();
    for e in &entries {
        push_entry(&mut bundle, e).unwrap();
    }
    fs::write(&path, bundle).unwrap();
    let report = verify_dir(dir.path()).unwrap();
    let places: Vec<String> = report
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.place, p.what))
        .collect();
    assert!(places.iter().any(|p| p.contains("entry 266")), "{places:?}");
    assert!(places.iter().any(|p| p.contains("entry 267")), "{places:?}");
}

#[test]
fn dropped_entries_are_found_against_a_saved_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let skey = ledger_with(dir.path(), 512);
    let older = scratch_copy(dir.path());
    let ledger = Ledger::open(dir.path(), &skey, fast_options()).unwrap();
    for i in 512..600 {
        ledger.append(record(i)).unwrap();
    }
    ledger.close().unwrap();
    let saved = Published::open(dir.path(), None)
        .unwrap()
        .checkpoint()
        .note
        .clone();
    // Put the older state back: it is a consistent ledger on its own...
    assert!(verify_dir(older.path()).unwrap().ok());
    // ...but not against the checkpoint saved after the last appends.
    let report = verify(older.path(), None, Some(&saved), check_record).unwrap();
    assert!(!report.ok());
    assert!(
        report.problems[0].what.contains("entries were removed"),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_rewritten_history_is_found_against_a_saved_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let skey = ledger_with(dir.path(), 300);
    let saved = Published::open(dir.path(), None)
        .unwrap()
        .checkpoint()
        .note
        .clone();
    // The key holder rewrites history: a new log with the same key and different entries.
    let other = tempfile::tempdir().unwrap();
    let vkey = fs::read_to_string(dir.path().join("vkey")).unwrap();
    Ledger::create(other.path(), &skey, vkey.trim()).unwrap();
    let forged = Ledger::open(other.path(), &skey, fast_options()).unwrap();
    for i in 0..400 {
        forged.append(record(i + 1)).unwrap();
    }
    forged.close().unwrap();
    assert!(verify_dir(other.path()).unwrap().ok());
    let report = verify(other.path(), None, Some(&saved), check_record).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("history was rewritten")),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_replaced_key_is_found_by_a_pinned_key() {
    let (dir, _) = fixture();
    let original = fs::read_to_string(dir.path().join("vkey")).unwrap();
    // Re-sign the same tree with a new key and replace the stored verifier key.
    let (skey, vkey) = key("test.example/ledger");
    let cp = Published::open(dir.path(), None)
        .unwrap()
        .checkpoint()
        .clone();
    let signed = ledger::LogKey::new(&skey, &vkey)
        .unwrap()
        .sign(cp.size, &cp.root)
        .unwrap();
    fs::write(dir.path().join("checkpoint"), &signed.note).unwrap();
    // Only the checkpoint replaced: the stored key refuses it.
    assert!(verify_dir(dir.path()).is_err());
    fs::write(dir.path().join("vkey"), &vkey).unwrap();
    assert!(
        verify_dir(dir.path()).unwrap().ok(),
        "consistent with its own key"
    );
    let pinned = verify(dir.path(), Some(&original), None, check_record);
    assert!(matches!(pinned, Err(ledger::Error::Checkpoint(_))));
}

#[test]
fn a_damaged_journal_is_refused_on_open() {
    let (dir, skey) = fixture();
    let path = dir.path().join("journal");
    let mut data = fs::read(&path).unwrap();
    data[12] ^= 0x20; // inside the base frame, with commits after it
    fs::write(&path, &data).unwrap();
    let err = Ledger::open(dir.path(), &skey, fast_options())
        .err()
        .unwrap();
    assert!(err.to_string().contains("journal"), "{err}");
}

#[test]
fn a_tampered_recent_tile_is_not_silently_repaired() {
    let (dir, skey) = fixture();
    // tile/0/001 became full after the journal's base: recovery compares it.
    let path = dir.path().join("tile/0/001");
    let mut data = fs::read(&path).unwrap();
    data[40] ^= 1;
    fs::write(&path, &data).unwrap();
    let err = Ledger::open(dir.path(), &skey, fast_options())
        .err()
        .unwrap();
    assert!(err.to_string().contains("tile/0/001"), "{err}");
}

fn scratch_copy(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir, copy.path());
    copy
}

#[test]
fn recovery_reports_a_tampered_checkpoint_or_partial_tile_instead_of_replacing_it() {
    for rel in [
        "checkpoint",
        "tile/0/002.p/88",
        "tile/entries/002.p/88",
        "tile/1/000.p/2",
    ] {
        let (dir, skey) = fixture();
        let path = dir.path().join(rel);
        let mut data = fs::read(&path).unwrap();
        let at = data.len() / 3;
        data[at] ^= 0x04;
        fs::write(&path, &data).unwrap();
        let err = Ledger::open(dir.path(), &skey, fast_options())
            .err()
            .unwrap();
        let shown = err.to_string();
        assert!(matches!(err, ledger::Error::Corrupt(_)), "{rel}: {shown}");
        assert!(
            shown.contains(rel) || (rel == "checkpoint" && shown.contains("published checkpoint")),
            "{rel}: {shown}"
        );
        // Nothing was rewritten.
        assert_eq!(fs::read(&path).unwrap(), data, "{rel}");
    }
}
