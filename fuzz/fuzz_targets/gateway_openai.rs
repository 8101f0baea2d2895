//! OpenAI-compatible request validation (chat, completions, embeddings: the first byte
//! picks one) and the phrase tripwire over the texts it returns (`gateway::validate`,
//! `gateway::guard`).
//! Properties: see `gateway::fuzzing::openai_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gateway::fuzzing::openai_request(data));
