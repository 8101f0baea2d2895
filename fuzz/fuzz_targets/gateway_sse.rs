//! Server-sent-events shaping of an upstream stream fed in chunks the input chooses
//! (`gateway::shape::SseShaper`).
//! Properties: see `gateway::fuzzing::sse_stream`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gateway::fuzzing::sse_stream(data));
