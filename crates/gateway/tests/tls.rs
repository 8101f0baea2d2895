//! The gateway's TLS over real handshakes on 127.0.0.1: protocol versions, mutual TLS and
//! the principal it yields, certificate reloads, and (with `openssl` on PATH) what an
//! OpenSSL client fails to negotiate. The PKI is made at test time with rcgen.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Ca, Files, Leaf};
use gateway::tls::{ClientAuth, PrincipalSource, ServerTls, TlsReloader, TlsSettings};
use rcgen::{ExtendedKeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const WAIT: Duration = Duration::from_secs(10);

// ---- A minimal TLS server: reports each handshake, says who the client is, then echoes ----

struct Server {
    addr: SocketAddr,
    /// One per connection: `Ok(what the server wrote)` or `Err(handshake error)`.
    outcomes: mpsc::UnboundedReceiver<Result<String, String>>,
}

impl Server {
    async fn start(tls: ServerTls) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, outcomes) = mpsc::unbounded_channel();
        let from = tls.principal_from;
        let acceptor = TlsAcceptor::from(tls.config);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let mut tls = match tokio::time::timeout(WAIT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => return drop(tx.send(Err(e.to_string()))),
                        Err(_) => return drop(tx.send(Err("handshake timed out".into()))),
                    };
                    // What server.rs does after the handshake.
                    let who =
                        gateway::tls::peer_identity(tls.get_ref().1.peer_certificates(), from);
                    let who = match who {
                        Ok(Some(id)) => id.principal,
                        Ok(None) => "-".to_string(),
                        Err(e) => format!("!{e}"),
                    };
                    let _ = tx.send(Ok(who.clone()));
                    if tls.write_all(format!("{who}\n").as_bytes()).await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = tls.read(&mut buf).await {
                        if tls.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Server { addr, outcomes }
    }

    async fn outcome(&mut self) -> Result<String, String> {
        tokio::time::timeout(WAIT, self.outcomes.recv())
            .await
            .expect("the server saw no connection")
            .expect("the server stopped")
    }
}

// ---- The client ----

