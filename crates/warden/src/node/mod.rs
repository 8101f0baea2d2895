//! A Warden node's state in its data directory, and the operations on releases that the
//! command line (and later the admin API) run. Each operation checks who is acting, moves
//! the release, and appends its ledger entry inside the registry transaction, so that no
//! change is committed without its record.
//!
//! ```text
//! <data>/warden.toml        configuration (config.rs)
//! <data>/registry.db        releases, approvals, principals (SQLite)
//! <data>/ledger/            the ledger; its key in <data>/keys/ledger.key
//! <data>/vault/             sealed blobs and wrapped data keys
//! <data>/keys/kek.key       the file provider's key-encryption key (if used)
//! <data>/keys/digest.key    the key of request and response digests (`warden serve`)
//! <data>/tls/               the server's certificate and key (`warden serve`)
//! <data>/serve.sock         admin changes while `warden serve` runs (remote.rs)
//! ```

pub mod admit;
pub mod apikeys;
pub mod digests;
pub mod init;
pub mod integrity;
pub mod lifecycle;
pub mod principals;
pub mod remote;
pub mod served;
pub mod views;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context};
use ledger::record::Record;
use ledger::{Ledger, Options};
use registry::{Principal, Registry, Role};
use vault::provider::file::FileKek;
use vault::provider::pkcs11::{Pkcs11Config, Pkcs11Kek};
use vault::provider::KeyProvider;
use vault::Vault;

use crate::config::{self, Config, Provider};

/// The registry database's name in the data directory.
pub const REGISTRY_DB: &str = "registry.db";
/// How long a command waits for another process holding the ledger.
const LEDGER_WAIT: Duration = Duration::from_secs(30);

/// A refusal: the request was understood and is not allowed (exit 2), as opposed to an
/// error (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

pub fn denied(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Denied(msg.into()))
}

/// The data directory, opened.
pub struct Node {
    pub data_dir: PathBuf,
    pub config: Config,
    pub registry: Registry,
    /// In `warden serve`: the server's ledger, which every change made in the server
    /// (admin requests over its socket) records into.
    pub shared_ledger: Option<Arc<Ledger>>,
}

/// The ledger as a change holds it: opened for it alone, or the running server's.
pub enum LedgerHandle {
    Owned(Ledger),
    Shared(Arc<Ledger>),
}

impl std::ops::Deref for LedgerHandle {
    type Target = Ledger;
    fn deref(&self) -> &Ledger {
        match self {
            LedgerHandle::Owned(l) => l,
            LedgerHandle::Shared(l) => l,
        }
    }
}

impl LedgerHandle {
    /// Closes a ledger opened for this change (syncing it); leaves the server's open.
    pub fn close(self) -> ledger::Result<()> {
        match self {
            LedgerHandle::Owned(l) => l.close(),
            LedgerHandle::Shared(_) => Ok(()),
        }
    }
}

/// Now, as the ledger writes times (RFC 3339, UTC, milliseconds). A clock that format
/// cannot write (before 1970) is an error, not a panic.
pub fn now() -> anyhow::Result<String> {
    rfc3339_millis(SystemTime::now())
}

fn rfc3339_millis(time: SystemTime) -> anyhow::Result<String> {
    let text = ledger::record::rfc3339_millis(time);
    if text.is_empty() {
        bail!("the system clock is set before 1970 (or past 9999): set the clock (e.g. with NTP) and try again");
    }
    Ok(text)
}

