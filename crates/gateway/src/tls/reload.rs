//! Certificates that change under a running server. The rustls configuration is built once;
//! its certificate comes from a resolver holding the current pair, and its client
//! certificate verifier delegates to the current one, so a reload reaches new handshakes
//! while open connections keep what they negotiated.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use anyhow::{anyhow, bail, Context};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{
    ClientHello, NoServerSessionStorage, ResolvesServerCert, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use super::{ClientAuth, ServerTls, TlsSettings};

/// The largest PEM file read (a certificate chain, a key, a CA bundle).
const MAX_PEM: u64 = 1 << 20;

/// The server's TLS configuration and the files it came from. [`TlsReloader::reload`] is
/// cheap when nothing changed (it reads and hashes a few small files), so a thread may call
/// it every few seconds.
pub struct TlsReloader {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    cert: Arc<CurrentCert>,
    verifier: Option<Arc<CurrentVerifier>>,
    config: Arc<ServerConfig>,
    /// SHA-256 of the files behind what is in use: (certificate, key) and the client CAs.
    seen: Mutex<Seen>,
}

struct Seen {
    pair: ([u8; 32], [u8; 32]),
    ca: Option<[u8; 32]>,
}

impl TlsReloader {
    /// Reads the files and builds the configuration. Errors name the file and what to fix.
    pub fn new(settings: TlsSettings) -> anyhow::Result<TlsReloader> {
        let provider = super::provider();
        let (cert_pem, key_pem) = read_pair(&settings)?;
        let pair = certified_key(
            &settings.cert,
            &settings.key,
            &provider,
            &cert_pem,
            &key_pem,
        )?;
        let cert = Arc::new(CurrentCert(RwLock::new(Arc::new(pair))));
        let (verifier, ca) = match (settings.client_auth, &settings.client_ca) {
            (ClientAuth::Off, None) => (None, None),
            (ClientAuth::Off, Some(ca)) => bail!(
                "a client CA ({}) is set but client certificates are off: set client_auth to \"optional\" or \"required\", or remove the client CA",
                ca.display()
            ),
            (_, None) => bail!(
                "client certificates are {} but no client CA is set: name the PEM bundle of the CAs that issue client certificates",
                settings.client_auth.name()
            ),
            (mode, Some(path)) => {
                let pem = read_pem(path, "client CA bundle")?;
                let inner = client_verifier(mode, path, &provider, &pem)?;
                let current = CurrentVerifier {
                    inner: RwLock::new(inner),
                    mandatory: mode == ClientAuth::Required,
                };
                (Some(Arc::new(current)), Some(sha256(&pem)))
            }
        };
        let config = build_config(&settings, &provider, &cert, verifier.as_ref())?;
        let seen = Seen {
            pair: (sha256(&cert_pem), sha256(&key_pem)),
            ca,
        };
        Ok(TlsReloader {
            settings,
            provider,
            cert,
            verifier,
            config,
            seen: Mutex::new(seen),
        })
    }

    /// The configuration to hand to the listener; it follows every reload.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    /// The configuration with the principal source, for `gateway::serve`.
    pub fn server_tls(&self) -> ServerTls {
        ServerTls {
            config: self.config(),
            principal_from: self.settings.principal_from,
        }
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Re-reads the certificate, key and client CA files and puts in use whatever changed
    /// and is sound. Returns whether anything changed. On an error (unreadable file, no
    /// certificate, a key that does not match the certificate, a bad CA bundle) the
    /// previous certificate or CAs stay in use and the error says which.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = false;
        let mut errors = Vec::new();

        let pair = read_pair(&self.settings).and_then(|(cert_pem, key_pem)| {
            let digests = (sha256(&cert_pem), sha256(&key_pem));
            if digests == seen.pair {
                return Ok(false);
            }
            let pair = certified_key(
                &self.settings.cert,
                &self.settings.key,
                &self.provider,
                &cert_pem,
                &key_pem,
            )?;
            *self.cert.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(pair);
            seen.pair = digests;
            Ok(true)
        });
        match pair {
            Ok(c) => changed |= c,
            Err(e) => errors.push(format!(
                "the TLS certificate was not reloaded (the previous one is still served): {e:#}"
            )),
        }

        if let (Some(verifier), Some(path)) = (&self.verifier, &self.settings.client_ca) {
            let ca = read_pem(path, "client CA bundle").and_then(|pem| {
                let digest = sha256(&pem);
                if seen.ca == Some(digest) {
                    return Ok(false);
                }
                let inner = client_verifier(self.settings.client_auth, path, &self.provider, &pem)?;
                *verifier
                    .inner
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = inner;
                seen.ca = Some(digest);
                Ok(true)
            });
            match ca {
                Ok(c) => changed |= c,
                Err(e) => errors.push(format!(
                    "the client CAs were not reloaded (the previous ones are still trusted): {e:#}"
                )),
            }
        }

        if errors.is_empty() {
            Ok(changed)
        } else {
            Err(anyhow!(errors.join("; ")))
        }
    }
}

