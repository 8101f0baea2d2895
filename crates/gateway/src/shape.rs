//! Output shaping for the OpenAI-compatible API: what an upstream answers is rewritten
//! before the caller sees it.
//!
//! - Log-probabilities (`choices[].logprobs`, vLLM's `prompt_logprobs`) are removed unless
//!   the policy keeps them: they let a caller distil or fingerprint the model and recover
//!   more of its internals than its text. `choices[].logprobs` becomes `null`, which is
//!   what the OpenAI SDKs expect when none were asked for.
//! - Fields that describe the upstream rather than the answer are removed:
//!   `system_fingerprint` (llama.cpp puts its build and commit there: the version an
//!   attacker would look up), llama.cpp's `timings` and `__verbose`, vLLM's
//!   `kv_transfer_params`. `usage` is kept: callers need it and it says nothing internal.
//! - `model` can be set to the name the caller asked for (an upstream may answer with a
//!   file path or an alias).
//! - An upstream error object (`{"error": ...}` or `{"object": "error"}`) never passes:
//!   a whole body is [`ShapeError::UpstreamError`] (the caller answers 502), and in a
//!   stream it becomes a generic error event.
//! - A body that is not a JSON object is [`ShapeError::NotJson`]: it is never passed on
//!   unshaped.

use std::borrow::Cow;

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// What shaping keeps and sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenAiShaping {
    /// Pass log-probabilities on (the model's policy allows them).
    pub keep_logprobs: bool,
    /// Set `model` in answers to this (the name the caller asked for).
    pub model: Option<String>,
}

/// Why an upstream answer cannot be passed on; each is a 502 for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeError {
    /// Not a JSON object (a whole body, or an SSE `data:` line).
    NotJson,
    /// The upstream answered with an error object.
    UpstreamError,
    /// An SSE line longer than [`MAX_SSE_LINE`].
    LineTooLong,
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShapeError::NotJson => "the upstream's answer is not a JSON object",
            ShapeError::UpstreamError => "the upstream answered with an error",
            ShapeError::LineTooLong => "an upstream event line is over 1 MiB",
        })
    }
}

impl std::error::Error for ShapeError {}

impl From<ShapeError> for ApiError {
    /// What the caller learns: only that the model server could not answer.
    fn from(_: ShapeError) -> ApiError {
        ApiError::upstream()
    }
}

/// Longest SSE line buffered (a `data:` line holds one chunk: a few KiB in practice).
pub const MAX_SSE_LINE: usize = 1 << 20;

/// Top-level fields that describe the upstream, not the answer.
const UPSTREAM_FIELDS: &[&str] = &[
    "system_fingerprint",
    "timings",
    "__verbose",
    "kv_transfer_params",
];

/// What a stream's caller sees instead of an upstream's error event.
const GENERIC_ERROR: &str = r#"{"error":{"message":"the model server could not finish this answer","type":"server_error","code":"upstream_error"}}"#;

/// Shapes a whole chat, completions or embeddings response. `Ok(None)`: nothing to change,
/// pass the body on as it is.
pub fn shape_openai(body: &[u8], policy: &OpenAiShaping) -> Result<Option<Bytes>, ShapeError> {
    if untouched(body, policy) {
        return Ok(None);
    }
    shape_tree(body, policy)
}

/// The whole answer parsed, shaped and written again.
fn shape_tree(body: &[u8], policy: &OpenAiShaping) -> Result<Option<Bytes>, ShapeError> {
    let mut v = parse(body)?;
    if upstream_error(&v) {
        return Err(ShapeError::UpstreamError);
    }
    if !shape_object(&mut v, policy) {
        return Ok(None);
    }
    serde_json::to_vec(&v)
        .map(|b| Some(Bytes::from(b)))
        .map_err(|_| ShapeError::NotJson)
}

/// [`shape_openai`] with the default policy: log-probabilities and upstream fields
/// removed, `model` left as it is.
pub fn strip_openai_logprobs(body: &[u8]) -> Result<Option<Bytes>, ShapeError> {
    shape_openai(body, &OpenAiShaping::default())
}

/// What [`untouched`] reads of an answer, borrowing from it: the fields shaping would
/// change or refuse, and nothing else (the rest is skipped without being built).
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(default, deserialize_with = "present")]
    error: bool,
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "plain_text")]
    model: Option<&'a str>,
    #[serde(default, deserialize_with = "present")]
    prompt_logprobs: bool,
    #[serde(default, deserialize_with = "present")]
    system_fingerprint: bool,
    #[serde(default, deserialize_with = "present")]
    timings: bool,
    #[serde(default, deserialize_with = "present", rename = "__verbose")]
    verbose: bool,
    #[serde(default, deserialize_with = "present")]
    kv_transfer_params: bool,
    /// Whether any choice carries log-probabilities.
    #[serde(default, deserialize_with = "choices_with_logprobs")]
    choices: bool,
}

