//! The whole scanner over arbitrary bytes: detection, every reader, every analyzer and
//! nested containers. Property: no panic, no hang, memory bounded by the scan limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = scan::ScanOptions::default();
    let _ = scan::scan_bytes(data, "fuzz-input", &opts);
});
