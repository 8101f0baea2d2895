//! The AI-BOM: a CycloneDX 1.6 ML-BOM describing one admitted release — the model and its
//! files with their digests, what its model card declares, how it was signed and scanned,
//! and who admitted it. docs/aibom.md maps every field.
//!
//! [`build`] is a pure function of its [`BomInput`]: the caller supplies the serial number
//! and the timestamp, and everything whose order carries no meaning is sorted, so the same
//! input always gives the same document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

mod card;

pub use card::{
    parse_model_card, Dataset, FairnessAssessment, Metric, ModelCard, Risk, MAX_CARD_BYTES,
};

/// The CycloneDX version written.
pub const SPEC_VERSION: &str = "1.6";
/// The JSON schema the document names in `$schema`.
pub const SCHEMA_URL: &str = "http://cyclonedx.org/schema/bom-1.6.schema.json";

/// Why a model card or an AI-BOM input was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AibomError {
    #[error("model card {file}: {size} bytes is over the limit of {limit} bytes")]
    CardTooLarge {
        file: String,
        size: usize,
        limit: usize,
    },
    #[error("model card {file}: not UTF-8 text (invalid byte at offset {offset})")]
    CardNotUtf8 { file: String, offset: usize },
    #[error(
        "model card {file}: unknown format: name it *.json (Warden JSON card) or *.md \
         (Markdown with YAML front matter)"
    )]
    CardFormat { file: String },
    #[error("model card {file}: {message}")]
    CardJson { file: String, message: String },
    #[error("model card {file}: front matter, line {line}: {message}")]
    FrontMatter {
        file: String,
        line: usize,
        message: String,
    },
    #[error("AI-BOM input: {0}")]
    Input(String),
    #[error("the operating system's random number generator failed")]
    Random,
}

/// Everything an AI-BOM records about one release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BomInput {
    /// `urn:uuid:<lowercase v4 UUID>`, unique per document ([`new_serial`] makes one).
    pub serial: String,
    /// When the BOM was made, RFC 3339 (e.g. `2025-01-31T12:00:00Z`).
    pub timestamp: String,
    /// Warden's version, recorded as the tool that wrote the BOM.
    pub tool_version: String,
    /// The release's model name.
    pub name: String,
    /// The release's version.
    pub version: String,
    /// The OpenSSF Model Signing manifest's root digest, `sha256:<hex>`.
    pub manifest_digest: String,
    /// Every file of the model, as the manifest lists them (paths unique).
    pub files: Vec<BomFile>,
    /// The signature verified at admission, if the model was signed.
    #[serde(default)]
    pub signature: Option<BomSignature>,
    /// The admission scan's outcome.
    pub scan: ScanSummary,
    /// The model card, if one was supplied ([`parse_model_card`]).
    #[serde(default)]
    pub model_card: Option<ModelCard>,
    /// The release's threat model document, if one was supplied.
    #[serde(default)]
    pub threat_model: Option<BomDocument>,
    /// Who admitted the release.
    pub admitted_by: String,
}

/// One file of the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BomFile {
    /// Relative to the model's root, `/`-separated.
    pub path: String,
    pub size: u64,
    /// SHA-256 of the contents, hex.
    pub sha256: String,
}

/// A verified signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BomSignature {
    /// The key's fingerprint or the certificate's identity.
    pub signer: String,
    /// SHA-256 of the signature bundle file, hex.
    pub bundle_sha256: String,
    /// How it was signed, e.g. `oms-key` or `oms-certificate`.
    pub method: String,
}

/// The admission scan's outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanSummary {
    pub files_scanned: u64,
    pub findings: u64,
    /// The highest severity found, if any finding.
    #[serde(default)]
    pub max_severity: Option<String>,
    /// Findings per severity name.
    #[serde(default)]
    pub by_severity: BTreeMap<String, u64>,
    /// Whether the findings were accepted for admission.
    pub accepted: bool,
}

/// A document about the model (a model card, a threat model), referenced by digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BomDocument {
    /// Its path or URL as the release records it.
    pub path: String,
    /// SHA-256 of its contents, hex.
    pub sha256: String,
}

