//! What the gateway reads from the registry while it runs: the API keys and the lockdown
//! switch. A poller thread checks the database every `interval` (cheaply: SQLite's
//! `data_version` changes only when another connection commits) and swaps in a fresh
//! snapshot, so a revoked key or `warden lockdown on` takes effect within one interval.
//! If the registry cannot be read, inference is refused (fail closed).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use registry::release::pattern_matches;
use registry::{ApiKey, Registry};

use crate::error::ApiError;
use crate::sharded::Swapped;
use crate::{FastMap, FastSet};

/// The setting that holds the kill switch (`on` or `off`).
pub const LOCKDOWN: &str = "lockdown";
/// The setting that holds the principals blocked from inference (a JSON array of names).
pub const BLOCKED: &str = "blocked";

/// Reads the blocked-principals setting (absent: nobody is blocked).
pub fn parse_blocked(value: Option<&str>) -> Result<Vec<String>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_str(v)
            .map_err(|e| format!("the `{BLOCKED}` setting is not a JSON list of names: {e}")),
    }
}

/// An API key as the gateway checks it.
#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub principal: String,
    pub hash: [u8; 32],
    pub models: Vec<String>,
    pub expires: Option<SystemTime>,
    pub revoked: bool,
    /// Who a request with this key is, made once when the key is read and shared by
    /// every request that presents it.
    pub caller: Arc<Caller>,
}

pub use crate::policy::Credential;

/// Who is calling: the principal of an authenticated request, the credential it used, and
/// the models that credential may use.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: String,
    /// The API key's id, `jwt:<jti or sub>`, or the client certificate's fingerprint.
    pub key_id: String,
    pub models: Vec<String>,
    pub credential: Credential,
    /// Groups from a JWT's groups claim (empty for other credentials).
    pub groups: Vec<String>,
}

impl Caller {
    /// Whether this caller's key may use `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.models.iter().any(|p| pattern_matches(p, model))
    }
}

#[derive(Default)]
struct Snapshot {
    keys: FastMap<String, Key>,
    blocked: FastSet<String>,
}

/// The registry's view, shared by every request.
pub struct Control {
    snapshot: Swapped<Snapshot>,
    lockdown: AtomicBool,
    /// False when the last read of the registry failed.
    readable: AtomicBool,
    stop: AtomicBool,
}

fn convert(k: ApiKey) -> Result<Key, String> {
    let expires = match &k.expires {
        Some(t) => Some(
            humantime::parse_rfc3339(t)
                .map_err(|e| format!("API key {}: expiry {t:?}: {e}", k.id))?,
        ),
        None => None,
    };
    let caller = Arc::new(Caller {
        principal: k.principal.clone(),
        key_id: k.id.clone(),
        models: k.models.clone(),
        credential: Credential::ApiKey,
        groups: Vec::new(),
    });
    Ok(Key {
        id: k.id,
        principal: k.principal,
        hash: k.hash,
        models: k.models,
        expires,
        revoked: k.revoked,
        caller,
    })
}

fn load(registry: &mut Registry) -> anyhow::Result<(Snapshot, bool)> {
    let (keys, lockdown, blocked) = registry.read(|tx| -> anyhow::Result<_> {
        Ok((tx.api_keys()?, tx.setting(LOCKDOWN)?, tx.setting(BLOCKED)?))
    })?;
    let mut map = FastMap::default();
    for k in keys {
        let k = convert(k).map_err(anyhow::Error::msg)?;
        map.insert(k.id.clone(), k);
    }
    let blocked = parse_blocked(blocked.as_deref()).map_err(anyhow::Error::msg)?;
    Ok((
        Snapshot {
            keys: map,
            blocked: blocked.into_iter().collect(),
        },
        lockdown.as_deref() == Some("on"),
    ))
}

impl Control {
    /// Reads the registry once.
    pub fn new(registry: &mut Registry) -> anyhow::Result<Arc<Control>> {
        let (snapshot, lockdown) = load(registry)?;
        Ok(Arc::new(Control {
            snapshot: Swapped::new(Arc::new(snapshot)),
            lockdown: AtomicBool::new(lockdown),
            readable: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        }))
    }

    /// Reads the registry now (after a change made in this process, so that it takes
    /// effect before the change is acknowledged).
    pub fn reload(&self, registry: &mut Registry) -> anyhow::Result<()> {
        let (snapshot, lockdown) = load(registry)?;
        self.lockdown.store(lockdown, Ordering::SeqCst);
        self.snapshot.set(Arc::new(snapshot));
        Ok(())
    }

