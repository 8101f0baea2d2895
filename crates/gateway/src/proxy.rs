//! The upstream side: HTTP/1.1 to the configured model servers over pooled keep-alive
//! connections, in TLS (`https://` upstreams: the CAs and client certificate of the
//! upstream's settings, `tls::client_config`) or plain HTTP. Only the configured base URL
//! and a fixed route are ever requested, with the caller's validated body and none of the
//! caller's headers (the API key stays here).
//!
//! Each thread (each of the listener's event loops, `server.rs`) keeps its own pool of idle
//! connections per upstream, so a request takes one without a lock, a hash or a task of its
//! own. A connection goes back to the pool when its answer has been read to the end; one
//! whose answer was dropped part-read is closed, as it cannot carry another request.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::ApiError;

/// Idle upstream connections each event loop keeps per upstream. A request that finds no
/// idle connection opens one: without a bound, 1,000 callers left about 1,500 upstream
/// connections open (docs/PERFORMANCE.md). Busy connections are not bounded by this, only
/// those kept.
const IDLE_PER_LOOP: usize = 256;
/// How long after its last answer an idle connection may carry another request; older
/// ones are closed when next met (there is no sweeper: an upstream closes the connections
/// it no longer wants, and a handle to a closed one is a few bytes).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long opening a connection (and its TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A failure to reach an upstream is written to stderr at most this often per upstream:
/// operators learn why (refused, a certificate the CAs do not sign), and a down upstream
/// under load does not flood the log.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Where an upstream is: checked once, when the configuration is loaded.
#[derive(Clone, Debug)]
pub struct Target {
    /// What the operator calls it (the upstream's name), in reports.
    name: Arc<str>,
    /// `host:port`, the port defaulting to 80 (443 for `https`): what is connected to.
    address: Arc<str>,
    /// The `Host` header: the authority as configured.
    host: HeaderValue,
    /// The base URL's path, without a trailing slash; routes are appended to it.
    prefix: String,
    /// For `https://`: the name the certificate must carry, and the client configuration
    /// in force ([`Target::use_tls`]), shared by the target's clones.
    tls: Option<(ServerName<'static>, Arc<RwLock<Option<Loaded>>>)>,
    /// When a failure to connect was last reported, in seconds since the epoch.
    reported: Arc<AtomicU64>,
}

/// A TLS client configuration in force, and the pool key of the connections made with it:
/// each configuration loaded gets a key of its own, so that a connection never serves an
/// upstream that trusts differently, nor outlives a reload of its own upstream's files.
#[derive(Clone, Debug)]
struct Loaded {
    config: Arc<rustls::ClientConfig>,
    pool_key: Arc<str>,
}

/// How a request reaches its target: the pool key, and for TLS what to connect with.
struct Way {
    pool_key: Arc<str>,
    tls: Option<(ServerName<'static>, Arc<rustls::ClientConfig>)>,
}

/// Numbers the TLS configurations loaded, for their pool keys.
static TLS_LOADS: AtomicUsize = AtomicUsize::new(0);

impl Target {
    /// The target of an `http://` or `https://` URL (already checked by
    /// `config::Upstream::new`). An `https` target connects only once given its TLS
    /// configuration ([`Target::use_tls`]).
    pub fn new(uri: &Uri) -> anyhow::Result<Target> {
        let authority = uri.authority().context("the URL has no host")?;
        let host = HeaderValue::from_str(authority.as_str()).context("the host is not valid")?;
        let (default_port, tls) = match uri.scheme_str() {
            Some("http") => (80, None),
            Some("https") => (
                443,
                Some((
                    crate::tls::server_name("the upstream", authority.host())?,
                    Arc::new(RwLock::new(None)),
                )),
            ),
            _ => anyhow::bail!("the URL must start with http:// or https://"),
        };
        let address: Arc<str> = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(default_port)
        )
        .into();
        Ok(Target {
            name: Arc::clone(&address),
            address,
            host,
            prefix: uri.path().trim_end_matches('/').to_string(),
            tls,
            reported: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Names the target in reports (by default its address).
    pub fn named(mut self, name: &str) -> Target {
        self.name = name.into();
        self
    }

    /// Whether connections to this target use TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Puts `config` in force for this `https` target's new connections (and those of its
    /// clones); connections made with an earlier one are not reused.
    pub fn use_tls(&self, config: Arc<rustls::ClientConfig>) -> anyhow::Result<()> {
        let Some((_, slot)) = &self.tls else {
            anyhow::bail!("TLS settings are for https:// upstreams only");
        };
        let pool_key = format!(
            "https://{}#{}",
            self.address,
            TLS_LOADS.fetch_add(1, Ordering::Relaxed)
        )
        .into();
        *slot.write().unwrap_or_else(PoisonError::into_inner) = Some(Loaded { config, pool_key });
        Ok(())
    }

    /// The pool key and TLS configuration a request uses now.
    fn way(&self) -> anyhow::Result<Way> {
        let Some((name, slot)) = &self.tls else {
            return Ok(Way {
                pool_key: Arc::clone(&self.address),
                tls: None,
            });
        };
        let loaded = slot.read().unwrap_or_else(PoisonError::into_inner);
        let Some(l) = loaded.as_ref() else {
            anyhow::bail!("no TLS settings were loaded for this https upstream");
        };
        Ok(Way {
            pool_key: Arc::clone(&l.pool_key),
            tls: Some((name.clone(), Arc::clone(&l.config))),
        })
    }

    /// The origin-form URI of `route` (a path starting with `/`) on this upstream: a fixed
    /// route under no prefix is used as it is, without a parse.
    fn uri(&self, route: Route<'_>) -> Result<Uri, hyper::http::Error> {
        match route {
            Route::Fixed(r) if self.prefix.is_empty() => Ok(Uri::from_static(r)),
            Route::Fixed(r) | Route::Made(r) => Ok(Uri::try_from(format!("{}{r}", self.prefix))?),
        }
    }

    /// Writes why a connection to this upstream failed, unless that was done less than
    /// [`REPORT_EVERY`] ago.
    fn report(&self, error: &anyhow::Error) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.reported.load(Ordering::Relaxed);
        if now.saturating_sub(last) < REPORT_EVERY.as_secs() {
            return;
        }
        if self
            .reported
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            eprintln!(
                "warden serve: cannot reach upstream {:?} at {}: {error:#} (callers get 502; reported at most once a minute)",
                self.name, self.address
            );
        }
    }
}

/// A route on an upstream: fixed (the OpenAI-compatible endpoints) or made per request
/// (KServe's model paths).
pub enum Route<'a> {
    Fixed(&'static str),
    Made(&'a str),
}

/// Sends one request upstream and waits (until `deadline`) for its response head. Any
/// failure, or a status other than 2xx, is a generic 502 (504 past the deadline): what
/// went wrong upstream is not the caller's business.
pub async fn send(
    target: &Target,
    method: Method,
    route: Route<'_>,
    body: Bytes,
    stream: bool,
    deadline: tokio::time::Instant,
) -> Result<Response<UpstreamBody>, ApiError> {
    let uri = target.uri(route).map_err(|_| ApiError::upstream())?;
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    let h = req.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        ACCEPT,
        HeaderValue::from_static(if stream {
            "text/event-stream"
        } else {
            "application/json"
        }),
    );
    let resp = match tokio::time::timeout_at(deadline, request(target, req)).await {
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

/// Sends `req` (origin-form URI; its `Host` is set here) to `target` on an idle pooled
/// connection, or on a new one. A request refused unsent by a pooled connection (closed by
/// the upstream meanwhile) is sent again on a new one; nothing else is retried.
pub async fn request(
    target: &Target,
    mut req: Request<Full<Bytes>>,
) -> anyhow::Result<Response<UpstreamBody>> {
    req.headers_mut().insert(HOST, target.host.clone());
    let way = target.way()?;
    while let Some(mut sender) = take_idle(&way.pool_key) {
        if sender.ready().await.is_err() {
            continue;
        }
        match sender.try_send_request(req).await {
            Ok(resp) => return Ok(lease(resp, sender, way.pool_key)),
            Err(mut e) => match e.take_message() {
                Some(unsent) => req = unsent,
                None => return Err(e.into_error().into()),
            },
        }
    }
    let mut sender = match tokio::time::timeout(CONNECT_TIMEOUT, connect(target, &way)).await {
        Ok(Ok(sender)) => sender,
        Ok(Err(e)) => {
            target.report(&e);
            return Err(e);
        }
        Err(_) => {
            let e = anyhow::anyhow!(
                "connecting took longer than {} s",
                CONNECT_TIMEOUT.as_secs()
            );
            target.report(&e);
            return Err(e);
        }
    };
    // With TLS 1.3 an upstream refuses a client certificate after the handshake, so
    // that refusal shows here: reported as well.
    let resp = match sender.send_request(req).await {
        Ok(resp) => resp,
        Err(e) => {
            let e = anyhow::Error::from(e).context("a new connection failed before the answer");
            target.report(&e);
            return Err(e);
        }
    };
    Ok(lease(resp, sender, way.pool_key))
}

/// A new connection to `target`: TCP, then TLS for an `https` target.
async fn connect(target: &Target, way: &Way) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(&*target.address).await?;
    tcp.set_nodelay(true)?;
    match &way.tls {
        None => handshake(tcp).await,
        Some((name, config)) => {
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name.clone(), tcp)
                .await
                .context("TLS with the upstream")?;
            handshake(tls).await
        }
    }
}

/// HTTP/1.1 on a new connection, driven by a task of its own.
async fn handshake<I>(io: I) -> anyhow::Result<SendRequest<Full<Bytes>>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        // An error ends this connection only; its request has already been told.
        let _ = conn.await;
    });
    Ok(sender)
}

