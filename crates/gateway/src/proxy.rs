//! The upstream side: a pooled HTTP/1.1 client to the configured model servers. Only the
//! configured base URL and a fixed route are ever requested, with the caller's validated
//! body and none of the caller's headers (the API key stays here). Plain HTTP: upstreams
//! are expected on a private network in this version.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::ApiError;

type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// Idle upstream connections each event loop keeps per upstream. Each loop has its own
/// pool, and a request that finds no idle connection opens one while it waits for one to
/// come free: without a bound, 1,000 callers left about 1,500 upstream connections open
/// (docs/PERFORMANCE.md). Busy connections are not bounded by this, only those kept.
const IDLE_PER_LOOP: usize = 256;

thread_local! {
    /// One pool per thread: each of the listener's event loops (`server.rs`) keeps its
    /// upstream connections, and the tasks that drive them, on its own thread.
    static CLIENT: Client = client();
}

fn client() -> Client {
    let mut connector = HttpConnector::new();
    connector.enforce_http(true);
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(IDLE_PER_LOOP)
        .build(connector)
}

/// Sends one request upstream and waits (at most `timeout`) for its response head. Any
/// failure, or a status other than 2xx, is a generic 502 (504 on a timeout): what went
/// wrong upstream is not the caller's business.
pub async fn send(
    method: Method,
    url: &str,
    body: Bytes,
    stream: bool,
    timeout: Duration,
) -> Result<Response<Incoming>, ApiError> {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header(CONTENT_TYPE, "application/json")
        .header(
            ACCEPT,
            if stream {
                "text/event-stream"
            } else {
                "application/json"
            },
        )
        .body(Full::new(body))
        .map_err(|_| ApiError::upstream())?;
    let request = CLIENT.with(|client| client.request(req));
    let resp = match tokio::time::timeout(timeout, request).await {
        Err(_) => {
            return Err(ApiError::new(
                hyper::StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the model server did not answer in time",
            ))
        }
        Ok(Err(_)) => return Err(ApiError::upstream()),
        Ok(Ok(r)) => r,
    };
    if !resp.status().is_success() {
        return Err(ApiError::upstream());
    }
    Ok(resp)
}
