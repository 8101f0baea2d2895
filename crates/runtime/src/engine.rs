//! The inference engine inside the worker: tract, a pure-Rust ONNX runtime.

use std::io::Cursor;

use tract_onnx::prelude::*;

use crate::protocol;

/// An ONNX model, parsed, optimised and ready to run.
pub struct Engine {
    plan: TypedRunnableModel<TypedModel>,
    inputs: usize,
    signature: protocol::Signature,
}

impl Engine {
    /// Parses and optimises an ONNX model from its bytes. Called only once the worker is
    /// locked down.
    pub fn load(bytes: &[u8]) -> Result<Engine, String> {
        let model = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(bytes))
            .map_err(|e| format!("not a model tract can load: {e:#}"))?;
        let model = model
            .into_optimized()
            .map_err(|e| format!("the model could not be optimised: {e:#}"))?;
        let inputs = model.inputs.len();
        let signature = signature(&model)?;
        let plan = model
            .into_runnable()
            .map_err(|e| format!("the model could not be planned: {e:#}"))?;
        Ok(Engine {
            plan,
            inputs,
            signature,
        })
    }

    /// The model's inputs and outputs.
    pub fn signature(&self) -> &protocol::Signature {
        &self.signature
    }

    /// Runs the model on float32 inputs; outputs are cast to float32.
    pub fn run(&self, inputs: Vec<protocol::Tensor>) -> Result<Vec<protocol::Tensor>, String> {
        if inputs.len() != self.inputs {
            return Err(format!(
                "the model takes {} input tensor(s), {} given",
                self.inputs,
                inputs.len()
            ));
        }
        let mut values: TVec<TValue> = tvec!();
        for (i, t) in inputs.into_iter().enumerate() {
            let array = tract_ndarray::ArrayD::from_shape_vec(t.shape, t.data)
                .map_err(|e| format!("input {i}: {e}"))?;
            values.push(Tensor::from(array).into());
        }
        let outputs = self
            .plan
            .run(values)
            .map_err(|e| format!("inference failed: {e:#}"))?;
        let mut result = Vec::with_capacity(outputs.len());
        for (i, v) in outputs.into_iter().enumerate() {
            let t = v
                .cast_to::<f32>()
                .map_err(|e| format!("output {i} is not numeric: {e:#}"))?;
            let data = t
                .as_slice::<f32>()
                .map_err(|e| format!("output {i}: {e:#}"))?
                .to_vec();
            result.push(protocol::Tensor {
                shape: t.shape().to_vec(),
                data,
            });
        }
        Ok(result)
    }
}

/// The KServe v2 name of a tract datum type.
fn kserve_datatype(dt: DatumType) -> String {
    let name = match dt {
        DatumType::Bool => "BOOL",
        DatumType::U8 => "UINT8",
        DatumType::U16 => "UINT16",
        DatumType::U32 => "UINT32",
        DatumType::U64 => "UINT64",
        DatumType::I8 => "INT8",
        DatumType::I16 => "INT16",
        DatumType::I32 => "INT32",
        DatumType::I64 => "INT64",
        DatumType::F16 => "FP16",
        DatumType::F32 => "FP32",
        DatumType::F64 => "FP64",
        DatumType::String => "BYTES",
        _ => "UNSUPPORTED",
    };
    name.to_string()
}

fn spec(name: String, fact: &TypedFact, datatype: Option<&str>) -> protocol::TensorSpec {
    protocol::TensorSpec {
        name,
        datatype: datatype
            .map(str::to_string)
            .unwrap_or_else(|| kserve_datatype(fact.datum_type)),
        shape: fact
            .shape
            .iter()
            .map(|d| d.as_i64().unwrap_or(-1))
            .collect(),
    }
}

/// Names, datatypes and shapes of the model's inputs and outputs. Outputs are reported as
/// FP32, which is what [`Engine::run`] returns.
fn signature(model: &TypedModel) -> Result<protocol::Signature, String> {
    let too_many = |what: &str, n: usize| {
        format!(
            "the model has {n} {what}; at most {} are supported",
            protocol::MAX_TENSORS
        )
    };
    if model.inputs.len() > protocol::MAX_TENSORS as usize {
        return Err(too_many("inputs", model.inputs.len()));
    }
    if model.outputs.len() > protocol::MAX_TENSORS as usize {
        return Err(too_many("outputs", model.outputs.len()));
    }
    let mut sig = protocol::Signature::default();
    for (i, outlet) in model.inputs.iter().enumerate() {
        let fact = model
            .outlet_fact(*outlet)
            .map_err(|e| format!("input {i}: {e:#}"))?;
        sig.inputs
            .push(spec(model.node(outlet.node).name.clone(), fact, None));
    }
    for (i, outlet) in model.outputs.iter().enumerate() {
        let fact = model
            .outlet_fact(*outlet)
            .map_err(|e| format!("output {i}: {e:#}"))?;
        let name = model
            .outlet_label(*outlet)
            .map(str::to_string)
            .unwrap_or_else(|| format!("output_{i}"));
        sig.outputs.push(spec(name, fact, Some("FP32")));
    }
    for s in sig.inputs.iter_mut().chain(sig.outputs.iter_mut()) {
        if s.shape.len() > protocol::MAX_RANK as usize {
            return Err(format!(
                "{} has rank {}; at most {} is supported",
                s.name,
                s.shape.len(),
                protocol::MAX_RANK
            ));
        }
        // Names cross the protocol and reach callers: keep them short and printable.
        s.name = s
            .name
            .chars()
            .filter(|c| !c.is_control())
            .take(128)
            .collect();
    }
    Ok(sig)
}
