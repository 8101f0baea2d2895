//! Request validation: UTF-8, JSON, and the structure each endpoint needs, checked before
//! anything reaches an upstream. Each refusal names the field and what was wrong.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// What a valid OpenAI-compatible request asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct OpenAiRequest {
    pub model: String,
    pub stream: bool,
}

/// Which OpenAI-compatible endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenAiKind {
    Chat,
    Completions,
    Embeddings,
}

/// Most messages, inputs or tensors in one request.
pub(crate) const MAX_ITEMS: usize = 4_096;

/// Parses the body as a JSON object (after checking it is UTF-8).
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
    }
}

fn string_field(map: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match map.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ApiError::bad_request(format!("`{name}` must not be empty"))),
        Some(_) => Err(ApiError::bad_request(format!("`{name}` must be a string"))),
        None => Err(ApiError::bad_request(format!("`{name}` is required"))),
    }
}

fn is_array_of(v: &Value, f: impl Fn(&Value) -> bool) -> bool {
    matches!(v, Value::Array(items) if !items.is_empty() && items.len() <= MAX_ITEMS && items.iter().all(f))
}

/// Checks an OpenAI-compatible request body.
pub fn openai(kind: OpenAiKind, body: &[u8]) -> Result<OpenAiRequest, ApiError> {
    let map = json_object(body)?;
    let model = string_field(&map, "model")?;
    let stream = match map.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("`stream` must be true or false")),
    };
    match kind {
        OpenAiKind::Chat => messages(map.get("messages"))?,
        OpenAiKind::Completions => {
            let ok = match map.get("prompt") {
                Some(Value::String(_)) => true,
                Some(v) => is_array_of(v, |p| p.is_string()) || is_array_of(v, |p| p.is_u64()),
                None => false,
            };
            if !ok {
                return Err(ApiError::bad_request(
                    "`prompt` is required: a string, an array of strings or an array of token ids",
                ));
            }
        }
        OpenAiKind::Embeddings => {
            if stream {
                return Err(ApiError::bad_request("embeddings cannot be streamed"));
            }
            let ok = match map.get("input") {
                Some(Value::String(_)) => true,
                Some(v) => {
                    is_array_of(v, |p| p.is_string())
                        || is_array_of(v, |p| p.is_u64())
                        || is_array_of(v, |p| is_array_of(p, |t| t.is_u64()))
                }
                None => false,
            };
            if !ok {
                return Err(ApiError::bad_request(
                    "`input` is required: a string, an array of strings or an array of token ids",
                ));
            }
        }
    }
    Ok(OpenAiRequest { model, stream })
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

fn messages(v: Option<&Value>) -> Result<(), ApiError> {
    let Some(Value::Array(items)) = v else {
        return Err(ApiError::bad_request(
            "`messages` is required: an array of {\"role\": ..., \"content\": ...} objects",
        ));
    };
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(format!(
            "`messages` must hold 1 to {MAX_ITEMS} messages"
        )));
    }
    for (i, m) in items.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(ApiError::bad_request(format!(
                "`messages[{i}]` must be an object with `role` and `content`"
            )));
        };
        match m.get("role") {
            Some(Value::String(r)) if ROLES.contains(&r.as_str()) => {}
            Some(Value::String(r)) => {
                return Err(ApiError::bad_request(format!(
                    "`messages[{i}].role` {r:?} is not one of {}",
                    ROLES.join(", ")
                )))
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "`messages[{i}].role` must be a string"
                )))
            }
        }
        match m.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(parts)) if parts.iter().all(Value::is_object) => {}
            // An assistant message that only calls tools carries no content.
            Some(Value::Null) | None if m.contains_key("tool_calls") => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "`messages[{i}].content` must be a string or an array of content parts"
                )))
            }
        }
    }
    Ok(())
}

/// KServe v2 tensor datatypes.
pub(crate) const DATATYPES: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64", "BF16", "BYTES",
];

/// Checks a KServe v2 inference request body.
pub fn kserve_infer(body: &[u8]) -> Result<(), ApiError> {
    kserve_infer_object(&json_object(body)?)
}

