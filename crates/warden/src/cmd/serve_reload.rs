//! Re-reads what `warden serve` may be given anew while it runs: the TLS certificate, key
//! and client CAs, the upstreams' CA files and client certificates, the policy file, and
//! the identity provider's JWKS. A change is recorded in the ledger; a
//! broken file leaves the previous material in use and is reported once (not on every
//! poll) until it changes again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use std::path::PathBuf;

use anyhow::Context;
use gateway::jwt::JwtVerifier;
use gateway::tls::TlsReloader;
use gateway::Gateway;
use ledger::record::Record;
use ledger::Ledger;

use crate::node;

/// How often the files are checked.
pub const EVERY: Duration = Duration::from_secs(5);

/// What is reloaded.
pub struct Reloadable {
    pub tls: Option<Arc<TlsReloader>>,
    pub jwt: Option<Arc<JwtVerifier>>,
    /// The policy file, with the gateway it is put in force in.
    pub policy: Option<(PathBuf, Arc<Gateway>)>,
    /// The TLS files of `https` upstreams, already in force.
    pub upstream_tls: Vec<gateway::config::UpstreamTlsFiles>,
}

/// Most bytes of a policy file.
const MAX_POLICY_FILE: u64 = gateway::policy::MAX_TEXT as u64;

/// Reads and validates a policy file.
pub fn read_policies(
    path: &std::path::Path,
) -> anyhow::Result<(gateway::policy::Policies, String)> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading the policy file {}", path.display()))?
        .len();
    if size > MAX_POLICY_FILE {
        anyhow::bail!("{} is larger than {MAX_POLICY_FILE} bytes", path.display());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the policy file {} (UTF-8 text)", path.display()))?;
    let policies = gateway::policy::Policies::parse(&text, &path.display().to_string())?;
    Ok((policies, text))
}

/// One reloadable thing, and the last error reported for it.
struct Watched {
    kind: &'static str,
    what: String,
    /// The upstream it belongs to, named in its records.
    upstream: Option<String>,
    reload: Box<dyn FnMut() -> anyhow::Result<bool> + Send>,
    last_error: Option<String>,
}

impl Watched {
    fn check(&mut self, ledger: &Ledger) {
        match (self.reload)() {
            Ok(changed) => {
                self.last_error = None;
                if changed {
                    eprintln!("warden serve: reloaded the {}", self.what);
                    let _ = node::record(
                        ledger,
                        &self.with_upstream(Record::new(self.kind, "warden")),
                    );
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                if self.last_error.as_deref() != Some(message.as_str()) {
                    eprintln!(
                        "warden serve: reloading the {} failed, the previous one stays in force: {message}",
                        self.what
                    );
                    let _ = node::record(
                        ledger,
                        &self.with_upstream(
                            Record::new("alert.reload-failed", "warden").attr("what", &self.what),
                        ),
                    );
                    self.last_error = Some(message);
                }
            }
        }
    }
}

impl Watched {
    fn with_upstream(&self, record: Record) -> Record {
        match &self.upstream {
            Some(name) => record.attr("upstream", name),
            None => record,
        }
    }
}

/// Checks every [`EVERY`] until `stop` is set.
pub fn spawn(
    what: Reloadable,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let mut watched = Vec::new();
    if let Some(tls) = what.tls {
        watched.push(Watched {
            kind: "config.tls-reload",
            what: "TLS certificate, key or client CAs".into(),
            upstream: None,
            reload: Box::new(move || tls.reload()),
            last_error: None,
        });
    }
    if let Some(jwt) = what.jwt {
        watched.push(Watched {
            kind: "config.jwks-reload",
            what: "JWKS of [serve.jwt]".into(),
            upstream: None,
            reload: Box::new(move || jwt.reload()),
            last_error: None,
        });
    }
    if let Some((path, gw)) = what.policy {
        let mut current = std::fs::read_to_string(&path).unwrap_or_default();
        watched.push(Watched {
            kind: "config.policy-reload",
            what: "policy file ([serve] policy)".into(),
            upstream: None,
            reload: Box::new(move || {
                if std::fs::read_to_string(&path).is_ok_and(|t| t == current) {
                    return Ok(false);
                }
                let (policies, text) = read_policies(&path)?;
                gw.set_policies(policies);
                current = text;
                Ok(true)
            }),
            last_error: None,
        });
    }
    for mut files in what.upstream_tls {
        watched.push(Watched {
            kind: "config.upstream-tls-reload",
            what: format!(
                "CA file or client certificate of upstream {:?}",
                files.name()
            ),
            upstream: Some(files.name().to_string()),
            reload: Box::new(move || files.reload()),
            last_error: None,
        });
    }
    std::thread::Builder::new()
        .name("serve-reload".into())
        .spawn(move || {
            let tick = Duration::from_millis(100);
            let mut waited = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                waited += tick;
                if waited < EVERY {
                    continue;
                }
                waited = Duration::ZERO;
                for w in &mut watched {
                    w.check(&ledger);
                }
            }
        })
}
