//! Ledger records: the canonical, versioned envelope every entry uses.
//!
//! A record is one line of canonical JSON (fixed field order, sorted maps, no whitespace,
//! strings only), so that its bytes, and therefore its leaf hash, are a function of its
//! content. What the kinds mean belongs to the parts of Warden that write them; the ledger
//! only checks their shape. Sensitive payloads (prompts, outputs, documents) never appear:
//! records carry their digests, keyed where a plain hash could be guessed (see
//! [`DigestKey`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The record format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Limits that keep records small and the ledger fast.
pub const MAX_RECORD_LEN: usize = 16 * 1024;
pub const MAX_ATTRS: usize = 64;
const MAX_FIELD: usize = 1024;

/// The families of records. A kind is `<family>.<action>`, e.g. `release.admitted`.
pub const FAMILIES: &[&str] = &["admin", "release", "inference", "alert", "config", "ledger"];

/// One ledger record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Format version.
    pub v: u32,
    /// `<family>.<action>`.
    pub kind: String,
    /// When it happened: RFC 3339, UTC, milliseconds.
    pub time: String,
    /// Who did it: a principal, or `warden` for the system itself.
    pub actor: String,
    /// What it concerns (a release `name@version`, a principal, a setting), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Digests of the artifacts or payloads involved: name → `sha256:<hex>` or
    /// `hmac-sha256:<hex>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, String>,
    /// Other facts, as strings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

impl Record {
    /// A record of `kind` by `actor`, stamped now.
    pub fn new(kind: &str, actor: &str) -> Record {
        Record {
            v: VERSION,
            kind: kind.to_string(),
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            actor: actor.to_string(),
            subject: None,
            digests: BTreeMap::new(),
            attrs: BTreeMap::new(),
        }
    }

    pub fn subject(mut self, subject: &str) -> Record {
        self.subject = Some(subject.to_string());
        self
    }

    pub fn attr(mut self, key: &str, value: &str) -> Record {
        self.attrs.insert(key.to_string(), value.to_string());
        self
    }

    pub fn digest(mut self, name: &str, value: &str) -> Record {
        self.digests.insert(name.to_string(), value.to_string());
        self
    }

