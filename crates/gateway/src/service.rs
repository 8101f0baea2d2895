//! One request, end to end: route, authenticate, kill switch, body limit, validation,
//! authorisation, upstream, record.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, RETRY_AFTER,
};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use ledger::record::Record;
use ledger::Draft;
use serde_json::json;

use crate::audit::{DigestText, StreamDigest};
use crate::authn;
use crate::config::{valid_model_name, Protocol};
use crate::conn::Connection;
use crate::control::Caller;
use crate::error::ApiError;
use crate::guard::GuardInput;
use crate::limits::{Alert, InFlight, Refusal};
use crate::local::Served;
use crate::policy::{Action, AuthzRequest, Backend, Decision};
use crate::proxy::{self, UpstreamBody};
use crate::request_body;
use crate::runtime_kserve;
use crate::server::Gateway;
use crate::shape::{self, OpenAiShaping, ShapeError, SseShaper};
use crate::usage;
use crate::validate::{self, OpenAiKind};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ResBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    Models,
    OpenAi(OpenAiKind),
    /// `/v2/models/{model}[/versions/{v}]` + `suffix` (`""`, `/ready`, `/infer`).
    KServe {
        model: String,
        version: Option<String>,
        path: String,
        kind: KServeKind,
    },
    Live,
    Ready,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KServeKind {
    Metadata,
    Ready,
    Infer,
}

impl Route {
    fn name(&self) -> &'static str {
        match self {
            Route::Models => "openai.models",
            Route::OpenAi(OpenAiKind::Chat) => "openai.chat",
            Route::OpenAi(OpenAiKind::Completions) => "openai.completions",
            Route::OpenAi(OpenAiKind::Embeddings) => "openai.embeddings",
            Route::KServe {
                kind: KServeKind::Metadata,
                ..
            } => "kserve.metadata",
            Route::KServe {
                kind: KServeKind::Ready,
                ..
            } => "kserve.ready",
            Route::KServe {
                kind: KServeKind::Infer,
                ..
            } => "kserve.infer",
            Route::Live => "health.live",
            Route::Ready => "health.ready",
        }
    }

    fn method(&self) -> Method {
        match self {
            Route::OpenAi(_)
            | Route::KServe {
                kind: KServeKind::Infer,
                ..
            } => Method::POST,
            _ => Method::GET,
        }
    }
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

fn kserve_route(rest: &str) -> Option<Route> {
    let parts: Vec<&str> = rest.split('/').collect();
    let (model, tail) = parts.split_first()?;
    let ok_segment = |s: &str| valid_model_name(s) && !s.contains('/');
    if !ok_segment(model) {
        return None;
    }
    let (version, tail) = match tail {
        ["versions", v, tail @ ..] if ok_segment(v) => (Some(*v), tail),
        _ => (None, tail),
    };
    let kind = match tail {
        [] => KServeKind::Metadata,
        ["ready"] => KServeKind::Ready,
        ["infer"] => KServeKind::Infer,
        _ => return None,
    };
    let mut path = format!("/v2/models/{model}");
    if let Some(v) = version {
        path.push_str(&format!("/versions/{v}"));
    }
    match kind {
        KServeKind::Metadata => {}
        KServeKind::Ready => path.push_str("/ready"),
        KServeKind::Infer => path.push_str("/infer"),
    }
    Some(Route::KServe {
        model: (*model).to_string(),
        version: version.map(str::to_string),
        path,
        kind,
    })
}

fn route(path: &str) -> Option<Route> {
    match path {
        "/v1/models" => Some(Route::Models),
        "/v1/chat/completions" => Some(Route::OpenAi(OpenAiKind::Chat)),
        "/v1/completions" => Some(Route::OpenAi(OpenAiKind::Completions)),
        "/v1/embeddings" => Some(Route::OpenAi(OpenAiKind::Embeddings)),
        "/v2/health/live" => Some(Route::Live),
        "/v2/health/ready" => Some(Route::Ready),
        _ => kserve_route(path.strip_prefix("/v2/models/")?),
    }
}

/// What the ledger record of a request says.
struct Facts {
    start: Instant,
    /// The connection the request came on (the caller's address).
    conn: Arc<Connection>,
    route: &'static str,
    caller: Option<Arc<Caller>>,
    /// The key a refused credential named.
    key_id: Option<String>,
    model: Option<String>,
    upstream: Option<String>,
    request_bytes: u64,
    request_digest: DigestText,
    /// The request's place in the concurrency limits, held until its record is made.
    in_flight: Option<InFlight>,
    /// Charge the tokens of the answer to the caller's quota.
    count_tokens: bool,
    /// The policies' decision on the request (`policy.rs`).
    policy: Option<Arc<Decision>>,
}

