//! Refusals and failures as the caller sees them: a status and a JSON body that says what
//! to fix, never anything internal.

use bytes::Bytes;
use hyper::StatusCode;

/// A request the gateway answers itself with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Shown to the caller: what was wrong, in terms of the request.
    pub message: String,
    /// A short code for the ledger and the body's `code` (e.g. `invalid_api_key`).
    pub code: &'static str,
    /// Seconds after which trying again may succeed (the `Retry-After` header).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            code,
            retry_after: None,
        }
    }

    /// Says when to try again.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// Anything that went wrong upstream: the caller learns only that.
    pub fn upstream() -> ApiError {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "the model server could not answer this request",
        )
    }

    pub fn not_found_model(model: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("model {model:?} is not served here"),
        )
    }

    /// The body: OpenAI's error shape on `/v1`, KServe's on `/v2`.
    pub fn body(&self, openai: bool) -> Bytes {
        let v = if openai {
            serde_json::json!({"error": {
                "message": self.message,
                "type": error_type(self.status),
                "code": self.code,
            }})
        } else {
            serde_json::json!({"error": self.message, "code": self.code})
        };
        Bytes::from(v.to_string())
    }
}

fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 404 | 405 | 408 | 413 => "invalid_request_error",
        429 => "rate_limit_error",
        401 => "authentication_error",
        403 => "permission_error",
        503 => "unavailable",
        _ => "server_error",
    }
}
