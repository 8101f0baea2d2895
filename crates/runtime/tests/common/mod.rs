#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use runtime::{LayerStatus, RuntimeError, Tensor, Worker, WorkerConfig};

pub fn repo_root() -> PathBuf {
    // Read when the test runs, not when it is built (a binary may come from another checkout).
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
}

pub fn iris_model() -> Vec<u8> {
    std::fs::read(repo_root().join("examples/models/iris/model.onnx")).unwrap()
}

pub struct Golden {
    pub input: Tensor,
    pub output: Tensor,
    pub tolerance: f32,
}

pub fn golden() -> Golden {
    let text =
        std::fs::read_to_string(repo_root().join("examples/models/iris/golden.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensor = |t: &serde_json::Value| {
        let shape = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let data = t["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_f64().unwrap() as f32)
            .collect();
        Tensor::new(shape, data).unwrap()
    };
    Golden {
        input: tensor(&v["inputs"]),
        output: tensor(&v["outputs"]),
        tolerance: v["tolerance"].as_f64().unwrap() as f32,
    }
}

pub fn config() -> WorkerConfig {
    let mut c = WorkerConfig::new(env!("CARGO_BIN_EXE_warden-runtime-worker"));
    c.limits.memory_bytes = 512 << 20;
    c
}

/// Starts a worker with every layer required. Where this kernel lacks a layer, says
/// exactly which, and starts it with `allow_weaker_sandbox` so the other layers are still
/// checked.
pub fn spawn(mut cfg: WorkerConfig) -> Worker {
    match Worker::spawn(&iris_model(), cfg.clone()) {
        Ok(w) => w,
        Err(RuntimeError::Refused(why)) if !cfg.allow_weaker_sandbox => {
            eprintln!("NOTE: this environment lacks a sandbox layer: {why}");
            eprintln!("NOTE: continuing with allow_weaker_sandbox to check the other layers");
            cfg.allow_weaker_sandbox = true;
            Worker::spawn(&iris_model(), cfg).unwrap()
        }
        Err(e) => panic!("worker did not start: {e}"),
    }
}

/// Whether `layer` is in force in this worker (printing why not, if not).
pub fn enforced(w: &Worker, layer: runtime::Layer) -> bool {
    let report = w.sandbox_report().unwrap();
    let l = report.get(layer).unwrap();
    if l.status == LayerStatus::Missing {
        eprintln!("NOTE: layer {layer} is not in force here: {}", l.detail);
        false
    } else {
        true
    }
}

pub fn assert_golden(w: &Worker) {
    let g = golden();
    let out = w.infer(std::slice::from_ref(&g.input)).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].shape, g.output.shape);
    for (i, (a, b)) in out[0].data.iter().zip(&g.output.data).enumerate() {
        assert!(
            (a - b).abs() <= g.tolerance,
            "output {i}: {a} vs golden {b} (tolerance {})",
            g.tolerance
        );
    }
}