impl Facts {
    /// The request's record, drafted over these facts; `text` holds its numbers.
    fn record<'a>(
        &'a self,
        text: &'a mut String,
        status: u16,
        decision: &'a str,
        response_bytes: u64,
        response_digest: &'a DigestText,
    ) -> Draft<'a> {
        let mut numbers = itoa::Buffer::new();
        let mut put = |value: u64| {
            let start = text.len();
            text.push_str(numbers.format(value));
            start..text.len()
        };
        let status = put(u64::from(status));
        let request_bytes = put(self.request_bytes);
        let response_bytes = put(response_bytes);
        let latency = text.len();
        push_millis(text, self.start.elapsed());
        let latency = latency..text.len();
        // The policies that decided, comma-separated.
        let policy = self.policy.as_ref().map(|d| {
            let start = text.len();
            for (i, p) in d.policies.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(p);
            }
            start..text.len()
        });
        let text: &'a String = text;
        let caller = self.caller.as_deref();
        let actor = caller.map_or("anonymous", |c| c.principal.as_str());
        // Attributes in key order: each goes at the end of the draft's list. Added in place:
        // the by-value builder copied the draft at every step.
        let mut r = Draft::new("inference.request", actor);
        r.put_digest("request", self.request_digest.as_str());
        r.put_digest("response", response_digest.as_str());
        if let Some(m) = &self.model {
            r.set_subject(m);
        }
        if let Some(c) = caller {
            r.put_attr("credential", c.credential.as_str());
        }
        r.put_attr("decision", decision);
        if let Some(k) = caller.map(|c| &c.key_id).or(self.key_id.as_ref()) {
            r.put_attr("key_id", k);
        }
        r.put_attr("latency_ms", &text[latency]);
        if let Some(p) = policy {
            r.put_attr("policy", &text[p]);
        }
        r.put_attr("request_bytes", &text[request_bytes]);
        r.put_attr("response_bytes", &text[response_bytes]);
        r.put_attr("route", self.route);
        r.put_attr("source", &self.conn.source);
        r.put_attr("status", &text[status]);
        if let Some(u) = &self.upstream {
            r.put_attr("upstream", u);
        }
        r
    }
}

/// Appends `elapsed` in milliseconds to the microsecond, rounded (`12.345`).
fn push_millis(text: &mut String, elapsed: std::time::Duration) {
    let micros = (elapsed.as_nanos() + 500) / 1000;
    let whole = u64::try_from(micros / 1000).unwrap_or(u64::MAX);
    text.push_str(itoa::Buffer::new().format(whole));
    let frac = (micros % 1000) as u16;
    text.push('.');
    for digit in [frac / 100, frac / 10 % 10, frac % 10] {
        text.push(char::from(b'0' + digit as u8));
    }
}

enum Reply {
    /// A whole body, recorded before it is sent.
    Whole {
        status: StatusCode,
        content_type: &'static str,
        body: Bytes,
    },
    /// A stream, shaped event by event and recorded when it ends.
    Stream(Response<UpstreamBody>, SseShaper),
    /// Not an inference request (health): not recorded.
    Unrecorded(Response<ResBody>),
}

