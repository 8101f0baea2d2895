//! What the gateway serves: where it listens, its limits, and the upstream model servers.
//! The upstream of every model is fixed here; a caller can never choose or alter it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

/// The API an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The OpenAI-compatible API (vLLM, llama.cpp server, Ollama): `/v1/...`.
    OpenAi,
    /// KServe v2 / Open Inference Protocol (Triton, MLServer): `/v2/...`.
    KServe,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "openai" => Some(Protocol::OpenAi),
            "kserve" => Some(Protocol::KServe),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::KServe => "kserve",
        }
    }
}

/// One upstream inference server.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub name: String,
    /// `http[s]://host:port[/prefix]`, without a trailing slash: routes are appended to it.
    pub base: String,
    /// Where requests go (`base`, parsed once).
    pub target: crate::proxy::Target,
    pub protocol: Protocol,
    /// The model names it serves (exact names).
    pub models: Vec<String>,
    /// For KServe upstreams: the inputs each listed model takes. A request to a model
    /// listed here must give exactly these inputs, with these datatypes and fitting shapes;
    /// other models get only the structural checks.
    pub inputs: HashMap<String, Vec<crate::local::TensorSpec>>,
    /// How it is reached: TLS and whom to trust, or plain HTTP.
    pub transport: Transport,
}

/// How the gateway reaches an upstream besides its URL (the `tls_*` and
/// `insecure_plain_http` keys of `[[serve.upstreams]]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transport {
    /// For `https://`: the CA certificates (or the upstream's own self-signed certificate)
    /// to trust, PEM. Required: the system's roots are never used.
    pub ca: Option<PathBuf>,
    /// A certificate and key of Warden's own, PEM, for an upstream that requires mutual
    /// TLS: both or neither.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Also accept TLS 1.2 from this upstream (default: TLS 1.3 only).
    pub allow_tls12: bool,
    /// Allow plain `http://` to a host that is not a loopback address: prompts and
    /// answers then cross the network in the clear.
    pub insecure_plain_http: bool,
}

impl Upstream {
    /// Checks an upstream's URL and transport: `https://` with the CAs to trust, or plain
    /// `http://` to a loopback address (anywhere else only with `insecure_plain_http`);
    /// no credentials, query or fragment. An `https` upstream's files are read by
    /// [`Upstream::load_tls`].
    pub fn new(
        name: &str,
        url: &str,
        protocol: Protocol,
        models: Vec<String>,
        transport: Transport,
    ) -> anyhow::Result<Upstream> {
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("upstream {name:?}: url {url:?} is not a URL"))?;
        let Some(authority) = uri.authority() else {
            bail!("upstream {name:?}: url {url:?} has no host");
        };
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s,
            _ => bail!("upstream {name:?}: url {url:?} must start with https:// (or http:// to a loopback address)"),
        };
        check_transport(name, url, scheme, authority.host(), &transport)?;
        if authority.as_str().contains('@') {
            bail!("upstream {name:?}: url {url:?} must not hold credentials");
        }
        if uri.query().is_some() || url.contains('#') {
            bail!("upstream {name:?}: url {url:?} must not have a query or fragment");
        }
        if models.is_empty() {
            bail!("upstream {name:?}: list the models it serves in `models`");
        }
        for m in &models {
            if !valid_model_name(m) {
                bail!("upstream {name:?}: model name {m:?} must be 1-128 letters, digits, '.', '_', '-', ':' or '/'");
            }
        }
        let path = uri.path().trim_end_matches('/');
        let target = crate::proxy::Target::new(&uri)
            .with_context(|| format!("upstream {name:?}: url {url:?}"))?
            .named(name);
        Ok(Upstream {
            name: name.to_string(),
            base: format!("{scheme}://{authority}{path}"),
            target,
            protocol,
            models,
            inputs: HashMap::new(),
            transport,
        })
    }

    /// Reads an `https` upstream's CA file and client certificate and puts its TLS in
    /// force; nothing for a plain one.
    pub fn load_tls(&self) -> anyhow::Result<()> {
        if let Some(mut files) = self.tls_files() {
            files.reload()?;
        }
        Ok(())
    }

    /// What re-reads an `https` upstream's TLS files; `None` for a plain one.
    pub fn tls_files(&self) -> Option<UpstreamTlsFiles> {
        self.target.is_tls().then(|| UpstreamTlsFiles {
            name: self.name.clone(),
            transport: self.transport.clone(),
            target: self.target.clone(),
            in_force: None,
        })
    }

    /// Declares the inputs of the KServe models it serves (see [`Upstream::inputs`]).
    pub fn with_inputs(
        mut self,
        inputs: HashMap<String, Vec<crate::local::TensorSpec>>,
    ) -> anyhow::Result<Upstream> {
        let name = &self.name;
        if !inputs.is_empty() && self.protocol != Protocol::KServe {
            bail!("upstream {name:?}: inputs are declared for KServe upstreams only");
        }
        for (model, specs) in &inputs {
            if !self.models.contains(model) {
                bail!("upstream {name:?}: inputs declared for {model:?}, which it does not list in models");
            }
            if specs.is_empty() || specs.len() > 64 {
                bail!("upstream {name:?}: model {model:?} must declare 1 to 64 inputs");
            }
            let mut seen = std::collections::HashSet::new();
            for s in specs {
                if s.name.is_empty() || !seen.insert(s.name.as_str()) {
                    bail!("upstream {name:?}: model {model:?}: input names must be non-empty and distinct ({:?})", s.name);
                }
                if !crate::validate::DATATYPES.contains(&s.datatype.as_str()) {
                    bail!(
                        "upstream {name:?}: model {model:?}: input {:?} has datatype {:?}; use one of {}",
                        s.name,
                        s.datatype,
                        crate::validate::DATATYPES.join(", ")
                    );
                }
                if s.shape.is_empty()
                    || s.shape.len() > 16
                    || s.shape.iter().any(|&d| d == 0 || d < -1)
                {
                    bail!(
                        "upstream {name:?}: model {model:?}: input {:?} has shape {}; give 1 to 16 dimensions, each above 0 or -1 for any size",
                        s.name,
                        s.shape_text()
                    );
                }
            }
        }
        self.inputs = inputs;
        Ok(self)
    }
}

