//! Model cards: Warden's JSON model card, and Hugging Face style Markdown with YAML front
//! matter. Both become one [`ModelCard`], which [`super::build`] maps onto CycloneDX's
//! `modelCard`. Cards come from the model's publisher, so they are untrusted input: the
//! size is capped, YAML aliases are refused (no exponential expansion) and nesting is
//! bounded.

use serde::{Deserialize, Deserializer, Serialize};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use super::{AibomError, BomDocument};

/// The largest model card accepted, in bytes (1 MiB).
pub const MAX_CARD_BYTES: usize = 1 << 20;

/// The deepest nesting of YAML collections accepted in front matter. Real cards nest
/// `model-index` five levels deep; this leaves room without letting depth grow unbounded.
const MAX_YAML_DEPTH: usize = 32;

/// What a model card declares about the model, in the terms of CycloneDX's `modelCard`.
///
/// This is also the schema of Warden's JSON model card: the same field names, in a JSON
/// object, every field optional, unknown fields rejected. List fields also accept a single
/// string. See docs/aibom.md.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// The card file itself (path and SHA-256), set by [`parse_model_card`]; the AI-BOM
    /// references it as an external reference of type `model-card`. A JSON card file may
    /// not set it.
    #[serde(default)]
    pub document: Option<BomDocument>,
    /// A short description of the model.
    #[serde(default)]
    pub description: Option<String>,
    /// Licenses: SPDX identifiers (any case) or free-form names. JSON cards may call the
    /// field `license`.
    #[serde(default, alias = "license", deserialize_with = "one_or_many")]
    pub licenses: Vec<String>,
    /// The task, e.g. `text-classification` (Hugging Face's `pipeline_tag`).
    #[serde(default)]
    pub task: Option<String>,
    /// The architecture family, e.g. `transformer`.
    #[serde(default)]
    pub architecture_family: Option<String>,
    /// The specific architecture, e.g. `BERT-base`.
    #[serde(default)]
    pub model_architecture: Option<String>,
    /// Data the model was trained or evaluated on.
    #[serde(default)]
    pub datasets: Vec<Dataset>,
    /// Input formats, e.g. `text/plain`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub inputs: Vec<String>,
    /// Output formats.
    #[serde(default, deserialize_with = "one_or_many")]
    pub outputs: Vec<String>,
    /// Who the model is meant for.
    #[serde(default, deserialize_with = "one_or_many")]
    pub users: Vec<String>,
    /// What the model is meant to be used for.
    #[serde(default, deserialize_with = "one_or_many")]
    pub intended_use: Vec<String>,
    /// Known technical limitations.
    #[serde(default, deserialize_with = "one_or_many")]
    pub limitations: Vec<String>,
    /// Ethical risks, each a string or `{name, mitigation}`.
    #[serde(default)]
    pub ethical_considerations: Vec<Risk>,
    /// Fairness assessments.
    #[serde(default)]
    pub fairness_assessments: Vec<FairnessAssessment>,
    /// Reported performance metrics.
    #[serde(default)]
    pub metrics: Vec<Metric>,
}

/// A declared data source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Its name, e.g. a Hugging Face dataset id.
    pub name: String,
    /// Where it can be found (an IRI).
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// An ethical risk and how it is mitigated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Risk {
    pub name: String,
    pub mitigation: Option<String>,
}

/// An assessment of the model's effect on one group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairnessAssessment {
    #[serde(default)]
    pub group_at_risk: Option<String>,
    #[serde(default)]
    pub benefits: Option<String>,
    #[serde(default)]
    pub harms: Option<String>,
    #[serde(default)]
    pub mitigation: Option<String>,
}

/// One performance metric. Values are kept as text, as CycloneDX records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// What is measured, e.g. `accuracy`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value; JSON numbers are accepted and written as text.
    #[serde(deserialize_with = "text_or_number")]
    pub value: String,
    /// The subset of data it was measured on, e.g. a dataset name.
    #[serde(default)]
    pub slice: Option<String>,
}

