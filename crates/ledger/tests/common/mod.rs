//! Shared helpers of the ledger tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use ledger::{Ledger, Options, Record};

pub fn key(origin: &str) -> (String, String) {
    ledger::generate_key(origin).unwrap()
}

pub fn fast_options() -> Options {
    Options {
        publish_interval: Duration::from_millis(5),
        ..Options::default()
    }
}

pub fn record(i: u64) -> Vec<u8> {
    Record::new("admin.test", "tester")
        .subject(&format!("item-{i}"))
        .attr("n", &i.to_string())
        .encode()
        .unwrap()
}

/// A closed ledger of `n` records in `dir`; returns the private key.
pub fn ledger_with(dir: &Path, n: u64) -> String {
    let (skey, vkey) = key("test.example/ledger");
    Ledger::create(dir, &skey, &vkey).unwrap();
    let ledger = Ledger::open(dir, &skey, fast_options()).unwrap();
    for i in 0..n {
        ledger.append(record(i)).unwrap();
    }
    ledger.close().unwrap();
    skey
}

pub fn check_record(entry: &[u8]) -> Result<(), String> {
    Record::check(entry).map_err(|e| e.to_string())
}
