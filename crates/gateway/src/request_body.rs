//! A caller's request body: read whole within bounds when a request needs it, or drained
//! when its answer did not (a request refused before its body was read).
//!
//! Why drain: hyper closes a connection whose request body was left unread, without a
//! `Connection: close` in the answer. A client that had already sent its next request on
//! that connection, or whose body was still arriving when the socket closed (the kernel
//! then resets the connection, and the reset can destroy the answer before the client
//! reads it), sees a connection error instead of the 401 or 429 it was given. Draining
//! keeps the connection usable; a body too large or too slow to drain is left, and the
//! answer says `Connection: close`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::CONTENT_LENGTH;
use hyper::{HeaderMap, StatusCode};

use crate::error::ApiError;

/// How long the rest of an unneeded body may take to arrive: a client sends the body of a
/// request right after its head, and a refused caller must not hold its connection for
/// as long as an accepted one may take to upload.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Most bytes of an unneeded body read to keep its connection: a chat request is far
/// smaller, and a refused caller must not make the gateway decrypt a megabyte a request.
const DRAIN_MOST: usize = 64 << 10;

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than {max} bytes"),
    )
}

/// The whole body: at most `max` bytes (413 beyond, at once when `Content-Length` says
/// so), within `timeout` (408 beyond).
pub async fn read(
    body: Incoming,
    headers: &HeaderMap,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        let len = len
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("Content-Length is not a number"))?;
        if len > max as u64 {
            return Err(too_large(max));
        }
    }
    match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body did not arrive in time",
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(max)),
        Ok(Err(_)) => Err(ApiError::bad_request("the request body could not be read")),
    }
}

/// Reads and discards what is left of a body the answer did not need, keeping nothing.
/// `true` when it ended within `max` bytes (at most [`DRAIN_MOST`]) and
/// [`DRAIN_TIMEOUT`], so that the connection can carry another request.
pub async fn drain(body: Incoming, max: usize) -> bool {
    drain_within(body, max.min(DRAIN_MOST), DRAIN_TIMEOUT).await
}

async fn drain_within<B>(mut body: B, max: usize, timeout: Duration) -> bool
where
    B: Body<Data = Bytes> + Unpin,
{
    if body.is_end_stream() {
        return true;
    }
    // A declared length over the bound is not waited for.
    if body.size_hint().lower() > max as u64 {
        return false;
    }
    let discard = async {
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return false;
            };
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.len());
                if seen > max {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(timeout, discard)
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::Full;
    use hyper::body::Frame;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body whose next frame never comes.
    struct Endless;

    impl Body for Endless {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_body_within_bounds_is_drained() {
        assert!(drain_within(Full::new(Bytes::from_static(b"{}")), 2, DRAIN_TIMEOUT).await);
        assert!(drain_within(Full::new(Bytes::new()), 0, DRAIN_TIMEOUT).await);
    }

    #[tokio::test]
    async fn a_body_too_large_or_too_slow_is_left() {
        assert!(!drain_within(Full::new(Bytes::from_static(b"{}")), 1, DRAIN_TIMEOUT).await);
        let chunked = http_body_util::StreamBody::new(http_body_util::BodyStream::new(Full::new(
            Bytes::from_static(b"{}"),
        )));
        assert!(
            !drain_within(chunked, 1, DRAIN_TIMEOUT).await,
            "counted, not declared"
        );
        assert!(!drain_within(Endless, 1 << 20, Duration::from_millis(50)).await);
    }
}
