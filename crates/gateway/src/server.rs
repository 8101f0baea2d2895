//! The listener: TLS handshakes, HTTP/1.1 connections with header and send timeouts,
//! graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::audit::{Digests, Recorder};
use crate::balance::{Lanes, Live, OpenConnections};
use crate::config::GatewayConfig;
use crate::conn::{ClientIdentity, Connection};
use crate::control::Control;
use crate::deadline::SendDeadline;
use crate::sharded::Swapped;
use crate::tls::{PrincipalSource, ServerTls};

/// How long a client may take to finish the TLS handshake or send a request's headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish when the server stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a request needs, shared by all of them.
pub struct Gateway {
    pub config: GatewayConfig,
    pub control: Arc<Control>,
    pub recorder: Recorder,
    pub digests: Digests,
    /// Models run by the sandboxed runtime (KServe v2); the others go upstream.
    pub local: crate::local::LocalModels,
    pub limits: Arc<crate::limits::Limits>,
    /// Request counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Checks JWT bearer tokens, when configured.
    pub jwt: Option<Arc<crate::jwt::JwtVerifier>>,
    /// Input guards run on OpenAI-compatible requests.
    pub guards: crate::guard::Guards,
    /// The authorisation policies (Cedar), swapped whole when their file changes.
    policies: Swapped<crate::policy::Policies>,
    /// Inference connections open on each event loop.
    pub open_connections: OpenConnections,
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        control: Arc<Control>,
        recorder: Recorder,
        digests: Digests,
    ) -> anyhow::Result<Gateway> {
        config.check()?;
        let limits = crate::limits::Limits::new(config.limits.clone());
        let open_connections = crate::balance::open_connections(event_loops(config.event_loops));
        Ok(Gateway {
            limits,
            metrics: crate::metrics::Metrics::default(),
            jwt: None,
            guards: crate::guard::Guards::default(),
            policies: Swapped::new(Arc::new(crate::policy::Policies::default_policy()?)),
            config,
            control,
            recorder,
            digests,
            local: crate::local::LocalModels::default(),
            open_connections,
        })
    }
}

impl Gateway {
    /// The policies in force now.
    pub fn policies(&self) -> Arc<crate::policy::Policies> {
        self.policies.get()
    }

    /// Puts `policies` in force for the requests that start from now on.
    pub fn set_policies(&self, policies: crate::policy::Policies) {
        self.policies.set(Arc::new(policies));
    }

    /// Decides `req` with the policies in force now.
    pub fn authorize(&self, req: &crate::policy::AuthzRequest<'_>) -> Arc<crate::policy::Decision> {
        self.policies.with(|p| p.authorize(req))
    }
}

/// How many event loops to run: `configured`, or with 0 one per core the process may run
/// on (its CPU affinity and cgroup quota, as the standard library counts them).
pub fn event_loops(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
}

/// Serves until `shutdown` completes, then lets open connections finish (for a while).
/// With TLS, a verified client certificate fills `Connection::client`.
///
/// Connections are served by one event loop per core, each a single-threaded runtime on a
/// thread of its own accepting from the same socket (as nginx runs one worker per core): a
/// connection's requests, its upstream connections and their timers stay on one thread,
/// with none of a work-stealing scheduler's hand-offs between threads (which cost the
/// gateway about a tenth of its CPU per request, docs/PERFORMANCE.md). A loop holding more
/// than its share of connections hands new ones to the loop holding fewest (`balance`).
/// The caller's runtime only waits for `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<ServerTls>,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let principal_from = tls.as_ref().map(|t| t.principal_from).unwrap_or_default();
    // Each connection holds a permit: at the limit the loops stop accepting, and new
    // connections wait in the kernel's backlog (slow or idle clients cannot pile up
    // without bound; idle ones are closed by the header timeout, and ones that stop
    // reading their answer by the send timeout).
    let slots = match gateway.config.max_connections {
        0 => tokio::sync::Semaphore::MAX_PERMITS,
        n => n,
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(slots));
    let acceptor = tls.map(|t| TlsAcceptor::from(t.config));
    let (stop_tx, stop_rx) = watch::channel(false);
    let socket = listener.into_std()?;
    let (lanes, queues) = Lanes::new(Arc::clone(&gateway.open_connections));
    let mut finished = Vec::with_capacity(queues.len());
    for (i, handed) in queues.into_iter().enumerate() {
        let shared = Shared {
            slots: Arc::clone(&slots),
            acceptor: acceptor.clone(),
            principal_from,
            gateway: Arc::clone(&gateway),
            stop: stop_rx.clone(),
            lanes: Arc::clone(&lanes),
        };
        let socket = socket.try_clone()?;
        let (done, wait) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("serve-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| {
                        rt.block_on(async {
                            let listener = TcpListener::from_std(socket)?;
                            accept_loop(i, listener, handed, shared).await;
                            Ok(())
                        })
                    });
                if let Err(e) = &result {
                    // Said now: the other loops go on serving until the server stops.
                    eprintln!("warden serve: event loop {i} of the listener stopped: {e:#}");
                }
                let _ = done.send(result);
            })?;
        finished.push(wait);
    }
    drop(socket);
    shutdown.await;
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    for wait in finished {
        match wait.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e.context("an event loop of the listener failed")),
            Err(_) => result = Err(anyhow::anyhow!("an event loop of the listener stopped")),
        }
    }
    result
}

