//! What the gateway serves: where it listens, its limits, and the upstream model servers.
//! The upstream of every model is fixed here; a caller can never choose or alter it.

use std::collections::HashMap;
use std::net::SocketAddr;
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
    /// `http://host:port[/prefix]`, without a trailing slash: routes are appended to it.
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
}

impl Upstream {
    /// Checks an upstream's URL: plain `http://` to a host and port on a private network
    /// (TLS to upstreams comes later), no credentials, query or fragment.
    pub fn new(
        name: &str,
        url: &str,
        protocol: Protocol,
        models: Vec<String>,
    ) -> anyhow::Result<Upstream> {
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("upstream {name:?}: url {url:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("upstream {name:?}: url {url:?} must start with http:// (TLS to upstreams is not supported yet)");
        }
        let Some(authority) = uri.authority() else {
            bail!("upstream {name:?}: url {url:?} has no host");
        };
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
            .with_context(|| format!("upstream {name:?}: url {url:?}"))?;
        Ok(Upstream {
            name: name.to_string(),
            base: format!("http://{authority}{path}"),
            target,
            protocol,
            models,
            inputs: HashMap::new(),
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
    /// Largest upstream response relayed whole (502 beyond); streams are not limited.
    pub max_response_bytes: usize,
    /// How long an upstream may take to answer (504 beyond).
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn upstream_urls_are_checked() {
        let ok = Upstream::new(
            "a",
            "http://127.0.0.1:8000/",
            Protocol::OpenAi,
            vec!["m".into()],
        )
        .unwrap();
        assert_eq!(ok.base, "http://127.0.0.1:8000");
        let ok = Upstream::new(
            "a",
            "http://10.0.0.2:8000/prefix/",
            Protocol::KServe,
            vec!["m".into()],
        )
        .unwrap();
        assert_eq!(ok.base, "http://10.0.0.2:8000/prefix");
        for bad in [
            "https://x:1",
            "ftp://x",
            "http://u:p@x:1",
            "http://x:1/?a=b",
            "nonsense",
            "/path",
        ] {
            assert!(
                Upstream::new("a", bad, Protocol::OpenAi, vec!["m".into()]).is_err(),
                "{bad}"
            );
        }
        assert!(Upstream::new("a", "http://x:1", Protocol::OpenAi, vec![]).is_err());
        assert!(Upstream::new("a", "http://x:1", Protocol::OpenAi, vec!["a b".into()]).is_err());
    }
}
