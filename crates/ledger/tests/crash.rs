//! Crashes: a writer killed with SIGKILL at random moments (and a torn last write, and a
//! full disk) leaves a ledger that reopens, verifies, and holds every acknowledged entry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ledger::hash::leaf_hash;
use ledger::{Ledger, Options, Published};

const CHILD_DIR: &str = "WARDEN_LEDGER_CRASH_DIR";

/// Run only as the child of `killed_writers_lose_nothing_acknowledged`: appends from four
/// threads forever, printing each receipt once it is durable.
#[test]
#[ignore = "the writer process of the crash test"]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let skey = std::fs::read_to_string(Path::new(&dir).join("test.key")).unwrap();
    let options = Options {
        rotate_bytes: 96 * 1024,
        ..fast_options()
    };
    let ledger = Arc::new(Ledger::open(Path::new(&dir), &skey, options).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                for i in 0.. {
                    let entry = record(t << 32 | i);
                    let receipt = ledger.append(entry).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {} {}", receipt.index, hex(&receipt.leaf_hash)).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// A small deterministic generator, so that a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn killed_writers_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = key("test.example/ledger");
    Ledger::create(dir.path(), &skey, &vkey).unwrap();
    std::fs::write(dir.path().join("test.key"), &skey).unwrap();
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut rng = Lcg(0x5eed);
    for round in 0..12 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let mut parts = l.strip_prefix("ack ")?.split(' ');
                    Some((
                        parts.next()?.parse::<u64>().ok()?,
                        parts.next()?.to_string(),
                    ))
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(30 + rng.next(250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let this_round = reader.join().unwrap();
        assert!(
            !this_round.is_empty() || round > 0,
            "the writer acknowledged nothing"
        );
        for (index, leaf) in this_round {
            if let Some(previous) = acked.insert(index, leaf.clone()) {
                assert_eq!(
                    previous, leaf,
                    "entry {index} acknowledged twice with different content"
                );
            }
        }
        if round % 3 == 2 {
            // A torn write: the start of a frame that never completed.
            let mut journal = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.path().join("journal"))
                .unwrap();
            let junk: Vec<u8> = (0..rng.next(300) + 1)
                .map(|_| rng.next(256) as u8)
                .collect();
            journal.write_all(&[200, 0, 0, 0]).unwrap();
            journal.write_all(&junk).unwrap();
        }
        // Reopen: recovery replays the journal and publishes.
        Ledger::open(dir.path(), &skey, fast_options())
            .unwrap()
            .close()
            .unwrap();
        let published = Published::open(dir.path(), None).unwrap();
        let size = published.size();
        if let Some((&last, _)) = acked.last_key_value() {
            assert!(
                last < size,
                "round {round}: entry {last} was acknowledged but the ledger has {size}"
            );
        }
        for (&index, leaf) in acked.range(acked.len().saturating_sub(50) as u64..) {
            let entry = published.entry(index).unwrap();
            assert_eq!(
                &hex(&leaf_hash(&entry)),
                leaf,
                "round {round}: entry {index}"
            );
        }
        let report = ledger::verify::verify(dir.path(), None, None, check_record).unwrap();
        assert!(report.ok(), "round {round}: {:?}", report.problems);
    }
    // Every acknowledged entry, not only the recent ones, is there.
    let published = Published::open(dir.path(), None).unwrap();
    let mut seen = 0;
    published
        .for_each_entry(0, published.size(), |i, e| {
            if let Some(leaf) = acked.get(&i) {
                assert_eq!(&hex(&leaf_hash(e)), leaf, "entry {i}");
                seen += 1;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, acked.len());
    assert!(
        acked.len() > 100,
        "only {} appends acknowledged",
        acked.len()
    );
    eprintln!(
        "{} appends acknowledged over 12 kills; ledger of {}",
        acked.len(),
        published.size()
    );
}

/// A disk that fills up: appends fail with an error, none is acknowledged and lost, and
/// once there is room again the ledger reopens and verifies. Needs root to mount a small
/// tmpfs; elsewhere it says so and does nothing.
#[test]
fn a_full_disk_fails_appends_and_loses_nothing() {
    let mount = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(mount.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mount.path());
    let dir = mount.path().join("ledger");
    let (skey, vkey) = key("test.example/ledger");
    Ledger::create(&dir, &skey, &vkey).unwrap();
    let ledger = Ledger::open(&dir, &skey, fast_options()).unwrap();
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..100_000 {
        match ledger.append(record(i)) {
            Ok(r) => acked.push(r),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let failure = failure.expect("the disk never filled");
    eprintln!("after {} appends: {failure}", acked.len());
    assert!(
        failure.contains("No space") || failure.contains("stopped"),
        "{failure}"
    );
    drop(ledger);
    // Make room, reopen, and find every acknowledged entry.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=8m"])
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(grown.success());
    Ledger::open(&dir, &skey, fast_options())
        .unwrap()
        .close()
        .unwrap();
    let published = Published::open(&dir, None).unwrap();
    assert!(published.size() >= acked.len() as u64);
    for r in acked.iter().step_by(97).chain(acked.last()) {
        assert_eq!(leaf_hash(&published.entry(r.index).unwrap()), r.leaf_hash);
    }
    let report = ledger::verify::verify(&dir, None, None, check_record).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}
