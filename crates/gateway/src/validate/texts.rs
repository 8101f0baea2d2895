//! The texts a model reads in an OpenAI-compatible request, found while checking the
//! request's structure, each with its field path (see [`super::openai_texts`]).

use super::json::{Json, Object};

use super::{is_array_of, OpenAiKind, Text, MAX_ITEMS, MAX_TEXTS};
use crate::error::ApiError;

/// Longest field path kept in a [`Text`].
const MAX_FIELD: usize = 200;

/// Texts, and the estimated tokens that are not text (message framing, token ids).
pub(super) fn collect<'a>(
    kind: OpenAiKind,
    map: &'a Object<'a>,
) -> Result<(Vec<Text<'a>>, u64), ApiError> {
    let mut out = Texts::default();
    match kind {
        OpenAiKind::Chat => {
            messages(map.get("messages"), &mut out)?;
            for key in ["tools", "functions"] {
                match map.get(key) {
                    None | Some(Json::Null) => {}
                    Some(Json::Array(items)) if items.len() <= MAX_ITEMS => {
                        for (i, item) in items.iter().enumerate() {
                            out.walk(item, &format!("{key}[{i}]"), None)?;
                        }
                    }
                    Some(_) => {
                        return Err(ApiError::bad_request(format!(
                            "`{key}` must be an array of at most {MAX_ITEMS} objects"
                        )))
                    }
                }
            }
        }
        OpenAiKind::Completions => {
            let prompt = map.get("prompt");
            if !prompt_or_ids(prompt, "prompt", false, &mut out)? {
                return Err(ApiError::bad_request(
                    "`prompt` is required: a string, an array of strings or an array of token ids",
                ));
            }
            match map.get("suffix") {
                None | Some(Json::Null) => {}
                Some(Json::String(s)) => out.push("suffix".into(), None, s)?,
                Some(_) => return Err(ApiError::bad_request("`suffix` must be a string")),
            }
        }
        OpenAiKind::Embeddings => {
            if !prompt_or_ids(map.get("input"), "input", true, &mut out)? {
                return Err(ApiError::bad_request(
                    "`input` is required: a string, an array of strings or an array of token ids",
                ));
            }
        }
    }
    Ok((out.texts, out.overhead))
}

/// A prompt or input: a string, strings, token ids, or (`nested`) arrays of token ids.
fn prompt_or_ids<'a>(
    v: Option<&'a Json<'a>>,
    name: &str,
    nested: bool,
    out: &mut Texts<'a>,
) -> Result<bool, ApiError> {
    let Some(v) = v else { return Ok(false) };
    if let Json::String(s) = v {
        out.push(name.into(), None, s)?;
        return Ok(true);
    }
    let Json::Array(items) = v else {
        return Ok(false);
    };
    if is_array_of(v, Json::is_string) {
        for (i, s) in items.iter().enumerate() {
            if let Json::String(s) = s {
                out.push(format!("{name}[{i}]"), None, s)?;
            }
        }
        return Ok(true);
    }
    if is_array_of(v, Json::is_u64) {
        out.overhead += items.len() as u64;
        return Ok(true);
    }
    if nested && is_array_of(v, |p| is_array_of(p, Json::is_u64)) {
        let ids: usize = items.iter().map(|p| p.as_array().map_or(0, Vec::len)).sum();
        out.overhead += ids as u64;
        return Ok(true);
    }
    Ok(false)
}

#[derive(Default)]
struct Texts<'a> {
    texts: Vec<Text<'a>>,
    overhead: u64,
}

/// Object keys shown by name in a field path; others show as `<key>` (and are checked).
fn plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-$@".contains(&b))
}

fn field(mut f: String) -> String {
    if f.len() > MAX_FIELD {
        // Paths are ASCII: a byte boundary is a character boundary.
        f.truncate(MAX_FIELD);
        f.push('…');
    }
    f
}

impl<'a> Texts<'a> {
    fn push(
        &mut self,
        field_path: String,
        role: Option<&'a str>,
        text: &'a str,
    ) -> Result<(), ApiError> {
        if self.texts.len() >= MAX_TEXTS {
            return Err(ApiError::bad_request(format!(
                "the request holds more than {MAX_TEXTS} strings"
            )));
        }
        self.texts.push(Text {
            field: field(field_path),
            role,
            text,
        });
        Ok(())
    }

