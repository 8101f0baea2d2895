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
    // The worker read the model's signature from the ONNX graph (names from golden.json).
    let sig = w.signature().unwrap();
    let spec = |s: &runtime::TensorSpec| (s.name.clone(), s.datatype.clone(), s.shape.clone());
    assert_eq!(
        sig.inputs.iter().map(spec).collect::<Vec<_>>(),
        vec![("input".to_string(), "FP32".to_string(), vec![-1, 4])]
    );
    assert_eq!(
        sig.outputs.iter().map(spec).collect::<Vec<_>>(),
        vec![("probabilities".to_string(), "FP32".to_string(), vec![-1, 3])]
    );
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
    // Leaving is inside the allow-list too: the worker exits 0, not killed by seccomp.
    w.shutdown().unwrap();
}

#[test]
fn a_large_batch_runs_in_the_sandbox() {
    // Large inputs and outputs take the allocator's other paths (mmap, mremap, munmap),
    // which the seccomp allow-list must let through.
    let w = common::spawn(common::config());
    let g = common::golden();
    for rows in [1000usize, 200_000] {
        let data: Vec<f32> = (0..rows)
            .flat_map(|i| g.input.data[(i % 7) * 4..(i % 7) * 4 + 4].to_vec())
            .collect();
        let out = w
            .infer(&[Tensor::new(vec![rows, 4], data).unwrap()])
            .unwrap();
        assert_eq!(out[0].shape, vec![rows, 3]);
        for i in [0, rows / 2, rows - 1] {
            for c in 0..3 {
                let (a, b) = (out[0].data[i * 3 + c], g.output.data[(i % 7) * 3 + c]);
                assert!((a - b).abs() <= g.tolerance, "row {i}: {a} vs {b}");
            }
        }
    }
    assert_eq!(w.restarts(), 0);
    w.shutdown().unwrap();
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
    let mut cfg = common::config();
    cfg.allow_weaker_sandbox = true;
    let err = runtime::Worker::spawn(b"not a model at all", cfg)
        .err()
        .unwrap();
    assert!(matches!(err, RuntimeError::Load(_)), "{err}");
}