fn lease(
    resp: Response<Incoming>,
    sender: SendRequest<Full<Bytes>>,
    pool_key: Arc<str>,
) -> Response<UpstreamBody> {
    resp.map(|inner| UpstreamBody {
        inner,
        lease: Some(Lease {
            sender,
            address: pool_key,
        }),
    })
}

/// An idle connection and since when it has been idle.
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

thread_local! {
    /// This thread's idle connections, per upstream address (a handful of upstreams: a
    /// list, not a map).
    static IDLE: RefCell<Vec<(Arc<str>, VecDeque<Idle>)>> = const { RefCell::new(Vec::new()) };
}

/// The most recently used idle connection to `address` still open and fresh, if any.
fn take_idle(address: &str) -> Option<SendRequest<Full<Bytes>>> {
    take_idle_at(address, Instant::now())
}

/// [`take_idle`] at `now`.
fn take_idle_at(address: &str, now: Instant) -> Option<SendRequest<Full<Bytes>>> {
    IDLE.with_borrow_mut(|pools| {
        let (_, idle) = pools.iter_mut().find(|(a, _)| &**a == address)?;
        while let Some(c) = idle.pop_back() {
            if !c.sender.is_closed() && now.saturating_duration_since(c.since) < IDLE_TIMEOUT {
                return Some(c.sender);
            }
        }
        None
    })
}

