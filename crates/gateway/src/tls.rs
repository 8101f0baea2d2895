//! The server's TLS: rustls on the ring provider; TLS 1.3 only unless 1.2 is allowed, and
//! then only ECDHE key exchange with AEAD ciphers; HTTP/1.1 by ALPN; the certificate chain
//! and key from PEM files, reloaded without a restart ([`TlsReloader`]); mutual TLS
//! optional, the verified client certificate naming the principal ([`client_identity`]).
//!
//! With [`ClientAuth::Required`] a client without a certificate fails the handshake. A
//! client whose certificate verifies but names no usable principal (the chosen name is
//! missing, given twice with different values, or not a valid principal name) still
//! connects, with `Connection::client` empty: the request layer must refuse such requests
//! when client certificates are required.

mod client;
mod identity;
mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{CipherSuite, SupportedCipherSuite};

pub use client::{client_config, server_name, ClientIdentity};
pub use identity::{client_identity, peer_identity};
pub(crate) use reload::read_pem;
pub use reload::TlsReloader;
pub use rustls::ServerConfig as TlsConfig;

/// Whether clients must, may or may not present a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    Off,
    /// A client may present a certificate, which must then verify against the client CA;
    /// a client without one must use another credential (an API key).
    Optional,
    /// Every client must present a certificate that verifies against the client CA.
    Required,
}

impl ClientAuth {
    /// `off`, `optional` or `required`.
    pub fn parse(s: &str) -> Option<ClientAuth> {
        match s {
            "off" => Some(ClientAuth::Off),
            "optional" => Some(ClientAuth::Optional),
            "required" => Some(ClientAuth::Required),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::Off => "off",
            ClientAuth::Optional => "optional",
            ClientAuth::Required => "required",
        }
    }
}

/// Which name in a client certificate is the principal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrincipalSource {
    /// The subject's common name.
    #[default]
    CommonName,
    /// The DNS name in the subject alternative names.
    SanDns,
    /// The last path segment of the URI in the subject alternative names (for SPIFFE IDs:
    /// `spiffe://corp.example/ns/ml/sa/billing` names `billing`).
    SanUri,
    /// The email address in the subject alternative names.
    SanEmail,
}

impl PrincipalSource {
    /// `cn`, `san-dns`, `san-uri` or `san-email`.
    pub fn parse(s: &str) -> Option<PrincipalSource> {
        match s {
            "cn" => Some(PrincipalSource::CommonName),
            "san-dns" => Some(PrincipalSource::SanDns),
            "san-uri" => Some(PrincipalSource::SanUri),
            "san-email" => Some(PrincipalSource::SanEmail),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PrincipalSource::CommonName => "cn",
            PrincipalSource::SanDns => "san-dns",
            PrincipalSource::SanUri => "san-uri",
            PrincipalSource::SanEmail => "san-email",
        }
    }
}

/// Where the server's TLS comes from and what it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// Also offer TLS 1.2 (ECDHE with AEAD ciphers only).
    pub allow_tls12: bool,
    pub client_auth: ClientAuth,
    /// The CAs that issue client certificates, PEM; needed unless `client_auth` is off.
    pub client_ca: Option<PathBuf>,
    pub principal_from: PrincipalSource,
}

impl TlsSettings {
    /// TLS 1.3 only, no client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsSettings {
        TlsSettings {
            cert: cert.into(),
            key: key.into(),
            allow_tls12: false,
            client_auth: ClientAuth::Off,
            client_ca: None,
            principal_from: PrincipalSource::CommonName,
        }
    }
}

/// What the listener needs: the rustls configuration, and which certificate name is the
/// principal when clients present certificates.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub config: Arc<TlsConfig>,
    pub principal_from: PrincipalSource,
}

impl From<Arc<TlsConfig>> for ServerTls {
    fn from(config: Arc<TlsConfig>) -> ServerTls {
        ServerTls {
            config,
            principal_from: PrincipalSource::default(),
        }
    }
}

/// Reads the certificate chain and key and builds a TLS 1.3 (and 1.2 if allowed)
/// configuration without client certificates. It does not follow later changes to the
/// files: use [`TlsReloader`] for that.
pub fn server_config(cert: &Path, key: &Path, allow_tls12: bool) -> anyhow::Result<Arc<TlsConfig>> {
    let mut settings = TlsSettings::new(cert, key);
    settings.allow_tls12 = allow_tls12;
    Ok(TlsReloader::new(settings)?.config())
}

/// The ring provider, keeping only TLS 1.3 suites and TLS 1.2 suites with ECDHE key
/// exchange and an AEAD cipher (ring's defaults are all of that already; this makes sure a
/// future default cannot widen what the gateway accepts).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.retain(strong);
    Arc::new(provider)
}

fn strong(suite: &SupportedCipherSuite) -> bool {
    match suite {
        SupportedCipherSuite::Tls13(_) => true,
        SupportedCipherSuite::Tls12(s) => {
            let aead = matches!(
                s.common.suite,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                    | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                    | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                    | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                    | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                    | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            );
            aead && s.kx == rustls::crypto::KeyExchangeAlgorithm::ECDHE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in [ClientAuth::Off, ClientAuth::Optional, ClientAuth::Required] {
            assert_eq!(ClientAuth::parse(a.name()), Some(a));
        }
        for p in [
            PrincipalSource::CommonName,
            PrincipalSource::SanDns,
            PrincipalSource::SanUri,
            PrincipalSource::SanEmail,
        ] {
            assert_eq!(PrincipalSource::parse(p.name()), Some(p));
        }
        assert_eq!(ClientAuth::parse("Required"), None);
        assert_eq!(PrincipalSource::parse("dns"), None);
        assert_eq!(ClientAuth::default(), ClientAuth::Off);
        assert_eq!(PrincipalSource::default(), PrincipalSource::CommonName);
    }

    #[test]
    fn only_strong_suites() {
        let provider = provider();
        let names: Vec<String> = provider
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        // Ring's defaults survive the filter: three TLS 1.3 suites, six ECDHE+AEAD 1.2 ones.
        assert_eq!(names.len(), 9, "{names:?}");
        for name in &names {
            let tls13 = name.starts_with("TLS13_");
            let ecdhe_aead = name.starts_with("TLS_ECDHE_")
                && (name.contains("_GCM_") || name.contains("CHACHA20_POLY1305"));
            assert!(tls13 || ecdhe_aead, "{name}");
        }
    }
}