impl<'de> Deserialize<'de> for Risk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Risk, D::Error> {
        // A bare string is the common case in hand-written cards.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            name: String,
            #[serde(default)]
            mitigation: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(String),
            Full(Full),
        }
        match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a string or an object {name, mitigation}")
        })? {
            Form::Name(name) => Ok(Risk {
                name,
                mitigation: None,
            }),
            Form::Full(f) => Ok(Risk {
                name: f.name,
                mitigation: f.mitigation,
            }),
        }
    }
}

/// Accepts `"x"` as well as `["x", ...]`.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }
    match Form::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a string or a list of strings"))?
    {
        Form::One(s) => Ok(vec![s]),
        Form::Many(v) => Ok(v),
    }
}

/// Accepts a string or a JSON number, as text.
fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        Number(serde_json::Number),
    }
    match Form::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a string or a number"))?
    {
        Form::Text(s) => Ok(s),
        Form::Number(n) => Ok(n.to_string()),
    }
}

/// Parses a model card. The format is chosen by the file name's extension (`.json`;
/// `.md` or `.markdown`), else by the first bytes (`{` or `---`). The card's path and
/// SHA-256 are recorded in [`ModelCard::document`].
pub fn parse_model_card(bytes: &[u8], file_name: &str) -> Result<ModelCard, AibomError> {
    let file = file_name.to_string();
    if bytes.len() > MAX_CARD_BYTES {
        return Err(AibomError::CardTooLarge {
            file,
            size: bytes.len(),
            limit: MAX_CARD_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| AibomError::CardNotUtf8 {
        file: file.clone(),
        offset: e.valid_up_to(),
    })?;
    // A UTF-8 byte-order mark is common in files saved by Windows editors.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let mut card = match extension.as_str() {
        "json" => parse_json(text, &file)?,
        "md" | "markdown" => parse_markdown(text, &file)?,
        _ if text.trim_start().starts_with('{') => parse_json(text, &file)?,
        _ if text.starts_with("---") => parse_markdown(text, &file)?,
        _ => return Err(AibomError::CardFormat { file }),
    };
    card.document = Some(BomDocument {
        path: file_name.to_string(),
        sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes)),
    });
    Ok(card)
}

