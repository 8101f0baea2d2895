//! `warden.toml`: the one configuration file, in the data directory unless `--config`
//! names another. Every key is documented in `docs/configuration.md`; unknown keys are
//! refused so that a typo cannot silently leave a protection off. Paths are relative to
//! the data directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

pub use registry::release::pattern_matches;
pub use serve::{ServeConfig, UpstreamConfig};

mod serve;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "warden.toml";
const MAX_CONFIG: u64 = 1 << 20;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub vault: VaultConfig,
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    #[serde(default)]
    pub admission: AdmissionConfig,
    #[serde(default)]
    pub trust: TrustConfig,
    #[serde(default)]
    pub serve: ServeConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
}

/// Where the key-encryption key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// A key file (development and small sites); `posture` reports it.
    File,
    /// An HSM through PKCS#11.
    Pkcs11,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// No default: the operator chooses, and `warden init` writes the choice.
    pub provider: Option<Provider>,
    /// The file provider's key (default `keys/kek.key`).
    pub kek_file: Option<PathBuf>,
    pub pkcs11: Option<Pkcs11Config>,
    /// Directories holding copies of wrapped data keys (laid out like `vault/keys`), which
    /// `warden shred` destroys too.
    #[serde(default)]
    pub backup_key_dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// The KEK's label in the token (default `warden-kek`).
    #[serde(default = "default_key_label")]
    pub key_label: String,
    /// The environment variable holding the user PIN (default `WARDEN_HSM_PIN`).
    #[serde(default = "default_pin_env")]
    pub pin_env: String,
    /// Or a file holding it (first line), mode 0600.
    pub pin_file: Option<PathBuf>,
}

fn default_key_label() -> String {
    "warden-kek".into()
}

fn default_pin_env() -> String {
    "WARDEN_HSM_PIN".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Distinct approvers needed to promote a release (default 2).
    #[serde(default = "two")]
    pub required: usize,
    /// Distinct approvers needed to export a release's weights (default 2).
    #[serde(default = "two")]
    pub export_required: usize,
}

fn two() -> usize {
    2
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            required: 2,
            export_required: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Scan findings at or above this severity reject the release (default `high`).
    #[serde(default = "default_reject_at")]
    pub reject_at: String,
    /// Largest model admitted, in bytes (default 256 GiB).
    #[serde(default = "default_max_model_bytes")]
    pub max_model_bytes: u64,
}

fn default_reject_at() -> String {
    "high".into()
}

fn default_max_model_bytes() -> u64 {
    256 << 30
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            reject_at: default_reject_at(),
            max_model_bytes: default_max_model_bytes(),
        }
    }
}

impl AdmissionConfig {
    pub fn reject_at(&self) -> anyhow::Result<scan::Severity> {
        self.reject_at
            .parse()
            .map_err(|e| anyhow::anyhow!("[admission] reject_at: {e}"))
    }
}

/// Who may sign which models.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    #[serde(default)]
    pub signers: Vec<Signer>,
    /// Model names (patterns with `*`) admitted without a signature. Empty by default;
    /// `posture` reports any entry.
    #[serde(default)]
    pub unsigned_models: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// A name for reports.
    pub name: String,
    /// The signer's public key (PEM): key mode.
    pub key: Option<PathBuf>,
    /// Trust anchors (PEM certificates): certificate mode.
    pub roots: Option<PathBuf>,
    /// Models this signer may sign (patterns with `*`; default: all).
    #[serde(default = "all_models")]
    pub models: Vec<String>,
}

fn all_models() -> Vec<String> {
    vec!["*".into()]
}

/// `[runtime]`: live ONNX releases served by `warden serve` in sandboxed worker processes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Serve live releases holding an `.onnx` file in the sandboxed runtime (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Address-space limit of each worker, in MiB (default 1024).
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// CPU-time limit of each worker over its life, in seconds (default 3600); a worker
    /// that reaches it is restarted.
    #[serde(default = "default_cpu_seconds")]
    pub cpu_seconds: u64,
    /// How long one inference may take before the worker is killed (default 10000 ms).
    #[serde(default = "default_runtime_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How long a worker may take to lock down and load its model (default 10000 ms).
    #[serde(default = "default_runtime_timeout_ms")]
    pub start_timeout_ms: u64,
    /// Run workers even where the kernel lacks a sandbox layer (default false: refuse).
    /// `warden posture` reports it.
    #[serde(default)]
    pub allow_weaker_sandbox: bool,
    /// What a classifier returns by default: `label`, `label-score` (default: the label
    /// and its score rounded to two decimals) or `scores` (every output in full; reported
    /// by `warden posture`).
    #[serde(default = "default_output")]
    pub output: String,
    /// Per model name: class labels and output shaping.
    #[serde(default)]
    pub models: std::collections::BTreeMap<String, RuntimeModelConfig>,
}

/// `[runtime.models.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeModelConfig {
    /// Class names, in the order of the model's output (default: class indices).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Overrides `[runtime] output` for this model.
    pub output: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_memory_mib() -> u64 {
    1024
}

fn default_cpu_seconds() -> u64 {
    3600
}

fn default_runtime_timeout_ms() -> u64 {
    10_000
}

fn default_output() -> String {
    "label-score".into()
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            enabled: true,
            memory_mib: default_memory_mib(),
            cpu_seconds: default_cpu_seconds(),
            request_timeout_ms: default_runtime_timeout_ms(),
            start_timeout_ms: default_runtime_timeout_ms(),
            allow_weaker_sandbox: false,
            output: default_output(),
            models: Default::default(),
        }
    }
}