#[derive(Deserialize)]
struct ChoiceProbe {
    #[serde(default)]
    logprobs: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    prompt_logprobs: bool,
}

/// A field there, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// A string without escapes, borrowed; anything else (`null`, another type, a string with
/// escapes) is an error, which leaves the decision to the whole path.
fn plain_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de str>, D::Error> {
    <&str>::deserialize(d).map(Some)
}

/// Reads `choices` one at a time, without collecting them: whether any has
/// log-probabilities. `null` has none; anything but an array of objects is an error.
fn choices_with_logprobs<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Choices;
    impl<'de> serde::de::Visitor<'de> for Choices {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of choices")
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut any = false;
            while let Some(c) = seq.next_element::<ChoiceProbe>()? {
                any |= c.prompt_logprobs || c.logprobs.is_some();
            }
            Ok(any)
        }
    }
    d.deserialize_any(Choices)
}

/// Whether shaping would pass `body` on as it is, decided without building it: the common
/// answer (no upstream fields, null log-probabilities, the model's own name) costs a scan,
/// not a parse into a tree and a rewrite. Anything else, or anything unusual (a field of an
/// unexpected type, a repeated key, a choice that is not an object), is false: the whole
/// path decides.
fn untouched(body: &[u8], policy: &OpenAiShaping) -> bool {
    let Ok(p) = serde_json::from_slice::<Probe>(body) else {
        return false;
    };
    if p.error
        || p.object.as_deref() == Some("error")
        || p.system_fingerprint
        || p.timings
        || p.verbose
        || p.kv_transfer_params
    {
        return false;
    }
    if !policy.keep_logprobs && (p.prompt_logprobs || p.choices) {
        return false;
    }
    match (&policy.model, p.model) {
        (Some(m), Some(old)) => old == m,
        _ => true,
    }
}

fn parse(body: &[u8]) -> Result<Map<String, Value>, ShapeError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ShapeError::NotJson),
    }
}

fn upstream_error(v: &Map<String, Value>) -> bool {
    v.get("error").is_some_and(|e| !e.is_null())
        || v.get("object").and_then(Value::as_str) == Some("error")
}

/// Shapes one response or chunk in place; whether anything changed.
fn shape_object(v: &mut Map<String, Value>, policy: &OpenAiShaping) -> bool {
    let mut changed = false;
    for f in UPSTREAM_FIELDS {
        changed |= v.remove(*f).is_some();
    }
    if !policy.keep_logprobs {
        changed |= v.remove("prompt_logprobs").is_some();
        if let Some(Value::Array(choices)) = v.get_mut("choices") {
            for c in choices.iter_mut().filter_map(Value::as_object_mut) {
                changed |= c.remove("prompt_logprobs").is_some();
                if c.get("logprobs").is_some_and(|l| !l.is_null()) {
                    c.insert("logprobs".into(), Value::Null);
                    changed = true;
                }
            }
        }
    }
    if let Some(m) = &policy.model {
        if v.get("model").is_some_and(|old| old.as_str() != Some(m)) {
            v.insert("model".into(), Value::String(m.clone()));
            changed = true;
        }
    }
    changed
}

/// Shapes a server-sent-events stream of chat or completions chunks, fed as it arrives.
///
/// Lines may end in LF, CRLF or CR and may be split anywhere between chunks; the output
/// is the same however the input was split, with LF line ends. `data:` lines carry one
/// JSON object each (as every OpenAI-compatible server sends them) and are shaped like a
/// whole body; `data: [DONE]` and blank lines pass; comments pass without their text
/// (keep-alives still flow, nothing of the upstream's); other fields (`event:`, `id:`,
/// `retry:`) are dropped. A `data:` line that is not a JSON object, or a line over
/// [`MAX_SSE_LINE`], is an error, and every later call returns it: end the stream.
pub struct SseShaper {
    policy: OpenAiShaping,
    line: Vec<u8>,
    /// The last chunk ended in CR: a LF starting the next one belongs to it.
    after_cr: bool,
    failed: Option<ShapeError>,
}