/// Checks a KServe v2 inference request, already parsed.
pub fn kserve_infer_object(map: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(Value::Array(inputs)) = map.get("inputs") else {
        return Err(ApiError::bad_request(
            "`inputs` is required: an array of tensors",
        ));
    };
    if inputs.is_empty() || inputs.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(format!(
            "`inputs` must hold 1 to {MAX_ITEMS} tensors"
        )));
    }
    for (i, t) in inputs.iter().enumerate() {
        let Value::Object(t) = t else {
            return Err(ApiError::bad_request(format!(
                "`inputs[{i}]` must be an object"
            )));
        };
        if !matches!(t.get("name"), Some(Value::String(s)) if !s.is_empty()) {
            return Err(ApiError::bad_request(format!(
                "`inputs[{i}].name` must be a non-empty string"
            )));
        }
        let Some(Value::Array(shape)) = t.get("shape") else {
            return Err(ApiError::bad_request(format!(
                "`inputs[{i}].shape` must be an array of integers"
            )));
        };
        let mut elements: u64 = 1;
        for d in shape {
            let Some(d) = d.as_u64() else {
                return Err(ApiError::bad_request(format!(
                    "`inputs[{i}].shape` must be an array of non-negative integers"
                )));
            };
            elements = elements.saturating_mul(d);
        }
        match t.get("datatype") {
            Some(Value::String(d)) if DATATYPES.contains(&d.as_str()) => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "`inputs[{i}].datatype` must be one of {}",
                    DATATYPES.join(", ")
                )))
            }
        }
        let Some(Value::Array(data)) = t.get("data") else {
            return Err(ApiError::bad_request(format!(
                "`inputs[{i}].data` must be an array"
            )));
        };
        let count = flat_len(data);
        if count != elements {
            return Err(ApiError::bad_request(format!(
                "`inputs[{i}]`: shape {shape:?} holds {elements} elements but `data` has {count}",
                shape = shape
                    .iter()
                    .map(|d| d.as_u64().unwrap_or_default())
                    .collect::<Vec<_>>()
            )));
        }
    }
    if let Some(outputs) = map.get("outputs") {
        if !matches!(outputs, Value::Array(o) if o.iter().all(Value::is_object)) {
            return Err(ApiError::bad_request(
                "`outputs` must be an array of objects",
            ));
        }
    }
    Ok(())
}

/// Elements of a (possibly nested, row-major) data array.
fn flat_len(data: &[Value]) -> u64 {
    data.iter()
        .map(|v| match v {
            Value::Array(inner) => flat_len(inner),
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn msg(body: &str) -> String {
        match openai(OpenAiKind::Chat, body.as_bytes()) {
            Ok(_) => String::new(),
            Err(e) => e.message,
        }
    }

    #[test]
    fn chat_requests() {
        let ok = openai(
            OpenAiKind::Chat,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            OpenAiRequest {
                model: "m".into(),
                stream: true
            }
        );
        for (body, needle) in [
            ("{", "not valid JSON"),
            ("[]", "JSON object"),
            (r#"{"messages":[]}"#, "`model` is required"),
            (r#"{"model":1,"messages":[]}"#, "`model` must be a string"),
            (r#"{"model":"m"}"#, "`messages` is required"),
            (r#"{"model":"m","messages":"hi"}"#, "`messages` is required"),
            (r#"{"model":"m","messages":[]}"#, "1 to"),
            (r#"{"model":"m","messages":["hi"]}"#, "messages[0]"),
            (
                r#"{"model":"m","messages":[{"role":"user"}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"m","messages":[{"role":7,"content":"x"}]}"#,
                "messages[0].role",
            ),
            (
                r#"{"model":"m","messages":[{"role":"root","content":"x"}]}"#,
                "not one of",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
                "`stream`",
            ),
        ] {
            assert!(msg(body).contains(needle), "{body}: {}", msg(body));
        }
        let e = openai(OpenAiKind::Chat, b"{\"model\":\"\xff\"}").unwrap_err();
        assert!(e.message.contains("UTF-8"), "{}", e.message);
    }

    #[test]
    fn completions_embeddings_and_kserve() {
        assert!(openai(OpenAiKind::Completions, br#"{"model":"m","prompt":"x"}"#).is_ok());
        assert!(openai(OpenAiKind::Completions, br#"{"model":"m","prompt":{}}"#).is_err());
        assert!(openai(
            OpenAiKind::Embeddings,
            br#"{"model":"m","input":["a","b"]}"#
        )
        .is_ok());
        assert!(openai(OpenAiKind::Embeddings, br#"{"model":"m","input":5}"#).is_err());
        let ok = br#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[[1,2,3,4]]}]}"#;
        kserve_infer(ok).unwrap();
        for bad in [
            r#"{}"#,
            r#"{"inputs":[]}"#,
            r#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}"#,
            r#"{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}"#,
        ] {
            assert!(kserve_infer(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
