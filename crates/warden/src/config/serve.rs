//! `[serve]`: the inference gateway's section of `warden.toml`.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::Deserialize;

/// `warden serve`: the inference gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address and port to listen on (default `127.0.0.1:8443`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The server's certificate chain (PEM; default `tls/cert.pem`).
    #[serde(default = "default_tls_cert")]
    pub tls_cert: PathBuf,
    /// The server's private key (PEM; default `tls/key.pem`), mode 0600.
    #[serde(default = "default_tls_key")]
    pub tls_key: PathBuf,
    /// Serve plain HTTP instead of TLS (default false); `warden serve` warns loudly.
    #[serde(default)]
    pub insecure_plain_http: bool,
    /// Also accept TLS 1.2 (default false: TLS 1.3 only).
    #[serde(default)]
    pub tls12: bool,
    /// Largest request body, in bytes (default 1 MiB).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest upstream response relayed whole, in bytes (default 64 MiB); streams are
    /// passed through without this limit.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// How long an upstream may take to answer, and a caller to send its body (default
    /// 60000 ms).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    #[serde(default)]
    pub limits: LimitsToml,
}

/// An upstream inference server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    /// `http://host:port[/prefix]`.
    pub url: String,
    /// `openai` or `kserve`.
    pub protocol: String,
    /// The model names it serves.
    pub models: Vec<String>,
}

fn default_listen() -> String {
    "127.0.0.1:8443".into()
}

fn default_tls_cert() -> PathBuf {
    "tls/cert.pem".into()
}

fn default_tls_key() -> PathBuf {
    "tls/key.pem".into()
}

fn default_max_body_bytes() -> usize {
    1 << 20
}

fn default_max_response_bytes() -> usize {
    64 << 20
}

fn default_request_timeout_ms() -> u64 {
    60_000
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_listen(),
            tls_cert: default_tls_cert(),
            tls_key: default_tls_key(),
            insecure_plain_http: false,
            tls12: false,
            max_body_bytes: default_max_body_bytes(),
            max_response_bytes: default_max_response_bytes(),
            request_timeout_ms: default_request_timeout_ms(),
            upstreams: Vec::new(),
            limits: LimitsToml::default(),
        }
    }
}

impl ServeConfig {
    /// The gateway's view of this section (URLs and names checked).
    pub fn gateway(&self) -> anyhow::Result<gateway::GatewayConfig> {
        let listen = self.listen.parse().map_err(|e| {
            anyhow::anyhow!(
                "[serve] listen = {:?}: {e} (e.g. \"127.0.0.1:8443\")",
                self.listen
            )
        })?;
        let mut upstreams = Vec::new();
        for u in &self.upstreams {
            let protocol = gateway::Protocol::parse(&u.protocol).ok_or_else(|| {
                anyhow::anyhow!(
                    "[[serve.upstreams]] {:?}: protocol {:?} is not \"openai\" or \"kserve\"",
                    u.name,
                    u.protocol
                )
            })?;
            upstreams.push(
                gateway::Upstream::new(&u.name, &u.url, protocol, u.models.clone())
                    .context("[[serve.upstreams]]")?,
            );
        }
        if self.request_timeout_ms == 0 {
            bail!("[serve] request_timeout_ms must be at least 1");
        }
        let config = gateway::GatewayConfig {
            listen,
            max_body_bytes: self.max_body_bytes,
            max_response_bytes: self.max_response_bytes,
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
            upstreams,
            limits: self.limits.gateway()?,
        };
        config.check().context("[serve]")?;
        Ok(config)
    }
}

/// `[serve.limits]`: rates, quotas and concurrency. 0 turns a limit off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsToml {
    /// Requests per minute per principal (default 600).
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u64,
    /// Requests a principal may send at once before the rate applies (default 60).
    #[serde(default = "default_burst")]
    pub burst: u64,
    /// Tokens per minute per principal on the OpenAI routes (default 0: no quota).
    #[serde(default)]
    pub tokens_per_minute: u64,
    /// Tokens a principal may spend at once (default: one minute's worth).
    pub token_burst: Option<u64>,
    /// Requests one principal may have in flight (default 32).
    #[serde(default = "default_concurrent_per_principal")]
    pub concurrent_per_principal: usize,
    /// Requests in flight in all (default 1024).
    #[serde(default = "default_concurrent")]
    pub concurrent: usize,
    /// Failed sign-ins per minute a source address may make, after `failed_auth_burst` of
    /// them, before it is refused (default 10 and 10).
    #[serde(default = "ten")]
    pub failed_auth_per_minute: u64,
    #[serde(default = "ten")]
    pub failed_auth_burst: u64,
    /// Per-principal rates and quotas instead of the defaults.
    #[serde(default)]
    pub principals: HashMap<String, PrincipalToml>,
    /// Per-model request rates, all principals together.
    #[serde(default)]
    pub models: HashMap<String, RateToml>,
}

