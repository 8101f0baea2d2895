//! The metrics listener: plain HTTP on a loopback address, for a Prometheus scraper on the
//! same host (or behind the operator's own TLS proxy). `GET /metrics` (the text format),
//! `GET /healthz` (up), `GET /readyz` (able to serve: not locked down, registry readable,
//! ledger recording). Nothing else, no request bodies, nothing that names a principal.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::metrics::Gauges;
use crate::server::Gateway;
use crate::service::ResBody;

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response<ResBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The content type of the Prometheus text exposition format.
pub const EXPOSITION: &str = "text/plain; version=0.0.4";

/// Whether the gateway can serve: not locked down, registry readable, ledger recording.
pub fn ready(gw: &Gateway) -> bool {
    !gw.control.locked_down() && gw.control.readable() && gw.recorder.healthy()
}

/// The metrics now, in the Prometheus text format.
pub fn render(gw: &Gateway) -> String {
    gw.metrics.render(&Gauges {
        in_flight: gw.limits.in_flight(),
        lockdown: gw.control.locked_down(),
        ledger_healthy: gw.recorder.healthy(),
        registry_readable: gw.control.readable(),
        runtime_models: gw.local.names().len(),
        open_connections: gw
            .open_connections
            .iter()
            .map(|n| n.load(std::sync::atomic::Ordering::Relaxed))
            .collect(),
    })
}

fn handle(gw: &Gateway, req: &Request<Incoming>) -> Response<ResBody> {
    if req.method() != Method::GET {
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => answer(StatusCode::OK, EXPOSITION, render(gw)),
        "/healthz" => answer(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if ready(gw) => answer(StatusCode::OK, "text/plain", "ready\n".into()),
        "/readyz" => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".into(),
        ),
        _ => answer(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Serves the metrics until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let gw = Arc::clone(&gw);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let r = handle(&gw, &req);
                        async move { Ok::<_, Infallible>(r) }
                    });
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(5))
                        .max_buf_size(16 * 1024)
                        .serve_connection(TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
                });
            }
        }
    }
}
