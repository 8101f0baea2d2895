//! A worker that crashes, hangs or wants too much memory fails its request cleanly and is
//! started again; malformed frames are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use runtime::protocol::Probe;
use runtime::{Response, RuntimeError};

#[test]
fn a_crashing_worker_fails_the_request_and_restarts_after_back_off() {
    let mut cfg = common::config();
    cfg.initial_backoff = Duration::from_millis(300);
    let w = common::spawn(cfg);
    let first = w.pid().unwrap();
    let err = w.probe(Probe::Abort).unwrap_err();
    match &err {
        RuntimeError::Crashed(why) => assert!(why.contains("SIGABRT"), "{why}"),
        other => panic!("expected a crash, got {other}"),
    }
    assert_eq!(w.pid(), None);
    // Within the back-off, no new worker.
    let err = w.infer(&[common::golden().input]).unwrap_err();
    assert!(matches!(err, RuntimeError::Unavailable(_)), "{err}");
    std::thread::sleep(Duration::from_millis(350));
    // After it, the next request starts one.
    common::assert_golden(&w);
    assert_ne!(w.pid().unwrap(), first);
    assert_eq!(w.restarts(), 1);
}

#[test]
fn a_hanging_worker_is_killed_at_the_timeout() {
    let mut cfg = common::config();
    cfg.limits.request_timeout = Duration::from_millis(500);
    let w = common::spawn(cfg);
    let t = Instant::now();
    let err = w.probe(Probe::Hang).unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, RuntimeError::Timeout(_)), "{err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    w.restart().unwrap();
    common::assert_golden(&w);
}

#[test]
fn a_memory_hungry_worker_dies_at_its_limit() {
    let mut cfg = common::config();
    cfg.limits.memory_bytes = 256 << 20;
    let w = common::spawn(cfg);
    let err = w.probe(Probe::Allocate(1 << 30)).unwrap_err();
    match &err {
        RuntimeError::Crashed(why) => assert!(why.contains("signal"), "{why}"),
        other => panic!("expected a crash, got {other}"),
    }
    w.restart().unwrap();
    common::assert_golden(&w);
    // Over the limit, and under the 1 GiB mimalloc reserves at a time by default: the
    // limit still holds (address space reserved before lockdown does not lift it).
    let err = w.probe(Probe::Allocate(512 << 20)).unwrap_err();
    assert!(matches!(&err, RuntimeError::Crashed(_)), "{err}");
    w.restart().unwrap();
    // Below the limit, the same request is fine.
    assert_eq!(w.probe(Probe::Allocate(16 << 20)).unwrap(), 0);
}

#[test]
fn an_oversized_frame_is_refused() {
    let w = common::spawn(common::config());
    let resp = w.send_raw(&u32::MAX.to_le_bytes(), false).unwrap();
    match resp {
        Response::Error(why) => assert!(why.contains("larger than the limit"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The stream cannot be trusted after that: the worker stopped; a new one serves.
    let err = w.infer(&[common::golden().input]).unwrap_err();
    assert!(matches!(err, RuntimeError::Crashed(_)), "{err}");
    w.restart().unwrap();
    common::assert_golden(&w);
}

#[test]
fn a_truncated_frame_is_refused() {
    let w = common::spawn(common::config());
    let mut raw = 100u32.to_le_bytes().to_vec();
    raw.extend_from_slice(&[1, 2, 3]);
    let resp = w.send_raw(&raw, true).unwrap();
    match resp {
        Response::Error(why) => assert!(why.contains("truncated"), "{why}"),
        other => panic!("{other:?}"),
    }
    w.restart().unwrap();
    common::assert_golden(&w);
}

#[test]
fn a_malformed_message_in_a_good_frame_is_refused_and_the_worker_stays() {
    let w = common::spawn(common::config());
    let pid = w.pid();
    let mut raw = 5u32.to_le_bytes().to_vec();
    raw.extend_from_slice(&[0x01, 0xff, 0xff, 0xff, 0xff]);
    match w.send_raw(&raw, false).unwrap() {
        Response::Error(why) => assert!(why.contains("request refused"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.pid(), pid);
    common::assert_golden(&w);
}
