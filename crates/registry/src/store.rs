//! The registry's storage: one SQLite database (WAL, `synchronous=FULL`) with versioned
//! migrations. Every change runs in a `BEGIN IMMEDIATE` transaction, so two Warden
//! processes acting at once queue behind SQLite's write lock instead of interleaving, and
//! a transaction that fails part-way leaves nothing behind.
//!
//! Callers that must record a change in the ledger do it inside [`Registry::write`]'s
//! closure, after checking and before the commit: a change is committed only once its
//! ledger entry is durable.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::approval::Approval;
use crate::identity::{ApiKey, Principal, Role};
use crate::lifecycle::State;
use crate::release::ReleaseId;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE principals (
    name        TEXT PRIMARY KEY,
    roles       TEXT NOT NULL,
    token_id    TEXT NOT NULL UNIQUE,
    token_hash  BLOB NOT NULL,
    created     TEXT NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE releases (
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    state         TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    serialization TEXT NOT NULL,
    admitted_by   TEXT NOT NULL,
    admitted_at   TEXT NOT NULL,
    signer        TEXT,
    findings      INTEGER NOT NULL,
    max_severity  TEXT,
    reasons       TEXT NOT NULL,
    aibom         TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE files (
    name     TEXT NOT NULL,
    version  TEXT NOT NULL,
    path     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    sha256   TEXT NOT NULL,
    digests  TEXT NOT NULL,
    PRIMARY KEY (name, version, path),
    FOREIGN KEY (name, version) REFERENCES releases (name, version)
);
CREATE TABLE approvals (
    name             TEXT NOT NULL,
    version          TEXT NOT NULL,
    purpose          TEXT NOT NULL,
    approver         TEXT NOT NULL,
    accepts_findings INTEGER NOT NULL,
    time             TEXT NOT NULL,
    PRIMARY KEY (name, version, purpose, approver),
    FOREIGN KEY (name, version) REFERENCES releases (name, version)
);
CREATE TABLE history (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    name     TEXT NOT NULL,
    version  TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor    TEXT NOT NULL,
    time     TEXT NOT NULL,
    ledger_index INTEGER,
    note     TEXT NOT NULL DEFAULT ''
);
CREATE TABLE live (
    model     TEXT PRIMARY KEY,
    version   TEXT NOT NULL,
    previous  TEXT,
    since     TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE api_keys (
    id        TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    hash      BLOB NOT NULL,
    models    TEXT NOT NULL,
    created   TEXT NOT NULL,
    expires   TEXT,
    revoked   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE settings (
    name    TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    actor   TEXT NOT NULL,
    time    TEXT NOT NULL
);
"#,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("registry database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the registry database was written by a newer Warden (schema {found}, this build knows {known}); upgrade Warden")]
    TooNew { found: i64, known: i64 },
    #[error("registry database: {0}")]
    Io(String),
    #[error("registry database holds a bad value: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The registry database.
pub struct Registry {
    conn: Connection,
}

/// A release as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: ReleaseId,
    pub state: State,
    /// `sha256:<hex>`: the root digest of the (signed) manifest.
    pub manifest: String,
    /// How the manifest was computed (JSON: method, shard size, hash), to recompute it on
    /// every load.
    pub serialization: serde_json::Value,
    pub admitted_by: String,
    pub admitted_at: String,
    /// Who signed it, when it was signed.
    pub signer: Option<String>,
    pub findings: u64,
    pub max_severity: Option<String>,
    /// Why it was rejected or revoked.
    pub reasons: Vec<String>,
    /// The CycloneDX AI-BOM (JSON).
    #[serde(skip)]
    pub aibom: String,
}

/// One file of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRow {
    pub path: String,
    pub size: u64,
    /// SHA-256 of the whole plaintext, hex.
    pub sha256: String,
    /// The manifest's resources for this file: `[[start, end, hex]]` (one entry spanning the
    /// file for whole-file manifests).
    pub digests: Vec<(u64, u64, String)>,
}

/// One step of a release's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub from: Option<State>,
    pub to: State,
    pub actor: String,
    pub time: String,
    pub ledger_index: Option<u64>,
    pub note: String,
}

/// Which release of a model is live, and the last known good one before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Live {
    pub model: String,
    pub version: String,
    pub previous: Option<String>,
    pub since: String,
}

/// What approvals are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Promotion from admitted to approved.
    Promote,
    /// Decrypting weights outside the runtime; consumed by the export.
    Export,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Promote => "promote",
            Purpose::Export => "export",
        }
    }
}