impl Node {
    /// Opens an initialised data directory.
    pub fn open(data_dir: &Path, config_path: Option<&Path>) -> anyhow::Result<Node> {
        let db = data_dir.join(REGISTRY_DB);
        if !db.exists() {
            bail!(
                "{} is not a Warden data directory (no {REGISTRY_DB}): create one with `warden init`",
                data_dir.display()
            );
        }
        let config_path = config_path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| data_dir.join(config::FILE_NAME));
        let config = Config::load(&config_path)?;
        let registry = Registry::open(&db)?;
        Ok(Node {
            data_dir: data_dir.to_path_buf(),
            config,
            registry,
            shared_ledger: None,
        })
    }

    pub fn path(&self, relative: &Path) -> PathBuf {
        self.data_dir.join(relative)
    }

    /// The vault with the configured key provider.
    pub fn vault(&self) -> anyhow::Result<Vault> {
        let provider: Box<dyn KeyProvider> = match self.config.vault.provider {
            None => bail!(
                "no key provider configured: set [vault] provider = \"pkcs11\" (an HSM) or \"file\" (development) in {}",
                config::FILE_NAME
            ),
            Some(Provider::File) => {
                let path = self.kek_file();
                Box::new(FileKek::load(&path).with_context(|| {
                    format!("loading the key-encryption key {}", path.display())
                })?)
            }
            Some(Provider::Pkcs11) => {
                let p = self
                    .config
                    .vault
                    .pkcs11
                    .as_ref()
                    .ok_or_else(|| anyhow!("[vault.pkcs11] is missing"))?;
                let pin = self.hsm_pin()?;
                Box::new(
                    Pkcs11Kek::open(
                        &Pkcs11Config {
                            module: p.module.clone(),
                            token: p.token.clone(),
                            key_label: p.key_label.clone(),
                        },
                        &pin,
                    )
                    .context("opening the key-encryption key in the HSM")?,
                )
            }
        };
        Ok(Vault::new(&self.data_dir.join("vault"), provider))
    }

    pub fn kek_file(&self) -> PathBuf {
        self.path(
            self.config
                .vault
                .kek_file
                .as_deref()
                .unwrap_or(Path::new("keys/kek.key")),
        )
    }

    /// The HSM user PIN from the configured file or environment variable; never echoed.
    pub fn hsm_pin(&self) -> anyhow::Result<zeroize::Zeroizing<String>> {
        let p = self
            .config
            .vault
            .pkcs11
            .as_ref()
            .ok_or_else(|| anyhow!("[vault.pkcs11] is missing"))?;
        if let Some(file) = &p.pin_file {
            let path = self.path(file);
            let text =
                zeroize::Zeroizing::new(crate::cmd::signing::read_small(&path, "HSM PIN file")?);
            return Ok(zeroize::Zeroizing::new(
                text.lines().next().unwrap_or_default().to_string(),
            ));
        }
        std::env::var(&p.pin_env)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| {
                anyhow!(
                    "the HSM PIN is not set: put it in the environment variable {} or name a pin_file in [vault.pkcs11]",
                    p.pin_env
                )
            })
    }

    /// The ledger to record a change in: the server's when this runs inside it, else
    /// opened for the change (see [`Node::open_ledger`]).
    pub fn ledger(&self) -> anyhow::Result<LedgerHandle> {
        match &self.shared_ledger {
            Some(l) => Ok(LedgerHandle::Shared(Arc::clone(l))),
            None => self.open_ledger().map(LedgerHandle::Owned),
        }
    }

    /// Opens the ledger for writing, waiting while another Warden process holds it.
    pub fn open_ledger(&self) -> anyhow::Result<Ledger> {
        let paths = crate::cmd::ledger::Paths::new(&self.data_dir);
        let key = paths.read_key()?;
        let start = Instant::now();
        loop {
            match Ledger::open(&paths.ledger, &key, Options::default()) {
                Ok(l) => return Ok(l),
                Err(ledger::Error::Locked(_)) if start.elapsed() < LEDGER_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(e)
                        .context("opening the ledger (another Warden process may hold it)")
                }
            }
        }
    }

    /// Who is acting: the principal whose token is presented, if it holds one of `roles`.
    pub fn authenticate(
        &mut self,
        token: Option<&str>,
        roles: &[Role],
    ) -> anyhow::Result<Principal> {
        let Some(token) = token else {
            return Err(denied(
                "this command acts as a principal: set WARDEN_TOKEN or pass --token-file FILE (the token `warden init` or `warden principal add` printed)",
            ));
        };
        let Some((id, hash)) = registry::identity::parse_token(token) else {
            return Err(denied("the credential is not a Warden token (wdn_…)"));
        };
        let found = self
            .registry
            .read(|tx| tx.principal_by_token_id(&id).map_err(anyhow::Error::from))?;
        let principal = match found {
            Some(p) if registry::identity::matches(&hash, &p.token_hash) => p,
            _ => {
                return Err(denied(
                    "the credential is not valid (unknown or rotated token)",
                ))
            }
        };
        if principal.disabled {
            return Err(denied(format!("principal {} is disabled", principal.name)));
        }
        if !roles.is_empty() && !roles.iter().any(|r| principal.has(*r)) {
            let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
            return Err(denied(format!(
                "{} may not do this: it needs the role {}",
                principal.name,
                names.join(" or ")
            )));
        }
        Ok(principal)
    }
}

/// Appends a record and returns its index.
pub fn record(ledger: &Ledger, record: &Record) -> anyhow::Result<u64> {
    Ok(ledger
        .append_record(record)
        .context("recording in the ledger (nothing was changed)")?
        .index)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::rfc3339_millis;

    #[test]
    fn times_are_rfc3339_to_the_millisecond_and_a_clock_before_1970_is_an_error() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339_millis(t).unwrap(), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            rfc3339_millis(SystemTime::UNIX_EPOCH).unwrap(),
            "1970-01-01T00:00:00.000Z"
        );
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        let e = rfc3339_millis(before).unwrap_err().to_string();
        assert!(e.contains("before 1970"), "{e}");
    }
}
