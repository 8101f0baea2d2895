//! The KServe v2 protocol for models run by the sandboxed runtime: metadata, and inference
//! requests checked against the model's signature (names, datatypes, shapes, element
//! counts, finite values) before they cross into the worker, with outputs shaped on the way
//! back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Map, Value};

use crate::batch;
use crate::error::ApiError;
use crate::local::{BackendError, LocalModel, OutputShaping, Tensor, TensorSpec};
use crate::validate;

/// The deepest nesting accepted in a tensor's `data` (KServe allows row-major nested
/// arrays; the rank limit of the runtime is 8).
const MAX_DEPTH: usize = 8;

fn spec_json(s: &TensorSpec) -> Value {
    json!({"name": s.name, "datatype": s.datatype, "shape": s.shape})
}

/// The outputs as the caller will get them after shaping.
fn shaped_outputs(model: &LocalModel) -> Vec<Value> {
    let batch = model.outputs.first().and_then(|o| o.shape.first()).copied();
    let batch = batch.unwrap_or(-1);
    match model.shaping {
        OutputShaping::Scores => model.outputs.iter().map(spec_json).collect(),
        OutputShaping::Label => {
            vec![json!({"name": "label", "datatype": "BYTES", "shape": [batch]})]
        }
        OutputShaping::LabelScore => vec![
            json!({"name": "label", "datatype": "BYTES", "shape": [batch]}),
            json!({"name": "score", "datatype": "FP32", "shape": [batch]}),
        ],
    }
}

/// `GET /v2/models/{name}[/versions/{v}]`.
pub fn metadata(model: &LocalModel) -> Bytes {
    let v = json!({
        "name": model.name,
        "versions": [model.version],
        "platform": "onnx",
        "inputs": model.inputs.iter().map(spec_json).collect::<Vec<_>>(),
        "outputs": shaped_outputs(model),
    });
    Bytes::from(v.to_string())
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// Appends the numbers of a (possibly nested) data array, checking each is a finite FP32.
fn flatten(v: &[Value], depth: usize, out: &mut Vec<f32>, field: &str) -> Result<(), ApiError> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("`{field}` is nested too deeply")));
    }
    for item in v {
        match item {
            Value::Array(inner) => flatten(inner, depth + 1, out, field)?,
            Value::Number(n) => {
                let x = n
                    .as_f64()
                    .ok_or_else(|| bad(format!("`{field}` holds a number that is not FP32")))?;
                let f = x as f32;
                if !f.is_finite() {
                    return Err(bad(format!("`{field}` holds {x}, outside the FP32 range")));
                }
                out.push(f);
            }
            _ => return Err(bad(format!("`{field}` must hold only numbers (FP32)"))),
        }
    }
    Ok(())
}

/// The request's tensors, in the model's input order, and its `id` (echoed back when it is
/// a short printable string).
pub fn parse(model: &LocalModel, body: &[u8]) -> Result<(Vec<Tensor>, Option<String>), ApiError> {
    // The generic structure first (the same checks as for upstream models).
    let map: Map<String, Value> = validate::json_object(body)?;
    validate::kserve_infer_object(&map)?;
    let id = match map.get("id") {
        Some(Value::String(s))
            if s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic() || c == ' ') =>
        {
            Some(s.clone())
        }
        Some(Value::String(_)) => {
            return Err(bad("`id` must be at most 128 printable ASCII characters"))
        }
        Some(_) => return Err(bad("`id` must be a string")),
        None => None,
    };
    let given = match map.get("inputs") {
        Some(Value::Array(a)) => a,
        _ => return Err(bad("`inputs` is required")),
    };
    let mut slots: Vec<Option<Tensor>> = vec![None; model.inputs.len()];
    for (i, t) in given.iter().enumerate() {
        let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
        let Some(at) = model.inputs.iter().position(|s| s.name == name) else {
            let names: Vec<&str> = model.inputs.iter().map(|s| s.name.as_str()).collect();
            return Err(bad(format!(
                "`inputs[{i}]`: model {} has no input {name:?} (its inputs: {})",
                model.name,
                names.join(", ")
            )));
        };
        if slots[at].is_some() {
            return Err(bad(format!("input {name:?} is given twice")));
        }
        let spec = &model.inputs[at];
        let datatype = t
            .get("datatype")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if datatype != spec.datatype {
            return Err(bad(format!(
                "input {name:?} must be {}, not {datatype}",
                spec.datatype
            )));
        }
        let shape: Vec<usize> = t
            .get("shape")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .filter_map(|d| usize::try_from(d).ok())
                    .collect()
            })
            .unwrap_or_default();
        let fits = shape.len() == spec.shape.len()
            && shape
                .iter()
                .zip(&spec.shape)
                .all(|(&got, &want)| got > 0 && (want < 0 || got as i64 == want));
        if !fits {
            return Err(bad(format!(
                "input {name:?} has shape {shape:?}; the model takes {} (-1: any size above 0)",
                fmt_shape(&spec.shape)
            )));
        }
        let field = format!("inputs[{i}].data");
        let data = t.get("data").and_then(Value::as_array).map(Vec::as_slice);
        let mut values = Vec::new();
        flatten(data.unwrap_or_default(), 1, &mut values, &field)?;
        // kserve_infer checked the element count against the shape.
        slots[at] = Some(Tensor {
            shape,
            data: values,
        });
    }
    let mut tensors = Vec::with_capacity(slots.len());
    for (slot, spec) in slots.into_iter().zip(&model.inputs) {
        match slot {
            Some(t) => tensors.push(t),
            None => return Err(bad(format!("input {:?} is required", spec.name))),
        }
    }
    Ok((tensors, id))
}

