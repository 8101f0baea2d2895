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

/// One input as the request gives it, before it is checked against the model.
struct Given {
    name: String,
    datatype: String,
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// The request's tensors, in the model's input order, and its `id` (echoed back when it is
/// a short printable string). A well-formed request is read straight into typed values
/// ([`fast`]); anything else is read again as generic JSON, whose checks name what is
/// wrong.
pub fn parse(model: &LocalModel, body: &[u8]) -> Result<(Vec<Tensor>, Option<String>), ApiError> {
    let (given, id) = match fast::parse(body) {
        Some(parsed) => parsed,
        None => generic(body)?,
    };
    let mut slots: Vec<Option<Tensor>> = vec![None; model.inputs.len()];
    for (i, g) in given.into_iter().enumerate() {
        let name = g.name.as_str();
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
        if g.datatype != spec.datatype {
            return Err(bad(format!(
                "input {name:?} must be {}, not {}",
                spec.datatype, g.datatype
            )));
        }
        if !spec.fits(&g.shape) {
            return Err(bad(format!(
                "input {name:?} has shape {:?}; the model takes {} (-1: any size above 0)",
                g.shape,
                spec.shape_text()
            )));
        }
        slots[at] = Some(Tensor {
            shape: g.shape,
            data: g.data,
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

/// Whether an `id` may be echoed back.
fn id_ok(s: &str) -> bool {
    s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

/// The generic reading: every check of [`validate::kserve_infer_object`], then each input's
/// values, with a message naming the first problem.
fn generic(body: &[u8]) -> Result<(Vec<Given>, Option<String>), ApiError> {
    let map: Map<String, Value> = validate::json_object(body)?;
    validate::kserve_infer_object(&map)?;
    let id = match map.get("id") {
        Some(Value::String(s)) if id_ok(s) => Some(s.clone()),
        Some(Value::String(_)) => {
            return Err(bad("`id` must be at most 128 printable ASCII characters"))
        }
        Some(_) => return Err(bad("`id` must be a string")),
        None => None,
    };
    let Some(Value::Array(inputs)) = map.get("inputs") else {
        return Err(bad("`inputs` is required"));
    };
    let mut given = Vec::with_capacity(inputs.len());
    for (i, t) in inputs.iter().enumerate() {
        let text = |k: &str| {
            t.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
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
        let field = format!("inputs[{i}].data");
        let data = t.get("data").and_then(Value::as_array).map(Vec::as_slice);
        let mut values = Vec::new();
        flatten(data.unwrap_or_default(), 1, &mut values, &field)?;
        given.push(Given {
            name: text("name"),
            datatype: text("datatype"),
            shape,
            data: values,
        });
    }
    Ok((given, id))
}

/// For `crate::fuzzing`: whether the typed reading, where it accepts `body`, reads exactly
/// what the generic reading reads (it may give up on anything, never accept more).
pub(crate) fn readings_agree(body: &[u8]) -> bool {
    let Some((typed, typed_id)) = fast::parse(body) else {
        return true;
    };
    let Ok((read, read_id)) = generic(body) else {
        return false;
    };
    typed_id == read_id
        && typed.len() == read.len()
        && typed.iter().zip(&read).all(|(t, r)| {
            (&t.name, &t.datatype, &t.shape, &t.data) == (&r.name, &r.datatype, &r.shape, &r.data)
        })
}

/// Reading a well-formed request straight into typed values, without building a generic
/// JSON tree. It accepts exactly what the generic reading accepts, or gives up (`None`).
mod fast {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;
    use serde_json::Value;

    use super::{id_ok, Given, MAX_DEPTH};
    use crate::validate::{DATATYPES, MAX_ITEMS};

    #[derive(Deserialize)]
    struct Request {
        #[serde(default, deserialize_with = "present")]
        id: Option<Value>,
        inputs: Vec<Object<Input>>,
        #[serde(default, deserialize_with = "present")]
        outputs: Option<Value>,
    }

    /// A struct read only from a JSON object (a derived `Deserialize` also reads an array,
    /// field by field, which the generic reading refuses).
    struct Object<T>(T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Object<T>, D::Error> {
            struct Fields<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
                type Value = T;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                    T::deserialize(de::value::MapAccessDeserializer::new(map))
                }
            }
            d.deserialize_map(Fields(PhantomData)).map(Object)
        }
    }

    /// A field that is there, `null` included (a plain `Option` would read `null` as absent,
    /// which the generic reading refuses).
    fn present<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Value::deserialize(d).map(Some)
    }

    #[derive(Deserialize)]
    struct Input {
        name: String,
        shape: Vec<u64>,
        datatype: String,
        data: Values,
    }

    /// A tensor's values: nested arrays of finite FP32 numbers, flattened.
    struct Values(Vec<f32>);

    impl<'de> Deserialize<'de> for Values {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Values, D::Error> {
            let mut out = Vec::new();
            d.deserialize_seq(Into {
                out: &mut out,
                depth: 1,
            })?;
            Ok(Values(out))
        }
    }

    struct Into<'a> {
        out: &'a mut Vec<f32>,
        depth: usize,
    }

    impl Into<'_> {
        fn push<E: de::Error>(self, x: f64) -> Result<(), E> {
            let f = x as f32;
            if self.depth == 1 || !f.is_finite() {
                return Err(E::custom("not a finite FP32 in an array"));
            }
            self.out.push(f);
            Ok(())
        }
    }

    impl<'de> DeserializeSeed<'de> for Into<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Into<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("numbers in nested arrays")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
            self.push(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
            self.push(v as f64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
            self.push(v)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            if self.depth > MAX_DEPTH {
                return Err(de::Error::custom("nested too deeply"));
            }
            let depth = self.depth + 1;
            while seq
                .next_element_seed(Into {
                    out: &mut *self.out,
                    depth,
                })?
                .is_some()
            {}
            Ok(())
        }
    }

    pub(super) fn parse(body: &[u8]) -> Option<(Vec<Given>, Option<String>)> {
        // From a `str`: serde skips unknown fields without checking their UTF-8.
        let Object(req): Object<Request> =
            serde_json::from_str(std::str::from_utf8(body).ok()?).ok()?;
        let id = match req.id {
            None => None,
            Some(Value::String(s)) if id_ok(&s) => Some(s),
            Some(_) => return None,
        };
        let outputs_ok = match &req.outputs {
            None => true,
            Some(Value::Array(o)) => o.iter().all(Value::is_object),
            Some(_) => false,
        };
        if !outputs_ok || req.inputs.is_empty() || req.inputs.len() > MAX_ITEMS {
            return None;
        }
        let mut given = Vec::with_capacity(req.inputs.len());
        for Object(t) in req.inputs {
            let elements = t.shape.iter().fold(1u64, |a, &d| a.saturating_mul(d));
            if t.name.is_empty()
                || !DATATYPES.contains(&t.datatype.as_str())
                || elements != t.data.0.len() as u64
            {
                return None;
            }
            let shape = t
                .shape
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Option<Vec<usize>>>()?;
            given.push(Given {
                name: t.name,
                datatype: t.datatype,
                shape,
                data: t.data.0,
            });
        }
        Some((given, id))
    }
}

fn model_error() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "model_error",
        "the model could not answer this request",
    )
}

