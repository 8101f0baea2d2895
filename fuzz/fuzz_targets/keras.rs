//! The keras reader over arbitrary bytes. Property: an answer or an error, never a panic,
//! a hang or memory beyond the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = formats::Limits::default();
    if let Ok(v) = formats::keras::load_json(data, &limits) {
        for obj in formats::keras::objects(&v, &limits) {
            let _ = formats::keras::bytecode(&obj);
        }
    }
});
