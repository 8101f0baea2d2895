//! The in-toto Statement v1 with the model-signing predicate (OpenSSF Model Signing v1.0).
//!
//! ```json
//! { "_type": "https://in-toto.io/Statement/v1",
//!   "subject": [{ "name": "<model>", "digest": { "sha256": "<root digest>" } }],
//!   "predicateType": "https://model_signing/signature/v1.0",
//!   "predicate": {
//!     "serialization": { "method": "files", "hash_type": "sha256",
//!                        "allow_symlinks": false, "ignore_paths": [".git", ...] },
//!     "resources": [{ "name": "a/c", "algorithm": "sha256", "digest": "<hex>" }, ...] } }
//! ```
//!
//! `model_signing` 1.1.1 writes the predicate through a protobuf `Struct`, so a shard size
//! comes out as a float (`"shard_size": 3.0`); we accept any integral number and write an
//! integer.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::bundle::FormatError;
use crate::hash::{Digest, HashAlgorithm};
use crate::manifest::{self, Item, Manifest, Method, Serialization};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The pre-1.0 predicate (`model_signing` 0.2); recognised only to say it is unsupported.
pub const PREDICATE_TYPE_V01: &str = "https://model_signing/Digests/v0.1";
/// Most resources a payload may list (a 1 TiB model in 1 MiB shards).
pub const MAX_RESOURCES: usize = 1 << 20;

/// Serialises a manifest to the statement's JSON bytes (the DSSE payload).
pub fn to_payload(m: &Manifest) -> Result<Vec<u8>, serde_json::Error> {
    let ser = &m.serialization;
    let mut s = Map::new();
    s.insert(
        "method".into(),
        json!(match ser.method {
            Method::Files => "files",
            Method::Shards(_) => "shards",
        }),
    );
    s.insert("hash_type".into(), json!(ser.hash.name()));
    s.insert("allow_symlinks".into(), json!(ser.allow_symlinks));
    if let Method::Shards(size) = ser.method {
        s.insert("shard_size".into(), json!(size));
    }
    if !ser.ignore_paths.is_empty() {
        s.insert("ignore_paths".into(), json!(ser.ignore_paths));
    }
    let algorithm = ser.resource_algorithm();
    let resources: Vec<Value> = m
        .items
        .iter()
        .map(|i| json!({"name": i.name(), "algorithm": algorithm, "digest": hex::encode(i.digest)}))
        .collect();
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": m.model_name, "digest": {"sha256": hex::encode(m.root_digest())}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"serialization": Value::Object(s), "resources": resources},
    });
    serde_json::to_vec_pretty(&statement)
}

/// A statement read back from a verified payload.
#[derive(Debug, Clone)]
pub struct Statement {
    pub model_name: String,
    /// The subject's SHA-256, checked against the resources.
    pub root_digest: Digest,
    pub serialization: Serialization,
    /// In payload order.
    pub items: Vec<Item>,
}

fn err(msg: impl Into<String>) -> FormatError {
    FormatError::Statement(msg.into())
}

fn field<'a>(obj: &'a Value, path: &str, key: &str) -> Result<&'a Value, FormatError> {
    obj.get(key)
        .ok_or_else(|| err(format!("missing field `{path}{key}`")))
}

fn string<'a>(obj: &'a Value, path: &str, key: &str) -> Result<&'a str, FormatError> {
    field(obj, path, key)?
        .as_str()
        .ok_or_else(|| err(format!("`{path}{key}` is not a string")))
}

fn hex32(s: &str, what: &str) -> Result<Digest, FormatError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|e| err(format!("{what}: `{s}` is not a 32-byte hex digest ({e})")))?;
    Ok(out)
}