impl RuntimeConfig {
    /// The output shaping of `model`.
    pub fn shaping(&self, model: &str) -> anyhow::Result<gateway::OutputShaping> {
        let name = self
            .models
            .get(model)
            .and_then(|m| m.output.as_deref())
            .unwrap_or(&self.output);
        gateway::OutputShaping::parse(name).ok_or_else(|| {
            anyhow::anyhow!(
                "[runtime] output {name:?} (for model {model:?}) is not \"label\", \"label-score\" or \"scores\""
            )
        })
    }

    /// The worker limits.
    pub fn limits(&self) -> anyhow::Result<runtime::Limits> {
        if self.memory_mib < 64 {
            bail!("[runtime] memory_mib must be at least 64");
        }
        if self.cpu_seconds == 0 || self.request_timeout_ms == 0 || self.start_timeout_ms == 0 {
            bail!(
                "[runtime] cpu_seconds, request_timeout_ms and start_timeout_ms must be at least 1"
            );
        }
        Ok(runtime::Limits {
            memory_bytes: self.memory_mib.saturating_mul(1 << 20),
            cpu_seconds: self.cpu_seconds,
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
            start_timeout: std::time::Duration::from_millis(self.start_timeout_ms),
            ..runtime::Limits::default()
        })
    }

    fn check(&self) -> anyhow::Result<()> {
        self.limits()?;
        self.shaping("")?;
        for (name, m) in &self.models {
            self.shaping(name)?;
            if m.labels.iter().any(|l| l.is_empty() || l.len() > 128) {
                bail!("[runtime.models.{name}] labels must be 1 to 128 characters each");
            }
        }
        Ok(())
    }
}

impl Config {
    /// Reads the configuration; a missing file gives the defaults.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if text.len() as u64 > MAX_CONFIG {
            bail!("{} is larger than {MAX_CONFIG} bytes", path.display());
        }
        let text = std::str::from_utf8(&text)
            .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        let config: Config = toml::from_str(text).with_context(|| {
            format!(
                "{} (keys are documented in docs/configuration.md)",
                path.display()
            )
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        self.admission.reject_at()?;
        if self.approvals.required == 0 || self.approvals.export_required == 0 {
            bail!("[approvals] required and export_required must be at least 1");
        }
        for s in &self.trust.signers {
            if s.key.is_some() == s.roots.is_some() {
                bail!(
                    "[[trust.signers]] {:?}: give exactly one of `key` (a public key) or `roots` (certificate anchors)",
                    s.name
                );
            }
        }
        // Paths as written: nothing is read here.
        self.serve.gateway(Path::to_path_buf)?;
        self.runtime.check()?;
        if self.vault.provider == Some(Provider::Pkcs11) && self.vault.pkcs11.is_none() {
            bail!("[vault] provider = \"pkcs11\" needs a [vault.pkcs11] section (module, token)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        for (text, needle) in [
            ("[vault]\nprovder = \"file\"\n", "unknown field"),
            ("[admission]\nreject_at = \"severe\"\n", "reject_at"),
            ("[approvals]\nrequired = 0\n", "at least 1"),
            ("[vault]\nprovider = \"pkcs11\"\n", "[vault.pkcs11]"),
            ("[[trust.signers]]\nname = \"x\"\n", "exactly one of"),
            ("[serve]\nlisten = \"nowhere\"\n", "listen"),
            ("[serve]\ntls13 = true\n", "unknown field"),
            ("[serve]\nsend_timeout_ms = 0\n", "send_timeout_ms"),
            ("[serve]\nledger_commit_ms = 0\n", "ledger_commit_ms must be 1 to 1000"),
            ("[serve]\nledger_commit_ms = 5000\n", "ledger_commit_ms must be 1 to 1000"),
            ("[serve]\nevent_loops = 257\n", "event_loops must be 0 (one per core) to 256"),
            ("[serve]\nevent_loops = -1\n", "event_loops"),
            ("[runtime]\noutput = \"all\"\n", "label-score"),
            ("[runtime]\nmemory_mib = 1\n", "memory_mib"),
            ("[runtime.models.iris]\noutput = \"probs\"\n", "iris"),
            ("[runtime.models.iris]\nlabel = [\"a\"]\n", "unknown field"),
            (
                "[[serve.upstreams]]\nname = \"a\"\nurl = \"http://127.0.0.1:1\"\nprotocol = \"grpc\"\nmodels = [\"m\"]\n",
                "protocol",
            ),
            (
                "[[serve.upstreams]]\nname = \"a\"\nurl = \"https://x:1\"\nprotocol = \"openai\"\nmodels = [\"m\"]\n",
                "needs tls_ca",
            ),
            (
                "[[serve.upstreams]]\nname = \"a\"\nurl = \"http://10.1.2.3:1\"\nprotocol = \"openai\"\nmodels = [\"m\"]\n",
                "insecure_plain_http = true",
            ),
            (
                "[[serve.upstreams]]\nname = \"a\"\nurl = \"ftp://x:1\"\nprotocol = \"openai\"\nmodels = [\"m\"]\n",
                "must start with https://",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", Config::load(&path).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
        let missing = Config::load(&dir.path().join("none.toml")).unwrap();
        assert_eq!(missing.approvals.required, 2);
        assert!(missing.vault.provider.is_none());
    }
}
