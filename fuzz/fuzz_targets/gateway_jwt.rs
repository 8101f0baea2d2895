//! Bearer tokens checked against a fixed JWKS of public keys whose private keys were
//! discarded (`gateway::jwt`).
//! Properties: see `gateway::fuzzing::jwt_token`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gateway::fuzzing::jwt_token(data));
