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
    /// Answer only once the request's ledger record is on disk (default false: once it is
    /// queued for the next group commit).
    #[serde(default)]
    pub durable_before_answer: bool,
    /// How long the records of answered requests may gather before one group commit (one
    /// fsync), in ms (default 50, at most 1000): what a crash can lose of records no
    /// answer waited for.
    #[serde(default = "default_ledger_commit_ms")]
    pub ledger_commit_ms: u64,
    /// Inference connections open at once (default 4096); more wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Event loops (threads) serving inference connections (default 0: one per core the
    /// process may run on; at most 256).
    #[serde(default)]
    pub event_loops: usize,
    /// Largest upstream response relayed whole, in bytes (default 64 MiB); streams are
    /// passed through without this limit.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// How long an upstream may take to answer (head and body together; a stream's head),
    /// and a caller to send its body (default 60000 ms).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How long a write of an answer to a client may make no progress before the
    /// connection is closed (default 30000 ms): a client that stops reading.
    #[serde(default = "default_send_timeout_ms")]
    pub send_timeout_ms: u64,
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    #[serde(default)]
    pub limits: LimitsToml,
    /// Client certificates: `off` (default), `optional` or `required`.
    #[serde(default = "default_client_auth")]
    pub client_auth: String,
    /// The CAs that issue client certificates (PEM); needed unless `client_auth` is off.
    pub client_ca: Option<PathBuf>,
    /// Which certificate name is the principal: `cn` (default), `san-dns`, `san-uri`,
    /// `san-email`.
    #[serde(default = "default_client_principal_from")]
    pub client_principal_from: String,
    /// Model patterns a certificate's principal may use (default none).
    #[serde(default)]
    pub client_models: Vec<String>,
    /// Pass upstreams' log-probabilities on (default false: stripped).
    #[serde(default)]
    pub allow_logprobs: bool,
    #[serde(default)]
    pub text: TextToml,
    #[serde(default)]
    pub guards: GuardsToml,
    /// OIDC/JWT bearer tokens (off unless this section is present).
    pub jwt: Option<JwtToml>,
    /// The authorisation policies (Cedar); default: each credential's own model scope.
    pub policy: Option<PathBuf>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (plain HTTP, a loopback
    /// address only); default: not served.
    pub metrics_listen: Option<String>,
    /// Where the admin REST API (`/admin/v1/…`, `/metrics`, `/healthz`, `/readyz`) listens,
    /// over the same TLS as inference; `off` for none (default `127.0.0.1:8444`).
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
}

fn default_client_auth() -> String {
    "off".into()
}

fn default_client_principal_from() -> String {
    "cn".into()
}

/// `[serve.text]`: bounds on the texts of OpenAI-compatible requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextToml {
    #[serde(default = "default_max_prompt_tokens")]
    pub max_prompt_tokens: u64,
    #[serde(default = "default_max_output_tokens")]
    pub max_output_tokens: u64,
    #[serde(default = "default_max_text_chars")]
    pub max_text_chars: usize,
    #[serde(default = "yes")]
    pub reject_invisible: bool,
    #[serde(default = "default_max_choices")]
    pub max_choices: u64,
}

fn default_max_choices() -> u64 {
    gateway::validate::TextLimits::default().max_choices
}

fn default_max_prompt_tokens() -> u64 {
    gateway::validate::TextLimits::default().max_prompt_tokens
}

fn default_max_output_tokens() -> u64 {
    gateway::validate::TextLimits::default().max_output_tokens
}

fn default_max_text_chars() -> usize {
    gateway::validate::TextLimits::default().max_text_chars
}

fn yes() -> bool {
    true
}

impl Default for TextToml {
    fn default() -> Self {
        TextToml {
            max_prompt_tokens: default_max_prompt_tokens(),
            max_output_tokens: default_max_output_tokens(),
            max_text_chars: default_max_text_chars(),
            reject_invisible: true,
            max_choices: default_max_choices(),
        }
    }
}