fn full(b: Bytes) -> ResBody {
    Full::new(b)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<ResBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn error_response(e: &ApiError, openai: bool, allow: Option<&Method>) -> Response<ResBody> {
    let mut r = respond(e.status, "application/json", e.body(openai));
    if let Some(m) = allow {
        if let Ok(v) = HeaderValue::from_str(m.as_str()) {
            r.headers_mut().insert(ALLOW, v);
        }
    }
    r
}

/// The ledger record of a source or principal crossing the failed sign-in threshold.
pub(crate) fn failed_sign_in_alert(alert: &Alert, gw: &Gateway) -> Record {
    let rate = gw.limits.config().failed_auth;
    let r = Record::new("alert.auth-failures", "warden")
        .attr("failures", &rate.burst.to_string())
        .attr("per_minute", &rate.per_minute.to_string());
    match alert {
        Alert::Source(ip) => r.attr("source", &ip.to_string()).attr("action", "slowed"),
        Alert::Principal(p) => r.subject(p).attr("action", "alerted"),
    }
}

fn ledger_down() -> ApiError {
    ApiError::unavailable(
        "ledger_unavailable",
        "requests cannot be recorded at the moment; try again later",
    )
}

/// Answers one request. Never fails: every error is a response. A body the answer did
/// not need (a request refused before it was read) is drained first, so that the
/// connection can carry the next request (`request_body::drain`).
pub async fn handle(
    gw: Arc<Gateway>,
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<ResBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let mut response = answer(&gw, conn, &parts, &mut body).await;
    let unread = match body {
        Some(rest) => !request_body::drain(rest, gw.config.max_body_bytes).await,
        // Refused while being read (too large, too slow): the rest was never read.
        None => matches!(
            response.status(),
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ),
    };
    if unread {
        // hyper closes such a connection; say so, so that no client sends another
        // request on it.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// The answer to one request, its body (`None` once taken) read only when needed.
async fn answer(
    gw: &Arc<Gateway>,
    conn: Arc<Connection>,
    parts: &Parts,
    body: &mut Option<Incoming>,
) -> Response<ResBody> {
    let openai = parts.uri.path().starts_with("/v1/");
    let mut facts = Facts {
        start: Instant::now(),
        conn: Arc::clone(&conn),
        route: "unknown",
        caller: None,
        key_id: None,
        model: None,
        upstream: None,
        request_bytes: 0,
        request_digest: gw.digests.digest(b""),
        in_flight: None,
        count_tokens: false,
        policy: None,
    };
    let mut allow = None;
    let outcome = inner(gw, &conn, parts, body, &mut facts, &mut allow).await;
    let mut retry_after = None;
    let (status, content_type, body, decision) = match outcome {
        Ok(Reply::Unrecorded(r)) => return r,
        Ok(Reply::Stream(upstream, shaper)) => {
            gw.metrics
                .observe(facts.route, 200, "allowed", facts.start.elapsed());
            return stream(gw, upstream, shaper, facts);
        }
        Ok(Reply::Whole {
            status,
            content_type,
            body,
        }) => (status, content_type, body, "allowed"),
        Err(e) => {
            let body = e.body(openai);
            retry_after = e.retry_after;
            (e.status, "application/json", body, e.code)
        }
    };
    if facts.count_tokens && status.is_success() {
        if let Some(c) = &facts.caller {
            gw.limits.charge_tokens(
                &c.principal,
                facts.model.as_deref(),
                usage::tokens_of_body(&body).unwrap_or(0),
            );
        }
    }
    let digest = gw.digests.digest(&body);
    let mut text = String::with_capacity(64);
    let record = facts.record(
        &mut text,
        status.as_u16(),
        decision,
        body.len() as u64,
        &digest,
    );
    let recorded = if gw.config.durable_before_answer {
        gw.recorder.record(&record).await
    } else {
        gw.recorder.queue(&record).await
    };
    if !recorded {
        let e = ledger_down();
        gw.metrics.observe(
            facts.route,
            e.status.as_u16(),
            e.code,
            facts.start.elapsed(),
        );
        return error_response(&e, openai, None);
    }
    gw.metrics.observe(
        facts.route,
        status.as_u16(),
        decision,
        facts.start.elapsed(),
    );
    if status.is_success() {
        return respond(status, content_type, body);
    }
    let mut r = respond(status, content_type, body);
    if let Some(m) = allow {
        if let Ok(v) = HeaderValue::from_str(m.as_str()) {
            r.headers_mut().insert(ALLOW, v);
        }
    }
    if let Some(secs) = retry_after {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

async fn inner(
    gw: &Arc<Gateway>,
    conn: &Connection,
    parts: &Parts,
    body: &mut Option<Incoming>,
    facts: &mut Facts,
    allow: &mut Option<Method>,
) -> Result<Reply, ApiError> {
    let route = route(parts.uri.path()).ok_or_else(not_found)?;
    facts.route = route.name();
    if parts.method != route.method() {
        *allow = Some(route.method());
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} takes {}", parts.uri.path(), route.method()),
        ));
    }
    let openai = parts.uri.path().starts_with("/v1/");
    match route {
        Route::Live => {
            return Ok(Reply::Unrecorded(respond(
                StatusCode::OK,
                "application/json",
                Bytes::from_static(b"{\"live\":true}"),
            )));
        }
        Route::Ready => {
            let ready = !gw.control.locked_down() && gw.control.readable() && gw.recorder.healthy();
            let (status, body) = if ready {
                (StatusCode::OK, "{\"ready\":true}")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "{\"ready\":false}")
            };
            return Ok(Reply::Unrecorded(respond(
                status,
                "application/json",
                Bytes::from_static(body.as_bytes()),
            )));
        }
        _ => {}
    }

    // Authentication, unless this source has failed too often of late.
    let source = conn.peer.ip();
    gw.limits.check_source(source).map_err(Refusal::error)?;
    let header = parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let caller = match authn::authenticate(gw, conn, header, SystemTime::now()) {
        Ok(c) => c,
        Err(refused) => {
            for alert in gw
                .limits
                .failed_sign_in(source, refused.principal.as_deref())
            {
                gw.recorder.record_later(&failed_sign_in_alert(&alert, gw));
            }
            facts.key_id = refused.key_id;
            return Err(refused.error);
        }
    };
    facts.caller = Some(Arc::clone(&caller));

    // Kill switch, and what the gateway needs to work safely.
    if gw.control.locked_down() {
        return Err(ApiError::unavailable(
            "lockdown",
            "inference is locked down by the operators",
        ));
    }
    if !gw.control.readable() || !gw.recorder.healthy() {
        return Err(ledger_down());
    }
    if gw.control.blocked(&caller.principal) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "principal_blocked",
            "this principal is blocked by the operators",
        ));
    }
    facts.in_flight = Some(gw.limits.admit(&caller.principal).map_err(Refusal::error)?);

    if route == Route::Models {
        let data: Vec<_> = gw
            .config
            .upstreams
            .iter()
            .filter(|u| u.protocol == Protocol::OpenAi)
            .flat_map(|u| u.models.iter())
            .filter(|m| {
                let ask = Ask {
                    action: Action::ListModels,
                    model: m,
                    version: None,
                    backend: Backend::Upstream,
                    protocol: Protocol::OpenAi,
                };
                decide(gw, conn, &caller, &ask, facts.route).0.allowed
            })
            .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "warden"}))
            .collect();
        let body = json!({"object": "list", "data": data}).to_string();
        return Ok(Reply::Whole {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Bytes::from(body),
        });
    }

    // The body, bounded.
    let body = match body.take() {
        Some(b) if route.method() == Method::POST => {
            request_body::read(
                b,
                &parts.headers,
                gw.config.max_body_bytes,
                gw.config.request_timeout,
            )
            .await?
        }
        // A body on a GET is not read; `handle` drains it.
        other => {
            *body = other;
            Bytes::new()
        }
    };
    facts.request_bytes = body.len() as u64;
    facts.request_digest = gw.digests.digest(&body);

    // Models run by the sandboxed runtime.
    if let Route::KServe {
        model,
        version,
        kind,
        ..
    } = &route
    {
        if let Some(served) = gw.local.get(model) {
            facts.model = Some(model.clone());
            gw.limits.admit_model(model).map_err(Refusal::error)?;
            return local_kserve(
                gw,
                conn,
                &caller,
                served,
                version.as_deref(),
                *kind,
                &body,
                facts,
            )
            .await;
        }
    }

    // Validation, the model in scope (403), the input guards, then the model served here
    // (404).
    let (protocol, model, path, stream) = match &route {
        Route::OpenAi(kind) => {
            let map = validate::openai_object(&body)?;
            // Named in the record even when the rest of the request is refused.
            if let Some(validate::Json::String(m)) = map.get("model") {
                if valid_model_name(m) {
                    facts.model = Some(m.to_string());
                }
            }
            let (v, texts) = validate::check_openai(*kind, &map, &gw.config.text)?;
            let ask = Ask {
                action: Action::Infer,
                model: &v.model,
                version: None,
                backend: Backend::Upstream,
                protocol: Protocol::OpenAi,
            };
            authorize(gw, conn, &caller, &ask, facts)?;
            gw.guards.check(&GuardInput {
                principal: &caller.principal,
                model: &v.model,
                texts: &texts,
            })?;
            let path = match kind {
                OpenAiKind::Chat => "/v1/chat/completions",
                OpenAiKind::Completions => "/v1/completions",
                OpenAiKind::Embeddings => "/v1/embeddings",
            };
            (
                Protocol::OpenAi,
                v.model,
                proxy::Route::Fixed(path),
                v.stream,
            )
        }
        Route::KServe {
            model,
            version,
            path,
            kind,
        } => {
            if *kind == KServeKind::Infer {
                let map = validate::json_object(&body)?;
                validate::kserve_infer_object(&map)?;
                let declared = gw
                    .config
                    .upstream_for(Protocol::KServe, model)
                    .and_then(|u| u.inputs.get(model.as_str()));
                if let Some(specs) = declared {
                    validate::kserve_declared_inputs(&map, model, specs)?;
                }
            }
            facts.model = Some(model.clone());
            let ask = Ask {
                action: action_of(*kind),
                model,
                version: version.as_deref(),
                backend: Backend::Upstream,
                protocol: Protocol::KServe,
            };
            authorize(gw, conn, &caller, &ask, facts)?;
            (
                Protocol::KServe,
                model.clone(),
                proxy::Route::Made(path),
                false,
            )
        }
        _ => return Err(not_found()),
    };
    let Some(upstream) = gw.config.upstream_for(protocol, &model) else {
        return Err(ApiError::not_found_model(&model));
    };
    gw.limits.admit_model(&model).map_err(Refusal::error)?;
    facts.count_tokens = protocol == Protocol::OpenAi;
    facts.upstream = Some(upstream.name.clone());
    // One deadline for the whole answer (head and body), not one for each.
    let deadline = tokio::time::Instant::now() + gw.config.request_timeout;
    let resp = proxy::send(
        &upstream.target,
        route.method(),
        path,
        body,
        stream,
        deadline,
    )
    .await?;
    if stream {
        let shaper = SseShaper::new(OpenAiShaping {
            keep_logprobs: gw.config.keep_logprobs,
            model: Some(model.clone()),
        });
        return Ok(Reply::Stream(resp, shaper));
    }
    let content_type = if openai
        || resp
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        "application/json"
    } else {
        "text/plain"
    };
    let shaping = (protocol == Protocol::OpenAi).then(|| OpenAiShaping {
        keep_logprobs: gw.config.keep_logprobs,
        model: Some(model.clone()),
    });
    let limited = Limited::new(resp.into_body(), gw.config.max_response_bytes);
    let collected = tokio::time::timeout_at(deadline, limited.collect())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the model server did not answer in time",
            )
        })?
        .map_err(|_| ApiError::upstream())?;
    let mut body = collected.to_bytes();
    if let Some(policy) = &shaping {
        if let Some(shaped) = shape::shape_openai(&body, policy)? {
            body = shaped;
        }
    }
    Ok(Reply::Whole {
        status: StatusCode::OK,
        content_type,
        body,
    })
}