    /// Starts the poller on its own connection to the registry at `db`.
    pub fn spawn_poller(
        self: &Arc<Self>,
        db: &Path,
        interval: Duration,
    ) -> anyhow::Result<JoinHandle<()>> {
        let mut registry = Registry::open(db)?;
        let control = Arc::clone(self);
        let db: PathBuf = db.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("serve-control".into())
            .spawn(move || {
                let mut seen = registry.data_version().ok();
                while !control.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    let version = registry.data_version().ok();
                    if version.is_some() && version == seen && control.readable.load(Ordering::Relaxed) {
                        continue;
                    }
                    seen = version;
                    match load(&mut registry) {
                        Ok((snapshot, lockdown)) => {
                            control.lockdown.store(lockdown, Ordering::SeqCst);
                            control.snapshot.set(Arc::new(snapshot));
                            control.readable.store(true, Ordering::SeqCst);
                        }
                        Err(e) => {
                            if control.readable.swap(false, Ordering::SeqCst) {
                                eprintln!("warden serve: reading the registry {} failed ({e:#}); refusing inference until it can be read", db.display());
                            }
                        }
                    }
                }
            })?;
        Ok(handle)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn locked_down(&self) -> bool {
        self.lockdown.load(Ordering::SeqCst)
    }

    pub fn readable(&self) -> bool {
        self.readable.load(Ordering::SeqCst)
    }

    /// The current snapshot, read from this thread's reference to it (this runs on every
    /// request and every chunk of a stream, from every event loop).
    fn with_current<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        self.snapshot.with(f)
    }

    /// Whether `principal` is blocked from inference (`warden block`).
    pub fn blocked(&self, principal: &str) -> bool {
        self.with_current(|s| s.blocked.contains(principal))
    }

    /// The principal an API key id belongs to (for counting failed sign-ins per principal).
    pub fn principal_of_key(&self, key_id: &str) -> Option<String> {
        self.with_current(|s| s.keys.get(key_id).map(|k| k.principal.clone()))
    }

    /// Checks an `Authorization` header. The key itself is never logged, echoed or kept.
    pub fn authenticate(
        &self,
        header: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<Arc<Caller>, (ApiError, Option<String>)> {
        let Some(header) = header else {
            return Err((
                ApiError::unauthorized(
                    "missing_api_key",
                    "an API key is required: send the header `Authorization: Bearer <key>`",
                ),
                None,
            ));
        };
        let malformed = || {
            (
                ApiError::unauthorized("malformed_api_key", "the Authorization header must be `Bearer <key>` with a Warden API key (wdn_...)"),
                None,
            )
        };
        let header = std::str::from_utf8(header).map_err(|_| malformed())?;
        let (scheme, token) = header.trim().split_once(' ').ok_or_else(malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(malformed());
        }
        let (id, digest) = registry::identity::parse_token(token).ok_or_else(malformed)?;
        self.with_current(|snapshot| Self::check_key(snapshot, id, &digest, now))
    }

    fn check_key(
        snapshot: &Snapshot,
        id: String,
        digest: &[u8; 32],
        now: SystemTime,
    ) -> Result<Arc<Caller>, (ApiError, Option<String>)> {
        let invalid = |id: &str| {
            (
                ApiError::unauthorized("invalid_api_key", "the API key is not valid"),
                Some(id.to_string()),
            )
        };
        let key = match snapshot.keys.get(&id) {
            Some(k) if registry::identity::matches(digest, &k.hash) => k,
            _ => return Err(invalid(&id)),
        };
        if key.revoked {
            return Err((
                ApiError::unauthorized("revoked_api_key", "the API key has been revoked"),
                Some(id),
            ));
        }
        if key.expires.is_some_and(|t| t <= now) {
            return Err((
                ApiError::unauthorized("expired_api_key", "the API key has expired"),
                Some(id),
            ));
        }
        Ok(Arc::clone(&key.caller))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_blocked_setting_is_a_list_of_names() {
        assert!(parse_blocked(None).unwrap().is_empty());
        assert_eq!(
            parse_blocked(Some(r#"["a","b"]"#)).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        for bad in ["a,b", "{}", "[1]", ""] {
            assert!(parse_blocked(Some(bad)).is_err(), "{bad}");
        }
    }
}