/// Keeps a connection whose answer was read to its end, dropping those idle too long, and
/// this one if the pool is full.
fn give_back(address: Arc<str>, sender: SendRequest<Full<Bytes>>) {
    give_back_at(address, sender, Instant::now());
}

/// [`give_back`] at `now`.
fn give_back_at(address: Arc<str>, sender: SendRequest<Full<Bytes>>, now: Instant) {
    IDLE.with_borrow_mut(|pools| {
        // A pool whose newest connection is stale holds nothing usable: dropped, so that
        // the pools of TLS configurations replaced by a reload, which nothing gives back
        // to any more, do not pile up.
        pools.retain(|(a, idle)| {
            *a == address
                || idle
                    .back()
                    .is_some_and(|c| now.saturating_duration_since(c.since) < IDLE_TIMEOUT)
        });
        let idle = match pools.iter().position(|(a, _)| *a == address) {
            Some(i) => &mut pools[i].1,
            None => {
                pools.push((address, VecDeque::new()));
                let last = pools.len() - 1;
                &mut pools[last].1
            }
        };
        // Oldest first: the stale are at the front.
        while idle
            .front()
            .is_some_and(|c| now.saturating_duration_since(c.since) >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        if idle.len() < IDLE_PER_LOOP {
            idle.push_back(Idle { sender, since: now });
        }
    });
}

struct Lease {
    sender: SendRequest<Full<Bytes>>,
    address: Arc<str>,
}

/// An upstream's answer body. Read to its end, it puts its connection back in the pool.
pub struct UpstreamBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            None => {
                if let Some(l) = self.lease.take() {
                    give_back(l.address, l.sender);
                }
            }
            // A broken answer: its connection is not reused.
            Some(Err(_)) => self.lease = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn target(port: u16, prefix: &str) -> Target {
        Target::new(&format!("http://127.0.0.1:{port}{prefix}").parse().unwrap()).unwrap()
    }

    fn post(route: &'static str) -> Request<Full<Bytes>> {
        let mut r = Request::new(Full::new(Bytes::from_static(b"{}")));
        *r.method_mut() = Method::POST;
        *r.uri_mut() = Uri::from_static(route);
        r
    }

    #[test]
    fn targets_default_the_port_and_keep_the_prefix() {
        let t = Target::new(&"http://10.0.0.2/base/".parse().unwrap()).unwrap();
        assert_eq!(&*t.address, "10.0.0.2:80");
        assert_eq!(t.host, "10.0.0.2");
        assert_eq!(
            t.uri(Route::Fixed("/v1/models")).unwrap(),
            "/base/v1/models"
        );
        let t = Target::new(&"http://[::1]:8000".parse().unwrap()).unwrap();
        assert_eq!(&*t.address, "[::1]:8000");
        assert_eq!(t.uri(Route::Fixed("/v1/models")).unwrap(), "/v1/models");
        assert_eq!(
            t.uri(Route::Made("/v2/models/a/infer")).unwrap(),
            "/v2/models/a/infer"
        );
    }

    /// A server on a new port that hands each connection it accepts, with its number (from
    /// 0), to `serve`; the count of connections accepted so far.
    async fn serve_each<F, Fut>(serve: F) -> (u16, Arc<std::sync::atomic::AtomicUsize>)
    where
        F: Fn(tokio::net::TcpStream, usize) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(serve(s, n));
            }
        });
        (port, accepted)
    }

    /// An upstream that answers every request on a connection with the number of the
    /// connection it came on, and the path asked for; `close_after` answers per connection
    /// (then it closes the connection without a word).
    async fn upstream(close_after: usize) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        serve_each(move |mut s, n| async move {
            for _ in 0..close_after {
                let Some(head) = read_post(&mut s).await else {
                    return;
                };
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                let body = format!("{n} {path}");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        })
        .await
    }

    /// Reads one request `post` made (its head and 2-byte body); `None` when the
    /// connection ends first.
    async fn read_post(s: &mut tokio::net::TcpStream) -> Option<String> {
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(6).any(|w| w == b"\r\n\r\n{}") {
            let k = s.read(&mut buf).await.unwrap();
            if k == 0 {
                return None;
            }
            got.extend_from_slice(&buf[..k]);
        }
        Some(String::from_utf8_lossy(&got).into_owned())
    }

    async fn text(resp: Response<UpstreamBody>) -> String {
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_connection_read_to_the_end_is_reused_and_one_dropped_early_is_not() {
        let (port, accepted) = upstream(usize::MAX).await;
        let t = target(port, "");
        assert_eq!(text(request(&t, post("/a")).await.unwrap()).await, "0 /a");
        assert_eq!(text(request(&t, post("/b")).await.unwrap()).await, "0 /b");
        // An answer dropped before its end leaves the pool empty: a new connection next.
        drop(request(&t, post("/c")).await.unwrap());
        assert_eq!(text(request(&t, post("/d")).await.unwrap()).await, "1 /d");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn routes_go_under_the_upstreams_path() {
        let (port, _) = upstream(usize::MAX).await;
        let t = target(port, "/p/");
        for (route, asked) in [
            (Route::Fixed("/v1/x"), "/p/v1/x"),
            (Route::Made("/v2/models/m/infer"), "/p/v2/models/m/infer"),
        ] {
            let body = Bytes::from_static(b"{}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let sent = send(&t, Method::POST, route, body, false, deadline);
            // One connection, reused: its answers carry its number, 0.
            assert_eq!(text(sent.await.unwrap()).await, format!("0 {asked}"));
        }
    }

    #[tokio::test]
    async fn a_pooled_connection_closed_by_the_upstream_is_replaced() {
        let (port, accepted) = upstream(1).await;
        let t = target(port, "");
        for i in 0..3 {
            let got = text(request(&t, post("/x")).await.unwrap()).await;
            assert_eq!(got, format!("{i} /x"));
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    /// `n` client connections over in-memory streams, open for as long as the returned
    /// connection halves are kept (nothing is sent on them).
    async fn idle_senders(n: usize) -> (Vec<SendRequest<Full<Bytes>>>, Vec<impl Sized>) {
        let mut senders = Vec::new();
        let mut kept = Vec::new();
        for _ in 0..n {
            let (client, server) = tokio::io::duplex(64);
            let (sender, conn) = http1::handshake(TokioIo::new(client)).await.unwrap();
            senders.push(sender);
            kept.push((conn, server));
        }
        (senders, kept)
    }

    fn idle_count(address: &str) -> usize {
        IDLE.with_borrow(|pools| {
            pools
                .iter()
                .find(|(a, _)| &**a == address)
                .map_or(0, |(_, idle)| idle.len())
        })
    }

    /// At most `IDLE_PER_LOOP` idle connections are kept per upstream; the rest are
    /// closed when given back.
    #[tokio::test]
    async fn the_pool_keeps_at_most_its_cap() {
        let address: Arc<str> = "cap.test:80".into();
        let (senders, _kept) = idle_senders(IDLE_PER_LOOP + 10).await;
        let now = Instant::now();
        for s in senders {
            give_back_at(Arc::clone(&address), s, now);
        }
        assert_eq!(idle_count(&address), IDLE_PER_LOOP);
        let mut taken = 0;
        while take_idle_at(&address, now).is_some() {
            taken += 1;
        }
        assert_eq!(taken, IDLE_PER_LOOP);
    }

    /// An idle connection is reused within `IDLE_TIMEOUT` of its last answer and not
    /// after; one gone stale is dropped when the next is given back.
    #[tokio::test]
    async fn an_idle_connection_is_reused_only_while_fresh() {
        let address: Arc<str> = "fresh.test:80".into();
        let (mut senders, _kept) = idle_senders(3).await;
        let t0 = Instant::now();
        let just_in_time = t0 + IDLE_TIMEOUT - Duration::from_millis(1);
        give_back_at(Arc::clone(&address), senders.pop().unwrap(), t0);
        assert!(take_idle_at(&address, just_in_time).is_some());
        give_back_at(Arc::clone(&address), senders.pop().unwrap(), t0);
        assert!(take_idle_at(&address, t0 + IDLE_TIMEOUT).is_none());
        assert_eq!(idle_count(&address), 0, "the stale one was closed");
        give_back_at(Arc::clone(&address), senders.pop().unwrap(), t0);
        let (newer, _kept_too) = idle_senders(1).await;
        let later = t0 + IDLE_TIMEOUT;
        give_back_at(
            Arc::clone(&address),
            newer.into_iter().next().unwrap(),
            later,
        );
        assert_eq!(
            idle_count(&address),
            1,
            "the stale one was dropped on give-back"
        );
        assert!(take_idle_at(&address, later).is_some());
    }

    /// The pool of a key nothing gives back to any more (a TLS configuration replaced by
    /// a reload) goes once its newest connection is stale; a fresh one stays.
    #[tokio::test]
    async fn a_pool_gone_stale_is_dropped_when_another_is_given_back_to() {
        let (old, fresh, live): (Arc<str>, Arc<str>, Arc<str>) = (
            "old.test:80".into(),
            "fresh2.test:80".into(),
            "live.test:80".into(),
        );
        let (mut senders, _kept) = idle_senders(3).await;
        let t0 = Instant::now();
        give_back_at(Arc::clone(&old), senders.pop().unwrap(), t0);
        let later = t0 + IDLE_TIMEOUT;
        give_back_at(Arc::clone(&fresh), senders.pop().unwrap(), later);
        let keys = || {
            IDLE.with_borrow(|pools| pools.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>())
        };
        assert!(!keys().contains(&old.to_string()), "{:?}", keys());
        give_back_at(Arc::clone(&live), senders.pop().unwrap(), later);
        assert!(keys().contains(&fresh.to_string()), "{:?}", keys());
        assert_eq!(idle_count(&fresh), 1);
    }

    /// A connection whose other end has gone is not taken from the pool.
    #[tokio::test]
    async fn a_closed_idle_connection_is_not_taken() {
        let address: Arc<str> = "closed.test:80".into();
        let (mut senders, kept) = idle_senders(1).await;
        let now = Instant::now();
        give_back_at(Arc::clone(&address), senders.pop().unwrap(), now);
        drop(kept);
        assert!(take_idle_at(&address, now).is_none());
    }

    /// A pooled connection whose upstream went away after it was last checked (so it is
    /// taken from the pool, and accepts the request) hands the request back unsent when
    /// it finds the end; the request goes again on a new connection, once.
    #[tokio::test]
    async fn a_request_refused_unsent_by_a_dead_pooled_connection_goes_on_a_new_one() {
        let (port, accepted) = upstream(usize::MAX).await;
        let t = target(port, "");
        let key = t.way().unwrap().pool_key;
        let (client, server) = tokio::io::duplex(4096);
        let (sender, conn) = http1::handshake(TokioIo::new(client)).await.unwrap();
        let driven = tokio::spawn(conn);
        // Let the connection's task run until it waits for a request.
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        give_back(Arc::clone(&key), sender);
        // The upstream's end goes; nothing has run since, so the pool cannot know.
        drop(server);
        assert_eq!(idle_count(&key), 1);
        let got = text(request(&t, post("/x")).await.unwrap()).await;
        assert_eq!(
            got, "0 /x",
            "answered by the upstream, on its first connection"
        );
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The dead connection's task ended; the new connection went back to the pool.
        assert!(driven.await.is_ok());
        assert_eq!(idle_count(&key), 1);
    }

    /// A request that reached the upstream is never sent twice, even when the upstream
    /// then closes its pooled connection without an answer: an error, one request seen.
    #[tokio::test]
    async fn a_request_sent_and_left_unanswered_is_an_error_not_sent_again() {
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&seen);
        let (port, _) = serve_each(move |mut s, _| {
            let count = Arc::clone(&count);
            async move {
                for answered in [true, false] {
                    if read_post(&mut s).await.is_none() {
                        return;
                    }
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if answered {
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        s.write_all(answer.as_bytes()).await.unwrap();
                    }
                }
                // The second request read, then the connection closed unanswered.
            }
        })
        .await;
        let t = target(port, "");
        assert_eq!(text(request(&t, post("/a")).await.unwrap()).await, "ok");
        assert!(request(&t, post("/b")).await.is_err());
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_error_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(request(&target(port, ""), post("/x")).await.is_err());
    }
}