    /// Checks the record's shape and limits.
    pub fn validate(&self) -> Result<()> {
        if self.v != VERSION {
            return Err(Error::Record(format!(
                "unsupported record version {}",
                self.v
            )));
        }
        let Some((family, action)) = self.kind.split_once('.') else {
            return Err(Error::Record(format!(
                "kind {:?} is not <family>.<action>",
                self.kind
            )));
        };
        if !FAMILIES.contains(&family) {
            return Err(Error::Record(format!(
                "kind {:?}: family {family:?} is not one of {}",
                self.kind,
                FAMILIES.join(", ")
            )));
        }
        if action.is_empty()
            || action.len() > 64
            || !action
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(Error::Record(format!(
                "kind {:?}: the action must be lower-case letters, digits, '.', '_' or '-'",
                self.kind
            )));
        }
        if humantime::parse_rfc3339(&self.time).is_err() {
            return Err(Error::Record(format!(
                "time {:?} is not RFC 3339",
                self.time
            )));
        }
        if self.actor.is_empty() {
            return Err(Error::Record("actor is empty".into()));
        }
        if self.attrs.len() + self.digests.len() > MAX_ATTRS {
            return Err(Error::Record(format!(
                "more than {MAX_ATTRS} attributes and digests"
            )));
        }
        let fields = [&self.actor]
            .into_iter()
            .chain(self.subject.as_ref())
            .chain(self.attrs.keys())
            .chain(self.attrs.values())
            .chain(self.digests.keys())
            .chain(self.digests.values());
        for field in fields {
            if field.len() > MAX_FIELD {
                return Err(Error::Record(format!(
                    "a field of {} bytes exceeds {MAX_FIELD}",
                    field.len()
                )));
            }
        }
        Ok(())
    }

    /// The canonical bytes: what the ledger stores and hashes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Record(e.to_string()))?;
        if bytes.len() > MAX_RECORD_LEN {
            return Err(Error::Record(format!(
                "record of {} bytes exceeds {MAX_RECORD_LEN}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Reads a stored record, requiring the canonical form (so that no two byte strings
    /// mean the same record).
    pub fn decode(bytes: &[u8]) -> Result<Record> {
        if bytes.len() > MAX_RECORD_LEN {
            return Err(Error::Record(format!(
                "record of {} bytes exceeds {MAX_RECORD_LEN}",
                bytes.len()
            )));
        }
        let record: Record = serde_json::from_slice(bytes)
            .map_err(|e| Error::Record(format!("not a record: {e}")))?;
        record.validate()?;
        let canonical = serde_json::to_vec(&record).map_err(|e| Error::Record(e.to_string()))?;
        if canonical != bytes {
            return Err(Error::Record("not in canonical form".into()));
        }
        Ok(record)
    }
}

/// `sha256:<hex>` of some bytes: for artifacts whose content is not secret.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("sha256:{}", hex::encode(d.as_ref()))
}

/// A secret key for digests of sensitive payloads. A plain SHA-256 of a short prompt can be
/// confirmed by guessing; an HMAC under a key kept with the ledger's keys cannot, while the
/// key's holder can still prove that a given payload is the one recorded.
pub struct DigestKey(ring::hmac::Key);

impl DigestKey {
    /// A key from 32 secret bytes.
    pub fn new(secret: &[u8; 32]) -> DigestKey {
        DigestKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    /// `hmac-sha256:<hex>` of a payload.
    pub fn digest(&self, payload: &[u8]) -> String {
        let tag = ring::hmac::sign(&self.0, payload);
        format!("hmac-sha256:{}", hex::encode(tag.as_ref()))
    }
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_canonical_and_round_trip() {
        let r = Record::new("release.admitted", "alice")
            .subject("iris@1.0")
            .attr("zeta", "1")
            .attr("alpha", "2")
            .digest("manifest", &sha256_digest(b"m"));
        let bytes = r.encode().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(r#"{"v":1,"kind":"release.admitted","time":""#));
        assert!(text.find("alpha").unwrap() < text.find("zeta").unwrap());
        assert_eq!(Record::decode(&bytes).unwrap(), r);
    }

    #[test]
    fn non_canonical_or_malformed_records_are_refused() {
        let r = Record::new("admin.login", "bob");
        let bytes = r.encode().unwrap();
        let spaced = String::from_utf8(bytes).unwrap().replace(',', ", ");
        assert!(Record::decode(spaced.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("canonical"));
        assert!(Record::decode(br#"{"v":2}"#).is_err());
        assert!(Record::decode(b"not json").is_err());
        let unknown =
            r#"{"v":1,"kind":"admin.x","time":"2026-01-01T00:00:00.000Z","actor":"a","extra":"1"}"#;
        assert!(Record::decode(unknown.as_bytes()).is_err());
    }

    #[test]
    fn kinds_times_and_sizes_are_checked() {
        assert!(Record::new("nofamily", "a").encode().is_err());
        assert!(Record::new("weird.thing", "a").encode().is_err());
        assert!(Record::new("admin.Upper", "a").encode().is_err());
        assert!(Record::new("admin.ok", "").encode().is_err());
        let mut r = Record::new("admin.ok", "a");
        r.time = "yesterday".into();
        assert!(r.encode().is_err());
        let big = Record::new("admin.ok", "a").attr("k", &"x".repeat(2000));
        assert!(big.encode().is_err());
    }

    #[test]
    fn keyed_digests_hide_the_payload() {
        let key = DigestKey::new(&[7; 32]);
        let prompt = b"my secret prompt";
        let d = key.digest(prompt);
        assert!(d.starts_with("hmac-sha256:"));
        assert_ne!(d, DigestKey::new(&[8; 32]).digest(prompt));
        let r = Record::new("inference.request", "svc").digest("prompt", &d);
        let text = String::from_utf8(r.encode().unwrap()).unwrap();
        assert!(!text.contains("secret"));
    }
}