/// A KServe v2 request for a model the runtime serves: in scope (403), the live version
/// (404), loaded (503), then metadata, readiness or inference.
#[allow(clippy::too_many_arguments)]
async fn local_kserve(
    gw: &Arc<Gateway>,
    conn: &Connection,
    caller: &Caller,
    served: Served,
    version: Option<&str>,
    kind: KServeKind,
    body: &Bytes,
    facts: &mut Facts,
) -> Result<Reply, ApiError> {
    let name = facts.model.clone().unwrap_or_default();
    let ask = Ask {
        action: action_of(kind),
        model: &name,
        version,
        backend: Backend::Runtime,
        protocol: Protocol::KServe,
    };
    authorize(gw, conn, caller, &ask, facts)?;
    let live = match &served {
        Served::Ready(m) => &m.version,
        Served::Unavailable { version } => version,
    };
    if version.is_some_and(|v| v != live) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "model_version_not_found",
            format!("model {name:?} is served at version {live:?} only"),
        ));
    }
    facts.upstream = Some(format!("runtime:{name}@{live}"));
    let ok = |body: Bytes| Reply::Whole {
        status: StatusCode::OK,
        content_type: "application/json",
        body,
    };
    let model = match served {
        Served::Ready(m) => m,
        Served::Unavailable { .. } if kind == KServeKind::Ready => {
            return Err(ApiError::unavailable(
                "model_not_ready",
                format!("model {name:?} is not ready"),
            ))
        }
        Served::Unavailable { .. } => {
            return Err(ApiError::unavailable(
                "model_unavailable",
                format!("model {name:?} is not available at the moment"),
            ))
        }
    };
    match kind {
        KServeKind::Metadata => Ok(ok(runtime_kserve::metadata(&model))),
        KServeKind::Ready => Ok(ok(Bytes::from(
            json!({"name": name, "ready": true}).to_string(),
        ))),
        KServeKind::Infer => {
            let (inputs, id) = runtime_kserve::parse(&model, body)?;
            let outputs = runtime_kserve::infer(&model, inputs, gw.config.request_timeout).await?;
            Ok(ok(runtime_kserve::answer(&model, outputs, id)?))
        }
    }
}