fn fmt_shape(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join(", "))
}

fn model_error() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "model_error",
        "the model could not answer this request",
    )
}

/// The answer the caller gets: the model's outputs, shaped.
pub fn answer(
    model: &LocalModel,
    outputs: Vec<Tensor>,
    id: Option<String>,
) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    match model.shaping {
        OutputShaping::Scores => {
            for (t, spec) in outputs.iter().zip(&model.outputs) {
                out.push(json!({
                    "name": spec.name,
                    "datatype": "FP32",
                    "shape": t.shape,
                    "data": t.data,
                }));
            }
        }
        OutputShaping::Label | OutputShaping::LabelScore => {
            let first = outputs.first().ok_or_else(model_error)?;
            let [rows, classes] = first.shape[..] else {
                return Err(model_error());
            };
            if classes == 0 || first.data.len() != rows * classes {
                return Err(model_error());
            }
            let mut labels = Vec::with_capacity(rows);
            let mut scores = Vec::with_capacity(rows);
            for row in first.data.chunks_exact(classes) {
                let (best, score) =
                    row.iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |acc, (i, &s)| {
                                if s > acc.1 {
                                    (i, s)
                                } else {
                                    acc
                                }
                            },
                        );
                labels.push(
                    model
                        .labels
                        .get(best)
                        .cloned()
                        .unwrap_or_else(|| best.to_string()),
                );
                scores.push((f64::from(score) * 100.0).round() / 100.0);
            }
            out.push(
                json!({"name": "label", "datatype": "BYTES", "shape": [rows], "data": labels}),
            );
            if model.shaping == OutputShaping::LabelScore {
                out.push(
                    json!({"name": "score", "datatype": "FP32", "shape": [rows], "data": scores}),
                );
            }
        }
    }
    let mut v = json!({
        "model_name": model.name,
        "model_version": model.version,
        "outputs": out,
    });
    if let Some(id) = id {
        v["id"] = Value::String(id);
    }
    Ok(Bytes::from(v.to_string()))
}