/// Model names as they may appear in requests, paths and ledger records.
pub fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b))
}

/// The gateway's settings (from `[serve]` in `warden.toml`).
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Send a whole answer only once its ledger record is durable (an fsync wait on every
    /// request); otherwise once it is queued, the writer committing it within
    /// milliseconds (the ledger failing stops all inference either way).
    pub durable_before_answer: bool,
    /// Connections open at once; beyond it, new ones wait in the kernel's backlog until
    /// one closes (0: no limit).
    pub max_connections: usize,
    /// Event loops serving connections, each a thread accepting from the listener (0: one
    /// per core the process may run on).
    pub event_loops: usize,
    /// Largest upstream response relayed whole (502 beyond); streams are not limited.
    pub max_response_bytes: usize,
    /// How long an upstream may take to answer, head and body together (504 beyond).
    pub request_timeout: Duration,
    /// How long a write to a client may make no progress before its connection is closed
    /// (a client that stops reading its answer).
    pub send_timeout: Duration,
    pub upstreams: Vec<Upstream>,
    /// Rates, quotas and concurrency limits.
    pub limits: crate::limits::LimitsConfig,
    /// Bounds on the texts of OpenAI-compatible requests.
    pub text: crate::validate::TextLimits,
    /// Pass upstreams' log-probabilities on (default: stripped).
    pub keep_logprobs: bool,
    /// Whether clients present certificates (the TLS layer enforces it; the gateway needs
    /// to know to refuse a certificate that names no principal).
    pub client_auth: crate::tls::ClientAuth,
    /// The model patterns a client certificate's principal may use.
    pub client_models: Vec<String>,
}

impl GatewayConfig {
    /// What re-reads the TLS files of every `https` upstream; put each in force with
    /// [`UpstreamTlsFiles::reload`] before serving.
    pub fn upstream_tls_files(&self) -> Vec<UpstreamTlsFiles> {
        self.upstreams
            .iter()
            .filter_map(Upstream::tls_files)
            .collect()
    }