/// `[serve.guards]`: input guards on OpenAI-compatible requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardsToml {
    /// The phrase tripwire (default on).
    #[serde(default = "yes")]
    pub tripwire: bool,
    /// Its phrases instead of the built-in list.
    pub phrases: Option<Vec<String>>,
}

impl Default for GuardsToml {
    fn default() -> Self {
        GuardsToml {
            tripwire: true,
            phrases: None,
        }
    }
}

impl GuardsToml {
    pub fn guards(&self) -> anyhow::Result<gateway::guard::Guards> {
        let mut guards: Vec<Box<dyn gateway::guard::Guard>> = Vec::new();
        if self.tripwire {
            let tripwire = match &self.phrases {
                Some(p) => gateway::guard::PhraseTripwire::new(p),
                None => gateway::guard::PhraseTripwire::with_defaults(),
            }
            .context("[serve.guards] phrases")?;
            guards.push(Box::new(tripwire));
        }
        Ok(gateway::guard::Guards::new(guards))
    }
}

/// `[serve.jwt]`: OIDC/JWT bearer tokens checked against a JWKS file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtToml {
    /// The exact `iss`.
    pub issuer: String,
    /// Accepted `aud` values (one must be in the token).
    pub audiences: Vec<String>,
    /// Pinned algorithms (default ES256, EdDSA, RS256).
    #[serde(default = "default_jwt_algorithms")]
    pub algorithms: Vec<String>,
    /// The identity provider's JWKS (public keys), a file re-read when it changes; or
    /// `jwks_url`.
    pub jwks: Option<PathBuf>,
    /// The identity provider's `jwks_uri` (https, or http to a loopback address), fetched
    /// at start and every `jwks_refresh_seconds`.
    pub jwks_url: Option<String>,
    /// The CA certificates (PEM) the JWKS server's certificate must chain to.
    pub jwks_ca: Option<PathBuf>,
    #[serde(default = "default_jwks_refresh_seconds")]
    pub jwks_refresh_seconds: u64,
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    pub models_claim: Option<String>,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    pub max_lifetime_seconds: Option<u64>,
}

fn default_jwt_algorithms() -> Vec<String> {
    vec!["ES256".into(), "EdDSA".into(), "RS256".into()]
}

fn default_principal_claim() -> String {
    "sub".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_jwks_refresh_seconds() -> u64 {
    300
}

fn default_leeway_seconds() -> u64 {
    30
}

impl JwtToml {
    /// The verifier's settings, paths made absolute by `resolve`.
    pub fn settings(
        &self,
        resolve: impl Fn(&std::path::Path) -> PathBuf,
    ) -> anyhow::Result<gateway::jwt::JwtSettings> {
        let jwks = match (&self.jwks, &self.jwks_url) {
            (Some(path), None) => gateway::jwt::JwksSource::File(resolve(path)),
            (None, Some(url)) => {
                let ca_pem = match &self.jwks_ca {
                    Some(p) => {
                        let p = resolve(p);
                        let pem = std::fs::read(&p)
                            .with_context(|| format!("[serve.jwt] jwks_ca {}", p.display()))?;
                        Some(pem)
                    }
                    None => None,
                };
                gateway::jwt::JwksSource::Url {
                    url: url.clone(),
                    ca_pem,
                    refresh: std::time::Duration::from_secs(self.jwks_refresh_seconds),
                }
            }
            _ => bail!("[serve.jwt]: give either jwks (a file) or jwks_url, not both"),
        };
        let mut s = gateway::jwt::JwtSettings::new(
            self.issuer.clone(),
            self.audiences.clone(),
            self.algorithms.clone(),
            PathBuf::new(),
        );
        s.jwks = jwks;
        s.principal_claim = self.principal_claim.clone();
        s.models_claim = self.models_claim.clone();
        s.groups_claim = self.groups_claim.clone();
        s.leeway = std::time::Duration::from_secs(self.leeway_seconds);
        s.max_lifetime = self
            .max_lifetime_seconds
            .map(std::time::Duration::from_secs);
        Ok(s)
    }
}

/// An upstream inference server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    /// `https://host:port[/prefix]`, or `http://` to a loopback address.
    pub url: String,
    /// For `https://`: the CA certificates (PEM) that sign the upstream's certificate, or
    /// that certificate itself if self-signed. Required; the system's roots are not used.
    pub tls_ca: Option<PathBuf>,
    /// A certificate (PEM chain) of Warden's own, for an upstream that requires mutual
    /// TLS; with `tls_client_key`.
    pub tls_client_cert: Option<PathBuf>,
    /// The key of `tls_client_cert` (PEM), mode 0600.
    pub tls_client_key: Option<PathBuf>,
    /// Also accept TLS 1.2 from this upstream (default false: TLS 1.3 only).
    #[serde(default)]
    pub tls12: bool,
    /// Allow `http://` to a host that is not a loopback address (default false): prompts
    /// and answers then cross the network in the clear.
    #[serde(default)]
    pub insecure_plain_http: bool,
    /// `openai` or `kserve`.
    pub protocol: String,
    /// The model names it serves.
    pub models: Vec<String>,
    /// KServe only: the inputs each model takes (`[serve.upstreams.inputs]`, model name to
    /// a list of `{ name, datatype, shape }`); requests to such a model are checked
    /// against them.
    #[serde(default)]
    pub inputs: std::collections::HashMap<String, Vec<InputToml>>,
}