/// What a request asks of a model, for the policies.
struct Ask<'a> {
    action: Action,
    model: &'a str,
    version: Option<&'a str>,
    backend: Backend,
    protocol: Protocol,
}

fn action_of(kind: KServeKind) -> Action {
    match kind {
        KServeKind::Infer => Action::Infer,
        KServeKind::Metadata | KServeKind::Ready => Action::Metadata,
    }
}

/// The authorisation policies' decision on this request (403 unless allowed); the
/// deciding policies go into the request's record. Denied out of the credential's own
/// scope, the caller learns that (`model_not_allowed`); otherwise only that a policy
/// refused.
fn authorize(
    gw: &Gateway,
    conn: &Connection,
    caller: &Caller,
    ask: &Ask<'_>,
    facts: &mut Facts,
) -> Result<(), ApiError> {
    let (decision, in_key_scope) = decide(gw, conn, caller, ask, facts.route);
    let allowed = decision.allowed;
    facts.policy = Some(decision);
    if allowed {
        return Ok(());
    }
    if !in_key_scope {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "model_not_allowed",
            format!("this credential may not use model {:?}", ask.model),
        ));
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "policy_denied",
        format!(
            "the authorisation policy does not allow this request on model {:?}",
            ask.model
        ),
    ))
}

/// The policies' decision, and whether the credential's own scope allows the model.
fn decide(
    gw: &Gateway,
    conn: &Connection,
    caller: &Caller,
    ask: &Ask<'_>,
    route: &str,
) -> (Arc<Decision>, bool) {
    let in_key_scope = caller.may_use(ask.model);
    let decision = gw.authorize(&AuthzRequest {
        principal: &caller.principal,
        credential: caller.credential,
        groups: &caller.groups,
        action: ask.action,
        model: ask.model,
        version: ask.version,
        backend: ask.backend,
        route,
        protocol: ask.protocol.name(),
        source: conn.peer.ip(),
        tls: conn.tls,
        in_key_scope,
        now: SystemTime::now(),
    });
    (decision, in_key_scope)
}

