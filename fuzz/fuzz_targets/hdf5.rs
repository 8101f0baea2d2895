//! The hdf5 reader over arbitrary bytes. Property: an answer or an error, never a panic,
//! a hang or memory beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = formats::Limits::default();
    let _ = formats::hdf5::read_root(data, &limits);
    let _ = formats::hdf5::scan_json_objects(data, &limits, 8);
});