/// One declared input of a KServe upstream model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputToml {
    pub name: String,
    /// A KServe v2 datatype (`FP32`, `INT64`, `BYTES`, ...).
    pub datatype: String,
    /// Each dimension, or -1 where any size above 0 is accepted.
    pub shape: Vec<i64>,
}

fn default_listen() -> String {
    "127.0.0.1:8443".into()
}

fn default_admin_listen() -> String {
    "127.0.0.1:8444".into()
}

fn default_tls_cert() -> PathBuf {
    "tls/cert.pem".into()
}

fn default_tls_key() -> PathBuf {
    "tls/key.pem".into()
}

/// More threads than this serve nothing faster on any machine Warden runs on, and a typo
/// (an extra digit) should not start thousands.
const MAX_EVENT_LOOPS: usize = 256;

fn default_max_connections() -> usize {
    4096
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

fn default_send_timeout_ms() -> u64 {
    30_000
}

fn default_ledger_commit_ms() -> u64 {
    gateway::audit::LINGER.as_millis() as u64
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
            max_connections: default_max_connections(),
            event_loops: 0,
            durable_before_answer: false,
            ledger_commit_ms: default_ledger_commit_ms(),
            max_response_bytes: default_max_response_bytes(),
            request_timeout_ms: default_request_timeout_ms(),
            send_timeout_ms: default_send_timeout_ms(),
            upstreams: Vec::new(),
            limits: LimitsToml::default(),
            client_auth: default_client_auth(),
            client_ca: None,
            client_principal_from: default_client_principal_from(),
            client_models: Vec::new(),
            allow_logprobs: false,
            text: TextToml::default(),
            guards: GuardsToml::default(),
            jwt: None,
            policy: None,
            metrics_listen: None,
            admin_listen: default_admin_listen(),
        }
    }
}

impl ServeConfig {
    /// The metrics listener's address, if any: a loopback address only, since it speaks
    /// plain HTTP without credentials.
    pub fn metrics_listen(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        let Some(text) = &self.metrics_listen else {
            return Ok(None);
        };
        let addr: std::net::SocketAddr = text.parse().map_err(|e| {
            anyhow::anyhow!("[serve] metrics_listen = {text:?}: {e} (e.g. \"127.0.0.1:9464\")")
        })?;
        if !addr.ip().is_loopback() {
            bail!("[serve] metrics_listen = {text:?}: the metrics listener speaks plain HTTP without credentials, so it takes a loopback address only (scrape through a TLS proxy or an SSH tunnel)");
        }
        Ok(Some(addr))
    }

