//! Shaping of whole OpenAI-compatible upstream answers (`gateway::shape::shape_openai`).
//! Properties: see `gateway::fuzzing::openai_answer`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gateway::fuzzing::openai_answer(data));
