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
pub(crate) const MAX_FIELD: usize = 1024;

/// The families of records. A kind is `<family>.<action>`, e.g. `release.admitted`.
pub const FAMILIES: &[&str] = &[
    "admin",
    "release",
    "inference",
    "runtime",
    "alert",
    "config",
    "ledger",
];

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
            time: rfc3339_millis(SystemTime::now()),
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
        let fields = [&self.actor]
            .into_iter()
            .chain(self.subject.as_ref())
            .chain(self.attrs.keys())
            .chain(self.attrs.values())
            .chain(self.digests.keys())
            .chain(self.digests.values())
            .map(String::as_str);
        validate_parts(
            self.v,
            &self.kind,
            Some(&self.time),
            &self.actor,
            self.attrs.len() + self.digests.len(),
            fields,
        )
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

    /// Checks that stored bytes are a valid record in canonical form, as [`Record::decode`]
    /// does, without building the record: the strings are borrowed from `bytes` and the
    /// canonical form is checked by serializing them again against `bytes`, so a record
    /// without escaped characters is checked without allocating. Any other input (an
    /// escape, or an error to describe) goes through [`Record::decode`], so both accept
    /// exactly the same bytes.
    pub fn check(bytes: &[u8]) -> Result<()> {
        if bytes.len() <= MAX_RECORD_LEN && check_borrowed(bytes) {
            return Ok(());
        }
        Record::decode(bytes).map(drop)
    }
}

/// `time` in RFC 3339, UTC, milliseconds; empty for a time that format cannot hold (before
/// 1970, on which humantime would panic, or past year 9999), which [`Record::encode`] then
/// refuses rather than writing it.
pub fn rfc3339_millis(time: SystemTime) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(24);
    if time < SystemTime::UNIX_EPOCH {
        return text;
    }
    if write!(text, "{}", humantime::format_rfc3339_millis(time)).is_err() {
        text.clear();
    }
    text
}

/// The checks of [`Record::validate`], over the record's parts. `time` is `None` when
/// this build stamped it from the clock (`draft.rs`), which always gives RFC 3339.
pub(crate) fn validate_parts<'a>(
    v: u32,
    kind: &str,
    time: Option<&str>,
    actor: &str,
    attrs_and_digests: usize,
    fields: impl Iterator<Item = &'a str>,
) -> Result<()> {
    if v != VERSION {
        return Err(Error::Record(format!("unsupported record version {v}")));
    }
    let Some((family, action)) = kind.split_once('.') else {
        return Err(Error::Record(format!(
            "kind {kind:?} is not <family>.<action>"
        )));
    };
    if !FAMILIES.contains(&family) {
        return Err(Error::Record(format!(
            "kind {kind:?}: family {family:?} is not one of {}",
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
            "kind {kind:?}: the action must be lower-case letters, digits, '.', '_' or '-'"
        )));
    }
    if let Some(time) = time.filter(|t| humantime::parse_rfc3339(t).is_err()) {
        return Err(Error::Record(format!("time {time:?} is not RFC 3339")));
    }
    if actor.is_empty() {
        return Err(Error::Record("actor is empty".into()));
    }
    if attrs_and_digests > MAX_ATTRS {
        return Err(Error::Record(format!(
            "more than {MAX_ATTRS} attributes and digests"
        )));
    }
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

/// A record whose strings are borrowed from the bytes it was read from.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordRef<'a> {
    v: u32,
    kind: &'a str,
    time: &'a str,
    actor: &'a str,
    #[serde(default)]
    subject: Option<&'a str>,
    #[serde(default, borrow)]
    digests: Pairs<'a>,
    #[serde(default, borrow)]
    attrs: Pairs<'a>,
}

/// A string map, judged as it is read, without holding its entries: its keys must come
/// in strictly increasing order (the order, without duplicates, in which a
/// `BTreeMap<String, String>` serializes them), and its strings must follow each other as
/// canonical JSON lays them out, `"k":"v","k":"v"`.
#[derive(Default)]
struct Pairs<'a> {
    len: usize,
    /// The first key and the last value: where the entries start and end in the input.
    first_key: &'a str,
    last_value: &'a str,
    /// Whether every field is at most `MAX_FIELD` bytes, the keys increase, and the
    /// entries are laid out canonically.
    ok: bool,
}

