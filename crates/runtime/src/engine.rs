//! The inference engine inside the worker: tract, a pure-Rust ONNX runtime.

use std::io::Cursor;

use tract_onnx::prelude::*;

use crate::protocol;

/// An ONNX model, parsed, optimised and ready to run.
pub struct Engine {
    plan: TypedRunnableModel<TypedModel>,
    inputs: usize,
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
        let plan = model
            .into_runnable()
            .map_err(|e| format!("the model could not be planned: {e:#}"))?;
        Ok(Engine { plan, inputs })
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
