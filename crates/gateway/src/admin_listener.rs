//! The admin plane's listener: HTTPS (the inference plane's certificate and client
//! certificate settings) on its own address, loopback by default. It answers `/healthz` and
//! `/readyz` itself, without credentials (they tell only up and ready); every other request
//! must carry a principal's token (`Authorization: Bearer wdn_…`) and goes to the
//! [`AdminApi`] the `warden` binary supplies, which authenticates it, checks its role and
//! carries it out. Bodies are JSON, at most [`MAX_BODY`] bytes. Failed sign-ins count
//! against the source address, as on the inference plane, and slow it down alike.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

use crate::server::Gateway;
use crate::service::ResBody;
use crate::tls::ServerTls;

pub use bytes::Bytes;
pub use hyper::{Method, StatusCode};

/// Largest request body (a policy file is the largest thing sent).
pub const MAX_BODY: usize = 1 << 20;
/// How long a client may take to send a request's headers, or its body.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One admin request, read whole.
pub struct AdminRequest {
    pub method: hyper::Method,
    /// The path, without the query.
    pub path: String,
    pub query: Option<String>,
    /// The bearer token, if one was sent.
    pub token: Option<Zeroizing<String>>,
    pub body: Bytes,
    pub peer: SocketAddr,
}

/// What an admin request gets back.
pub struct AdminResponse {
    pub status: StatusCode,
    pub body: AdminBody,
    /// The credential was missing or not valid: counted as a failed sign-in.
    pub auth_failed: bool,
}

pub enum AdminBody {
    Json(serde_json::Value),
    /// Plain text with its content type (the Prometheus exposition format).
    Text(&'static str, String),
}

impl AdminResponse {
    pub fn json(status: StatusCode, body: serde_json::Value) -> AdminResponse {
        AdminResponse {
            status,
            body: AdminBody::Json(body),
            auth_failed: false,
        }
    }

    /// An error in the shape every Warden API uses: `{"error":{"code","message"}}`.
    pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> AdminResponse {
        AdminResponse::json(
            status,
            serde_json::json!({"error": {"code": code, "message": message.into()}}),
        )
    }
}

/// Carries out authenticated admin requests. Called on a blocking thread: it may take the
/// registry's lock, write the ledger, or unseal a release.
pub trait AdminApi: Send + Sync + 'static {
    fn handle(&self, request: AdminRequest) -> AdminResponse;
}

fn respond(r: AdminResponse) -> Response<ResBody> {
    let (content_type, bytes) = match r.body {
        AdminBody::Json(v) => {
            let mut text = v.to_string();
            text.push('\n');
            ("application/json", Bytes::from(text))
        }
        AdminBody::Text(ct, text) => (ct, Bytes::from(text)),
    };
    let mut resp = Response::new(
        Full::new(bytes)
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *resp.status_mut() = r.status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if r.status == StatusCode::UNAUTHORIZED {
        h.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// The bearer token of `Authorization`, if the header holds one.
fn bearer(req: &Request<Incoming>) -> Option<Zeroizing<String>> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| Zeroizing::new(token.trim().to_string()))
}

async fn handle(
    gw: Arc<Gateway>,
    api: Arc<dyn AdminApi>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<ResBody> {
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
    if probe && !matches!(*req.method(), Method::GET | Method::HEAD) {
        return respond(AdminResponse::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the probes answer GET only",
        ));
    }
    match req.uri().path() {
        "/healthz" => {
            return respond(AdminResponse::json(
                StatusCode::OK,
                serde_json::json!({"status": "ok"}),
            ))
        }
        "/readyz" => {
            let ready = crate::metrics_listener::ready(&gw);
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return respond(AdminResponse::json(
                status,
                serde_json::json!({"ready": ready}),
            ));
        }
        _ => {}
    }
    if let Err(refusal) = gw.limits.check_source(peer.ip()) {
        let e = refusal.error();
        let mut r = respond(AdminResponse::error(e.status, e.code, e.message));
        if let Some(v) = e
            .retry_after
            .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
        {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
        return r;
    }
    let token = bearer(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let body = Limited::new(req.into_body(), MAX_BODY);
    let body = match tokio::time::timeout(READ_TIMEOUT, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return respond(AdminResponse::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is larger than {MAX_BODY} bytes"),
            ))
        }
        Ok(Err(_)) => {
            return respond(AdminResponse::error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                "the request body could not be read",
            ))
        }
        Err(_) => {
            return respond(AdminResponse::error(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    READ_TIMEOUT.as_secs()
                ),
            ))
        }
    };
    let request = AdminRequest {
        method,
        path,
        query,
        token,
        body,
        peer,
    };
    let answer = tokio::task::spawn_blocking(move || api.handle(request)).await;
    let answer = answer.unwrap_or_else(|_| {
        AdminResponse::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed inside the server; see its log",
        )
    });
    if answer.auth_failed {
        for alert in gw.limits.failed_sign_in(peer.ip(), None) {
            gw.recorder
                .record_later(&crate::service::failed_sign_in_alert(&alert, &gw));
        }
    }
    respond(answer)
}

async fn connection<I>(io: I, peer: SocketAddr, gw: Arc<Gateway>, api: Arc<dyn AdminApi>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A client that stops reading its answer is cut, as on the inference listener.
    let io = crate::deadline::SendDeadline::new(io, gw.config.send_timeout);
    let service = service_fn(move |req| {
        let (gw, api) = (Arc::clone(&gw), Arc::clone(&api));
        async move { Ok::<_, Infallible>(handle(gw, api, peer, req).await) }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Serves the admin API until `shutdown` completes. With `tls`, connections are HTTPS
/// under the inference plane's certificate and client-certificate rules.
pub async fn serve_admin(
    listener: TcpListener,
    tls: Option<ServerTls>,
    gw: Arc<Gateway>,
    api: Arc<dyn AdminApi>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(|t| TlsAcceptor::from(t.config));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (gw, api, acceptor) = (Arc::clone(&gw), Arc::clone(&api), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(Ok(tls)) =
                                tokio::time::timeout(READ_TIMEOUT, acceptor.accept(stream)).await
                            {
                                connection(tls, peer, gw, api).await;
                            }
                        }
                        None => connection(stream, peer, gw, api).await,
                    }
                });
            }
        }
    }
}
