//! Certificate chains (PKI mode) checked by `sign::cert::verify_chain`, with fixtures made by
//! the openssl command line (`tests/pki/make.sh`): the good path and each reason to refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sign::cert::{pem_certificates, verify_chain, Anchors, CertError};

/// A fixture's path, from the manifest directory cargo gives the test when it runs (not
/// the one baked in when it was built: a binary may come from another checkout).
fn fixture(name: &str) -> String {
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    format!("{dir}/tests/pki/{name}.pem")
}

fn der(name: &str) -> Vec<u8> {
    let path = fixture(name);
    let pem = std::fs::read_to_string(path).unwrap();
    pem_certificates(&pem).unwrap().remove(0)
}

fn anchors(name: &str) -> Anchors {
    let path = fixture(name);
    Anchors::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

/// 2027-06-01: inside every fixture's validity.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_811_808_000)
}

fn years(n: u64) -> Duration {
    Duration::from_secs(n * 365 * 86_400)
}

#[test]
fn a_chain_to_the_root_is_trusted() {
    let leaf = verify_chain(&[der("leaf"), der("inter")], &anchors("root"), now()).unwrap();
    assert!(
        leaf.subject.contains("publisher@example.org"),
        "{}",
        leaf.subject
    );
    // The code-signing EKU alone is enough, as for model_signing.
    assert!(verify_chain(&[der("eku"), der("inter")], &anchors("root"), now()).is_ok());
    // A pinned leaf needs no path.
    assert!(verify_chain(&[der("leaf")], &anchors("leaf"), now()).is_ok());
}

#[test]
fn another_root_or_a_missing_intermediate_is_untrusted() {
    let other = verify_chain(&[der("leaf"), der("inter")], &anchors("other"), now());
    assert!(
        matches!(other, Err(CertError::Untrusted { .. })),
        "{other:?}"
    );
    let gap = verify_chain(&[der("leaf")], &anchors("root"), now());
    assert!(matches!(gap, Err(CertError::Untrusted { .. })), "{gap:?}");
}

#[test]
fn validity_is_checked_at_the_given_time() {
    let chain = [der("leaf"), der("inter")];
    let late = verify_chain(&chain, &anchors("root"), now() + years(101));
    assert!(matches!(late, Err(CertError::Expired { .. })), "{late:?}");
    let early = verify_chain(&chain, &anchors("root"), now() - years(2));
    assert!(
        matches!(early, Err(CertError::NotYetValid { .. })),
        "{early:?}"
    );
}

#[test]
fn the_leaf_must_be_allowed_to_sign() {
    let r = verify_chain(&[der("nouse"), der("inter")], &anchors("root"), now());
    assert!(matches!(r, Err(CertError::LeafUsage { .. })), "{r:?}");
}

#[test]
fn only_a_ca_may_issue() {
    let r = verify_chain(&[der("under"), der("notca")], &anchors("root"), now());
    assert!(matches!(r, Err(CertError::NotCa { .. })), "{r:?}");
}

#[test]
fn unknown_critical_extensions_are_refused() {
    let r = verify_chain(&[der("crit"), der("inter")], &anchors("root"), now());
    assert!(
        matches!(r, Err(CertError::CriticalExtension { .. })),
        "{r:?}"
    );
}

#[test]
fn malformed_chains_are_refused() {
    let r = verify_chain(&[b"not der".to_vec()], &anchors("root"), now());
    assert!(matches!(r, Err(CertError::Parse { index: 0, .. })), "{r:?}");
    let r = verify_chain(&[], &anchors("root"), now());
    assert!(matches!(r, Err(CertError::Parse { .. })), "{r:?}");
    let mut bent = der("leaf");
    let last = bent.len() - 3;
    bent[last] ^= 0x55; // inside the signature
    let r = verify_chain(&[bent, der("inter")], &anchors("root"), now());
    assert!(r.is_err(), "a leaf with a broken signature was trusted");
}
