//! TensorFlow protobuf files: `saved_model.pb` (a `SavedModel`), frozen graphs (a bare
//! `GraphDef`), and the protobuf files that sit next to them (`keras_metadata.pb`,
//! `fingerprint.pb`), plus SentencePiece tokenizer models, which are protobuf too.
//! Protos: `tensorflow/core/protobuf/saved_model.proto`, `meta_graph.proto`,
//! `tensorflow/core/framework/graph.proto`, `function.proto`, `node_def.proto`,
//! `attr_value.proto`, `tensorflow/core/protobuf/fingerprint.proto`, Keras
//! `protobuf/saved_metadata.proto`, SentencePiece `sentencepiece_model.proto`.
//!
//! As for ONNX, the bytes are walked with the bounded wire walker before prost decodes
//! them, and constant tensors are never copied.

pub mod ops;
pub mod proto;

use prost::Message;

use crate::error::{ParseError, Result};
use crate::limits::Limits;
use crate::onnx::wire::{self, Kind, Schema, TopLevel};

pub use proto::{GraphDef, SavedMetadata, SavedModel};

/// `SavedModel`: 1 `saved_model_schema_version` (varint), 2 `meta_graphs`.
pub fn looks_like_saved_model(top: &TopLevel) -> bool {
    top.has(2, 2) && top.only(&[(1, 0), (2, 2)])
}

/// `GraphDef`: 1 `node`, 2 `library`, 3 `version` (deprecated varint), 4 `versions`,
/// 5 `debug_info`.
pub fn looks_like_graph_def(top: &TopLevel) -> bool {
    (top.has(1, 2) || top.has(2, 2)) && top.only(&[(1, 2), (2, 2), (3, 0), (4, 2), (5, 2)])
}

/// Keras `SavedMetadata`: only 1 `nodes`.
pub fn looks_like_keras_metadata(top: &TopLevel) -> bool {
    top.has(1, 2) && top.only(&[(1, 2)])
}

/// Reads a `saved_model.pb`. A message with no meta graph, or whose meta graphs hold
/// neither a graph nor meta info, is refused as not a SavedModel.
pub fn read_saved_model(data: &[u8], limits: &Limits) -> Result<SavedModel> {
    wire::check(data, &proto::SAVED_MODEL, limits)?;
    let m = SavedModel::decode(data)
        .map_err(|e| ParseError::malformed(0, format!("SavedModel does not decode: {e}")))?;
    let has_content = m
        .meta_graphs
        .iter()
        .any(|g| g.graph_def.is_some() || g.meta_info_def.is_some());
    if !has_content {
        return Err(ParseError::malformed(
            0,
            "SavedModel has no meta graph with a graph or meta info",
        ));
    }
    Ok(m)
}

/// Reads a bare `GraphDef` (a frozen graph). Every node must name its op.
pub fn read_graph_def(data: &[u8], limits: &Limits) -> Result<GraphDef> {
    wire::check(data, &proto::GRAPH, limits)?;
    let g = GraphDef::decode(data)
        .map_err(|e| ParseError::malformed(0, format!("GraphDef does not decode: {e}")))?;
    if g.node.is_empty() && g.library.as_ref().is_none_or(|l| l.function.is_empty()) {
        return Err(ParseError::malformed(
            0,
            "GraphDef has no nodes and no functions",
        ));
    }
    if let Some(i) = g.node.iter().position(|n| n.op.is_empty()) {
        return Err(ParseError::malformed(
            0,
            format!("GraphDef node {i} names no op"),
        ));
    }
    Ok(g)
}

/// Reads a Keras `keras_metadata.pb`. Every node must carry an identifier starting with
/// `_tf_keras` (the Keras object kinds) and JSON metadata.
pub fn read_keras_metadata(data: &[u8], limits: &Limits) -> Result<SavedMetadata> {
    wire::check(data, &proto::SAVED_METADATA, limits)?;
    let m = SavedMetadata::decode(data)
        .map_err(|e| ParseError::malformed(0, format!("SavedMetadata does not decode: {e}")))?;
    let keras = !m.nodes.is_empty()
        && m.nodes
            .iter()
            .all(|n| n.identifier.starts_with("_tf_keras") && n.metadata.starts_with('{'));
    if !keras {
        return Err(ParseError::malformed(
            0,
            "not Keras SavedMetadata: a node lacks a _tf_keras identifier or JSON metadata",
        ));
    }
    Ok(m)
}