    /// Every string in `v`, and every object key that is not a plain identifier. Depth is
    /// bounded by the JSON parser (128 levels).
    fn walk(&mut self, v: &'a Json<'a>, path: &str, role: Option<&'a str>) -> Result<(), ApiError> {
        match v {
            Json::String(s) => self.push(path.to_string(), role, s),
            Json::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk(item, &field(format!("{path}[{i}]")), role)?;
                }
                Ok(())
            }
            Json::Object(map) => {
                for (k, item) in map {
                    let p = if plain_key(k) {
                        field(format!("{path}.{k}"))
                    } else {
                        let p = field(format!("{path}.<key>"));
                        self.push(p.clone(), role, k)?;
                        p
                    };
                    self.walk(item, &p, role)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// Content parts whose strings are data (URLs, base64), not text the model reads as such.
const MEDIA_PARTS: &[&str] = &["image_url", "input_audio", "file", "video_url", "audio_url"];

fn messages<'a>(v: Option<&'a Json<'a>>, out: &mut Texts<'a>) -> Result<(), ApiError> {
    let Some(Json::Array(items)) = v else {
        return Err(ApiError::bad_request(
            "`messages` is required: an array of {\"role\": ..., \"content\": ...} objects",
        ));
    };
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(format!(
            "`messages` must hold 1 to {MAX_ITEMS} messages"
        )));
    }
    // Each message's framing, and the reply's priming.
    out.overhead += 4 * items.len() as u64 + 3;
    for (i, m) in items.iter().enumerate() {
        let Json::Object(m) = m else {
            return Err(ApiError::bad_request(format!(
                "`messages[{i}]` must be an object with `role` and `content`"
            )));
        };
        let role = match m.get("role") {
            Some(Json::String(r)) if ROLES.contains(&&**r) => &**r,
            Some(Json::String(r)) => {
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
        };
        match m.get("content") {
            Some(Json::String(s)) => out.push(format!("messages[{i}].content"), Some(role), s)?,
            Some(Json::Array(parts))
                if parts.len() <= MAX_ITEMS && parts.iter().all(Json::is_object) =>
            {
                content_parts(i, role, parts, out)?
            }
            // An assistant message that only calls tools carries no content.
            Some(Json::Null) | None if m.contains_key("tool_calls") => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "`messages[{i}].content` must be a string or an array of content parts"
                )))
            }
        }
        // Names, tool calls, refusals and whatever else a chat template may render.
        for (k, v) in m {
            if k != "role" && k != "content" {
                let path = if plain_key(k) {
                    format!("messages[{i}].{k}")
                } else {
                    let p = format!("messages[{i}].<key>");
                    out.push(p.clone(), Some(role), k)?;
                    p
                };
                out.walk(v, &path, Some(role))?;
            }
        }
    }
    Ok(())
}

fn content_parts<'a>(
    i: usize,
    role: &'a str,
    parts: &'a [Json<'a>],
    out: &mut Texts<'a>,
) -> Result<(), ApiError> {
    for (j, part) in parts.iter().enumerate() {
        let Json::Object(part) = part else { continue };
        let path = format!("messages[{i}].content[{j}]");
        let kind = match part.get("type") {
            Some(Json::String(t)) => &**t,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "`{path}.type` must be a string (\"text\", \"image_url\", ...)"
                )))
            }
        };
        if kind == "text" && !matches!(part.get("text"), Some(Json::String(_))) {
            return Err(ApiError::bad_request(format!(
                "`{path}.text` must be a string"
            )));
        }
        if MEDIA_PARTS.contains(&kind) {
            continue;
        }
        for (k, v) in part {
            if k == "type" {
                continue;
            }
            let p = if plain_key(k) {
                format!("{path}.{k}")
            } else {
                let p = format!("{path}.<key>");
                out.push(p.clone(), Some(role), k)?;
                p
            };
            out.walk(v, &p, Some(role))?;
        }
    }
    Ok(())
}