fn parse_json(text: &str, file: &str) -> Result<ModelCard, AibomError> {
    let card: ModelCard = serde_json::from_str(text).map_err(|e| AibomError::CardJson {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    if card.document.is_some() {
        return Err(AibomError::CardJson {
            file: file.to_string(),
            message: "field `document` is recorded by Warden and may not be set in a card"
                .to_string(),
        });
    }
    Ok(card)
}

/// A Markdown card: the YAML front matter between a first line `---` and the next line
/// `---` (or `...`). The Markdown body is not interpreted. A card without front matter
/// declares nothing but is still referenced by its digest.
fn parse_markdown(text: &str, file: &str) -> Result<ModelCard, AibomError> {
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(first) if first.trim_end() == "---" => {}
        _ => return Ok(ModelCard::default()),
    }
    let mut yaml = String::new();
    let mut closed = false;
    for line in lines {
        let bare = line.trim_end();
        if bare == "---" || bare == "..." {
            closed = true;
            break;
        }
        yaml.push_str(line);
    }
    let err = |line: usize, message: String| AibomError::FrontMatter {
        file: file.to_string(),
        line,
        message,
    };
    if !closed {
        return Err(err(
            1,
            "the front matter opened here is not closed by a line `---`".to_string(),
        ));
    }
    // The YAML starts on the file's second line.
    let root = load_yaml(&yaml).map_err(|(line, message)| err(line + 1, message))?;
    from_front_matter(root).map_err(|(line, message)| err(line + 1, message))
}

/// A YAML node, with the (1-based, front-matter-relative) line it starts on. Scalars are
/// kept as their text: the card fields Warden reads are all text.
#[derive(Debug)]
struct Node {
    line: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Null,
    Text(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

type YamlError = (usize, String);

/// Builds the tree from the parser's events, refusing aliases, more than one document,
/// non-text keys, duplicate keys and nesting deeper than [`MAX_YAML_DEPTH`].
fn load_yaml(text: &str) -> Result<Option<Node>, YamlError> {
    enum Frame {
        List(usize, Vec<Node>),
        Map(usize, Vec<(String, Node)>, Option<String>),
    }
    fn place(stack: &mut [Frame], root: &mut Option<Node>, node: Node) -> Result<(), YamlError> {
        match stack.last_mut() {
            None => *root = Some(node),
            Some(Frame::List(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, key)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => {
                    let k = match node.kind {
                        Kind::Text(k) => k,
                        _ => return Err((node.line, "a key must be a plain string".into())),
                    };
                    if entries.iter().any(|(seen, _)| *seen == k) {
                        return Err((node.line, format!("duplicate key `{k}`")));
                    }
                    *key = Some(k);
                }
            },
        }
        Ok(())
    }

    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| (e.marker().line(), e.info().to_string()))?;
        let line = mark.line();
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err((line, "only one YAML document is allowed".into()));
                }
            }
            Event::Alias(_) => {
                return Err((line, "YAML aliases (`*name`) are not accepted".into()));
            }
            Event::Scalar(value, style, _, _) => {
                let null = style == TScalarStyle::Plain
                    && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL");
                let kind = if null { Kind::Null } else { Kind::Text(value) };
                place(&mut stack, &mut root, Node { line, kind })?;
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_YAML_DEPTH {
                    return Err((line, format!("nested deeper than {MAX_YAML_DEPTH} levels")));
                }
                stack.push(match event {
                    Event::SequenceStart(..) => Frame::List(line, Vec::new()),
                    _ => Frame::Map(line, Vec::new(), None),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match stack.pop() {
                    Some(Frame::List(line, items)) => Node {
                        line,
                        kind: Kind::List(items),
                    },
                    Some(Frame::Map(line, entries, _)) => Node {
                        line,
                        kind: Kind::Map(entries),
                    },
                    None => return Err((line, "unbalanced YAML collection".into())),
                };
                place(&mut stack, &mut root, node)?;
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
        }
    }
    Ok(root)
}

impl Node {
    fn text(&self, key: &str) -> Result<Option<String>, YamlError> {
        match &self.kind {
            Kind::Null => Ok(None),
            Kind::Text(s) => Ok(Some(s.clone())),
            _ => Err((self.line, format!("`{key}` must be a string"))),
        }
    }

    fn texts(&self, key: &str) -> Result<Vec<String>, YamlError> {
        let wrong = || {
            (
                self.line,
                format!("`{key}` must be a string or a list of strings"),
            )
        };
        match &self.kind {
            Kind::Null => Ok(Vec::new()),
            Kind::Text(s) => Ok(vec![s.clone()]),
            Kind::List(items) => items
                .iter()
                .filter_map(|item| match &item.kind {
                    Kind::Null => None,
                    Kind::Text(s) => Some(Ok(s.clone())),
                    _ => Some(Err(wrong())),
                })
                .collect(),
            Kind::Map(_) => Err(wrong()),
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn list(&self, key: &str) -> Result<&[Node], YamlError> {
        match &self.kind {
            Kind::Null => Ok(&[]),
            Kind::List(items) => Ok(items),
            _ => Err((self.line, format!("`{key}` must be a list"))),
        }
    }
}

/// Maps Hugging Face's model card metadata onto a [`ModelCard`]: `license` (with
/// `license_name` when it is `other`), `datasets`, `pipeline_tag` and the metrics of
/// `model-index`. Other keys are ignored: Hugging Face cards carry many.
fn from_front_matter(root: Option<Node>) -> Result<ModelCard, YamlError> {
    let mut card = ModelCard::default();
    let Some(root) = root else {
        return Ok(card);
    };
    if !matches!(root.kind, Kind::Map(_)) {
        return Err((
            root.line,
            "the front matter must be a mapping of keys".into(),
        ));
    }
    if let Some(node) = root.get("license") {
        card.licenses = node.texts("license")?;
    }
    if let Some(name) = root.get("license_name") {
        if let Some(name) = name.text("license_name")? {
            // Hugging Face writes `license: other` and names the license separately.
            card.licenses.retain(|l| l != "other");
            card.licenses.push(name);
        }
    }
    if let Some(node) = root.get("datasets") {
        card.datasets = node
            .texts("datasets")?
            .into_iter()
            .map(|name| Dataset {
                name,
                url: None,
                description: None,
            })
            .collect();
    }
    if let Some(node) = root.get("pipeline_tag") {
        card.task = node.text("pipeline_tag")?;
    }
    if let Some(node) = root.get("model-index") {
        card.metrics = model_index_metrics(node)?;
    }
    Ok(card)
}

/// `model-index: [{name, results: [{task, dataset: {name}, metrics: [{type, value}]}]}]`.
fn model_index_metrics(index: &Node) -> Result<Vec<Metric>, YamlError> {
    let mut metrics = Vec::new();
    for model in index.list("model-index")? {
        let Some(results) = model.get("results") else {
            continue;
        };
        for result in results.list("results")? {
            let slice = match result.get("dataset") {
                Some(dataset) => match dataset.get("name").or_else(|| dataset.get("type")) {
                    Some(name) => name.text("dataset.name")?,
                    None => None,
                },
                None => None,
            };
            let Some(list) = result.get("metrics") else {
                continue;
            };
            for metric in list.list("metrics")? {
                let kind = metric
                    .get("type")
                    .map(|n| n.text("metrics.type"))
                    .transpose()?
                    .flatten();
                let value = metric
                    .get("value")
                    .map(|n| n.text("metrics.value"))
                    .transpose()?
                    .flatten();
                match (kind, value) {
                    (Some(kind), Some(value)) => metrics.push(Metric {
                        kind,
                        value,
                        slice: slice.clone(),
                    }),
                    _ => {
                        return Err((
                            metric.line,
                            "a model-index metric needs a `type` and a `value`".into(),
                        ))
                    }
                }
            }
        }
    }
    Ok(metrics)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    // Indentation matters in YAML: a raw string keeps it.
    const HF: &str = r#"---
license: apache-2.0
datasets:
- imdb
- glue
pipeline_tag: text-classification
language: [en]
model-index:
- name: tiny
  results:
  - task: {type: text-classification}
    dataset: {name: IMDB, type: imdb}
    metrics:
    - type: accuracy
      value: 0.93
---
# Tiny

A model.
"#;

    fn front_matter_error(text: &str) -> (usize, String) {
        match parse_model_card(text.as_bytes(), "README.md") {
            Err(AibomError::FrontMatter { line, message, .. }) => (line, message),
            other => panic!("expected a front matter error, got {other:?}"),
        }
    }

    #[test]
    fn hugging_face_front_matter() {
        let card = parse_model_card(HF.as_bytes(), "README.md").unwrap();
        assert_eq!(card.licenses, ["apache-2.0"]);
        assert_eq!(card.task.as_deref(), Some("text-classification"));
        let names: Vec<_> = card.datasets.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["imdb", "glue"]);
        assert_eq!(
            card.metrics,
            [Metric {
                kind: "accuracy".into(),
                value: "0.93".into(),
                slice: Some("IMDB".into()),
            }]
        );
        let doc = card.document.unwrap();
        assert_eq!(doc.path, "README.md");
        assert_eq!(doc.sha256.len(), 64);
    }

    #[test]
    fn license_other_uses_license_name() {
        let card = parse_model_card(
            b"---\r\nlicense: other\r\nlicense_name: tiny-license\r\n---\r\n",
            "README.md",
        )
        .unwrap();
        assert_eq!(card.licenses, ["tiny-license"]);
    }

    #[test]
    fn markdown_without_front_matter_declares_nothing() {
        let card = parse_model_card(b"# A model\n", "README.md").unwrap();
        assert_eq!(card.licenses, Vec::<String>::new());
        assert!(card.document.is_some());
        let empty = parse_model_card(b"---\n---\nbody\n", "card.md").unwrap();
        assert_eq!(empty.task, None);
    }

    #[test]
    fn bad_front_matter_is_named_with_its_line() {
        let (line, message) = front_matter_error("---\nlicense: mit\n");
        assert_eq!(line, 1);
        assert!(message.contains("not closed"), "{message}");

        let (line, message) = front_matter_error("---\nlicense: mit\nlicense: gpl\n---\n");
        assert_eq!(line, 3);
        assert!(message.contains("duplicate key `license`"), "{message}");

        let (line, message) = front_matter_error("---\na: &x [1, 2]\nb: *x\n---\n");
        assert_eq!(line, 3);
        assert!(message.contains("aliases"), "{message}");

        let (line, message) = front_matter_error("---\nlicense:\n  kind: mit\n---\n");
        assert_eq!(line, 3);
        assert!(message.contains("`license` must be"), "{message}");

        let (line, message) = front_matter_error("---\n- just\n- a list\n---\n");
        assert_eq!(line, 2);
        assert!(message.contains("mapping"), "{message}");

        let (line, message) = front_matter_error("---\nok: 1\nbad: [unclosed\n---\n");
        assert!(line >= 3, "{line}: {message}");

        let deep = format!("---\nx: {}{}\n---\n", "[".repeat(40), "]".repeat(40));
        let (_, message) = front_matter_error(&deep);
        assert!(
            message.contains("deeper") || message.contains("recursion"),
            "{message}"
        );

        let (line, message) = front_matter_error(
            "---\nmodel-index:\n- results:\n  - metrics:\n    - type: f1\n---\n",
        );
        assert_eq!(line, 5);
        assert!(message.contains("`value`"), "{message}");
    }

    #[test]
    fn json_card() {
        let json = br#"{
            "description": "A tiny classifier.",
            "license": "MIT",
            "task": "classification",
            "architecture_family": "transformer",
            "model_architecture": "BERT-tiny",
            "datasets": [{"name": "imdb", "url": "https://example.org/imdb"}],
            "inputs": "text/plain",
            "outputs": ["application/json"],
            "intended_use": ["sentiment of English reviews"],
            "limitations": "English only",
            "ethical_considerations": ["bias", {"name": "misuse", "mitigation": "rate limits"}],
            "fairness_assessments": [{"group_at_risk": "non-native speakers", "harms": "errors"}],
            "metrics": [{"type": "accuracy", "value": 0.93}, {"type": "f1", "value": "0.9", "slice": "test"}]
        }"#;
        let card = parse_model_card(json, "card.json").unwrap();
        assert_eq!(card.licenses, ["MIT"]);
        assert_eq!(card.inputs, ["text/plain"]);
        assert_eq!(card.limitations, ["English only"]);
        assert_eq!(card.ethical_considerations.len(), 2);
        assert_eq!(
            card.ethical_considerations[1].mitigation.as_deref(),
            Some("rate limits")
        );
        assert_eq!(card.metrics[0].value, "0.93");
        assert_eq!(card.metrics[1].slice.as_deref(), Some("test"));
        assert_eq!(
            card.datasets[0].url.as_deref(),
            Some("https://example.org/imdb")
        );
    }

    #[test]
    fn bad_json_cards_are_refused() {
        for (text, needle) in [
            (r#"{"taks": "x"}"#, "unknown field `taks`"),
            (r#"{"inputs": 3}"#, "a string or a list of strings"),
            (r#"{"metrics": [{"type": "f1"}]}"#, "missing field `value`"),
            (
                r#"{"document": {"path": "x", "sha256": "00"}}"#,
                "recorded by Warden",
            ),
            ("{\n\"task\": \"x\",\n", "line"),
        ] {
            match parse_model_card(text.as_bytes(), "card.json") {
                Err(AibomError::CardJson { message, .. }) => {
                    assert!(message.contains(needle), "{text}: {message}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits_and_formats() {
        let big = vec![b' '; MAX_CARD_BYTES + 1];
        assert!(matches!(
            parse_model_card(&big, "card.json"),
            Err(AibomError::CardTooLarge { .. })
        ));
        assert!(matches!(
            parse_model_card(b"\xff\xfe", "card.md"),
            Err(AibomError::CardNotUtf8 { .. })
        ));
        assert!(matches!(
            parse_model_card(b"plain text", "CARD"),
            Err(AibomError::CardFormat { .. })
        ));
        // Sniffed by content when the name does not tell.
        let card = parse_model_card(b"\xef\xbb\xbf{\"task\": \"t\"}", "CARD").unwrap();
        assert_eq!(card.task.as_deref(), Some("t"));
        let card = parse_model_card(b"---\npipeline_tag: t\n---\n", "CARD").unwrap();
        assert_eq!(card.task.as_deref(), Some("t"));
    }
}