    /// The upstream serving `model` over `protocol`, if any.
    pub fn upstream_for(&self, protocol: Protocol, model: &str) -> Option<&Upstream> {
        self.upstreams
            .iter()
            .find(|u| u.protocol == protocol && u.models.iter().any(|m| m == model))
    }

    /// Refuses a model served by two upstreams.
    pub fn check(&self) -> anyhow::Result<()> {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for u in &self.upstreams {
            for m in &u.models {
                if let Some(other) = seen.insert(m, &u.name) {
                    bail!(
                        "model {m:?} is listed by two upstreams ({other:?} and {:?})",
                        u.name
                    );
                }
            }
        }
        if self.max_body_bytes == 0 {
            bail!("max_body_bytes must be at least 1");
        }
        if self.send_timeout.is_zero() {
            bail!("send_timeout must be above zero");
        }
        Ok(())
    }
}

/// An `https` upstream's TLS files, read again by [`UpstreamTlsFiles::reload`]: a changed
/// and valid set goes in force for the upstream's new connections (certificates rotate
/// without a restart); a broken one leaves the previous in force.
pub struct UpstreamTlsFiles {
    name: String,
    transport: Transport,
    /// A clone of the upstream's target, sharing the configuration in force.
    target: crate::proxy::Target,
    /// SHA-256 of the files in force (the key is not kept twice).
    in_force: Option<[u8; 32]>,
}

impl UpstreamTlsFiles {
    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the files; when they differ from those in force, checks them and puts them
    /// in force. `Ok(true)` when they changed.
    pub fn reload(&mut self) -> anyhow::Result<bool> {
        let t = &self.transport;
        let label = format!("upstream {:?}", self.name);
        let Some(ca) = &t.ca else {
            bail!("{label}: https needs tls_ca");
        };
        let ca_pem = crate::tls::read_pem(ca, "CA file (tls_ca)").with_context(|| label.clone())?;
        let identity = match (&t.client_cert, &t.client_key) {
            (Some(cert), Some(key)) => Some((
                cert,
                crate::tls::read_pem(cert, "client certificate (tls_client_cert)")
                    .with_context(|| label.clone())?,
                key,
                zeroize::Zeroizing::new(
                    crate::tls::read_pem(key, "client key (tls_client_key)")
                        .with_context(|| label.clone())?,
                ),
            )),
            _ => None,
        };
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        let parts = [Some(ca_pem.as_slice())].into_iter().chain(
            identity
                .iter()
                .flat_map(|(_, c, _, k)| [Some(c.as_slice()), Some(k.as_slice())]),
        );
        for part in parts.flatten() {
            digest.update(&(part.len() as u64).to_be_bytes());
            digest.update(part);
        }
        let mut seen = [0u8; 32];
        seen.copy_from_slice(digest.finish().as_ref());
        if self.in_force == Some(seen) {
            return Ok(false);
        }
        let identity =
            identity.as_ref().map(
                |(cert, cert_pem, key, key_pem)| crate::tls::ClientIdentity {
                    cert,
                    cert_pem,
                    key,
                    key_pem,
                },
            );
        let config = crate::tls::client_config(&label, &ca_pem, identity, t.allow_tls12)?;
        self.target.use_tls(config)?;
        self.in_force = Some(seen);
        Ok(true)
    }
}