/// Protobuf files that carry no graph and no code, recognised so that a model directory
/// does not fail for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sidecar {
    /// `fingerprint.pb` of a SavedModel: five hashes and a version.
    Fingerprint,
    /// A SentencePiece tokenizer model (`tokenizer.model`, `spiece.model`).
    SentencePiece,
}

impl Sidecar {
    pub fn name(self) -> &'static str {
        match self {
            Self::Fingerprint => "tf-fingerprint",
            Self::SentencePiece => "sentencepiece",
        }
    }
}

/// `FingerprintDef`: 1-5 `uint64` hashes, 6 `VersionDef`.
const FINGERPRINT_FIELDS: &[(u32, u8)] = &[(1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 2)];

/// SentencePiece `ModelProto`: 1 `pieces`, 2 `trainer_spec`, 3 `normalizer_spec`,
/// 4 `self_test_data`, 5 `denormalizer_spec`.
const SENTENCEPIECE_FIELDS: &[(u32, u8)] = &[(1, 2), (2, 2), (3, 2), (4, 2), (5, 2)];

static SENTENCEPIECE: Schema = Schema {
    name: "sentencepiece.ModelProto",
    fields: &[(1, Kind::Message(&SENTENCEPIECE_PIECE))],
};

/// `SentencePiece`: 1 `piece` (string), 2 `score` (float), 3 `type` (enum).
static SENTENCEPIECE_PIECE: Schema = Schema {
    name: "ModelProto.SentencePiece",
    fields: &[(1, Kind::Str)],
};