impl SseShaper {
    pub fn new(policy: OpenAiShaping) -> SseShaper {
        SseShaper {
            policy,
            line: Vec::new(),
            after_cr: false,
            failed: None,
        }
    }

    /// The shaped lines completed by `chunk` (empty while a line is still partial).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Bytes, ShapeError> {
        let r = self.feed(chunk);
        self.fail_on(r)
    }

    /// The end of the stream: shapes a last line left without its line end.
    pub fn finish(&mut self) -> Result<Bytes, ShapeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut out = Vec::new();
        let r = if self.line.is_empty() {
            Ok(())
        } else {
            let line = std::mem::take(&mut self.line);
            self.shape_line(&line, &mut out)
        };
        self.fail_on(r.map(|()| Bytes::from(out)))
    }

    fn fail_on(&mut self, r: Result<Bytes, ShapeError>) -> Result<Bytes, ShapeError> {
        if let Err(e) = r {
            self.failed = Some(e);
            self.line = Vec::new();
        }
        r
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<Bytes, ShapeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut rest = chunk;
        if self.after_cr {
            if let Some((&first, tail)) = chunk.split_first() {
                self.after_cr = false;
                if first == b'\n' {
                    rest = tail;
                }
            }
        }
        let mut out = Vec::new();
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) {
            let (head, tail) = rest.split_at(pos);
            self.append(head)?;
            let Some((&end, mut tail)) = tail.split_first() else {
                break;
            };
            if end == b'\r' {
                match tail.split_first() {
                    Some((b'\n', t)) => tail = t,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = std::mem::take(&mut self.line);
            self.shape_line(&line, &mut out)?;
            rest = tail;
        }
        self.append(rest)?;
        Ok(Bytes::from(out))
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), ShapeError> {
        if self.line.len().saturating_add(bytes.len()) > MAX_SSE_LINE {
            return Err(ShapeError::LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn shape_line(&self, line: &[u8], out: &mut Vec<u8>) -> Result<(), ShapeError> {
        if line.is_empty() {
            out.push(b'\n');
            return Ok(());
        }
        if line.starts_with(b":") {
            out.extend_from_slice(b":\n");
            return Ok(());
        }
        let Some(value) = line.strip_prefix(b"data:") else {
            return Ok(());
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        out.extend_from_slice(b"data: ");
        if value == b"[DONE]" {
            out.extend_from_slice(value);
        } else {
            let mut v = parse(value)?;
            if upstream_error(&v) {
                out.extend_from_slice(GENERIC_ERROR.as_bytes());
            } else if shape_object(&mut v, &self.policy) {
                serde_json::to_writer(&mut *out, &v).map_err(|_| ShapeError::NotJson)?;
            } else {
                out.extend_from_slice(value);
            }
        }
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn logprobs() -> Value {
        json!({"content": [{"token": "Hi", "logprob": -0.01, "bytes": [72, 105],
            "top_logprobs": [{"token": "Hi", "logprob": -0.01, "bytes": [72, 105]}]}]})
    }

    fn completion() -> Value {
        json!({
            "id": "chatcmpl-123", "object": "chat.completion", "created": 1_700_000_000,
            "model": "/models/llama-3-8b-instruct.Q4_K_M.gguf",
            "system_fingerprint": "b4567-1a2b3c4",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hi 👋"},
                 "logprobs": logprobs(), "finish_reason": "stop"},
                {"index": 1, "message": {"role": "assistant", "content": "Hello"},
                 "logprobs": null, "finish_reason": "stop", "prompt_logprobs": [null, {"1": -2.0}]},
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
            "timings": {"prompt_ms": 12.5, "predicted_ms": 30.1},
            "prompt_logprobs": [null],
        })
    }

    #[test]
    fn logprobs_and_upstream_fields_are_stripped_from_a_completion() {
        let body = completion().to_string();
        let out = strip_openai_logprobs(body.as_bytes()).unwrap().unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let mut want = completion();
        let w = want.as_object_mut().unwrap();
        for f in ["system_fingerprint", "timings", "prompt_logprobs"] {
            w.remove(f);
        }
        w["choices"][0]["logprobs"] = Value::Null;
        w["choices"][1]
            .as_object_mut()
            .unwrap()
            .remove("prompt_logprobs");
        assert_eq!(v, want);
        assert!(!String::from_utf8_lossy(&out).contains("logprob\""));

        // Kept when the policy allows; the model renamed when asked.
        let policy = OpenAiShaping {
            keep_logprobs: true,
            model: Some("llama-3-8b".into()),
        };
        let v: Value =
            serde_json::from_slice(&shape_openai(body.as_bytes(), &policy).unwrap().unwrap())
                .unwrap();
        assert_eq!(v["choices"][0]["logprobs"], logprobs());
        assert_eq!(v["model"], "llama-3-8b");
        assert!(v.get("system_fingerprint").is_none());

        // Nothing to change: the body passes as it is.
        let clean = json!({"object": "chat.completion", "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x"}, "logprobs": null}]});
        assert_eq!(
            strip_openai_logprobs(clean.to_string().as_bytes()),
            Ok(None)
        );
        let same = OpenAiShaping {
            keep_logprobs: false,
            model: Some("m".into()),
        };
        assert_eq!(shape_openai(clean.to_string().as_bytes(), &same), Ok(None));
    }

    /// The quick check never passes on an answer that the whole path would change or
    /// refuse, and passes on the usual one.
    #[test]
    fn the_quick_check_agrees_with_the_whole_path() {
        let mut bodies: Vec<String> = vec![
            completion().to_string(),
            r#"{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":"stop"}],"usage":{"total_tokens":3}}"#.into(),
            r#"{"model":"m","choices":[]}"#.into(),
            r#"{"model":"m"}"#.into(),
            r#"{}"#.into(),
            r#"{"model":null,"choices":[]}"#.into(),
            r#"{"model":7}"#.into(),
            r#"{"model":"other"}"#.into(),
            r#"{"model":"m","model":"other"}"#.into(),
            r#"{"model":"m","error":null}"#.into(),
            r#"{"model":"m","error":{"message":"x"}}"#.into(),
            r#"{"model":"m","object":"error"}"#.into(),
            r#"{"model":"m","object":7}"#.into(),
            r#"{"model":"m","system_fingerprint":null}"#.into(),
            r#"{"model":"m","timings":{}}"#.into(),
            r#"{"model":"m","__verbose":1}"#.into(),
            r#"{"model":"m","kv_transfer_params":[]}"#.into(),
            r#"{"model":"m","prompt_logprobs":null}"#.into(),
            r#"{"model":"m","choices":[{"logprobs":{"content":[]}}]}"#.into(),
            r#"{"model":"m","choices":[{"prompt_logprobs":null}]}"#.into(),
            r#"{"model":"m","choices":[1,{"logprobs":null}]}"#.into(),
            r#"{"model":"m","choices":{"logprobs":1}}"#.into(),
            r#"{"model":"m","choices":null}"#.into(),
            r#"[1,2]"#.into(),
            r#"not json"#.into(),
            r#"{"model":"m"} trailing"#.into(),
            r#"{"model":"m\u0000"}"#.into(),
            r#"{"model":"\u006d"}"#.into(),
        ];
        bodies.push(json!({"model": "m", "choices": [{"logprobs": logprobs()}]}).to_string());
        let policies = [
            OpenAiShaping::default(),
            OpenAiShaping {
                keep_logprobs: true,
                model: None,
            },
            OpenAiShaping {
                keep_logprobs: false,
                model: Some("m".into()),
            },
            OpenAiShaping {
                keep_logprobs: true,
                model: Some("m".into()),
            },
        ];
        let mut quick = 0;
        for body in &bodies {
            for policy in &policies {
                let whole = shape_tree(body.as_bytes(), policy);
                let result = shape_openai(body.as_bytes(), policy);
                assert_eq!(result, whole, "{body} with {policy:?}");
                if untouched(body.as_bytes(), policy) {
                    assert_eq!(whole, Ok(None), "{body} with {policy:?}");
                    quick += 1;
                }
            }
        }
        assert!(quick >= 12, "the quick check passed only {quick} cases");
    }

    #[test]
    fn bad_and_error_bodies_are_refused() {
        for body in [&b"not json"[..], b"[1,2]", b"\"x\"", b"{\"a\":", b"\xff"] {
            assert_eq!(
                strip_openai_logprobs(body),
                Err(ShapeError::NotJson),
                "{body:?}"
            );
        }
        for body in [
            r#"{"error":{"message":"CUDA out of memory at /opt/vllm/worker.py:42"}}"#,
            r#"{"object":"error","message":"Traceback ...","code":500}"#,
        ] {
            assert_eq!(
                strip_openai_logprobs(body.as_bytes()),
                Err(ShapeError::UpstreamError)
            );
        }
        let e: ApiError = ShapeError::NotJson.into();
        assert_eq!((e.status.as_u16(), e.code), (502, "upstream_error"));
    }

    fn chunk(content: &str, lp: bool) -> String {
        let mut c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
            "model": "m", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": {"content": content}, "logprobs": null, "finish_reason": null}]});
        if lp {
            c["choices"][0]["logprobs"] = logprobs();
        }
        c.to_string()
    }

    fn stream() -> Vec<u8> {
        let mut s = String::new();
        s.push_str(": keep-alive from upstream v1.2\r\n\r\n");
        s.push_str(&format!("data: {}\r\n\r\n", chunk("Hé", true)));
        s.push_str(&format!("data:{}\n\n", chunk("llo 👋 世界", true)));
        s.push_str("event: ping\nid: 7\n\n");
        s.push_str(&format!("data: {}\r\r", chunk("!", false)));
        s.push_str("data: {\"error\":{\"message\":\"worker died at /srv/x.py\"}}\n\n");
        s.push_str("data: [DONE]\n\n");
        s.into_bytes()
    }

    fn shape_whole(input: &[u8]) -> Vec<u8> {
        let mut s = SseShaper::new(OpenAiShaping::default());
        let mut out = s.push(input).unwrap().to_vec();
        out.extend_from_slice(&s.finish().unwrap());
        out
    }

    #[test]
    fn sse_chunks_are_shaped() {
        let out = String::from_utf8(shape_whole(&stream())).unwrap();
        let lines: Vec<&str> = out.split('\n').collect();
        assert_eq!(lines[0], ":");
        let data: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        assert_eq!(data.len(), 5, "{out}");
        for (d, text) in data.iter().zip(["Hé", "llo 👋 世界", "!"]) {
            let v: Value = serde_json::from_str(d).unwrap();
            assert_eq!(v["choices"][0]["logprobs"], Value::Null);
            assert_eq!(v["choices"][0]["delta"]["content"], text);
            assert!(v.get("system_fingerprint").is_none());
        }
        assert_eq!(data[3], GENERIC_ERROR);
        assert_eq!(data[4], "[DONE]");
        for gone in ["keep-alive", "event:", "id:", "/srv/", "logprob\""] {
            assert!(!out.contains(gone), "{gone}: {out}");
        }
        assert!(!out.contains('\r'));
    }

    #[test]
    fn sse_output_does_not_depend_on_how_the_input_was_split() {
        let input = stream();
        let whole = shape_whole(&input);
        for k in 0..=input.len() {
            let mut s = SseShaper::new(OpenAiShaping::default());
            let mut out = s.push(&input[..k]).unwrap().to_vec();
            out.extend_from_slice(&s.push(&[]).unwrap());
            out.extend_from_slice(&s.push(&input[k..]).unwrap());
            out.extend_from_slice(&s.finish().unwrap());
            assert_eq!(out, whole, "split at {k}");
        }
        let mut s = SseShaper::new(OpenAiShaping::default());
        let mut out = Vec::new();
        for b in &input {
            out.extend_from_slice(&s.push(std::slice::from_ref(b)).unwrap());
        }
        out.extend_from_slice(&s.finish().unwrap());
        assert_eq!(out, whole, "byte by byte");
    }

    #[test]
    fn bad_streams_fail_and_stay_failed() {
        // A line over 1 MiB, fed in pieces, without a line end.
        let mut s = SseShaper::new(OpenAiShaping::default());
        let piece = vec![b'a'; 64 * 1024];
        let mut result = Ok(Bytes::new());
        for _ in 0..17 {
            result = s.push(&piece);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(ShapeError::LineTooLong));
        assert_eq!(s.push(b"\n"), Err(ShapeError::LineTooLong));
        assert_eq!(s.finish(), Err(ShapeError::LineTooLong));
        // Exactly 1 MiB is accepted (as a comment, emptied).
        let mut s = SseShaper::new(OpenAiShaping::default());
        let mut line = vec![b':'; MAX_SSE_LINE];
        line.push(b'\n');
        assert_eq!(s.push(&line).unwrap(), Bytes::from_static(b":\n"));
        // A data line that is not JSON; a stream cut mid-line.
        let mut s = SseShaper::new(OpenAiShaping::default());
        assert_eq!(
            s.push(b"data: {\"ok\":1}\n\ndata: Traceback\n"),
            Err(ShapeError::NotJson)
        );
        assert_eq!(s.push(b"data: [DONE]\n"), Err(ShapeError::NotJson));
        let mut s = SseShaper::new(OpenAiShaping::default());
        assert_eq!(s.push(b"data: {\"choices\":[").unwrap(), Bytes::new());
        assert_eq!(s.finish(), Err(ShapeError::NotJson));
    }
}