/// `[serve.limits.principals.NAME]`: what is not given is the default; 0 turns it off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalToml {
    pub requests_per_minute: Option<u64>,
    /// Default: a tenth of the rate (at least 1).
    pub burst: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    /// Default: one minute's worth.
    pub token_burst: Option<u64>,
}

/// `[serve.limits.models.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateToml {
    pub requests_per_minute: u64,
    /// Default: a tenth of the rate (at least 1).
    pub burst: Option<u64>,
}

fn default_requests_per_minute() -> u64 {
    600
}

fn default_burst() -> u64 {
    60
}

fn default_concurrent_per_principal() -> usize {
    32
}

fn default_concurrent() -> usize {
    1024
}

fn ten() -> u64 {
    10
}

impl Default for LimitsToml {
    fn default() -> Self {
        LimitsToml {
            requests_per_minute: default_requests_per_minute(),
            burst: default_burst(),
            tokens_per_minute: 0,
            token_burst: None,
            concurrent_per_principal: default_concurrent_per_principal(),
            concurrent: default_concurrent(),
            failed_auth_per_minute: ten(),
            failed_auth_burst: ten(),
            principals: HashMap::new(),
            models: HashMap::new(),
        }
    }
}

fn rate(key: &str, per_minute: u64, burst: u64) -> anyhow::Result<gateway::limits::Rate> {
    gateway::limits::Rate::new(per_minute, burst).map_err(|e| anyhow::anyhow!("{key}: {e}"))
}

/// A rate that 0 turns off.
fn optional_rate(
    key: &str,
    per_minute: u64,
    burst: u64,
) -> anyhow::Result<Option<gateway::limits::Rate>> {
    if per_minute == 0 {
        return Ok(None);
    }
    rate(key, per_minute, burst).map(Some)
}

impl LimitsToml {
    /// The gateway's limits (rates checked).
    pub fn gateway(&self) -> anyhow::Result<gateway::limits::LimitsConfig> {
        let principal = optional_rate(
            "[serve.limits] requests_per_minute/burst",
            self.requests_per_minute,
            self.burst,
        )?;
        let tokens = optional_rate(
            "[serve.limits] tokens_per_minute/token_burst",
            self.tokens_per_minute,
            self.token_burst.unwrap_or(self.tokens_per_minute),
        )?;
        let tenth = |per_minute: u64| (per_minute / 10).max(1);
        let mut principals = HashMap::new();
        for (name, p) in &self.principals {
            let key = format!("[serve.limits.principals.{name:?}]");
            let requests = match p.requests_per_minute {
                Some(n) => optional_rate(&key, n, p.burst.unwrap_or(tenth(n)))?,
                None => principal,
            };
            let tokens = match p.tokens_per_minute {
                Some(n) => optional_rate(&key, n, p.token_burst.unwrap_or(n))?,
                None => tokens,
            };
            principals.insert(
                name.clone(),
                gateway::limits::PrincipalLimits { requests, tokens },
            );
        }
        let mut models = HashMap::new();
        for (name, r) in &self.models {
            let key = format!("[serve.limits.models.{name:?}]");
            let burst = r.burst.unwrap_or(tenth(r.requests_per_minute));
            models.insert(name.clone(), rate(&key, r.requests_per_minute, burst)?);
        }
        Ok(gateway::limits::LimitsConfig {
            principal,
            principals,
            models,
            tokens,
            concurrent_per_principal: self.concurrent_per_principal,
            concurrent: self.concurrent,
            failed_auth: rate(
                "[serve.limits] failed_auth_per_minute/failed_auth_burst",
                self.failed_auth_per_minute,
                self.failed_auth_burst,
            )?,
        })
    }
}