    /// The admin listener's address (`None`: off). Over plain HTTP (`insecure_plain_http`)
    /// it takes a loopback address only: tokens must not cross a network in the clear.
    pub fn admin_listen(&self, over: Option<&str>) -> anyhow::Result<Option<std::net::SocketAddr>> {
        let text = over.unwrap_or(&self.admin_listen);
        if text == "off" {
            return Ok(None);
        }
        let addr: std::net::SocketAddr = text.parse().map_err(|e| {
            anyhow::anyhow!("admin_listen = {text:?}: {e} (e.g. \"127.0.0.1:8444\", or \"off\")")
        })?;
        if self.insecure_plain_http && !addr.ip().is_loopback() {
            bail!("admin_listen = {text:?}: with insecure_plain_http the admin API would take tokens in the clear, so it takes a loopback address only");
        }
        Ok(Some(addr))
    }

    pub fn client_auth(&self) -> anyhow::Result<gateway::tls::ClientAuth> {
        gateway::tls::ClientAuth::parse(&self.client_auth).ok_or_else(|| {
            anyhow::anyhow!(
                "[serve] client_auth = {:?}: use \"off\", \"optional\" or \"required\"",
                self.client_auth
            )
        })
    }

    /// The TLS layer's settings, paths made absolute by `resolve`.
    pub fn tls(
        &self,
        resolve: impl Fn(&std::path::Path) -> PathBuf,
    ) -> anyhow::Result<gateway::tls::TlsSettings> {
        let principal_from = gateway::tls::PrincipalSource::parse(&self.client_principal_from)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "[serve] client_principal_from = {:?}: use \"cn\", \"san-dns\", \"san-uri\" or \"san-email\"",
                    self.client_principal_from
                )
            })?;
        let mut t = gateway::tls::TlsSettings::new(resolve(&self.tls_cert), resolve(&self.tls_key));
        t.allow_tls12 = self.tls12;
        t.client_auth = self.client_auth()?;
        t.client_ca = self.client_ca.as_deref().map(&resolve);
        t.principal_from = principal_from;
        Ok(t)
    }

    /// The gateway's view of this section (URLs and names checked), paths made absolute
    /// by `resolve`. Upstreams' TLS files are not read here (`load_upstream_tls`).
    pub fn gateway(
        &self,
        resolve: impl Fn(&std::path::Path) -> PathBuf,
    ) -> anyhow::Result<gateway::GatewayConfig> {
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
            let inputs = u
                .inputs
                .iter()
                .map(|(model, specs)| {
                    let specs = specs
                        .iter()
                        .map(|s| gateway::local::TensorSpec {
                            name: s.name.clone(),
                            datatype: s.datatype.clone(),
                            shape: s.shape.clone(),
                        })
                        .collect();
                    (model.clone(), specs)
                })
                .collect();
            let transport = gateway::config::Transport {
                ca: u.tls_ca.as_deref().map(&resolve),
                client_cert: u.tls_client_cert.as_deref().map(&resolve),
                client_key: u.tls_client_key.as_deref().map(&resolve),
                allow_tls12: u.tls12,
                insecure_plain_http: u.insecure_plain_http,
            };
            upstreams.push(
                gateway::Upstream::new(&u.name, &u.url, protocol, u.models.clone(), transport)
                    .and_then(|up| up.with_inputs(inputs))
                    .context("[[serve.upstreams]]")?,
            );
        }
        if self.request_timeout_ms == 0 {
            bail!("[serve] request_timeout_ms must be at least 1");
        }
        if self.send_timeout_ms == 0 {
            bail!("[serve] send_timeout_ms must be at least 1");
        }
        if !(1..=1000).contains(&self.ledger_commit_ms) {
            bail!("[serve] ledger_commit_ms must be 1 to 1000");
        }
        if self.event_loops > MAX_EVENT_LOOPS {
            bail!("[serve] event_loops must be 0 (one per core) to {MAX_EVENT_LOOPS}");
        }
        let config = gateway::GatewayConfig {
            listen,
            max_body_bytes: self.max_body_bytes,
            max_connections: self.max_connections,
            event_loops: self.event_loops,
            durable_before_answer: self.durable_before_answer,
            max_response_bytes: self.max_response_bytes,
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
            send_timeout: std::time::Duration::from_millis(self.send_timeout_ms),
            upstreams,
            limits: self.limits.gateway()?,
            text: gateway::validate::TextLimits {
                max_prompt_tokens: self.text.max_prompt_tokens,
                max_output_tokens: self.text.max_output_tokens,
                max_text_chars: self.text.max_text_chars,
                reject_invisible: self.text.reject_invisible,
                max_choices: self.text.max_choices,
            },
            keep_logprobs: self.allow_logprobs,
            client_auth: self.client_auth()?,
            client_models: self.client_models.clone(),
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
    /// Per-model request rates and token quotas, all principals together.
    #[serde(default)]
    pub models: HashMap<String, ModelToml>,
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

/// `[serve.limits.models.NAME]`: a request rate, a token quota, or both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelToml {
    pub requests_per_minute: Option<u64>,
    /// Default: a tenth of the rate (at least 1).
    pub burst: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    /// Default: one minute's worth.
    pub token_burst: Option<u64>,
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
        let (mut models, mut model_tokens) = (HashMap::new(), HashMap::new());
        for (name, m) in &self.models {
            let key = format!("[serve.limits.models.{name:?}]");
            if m.requests_per_minute.is_none() && m.tokens_per_minute.is_none() {
                bail!("{key}: give requests_per_minute, tokens_per_minute or both");
            }
            if let Some(n) = m.requests_per_minute {
                models.insert(name.clone(), rate(&key, n, m.burst.unwrap_or(tenth(n)))?);
            }
            if let Some(n) = m.tokens_per_minute {
                model_tokens.insert(name.clone(), rate(&key, n, m.token_burst.unwrap_or(n))?);
            }
        }
        Ok(gateway::limits::LimitsConfig {
            principal,
            principals,
            models,
            model_tokens,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_metrics_listener_takes_a_loopback_address_only() {
        let with = |addr: &str| ServeConfig {
            metrics_listen: Some(addr.to_string()),
            ..ServeConfig::default()
        };
        assert_eq!(ServeConfig::default().metrics_listen().unwrap(), None);
        assert!(with("127.0.0.1:9464").metrics_listen().unwrap().is_some());
        assert!(with("[::1]:9464").metrics_listen().unwrap().is_some());
        for bad in [
            "0.0.0.0:9464",
            "10.0.0.5:9464",
            "[::]:9464",
            "localhost:9464",
            "9464",
        ] {
            assert!(with(bad).metrics_listen().is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_sections_become_the_gateway_limits() {
        let text = "[limits]\nrequests_per_minute = 0\ntokens_per_minute = 600\n\
                    [limits.principals.batch]\nrequests_per_minute = 6000\ntokens_per_minute = 0\n\
                    [limits.models.llama]\nrequests_per_minute = 100\n";
        let c: ServeConfig = toml::from_str(text).unwrap();
        let l = c.limits.gateway().unwrap();
        assert_eq!(l.principal, None);
        assert_eq!(l.tokens.unwrap().burst, 600);
        let batch = l.principals["batch"];
        assert_eq!(batch.requests.unwrap().per_minute, 6000);
        assert_eq!(batch.requests.unwrap().burst, 600);
        assert_eq!(batch.tokens, None);
        assert_eq!(l.models["llama"].burst, 10);
        let bad: ServeConfig = toml::from_str("[limits]\nburst = 0\n").unwrap();
        assert!(bad.limits.gateway().is_err());
    }
}