fn client_config(
    trust: &Ca,
    cert: Option<&Leaf>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(trust.pem.as_bytes()).unwrap())
        .unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match cert {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn tls13(trust: &Ca, cert: Option<&Leaf>) -> Arc<ClientConfig> {
    client_config(trust, cert, &[&rustls::version::TLS13])
}

/// Connects and reads the server's first line; an error if the handshake (including the
/// server's verdict on a client certificate, which TLS 1.3 delivers after the client's
/// side of the handshake) fails.
async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<(TlsStream<TcpStream>, String), String> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let fut = async {
        let mut tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let line = read_line(&mut tls).await?;
        Ok((tls, line))
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

async fn read_line(tls: &mut TlsStream<TcpStream>) -> Result<String, String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match tls.read(&mut byte).await {
            Ok(0) => return Err("closed".into()),
            Ok(_) if byte[0] == b'\n' => return Ok(String::from_utf8(line).unwrap()),
            Ok(_) => line.push(byte[0]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn served_leaf(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

fn reloader(settings: TlsSettings) -> Arc<TlsReloader> {
    Arc::new(TlsReloader::new(settings).unwrap())
}

fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().unwrap())
}

fn is_incompatible(outcome: Result<String, String>) -> String {
    let e = outcome.expect_err("the server accepted the handshake");
    assert!(e.contains("incompatible"), "{e}");
    e
}

// ---- Protocol versions ----

#[tokio::test]
async fn tls13_by_default_with_http11() {
    let ca = Ca::new("server CA");
    let files = Files::new(&ca.server(), None);
    let mut server = Server::start(reloader(files.settings()).server_tls()).await;
    let (tls, line) = connect(server.addr, tls13(&ca, None)).await.unwrap();
    assert_eq!(line, "-");
    let session = tls.get_ref().1;
    assert_eq!(session.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(server.outcome().await, Ok("-".into()));
}

#[tokio::test]
async fn tls12_only_when_allowed() {
    let ca = Ca::new("server CA");
    let files = Files::new(&ca.server(), None);
    let only12 = client_config(&ca, None, &[&rustls::version::TLS12]);

    let mut server = Server::start(reloader(files.settings()).server_tls()).await;
    assert!(connect(server.addr, Arc::clone(&only12)).await.is_err());
    is_incompatible(server.outcome().await);

    let mut settings = files.settings();
    settings.allow_tls12 = true;
    let mut server = Server::start(reloader(settings).server_tls()).await;
    let (tls, _) = connect(server.addr, only12).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    assert!(server.outcome().await.is_ok());
    // 1.3 is still preferred when both are allowed.
    let (tls, _) = connect(
        server.addr,
        client_config(&ca, None, rustls::DEFAULT_VERSIONS),
    )
    .await
    .unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_3)
    );
}

/// The old entry point still gives a working TLS 1.3 configuration without client auth.
#[tokio::test]
async fn server_config_compat() {
    let ca = Ca::new("server CA");
    let files = Files::new(&ca.server(), None);
    let config = gateway::tls::server_config(&files.cert(), &files.key(), false).unwrap();
    let server = Server::start(ServerTls::from(config)).await;
    let (tls, line) = connect(server.addr, tls13(&ca, None)).await.unwrap();
    assert_eq!(line, "-");
    assert_eq!(served_leaf(&tls), files_leaf(&files));
}

fn files_leaf(files: &Files) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(files.cert()).unwrap()
}

// ---- Mutual TLS ----

#[tokio::test]
async fn required_client_certificate() {
    let (server_ca, client_ca, other_ca) = (
        Ca::new("server CA"),
        Ca::new("client CA"),
        Ca::new("other CA"),
    );
    let files = Files::new(&server_ca.server(), Some(&client_ca));
    let tls = reloader(files.mtls(ClientAuth::Required, PrincipalSource::CommonName));
    let mut server = Server::start(tls.server_tls()).await;

    // No certificate: refused.
    let e = connect(server.addr, tls13(&server_ca, None))
        .await
        .unwrap_err();
    assert!(!e.is_empty());
    let e = server.outcome().await.unwrap_err();
    assert!(
        e.contains("NoCertificatesPresented") || e.contains("certificate"),
        "{e}"
    );

    // A certificate from a CA the server does not trust: refused.
    let stranger = other_ca.client(Some("alice"), vec![]);
    assert!(connect(server.addr, tls13(&server_ca, Some(&stranger)))
        .await
        .is_err());
    let e = server.outcome().await.unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");

    // A server certificate (no clientAuth usage) from the trusted CA: refused.
    let wrong_use = client_ca.leaf(Some("alice"), vec![], ExtendedKeyUsagePurpose::ServerAuth);
    assert!(connect(server.addr, tls13(&server_ca, Some(&wrong_use)))
        .await
        .is_err());
    assert!(server.outcome().await.is_err());

    // A good certificate: its CN is the principal.
    let alice = client_ca.client(Some("alice"), vec![dns("alice.corp.example")]);
    let (_, line) = connect(server.addr, tls13(&server_ca, Some(&alice)))
        .await
        .unwrap();
    assert_eq!(line, "alice");
    assert_eq!(server.outcome().await, Ok("alice".into()));

    // Verified, but naming no usable principal: connected without an identity.
    let nameless = client_ca.client(Some("not a name"), vec![]);
    let (_, line) = connect(server.addr, tls13(&server_ca, Some(&nameless)))
        .await
        .unwrap();
    assert!(
        line.starts_with("!") && line.contains("must be 1-64"),
        "{line}"
    );
}

#[tokio::test]
async fn principal_from_san() {
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let files = Files::new(&server_ca.server(), Some(&client_ca));
    let client = client_ca.client(
        Some("cn-name"),
        vec![
            dns("billing.corp.example"),
            SanType::URI("spiffe://corp.example/ns/ml/sa/billing".try_into().unwrap()),
            SanType::Rfc822Name("alice@corp.example".try_into().unwrap()),
        ],
    );
    for (from, want) in [
        (PrincipalSource::CommonName, "cn-name"),
        (PrincipalSource::SanDns, "billing.corp.example"),
        (PrincipalSource::SanUri, "billing"),
        (PrincipalSource::SanEmail, "alice@corp.example"),
    ] {
        let tls = reloader(files.mtls(ClientAuth::Required, from));
        let server = Server::start(tls.server_tls()).await;
        let (_, line) = connect(server.addr, tls13(&server_ca, Some(&client)))
            .await
            .unwrap();
        assert_eq!(line, want, "{from:?}");
    }
}

#[tokio::test]
async fn optional_client_certificate() {
    let (server_ca, client_ca, other_ca) = (
        Ca::new("server CA"),
        Ca::new("client CA"),
        Ca::new("other CA"),
    );
    let files = Files::new(&server_ca.server(), Some(&client_ca));
    let tls = reloader(files.mtls(ClientAuth::Optional, PrincipalSource::CommonName));
    let mut server = Server::start(tls.server_tls()).await;

    let (_, line) = connect(server.addr, tls13(&server_ca, None)).await.unwrap();
    assert_eq!(line, "-");
    assert_eq!(server.outcome().await, Ok("-".into()));

    let bob = client_ca.client(Some("bob"), vec![]);
    let (_, line) = connect(server.addr, tls13(&server_ca, Some(&bob)))
        .await
        .unwrap();
    assert_eq!(line, "bob");
    assert_eq!(server.outcome().await, Ok("bob".into()));

    // A certificate that does not verify is refused, not ignored.
    let stranger = other_ca.client(Some("bob"), vec![]);
    assert!(connect(server.addr, tls13(&server_ca, Some(&stranger)))
        .await
        .is_err());
    assert!(server
        .outcome()
        .await
        .unwrap_err()
        .contains("UnknownIssuer"));
}

#[tokio::test]
async fn mtls_over_tls12() {
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let files = Files::new(&server_ca.server(), Some(&client_ca));
    let mut settings = files.mtls(ClientAuth::Required, PrincipalSource::CommonName);
    settings.allow_tls12 = true;
    let server = Server::start(reloader(settings).server_tls()).await;
    let carol = client_ca.client(Some("carol"), vec![]);
    let config = client_config(&server_ca, Some(&carol), &[&rustls::version::TLS12]);
    let (tls, line) = connect(server.addr, config).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    assert_eq!(line, "carol");
    let config = client_config(&server_ca, None, &[&rustls::version::TLS12]);
    assert!(connect(server.addr, config).await.is_err());
}

// ---- Reloading ----

#[tokio::test]
async fn reload_serves_the_new_certificate() {
    let ca = Ca::new("server CA");
    let (first, second) = (ca.server(), ca.server());
    let files = Files::new(&first, None);
    let tls = reloader(files.settings());
    let server = Server::start(tls.server_tls()).await;

    assert!(!tls.reload().unwrap(), "nothing changed yet");
    let (mut old, _) = connect(server.addr, tls13(&ca, None)).await.unwrap();
    assert_eq!(served_leaf(&old), first.der);

    files.put_pair(&second);
    assert!(tls.reload().unwrap());
    assert!(!tls.reload().unwrap(), "reloaded once per change");
    let (new, _) = connect(server.addr, tls13(&ca, None)).await.unwrap();
    assert_eq!(served_leaf(&new), second.der);

    // The connection opened before the reload carries on.
    old.write_all(b"ping\n").await.unwrap();
    assert_eq!(read_line(&mut old).await.unwrap(), "ping");
    assert_eq!(served_leaf(&old), first.der);
}

#[tokio::test]
async fn failed_reload_keeps_the_old_certificate() {
    let ca = Ca::new("server CA");
    let (first, second) = (ca.server(), ca.server());
    let files = Files::new(&first, None);
    let tls = reloader(files.settings());
    let server = Server::start(tls.server_tls()).await;
    let served = || async { served_leaf(&connect(server.addr, tls13(&ca, None)).await.unwrap().0) };

    // A new certificate with the old key (a rotation caught half-way).
    std::fs::write(files.cert(), &second.cert_pem).unwrap();
    let e = format!("{:#}", tls.reload().unwrap_err());
    assert!(
        e.contains("does not belong") && e.contains("still served"),
        "{e}"
    );
    assert_eq!(served().await, first.der);

    // A key file that holds no key.
    std::fs::write(
        files.key(),
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = format!("{:#}", tls.reload().unwrap_err());
    assert!(e.contains("key.pem"), "{e}");
    assert_eq!(served().await, first.der);

    // An empty certificate file; a missing key file.
    std::fs::write(files.cert(), "").unwrap();
    assert!(format!("{:#}", tls.reload().unwrap_err()).contains("holds no certificate"));
    std::fs::write(files.cert(), &second.cert_pem).unwrap();
    std::fs::remove_file(files.key()).unwrap();
    assert!(tls.reload().is_err());
    assert_eq!(served().await, first.der);

    // Once both files are right, the new pair is served.
    std::fs::write(files.key(), &second.key_pem).unwrap();
    assert!(tls.reload().unwrap());
    assert_eq!(served().await, second.der);
}

#[tokio::test]
async fn reload_client_cas() {
    let (server_ca, ca1, ca2) = (
        Ca::new("server CA"),
        Ca::new("client CA 1"),
        Ca::new("client CA 2"),
    );
    let files = Files::new(&server_ca.server(), Some(&ca1));
    let tls = reloader(files.mtls(ClientAuth::Required, PrincipalSource::CommonName));
    let server = Server::start(tls.server_tls()).await;
    // One client configuration each, kept across connections: a client that could resume
    // its session would skip the check against the CAs in force.
    let old = tls13(&server_ca, Some(&ca1.client(Some("old"), vec![])));
    let new = tls13(&server_ca, Some(&ca2.client(Some("new"), vec![])));
    let who = |config: &Arc<ClientConfig>| {
        let config = Arc::clone(config);
        async move { connect(server.addr, config).await.map(|(_, line)| line) }
    };

    assert_eq!(who(&old).await.unwrap(), "old");
    assert_eq!(who(&old).await.unwrap(), "old");
    assert!(who(&new).await.is_err());

    // A broken bundle: the old CAs stay.
    std::fs::write(
        files.ca(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = format!("{:#}", tls.reload().unwrap_err());
    assert!(
        e.contains("still trusted") && e.contains("client-ca.pem"),
        "{e}"
    );
    assert_eq!(who(&old).await.unwrap(), "old");

    std::fs::write(files.ca(), &ca2.pem).unwrap();
    assert!(tls.reload().unwrap());
    assert!(who(&old).await.is_err());
    assert_eq!(who(&new).await.unwrap(), "new");
}

// ---- Settings ----

#[test]
fn bad_settings() {
    let (ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = ca.server();
    let files = Files::new(&server, Some(&client_ca));
    let err = |s: TlsSettings| format!("{:#}", TlsReloader::new(s).err().expect("accepted"));

    let mut s = files.settings();
    s.client_auth = ClientAuth::Required;
    assert!(err(s).contains("no client CA is set"));
    let mut s = files.settings();
    s.client_ca = Some(files.ca());
    assert!(err(s).contains("client certificates are off"));

    let mut s = files.settings();
    s.cert = files.dir.path().join("absent.pem");
    assert!(err(s).contains("absent.pem"));

    // The key of another certificate.
    let other = ca.server();
    std::fs::write(files.key(), &other.key_pem).unwrap();
    assert!(err(files.settings()).contains("does not belong"));
    std::fs::write(files.key(), &server.key_pem).unwrap();
    assert!(TlsReloader::new(files.settings()).is_ok());

    // A client CA bundle without certificates; a file too large to be one.
    std::fs::write(files.ca(), "").unwrap();
    assert!(
        err(files.mtls(ClientAuth::Optional, PrincipalSource::CommonName))
            .contains("holds no certificate")
    );
    std::fs::write(files.ca(), vec![b'A'; (1 << 20) + 1]).unwrap();
    assert!(
        err(files.mtls(ClientAuth::Optional, PrincipalSource::CommonName)).contains("larger than")
    );
}

// ---- What OpenSSL cannot negotiate ----

fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("note: openssl is not on PATH; the s_client checks are skipped");
    }
    ok
}

/// Runs `openssl s_client` against `addr` and returns whether it negotiated a session,
/// with its output.
async fn s_client(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &addr.to_string(),
        "-servername",
        "localhost",
    ])
    .args(args)
    .stdin(Stdio::null());
    let out = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || cmd.output()))
        .await
        .expect("openssl s_client hung")
        .unwrap()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let negotiated = text.contains("New, TLSv1");
    (negotiated && out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_cannot_negotiate_old_versions_or_weak_ciphers() {
    if !have_openssl() {
        return;
    }
    let ca = Ca::new("server CA");
    let files = Files::new(&ca.server(), None);
    let mut settings = files.settings();
    settings.allow_tls12 = true;
    // [default settings, TLS 1.2 allowed]
    let mut servers = [
        Server::start(reloader(files.settings()).server_tls()).await,
        Server::start(reloader(settings).server_tls()).await,
    ];
    // SECLEVEL=0 makes the client willing to offer what is being refused, so the refusal
    // is the server's (the server reports each failed handshake).
    let old = "DEFAULT:@SECLEVEL=0";
    let weak = "AES128-SHA:AES256-SHA:DES-CBC3-SHA:RC4-SHA:NULL:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:AES128-GCM-SHA256:@SECLEVEL=0";

    for (i, args) in [
        (0, vec!["-tls1", "-cipher", old]),
        (0, vec!["-tls1_1", "-cipher", old]),
        (0, vec!["-tls1_2"]),
        (1, vec!["-tls1", "-cipher", old]),
        (1, vec!["-tls1_1", "-cipher", old]),
        (1, vec!["-tls1_2", "-cipher", weak]),
    ] {
        let server = &mut servers[i];
        let (ok, text) = s_client(server.addr, &args).await;
        assert!(!ok, "{args:?} negotiated:\n{text}");
        let e = is_incompatible(server.outcome().await);
        eprintln!("{args:?}: refused ({e})");
    }

    let (ok, text) = s_client(servers[0].addr, &["-tls1_3"]).await;
    assert!(ok && text.contains("New, TLSv1.3"), "{text}");
    // The control: 1.2 with its strong suites works where it is allowed.
    let (ok, text) = s_client(servers[1].addr, &["-tls1_2"]).await;
    assert!(
        ok && text.contains("ECDHE-ECDSA-") && text.contains("GCM"),
        "{text}"
    );
}