/// What every event loop shares.
struct Shared {
    slots: Arc<tokio::sync::Semaphore>,
    acceptor: Option<TlsAcceptor>,
    principal_from: PrincipalSource,
    gateway: Arc<Gateway>,
    stop: watch::Receiver<bool>,
    lanes: Arc<Lanes<Accepted>>,
}

/// A connection accepted, with its place under the connection limit and its count on the
/// loop that serves it: handed to another loop when the one that accepted it holds more
/// than its share (`balance`).
struct Accepted {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    live: Live<Accepted>,
}

/// One event loop (`lane` of the loops): accepts until told to stop, serving what it
/// accepts or handing it to a loop with fewer connections, and serves what other loops
/// hand it; then lets its connections finish (for a while).
async fn accept_loop(
    lane: usize,
    listener: TcpListener,
    mut handed: mpsc::UnboundedReceiver<Accepted>,
    shared: Shared,
) {
    let mut stopping = shared.stop.clone();
    let mut conns = JoinSet::new();
    loop {
        if *stopping.borrow() {
            break;
        }
        // A dropped sender (the serving future dropped) stops the loop as `true` does.
        tokio::select! {
            changed = stopping.changed() => match changed {
                Ok(()) => continue,
                Err(_) => break,
            },
            Some(accepted) = handed.recv() => shared.start(&mut conns, accepted),
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            // Accepts only under the connection limit: at the limit new connections wait
            // in the kernel's backlog. Dropped unfinished when another branch is taken:
            // the permit goes back, and `accept` is cancel-safe.
            accepted = accept(&listener, &shared.slots) => match accepted {
                Ok(None) => break,
                Ok(Some((stream, peer, permit))) => {
                    let live = shared.lanes.assign(lane);
                    let to = live.lane();
                    let accepted = stream.into_std().map(|stream| Accepted { stream, peer, permit, live });
                    match accepted {
                        Ok(a) if to == lane => shared.start(&mut conns, a),
                        // A loop that stopped (the server is stopping) gives it back; this
                        // one serves it then, still counted on the other.
                        Ok(a) => if let Err(a) = shared.lanes.hand_over(to, a) {
                            shared.start(&mut conns, a);
                        },
                        Err(e) => eprintln!("warden serve: a connection from {peer}: {e}"),
                    }
                }
                Err(e) => {
                    eprintln!("warden serve: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    drop(handed);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

/// The next connection, once a place under the connection limit is free; `None` when the
/// limit's semaphore is closed.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<tokio::sync::Semaphore>,
) -> std::io::Result<Option<(tokio::net::TcpStream, SocketAddr, OwnedSemaphorePermit)>> {
    let Ok(permit) = Arc::clone(slots).acquire_owned().await else {
        return Ok(None);
    };
    let (stream, peer) = listener.accept().await?;
    Ok(Some((stream, peer, permit)))
}

impl Shared {
    /// Serves `accepted` on this loop: the TLS handshake, then its requests.
    fn start(&self, conns: &mut JoinSet<()>, accepted: Accepted) {
        let Accepted {
            stream,
            peer,
            permit,
            live,
        } = accepted;
        let stream = match tokio::net::TcpStream::from_std(stream) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("warden serve: a connection from {peer}: {e}");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let gw = Arc::clone(&self.gateway);
        let stop = self.stop.clone();
        let acceptor = self.acceptor.clone();
        let principal_from = self.principal_from;
        conns.spawn(async move {
            let _held = (permit, live);
            match acceptor {
                Some(acceptor) => {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        let client = client_identity(tls.get_ref().1, principal_from, peer);
                        let conn = Connection::new(peer, client, true);
                        connection(tls, conn, gw, stop).await;
                    }
                }
                None => connection(stream, Connection::new(peer, None, false), gw, stop).await,
            }
        });
    }
}

/// The identity the peer's verified certificate names; none without a certificate, or
/// (logged) when it names no usable principal.
fn client_identity(
    session: &rustls::ServerConnection,
    from: PrincipalSource,
    peer: SocketAddr,
) -> Option<ClientIdentity> {
    match crate::tls::peer_identity(session.peer_certificates(), from) {
        Ok(identity) => identity,
        Err(e) => {
            eprintln!("warden serve: the client certificate from {peer} is not used: {e}");
            None
        }
    }
}

async fn connection<I>(io: I, conn: Connection, gw: Arc<Gateway>, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A client that stops reading its answer is cut after `send_timeout` without progress.
    let io = SendDeadline::new(io, gw.config.send_timeout);
    let conn = Arc::new(conn);
    let service =
        service_fn(move |req| crate::service::handle(Arc::clone(&gw), Arc::clone(&conn), req));
    let http = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(64 * 1024)
        // Vectored writes stay on (hyper's default for rustls): flattening would copy each
        // answer whole into hyper's buffer, up to `max_response_bytes` more memory per
        // answer, for 0.7% fewer instructions on small ones (docs/PERFORMANCE.md).
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(http);
    tokio::select! {
        _ = http.as_mut() => {}
        _ = stop.changed() => {
            http.as_mut().graceful_shutdown();
            let _ = http.await;
        }
    }
}
