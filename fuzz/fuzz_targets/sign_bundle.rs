//! Sigstore bundle and in-toto statement parsing over arbitrary bytes (`sign::bundle`).
//! Property: no panic, no hang; every input parses or is refused with a `FormatError`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sign::bundle::fuzz_parse(data));