/// How many bytes lie between the end of `a` and the start of `b` (both borrowed from
/// the same input), if `b` comes after `a`.
fn gap(a: &str, b: &str) -> Option<usize> {
    (b.as_ptr() as usize).checked_sub(a.as_ptr() as usize + a.len())
}

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> std::result::Result<Pairs<'a>, M::Error> {
                let mut out = Pairs {
                    ok: true,
                    ..Pairs::default()
                };
                let mut last_key = "";
                while let Some((k, v)) = map.next_entry::<&'de str, &'de str>()? {
                    // Between two strings, only `":"` or `","` is 3 bytes long: JSON
                    // allows nothing shorter, and whitespace makes it longer.
                    let laid_out = gap(k, v) == Some(3)
                        && (out.len == 0 || (last_key < k && gap(out.last_value, k) == Some(3)));
                    if !laid_out || k.len() > MAX_FIELD || v.len() > MAX_FIELD {
                        out.ok = false;
                    }
                    if out.len == 0 {
                        out.first_key = k;
                    }
                    last_key = k;
                    out.last_value = v;
                    out.len += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// A reader that walks the input, checking it holds the canonical layout.
struct Layout<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Layout<'a> {
    /// The literal bytes `text` come next.
    fn literal(&mut self, text: &[u8]) -> bool {
        let ok = self
            .input
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(text));
        self.at += text.len();
        ok
    }

    /// `s`, borrowed from the input, lies exactly here; the walk goes on after it.
    fn here(&mut self, s: &str) -> bool {
        let ok = s.as_ptr() as usize == self.input.as_ptr() as usize + self.at;
        self.at += s.len();
        ok
    }

    /// A quoted string borrowed from the input.
    fn string(&mut self, s: &str) -> bool {
        self.literal(b"\"") && self.here(s) && self.literal(b"\"")
    }

    /// `,"name":{...}` for a non-empty map, nothing for an empty one.
    fn map(&mut self, name: &[u8], pairs: &Pairs<'_>) -> bool {
        if pairs.len == 0 {
            return true;
        }
        if !(pairs.ok && self.literal(b",\"") && self.literal(name) && self.literal(b"\":{\"")) {
            return false;
        }
        // The entries in between were checked as they were read.
        let start = self.input.as_ptr() as usize + self.at;
        if pairs.first_key.as_ptr() as usize != start {
            return false;
        }
        let end = pairs.last_value.as_ptr() as usize + pairs.last_value.len();
        match end.checked_sub(self.input.as_ptr() as usize) {
            Some(at) if at >= self.at => self.at = at,
            _ => return false,
        }
        self.literal(b"\"}")
    }
}

