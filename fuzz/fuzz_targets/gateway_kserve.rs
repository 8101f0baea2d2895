//! KServe v2 inference requests for models of the sandboxed runtime: the structural
//! check, and the typed and generic readings against a fixed signature.
//! Properties: see `gateway::fuzzing::kserve_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gateway::fuzzing::kserve_request(data));
