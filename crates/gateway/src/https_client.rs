//! A small HTTPS client for Warden's own calls out: the CLI to a server's admin API
//! (`warden --server URL`) and the gateway to an identity provider's JWKS. The server's
//! certificate is checked against a CA file the operator names (no system roots: these are
//! private services, reached through a private CA or a self-signed certificate), TLS 1.3
//! only; plain HTTP only to a loopback address. One request per connection, with a
//! deadline, and a bounded answer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// Largest answer read.
const MAX_ANSWER: usize = 16 << 20;
/// How long a request may take in all (a deploy unseals a release first).
const DEADLINE: Duration = Duration::from_secs(300);

/// Where a service is, and how to trust it.
pub struct HttpsClient {
    host: String,
    port: u16,
    /// The `Host` header: `host:port` as given.
    authority: String,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl HttpsClient {
    /// `url` is `https://host[:port]` (with `ca_pem`, the CA certificates to trust, PEM) or
    /// `http://127.0.0.1:port` (loopback only). A path, query or credentials in the URL
    /// are refused. `label` names the setting in errors (`--server`, `jwks_url`).
    pub fn new(label: &str, url: &str, ca_pem: Option<&[u8]>) -> anyhow::Result<HttpsClient> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{label} {url:?} is not a URL"))?;
        let authority = uri
            .authority()
            .with_context(|| format!("{label} {url:?} names no host"))?;
        if authority.as_str().contains('@')
            || !matches!(uri.path(), "" | "/")
            || uri.query().is_some()
        {
            bail!("{label} {url:?}: give only scheme, host and port (e.g. https://warden.internal:8444)");
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(match uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        let tls = match uri.scheme_str() {
            Some("https") => {
                let Some(pem) = ca_pem else {
                    bail!(
                        "{label} {url:?}: give the CA (or the server's own certificate) to trust"
                    );
                };
                let config = crate::tls::client_config(label, pem, None, false)?;
                let name = crate::tls::server_name(label, &host)?;
                Some((config, name))
            }
            Some("http") => {
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    bail!("{label} {url:?}: plain http only to a loopback address; use https");
                }
                None
            }
            _ => bail!("{label} {url:?} must start with https://"),
        };
        Ok(HttpsClient {
            host,
            port,
            authority: authority.as_str().to_string(),
            tls,
        })
    }

    /// One request; the status and the answer's body.
    pub fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.authority)
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(t) = token {
            let value = Zeroizing::new(format!("Bearer {t}"));
            let mut value =
                HeaderValue::from_str(&value).context("the token is not valid in a header")?;
            value.set_sensitive(true);
            req.headers_mut().insert(AUTHORIZATION, value);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            tokio::time::timeout(DEADLINE, self.send(req))
                .await
                .map_err(|_| {
                    anyhow::anyhow!("the server did not answer within {} s", DEADLINE.as_secs())
                })?
        })
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("connecting to {}", self.authority))?;
        match &self.tls {
            Some((config, name)) => {
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), tcp)
                    .await
                    .with_context(|| {
                        format!(
                            "TLS with {} (is the CA file the one that signed its certificate?)",
                            self.authority
                        )
                    })?;
                exchange(tls, req).await
            }
            None => exchange(tcp, req).await,
        }
    }
}

/// `GET url` (with a path and query), at most `max` bytes, from a server trusted as
/// [`HttpsClient::new`] says; the body of a 200 answer, or an error naming the status.
pub fn get(label: &str, url: &str, ca_pem: Option<&[u8]>, max: usize) -> anyhow::Result<Bytes> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("{label} {url:?} is not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        bail!("{label} {url:?} must be an absolute URL");
    };
    let client = HttpsClient::new(label, &format!("{scheme}://{authority}"), ca_pem)?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let (status, body) = client
        .call(None, Method::GET, path, None)
        .with_context(|| format!("fetching {label} {url}"))?;
    if status != StatusCode::OK {
        bail!("{label} {url:?} answered HTTP {status}");
    }
    if body.len() > max {
        bail!("{label} {url:?}: the answer is larger than {max} bytes");
    }
    Ok(body)
}

async fn exchange<I>(io: I, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .context("the admin request")?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}