/// Whether `host` (as in a URL) is a loopback address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// TLS settings for `https` only, with the CAs named; plain HTTP off the host only when
/// asked for.
fn check_transport(
    name: &str,
    url: &str,
    scheme: &str,
    host: &str,
    t: &Transport,
) -> anyhow::Result<()> {
    if t.client_cert.is_some() != t.client_key.is_some() {
        bail!("upstream {name:?}: give tls_client_cert and tls_client_key together");
    }
    if scheme == "https" {
        if t.ca.is_none() {
            bail!("upstream {name:?}: url {url:?} needs tls_ca, the CA certificates (PEM) that sign the upstream's certificate (or that certificate itself, if self-signed)");
        }
        if t.insecure_plain_http {
            bail!("upstream {name:?}: insecure_plain_http is for http:// URLs; remove it");
        }
        return Ok(());
    }
    if t.ca.is_some() || t.client_cert.is_some() || t.allow_tls12 {
        bail!("upstream {name:?}: tls_ca, tls_client_cert, tls_client_key and tls12 need an https:// url");
    }
    if !is_loopback(host) && !t.insecure_plain_http {
        bail!("upstream {name:?}: url {url:?} would carry prompts and answers in the clear; use https:// with tls_ca, or set insecure_plain_http = true on this upstream (warden posture reports it)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn plain() -> Transport {
        Transport::default()
    }

    #[test]
    fn upstream_urls_are_checked() {
        let ok = Upstream::new(
            "a",
            "http://127.0.0.1:8000/",
            Protocol::OpenAi,
            vec!["m".into()],
            plain(),
        )
        .unwrap();
        assert_eq!(ok.base, "http://127.0.0.1:8000");
        assert!(!ok.target.is_tls());
        for bad in [
            "ftp://x",
            "http://u:p@127.0.0.1:1",
            "http://127.0.0.1:1/?a=b",
            "nonsense",
            "/path",
        ] {
            assert!(
                Upstream::new("a", bad, Protocol::OpenAi, vec!["m".into()], plain()).is_err(),
                "{bad}"
            );
        }
        let none = Upstream::new("a", "http://[::1]:1", Protocol::OpenAi, vec![], plain());
        assert!(none.is_err());
        let spaced = Upstream::new(
            "a",
            "http://localhost:1",
            Protocol::OpenAi,
            vec!["a b".into()],
            plain(),
        );
        assert!(spaced.is_err());
    }

    #[test]
    fn plain_http_off_the_host_and_tls_settings_are_checked() {
        let new = |url: &str, t: Transport| {
            Upstream::new("a", url, Protocol::KServe, vec!["m".into()], t)
        };
        // Plain HTTP leaves the host only when asked for, and says what to do.
        for url in ["http://10.0.0.2:8000", "http://model.internal"] {
            let e = new(url, plain()).err().unwrap().to_string();
            assert!(
                e.contains("insecure_plain_http") && e.contains("tls_ca"),
                "{e}"
            );
        }
        let insecure = Transport {
            insecure_plain_http: true,
            ..plain()
        };
        let ok = new("http://10.0.0.2:8000/prefix/", insecure.clone()).unwrap();
        assert_eq!(ok.base, "http://10.0.0.2:8000/prefix");
        for loopback in ["http://127.0.0.2:1", "http://[::1]:1", "http://LOCALHOST:1"] {
            assert!(new(loopback, plain()).is_ok(), "{loopback}");
        }

        // https needs the CAs to trust; the TLS keys need https.
        let e = new("https://model.internal", plain()).err().unwrap();
        assert!(e.to_string().contains("tls_ca"), "{e}");
        let tls = Transport {
            ca: Some("ca.pem".into()),
            ..plain()
        };
        let ok = new("https://model.internal/v2/", tls.clone()).unwrap();
        assert_eq!(ok.base, "https://model.internal/v2");
        assert!(ok.target.is_tls());
        assert!(new("http://127.0.0.1:1", tls.clone()).is_err());
        let tls12_plain = Transport {
            allow_tls12: true,
            ..plain()
        };
        assert!(new("http://127.0.0.1:1", tls12_plain).is_err());
        let both = Transport {
            insecure_plain_http: true,
            ..tls.clone()
        };
        assert!(new("https://model.internal", both).is_err());
        let half = Transport {
            client_cert: Some("c.pem".into()),
            ..tls.clone()
        };
        let e = new("https://model.internal", half).err().unwrap();
        assert!(e.to_string().contains("together"), "{e}");
    }

    #[test]
    fn an_https_upstream_reads_its_ca_file_when_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Transport {
            ca: Some(dir.path().join("missing.pem")),
            ..plain()
        };
        let mut up = Upstream::new(
            "a",
            "https://127.0.0.1:9",
            Protocol::OpenAi,
            vec!["m".into()],
            missing,
        )
        .unwrap();
        let e = format!("{:#}", up.load_tls().err().unwrap());
        assert!(e.contains("missing.pem") && e.contains("tls_ca"), "{e}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        up.transport.ca = Some(empty);
        let e = format!("{:#}", up.load_tls().err().unwrap());
        assert!(e.contains("holds no certificate"), "{e}");

        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        up.transport.ca = Some(ca);
        up.load_tls().unwrap();
    }
}