impl Registry {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Registry> {
        // Created owner-only before SQLite opens it: its -wal and -shm files copy the mode.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrate(&mut conn)?;
        Ok(Registry { conn })
    }

    /// Runs `f` in a write transaction: committed if it returns `Ok`, rolled back otherwise.
    pub fn write<T, E>(
        &mut self,
        f: impl FnOnce(&Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&Tx { c: &tx })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// A number that changes whenever another connection commits a change to the
    /// database: a cheap way to poll for changes (`PRAGMA data_version`).
    pub fn data_version(&mut self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// A consistent read view.
    pub fn read<T, E>(
        &mut self,
        f: impl FnOnce(&Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        f(&Tx { c: &tx })
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            found: version,
            known,
        });
    }
    for sql in MIGRATIONS.iter().skip(version as usize) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", known)?;
    tx.commit()?;
    Ok(())
}

/// Queries and changes inside one transaction.
pub struct Tx<'c> {
    c: &'c Connection,
}

fn state_of(s: &str) -> Result<State> {
    State::ALL
        .into_iter()
        .find(|st| st.name() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown release state {s:?}")))
}

fn json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// SQLite integers are signed; counts and sizes here never reach 2^63.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}

impl Tx<'_> {
    // --- principals ---

    pub fn add_principal(&self, p: &Principal) -> Result<bool> {
        let roles: Vec<&str> = p.roles.iter().map(|r| r.name()).collect();
        let n = self.c.execute(
            "INSERT OR IGNORE INTO principals (name, roles, token_id, token_hash, created, disabled)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                p.name,
                roles.join(","),
                p.token_id,
                p.token_hash.as_slice(),
                p.created,
                p.disabled
            ],
        )?;
        Ok(n == 1)
    }

    fn principal_where(&self, clause: &str, arg: &str) -> Result<Option<Principal>> {
        let sql = format!(
            "SELECT name, roles, token_id, token_hash, created, disabled FROM principals WHERE {clause}"
        );
        let row = self
            .c
            .query_row(&sql, [arg], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, bool>(5)?,
                ))
            })
            .optional()?;
        row.map(|(name, roles, token_id, hash, created, disabled)| {
            let roles = roles
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("role {s:?}"))))
                .collect::<Result<Vec<_>>>()?;
            let token_hash = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("token digest of {name}")))?;
            Ok(Principal {
                name,
                roles,
                created,
                disabled,
                token_id,
                token_hash,
            })
        })
        .transpose()
    }

    pub fn principal(&self, name: &str) -> Result<Option<Principal>> {
        self.principal_where("name = ?1", name)
    }

    pub fn principal_by_token_id(&self, token_id: &str) -> Result<Option<Principal>> {
        self.principal_where("token_id = ?1", token_id)
    }

    pub fn principals(&self) -> Result<Vec<Principal>> {
        let names: Vec<String> = self
            .c
            .prepare("SELECT name FROM principals ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for n in names {
            out.extend(self.principal(&n)?);
        }
        Ok(out)
    }

    pub fn count_admins(&self) -> Result<u64> {
        let all = self.principals()?;
        Ok(all
            .iter()
            .filter(|p| !p.disabled && p.has(Role::Admin))
            .count() as u64)
    }

    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool> {
        let n = self.c.execute(
            "UPDATE principals SET disabled = ?2 WHERE name = ?1",
            params![name, disabled],
        )?;
        Ok(n == 1)
    }

    pub fn set_token(&self, name: &str, token_id: &str, token_hash: &[u8; 32]) -> Result<bool> {
        let n = self.c.execute(
            "UPDATE principals SET token_id = ?2, token_hash = ?3 WHERE name = ?1",
            params![name, token_id, token_hash.as_slice()],
        )?;
        Ok(n == 1)
    }

    // --- releases ---

    /// Records a new release with its files. `false` when `name@version` already exists
    /// (releases are immutable; a version is never reused).
    pub fn insert_release(&self, r: &Release, files: &[FileRow]) -> Result<bool> {
        let n = self.c.execute(
            "INSERT OR IGNORE INTO releases (name, version, state, manifest, serialization,
                admitted_by, admitted_at, signer, findings, max_severity, reasons, aibom)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                r.id.name,
                r.id.version,
                r.state.name(),
                r.manifest,
                to_json(&r.serialization)?,
                r.admitted_by,
                r.admitted_at,
                r.signer,
                int(r.findings),
                r.max_severity,
                to_json(&r.reasons)?,
                r.aibom,
            ],
        )?;
        if n == 0 {
            return Ok(false);
        }
        let mut stmt = self.c.prepare(
            "INSERT INTO files (name, version, path, size, sha256, digests) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for f in files {
            stmt.execute(params![
                r.id.name,
                r.id.version,
                f.path,
                int(f.size),
                f.sha256,
                to_json(&f.digests)?
            ])?;
        }
        Ok(true)
    }

    pub fn exists(&self, id: &ReleaseId) -> Result<bool> {
        Ok(self
            .c
            .query_row(
                "SELECT 1 FROM releases WHERE name = ?1 AND version = ?2",
                params![id.name, id.version],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn release(&self, id: &ReleaseId) -> Result<Option<Release>> {
        self.releases_where("name = ?1 AND version = ?2", params![id.name, id.version])
            .map(|mut v| v.pop())
    }

    /// Every release, or every release of one model, oldest first.
    pub fn releases(&self, model: Option<&str>) -> Result<Vec<Release>> {
        match model {
            Some(m) => self.releases_where("name = ?1", params![m]),
            None => self.releases_where("1", params![]),
        }
    }

    fn releases_where(&self, clause: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Release>> {
        let sql = format!(
            "SELECT name, version, state, manifest, serialization, admitted_by, admitted_at,
                    signer, findings, max_severity, reasons, aibom
             FROM releases WHERE {clause} ORDER BY admitted_at, name, version"
        );
        let mut stmt = self.c.prepare(&sql)?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    (r.get::<_, String>(5)?, r.get::<_, String>(6)?),
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(
                    (name, version),
                    state,
                    manifest,
                    ser,
                    (by, at),
                    signer,
                    findings,
                    sev,
                    reasons,
                    aibom,
                )| {
                    Ok(Release {
                        id: ReleaseId { name, version },
                        state: state_of(&state)?,
                        manifest,
                        serialization: json(&ser, "serialization")?,
                        admitted_by: by,
                        admitted_at: at,
                        signer,
                        findings: uint(findings)?,
                        max_severity: sev,
                        reasons: json(&reasons, "reasons")?,
                        aibom,
                    })
                },
            )
            .collect()
    }

    pub fn files(&self, id: &ReleaseId) -> Result<Vec<FileRow>> {
        let mut stmt = self.c.prepare(
            "SELECT path, size, sha256, digests FROM files WHERE name = ?1 AND version = ?2 ORDER BY path",
        )?;
        let rows = stmt
            .query_map(params![id.name, id.version], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(path, size, sha256, digests)| {
                Ok(FileRow {
                    path,
                    size: uint(size)?,
                    sha256,
                    digests: json(&digests, "file digests")?,
                })
            })
            .collect()
    }

    /// Moves a release from `from` to `to` (checked against the lifecycle by the caller),
    /// failing if another process moved it first.
    pub fn set_state(
        &self,
        id: &ReleaseId,
        from: State,
        to: State,
        reasons: &[String],
    ) -> Result<bool> {
        let n = if reasons.is_empty() {
            self.c.execute(
                "UPDATE releases SET state = ?4 WHERE name = ?1 AND version = ?2 AND state = ?3",
                params![id.name, id.version, from.name(), to.name()],
            )?
        } else {
            self.c.execute(
                "UPDATE releases SET state = ?4, reasons = ?5 WHERE name = ?1 AND version = ?2 AND state = ?3",
                params![id.name, id.version, from.name(), to.name(), to_json(&reasons)?],
            )?
        };
        Ok(n == 1)
    }

    pub fn record_step(&self, id: &ReleaseId, step: &Step) -> Result<()> {
        self.c.execute(
            "INSERT INTO history (name, version, from_state, to_state, actor, time, ledger_index, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id.name,
                id.version,
                step.from.map(|s| s.name()),
                step.to.name(),
                step.actor,
                step.time,
                step.ledger_index.map(int),
                step.note
            ],
        )?;
        Ok(())
    }

    pub fn history(&self, id: &ReleaseId) -> Result<Vec<Step>> {
        let mut stmt = self.c.prepare(
            "SELECT from_state, to_state, actor, time, ledger_index, note FROM history
             WHERE name = ?1 AND version = ?2 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map(params![id.name, id.version], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(from, to, actor, time, ledger_index, note)| {
                Ok(Step {
                    from: from.as_deref().map(state_of).transpose()?,
                    to: state_of(&to)?,
                    actor,
                    time,
                    ledger_index: ledger_index.map(uint).transpose()?,
                    note,
                })
            })
            .collect()
    }

    // --- approvals ---

    pub fn approvals(&self, id: &ReleaseId, purpose: Purpose) -> Result<Vec<Approval>> {
        let mut stmt = self.c.prepare(
            "SELECT approver, accepts_findings, time FROM approvals
             WHERE name = ?1 AND version = ?2 AND purpose = ?3 ORDER BY time, approver",
        )?;
        let rows = stmt
            .query_map(params![id.name, id.version, purpose.name()], |r| {
                Ok(Approval {
                    approver: r.get(0)?,
                    accepts_findings: r.get(1)?,
                    time: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn add_approval(&self, id: &ReleaseId, purpose: Purpose, a: &Approval) -> Result<()> {
        self.c.execute(
            "INSERT INTO approvals (name, version, purpose, approver, accepts_findings, time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id.name,
                id.version,
                purpose.name(),
                a.approver,
                a.accepts_findings,
                a.time
            ],
        )?;
        Ok(())
    }

    pub fn clear_approvals(&self, id: &ReleaseId, purpose: Purpose) -> Result<u64> {
        let n = self.c.execute(
            "DELETE FROM approvals WHERE name = ?1 AND version = ?2 AND purpose = ?3",
            params![id.name, id.version, purpose.name()],
        )?;
        Ok(n as u64)
    }

    // --- live pointers ---

    pub fn live(&self, model: &str) -> Result<Option<Live>> {
        Ok(self
            .c
            .query_row(
                "SELECT model, version, previous, since FROM live WHERE model = ?1",
                [model],
                |r| {
                    Ok(Live {
                        model: r.get(0)?,
                        version: r.get(1)?,
                        previous: r.get(2)?,
                        since: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn all_live(&self) -> Result<Vec<Live>> {
        let mut stmt = self
            .c
            .prepare("SELECT model, version, previous, since FROM live ORDER BY model")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Live {
                    model: r.get(0)?,
                    version: r.get(1)?,
                    previous: r.get(2)?,
                    since: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn set_live(&self, live: &Live) -> Result<()> {
        self.c.execute(
            "INSERT INTO live (model, version, previous, since) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (model) DO UPDATE SET version = ?2, previous = ?3, since = ?4",
            params![live.model, live.version, live.previous, live.since],
        )?;
        Ok(())
    }

    pub fn clear_live(&self, model: &str) -> Result<()> {
        self.c
            .execute("DELETE FROM live WHERE model = ?1", [model])?;
        Ok(())
    }

    // --- API keys of the inference plane ---

    /// Stores a new API key; `false` if its id exists.
    pub fn add_api_key(&self, k: &ApiKey) -> Result<bool> {
        let n = self.c.execute(
            "INSERT OR IGNORE INTO api_keys (id, principal, hash, models, created, expires, revoked)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                k.id,
                k.principal,
                k.hash.as_slice(),
                k.models.join(","),
                k.created,
                k.expires,
                k.revoked
            ],
        )?;
        Ok(n == 1)
    }

    fn api_keys_where(&self, clause: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT id, principal, hash, models, created, expires, revoked FROM api_keys
             WHERE {clause} ORDER BY created, id"
        );
        let mut stmt = self.c.prepare(&sql)?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, principal, hash, models, created, expires, revoked)| {
                let hash = hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt(format!("digest of API key {id}")))?;
                Ok(ApiKey {
                    models: models
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect(),
                    id,
                    principal,
                    hash,
                    created,
                    expires,
                    revoked,
                })
            })
            .collect()
    }

    /// The API key with this id, revoked or not.
    pub fn api_key(&self, id: &str) -> Result<Option<ApiKey>> {
        self.api_keys_where("id = ?1", params![id])
            .map(|mut v| v.pop())
    }

    /// Every API key, oldest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.api_keys_where("1", params![])
    }

    /// Revokes a key; `false` if there is no such key or it was revoked already.
    pub fn revoke_api_key(&self, id: &str) -> Result<bool> {
        let n = self.c.execute(
            "UPDATE api_keys SET revoked = 1 WHERE id = ?1 AND revoked = 0",
            [id],
        )?;
        Ok(n == 1)
    }

    // --- settings (the kill switch) ---

    /// A setting's value, if it was ever set.
    pub fn setting(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .c
            .query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, name: &str, value: &str, actor: &str, time: &str) -> Result<()> {
        self.c.execute(
            "INSERT INTO settings (name, value, actor, time) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET value = ?2, actor = ?3, time = ?4",
            params![name, value, actor, time],
        )?;
        Ok(())
    }
}