/// One output tensor of an answer.
#[derive(serde::Serialize)]
struct Out<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: Vec<usize>,
    data: OutData,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum OutData {
    Labels(Vec<String>),
    Rounded(Vec<f64>),
    Values(Vec<f32>),
}

#[derive(serde::Serialize)]
struct Answer<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    outputs: Vec<Out<'a>>,
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
            for (t, spec) in outputs.into_iter().zip(&model.outputs) {
                out.push(Out {
                    name: &spec.name,
                    datatype: "FP32",
                    shape: t.shape,
                    data: OutData::Values(t.data),
                });
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
            out.push(Out {
                name: "label",
                datatype: "BYTES",
                shape: vec![rows],
                data: OutData::Labels(labels),
            });
            if model.shaping == OutputShaping::LabelScore {
                out.push(Out {
                    name: "score",
                    datatype: "FP32",
                    shape: vec![rows],
                    data: OutData::Rounded(scores),
                });
            }
        }
    }
    let answer = Answer {
        model_name: &model.name,
        model_version: &model.version,
        id,
        outputs: out,
    };
    serde_json::to_vec(&answer)
        .map(Bytes::from)
        .map_err(|_| model_error())
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
    fn the_typed_reading_agrees_with_the_generic_one() {
        let good: &[&[u8]] = &[
            br#"{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[5,6,7.5,-8]]}]}"#,
            br#"{"id":"r 1","parameters":{},"outputs":[{"name":"label"}],"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1e-3,2,3,4],"parameters":{"x":1}}]}"#,
        ];
        for body in good {
            let (fast, fid) = fast::parse(body).unwrap();
            let (slow, sid) = generic(body).unwrap();
            assert_eq!(fid, sid);
            assert_eq!(fast.len(), slow.len());
            for (f, s) in fast.iter().zip(&slow) {
                assert_eq!(
                    (&f.name, &f.datatype, &f.shape, &f.data),
                    (&s.name, &s.datatype, &s.shape, &s.data)
                );
            }
        }
        // What the generic reading refuses, the typed one leaves to it.
        let refused: &[&[u8]] = &[
            br#"{"id":null,"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
            br#"{"outputs":null,"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
            br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,1e39]}]}"#,
            br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP33","data":[1,2,3,4]}]}"#,
            br#"{"inputs":[{"name":"","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
            br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[[[[[[[[[1]]]]]]]],2,3,4]}]}"#,
            br#"{"inputs":[]}"#,
        ];
        for body in refused {
            assert!(
                fast::parse(body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert!(generic(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn the_typed_reading_takes_only_utf8_json_objects() {
        // The first was found by `fuzz/fuzz_targets/gateway_kserve.rs`: serde skips an
        // unknown field without checking its UTF-8, so the typed reading took a body the
        // generic one refuses. The others: a derived struct also reads a JSON array, field
        // by field (the request, or an input).
        let m = iris(OutputShaping::LabelScore);
        let bad: &[&[u8]] = &[
            b"{\"\":[{\"\":\"l\xfb\"}],\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}",
            br#"["r1",[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]]"#,
            br#"{"inputs":[["input",[1,4],"FP32",[1,2,3,4]]]}"#,
        ];
        for body in bad {
            let shown = String::from_utf8_lossy(body);
            assert!(fast::parse(body).is_none(), "{shown}");
            assert!(generic(body).is_err(), "{shown}");
            assert!(readings_agree(body), "{shown}");
            assert!(parse(&m, body).is_err(), "{shown}");
        }
        assert!(msg(parse(&m, bad[0])).contains("not valid UTF-8"));
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
