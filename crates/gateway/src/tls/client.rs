//! TLS for the connections Warden opens: to upstream model servers, to a server's admin
//! API (`warden --server`) and to an identity provider's JWKS. The peer's certificate is
//! checked against CAs the operator names, never the system's roots (these are private
//! services behind a private CA or a self-signed certificate); TLS 1.3 unless 1.2 is
//! allowed; optionally a client certificate of Warden's own, for peers that require
//! mutual TLS.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::reload::certified_key;

/// A certificate chain and key of Warden's own (PEM, and the files they were read from,
/// for errors), presented to peers that ask for one.
pub struct ClientIdentity<'a> {
    pub cert: &'a Path,
    pub cert_pem: &'a [u8],
    pub key: &'a Path,
    pub key_pem: &'a [u8],
}

/// A client configuration trusting the CAs (or self-signed certificates) in `ca_pem`,
/// presenting `identity` when given. `label` names the setting in errors.
pub fn client_config(
    label: &str,
    ca_pem: &[u8],
    identity: Option<ClientIdentity<'_>>,
    allow_tls12: bool,
) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let mut pinned = Vec::new();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.with_context(|| format!("reading the CA PEM for {label}"))?;
        roots.add(cert.clone()).with_context(|| {
            format!("a CA certificate for {label} is not usable as a trust anchor")
        })?;
        pinned.push(cert);
    }
    if roots.is_empty() {
        bail!("the CA file for {label} holds no certificate");
    }
    let provider = super::provider();
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .with_context(|| format!("the CA certificates for {label}"))?;
    let verifier = Arc::new(PinnedOrChained {
        webpki,
        pinned,
        provider: Arc::clone(&provider),
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .context("TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let pair = certified_key(id.cert, id.key, &provider, id.cert_pem, id.key_pem)
                .with_context(|| format!("the client certificate for {label}"))?;
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(pair)))
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name a certificate must carry for `host` (a DNS name or an IP address, brackets
/// around an IPv6 address allowed).
pub fn server_name(label: &str, host: &str) -> anyhow::Result<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).with_context(|| format!("{label} host {host:?}"))
}

/// Trusts a server whose certificate chains to the CA file (and names the host), or whose
/// certificate *is* one in that file (a self-signed server certificate, often marked as a
/// CA, which chain building refuses as an end entity: trusting those exact bytes is what
/// `curl --cacert` does for it).
#[derive(Debug)]
struct PinnedOrChained {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedOrChained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(v) => Ok(v),
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