/// Whether `bytes` are a valid record in canonical form, judged without allocating: the
/// strings are borrowed from `bytes`, and since none holds an escape, the record is
/// canonical exactly when they lie where its canonical serialization puts them. `false` is
/// no verdict: strings with escapes (which cannot be borrowed) land there too.
fn check_borrowed(bytes: &[u8]) -> bool {
    let Ok(r) = serde_json::from_slice::<RecordRef<'_>>(bytes) else {
        return false;
    };
    let fields = [r.actor].into_iter().chain(r.subject);
    if validate_parts(
        r.v,
        r.kind,
        Some(r.time),
        r.actor,
        r.attrs.len + r.digests.len,
        fields,
    )
    .is_err()
    {
        return false;
    }
    // `v` is VERSION, which is 1.
    let mut walk = Layout {
        input: bytes,
        at: 0,
    };
    let laid_out = VERSION == 1
        && walk.literal(b"{\"v\":1,\"kind\":")
        && walk.string(r.kind)
        && walk.literal(b",\"time\":")
        && walk.string(r.time)
        && walk.literal(b",\"actor\":")
        && walk.string(r.actor)
        && r.subject
            .is_none_or(|s| walk.literal(b",\"subject\":") && walk.string(s))
        && walk.map(b"digests", &r.digests)
        && walk.map(b"attrs", &r.attrs)
        && walk.literal(b"}");
    laid_out && walk.at == bytes.len()
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

    /// A clock before 1970 gives an empty time, which encoding refuses, not a panic.
    #[test]
    fn a_time_before_1970_is_empty_and_refused() {
        let before = SystemTime::UNIX_EPOCH - std::time::Duration::from_millis(1);
        assert_eq!(rfc3339_millis(before), "");
        assert_eq!(
            rfc3339_millis(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        let mut r = Record::new("release.admitted", "alice");
        r.time = rfc3339_millis(before);
        assert!(matches!(r.encode(), Err(Error::Record(_))));
    }

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
    fn the_borrowed_check_accepts_exactly_what_decode_accepts() {
        let mut many = Record::new("admin.ok", "a");
        for i in 0..MAX_ATTRS {
            many = many.attr(&format!("k{i:02}"), "v");
        }
        let good = [
            Record::new("admin.login", "bob"),
            Record::new("release.admitted", "alice")
                .subject("iris@1.0")
                .attr("zeta", "1")
                .attr("alpha", "2")
                .digest("manifest", &sha256_digest(b"m")),
            Record::new("admin.ok", "quote \" back \\ tab \t ctl \u{1} é /"),
            Record::new("admin.ok", "a")
                .attr("", "")
                .attr("é", "x")
                .attr("e", "y"),
        ];
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for r in &good {
            let bytes = r.encode().unwrap();
            assert!(Record::check(&bytes).is_ok());
            let text = String::from_utf8(bytes.clone()).unwrap();
            inputs.push(text.replace(',', ", ").into_bytes());
            inputs.push(text.replace(":1,", ":1.0,").into_bytes());
            inputs.push(text.replace(":1,", ":01,").into_bytes());
            inputs.push(format!("{text} ").into_bytes());
            inputs.push(text.replace('}', ",\"attrs\":{}}").into_bytes());
            inputs.push(
                text.replace("\"time\"", "\"subject\":null,\"time\"")
                    .into_bytes(),
            );
            inputs.push(text.replace("alpha", "zzz").into_bytes());
            inputs.push(text.replace("alpha", "zeta").into_bytes());
            inputs.push(text.replace("/", "\\/").into_bytes());
            inputs.push(text.replace("é", "\\u00e9").into_bytes());
            inputs.push(text.replace("\\t", "\\u0009").into_bytes());
            inputs.push(bytes[..bytes.len() - 1].to_vec());
            inputs.push(bytes);
        }
        let over = many.clone().attr("zz", "v");
        inputs.push(serde_json::to_vec(&over).unwrap());
        inputs.push(many.encode().unwrap());
        inputs.push(br#"{"v":1,"kind":"admin.x","time":"2026-01-01T00:00:00.000Z","actor":"a","attrs":{"b":"1","a":"2"}}"#.to_vec());
        inputs.push(br#"{"v":1,"kind":"admin.x","time":"2026-01-01T00:00:00.000Z","actor":"a","attrs":{"a":"1","a":"2"}}"#.to_vec());
        inputs.push(br#"{"v":1,"kind":"admin.x","time":"2026-01-01T00:00:00.000Z","actor":"a","attrs":{"a":"1","b":"2"}}"#.to_vec());
        inputs.push(br#"{"v":1,"kind":"admin.x","time":"2026-01-01T00:00:00.000Z","actor":"a","kind":"admin.y"}"#.to_vec());
        inputs.push(br#"{"v":1,"kind":"admin.x","time":"yesterday","actor":"a"}"#.to_vec());
        for input in &inputs {
            let decoded = Record::decode(input).map(drop).map_err(|e| e.to_string());
            let checked = Record::check(input).map_err(|e| e.to_string());
            assert_eq!(decoded, checked, "{}", String::from_utf8_lossy(input));
        }
        assert!(inputs.iter().filter(|i| Record::check(i).is_ok()).count() > good.len());
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
