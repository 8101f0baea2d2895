//! Upstreams over TLS, on real handshakes on 127.0.0.1: a connection to an `https://`
//! upstream trusts only the CA file of that upstream's settings, presents Warden's client
//! certificate to an upstream that requires one, speaks TLS 1.3 unless 1.2 is allowed, and
//! a pooled connection never carries a request of an upstream that trusts differently. The
//! upstream is hyper's HTTP/1.1 server behind rustls, the PKI made at test time with rcgen.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Ca, Files, Leaf};
use gateway::config::{Protocol, Transport, Upstream};
use gateway::tls::{ClientAuth, PrincipalSource, TlsReloader};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const WAIT: Duration = Duration::from_secs(10);

/// An HTTPS upstream that answers every request `{"ok":true}`; its port.
async fn upstream(config: Arc<rustls::ServerConfig>) -> u16 {
    counted_upstream(config).await.0
}

/// [`upstream`], and how many connections it has accepted.
async fn counted_upstream(config: Arc<rustls::ServerConfig>) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(config);
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let answer = service_fn(|_: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"{\"ok\":true}",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), answer)
                    .await;
            });
        }
    });
    (port, accepted)
}

/// The upstream as the gateway's configuration makes it, its TLS files read.
fn configured(port: u16, transport: Transport) -> anyhow::Result<Upstream> {
    let u = Upstream::new(
        "model-server",
        &format!("https://localhost:{port}"),
        Protocol::OpenAi,
        vec!["m".into()],
        transport,
    )?;
    u.load_tls()?;
    Ok(u)
}

/// One chat request through the gateway's upstream client: the answer, or the error with
/// its causes.
async fn ask(u: &Upstream) -> Result<String, String> {
    let mut req = Request::new(Full::new(Bytes::from_static(b"{}")));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = Uri::from_static("/v1/chat/completions");
    let call = async {
        let resp = gateway::proxy::request(&u.target, req)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8(body.to_bytes().to_vec()).unwrap())
    };
    tokio::time::timeout(WAIT, call)
        .await
        .map_err(|_| "timed out".to_string())?
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn trusting(ca: PathBuf) -> Transport {
    Transport {
        ca: Some(ca),
        ..Transport::default()
    }
}

fn with_identity(ca: PathBuf, dir: &Path, leaf: &Leaf) -> Transport {
    Transport {
        client_cert: Some(write(dir, "client.pem", &leaf.cert_pem)),
        client_key: Some(write(dir, "client.key", &leaf.key_pem)),
        ..trusting(ca)
    }
}

#[tokio::test]
async fn an_upstream_that_requires_a_client_certificate_gets_wardens() {
    let (ca, client_ca) = (Ca::new("upstream CA"), Ca::new("client CA"));
    let files = Files::new(&ca.server(), Some(&client_ca));
    let server = TlsReloader::new(files.mtls(ClientAuth::Required, PrincipalSource::CommonName))
        .unwrap()
        .config();
    let port = upstream(server).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);

    let warden = client_ca.client(Some("warden"), vec![]);
    let with_cert = configured(port, with_identity(ca_file.clone(), dir.path(), &warden));
    assert_eq!(ask(&with_cert.unwrap()).await.unwrap(), "{\"ok\":true}");

    // Without a certificate, the upstream refuses the connection.
    let without = configured(port, trusting(ca_file.clone())).unwrap();
    let e = ask(&without).await.unwrap_err();
    assert!(!e.is_empty());

    // A certificate the upstream's client CA did not sign is refused too.
    let stranger = Ca::new("another client CA").client(Some("warden"), vec![]);
    let other_dir = tempfile::tempdir().unwrap();
    let wrong = configured(port, with_identity(ca_file, other_dir.path(), &stranger)).unwrap();
    assert!(ask(&wrong).await.is_err());
}

#[tokio::test]
async fn an_upstream_certificate_from_another_ca_is_refused() {
    let ca = Ca::new("upstream CA");
    let files = Files::new(&ca.server(), None);
    let port = upstream(TlsReloader::new(files.settings()).unwrap().config()).await;
    let dir = tempfile::tempdir().unwrap();
    let other = write(dir.path(), "other.pem", &Ca::new("someone else").pem);

    let u = configured(port, trusting(other)).unwrap();
    let e = ask(&u).await.unwrap_err();
    assert!(
        e.contains("TLS with the upstream") && e.contains("certificate"),
        "{e}"
    );

    // The right CA, but a name the certificate does not carry.
    let right = write(dir.path(), "ca.pem", &ca.pem);
    let by_ip = Upstream::new(
        "model-server",
        &format!("https://127.0.0.1:{port}"),
        Protocol::OpenAi,
        vec!["m".into()],
        trusting(right),
    )
    .unwrap();
    by_ip.load_tls().unwrap();
    let e = ask(&by_ip).await.unwrap_err();
    assert!(e.contains("certificate"), "{e}");
}

