//! Appending, reopening and proving: the ledger's normal life.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod common;

use std::sync::Arc;

use common::*;
use ledger::reader::{check_consistency, check_inclusion};
use ledger::{hash::leaf_hash, Error, Ledger, Options, Published};

#[test]
fn concurrent_appends_are_all_durable_and_provable() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = key("test.example/ledger");
    Ledger::create(dir.path(), &skey, &vkey).unwrap();
    let ledger = Arc::new(Ledger::open(dir.path(), &skey, fast_options()).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                (0..100u64)
                    .map(|i| {
                        let entry = record(t * 1000 + i);
                        let receipt = ledger.append(entry.clone()).unwrap();
                        assert_eq!(receipt.leaf_hash, leaf_hash(&entry));
                        assert!(receipt.index < receipt.tree_size);
                        (receipt, entry)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut receipts: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    receipts.sort_by_key(|(r, _)| r.index);
    let indexes: Vec<u64> = receipts.iter().map(|(r, _)| r.index).collect();
    assert_eq!(indexes, (0..800).collect::<Vec<_>>(), "every index once");
    assert_eq!(ledger.checkpoint().size, 800);
    Arc::try_unwrap(ledger).ok().unwrap().close().unwrap();

    let published = Published::open(dir.path(), None).unwrap();
    assert_eq!(published.size(), 800);
    let root = published.checkpoint().root;
    for (receipt, entry) in receipts.iter().step_by(37) {
        assert_eq!(&published.entry(receipt.index).unwrap(), entry);
        let (leaf, proof) = published.inclusion_proof(receipt.index).unwrap();
        assert_eq!(leaf, receipt.leaf_hash);
        check_inclusion(&proof, 800, &root, receipt.index, &leaf).unwrap();
        // A proof does not work for another entry or another root.
        assert!(check_inclusion(&proof, 800, &root, (receipt.index + 1) % 800, &leaf).is_err());
        let mut bent = proof.clone();
        bent[0][0] ^= 1;
        assert!(check_inclusion(&bent, 800, &root, receipt.index, &leaf).is_err());
    }
    let report = ledger::verify::verify(dir.path(), None, None, check_record).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

#[test]
fn reopening_continues_the_same_tree_and_consistency_holds() {
    let dir = tempfile::tempdir().unwrap();
    let skey = ledger_with(dir.path(), 300);
    let old = Published::open(dir.path(), None)
        .unwrap()
        .checkpoint()
        .clone();
    let ledger = Ledger::open(dir.path(), &skey, fast_options()).unwrap();
    let r = ledger.append(record(300)).unwrap();
    assert_eq!(r.index, 300);
    ledger
        .append_all((301..40_000).map(record).collect())
        .unwrap();
    let receipts = ledger
        .append_all((40_000..70_000).map(record).collect())
        .unwrap();
    assert_eq!(receipts.last().unwrap().index, 69_999);
    ledger.close().unwrap();
    let published = Published::open(dir.path(), None).unwrap();
    assert_eq!(published.size(), 70_000);
    let (old_root, proof) = published.consistency_proof(300).unwrap();
    assert_eq!(old_root, old.root);
    let new = published.checkpoint();
    check_consistency(&proof, new.size, &new.root, old.size, &old.root).unwrap();
    let mut wrong = old.root;
    wrong[5] ^= 1;
    assert!(check_consistency(&proof, new.size, &new.root, old.size, &wrong).is_err());
    let report = ledger::verify::verify(dir.path(), None, Some(&old.note), check_record).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.since, Some(300));
}

#[test]
fn rotation_keeps_the_journal_small_and_the_tree_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = key("test.example/ledger");
    Ledger::create(dir.path(), &skey, &vkey).unwrap();
    let options = Options {
        rotate_bytes: 8 * 1024,
        ..fast_options()
    };
    for round in 0..3u64 {
        let ledger = Ledger::open(dir.path(), &skey, options.clone()).unwrap();
        for chunk in 0..7 {
            let entries = (0..100)
                .map(|i| record(round * 1000 + chunk * 100 + i))
                .collect();
            ledger.append_all(entries).unwrap();
        }
        ledger.close().unwrap();
        let journal = std::fs::metadata(dir.path().join("journal")).unwrap().len();
        assert!(journal < 64 * 1024, "journal has {journal} bytes");
    }
    let report = ledger::verify::verify(dir.path(), None, None, check_record).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.size, 2100);
}

#[test]
fn one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let skey = ledger_with(dir.path(), 1);
    let first = Ledger::open(dir.path(), &skey, fast_options()).unwrap();
    let second = Ledger::open(dir.path(), &skey, fast_options());
    assert!(matches!(second, Err(Error::Locked(_))));
    first.close().unwrap();
    assert!(Ledger::open(dir.path(), &skey, fast_options()).is_ok());
}

#[test]
fn bad_input_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let skey = ledger_with(dir.path(), 3);
    let (other_skey, other_vkey) = key("other.example/ledger");
    assert!(matches!(
        Ledger::open(dir.path(), &other_skey, fast_options()),
        Err(Error::Key(_))
    ));
    assert!(matches!(
        Ledger::create(dir.path(), &other_skey, &other_vkey),
        Err(Error::AlreadyExists(_))
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Ledger::open(empty.path(), &skey, fast_options()),
        Err(Error::NotFound(_))
    ));
    let ledger = Ledger::open(dir.path(), &skey, fast_options()).unwrap();
    assert!(matches!(
        ledger.append(vec![0; 70_000]),
        Err(Error::EntryTooLarge(70_000))
    ));
    assert!(ledger.try_append(record(3)).is_ok());
    ledger.close().unwrap();
    let published = Published::open(dir.path(), None).unwrap();
    assert!(published.entry(4).is_err());
    assert!(published.inclusion_proof(4).is_err());
    assert!(published.consistency_proof(5).is_err());
}

#[test]
fn a_full_queue_pushes_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = key("test.example/ledger");
    Ledger::create(dir.path(), &skey, &vkey).unwrap();
    let options = Options {
        queue: 1,
        max_batch: 1,
        ..fast_options()
    };
    let ledger = Arc::new(Ledger::open(dir.path(), &skey, options).unwrap());
    let busy = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (ledger, busy) = (Arc::clone(&ledger), Arc::clone(&busy));
            std::thread::spawn(move || {
                let mut ok = 0u64;
                let mut i = 0;
                while ok < 40 && std::time::Instant::now() < deadline {
                    i += 1;
                    // Half the writers wait for room, half are told to come back later.
                    let result = if t % 2 == 0 {
                        ledger.append(record(t * 10_000 + i))
                    } else {
                        ledger.try_append(record(t * 10_000 + i))
                    };
                    match result {
                        Ok(_) => ok += 1,
                        Err(Error::Busy) => {
                            busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            std::thread::yield_now();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                ok
            })
        })
        .collect();
    let acked: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(acked, 320);
    assert!(
        busy.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the queue of one never filled"
    );
    let ledger = Arc::try_unwrap(ledger).ok().unwrap();
    assert_eq!(
        ledger.checkpoint().size,
        320,
        "busy appends were not written"
    );
    let receipt = ledger
        .append_record(&ledger::Record::new("admin.test", "t"))
        .unwrap();
    assert_eq!(receipt.index, 320);
    ledger.close().unwrap();
}