/// A fresh serial number: `urn:uuid:` and a random (version 4) UUID.
pub fn new_serial() -> Result<String, AibomError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| AibomError::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex::encode(b);
    Ok(format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

impl BomInput {
    /// Checks what the CycloneDX schema would otherwise reject, so that [`build`] on a
    /// checked input gives a valid document: the serial's form, the timestamp's form, hex
    /// digests, non-empty names and unique file paths.
    pub fn validate(&self) -> Result<(), AibomError> {
        let bad = |m: String| Err(AibomError::Input(m));
        if !is_uuid_urn(&self.serial) {
            return bad(format!(
                "serial {:?} is not urn:uuid:<lowercase UUID>",
                self.serial
            ));
        }
        if !is_rfc3339(&self.timestamp) {
            return bad(format!("timestamp {:?} is not RFC 3339", self.timestamp));
        }
        for (what, value) in [
            ("name", &self.name),
            ("version", &self.version),
            ("tool_version", &self.tool_version),
            ("admitted_by", &self.admitted_by),
        ] {
            if value.is_empty() {
                return bad(format!("{what} is empty"));
            }
        }
        match self.manifest_digest.strip_prefix("sha256:") {
            Some(hex) if is_sha256(hex) => {}
            _ => {
                return bad(format!(
                    "manifest digest {:?} is not sha256:<64 hex digits>",
                    self.manifest_digest
                ))
            }
        }
        let mut digests: Vec<(String, &str)> = Vec::new();
        let mut paths = std::collections::BTreeSet::new();
        for f in &self.files {
            if f.path.is_empty() || !paths.insert(f.path.as_str()) {
                return bad(format!("file path {:?} is empty or repeated", f.path));
            }
            digests.push((format!("file {}", f.path), &f.sha256));
        }
        if let Some(s) = &self.signature {
            digests.push(("signature bundle".into(), &s.bundle_sha256));
        }
        if let Some(d) = self.model_card.as_ref().and_then(|c| c.document.as_ref()) {
            digests.push(("model card".into(), &d.sha256));
        }
        if let Some(d) = &self.threat_model {
            digests.push(("threat model".into(), &d.sha256));
        }
        for (what, digest) in digests {
            if !is_sha256(digest) {
                return bad(format!("{what}: {digest:?} is not a SHA-256 hex digest"));
            }
        }
        Ok(())
    }
}

/// The AI-BOM for `input`, a CycloneDX 1.6 JSON document. The result is schema-valid when
/// `input` passes [`BomInput::validate`].
pub fn build(input: &BomInput) -> Value {
    let model_ref = format!("{}@{}", input.name, input.version);
    let card = input.model_card.as_ref();

    let mut model = Map::new();
    model.insert("type".into(), "machine-learning-model".into());
    model.insert("bom-ref".into(), model_ref.clone().into());
    model.insert("name".into(), input.name.clone().into());
    model.insert("version".into(), input.version.clone().into());
    let root = input
        .manifest_digest
        .strip_prefix("sha256:")
        .unwrap_or(&input.manifest_digest);
    model.insert("hashes".into(), sha256_hashes(root));
    if let Some(description) = card.and_then(|c| c.description.clone()) {
        model.insert("description".into(), description.into());
    }
    if let Some(licenses) = card
        .map(|c| licenses(&c.licenses))
        .filter(|l| !l.is_empty())
    {
        model.insert("licenses".into(), Value::Array(licenses));
    }
    let references = external_references(input);
    if !references.is_empty() {
        model.insert("externalReferences".into(), Value::Array(references));
    }
    if let Some(card) = card {
        model.insert("modelCard".into(), model_card(card));
    }
    model.insert("properties".into(), properties(warden_properties(input)));
    let mut files: Vec<&BomFile> = input.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let files: Vec<Value> = files.into_iter().map(file_component).collect();
    if !files.is_empty() {
        model.insert("components".into(), Value::Array(files));
    }

    let mut bom = json!({
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": input.serial,
        "version": 1,
        "metadata": {
            "timestamp": input.timestamp,
            "tools": {"components": [{
                "type": "application",
                "name": "warden",
                "version": input.tool_version,
            }]},
            "component": Value::Object(model),
        },
    });
    let datasets: Vec<Value> = card
        .map(|c| {
            unique_datasets(c)
                .into_iter()
                .map(dataset_component)
                .collect()
        })
        .unwrap_or_default();
    if let (Some(object), false) = (bom.as_object_mut(), datasets.is_empty()) {
        // The declared data sources are components of the BOM in their own right; the
        // model card refers to them by bom-ref.
        object.insert("components".into(), Value::Array(datasets));
    }
    bom
}

fn sha256_hashes(hex: &str) -> Value {
    json!([{"alg": "SHA-256", "content": hex.to_ascii_lowercase()}])
}

fn properties(map: BTreeMap<String, String>) -> Value {
    map.into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

/// Admission facts with no CycloneDX field of their own, under the `warden:` namespace.
fn warden_properties(input: &BomInput) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let mut put = |name: &str, value: String| p.insert(format!("warden:{name}"), value);
    put("admitted-by", input.admitted_by.clone());
    put(
        "manifest:digest",
        input.manifest_digest.to_ascii_lowercase(),
    );
    put("scan:accepted", input.scan.accepted.to_string());
    put("scan:files-scanned", input.scan.files_scanned.to_string());
    put("scan:findings", input.scan.findings.to_string());
    if let Some(max) = &input.scan.max_severity {
        put("scan:max-severity", max.clone());
    }
    for (severity, count) in &input.scan.by_severity {
        put(&format!("scan:severity:{severity}"), count.to_string());
    }
    match &input.signature {
        Some(s) => {
            put("signature:present", "true".into());
            put("signature:signer", s.signer.clone());
            put("signature:method", s.method.clone());
            put(
                "signature:bundle-sha256",
                s.bundle_sha256.to_ascii_lowercase(),
            );
        }
        None => {
            put("signature:present", "false".into());
        }
    }
    p
}

fn file_component(f: &BomFile) -> Value {
    // `file`, not `data`: Warden knows each file by path and digest, not what it holds.
    json!({
        "type": "file",
        "bom-ref": format!("file:{}", f.path),
        "name": f.path,
        "hashes": sha256_hashes(&f.sha256),
        "properties": [{"name": "warden:file:size", "value": f.size.to_string()}],
    })
}

fn external_references(input: &BomInput) -> Vec<Value> {
    let card = input.model_card.as_ref().and_then(|c| c.document.as_ref());
    [
        ("model-card", card),
        ("threat-model", input.threat_model.as_ref()),
    ]
    .into_iter()
    .filter_map(|(kind, doc)| {
        doc.map(|d| {
            json!({
                "type": kind,
                "url": iri_reference(&d.path),
                "hashes": sha256_hashes(&d.sha256),
            })
        })
    })
    .collect()
}

/// A path as an IRI reference (the schema's `url` format): characters outside RFC 3986's
/// path characters are percent-encoded, `:` too so that a first segment never reads as a
/// scheme. An absolute URL (`scheme://…`) keeps its scheme, port, query, fragment and
/// existing escapes; only what no URL may hold (spaces, controls, non-ASCII) is encoded.
fn iri_reference(path: &str) -> String {
    let (scheme, rest) = match path.split_once("://") {
        Some((s, r)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            (Some(s), r)
        }
        _ => (None, path),
    };
    let allowed: &[u8] = match scheme {
        Some(_) => b"-._~!$&'()*+,;=@/:?#%[]",
        None => b"-._~!$&'()*+,;=@/",
    };
    let mut out = scheme.map(|s| format!("{s}://")).unwrap_or_default();
    for b in rest.bytes() {
        if b.is_ascii_alphanumeric() || allowed.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SPDX identifiers recognised in a card's licenses, in any case (Hugging Face writes
/// `apache-2.0`, `mit`, `cc-by-4.0`) and written in SPDX's spelling, the only one the
/// schema accepts in `id`. Any other license is recorded by name.
pub const KNOWN_SPDX_IDS: &[&str] = &[
    "AFL-3.0",
    "AGPL-3.0-only",
    "Apache-2.0",
    "Artistic-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSL-1.0",
    "CC-BY-2.0",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-NC-4.0",
    "CC-BY-NC-ND-4.0",
    "CC-BY-NC-SA-4.0",
    "CC-BY-ND-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDLA-Permissive-1.0",
    "CDLA-Permissive-2.0",
    "CDLA-Sharing-1.0",
    "ECL-2.0",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.1",
    "EUPL-1.2",
    "GPL-2.0-only",
    "GPL-3.0-only",
    "ISC",
    "LGPL-2.1-only",
    "LGPL-3.0-only",
    "MIT",
    "MPL-2.0",
    "MS-PL",
    "NCSA",
    "ODbL-1.0",
    "ODC-By-1.0",
    "OFL-1.1",
    "OSL-3.0",
    "PDDL-1.0",
    "PostgreSQL",
    "Unlicense",
    "WTFPL",
    "Zlib",
];

fn licenses(names: &[String]) -> Vec<Value> {
    names
        .iter()
        .map(|name| {
            let trimmed = name.trim();
            match KNOWN_SPDX_IDS
                .iter()
                .find(|id| id.eq_ignore_ascii_case(trimmed))
            {
                Some(id) => json!({"license": {"id": id}}),
                None => json!({"license": {"name": trimmed}}),
            }
        })
        .collect()
}

fn dataset_ref(d: &Dataset) -> String {
    format!("dataset:{}", d.name)
}

/// Datasets in the card's order, the first of each name kept (bom-refs must be unique).
fn unique_datasets(card: &ModelCard) -> Vec<&Dataset> {
    let mut seen = std::collections::BTreeSet::new();
    card.datasets
        .iter()
        .filter(|d| seen.insert(d.name.as_str()))
        .collect()
}

fn dataset_component(d: &Dataset) -> Value {
    let mut data = Map::new();
    data.insert("type".into(), "dataset".into());
    data.insert("name".into(), d.name.clone().into());
    if let Some(url) = &d.url {
        data.insert("contents".into(), json!({"url": iri_reference(url)}));
    }
    if let Some(description) = &d.description {
        data.insert("description".into(), description.clone().into());
    }
    json!({
        "type": "data",
        "bom-ref": dataset_ref(d),
        "name": d.name,
        "data": [Value::Object(data)],
    })
}

/// Inserts `value` under `key` when there is one: CycloneDX wants absent, not empty.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.into(), value);
    }
}

/// CycloneDX's `modelCard`, with only the parts the card declares.
fn model_card(card: &ModelCard) -> Value {
    let texts = |v: &[String]| -> Option<Value> { (!v.is_empty()).then(|| json!(v)) };
    let formats = |v: &[String]| -> Option<Value> {
        (!v.is_empty()).then(|| v.iter().map(|f| json!({"format": f})).collect())
    };

    let mut parameters = Map::new();
    put(&mut parameters, "task", card.task.clone().map(Value::from));
    put(
        &mut parameters,
        "architectureFamily",
        card.architecture_family.clone().map(Value::from),
    );
    put(
        &mut parameters,
        "modelArchitecture",
        card.model_architecture.clone().map(Value::from),
    );
    let datasets: Vec<Value> = unique_datasets(card)
        .into_iter()
        .map(|d| json!({"ref": dataset_ref(d)}))
        .collect();
    put(
        &mut parameters,
        "datasets",
        (!datasets.is_empty()).then_some(Value::Array(datasets)),
    );
    put(&mut parameters, "inputs", formats(&card.inputs));
    put(&mut parameters, "outputs", formats(&card.outputs));

    let metrics: Vec<Value> = card
        .metrics
        .iter()
        .map(|m| {
            let mut metric = json!({"type": m.kind, "value": m.value});
            if let (Some(slice), Some(object)) = (&m.slice, metric.as_object_mut()) {
                object.insert("slice".into(), slice.clone().into());
            }
            metric
        })
        .collect();

    let mut considerations = Map::new();
    put(&mut considerations, "users", texts(&card.users));
    put(&mut considerations, "useCases", texts(&card.intended_use));
    put(
        &mut considerations,
        "technicalLimitations",
        texts(&card.limitations),
    );
    let risks: Vec<Value> = card
        .ethical_considerations
        .iter()
        .map(|r| {
            let mut risk = Map::new();
            risk.insert("name".into(), r.name.clone().into());
            if let Some(m) = &r.mitigation {
                risk.insert("mitigationStrategy".into(), m.clone().into());
            }
            Value::Object(risk)
        })
        .collect();
    put(
        &mut considerations,
        "ethicalConsiderations",
        (!risks.is_empty()).then_some(Value::Array(risks)),
    );
    let fairness: Vec<Value> = card
        .fairness_assessments
        .iter()
        .map(|f| {
            let mut a = Map::new();
            for (key, value) in [
                ("groupAtRisk", &f.group_at_risk),
                ("benefits", &f.benefits),
                ("harms", &f.harms),
                ("mitigationStrategy", &f.mitigation),
            ] {
                if let Some(value) = value {
                    a.insert(key.into(), value.clone().into());
                }
            }
            Value::Object(a)
        })
        .collect();
    put(
        &mut considerations,
        "fairnessAssessments",
        (!fairness.is_empty()).then_some(Value::Array(fairness)),
    );

    let mut out = Map::new();
    for (key, section) in [
        ("modelParameters", parameters),
        ("considerations", considerations),
    ] {
        if !section.is_empty() {
            out.insert(key.into(), Value::Object(section));
        }
    }
    if !metrics.is_empty() {
        out.insert(
            "quantitativeAnalysis".into(),
            json!({"performanceMetrics": metrics}),
        );
    }
    Value::Object(out)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_uuid_urn(s: &str) -> bool {
    let Some(uuid) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// RFC 3339's `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, by shape and ranges.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let fields = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    );
    let (Some(_), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = fields else {
        return false;
    };
    let shape = sep(4, b"-")
        && sep(7, b"-")
        && sep(10, b"Tt")
        && sep(13, b":")
        && sep(16, b":")
        && (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && h < 24
        && mi < 60
        && sec <= 60;
    let mut i = 19;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    let zone = match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len()
                && sep(i + 3, b":")
                && digits(i + 1..i + 3).is_some_and(|h| h < 24)
                && digits(i + 4..i + 6).is_some_and(|m| m < 60)
        }
        _ => false,
    };
    shape && zone
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn hex(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    fn minimal() -> BomInput {
        BomInput {
            serial: "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79".into(),
            timestamp: "2025-01-31T12:00:00Z".into(),
            tool_version: "0.1.0".into(),
            name: "tiny".into(),
            version: "1".into(),
            manifest_digest: format!("sha256:{}", hex('a')),
            files: vec![],
            signature: None,
            scan: ScanSummary::default(),
            model_card: None,
            threat_model: None,
            admitted_by: "alice".into(),
        }
    }

    fn full() -> BomInput {
        let mut input = minimal();
        input.files = vec![
            BomFile {
                path: "weights/model.safetensors".into(),
                size: 1024,
                sha256: hex('B'),
            },
            BomFile {
                path: "config.json".into(),
                size: 10,
                sha256: hex('c'),
            },
        ];
        input.signature = Some(BomSignature {
            signer: "SHA256:abc".into(),
            bundle_sha256: hex('d'),
            method: "oms-key".into(),
        });
        input.scan = ScanSummary {
            files_scanned: 2,
            findings: 3,
            max_severity: Some("medium".into()),
            by_severity: BTreeMap::from([("low".into(), 2), ("medium".into(), 1)]),
            accepted: true,
        };
        input.model_card = Some(ModelCard {
            document: Some(BomDocument {
                path: "model card.md".into(),
                sha256: hex('e'),
            }),
            licenses: vec!["apache-2.0".into(), "tiny-license".into()],
            task: Some("text-classification".into()),
            datasets: vec![
                Dataset {
                    name: "imdb".into(),
                    url: Some("https://example.org/imdb".into()),
                    description: None,
                },
                Dataset {
                    name: "imdb".into(),
                    url: None,
                    description: None,
                },
            ],
            inputs: vec!["text/plain".into()],
            limitations: vec!["English only".into()],
            ethical_considerations: vec![Risk {
                name: "bias".into(),
                mitigation: Some("review".into()),
            }],
            metrics: vec![Metric {
                kind: "accuracy".into(),
                value: "0.9".into(),
                slice: None,
            }],
            ..ModelCard::default()
        });
        input.threat_model = Some(BomDocument {
            path: "threats.md".into(),
            sha256: hex('f'),
        });
        input
    }

    fn property<'a>(component: &'a Value, name: &str) -> Option<&'a str> {
        component["properties"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)?["value"]
            .as_str()
    }

    #[test]
    fn required_fields() {
        let input = minimal();
        input.validate().unwrap();
        let bom = build(&input);
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(bom["specVersion"], "1.6");
        assert_eq!(bom["$schema"], SCHEMA_URL);
        assert_eq!(bom["version"], 1);
        assert_eq!(bom["serialNumber"], input.serial);
        assert_eq!(bom["metadata"]["timestamp"], input.timestamp);
        assert_eq!(
            bom["metadata"]["tools"],
            json!({"components": [{"type": "application", "name": "warden", "version": "0.1.0"}]})
        );
        let model = &bom["metadata"]["component"];
        assert_eq!(model["type"], "machine-learning-model");
        assert_eq!(model["bom-ref"], "tiny@1");
        assert_eq!(
            model["hashes"],
            json!([{"alg": "SHA-256", "content": hex('a')}])
        );
        assert!(model.get("modelCard").is_none());
        assert!(model.get("components").is_none());
        assert!(bom.get("components").is_none());
        assert_eq!(property(model, "warden:signature:present"), Some("false"));
    }

    #[test]
    fn every_file_with_its_hash_sorted() {
        let input = full();
        let bom = build(&input);
        let files = bom["metadata"]["component"]["components"]
            .as_array()
            .unwrap();
        assert_eq!(files.len(), input.files.len());
        let names: Vec<_> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["config.json", "weights/model.safetensors"]);
        for f in files {
            assert_eq!(f["type"], "file");
            let source = input.files.iter().find(|s| s.path == f["name"]).unwrap();
            assert_eq!(f["hashes"][0]["alg"], "SHA-256");
            assert_eq!(
                f["hashes"][0]["content"],
                source.sha256.to_ascii_lowercase()
            );
            assert_eq!(
                property(f, "warden:file:size"),
                Some(source.size.to_string().as_str())
            );
        }
    }

    #[test]
    fn properties() {
        let bom = build(&full());
        let model = &bom["metadata"]["component"];
        for (name, value) in [
            ("warden:admitted-by", "alice".to_string()),
            ("warden:manifest:digest", format!("sha256:{}", hex('a'))),
            ("warden:scan:accepted", "true".into()),
            ("warden:scan:files-scanned", "2".into()),
            ("warden:scan:findings", "3".into()),
            ("warden:scan:max-severity", "medium".into()),
            ("warden:scan:severity:low", "2".into()),
            ("warden:scan:severity:medium", "1".into()),
            ("warden:signature:present", "true".into()),
            ("warden:signature:signer", "SHA256:abc".into()),
            ("warden:signature:method", "oms-key".into()),
            ("warden:signature:bundle-sha256", hex('d')),
        ] {
            assert_eq!(property(model, name), Some(value.as_str()), "{name}");
        }
        let names: Vec<_> = model["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn model_card_licenses_and_references() {
        let bom = build(&full());
        let model = &bom["metadata"]["component"];
        assert_eq!(
            model["licenses"],
            json!([{"license": {"id": "Apache-2.0"}}, {"license": {"name": "tiny-license"}}])
        );
        assert_eq!(
            model["externalReferences"],
            json!([
                {"type": "model-card", "url": "model%20card.md",
                 "hashes": [{"alg": "SHA-256", "content": hex('e')}]},
                {"type": "threat-model", "url": "threats.md",
                 "hashes": [{"alg": "SHA-256", "content": hex('f')}]},
            ])
        );
        let card = &model["modelCard"];
        assert_eq!(card["modelParameters"]["task"], "text-classification");
        assert_eq!(
            card["modelParameters"]["datasets"],
            json!([{"ref": "dataset:imdb"}])
        );
        assert_eq!(
            card["modelParameters"]["inputs"],
            json!([{"format": "text/plain"}])
        );
        assert_eq!(
            card["quantitativeAnalysis"]["performanceMetrics"],
            json!([{"type": "accuracy", "value": "0.9"}])
        );
        assert_eq!(
            card["considerations"]["ethicalConsiderations"],
            json!([{"name": "bias", "mitigationStrategy": "review"}])
        );
        assert_eq!(
            bom["components"],
            json!([{"type": "data", "bom-ref": "dataset:imdb", "name": "imdb",
                    "data": [{"type": "dataset", "name": "imdb",
                              "contents": {"url": "https://example.org/imdb"}}]}])
        );
    }

    #[test]
    fn deterministic() {
        let input = full();
        let mut shuffled = input.clone();
        shuffled.files.reverse();
        assert_eq!(build(&input), build(&shuffled));
        assert_eq!(
            serde_json::to_string(&build(&input)).unwrap(),
            serde_json::to_string(&build(&input)).unwrap()
        );
    }

    #[test]
    fn input_round_trips_through_json() {
        let input = full();
        let text = serde_json::to_string(&input).unwrap();
        let back: BomInput = serde_json::from_str(&text).unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn validate_refuses_what_the_schema_would() {
        type Change = fn(&mut BomInput);
        let cases: Vec<(Change, &str)> = vec![
            (
                |i| i.serial = "3e671687-395b-41f5-a30f-a58921a69b79".into(),
                "serial",
            ),
            (
                |i| i.serial = "urn:uuid:3E671687-395B-41F5-A30F-A58921A69B79".into(),
                "serial",
            ),
            (|i| i.timestamp = "2025-01-31 12:00".into(), "timestamp"),
            (|i| i.timestamp = "2025-13-31T12:00:00Z".into(), "timestamp"),
            (|i| i.manifest_digest = hex('a'), "manifest digest"),
            (|i| i.name = String::new(), "name is empty"),
            (|i| i.files[0].sha256 = "abc".into(), "file weights"),
            (|i| i.files[1].path = i.files[0].path.clone(), "repeated"),
            (
                |i| i.threat_model.as_mut().unwrap().sha256 = hex('g'),
                "threat model",
            ),
        ];
        for (change, needle) in cases {
            let mut input = full();
            change(&mut input);
            let err = input.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        full().validate().unwrap();
        for ok in ["2025-01-31T12:00:00.123+05:30", "2025-01-31t12:00:00z"] {
            assert!(is_rfc3339(ok), "{ok}");
        }
    }

    #[test]
    fn serial_numbers_are_v4_uuids() {
        let a = new_serial().unwrap();
        let b = new_serial().unwrap();
        assert_ne!(a, b);
        assert!(is_uuid_urn(&a), "{a}");
        assert_eq!(&a[23..24], "4");
        assert!(matches!(&a[28..29], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn iri_references() {
        assert_eq!(
            iri_reference("docs/threat model.md"),
            "docs/threat%20model.md"
        );
        assert_eq!(iri_reference("c:card.md"), "c%3Acard.md");
        assert_eq!(iri_reference("https://x.org/a b"), "https://x.org/a%20b");
        assert_eq!(
            iri_reference("https://x.org:8443/d?v=1#s%20"),
            "https://x.org:8443/d?v=1#s%20"
        );
        assert_eq!(iri_reference("50%.md"), "50%25.md");
        assert_eq!(iri_reference("modèle.md"), "mod%C3%A8le.md");
    }
}
