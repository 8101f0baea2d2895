//! The demo model's outputs from the sandboxed worker match its golden outputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use runtime::{Layer, LayerStatus, RuntimeError, Tensor};

#[test]
fn golden_outputs_from_the_sandboxed_worker() {
    let w = common::spawn(common::config());
    let report = w.sandbox_report().unwrap();
    eprintln!("sandbox: {report}");
    assert_eq!(report.layers.len(), Layer::ALL.len());
    for layer in Layer::ALL {
        common::enforced(&w, layer);
    }
    common::assert_golden(&w);
    // Row by row gives the same answers (the batch dimension is symbolic).
    let g = common::golden();
    for row in 0..g.input.shape[0] {
        let input = Tensor::new(vec![1, 4], g.input.data[row * 4..row * 4 + 4].to_vec()).unwrap();
        let out = w.infer(&[input]).unwrap();
        for (a, b) in out[0].data.iter().zip(&g.output.data[row * 3..row * 3 + 3]) {
            assert!((a - b).abs() <= g.tolerance, "row {row}: {a} vs {b}");
        }
    }
    assert_eq!(w.restarts(), 0);
}

#[test]
fn every_layer_is_in_force_on_this_kernel_or_named() {
    let w = common::spawn(common::config());
    let report = w.sandbox_report().unwrap();
    for l in &report.layers {
        match l.status {
            LayerStatus::Enforced => eprintln!("{}: enforced: {}", l.layer, l.detail),
            LayerStatus::Partial => eprintln!("{}: PARTIAL here: {}", l.layer, l.detail),
            LayerStatus::Missing => eprintln!("{}: MISSING here: {}", l.layer, l.detail),
        }
    }
}

#[test]
fn bad_inputs_are_errors_and_the_worker_stays() {
    let w = common::spawn(common::config());
    let pid = w.pid();
    // Wrong width.
    let err = w
        .infer(&[Tensor::new(vec![2, 3], vec![0.0; 6]).unwrap()])
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Inference(_)), "{err}");
    // Wrong number of inputs.
    let err = w.infer(&[]).unwrap_err();
    assert!(matches!(err, RuntimeError::Inference(_)), "{err}");
    assert!(err.to_string().contains("1 input"), "{err}");
    // A request above the frame limit never reaches the worker.
    let big = Tensor::new(vec![5 << 20, 4], vec![0.0; 20 << 20]).unwrap();
    let err = w.infer(&[big]).unwrap_err();
    assert!(matches!(err, RuntimeError::BadRequest(_)), "{err}");
    assert_eq!(w.pid(), pid);
    common::assert_golden(&w);
}

#[test]
fn a_model_that_is_not_onnx_is_refused_after_lockdown() {
    let err = runtime::Worker::spawn(b"not a model at all", common::config())
        .err()
        .unwrap();
    assert!(matches!(err, RuntimeError::Load(_)), "{err}");
}