fn build_config(
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
    cert: &Arc<CurrentCert>,
    verifier: Option<&Arc<CurrentVerifier>>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let versions: &[&rustls::SupportedProtocolVersion] = if settings.allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(versions)
        .context("TLS protocol versions")?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(Arc::clone(v) as Arc<dyn ClientCertVerifier>),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::clone(cert) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if verifier.is_some() {
        // A resumed session skips certificate verification: without resumption every
        // connection is checked against the CAs and expiry dates in force now.
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(Arc::new(config))
}

/// Reads a PEM file of at most [`MAX_PEM`] bytes.
pub(crate) fn read_pem(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    if bytes.len() as u64 > MAX_PEM {
        bail!(
            "the {what} {} is larger than {MAX_PEM} bytes; is it the right file?",
            path.display()
        );
    }
    Ok(bytes)
}

fn read_pair(settings: &TlsSettings) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    Ok((
        read_pem(&settings.cert, "TLS certificate")?,
        read_pem(&settings.key, "TLS private key")?,
    ))
}

/// Parses the chain and key (read from `cert` and `key`) and checks that the key is the
/// leaf certificate's.
pub(crate) fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate (PEM, leaf first)", cert.display());
    }
    let der = PrivateKeyDer::from_pem_slice(key_pem).with_context(|| {
        format!(
            "{} holds no private key (PEM: PKCS#8, SEC1 or PKCS#1)",
            key.display()
        )
    })?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .with_context(|| {
            format!(
                "{} is not a usable private key (RSA, ECDSA P-256/P-384 or Ed25519)",
                key.display()
            )
        })?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().map_err(|e| {
        anyhow!(
            "the private key {} does not belong to the certificate {} ({e}); replace both together",
            key.display(),
            cert.display()
        )
    })?;
    Ok(pair)
}

/// Builds a verifier trusting exactly the CAs in `pem`; any certificate in it that cannot
/// be used as a trust anchor is an error rather than skipped.
fn client_verifier(
    mode: ClientAuth,
    path: &Path,
    provider: &Arc<CryptoProvider>,
    pem: &[u8],
) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for (i, der) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let der =
            der.with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
        roots.add(der).with_context(|| {
            format!(
                "certificate {} in {} is not a usable CA certificate",
                i + 1,
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        bail!(
            "the client CA bundle {} holds no certificate",
            path.display()
        );
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
    let builder = match mode {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        _ => builder,
    };
    builder
        .build()
        .with_context(|| format!("the client CA bundle {}", path.display()))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// Serves the current certificate whatever the client asked for.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// Verifies client certificates with the current CAs. It sends no CA names in its
/// certificate request (the names would have to outlive a reload): clients then present
/// their certificate whatever its issuer, which is what TLS prescribes for an empty list.
#[derive(Debug)]
struct CurrentVerifier {
    inner: RwLock<Arc<dyn ClientCertVerifier>>,
    mandatory: bool,
}

impl CurrentVerifier {
    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.inner.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ClientCertVerifier for CurrentVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}