/// Recognises a sidecar protobuf: the top level has exactly its fields and the whole
/// message walks cleanly.
pub fn sidecar(data: &[u8], top: &TopLevel, limits: &Limits) -> Option<Sidecar> {
    if !top.complete {
        return None;
    }
    if top.has(1, 0) && top.only(FINGERPRINT_FIELDS) {
        return Some(Sidecar::Fingerprint);
    }
    if top.has(1, 2) && top.has(2, 2) && top.only(SENTENCEPIECE_FIELDS) {
        // Every piece must be a message whose fields are piece (string), score (fixed32)
        // and type (varint).
        let pieces_ok = wire::Fields::new(data, 0).all(|f| match f {
            Ok(f) if f.number == 1 => match f.value {
                wire::Value::Len(piece) => {
                    let inner = TopLevel::scan(piece);
                    inner.complete && inner.only(&[(1, 2), (2, 5), (3, 0)])
                }
                _ => false,
            },
            Ok(_) => true,
            Err(_) => false,
        });
        if pieces_ok && wire::check(data, &SENTENCEPIECE, limits).is_ok() {
            return Some(Sidecar::SentencePiece);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::proto::*;
    use super::*;
    use std::collections::BTreeMap;

    pub(crate) fn node(name: &str, op: &str) -> NodeDef {
        NodeDef {
            name: name.into(),
            op: op.into(),
            ..Default::default()
        }
    }

    fn saved_model() -> SavedModel {
        let mut call = node("StatefulPartitionedCall", "StatefulPartitionedCall");
        call.attr.insert(
            "f".into(),
            AttrValue {
                value: Some(attr_value::Value::Func(NameAttrList {
                    name: "__inference_serve_1".into(),
                    attr: BTreeMap::new(),
                })),
            },
        );
        SavedModel {
            saved_model_schema_version: 1,
            meta_graphs: vec![MetaGraphDef {
                meta_info_def: Some(MetaInfoDef {
                    tags: vec!["serve".into()],
                    tensorflow_version: "2.15.0".into(),
                    ..Default::default()
                }),
                graph_def: Some(GraphDef {
                    node: vec![node("x", "Placeholder"), call],
                    library: Some(FunctionDefLibrary {
                        function: vec![FunctionDef {
                            signature: Some(OpDef {
                                name: "__inference_serve_1".into(),
                            }),
                            node_def: vec![node("MatMul", "MatMul")],
                        }],
                    }),
                }),
                saver_def: Some(SaverDef {
                    filename_tensor_name: "saver_filename:0".into(),
                    save_tensor_name: "StatefulPartitionedCall_1:0".into(),
                    restore_op_name: "StatefulPartitionedCall_2".into(),
                }),
            }],
        }
    }

    #[test]
    fn saved_model_round_trips() {
        let m = saved_model();
        let bytes = m.encode_to_vec();
        let top = TopLevel::scan(&bytes);
        assert!(looks_like_saved_model(&top));
        assert!(!crate::onnx::looks_like(&top));
        let back = read_saved_model(&bytes, &Limits::default()).unwrap();
        assert_eq!(back, m);
        let g = back.meta_graphs[0].graph_def.as_ref().unwrap();
        assert_eq!(g.node[1].attr["f"].functions(), vec!["__inference_serve_1"]);
    }

    #[test]
    fn graph_def_round_trips_and_skips_tensors() {
        let mut c = node("w", "Const").encode_to_vec();
        // attr {"value": AttrValue{tensor (8): 64 KiB}} written by hand: undeclared field.
        let mut value = vec![0x42, 0x80, 0x80, 0x04];
        value.extend(std::iter::repeat_n(7u8, 1 << 16));
        let mut entry = vec![0x0a, 5];
        entry.extend_from_slice(b"value");
        entry.push(0x12);
        entry.extend(varint(value.len() as u64));
        entry.extend(value);
        c.push(0x2a);
        c.extend(varint(entry.len() as u64));
        c.extend(entry);
        let mut g = vec![0x0a];
        g.extend(varint(c.len() as u64));
        g.extend(c);
        let top = TopLevel::scan(&g);
        assert!(looks_like_graph_def(&top));
        let back = read_graph_def(&g, &Limits::default()).unwrap();
        assert_eq!(back.node[0].op, "Const");
        assert_eq!(back.node[0].attr["value"], AttrValue { value: None });
    }

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        prost::encoding::encode_varint(v, &mut out);
        out
    }

    #[test]
    fn empty_or_opless_graphs_are_refused() {
        assert!(read_graph_def(&[], &Limits::default()).is_err());
        let g = GraphDef {
            node: vec![node("a", "")],
            library: None,
        };
        assert!(read_graph_def(&g.encode_to_vec(), &Limits::default()).is_err());
        let m = SavedModel {
            saved_model_schema_version: 1,
            meta_graphs: vec![MetaGraphDef::default()],
        };
        assert!(read_saved_model(&m.encode_to_vec(), &Limits::default()).is_err());
    }

    #[test]
    fn keras_metadata() {
        let m = SavedMetadata {
            nodes: vec![SavedObject {
                node_id: 0,
                node_path: "root".into(),
                identifier: "_tf_keras_network".into(),
                metadata: "{\"class_name\": \"Functional\"}".into(),
            }],
        };
        let bytes = m.encode_to_vec();
        assert!(looks_like_keras_metadata(&TopLevel::scan(&bytes)));
        assert_eq!(read_keras_metadata(&bytes, &Limits::default()).unwrap(), m);
        // A GraphDef does not read as Keras metadata.
        let g = GraphDef {
            node: vec![node("a", "NoOp")],
            library: None,
        };
        assert!(read_keras_metadata(&g.encode_to_vec(), &Limits::default()).is_err());
    }

    #[test]
    fn sidecars() {
        let fp = [0x08, 0x01, 0x10, 0x02, 0x32, 0x02, 0x08, 0x01];
        assert_eq!(
            sidecar(&fp, &TopLevel::scan(&fp), &Limits::default()),
            Some(Sidecar::Fingerprint)
        );
        // pieces {piece "a", score 0.0, type 1}, trainer_spec {}.
        let piece = [0x0a, 0x01, b'a', 0x15, 0, 0, 0, 0, 0x18, 0x01];
        let sp = [&[0x0a, piece.len() as u8][..], &piece, &[0x12, 0x00]].concat();
        let top = TopLevel::scan(&sp);
        assert!(top.complete, "{sp:?}");
        assert_eq!(
            sidecar(&sp, &top, &Limits::default()),
            Some(Sidecar::SentencePiece)
        );
        let graph = saved_model().encode_to_vec();
        assert_eq!(
            sidecar(&graph, &TopLevel::scan(&graph), &Limits::default()),
            None
        );
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let base = saved_model().encode_to_vec();
        for data in crate::mutate::mutations(&base, 0x1234_5678_9abc_def1, 20_000) {
            let limits = Limits::default();
            let _ = read_saved_model(&data, &limits);
            let _ = read_graph_def(&data, &limits);
            let _ = read_keras_metadata(&data, &limits);
            let _ = sidecar(&data, &TopLevel::scan(&data), &limits);
        }
    }
}