/// Passes an upstream's event stream through chunk by chunk, digesting and counting it,
/// and records the request when the stream ends, is cut by a lockdown, stalls (nothing
/// from the upstream for `request_timeout`), or the caller goes away.
fn stream(
    gw: &Arc<Gateway>,
    upstream: Response<UpstreamBody>,
    shaper: SseShaper,
    facts: Facts,
) -> Response<ResBody> {
    let metered = Metered {
        inner: upstream.into_body(),
        shaper,
        stall: Box::pin(tokio::time::sleep(gw.config.request_timeout)),
        waiting: true,
        ended: false,
        digest: Some(gw.digests.stream()),
        bytes: 0,
        tokens: usage::StreamTokens::default(),
        outcome: "client-closed",
        facts: Some(facts),
        gw: Arc::clone(gw),
    };
    let mut r = Response::new(metered.boxed());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

struct Metered {
    inner: UpstreamBody,
    shaper: SseShaper,
    /// Ends the stream when the upstream sends nothing for `request_timeout`: a stalled
    /// upstream holds neither the caller nor a connection slot for ever.
    stall: Pin<Box<tokio::time::Sleep>>,
    /// Whether `stall` counts down a wait for the upstream now. It is set when a wait
    /// starts, not when a chunk arrives: the time a slow caller takes to read the last
    /// chunk is not the upstream's silence, and a chunk that is already there costs no
    /// timer work.
    waiting: bool,
    /// The upstream has ended; what the shaper held back has been sent.
    ended: bool,
    digest: Option<StreamDigest>,
    bytes: u64,
    tokens: usage::StreamTokens,
    outcome: &'static str,
    facts: Option<Facts>,
    gw: Arc<Gateway>,
}

impl Metered {
    fn finish(&mut self) {
        let (Some(facts), Some(digest)) = (self.facts.take(), self.digest.take()) else {
            return;
        };
        if let Some(c) = facts.caller.as_ref().filter(|_| facts.count_tokens) {
            self.gw
                .limits
                .charge_tokens(&c.principal, facts.model.as_deref(), self.tokens.total());
        }
        let digest = digest.finish();
        let mut text = String::with_capacity(64);
        let record = facts
            .record(&mut text, 200, "allowed", self.bytes, &digest)
            .attr("stream", self.outcome);
        self.gw.recorder.record_later(&record);
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for Metered {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.facts.is_none() {
            return Poll::Ready(None);
        }
        if self.gw.control.locked_down() {
            self.outcome = "cut-lockdown";
            self.finish();
            return Poll::Ready(None);
        }
        let blocked = self
            .facts
            .as_ref()
            .and_then(|f| f.caller.as_ref())
            .is_some_and(|c| self.gw.control.blocked(&c.principal));
        if blocked {
            self.outcome = "cut-blocked";
            self.finish();
            return Poll::Ready(None);
        }
        loop {
            if self.ended {
                self.finish();
                return Poll::Ready(None);
            }
            let shaped = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => {
                    if !self.waiting {
                        self.waiting = true;
                        let deadline = tokio::time::Instant::now() + self.gw.config.request_timeout;
                        self.stall.as_mut().reset(deadline);
                    }
                    if self.stall.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.outcome = "upstream-stalled";
                    self.finish();
                    return Poll::Ready(None);
                }
                // The end of the upstream's stream, or trailers (not passed on): what the
                // shaper holds back goes out, then the stream ends.
                Poll::Ready(None) => {
                    self.ended = true;
                    self.outcome = "complete";
                    self.shaper.finish()
                }
                Poll::Ready(Some(Ok(frame))) => match frame.data_ref() {
                    Some(data) => {
                        self.waiting = false;
                        self.shaper.push(data)
                    }
                    None => {
                        self.ended = true;
                        self.outcome = "complete";
                        self.shaper.finish()
                    }
                },
                Poll::Ready(Some(Err(_))) => Err(ShapeError::UpstreamError),
            };
            match shaped {
                // Ending the stream early tells the caller something went wrong, and
                // nothing of the upstream's error.
                Err(_) => {
                    self.outcome = "upstream-error";
                    self.finish();
                    return Poll::Ready(None);
                }
                Ok(data) if data.is_empty() => continue,
                Ok(data) => {
                    if let Some(d) = self.digest.as_mut() {
                        d.update(&data);
                    }
                    self.tokens.push(&data);
                    self.bytes += data.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn latency_is_written_in_milliseconds_to_the_microsecond() {
        use std::time::Duration;
        for (elapsed, text) in [
            (Duration::ZERO, "0.000"),
            (Duration::from_nanos(499), "0.000"),
            (Duration::from_nanos(500), "0.001"),
            (Duration::from_micros(268), "0.268"),
            (Duration::from_nanos(1_234_567), "1.235"),
            (Duration::from_micros(999_999), "999.999"),
            (Duration::from_nanos(999_999_600), "1000.000"),
            (Duration::from_secs(12), "12000.000"),
        ] {
            let mut s = String::from("x");
            push_millis(&mut s, elapsed);
            assert_eq!(s, format!("x{text}"), "{elapsed:?}");
        }
    }

    #[test]
    fn routes() {
        assert_eq!(route("/v1/models"), Some(Route::Models));
        assert_eq!(
            route("/v1/chat/completions"),
            Some(Route::OpenAi(OpenAiKind::Chat))
        );
        let r = route("/v2/models/iris/versions/3/infer").unwrap();
        assert_eq!(
            r,
            Route::KServe {
                model: "iris".into(),
                version: Some("3".into()),
                path: "/v2/models/iris/versions/3/infer".into(),
                kind: KServeKind::Infer
            }
        );
        assert!(matches!(
            route("/v2/models/iris/ready"),
            Some(Route::KServe {
                kind: KServeKind::Ready,
                ..
            })
        ));
        assert!(matches!(
            route("/v2/models/iris"),
            Some(Route::KServe {
                kind: KServeKind::Metadata,
                ..
            })
        ));
        for bad in [
            "/",
            "/v1/chat",
            "/v2/models/",
            "/v2/models/a b/infer",
            "/v2/models/iris/explain",
            "/v2/models/../infer/x",
        ] {
            assert_eq!(route(bad), None, "{bad}");
        }
    }
}