/// Runs the request in the model's worker, batched with the requests waiting with it,
/// waiting at most `timeout` for the answer.
pub async fn infer(
    model: &Arc<LocalModel>,
    inputs: Vec<Tensor>,
    timeout: Duration,
) -> Result<Vec<Tensor>, ApiError> {
    let timed_out = || {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "model_timeout",
            "the model did not answer in time",
        )
    };
    let wait = batch::submit(model, inputs).map_err(|batch::Full| {
        ApiError::unavailable(
            "model_busy",
            "the model is busy with other requests; try again shortly",
        )
    })?;
    match tokio::time::timeout(timeout, wait).await {
        Err(_) => Err(timed_out()),
        Ok(Ok(Ok(outputs))) => Ok(outputs),
        Ok(Ok(Err(BackendError::Timeout))) => Err(timed_out()),
        Ok(Ok(Err(BackendError::Unavailable(_)))) => Err(ApiError::unavailable(
            "model_unavailable",
            "the model is restarting; try again shortly",
        )),
        Ok(Ok(Err(BackendError::Failed))) | Ok(Err(_)) => Err(model_error()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Never;
    impl crate::local::LocalBackend for Never {
        fn infer(&self, _: Vec<Tensor>) -> Result<Vec<Tensor>, BackendError> {
            Err(BackendError::Failed)
        }
    }

    fn iris(shaping: OutputShaping) -> LocalModel {
        LocalModel::new(
            "iris",
            "1.0",
            (
                vec![TensorSpec {
                    name: "input".into(),
                    datatype: "FP32".into(),
                    shape: vec![-1, 4],
                }],
                vec![TensorSpec {
                    name: "probabilities".into(),
                    datatype: "FP32".into(),
                    shape: vec![-1, 3],
                }],
            ),
            vec!["setosa".into(), "versicolor".into(), "virginica".into()],
            shaping,
            Arc::new(Never),
        )
        .unwrap()
    }

    fn msg(r: Result<(Vec<Tensor>, Option<String>), ApiError>) -> String {
        r.unwrap_err().message
    }

    #[test]
    fn requests_are_checked_against_the_signature() {
        let m = iris(OutputShaping::LabelScore);
        let (t, id) = parse(
            &m,
            br#"{"id":"r1","inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[5,6,7,8]]}]}"#,
        )
        .unwrap();
        assert_eq!(id.as_deref(), Some("r1"));
        assert_eq!(t[0].shape, vec![2, 4]);
        assert_eq!(t[0].data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let cases: &[(&[u8], &str)] = &[
            (br#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#, "no input \"x\""),
            (br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"INT64","data":[1,2,3,4]}]}"#, "must be FP32"),
            (br#"{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#, "has shape [1, 3]"),
            (br#"{"inputs":[{"name":"input","shape":[0,4],"datatype":"FP32","data":[]}]}"#, "has shape [0, 4]"),
            (br#"{"inputs":[{"name":"input","shape":[4],"datatype":"FP32","data":[1,2,3,4]}]}"#, "has shape [4]"),
            (br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,"3",4]}]}"#, "only numbers"),
            (br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,1e300,4]}]}"#, "outside the FP32 range"),
            (br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#, "given twice"),
            (br#"{"id":7,"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#, "`id` must be a string"),
            (br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}"#, "holds 4 elements"),
        ];
        for (body, want) in cases {
            let got = msg(parse(&m, body));
            assert!(
                got.contains(want),
                "{}: {got}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn outputs_are_shaped() {
        let probs = vec![Tensor {
            shape: vec![2, 3],
            data: vec![0.9712, 0.02, 0.0088, 0.1, 0.3, 0.6],
        }];
        let v: Value = serde_json::from_slice(
            &answer(&iris(OutputShaping::LabelScore), probs.clone(), None).unwrap(),
        )
        .unwrap();
        assert_eq!(v["outputs"][0]["data"], json!(["setosa", "virginica"]));
        assert_eq!(v["outputs"][1]["data"], json!([0.97, 0.6]));
        assert_eq!(v["model_version"], "1.0");
        let v: Value = serde_json::from_slice(
            &answer(&iris(OutputShaping::Label), probs.clone(), Some("a".into())).unwrap(),
        )
        .unwrap();
        assert_eq!(v["outputs"].as_array().unwrap().len(), 1);
        assert_eq!(v["id"], "a");
        let v: Value =
            serde_json::from_slice(&answer(&iris(OutputShaping::Scores), probs, None).unwrap())
                .unwrap();
        assert_eq!(v["outputs"][0]["name"], "probabilities");
        assert_eq!(v["outputs"][0]["shape"], json!([2, 3]));
        // A model answering with the wrong shape is a generic error, nothing more.
        let bad = vec![Tensor {
            shape: vec![6],
            data: vec![0.0; 6],
        }];
        let e = answer(&iris(OutputShaping::Label), bad, None).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn models_that_cannot_be_shaped_are_refused_at_load() {
        let spec = |shape: Vec<i64>, dt: &str| TensorSpec {
            name: "t".into(),
            datatype: dt.into(),
            shape,
        };
        let load = |i: TensorSpec, o: TensorSpec, labels: usize, s: OutputShaping| {
            LocalModel::new(
                "m",
                "1",
                (vec![i], vec![o]),
                vec!["x".into(); labels],
                s,
                Arc::new(Never),
            )
        };
        assert!(load(
            spec(vec![-1, 4], "FP32"),
            spec(vec![-1], "FP32"),
            0,
            OutputShaping::Label
        )
        .is_err());
        assert!(load(
            spec(vec![-1, 4], "FP32"),
            spec(vec![-1], "FP32"),
            0,
            OutputShaping::Scores
        )
        .is_ok());
        assert!(load(
            spec(vec![-1, 4], "INT64"),
            spec(vec![-1, 3], "FP32"),
            0,
            OutputShaping::Label
        )
        .is_err());
        assert!(load(
            spec(vec![-1, 4], "FP32"),
            spec(vec![-1, 3], "FP32"),
            2,
            OutputShaping::Label
        )
        .is_err());
        assert!(load(
            spec(vec![-1, 4], "FP32"),
            spec(vec![-1, 3], "FP32"),
            3,
            OutputShaping::Label
        )
        .is_ok());
    }
}
