//! The ledger journal's frame parser over arbitrary bytes (`ledger::journal::parse`).
//! Property: no panic, no hang, allocations bounded by the input; every input parses or is
//! refused with an error naming the offset.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ledger::journal::parse(data);
});
