//! Models run by Warden's own sandboxed runtime rather than by an upstream server. The
//! gateway knows them through [`LocalBackend`] (which `warden` implements over the runtime's
//! worker processes) and serves them with the KServe v2 protocol: metadata, readiness and
//! inference, with every request checked against the model's signature before it crosses
//! into the sandbox, and outputs shaped to the least the caller needs.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One input or output of a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    /// KServe v2 datatype name (`FP32`, ...).
    pub datatype: String,
    /// Each dimension, or -1 where any size is accepted (the batch, usually).
    pub shape: Vec<i64>,
}

impl TensorSpec {
    /// Whether a tensor of `shape` fits: as many dimensions, each above 0, and equal to
    /// the spec's wherever the spec does not say -1.
    pub fn fits(&self, shape: &[usize]) -> bool {
        shape.len() == self.shape.len()
            && shape
                .iter()
                .zip(&self.shape)
                .all(|(&got, &want)| got > 0 && (want < 0 || got as i64 == want))
    }

    /// The spec's shape as people write it, `[-1, 4]`.
    pub fn shape_text(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(i64::to_string).collect();
        format!("[{}]", dims.join(", "))
    }
}

/// A dense float32 tensor crossing into or out of the runtime.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Why the runtime could not answer. What the caller sees is decided by the gateway; the
/// details stay here.
#[derive(Clone, Debug)]
pub enum BackendError {
    /// The worker crashed, broke the protocol or the model failed: a generic 502.
    Failed,
    /// The worker did not answer in time and was stopped: 504.
    Timeout,
    /// No worker runs now (it is being restarted after a failure): 503 with Retry-After.
    Unavailable(Duration),
}

/// Runs a model (in `warden`: a sandboxed worker process). Called on a blocking thread,
/// one request at a time per model.
pub trait LocalBackend: Send + Sync + 'static {
    fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, BackendError>;
}

/// What a caller gets back from a classifier (guidance: return the least that serves the
/// purpose; full scores help an attacker copy or invert the model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputShaping {
    /// The most likely class only.
    Label,
    /// The most likely class and its score rounded to two decimals (the default).
    LabelScore,
    /// Every output tensor as the model produced it (an explicit, weaker setting).
    Scores,
}

impl OutputShaping {
    pub fn parse(s: &str) -> Option<OutputShaping> {
        match s {
            "label" => Some(OutputShaping::Label),
            "label-score" => Some(OutputShaping::LabelScore),
            "scores" => Some(OutputShaping::Scores),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputShaping::Label => "label",
            OutputShaping::LabelScore => "label-score",
            OutputShaping::Scores => "scores",
        }
    }
}

/// A model served by the runtime: its live release, its signature and how outputs are
/// shaped.
pub struct LocalModel {
    pub name: String,
    /// The live release's version.
    pub version: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Class names, by index of the classifier's output (empty: the index is the label).
    pub labels: Vec<String>,
    pub shaping: OutputShaping,
    pub backend: Arc<dyn LocalBackend>,
    /// Requests waiting for the worker, crossing together ([`crate::batch`]).
    pub(crate) batcher: crate::batch::Batcher,
    /// Whether requests may be joined along the first dimension.
    pub(crate) batchable: bool,
}

impl LocalModel {
    /// Checks that the model can be served with this shaping: label shaping needs a first
    /// output of shape `[batch, classes]` and, if labels are given, one per class.
    pub fn new(
        name: &str,
        version: &str,
        signature: (Vec<TensorSpec>, Vec<TensorSpec>),
        labels: Vec<String>,
        shaping: OutputShaping,
        backend: Arc<dyn LocalBackend>,
    ) -> anyhow::Result<LocalModel> {
        let (inputs, outputs) = signature;
        if inputs.is_empty() || outputs.is_empty() {
            anyhow::bail!("model {name}: the model declares no inputs or no outputs");
        }
        if let Some(bad) = inputs.iter().find(|s| s.datatype != "FP32") {
            anyhow::bail!(
                "model {name}: input {:?} is {}; the runtime passes FP32 inputs only",
                bad.name,
                bad.datatype
            );
        }
        if shaping != OutputShaping::Scores {
            let first = &outputs[0];
            if first.shape.len() != 2 {
                anyhow::bail!(
                    "model {name}: output {:?} has shape {:?}, not [batch, classes], so it cannot be reduced to a label; set output = \"scores\" for it",
                    first.name,
                    first.shape
                );
            }
            let classes = first.shape[1];
            if !labels.is_empty() && classes >= 0 && labels.len() as i64 != classes {
                anyhow::bail!(
                    "model {name}: {} labels are configured but the model has {classes} classes",
                    labels.len()
                );
            }
        }
        let batchable = crate::batch::batchable(&inputs, &outputs);
        Ok(LocalModel {
            name: name.to_string(),
            version: version.to_string(),
            inputs,
            outputs,
            labels,
            shaping,
            backend,
            batcher: crate::batch::Batcher::default(),
            batchable,
        })
    }

    /// The release this model is, as `name@version`.
    pub fn release(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A model name the runtime answers for.
#[derive(Clone)]
pub enum Served {
    Ready(Arc<LocalModel>),
    /// Its live release could not be loaded (an integrity failure, a worker that would not
    /// start): requests get 503, and the reason is in the ledger, not in the answer.
    Unavailable {
        version: String,
    },
}

/// The models the runtime serves, by name; replaced as releases go live.
#[derive(Default)]
pub struct LocalModels {
    map: RwLock<HashMap<String, Served>>,
}

impl LocalModels {
    pub fn set(&self, name: &str, served: Served) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.to_string(), served);
    }

    pub fn remove(&self, name: &str) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name);
    }

    pub fn get(&self, name: &str) -> Option<Served> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = map.keys().cloned().collect();
        names.sort();
        names
    }
}
