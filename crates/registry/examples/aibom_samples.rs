//! Writes sample AI-BOMs into a directory, for checking against the CycloneDX 1.6 schema
//! (`tests/aibom/validate.py`, run by scripts/test):
//!
//! ```sh
//! cargo run -p registry --example aibom_samples -- DIR
//! ```
//!
//! `minimal.cdx.json` has only what every BOM has; `full.cdx.json` every field Warden
//! writes; `hf-card.cdx.json` and `json-card.cdx.json` a model card of each format, parsed
//! by `parse_model_card`; `licenses.cdx.json` every SPDX identifier Warden recognises.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;

use registry::aibom::{
    build, new_serial, parse_model_card, BomDocument, BomFile, BomInput, BomSignature, Dataset,
    FairnessAssessment, Metric, ModelCard, Risk, ScanSummary, KNOWN_SPDX_IDS,
};

const HF_CARD: &str = r#"---
license: apache-2.0
datasets:
- stanfordnlp/imdb
- nyu-mll/glue
pipeline_tag: text-classification
language:
- en
tags: [sentiment, tiny]
model-index:
- name: tiny-sentiment
  results:
  - task:
      type: text-classification
      name: Text Classification
    dataset:
      name: IMDB
      type: stanfordnlp/imdb
      split: test
    metrics:
    - type: accuracy
      value: 0.931
      name: Accuracy
    - type: f1
      value: 0.92
---
# tiny-sentiment

A tiny sentiment classifier.
"#;

const JSON_CARD: &str = r#"{
  "description": "A tiny sentiment classifier.",
  "license": ["MIT", "Custom Research License"],
  "task": "text-classification",
  "architecture_family": "transformer",
  "model_architecture": "BERT-tiny",
  "datasets": [
    {"name": "imdb", "url": "https://ai.stanford.edu/~amaas/data/sentiment/",
     "description": "50,000 movie reviews"}
  ],
  "inputs": "text/plain",
  "outputs": ["application/json"],
  "users": ["support staff"],
  "intended_use": ["triage of English product reviews"],
  "limitations": ["English only", "reviews under 512 tokens"],
  "ethical_considerations": ["may reflect reviewer bias",
    {"name": "automated decisions", "mitigation": "a person reviews every negative verdict"}],
  "fairness_assessments": [{"group_at_risk": "non-native speakers",
    "harms": "more false negatives", "mitigation": "threshold tuned per language"}],
  "metrics": [{"type": "accuracy", "value": 0.93, "slice": "imdb test"}]
}
"#;

fn hex_of(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn minimal() -> Result<BomInput, Box<dyn Error>> {
    Ok(BomInput {
        serial: new_serial()?,
        timestamp: "2025-01-31T12:00:00Z".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        name: "tiny-sentiment".into(),
        version: "1.0.0".into(),
        manifest_digest: format!("sha256:{}", hex_of('a')),
        files: vec![BomFile {
            path: "model.safetensors".into(),
            size: 4096,
            sha256: hex_of('b'),
        }],
        signature: None,
        scan: ScanSummary {
            files_scanned: 1,
            ..ScanSummary::default()
        },
        model_card: None,
        threat_model: None,
        admitted_by: "alice".into(),
    })
}

fn full() -> Result<BomInput, Box<dyn Error>> {
    let mut input = minimal()?;
    input.timestamp = "2025-01-31T12:00:00.250+01:00".into();
    input.files.push(BomFile {
        path: "tokenizer/vocab 1.txt".into(),
        size: 12,
        sha256: hex_of('C'),
    });
    input.signature = Some(BomSignature {
        signer: "SHA256:3f2a9c".into(),
        bundle_sha256: hex_of('d'),
        method: "oms-key".into(),
    });
    input.scan = ScanSummary {
        files_scanned: 2,
        findings: 2,
        max_severity: Some("medium".into()),
        by_severity: BTreeMap::from([("low".into(), 1), ("medium".into(), 1)]),
        accepted: true,
    };
    input.model_card = Some(ModelCard {
        document: Some(BomDocument {
            path: "docs/model card.md".into(),
            sha256: hex_of('e'),
        }),
        description: Some("A tiny sentiment classifier.".into()),
        licenses: vec!["apache-2.0".into(), "other".into()],
        task: Some("text-classification".into()),
        architecture_family: Some("transformer".into()),
        model_architecture: Some("BERT-tiny".into()),
        datasets: vec![Dataset {
            name: "imdb".into(),
            url: Some("https://example.org/datasets/imdb?split=train".into()),
            description: Some("movie reviews".into()),
        }],
        inputs: vec!["text/plain".into()],
        outputs: vec!["application/json".into()],
        users: vec!["support staff".into()],
        intended_use: vec!["review triage".into()],
        limitations: vec!["English only".into()],
        ethical_considerations: vec![Risk {
            name: "bias".into(),
            mitigation: Some("human review".into()),
        }],
        fairness_assessments: vec![FairnessAssessment {
            group_at_risk: Some("non-native speakers".into()),
            benefits: Some("faster answers".into()),
            harms: Some("more errors".into()),
            mitigation: Some("per-language thresholds".into()),
        }],
        metrics: vec![Metric {
            kind: "accuracy".into(),
            value: "0.93".into(),
            slice: Some("test".into()),
        }],
    });
    input.threat_model = Some(BomDocument {
        path: "threat-model.md".into(),
        sha256: hex_of('f'),
    });
    Ok(input)
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .ok_or("usage: aibom_samples DIR")?,
    );
    std::fs::create_dir_all(&dir)?;
    let mut hf = minimal()?;
    hf.model_card = Some(parse_model_card(HF_CARD.as_bytes(), "README.md")?);
    let mut json = minimal()?;
    json.model_card = Some(parse_model_card(JSON_CARD.as_bytes(), "model-card.json")?);
    let mut licenses = minimal()?;
    licenses.model_card = Some(ModelCard {
        // Lowercase, as Hugging Face writes them: the BOM must carry SPDX's spelling.
        licenses: KNOWN_SPDX_IDS.iter().map(|id| id.to_lowercase()).collect(),
        ..ModelCard::default()
    });
    for (name, input) in [
        ("minimal", minimal()?),
        ("full", full()?),
        ("hf-card", hf),
        ("json-card", json),
        ("licenses", licenses),
    ] {
        input.validate()?;
        let path = dir.join(format!("{name}.cdx.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&build(&input))?)?;
        println!("{}", path.display());
    }
    Ok(())
}
