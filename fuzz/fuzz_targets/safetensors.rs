//! The safetensors reader over arbitrary bytes. Property: an answer or an error, never a panic,
//! a hang or memory beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = formats::Limits::default();
    let _ = formats::safetensors::read(data, &limits);
});
