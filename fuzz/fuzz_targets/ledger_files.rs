//! What the ledger reads from its published files and from users: checkpoint notes, entry
//! bundles, hash tiles and records, over arbitrary bytes. Property: no panic, no hang, and
//! `Record::check` agrees with `Record::decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

const VKEY: &str = "fuzz.example/ledger+c4a89268+ASZj9zloxTsofm7k+laMCkdOZqa6SOocmOdkVX15yGmv";

fuzz_target!(|data: &[u8]| {
    let _ = ledger::checkpoint::parse_unverified(data);
    let _ = ledger::checkpoint::verify(data, VKEY);
    let _ = ledger::tiles::split_bundle(data);
    let _ = ledger::tiles::decode_hashes(data);
    // The allocation-free record check accepts exactly what the decoder accepts.
    assert_eq!(
        ledger::Record::check(data).is_ok(),
        ledger::Record::decode(data).is_ok()
    );
});
