//! The floor under the gateway's speed: the same stack as `warden serve` (tokio, rustls
//! with the ring provider and TLS 1.3, hyper's HTTP/1 server, Warden's per-loop pool of upstream connections, `gateway::proxy`)
//! as a bare reverse proxy with none of Warden's layers: no authentication, policy, limits,
//! validation, shaping or ledger. `bench/gateway.sh` measures it beside Warden (BARE=1), so
//! that what the layers cost and what the stack itself costs are told apart.
//!
//!     bare_proxy CERT KEY LISTEN UPSTREAM
//!
//! e.g. `bare_proxy cert.pem key.pem 127.0.0.1:9443 http://127.0.0.1:8080`. It prints
//! `listening on https://LISTEN` once ready and forwards every request's method, path and
//! body to UPSTREAM, answering with the upstream's status and body.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::Uri;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Most bytes read of a request's or an answer's body.
const MAX_BODY: usize = 1 << 20;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cert, key, listen, upstream] = args.as_slice() else {
        anyhow::bail!("usage: bare_proxy CERT KEY LISTEN UPSTREAM");
    };
    let tls = gateway::tls::server_config(Path::new(cert), Path::new(key), false)?;
    let listen: SocketAddr = listen.parse().context("LISTEN is not an address")?;
    let upstream: Uri = upstream.parse().context("UPSTREAM is not a URL")?;
    let upstream = Arc::new(gateway::proxy::Target::new(&upstream)?);
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    println!("listening on https://{}", listener.local_addr()?);
    // As `warden serve` runs: one single-threaded event loop per core, all accepting from
    // the one socket, each with its own upstream pool.
    let acceptor = TlsAcceptor::from(tls);
    let loops = std::thread::available_parallelism().map_or(1, usize::from);
    let mut threads = Vec::with_capacity(loops);
    for _ in 0..loops {
        let (socket, acceptor, upstream) = (
            listener.try_clone()?,
            acceptor.clone(),
            Arc::clone(&upstream),
        );
        threads.push(std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(run(socket, acceptor, upstream)))
        }));
    }
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("an event loop panicked"))??;
    }
    Ok(())
}

async fn run(
    socket: std::net::TcpListener,
    acceptor: TlsAcceptor,
    upstream: Arc<gateway::proxy::Target>,
) -> anyhow::Result<()> {
    let listener = TcpListener::from_std(socket)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (acceptor, upstream) = (acceptor.clone(), Arc::clone(&upstream));
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |req| forward(Arc::clone(&upstream), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn forward(
    upstream: Arc<gateway::proxy::Target>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let fail = || {
        let mut r = Response::new(Full::new(Bytes::from_static(b"bad gateway")));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        r
    };
    let (parts, body) = req.into_parts();
    // Request bodies bounded at Warden's default (1 MiB), so that the floor reads them as
    // Warden does; answers too (the benchmark's are a few hundred bytes).
    let Ok(body) = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return Ok(fail());
    };
    let Ok(out) = Request::builder()
        .method(parts.method)
        .uri(parts.uri.path())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body))
    else {
        return Ok(fail());
    };
    let Ok(resp) = gateway::proxy::request(&upstream, out).await else {
        return Ok(fail());
    };
    let status = resp.status();
    let Ok(body) = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return Ok(fail());
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