#[tokio::test]
async fn a_pooled_connection_never_serves_an_upstream_that_trusts_differently() {
    let ca = Ca::new("upstream CA");
    let files = Files::new(&ca.server(), None);
    let port = upstream(TlsReloader::new(files.settings()).unwrap().config()).await;
    let dir = tempfile::tempdir().unwrap();
    let trusted = configured(port, trusting(write(dir.path(), "ca.pem", &ca.pem))).unwrap();
    let other = write(dir.path(), "other.pem", &Ca::new("someone else").pem);
    let distrustful = configured(port, trusting(other)).unwrap();

    // The first request leaves its connection idle in this thread's pool; the second
    // upstream, on the same address, must make its own (and fail), not take it.
    assert_eq!(ask(&trusted).await.unwrap(), "{\"ok\":true}");
    assert!(ask(&distrustful).await.is_err());
    assert_eq!(ask(&trusted).await.unwrap(), "{\"ok\":true}");
}

#[tokio::test]
async fn a_tls12_upstream_needs_tls12_allowed() {
    let ca = Ca::new("upstream CA");
    let leaf = ca.server();
    let server = rustls::ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der.clone()],
            PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let port = upstream(Arc::new(server)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);

    let strict = configured(port, trusting(ca_file.clone())).unwrap();
    let e = ask(&strict).await.unwrap_err();
    assert!(e.contains("TLS with the upstream"), "{e}");

    let lenient = Transport {
        allow_tls12: true,
        ..trusting(ca_file)
    };
    let u = configured(port, lenient).unwrap();
    assert_eq!(ask(&u).await.unwrap(), "{\"ok\":true}");
}

#[tokio::test]
async fn changed_tls_files_go_in_force_without_a_restart_and_broken_ones_do_not() {
    let ca = Ca::new("upstream CA");
    let files = Files::new(&ca.server(), None);
    let (port, accepted) =
        counted_upstream(TlsReloader::new(files.settings()).unwrap().config()).await;
    let dir = tempfile::tempdir().unwrap();
    let other = Ca::new("someone else").pem;
    let ca_file = write(dir.path(), "ca.pem", &other);
    let u = Upstream::new(
        "model-server",
        &format!("https://localhost:{port}"),
        Protocol::OpenAi,
        vec!["m".into()],
        trusting(ca_file.clone()),
    )
    .unwrap();
    let mut tls_files = u.tls_files().unwrap();
    assert!(tls_files.reload().unwrap());
    assert!(!tls_files.reload().unwrap(), "nothing changed");
    assert!(ask(&u).await.is_err());

    // The right CA goes in force for the next connection.
    std::fs::write(&ca_file, &ca.pem).unwrap();
    assert!(tls_files.reload().unwrap());
    assert_eq!(ask(&u).await.unwrap(), "{\"ok\":true}");
    assert_eq!(ask(&u).await.unwrap(), "{\"ok\":true}");
    let before = accepted.load(Ordering::SeqCst);

    // A broken file is refused; what is in force stays, pooled connection and all.
    std::fs::write(&ca_file, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    assert!(tls_files.reload().is_err());
    assert_eq!(ask(&u).await.unwrap(), "{\"ok\":true}");
    assert_eq!(accepted.load(Ordering::SeqCst), before);

    // A changed set (another CA added) makes new connections: none made under the
    // previous files is reused.
    std::fs::write(&ca_file, format!("{}{other}", ca.pem)).unwrap();
    assert!(tls_files.reload().unwrap());
    assert_eq!(ask(&u).await.unwrap(), "{\"ok\":true}");
    assert_eq!(accepted.load(Ordering::SeqCst), before + 1);
}

#[test]
fn a_client_key_of_another_certificate_is_refused_when_loaded() {
    let ca = Ca::new("client CA");
    let (one, two) = (ca.client(Some("a"), vec![]), ca.client(Some("b"), vec![]));
    let dir = tempfile::tempdir().unwrap();
    let transport = Transport {
        ca: Some(write(dir.path(), "ca.pem", &ca.pem)),
        client_cert: Some(write(dir.path(), "one.pem", &one.cert_pem)),
        client_key: Some(write(dir.path(), "two.key", &two.key_pem)),
        ..Transport::default()
    };
    let e = format!("{:#}", configured(9, transport).unwrap_err());
    assert!(
        e.contains("does not belong") && e.contains("two.key"),
        "{e}"
    );
    // The certificate parses as one.
    assert!(CertificateDer::from_pem_slice(one.cert_pem.as_bytes()).is_ok());
}