/// Parses and checks the statement: types, one subject, a known serialization, well-formed
/// resources, and a root digest that matches them.
pub fn parse(payload: &[u8]) -> Result<Statement, FormatError> {
    let v: Value =
        serde_json::from_slice(payload).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let ty = string(&v, "", "_type")?;
    if ty != STATEMENT_TYPE {
        return Err(err(format!(
            "`_type` is `{ty}`, expected `{STATEMENT_TYPE}`"
        )));
    }
    let pt = string(&v, "", "predicateType")?;
    if pt == PREDICATE_TYPE_V01 {
        return Err(err(format!(
            "predicate type `{pt}` (model_signing 0.2) is not supported; re-sign with a current signer"
        )));
    }
    if pt != PREDICATE_TYPE {
        return Err(err(format!(
            "`predicateType` is `{pt}`, expected `{PREDICATE_TYPE}`"
        )));
    }
    let subjects = field(&v, "", "subject")?
        .as_array()
        .ok_or_else(|| err("`subject` is not a list"))?;
    let [subject] = subjects.as_slice() else {
        return Err(err(format!(
            "`subject` lists {} entries; exactly one is expected",
            subjects.len()
        )));
    };
    let model_name = string(subject, "subject[0].", "name")?.to_string();
    let digest = field(subject, "subject[0].", "digest")?;
    let root_digest = hex32(
        string(digest, "subject[0].digest.", "sha256")?,
        "subject digest",
    )?;

    let predicate = field(&v, "", "predicate")?;
    let s = field(predicate, "predicate.", "serialization")?;
    let p = "predicate.serialization.";
    let hash_name = string(s, p, "hash_type")?;
    let hash = HashAlgorithm::from_name(hash_name).ok_or_else(|| {
        err(format!(
            "unsupported `{p}hash_type` `{hash_name}` (sha256 and blake3 are)"
        ))
    })?;
    let method = match string(s, p, "method")? {
        "files" => Method::Files,
        "shards" => {
            let n = field(s, p, "shard_size")?;
            let size = n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f < 9.0e15)
                        .map(|f| f as u64)
                })
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    err(format!(
                        "`{p}shard_size` is {n}, not a positive whole number"
                    ))
                })?;
            Method::Shards(size)
        }
        other => {
            return Err(err(format!(
                "unknown `{p}method` `{other}` (files and shards are known)"
            )))
        }
    };
    let allow_symlinks = match s.get("allow_symlinks") {
        Some(Value::Bool(b)) => *b,
        None => false,
        Some(other) => {
            return Err(err(format!(
                "`{p}allow_symlinks` is {other}, not a boolean"
            )))
        }
    };
    let mut ignore_paths = Vec::new();
    if let Some(list) = s.get("ignore_paths") {
        let list = list
            .as_array()
            .ok_or_else(|| err(format!("`{p}ignore_paths` is not a list")))?;
        for x in list {
            let x = x
                .as_str()
                .ok_or_else(|| err(format!("`{p}ignore_paths` holds {x}, not a string")))?;
            if let Some(n) = manifest::normalize_ignore(x) {
                ignore_paths.push(n);
            }
        }
    }
    let serialization = Serialization {
        method,
        hash,
        allow_symlinks,
        ignore_paths,
    };

    let resources = field(predicate, "predicate.", "resources")?
        .as_array()
        .ok_or_else(|| err("`predicate.resources` is not a list"))?;
    if resources.len() > MAX_RESOURCES {
        return Err(FormatError::Limit(format!(
            "{} resources, over the limit of {MAX_RESOURCES}",
            resources.len()
        )));
    }
    let algorithm = serialization.resource_algorithm();
    let mut items = Vec::with_capacity(resources.len());
    let mut seen = HashSet::new();
    for (i, r) in resources.iter().enumerate() {
        let p = format!("predicate.resources[{i}].");
        let name = string(r, &p, "name")?;
        let alg = string(r, &p, "algorithm")?;
        if alg != algorithm {
            return Err(err(format!(
                "`{p}algorithm` is `{alg}` but the serialization implies `{algorithm}`"
            )));
        }
        let digest = hex32(string(r, &p, "digest")?, &format!("{p}digest"))?;
        let (path, range) = match method {
            Method::Files => (name.to_string(), None),
            Method::Shards(_) => {
                let mut it = name.rsplitn(3, ':');
                let (end, start, path) = (it.next(), it.next(), it.next());
                let num = |x: Option<&str>| x.and_then(|x| x.parse::<u64>().ok());
                match (path, num(start), num(end)) {
                    (Some(path), Some(s), Some(e)) if s < e => (path.to_string(), Some((s, e))),
                    _ => {
                        return Err(err(format!(
                            "`{p}name` `{name}` is not `path:start:end` with start < end"
                        )))
                    }
                }
            }
        };
        if !seen.insert(name) {
            return Err(err(format!("resource `{name}` is listed twice")));
        }
        items.push(Item {
            path,
            range,
            digest,
        });
    }
    let computed = manifest::root_digest(items.iter().map(|i| &i.digest));
    if computed != root_digest {
        return Err(FormatError::Inconsistent {
            subject: hex::encode(root_digest),
            computed: hex::encode(computed),
        });
    }
    Ok(Statement {
        model_name,
        root_digest,
        serialization,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            model_name: "m".into(),
            serialization: Serialization {
                method: Method::Shards(4),
                hash: HashAlgorithm::Sha256,
                allow_symlinks: false,
                ignore_paths: vec![".git".into()],
            },
            items: vec![
                Item {
                    path: "a:b".into(),
                    range: Some((0, 4)),
                    digest: [1; 32],
                },
                Item {
                    path: "a:b".into(),
                    range: Some((4, 5)),
                    digest: [2; 32],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let m = manifest();
        let st = parse(&to_payload(&m).unwrap()).unwrap();
        assert_eq!(st.items, m.items);
        assert_eq!(st.serialization, m.serialization);
        assert_eq!(st.root_digest, m.root_digest());
    }

    #[test]
    fn float_shard_size_accepted_fractional_refused() {
        let p = String::from_utf8(to_payload(&manifest()).unwrap()).unwrap();
        let f = p.replace("\"shard_size\": 4", "\"shard_size\": 4.0");
        assert_eq!(
            parse(f.as_bytes()).unwrap().serialization.method,
            Method::Shards(4)
        );
        let bad = p.replace("\"shard_size\": 4", "\"shard_size\": 4.5");
        assert!(parse(bad.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("shard_size"));
    }

    #[test]
    fn tampered_resource_is_inconsistent() {
        let p = String::from_utf8(to_payload(&manifest()).unwrap()).unwrap();
        let bad = p.replacen(&hex::encode([1u8; 32]), &hex::encode([3u8; 32]), 1);
        assert!(matches!(
            parse(bad.as_bytes()),
            Err(FormatError::Inconsistent { .. })
        ));
    }

    #[test]
    fn refuses_wrong_types() {
        let p = String::from_utf8(to_payload(&manifest()).unwrap()).unwrap();
        for (from, to, needle) in [
            (PREDICATE_TYPE, "x", "predicateType"),
            (STATEMENT_TYPE, "y", "_type"),
            ("\"sha256\",", "\"blake2\",", "hash_type"),
            ("\"shards\"", "\"tensors\"", "method"),
            ("sha256-sharded-4", "sha256", "algorithm"),
        ] {
            let bad = p.replacen(from, to, 1);
            let e = parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
